"""Synaptic operations per second of the reference simulator's compiled engine, on one core.

Two dense networks with realistic activity (hidden and output layers firing in about 10% of
their neurons per step, inputs active with probability ``--input-rate`` per step), every
scheduler, group sizes 1, 16 and unbounded. Each configuration is timed through
``unlayered.sim.simulate``, so the per-sample Python overhead (dispatch, ``finish_sample``)
counts; numba compilation is excluded by a warm-up run; the median of ``--repeats`` runs is
reported. The readable engine is timed on a few samples for comparison, and checked to give
the same results. Writes a JSON report (machine, command line, every number) to ``--out``.

Run from the repository root::

    .venv/bin/python benchmarks/sim_throughput.py
"""

from __future__ import annotations

import os

# One core: numba, and any BLAS numpy may load, single-threaded (set before they are imported).
for _name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
from machine import describe  # noqa: E402  (benchmarks/machine.py)

from unlayered.sim import EventSamples, LayerSpec, Model, SimulationResult, simulate  # noqa: E402
from unlayered.sim.kernel import CompiledEngine  # noqa: E402
from unlayered.sim.model import SCHEDULERS  # noqa: E402

NETWORKS = {"A": (64, (64, 10)), "B": (512, (128, 10))}
GROUP_SIZES = (1, 16, 0)
TARGET_RATE = 0.10  # fraction of a layer's neurons firing per step, what thresholds aim at


def machine() -> dict:
    """What the numbers were measured on."""
    return describe(
        numpy=np.__version__,
        numba=numba.__version__,
        numba_num_threads=str(numba.config.NUMBA_NUM_THREADS),
    )


def make_events(n_inputs: int, n_samples: int, steps: int, rate: float, seed: int) -> EventSamples:
    """Each channel active with probability ``rate`` per step, in a random arrival order."""
    rng = np.random.default_rng(seed)
    samples = [
        [rng.permutation(np.flatnonzero(rng.random(n_inputs) < rate)) for _ in range(steps)]
        for _ in range(n_samples)
    ]
    return EventSamples.from_lists(samples, sample_ids=np.arange(n_samples))


def firing_rates(model: Model, events: EventSamples) -> np.ndarray:
    """Per layer, the fraction of neurons firing per step (sync, unbounded groups)."""
    result = simulate(model.with_scheduler(name="sync", group_size=0), events)
    spikes = np.sum([r.spikes for r in result.samples], axis=0)
    steps = sum(r.steps for r in result.samples)
    return spikes / (steps * np.array(model.sizes))


def make_model(n_inputs: int, sizes: tuple[int, ...], events: EventSamples, seed: int) -> Model:
    """Random dense int8 weights; each layer's threshold tuned for ``TARGET_RATE`` firing."""
    rng = np.random.default_rng(seed)
    weights, fan_in = [], n_inputs
    for size in sizes:
        w = rng.normal(12, 40, size=(size, fan_in)).round()
        weights.append(np.clip(w, -128, 127).astype(np.int64))
        fan_in = size

    def build(thresholds: list[int]) -> Model:
        pairs = zip(sizes, thresholds, strict=True)
        layers = (LayerSpec(size=s, threshold=t, leak=230) for s, t in pairs)
        return Model(n_inputs=n_inputs, layers=tuple(layers), weights=tuple(weights))

    thresholds = [0] * len(sizes)
    for i in range(len(sizes)):  # bisect each threshold in turn, the input side first
        lo, hi = 0, build(thresholds).vmax - 1
        while lo < hi:
            thresholds[i] = (lo + hi) // 2
            if firing_rates(build(thresholds), events)[i] > TARGET_RATE:
                lo = thresholds[i] + 1
            else:
                hi = thresholds[i]
        thresholds[i] = lo
    model = build(thresholds)
    model.validate()
    return model


def time_run(model: Model, events: EventSamples, engine: str) -> tuple[float, SimulationResult]:
    """Seconds for ``simulate`` on every sample, and its result."""
    start = time.perf_counter()
    result = simulate(model, events, engine=engine)
    return time.perf_counter() - start, result


def time_kernel(model: Model, events: EventSamples) -> float:
    """Seconds for the compiled kernel alone (no ``finish_sample``, no ``simulate`` loop)."""
    engine = CompiledEngine(model)
    start = time.perf_counter()
    for s in range(len(events)):
        engine.record(events, s, state=1, record_membranes=False)
    return time.perf_counter() - start


def measure(model: Model, events: EventSamples, readable: EventSamples, repeats: int) -> dict:
    """Median compiled throughput over ``repeats`` runs, activity, readable throughput."""
    simulate(model, events.select([0]))  # warm-up: compile, or load the cache
    seconds, kernel_seconds, result = [], [], None
    for _ in range(repeats):
        elapsed, result = time_run(model, events, "compiled")
        seconds.append(elapsed)
        kernel_seconds.append(time_kernel(model, events))
    synops = sum(r.synops for r in result.samples)
    n = len(events)
    r_seconds, r_result = time_run(model, readable, "readable")
    check = simulate(model, readable)
    for a, b in zip(check.samples, r_result.samples, strict=True):
        if not (np.array_equal(a.trace, b.trace) and np.array_equal(a.group_log, b.group_log)):
            raise SystemExit(f"engines disagree on sample {a.sample_id}")
    r_synops = sum(r.synops for r in r_result.samples)
    median = statistics.median(seconds)
    return {
        "samples": n,
        "input_events_per_sample": sum(r.input_events for r in result.samples) / n,
        "spikes_per_sample": (np.sum([r.spikes for r in result.samples], axis=0) / n).tolist(),
        "synops_per_sample": synops / n,
        "groups_per_sample": sum(r.groups for r in result.samples) / n,
        "seconds": seconds,
        "us_per_sample": median / n * 1e6,
        "msops": synops / median / 1e6,
        "msops_min": synops / max(seconds) / 1e6,
        "msops_max": synops / min(seconds) / 1e6,
        "kernel_us_per_sample": statistics.median(kernel_seconds) / n * 1e6,
        "kernel_msops": synops / statistics.median(kernel_seconds) / 1e6,
        "readable_samples": len(readable),
        "readable_msops": r_synops / r_seconds / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per configuration")
    parser.add_argument("--samples", type=int, default=100, help="samples per timed run")
    parser.add_argument("--steps", type=int, default=30, help="time steps per sample")
    parser.add_argument("--input-rate", type=float, default=0.08, help="P(channel active)")
    parser.add_argument("--readable-samples", type=int, default=2, help="for the readable engine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/sim.json"))
    args = parser.parse_args(argv)

    info = machine()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # pin to one core
    info["pinned_to"] = sorted(os.sched_getaffinity(0))
    print(
        f"cpu: {info['cpu']}, cpus {info['affinity']}, pinned to {info['pinned_to']}, "
        f"numba {info['numba']}"
    )
    rows = []
    for name, (n_inputs, sizes) in NETWORKS.items():
        events = make_events(n_inputs, args.samples, args.steps, args.input_rate, args.seed)
        model = make_model(n_inputs, sizes, events.select(range(min(10, len(events)))), args.seed)
        readable = events.select(range(args.readable_samples))
        thresholds = [layer.threshold for layer in model.layers]
        print(f"\nnetwork {name}: {n_inputs} inputs, layers {sizes}, thresholds {thresholds}")
        print(
            f"{'scheduler':>9} {'F':>3} {'inputs':>7} {'spikes/layer':>14} {'synops':>8} "
            f"{'groups':>7} {'us/sample':>10} {'MSOP/s':>7} {'(min-max)':>13} {'kernel':>7} "
            f"{'readable':>9}"
        )
        for scheduler in SCHEDULERS:
            for group_size in GROUP_SIZES:
                config = model.with_scheduler(name=scheduler, group_size=group_size)
                m = measure(config, events, readable, args.repeats)
                spikes = "/".join(f"{x:.0f}" for x in m["spikes_per_sample"])
                print(
                    f"{scheduler:>9} {group_size:>3} {m['input_events_per_sample']:>7.0f} "
                    f"{spikes:>14} {m['synops_per_sample']:>8.0f} {m['groups_per_sample']:>7.0f} "
                    f"{m['us_per_sample']:>10.0f} {m['msops']:>7.1f} "
                    f"{m['msops_min']:>6.1f}-{m['msops_max']:<6.1f} {m['kernel_msops']:>7.0f} "
                    f"{m['readable_msops']:>9.2f}"
                )
                rows.append(
                    {
                        "network": name,
                        "n_inputs": n_inputs,
                        "layers": list(sizes),
                        "thresholds": thresholds,
                        "scheduler": scheduler,
                        "group_size": group_size,
                        **m,
                    }
                )
    report = {
        "command": shlex.join([os.path.relpath(sys.executable), *sys.argv]),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": info,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
