"""The compiled engine of the reference simulator: the contract, compiled with numba.

It computes exactly the record of the readable engine (:mod:`.reference`) and is tested against
it (``tests/sim/test_kernel_equivalence.py``); section numbers in the comments refer to
``docs/semantics.md``. :class:`CompiledEngine` flattens a model into arrays once; each sample then
runs in one call of single-threaded compiled code that returns the raw record, and
:func:`.result.finish_sample` derives the rest, as for the readable engine.

What makes it fast:

- every deliverable source's weights to its fan-out are one contiguous row, and the targets of a
  fan-out are consecutive neurons, so delivering a source is a straight loop of saturating adds;
  a refractory target is handled by masking its weight to 0 (``clamp(v + 0) == v``), not by a
  branch;
- projections are dense, so the targets of a fan-out are a whole layer: "touched" is one flag
  per layer, and evaluation scans the touched layers;
- the pending sets are flat arrays (a queue, a swap-remove list, linked bucket FIFOs, per-layer
  flags with a cursor), allocated once per sample and never per group;
- arrays are taken out of their tuples once per sample and passed to the helpers as plain
  arguments: numba reference-counts an array read from a tuple (an atomic increment and
  decrement) and cannot always prune that in branchy code; a first version that read them
  from tuples in the helpers spent three quarters of its time there.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numba
import numpy as np

from . import rng
from .events import EventSamples
from .model import Model
from .result import SampleResult, finish_sample

__all__ = ["CompiledEngine"]

# The generator of section 6.3, compiled from the very functions the readable engine calls.
_xorshift32 = numba.njit(cache=True)(rng.xorshift32)
_pick_index = numba.njit(cache=True)(rng.pick_index)

SYNC, FIFO, RANDOM, MOMENTUM = 0, 1, 2, 3
_SCHEDULER_CODES = {"sync": SYNC, "fifo": FIFO, "random": RANDOM, "momentum": MOMENTUM}

# Columns of the fan-out table: first target, number of targets, start of the weight row, and
# target layer of each deliverable source.
_FIRST, _SIZE, _ROW, _LAYER = 0, 1, 2, 3

# Slots of the pending set's scalar state.
_COUNT, _HEAD, _TAIL, _TOP, _STATE = 0, 1, 2, 3, 4


class _Net(NamedTuple):
    """The model as flat int64 arrays.

    Neurons have global indices (semantics 1). *Deliverable sources* are the input channels and
    the neurons of every layer but the output layer; ``fan[source]`` describes a source's
    fan-out (consecutive neurons of one layer, columns ``_FIRST`` .. ``_LAYER``) and where its
    weights start in ``weights``.
    """

    layer_start: np.ndarray  # (L + 1,) first neuron of each layer, then N
    threshold: np.ndarray  # (L,)
    leak: np.ndarray  # (L,)
    subtract: np.ndarray  # (L,) 1 for reset "subtract", 0 for "zero"
    fan: np.ndarray  # (D, 4) for each deliverable source
    weights: np.ndarray  # (sum of fan-out sizes,) the weight rows, one after the other


class _Params(NamedTuple):
    """The scalar parameters of the model, as integers."""

    n_inputs: int
    leak_shift: int
    vmin: int
    vmax: int
    scheduler: int  # SYNC, FIFO, RANDOM or MOMENTUM
    group_size: int  # F, 0 = unbounded
    prioritized_input: int
    momentum_buckets: int
    momentum_shift: int
    max_groups_per_step: int
    first_to_threshold: int


# ---------------------------------------------------------------------------------------------
# The pending set (semantics 6), in three arrays whose meaning depends on the scheduler:
#
# - ``store``, one slot per source: fifo keeps its queue in ``store[head:tail]`` (at most
#   n_inputs + N entries enter per step, so no wrap-around is needed); random its list in
#   ``store[:tail]``; momentum the link to the next entry of the same bucket (a source is pending
#   at most once); sync a flag, 1 while the source is pending.
# - ``index``, two rows: momentum keeps the head and tail of each bucket's FIFO (-1 = empty);
#   sync keeps the number of pending entries of each layer (inputs are layer 0) and a cursor
#   at or below its lowest pending source.
# - ``scalars``: the number of entries, fifo's head, fifo's and random's tail, the highest
#   bucket that may be non-empty, and the random generator's state.


@numba.njit(cache=True)
def _clear(scheduler, store, index, scalars):
    """Empty the pending set (end of step, 5.5); the generator state carries on."""
    if scheduler == SYNC:
        if scalars[_COUNT]:
            store[:] = 0
        index[0] = 0
        index[1] = len(store)
    elif scheduler == MOMENTUM:
        index[0] = -1
    scalars[_COUNT] = scalars[_HEAD] = scalars[_TAIL] = scalars[_TOP] = 0


@numba.njit(cache=True)
def _push(scheduler, store, index, scalars, source, layer, bucket):
    """Add ``source``; ``layer`` is its layer counting inputs as 0, ``bucket`` its bucket."""
    scalars[_COUNT] += 1
    if scheduler == SYNC:
        store[source] = 1
        index[0, layer] += 1
        index[1, layer] = min(index[1, layer], source)
    elif scheduler == MOMENTUM:
        store[source] = -1
        if index[0, bucket] < 0:
            index[0, bucket] = source
        else:
            store[index[1, bucket]] = source
        index[1, bucket] = source
        scalars[_TOP] = max(scalars[_TOP], bucket)
    else:  # fifo, random: append
        store[scalars[_TAIL]] = source
        scalars[_TAIL] += 1


@numba.njit(cache=True)
def _pick_group(scheduler, store, index, scalars, group_size, group):
    """Remove up to F entries in pick order (6) into ``group``; return how many."""
    if scheduler == SYNC:  # 6.1: the lowest pending layer, lowest source first; one layer only
        layer = 0
        while index[0, layer] == 0:
            layer += 1
        take = index[0, layer] if group_size == 0 else min(group_size, index[0, layer])
        source = index[1, layer]
        for k in range(take):
            while store[source] == 0:
                source += 1
            store[source] = 0
            group[k] = source
            source += 1
        index[0, layer] -= take
        index[1, layer] = source
    else:
        take = scalars[_COUNT] if group_size == 0 else min(group_size, scalars[_COUNT])
        for k in range(take):
            if scheduler == FIFO:  # 6.2: the oldest entry
                group[k] = store[scalars[_HEAD]]
                scalars[_HEAD] += 1
            elif scheduler == RANDOM:  # 6.3: one generator step per pick, swap-remove
                scalars[_STATE] = _xorshift32(scalars[_STATE])
                n = scalars[_TAIL]
                i = _pick_index(scalars[_STATE], n)
                group[k] = store[i]
                store[i] = store[n - 1]
                scalars[_TAIL] = n - 1
            else:  # 6.4: the oldest entry of the highest non-empty bucket
                b = scalars[_TOP]
                while index[0, b] < 0:
                    b -= 1
                scalars[_TOP] = b
                group[k] = index[0, b]
                index[0, b] = store[group[k]]
    scalars[_COUNT] -= take
    return take


# ---------------------------------------------------------------------------------------------
# One sample (semantics 5)


@numba.njit(cache=True)
def _deliver(group, size, n_inputs, fan, weights, v, live, touched, vmin, vmax):
    """5.3: deliver ``group[:size]`` in order, each source to its fan-out.

    Returns the synaptic operations and the number of input events among the sources (8).
    """
    synops = inputs = 0
    for k in range(size):
        source = group[k]
        first, n, row = fan[source, _FIRST], fan[source, _SIZE], fan[source, _ROW]
        for j in range(n):
            # Saturation per addition (2); a refractory target gets weight 0 (live = 0).
            x = v[first + j] + (weights[row + j] & live[first + j])
            v[first + j] = min(max(x, vmin), vmax)
        touched[fan[source, _LAYER]] = True
        synops += n
        if source < n_inputs:
            inputs += 1
    return synops, inputs


@numba.njit(cache=True)
def _reserve(buffer, used, extra):
    """``buffer``, or a larger copy of it, with room for ``extra`` more rows after ``used``."""
    if used + extra <= len(buffer):
        return buffer
    grown = np.empty((max(2 * len(buffer), used + extra), buffer.shape[1]), buffer.dtype)
    grown[:used] = buffer[:used]
    return grown


@numba.njit(cache=True)
def _run_sample(channel, step_ptr, net, params, state, record_membranes):
    """Run one sample; ``channel[step_ptr[t]:step_ptr[t + 1]]`` are the inputs of step ``t``.

    Returns ``(trace, group_log, input_events, dropped, steps, membranes)``.
    """
    layer_start, threshold, leak, subtract, fan, weights = net
    n_inputs, leak_shift, vmin, vmax = params.n_inputs, params.leak_shift, params.vmin, params.vmax
    scheduler, group_size = params.scheduler, params.group_size
    top_bucket = params.momentum_buckets - 1
    n_layers = len(threshold)
    n_neurons = layer_start[n_layers]
    n_sources = n_inputs + n_neurons
    n_steps = len(step_ptr) - 1

    v = np.zeros(n_neurons, np.int64)
    live = np.empty(n_neurons, np.int64)  # -1 (all ones) if not refractory, else 0
    touched = np.zeros(n_layers, np.bool_)
    store = np.zeros(n_sources, np.int64)
    index = np.empty((2, max(params.momentum_buckets, n_layers + 1)), np.int64)
    scalars = np.zeros(5, np.int64)
    scalars[_STATE] = state
    _clear(scheduler, store, index, scalars)
    group = np.empty(n_sources, np.int64)
    trace = np.empty((2 * n_neurons, 3), np.int64)
    group_log = np.empty((2 * (n_sources + 1), 3), np.int64)
    membranes = np.empty((n_steps if record_membranes else 0, n_neurons), np.int64)
    n_trace = n_groups = input_events = dropped = steps_run = 0
    stop = False

    for t in range(n_steps):
        steps_run += 1
        # At most one spike per neuron and n_inputs + N + 1 groups in a step (5.4, 6).
        trace = _reserve(trace, n_trace, n_neurons)
        group_log = _reserve(group_log, n_groups, n_sources + 1)

        # 5.1 leak, rounding toward zero; refractory flags clear
        for layer in range(n_layers):
            if leak[layer] != 1 << leak_shift:
                for n in range(layer_start[layer], layer_start[layer + 1]):
                    x = v[n] * leak[layer]
                    v[n] = x >> leak_shift if x >= 0 else -((-x) >> leak_shift)
        live[:] = -1

        # 5.2 input: one group in arrival order, or entries of the pending set (layer 0, top
        # bucket) before any spike
        events = channel[step_ptr[t] : step_ptr[t + 1]]
        if not params.prioritized_input:
            for c in events:
                _push(scheduler, store, index, scalars, c, 0, top_bucket)

        g = 0
        while not stop:
            if g == 0 and params.prioritized_input and len(events):
                size = len(events)
                group[:size] = events
            elif scalars[_COUNT] == 0:
                break
            elif params.max_groups_per_step and g >= params.max_groups_per_step:
                dropped += scalars[_COUNT]  # 5.5: the cap
                break
            else:
                size = _pick_group(scheduler, store, index, scalars, group_size, group)

            # 5.3 deliver the group
            synops, inputs = _deliver(
                group, size, n_inputs, fan, weights, v, live, touched, vmin, vmax
            )
            input_events += inputs  # 8: input events delivered
            group_log[n_groups, 0], group_log[n_groups, 1], group_log[n_groups, 2] = t, g, synops
            n_groups += 1

            # 5.4 evaluate the touched layers (whole layers: fan-outs are) in ascending index
            for layer in range(n_layers):
                if not touched[layer]:
                    continue
                touched[layer] = False
                for n in range(layer_start[layer], layer_start[layer + 1]):
                    if live[n] == 0 or v[n] <= threshold[layer]:
                        continue
                    trace[n_trace, 0], trace[n_trace, 1], trace[n_trace, 2] = t, g, n
                    n_trace += 1
                    overshoot = v[n] - threshold[layer]
                    v[n] = overshoot if subtract[layer] else 0
                    live[n] = 0  # refractory until the end of the step
                    if layer == n_layers - 1:
                        stop = params.first_to_threshold != 0  # 7: the sample ends after this
                    else:
                        bucket = min((overshoot - 1) >> params.momentum_shift, top_bucket)
                        _push(scheduler, store, index, scalars, n_inputs + n, layer + 1, bucket)
            g += 1

        _clear(scheduler, store, index, scalars)
        if record_membranes:
            membranes[t] = v
        if stop:
            break

    return (
        trace[:n_trace],
        group_log[:n_groups],
        input_events,
        dropped,
        steps_run,
        membranes[:steps_run],
    )


# ---------------------------------------------------------------------------------------------
# The engine


def _flatten(model: Model) -> tuple[_Net, _Params]:
    """The model's arrays and parameters in the kernel's layout."""
    sizes = np.array(model.sizes, dtype=np.int64)
    n_layers = len(sizes)
    layer_start = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    # Deliverable sources: the inputs feed layer 0, layer l feeds layer l + 1 (semantics 1).
    fan_layer = np.repeat(np.arange(n_layers, dtype=np.int64), [model.n_inputs, *sizes[:-1]])
    fan_size = sizes[fan_layer]
    fan_row = np.concatenate(([0], np.cumsum(fan_size)[:-1])).astype(np.int64)
    fan = np.stack([layer_start[fan_layer], fan_size, fan_row, fan_layer], axis=1)
    rows = [np.asarray(w, dtype=np.int64).T.ravel() for w in model.weights]  # [source, target]
    net = _Net(
        layer_start=layer_start,
        threshold=np.array([x.threshold for x in model.layers], dtype=np.int64),
        leak=np.array([x.leak for x in model.layers], dtype=np.int64),
        subtract=np.array([x.reset == "subtract" for x in model.layers], dtype=np.int64),
        fan=np.ascontiguousarray(fan, dtype=np.int64),
        weights=np.concatenate(rows),
    )
    s = model.scheduler
    params = _Params(  # plain ints, so that every model runs the same compiled specialization
        n_inputs=int(model.n_inputs),
        leak_shift=int(model.leak_shift),
        vmin=int(model.vmin),
        vmax=int(model.vmax),
        scheduler=_SCHEDULER_CODES[s.name],
        group_size=int(s.group_size),
        prioritized_input=int(s.prioritized_input),
        momentum_buckets=int(s.momentum_buckets),
        momentum_shift=int(s.momentum_shift),
        max_groups_per_step=int(s.max_groups_per_step),
        first_to_threshold=int(model.decision == "first_to_threshold"),
    )
    return net, params


class CompiledEngine:
    """Runs samples of one model with the compiled kernel.

    Parameters
    ----------
    model
        A validated model; its arrays are flattened once, here.
    """

    def __init__(self, model: Model):
        self.model = model
        self._net, self._params = _flatten(model)

    def record(
        self, events: EventSamples, s: int, *, state: int, record_membranes: bool
    ) -> dict[str, Any]:
        """The raw record of sample ``s`` of ``events``: :func:`.finish_sample`'s arguments.

        Parameters are those of :meth:`run`. Returns ``trace``, ``group_log``,
        ``input_events``, ``dropped``, ``steps`` and ``membranes`` (``None`` unless recorded).
        """
        trace, group_log, input_events, dropped, steps, membranes = _run_sample(
            np.ascontiguousarray(events.channel, dtype=np.int64),
            np.ascontiguousarray(events.step_ptr[s], dtype=np.int64),
            self._net,
            self._params,
            int(state),
            bool(record_membranes),
        )
        return {
            "trace": trace,
            "group_log": group_log,
            "input_events": input_events,
            "dropped": dropped,
            "steps": steps,
            "membranes": membranes if record_membranes else None,
        }

    def run(
        self, events: EventSamples, s: int, *, state: int, record_membranes: bool
    ) -> SampleResult:
        """Run sample ``s`` of ``events``.

        Parameters
        ----------
        events
            The batch; its channels must be inputs of the model.
        s
            Index of the sample in the batch.
        state
            The ``random`` scheduler's starting state (:func:`.rng.sample_seed`).
        record_membranes
            Also return the membranes at the end of every step.

        Returns
        -------
        SampleResult
            Identical to what :func:`.reference.run_sample` returns for the same sample.
        """
        return finish_sample(
            self.model,
            sample_id=int(events.sample_ids[s]),
            label=int(events.labels[s]),
            **self.record(events, s, state=state, record_membranes=record_membranes),
        )
