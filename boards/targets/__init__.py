"""Development boards the neuron core is built for, one module per board.

Every public module of this package (a name without a leading underscore) defines ``TARGET``, a
:class:`Target`; it is registered under ``TARGET.name`` when the package is imported. Adding a
board is adding one such file (see ``docs/boards.md``); :func:`register` adds one at run time.

:class:`BoardDesign` puts a board top (ports ``rx``, ``tx``, ``leds``) on a board: clock from
the PLL, reset until lock, UART and LEDs. :class:`EchoTop` is a bring-up top with those ports.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._base import BoardConfig, Target, TargetError
from ._design import RESET_DELAY_S, BoardDesign
from ._echo import EchoTop
from ._pll import PLLConfig, ecp5_pll, ice40_pll, pll_config

__all__ = [
    "RESET_DELAY_S",
    "TARGETS",
    "BoardConfig",
    "BoardDesign",
    "EchoTop",
    "PLLConfig",
    "Target",
    "TargetError",
    "ecp5_pll",
    "get_target",
    "ice40_pll",
    "pll_config",
    "register",
]

TARGETS: dict[str, Target] = {}


def register(target: Target) -> Target:
    """Add ``target`` to :data:`TARGETS` (a name already there is refused)."""
    if not isinstance(target, Target):
        raise TargetError(f"not a Target: {target!r}")
    if target.name in TARGETS and TARGETS[target.name] is not target:
        raise TargetError(f"a board named {target.name!r} is already registered")
    TARGETS[target.name] = target
    return target


def get_target(name: str | Target) -> Target:
    """The target named ``name`` (a :class:`Target` is returned as it is)."""
    if isinstance(name, Target):
        return name
    try:
        return TARGETS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(TARGETS)) or "none"
        raise TargetError(f"unknown board {name!r}; known boards: {known}") from None


def _discover() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        target = getattr(module, "TARGET", None)
        if not isinstance(target, Target):
            raise TargetError(f"board module {module.__name__} defines no TARGET = Target(...)")
        register(target)


_discover()
