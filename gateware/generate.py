"""Write the neuron core of a model as Verilog, with its port description beside it."""

from __future__ import annotations

import bisect
import json
import os
import re
from dataclasses import asdict
from pathlib import Path

from amaranth.back import verilog

from unlayered.sim import Model

from .core import NeuronCore

__all__ = ["external_memory_init", "generate_verilog", "icarus_time0_fix"]


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


_IDENT = r"\\\S+ |[A-Za-z_][\w$]*"  # a plain or an escaped identifier (with its space)
# A memory declaration followed by yosys's initial block of one assignment per word.
_MEMORY = re.compile(
    rf"^(?P<decl>(?P<indent> *)reg (?:\[(?P<msb>\d+):0\] )?(?P<name>{_IDENT}) "
    r"\[(?P<top>\d+):0\];\n)"
    r"(?P=indent)initial begin\n(?P<body>(?:(?P=indent)  .*\n)*)(?P=indent)end\n",
    re.MULTILINE,
)
_WORD = re.compile(
    rf"^ *(?P<name>{_IDENT})\[(?P<addr>\d+)\] = "
    r"(?P<neg>-?)(?P<width>\d+)'s?(?P<base>[bdh])(?P<digits>[0-9a-fA-F]+);$"
)
_MODULE = re.compile(r"^module \\?([^\s(]+)", re.MULTILINE)
_BASES = {"b": 2, "d": 10, "h": 16}


def _memory_words(match: re.Match) -> list[int] | None:
    """The words of one initial block, or ``None`` if it is not one full, defined image."""
    width = int(match["msb"] or 0) + 1
    lines = match["body"].splitlines()
    if len(lines) != int(match["top"]) + 1:
        return None
    words = []
    for addr, line in enumerate(lines):
        w = _WORD.match(line)
        if not w or w["name"] != match["name"] or int(w["addr"]) != addr:
            return None
        if int(w["width"]) != width:
            return None
        value = int(w["digits"], _BASES[w["base"]])
        words.append((-value if w["neg"] else value) & ((1 << width) - 1))
    return words


def external_memory_init(text: str, out_dir: Path, subdir: str) -> str:
    """Move the memory initializations of yosys's Verilog into ``$readmemh`` files.

    yosys writes a memory's initial contents as one ``mem[i] = value;`` per word, and its own
    Verilog frontend reads that back very slowly (a 256-256-128-10 network's 100k words had not
    been read after 7 minutes); a ``$readmemh`` is read in a fraction of a second. Every memory
    of the text gets a file ``subdir/<module>.<memory>.hex`` under ``out_dir`` (one hex word
    per line), named in the Verilog relative to the Verilog's directory: yosys looks there, and
    simulators must run in that directory. An initial block of another form (undefined bits,
    partial words) stays as it is. Returns the new text.
    """
    modules = [(m.start(), m[1]) for m in _MODULE.finditer(text)]
    starts = [pos for pos, _ in modules]
    top = modules[0][1]
    (out_dir / subdir).mkdir(exist_ok=True)
    for old in (out_dir / subdir).glob("*.hex"):
        old.unlink()

    def replace(match: re.Match) -> str:
        words = _memory_words(match)
        if words is None:
            return match[0]
        module = modules[bisect.bisect_right(starts, match.start()) - 1][1]
        parts = (module.removeprefix(top).lstrip("."), match["name"].strip().lstrip("\\"))
        stem = re.sub(r"[^\w.-]", "_", ".".join(p for p in parts if p))
        rel = f"{subdir}/{stem}.hex"
        digits = (int(match["msb"] or 0) + 4) // 4
        (out_dir / rel).write_text("".join(f"{w:0{digits}x}\n" for w in words))
        return (
            f"{match['decl']}{match['indent']}initial "
            f'$readmemh("{rel}", {match["name"]}, 0, {match["top"]});\n'
        )

    return _MEMORY.sub(replace, text)


def generate_verilog(
    model: Model,
    out_dir: str | os.PathLike,
    *,
    lanes: int = 1,
    name: str = "unlayered_core",
    icarus: bool = False,
    spikes: str = "all",
    weight_ram: str = "bram",
) -> dict[str, Path]:
    """Elaborate :class:`.NeuronCore` for ``model`` and write it to ``out_dir``.

    Writes ``{name}.v`` (the module ``name``; its ports are the signature's, flattened as
    ``events__valid``, ``events__payload``, ...), the memories' initial contents in
    ``{name}_init/*.hex`` (``$readmemh`` of the Verilog, relative to its directory:
    :func:`external_memory_init`), ``{name}.json`` (``component.metadata.as_json()``: port
    names, directions and widths) and ``{name}.layout.json`` (the memory layout,
    :class:`.layout.CoreLayout`, which the host needs to reload weights). With ``icarus``,
    :func:`icarus_time0_fix` is applied to the Verilog. ``spikes`` and ``weight_ram`` are
    :class:`.NeuronCore`'s options; the Verilog is elaborated without a platform, so
    ``weight_ram="spram"`` gives the simulation model of the SPRAMs (zeros at start-up).

    Returns
    -------
    dict
        Paths of the files written, keys ``verilog``, ``memories`` (the directory of the hex
        files), ``ports``, ``layout``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    core = NeuronCore(model, lanes, spikes=spikes, weight_ram=weight_ram)
    text = verilog.convert(core, name=name, emit_src=False)
    text = external_memory_init(text, out, f"{name}_init")
    if icarus:
        text = icarus_time0_fix(text)
    paths = {
        "verilog": out / f"{name}.v",
        "memories": out / f"{name}_init",
        "ports": out / f"{name}.json",
        "layout": out / f"{name}.layout.json",
    }
    paths["verilog"].write_text(text)
    paths["ports"].write_text(json.dumps(core.metadata.as_json(), indent=1) + "\n")
    paths["layout"].write_text(json.dumps(asdict(core.layout), indent=1) + "\n")
    return paths
