"""`unlayered train`, `export` and `evaluate` end to end, in subprocesses, on a small config."""

from __future__ import annotations

import json
import subprocess
import sys

import torch


def unlayered(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "unlayered.sw.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def test_train_export_evaluate(tmp_path):
    out = tmp_path / "run"
    run = unlayered(
        "train", "--dataset", "digits", "--scheduler", "momentum", "--group-size", "8",
        "--hidden", "32", "--epochs", "2", "--batch-size", "32", "--lr", "0.005", "--seed", "3",
        "--max-train-samples", "300", "--max-test-samples", "60", "--out", out, "--quiet",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "epoch   2" in run.stderr and "checkpoint" in run.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["hidden"] == [32] and config["seed"] == 3 and config["group_size"] == 8
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["config"] == config

    run = unlayered("export", out / "checkpoint.pt", "-o", out / "model.npz")
    assert run.returncode == 0, run.stderr
    assert "64 inputs -> 32 -> 10" in run.stdout and (out / "model.npz").is_file()

    run = unlayered(
        "evaluate", out / "model.npz", "--dataset", "digits", "--split", "test",
        "--scheduler", "fifo", "--group-size", "4", "--checkpoint", out / "checkpoint.pt",
        "--quiet",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for text in ("accuracy", "spikes per layer", "synaptic ops", "decision latency",
                 "fifo, F = 4", "float model"):  # fmt: skip
        assert text in run.stdout, run.stdout
    report = json.loads((out / "evaluate_test_fifo_F4.json").read_text())
    assert report["dataset"] == "digits" and report["scheduler"] == "fifo"
    assert report["samples"] == len(report["per_sample"]) > 0
    keys = {"spikes_to_decision", "synops_to_decision", "groups_to_decision", "decision_step"}
    assert keys <= set(report["mean"])

    run = unlayered("evaluate", out / "model.npz", "--json", "--quiet", "--max-samples", "20")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["samples"] == 20 and summary["scheduler"] == "momentum"


def test_errors_without_traceback(tmp_path):
    run = unlayered("export", tmp_path / "nothing.pt")
    assert run.returncode == 1 and run.stderr.startswith("error: ")
    assert "nothing.pt" in run.stderr and "Traceback" not in run.stderr
    run = unlayered("train", "--hidden", "0", "--out", tmp_path / "x")
    assert run.returncode == 1 and "'hidden'" in run.stderr and "Traceback" not in run.stderr
    run = unlayered("train", "--scheduler", "lifo")
    assert run.returncode == 2 and "usage:" in run.stderr
