"""Training: the loss falls, the accuracy is sane, checkpoints load with weights_only."""

from __future__ import annotations

import json

import pytest
import torch

from unlayered.sim import UnlayeredError
from unlayered.sw.config import TrainConfig, load_config
from unlayered.sw.train import (
    _Split,
    evaluate_float,
    load_checkpoint,
    loss_fn,
    network_from_checkpoint,
    train,
)

from .tiny_data import tiny_dataset


def tiny_config(tmp_path, **changes) -> TrainConfig:
    fields = dict(
        dataset="tiny", hidden=(12,), epochs=6, batch_size=16, lr=1e-2, threshold=1.0,
        scheduler="momentum", group_size=4, out=str(tmp_path / "run"), device="cpu",
        val_fraction=0.25,
    )  # fmt: skip
    fields.update(changes)
    return TrainConfig(**fields)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    config = tiny_config(tmp)
    data = tiny_dataset()
    return train(config, dataset=data, log=None, progress=False), data


def test_training_reduces_the_loss_and_learns(trained):
    result, _ = trained
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0] * 0.9, losses
    assert result.best_val_accuracy >= 0.85, result.history
    assert result.test_accuracy >= 0.8


def test_outputs_and_resolved_config(trained):
    result, _ = trained
    out = result.out_dir
    for name in ("config.json", "checkpoint.pt", "best.pt", "history.json", "train.log"):
        assert (out / name).is_file(), name
    config = load_config(out / "config.json")
    assert config == result.config
    assert config.num_steps == 8 and config.threshold_int == 64 and config.momentum_shift == 3
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, 7))
    assert all(0 <= h["val_accuracy"] <= 1 for h in history)


def test_checkpoint_round_trip_weights_only(trained):
    result, data = trained
    ckpt = torch.load(result.checkpoint, weights_only=True)  # plain values only
    assert ckpt["config"] == result.config.to_dict()
    for key, value in result.state_dict.items():
        assert torch.equal(ckpt["state_dict"][key], value)
    net, config = network_from_checkpoint(load_checkpoint(result.checkpoint))
    split = _Split(data.test, data.n_inputs, config.num_steps, "cpu")
    assert evaluate_float(net, split) == pytest.approx(result.test_accuracy)


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "x.pt"
    torch.save({"something": 1}, bad)
    with pytest.raises(UnlayeredError, match="format"):
        load_checkpoint(bad)
    bad.write_bytes(b"garbage")
    with pytest.raises(UnlayeredError, match=r"x\.pt"):
        load_checkpoint(bad)


def test_same_seed_same_weights(tmp_path):
    data = tiny_dataset(n_train=32, n_test=8)
    a = train(tiny_config(tmp_path, epochs=1, out=str(tmp_path / "a")), dataset=data, log=None,
              progress=False)  # fmt: skip
    b = train(tiny_config(tmp_path, epochs=1, out=str(tmp_path / "b")), dataset=data, log=None,
              progress=False)  # fmt: skip
    for key in a.state_dict:
        assert torch.equal(a.state_dict[key], b.state_dict[key])


@pytest.mark.parametrize("kind", ["ce_per_step", "ce_cumulative", "ce_total"])
def test_losses(kind):
    counts = torch.zeros((2, 3, 4), requires_grad=True)
    labels = torch.tensor([1, 2])
    loss = loss_fn(counts, labels, kind)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(4.0)).item())
    loss.backward()
    assert counts.grad.abs().sum() > 0
    # ce_per_step averages the per-step cross-entropies
    c = torch.randn(2, 3, 4)
    per = sum(torch.nn.functional.cross_entropy(c[:, t], labels) for t in range(3)) / 3
    assert loss_fn(c, labels, "ce_per_step").item() == pytest.approx(per.item(), rel=1e-6)
    cum = c.cumsum(1)
    per = sum(torch.nn.functional.cross_entropy(cum[:, t], labels) for t in range(3)) / 3
    assert loss_fn(c, labels, "ce_cumulative").item() == pytest.approx(per.item(), rel=1e-6)


@pytest.mark.parametrize(
    ("field", "value"),
    [("scheduler", "lifo"), ("loss", "mse"), ("hidden", (0,)), ("membrane_bits", 4)],
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(UnlayeredError, match=f"'{field}'"):
        TrainConfig(**{field: value})


def test_qat_and_other_schedulers_train(tmp_path):
    data = tiny_dataset(n_train=48, n_test=16)
    for scheduler, f in (("random", 2), ("sync", 0), ("fifo", 1)):
        config = tiny_config(
            tmp_path, scheduler=scheduler, group_size=f, qat=True, weight_bits=4, epochs=2,
            out=str(tmp_path / scheduler),
        )  # fmt: skip
        result = train(config, dataset=data, log=None, progress=False)
        assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
