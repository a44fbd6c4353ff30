"""gateware"""
