"""Every worked example of ``docs/semantics.md``, with exactly the numbers printed there.

Each test names the section of the contract it comes from. The examples are run through the
public entry point (:func:`unlayered.sim.simulate`) on networks built so that the quantity of the
example is observable: membranes recorded at the end of each step, the trace, the group log.
"""

from __future__ import annotations

import numpy as np
import pytest

from unlayered.sim.rng import pick_index, sample_seed, xorshift32

from .helpers import ENGINES, make_model, run


def trace_of(result):
    return [tuple(row) for row in result.trace.tolist()]


# ---------------------------------------------------------------------------------------------
# Section 5.1: leak examples (leak_shift = 8, leak = 230, beta about 0.898)


@pytest.mark.parametrize("engine", ENGINES)
def test_leak_examples_230(engine):
    # One input channel sets each neuron's membrane to the example's value in step 0 (the leak
    # of step 0 acts on 0); step 1 has no input, so its membranes are the leaked values.
    # The threshold is out of reach, so nothing fires.
    values = [100, -100, 5, -5, 1, -1]
    model = make_model(1, [(6, 1000, 230, "zero")], [[[x] for x in values]])
    r = run(model, [[0], []], engine)
    assert r.membranes.tolist() == [values, [89, -89, 4, -4, 0, 0]]
    assert 100 * 230 / 256 == pytest.approx(89.84, abs=0.005)  # the doc's 23000/256 = 89.84
    assert trace_of(r) == []


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("leak", "expected"), [(256, [100, -100, 5, -5, 1, -1]), (0, [0] * 6)])
def test_leak_examples_none_and_full(engine, leak, expected):
    # With leak = 256 (= 2^leak_shift) membranes are unchanged; with leak = 0 they become 0.
    values = [100, -100, 5, -5, 1, -1]
    model = make_model(1, [(6, 1000, leak, "zero")], [[[x] for x in values]])
    r = run(model, [[0], []], engine)
    assert r.membranes.tolist() == [values, expected]


# ---------------------------------------------------------------------------------------------
# Section 2: saturation example (membrane_bits = 8, range -128..127)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("order", "expected"), [([1, 2], 107), ([2, 1], 110)])
def test_saturation_example(engine, order, expected):
    # Channel 0 (weight 120) sets v = 120 in step 0; step 1 delivers +10 (channel 1) and -20
    # (channel 2) in the given arrival order, as one prioritized input group, no leak.
    # +10, -20: clamp(130) = 127, then 107.   -20, +10: 100, then 110.
    # Threshold 126 (VMAX - 1) is never crossed at evaluation (107 and 110 <= 126).
    model = make_model(3, [(1, 126, 256, "zero")], [[[120, 10, -20]]], membrane_bits=8)
    assert (model.vmin, model.vmax) == (-128, 127)
    r = run(model, [[0], order], engine)
    assert r.membranes.tolist() == [[120], [expected]]
    assert trace_of(r) == []


# ---------------------------------------------------------------------------------------------
# Section 5: one step, F = 1 versus F = 2


def _one_step_model(group_size):
    # 2 inputs, layer 0 = neurons 0, 1 (threshold 5, reset zero, no leak), layer 1 = neuron 2
    # (threshold 5); weights[0] = [[4, 3], [2, 4]], weights[1] = [[3, 3]]; fifo, prioritized.
    return make_model(
        2,
        [(2, 5, 256, "zero"), (1, 5, 256, "zero")],
        [[[4, 3], [2, 4]], [[3, 3]]],
        name="fifo",
        group_size=group_size,
        prioritized_input=True,
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_one_step_f1(engine):
    r = run(_one_step_model(1), [[0, 1]], engine)
    # Group 0 (input): v0 = 4, v1 = 2, then v0 = 7, v1 = 6; both fire; 4 synaptic operations.
    # Group 1 = [n0]: v2 = 3, no spike. Group 2 = [n1]: v2 = 6, fires: (0, 2, 2).
    assert trace_of(r) == [(0, 0, 0), (0, 0, 1), (0, 2, 2)]
    assert r.group_log.tolist() == [[0, 0, 4], [0, 1, 1], [0, 2, 1]]
    assert r.groups == 3
    assert r.synops == 6
    assert r.membranes.tolist() == [[0, 0, 0]]
    assert r.output_counts.tolist() == [1]
    assert r.decision == 0
    assert (r.decision_step, r.decision_group) == (0, 2)


@pytest.mark.parametrize("engine", ENGINES)
def test_one_step_f2(engine):
    r = run(_one_step_model(2), [[0, 1]], engine)
    # Group 1 = [n0, n1]: v2 = 3, then 6; evaluate: fires (0, 1, 2). 2 groups.
    assert trace_of(r) == [(0, 0, 0), (0, 0, 1), (0, 1, 2)]
    assert r.group_log.tolist() == [[0, 0, 4], [0, 1, 2]]
    assert r.groups == 2
    assert r.synops == 6
    assert r.membranes.tolist() == [[0, 0, 0]]
    assert (r.decision_step, r.decision_group) == (0, 1)


# ---------------------------------------------------------------------------------------------
# Section 6.3: random scheduler seeding, generator outputs and picks


def test_sample_seed_example():
    # MurmurHash3's finalizer of seed 1, id 0, by hand:
    #   x = 1;  x ^= x >> 16 -> 0x00000001;  x *= 0x85EBCA6B -> 0x85EBCA6B
    #   x ^= x >> 13 (0x00042F5E) -> 0x85EFE535;  x *= 0xC2B2AE35 -> 0x514E79F9 (mod 2^32)
    #   x ^= x >> 16 (0x514E) -> 0x514E28B7
    assert sample_seed(1, 0) == 0x514E28B7
    x = 0x85EFE535 * 0xC2B2AE35 % (1 << 32)
    assert x == 0x514E79F9 and x ^ (x >> 16) == 0x514E28B7
    # The state never starts at 0, and the id (not a batch position) enters the hash.
    assert sample_seed(1, 1) != sample_seed(1, 0)


def test_xorshift32_example():
    # From 0x514E28B7, by hand: x ^= x << 13: 0x514E28B7 ^ 0xC516E000 = 0x9458C8B7;
    # x ^= x >> 17: ^ 0x00004A2C = 0x9458829B; x ^= x << 5: ^ 0x8B105360 = 0x1F48D1FB.
    x = 0x514E28B7
    assert (x << 13) % (1 << 32) == 0xC516E000 and x ^ 0xC516E000 == 0x9458C8B7
    assert 0x9458C8B7 >> 17 == 0x4A2C and 0x9458C8B7 ^ 0x4A2C == 0x9458829B
    assert (0x9458829B << 5) % (1 << 32) == 0x8B105360 and 0x9458829B ^ 0x8B105360 == 0x1F48D1FB
    outputs = []
    for _ in range(4):
        x = xorshift32(x)
        outputs.append(x)
    assert outputs == [0x1F48D1FB, 0xAB81DB40, 0x8DDBF5B4, 0x9ECC8C42]


def test_random_pick_example():
    # P = [a, b, c, d]: idx = (0x1F48 * 4) >> 16 = 0 -> a, P = [d, b, c];
    # idx = (0xAB81 * 3) >> 16 = 2 -> c, P = [d, b]; idx = (0x8DDB * 2) >> 16 = 1 -> b, P = [d];
    # then d.
    assert pick_index(0x1F48D1FB, 4) == 0
    assert pick_index(0xAB81DB40, 3) == 2
    assert pick_index(0x8DDBF5B4, 2) == 1
    assert pick_index(0x9ECC8C42, 1) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_random_pick_example_in_the_engine(engine):
    # The pick order is visible in a one-layer network: input channel c feeds only output
    # neuron c, which fires as soon as it receives the input (threshold 0, weight 1). With
    # non-prioritized input and F = 1, channels 0..3 (arrival order) form P = [a, b, c, d] and
    # each group delivers one pick: a, c, b, d, i.e. neurons 0, 2, 1, 3 in groups 0..3.
    model = make_model(
        4,
        [(4, 0, 256, "zero")],
        [np.eye(4, dtype=np.int64)],
        name="random",
        group_size=1,
        prioritized_input=False,
        seed=1,
    )
    r = run(model, [[0, 1, 2, 3]], engine, sample_id=0)
    assert trace_of(r) == [(0, 0, 0), (0, 1, 2), (0, 2, 1), (0, 3, 3)]


# ---------------------------------------------------------------------------------------------
# Section 6.4: momentum buckets (momentum_shift = 2, 4 buckets, threshold 10)


def test_momentum_bucket_formula_example():
    # Overshoots 1, 4, 5, 20 give buckets min((o - 1) >> 2, 3) = 0, 0, 1, 3.
    buckets = [min((o - 1) >> 2, 4 - 1) for o in (11 - 10, 14 - 10, 15 - 10, 30 - 10)]
    assert buckets == [0, 0, 1, 3]


@pytest.mark.parametrize("engine", ENGINES)
def test_momentum_example(engine):
    # Layer 0: neurons 0..3, threshold 10, set by channel 0 to 11, 14, 15, 30, so they fire
    # together in the input group (entering the pending set in that order, buckets 0, 0, 1, 3).
    # Layer 1: output neuron 4 + k fires as soon as it hears from neuron k (weight 20 > 10,
    # other weights 0). With F = 1, each group delivers one pick, so the output spikes show the
    # pick order: 30 (neuron 3), 15 (neuron 2), then 11 and 14 in their order of entry (0, 1).
    model = make_model(
        1,
        [(4, 10, 256, "zero"), (4, 10, 256, "zero")],
        [[[11], [14], [15], [30]], 20 * np.eye(4, dtype=np.int64)],
        name="momentum",
        group_size=1,
        momentum_buckets=4,
        momentum_shift=2,
    )
    r = run(model, [[0]], engine)
    assert trace_of(r) == [
        (0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 0, 3),
        (0, 1, 7), (0, 2, 6), (0, 3, 4), (0, 4, 5),
    ]  # fmt: skip
