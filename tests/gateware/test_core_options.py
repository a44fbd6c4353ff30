"""The core's options in Amaranth's simulator: ``spikes="outputs"`` and ``weight_ram="spram"``.

Full traces (output-layer spikes only where asked), counters and end-of-step membranes are
compared with the reference simulator, as in ``test_core.py``.
"""

import re

import numpy as np
import pytest
from amaranth.back import rtlil

from unlayered.gateware.core import NeuronCore
from unlayered.gateware.fit import spram_refusal
from unlayered.sim import LayerSpec, Model, UnlayeredError, simulate

from .harness import compare, random_events, random_model, run_core

SCHEDULERS = ["sync", "fifo", "random", "momentum"]


@pytest.mark.parametrize("lanes", [1, 2, 4])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_output_spikes_only(scheduler, lanes):
    """Only output-layer spikes go out, in trace order; the counters still count every spike."""
    failures, hidden = [], 0
    for case in range(6):
        rnd = np.random.default_rng([31, case, lanes, SCHEDULERS.index(scheduler)])
        model = random_model(rnd, name=scheduler)
        events = random_events(rnd, model.n_inputs)
        hw = run_core(
            model, events, lanes=lanes, stall=0.2, backpressure=0.3, rng_seed=case, spikes="outputs"
        )
        ref = simulate(model, events, engine="readable")
        hidden += sum(int((r.trace[:, 2] < model.layer_starts[-1]).sum()) for r in ref.samples)
        errors = compare(model, events, hw, spikes="outputs")
        failures += [f"case {case} ({model.scheduler}): {e}" for e in errors]
    assert failures == []
    assert hidden > 0  # hidden spikes were there to leave out


def firing_model(rnd: np.random.Generator, scheduler: str, weight_bits: int) -> Model:
    """Two layers, positive and negative weights over the whole range, low thresholds."""
    wmin, wmax = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    n_inputs, sizes = 5, (6, 3)
    weights = [
        rnd.integers(wmin, wmax, size=(6, n_inputs), endpoint=True),
        rnd.integers(wmin, wmax, size=(3, 6), endpoint=True),
    ]
    weights[0][:, 0] = wmax  # input 0 makes every hidden neuron fire
    model = Model(
        n_inputs=n_inputs,
        layers=tuple(LayerSpec(size=s, threshold=1, leak=200, reset="subtract") for s in sizes),
        weights=tuple(weights),
        weight_bits=weight_bits,
        membrane_bits=min(weight_bits + 4, 32),
    )
    model = model.with_scheduler(name=scheduler, group_size=2)
    model.validate()
    return model


@pytest.mark.parametrize(
    ("scheduler", "lanes", "weight_bits"),
    [("fifo", 1, 8), ("momentum", 3, 16), ("sync", 4, 5), ("random", 2, 12)],
)
def test_spram_starts_at_zero_then_runs_loaded_weights(scheduler, lanes, weight_bits):
    """The SPRAM model holds zeros at start-up (what the board has); after the host writes the
    weights through the weight port the core matches the reference exactly (sign extension from
    the 16-bit word included)."""
    rnd = np.random.default_rng([5, lanes, weight_bits])
    model = firing_model(rnd, scheduler, weight_bits)
    events = random_events(rnd, model.n_inputs, n_samples=3)
    events = type(events).from_lists(
        [[[0, *(c for c in s if c)] for s in events.sample_steps(i)] for i in range(len(events))],
        sample_ids=events.sample_ids,
    )
    ref = simulate(model, events, engine="readable")
    assert all(len(r.trace) for r in ref.samples)

    empty = run_core(model, events, lanes=lanes, weight_ram="spram")
    assert all(h.trace == [] and h.summary["spikes"] == 0 for h in empty)
    assert all(not np.any(h.membranes) for h in empty)
    assert compare(model, events, empty) != []

    loaded = run_core(
        model, events, lanes=lanes, weight_ram="spram", weights=model, stall=0.2, backpressure=0.2
    )
    assert compare(model, events, loaded) == []


def small_model() -> Model:
    return firing_model(np.random.default_rng(0), "fifo", 8)


def test_invalid_options_are_refused():
    model = small_model()
    with pytest.raises(UnlayeredError, match="spikes must be one of"):
        NeuronCore(model, 1, spikes="hidden")
    with pytest.raises(UnlayeredError, match="weight_ram must be one of"):
        NeuronCore(model, 1, weight_ram="dram")
    with pytest.raises(UnlayeredError, match='weight_ram="spram": 5 lanes need 5 SPRAMs'):
        NeuronCore(model, 5, weight_ram="spram")
    # 128 inputs x 128 neurons + 128 x 10 = 17664 weight words in one bank: over 16384
    big = Model(
        n_inputs=128,
        layers=(LayerSpec(128, 10, 256), LayerSpec(10, 10, 256)),
        weights=(np.zeros((128, 128), dtype=np.int64), np.zeros((10, 128), dtype=np.int64)),
    )
    with pytest.raises(UnlayeredError, match="17664 weight words per bank"):
        NeuronCore(big, 1, weight_ram="spram")
    assert spram_refusal(big, 2) is None  # 8832 words per bank


@pytest.mark.parametrize("lanes", [1, 4])
def test_spram_primitive_on_a_platform(lanes):
    """Elaborated for a platform, every weight bank is one SB_SPRAM256KA (always selected and
    powered, clocked by the core's clock) and no weight memory is left; without a platform the
    banks are memories (the simulation model)."""
    on_board = rtlil.convert(
        NeuronCore(small_model(), lanes, weight_ram="spram"), platform=object()
    )
    sprams = on_board.split("cell \\SB_SPRAM256KA ")[1:]
    assert len(sprams) == lanes
    for cell in sprams:
        lines = cell.split("\n  end")[0].splitlines()[1:]
        conns = dict(line.split(None, 2)[1:] for line in lines)
        assert conns["\\POWEROFF"] == "1'1"  # active low
        assert conns["\\CHIPSELECT"] == "1'1"
        assert conns["\\STANDBY"] == conns["\\SLEEP"] == "1'0"
        assert conns["\\MASKWREN"] == "4'1111"
        assert conns["\\CLOCK"] == "\\clk [0]"
        assert {"\\ADDRESS", "\\DATAIN", "\\WREN", "\\DATAOUT"} <= set(conns)
    memories = set(re.findall(r"memory width \d+ size \d+ \\(\S+)", on_board))
    assert not any(name.startswith("weight") for name in memories)
    simulated = rtlil.convert(NeuronCore(small_model(), lanes, weight_ram="spram"))
    assert "SB_SPRAM256KA" not in simulated
    assert {f"weight{b}" for b in range(lanes)} <= set(
        re.findall(r"memory width \d+ size \d+ \\(\S+)", simulated)
    )
