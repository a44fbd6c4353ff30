"""The board-independent top: UART, link engine and neuron core.

``serial rx -> UART -> LinkEngine -> NeuronCore -> LinkEngine -> UART -> serial tx``

:class:`LinkTop` is all logic in the ``sync`` domain with two serial pins and four status LEDs;
a board target (``boards/targets/``) gives it a clock (a PLL), its UART pins and its LEDs. The
same top runs in simulation (:mod:`.simulated`), where the host code talks to it byte for byte.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from unlayered.gateware.core import NeuronCore
from unlayered.sim import Model, UnlayeredError

from .link import LinkEngine
from .uart import UART

__all__ = ["LinkTop"]


class LinkTop(wiring.Component):
    """A neuron core for ``model`` behind the host link.

    Parameters
    ----------
    model
        The deployed model; its weights initialise the weight memories unless they are SPRAM
        (``weight_ram="spram"``), which the host loads with ``LOAD_WEIGHTS``.
    lanes, weight_ram
        The core's lanes and weight memory kind (:class:`~unlayered.gateware.core.NeuronCore`).
    clock_hz, baud
        Core clock and UART bit rate; their ratio (rounded) is the UART divisor, which must be
        within 1 % of exact.
    max_payload, trace_depth
        The link engine's buffer sizes (:class:`~.link.LinkEngine`).

    Members
    -------
    rx : In(1)
        Serial data from the host (idle high).
    tx : Out(1)
        Serial data to the host (idle high).
    leds : Out(4)
        0: heartbeat (about 1 Hz); 1: a sample is on the core; 2: a damaged or out-of-order
        frame was answered since the last RESET; 3: the core is busy.
    """

    def __init__(
        self,
        model: Model,
        *,
        lanes: int,
        clock_hz: int,
        baud: int,
        max_payload: int = 1024,
        trace_depth: int = 1024,
        weight_ram: str = "bram",
    ):
        divisor = round(clock_hz / baud)
        if divisor < 4 or abs(clock_hz / divisor - baud) > 0.01 * baud:
            raise UnlayeredError(
                f"a {clock_hz / 1e6:g} MHz clock cannot make {baud} baud within 1 % "
                f"(divisor {clock_hz / baud:.2f}; at least 4 clocks per bit)"
            )
        self.model = model
        self.clock_hz = clock_hz
        self.baud = baud
        self.divisor = divisor
        self.core = NeuronCore(model, lanes, weight_ram=weight_ram)
        self.link = LinkEngine(
            model,
            self.core.layout,
            max_payload=max_payload,
            trace_depth=trace_depth,
            clock_hz=clock_hz,
        )
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(4)})

    @classmethod
    def for_board(cls, model: Model, config) -> "LinkTop":
        """The top for a board's resolved configuration (``Target.config(...)``)."""
        return cls(
            model,
            lanes=config.lanes,
            clock_hz=config.clock_hz,
            baud=config.baud,
            max_payload=config.max_payload,
            trace_depth=config.trace_depth,
            weight_ram=config.weight_ram,
        )

    def memory_report(self) -> list[dict]:
        """The link engine's memories (the core's are in ``gateware.fit``)."""
        return self.link.memory_report()

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart = uart = UART(self.divisor)
        m.submodules.core = core = self.core
        m.submodules.link = link = self.link
        m.d.comb += [uart.rx.eq(self.rx), self.tx.eq(uart.tx)]
        wiring.connect(m, uart.rx_data, link.rx)
        wiring.connect(m, link.tx, uart.tx_data)
        wiring.connect(m, link.events, core.events)
        wiring.connect(m, link.weights, core.weights)
        wiring.connect(m, core.spikes, link.spikes)
        wiring.connect(m, core.summary, link.summary)
        m.d.comb += link.counters.eq(core.counters)
        m.d.comb += core.membranes.ready.eq(1)  # the debug read-out is off (``debug`` = 0)

        heartbeat = Signal(range(max(self.clock_hz // 2, 2)))
        blink = Signal()
        m.d.sync += heartbeat.eq(heartbeat + 1)
        with m.If(heartbeat == self.clock_hz // 2 - 1):
            m.d.sync += [heartbeat.eq(0), blink.eq(~blink)]
        m.d.comb += [
            self.leds[0].eq(blink),
            self.leds[1].eq(link.running),
            self.leds[2].eq(link.link_error),
            self.leds[3].eq(~core.idle),
        ]
        return m
