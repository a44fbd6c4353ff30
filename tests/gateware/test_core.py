"""The whole neuron core in Amaranth's simulator against the reference simulator.

Full traces, counters and end-of-step membranes must be identical (semantics 9), for every
scheduler, group size, lane count, input mode, cap and decision rule, under input stalls and
output backpressure.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sim.strategies import batches, models
from unlayered.gateware.layout import CoreLayout, fire_count_stored, weight_slices
from unlayered.sim import EventSamples, LayerSpec, Model, SchedulerSpec

from .harness import compare, random_events, random_model, run_core

SCHEDULERS = ["sync", "fifo", "random", "momentum"]


def worked_example(group_size: int) -> Model:
    """The worked example of semantics 5 (F = 1 versus F = 2)."""
    return Model(
        n_inputs=2,
        layers=(LayerSpec(2, 5, 256), LayerSpec(1, 5, 256)),
        weights=(np.array([[4, 3], [2, 4]]), np.array([[3, 3]])),
        scheduler=SchedulerSpec(name="fifo", group_size=group_size),
    )


@pytest.mark.parametrize(
    ("group_size", "trace", "groups"),
    [(1, [(0, 0, 0), (0, 0, 1), (0, 2, 2)], 3), (2, [(0, 0, 0), (0, 0, 1), (0, 1, 2)], 2)],
)
def test_worked_example(group_size, trace, groups):
    model = worked_example(group_size)
    events = EventSamples.from_lists([[[0, 1]]])
    (hw,) = run_core(model, events)
    assert hw.trace == trace
    assert hw.summary["groups"] == groups
    assert hw.summary["synops"] == 6
    assert compare(model, events, [hw]) == []


@pytest.mark.parametrize("lanes", [1, 2, 4, 8])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_random_models(scheduler, lanes):
    """Seeded random small models (widths, leaks, resets, F, caps, decisions, input modes).

    Every third case runs without the membrane read-out, where a step may end before its last
    group has settled (the early step end)."""
    failures = []
    for case in range(12):
        seed = 1000 * lanes + case
        rnd = np.random.default_rng([seed, SCHEDULERS.index(scheduler)])
        model = random_model(rnd, name=scheduler)
        events = random_events(rnd, model.n_inputs)
        debug = case % 3 != 0
        hw = run_core(
            model, events, lanes=lanes, stall=0.2, backpressure=0.2, rng_seed=seed, debug=debug
        )
        errors = compare(model, events, hw, membranes=debug)
        failures += [f"case {case} ({model.scheduler}, debug {debug}): {e}" for e in errors]
    assert failures == []


@pytest.mark.parametrize("lanes", [1, 3])
def test_weight_reload(lanes):
    """A core built for one model runs another of the same shape after a weight reload."""
    rnd = np.random.default_rng(7)
    built = random_model(rnd, name="fifo", max_groups_per_step=0)
    weights = tuple(rnd.integers(-3, 8, size=np.shape(w)) for w in built.weights)
    other = Model(
        n_inputs=built.n_inputs,
        layers=built.layers,
        weights=weights,
        weight_bits=max(built.weight_bits, 4),
        membrane_bits=max(built.membrane_bits, 4),
        leak_shift=built.leak_shift,
        scheduler=built.scheduler,
        decision=built.decision,
    )
    if other.weight_bits != built.weight_bits or other.membrane_bits != built.membrane_bits:
        built = Model(
            n_inputs=built.n_inputs,
            layers=built.layers,
            weights=built.weights,
            weight_bits=other.weight_bits,
            membrane_bits=other.membrane_bits,
            leak_shift=built.leak_shift,
            scheduler=built.scheduler,
            decision=built.decision,
        )
    events = random_events(rnd, built.n_inputs, n_samples=3)
    hw = run_core(built, events, lanes=lanes, weights=other)
    assert compare(other, events, hw) == []


@pytest.mark.parametrize(
    ("n_inputs", "weight_bits", "slices"), [(300, 8, (4, 4)), (700, 7, (2, 2, 2, 1))]
)
def test_deep_weight_banks(n_inputs, weight_bits, slices):
    """Weight banks deeper than one block are bit-sliced memories: their initial contents and
    a reload through the weight port both give the reference's traces (negative weights
    included, so every slice carries sign bits)."""
    rnd = np.random.default_rng(n_inputs)
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1

    def model(seed):
        w = np.random.default_rng(seed)
        return Model(
            n_inputs=n_inputs,
            layers=(LayerSpec(8, 60, 256, "subtract"), LayerSpec(3, 20, 240)),
            weights=(
                w.integers(lo, hi, size=(8, n_inputs), endpoint=True),
                w.integers(lo, hi, size=(3, 8), endpoint=True),
            ),
            weight_bits=weight_bits,
            scheduler=SchedulerSpec(name="fifo", group_size=2),
        )

    built, other = model(1), model(2)
    assert weight_slices(CoreLayout.from_model(built, 1).weight_depth, weight_bits) == slices
    steps = [[rnd.permutation(n_inputs)[:12].tolist() for _ in range(3)] for _ in range(2)]
    events = EventSamples.from_lists(steps)
    assert compare(built, events, run_core(built, events)) == []
    assert compare(other, events, run_core(built, events, weights=other)) == []


@pytest.mark.parametrize("lanes", [2, 3])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_deep_fired_queue(scheduler, lanes):
    """A fired queue deeper than 64 entries carries each entry's lane count (for the drain):
    traces and counters as the reference's, under stalls and backpressure."""
    rnd = np.random.default_rng([lanes, SCHEDULERS.index(scheduler)])
    model = Model(
        n_inputs=12,
        layers=(LayerSpec(72, 30, 256, "subtract"), LayerSpec(5, 40, 250)),
        weights=(rnd.integers(-20, 60, size=(72, 12)), rnd.integers(-10, 40, size=(5, 72))),
        weight_bits=8,
        scheduler=SchedulerSpec(name=scheduler, group_size=3, momentum_buckets=4),
    )
    assert fire_count_stored(model, CoreLayout.from_model(model, lanes))
    events = random_events(rnd, model.n_inputs, n_samples=2)
    hw = run_core(model, events, lanes=lanes, stall=0.2, backpressure=0.2, rng_seed=lanes)
    assert compare(model, events, hw) == []


def test_without_debug_readout():
    """With ``debug`` low no membranes are streamed and the trace is unchanged."""
    rnd = np.random.default_rng(11)
    model = random_model(rnd, name="momentum")
    events = random_events(rnd, model.n_inputs)
    hw = run_core(model, events, lanes=2, debug=False)
    assert all(h.membranes == [] for h in hw)
    assert compare(model, events, hw, membranes=False) == []


def test_checker_catches_a_corrupted_spike():
    """The comparison can fail: one spike's neuron changed is reported."""
    model = worked_example(1)
    events = EventSamples.from_lists([[[0, 1]]])
    (hw,) = run_core(model, events)
    hw.trace[1] = (0, 0, 2)
    assert compare(model, events, [hw]) != []


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), lanes=st.sampled_from([1, 2, 4]))
def test_hypothesis_models(data, lanes):
    """The simulator's own model strategy (all parameters over their whole range)."""
    model = data.draw(models(max_layers=3, max_size=6, max_inputs=6))
    events = data.draw(batches(model.n_inputs, max_samples=2, max_steps=4))
    hw = run_core(model, events, lanes=lanes, stall=0.1, backpressure=0.1)
    assert compare(model, events, hw) == []


@pytest.mark.slow
@pytest.mark.parametrize("lanes", [1, 2, 3, 4])
def test_random_models_long(lanes):
    """250 random models of any scheduler per lane count (about 20 s each)."""
    failures = []
    for case in range(250):
        rnd = np.random.default_rng([5000 + case, lanes])
        model = random_model(rnd)
        events = random_events(rnd, model.n_inputs)
        hw = run_core(model, events, lanes=lanes, stall=0.2, backpressure=0.2, rng_seed=case)
        failures += [f"case {case} ({model.scheduler}): {e}" for e in compare(model, events, hw)]
    assert failures == []


@pytest.mark.parametrize("lanes", [1, 8])
def test_overlap_under_backpressure(lanes):
    """``fifo`` overlaps groups; heavy spike backpressure fills the fired-neuron queue."""
    failures = []
    for case in range(6):
        rnd = np.random.default_rng([77, case, lanes])
        model = random_model(rnd, name="fifo", group_size=int(rnd.choice([1, 2])))
        events = random_events(rnd, model.n_inputs)
        hw = run_core(model, events, lanes=lanes, backpressure=0.7, rng_seed=case)
        failures += [f"case {case} ({model.scheduler}): {e}" for e in compare(model, events, hw)]
    assert failures == []


@pytest.mark.parametrize("lanes", [1, 4])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_threshold_edges_and_saturation(scheduler, lanes):
    """Thresholds at both ends of their range (0 and vmax - 1) with narrow membranes that
    saturate both ways, one-cycle rows (K = 1 at L = 4) and both resets: the fused compare
    (``v + w - thr - 1 >= 0`` beside the add) and the reset value read off the saturation must
    agree with the reference everywhere."""
    failures = []
    for case in range(6):
        rnd = np.random.default_rng([77, case, lanes, SCHEDULERS.index(scheduler)])
        wb = mb = 4
        vmax = (1 << (mb - 1)) - 1
        layers, weights, fan_in = [], [], 3
        for i, size in enumerate((3, 2)):
            thr = (0, vmax - 1)[(i + case) % 2]
            reset = ("zero", "subtract")[(i + case // 2) % 2]
            layers.append(LayerSpec(size=size, threshold=thr, leak=16, reset=reset))
            weights.append(rnd.choice([-8, -7, 7, 6, 1], size=(size, fan_in)))
            fan_in = size
        model = Model(
            n_inputs=3,
            layers=tuple(layers),
            weights=tuple(weights),
            weight_bits=wb,
            membrane_bits=mb,
            leak_shift=4,
            scheduler=SchedulerSpec(name=scheduler, group_size=int(rnd.choice([0, 1, 2]))),
        )
        model.validate()
        events = random_events(rnd, model.n_inputs)
        hw = run_core(model, events, lanes=lanes, stall=0.2, backpressure=0.2, rng_seed=case)
        failures += [f"case {case}: {e}" for e in compare(model, events, hw)]
    assert failures == []


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_most_groups_in_a_step(scheduler):
    """A step with a group per source: the input's, then nine hidden neurons one at a time
    (F = 1); the output neuron fires in the last, whose index, 9, needs the full width of the
    group fields (four bits for the 11 sources)."""
    model = Model(
        n_inputs=1,
        layers=(LayerSpec(9, 0, 256), LayerSpec(1, 8, 256)),
        weights=(np.ones((9, 1), dtype=np.int64), np.ones((1, 9), dtype=np.int64)),
        scheduler=SchedulerSpec(name=scheduler, group_size=1),
    )
    events = EventSamples.from_lists([[[0], [0]]])
    (hw,) = run_core(model, events)
    assert max(group for _, group, _ in hw.trace) == 9
    assert compare(model, events, [hw]) == []


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_leak_row_taken_ahead_behind_a_held_row(scheduler):
    """One-cycle rows into layer 0 (4 hidden neurons at L = 4) and five-cycle rows into the
    output layer (20 neurons): a step that ends early leaves an output row in stage A, so the
    next step's single input row, its final row into layer 0, waits in the next-row slot behind
    it; the step after has two inputs, and its first, taken ahead, is a leak row (leak 200/256,
    with remainders). It must not enter stage A right behind that final row, where the words
    it reads would bypass the leak's multiply."""
    failures = []
    for threshold in (3, 10):
        for pattern in ([[0], [0, 1]], [[0], [0, 1], [1, 0]]):
            model = Model(
                n_inputs=2,
                layers=(LayerSpec(4, threshold, 200), LayerSpec(20, 100, 200)),
                weights=(np.array([[3, 2], [5, 1], [7, 4], [9, 3]]), np.ones((20, 4), np.int64)),
                weight_bits=8,
                membrane_bits=12,
                leak_shift=8,
                scheduler=SchedulerSpec(name=scheduler, group_size=0),
                decision="argmax_spike_count",
            )
            events = EventSamples.from_lists([(pattern * 15)[:30]])
            (hw,) = run_core(model, events, lanes=4, debug=False)
            errors = compare(model, events, [hw], membranes=False)
            failures += [f"threshold {threshold}, {pattern}: {e}" for e in errors]
    assert failures == []


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_leak_row_taken_ahead_rounds_the_forwarded_word(scheduler):
    """Two-cycle rows into layer 0 (4 hidden neurons at L = 2): the next step's first input row,
    taken ahead, is a leak row two row cycles behind the step's final row into layer 0, so it
    reads the words that row writes forwarded, and the leak's rounding toward zero must use
    them. Input 1 (weight -1) is each step's final row and leaves the membranes at -1, where
    the leak (255/256) rounds up to 0; rounded from the word read before that row (0) it would
    give -1, and the last step's +7 (threshold 5) would no longer fire the neurons."""
    model = Model(
        n_inputs=3,
        layers=(LayerSpec(4, 5, 255), LayerSpec(1, 100, 256)),
        weights=(np.array([[0, -1, 7]] * 4), np.ones((1, 4), np.int64)),
        weight_bits=8,
        membrane_bits=12,
        leak_shift=8,
        scheduler=SchedulerSpec(name=scheduler, group_size=0),
        decision="argmax_spike_count",
    )
    events = EventSamples.from_lists([[[0, 1]] * 6 + [[0, 1, 2]]])
    (hw,) = run_core(model, events, lanes=2, debug=False)
    assert [neuron for step, _, neuron in hw.trace] == [0, 1, 2, 3]
    assert compare(model, events, [hw], membranes=False) == []


@pytest.mark.parametrize("lanes", [1, 4])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_inputs_taken_ahead(scheduler, lanes):
    """Prioritized input without the read-out: the next step's input rows are taken while the
    step's hidden groups still run (a hidden spike of step s arrives after an input of step
    s + 1 was taken), and the trace is still the reference's. Small layers (one-cycle rows at
    L = 4) put the next step's first row, a leak row, right behind the step's final row into
    layer 0; leaks with remainders check its rounding. Heavy input stalls let a record arrive as
    a step ends, while STEP_WAIT hands the ahead slot's row over."""
    failures, ahead = [], 0
    for case in range(8):
        rnd = np.random.default_rng([91, case, lanes, SCHEDULERS.index(scheduler)])
        model = random_model(
            rnd, name=scheduler, prioritized_input=True, decision="argmax_spike_count"
        )
        steps = [
            rnd.permutation(model.n_inputs)[: rnd.integers(1, model.n_inputs + 1)] for _ in range(8)
        ]
        events = EventSamples.from_lists([[s.tolist() for s in steps]], sample_ids=[case])
        # heavy input stalls: a record arriving as the step ends (the ahead slot's handover)
        for stall, backpressure in ((0.0, 0.0), (0.2, 0.2), (0.8, 0.3)):
            (hw,) = run_core(
                model,
                events,
                lanes=lanes,
                stall=stall,
                backpressure=backpressure,
                rng_seed=case,
                debug=False,
            )
            failures += [f"case {case}: {e}" for e in compare(model, events, [hw], membranes=False)]
            if stall:
                continue
            first_output = model.layer_starts[-1]
            taken = set()  # steps with an input taken so far
            for item in hw.order:
                if item[0] == "input":
                    taken.add(item[1])
                elif item[2] < first_output and item[1] + 1 in taken:  # a hidden spike
                    ahead += 1
    assert failures == []
    assert ahead > 0
