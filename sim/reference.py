"""The readable engine of the reference simulator: the contract, one rule at a time.

This is ``docs/semantics.md`` as code, written to be read beside it (section numbers in the
comments) and to be obviously right rather than fast; plain Python integers throughout. The
compiled engine (:mod:`.kernel`) must produce exactly the same record and is tested against
this one.
"""

from __future__ import annotations

import bisect
from collections import deque

import numpy as np

from .model import Model
from .result import SampleResult, finish_sample
from .rng import pick_index, xorshift32

__all__ = ["make_scheduler", "run_sample"]

INPUT_LAYER = -1  # the layer of input channels as sources (semantics 6)


# ---------------------------------------------------------------------------------------------
# Pending sets, one per scheduler (semantics 6). Each keeps sources; ``push`` adds an entry,
# ``pick_group`` removes and returns the next group in group order.


class SyncPending:
    """6.1: the lowest pending layer first, lowest source first; a group never mixes layers."""

    def __init__(self, n_layers: int):
        self.layers = [[] for _ in range(n_layers + 1)]  # index 0 is the input layer

    def __len__(self) -> int:
        return sum(len(x) for x in self.layers)

    def push(self, source: int, layer: int, bucket: int) -> None:
        bisect.insort(self.layers[layer + 1], source)

    def pick_group(self, group_size: int) -> list[int]:
        pending = next(x for x in self.layers if x)
        take = len(pending) if group_size == 0 else min(group_size, len(pending))
        group = pending[:take]
        del pending[:take]
        return group

    def clear(self) -> None:
        for x in self.layers:
            x.clear()


class FifoPending:
    """6.2: arrival order."""

    def __init__(self):
        self.queue = deque()

    def __len__(self) -> int:
        return len(self.queue)

    def push(self, source: int, layer: int, bucket: int) -> None:
        self.queue.append(source)

    def pick_group(self, group_size: int) -> list[int]:
        take = len(self.queue) if group_size == 0 else min(group_size, len(self.queue))
        return [self.queue.popleft() for _ in range(take)]

    def clear(self) -> None:
        self.queue.clear()


class RandomPending:
    """6.3: uniform picks from a list with swap-remove, driven by xorshift32."""

    def __init__(self, state: int):
        self.entries = []
        self.state = state

    def __len__(self) -> int:
        return len(self.entries)

    def push(self, source: int, layer: int, bucket: int) -> None:
        self.entries.append(source)

    def pick_group(self, group_size: int) -> list[int]:
        take = len(self.entries) if group_size == 0 else min(group_size, len(self.entries))
        group = []
        for _ in range(take):
            self.state = xorshift32(self.state)
            i = pick_index(self.state, len(self.entries))
            group.append(self.entries[i])
            self.entries[i] = self.entries[-1]
            self.entries.pop()
        return group

    def clear(self) -> None:
        self.entries.clear()


class MomentumPending:
    """6.4: highest bucket first, FIFO within a bucket."""

    def __init__(self, n_buckets: int):
        self.buckets = [deque() for _ in range(n_buckets)]

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets)

    def push(self, source: int, layer: int, bucket: int) -> None:
        self.buckets[bucket].append(source)

    def pick_group(self, group_size: int) -> list[int]:
        take = len(self) if group_size == 0 else min(group_size, len(self))
        group = []
        for _ in range(take):
            highest = next(b for b in reversed(self.buckets) if b)
            group.append(highest.popleft())
        return group

    def clear(self) -> None:
        for b in self.buckets:
            b.clear()


def make_scheduler(model: Model, state: int):
    """The pending set of the model's scheduler; ``state`` seeds ``random``."""
    s = model.scheduler
    if s.name == "sync":
        return SyncPending(len(model.layers))
    if s.name == "fifo":
        return FifoPending()
    if s.name == "random":
        return RandomPending(state)
    return MomentumPending(s.momentum_buckets)


# ---------------------------------------------------------------------------------------------
# One sample


def _trunc_shift(x: int, k: int) -> int:
    """x / 2^k rounded toward zero."""
    return x >> k if x >= 0 else -((-x) >> k)


def run_sample(
    model: Model,
    steps: list[np.ndarray],
    *,
    state: int,
    sample_id: int = 0,
    label: int = -1,
    record_membranes: bool = False,
) -> SampleResult:
    """Run one sample: ``steps[t]`` lists the input channels of step ``t`` in arrival order.

    ``state`` is the random scheduler's starting state (:func:`.rng.sample_seed`).
    """
    sched = model.scheduler
    n_in, n_layers = model.n_inputs, len(model.layers)
    starts, sizes = model.layer_starts, model.sizes
    layer_of = [li for li, size in enumerate(sizes) for _ in range(size)]
    thresholds = [layer.threshold for layer in model.layers]
    weights = [np.asarray(w).tolist() for w in model.weights]
    vmin, vmax = model.vmin, model.vmax
    top_bucket = sched.momentum_buckets - 1

    v = [0] * model.n_neurons
    refractory = [False] * model.n_neurons
    pending = make_scheduler(model, state)
    trace, group_log, membranes = [], [], []
    input_events = dropped = steps_run = 0
    stop = False

    def fan_out(source: int) -> tuple[int, list[int]]:
        """(first target, column of weights) of a source (semantics 1)."""
        if source < n_in:
            return starts[0], [row[source] for row in weights[0]]
        n = source - n_in
        li = layer_of[n]
        return starts[li + 1], [row[n - starts[li]] for row in weights[li + 1]]

    def deliver_and_evaluate(group: list[int], t: int, g: int) -> bool:
        """Semantics 5.3 and 5.4; returns True when an output neuron fired."""
        nonlocal input_events
        input_events += sum(source < n_in for source in group)
        touched = set()
        synops = 0
        for source in group:
            first, column = fan_out(source)
            for j, w in enumerate(column):
                target = first + j
                touched.add(target)
                if not refractory[target]:
                    v[target] = min(max(v[target] + w, vmin), vmax)
            synops += len(column)
        group_log.append((t, g, synops))
        output_fired = False
        for n in sorted(touched):
            li = layer_of[n]
            if refractory[n] or v[n] <= thresholds[li]:
                continue
            trace.append((t, g, n))
            overshoot = v[n] - thresholds[li]
            v[n] = 0 if model.layers[li].reset == "zero" else v[n] - thresholds[li]
            refractory[n] = True
            if li == n_layers - 1:
                output_fired = True
            else:
                bucket = min((overshoot - 1) >> sched.momentum_shift, top_bucket)
                pending.push(n_in + n, li, bucket)
        return output_fired

    for t, events in enumerate(steps):
        steps_run += 1
        # 5.1 leak, refractory flags clear
        for n in range(model.n_neurons):
            v[n] = _trunc_shift(v[n] * model.layers[layer_of[n]].leak, model.leak_shift)
            refractory[n] = False
        # 5.2 input
        events = [int(c) for c in events]
        g = 0
        if sched.prioritized_input and events:
            stop = deliver_and_evaluate(events, t, g) and model.decision == "first_to_threshold"
            g += 1
        elif not sched.prioritized_input:
            for c in events:
                pending.push(c, INPUT_LAYER, top_bucket)
        # 5.3-5.5 groups until nothing is pending (or the cap, or an early decision)
        while len(pending) and not stop:
            if sched.max_groups_per_step and g >= sched.max_groups_per_step:
                dropped += len(pending)
                break
            group = pending.pick_group(sched.group_size)
            stop = deliver_and_evaluate(group, t, g) and model.decision == "first_to_threshold"
            g += 1
        pending.clear()
        if record_membranes:
            membranes.append(list(v))
        if stop:
            break

    return finish_sample(
        model,
        sample_id=sample_id,
        label=label,
        trace=np.array(trace, dtype=np.int64).reshape(-1, 3),
        group_log=np.array(group_log, dtype=np.int64).reshape(-1, 3),
        input_events=input_events,
        dropped=dropped,
        steps=steps_run,
        membranes=np.array(membranes, dtype=np.int64).reshape(-1, model.n_neurons)
        if record_membranes
        else None,
    )
