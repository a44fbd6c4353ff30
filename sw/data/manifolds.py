"""Random manifolds: a synthetic temporal classification task (after Zenke & Vogels 2021).

Each class is a smooth random map ``f_c`` from ``[0, 1]^dimension x [0, 1]`` (a point on the
class's manifold, and time) to the firing rates of ``n_inputs`` channels. Per channel ``i`` and
coordinate ``d`` a random 1-D function ``g(u) = sum_k a_k / k^smoothness * sin(2 pi (k u + phi_k))``
(``k = 1 .. n_frequencies``, ``a_k`` uniform in ``[0, 1]``, ``phi_k`` uniform) is drawn; the
channel's activation is the product of its functions over the ``dimension + 1`` coordinates,
rescaled to ``[0, 1]`` over the class's manifold. A sample is a uniform random point ``x`` on a
class's manifold; channel ``i`` spikes in step ``t`` with probability
``max_rate * f_c(x, (t + 0.5) / num_steps)[i]`` (Bernoulli). Larger ``smoothness`` makes smoother
manifolds; larger ``dimension`` makes more varied samples of a class (a harder task).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unlayered.sim.errors import UnlayeredError

from .base import Dataset, check_options, check_positive, split_ids
from .encoders import spikes_to_events

__all__ = ["MANIFOLDS_DEFAULTS", "load_manifolds", "manifold_rates"]

MANIFOLDS_DEFAULTS: dict[str, Any] = {
    "n_inputs": 32,
    "n_classes": 10,
    "dimension": 1,  # intrinsic dimension of each class's manifold (time comes on top)
    "smoothness": 2.0,  # spectral decay: amplitude of frequency k is a_k / k^smoothness
    "n_frequencies": 4,
    "max_rate": 0.3,  # spike probability per step at the highest activation
    "train_per_class": 200,
    "test_per_class": 50,
}


def _random_functions(
    rng: np.random.Generator, shape: tuple[int, ...], n_freq: int, smoothness: float
) -> tuple[np.ndarray, np.ndarray]:
    amp = rng.uniform(0.0, 1.0, (*shape, n_freq)) / np.arange(1, n_freq + 1) ** smoothness
    phase = rng.uniform(0.0, 1.0, (*shape, n_freq))
    return amp, phase


def _evaluate(amp: np.ndarray, phase: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Activation ``(P, C)`` at ``coords`` ``(P, D + 1)``; ``amp, phase`` are ``(C, D + 1, K)``."""
    k = np.arange(1, amp.shape[-1] + 1)
    # (P, C, D+1, K)
    arg = 2 * np.pi * (k * coords[:, None, :, None] + phase[None])
    g = (amp[None] * np.sin(arg)).sum(-1)
    return g.prod(-1)


def manifold_rates(
    seed: int,
    n_inputs: int,
    n_classes: int,
    dimension: int,
    smoothness: float,
    n_frequencies: int,
    points: list[np.ndarray],
    num_steps: int,
) -> list[np.ndarray]:
    """Activations in ``[0, 1]`` ``(n_points, num_steps, n_inputs)`` of each class's points.

    The manifolds depend on ``seed`` (and the shape parameters) only, not on the points.
    """
    rng = np.random.default_rng([seed, 0])
    t = (np.arange(num_steps) + 0.5) / num_steps
    probe_rng = np.random.default_rng([seed, 1])
    out = []
    for c in range(n_classes):
        amp, phase = _random_functions(rng, (n_inputs, dimension + 1), n_frequencies, smoothness)
        # Rescale over the manifold: min/max over a fixed random probe of (point, time).
        probe = probe_rng.uniform(0.0, 1.0, (4096, dimension + 1))
        a = _evaluate(amp, phase, probe)
        lo, hi = a.min(0), a.max(0)
        x = points[c]
        coords = np.concatenate(
            [np.repeat(x, num_steps, axis=0), np.tile(t, len(x))[:, None]], axis=1
        )
        act = (_evaluate(amp, phase, coords) - lo) / np.maximum(hi - lo, 1e-12)
        out.append(np.clip(act, 0.0, 1.0).reshape(len(x), num_steps, n_inputs))
    return out


def load_manifolds(num_steps: int | None, seed: int, options: dict[str, Any]) -> Dataset:
    opts = check_options("manifolds", options, MANIFOLDS_DEFAULTS)
    num_steps = 50 if num_steps is None else num_steps
    for key in ("n_inputs", "n_classes", "dimension", "n_frequencies"):
        check_positive("manifolds", key, opts[key], integer=True)
    for key in ("train_per_class", "test_per_class"):
        check_positive("manifolds", key, opts[key], integer=True)
    check_positive("manifolds", "max_rate", opts["max_rate"])
    if opts["max_rate"] > 1:
        raise UnlayeredError(f"data set 'manifolds': option 'max_rate': {opts['max_rate']} > 1")
    if isinstance(opts["smoothness"], bool) or not isinstance(opts["smoothness"], (int, float)):
        raise UnlayeredError("data set 'manifolds': option 'smoothness' is not a number")
    n_classes, dim = int(opts["n_classes"]), int(opts["dimension"])
    n_tr, n_te = int(opts["train_per_class"]), int(opts["test_per_class"])
    point_rng = np.random.default_rng([seed, 2])
    points = [point_rng.uniform(0.0, 1.0, (n_tr + n_te, dim)) for _ in range(n_classes)]
    rates = manifold_rates(
        seed,
        int(opts["n_inputs"]),
        n_classes,
        dim,
        float(opts["smoothness"]),
        int(opts["n_frequencies"]),
        points,
        num_steps,
    )
    train_ids, test_ids = split_ids(n_tr * n_classes, n_te * n_classes)
    splits = []
    for k, (part, ids) in enumerate(
        ((slice(0, n_tr), train_ids), (slice(n_tr, n_tr + n_te), test_ids))
    ):
        act = np.concatenate([r[part] for r in rates])  # class-major order
        labels = np.repeat(np.arange(n_classes), act.shape[0] // n_classes)
        spike_rng = np.random.default_rng([seed, 3, k])
        spikes = spike_rng.random(act.shape) < opts["max_rate"] * act
        splits.append(spikes_to_events(spikes, labels, ids))
    encoding = {
        "dataset": "manifolds",
        "encoder": "random_manifold_rate",
        **{k: opts[k] for k in MANIFOLDS_DEFAULTS},
        "probability": "max_rate * f_class(point, (t + 0.5) / num_steps)[channel] per step",
        "num_steps": num_steps,
        "seed": seed,
        "n_train": n_tr * n_classes,
        "n_test": n_te * n_classes,
    }
    return Dataset(
        "manifolds",
        splits[0],
        splits[1],
        int(opts["n_inputs"]),
        n_classes,
        num_steps,
        encoding,
    )
