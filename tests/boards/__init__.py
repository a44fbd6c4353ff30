"""Tests of the boards package: host link protocol, host, device model, UART."""
