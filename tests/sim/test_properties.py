"""Properties of the reference simulator on random networks, inputs, schedulers, F and seeds.

The random models and samples come from ``tests/sim/strategies.py``. ``layered`` below is an
independent, conventional layer-by-layer time-stepped integer SNN written with numpy from the
contract's rules; ``sync`` with F = 0 must compute exactly the same thing.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from unlayered.sim import EventSamples, LayerSpec, Model, SchedulerSpec, simulate

from .helpers import ENGINES
from .strategies import batches, models, samples

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def layer_of(model, neurons):
    """The layer of each global neuron index."""
    return np.searchsorted(np.cumsum(model.sizes), neurons, side="right")


def events_by_step(events, s):
    return [events.step_events(s, t).tolist() for t in range(events.num_steps(s))]


# ---------------------------------------------------------------------------------------------
# Invariants of every run


def check_invariants(model, steps, r):
    n_layers, sizes = len(model.layers), model.sizes
    sched = model.scheduler
    trace, log = r.trace, r.group_log
    rows = [tuple(x) for x in trace.tolist()]
    log_rows = [tuple(x) for x in log.tolist()]

    # Trace ordered: step non-decreasing, group non-decreasing within a step, neuron ascending
    # within a group, i.e. strictly increasing (step, group, neuron).
    assert all(a < b for a, b in itertools.pairwise(rows))
    # At most one spike per neuron per step.
    assert len({(t, n) for t, _, n in rows}) == len(rows)
    # Every spike belongs to a delivered group; groups of a step are numbered 0, 1, 2, ...
    assert {(t, g) for t, g, _ in rows} <= {(t, g) for t, g, _ in log_rows}
    for t in range(r.steps):
        groups = [g for s, g, _ in log_rows if s == t]
        assert groups == list(range(len(groups)))
        if sched.max_groups_per_step:
            assert len(groups) <= sched.max_groups_per_step
    assert all(0 <= t < r.steps for t, _, _ in log_rows)
    assert all(0 <= n < model.n_neurons for _, _, n in rows)
    if not sched.max_groups_per_step:
        assert r.dropped == 0

    # Counts consistent with the trace.
    layers = layer_of(model, trace[:, 2])
    assert r.spikes.tolist() == np.bincount(layers, minlength=n_layers).tolist()
    out_start = model.layer_starts[-1]
    out = trace[layers == n_layers - 1, 2] - out_start
    assert r.output_counts.tolist() == np.bincount(out, minlength=sizes[-1]).tolist()
    assert r.groups == len(log_rows)
    assert r.synops == sum(s for _, _, s in log_rows)
    assert all(s > 0 for _, _, s in log_rows)  # every delivered source has a fan-out

    # Synops: each delivered source contributes its fan-out size (the next layer's size).
    # With nothing dropped and nothing discarded by an early decision, every input event and
    # every hidden spike is delivered.
    fan_out = [sizes[layer + 1] if layer < n_layers - 1 else 0 for layer in layers.tolist()]
    ran_events = sum(len(steps[t]) for t in range(r.steps))
    bound = ran_events * sizes[0] + sum(fan_out)
    early = model.decision == "first_to_threshold" and r.decision >= 0
    if r.dropped == 0 and not early:
        assert r.synops == bound
        assert r.input_events == ran_events
    else:
        assert r.synops <= bound
    if sched.prioritized_input:
        assert r.input_events == ran_events
    # Group sizes: a prioritized input group is the step's whole input, whatever F; any other
    # group has at most F sources (exactly one with F = 1).
    fan_outs = set(sizes)  # inputs feed layer 0, layer l feeds layer l + 1
    for t, g, s in log_rows:
        if sched.prioritized_input and g == 0 and len(steps[t]):
            assert s == len(steps[t]) * sizes[0]
        elif sched.group_size == 1:
            assert s in fan_outs
        elif sched.group_size:
            assert s <= sched.group_size * max(sizes)

    # Steps and membranes.
    if early:
        assert r.steps == r.decision_step + 1
        assert rows[-1][:2] == (r.decision_step, r.decision_group)
        assert log_rows[-1][:2] == (r.decision_step, r.decision_group)
    else:
        assert r.steps == len(steps)
    assert r.membranes.shape == (r.steps, model.n_neurons)
    assert r.membranes.min(initial=0) >= model.vmin
    assert r.membranes.max(initial=0) <= model.vmax

    # Decision.
    if model.decision == "argmax_spike_count":
        expected = int(np.argmax(r.output_counts)) if r.output_counts.any() else -1
    else:
        expected = int(out[0]) if len(out) else -1
    assert r.decision == expected
    assert -1 <= r.decision < sizes[-1]

    # The "to decision" metrics are at most the totals; without a decision they are the totals.
    assert (r.spikes_to_decision <= r.spikes).all()
    assert r.synops_to_decision <= r.synops
    assert r.groups_to_decision <= r.groups
    if r.decision == -1:
        assert (r.decision_step, r.decision_group) == (-1, -1)
        assert r.spikes_to_decision.tolist() == r.spikes.tolist()
        assert (r.synops_to_decision, r.groups_to_decision) == (r.synops, r.groups)
    else:
        point = (r.decision_step, r.decision_group)
        g = [x[:2] for x in log_rows].index(point)
        assert r.groups_to_decision == g + 1
        assert r.synops_to_decision == sum(s for _, _, s in log_rows[: g + 1])
        upto = [layer for row, layer in zip(rows, layers.tolist(), strict=True) if row[:2] <= point]
        assert r.spikes_to_decision.tolist() == np.bincount(upto, minlength=n_layers).tolist()
        # The decision group fired an output neuron.
        assert any(row[:2] == point and row[2] >= out_start for row in rows)
        if model.decision == "argmax_spike_count":
            # The running decision equals the final one after the decision group and every later
            # group, and differs after the group with output spikes just before it.
            running = np.zeros(sizes[-1], dtype=np.int64)
            seen = []
            for t, g_, n in rows:
                if n >= out_start:
                    running[n - out_start] += 1
                    after = int(np.argmax(running))
                    if seen and seen[-1][0] == (t, g_):
                        seen[-1] = ((t, g_), after)
                    else:
                        seen.append(((t, g_), after))
            later = [d for p, d in seen if p >= point]
            assert later and all(d == r.decision for d in later)
            earlier = [d for p, d in seen if p < point]
            assert not earlier or earlier[-1] != r.decision


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(data=st.data())
def test_invariants(engine, data):
    model = data.draw(models(), label="model")
    steps = data.draw(samples(model.n_inputs), label="steps")
    seed = data.draw(st.integers(0, (1 << 32) - 1), label="seed")
    sample_id = data.draw(st.integers(0, (1 << 32) - 1), label="sample_id")
    events = EventSamples.from_lists([steps], sample_ids=[sample_id])
    r = simulate(model, events, engine=engine, seed=seed, record_membranes=True).samples[0]
    check_invariants(model, [list(s) for s in steps], r)
    describe(model, r)


def describe(model, r):
    """Label the example for --hypothesis-show-statistics (what the example exercised)."""
    event(f"scheduler {model.scheduler.name}")
    event("an output neuron fired" if r.output_counts.any() else "no output spike")
    if r.dropped:
        event("entries dropped")
    if model.decision == "first_to_threshold" and r.decision >= 0:
        event("early decision")
    if r.membranes.size and (r.membranes.max() == model.vmax or r.membranes.min() == model.vmin):
        event("a membrane ended a step saturated")


# ---------------------------------------------------------------------------------------------
# A sample's result does not depend on the rest of its batch


def same(a, b):
    assert a.sample_id == b.sample_id and a.label == b.label
    assert np.array_equal(a.trace, b.trace)
    assert np.array_equal(a.group_log, b.group_log)
    assert np.array_equal(a.membranes, b.membranes)
    assert a.summary() == b.summary()


@pytest.mark.parametrize("engine", ENGINES)
@SETTINGS
@given(data=st.data())
def test_batch_independence(engine, data):
    model = data.draw(models(), label="model")
    events = data.draw(batches(model.n_inputs, max_samples=4), label="events")
    order = data.draw(st.permutations(range(len(events))), label="order")
    subset = data.draw(st.lists(st.sampled_from(order), unique=True, min_size=1), label="subset")
    kwargs = {"engine": engine, "record_membranes": True}
    whole = {r.sample_id: r for r in simulate(model, events, **kwargs).samples}
    assert len(whole) == len(events)
    for indices in (order, subset):
        part = simulate(model, events.select(indices), **kwargs).samples
        assert [r.sample_id for r in part] == [int(events.sample_ids[i]) for i in indices]
        for r in part:
            same(r, whole[r.sample_id])
    # The seed only enters through sample_seed(seed, id): the same events under the same id
    # in another batch, alone, give the same result.
    i = order[0]
    alone = simulate(model, events.select([i]), **kwargs).samples[0]
    same(alone, whole[int(events.sample_ids[i])])


# ---------------------------------------------------------------------------------------------
# sync with F = 0 is the conventional layer-by-layer, time-stepped SNN


def layered(model, steps):
    """An independent layer-by-layer integer SNN (per step: leak, then layer after layer).

    Returns the trace, group log, end-of-step membranes, dropped count and the decision with its
    point, from the rules of docs/semantics.md specialized to one group per layer:
    the input events (in arrival order if prioritized, else by ascending channel) are delivered
    to layer 0, then layer 0's spikes (ascending index) to layer 1, and so on.
    """
    sizes = list(model.sizes)
    n_layers = len(sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    weights = [np.asarray(w, dtype=np.int64) for w in model.weights]
    thresholds = np.array([layer.threshold for layer in model.layers], dtype=np.int64)
    cap = model.scheduler.max_groups_per_step
    first = model.decision == "first_to_threshold"
    v = [np.zeros(size, dtype=np.int64) for size in sizes]
    trace, group_log, membranes = [], [], []
    dropped = 0
    counts = np.zeros(sizes[-1], dtype=np.int64)
    running = []  # (step, group, running argmax decision) after each group with output spikes
    stop = False
    for t, events in enumerate(steps):
        # Leak toward zero: sign(x) * (|x| * leak >> shift); refractory flags clear.
        for li, layer in enumerate(model.layers):
            x = v[li] * layer.leak
            v[li] = np.sign(x) * (np.abs(x) >> model.leak_shift)
        refractory = [np.zeros(size, dtype=bool) for size in sizes]
        sources = list(events) if model.scheduler.prioritized_input else sorted(events)
        g = 0
        for li in range(n_layers):
            if not sources:
                break
            if cap and g >= cap:
                dropped += len(sources)
                break
            for s in sources:  # one saturating add per target per source, in source order
                added = np.clip(v[li] + weights[li][:, s], model.vmin, model.vmax)
                v[li] = np.where(refractory[li], v[li], added)
            group_log.append((t, g, len(sources) * sizes[li]))
            fire = ~refractory[li] & (v[li] > thresholds[li])
            idx = np.flatnonzero(fire)
            trace += [(t, g, int(starts[li] + i)) for i in idx]
            if model.layers[li].reset == "zero":
                v[li][fire] = 0
            else:
                v[li][fire] -= thresholds[li]
            refractory[li] |= fire
            if li == n_layers - 1 and len(idx):
                counts[idx] += 1
                running.append((t, g, int(np.argmax(counts))))
                if first:
                    stop = True
            sources = idx.tolist()
            g += 1
        membranes.append(np.concatenate(v).tolist())
        if stop:
            break
    if not counts.any():
        decision, point = -1, (-1, -1)
    elif first:
        decision, point = running[0][2], running[0][:2]
    else:
        decision = int(np.argmax(counts))
        k = len(running)
        while k > 0 and running[k - 1][2] == decision:
            k -= 1
        point = running[k][:2]
    return {
        "trace": trace,
        "group_log": group_log,
        "membranes": membranes,
        "dropped": dropped,
        "steps": len(membranes),
        "output_counts": counts.tolist(),
        "decision": decision,
        "decision_point": point,
    }


@pytest.mark.parametrize("engine", ENGINES)
@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_sync_f0_is_layer_by_layer(engine, data):
    model = data.draw(models(scheduler="sync", group_size=0), label="model")
    steps = data.draw(samples(model.n_inputs), label="steps")
    r = simulate(
        model, EventSamples.from_lists([steps]), engine=engine, record_membranes=True
    ).samples[0]
    expected = layered(model, [s.tolist() for s in steps])
    describe(model, r)
    got = {
        "trace": [tuple(x) for x in r.trace.tolist()],
        "group_log": [tuple(x) for x in r.group_log.tolist()],
        "membranes": r.membranes.tolist(),
        "dropped": r.dropped,
        "steps": r.steps,
        "output_counts": r.output_counts.tolist(),
        "decision": r.decision,
        "decision_point": (r.decision_step, r.decision_group),
    }
    assert got == expected


def test_layered_reference_on_a_hand_example():
    # The independent implementation itself, on the F = 1 / F = 2 example of the contract
    # (semantics 5): with one group per layer it fires (0,0,0) (0,0,1) (0,1,2).
    model = Model(
        n_inputs=2,
        layers=(LayerSpec(2, 5, 256), LayerSpec(1, 5, 256)),
        weights=(np.array([[4, 3], [2, 4]]), np.array([[3, 3]])),
        scheduler=SchedulerSpec(name="sync", group_size=0),
    )
    out = layered(model, [[0, 1]])
    assert out["trace"] == [(0, 0, 0), (0, 0, 1), (0, 1, 2)]
    assert out["group_log"] == [(0, 0, 4), (0, 1, 2)]
    assert out["membranes"] == [[0, 0, 0]]
    assert (out["decision"], out["decision_point"]) == (0, (0, 1))
