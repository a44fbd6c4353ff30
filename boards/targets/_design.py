"""A board top inside a board: clock from the PLL, reset until it locks, UART and LEDs."""

from __future__ import annotations

from amaranth.hdl import ClockDomain, Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from ._base import Target, TargetError
from ._pll import PLLConfig

__all__ = ["RESET_DELAY_S", "BoardDesign"]

# Reset is held this long after the PLL locks. iCE40 block RAMs read as zero for ~3 us after
# configuration (Amaranth's own iCE40 power-on reset waits 15 us for this); ECP5 needs nothing,
# the same delay does no harm.
RESET_DELAY_S = 15e-6


class BoardDesign(Elaboratable):
    """``top`` on the board of ``target``, its ``sync`` domain at ``clock_hz`` from the PLL.

    ``top`` is a ``wiring.Component`` with ``rx: In(1)``, ``tx: Out(1)`` and ``leds: Out(n)``
    (n <= 4; fewer board LEDs than bits: the high bits are not shown). This design:

    - makes the ``sync`` domain at the PLL's frequency (:attr:`pll`; ``clock_hz`` is what was
      asked, :attr:`clock_hz` what the PLL makes) from the board's oscillator: iCE40
      ``SB_PLL40_PAD`` on the oscillator's pin, ECP5 ``EHXPLLL`` behind its input buffer;
    - holds ``sync``'s reset until the PLL has locked and :data:`RESET_DELAY_S` more (asserted
      again if the lock is lost);
    - connects the board's UART (``top.rx`` from the host, ``top.tx`` to it) and LEDs.

    nextpnr derives the ``sync`` clock's constraint from the oscillator's through the PLL.
    """

    def __init__(self, target: Target, top, clock_hz: float | None = None):
        for port in ("rx", "tx", "leds"):
            if not hasattr(top, port):
                self._MustUse__silence = True  # refused: no "created but never used" warning
                raise TargetError(f"the board top {top!r} has no {port!r} port")
        self.target = target
        self.top = top
        self.pll: PLLConfig = target.pll(clock_hz)

    @property
    def clock_hz(self) -> float:
        """The frequency the PLL makes (the ``sync`` domain's)."""
        return self.pll.output_hz

    def elaborate(self, platform):
        m = Module()
        m.submodules.top = top = self.top
        clk, locked = Signal(name="pll_clk"), Signal(name="pll_locked")
        osc = platform.request(self.target.osc_resource, 0, dir="-")
        if self.target.family == "ice40":
            m.submodules.pll = self._ice40_pll(osc, clk, locked)
        elif self.target.family == "ecp5":
            m.submodules.osc_buf = osc_buf = io.Buffer("i", osc)
            m.submodules.pll = self._ecp5_pll(osc_buf.i, clk, locked)
        else:
            raise TargetError(f"{self.target.name}: no PLL for family {self.target.family!r}")

        # sync runs on the PLL's clock; its reset is released RESET_DELAY_S after the lock.
        # No clock constraint here: nextpnr derives the PLL output's from the oscillator's (the
        # platform constrains that pin), and a constraint on a net yosys renames is ignored.
        m.domains.sync = cd_sync = ClockDomain("sync")
        m.domains.por = cd_por = ClockDomain("por", reset_less=True, local=True)
        m.d.comb += [cd_sync.clk.eq(clk), cd_por.clk.eq(clk)]
        locked_s = Signal()
        m.submodules.lock_sync = FFSynchronizer(locked, locked_s, o_domain="por")
        delay = max(1, int(RESET_DELAY_S * self.clock_hz))
        timer = Signal(range(delay + 1))
        ready = Signal()
        with m.If(~locked_s):
            m.d.por += [timer.eq(0), ready.eq(0)]
        with m.Elif(timer == delay):
            m.d.por += ready.eq(1)
        with m.Else():
            m.d.por += timer.eq(timer + 1)
        m.d.comb += cd_sync.rst.eq(~ready)

        # Host link.
        uart_name, uart_number = self.target.uart
        uart = platform.request(uart_name, uart_number, dir="-")
        m.submodules.uart_rx = rx_buf = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx_buf = io.Buffer("o", uart.tx)
        m.d.comb += [top.rx.eq(rx_buf.i), tx_buf.o.eq(top.tx)]

        # LEDs: bit i of top.leds on the board's i-th LED.
        for i, (name, number) in enumerate(self.target.leds[: len(top.leds)]):
            led = platform.request(name, number, dir="-")
            m.submodules[f"led{i}"] = led_buf = io.Buffer("o", led)
            m.d.comb += led_buf.o.eq(top.leds[i])
        return m

    def _ice40_pll(self, osc, clk: Signal, locked: Signal) -> Instance:
        p = self.pll.params
        return Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE",
            p_DIVR=Const(p["DIVR"], 4),
            p_DIVF=Const(p["DIVF"], 7),
            p_DIVQ=Const(p["DIVQ"], 3),
            p_FILTER_RANGE=Const(p["FILTER_RANGE"], 3),
            io_PACKAGEPIN=osc.io,
            i_RESETB=Const(1),
            i_BYPASS=Const(0),
            o_PLLOUTGLOBAL=clk,
            o_LOCK=locked,
        )

    def _ecp5_pll(self, clk_in, clk: Signal, locked: Signal) -> Instance:
        p = self.pll.params
        return Instance(
            "EHXPLLL",
            # Attributes as ecppll writes them (nextpnr-ecp5 reads the loop filter settings).
            a_FREQUENCY_PIN_CLKI=f"{self.pll.input_hz / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{self.pll.output_hz / 1e6:g}",
            a_ICP_CURRENT="12",
            a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED",
            p_INTFB_WAKE="DISABLED",
            p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED",
            p_OUTDIVIDER_MUXA="DIVA",
            p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC",
            p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=p["CLKI_DIV"],
            p_CLKOP_ENABLE="ENABLED",
            p_CLKOP_DIV=p["CLKOP_DIV"],
            p_CLKOP_CPHASE=p["CLKOP_CPHASE"],
            p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=p["CLKFB_DIV"],
            i_RST=Const(0),
            i_STDBY=Const(0),
            i_CLKI=clk_in,
            o_CLKOP=clk,
            i_CLKFB=clk,
            i_PHASESEL0=Const(0),
            i_PHASESEL1=Const(0),
            i_PHASEDIR=Const(1),
            i_PHASESTEP=Const(1),
            i_PHASELOADREG=Const(1),
            i_PLLWAKESYNC=Const(0),
            i_ENCLKOP=Const(0),
            o_LOCK=locked,
        )
