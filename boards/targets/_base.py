"""What a board target says about itself (:class:`Target`) and a resolved configuration of it
(:class:`BoardConfig`: clock after the PLL, UART divisor, lanes, link buffers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unlayered.sim import UnlayeredError

from ..protocol import MAX_PAYLOAD, MIN_PAYLOAD

if TYPE_CHECKING:
    from ._pll import PLLConfig

__all__ = ["BoardConfig", "Target", "TargetError"]

# The largest relative error of the baud rate the UART may run at (clock / divisor vs baud).
BAUD_TOLERANCE = 0.01
WEIGHT_RAMS = ("bram", "spram")


class TargetError(UnlayeredError):
    """A board target is unknown, or asked for something it cannot do (clock, baud, lanes)."""


@dataclass(frozen=True)
class Target:
    """A development board: its platform, clock, host link and the defaults of the design.

    Members
    -------
    name
        Registry name (``unlayered build --board NAME``).
    description
        One line for listings.
    platform
        The amaranth-boards platform class; instantiated once per build.
    family, device
        ``"ice40"`` or ``"ecp5"``; the device as the platform names it (``iCE40UP5K``,
        ``LFE5U-85F``).
    fit_device
        The key of the device in ``unlayered.gateware.fit.DEVICES`` (the memory estimate).
    osc_resource, osc_hz
        The oscillator's platform resource and frequency; the PLL's input.
    clock_hz
        Default core clock (the PLL's output).
    lanes, weight_ram
        Default delivery lanes of the core; where the core keeps its weights (``"bram"``, or
        ``"spram"`` on the iCE40 UP5K: not initialized by the bitstream, the host loads them).
    baud
        Host link baud rate (8N1 over the board's USB UART).
    max_payload, trace_depth
        Default link buffers: the largest frame payload the board accepts and announces, and
        the number of spikes of the trace it keeps per sample.
    uart, leds
        The platform resources of the host link (``(name, number)``) and of up to 4 LEDs (driven
        from the top's ``leds``, bit ``i`` on ``leds[i]``).
    capacity
        Device cells after synthesis (``lut``, ``ff``, ``bram``, ``spram``, ``dsp``): a design
        that needs more is refused before place and route.
    synth_opts
        Extra options of yosys's ``synth_ice40`` / ``synth_ecp5``.
    programmer
        The programming command: ``{bitstream}`` stands for the bitstream's path.
    programmer_install
        How to install the programmer (for error messages).
    bitstream_suffix
        The packer's output (``.bin`` for iCE40, ``.bit`` for ECP5).
    """

    name: str
    description: str
    platform: type
    family: str
    device: str
    fit_device: str
    osc_resource: str
    osc_hz: int
    clock_hz: int
    lanes: int
    weight_ram: str
    baud: int
    max_payload: int
    trace_depth: int
    uart: tuple[str, int]
    leds: tuple[tuple[str, int], ...]
    capacity: dict[str, int]
    programmer: tuple[str, ...]
    programmer_install: str
    bitstream_suffix: str
    synth_opts: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def pll(self, clock_hz: float | None = None) -> PLLConfig:
        """The PLL configuration that makes ``clock_hz`` (default :attr:`clock_hz`)."""
        from ._pll import pll_config

        return pll_config(self.family, self.osc_hz, clock_hz or self.clock_hz)

    def config(
        self,
        clock_hz: float | None = None,
        *,
        lanes: int | None = None,
        baud: int | None = None,
        weight_ram: str | None = None,
        max_payload: int | None = None,
        trace_depth: int | None = None,
    ) -> BoardConfig:
        """Resolve the defaults: the PLL, the UART divisor at the PLL's clock, the link buffers.

        Raises :class:`TargetError` when the clock cannot be made, or the baud rate is not
        reached within 1 % with at least 4 clocks per bit.
        """
        pll = self.pll(clock_hz)
        baud = int(baud or self.baud)
        if baud <= 0:
            raise TargetError(f"{self.name}: baud rate must be positive, got {baud}")
        divisor = round(pll.output_hz / baud)
        error = (pll.output_hz / divisor - baud) / baud if divisor else float("inf")
        if divisor < 4 or abs(error) > BAUD_TOLERANCE:
            raise TargetError(
                f"{self.name}: {baud} baud at {pll.output_hz / 1e6:g} MHz needs a divisor of "
                f"{pll.output_hz / baud:.3f} clocks per bit; the UART needs an integer >= 4 "
                f"within {BAUD_TOLERANCE:.0%} (choose another clock or baud rate)"
            )
        lanes = int(lanes or self.lanes)
        if lanes not in (1, 2, 4, 8):
            raise TargetError(f"{self.name}: lanes must be 1, 2, 4 or 8, got {lanes}")
        weight_ram = weight_ram or self.weight_ram
        if weight_ram not in WEIGHT_RAMS or (weight_ram == "spram" and self.family != "ice40"):
            raise TargetError(
                f"{self.name}: weight_ram must be one of "
                f"{', '.join(w for w in WEIGHT_RAMS if w == 'bram' or self.family == 'ice40')}"
                f", got {weight_ram!r}"
            )
        max_payload = int(max_payload or self.max_payload)
        if not MIN_PAYLOAD <= max_payload <= MAX_PAYLOAD:
            raise TargetError(
                f"{self.name}: max_payload must be in {MIN_PAYLOAD}..{MAX_PAYLOAD}, "
                f"got {max_payload}"
            )
        trace_depth = int(trace_depth or self.trace_depth)
        if trace_depth < 1:
            raise TargetError(f"{self.name}: trace_depth must be at least 1, got {trace_depth}")
        return BoardConfig(
            target=self,
            requested_hz=float(clock_hz or self.clock_hz),
            pll=pll,
            baud=baud,
            uart_divisor=divisor,
            baud_error=error,
            lanes=lanes,
            weight_ram=weight_ram,
            max_payload=max_payload,
            trace_depth=trace_depth,
        )

    def program_command(self, bitstream: str) -> list[str]:
        """The programmer's command line for ``bitstream``."""
        return [arg.format(bitstream=bitstream) for arg in self.programmer]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "platform": f"{self.platform.__module__}.{self.platform.__qualname__}",
            "family": self.family,
            "device": self.device,
            "oscillator_hz": self.osc_hz,
            "clock_hz": self.clock_hz,
            "lanes": self.lanes,
            "weight_ram": self.weight_ram,
            "baud": self.baud,
            "max_payload": self.max_payload,
            "trace_depth": self.trace_depth,
        }


@dataclass(frozen=True)
class BoardConfig:
    """A target with every default resolved: what a board top is built for.

    ``clock_hz`` is the frequency the PLL achieves, in whole Hz (``requested_hz`` is what was
    asked, ``pll.output_hz`` the exact value), and
    ``uart_divisor`` the UART's clocks per bit at that frequency (``baud_error`` its relative
    error).
    """

    target: Target
    requested_hz: float
    pll: PLLConfig
    baud: int
    uart_divisor: int
    baud_error: float
    lanes: int
    weight_ram: str
    max_payload: int
    trace_depth: int

    @property
    def clock_hz(self) -> int:
        """The PLL's frequency in whole Hz (the exact value is ``pll.output_hz``)."""
        return round(self.pll.output_hz)

    def as_dict(self) -> dict[str, Any]:
        return {
            "board": self.target.name,
            "requested_hz": self.requested_hz,
            "clock_hz": self.clock_hz,
            "pll": self.pll.as_dict(),
            "baud": self.baud,
            "uart_divisor": self.uart_divisor,
            "baud_error": round(self.baud_error, 6),
            "lanes": self.lanes,
            "weight_ram": self.weight_ram,
            "max_payload": self.max_payload,
            "trace_depth": self.trace_depth,
        }
