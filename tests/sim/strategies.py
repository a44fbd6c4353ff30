"""Hypothesis strategies for the simulator's tests: random small models and input samples.

Every parameter of :func:`models` can be fixed by a keyword (``models(scheduler="sync")``),
given a strategy of its own (``models(group_size=st.integers(1, 3))``), or left to be drawn
over the whole range the contract allows, skewed towards values that make things happen: small
thresholds (so that neurons fire), narrow membranes (so that they saturate at both ends), small
caps on the groups per step (so that entries are dropped).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from unlayered.sim import EventSamples, LayerSpec, Model, SchedulerSpec
from unlayered.sim.model import DECISION_RULES, RESET_MODES, SCHEDULERS

__all__ = ["batches", "models", "samples"]

Strategy = st.SearchStrategy


def _given(value, strategy: st.SearchStrategy) -> st.SearchStrategy:
    """``strategy``, unless a fixed ``value`` (or a strategy of one's own) was given."""
    if value is None:
        return strategy
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


@st.composite
def models(
    draw,
    *,
    n_inputs: int | Strategy | None = None,
    sizes: tuple[int, ...] | Strategy | None = None,
    max_layers: int = 3,
    max_size: int = 12,
    max_inputs: int = 12,
    weight_bits: int | Strategy | None = None,
    membrane_bits: int | Strategy | None = None,
    leak_shift: int | Strategy | None = None,
    reset: str | Strategy | None = None,
    scheduler: str | Strategy | None = None,
    group_size: int | Strategy | None = None,
    prioritized_input: bool | Strategy | None = None,
    seed: int | Strategy | None = None,
    momentum_buckets: int | Strategy | None = None,
    momentum_shift: int | Strategy | None = None,
    max_groups_per_step: int | Strategy | None = None,
    decision: str | Strategy | None = None,
) -> Model:
    """A random valid :class:`Model`.

    Any keyword that is not ``None`` fixes that parameter, or draws it from the strategy it is
    (``models(group_size=st.sampled_from([1, 2]))``); ``reset`` applies to every layer.
    ``max_layers``, ``max_size`` and ``max_inputs`` bound the drawn shape.
    """
    n_inputs = draw(_given(n_inputs, st.integers(1, max_inputs)))
    sizes = draw(_given(sizes, st.lists(st.integers(1, max_size), min_size=1, max_size=max_layers)))
    wb = draw(_given(weight_bits, st.one_of(st.integers(2, 8), st.integers(2, 16))))
    mb = draw(
        _given(
            membrane_bits,
            st.one_of(st.integers(wb, min(wb + 2, 16)), st.integers(wb, 16), st.just(32)),
        )
    )
    shift = draw(_given(leak_shift, st.one_of(st.integers(0, 10), st.just(16))))
    wmin, wmax = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
    vmax = (1 << (mb - 1)) - 1

    layers, weights = [], []
    fan_in = n_inputs
    for size in sizes:
        small = st.integers(0, min(vmax - 1, wmax))
        threshold = draw(st.one_of(small, small, small, st.integers(0, vmax - 1)))
        leak = draw(st.one_of(st.just(1 << shift), st.integers(0, 1 << shift)))
        layers.append(
            LayerSpec(
                size=size,
                threshold=threshold,
                leak=leak,
                reset=draw(_given(reset, st.sampled_from(RESET_MODES))),
            )
        )
        # Positive (activity reaches the deeper layers), mostly positive, mostly negative
        # (membranes saturate at the bottom), or anything; uniform from a drawn numpy seed.
        modes = [(0, wmax), (wmin // 4, wmax), (wmin, wmax // 4), (wmin, wmax)]
        low, high = draw(st.sampled_from(modes))
        generator = np.random.default_rng(draw(st.integers(0, (1 << 32) - 1)))
        weights.append(generator.integers(low, high, size=(size, fan_in), endpoint=True))
        fan_in = size

    spec = SchedulerSpec(
        name=draw(_given(scheduler, st.sampled_from(SCHEDULERS))),
        group_size=draw(_given(group_size, st.sampled_from([0, 1, 2, 3, 5]))),
        prioritized_input=draw(_given(prioritized_input, st.booleans())),
        seed=draw(_given(seed, st.integers(0, (1 << 32) - 1))),
        momentum_buckets=draw(_given(momentum_buckets, st.sampled_from([1, 2, 3, 4, 8, 64]))),
        momentum_shift=draw(_given(momentum_shift, st.integers(0, 4))),
        max_groups_per_step=draw(_given(max_groups_per_step, st.sampled_from([0, 0, 1, 2, 3, 5]))),
    )
    model = Model(
        n_inputs=n_inputs,
        layers=tuple(layers),
        weights=tuple(weights),
        weight_bits=wb,
        membrane_bits=mb,
        leak_shift=shift,
        scheduler=spec,
        decision=draw(_given(decision, st.sampled_from(DECISION_RULES))),
    )
    model.validate()
    return model


@st.composite
def samples(draw, n_inputs: int, *, min_steps: int = 1, max_steps: int = 6) -> list[np.ndarray]:
    """One sample: per step, distinct input channels in a random arrival order."""
    n_steps = draw(st.integers(min_steps, max_steps))
    steps = []
    for _ in range(n_steps):
        order = draw(st.permutations(range(n_inputs)))
        steps.append(np.array(order[: draw(st.integers(0, n_inputs))], dtype=np.int64))
    return steps


@st.composite
def batches(
    draw, n_inputs: int, *, max_samples: int = 3, min_steps: int = 1, max_steps: int = 6
) -> EventSamples:
    """Several samples with random distinct ids (which seed ``random``) and labels."""
    n = draw(st.integers(1, max_samples))
    steps = [draw(samples(n_inputs, min_steps=min_steps, max_steps=max_steps)) for _ in range(n)]
    ids = draw(st.lists(st.integers(0, (1 << 32) - 1), min_size=n, max_size=n, unique=True))
    labels = draw(st.lists(st.integers(-1, 9), min_size=n, max_size=n))
    return EventSamples.from_lists(steps, labels=np.array(labels), sample_ids=np.array(ids))
