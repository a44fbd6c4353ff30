"""Small helpers shared by the reference simulator's tests."""

import numpy as np

from unlayered.sim import EventSamples, LayerSpec, Model, SchedulerSpec, simulate

ENGINES = ["readable", "compiled"]


def make_model(
    n_inputs,
    layers,
    weights,
    *,
    membrane_bits=16,
    weight_bits=8,
    leak_shift=8,
    decision="argmax_spike_count",
    **scheduler,
):
    """A validated model; ``layers`` are ``(size, threshold, leak, reset)`` tuples."""
    model = Model(
        n_inputs=n_inputs,
        layers=tuple(LayerSpec(*layer) for layer in layers),
        weights=tuple(np.array(w, dtype=np.int64) for w in weights),
        weight_bits=weight_bits,
        membrane_bits=membrane_bits,
        leak_shift=leak_shift,
        scheduler=SchedulerSpec(**scheduler),
        decision=decision,
    )
    model.validate()
    return model


def run(model, steps, engine, *, sample_id=0):
    """One sample (``steps[t]`` = channels of step t) with membranes recorded."""
    events = EventSamples.from_lists([steps], sample_ids=[sample_id])
    return simulate(model, events, engine=engine, record_membranes=True).samples[0]
