"""PLL parameters of the device families, computed as the vendor-neutral tools do.

- iCE40 (``SB_PLL40_*``, ``FEEDBACK_PATH="SIMPLE"``): as ``icepll`` (icestorm) does: ``f_pfd =
  f_in / (DIVR + 1)``, ``f_vco = f_pfd * (DIVF + 1)``, ``f_out = f_vco / 2**DIVQ``, with
  ``DIVR`` 0..15, ``DIVF`` 0..127, ``DIVQ`` 1..6, ``f_in`` and ``f_pfd`` in 10..133 MHz,
  ``f_vco`` in 533..1066 MHz, ``f_out`` in 16..275 MHz; ``FILTER_RANGE`` from ``f_pfd``. The
  first configuration with the smallest error wins (``icepll``'s search order). Unlike
  ``icepll``, the achieved ``f_out`` (not only the requested one) must be in range: 16 MHz from
  12 MHz gives 16.125 MHz here, 15.938 MHz there.
- ECP5 (``EHXPLLL``, feedback from ``CLKOP``): as ``ecppll`` (prjtrellis) does: ``f_pfd = f_in /
  CLKI_DIV``, ``f_out = f_pfd * CLKFB_DIV``, ``f_vco = f_out * CLKOP_DIV``, with ``CLKI_DIV``
  1..128, ``CLKFB_DIV`` 1..80, ``CLKOP_DIV`` 1..128, ``f_pfd`` in 3.125..400 MHz, ``f_vco`` in
  400..800 MHz, ``f_out`` in 10..400 MHz; among equal errors the VCO closest to 600 MHz wins;
  ``CLKOP_CPHASE = CLKOP_DIV // 2`` (the 180-degree shift ``ecppll`` applies, as Lattice's
  tools do). As for iCE40, the achieved ``f_out`` must be in range too.

Arithmetic is exact (fractions of integers in Hz), so the results do not depend on floating
point; the tests compare them with the ``yowasp-icepll`` and ``yowasp-ecppll`` tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ._base import TargetError

__all__ = [
    "ECP5_LIMITS",
    "ICE40_LIMITS",
    "PLL_TOLERANCE",
    "PLLConfig",
    "ecp5_pll",
    "ice40_pll",
    "pll_config",
]

MHZ = 1_000_000

# (min, max) in Hz
ICE40_LIMITS = {
    "in": (10 * MHZ, 133 * MHZ),
    "pfd": (10 * MHZ, 133 * MHZ),
    "vco": (533 * MHZ, 1066 * MHZ),
    "out": (16 * MHZ, 275 * MHZ),
}
ECP5_LIMITS = {
    "in": (8 * MHZ, 400 * MHZ),
    "pfd": (Fraction(3125, 1000) * MHZ, 400 * MHZ),
    "vco": (400 * MHZ, 800 * MHZ),
    "out": (10 * MHZ, 400 * MHZ),
}


@dataclass(frozen=True)
class PLLConfig:
    """One PLL configuration: frequencies (Hz) and the primitive's parameters.

    ``params`` holds the integer parameters (iCE40: ``DIVR``, ``DIVF``, ``DIVQ``,
    ``FILTER_RANGE``; ECP5: ``CLKI_DIV``, ``CLKFB_DIV``, ``CLKOP_DIV``, ``CLKOP_CPHASE``).
    """

    family: str
    primitive: str
    input_hz: float
    requested_hz: float
    output_hz: float
    pfd_hz: float
    vco_hz: float
    params: dict[str, int] = field(default_factory=dict)

    @property
    def error_ppm(self) -> float:
        """Achieved minus requested frequency, in parts per million of the requested one."""
        return (self.output_hz - self.requested_hz) / self.requested_hz * 1e6

    def as_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "primitive": self.primitive,
            "input_hz": self.input_hz,
            "requested_hz": self.requested_hz,
            "output_hz": self.output_hz,
            "error_ppm": round(self.error_ppm, 1),
            "pfd_hz": self.pfd_hz,
            "vco_hz": self.vco_hz,
            "params": dict(self.params),
        }


def _in(value, limits) -> bool:
    lo, hi = limits
    return lo <= value <= hi


def _check_range(family: str, what: str, hz, limits) -> None:
    if not _in(hz, limits):
        lo, hi = limits
        raise TargetError(
            f"{family} PLL: {what} frequency {float(hz) / MHZ:g} MHz is outside "
            f"{float(lo) / MHZ:g}..{float(hi) / MHZ:g} MHz"
        )


def ice40_filter_range(pfd_hz) -> int:
    """``FILTER_RANGE`` for a phase detector frequency, as ``icepll`` chooses it."""
    for bound, value in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
        if pfd_hz < bound * MHZ:
            return value
    return 6


def ice40_pll(input_hz: float, output_hz: float) -> PLLConfig:
    """iCE40 ``SB_PLL40_*`` parameters (``SIMPLE`` feedback) closest to ``output_hz``."""
    fin = Fraction(input_hz)
    want = Fraction(output_hz)
    _check_range("iCE40", "input", fin, ICE40_LIMITS["in"])
    _check_range("iCE40", "output", want, ICE40_LIMITS["out"])
    best = None
    for divr in range(16):
        pfd = fin / (divr + 1)
        if not _in(pfd, ICE40_LIMITS["pfd"]):
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not _in(vco, ICE40_LIMITS["vco"]):
                continue
            for divq in range(1, 7):
                out = vco / 2**divq
                if not _in(out, ICE40_LIMITS["out"]):
                    continue  # icepll only checks the requested frequency
                if best is None or abs(out - want) < abs(best[0] - want):
                    best = (out, divr, divf, divq, pfd, vco)
    if best is None:  # cannot happen for an input in range; kept for other limits
        raise TargetError(f"iCE40 PLL: no configuration for {float(want) / MHZ:g} MHz")
    out, divr, divf, divq, pfd, vco = best
    return PLLConfig(
        family="ice40",
        primitive="SB_PLL40_PAD",
        input_hz=float(fin),
        requested_hz=float(want),
        output_hz=float(out),
        pfd_hz=float(pfd),
        vco_hz=float(vco),
        params={"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": ice40_filter_range(pfd)},
    )


def ecp5_pll(input_hz: float, output_hz: float) -> PLLConfig:
    """ECP5 ``EHXPLLL`` parameters (feedback from ``CLKOP``) closest to ``output_hz``."""
    fin = Fraction(input_hz)
    want = Fraction(output_hz)
    _check_range("ECP5", "input", fin, ECP5_LIMITS["in"])
    _check_range("ECP5", "output", want, ECP5_LIMITS["out"])
    vco_lo, vco_hi = ECP5_LIMITS["vco"]
    best = None
    for clki in range(1, 129):
        pfd = fin / clki
        if not _in(pfd, ECP5_LIMITS["pfd"]):
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            # f_vco = out * clkop must lie in the VCO range
            lo = max(1, -(-vco_lo // out))
            hi = min(128, vco_hi // out)
            if not _in(out, ECP5_LIMITS["out"]):
                continue  # ecppll only checks the requested frequency
            for clkop in range(int(lo), int(hi) + 1):
                vco = out * clkop
                err = abs(out - want)
                if (
                    best is None
                    or err < best[0]
                    or (err == best[0] and abs(vco - 600 * MHZ) < abs(best[5] - 600 * MHZ))
                ):
                    best = (err, out, clki, clkfb, clkop, vco, pfd)
    if best is None:
        raise TargetError(f"ECP5 PLL: no configuration for {float(want) / MHZ:g} MHz")
    _, out, clki, clkfb, clkop, vco, pfd = best
    return PLLConfig(
        family="ecp5",
        primitive="EHXPLLL",
        input_hz=float(fin),
        requested_hz=float(want),
        output_hz=float(out),
        pfd_hz=float(pfd),
        vco_hz=float(vco),
        params={
            "CLKI_DIV": clki,
            "CLKFB_DIV": clkfb,
            "CLKOP_DIV": clkop,
            "CLKOP_CPHASE": clkop // 2,
        },
    )


_FAMILIES = {"ice40": ice40_pll, "ecp5": ecp5_pll}


# The largest relative error between the requested and the achieved frequency pll_config accepts.
PLL_TOLERANCE = 0.02


def pll_config(
    family: str, input_hz: float, output_hz: float, *, tolerance: float = PLL_TOLERANCE
) -> PLLConfig:
    """The PLL configuration of ``family`` (``"ice40"`` or ``"ecp5"``) closest to
    ``output_hz``; :class:`TargetError` when it misses by more than ``tolerance`` (relative)."""
    try:
        compute = _FAMILIES[family]
    except KeyError:
        raise TargetError(
            f"no PLL calculator for device family {family!r} (known: {', '.join(_FAMILIES)})"
        ) from None
    pll = compute(input_hz, output_hz)
    if abs(pll.error_ppm) > tolerance * 1e6:
        raise TargetError(
            f"{family} PLL: {output_hz / MHZ:g} MHz cannot be made from {input_hz / MHZ:g} MHz "
            f"within {tolerance:.0%}; the closest is {pll.output_hz / MHZ:.4g} MHz"
        )
    return pll
