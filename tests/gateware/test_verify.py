"""generate() and verify() (gateware/verify.py): files written, a passing run, refused cases.

The cocotb matrix over schedulers, F and lanes is in ``tests/cocotb/``; this checks the API.
"""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("amaranth")
pytest.importorskip("cocotb")

from unlayered.gateware.verify import generate, hardware_key, verify, verify_cases
from unlayered.sim import EventSamples, LayerSpec, Model, SchedulerSpec, UnlayeredError, load_model


def small_model(scheduler="momentum", **kw) -> Model:
    # The worked example of semantics 5, with a third input and a bigger output layer.
    return Model(
        n_inputs=3,
        layers=(LayerSpec(2, 5, 256), LayerSpec(3, 5, 230, "subtract")),
        weights=(np.array([[4, 3, 2], [2, 4, 1]]), np.array([[3, 3], [6, 1], [-2, 7]])),
        membrane_bits=10,
        scheduler=SchedulerSpec(name=scheduler, group_size=2, **kw),
    )


def small_events() -> EventSamples:
    return EventSamples.from_lists(
        [[[0, 1], [2, 0, 1], []], [[1], [0, 2], [2, 1, 0], [0]]], sample_ids=[5, 9]
    )


def test_generate_writes_everything(tmp_path):
    model = small_model()
    paths = generate(model, tmp_path, lanes=2)
    assert set(paths) == {"verilog", "ports", "layout", "config", "fit", "artifact"}
    assert "module unlayered_core" in paths["verilog"].read_text()
    config = json.loads(paths["config"].read_text())
    assert config["lanes"] == 2 and config["model"]["scheduler"]["name"] == "momentum"
    assert json.loads(paths["fit"].read_text())["lanes"] == 2
    ports = json.loads(paths["ports"].read_text())["interface"]["members"]
    assert {"events", "weights", "spikes", "summary", "membranes"} <= set(ports)
    again = load_model(paths["artifact"])
    assert all(np.array_equal(a, b) for a, b in zip(again.weights, model.weights, strict=True))


def test_hardware_key_ignores_weights_and_seed():
    model = small_model()
    other = replace(model, weights=tuple(w + 1 for w in model.weights))
    assert hardware_key(other) == hardware_key(model.with_scheduler(seed=99))
    assert hardware_key(model.with_scheduler(group_size=3)) != hardware_key(model)


def test_verify_cases_refuses_other_hardware(tmp_path):
    model = small_model()
    with pytest.raises(UnlayeredError, match="case 1"):
        verify_cases(
            [(model, small_events()), (model.with_scheduler(group_size=1), small_events())],
            out_dir=tmp_path,
        )


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
def test_verify_icarus_passes(tmp_path):
    report = verify(small_model(), small_events(), out_dir=tmp_path, lanes=2, tb_seed=3)
    assert report["passed"], report["mismatches"]
    assert report["samples"] == 2 and len(report["cycles"]) == 2
    assert all(c > 0 for c in report["cycles"])
    assert report["synops_total"] > 0
    assert json.loads((tmp_path / "report.json").read_text())["passed"]
