"""The compiled engine produces exactly the readable engine's results, field by field."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unlayered.sim import EventSamples, LayerSpec, Model, SampleResult, SchedulerSpec, simulate
from unlayered.sim.model import SCHEDULERS

from .strategies import batches, models


def assert_same(compiled: SampleResult, readable: SampleResult) -> None:
    """Every field equal, arrays in value, shape and dtype."""
    for field in dataclasses.fields(SampleResult):
        a, b = getattr(compiled, field.name), getattr(readable, field.name)
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray), field.name
            assert a.dtype == b.dtype and a.shape == b.shape, field.name
            assert np.array_equal(a, b), field.name
        else:
            assert type(a) is type(b) and a == b, field.name
    assert compiled.summary() == readable.summary()


def assert_engines_agree(model: Model, events: EventSamples, **kwargs) -> None:
    """Both engines through ``simulate``, with the same arguments, sample by sample."""
    compiled = simulate(model, events, engine="compiled", **kwargs)
    readable = simulate(model, events, engine="readable", **kwargs)
    assert len(compiled.samples) == len(readable.samples) == len(events)
    for a, b in zip(compiled.samples, readable.samples, strict=True):
        assert_same(a, b)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_models_and_samples(scheduler, data):
    """Any model, batch, seed: every parameter of the contract drawn (``strategies.models``)."""
    model = data.draw(models(scheduler=scheduler), label="model")
    events = data.draw(batches(model.n_inputs, min_steps=0), label="events")
    seed = data.draw(st.none() | st.integers(0, (1 << 32) - 1), label="seed")
    record = data.draw(st.booleans(), label="record_membranes")
    assert_engines_agree(model, events, seed=seed, record_membranes=record)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_momentum_bucket_boundaries(data):
    """Small overshoots around the bucket boundaries, few buckets, groups smaller than the set."""
    model = data.draw(
        models(
            scheduler="momentum",
            n_inputs=st.integers(3, 12),
            sizes=st.lists(st.integers(2, 8), min_size=2, max_size=3),
            weight_bits=st.integers(2, 5),
            group_size=st.sampled_from([1, 2]),
            momentum_buckets=st.integers(2, 4),
            momentum_shift=st.integers(0, 1),
            max_groups_per_step=0,
        ),
        label="model",
    )
    events = data.draw(batches(model.n_inputs), label="events")
    assert_engines_agree(model, events)


def _larger_model(scheduler: str, group_size: int, index: int) -> Model:
    """100 inputs, 64-32-10, dense random weights with thresholds that let every layer fire."""
    rng = np.random.default_rng(index)
    sizes, fan_in = (64, 32, 10), 100
    layers, weights = [], []
    for i, size in enumerate(sizes):
        weights.append(rng.integers(-40, 90, size=(size, fan_in)))
        layers.append(
            LayerSpec(
                size=size,
                threshold=int(rng.integers(100, 300)),
                leak=int(rng.integers(200, 257)),
                reset=("zero", "subtract")[(index + i) % 2],
            )
        )
        fan_in = size
    return Model(
        n_inputs=100,
        layers=tuple(layers),
        weights=tuple(weights),
        membrane_bits=12,
        scheduler=SchedulerSpec(
            name=scheduler,
            group_size=group_size,
            prioritized_input=index % 2 == 0,
            seed=index,
            momentum_shift=3,
        ),
    )


@pytest.mark.parametrize("group_size", [1, 8, 0])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_larger_network(scheduler, group_size):
    """A realistic size: long fan-outs, many groups per step, every layer active."""
    index = SCHEDULERS.index(scheduler) * 3 + [1, 8, 0].index(group_size)
    model = _larger_model(scheduler, group_size, index)
    model.validate()
    rng = np.random.default_rng(1000 + index)
    steps = [
        [rng.permutation(np.flatnonzero(rng.random(100) < 0.1)) for _ in range(20)]
        for _ in range(3)
    ]
    events = EventSamples.from_lists(steps, labels=[0, 1, 2], sample_ids=[5, 17, 123456789])
    compiled = simulate(model, events, engine="compiled", record_membranes=True)
    readable = simulate(model, events, engine="readable", record_membranes=True)
    for a, b in zip(compiled.samples, readable.samples, strict=True):
        assert_same(a, b)
        assert a.spikes.min() > 0  # every layer fired: the test exercises the whole network
