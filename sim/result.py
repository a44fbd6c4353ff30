"""What a run of one sample produces, and the decision and metrics derived from its trace.

Both engines (readable and compiled) produce only the raw record of an execution: the spike
trace, one row per delivered group, and a few counters. :func:`finish_sample` derives everything
else (output counts, decision, decision point, metrics up to the decision) from that record, in
one place, following semantics sections 7 and 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .model import Model

__all__ = ["SampleResult", "finish_sample"]


@dataclass(frozen=True, eq=False)
class SampleResult:
    """The outcome of one sample (semantics sections 7-9).

    Members
    -------
    trace
        ``(K, 3)`` int64 rows ``(step, group, neuron)`` in firing order.
    group_log
        ``(G, 3)`` int64 rows ``(step, group, synops)``, one per delivered group, in order.
    membranes
        ``(steps, N)`` membranes at the end of every step that ran, or ``None`` if not recorded.
    """

    sample_id: int
    label: int
    trace: np.ndarray
    group_log: np.ndarray
    input_events: int
    dropped: int
    steps: int
    output_counts: np.ndarray
    decision: int
    spikes: np.ndarray
    decision_step: int
    decision_group: int
    spikes_to_decision: np.ndarray
    synops_to_decision: int
    groups_to_decision: int
    membranes: np.ndarray | None = None

    @property
    def synops(self) -> int:
        return int(self.group_log[:, 2].sum())

    @property
    def groups(self) -> int:
        return len(self.group_log)

    @property
    def correct(self) -> bool:
        return self.decision == self.label

    def summary(self) -> dict[str, Any]:
        """JSON-ready metrics of the sample (without the trace)."""
        return {
            "sample_id": self.sample_id,
            "label": self.label,
            "decision": self.decision,
            "output_counts": self.output_counts.tolist(),
            "input_events": self.input_events,
            "spikes": self.spikes.tolist(),
            "synops": self.synops,
            "groups": self.groups,
            "dropped": self.dropped,
            "steps": self.steps,
            "decision_step": self.decision_step,
            "decision_group": self.decision_group,
            "spikes_to_decision": self.spikes_to_decision.tolist(),
            "synops_to_decision": self.synops_to_decision,
            "groups_to_decision": self.groups_to_decision,
        }


def _group_key(step, group):
    """One sortable integer per (step, group)."""
    return np.asarray(step, dtype=np.int64) * (1 << 32) + group


def _running_decision(counts: np.ndarray) -> int:
    """argmax with ties to the lowest index; -1 when nothing fired."""
    return int(np.argmax(counts)) if counts.any() else -1


def finish_sample(
    model: Model,
    *,
    sample_id: int,
    label: int,
    trace: np.ndarray,
    group_log: np.ndarray,
    input_events: int,
    dropped: int,
    steps: int,
    membranes: np.ndarray | None,
) -> SampleResult:
    """Derive counts, decision and the metrics up to the decision from an execution record."""
    trace = np.asarray(trace, dtype=np.int64).reshape(-1, 3)
    group_log = np.asarray(group_log, dtype=np.int64).reshape(-1, 3)
    starts = np.asarray(model.layer_starts)
    layer_of_spike = np.searchsorted(starts, trace[:, 2], side="right") - 1
    n_layers = len(model.layers)
    spikes = np.bincount(layer_of_spike, minlength=n_layers).astype(np.int64)
    out_start, n_out = starts[-1], model.layers[-1].size
    is_output = layer_of_spike == n_layers - 1
    output_counts = np.bincount(trace[is_output, 2] - out_start, minlength=n_out).astype(np.int64)

    # The decision point: the group whose evaluation fixed the decision (semantics 7).
    out_rows = np.flatnonzero(is_output)
    decision_row = -1  # index into the trace of the last spike of the decision group
    if model.decision == "first_to_threshold":
        decision = int(trace[out_rows[0], 2] - out_start) if len(out_rows) else -1
        if len(out_rows):
            decision_row = int(out_rows[0])
    elif len(out_rows):
        decision = _running_decision(output_counts)
        # Running decision after each group that fired outputs: argmax of the cumulative counts
        # at the group's last output spike (ties to the lowest index, as np.argmax does).
        running = np.cumsum(np.eye(n_out, dtype=np.int64)[trace[out_rows, 2] - out_start], axis=0)
        keys = _group_key(trace[out_rows, 0], trace[out_rows, 1])
        group_ends = np.flatnonzero(np.append(keys[1:] != keys[:-1], True))
        wrong = np.flatnonzero(np.argmax(running[group_ends], axis=1) != decision)
        # The earliest group end after which the running decision never differs again.
        decision_row = int(out_rows[group_ends[wrong[-1] + 1 if len(wrong) else 0]])
    else:
        decision = -1
    if decision_row < 0:
        to_step, to_group = -1, -1
        spikes_to, synops_to, groups_to = spikes, int(group_log[:, 2].sum()), len(group_log)
    else:
        to_step, to_group = (int(x) for x in trace[decision_row, :2])
        # Trace and group log are ordered by (step, group): the decision group's row in the
        # log, and the end of its spikes in the trace, by binary search.
        key = _group_key(to_step, to_group)
        g = int(np.searchsorted(_group_key(group_log[:, 0], group_log[:, 1]), key))
        end = int(np.searchsorted(_group_key(trace[:, 0], trace[:, 1]), key, side="right"))
        spikes_to = np.bincount(layer_of_spike[:end], minlength=n_layers).astype(np.int64)
        synops_to, groups_to = int(group_log[: g + 1, 2].sum()), g + 1
    return SampleResult(
        sample_id=int(sample_id),
        label=int(label),
        trace=trace,
        group_log=group_log,
        input_events=int(input_events),
        dropped=int(dropped),
        steps=int(steps),
        output_counts=output_counts,
        decision=decision,
        spikes=spikes,
        decision_step=to_step,
        decision_group=to_group,
        spikes_to_decision=spikes_to,
        synops_to_decision=synops_to,
        groups_to_decision=groups_to,
        membranes=membranes,
    )
