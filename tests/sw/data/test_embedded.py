"""The built-in data sets: digits (rate, latency), digits_events, manifolds; load_dataset."""

from __future__ import annotations

import numpy as np
import pytest

from unlayered.sim.errors import UnlayeredError
from unlayered.sw.data import DATASETS, load_dataset

from .helpers import check_dataset, same_events


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", num_steps=12, seed=3)


@pytest.fixture(scope="module")
def digits_events():
    return load_dataset("digits_events", num_steps=16, frames_per_saccade=6)


@pytest.fixture(scope="module")
def manifolds():
    return load_dataset("manifolds", train_per_class=30, test_per_class=10)


def test_names():
    assert DATASETS == ("digits", "digits_events", "manifolds", "nmnist", "shd", "tonic")


def test_digits_rate(digits):
    check_dataset(digits)
    assert (digits.n_inputs, digits.n_classes, digits.num_steps) == (64, 10, 12)
    assert len(digits.train) + len(digits.test) == 1797
    assert abs(len(digits.test) - 0.2 * 1797) < 10
    # Stratified: every class about 20 % in test.
    for c in range(10):
        n_tr = int((digits.train.labels == c).sum())
        n_te = int((digits.test.labels == c).sum())
        assert abs(n_te / (n_tr + n_te) - 0.2) < 0.01
    assert digits.encoding["encoder"] == "rate" and digits.encoding["seed"] == 3


def test_digits_rate_follows_intensity(digits):
    from sklearn.datasets import load_digits

    from unlayered.sw.data.digits import stratified_split

    bunch = load_digits()
    train_idx, _ = stratified_split(bunch.target, 0.2, 3)
    assert np.array_equal(digits.train.labels, bunch.target[train_idx])
    counts = np.bincount(digits.train.channel, minlength=64)
    # Over the train split, a pixel's spikes per step is its mean intensity (gain 1).
    rate = counts / (len(digits.train) * 12)
    assert np.allclose(rate, bunch.images[train_idx].reshape(-1, 64).mean(0) / 16, atol=0.02)


def test_digits_deterministic_and_seeded(digits):
    again = load_dataset("digits", num_steps=12, seed=3)
    assert same_events(again.train, digits.train) and same_events(again.test, digits.test)
    other = load_dataset("digits", num_steps=12, seed=4)
    assert not np.array_equal(other.test.labels, digits.test.labels) or not same_events(
        other.test, digits.test
    )


def test_digits_latency():
    ds = load_dataset("digits", encoder="latency", num_steps=16)
    check_dataset(ds)
    from sklearn.datasets import load_digits

    from unlayered.sw.data.digits import stratified_split

    bunch = load_digits()
    train_idx, _ = stratified_split(bunch.target, 0.2, 0)
    for s in range(20):
        x = bunch.images[train_idx[s]].reshape(64)
        steps = ds.train.sample_steps(s)
        seen = np.concatenate(steps)
        assert sorted(seen.tolist()) == np.flatnonzero(x).tolist()  # once each, zeros never
        when = np.full(64, -1)
        for t, ev in enumerate(steps):
            when[ev] = t
            assert np.all(np.diff(-x[ev]) <= 0)  # brighter first within a step
        lit = np.flatnonzero(x)
        for a in lit:
            for b in lit:
                if x[a] > x[b]:
                    assert when[a] <= when[b]


def test_digits_events(digits_events):
    ds = digits_events
    check_dataset(ds)
    assert (ds.n_inputs, ds.n_classes, ds.num_steps) == (2 * 16 * 16, 10, 16)
    per_sample = np.array([ds.train.step_ptr[s][-1] - ds.train.step_ptr[s][0] for s in range(50)])
    assert per_sample.min() > 50
    # Both polarities, and the moving digit covers much of the sensor.
    ch = ds.train.channel
    assert (ch < 256).any() and (ch >= 256).any()
    assert len(np.unique(ch % 256)) > 100
    # Events in most steps of a sample (the digit moves all the time).
    active = [sum(len(e) > 0 for e in ds.train.sample_steps(s)) for s in range(20)]
    assert min(active) >= 12
    assert ds.encoding["encoder"] == "saccade_dvs"


def test_digits_events_deterministic_and_options(digits_events):
    again = load_dataset("digits_events", num_steps=16, frames_per_saccade=6)
    assert same_events(again.test, digits_events.test)
    small = load_dataset("digits_events", num_steps=8, size=10, scale=1.0, frames_per_saccade=3)
    check_dataset(small)
    assert small.n_inputs == 200
    fewer = load_dataset(
        "digits_events", num_steps=8, size=10, scale=1.0, frames_per_saccade=3, contrast=0.6
    )
    assert len(fewer.train.channel) < len(small.train.channel)


def test_manifolds(manifolds):
    ds = manifolds
    check_dataset(ds)
    assert (ds.n_inputs, ds.n_classes, ds.num_steps) == (32, 10, 50)
    assert np.bincount(ds.train.labels).tolist() == [30] * 10
    assert np.bincount(ds.test.labels).tolist() == [10] * 10
    again = load_dataset("manifolds", train_per_class=30, test_per_class=10)
    assert same_events(again.train, ds.train)
    other = load_dataset("manifolds", train_per_class=30, test_per_class=10, seed=1)
    assert not same_events(other.train, ds.train)
    rate = len(ds.train.channel) / (len(ds.train) * 50 * 32)
    assert 0.05 < rate < 0.3


def test_manifolds_learnable_from_timing_more_than_counts():
    """Nearest neighbours on time-binned counts beat chance, and beat spike counts alone."""
    from sklearn.neighbors import KNeighborsClassifier

    ds = load_dataset(
        "manifolds", n_classes=3, n_inputs=16, train_per_class=100, test_per_class=50, num_steps=40
    )

    def features(split):
        dense = np.zeros((len(split), 40, 16))
        for s in range(len(split)):
            for t, ev in enumerate(split.sample_steps(s)):
                dense[s, t, ev] = 1
        return dense.reshape(len(split), 4, 10, 16).sum(2).reshape(len(split), -1), dense.sum(1)

    (tr_time, tr_count), (te_time, te_count) = features(ds.train), features(ds.test)
    knn = KNeighborsClassifier(5)
    acc_time = knn.fit(tr_time, ds.train.labels).score(te_time, ds.test.labels)
    acc_count = knn.fit(tr_count, ds.train.labels).score(te_count, ds.test.labels)
    assert acc_time > 0.6
    assert acc_time > acc_count + 0.1


def test_manifold_options_change_shapes():
    ds = load_dataset(
        "manifolds",
        n_inputs=8,
        n_classes=2,
        dimension=2,
        train_per_class=4,
        test_per_class=3,
        num_steps=7,
    )
    check_dataset(ds)
    assert (ds.n_inputs, ds.n_classes, len(ds.train), len(ds.test)) == (8, 2, 8, 6)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("mnist", {}, "unknown data set 'mnist'"),
        ("digits", {"bogus": 1}, "unknown option.*'bogus'"),
        ("digits", {"encoder": "phase"}, "'encoder'.*'phase'"),
        ("digits", {"test_fraction": 1.5}, "test_fraction"),
        ("digits", {"num_steps": 0}, "num_steps"),
        ("digits", {"path": "/tmp"}, "takes no path"),
        ("digits_events", {"size": 0}, "'size'"),
        ("manifolds", {"n_classes": -1}, "'n_classes'"),
        ("manifolds", {"max_rate": 2.0}, "max_rate"),
        ("manifolds", {"smooth": 2.0}, "'smooth'"),
        ("nmnist", {}, "path="),
    ],
)
def test_errors(name, kwargs, match):
    with pytest.raises(UnlayeredError, match=match):
        load_dataset(name, **kwargs)
