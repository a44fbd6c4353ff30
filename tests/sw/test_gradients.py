"""Gradients through the scheduled execution, and the surrogate functions' backward."""

from __future__ import annotations

import math

import pytest
import snntorch.surrogate as snn_surrogate
import torch

from unlayered.sw.events_torch import from_dense
from unlayered.sw.scheduled import SCHEDULERS, ScheduledSNN
from unlayered.sw.surrogate import atan, fast_sigmoid


def _net(scheduler, **kw):
    torch.manual_seed(0)
    net = ScheduledSNN(16, (12, 10, 4), threshold=1.0, beta=0.85, scheduler=scheduler, **kw)
    with torch.no_grad():
        for fc in net.fc:
            fc.weight.uniform_(-0.5, 1.0).mul_(2.0 / fc.in_features**0.5)
    return net


CASES = [
    dict(group_size=1),
    dict(group_size=3, prioritized_input=False),
    dict(group_size=0, reset="subtract"),
    dict(group_size=2, max_groups_per_step=3, decision="first_to_threshold"),
]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_gradients_reach_every_layer(scheduler, case):
    net = _net(scheduler, **CASES[case])
    x = (torch.rand(8, 10, 16, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    labels = torch.arange(8) % 4
    counts, state = net(from_dense(x, labels=labels))
    assert counts.shape == (8, 10, 4) and counts.requires_grad
    assert counts.sum() > 0
    loss = torch.nn.functional.cross_entropy(counts.sum(1), labels)
    loss.backward()
    for i, fc in enumerate(net.fc):
        g = fc.weight.grad
        assert g is not None, f"layer {i}: no gradient"
        assert torch.isfinite(g).all(), f"layer {i}: non-finite gradient"
        assert g.abs().sum() > 0, f"layer {i}: zero gradient"
    # the scheduler's state carries no gradient
    for name in ("keys", "plist", "pcount", "rng"):
        value = getattr(state, name)
        assert value is None or not value.requires_grad, name


def _graph_ops(t):
    seen, todo, names = set(), [t.grad_fn], set()
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        todo.extend(f for f, _ in fn.next_functions)
    return names


@pytest.mark.parametrize("scheduler", ["momentum", "momentum_exact", "fifo", "sync", "random"])
def test_scheduler_choice_is_not_differentiated(scheduler):
    """No priority key, sort or top-k appears in the autograd graph of the output."""
    net = _net(scheduler, group_size=2, backward="autograd")
    x = (torch.rand(4, 6, 16, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    counts, _ = net(from_dense(x))
    ops = _graph_ops(counts.sum())
    assert "EmbeddingBagBackward0" in ops  # the graph goes through group deliveries
    assert not {n for n in ops if "Topk" in n or "Sort" in n or "Ceil" in n or "Floor" in n}


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("spike_grad", [atan(), fast_sigmoid(5.0)])
def test_manual_backward_equals_autograd(scheduler, case, spike_grad):
    """The hand-written reverse pass computes torch autograd's gradient."""
    x = (torch.rand(6, 8, 16, generator=torch.Generator().manual_seed(4)) < 0.3).double()
    labels = torch.arange(6) % 4
    grads, outs = [], []
    for backward in ("manual", "autograd"):
        net = _net(scheduler, spike_grad=spike_grad, backward=backward, **CASES[case]).double()
        counts, _ = net(from_dense(x, labels=labels))
        weight = torch.linspace(0.5, 1.5, counts.shape[1], dtype=torch.float64)[None, :, None]
        loss = torch.nn.functional.cross_entropy((counts * weight).sum(1), labels)
        loss.backward()
        outs.append(counts.detach())
        grads.append([fc.weight.grad for fc in net.fc])
    assert torch.equal(outs[0], outs[1])
    for i, (a, b) in enumerate(zip(*grads, strict=True)):
        assert b.abs().sum() > 0, f"layer {i}"
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12, msg=f"layer {i}")


@pytest.mark.parametrize("alpha", [0.5, 2.0, 5.0])
def test_atan_backward_formula(alpha):
    x = torch.linspace(-3, 3, 101, dtype=torch.float64, requires_grad=True)
    y = atan(alpha)(x)
    assert torch.equal(y.detach(), (x > 0).double())
    y.backward(torch.ones_like(y))
    want = alpha / 2 / (1 + (math.pi / 2 * alpha * x.detach()) ** 2)
    torch.testing.assert_close(x.grad, want)
    # and snnTorch's own
    x2 = x.detach().clone().requires_grad_(True)
    snn_surrogate.atan(alpha)(x2).backward(torch.ones_like(x2))
    torch.testing.assert_close(x.grad, x2.grad)


@pytest.mark.parametrize("slope", [1.0, 25.0])
def test_fast_sigmoid_backward_formula(slope):
    x = torch.linspace(-2, 2, 81, dtype=torch.float64, requires_grad=True)
    y = fast_sigmoid(slope)(x)
    assert torch.equal(y.detach(), (x > 0).double())
    g = torch.randn(81, dtype=torch.float64)
    y.backward(g)
    torch.testing.assert_close(x.grad, g / (slope * x.detach().abs() + 1) ** 2)


def test_spike_at_threshold_is_strict():
    assert atan()(torch.zeros(1)).item() == 0
    assert fast_sigmoid()(torch.zeros(1)).item() == 0


def test_refractory_dropout():
    x = (torch.rand(6, 8, 16, generator=torch.Generator().manual_seed(5)) < 0.3).double()
    labels = torch.arange(6) % 4
    inp = from_dense(x, labels=labels)
    base = _net("fifo", group_size=2).double()
    plain = base(inp)[0]
    # p = 0 changes nothing; evaluation mode ignores it
    assert torch.equal(_net("fifo", group_size=2, refractory_dropout=0.0).double()(inp)[0], plain)
    off = _net("fifo", group_size=2, refractory_dropout=0.5).double().eval()
    assert torch.equal(off(inp)[0], plain)
    # p = 1: no hidden neuron ever integrates, so nothing reaches the outputs
    assert _net("fifo", group_size=2, refractory_dropout=1.0).double()(inp)[0].sum() == 0
    # p = 0.3: a different run, and the hand-written backward still equals autograd
    grads, outs = [], []
    for backward in ("manual", "autograd"):
        net = _net("random", group_size=2, refractory_dropout=0.3, backward=backward).double()
        net.generator = torch.Generator().manual_seed(9)
        counts, _ = net(inp)
        torch.nn.functional.cross_entropy(counts.sum(1), labels).backward()
        outs.append(counts.detach())
        grads.append([fc.weight.grad for fc in net.fc])
    assert not torch.equal(outs[0], plain)
    assert torch.equal(outs[0], outs[1])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
