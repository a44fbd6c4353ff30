"""Loaders for user files (N-MNIST, SHD, tonic), on small files written here in the real formats."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from unlayered.sim.errors import UnlayeredError
from unlayered.sw.data import load_dataset
from unlayered.sw.data.loaders import read_nmnist_file

from .helpers import check_dataset

# ------------------------------------------------------------------------------- N-MNIST


def nmnist_bytes(x, y, p, t) -> bytes:
    """The N-MNIST 40-bit event layout, by hand: x, y, then polarity bit + 23-bit timestamp."""
    out = bytearray()
    for xi, yi, pi, ti in zip(x, y, p, t, strict=True):
        out += bytes([xi, yi, (pi << 7) | ((ti >> 16) & 0x7F), (ti >> 8) & 0xFF, ti & 0xFF])
    return bytes(out)


def write_nmnist(root: Path, per_class: int = 2, classes=(0, 1, 2)) -> dict:
    rng = np.random.default_rng(0)
    written = {}
    for split in ("Train", "Test"):
        for c in classes:
            d = root / split / str(c)
            d.mkdir(parents=True)
            for k in range(per_class):
                n = 40
                x = rng.integers(0, 34, n)
                y = rng.integers(0, 34, n)
                p = rng.integers(0, 2, n)
                t = np.sort(rng.integers(0, 300_000, n))
                f = d / f"{k:05d}.bin"
                f.write_bytes(nmnist_bytes(x, y, p, t))
                written[f] = (x, y, p, t)
    return written


def test_nmnist_bit_layout(tmp_path):
    f = tmp_path / "one.bin"
    f.write_bytes(nmnist_bytes([33, 0, 5], [1, 33, 7], [1, 0, 1], [0, 8_388_607, 123_456]))
    ev = read_nmnist_file(f)
    assert ev["x"].tolist() == [33, 0, 5] and ev["y"].tolist() == [1, 33, 7]
    assert ev["p"].tolist() == [1, 0, 1] and ev["t"].tolist() == [0, 8_388_607, 123_456]


def test_nmnist_loads_and_bins(tmp_path):
    written = write_nmnist(tmp_path)
    ds = load_dataset("nmnist", path=str(tmp_path), num_steps=10)
    check_dataset(ds)
    assert (ds.n_inputs, ds.num_steps, len(ds.train), len(ds.test)) == (2 * 34 * 34, 10, 6, 6)
    assert ds.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    # The first train file, binned by hand: step = t // 30 ms, channel = (p*34 + y)*34 + x.
    x, y, p, t = written[tmp_path / "Train" / "0" / "00000.bin"]
    ch = (p * 34 + y) * 34 + x
    for step in range(10):
        expect = []
        for c in ch[(t // 30_000) == step]:  # t sorted: arrival order
            if c not in expect:
                expect.append(c)
        assert ds.train.step_events(0, step).tolist() == expect
    pooled = load_dataset("nmnist", path=tmp_path, num_steps=5, pool=2, max_per_class=1)
    check_dataset(pooled)
    assert pooled.n_inputs == 2 * 17 * 17 and len(pooled.train) == 3
    first = load_dataset("nmnist", path=tmp_path, num_steps=5, first_saccade_only=True)
    assert first.encoding["t_max_us"] == 100_000


def test_nmnist_errors(tmp_path):
    with pytest.raises(UnlayeredError, match="no such file or directory"):
        load_dataset("nmnist", path=str(tmp_path / "missing"))
    with pytest.raises(UnlayeredError, match="Train/"):
        load_dataset("nmnist", path=str(tmp_path))
    write_nmnist(tmp_path, per_class=1, classes=(0,))
    bad = tmp_path / "Train" / "0" / "00000.bin"
    bad.write_bytes(b"\x00" * 7)
    with pytest.raises(UnlayeredError, match=r"00000\.bin.*5-byte events"):
        load_dataset("nmnist", path=str(tmp_path))
    bad.write_bytes(nmnist_bytes([40], [0], [0], [10]))
    with pytest.raises(UnlayeredError, match=r"00000\.bin.*outside the 34x34"):
        load_dataset("nmnist", path=str(tmp_path))
    (tmp_path / "Train" / "zero").mkdir()
    with pytest.raises(UnlayeredError, match="named by their label"):
        load_dataset("nmnist", path=str(tmp_path))
    with pytest.raises(UnlayeredError, match="'frames'"):
        load_dataset("nmnist", path=str(tmp_path), frames=3)


# ------------------------------------------------------------------------------- SHD


def write_shd(f: Path, samples, labels) -> None:
    with h5py.File(f, "w") as h5:
        times = h5.create_dataset(
            "spikes/times", (len(samples),), dtype=h5py.vlen_dtype(np.float32)
        )
        units = h5.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(samples):
            times[i] = np.asarray(t, np.float32)
            units[i] = np.asarray(u, np.uint16)
        h5.create_dataset("labels", data=np.asarray(labels, np.uint16))


def shd_samples(rng, n):
    out = []
    for _ in range(n):
        k = int(rng.integers(5, 60))
        out.append((np.sort(rng.uniform(0, 1.5, k)), rng.integers(0, 700, k)))
    return out


def test_shd_loads_and_bins(tmp_path):
    rng = np.random.default_rng(2)
    train = shd_samples(rng, 6)
    write_shd(tmp_path / "shd_train.h5", train, [0, 1, 19, 0, 1, 19])
    write_shd(tmp_path / "shd_test.h5", shd_samples(rng, 3), [5, 6, 7])
    ds = load_dataset("shd", path=str(tmp_path), num_steps=14)
    check_dataset(ds)
    assert (ds.n_inputs, ds.n_classes, len(ds.train), len(ds.test)) == (700, 20, 6, 3)
    assert ds.train.labels.tolist() == [0, 1, 19, 0, 1, 19]
    t, u = train[2]
    t = t.astype(np.float32).astype(np.float64)
    for step in range(14):
        expect = []
        for c in u[(t >= step * 0.1) & (t < (step + 1) * 0.1)]:
            if c not in expect:
                expect.append(c)
        assert ds.train.step_events(2, step).tolist() == expect
    assert not (ds.train.sample_steps(2)[-1] == -1).any()
    pooled = load_dataset("shd", path=tmp_path, pool=5, max_per_class=1, t_max=1.0)
    check_dataset(pooled)
    assert pooled.n_inputs == 140 and pooled.train.labels.tolist() == [0, 1, 19]


def test_shd_errors(tmp_path):
    with pytest.raises(UnlayeredError, match=r"shd_train\.h5: no such file"):
        load_dataset("shd", path=str(tmp_path))
    (tmp_path / "shd_train.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(UnlayeredError, match=r"shd_train\.h5: not a readable HDF5"):
        load_dataset("shd", path=str(tmp_path))
    with h5py.File(tmp_path / "shd_train.h5", "w") as h5:
        h5.create_dataset("labels", data=np.zeros(2, np.uint16))
    with pytest.raises(UnlayeredError, match=r"shd_train\.h5: missing dataset 'spikes/times'"):
        load_dataset("shd", path=str(tmp_path))
    rng = np.random.default_rng(0)
    write_shd(tmp_path / "shd_train.h5", shd_samples(rng, 2), [0, 1, 2])
    with pytest.raises(UnlayeredError, match="differ in length"):
        load_dataset("shd", path=str(tmp_path))
    write_shd(tmp_path / "shd_train.h5", [([0.1], [700])], [0])
    with pytest.raises(UnlayeredError, match=r"0\.\.699"):
        load_dataset("shd", path=str(tmp_path))


# ------------------------------------------------------------------------------- tonic

DTYPE_XYP = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])
DTYPE_XP = np.dtype([("t", np.float64), ("x", np.int32), ("p", np.int8)])


def write_tonic(root: Path, dtype=DTYPE_XYP, per_class=2, classes=(0, 3)) -> dict:
    rng = np.random.default_rng(4)
    written = {}
    for split in ("train", "test"):
        for c in classes:
            d = root / split / str(c)
            d.mkdir(parents=True)
            for k in range(per_class):
                n = 30
                a = np.zeros(n, dtype)
                a["t"] = np.sort(rng.integers(1000, 11000, n))
                a["x"] = rng.integers(0, 20, n)
                if "y" in dtype.names:
                    a["y"] = rng.integers(0, 10, n)
                a["p"] = rng.integers(0, 2, n)
                np.save(d / f"s{k}.npy", a)
                written[(split, c, k)] = a
    return written


def test_tonic_loads_and_bins(tmp_path):
    written = write_tonic(tmp_path)
    ds = load_dataset(
        "tonic", path=str(tmp_path), num_steps=8, sensor_size=(20, 10, 2), t_max=12000
    )
    check_dataset(ds)
    assert (ds.n_inputs, ds.n_classes, len(ds.train), len(ds.test)) == (400, 4, 4, 4)
    assert ds.train.labels.tolist() == [0, 0, 3, 3]
    a = written[("train", 3, 1)]
    ch = (a["p"].astype(int) * 10 + a["y"]) * 20 + a["x"]
    for step in range(8):
        expect = []
        for c in ch[(a["t"] // 1500) == step]:
            if c not in expect:
                expect.append(c)
        assert ds.train.step_events(3, step).tolist() == expect
    aligned = load_dataset("tonic", path=tmp_path, num_steps=8, align_start=True, pool=2)
    check_dataset(aligned)
    assert aligned.encoding["sensor_size"] == [20, 10, 2] and aligned.n_inputs == 10 * 5 * 2


def test_tonic_audio_layout_without_y(tmp_path):
    write_tonic(tmp_path, dtype=DTYPE_XP, classes=(1,))
    ds = load_dataset(
        "tonic", path=str(tmp_path), sensor_size=(20, 1, 1), t_max=11000.0, n_classes=2
    )
    check_dataset(ds)
    assert (ds.n_inputs, ds.n_classes) == (20, 2)


def test_tonic_errors(tmp_path):
    write_tonic(tmp_path, per_class=1, classes=(0,))
    f = tmp_path / "train" / "0" / "s0.npy"
    with pytest.raises(UnlayeredError, match="sensor_size"):
        load_dataset("tonic", path=str(tmp_path), sensor_size="big")
    with pytest.raises(UnlayeredError, match=r"s0\.npy.*outside sensor_size"):
        load_dataset("tonic", path=str(tmp_path), sensor_size=(5, 5, 2))
    np.save(f, np.zeros((3, 4)))
    with pytest.raises(UnlayeredError, match=r"s0\.npy: not a structured array"):
        load_dataset("tonic", path=str(tmp_path))
    np.save(f, np.zeros(3, np.dtype([("t", float), ("x", int)])))
    with pytest.raises(UnlayeredError, match=r"s0\.npy: missing field\(s\) p"):
        load_dataset("tonic", path=str(tmp_path))
    np.save(f, np.array([{"t": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnlayeredError, match=r"s0\.npy: not a readable \.npy"):
        load_dataset("tonic", path=str(tmp_path))
    f.write_bytes(b"garbage")
    with pytest.raises(UnlayeredError, match=r"s0\.npy: not a readable \.npy"):
        load_dataset("tonic", path=str(tmp_path))
    with pytest.raises(UnlayeredError, match="not a directory"):
        load_dataset("tonic", path=str(f))
