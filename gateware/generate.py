"""Write the neuron core of a model as Verilog, with its port description beside it."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path

from amaranth.back import verilog

from unlayered.sim import Model

from .core import NeuronCore

__all__ = ["generate_verilog", "icarus_time0_fix"]


_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\S*)\s+= 0;$", re.MULTILINE)


def icarus_time0_fix(text: str) -> str:
    """Make the combinational ``always @*`` blocks of yosys's Verilog evaluate in Icarus.

    yosys gives every ``always @*`` block a dummy trigger register declared ``reg t = 0;`` so
    that the blocks run once at time 0. Icarus 11 applies declaration initializers before any
    process waits, so the blocks never run and outputs that depend only on registers that stay
    at their initial value (``idle`` after reset, for example) read ``X``. This adds
    ``initial #1 t = 1;``: an event one time unit in, before the first clock edge that matters.
    For simulation with Icarus only; synthesis flows take the Amaranth design directly.
    """
    return _TRIGGER.sub(r"\1reg \2 = 0;\n\1initial #1 \2 = 1;", text)


def generate_verilog(
    model: Model,
    out_dir: str | os.PathLike,
    *,
    lanes: int = 1,
    name: str = "unlayered_core",
    icarus: bool = False,
) -> dict[str, Path]:
    """Elaborate :class:`.NeuronCore` for ``model`` and write it to ``out_dir``.

    Writes ``{name}.v`` (the module ``name``; its ports are the signature's, flattened as
    ``events__valid``, ``events__payload``, ...), ``{name}.json`` (``component.metadata
    .as_json()``: port names, directions and widths) and ``{name}.layout.json`` (the memory
    layout, :class:`.layout.CoreLayout`, which the host needs to reload weights). With
    ``icarus``, :func:`icarus_time0_fix` is applied to the Verilog.

    Returns
    -------
    dict
        Paths of the files written, keys ``verilog``, ``ports``, ``layout``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    core = NeuronCore(model, lanes)
    text = verilog.convert(core, name=name, emit_src=False)
    if icarus:
        text = icarus_time0_fix(text)
    paths = {
        "verilog": out / f"{name}.v",
        "ports": out / f"{name}.json",
        "layout": out / f"{name}.layout.json",
    }
    paths["verilog"].write_text(text)
    paths["ports"].write_text(json.dumps(core.metadata.as_json(), indent=1) + "\n")
    paths["layout"].write_text(json.dumps(asdict(core.layout), indent=1) + "\n")
    return paths
