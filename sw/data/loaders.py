"""Loaders for event data sets the user already has on disk: N-MNIST, SHD, tonic arrays.

Nothing is downloaded. Every loader bins the events with :func:`~unlayered.sw.data.bin_events`
(time ``[0, t_max)`` over ``num_steps`` steps, a channel at most once per step, arrival order by
event time) and raises :class:`~unlayered.sim.errors.UnlayeredError` naming the file and what is
wrong when the data is missing or malformed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unlayered.sim.errors import UnlayeredError

from .base import Dataset, assemble, bin_events, check_options, check_positive, split_ids

__all__ = ["load_nmnist", "load_shd", "load_tonic", "read_nmnist_file", "read_tonic_file"]

NMNIST_SIZE = 34
SHD_UNITS = 700

NMNIST_DEFAULTS: dict[str, Any] = {
    "t_max": 300_000,  # microseconds: the three saccades; later events are dropped
    "pool": 1,  # spatial pooling: sensor (34 / pool rounded up)^2 x 2 channels
    "first_saccade_only": False,  # keep only events before 100 ms (and t_max <= 100 ms)
    "max_per_class": None,  # first N files per class and split (sorted by name)
}
SHD_DEFAULTS: dict[str, Any] = {
    "t_max": 1.4,  # seconds
    "pool": 1,  # channel = unit // pool
    "max_per_class": None,  # first N samples per class and split, in file order
}
TONIC_DEFAULTS: dict[str, Any] = {
    "sensor_size": None,  # (width, height, polarities) as tonic; inferred from data if None
    "t_max": None,  # in the arrays' time unit; the largest time + 1 in the data if None
    "align_start": False,  # subtract each sample's first event time
    "pool": 1,  # spatial pooling of x and y
    "n_classes": None,  # largest label + 1 if None
    "max_per_class": None,
}


def _require_dir(name: str, path: str | Path | None) -> Path:
    if path is None:
        raise UnlayeredError(f"data set {name!r} reads files you have: pass path=<directory>")
    path = Path(path)
    if not path.exists():
        raise UnlayeredError(f"data set {name!r}: {path}: no such file or directory")
    if not path.is_dir():
        raise UnlayeredError(f"data set {name!r}: {path}: not a directory")
    return path


def _check_max(name: str, value: Any) -> int | None:
    if value is not None:
        check_positive(name, "max_per_class", value, integer=True)
    return value


def _split_dir(name: str, root: Path, split: str) -> Path:
    for candidate in (split.capitalize(), split.lower()):
        if (root / candidate).is_dir():
            return root / candidate
    raise UnlayeredError(
        f"data set {name!r}: {root}: no {split.capitalize()}/ (or {split}/) directory"
    )


def _label_dirs(name: str, split_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for d in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        try:
            label = int(d.name)
        except ValueError:
            raise UnlayeredError(
                f"data set {name!r}: {d}: class directories must be named by their label "
                f"(an integer >= 0)"
            ) from None
        if label < 0:
            raise UnlayeredError(f"data set {name!r}: {d}: negative label")
        out.append((label, d))
    if not out:
        raise UnlayeredError(f"data set {name!r}: {split_dir}: no class directories")
    return sorted(out)


# ------------------------------------------------------------------------------------ N-MNIST


def read_nmnist_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read one N-MNIST ``.bin`` file: arrays ``x, y, p, t`` (t in microseconds).

    Each event is 40 bits, big-endian: x (8 bits), y (8 bits), polarity (1 bit, 1 = ON) and
    timestamp (23 bits).
    """
    path = Path(path)
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise UnlayeredError(f"N-MNIST file {path}: cannot read ({exc})") from None
    if len(raw) % 5:
        raise UnlayeredError(
            f"N-MNIST file {path}: {len(raw)} bytes is not a whole number of 5-byte events"
        )
    ev = raw.reshape(-1, 5).astype(np.int64)
    x, y = ev[:, 0], ev[:, 1]
    p = ev[:, 2] >> 7
    t = ((ev[:, 2] & 0x7F) << 16) | (ev[:, 3] << 8) | ev[:, 4]
    bad = np.flatnonzero((x >= NMNIST_SIZE) | (y >= NMNIST_SIZE))
    if len(bad):
        e = int(bad[0])
        raise UnlayeredError(
            f"N-MNIST file {path}: event {e} at x={x[e]}, y={y[e]} is outside the 34x34 sensor "
            f"(not an N-MNIST file?)"
        )
    return {"x": x, "y": y, "p": p, "t": t}


def load_nmnist(num_steps: int | None, seed: int, path: Any, options: dict[str, Any]) -> Dataset:
    """N-MNIST from ``<path>/Train/<digit>/*.bin`` and ``<path>/Test/<digit>/*.bin``."""
    opts = check_options("nmnist", options, NMNIST_DEFAULTS)
    num_steps = 60 if num_steps is None else num_steps
    root = _require_dir("nmnist", path)
    check_positive("nmnist", "t_max", opts["t_max"])
    check_positive("nmnist", "pool", opts["pool"], integer=True)
    limit = _check_max("nmnist", opts["max_per_class"])
    t_max = float(opts["t_max"])
    if opts["first_saccade_only"]:
        t_max = min(t_max, 100_000.0)
    pool = int(opts["pool"])
    side = -(-NMNIST_SIZE // pool)
    splits, sizes, n_classes = [], [], 0
    for split in ("train", "test"):
        binned, labels = [], []
        for label, d in _label_dirs("nmnist", _split_dir("nmnist", root, split)):
            files = sorted(d.glob("*.bin"))[:limit]
            for f in files:
                ev = read_nmnist_file(f)
                ch = (ev["p"] * side + ev["y"] // pool) * side + ev["x"] // pool
                binned.append(bin_events(ev["t"], ch, num_steps, t_max))
                labels.append(label)
            n_classes = max(n_classes, label + 1)
        if not binned:
            raise UnlayeredError(f"data set 'nmnist': {root}: no .bin files in the {split} split")
        sizes.append(len(binned))
        splits.append((binned, labels))
    ids = split_ids(*sizes)
    train, test = (
        assemble(b, num_steps, lab, i, where=f"nmnist {root}")
        for (b, lab), i in zip(splits, ids, strict=True)
    )
    encoding = {
        "dataset": "nmnist",
        "source": str(root),
        "encoder": "binned_events",
        "t_max_us": t_max,
        "pool": pool,
        "first_saccade_only": bool(opts["first_saccade_only"]),
        "max_per_class": limit,
        "sensor": [side, side, 2],
        "channels": f"polarity * {side * side} + (y // {pool}) * {side} + x // {pool}",
        "num_steps": num_steps,
        "seed": seed,
        "n_train": sizes[0],
        "n_test": sizes[1],
    }
    return Dataset("nmnist", train, test, 2 * side * side, max(n_classes, 10), num_steps, encoding)


# ------------------------------------------------------------------------------------ SHD


def _read_shd(f: Path) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    try:
        import h5py
    except ImportError:  # pragma: no cover - depends on the installation
        raise UnlayeredError("data set 'shd' needs h5py (install the 'train' extra)") from None
    if not f.is_file():
        raise UnlayeredError(f"data set 'shd': {f}: no such file")
    try:
        h5 = h5py.File(f, "r")
    except OSError as exc:
        raise UnlayeredError(f"SHD file {f}: not a readable HDF5 file ({exc})") from None
    with h5:
        for key in ("spikes/times", "spikes/units", "labels"):
            if key not in h5 or not isinstance(h5[key], h5py.Dataset):
                raise UnlayeredError(f"SHD file {f}: missing dataset '{key}'")
        try:
            times = [np.asarray(a, dtype=np.float64).reshape(-1) for a in h5["spikes/times"][()]]
            units = [np.asarray(a).reshape(-1) for a in h5["spikes/units"][()]]
            labels = np.asarray(h5["labels"][()])
        except (TypeError, ValueError, OSError) as exc:
            raise UnlayeredError(f"SHD file {f}: unreadable spikes or labels ({exc})") from None
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise UnlayeredError(f"SHD file {f}: 'labels' must be 1-D integers, got {labels.dtype}")
    if not len(times) == len(units) == len(labels):
        raise UnlayeredError(
            f"SHD file {f}: 'spikes/times', 'spikes/units', 'labels' differ in length: "
            f"{len(times)}, {len(units)}, {len(labels)}"
        )
    for s, (t, u) in enumerate(zip(times, units, strict=True)):
        if len(t) != len(u):
            raise UnlayeredError(f"SHD file {f}: sample {s}: {len(t)} times but {len(u)} units")
        if len(u) and (
            not np.issubdtype(u.dtype, np.integer) or u.min() < 0 or u.max() >= SHD_UNITS
        ):
            raise UnlayeredError(
                f"SHD file {f}: sample {s}: 'spikes/units' must be integers in 0..699"
            )
    if len(labels) and labels.min() < 0:
        raise UnlayeredError(f"SHD file {f}: negative label {labels.min()}")
    return times, units, labels.astype(np.int64)


def load_shd(num_steps: int | None, seed: int, path: Any, options: dict[str, Any]) -> Dataset:
    """SHD from ``<path>/shd_train.h5`` and ``<path>/shd_test.h5``."""
    opts = check_options("shd", options, SHD_DEFAULTS)
    num_steps = 100 if num_steps is None else num_steps
    root = _require_dir("shd", path)
    check_positive("shd", "t_max", opts["t_max"])
    check_positive("shd", "pool", opts["pool"], integer=True)
    limit = _check_max("shd", opts["max_per_class"])
    pool, t_max = int(opts["pool"]), float(opts["t_max"])
    splits, sizes, n_classes = [], [], 20
    for split in ("train", "test"):
        times, units, labels = _read_shd(root / f"shd_{split}.h5")
        keep = np.arange(len(labels))
        if limit is not None:
            keep = np.concatenate(
                [np.flatnonzero(labels == c)[:limit] for c in np.unique(labels)] or [keep[:0]]
            )
            keep.sort()
        binned = [bin_events(times[s], units[s] // pool, num_steps, t_max) for s in keep]
        if len(labels):
            n_classes = max(n_classes, int(labels.max()) + 1)
        sizes.append(len(keep))
        splits.append((binned, labels[keep]))
    ids = split_ids(*sizes)
    train, test = (
        assemble(b, num_steps, lab, i, where=f"shd {root}")
        for (b, lab), i in zip(splits, ids, strict=True)
    )
    n_inputs = -(-SHD_UNITS // pool)
    encoding = {
        "dataset": "shd",
        "source": str(root),
        "encoder": "binned_events",
        "t_max_s": t_max,
        "pool": pool,
        "max_per_class": limit,
        "channels": f"unit // {pool}",
        "num_steps": num_steps,
        "seed": seed,
        "n_train": sizes[0],
        "n_test": sizes[1],
    }
    return Dataset("shd", train, test, n_inputs, n_classes, num_steps, encoding)


# ------------------------------------------------------------------------------------ tonic


def read_tonic_file(path: str | Path) -> np.ndarray:
    """Read one tonic-style structured event array (fields ``t``, ``x``, optional ``y``, ``p``)."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UnlayeredError(f"tonic file {path}: not a readable .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise UnlayeredError(f"tonic file {path}: an .npz archive, expected one .npy array")
    names = arr.dtype.names
    if names is None:
        raise UnlayeredError(
            f"tonic file {path}: not a structured array (dtype {arr.dtype}); expected fields "
            f"t, x, (y), p"
        )
    missing = [f for f in ("t", "x", "p") if f not in names]
    if missing:
        raise UnlayeredError(
            f"tonic file {path}: missing field(s) {', '.join(missing)} (has {', '.join(names)})"
        )
    if arr.ndim != 1:
        raise UnlayeredError(f"tonic file {path}: expected a 1-D event array, got {arr.shape}")
    for f in ("x", "y", "p"):
        if f in names and not (
            np.issubdtype(arr.dtype[f], np.integer) or np.issubdtype(arr.dtype[f], np.bool_)
        ):
            raise UnlayeredError(f"tonic file {path}: field '{f}' is {arr.dtype[f]}, not integer")
    if not np.issubdtype(arr.dtype["t"], np.number):
        raise UnlayeredError(f"tonic file {path}: field 't' is {arr.dtype['t']}, not numeric")
    for f in ("x", "y"):
        if f in names and len(arr) and arr[f].min() < 0:
            raise UnlayeredError(f"tonic file {path}: field '{f}' has negative values")
    return arr


def load_tonic(num_steps: int | None, seed: int, path: Any, options: dict[str, Any]) -> Dataset:
    """Tonic-style arrays from ``<path>/<train|test>/<label>/<name>.npy``."""
    opts = check_options("tonic", options, TONIC_DEFAULTS)
    num_steps = 100 if num_steps is None else num_steps
    root = _require_dir("tonic", path)
    check_positive("tonic", "pool", opts["pool"], integer=True)
    limit = _check_max("tonic", opts["max_per_class"])
    pool = int(opts["pool"])
    loaded = []  # per split: list of (label, file, array)
    for split in ("train", "test"):
        items = []
        for label, d in _label_dirs("tonic", _split_dir("tonic", root, split)):
            for f in sorted(d.glob("*.npy"))[:limit]:
                items.append((label, f, read_tonic_file(f)))
        if not items:
            raise UnlayeredError(f"data set 'tonic': {root}: no .npy files in the {split} split")
        loaded.append(items)
    everything = [it for items in loaded for it in items]

    def start(a: np.ndarray) -> float:
        return float(a["t"].min()) if opts["align_start"] and len(a) else 0.0

    sensor = opts["sensor_size"]
    if sensor is None:

        def top(f: str) -> int:
            vals = [int(a[f].max()) for _, _, a in everything if f in a.dtype.names and len(a)]
            return max(vals, default=0) + 1

        has_y = any("y" in a.dtype.names for _, _, a in everything)
        sensor = (top("x"), top("y") if has_y else 1, max(2 if has_y else 1, top("p")))
    try:
        width, height, n_pol = (int(v) for v in sensor)
    except (TypeError, ValueError):
        raise UnlayeredError(
            f"data set 'tonic': option 'sensor_size': {sensor!r} is not (width, height, polarities)"
        ) from None
    if min(width, height, n_pol) < 1:
        raise UnlayeredError(f"data set 'tonic': option 'sensor_size': {sensor!r} must be >= 1")
    t_max = opts["t_max"]
    if t_max is None:
        t_max = (
            max((float(a["t"].max()) - start(a) for _, _, a in everything if len(a)), default=0.0)
            + 1.0
        )
    check_positive("tonic", "t_max", t_max)
    w, h = -(-width // pool), -(-height // pool)
    splits, sizes = [], []
    max_label = 0
    for items in loaded:
        binned, labels = [], []
        for label, f, a in items:
            names = a.dtype.names
            x = a["x"].astype(np.int64)
            y = a["y"].astype(np.int64) if "y" in names else np.zeros(len(a), np.int64)
            p = a["p"].astype(np.int64)
            p = (p > 0).astype(np.int64) if n_pol == 2 and p.min(initial=0) < 0 else p
            if n_pol == 1:
                p = np.zeros_like(p)
            bad = np.flatnonzero((x >= width) | (y >= height) | (p < 0) | (p >= n_pol))
            if len(bad):
                e = int(bad[0])
                raise UnlayeredError(
                    f"tonic file {f}: event {e} (x={x[e]}, y={y[e]}, p={p[e]}) is outside "
                    f"sensor_size ({width}, {height}, {n_pol})"
                )
            ch = (p * h + y // pool) * w + x // pool
            t = a["t"].astype(np.float64) - start(a)
            binned.append(bin_events(t, ch, num_steps, float(t_max)))
            labels.append(label)
            max_label = max(max_label, label)
        sizes.append(len(binned))
        splits.append((binned, labels))
    n_classes = opts["n_classes"]
    if n_classes is None:
        n_classes = max_label + 1
    check_positive("tonic", "n_classes", n_classes, integer=True)
    if max_label >= n_classes:
        raise UnlayeredError(
            f"data set 'tonic': label {max_label} found, but option n_classes={n_classes}"
        )
    ids = split_ids(*sizes)
    train, test = (
        assemble(b, num_steps, lab, i, where=f"tonic {root}")
        for (b, lab), i in zip(splits, ids, strict=True)
    )
    encoding = {
        "dataset": "tonic",
        "source": str(root),
        "encoder": "binned_events",
        "sensor_size": [width, height, n_pol],
        "t_max": float(t_max),
        "align_start": bool(opts["align_start"]),
        "pool": pool,
        "max_per_class": limit,
        "channels": f"polarity * {w * h} + (y // {pool}) * {w} + x // {pool}",
        "num_steps": num_steps,
        "seed": seed,
        "n_train": sizes[0],
        "n_test": sizes[1],
    }
    return Dataset("tonic", train, test, w * h * n_pol, int(n_classes), num_steps, encoding)
