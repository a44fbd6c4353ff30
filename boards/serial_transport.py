"""The host link over a serial port: a :class:`~.host.Transport` on pyserial.

``port`` is a device (``/dev/ttyUSB1``, ``COM3``) or any pyserial URL (``loop://`` for a
loopback, ``socket://host:port``, ``rfc2217://...``). 8N1, no flow control.

The iCEBreaker's UART is the FT2232H's second channel (usually ``/dev/ttyUSB1``; the first one
programs the flash), the ULX3S's the FT231X (``/dev/ttyUSB0``). On Linux the FTDI driver holds
received bytes up to 16 ms (its ``latency_timer``); the stop-and-wait link then waits that long
per response. ``echo 1 > /sys/bus/usb-serial/devices/ttyUSB1/latency_timer`` (or ``setserial
/dev/ttyUSB1 low_latency``) shortens it.
"""

from __future__ import annotations

import serial

from unlayered.sim import UnlayeredError

__all__ = ["SerialTransport", "SerialTransportError"]


class SerialTransportError(UnlayeredError):
    """The serial port cannot be opened, or failed while in use."""


class SerialTransport:
    """A byte link to a board over a serial port (a context manager).

    ``read(n, timeout)`` returns between 1 and ``n`` bytes as soon as any are available, or
    ``b""`` when none arrived within ``timeout`` seconds; ``write(data)`` sends all of ``data``
    (waiting at most ``write_timeout`` seconds).
    """

    def __init__(self, port: str, baud: int = 1_000_000, *, write_timeout: float | None = 5.0):
        self.port = port
        self.baud = baud
        try:
            self._serial = serial.serial_for_url(
                port,
                baudrate=baud,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=0,
                write_timeout=write_timeout,
            )
        except (serial.SerialException, ValueError, OSError) as exc:
            raise SerialTransportError(
                f"cannot open serial port {port!r} at {baud} baud: {exc}"
            ) from exc
        self._timeout: float | None = 0

    # ---- Transport

    def write(self, data: bytes) -> None:
        try:
            self._serial.write(bytes(data))
            self._serial.flush()
        except (serial.SerialException, OSError) as exc:
            raise SerialTransportError(f"writing to {self.port!r} failed: {exc}") from exc

    def read(self, n: int, timeout: float) -> bytes:
        if n <= 0:
            return b""
        timeout = max(0.0, float(timeout))
        try:
            if self._timeout != timeout:  # reconfiguring a real port costs system calls
                self._serial.timeout = timeout
                self._timeout = timeout
            first = self._serial.read(1)
            if not first:
                return b""
            waiting = min(self._serial.in_waiting, n - 1)
            rest = self._serial.read(waiting) if waiting else b""
        except (serial.SerialException, OSError) as exc:
            raise SerialTransportError(f"reading from {self.port!r} failed: {exc}") from exc
        return first + rest

    # ---- housekeeping

    def reset_input(self) -> None:
        """Drop whatever was received and not read yet."""
        self._serial.reset_input_buffer()

    @property
    def is_open(self) -> bool:
        return bool(self._serial.is_open)

    def close(self) -> None:
        self._serial.close()

    def __enter__(self) -> SerialTransport:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SerialTransport({self.port!r}, {self.baud})"
