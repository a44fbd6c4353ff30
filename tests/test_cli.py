"""The command-line interface, run as a user runs it: in a subprocess."""

from __future__ import annotations

import hashlib
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
        pytest.param(["build", MODEL, "-o", "out"], id="build-no-board"),
        pytest.param(["build", MODEL, "--board", "ulx3s"], id="build-no-out"),
        pytest.param(["build", MODEL, "--board", "ulx3s", "-o", "x", "--lanes", "3"], id="lanes"),
        pytest.param(["program"], id="program-no-dir"),
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
    from unlayered.boards.targets import get_target

    out = tmp_path / "demo"
    run = unlayered(
        "demo", "--no-train", "--out", out, "--engine", "readable",
        "--no-bitstream", "--board-samples", "1",
    )  # fmt: skip
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
        "simulate:momentum", "compare", "generate", "verify", "board", "summary",
    ]  # fmt: skip
    assert all(s["status"] == "ok" and s["seconds"] >= 0 for s in timings["stages"])
    for name in ("sync", "fifo", "random", "momentum"):
        report = json.loads((out / "reports" / f"simulate_{name}.json").read_text())
        assert report["scheduler"] == name and report["samples"] == 20
    summary = json.loads((out / "summary.json").read_text())
    assert [r["run"] for r in summary["runs"]] == ["sync", "fifo", "random", "momentum"]
    assert (out / "summary.txt").read_text().strip() in run.stdout
    assert (out / "demo.log").is_file()
    # the board top in simulation, over the host link: the same results as the reference
    board = summary["board"]
    assert (board["board"], board["samples"], board["mismatches"]) == ("icebreaker", 1, 0)
    assert board["lanes"] == get_target("icebreaker").lanes and board["weight_ram"] == "bram"
    report = json.loads((out / "reports" / "board.json").read_text())
    assert report["samples"] == report["agree"] == 1 and report["trace_compared"] is True
    assert report["weights"]["frames"] == 0  # weights in block RAM, not loaded
    assert "simulated icebreaker board top" in run.stdout
    assert summary["bitstream"] is None and not (out / "bitstream").exists()


def test_demo_default_output_directory(tmp_path):
    run = unlayered("demo", "--quick", "--board-samples", "0", cwd=tmp_path)
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


def test_demo_bitstream_stage(tmp_path, monkeypatch):
    """The bitstream stage builds the board top for the iCEBreaker with the board's defaults
    and puts the build into the summary (a stand-in build: the real one takes minutes and is
    ``tests/boards/test_build.py``'s); a failed build fails the demo and is recorded."""
    from unlayered.boards import build
    from unlayered.boards.targets import get_target
    from unlayered.boards.top import LinkTop
    from unlayered.sw.demo import run_demo

    calls = []

    def fake_build(top, target, out_dir, **options):
        config = get_target(target).config()
        made = top(config)
        for part in (made, made.core, made.link):  # never elaborated here: no warning
            part._MustUse__silence = True
        calls.append((made, target, Path(out_dir), options))
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "top.bin").write_bytes(b"\0" * 100)
        res = {"used": 1, "available": 2}
        return {
            "board": target, "device": "iCE40UP5K", "bitstream": {"path": "top.bin", "bytes": 100},
            "config": config.as_dict(), "clock": {"pll_hz": config.clock_hz},
            "fmax_min_mhz": 30.5, "seconds": {"total": 12.0},
            "resources": {k: res for k in ("logic", "ff", "bram", "spram", "dsp", "io", "pll")},
        }  # fmt: skip

    monkeypatch.setattr(build, "build_bitstream", fake_build)
    result = run_demo(tmp_path / "ok", train=False, board_samples=0)
    made, target, out_dir, options = calls[0]
    assert isinstance(made, LinkTop) and target == "icebreaker"
    ice = get_target("icebreaker")
    assert made.core.layout.lanes == ice.lanes and made.clock_hz == ice.clock_hz
    assert made.divisor == ice.clock_hz // ice.baud
    assert out_dir == tmp_path / "ok" / "bitstream" / "icebreaker" and options["model"] is not None
    stages = [s.name for s in result.stages]
    assert stages[-4:] == ["generate", "verify", "bitstream", "summary"]
    summary = json.loads((tmp_path / "ok" / "summary.json").read_text())
    assert summary["bitstream"]["fmax_mhz"] == 30.5
    assert summary["bitstream"]["bitstream"] == str(out_dir / "top.bin")
    assert "icebreaker bitstream" in result.table and "Fmax 30.5 MHz" in result.table

    # the iCEBreaker refuses the design: reported, and the fallback board is built
    def refusing_icebreaker(top, target, out_dir, **options):
        if target == "icebreaker":
            raise build.BuildError("the design does not fit iCE40UP5K", stage="place_and_route")
        return fake_build(top, target, out_dir, **options)

    monkeypatch.setattr(build, "build_bitstream", refusing_icebreaker)
    result = run_demo(tmp_path / "fallback", train=False, board_samples=0)
    summary = json.loads((tmp_path / "fallback" / "summary.json").read_text())
    assert summary["bitstream"]["board"] == "ulx3s"
    assert summary["bitstream"]["refused"] == [
        {"board": "icebreaker", "stage": "place_and_route",
         "reason": "the design does not fit iCE40UP5K"}
    ]  # fmt: skip
    assert "icebreaker: the design does not fit iCE40UP5K" in result.table

    def failing_build(top, target, out_dir, **options):
        raise build.BuildError(f"the design does not fit {target}", stage="place_and_route")

    monkeypatch.setattr(build, "build_bitstream", failing_build)
    with pytest.raises(build.BuildError, match="no board fits"):
        run_demo(tmp_path / "bad", train=False, board_samples=0)
    timings = json.loads((tmp_path / "bad" / "timings.json").read_text())
    assert timings["stages"][-1]["name"] == "bitstream"
    assert timings["stages"][-1]["status"] == "failed"


# ---------------------------------------------------------------------------------------------
# demo with training (sw/train.py, sw/export.py, sw/evaluate.py)

# --quick skips the bitstream; the board stage runs in test_demo
TRAINED_STAGES = [
    "config", "data", "train", "export", "evaluate", "load", "simulate:sync", "simulate:fifo",
    "simulate:random", "simulate:momentum", "compare", "generate", "verify", "summary",
]  # fmt: skip


def test_demo_quick_trains_exports_and_evaluates(tmp_path):
    out = tmp_path / "demo"
    run = unlayered("demo", "--quick", "--out", out, "--board-samples", "0")
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
    run = unlayered(
        "demo", "--no-train", "--out", out, "--engine", "readable",
        "--no-bitstream", "--board-samples", "0",
    )  # fmt: skip
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


# ---------------------------------------------------------------------------------------------
# build, program, run (unlayered.boards)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            ["--board", "icebreaker", "--clock-mhz", "400"],
            "iCE40 PLL: output frequency 400 MHz is outside 16..275 MHz",
            id="clock",
        ),
        pytest.param(
            ["--board", "ulx3s", "--max-payload", "10"],
            "ulx3s: max_payload must be in 64..1024, got 10",
            id="max-payload",
        ),
        pytest.param(
            ["--board", "arty"], "unknown board 'arty'; known boards: icebreaker, ulx3s", id="board"
        ),
    ],
)
def test_build_refuses_an_impossible_option_before_synthesis(options, message, tmp_path):
    out = tmp_path / "build"
    run = unlayered("build", MODEL, "-o", out, *options)
    _assert_error(run, message)
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed" and report["stage"] == "config"
    assert not (out / "build").exists()  # no tool ran
    assert not (out / "top.bin").exists() and not (out / "top.bit").exists()


@pytest.mark.bitstream
def test_build_writes_a_bitstream_and_prints_the_summary(tmp_path):
    """The real board top of the example model on the ULX3S, 1 lane (about half a minute)."""
    out = tmp_path / "ulx3s"
    run = unlayered("build", MODEL, "--board", "ulx3s", "-o", out, "--lanes", "1")
    assert run.returncode == 0, run.stderr
    assert "building" in run.stderr and "1 lane(s)" in run.stderr
    lines = run.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "fit", "bitstream", "design", "resources", "clock", "seconds", "report",
    ]  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "ok" and report["config"]["lanes"] == 1
    assert lines[1].startswith(f"bitstream   {out / 'top.bit'} (")
    assert "LUT4 " in lines[3] and "DSP " in lines[3]
    assert f"Fmax {report['fmax_min_mhz']:.1f} MHz (met)" in lines[4]
    assert lines[4].startswith("clock       50 MHz requested;")
    assert lines[-1] == f"report      {out / 'report.json'}"
    run = unlayered("program", out, "--dry-run")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["would", "run", "openFPGALoader", "-b", "ulx3s",
                                  str((out / "top.bit").resolve())]  # fmt: skip


def _fake_build(path: Path, board: str, name: str) -> Path:
    """A build directory as `unlayered build` leaves it (report and bitstream only)."""
    path.mkdir(parents=True, exist_ok=True)
    content = b"\xff\x00" * 64
    (path / name).write_bytes(content)
    bitstream = {"path": name, "bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    (path / "report.json").write_text(
        json.dumps({"status": "ok", "board": board, "bitstream": bitstream})
    )
    return path / name


@pytest.mark.parametrize(
    ("board", "name", "command"),
    [
        ("icebreaker", "top.bin", ["iceprog"]),
        ("ulx3s", "top.bit", ["openFPGALoader", "-b", "ulx3s"]),
    ],
)
def test_program_dry_run_prints_the_command(board, name, command, tmp_path):
    bitstream = _fake_build(tmp_path / "build", board, name)
    run = unlayered("program", tmp_path / "build", "--dry-run")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["would", "run", *command, str(bitstream.resolve())]
    run = unlayered("program", tmp_path / "build", "--dry-run", "--tool", "/opt/bin/prog")
    assert run.stdout.split()[2:] == ["/opt/bin/prog", *command[1:], str(bitstream.resolve())]


def test_program_errors(tmp_path):
    run = unlayered("program", tmp_path / "nothing", "--dry-run")
    _assert_error(run, "report.json not found: build first")
    _fake_build(tmp_path / "build", "icebreaker", "top.bin")
    run = unlayered("program", tmp_path / "build", "--tool", "/nonexistent/iceprog")
    _assert_error(run, "not on PATH; install it: apt-get", "fpga-icestorm")


def test_run_on_the_simulated_board(tmp_path):
    """One sample of the example on the ULX3S's board top in the Amaranth simulator."""
    report_path = tmp_path / "run.json"
    run = unlayered(
        "run", MODEL, "--sim", "--events", EVENTS, "--samples", "1", "--board", "ulx3s",
        "--lanes", "1", "--no-load-weights", "--no-trace", "--report", report_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "board       simulated ulx3s top (Amaranth simulator)"
    assert lines[1] == "samples     1, 1 identical to the reference"
    assert any(line.startswith("throughput  ") and "core" in line for line in lines)
    assert "link        " in run.stdout and "0 retransmissions" in run.stdout
    assert lines[-1] == f"report      {report_path}"
    report = json.loads(report_path.read_text())
    assert report["samples"] == report["agree"] == 1 and report["mismatches"] == []
    assert report["trace_compared"] is False and report["weights"]["frames"] == 0
    assert report["device"]["lanes"] == 1 and report["board"].startswith("simulated ulx3s")
    reference = simulate(load_model(MODEL), load_events(EVENTS).select([0]))
    label = load_events(EVENTS).labels[0]
    assert report["accuracy"] == float(reference.samples[0].decision == label)
