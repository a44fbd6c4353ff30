"""A tiny event dataset for the training tests (two classes, eight channels, eight steps)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlayered.sim import EventSamples


@dataclass(frozen=True)
class TinyDataset:
    """The ``unlayered.sw.data.Dataset`` interface."""

    name: str
    train: EventSamples
    test: EventSamples
    n_inputs: int
    n_classes: int
    num_steps: int
    encoding: dict


def tiny_dataset(n_train: int = 96, n_test: int = 32, seed: int = 0) -> TinyDataset:
    """Class ``k`` fires mostly on channels ``4k .. 4k + 3`` (probability 0.6 per step), any
    channel fires with probability 0.05 (noise)."""
    rng = np.random.default_rng(seed)
    n_in, steps = 8, 8

    def make(n: int, first_id: int) -> EventSamples:
        labels = rng.integers(0, 2, size=n)
        samples = []
        for k in labels:
            p = np.full(n_in, 0.05)
            p[4 * k : 4 * k + 4] = 0.6
            on = rng.random((steps, n_in)) < p
            samples.append([np.flatnonzero(row) for row in on])
        return EventSamples.from_lists(
            samples, labels=labels, sample_ids=np.arange(first_id, first_id + n)
        )

    return TinyDataset(
        name="tiny",
        train=make(n_train, 0),
        test=make(n_test, 10_000),
        n_inputs=n_in,
        n_classes=2,
        num_steps=steps,
        encoding={"kind": "synthetic", "note": "tests only"},
    )
