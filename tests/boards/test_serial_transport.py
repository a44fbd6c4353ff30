"""SerialTransport: the Transport contract on pyserial's loopback and on a pseudo-terminal that a
device model answers (the host link end to end over a real serial port driver)."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from unlayered.boards.device_model import DeviceModel
from unlayered.boards.host import HostLink
from unlayered.boards.serial_transport import SerialTransport, SerialTransportError
from unlayered.sim import UnlayeredError, simulate

from .links import small_events, small_model


def test_loopback_reads_what_is_available():
    with SerialTransport("loop://", 1_000_000) as port:
        assert port.is_open
        port.write(b"hello world")
        assert port.read(5, 0.5) == b"hello"
        assert port.read(100, 0.5) == b" world"  # the rest at once, not 100 bytes
        assert port.read(0, 0.5) == b""
    assert not port.is_open


def test_loopback_times_out_empty():
    with SerialTransport("loop://") as port:
        t0 = time.monotonic()
        assert port.read(4, 0.1) == b""
        assert 0.08 <= time.monotonic() - t0 < 1.0
        assert port.read(4, 0) == b""  # no waiting at all
        port.write(b"\x00\xff")
        port.reset_input()
        assert port.read(4, 0.05) == b""


def test_read_returns_as_soon_as_a_byte_arrives():
    with SerialTransport("loop://") as port:
        timer = threading.Timer(0.1, port.write, args=(b"x",))
        timer.start()
        t0 = time.monotonic()
        assert port.read(10, 5.0) == b"x"
        assert time.monotonic() - t0 < 2.0
        timer.join()


@pytest.mark.parametrize("port", ["/dev/does-not-exist", "nosuchprotocol://x"])
def test_cannot_open_says_which_port(port):
    with pytest.raises(SerialTransportError, match="cannot open serial port") as info:
        SerialTransport(port, 115_200)
    assert port in str(info.value) and isinstance(info.value, UnlayeredError)


class PtyDevice:
    """A device model behind the master side of a pseudo-terminal, in a thread."""

    def __init__(self, device: DeviceModel):
        self.device = device
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            reply = self.device.receive(data)
            if reply:
                os.write(self.master, reply)

    def __enter__(self):
        import termios
        import tty

        tty.setraw(self._slave)
        attrs = termios.tcgetattr(self._slave)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self.master)
        os.close(self._slave)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminals of Linux")
def test_host_link_over_a_serial_port():
    model = small_model("fifo", seed=2)
    events = small_events(4, seed=5)
    device = DeviceModel(model, lanes=2)
    with PtyDevice(device) as pty, SerialTransport(pty.path, 1_000_000) as port:
        host = HostLink(port, timeout=0.5, retries=4, busy_delay=0)
        host.reset()
        results = host.run_samples(events, seed=model.scheduler.seed)
    reference = simulate(model, events, engine="readable")
    assert device.executed == events.sample_ids.tolist()
    for board, ref in zip(results, reference.samples, strict=True):
        assert board.mismatches(ref) == []
    assert host.stats.retransmissions == 0
