"""An 8N1 UART for the host link: receiver and transmitter with ``lib.stream`` byte ports.

One bit lasts ``divisor`` clock cycles (``divisor = f_clk / baud``, rounded; at least 4, so
that the receiver can sample each bit near its middle). The receiver synchronizes its input with
two flip-flops, samples the start bit at its middle and every bit one ``divisor`` later, and
checks the stop bit. Neither side buffers more than one byte: the host link's framing and
retransmission (``docs/protocol.md``) cover a byte the receiver had to drop.
"""

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UART", "UARTRx", "UARTTx"]


def _check_divisor(component: wiring.Component, divisor: int) -> int:
    from unlayered.sim import UnlayeredError

    if not isinstance(divisor, int) or divisor < 4:
        component._MustUse__silence = True  # refused, so no "created but never used" warning
        raise UnlayeredError(
            f"UART divisor must be an integer >= 4 (clocks per bit), got {divisor}"
        )
    return divisor


class UARTTx(wiring.Component):
    """8N1 transmitter.

    Parameters
    ----------
    divisor
        Clock cycles per bit.

    Members
    -------
    data : In(stream.Signature(8))
        Bytes to send; ready while no byte is being sent (not always-ready).
    tx : Out(1)
        The serial line (idle high).
    busy : Out(1)
        A byte is being sent.
    """

    def __init__(self, divisor: int):
        self._divisor = _check_divisor(self, divisor)
        super().__init__(
            {
                "data": In(stream.Signature(unsigned(8))),
                "tx": Out(1, init=1),
                "busy": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        counter = Signal(range(self._divisor))
        shreg = Signal(9)  # data bits, LSB first, then the stop bit
        bits = Signal(range(11))  # bit periods left, start bit included

        m.d.comb += [self.data.ready.eq(bits == 0), self.busy.eq(bits != 0)]
        with m.If(bits == 0):
            with m.If(self.data.valid):
                m.d.sync += [
                    shreg.eq(Cat(self.data.payload, 1)),
                    self.tx.eq(0),  # start bit
                    bits.eq(10),
                    counter.eq(self._divisor - 1),
                ]
        with m.Elif(counter != 0):
            m.d.sync += counter.eq(counter - 1)
        with m.Else():
            m.d.sync += [counter.eq(self._divisor - 1), bits.eq(bits - 1)]
            with m.If(bits == 1):
                m.d.sync += self.tx.eq(1)  # idle
            with m.Else():
                m.d.sync += [self.tx.eq(shreg[0]), shreg.eq(shreg >> 1)]
        return m


class UARTRx(wiring.Component):
    """8N1 receiver.

    Parameters
    ----------
    divisor
        Clock cycles per bit.

    Members
    -------
    rx : In(1)
        The serial line (asynchronous; synchronized inside).
    data : Out(stream.Signature(8))
        Received bytes. A byte is held until taken; one that completes while the previous is
        still held is dropped (``overrun``).
    error : Out(1)
        One-cycle pulse: a byte's stop bit was low (framing error, or a break); the byte is
        dropped and the receiver waits for the line to go high.
    overrun : Out(1)
        One-cycle pulse: a byte was dropped because ``data`` was not taken in time.
    """

    def __init__(self, divisor: int):
        self._divisor = _check_divisor(self, divisor)
        super().__init__(
            {
                "rx": In(1, init=1),
                "data": Out(stream.Signature(unsigned(8))),
                "error": Out(1),
                "overrun": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.rx_sync = FFSynchronizer(self.rx, rx, init=1)
        counter = Signal(range(self._divisor))
        shreg = Signal(8)
        bits = Signal(range(8))

        m.d.sync += [self.error.eq(0), self.overrun.eq(0)]
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)

        with m.FSM():
            with m.State("idle"):
                with m.If(~rx):
                    m.d.sync += counter.eq(self._divisor // 2 - 1)
                    m.next = "start"
            with m.State("start"):
                with m.If(counter != 0):
                    m.d.sync += counter.eq(counter - 1)
                with m.Elif(rx):
                    m.next = "idle"  # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [counter.eq(self._divisor - 1), bits.eq(0)]
                    m.next = "data"
            with m.State("data"):
                with m.If(counter != 0):
                    m.d.sync += counter.eq(counter - 1)
                with m.Else():
                    m.d.sync += [
                        shreg.eq(Cat(shreg[1:], rx)),
                        counter.eq(self._divisor - 1),
                        bits.eq(bits + 1),
                    ]
                    with m.If(bits == 7):
                        m.next = "stop"
            with m.State("stop"):
                with m.If(counter != 0):
                    m.d.sync += counter.eq(counter - 1)
                with m.Elif(~rx):
                    m.d.sync += self.error.eq(1)
                    m.next = "break"
                with m.Else():
                    with m.If(self.data.valid & ~self.data.ready):
                        m.d.sync += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                    m.next = "idle"
            with m.State("break"):
                with m.If(rx):
                    m.next = "idle"
        return m


class UART(wiring.Component):
    """Receiver and transmitter with the same ``divisor``.

    Members
    -------
    rx : In(1)
        Serial input line.
    tx : Out(1)
        Serial output line.
    rx_data : Out(stream.Signature(8))
        Received bytes (:class:`UARTRx`).
    tx_data : In(stream.Signature(8))
        Bytes to send (:class:`UARTTx`).
    rx_error, rx_overrun : Out(1)
        The receiver's fault pulses.
    """

    def __init__(self, divisor: int):
        self._divisor = _check_divisor(self, divisor)
        super().__init__(
            {
                "rx": In(1, init=1),
                "tx": Out(1, init=1),
                "rx_data": Out(stream.Signature(unsigned(8))),
                "tx_data": In(stream.Signature(unsigned(8))),
                "rx_error": Out(1),
                "rx_overrun": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = receiver = UARTRx(self._divisor)
        m.submodules.transmitter = transmitter = UARTTx(self._divisor)
        m.d.comb += [
            receiver.rx.eq(self.rx),
            self.tx.eq(transmitter.tx),
            self.rx_error.eq(receiver.error),
            self.rx_overrun.eq(receiver.overrun),
        ]
        wiring.connect(m, receiver=receiver.data, host=wiring.flipped(self.rx_data))
        wiring.connect(m, host=wiring.flipped(self.tx_data), transmitter=transmitter.data)
        return m
