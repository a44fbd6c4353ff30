"""Small networks whose whole execution is worked out by hand from ``docs/semantics.md``.

Every expected value below (trace, group log, membranes at the end of each step, output counts,
decision, decision point and every metric) was derived from the contract in the comment above
it, event by event, before being checked against the engines. One wrong event fails the test.

Notation in the comments: ``cK`` is input channel K, ``nK`` is neuron K (global index);
``gK`` is group K of the step; ``P`` is the pending set in its scheduler's order;
``(t, g, n)`` is a trace row. "refr" means refractory (the add is skipped, still a synop).
"""

from __future__ import annotations

import numpy as np
import pytest

from unlayered.sim.rng import pick_index, sample_seed, xorshift32

from .helpers import ENGINES, make_model, run


def observed(r):
    """Everything a sample produces, as plain lists and tuples."""
    return {
        "trace": [tuple(x) for x in r.trace.tolist()],
        "group_log": [tuple(x) for x in r.group_log.tolist()],
        "membranes": r.membranes.tolist(),
        "output_counts": r.output_counts.tolist(),
        "decision": r.decision,
        "decision_point": (r.decision_step, r.decision_group),
        "spikes": r.spikes.tolist(),
        "synops": r.synops,
        "groups": r.groups,
        "dropped": r.dropped,
        "steps": r.steps,
        "input_events": r.input_events,
        "spikes_to_decision": r.spikes_to_decision.tolist(),
        "synops_to_decision": r.synops_to_decision,
        "groups_to_decision": r.groups_to_decision,
    }


def check(r, expected):
    """``expected`` must name every field of :func:`observed`; all must match."""
    got = observed(r)
    assert set(expected) == set(got)
    assert got == expected


# ---------------------------------------------------------------------------------------------
# NET3: the three-layer network shared by the fifo, random, sync (finite F), F comparison,
# max_groups_per_step and first_to_threshold cases.
#
#   3 inputs c0..c2 (sources 0..2)
#   layer 0: n0, n1, n2   threshold 2, no leak, reset zero   (sources 3, 4, 5)
#   layer 1: n3, n4       threshold 2, no leak, reset zero   (sources 6, 7)
#   layer 2: n5, n6       threshold 3, no leak, reset zero   (output)
#
#   weights[0] = identity * 3: cK adds 3 to nK only (the others get + 0, still touched)
#   weights[1]: n3 <- n0: 1, n1: 1, n2: 2        n4 <- n0: 3, n1: 0, n2: 0
#   weights[2]: n5 <- n3: -2, n4: 4              n6 <- n3: 3, n4: 1
#
# Synops: an input event is 3 synops (layer 0), a layer-0 spike 2 (layer 1), a layer-1 spike 2.

NET3_LAYERS = [(3, 2, 256, "zero"), (2, 2, 256, "zero"), (2, 3, 256, "zero")]
NET3_WEIGHTS = [3 * np.eye(3, dtype=np.int64), [[1, 1, 2], [3, 0, 0]], [[-2, 4], [3, 1]]]


def net3(**scheduler):
    decision = scheduler.pop("decision", "argmax_spike_count")
    return make_model(3, NET3_LAYERS, NET3_WEIGHTS, decision=decision, **scheduler)


# ---------------------------------------------------------------------------------------------
# sync


@pytest.mark.parametrize("engine", ENGINES)
def test_sync_layer_by_layer(engine):
    # 2 inputs; layer 0: n0, n1, n2 (threshold 4, no leak, zero); layer 1 (output): n3, n4
    # (threshold 5, leak 128/256 = one half, zero). sync, F = 0, prioritized input.
    # weights[0]: n0 <- [5, 0], n1 <- [3, 2], n2 <- [-2, 6]
    # weights[1]: n3 <- [4, 3, -1], n4 <- [2, 2, 5]
    #
    # Step 0, input [c1, c0]. Leak of zeros.
    #   g0 (input, arrival order): c1: n0 0, n1 2, n2 6; c0: n0 5, n1 5, n2 4. 6 synops.
    #      evaluate n0: 5 > 4 fires; n1: 5 > 4 fires; n2: 4, no.  (0,0,0) (0,0,1)
    #   g1 = layer 0's pending [n0, n1]: n0: n3 4, n4 2; n1: n3 7, n4 4. 4 synops.
    #      evaluate n3: 7 > 5 fires (0,1,3); n4: 4, no.
    #   membranes [0, 0, 4, 0, 4]
    # Step 1, input [c0]. Leak: layer 1 halves: n4 4 -> 2.
    #   g0: n0 5 fires (1,0,0); n1 0 + 3 = 3; n2 4 - 2 = 2. 3 synops.
    #   g1 = [n0]: n3 0 + 4 = 4, n4 2 + 2 = 4; no spike. 2 synops.
    #   membranes [0, 3, 2, 4, 4]
    # Step 2, input [c1]. Leak: n3 4 -> 2, n4 4 -> 2.
    #   g0: n0 0 + 0 = 0; n1 3 + 2 = 5 fires (2,0,1); n2 2 + 6 = 8 fires (2,0,2). 3 synops.
    #   g1 = [n1, n2]: n1: n3 2 + 3 = 5, n4 2 + 2 = 4; n2: n3 5 - 1 = 4, n4 4 + 5 = 9. 4 synops.
    #      evaluate n3: 4, no; n4: 9 > 5 fires (2,1,4).
    #   membranes [0, 0, 0, 4, 0]
    # Output counts [1, 1]: argmax ties to the lowest index, decision 0. Running decision: 0
    # after (0,1) and still 0 after (2,1), so the decision point is (0,1): spikes [2, 1],
    # synops 6 + 4 = 10, 2 groups up to it.
    model = make_model(
        2,
        [(3, 4, 256, "zero"), (2, 5, 128, "zero")],
        [[[5, 0], [3, 2], [-2, 6]], [[4, 3, -1], [2, 2, 5]]],
        name="sync",
        group_size=0,
    )
    check(
        run(model, [[1, 0], [0], [1]], engine),
        {
            "trace": [(0, 0, 0), (0, 0, 1), (0, 1, 3), (1, 0, 0), (2, 0, 1), (2, 0, 2), (2, 1, 4)],
            "group_log": [(0, 0, 6), (0, 1, 4), (1, 0, 3), (1, 1, 2), (2, 0, 3), (2, 1, 4)],
            "membranes": [[0, 0, 4, 0, 4], [0, 3, 2, 4, 4], [0, 0, 0, 4, 0]],
            "output_counts": [1, 1],
            "decision": 0,
            "decision_point": (0, 1),
            "spikes": [5, 2],
            "synops": 22,
            "groups": 6,
            "dropped": 0,
            "steps": 3,
            "input_events": 4,
            "spikes_to_decision": [2, 1],
            "synops_to_decision": 10,
            "groups_to_decision": 2,
        },
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_sync_finite_group_size_never_mixes_layers(engine):
    # NET3, sync, F = 2, prioritized. Steps [c0, c1, c2], [c1].
    # Step 0:
    #   g0 (input): n0, n1, n2 each 3 > 2: fire (0,0,0) (0,0,1) (0,0,2). 9 synops.
    #      P: layer 0 [n0, n1, n2].
    #   g1 = [n0, n1] (two lowest of layer 0): n0: n3 1, n4 3; n1: n3 2, n4 3. 4 synops.
    #      n3 2, no; n4 3 > 2 fires (0,1,4). P: layer 0 [n2], layer 1 [n4].
    #   g2 = [n2] only: layer 0 is exhausted, so the group ends (never mixes layers; fifo would
    #      take [n2, n4]). n3 2 + 2 = 4; n4 refr. 2 synops. n3 fires (0,2,3).
    #      P: layer 1 [n3, n4] (lowest source first).
    #   g3 = [n3, n4]: n3: n5 -2, n6 3; n4: n5 -2 + 4 = 2, n6 3 + 1 = 4. 4 synops.
    #      n5 2, no; n6 4 > 3 fires (0,3,6).
    #   membranes [0, 0, 0, 0, 0, 2, 0]
    # Step 1: g0: n1 3 fires (1,0,1) (n0, n2 + 0). 3 synops. g1 = [n1]: n3 0 + 1 = 1, n4 0 + 0.
    #   2 synops. membranes [0, 0, 0, 1, 0, 2, 0]
    # Output counts [0, 1]: decision 1, decided at (0,3) (running decision 1 from then on):
    # spikes [3, 2, 1], synops 9 + 4 + 2 + 4 = 19, 4 groups.
    check(
        run(net3(name="sync", group_size=2), [[0, 1, 2], [1]], engine),
        {
            "trace": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 4), (0, 2, 3), (0, 3, 6), (1, 0, 1)],
            "group_log": [(0, 0, 9), (0, 1, 4), (0, 2, 2), (0, 3, 4), (1, 0, 3), (1, 1, 2)],
            "membranes": [[0, 0, 0, 0, 0, 2, 0], [0, 0, 0, 1, 0, 2, 0]],
            "output_counts": [0, 1],
            "decision": 1,
            "decision_point": (0, 3),
            "spikes": [4, 2, 1],
            "synops": 24,
            "groups": 6,
            "dropped": 0,
            "steps": 2,
            "input_events": 4,
            "spikes_to_decision": [3, 2, 1],
            "synops_to_decision": 19,
            "groups_to_decision": 4,
        },
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_sync_finite_group_size_non_prioritized_input(engine):
    # NET3, sync, F = 2, input not prioritized. Step 0 arrives as [c2, c0, c1].
    # P: input layer [c0, c1, c2] (sync picks the lowest source index, not arrival order).
    #   g0 = [c0, c1]: n0 3, n1 3, n2 0. 6 synops. n0, n1 fire (0,0,0) (0,0,1).
    #   g1 = [c2]: the input layer is exhausted, the group ends there (n0, n1 are pending in
    #      layer 0). n2 3. 3 synops. n2 fires (0,1,2) (n0, n1 refr, not fired again).
    #   g2 = [n0, n1]: n3 1 + 1 = 2, n4 3 + 0 = 3. 4 synops. n4 fires (0,2,4).
    #   g3 = [n2]: n3 2 + 2 = 4, n4 refr. 2 synops. n3 fires (0,3,3).
    #   g4 = [n3, n4]: n5 -2 + 4 = 2, n6 3 + 1 = 4. 4 synops. n6 fires (0,4,6).
    #   membranes [0, 0, 0, 0, 0, 2, 0]
    # Output counts [0, 1], decision 1 at (0,4) = the last group: to-decision = totals.
    check(
        run(net3(name="sync", group_size=2, prioritized_input=False), [[2, 0, 1]], engine),
        {
            "trace": [(0, 0, 0), (0, 0, 1), (0, 1, 2), (0, 2, 4), (0, 3, 3), (0, 4, 6)],
            "group_log": [(0, 0, 6), (0, 1, 3), (0, 2, 4), (0, 3, 2), (0, 4, 4)],
            "membranes": [[0, 0, 0, 0, 0, 2, 0]],
            "output_counts": [0, 1],
            "decision": 1,
            "decision_point": (0, 4),
            "spikes": [3, 2, 1],
            "synops": 19,
            "groups": 5,
            "dropped": 0,
            "steps": 1,
            "input_events": 3,
            "spikes_to_decision": [3, 2, 1],
            "synops_to_decision": 19,
            "groups_to_decision": 5,
        },
    )


# ---------------------------------------------------------------------------------------------
# fifo


@pytest.mark.parametrize("engine", ENGINES)
def test_fifo_f2_mixes_layers(engine):
    # NET3, fifo, F = 2, prioritized. Steps [c0, c1, c2], [c1].
    # Step 0:
    #   g0 (input): n0, n1, n2 fire (0,0,0) (0,0,1) (0,0,2). 9 synops. P [n0, n1, n2].
    #   g1 = [n0, n1]: n3 1, then 2; n4 3, then 3. n4 fires (0,1,4). 4 synops. P [n2, n4].
    #   g2 = [n2, n4] (a layer-0 and a layer-1 source in one group):
    #      n2: n3 2 + 2 = 4, n4 refr; n4: n5 0 + 4 = 4, n6 0 + 1 = 1. 4 synops.
    #      evaluate n3 (4 > 2 fires (0,2,3)), n4 (refr), n5 (4 > 3 fires (0,2,5)), n6 (1, no).
    #      P [n3].
    #   g3 = [n3]: n5 refr (stays 0, not -2); n6 1 + 3 = 4 fires (0,3,6). 2 synops.
    #   membranes all 0.
    # Step 1: g0: n1 fires (1,0,1), 3 synops; g1 = [n1]: n3 1, n4 0, 2 synops.
    #   membranes [0, 0, 0, 1, 0, 0, 0]
    # Output counts [1, 1]: decision 0 (tie to the lowest); running decision 0 after (0,2) and
    # after (0,3): decision point (0,2): spikes [3, 2, 1], synops 9 + 4 + 4 = 17, 3 groups.
    trace = [
        (0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 4), (0, 2, 3), (0, 2, 5), (0, 3, 6), (1, 0, 1),
    ]  # fmt: skip
    check(
        run(net3(name="fifo", group_size=2), [[0, 1, 2], [1]], engine),
        {
            "trace": trace,
            "group_log": [(0, 0, 9), (0, 1, 4), (0, 2, 4), (0, 3, 2), (1, 0, 3), (1, 1, 2)],
            "membranes": [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]],
            "output_counts": [1, 1],
            "decision": 0,
            "decision_point": (0, 2),
            "spikes": [4, 2, 2],
            "synops": 24,
            "groups": 6,
            "dropped": 0,
            "steps": 2,
            "input_events": 4,
            "spikes_to_decision": [3, 2, 1],
            "synops_to_decision": 17,
            "groups_to_decision": 3,
        },
    )


# NET3, fifo, F = 1, prioritized, steps [c0, c1, c2], [c1].
# Step 0:
#   g0 (input): n0, n1, n2 fire. 9 synops. P [n0, n1, n2].
#   g1 = [n0]: n3 1, n4 3 fires (0,1,4). P [n1, n2, n4].
#   g2 = [n1]: n3 1 + 1 = 2 (no), n4 refr. P [n2, n4].
#   g3 = [n2]: n3 2 + 2 = 4 fires (0,3,3), n4 refr. P [n4, n3] (entry order, not index order).
#   g4 = [n4]: n5 4 fires (0,4,5), n6 1. P [n3].
#   g5 = [n3]: n5 refr, n6 1 + 3 = 4 fires (0,5,6). Each of g1..g5 is 2 synops.
#   membranes all 0.
# Step 1: g0: n1 fires (1,0,1); g1 = [n1]: n3 1. membranes [0, 0, 0, 1, 0, 0, 0].
NET3_FIFO_F1 = {
    "trace": [
        (0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 4), (0, 3, 3), (0, 4, 5), (0, 5, 6), (1, 0, 1),
    ],
    "group_log": [
        (0, 0, 9), (0, 1, 2), (0, 2, 2), (0, 3, 2), (0, 4, 2), (0, 5, 2), (1, 0, 3), (1, 1, 2),
    ],
    "membranes": [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0]],
    # Output counts [1, 1]: decision 0, running decision 0 from (0,4) on: decision point (0,4),
    # spikes [3, 2, 1], synops 9 + 4 * 2 = 17, 5 groups up to it.
    "output_counts": [1, 1],
    "decision": 0,
    "decision_point": (0, 4),
    "spikes": [4, 2, 2],
    "synops": 24,
    "groups": 8,
    "dropped": 0,
    "steps": 2,
    "input_events": 4,
    "spikes_to_decision": [3, 2, 1],
    "synops_to_decision": 17,
    "groups_to_decision": 5,
}  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_fifo_f1(engine):
    check(run(net3(name="fifo", group_size=1), [[0, 1, 2], [1]], engine), NET3_FIFO_F1)


@pytest.mark.parametrize("engine", ENGINES)
def test_fifo_entry_order_and_momentum_ties(engine):
    # 2 inputs; layer 0: n0, n1 (threshold 0, no leak); layer 1 (output): n2, n3 (threshold 0).
    # c0 feeds only n1, c1 only n0; n0 feeds only n2, n1 only n3 (weight 1, others 0).
    # Input [c0, c1] not prioritized, F = 1.
    #   g0 = [c0]: n1 1 fires (0,0,1). g1 = [c1]: n0 1 fires (0,1,0). P [n1, n0].
    #   fifo: g2 = [n1]: n3 fires (0,2,3); g3 = [n0]: n2 fires (0,3,2).
    #   momentum (shift 0, 2 buckets): the inputs are in the top bucket 1, the spikes have
    #   overshoot 1, bucket 0, and are taken oldest first: the same trace as fifo.
    #   sync: g0 = [c0], g1 = [c1] (lowest index), then layer 0 lowest index first:
    #   g2 = [n0]: n2 fires (0,2,2); g3 = [n1]: n3 fires (0,3,3).
    # Each group is 2 synops. Output counts [1, 1], decision 0. fifo/momentum: the running
    # decision is 1 after (0,2) and 0 after (0,3): decision point (0,3), everything.
    # sync: 0 after (0,2) and still 0 after (0,3): decision point (0,2).
    weights = [[[0, 1], [1, 0]], [[1, 0], [0, 1]]]
    layers = [(2, 0, 256, "zero"), (2, 0, 256, "zero")]
    queued = {
        "trace": [(0, 0, 1), (0, 1, 0), (0, 2, 3), (0, 3, 2)],
        "group_log": [(0, 0, 2), (0, 1, 2), (0, 2, 2), (0, 3, 2)],
        "membranes": [[0, 0, 0, 0]],
        "output_counts": [1, 1],
        "decision": 0,
        "decision_point": (0, 3),
        "spikes": [2, 2],
        "synops": 8,
        "groups": 4,
        "dropped": 0,
        "steps": 1,
        "input_events": 2,
        "spikes_to_decision": [2, 2],
        "synops_to_decision": 8,
        "groups_to_decision": 4,
    }
    synced = dict(
        queued,
        trace=[(0, 0, 1), (0, 1, 0), (0, 2, 2), (0, 3, 3)],
        decision_point=(0, 2),
        spikes_to_decision=[2, 1],
        synops_to_decision=6,
        groups_to_decision=3,
    )
    common = {"group_size": 1, "prioritized_input": False}
    fifo = make_model(2, layers, weights, name="fifo", **common)
    check(run(fifo, [[0, 1]], engine), queued)
    momentum = make_model(
        2, layers, weights, name="momentum", momentum_buckets=2, momentum_shift=0, **common
    )
    check(run(momentum, [[0, 1]], engine), queued)
    sync = make_model(2, layers, weights, name="sync", **common)
    check(run(sync, [[0, 1]], engine), synced)


# ---------------------------------------------------------------------------------------------
# random


def test_random_generator_values_used_below():
    # Seed 1, sample id 0: state 0x514E28B7 (semantics 6.3). The outputs r1.. and their upper
    # halves r >> 16, which the picks below use: idx = ((r >> 16) * n) >> 16.
    state = sample_seed(1, 0)
    assert state == 0x514E28B7
    outputs = []
    for _ in range(10):
        state = xorshift32(state)
        outputs.append(state >> 16)
    assert outputs == [8008, 43905, 36315, 40652, 59357, 29970, 23729, 12308, 32914, 38992]
    # The picks of test_random_trace, with the list size n at each pick:
    sizes = [3, 3, 2, 1, 1, 3, 2, 2, 2, 1]
    assert [pick_index(r << 16, n) for r, n in zip(outputs, sizes, strict=True)] == [
        0, 2, 1, 0, 0, 1, 0, 0, 1, 0
    ]  # fmt: skip


@pytest.mark.parametrize("engine", ENGINES)
def test_random_trace(engine):
    # NET3, random, F = 1, prioritized, seed 1, sample id 0. Steps [c0, c1, c2], [c2, c0, c1].
    # r >> 16 of the successive outputs: 8008, 43905, 36315, 40652, 59357, 29970, 23729, 12308,
    # 32914, 38992 (see test_random_generator_values_used_below).
    # Step 0:
    #   g0 (input): n0, n1, n2 fire. P = [n0, n1, n2].
    #   pick 1: (8008 * 3) >> 16 = 0 -> n0; P = [n2, n1] (the last moves into the hole).
    #   g1 = [n0]: n3 1, n4 3 fires (0,1,4). P = [n2, n1, n4].
    #   pick 2: (43905 * 3) >> 16 = 131715 >> 16 = 2 -> n4; P = [n2, n1].
    #   g2 = [n4]: n5 4 fires (0,2,5), n6 1.
    #   pick 3: (36315 * 2) >> 16 = 72630 >> 16 = 1 -> n1; P = [n2].
    #   g3 = [n1]: n3 1 + 1 = 2, n4 refr. No spike.
    #   pick 4: n = 1 -> n2. g4 = [n2]: n3 2 + 2 = 4 fires (0,4,3), n4 refr. P = [n3].
    #   pick 5: n = 1 -> n3. g5 = [n3]: n5 refr; n6 1 + 3 = 4 fires (0,5,6).
    #   membranes all 0.
    # Step 1 (the generator state carries over from step 0):
    #   g0 (input, [c2, c0, c1]): n2, n0, n1 get 3: all fire (1,0,0) (1,0,1) (1,0,2).
    #      P = [n0, n1, n2] (evaluation order).
    #   pick 6: (29970 * 3) >> 16 = 89910 >> 16 = 1 -> n1; P = [n0, n2].
    #   g1 = [n1]: n3 0 + 1 = 1, n4 0 + 0 = 0. No spike.
    #   pick 7: (23729 * 2) >> 16 = 0 -> n0; P = [n2].
    #   g2 = [n0]: n3 1 + 1 = 2, n4 0 + 3 = 3 fires (1,2,4). P = [n2, n4].
    #   pick 8: (12308 * 2) >> 16 = 0 -> n2; P = [n4].
    #   g3 = [n2]: n3 2 + 2 = 4 fires (1,3,3), n4 refr. P = [n4, n3].
    #   pick 9: (32914 * 2) >> 16 = 65828 >> 16 = 1 -> n3; P = [n4].
    #   g4 = [n3]: n5 0 - 2 = -2, n6 0 + 3 = 3 (not > 3). No spike.
    #   pick 10: n = 1 -> n4. g5 = [n4]: n5 -2 + 4 = 2, n6 3 + 1 = 4 fires (1,5,6).
    #   membranes [0, 0, 0, 0, 0, 2, 0]
    # Synops: 9 + 5 * 2 per step = 38; 12 groups.
    # Output counts [1, 2]: decision 1. The running decision is 0 after (0,2), 0 after (0,5)
    # (tie [1, 1]) and 1 only after (1,5): the decision point is the last group, later than the
    # first output spike, and the to-decision metrics are the totals.
    trace = [
        (0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 4), (0, 2, 5), (0, 4, 3), (0, 5, 6),
        (1, 0, 0), (1, 0, 1), (1, 0, 2), (1, 2, 4), (1, 3, 3), (1, 5, 6),
    ]  # fmt: skip
    check(
        run(net3(name="random", group_size=1, seed=1), [[0, 1, 2], [2, 0, 1]], engine),
        {
            "trace": trace,
            "group_log": [(t, g, 9 if g == 0 else 2) for t in range(2) for g in range(6)],
            "membranes": [[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 2, 0]],
            "output_counts": [1, 2],
            "decision": 1,
            "decision_point": (1, 5),
            "spikes": [6, 4, 3],
            "synops": 38,
            "groups": 12,
            "dropped": 0,
            "steps": 2,
            "input_events": 6,
            "spikes_to_decision": [6, 4, 3],
            "synops_to_decision": 38,
            "groups_to_decision": 12,
        },
    )


# ---------------------------------------------------------------------------------------------
# momentum


@pytest.mark.parametrize("engine", ENGINES)
def test_momentum_trace(engine):
    # 2 inputs; momentum, F = 1, 4 buckets, momentum_shift 2, input not prioritized (inputs go
    # to the top bucket 3). bucket = min((overshoot - 1) >> 2, 3).
    #   layer 0: n0, n1, n2  threshold 10, no leak, zero
    #   layer 1: n3, n4      threshold 5, no leak, zero
    #   layer 2: n5, n6      threshold 5, leak 128/256 (one half), zero  (output)
    #   weights[0]: n0 <- [11, 5], n1 <- [30, -4], n2 <- [15, 12]
    #   weights[1]: n3 <- [-3, 6, 0], n4 <- [1, 2, 12]
    #   weights[2]: n5 <- [2, 3], n6 <- [0, 7]
    # Step 0, input [c0]: bucket 3 = [c0].
    #   g0 = [c0]: n0 11, n1 30, n2 15; all fire (0,0,0) (0,0,1) (0,0,2), overshoots 1, 20, 5:
    #      buckets 0, 3, 1. b3 [n1], b1 [n2], b0 [n0]. 3 synops.
    #   g1 = [n1] (b3): n3 6 fires (0,1,3) (overshoot 1, b0 = [n0, n3]); n4 2.
    #   g2 = [n2] (b1): n3 refr; n4 2 + 12 = 14 fires (0,2,4): overshoot 9, (8 >> 2) = bucket 2.
    #   g3 = [n4] (b2): n5 3; n6 7 fires (0,3,6).
    #   g4 = [n0] (b0, oldest): n3, n4 both refr: nothing changes (n3 would be -3).
    #   g5 = [n3] (b0): n5 3 + 2 = 5 (not > 5); n6 refr.
    #   membranes [0, 0, 0, 0, 0, 5, 0]. 3 + 5 * 2 = 13 synops.
    # Step 1, input [c1, c0]: bucket 3 = [c1, c0]. Leak: n5 5 * 128 / 256 = 2.5 -> 2.
    #   g0 = [c1] (oldest of b3): n0 5, n1 -4, n2 12 fires (1,0,2), overshoot 2, bucket 0.
    #   g1 = [c0] (b3, before any lower bucket): n0 16 fires (overshoot 6, bucket 1), n1 26
    #      fires (overshoot 16, (15 >> 2) = bucket 3); n2 refr. (1,1,0) (1,1,1).
    #      b3 [n1], b1 [n0], b0 [n2].
    #   g2 = [n1]: n3 6 fires (1,2,3) (bucket 0: b0 = [n2, n3]); n4 2.
    #   g3 = [n0] (b1): n3 refr; n4 2 + 1 = 3, no.
    #   g4 = [n2] (b0, oldest): n3 refr; n4 3 + 12 = 15 fires (1,4,4), overshoot 10, bucket 2.
    #   g5 = [n4] (b2): n5 2 + 3 = 5 (no: the leak mattered, 5 + 3 would fire); n6 7 fires
    #      (1,5,6).
    #   g6 = [n3] (b0): n5 5 + 2 = 7 fires (1,6,5); n6 refr.
    #   membranes all 0. 3 + 3 + 5 * 2 = 16 synops.
    # Output counts [1, 2]: decision 1, running decision 1 from (0,3) on: decision point (0,3),
    # spikes [3, 2, 1], synops 3 + 3 * 2 = 9, 4 groups.
    model = make_model(
        2,
        [(3, 10, 256, "zero"), (2, 5, 256, "zero"), (2, 5, 128, "zero")],
        [[[11, 5], [30, -4], [15, 12]], [[-3, 6, 0], [1, 2, 12]], [[2, 3], [0, 7]]],
        name="momentum",
        group_size=1,
        prioritized_input=False,
        momentum_buckets=4,
        momentum_shift=2,
    )
    trace = [
        (0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 3), (0, 2, 4), (0, 3, 6),
        (1, 0, 2), (1, 1, 0), (1, 1, 1), (1, 2, 3), (1, 4, 4), (1, 5, 6), (1, 6, 5),
    ]  # fmt: skip
    group_log = [
        (0, 0, 3), (0, 1, 2), (0, 2, 2), (0, 3, 2), (0, 4, 2), (0, 5, 2),
        (1, 0, 3), (1, 1, 3), (1, 2, 2), (1, 3, 2), (1, 4, 2), (1, 5, 2), (1, 6, 2),
    ]  # fmt: skip
    check(
        run(model, [[0], [1, 0]], engine),
        {
            "trace": trace,
            "group_log": group_log,
            "membranes": [[0, 0, 0, 0, 0, 5, 0], [0, 0, 0, 0, 0, 0, 0]],
            "output_counts": [1, 2],
            "decision": 1,
            "decision_point": (0, 3),
            "spikes": [6, 4, 3],
            "synops": 29,
            "groups": 13,
            "dropped": 0,
            "steps": 2,
            "input_events": 3,
            "spikes_to_decision": [3, 2, 1],
            "synops_to_decision": 9,
            "groups_to_decision": 4,
        },
    )


# ---------------------------------------------------------------------------------------------
# Leak rounding


@pytest.mark.parametrize("engine", ENGINES)
def test_leak_rounds_toward_zero_across_steps(engine):
    # One layer of 6 neurons, threshold 1000 (never fires), leak 230 / 256. Channel 0 adds
    # [100, -100, 7, -7, 1, -1]. Steps: [c0], [], [], [c0], [].
    #   step 0: [100, -100, 7, -7, 1, -1]
    #   step 1: 23000/256 = 89.84 -> 89 and -89 (floor would give -90); 1610/256 = 6.29 -> 6, -6;
    #           230/256 -> 0 and 0
    #   step 2: 20470/256 = 79.96 -> 79, -79; 1380/256 = 5.39 -> 5, -5
    #   step 3: 18170/256 = 70.98 -> 70, -70; 1150/256 = 4.49 -> 4, -4; then the input (after
    #           the leak): 170, -170, 11, -11, 1, -1
    #   step 4: 39100/256 = 152.73 -> 152, -152; 2530/256 = 9.88 -> 9, -9; 0, 0
    # Nothing fires: decision -1, no decision point, to-decision metrics = totals
    # (2 input groups of 6 synops).
    model = make_model(1, [(6, 1000, 230, "zero")], [[[100], [-100], [7], [-7], [1], [-1]]])
    check(
        run(model, [[0], [], [], [0], []], engine),
        {
            "trace": [],
            "group_log": [(0, 0, 6), (3, 0, 6)],
            "membranes": [
                [100, -100, 7, -7, 1, -1],
                [89, -89, 6, -6, 0, 0],
                [79, -79, 5, -5, 0, 0],
                [170, -170, 11, -11, 1, -1],
                [152, -152, 9, -9, 0, 0],
            ],
            "output_counts": [0] * 6,
            "decision": -1,
            "decision_point": (-1, -1),
            "spikes": [0],
            "synops": 12,
            "groups": 2,
            "dropped": 0,
            "steps": 5,
            "input_events": 2,
            "spikes_to_decision": [0],
            "synops_to_decision": 12,
            "groups_to_decision": 2,
        },
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_leak_with_other_shift(engine):
    # leak_shift 4, leak 15 (beta = 15/16), threshold 100: channel 0 adds [50, -50].
    # Steps [c0], [], []: 50 -> 750/16 = 46.875 -> 46 -> 690/16 = 43.125 -> 43; symmetric.
    model = make_model(1, [(2, 100, 15, "zero")], [[[50], [-50]]], leak_shift=4)
    r = run(model, [[0], [], []], engine)
    assert r.membranes.tolist() == [[50, -50], [46, -46], [43, -43]]


# ---------------------------------------------------------------------------------------------
# Saturation at both ends


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("name", "prioritized", "arrival", "expected"),
    [
        # arrival [c0, c1, c2] delivered in that order: n0 20, 40 -> 31, 31 - 30 = 1;
        # n1 -20, -40 -> -32, -32 + 30 = -2.
        ("fifo", True, [0, 1, 2], [1, -2]),
        # arrival [c2, c0, c1]: n0 -30, -10, 10; n1 30, 10, -10 (no saturation).
        ("fifo", True, [2, 0, 1], [10, -10]),
        ("fifo", False, [2, 0, 1], [10, -10]),  # fifo, F = 0: the same group, arrival order
        ("sync", True, [2, 0, 1], [10, -10]),  # the prioritized group is in arrival order
        # sync, F = 0, not prioritized: one group, but picked lowest source first:
        # [c0, c1, c2] whatever the arrival, so it saturates as in the first case.
        ("sync", False, [2, 0, 1], [1, -2]),
    ],
)
def test_saturation_both_ends_depends_on_delivery_order(
    engine, name, prioritized, arrival, expected
):
    # membrane_bits 6: VMIN = -32, VMAX = 31; weight_bits 6. One layer, no leak, threshold 30.
    # weights n0 <- [20, 20, -30], n1 <- [-20, -20, 30]. F = 0 (one group for the whole input).
    # Step 1 delivers [c0, c1]: n0 +20 +20 saturates at 31 > 30 and fires (reset 0);
    # n1 -20 -20 saturates at -32 whatever it started from (-2 - 40 or -10 - 40).
    model = make_model(
        3,
        [(2, 30, 256, "zero")],
        [[[20, 20, -30], [-20, -20, 30]]],
        membrane_bits=6,
        weight_bits=6,
        name=name,
        group_size=0,
        prioritized_input=prioritized,
    )
    assert (model.vmin, model.vmax) == (-32, 31)
    r = run(model, [arrival, [0, 1]], engine)
    assert r.membranes.tolist() == [expected, [0, -32]]
    assert [tuple(x) for x in r.trace.tolist()] == [(1, 0, 0)]
    assert r.group_log.tolist() == [[0, 0, 6], [1, 0, 4]]


@pytest.mark.parametrize("engine", ENGINES)
def test_saturated_overshoot_sets_the_momentum_bucket(engine):
    # membrane_bits 6 (VMAX 31), weight_bits 6. Momentum, F = 1, 64 buckets, momentum_shift 0
    # (bucket = overshoot - 1), input not prioritized (bucket 63).
    #   layer 0: n0 <- [10, 31], n1 <- [31, 0]  threshold 10, no leak
    #   layer 1 (output): n2 <- n0 only, n3 <- n1 only (weight 1), threshold 0
    # Input [c0, c1]: b63 [c0, c1].
    #   g0 = [c0]: n0 10 (not > 10); n1 31 fires (0,0,1), overshoot 21, bucket 20.
    #   g1 = [c1]: n0 10 + 31 = 41 -> clamp 31 fires (0,1,0), overshoot 21 (after saturation),
    #      bucket 20 behind n1; n1 refr. (Without the clamp: overshoot 31, bucket 30, first.)
    #   g2 = [n1] (b20, oldest): n3 fires (0,2,3). g3 = [n0]: n2 fires (0,3,2).
    model = make_model(
        2,
        [(2, 10, 256, "zero"), (2, 0, 256, "zero")],
        [[[10, 31], [31, 0]], np.eye(2, dtype=np.int64)],
        membrane_bits=6,
        weight_bits=6,
        name="momentum",
        group_size=1,
        prioritized_input=False,
        momentum_buckets=64,
        momentum_shift=0,
    )
    r = run(model, [[0, 1]], engine)
    assert [tuple(x) for x in r.trace.tolist()] == [(0, 0, 1), (0, 1, 0), (0, 2, 3), (0, 3, 2)]
    assert r.membranes.tolist() == [[0, 0, 0, 0]]


# ---------------------------------------------------------------------------------------------
# Refractoriness and the subtract reset


@pytest.mark.parametrize("engine", ENGINES)
def test_refractory_and_subtract_reset(engine):
    # 2 inputs; layer 0: n0 (threshold 3, reset subtract); layer 1 (output): n1 (threshold 0,
    # reset zero); no leak.
    # weights[0]: n0 <- [10, -1]; weights[1]: n1 <- [1]. fifo, F = 1, input not prioritized.
    # Step 0, input [c0, c1]: P [c0, c1].
    #   g0 = [c0]: n0 10 > 3 fires (0,0,0), subtract: 10 - 3 = 7, refractory. P [c1, n0].
    #   g1 = [c1]: n0 refr: stays 7 (not 6). No spike.
    #   g2 = [n0]: n1 1 > 0 fires (0,2,1).
    #   membranes [7, 0]
    # Step 1, no input: n0 is 7 > 3 but not touched, so it is not evaluated: no spike.
    #   membranes [7, 0]
    # Step 2, input [c1]: g0: n0 7 - 1 = 6 > 3 fires on a negative input (2,0,0), 6 - 3 = 3.
    #   g1 = [n0]: n1 fires (2,1,1). membranes [3, 0]
    # Output counts [2], decision 0, first decided at (0,2): spikes [1, 1], synops 1 + 1 + 1,
    # 3 groups.
    model = make_model(
        2,
        [(1, 3, 256, "subtract"), (1, 0, 256, "zero")],
        [[[10, -1]], [[1]]],
        name="fifo",
        group_size=1,
        prioritized_input=False,
    )
    check(
        run(model, [[0, 1], [], [1]], engine),
        {
            "trace": [(0, 0, 0), (0, 2, 1), (2, 0, 0), (2, 1, 1)],
            "group_log": [(0, 0, 1), (0, 1, 1), (0, 2, 1), (2, 0, 1), (2, 1, 1)],
            "membranes": [[7, 0], [7, 0], [3, 0]],
            "output_counts": [2],
            "decision": 0,
            "decision_point": (0, 2),
            "spikes": [2, 2],
            "synops": 5,
            "groups": 5,
            "dropped": 0,
            "steps": 3,
            "input_events": 3,
            "spikes_to_decision": [1, 1],
            "synops_to_decision": 3,
            "groups_to_decision": 3,
        },
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_refractory_zero_reset_stays_zero_within_the_step(engine):
    # 2 inputs, one layer n0 (threshold 3, reset zero), weights [10, 5]; fifo F = 1, not
    # prioritized. Step 0 input [c0, c1]: g0 = [c0]: 10 fires (0,0,0), v = 0; g1 = [c1]: refr,
    # stays 0 (not 5). Step 1 input [c1]: 0 + 5 fires again (1,0,0) (the flag cleared).
    model = make_model(
        2, [(1, 3, 256, "zero")], [[[10, 5]]], name="fifo", group_size=1, prioritized_input=False
    )
    r = run(model, [[0, 1], [1]], engine)
    assert [tuple(x) for x in r.trace.tolist()] == [(0, 0, 0), (1, 0, 0)]
    assert r.membranes.tolist() == [[0], [0]]
    assert r.group_log.tolist() == [[0, 0, 1], [0, 1, 1], [1, 0, 1]]


# ---------------------------------------------------------------------------------------------
# Group size


@pytest.mark.parametrize("engine", ENGINES)
def test_group_size_changes_which_neurons_fire(engine):
    # 2 inputs; layer 0: n0 <- [1, 0], n1 <- [0, 1] (threshold 0); layer 1: n2 <- [4, -3]
    # (threshold 3). fifo, prioritized; input [c0, c1]: n0, n1 fire in g0, P [n0, n1].
    #   F = 1: g1 = [n0]: n2 4 > 3 fires (0,1,2), v = 0; g2 = [n1]: refr, stays 0.
    #   F = 2 (and F = 0): g1 = [n0, n1]: n2 4, then 1: no spike; v2 = 1.
    layers = [(2, 0, 256, "zero"), (1, 3, 256, "zero")]
    weights = [[[1, 0], [0, 1]], [[4, -3]]]
    one = run(make_model(2, layers, weights, name="fifo", group_size=1), [[0, 1]], engine)
    assert [tuple(x) for x in one.trace.tolist()] == [(0, 0, 0), (0, 0, 1), (0, 1, 2)]
    assert one.membranes.tolist() == [[0, 0, 0]]
    assert (one.decision, one.groups, one.synops) == (0, 3, 6)
    for f in (2, 0):
        many = run(make_model(2, layers, weights, name="fifo", group_size=f), [[0, 1]], engine)
        assert [tuple(x) for x in many.trace.tolist()] == [(0, 0, 0), (0, 0, 1)]
        assert many.membranes.tolist() == [[0, 0, 1]]
        assert (many.decision, many.groups, many.synops) == (-1, 2, 6)


@pytest.mark.parametrize("engine", ENGINES)
def test_group_size_on_net3(engine):
    # NET3 fifo with F = 1 (NET3_FIFO_F1) and F = 2 (test_fifo_f2_mixes_layers) differ; F = 3
    # takes, after the input group, P [n0, n1, n2] at once: n3 1, 2, 4; n4 3, 3, 3: both fire
    # (0,1,3) (0,1,4), 6 synops; g2 = [n3, n4]: n5 -2 + 4 = 2, n6 3 + 1 = 4 fires (0,2,6).
    # This is also sync F = 0 on NET3 (one group per layer).
    f1 = run(net3(name="fifo", group_size=1), [[0, 1, 2]], engine)
    f3 = run(net3(name="fifo", group_size=3), [[0, 1, 2]], engine)
    s0 = run(net3(name="sync", group_size=0), [[0, 1, 2]], engine)
    assert [tuple(x) for x in f1.trace.tolist()] == NET3_FIFO_F1["trace"][:-1]
    expected = [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 3), (0, 1, 4), (0, 2, 6)]
    for r in (f3, s0):
        assert [tuple(x) for x in r.trace.tolist()] == expected
        assert r.group_log.tolist() == [[0, 0, 9], [0, 1, 6], [0, 2, 4]]
        assert r.membranes.tolist() == [[0, 0, 0, 0, 0, 2, 0]]
        assert r.decision == 1


# ---------------------------------------------------------------------------------------------
# Prioritized versus non-prioritized input


@pytest.mark.parametrize("engine", ENGINES)
def test_prioritized_versus_not(engine):
    # 2 inputs; layer 0: n0 <- [6, -4] (threshold 5); layer 1 (output): n1 <- [1] (threshold 0).
    # fifo, F = 1, input [c0, c1].
    #   prioritized: g0 = [c0, c1] whatever F: 6 - 4 = 2, no spike. membranes [2, 0].
    #   not prioritized: P [c0, c1]; g0 = [c0]: 6 fires (0,0,0), P [c1, n0] (inputs first);
    #   g1 = [c1]: refr; g2 = [n0]: n1 fires (0,2,1). membranes [0, 0].
    layers = [(1, 5, 256, "zero"), (1, 0, 256, "zero")]
    weights = [[[6, -4]], [[1]]]
    common = {"name": "fifo", "group_size": 1}
    yes = run(make_model(2, layers, weights, prioritized_input=True, **common), [[0, 1]], engine)
    check(
        yes,
        {
            "trace": [],
            "group_log": [(0, 0, 2)],
            "membranes": [[2, 0]],
            "output_counts": [0],
            "decision": -1,
            "decision_point": (-1, -1),
            "spikes": [0, 0],
            "synops": 2,
            "groups": 1,
            "dropped": 0,
            "steps": 1,
            "input_events": 2,
            "spikes_to_decision": [0, 0],
            "synops_to_decision": 2,
            "groups_to_decision": 1,
        },
    )
    no = run(make_model(2, layers, weights, prioritized_input=False, **common), [[0, 1]], engine)
    check(
        no,
        {
            "trace": [(0, 0, 0), (0, 2, 1)],
            "group_log": [(0, 0, 1), (0, 1, 1), (0, 2, 1)],
            "membranes": [[0, 0]],
            "output_counts": [1],
            "decision": 0,
            "decision_point": (0, 2),
            "spikes": [1, 1],
            "synops": 3,
            "groups": 3,
            "dropped": 0,
            "steps": 1,
            "input_events": 2,
            "spikes_to_decision": [1, 1],
            "synops_to_decision": 3,
            "groups_to_decision": 3,
        },
    )


# ---------------------------------------------------------------------------------------------
# max_groups_per_step


@pytest.mark.parametrize("engine", ENGINES)
def test_max_groups_per_step_drops(engine):
    # NET3, fifo, F = 1, at most 3 groups per step (the input group counts).
    # Step 0: g0 (input): n0, n1, n2 fire. g1 = [n0]: n3 1, n4 3 fires (0,1,4).
    #   g2 = [n1]: n3 2, n4 refr. Now 3 groups: P [n2, n4] is discarded: dropped 2.
    #   membranes [0, 0, 0, 2, 0, 0, 0]
    # Step 1 (P starts empty): g0: n1 fires (1,0,1). g1 = [n1]: n3 2 + 1 = 3 fires (1,1,3),
    #   n4 0. g2 = [n3]: n5 -2, n6 3 (not > 3). P empty: nothing dropped.
    #   membranes [0, 0, 0, 0, 0, -2, 3]
    # No output spike: decision -1, to-decision metrics = totals.
    check(
        run(net3(name="fifo", group_size=1, max_groups_per_step=3), [[0, 1, 2], [1]], engine),
        {
            "trace": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 4), (1, 0, 1), (1, 1, 3)],
            "group_log": [(0, 0, 9), (0, 1, 2), (0, 2, 2), (1, 0, 3), (1, 1, 2), (1, 2, 2)],
            "membranes": [[0, 0, 0, 2, 0, 0, 0], [0, 0, 0, 0, 0, -2, 3]],
            "output_counts": [0, 0],
            "decision": -1,
            "decision_point": (-1, -1),
            "spikes": [4, 2, 0],
            "synops": 20,
            "groups": 6,
            "dropped": 2,
            "steps": 2,
            "input_events": 4,
            "spikes_to_decision": [4, 2, 0],
            "synops_to_decision": 20,
            "groups_to_decision": 6,
        },
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_max_groups_per_step_one_keeps_only_the_input_group(engine):
    # Cap 1: only the prioritized input group runs. Step 0: P [n0, n1, n2] dropped (3);
    # step 1: P [n1] dropped (1).
    check(
        run(net3(name="fifo", group_size=1, max_groups_per_step=1), [[0, 1, 2], [1]], engine),
        {
            "trace": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (1, 0, 1)],
            "group_log": [(0, 0, 9), (1, 0, 3)],
            "membranes": [[0] * 7, [0] * 7],
            "output_counts": [0, 0],
            "decision": -1,
            "decision_point": (-1, -1),
            "spikes": [4, 0, 0],
            "synops": 12,
            "groups": 2,
            "dropped": 4,
            "steps": 2,
            "input_events": 4,
            "spikes_to_decision": [4, 0, 0],
            "synops_to_decision": 12,
            "groups_to_decision": 2,
        },
    )


# ---------------------------------------------------------------------------------------------
# first_to_threshold


@pytest.mark.parametrize("engine", ENGINES)
def test_first_to_threshold_stops_early(engine):
    # NET3, fifo, F = 1, as NET3_FIFO_F1 until the first output spike: (0,4,5) in g4. The sample
    # ends right after that evaluation: P [n3] is discarded (not counted as dropped), step 1 is
    # not run (its input event is not counted). Membranes of step 0 at that point: n6 = 1 (from
    # n4 in g4), everything else 0. Decision 0 (n5), decision point (0,4) = the last group, so
    # the to-decision metrics are the totals.
    check(
        run(
            net3(name="fifo", group_size=1, decision="first_to_threshold"),
            [[0, 1, 2], [1]],
            engine,
        ),
        {
            "trace": [(0, 0, 0), (0, 0, 1), (0, 0, 2), (0, 1, 4), (0, 3, 3), (0, 4, 5)],
            "group_log": [(0, 0, 9), (0, 1, 2), (0, 2, 2), (0, 3, 2), (0, 4, 2)],
            "membranes": [[0, 0, 0, 0, 0, 0, 1]],
            "output_counts": [1, 0],
            "decision": 0,
            "decision_point": (0, 4),
            "spikes": [3, 2, 1],
            "synops": 17,
            "groups": 5,
            "dropped": 0,
            "steps": 1,
            "input_events": 3,
            "spikes_to_decision": [3, 2, 1],
            "synops_to_decision": 17,
            "groups_to_decision": 5,
        },
    )


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("decision", ["first_to_threshold", "argmax_spike_count"])
def test_simultaneous_outputs_decide_the_lowest_index(engine, decision):
    # One layer of 3 output neurons (threshold 2) fed by channel 0 with [1, 5, 5]; channel 1
    # feeds [5, 0, 0]. Steps [c0], [c1].
    #   step 0: n1 and n2 fire together in g0 (0,0,1) (0,0,2): first_to_threshold decides 1,
    #   the lowest index that fired in that evaluation, and stops (step 1 not run).
    #   argmax: step 1: n0 1 + 5 = 6 fires (1,0,0): counts [1, 1, 1], ties to the lowest: 0;
    #   the running decision is 1 after (0,0), 0 after (1,0): decision point (1,0).
    model = make_model(
        2, [(3, 2, 256, "zero")], [[[1, 5], [5, 0], [5, 0]]], name="fifo", decision=decision
    )
    r = run(model, [[0], [1]], engine)
    if decision == "first_to_threshold":
        assert [tuple(x) for x in r.trace.tolist()] == [(0, 0, 1), (0, 0, 2)]
        assert (r.decision, r.decision_step, r.decision_group, r.steps) == (1, 0, 0, 1)
        assert r.membranes.tolist() == [[1, 0, 0]]
        assert r.output_counts.tolist() == [0, 1, 1]
    else:
        assert [tuple(x) for x in r.trace.tolist()] == [(0, 0, 1), (0, 0, 2), (1, 0, 0)]
        assert (r.decision, r.decision_step, r.decision_group, r.steps) == (0, 1, 0, 2)
        assert r.membranes.tolist() == [[1, 0, 0], [0, 0, 0]]
        assert r.output_counts.tolist() == [1, 1, 1]
        assert (r.spikes_to_decision.tolist(), r.synops_to_decision) == ([3], 6)


# ---------------------------------------------------------------------------------------------
# The argmax decision point


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("steps", "counts", "decision", "point", "spikes_to", "synops_to", "groups_to"),
    [
        # counts after each step: [0,1] -> 1; [1,1] -> 0 (tie); [1,2] -> 1; [2,2] -> 0.
        # Final 0; it holds only from (3,0) on.
        ([[1], [0], [1], [0]], [2, 2], 0, (3, 0), [4], 8, 4),
        # [0,1] -> 1; [1,1] -> 0; [2,1] -> 0; [2,2] -> 0 (tie). Final 0, from (1,0) on.
        ([[1], [0], [0], [1]], [2, 2], 0, (1, 0), [2], 4, 2),
        # [0,1] -> 1; [1,1] -> 0; [1,2] -> 1; nothing more. Final 1, from (2,0) on.
        ([[1], [0], [1], []], [1, 2], 1, (2, 0), [3], 6, 3),
        # Nothing fires (the empty steps and the leak do nothing): decision -1, totals.
        ([[], [], [], []], [0, 0], -1, (-1, -1), [0], 0, 0),
    ],
)
def test_argmax_decision_point(
    engine, steps, counts, decision, point, spikes_to, synops_to, groups_to
):
    # One output layer n0, n1 (threshold 0): channel K feeds only nK (weight 1); 2 synops per
    # input group, one group per step with an input.
    model = make_model(2, [(2, 0, 256, "zero")], [[[1, 0], [0, 1]]], name="fifo")
    r = run(model, steps, engine)
    assert r.output_counts.tolist() == counts
    assert r.decision == decision
    assert (r.decision_step, r.decision_group) == point
    assert r.spikes_to_decision.tolist() == spikes_to
    assert (r.synops_to_decision, r.groups_to_decision) == (synops_to, groups_to)
    n_events = sum(len(s) for s in steps)
    assert (r.synops, r.groups, r.spikes.tolist()) == (2 * n_events, n_events, [n_events])


@pytest.mark.parametrize("engine", ENGINES)
def test_no_output_spike_but_hidden_activity(engine):
    # NET3, fifo, F = 1, input [c2] only: g0: n2 fires (0,0,2) (n0, n1 touched, stay 0);
    # g1 = [n2]: n3 2 (not > 2), n4 0: no spike. Decision -1, to-decision metrics = totals.
    r = run(net3(name="fifo", group_size=1), [[2]], engine)
    assert [tuple(x) for x in r.trace.tolist()] == [(0, 0, 2)]
    assert r.membranes.tolist() == [[0, 0, 0, 2, 0, 0, 0]]
    assert (r.decision, r.decision_step, r.decision_group) == (-1, -1, -1)
    assert r.spikes_to_decision.tolist() == r.spikes.tolist() == [1, 0, 0]
    assert (r.synops_to_decision, r.groups_to_decision) == (r.synops, r.groups) == (5, 2)


# ---------------------------------------------------------------------------------------------
# input_events counts deliveries, not presentations (semantics 8).


@pytest.mark.parametrize("engine", ENGINES)
def test_input_events_counts_only_delivered_events(engine):
    # 2 inputs, one layer n0 (threshold 5) <- [6, 6]; layer 1 n1 <- [1]. fifo, F = 1,
    # not prioritized, at most 1 group per step. Step 0 input [c0, c1]: g0 = [c0]: n0 fires;
    # then the cap: P [c1, n0] is dropped (2). Only c0 was delivered: input_events = 1.
    model = make_model(
        2,
        [(1, 5, 256, "zero"), (1, 0, 256, "zero")],
        [[[6, 6]], [[1]]],
        name="fifo",
        group_size=1,
        prioritized_input=False,
        max_groups_per_step=1,
    )
    r = run(model, [[0, 1]], engine)
    assert (r.dropped, r.synops, r.groups) == (2, 1, 1)
    assert r.input_events == 1
