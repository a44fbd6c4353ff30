"""A board in the Amaranth simulator, reachable through the host link like a serial port.

:class:`SimulatedBoard` runs a :class:`~.top.LinkTop` (UART, link engine, neuron core) in the
Amaranth simulator and drives its serial pins bit by bit, so the unchanged host code
(:class:`~.host.HostLink`) talks to the same gateware a board runs. The simulation advances
only while the host waits (``read``, ``sleep``); ``clock`` is simulated time, so timeouts are
exact and runs are reproducible whatever the machine's speed.

Faults can be injected on the line, per frame and direction, as on a real cable: ``corrupt``
(one byte changed), ``drop_byte`` (one byte removed), ``duplicate``, ``lose``, ``stall``
(delivered ``stall_seconds`` late, after the host's timeout).
"""

from __future__ import annotations

import random
from collections import deque

from amaranth.sim import Simulator

from unlayered.sim import UnlayeredError

from .top import LinkTop

__all__ = ["FAULTS", "SimulatedBoard", "check_faults", "damage_frame"]

FAULTS = ("corrupt", "drop_byte", "duplicate", "lose", "stall")


def damage_frame(fault: str | None, data: bytes, rng: random.Random) -> list[bytes]:
    """The byte strings a line delivers for the frame ``data`` under ``fault`` (``None``: as
    sent; a stalled frame is delivered whole, the caller delays it). A damaged byte may be a
    delimiter."""
    if fault is None or fault == "stall":
        return [data]
    if fault == "lose":
        return []
    if fault == "duplicate":
        return [data, data]
    i = rng.randrange(len(data))
    if fault == "corrupt":
        damaged = bytearray(data)
        damaged[i] ^= rng.randrange(1, 256)
        return [bytes(damaged)]
    if fault == "drop_byte":
        return [data[:i] + data[i + 1 :]]
    raise UnlayeredError(f"unknown line fault {fault!r}; known: {', '.join(FAULTS)}")


def check_faults(*tables: dict[int, str] | None) -> None:
    """Refuse a fault name that is not one of :data:`FAULTS`."""
    for table in tables:
        for fault in (table or {}).values():
            if fault not in FAULTS:
                raise UnlayeredError(f"unknown line fault {fault!r}; known: {', '.join(FAULTS)}")


class SimulatedBoard:
    """A transport (``write``, ``read``) to ``top`` in simulation, with a simulated clock.

    Parameters
    ----------
    top
        The board top to simulate (its ``clock_hz`` and UART ``divisor`` set the timing).
    to_board, to_host
        Faults by frame index (counted per direction from 0), e.g. ``{2: "corrupt"}``.
    stall_seconds
        How late a stalled frame arrives.
    seed
        For the position and value of damaged bytes.

    Members
    -------
    injected
        ``(direction, frame index, fault)`` of every fault injected.
    """

    def __init__(
        self,
        top: LinkTop,
        *,
        to_board: dict[int, str] | None = None,
        to_host: dict[int, str] | None = None,
        stall_seconds: float = 0.0,
        seed: int = 0,
    ):
        check_faults(to_board, to_host)
        self.top = top
        self.to_board = dict(to_board or {})
        self.to_host = dict(to_host or {})
        self.stall_seconds = stall_seconds
        self.injected: list[tuple[str, int, str]] = []
        self._rng = random.Random(seed)
        self._period = 1 / top.clock_hz
        self._bit = top.divisor  # clock cycles per bit
        self._time = 0.0
        self._frames_in = self._frames_out = 0
        self._line: deque[tuple[float, bytes]] = deque()  # (not before, bytes) to the board
        self._received = bytearray()  # bytes the host can read
        self._partial = bytearray()  # the response frame being received from the board
        self._late: list[tuple[float, bytes]] = []  # stalled responses
        self.sim = Simulator(top)
        self.sim.add_clock(self._period)
        self.sim.add_testbench(self._drive_rx, background=True)
        self.sim.add_testbench(self._watch_tx, background=True)

    # ---- the transport

    def write(self, data: bytes) -> None:
        fault = self._fault(self.to_board, self._frames_in, "to_board")
        self._frames_in += 1
        delay = self.stall_seconds if fault == "stall" else 0.0
        for piece in self._damage(fault, bytes(data)):
            self._line.append((self._time + delay, piece))

    def read(self, n: int, timeout: float) -> bytes:
        deadline = self._time + timeout
        while not self._received and self._time < deadline:
            self._deliver_late()
            self._advance(min(deadline - self._time, 16 * self._bit * self._period))
        self._deliver_late()
        out = bytes(self._received[:n])
        del self._received[:n]
        return out

    def clock(self) -> float:
        """Simulated seconds since the start (the host's clock)."""
        return self._time

    def sleep(self, seconds: float) -> None:
        self._advance(seconds)

    @property
    def cycles(self) -> int:
        return round(self._time / self._period)

    # ---- simulation

    def _advance(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self._time += seconds
        self.sim.run_until(self._time)

    @staticmethod
    async def _ticks(ctx, n: int) -> None:
        for _ in range(n):  # not ``tick().repeat()``: its generator warns when left running
            await ctx.tick()

    async def _drive_rx(self, ctx):
        ctx.set(self.top.rx, 1)
        while True:
            if not self._line or self._line[0][0] > self._time:
                await self._ticks(ctx, self._bit)
                continue
            _, data = self._line.popleft()
            for byte in data:
                for bit in (0, *((byte >> i) & 1 for i in range(8)), 1):  # start, LSB first, stop
                    ctx.set(self.top.rx, bit)
                    await self._ticks(ctx, self._bit)

    async def _watch_tx(self, ctx):
        while True:
            await ctx.negedge(self.top.tx)  # a start bit
            await self._ticks(ctx, self._bit // 2)  # the middle of the start bit
            byte = 0
            for i in range(8):
                await self._ticks(ctx, self._bit)
                byte |= ctx.get(self.top.tx) << i
            await self._ticks(ctx, self._bit)  # the stop bit
            if not ctx.get(self.top.tx):
                raise UnlayeredError("simulated board: a byte on tx has no stop bit")
            self._take(byte)

    def _take(self, byte: int) -> None:
        """Collect the board's bytes frame by frame, so faults apply to whole responses."""
        self._partial.append(byte)
        if byte != 0 or len(self._partial) == 1:
            return  # a frame's leading delimiter, or inside a frame
        frame = bytes(self._partial)
        self._partial.clear()
        fault = self._fault(self.to_host, self._frames_out, "to_host")
        self._frames_out += 1
        for piece in self._damage(fault, frame):
            if fault == "stall":
                self._late.append((self._time + self.stall_seconds, piece))
            else:
                self._received += piece

    def _deliver_late(self) -> None:
        due = [item for item in self._late if item[0] <= self._time]
        for item in due:
            self._late.remove(item)
            self._received += item[1]

    # ---- faults

    def _fault(self, table: dict[int, str], index: int, direction: str) -> str | None:
        fault = table.get(index)
        if fault:
            self.injected.append((direction, index, fault))
        return fault

    def _damage(self, fault: str | None, data: bytes) -> list[bytes]:
        return damage_frame(fault, data, self._rng)
