"""Integer mode of the torch simulator equals the readable reference simulator, bit for bit."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch

from unlayered.sim import EventSamples, LayerSpec, Model, SchedulerSpec, simulate
from unlayered.sw import scheduled
from unlayered.sw.events_torch import from_dense, from_events, to_events
from unlayered.sw.scheduled import ScheduledSNN

SCHEDULERS = ("sync", "fifo", "random", "momentum")
DECISIONS = ("argmax_spike_count", "first_to_threshold")


def random_model(
    rng, scheduler, group_size, prioritized, reset, membrane_bits, max_groups, decision
):
    """A small quantized network, biased towards activity (and saturation at 6 bits)."""
    n_in = int(rng.integers(1, 8))
    sizes = [int(rng.integers(1, 6)) for _ in range(int(rng.integers(1, 4)))]
    weights, fan_in = [], n_in
    for size in sizes:
        weights.append(np.clip(rng.integers(-16, 16, size=(size, fan_in)) + 3, -16, 15))
        fan_in = size
    vmax = (1 << (membrane_bits - 1)) - 1
    layers = [
        LayerSpec(
            size=s,
            threshold=int(rng.integers(0, min(20, vmax - 1))),
            leak=int(rng.integers(0, 257)),
            reset=reset,
        )
        for s in sizes
    ]
    model = Model(
        n_inputs=n_in,
        layers=tuple(layers),
        weights=tuple(w.astype(np.int32) for w in weights),
        weight_bits=5,
        membrane_bits=membrane_bits,
        leak_shift=8,
        scheduler=SchedulerSpec(
            name=scheduler,
            group_size=group_size,
            prioritized_input=prioritized,
            seed=int(rng.integers(0, 1 << 32)),
            momentum_buckets=int(rng.integers(1, 5)),
            momentum_shift=int(rng.integers(0, 3)),
            max_groups_per_step=max_groups,
        ),
        decision=decision,
    )
    model.validate()
    return model


def random_events(rng, n_in, n_samples=5):
    """Samples of 0..5 steps (so the batch is padded), random arrival orders, random ids."""
    samples = [
        [
            rng.permutation(n_in)[: int(rng.integers(0, n_in + 1))]
            for _ in range(int(rng.integers(0, 6)))
        ]
        for _ in range(n_samples)
    ]
    ids = rng.choice(1000, size=n_samples, replace=False)
    return EventSamples.from_lists(samples, sample_ids=ids)


def compare(model, events):
    """(mismatching samples, reference results) of one model on one batch."""
    ref = simulate(model, events, engine="readable", record_membranes=True).samples
    got = ScheduledSNN.from_model(model).simulate(from_events(events, model.n_inputs))
    bad = []
    for r, q in zip(ref, got, strict=True):
        same = (
            np.array_equal(r.trace, q.trace)
            and np.array_equal(r.group_log, q.group_log)
            and np.array_equal(r.output_counts, q.output_counts)
            and np.array_equal(r.membranes, q.membranes)
            and (r.steps, r.dropped, r.input_events) == (q.steps, q.dropped, q.input_events)
        )
        if not same:
            bad.append((r, q))
    return bad, ref


def grid(scheduler, seed):
    rng = np.random.default_rng(seed)
    for f, prio, reset, mb, mg, dec in itertools.product(
        (1, 3, 0), (True, False), ("zero", "subtract"), (6, 16), (0, 2), DECISIONS
    ):
        model = random_model(rng, scheduler, f, prio, reset, mb, mg, dec)
        yield model, random_events(rng, model.n_inputs)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_integer_mode_equals_reference(scheduler):
    saturated = dropped = early = spikes = 0
    for seed in (1, 2):
        for model, events in grid(scheduler, seed):
            bad, ref = compare(model, events)
            if bad:
                r, q = bad[0]
                pytest.fail(
                    f"{model.scheduler} reset={model.layers[0].reset} mb={model.membrane_bits} "
                    f"{model.decision}: sample {r.sample_id}\nreference trace {r.trace.tolist()}"
                    f"\ntorch trace     {q.trace.tolist()}\nreference log {r.group_log.tolist()}"
                    f"\ntorch log     {q.group_log.tolist()}"
                )
            for r in ref:
                spikes += len(r.trace)
                dropped += r.dropped
                if r.membranes.size:
                    saturated += int((r.membranes == model.vmin).sum())
                    saturated += int((r.membranes == model.vmax).sum())
            early += sum(r.steps < events.num_steps(s) for s, r in enumerate(ref))
    # the grid exercised what it claims to
    assert spikes > 500 and dropped > 0 and early > 0 and saturated > 0


def test_random_torch_loop_equals_reference(monkeypatch):
    """The device-generic torch pick loop (used off the CPU) also matches the reference."""
    monkeypatch.setattr(scheduled, "USE_NUMBA", False)
    for model, events in grid("random", 4):
        assert not compare(model, events)[0]


def _mutant_mismatches(scheduler, monkeypatch, name, replacement):
    monkeypatch.setattr(scheduled, "USE_NUMBA", False)  # the mutant lives in the torch loop
    monkeypatch.setattr(scheduled, name, replacement)
    return sum(len(compare(m, e)[0]) for m, e in grid(scheduler, 3))


def test_detects_saturation_after_the_sum(monkeypatch):
    """A defect (clamping once per group instead of per add) must show as a mismatch."""

    def clamp_once(v, rows, notref, vmin, vmax):
        return (v + (rows * notref[:, None, :]).sum(1)).clamp(vmin, vmax)

    assert _mutant_mismatches("fifo", monkeypatch, "deliver_saturating", clamp_once) > 0


def test_detects_wrong_generator(monkeypatch):
    """A defect in xorshift32 (shift 15 instead of 17) must show as a mismatch."""

    def wrong(x):
        x = x ^ ((x << 13) & 0xFFFFFFFF)
        x = x ^ (x >> 15)
        return x ^ ((x << 5) & 0xFFFFFFFF)

    assert _mutant_mismatches("random", monkeypatch, "xorshift32", wrong) > 0


def test_larger_batch_random_and_momentum():
    """Batch of 24 on a wider network: lockstep across many samples of different lengths."""
    rng = np.random.default_rng(7)
    for scheduler, f in (("random", 4), ("momentum", 2), ("fifo", 5), ("sync", 3)):
        model = random_model(rng, scheduler, f, False, "subtract", 10, 0, DECISIONS[0])
        model = Model(
            n_inputs=12,
            layers=(LayerSpec(10, 6, 200), LayerSpec(9, 5, 230), LayerSpec(4, 8, 256)),
            weights=(
                rng.integers(-6, 10, size=(10, 12)).astype(np.int32),
                rng.integers(-6, 10, size=(9, 10)).astype(np.int32),
                rng.integers(-6, 10, size=(4, 9)).astype(np.int32),
            ),
            weight_bits=5,
            membrane_bits=10,
            scheduler=model.scheduler,
        )
        events = random_events(rng, 12, n_samples=24)
        bad, ref = compare(model, events)
        assert not bad, f"{scheduler}: {len(bad)} samples differ"
        assert sum(len(r.trace) for r in ref) > 100


def test_events_round_trip():
    rng = np.random.default_rng(0)
    events = random_events(rng, 9, n_samples=7)
    batch = from_events(events, 9)
    back = to_events(batch)
    assert len(back) == len(events)
    for s in range(len(events)):
        assert back.num_steps(s) == events.num_steps(s)
        for t in range(events.num_steps(s)):
            assert back.step_events(s, t).tolist() == events.step_events(s, t).tolist()
            dense = batch.spikes[s, t].nonzero()[:, 0].tolist()
            assert dense == sorted(events.step_events(s, t).tolist())
    assert back.sample_ids.tolist() == events.sample_ids.tolist()
    assert batch.num_steps.tolist() == [events.num_steps(s) for s in range(len(events))]


def test_from_dense_arrival_orders():
    x = (torch.rand(3, 4, 6, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    for arrival in ("ascending", "random"):
        batch = from_dense(x, arrival=arrival, generator=torch.Generator().manual_seed(1))
        for b, t in itertools.product(range(3), range(4)):
            row = batch.order[b, t]
            row = row[row >= 0].tolist()
            assert sorted(row) == x[b, t].nonzero()[:, 0].tolist()
            if arrival == "ascending":
                assert row == sorted(row)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("backward", ["manual", "autograd"])
def test_float_mode_schedules_like_reference_when_arithmetic_is_exact(scheduler, backward):
    """With integer weights, no leak (or full leak) and no saturation, float arithmetic is
    exact, so the float training path (with gradients on) must also reproduce the reference,
    including the momentum buckets computed from the float overshoot."""
    rng = np.random.default_rng(11)
    for f, prio, reset, dec in itertools.product(
        (1, 3, 0), (True, False), ("zero", "subtract"), DECISIONS
    ):
        model = random_model(rng, scheduler, f, prio, reset, 32, 0, dec)
        layers = tuple(replace(x, leak=int(rng.choice([0, 256]))) for x in model.layers)
        model = replace(model, layers=layers)
        events = random_events(rng, model.n_inputs)
        ref = simulate(model, events, engine="readable", record_membranes=True).samples
        net = ScheduledSNN.from_model(model, integer=False, backward=backward).double()
        for fc in net.fc:
            fc.weight.requires_grad_(True)
        out = net.run(from_events(events, model.n_inputs, dtype=torch.float64), record=True)
        assert out.counts.requires_grad
        for r, q in zip(ref, out.records, strict=True):
            assert np.array_equal(r.trace, q.trace), (model.scheduler, r.trace, q.trace)
            assert np.array_equal(r.group_log, q.group_log)
            assert np.array_equal(r.membranes, q.membranes)
            counts = out.counts[list(events.sample_ids).index(r.sample_id)].sum(0)
            assert np.array_equal(r.output_counts, counts.detach().numpy())


def test_model_round_trip():
    rng = np.random.default_rng(5)
    model = random_model(rng, "momentum", 3, False, "subtract", 12, 4, DECISIONS[1])
    back = ScheduledSNN.from_model(model).to_model(weight_bits=model.weight_bits)
    assert back.manifest() == model.manifest()
    for a, b in zip(back.weights, model.weights, strict=True):
        assert np.array_equal(a, b)
