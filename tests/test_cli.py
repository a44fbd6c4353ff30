"""The command-line interface, run as a user runs it: in a subprocess."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from unlayered.sim import load_events, load_model, simulate
from unlayered.sw import cli

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "model.npz"
EVENTS = ROOT / "examples" / "events.npz"
HAS_KERNEL = importlib.util.find_spec("unlayered.sim.kernel") is not None


def unlayered(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``unlayered ARGS`` with this interpreter (the console script calls the same main)."""
    return subprocess.run(
        [sys.executable, "-m", "unlayered.sw.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def corrupt_threshold(path: Path) -> Path:
    """A copy of the example artifact whose first layer's threshold is negative."""
    with np.load(MODEL, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    manifest = json.loads(arrays["manifest"].tobytes().decode("utf-8"))
    manifest["layers"][0]["threshold"] = -5
    arrays["manifest"] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


# ---------------------------------------------------------------------------------------------
# simulate


def test_simulate_prints_a_summary_and_writes_the_report(tmp_path):
    report_path = tmp_path / "sub" / "report.json"
    run = unlayered(
        "simulate", MODEL, "--events", EVENTS, "--engine", "readable", "--report", report_path
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    for text in (
        "64 inputs -> 32 -> 10",
        "momentum, F = 4",
        "argmax_spike_count",
        "engine      readable",
        "samples     20 (20 labelled)",
        "accuracy",
        "spikes per layer",
        "synaptic ops",
        "groups",
        "decision latency",
        str(report_path),
    ):
        assert text in out, out
    report = json.loads(report_path.read_text())
    expected = simulate(load_model(MODEL), load_events(EVENTS), engine="readable").report()
    assert report == expected  # complete: everything the simulator reports, traces included
    assert len(report["per_sample"]) == 20
    assert all("trace" in s and "spikes" in s for s in report["per_sample"])
    assert f"{100 * report['accuracy']:.1f} %" in out


@pytest.mark.skipif(not HAS_KERNEL, reason="the compiled engine (sim/kernel.py) is not there yet")
def test_simulate_default_engine_is_compiled(tmp_path):
    report_path = tmp_path / "report.json"
    run = unlayered("simulate", MODEL, "--events", EVENTS, "--report", report_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(report_path.read_text())
    assert report["engine"] == "compiled"
    readable = simulate(load_model(MODEL), load_events(EVENTS), engine="readable").report()
    assert report["per_sample"] == readable["per_sample"]


def test_simulate_seed_and_membranes(tmp_path):
    report_path = tmp_path / "report.json"
    run = unlayered(
        "simulate", MODEL, "--events", EVENTS, "--engine", "readable",
        "--seed", "0x1234", "--membranes", "--report", report_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(report_path.read_text())
    assert report["seed"] == 0x1234
    model = load_model(MODEL)
    for sample in report["per_sample"]:
        membranes = np.array(sample["membranes"])
        assert membranes.shape == (sample["steps"], model.n_neurons)


def test_simulate_does_not_import_torch():
    code = (
        "import sys\n"
        "from unlayered.sw.cli import main\n"
        f"rc = main(['simulate', {str(MODEL)!r}, '--events', {str(EVENTS)!r},"
        " '--engine', 'readable'])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_engines_match_the_simulator():
    from unlayered.sim.simulate import ENGINES

    assert cli.ENGINES == ENGINES


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "unlayered"
    if not script.exists():
        pytest.skip(f"no console script at {script} (not installed in this environment)")
    run = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    assert run.returncode == 0
    assert "simulate" in run.stdout and "demo" in run.stdout


# ---------------------------------------------------------------------------------------------
# Errors: `error: <message>`, no traceback, exit status 1; usage errors exit 2


def _assert_error(run: subprocess.CompletedProcess, *texts: str) -> None:
    assert run.returncode == 1, (run.stdout, run.stderr)
    last = run.stderr.strip().splitlines()[-1]  # the demo prints progress lines before it
    assert last.startswith("error: "), run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    for text in texts:
        assert text in last, run.stderr


def test_malformed_artifact(tmp_path):
    bad = corrupt_threshold(tmp_path / "bad.npz")
    run = unlayered("simulate", bad, "--events", EVENTS, "--engine", "readable")
    _assert_error(run, str(bad), "'layers[0].threshold'", "-5")


def test_missing_artifact(tmp_path):
    run = unlayered("simulate", tmp_path / "nothing.npz", "--events", EVENTS)
    _assert_error(run, "nothing.npz", "no such file")


def test_garbage_events_file(tmp_path):
    bad = tmp_path / "events.npz"
    bad.write_bytes(b"garbage")
    run = unlayered("simulate", MODEL, "--events", bad, "--engine", "readable")
    _assert_error(run, str(bad))


def test_channel_beyond_the_model_inputs(tmp_path):
    from unlayered.sim import EventSamples, save_events

    path = save_events(EventSamples.from_lists([[[1, 2]], [[], [64]]]), tmp_path / "e.npz")
    run = unlayered("simulate", MODEL, "--events", path, "--engine", "readable")
    _assert_error(run, str(path), "sample 1", "step 1", "channel 64")


def test_unwritable_report(tmp_path):
    (tmp_path / "file").write_text("")
    run = unlayered(
        "simulate", MODEL, "--events", EVENTS, "--engine", "readable",
        "--report", tmp_path / "file" / "report.json",
    )  # fmt: skip
    _assert_error(run, "report.json")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param([], id="no-command"),
        pytest.param(["frobnicate"], id="unknown-command"),
        pytest.param(["simulate", MODEL, "--events", EVENTS, "--frob"], id="unknown-option"),
        pytest.param(["simulate", MODEL], id="missing-events"),
        pytest.param(["simulate", MODEL, "--events", EVENTS, "--engine", "fast"], id="engine"),
        pytest.param(["simulate", MODEL, "--events", EVENTS, "--seed", "x"], id="seed-text"),
        pytest.param(["simulate", MODEL, "--events", EVENTS, "--seed", "-1"], id="seed-range"),
        pytest.param(["simulate", MODEL, "--events", EVENTS, "--membranes"], id="membranes"),
        pytest.param(["demo", "--engine", "fast"], id="demo-engine"),
    ],
)
def test_usage_errors_exit_2(args):
    run = unlayered(*args)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "usage:" in run.stderr
    assert "Traceback" not in run.stderr


# ---------------------------------------------------------------------------------------------
# demo


def test_demo(tmp_path):
    out = tmp_path / "demo"
    run = unlayered("demo", "--no-train", "--out", out, "--engine", "readable")
    assert run.returncode == 0, run.stderr
    for name in ("sync", "fifo", "random", "momentum"):
        assert name in run.stdout
    config = json.loads((out / "config.json").read_text())
    assert [r["name"] for r in config["runs"]] == ["sync", "fifo", "random", "momentum"]
    assert config["runs"][0]["scheduler"]["group_size"] == 0  # sync: layer by layer
    assert config["demo"]["engine"] == "readable"
    timings = json.loads((out / "timings.json").read_text())
    stages = [s["name"] for s in timings["stages"]]
    assert stages == [
        "config", "load", "simulate:sync", "simulate:fifo", "simulate:random",
        "simulate:momentum", "compare", "generate", "verify", "summary",
    ]  # fmt: skip
    assert all(s["status"] == "ok" and s["seconds"] >= 0 for s in timings["stages"])
    for name in ("sync", "fifo", "random", "momentum"):
        report = json.loads((out / "reports" / f"simulate_{name}.json").read_text())
        assert report["scheduler"] == name and report["samples"] == 20
    summary = json.loads((out / "summary.json").read_text())
    assert [r["run"] for r in summary["runs"]] == ["sync", "fifo", "random", "momentum"]
    assert (out / "summary.txt").read_text().strip() in run.stdout
    assert (out / "demo.log").is_file()


def test_demo_default_output_directory(tmp_path):
    run = unlayered("demo", "--quick", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "demo" / "summary.json").is_file()


def test_demo_failure_is_recorded(tmp_path):
    out = tmp_path / "demo"
    bad = corrupt_threshold(tmp_path / "bad.npz")
    run = unlayered("demo", "--out", out, "--model", bad, "--engine", "readable")
    _assert_error(run, "'layers[0].threshold'")
    timings = json.loads((out / "timings.json").read_text())
    assert timings["stages"][-1]["name"] == "load"
    assert timings["stages"][-1]["status"] == "failed"
    assert "threshold" in timings["stages"][-1]["error"]


def test_run_demo_is_importable(tmp_path):
    from unlayered.sw.demo import run_demo

    lines = []
    result = run_demo(tmp_path, engine="readable", train=False, hardware=False, log=lines.append)
    assert set(result.reports) == {"sync", "fifo", "random", "momentum"}
    assert [r["group_size"] for r in result.rows] == [0, 4, 4, 4]
    assert "[compare]" in lines
    assert all(s.status == "ok" for s in result.stages)


# ---------------------------------------------------------------------------------------------
# demo with training (sw/train.py, sw/export.py, sw/evaluate.py)

TRAINED_STAGES = [
    "config", "data", "train", "export", "evaluate", "load", "simulate:sync", "simulate:fifo",
    "simulate:random", "simulate:momentum", "compare", "generate", "verify", "summary",
]  # fmt: skip


def test_demo_quick_trains_exports_and_evaluates(tmp_path):
    out = tmp_path / "demo"
    run = unlayered("demo", "--quick", "--out", out)
    assert run.returncode == 0, run.stderr
    timings = json.loads((out / "timings.json").read_text())
    assert [s["name"] for s in timings["stages"]] == TRAINED_STAGES
    assert all(s["status"] == "ok" for s in timings["stages"])
    for name in ("train/checkpoint.pt", "train/config.json", "model.npz", "events.npz",
                 "reports/evaluate.json", "summary.json", "summary.txt", "demo.log"):  # fmt: skip
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["dataset"] == "digits" and config["demo"]["quick"] is True
    summary = json.loads((out / "summary.json").read_text())
    assert [r["run"] for r in summary["runs"]] == ["sync", "fifo", "random", "momentum"]
    assert summary["evaluation"]["float_accuracy"] is not None
    # The generated Verilog ran under cocotb and matched the reference simulator.
    assert summary["verification"]["samples"] == 3
    assert summary["verification"]["mismatches"] == 0
    assert (out / "hardware" / "unlayered_core.v").is_file()
    assert json.loads((out / "verify" / "report.json").read_text())["passed"] is True
    assert "deployed integer" in run.stdout
    model = load_model(out / "model.npz")
    assert model.input_encoding["dataset"] == "digits"


def test_demo_no_train_compares_the_example(tmp_path):
    out = tmp_path / "demo"
    run = unlayered("demo", "--no-train", "--out", out, "--engine", "readable")
    assert run.returncode == 0, run.stderr
    timings = json.loads((out / "timings.json").read_text())
    assert [s["name"] for s in timings["stages"]][:2] == ["config", "load"]


# ---------------------------------------------------------------------------------------------
# generate, verify (unlayered.gateware.verify)


def test_generate_writes_the_core_and_its_description(tmp_path):
    run = unlayered("generate", MODEL, "-o", tmp_path / "hw", "--lanes", "2")
    assert run.returncode == 0, run.stderr
    for name in ("unlayered_core.v", "unlayered_core.json", "config.json", "fit.json"):
        assert (tmp_path / "hw" / name).is_file(), name
    assert json.loads((tmp_path / "hw" / "config.json").read_text())["lanes"] == 2
    assert "fits" in run.stdout


def test_verify_runs_the_verilog_against_the_reference(tmp_path):
    out = tmp_path / "verify"
    run = unlayered("verify", MODEL, "--events", EVENTS, "--samples", "2", "-o", out)
    assert run.returncode == 0, run.stderr
    assert "mismatches  0" in run.stdout and "passed" in run.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["passed"] and report["samples"] == 2


def test_verify_refuses_an_unknown_simulator(tmp_path):
    run = unlayered("verify", MODEL, "--events", EVENTS, "--simulator", "modelsim")
    assert run.returncode == 2 and "modelsim" in run.stderr
