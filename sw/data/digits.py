"""The 8x8 digits that scikit-learn ships: as spikes (``digits``), as events (``digits_events``)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from unlayered.sim.errors import UnlayeredError

from .base import Dataset, assemble, bin_events, check_choice, check_options, check_positive
from .base import split_ids as _split_ids
from .encoders import latency_events, rate_encode, spikes_to_events

__all__ = ["load_digits", "load_digits_events", "render_saccades", "stratified_split"]

DIGITS_DEFAULTS: dict[str, Any] = {
    "encoder": "rate",  # "rate" or "latency"
    "gain": 1.0,  # rate: spike probability per step = gain * intensity
    "threshold": 0.0,  # latency: intensities <= threshold never spike
    "test_fraction": 0.2,
}

EVENTS_DEFAULTS: dict[str, Any] = {
    "size": 16,  # sensor height = width, pixels
    "scale": 1.5,  # sensor pixels per digit pixel (the 8x8 digit covers 12x12)
    "saccade_px": 2.0,  # side of the triangular saccade path, sensor pixels
    "frames_per_saccade": 12,  # rendered frames per saccade (events are interpolated between)
    "contrast": 0.3,  # log-intensity change that emits one event
    "log_eps": 0.1,  # log(I + log_eps): the dark level of the sensor's log response
    "test_fraction": 0.2,
}


def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the installation
        raise UnlayeredError(
            "data set 'digits' needs scikit-learn (install the 'train' extra)"
        ) from None
    bunch = load_digits()
    return bunch.images.astype(np.float64) / 16.0, bunch.target.astype(np.int64)


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: per class, ``round(n_c * test_fraction)`` drawn for test.

    Deterministic for the seed; both index arrays ascending.
    """
    if not 0 < test_fraction < 1:
        raise UnlayeredError(f"option 'test_fraction': {test_fraction!r} is not in (0, 1)")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        test.append(rng.permutation(idx)[: round(len(idx) * test_fraction)])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx


def load_digits(num_steps: int | None, seed: int, options: dict[str, Any]) -> Dataset:
    opts = check_options("digits", options, DIGITS_DEFAULTS)
    num_steps = 20 if num_steps is None else num_steps
    check_choice("digits", "encoder", opts["encoder"], ("rate", "latency"))
    check_positive("digits", "gain", opts["gain"])
    images, labels = _raw_digits()
    x = images.reshape(len(images), 64)
    train_idx, test_idx = _split_ids_for(labels, opts["test_fraction"], seed)
    train_ids, test_ids = _split_ids(len(train_idx), len(test_idx))
    splits = []
    for k, (idx, ids) in enumerate(((train_idx, train_ids), (test_idx, test_ids))):
        if opts["encoder"] == "rate":
            # One generator per split, seeded by (seed, split): the test set does not move
            # when the train split changes size.
            rng = np.random.default_rng([seed, k])
            spikes = rate_encode(x[idx], num_steps, gain=opts["gain"], rng=rng)
            splits.append(spikes_to_events(spikes, labels[idx], ids))
        else:
            binned = latency_events(x[idx], num_steps, threshold=opts["threshold"])
            splits.append(assemble(binned, num_steps, labels[idx], ids, where="digits"))
    params = (
        {"gain": opts["gain"], "probability": "clip(gain * pixel / 16, 0, 1) per step"}
        if opts["encoder"] == "rate"
        else {"threshold": opts["threshold"], "step": "floor((1 - pixel / 16) * num_steps)"}
    )
    encoding = {
        "dataset": "digits",
        "source": "sklearn.datasets.load_digits (8x8, 16 gray levels)",
        "encoder": opts["encoder"],
        **params,
        "channels": "pixel row * 8 + column",
        "num_steps": num_steps,
        "seed": seed,
        "test_fraction": opts["test_fraction"],
        "n_train": len(train_idx),
        "n_test": len(test_idx),
    }
    return Dataset("digits", splits[0], splits[1], 64, 10, num_steps, encoding)


def _split_ids_for(labels: np.ndarray, test_fraction: Any, seed: int):
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)):
        raise UnlayeredError(f"option 'test_fraction': {test_fraction!r} is not a number")
    return stratified_split(labels, float(test_fraction), seed)


def _bilinear_matrix(size: int, n: int, offset: float, scale: float) -> np.ndarray:
    """``(size, n)`` weights sampling an ``n``-pixel axis at the sensor pixels' centres."""
    u = (np.arange(size) + 0.5 - offset) / scale - 0.5  # image coordinate of each centre
    i0 = np.floor(u).astype(np.int64)
    w1 = u - i0
    m = np.zeros((size, n))
    for i, w in ((i0, 1.0 - w1), (i0 + 1, w1)):
        ok = (i >= 0) & (i < n)
        m[np.flatnonzero(ok), i[ok]] += w[ok]
    return m


def saccade_path(frames_per_saccade: int, side: float) -> tuple[np.ndarray, np.ndarray]:
    """Times in ``[0, 1]`` and ``(dy, dx)`` offsets of three linear saccades (a triangle).

    As N-MNIST was recorded: the sensor moves along an isosceles triangle and returns to the
    start; here the image moves instead (the same relative motion). Centroid at the origin.
    """
    h = side * np.sqrt(3) / 2
    corners = np.array([[-2 * h / 3, 0.0], [h / 3, side / 2], [h / 3, -side / 2]])
    corners = np.vstack([corners, corners[:1]])
    n = frames_per_saccade
    frac = np.arange(1, n + 1) / n
    points = [corners[:1]]
    for k in range(3):
        points.append(corners[k] + frac[:, None] * (corners[k + 1] - corners[k]))
    return np.linspace(0.0, 1.0, 3 * n + 1), np.vstack(points)


def render_saccades(
    images: np.ndarray,
    *,
    size: int,
    scale: float,
    saccade_px: float,
    frames_per_saccade: int,
    contrast: float,
    log_eps: float,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """ON/OFF events of images in ``[0, 1]`` ``(S, h, w)`` moved along the saccade path.

    Each sensor pixel keeps a reference log intensity; whenever ``log(I + log_eps)`` moves
    ``contrast`` past it, the pixel emits an event (ON up, OFF down) and the reference moves by
    ``contrast``. Event times are interpolated linearly between frames. Returns per sample
    ``(time, polarity, pixel)``: time in ``[0, 1]``, polarity 1 ON / 0 OFF, pixel = y * size + x.
    """
    s, h, w = images.shape
    times, path = saccade_path(frames_per_saccade, saccade_px)
    off_y, off_x = (size - h * scale) / 2, (size - w * scale) / 2
    frames = []
    for dy, dx in path:
        wy = _bilinear_matrix(size, h, off_y + dy, scale)
        wx = _bilinear_matrix(size, w, off_x + dx, scale)
        frame = np.einsum("ri,sij,cj->src", wy, images, wx)
        frames.append(np.log(np.clip(frame, 0.0, None) + log_eps).reshape(s, size * size))
    # Level units: z = (log intensity - its start) / contrast; q counts the pixel's events so
    # far (ON +1, OFF -1). An event fires when z moves strictly past q + 1 or q - 1, so a pixel
    # that merely returns to a level it already signalled stays silent.
    z = [(f - frames[0]) / contrast for f in frames]
    q = np.zeros_like(z[0], dtype=np.int64)
    ev_s, ev_t, ev_p, ev_c = [], [], [], []
    for k in range(1, len(z)):
        prev, cur = z[k - 1], z[k]
        d = cur - q
        n = np.maximum(np.ceil(np.abs(d)).astype(np.int64) - 1, 0)
        sample, pixel = np.nonzero(n)
        if len(sample) == 0:
            continue
        counts = n[sample, pixel]
        sign = np.sign(d[sample, pixel]).astype(np.int64)
        # The j-th crossing (j = 1..count) of this pixel in this frame interval.
        rep = np.repeat(np.arange(len(sample)), counts)
        j = np.arange(len(rep)) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        level = q[sample, pixel][rep] + sign[rep] * j
        p0, p1 = prev[sample, pixel][rep], cur[sample, pixel][rep]
        frac = np.clip((level - p0) / (p1 - p0), 0.0, 1.0)
        ev_s.append(sample[rep])
        ev_t.append(times[k - 1] + frac * (times[k] - times[k - 1]))
        ev_p.append((sign[rep] > 0).astype(np.int64))
        ev_c.append(pixel[rep])
        q[sample, pixel] += sign * counts
    if not ev_s:
        return [(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))] * s
    es, et, ep, ec = (np.concatenate(a) for a in (ev_s, ev_t, ev_p, ev_c))
    order = np.argsort(es, kind="stable")
    es, et, ep, ec = es[order], et[order], ep[order], ec[order]
    bounds = np.searchsorted(es, np.arange(s + 1))
    return [(et[a:b], ep[a:b], ec[a:b]) for a, b in itertools.pairwise(bounds)]


def load_digits_events(num_steps: int | None, seed: int, options: dict[str, Any]) -> Dataset:
    opts = check_options("digits_events", options, EVENTS_DEFAULTS)
    num_steps = 30 if num_steps is None else num_steps
    for key in ("size", "frames_per_saccade"):
        check_positive("digits_events", key, opts[key], integer=True)
    for key in ("scale", "contrast", "log_eps"):
        check_positive("digits_events", key, opts[key])
    if isinstance(opts["saccade_px"], bool) or not isinstance(opts["saccade_px"], (int, float)):
        raise UnlayeredError("data set 'digits_events': option 'saccade_px' is not a number")
    images, labels = _raw_digits()
    train_idx, test_idx = _split_ids_for(labels, opts["test_fraction"], seed)
    size = int(opts["size"])
    render = {k: opts[k] for k in EVENTS_DEFAULTS if k != "test_fraction"}
    splits = []
    ids_both = _split_ids(len(train_idx), len(test_idx))
    for idx, ids in zip((train_idx, test_idx), ids_both, strict=True):
        events = render_saccades(images[idx], **render)
        binned = [bin_events(t, p * size * size + c, num_steps, 1.0 + 1e-9) for t, p, c in events]
        splits.append(assemble(binned, num_steps, labels[idx], ids, where="digits_events"))
    encoding = {
        "dataset": "digits_events",
        "source": "sklearn.datasets.load_digits (8x8, 16 gray levels)",
        "encoder": "saccade_dvs",
        **render,
        "saccades": 3,
        "channels": f"polarity * {size * size} + y * {size} + x (polarity 1 = ON, 0 = OFF)",
        "binning": "event time in [0, 1) over num_steps; a channel at most once per step",
        "num_steps": num_steps,
        "seed": seed,
        "test_fraction": opts["test_fraction"],
        "n_train": len(train_idx),
        "n_test": len(test_idx),
    }
    return Dataset("digits_events", splits[0], splits[1], 2 * size * size, 10, num_steps, encoding)
