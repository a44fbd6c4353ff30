"""Batched torch input for the scheduled simulator, and conversion from/to ``EventSamples``.

An :class:`InputBatch` holds ``B`` samples of ``T`` steps (shorter samples padded, their
``num_steps`` kept) in two views of the same events:

- ``spikes`` ``(B, T, n_in)``: ``1`` where channel ``c`` has an event in step ``t`` (the dense
  view: one matrix product delivers a prioritized input group in float mode);
- ``order`` ``(B, T, E)``: the channels of each step in arrival order, padded with ``-1``
  (arrival order matters for fifo, momentum and random with non-prioritized input, and for
  per-add saturation in integer mode).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from unlayered.sim.events import EventSamples

__all__ = ["InputBatch", "from_dense", "from_events", "to_events"]


@dataclass(frozen=True, eq=False)
class InputBatch:
    """A batch of input event samples as tensors (see the module docstring).

    Members
    -------
    spikes
        ``(B, T, n_in)`` float, ``1`` for an event.
    order
        ``(B, T, E)`` int64, the step's channels in arrival order, ``-1`` padding.
    num_steps
        ``(B,)`` int64, steps of each sample (``<= T``); later steps are not run.
    sample_ids
        ``(B,)`` int64, the ids that seed the ``random`` scheduler.
    labels
        ``(B,)`` int64, class per sample, ``-1`` where unknown.
    """

    spikes: torch.Tensor
    order: torch.Tensor
    num_steps: torch.Tensor
    sample_ids: torch.Tensor
    labels: torch.Tensor

    @property
    def batch_size(self) -> int:
        return self.spikes.shape[0]

    @property
    def num_steps_max(self) -> int:
        return self.spikes.shape[1]

    @property
    def n_inputs(self) -> int:
        return self.spikes.shape[2]

    def to(self, device: torch.device | str) -> InputBatch:
        return replace(
            self,
            spikes=self.spikes.to(device),
            order=self.order.to(device),
            num_steps=self.num_steps.to(device),
            sample_ids=self.sample_ids.to(device),
            labels=self.labels.to(device),
        )


def from_events(
    events: EventSamples,
    n_inputs: int,
    *,
    num_steps: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> InputBatch:
    """Convert ``events`` into an :class:`InputBatch` padded to ``num_steps`` (default: the
    longest sample)."""
    events.check_channels(n_inputs)
    b = len(events)
    steps = np.array([events.num_steps(s) for s in range(b)], dtype=np.int64)
    t_max = int(steps.max(initial=0)) if num_steps is None else int(num_steps)
    if b and steps.max(initial=0) > t_max:
        raise ValueError(f"a sample has {steps.max()} steps, more than num_steps={t_max}")
    arrays = events.arrays()
    sample, step, channel = arrays["sample"], arrays["step"], arrays["channel"]
    # rank of each event within its (sample, step): its offset from the step's first event
    first = np.concatenate([p[:-1] for p in events.step_ptr] or [np.zeros(0, np.int64)])
    step_base = np.concatenate(([0], np.cumsum(steps)[:-1])).astype(np.int64)
    rank = np.arange(len(channel)) - first[step_base[sample] + step] if len(channel) else sample
    e_max = int(rank.max()) + 1 if len(channel) else 0
    spikes = np.zeros((b, t_max, n_inputs), dtype=np.float32)
    spikes[sample, step, channel] = 1
    order = np.full((b, t_max, e_max), -1, dtype=np.int64)
    order[sample, step, rank] = channel
    return InputBatch(
        spikes=torch.from_numpy(spikes).to(device=device, dtype=dtype),
        order=torch.from_numpy(order).to(device),
        num_steps=torch.from_numpy(steps).to(device),
        sample_ids=torch.as_tensor(np.asarray(events.sample_ids, dtype=np.int64), device=device),
        labels=torch.as_tensor(np.asarray(events.labels, dtype=np.int64), device=device),
    )


def from_dense(
    spikes: torch.Tensor,
    *,
    num_steps: torch.Tensor | None = None,
    sample_ids: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    arrival: str = "ascending",
    generator: torch.Generator | None = None,
) -> InputBatch:
    """An :class:`InputBatch` from dense ``(B, T, n_in)`` binary spikes.

    ``arrival`` orders each step's events: ``"ascending"`` by channel, or ``"random"`` (a
    uniformly random permutation per step, from ``generator``).
    """
    b, t, n_in = spikes.shape
    device = spikes.device
    on = spikes > 0
    if arrival == "ascending":
        key = torch.arange(n_in, device=device, dtype=torch.float32).expand(b, t, n_in)
    elif arrival == "random":
        key = torch.rand((b, t, n_in), generator=generator, device=device)
    else:
        raise ValueError(f"unknown arrival order {arrival!r}; expected 'ascending' or 'random'")
    key = torch.where(on, key, key + 2 * n_in)  # events first
    count = on.sum(-1)
    e_max = int(count.max()) if count.numel() else 0
    idx = key.argsort(dim=-1)[..., :e_max]
    order = torch.where(torch.arange(e_max, device=device) < count[..., None], idx, -1)
    if num_steps is None:
        num_steps = torch.full((b,), t, dtype=torch.int64, device=device)
    if sample_ids is None:
        sample_ids = torch.arange(b, device=device)
    if labels is None:
        labels = torch.full((b,), -1, dtype=torch.int64, device=device)
    return InputBatch(
        spikes=on.to(spikes.dtype if spikes.is_floating_point() else torch.float32),
        order=order,
        num_steps=num_steps.to(torch.int64),
        sample_ids=sample_ids.to(torch.int64),
        labels=labels.to(torch.int64),
    )


def to_events(batch: InputBatch) -> EventSamples:
    """The :class:`EventSamples` of a batch (arrival order and sample ids kept)."""
    order = batch.order.cpu().numpy()
    steps = batch.num_steps.cpu().numpy()
    samples = [[row[row >= 0] for row in order[s, : steps[s]]] for s in range(len(steps))]
    return EventSamples.from_lists(
        samples, labels=batch.labels.cpu().numpy(), sample_ids=batch.sample_ids.cpu().numpy()
    )
