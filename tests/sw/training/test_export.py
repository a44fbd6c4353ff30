"""Export: the artifact is the quantized network; the reference simulator and the torch integer
mode run it identically; a silent export is refused."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from unlayered.sim import UnlayeredError, load_model, simulate
from unlayered.sw.config import TrainConfig
from unlayered.sw.evaluate import evaluate, float_accuracy
from unlayered.sw.events_torch import from_events
from unlayered.sw.export import export
from unlayered.sw.quantize import fake_quant, integer_weights
from unlayered.sw.scheduled import ScheduledSNN
from unlayered.sw.train import load_checkpoint, train

from .tiny_data import tiny_dataset


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    data = tiny_dataset()
    config = TrainConfig(
        dataset="tiny", hidden=(12,), epochs=5, batch_size=16, lr=1e-2, scheduler="momentum",
        group_size=4, out=str(tmp / "run"), device="cpu", qat=True, val_fraction=0.25,
    )  # fmt: skip
    result = train(config, dataset=data, log=None, progress=False)
    exported = export(result.checkpoint, tmp / "model.npz", dataset=data)
    return result, exported, data, tmp


def test_artifact_holds_the_quantized_network(run):
    result, exported, _, _ = run
    model = load_model(exported.path)
    config = result.config
    scale = config.threshold / config.threshold_int
    assert model.quantization["scales"] == [scale, scale]
    assert [x.threshold for x in model.layers] == [config.threshold_int] * 2
    assert [x.leak for x in model.layers] == [round(0.9 * 256)] * 2
    for w_int, key in zip(model.weights, ("fc.0.weight", "fc.1.weight"), strict=True):
        w = result.state_dict[key]
        assert np.array_equal(w_int, integer_weights(w, scale, 8))
        assert torch.allclose(fake_quant(w, scale, 8), torch.as_tensor(w_int) * scale)
    assert model.scheduler.name == "momentum" and model.scheduler.group_size == 4
    assert model.scheduler.momentum_shift == config.momentum_shift
    assert model.input_encoding["kind"] == "synthetic"
    assert model.input_encoding["num_steps"] == 8
    assert all(x > 0 for x in exported.spikes_per_layer)


@pytest.mark.parametrize("scheduler", ["sync", "fifo", "random", "momentum"])
def test_reference_simulator_equals_torch_integer_mode(run, scheduler):
    _, exported, data, _ = run
    model = load_model(exported.path).with_scheduler(name=scheduler)
    events = data.test
    sim = simulate(model, events)
    net = ScheduledSNN.from_model(model)
    records = net.simulate(from_events(events, model.n_inputs))
    assert len(records) == len(sim.samples)
    for rec, ref in zip(records, sim.samples, strict=True):
        assert np.array_equal(rec.trace, ref.trace)
        assert np.array_equal(rec.output_counts, ref.output_counts)


def test_deployed_accuracy_close_to_float(run):
    result, exported, data, _ = run
    report = evaluate(exported.path, data, checkpoint=result.checkpoint)
    assert report["accuracy"] >= 0.8
    assert abs(report["accuracy"] - report["float_accuracy"]) <= 0.07  # 32 samples: 2 may flip
    for key in ("spikes", "synops", "groups", "spikes_to_decision", "decision_step"):
        assert key in report["mean"]
    assert report["to_decision"]["synops"] <= report["mean"]["synops"]


def test_silent_export_is_refused(run, tmp_path):
    result, _, data, _ = run
    ckpt = load_checkpoint(result.checkpoint)
    ckpt["state_dict"] = {k: v * 1e-4 for k, v in ckpt["state_dict"].items()}  # rounds to 0
    path = tmp_path / "silent.pt"
    torch.save(ckpt, path)
    with pytest.raises(UnlayeredError, match=r"silent.*layer 0.*--allow-silent"):
        export(path, tmp_path / "m.npz", dataset=data)
    assert not (tmp_path / "m.npz").exists()
    out = export(path, tmp_path / "m.npz", dataset=data, allow_silent=True)
    assert out.spikes_per_layer == [0.0, 0.0] and (tmp_path / "m.npz").is_file()


def test_export_overrides_the_scheduler(run, tmp_path):
    result, _, data, _ = run
    out = export(result.checkpoint, tmp_path / "m.npz", dataset=data, scheduler="random",
                 group_size=2)  # fmt: skip
    assert out.model.scheduler.name == "random" and out.model.scheduler.group_size == 2
    acc = float_accuracy(result.checkpoint, data.test, scheduler="random", group_size=2)
    assert 0 <= acc <= 1


def test_momentum_exact_exports_as_momentum(run, tmp_path):
    from unlayered.sw.export import model_from_checkpoint

    result, _, _, _ = run
    ckpt = load_checkpoint(result.checkpoint)
    ckpt["config"] = replace(result.config, scheduler="momentum_exact").to_dict()
    assert model_from_checkpoint(ckpt).scheduler.name == "momentum"
