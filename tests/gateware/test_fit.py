"""Memory fit estimate of the core (gateware/fit.py): hand-computed sizes and device verdicts."""

import numpy as np
import pytest

from unlayered.gateware.fit import fit_estimate, memories
from unlayered.sim import LayerSpec, Model, SchedulerSpec, UnlayeredError


def dense_model(sizes, n_inputs, scheduler="fifo", weight_bits=8, membrane_bits=16, **kw):
    fan_in = [n_inputs, *sizes[:-1]]
    return Model(
        n_inputs=n_inputs,
        layers=tuple(LayerSpec(s, 10, 256) for s in sizes),
        weights=tuple(np.zeros((s, f), dtype=np.int64) for s, f in zip(sizes, fan_in, strict=True)),
        weight_bits=weight_bits,
        membrane_bits=membrane_bits,
        scheduler=SchedulerSpec(name=scheduler, **kw),
    )


def test_small_model_one_lane():
    # 4 inputs, layers 6 and 3: rows of 6 and 3 words; 4*6 + 6*3 = 42 weight words.
    est = fit_estimate(dense_model((6, 3), 4), lanes=1)
    assert est["bits"]["synapses"] == 42 * 8
    assert est["bits"]["synapses_logical"] == 42 * 8
    assert est["bits"]["membranes"] == 9 * 17  # membrane + refractory bit
    assert est["bits"]["pending"] == 12 * 16  # FIFO of 13 sources: 12 words + output register
    # fired-neuron queue: fifo with F = 1 overlaps groups, three rows of K = 6 entries (the
    # 19th sits in the output register); group 4 (at most 14 groups in a step: 13 sources and
    # the input group) + step parity 1 + target 4 (9 neurons) + layer 1 + one lane's fire bit
    assert est["bits"]["queue"] == 18 * 11
    assert est["bits"]["total"] == 42 * 8 + 9 * 17 + 12 * 16 + 18 * 11
    assert [m["name"] for m in est["memories"]] == [
        "weight0", "membrane0", "pending.fifo", "fired"
    ]  # fmt: skip
    # 17-bit membrane words take two iCE40 blocks (16 bits at most), one ECP5 block
    assert [m["ice40_ebr"] for m in est["memories"]] == [1, 2, 1, 1]
    assert [m["ecp5_ebr"] for m in est["memories"]] == [1, 1, 1, 1]
    assert est["devices"]["ice40-up5k"]["ebr_used"] == 5
    assert est["fits"] == ["ice40-up5k", "ecp5-25f", "ecp5-45f", "ecp5-85f"]


def test_small_model_four_lanes_padding():
    # layer 0 (neurons 0-5) takes 2 cycles per row on 4 banks, layer 1 (6-8) one: 4*2 + 6*1 = 14
    # words per bank; membranes ceil(9/4) = 3 words per bank.
    est = fit_estimate(dense_model((6, 3), 4), lanes=4)
    assert est["bits"]["synapses"] == 4 * 14 * 8
    assert est["bits"]["synapses_logical"] == 42 * 8
    assert est["bits"]["membranes"] == 4 * 3 * 17


@pytest.mark.parametrize(
    ("scheduler", "name", "width"),
    [
        ("sync", "pending.flags", 1),
        ("random", "pending.list", 16),
        ("momentum", "pending.next", 16),
    ],
)
def test_pending_structures(scheduler, name, width):
    mems = memories(dense_model((6, 3), 4, scheduler=scheduler), 1)
    pending = [m for m in mems if m["kind"] == "pending"]
    assert [(m["name"], m["depth"], m["width"]) for m in pending] == [(name, 13, width)]


def test_momentum_registers_grow_with_buckets():
    small = fit_estimate(dense_model((6, 3), 4, "momentum", momentum_buckets=2), 1)
    big = fit_estimate(dense_model((6, 3), 4, "momentum", momentum_buckets=8), 1)
    assert big["bits"]["pending_registers"] == 4 * small["bits"]["pending_registers"] > 0


def test_spram_on_the_up5k():
    # 64-256-10 at 8 bits: 18944 weights = 151 kbit, more than the 120 kbit of EBR. One SPRAM
    # per lane (16384 words): one lane holds all 18944 words in its bank, too many; two lanes
    # 64 x 128 + 256 x 5 = 9472 words each.
    model = dense_model((256, 10), 64)
    one = fit_estimate(model, lanes=1)["devices"]["ice40-up5k"]
    assert not one["fits"] and not one["fits_with_spram"]
    assert one["spram_refusal"] == "18944 weight words per bank, an SPRAM holds 16384"
    est = fit_estimate(model, lanes=2)
    up5k = est["devices"]["ice40-up5k"]
    assert not up5k["fits"] and up5k["spram_used"] == 0
    assert up5k["fits_with_spram"] and up5k["spram_used_for_weights"] == 2
    # membranes: 133 words x 17 bits, 2 blocks per bank; pending FIFO 329 x 16: 2 blocks;
    # fired queue 3 x 128 entries x 22 bits (group 9, parity 1, target 9, layer 1, two fire
    # bits): 3 blocks of 512 x 8
    assert up5k["ebr_used_with_spram"] == 2 * 2 + 2 + 3
    assert up5k["spram_refusal"] is None
    assert "cannot be initialised by the bitstream" in up5k["note"]
    assert est["fits_with_spram"] == ["ice40-up5k"]
    assert "ecp5-25f" in est["fits"]
    assert est["weight_loading"] == "bitstream"
    assert fit_estimate(model, lanes=8)["devices"]["ice40-up5k"]["spram_refusal"] == (
        "8 lanes need 8 SPRAMs, the UP5K has 4"
    )


def test_weights_in_spram():
    """With ``weight_ram="spram"`` the weights leave the EBR count and only the UP5K fits."""
    model = dense_model((256, 10), 64)
    est = fit_estimate(model, lanes=2, weight_ram="spram")
    assert est["weight_ram"] == "spram" and est["weight_loading"] == "host"
    assert "loaded by the host at start-up" in est["note"]
    assert [m["ram"] for m in est["memories"]] == ["spram"] * 2 + ["bram"] * 4
    up5k = est["devices"]["ice40-up5k"]
    assert up5k["fits"] and up5k["spram_used"] == 2 and up5k["ebr_used"] == 2 * 2 + 2 + 3
    assert est["fits"] == ["ice40-up5k"]  # no SPRAM on the ECP5
    assert est["bits"] == fit_estimate(model, lanes=2)["bits"]
    assert fit_estimate(model, lanes=1, weight_ram="spram")["fits"] == []  # refused, see above
    with pytest.raises(UnlayeredError, match="weight_ram"):
        fit_estimate(model, weight_ram="flash")


def test_mnist_sized_network_needs_the_85f():
    # 784-512-10 at 8 bits: 406528 weights, about 3.25 Mbit: only the ECP5-85F (3.8 Mbit).
    est = fit_estimate(dense_model((512, 10), 784), lanes=1)
    assert est["synapses"] == 784 * 512 + 512 * 10
    assert est["fits"] == ["ecp5-85f"]
    assert est["devices"]["ecp5-85f"]["ebr_used"] <= 208
    assert est["devices"]["ecp5-45f"]["ebr_used"] > 108
