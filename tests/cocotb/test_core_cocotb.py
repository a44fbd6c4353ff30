"""cocotb on the generated Verilog of the neuron core, against the reference simulator.

Every scheduler x F in {1, 4, 0} x lanes in {1, 4}: a random network per parametrization (its
shape and parameters are elaborated into the Verilog), then many cases per simulator start, each
with new random weights (loaded through the weight port) and random samples, under random input
stalls and output backpressure (:func:`unlayered.gateware.verify.verify_cases`). Icarus runs the
whole matrix; Verilator six of its points, every scheduler, F and lane count at least once (the
whole matrix under ``-m slow``: a Verilator build takes about 10 s), and is skipped when its PyPI
build is missing. The negative test
corrupts one spike and expects the checker to report it.

Seeds: ``UNLAYERED_COCOTB_SEED`` fixes the master seed (default random); each test prints its
seeds and puts them in its failure message and in ``report.json``.
"""

from __future__ import annotations

import os
import random
import shutil
import zlib
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("cocotb")
pytest.importorskip("amaranth")

from unlayered.gateware.verify import simulator_available, verify_cases
from unlayered.sim import EventSamples, LayerSpec, Model, SchedulerSpec, simulate

MASTER_SEED = int(os.environ.get("UNLAYERED_COCOTB_SEED", random.randrange(1 << 30)))
SCHEDULERS = ("sync", "fifo", "random", "momentum")
MATRIX = [(s, f, lanes) for s in SCHEDULERS for f in (1, 4, 0) for lanes in (1, 4)]
# Every scheduler, F and lane count at least once; every (F, lanes) pair once.
VERILATOR_DEFAULT = [
    ("sync", 1, 1),
    ("fifo", 1, 4),
    ("momentum", 4, 1),
    ("random", 4, 4),
    ("fifo", 0, 1),
    ("momentum", 0, 4),
]
CASES_PER_START = 9  # x 24 = 216 random cases on Icarus in the default suite
SLOW_CASES_PER_START = 210  # x 24 = 5040


def config_seed(*parts) -> int:
    """A seed per parametrization, derived from the master seed (stable across processes)."""
    return zlib.crc32(repr((MASTER_SEED, *parts)).encode())


def random_model(rnd: np.random.Generator, scheduler: str, group_size: int) -> Model:
    """A random network and parameter set; inputs and weights biased to fire a lot."""
    n_inputs = int(rnd.integers(1, 9))
    sizes = [int(rnd.integers(1, 10)) for _ in range(int(rnd.integers(1, 4)))]
    wb = int(rnd.integers(3, 9))
    mb = min(32, int(rnd.choice([wb, wb + 1, wb + 3, 16])))
    shift = int(rnd.choice([0, 2, 4, 8]))
    vmax = (1 << (mb - 1)) - 1
    wmax = (1 << (wb - 1)) - 1
    layers, fan_in = [], [n_inputs, *sizes[:-1]]
    for size in sizes:
        layers.append(
            LayerSpec(
                size=size,
                threshold=int(rnd.integers(0, min(vmax - 1, 2 * wmax) + 1)),
                leak=int(rnd.choice([1 << shift, int(rnd.integers(0, (1 << shift) + 1))])),
                reset=str(rnd.choice(["zero", "subtract"])),
            )
        )
    model = Model(
        n_inputs=n_inputs,
        layers=tuple(layers),
        weights=tuple(np.zeros((s, f), dtype=np.int64) for s, f in zip(sizes, fan_in, strict=True)),
        weight_bits=wb,
        membrane_bits=mb,
        leak_shift=shift,
        scheduler=SchedulerSpec(
            name=scheduler,
            group_size=group_size,
            prioritized_input=bool(rnd.integers(0, 2)),
            seed=int(rnd.integers(0, 1 << 32)),
            momentum_buckets=int(rnd.choice([1, 2, 4, 8])),
            momentum_shift=int(rnd.integers(0, 4)),
            max_groups_per_step=int(rnd.choice([0, 0, 0, 1, 2, 5])),
        ),
        decision=str(rnd.choice(["argmax_spike_count", "first_to_threshold"])),
    )
    return new_weights(rnd, model)


def new_weights(rnd: np.random.Generator, model: Model) -> Model:
    """``model`` with new random weights and scheduler seed (same Verilog)."""
    wb = model.weight_bits
    wmin, wmax = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
    lo = int(rnd.choice([0, wmin // 4, wmin]))
    weights = tuple(rnd.integers(lo, wmax, size=w.shape, endpoint=True) for w in model.weights)
    spec = replace(model.scheduler, seed=int(rnd.integers(0, 1 << 32)))
    model = replace(model, weights=weights, scheduler=spec)
    model.validate()
    return model


def random_events(rnd: np.random.Generator, n_inputs: int, n_samples: int) -> EventSamples:
    """Samples of 1-4 steps; each step a random subset of channels in random order."""
    samples = [
        [
            rnd.permutation(n_inputs)[: int(rnd.integers(0, n_inputs + 1))].tolist()
            for _ in range(int(rnd.integers(1, 5)))
        ]
        for _ in range(n_samples)
    ]
    ids = rnd.choice(1 << 20, size=n_samples, replace=False)
    return EventSamples.from_lists(samples, sample_ids=ids)


def run_config(tmp_path, simulator, scheduler, group_size, lanes, n_cases, **kw) -> dict:
    """Random network for this point of the matrix, ``n_cases`` weight sets, one start."""
    if not simulator_available(simulator):
        pytest.skip(f"{simulator} is not installed")
    seed = config_seed(simulator, scheduler, group_size, lanes, n_cases)
    rnd = np.random.default_rng(seed)
    base = random_model(rnd, scheduler, group_size)
    cases = [(base, random_events(rnd, base.n_inputs, 3))]
    for _ in range(n_cases - 1):
        cases.append((new_weights(rnd, base), random_events(rnd, base.n_inputs, 3)))
    tb_seed = seed & 0x7FFFFFFF
    print(f"master seed {MASTER_SEED}, case seed {seed}, tb_seed {tb_seed}")
    out = tmp_path / f"{simulator}_{scheduler}_F{group_size}_L{lanes}"
    report = verify_cases(
        cases,
        out_dir=out,
        simulator=simulator,
        lanes=lanes,
        tb_seed=tb_seed,
        stall_probability=float(rnd.choice([0.0, 0.3, 0.6])),
        backpressure_probability=float(rnd.choice([0.0, 0.3, 0.6])),
        **kw,
    )
    report["seeds"] = f"UNLAYERED_COCOTB_SEED={MASTER_SEED} (case seed {seed})"
    print(f"{report['samples']} samples, {report['cycles_total']} cycles, {report['timings']}")
    return report


def require_slow(request) -> None:
    """Run only when slow tests were asked for (``-m slow``): the default suite stays short."""
    if "slow" not in (request.config.getoption("-m") or "") or "not slow" in (
        request.config.getoption("-m") or ""
    ):
        pytest.skip("slow: run with -m slow")


def assert_passed(report: dict) -> None:
    assert report["error"] is None, (report["seeds"], report["error"])
    assert report["samples"] == report["expected_samples"], report["seeds"]
    assert not report["mismatches"], (report["seeds"], report["mismatches"][:3])
    assert report["passed"]


@pytest.mark.parametrize(("scheduler", "group_size", "lanes"), MATRIX)
def test_icarus(tmp_path, scheduler, group_size, lanes):
    report = run_config(tmp_path, "icarus", scheduler, group_size, lanes, CASES_PER_START)
    assert_passed(report)
    assert report["cases_count"] == CASES_PER_START


# The core's options: every scheduler, lanes 1-4 (one SPRAM per lane at most).
OPTIONS = [("sync", 0, 1), ("fifo", 1, 4), ("random", 4, 2), ("momentum", 4, 3)]


@pytest.mark.parametrize(("scheduler", "group_size", "lanes"), OPTIONS)
def test_icarus_output_spikes_weights_in_spram(tmp_path, scheduler, group_size, lanes):
    """``spikes="outputs"`` (trace compared with the reference's output-layer spikes) and
    ``weight_ram="spram"`` (its simulation model starts at zero; the bench loads each case)."""
    report = run_config(
        tmp_path, "icarus", scheduler, group_size, lanes, 5, spikes="outputs", weight_ram="spram"
    )
    assert_passed(report)
    assert (report["spikes"], report["weight_ram"]) == ("outputs", "spram")


@pytest.mark.parametrize(("scheduler", "group_size", "lanes"), VERILATOR_DEFAULT)
def test_verilator(tmp_path, scheduler, group_size, lanes):
    assert_passed(run_config(tmp_path, "verilator", scheduler, group_size, lanes, 10))


@pytest.mark.slow
@pytest.mark.parametrize(("scheduler", "group_size", "lanes"), MATRIX)
def test_icarus_many(request, tmp_path, scheduler, group_size, lanes):
    """5040 random cases in all (210 per simulator start)."""
    require_slow(request)
    report = run_config(tmp_path, "icarus", scheduler, group_size, lanes, SLOW_CASES_PER_START)
    assert_passed(report)


@pytest.mark.slow
@pytest.mark.parametrize(("scheduler", "group_size", "lanes"), MATRIX)
def test_verilator_matrix(request, tmp_path, scheduler, group_size, lanes):
    require_slow(request)
    assert_passed(run_config(tmp_path, "verilator", scheduler, group_size, lanes, 20))


def test_checker_catches_corruption(tmp_path):
    """One corrupted spike must be reported as that sample's first differing event."""
    if shutil.which("iverilog") is None:
        pytest.skip("iverilog is not installed")
    rnd = np.random.default_rng(7)
    base = random_model(rnd, "fifo", 1)
    cases = []
    while not cases:  # a case whose reference fires at least once
        model = new_weights(rnd, base)
        events = random_events(rnd, base.n_inputs, 3)
        if any(len(r.trace) for r in simulate(model, events).samples):
            cases.append((model, events))
    report = verify_cases(cases, out_dir=tmp_path, tb_seed=1, corrupt=True)
    assert report["error"] is None
    assert not report["passed"]
    assert len(report["mismatches"]) == 1
    diff = report["mismatches"][0]["trace"]
    assert diff["index"] == 0
    assert diff["got"][2] == diff["expected"][2] ^ 1
