"""A bring-up top: echoes the host link's bytes through a FIFO, blinks a LED.

Same ports as the real board top (``rx``, ``tx``, ``leds``), so it checks a board, its clock,
its UART at the link's baud rate and the build flow before the neuron core goes on it. It is
also the small design of the build tests.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from ..uart import UART

__all__ = ["EchoTop"]


class EchoTop(wiring.Component):
    """Echo every byte received on ``rx`` back on ``tx``, through a FIFO of ``fifo_depth``.

    LEDs: ``leds[0]`` blinks at about 1 Hz (clock and reset run), ``leds[1]`` toggles on every
    byte received, ``leds[2]`` lights after a framing error, ``leds[3]`` after a byte was lost
    (FIFO full).

    Parameters
    ----------
    clock_hz
        The ``sync`` domain's frequency (the blink rate).
    divisor
        UART clocks per bit (``clock_hz / baud``).
    fifo_depth
        Bytes the echo path buffers (in block RAM when large enough).
    """

    def __init__(self, clock_hz: float, divisor: int, *, fifo_depth: int = 512):
        self.clock_hz = clock_hz
        self._divisor = divisor
        self._fifo_depth = fifo_depth
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(4)})

    @classmethod
    def for_board(cls, config, *, fifo_depth: int = 512) -> EchoTop:
        """The echo top for a :class:`BoardConfig` (a factory for ``build_bitstream``)."""
        return cls(config.clock_hz, config.uart_divisor, fifo_depth=fifo_depth)

    def memory_report(self) -> list[dict]:
        """The memories this top adds around the core (here: the echo FIFO), for the fit report."""
        return [{"name": "echo.fifo", "kind": "buffer", "depth": self._fifo_depth, "width": 8}]

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart = uart = UART(self._divisor)
        m.submodules.fifo = buf = fifo.SyncFIFOBuffered(width=8, depth=self._fifo_depth)
        m.d.comb += [
            uart.rx.eq(self.rx),
            self.tx.eq(uart.tx),
            buf.w_data.eq(uart.rx_data.payload),
            buf.w_en.eq(uart.rx_data.valid),
            uart.rx_data.ready.eq(1),
            uart.tx_data.payload.eq(buf.r_data),
            uart.tx_data.valid.eq(buf.r_rdy),
            buf.r_en.eq(uart.tx_data.ready),
        ]
        half_period = max(1, int(self.clock_hz // 2))
        counter = Signal(range(half_period))
        blink, toggle, framing, lost = Signal(), Signal(), Signal(), Signal()
        with m.If(counter == half_period - 1):
            m.d.sync += [counter.eq(0), blink.eq(~blink)]
        with m.Else():
            m.d.sync += counter.eq(counter + 1)
        with m.If(uart.rx_data.valid):
            m.d.sync += toggle.eq(~toggle)
            with m.If(~buf.w_rdy):
                m.d.sync += lost.eq(1)
        with m.If(uart.rx_error):
            m.d.sync += framing.eq(1)
        m.d.comb += self.leds.eq(Cat(blink, toggle, framing, lost))
        return m
