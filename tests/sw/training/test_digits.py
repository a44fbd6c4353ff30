"""The acceptance check on digits: the deployed integer model (reference simulator) is within
one accuracy point of the float model it came from, under the same scheduler."""

from __future__ import annotations

import pytest

from unlayered.sw.config import TrainConfig
from unlayered.sw.evaluate import evaluate
from unlayered.sw.export import export
from unlayered.sw.train import train


@pytest.mark.parametrize("qat", [True], ids=["qat"])
def test_digits_deployed_within_one_point_of_float(tmp_path, qat):
    config = TrainConfig(
        dataset="digits", hidden=(64,), epochs=8, batch_size=64, lr=5e-3, scheduler="momentum",
        group_size=8, qat=qat, out=str(tmp_path / "run"), device="cpu", seed=0,
    )  # fmt: skip
    result = train(config, log=None, progress=False)
    exported = export(result.checkpoint, tmp_path / "model.npz")
    report = evaluate(exported.path, "digits", checkpoint=result.checkpoint)
    assert report["float_accuracy"] >= 0.9, report["float_accuracy"]
    assert abs(report["accuracy"] - report["float_accuracy"]) <= 0.01 + 1e-9, (
        report["accuracy"],
        report["float_accuracy"],
    )
