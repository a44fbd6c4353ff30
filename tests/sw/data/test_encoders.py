"""The shared binning and the intensity encoders."""

from __future__ import annotations

import numpy as np
import pytest

from unlayered.sim.errors import UnlayeredError
from unlayered.sw.data import bin_events, latency_encode, latency_times, rate_encode
from unlayered.sw.data.encoders import latency_events, spikes_to_events


def test_bin_events_orders_by_time_and_keeps_first_of_a_channel():
    times = np.array([0.35, 0.05, 0.3, 0.31, 0.9, 0.32, 1.0, -0.1, np.nan, 0.999])
    chans = np.array([7, 3, 5, 7, 1, 5, 2, 4, 6, 8])
    step, ch = bin_events(times, chans, num_steps=4, t_max=1.0)
    # step 0: 3 (0.05); step 1: 5 (0.3), 7 (0.31), 5 again dropped, 7 again dropped;
    # step 3: 1 (0.9), 8 (0.999); 1.0, -0.1 and nan are outside [0, t_max).
    assert step.tolist() == [0, 1, 1, 3, 3]
    assert ch.tolist() == [3, 5, 7, 1, 8]


def test_bin_events_ties_keep_input_order_and_empty_input():
    step, ch = bin_events([0.5, 0.5, 0.5], [9, 2, 4], 2, 1.0)
    assert step.tolist() == [1, 1, 1] and ch.tolist() == [9, 2, 4]
    step, ch = bin_events([], [], 5, 1.0)
    assert len(step) == len(ch) == 0
    with pytest.raises(UnlayeredError, match="times"):
        bin_events([0.1, 0.2], [1], 5, 1.0)


def test_bin_events_random_unique_and_sorted():
    rng = np.random.default_rng(1)
    t = rng.uniform(0, 10, 5000)
    c = rng.integers(0, 50, 5000)
    step, ch = bin_events(t, c, 20, 10.0)
    assert np.all(np.diff(step) >= 0)
    keys = step * 50 + ch
    assert len(np.unique(keys)) == len(keys)
    # Every (step, channel) that had an event is kept.
    expect = np.unique(np.minimum((t * 2).astype(int), 19) * 50 + c)
    assert np.array_equal(np.sort(keys), expect)


def test_rate_encode_shape_determinism_and_rates():
    x = np.linspace(0, 1, 11)
    s1 = rate_encode(np.tile(x, (3, 1)), 2000, rng=5)
    assert s1.shape == (3, 2000, 11) and s1.dtype == bool
    assert np.array_equal(s1, rate_encode(np.tile(x, (3, 1)), 2000, rng=5))
    assert not np.array_equal(s1, rate_encode(np.tile(x, (3, 1)), 2000, rng=6))
    rates = s1.mean(axis=(0, 1))
    assert rates[0] == 0 and rates[-1] == 1
    assert np.allclose(rates, x, atol=0.03)
    assert np.all(np.diff(rates) > 0)
    half = rate_encode(x, 2000, gain=0.5, rng=0).mean(0)
    assert np.allclose(half, 0.5 * x, atol=0.03)
    with pytest.raises(UnlayeredError, match=r"\[0, 1\]"):
        rate_encode(np.array([1.5]), 3)


def test_latency_encode_once_brighter_earlier_never_zero():
    x = np.array([[0.0, 1.0, 0.5, 0.05, 0.75, 0.0]])
    s = latency_encode(x, 10)
    assert s.shape == (1, 10, 6)
    counts = s.sum(axis=1)[0]
    assert counts.tolist() == [0, 1, 1, 1, 1, 0]
    first = s[0].argmax(axis=0)
    assert first[1] == 0 and first[3] == 9
    assert first[1] < first[4] < first[2] < first[3]
    assert np.isinf(latency_times(x, 10)[0, 0])
    assert latency_encode(x, 10, threshold=0.6).sum() == 2


def test_latency_events_order_within_a_step():
    # 0.95 and 0.9 share step 0 of 5 steps (t = 0.25, 0.5): brighter arrives first.
    x = np.array([[0.9, 0.95, 0.0, 0.3]])
    [(step, ch)] = latency_events(x, 5)
    assert step.tolist() == [0, 0, 3] and ch.tolist() == [1, 0, 3]
    ev = spikes_to_events(latency_encode(x, 5), labels=[2])
    assert ev.step_events(0, 0).tolist() == [0, 1] and ev.labels.tolist() == [2]
