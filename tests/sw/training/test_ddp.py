"""Data-parallel training: two gloo processes under torchrun end with identical weights."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent

WORKER = """
import os, sys
import torch
sys.path.insert(0, {here!r})
from tiny_data import tiny_dataset
from unlayered.sw.config import TrainConfig
from unlayered.sw.train import train

torch.set_num_threads(1)
config = TrainConfig(
    dataset="tiny", hidden=(12,), epochs=2, batch_size=16, lr=1e-2, scheduler="random",
    group_size=2, out={out!r}, device="cpu", val_fraction=0.25,
)
result = train(config, dataset=tiny_dataset(n_train=64, n_test=16), log=None, progress=False)
torch.save(result.state_dict, os.path.join({out!r}, "rank%s.pt" % os.environ["RANK"]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(here=str(HERE), out=str(out)))
    run = subprocess.run(
        [
            *(sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"),
            *("--master-port", str(free_port()), str(script)),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    a = torch.load(out / "rank0.pt", weights_only=True)
    b = torch.load(out / "rank1.pt", weights_only=True)
    init = torch.load(out / "checkpoint.pt", weights_only=True)  # written by rank 0 only
    for key in a:
        assert torch.equal(a[key], b[key]), key
        assert torch.equal(a[key], init["state_dict"][key])
    assert len(init["history"]) == 2
