"""The :class:`Dataset` record, option checking and the shared event binning."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from unlayered.sim.errors import UnlayeredError
from unlayered.sim.events import EventSamples, from_arrays

__all__ = ["TEST_ID_OFFSET", "Dataset", "assemble", "bin_events"]

TEST_ID_OFFSET = 1_000_000
"""Test samples have ids ``TEST_ID_OFFSET + i``, train samples ``i`` (distinct, below 2^32)."""


@dataclass(frozen=True)
class Dataset:
    """A data set as input events, split into train and test.

    Members
    -------
    name
        The name given to :func:`~unlayered.sw.data.load_dataset`.
    train, test
        The samples, labels set; train ids are ``0 .. n-1``, test ids ``TEST_ID_OFFSET + i``.
    n_inputs, n_classes
        Input channels and classes.
    num_steps
        Time steps of every sample.
    encoding
        JSON-ready description of how the inputs were made (the model artifact's
        ``input_encoding``): dataset, encoder, its parameters, seed, split sizes.
    """

    name: str
    train: EventSamples
    test: EventSamples
    n_inputs: int
    n_classes: int
    num_steps: int
    encoding: dict


def check_options(
    name: str, options: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Merge ``options`` into ``defaults``; raise naming any option ``name`` does not take."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        valid = ", ".join(sorted(defaults)) or "none"
        raise UnlayeredError(
            f"data set {name!r}: unknown option(s) {', '.join(map(repr, unknown))} (valid: {valid})"
        )
    return {**defaults, **options}


def check_choice(name: str, option: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UnlayeredError(
            f"data set {name!r}: option {option!r}: unknown value {value!r} "
            f"(valid: {', '.join(choices)})"
        )


def check_positive(name: str, option: str, value: Any, *, integer: bool = False) -> None:
    ok = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not value > 0:
        kind = "a positive integer" if integer else "a positive number"
        raise UnlayeredError(f"data set {name!r}: option {option!r}: {value!r} is not {kind}")


def bin_events(
    times: np.ndarray, channels: np.ndarray, num_steps: int, t_max: float
) -> tuple[np.ndarray, np.ndarray]:
    """Bin timed events into steps: per step, unique channels in arrival order.

    An event at time ``t`` falls in step ``floor(t / t_max * num_steps)``; events with ``t``
    outside ``[0, t_max)`` (or not finite) are dropped. Within a step the events are ordered by
    time (ties keep their input order), and a channel that occurs again in the same step is
    dropped (an input channel spikes at most once per step, semantics section 5): its first
    event stays.

    Returns ``(step, channel)``, two int64 arrays ordered by step, then arrival.
    """
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    channels = np.asarray(channels, dtype=np.int64).reshape(-1)
    if len(times) != len(channels):
        raise UnlayeredError(
            f"bin_events: {len(times)} times but {len(channels)} channels (one each per event)"
        )
    if not num_steps > 0 or not t_max > 0:
        raise UnlayeredError(f"bin_events: num_steps={num_steps}, t_max={t_max} must be > 0")
    keep = np.isfinite(times) & (times >= 0) & (times < t_max)
    times, channels = times[keep], channels[keep]
    step = np.minimum((times * (num_steps / t_max)).astype(np.int64), num_steps - 1)
    order = np.lexsort((times, step))  # stable: equal times keep their input order
    step, channels = step[order], channels[order]
    if len(channels):
        key = step * (int(channels.max()) + 1) + channels
        _, first = np.unique(key, return_index=True)  # index of each key's first occurrence
        first.sort()
        step, channels = step[first], channels[first]
    return step, channels


def assemble(
    binned: Sequence[tuple[np.ndarray, np.ndarray]],
    num_steps: int,
    labels: Sequence[int] | np.ndarray,
    sample_ids: np.ndarray,
    where: str = "data set",
) -> EventSamples:
    """Build :class:`EventSamples` from each sample's ``(step, channel)`` (:func:`bin_events`)."""
    n = len(binned)
    counts = [len(s) for s, _ in binned]
    empty = np.zeros(0, np.int64)
    return from_arrays(
        sample=np.repeat(np.arange(n, dtype=np.int64), counts),
        step=np.concatenate([s for s, _ in binned] or [empty]),
        channel=np.concatenate([c for _, c in binned] or [empty]),
        num_steps=np.full(n, num_steps, np.int64),
        label=np.asarray(labels, dtype=np.int64).reshape(-1),
        sample_id=np.asarray(sample_ids, dtype=np.int64),
        where=where,
    )


def split_ids(n_train: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n_train, dtype=np.int64), TEST_ID_OFFSET + np.arange(n_test, dtype=np.int64)
