"""Cycles of the neuron core (gateware) per synaptic operation, in Amaranth's simulator.

The core runs without input stalls, output backpressure or membrane read-out (``debug`` low) on
realistic traces: network A of ``benchmarks/sim_throughput.py`` (64 inputs, layers 64-10, dense
random int8 weights, thresholds bisected so that each layer fires in about 10% of its neurons per
step, inputs active with probability ``--input-rate`` per step), for every scheduler, group size
F in {1, 4, 0} and lane count L in {1, 2, 4, 8}; the example network ``examples/model.npz`` (built
by hand, not trained) with its own scheduler on ``examples/events.npz``; and real traces of two
trained digits models, on the first ``--digits-samples`` samples of the test split, under each
scheduler as the demo compares them (``DEMO_RUNS``: the same weights): **digits**, the model
``unlayered demo`` trains (``DEMO_TRAIN``: 64 inputs, layers 64-10, about 20 s here), and
**digits-16**, the same settings with 16 hidden neurons for 5 epochs (the trained model of
``tests/cocotb/test_trained_model.py``). Training is deterministic here. Every run is
checked against the reference simulator (trace and counters). ``cycles`` is the core's own
``summary.cycles`` (from ``START`` to the summary record), summed over the samples.

Reported per configuration: cycles, synaptic operations, synaptic operations per cycle per lane
(1.0 is the delivery pipeline's peak), and cycles per sample. Writes a JSON report (machine,
command line, every number) to ``--out`` and a Markdown table to ``--md``.

Run from the repository root::

    .venv/bin/python benchmarks/core_cycles.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import amaranth
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from machine import describe  # noqa: E402  (benchmarks/machine.py)
from sim_throughput import make_events, make_model  # noqa: E402

from tests.gateware.harness import compare, run_core  # noqa: E402
from unlayered.sim import EventSamples, Model, load_events, load_model  # noqa: E402
from unlayered.sim.model import SCHEDULERS  # noqa: E402

GROUP_SIZES = (1, 4, 0)
BASELINE = "## Baseline"  # a section of the Markdown report kept across runs
LANES = (1, 2, 4, 8)
# The trained digits models: a title, and changes to the demo's training settings (``DEMO_TRAIN``).
DIGITS_MODELS = {
    "digits": ("the model `unlayered demo` trains", {}),
    "digits-16": (
        "the demo's settings with 16 hidden neurons, 5 epochs",
        {"hidden": (16,), "epochs": 5},
    ),
}


def machine() -> dict:
    return describe(amaranth=amaranth.__version__)


def run_one(job: tuple[str, Model, EventSamples, int]) -> dict:
    """Run the core on every sample of ``events``; check it; count cycles and synops."""
    network, model, events, lanes = job
    start = time.perf_counter()
    hw = run_core(model, events, lanes=lanes, debug=False)
    wall = time.perf_counter() - start
    errors = compare(model, events, hw, membranes=False)
    cycles = sum(h.summary["cycles"] for h in hw)
    synops = sum(h.summary["synops"] for h in hw)
    return {
        **row_ceiling(model, hw, lanes, synops),
        "network": network,
        "scheduler": model.scheduler.name,
        "group_size": model.scheduler.group_size,
        "lanes": lanes,
        "samples": len(events),
        "cycles": cycles,
        "synops": synops,
        "spikes": sum(h.summary["spikes"] for h in hw),
        "groups": sum(h.summary["groups"] for h in hw),
        "input_events": sum(h.summary["input_events"] for h in hw),
        "synops_per_cycle_per_lane": synops / cycles / lanes,
        "cycles_per_sample": cycles / len(events),
        "simulator_seconds": wall,
        "equal_to_reference": not errors,
        "errors": errors[:3],
    }


def trained_digits(changes: dict, samples: int) -> tuple[Model, EventSamples, dict]:
    """A digits model trained and exported as ``unlayered demo`` does, with ``changes`` to its
    settings (``DEMO_TRAIN``), and the first ``samples`` samples of the test split; with a digest
    of the model (its manifest without the metadata, which names the checkpoint's path, and its
    weights)."""
    from unlayered.sw.config import TrainConfig
    from unlayered.sw.demo import DEMO_TRAIN
    from unlayered.sw.export import export
    from unlayered.sw.train import load_dataset, train

    settings = {**DEMO_TRAIN, **changes}
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(**settings, out=str(Path(tmp) / "train"))
        dataset = load_dataset(config)
        result = train(config, dataset=dataset, log=None, progress=False)
        model = export(result.checkpoint, Path(tmp) / "model.npz", dataset=dataset).model
    manifest = {k: v for k, v in model.manifest().items() if k != "metadata"}
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode())
    for w in model.weights:
        digest.update(np.ascontiguousarray(w).tobytes())
    info = {
        "train": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        "model_sha256": digest.hexdigest(),
        "test_samples": len(dataset.test),
    }
    return model, dataset.test.select(range(min(samples, len(dataset.test)))), info


def row_ceiling(model: Model, hw: list, lanes: int, synops: int) -> dict:
    """The delivery's ceiling on these traces: every row into a layer of n neurons takes
    ceil(n / L) cycles, whatever else the core does (a row per input event and per spike of a
    layer with a next layer). None when the rows do not add up to the synops counted (drops)."""
    sizes = [layer.size for layer in model.layers]
    starts = np.cumsum([0, *sizes])
    rows = [sum(h.summary["input_events"] for h in hw)] + [0] * (len(sizes) - 1)
    for h in hw:
        for _, _, neuron in h.trace:
            layer = int(np.searchsorted(starts, neuron, side="right")) - 1
            if layer + 1 < len(sizes):
                rows[layer + 1] += 1
    if sum(r * n for r, n in zip(rows, sizes, strict=True)) != synops:
        return {"row_cycles": None, "ceiling_per_lane": None}
    row_cycles = sum(r * -(-n // lanes) for r, n in zip(rows, sizes, strict=True))
    return {"row_cycles": row_cycles, "ceiling_per_lane": synops / row_cycles / lanes}


def markdown(rows: list[dict], networks: dict, command: str, info: dict) -> str:
    """A table per network: synops/cycle/lane and cycles per sample, per scheduler, F and L."""
    lines = [
        "# Neuron core cycles",
        "",
        "Sustained synaptic operations per cycle per lane of the gateware core",
        "(`gateware/core.py`) in Amaranth's simulator: no input stalls, no output backpressure,",
        "no membrane read-out.",
        "1.00 is the delivery pipeline's peak (one synaptic operation per lane per cycle); every",
        "run is checked against the reference simulator (trace and counters).",
        "",
        "Reproduce (from the repository root):",
        "",
        "```",
        command,
        "```",
        "",
        f"Machine: {info['cpu']}, {info['cpus_online']} CPUs, {info['platform']}, "
        f"Python {info['python']}, Amaranth {info['amaranth']}.",
        "",
    ]
    for name, desc in networks.items():
        sel = [r for r in rows if r["network"] == name]
        if not sel:
            continue
        lanes = sorted({r["lanes"] for r in sel})
        lines += [f"## {name}: {desc}", ""]
        head = "| scheduler | F | synops/sample | " + " | ".join(f"L = {n}" for n in lanes)
        lines += [head + " |", "|---|---|---|" + "---|" * len(lanes)]
        keys = sorted({(r["scheduler"], r["group_size"]) for r in sel}, key=_order)
        for sched, f in keys:
            cells = []
            synops = None
            for n in lanes:
                r = next(
                    (
                        r
                        for r in sel
                        if (r["scheduler"], r["group_size"], r["lanes"]) == (sched, f, n)
                    ),
                    None,
                )
                if r is None:
                    cells.append("")
                    continue
                synops = r["synops"] / r["samples"]
                ok = "" if r["equal_to_reference"] else " (MISMATCH)"
                ceiling = r.get("ceiling_per_lane")
                bound = f" / {ceiling:.2f}" if ceiling is not None else ""
                cells.append(
                    f"{r['synops_per_cycle_per_lane']:.2f}{bound} "
                    f"({r['cycles_per_sample']:.0f}){ok}"
                )
            lines.append(f"| {sched} | {f} | {synops:.0f} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Cells: synaptic operations per cycle per lane / the rows' ceiling (cycles per",
            "sample). The ceiling counts only the row cycles: a row into a layer of n neurons",
            "takes ceil(n / L) cycles, so short rows leave lanes idle whatever the control does.",
            "",
        ]
    return "\n".join(lines)


def _order(key):
    sched, f = key
    return (SCHEDULERS.index(sched), f == 0, f)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--samples", type=int, default=2, help="samples run on the core")
    parser.add_argument("--steps", type=int, default=20, help="time steps per sample")
    parser.add_argument("--input-rate", type=float, default=0.08, help="P(channel active)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lanes", type=int, nargs="+", default=list(LANES))
    parser.add_argument("--schedulers", nargs="+", default=list(SCHEDULERS))
    parser.add_argument("--group-sizes", type=int, nargs="+", default=list(GROUP_SIZES))
    parser.add_argument("--example-samples", type=int, default=2, help="0: skip the example")
    parser.add_argument(
        "--digits-samples", type=int, default=10, help="0: skip the trained digits models"
    )
    parser.add_argument("--jobs", type=int, default=1, help="simulator processes")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/core_cycles.json"))
    parser.add_argument("--md", type=Path, default=Path("docs/benchmarks/core_cycles.md"))
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be 1 or more")
    for option in ("example_samples", "digits_samples"):  # 0 skips
        if getattr(args, option) < 0:
            parser.error(f"--{option.replace('_', '-')} must be 0 or more")

    info = machine()
    n_inputs, sizes = 64, (64, 10)
    tune = make_events(n_inputs, 10, 30, args.input_rate, args.seed)
    model = make_model(n_inputs, sizes, tune, args.seed)
    events = make_events(n_inputs, args.samples, args.steps, args.input_rate, args.seed + 1)
    thresholds = [layer.threshold for layer in model.layers]
    networks = {
        "A": f"{n_inputs} inputs, layers {'-'.join(map(str, sizes))}, thresholds {thresholds}, "
        f"{args.steps} steps x {args.samples} samples, input rate {args.input_rate}",
    }
    jobs = []
    for sched in args.schedulers:
        for f in args.group_sizes:
            for lanes in args.lanes:
                jobs.append(("A", model.with_scheduler(name=sched, group_size=f), events, lanes))
    if args.example_samples:
        ex_model = load_model(ROOT / "examples/model.npz")
        ex_events = load_events(ROOT / "examples/events.npz")
        ex_events = ex_events.select(range(min(args.example_samples, len(ex_events))))
        s = ex_model.scheduler
        networks["example"] = (
            f"`examples/model.npz` ({ex_model.n_inputs} inputs, layers "
            f"{'-'.join(map(str, ex_model.sizes))}, {s.name}, F = {s.group_size}) on the first "
            f"{len(ex_events)} samples of `examples/events.npz`"
        )
        for lanes in args.lanes:
            jobs.append(("example", ex_model, ex_events, lanes))

    digits = {}
    if args.digits_samples:
        from unlayered.sw.demo import DEMO_RUNS

        for network, (title, changes) in DIGITS_MODELS.items():
            dg_model, dg_events, digits[network] = trained_digits(changes, args.digits_samples)
            networks[network] = (
                f"{title} ({dg_model.n_inputs} inputs, layers "
                f"{'-'.join(map(str, dg_model.sizes))}, model sha256 "
                f"{digits[network]['model_sha256'][:16]}) on the first {len(dg_events)} "
                "samples of the digits test split, each scheduler as the demo runs it"
            )
            for name, sched_changes in DEMO_RUNS:
                for lanes in args.lanes:
                    model = dg_model.with_scheduler(name=name, **sched_changes)
                    jobs.append((network, model, dg_events, lanes))

    print(
        f"{'net':>7} {'scheduler':>9} {'F':>2} {'L':>2} {'cycles':>8} {'synops':>8} "
        f"{'sop/cyc/lane':>12} {'ceiling':>7} {'cyc/sample':>10} {'ok':>3} {'sim s':>6}"
    )
    rows = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for r in pool.map(run_one, jobs):
            rows.append(r)
            print(
                f"{r['network']:>7} {r['scheduler']:>9} {r['group_size']:>2} {r['lanes']:>2} "
                f"{r['cycles']:>8} {r['synops']:>8} {r['synops_per_cycle_per_lane']:>12.2f} "
                f"{r['ceiling_per_lane'] or float('nan'):>7.2f} {r['cycles_per_sample']:>10.0f} "
                f"{'yes' if r['equal_to_reference'] else 'NO':>3} "
                f"{r['simulator_seconds']:>6.1f}",
                flush=True,
            )
    command = shlex.join([os.path.relpath(sys.executable), *sys.argv])
    report = {
        "command": command,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": info,
        "networks": networks,
        "digits": digits,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(rows, networks, command, info)
    if args.md.exists():  # keep the measured baseline (the core before fused evaluation)
        old = args.md.read_text()
        if BASELINE in old:
            text += "\n" + old[old.index(BASELINE) :]
    args.md.write_text(text)
    print(f"\nwrote {args.out} and {args.md}")
    return 0 if all(r["equal_to_reference"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
