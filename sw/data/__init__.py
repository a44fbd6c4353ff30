"""Data sets as input events: embedded defaults and loaders for files the user has.

No network access: ``digits``, ``digits_events`` and ``manifolds`` are made from what installed
packages ship (scikit-learn's 8x8 digits) or generated; ``nmnist``, ``shd`` and ``tonic`` read
files the user already has (``path=``). ``docs/datasets.md`` describes each one.

>>> ds = load_dataset("digits", num_steps=20, seed=0)      # doctest: +SKIP
>>> ds.train, ds.test, ds.n_inputs, ds.n_classes, ds.encoding  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from unlayered.sim.errors import UnlayeredError

from .base import TEST_ID_OFFSET, Dataset, assemble, bin_events
from .encoders import latency_encode, latency_times, rate_encode, spikes_to_events

__all__ = [
    "DATASETS",
    "TEST_ID_OFFSET",
    "Dataset",
    "assemble",
    "bin_events",
    "latency_encode",
    "latency_times",
    "load_dataset",
    "rate_encode",
    "spikes_to_events",
]

DATASETS: tuple[str, ...] = ("digits", "digits_events", "manifolds", "nmnist", "shd", "tonic")
_FILE_DATASETS = ("nmnist", "shd", "tonic")


def load_dataset(
    name: str,
    *,
    num_steps: int | None = None,
    seed: int = 0,
    path: str | None = None,
    **options: Any,
) -> Dataset:
    """Load data set ``name`` (one of :data:`DATASETS`) as input events.

    ``num_steps`` defaults per data set (digits 20, digits_events 30, manifolds 50, nmnist 60,
    shd 100, tonic 100). ``seed`` fixes the split and the encoders' randomness. ``path`` is the
    directory of the user's files (``nmnist``, ``shd``, ``tonic`` only). ``options`` are the data
    set's own (see ``docs/datasets.md``); an unknown one raises :class:`UnlayeredError`.
    """
    if name not in DATASETS:
        raise UnlayeredError(f"unknown data set {name!r} (known: {', '.join(DATASETS)})")
    if num_steps is not None and (
        isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1
    ):
        raise UnlayeredError(f"data set {name!r}: num_steps={num_steps!r} is not an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UnlayeredError(f"data set {name!r}: seed={seed!r} is not an integer >= 0")
    if name in _FILE_DATASETS:
        from . import loaders

        load = {"nmnist": loaders.load_nmnist, "shd": loaders.load_shd, "tonic": loaders.load_tonic}
        return load[name](num_steps, seed, path, options)
    if path is not None:
        raise UnlayeredError(f"data set {name!r} is built in and takes no path (got {path!r})")
    if name == "manifolds":
        from .manifolds import load_manifolds

        return load_manifolds(num_steps, seed, options)
    from .digits import load_digits, load_digits_events

    if name == "digits":
        return load_digits(num_steps, seed, options)
    return load_digits_events(num_steps, seed, options)
