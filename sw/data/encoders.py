"""Spike encoders for intensity arrays, and dense spikes to :class:`EventSamples`.

An intensity array has shape ``(..., C)`` with values in ``[0, 1]`` (``C`` channels, any batch
shape in front). The encoders return spikes of shape ``(..., num_steps, C)`` (bool), the time
axis before the channels, as the project's dense view (``B, T, n_in``).
"""

from __future__ import annotations

import numpy as np

from unlayered.sim.errors import UnlayeredError
from unlayered.sim.events import EventSamples, from_arrays

from .base import bin_events

__all__ = ["latency_encode", "latency_events", "latency_times", "rate_encode", "spikes_to_events"]


def _intensity(x: np.ndarray, where: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 1:
        raise UnlayeredError(f"{where}: intensity must have a channel axis, got shape {x.shape}")
    if x.size and (not np.all(np.isfinite(x)) or x.min() < 0 or x.max() > 1):
        raise UnlayeredError(f"{where}: intensities must be in [0, 1]")
    return x


def rate_encode(
    intensity: np.ndarray,
    num_steps: int,
    *,
    gain: float = 1.0,
    rng: np.random.Generator | int | None = 0,
) -> np.ndarray:
    """Bernoulli rate code: channel ``c`` spikes in each step with probability ``gain * x[c]``.

    The probability is clipped to ``[0, 1]``; a zero intensity never spikes, ``gain * x >= 1``
    spikes in every step. ``rng`` is a generator or a seed (deterministic for the same seed).
    """
    x = _intensity(intensity, "rate_encode")
    p = np.clip(gain * x, 0.0, 1.0)
    rng = np.random.default_rng(rng)
    shape = (*x.shape[:-1], num_steps, x.shape[-1])
    return rng.random(shape) < p[..., None, :]


def latency_times(intensity: np.ndarray, num_steps: int, *, threshold: float = 0.0) -> np.ndarray:
    """The continuous spike time, in steps, of each channel of the latency code.

    ``t = (1 - x) * num_steps``: ``x = 1`` spikes at the start of step 0, a faint channel near the
    end of the last step. Channels with ``x <= threshold`` (zero pixels) never spike: ``inf``.
    """
    x = _intensity(intensity, "latency_encode")
    return np.where(x > threshold, (1.0 - x) * num_steps, np.inf)


def latency_encode(intensity: np.ndarray, num_steps: int, *, threshold: float = 0.0) -> np.ndarray:
    """Latency code: each channel spikes once, in step ``floor((1 - x) * num_steps)``.

    Brighter is earlier; channels with ``x <= threshold`` never spike. Returns
    ``(..., num_steps, C)`` bool.
    """
    t = latency_times(intensity, num_steps, threshold=threshold)
    fires = np.isfinite(t)
    step = np.minimum(np.where(fires, t, 0).astype(np.int64), num_steps - 1)
    out = np.zeros((*t.shape[:-1], num_steps, t.shape[-1]), dtype=bool)
    hit = np.arange(num_steps)[:, None] == step[..., None, :]
    out[...] = hit & fires[..., None, :]
    return out


def latency_events(
    intensity: np.ndarray, num_steps: int, *, threshold: float = 0.0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Latency code of ``(S, C)`` intensities as each sample's ``(step, channel)``.

    Same steps as :func:`latency_encode`; within a step, brighter channels arrive first (ties in
    ascending channel).
    """
    t = latency_times(intensity, num_steps, threshold=threshold)
    if t.ndim != 2:
        raise UnlayeredError(f"latency_events: expected (samples, channels), got {t.shape}")
    channels = np.arange(t.shape[1])
    return [bin_events(row, channels, num_steps, float(num_steps)) for row in t]


def spikes_to_events(
    spikes: np.ndarray,
    labels: np.ndarray | None = None,
    sample_ids: np.ndarray | None = None,
) -> EventSamples:
    """Dense spikes ``(S, T, C)`` to :class:`EventSamples` (within a step: ascending channel)."""
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise UnlayeredError(f"spikes_to_events: expected (S, T, C), got shape {spikes.shape}")
    sample, step, channel = np.nonzero(spikes)
    return from_arrays(
        sample=sample,
        step=step,
        channel=channel,
        num_steps=np.full(spikes.shape[0], spikes.shape[1], np.int64),
        label=labels,
        sample_id=sample_ids,
        where="spikes_to_events",
    )
