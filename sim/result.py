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
    else:
        decision = _running_decision(output_counts)
        running = np.zeros(n_out, dtype=np.int64)
        for i in out_rows:
            running[trace[i, 2] - out_start] += 1
            last_of_group = i + 1 == len(trace) or tuple(trace[i + 1, :2]) != tuple(trace[i, :2])
            if not last_of_group:
                continue
            if _running_decision(running) != decision:
                decision_row = -1
            elif decision_row < 0:
                decision_row = int(i)
    if decision_row < 0:
        to_step, to_group = -1, -1
        spikes_to, synops_to, groups_to = spikes, int(group_log[:, 2].sum()), len(group_log)
    else:
        to_step, to_group = (int(x) for x in trace[decision_row, :2])
        # The decision group's row in the log, and every spike up to the end of that group.
        g = int(np.flatnonzero((group_log[:, 0] == to_step) & (group_log[:, 1] == to_group))[0])
        end = decision_row + 1
        while end < len(trace) and tuple(trace[end, :2]) == (to_step, to_group):
            end += 1
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
