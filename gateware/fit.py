"""How much memory the neuron core of a model needs, and which FPGAs it fits.

Plain Python (no Amaranth): the estimate follows :class:`.layout.CoreLayout` and the memories
that ``core.py`` and the pending structures declare, so it can run on the host before any
synthesis. Memory, not logic, bounds the network size (the core's logic does not grow with the
neuron count), so this is the first question to ask of a model and a board.

Counted per memory (``lib.memory.Memory``, one synchronous read port and one write port each):

- ``weight{b}``: ``L`` banks of ``weight_depth`` words of ``weight_bits`` (padding included);
- ``membrane{b}``: ``L`` banks of ``ceil(N / L)`` words of ``membrane_bits + 1`` (membrane and
  refractory bit);
- the pending structure of the scheduler, ``S = n_inputs + N`` entries: ``fifo`` a FIFO of
  16-bit sources (``lib.fifo.SyncFIFOBuffered``: ``S - 1`` words in RAM plus an output
  register), ``sync`` one flag bit per source, ``random`` a 16-bit list, ``momentum`` a 16-bit
  next-pointer memory (its per-bucket head, tail and count are registers, reported apart).

Each memory is mapped on its own onto the block RAM primitives of a device, in the aspect ratio
that needs the fewest blocks (yosys's memory mapping does the same; it may also put very small
memories into LUTs, so the block counts are an upper bound). Devices:

- iCE40 UP5K: 30 EBR of 4 kbit (256x16, 512x8, 1024x4, 2048x2) and 4 SPRAM of 256 kbit
  (16384x16, single port). SPRAM **cannot be initialized by the bitstream**: a weight memory
  placed there must be written by the host through the core's weight port after configuration
  (which the core supports: weights are written only while it is idle, so a single-port RAM
  serves both the reads and the writes). Membranes are read and written in the same cycle and
  stay in EBR.
- ECP5 LFE5U-25F / 45F / 85F: 56 / 108 / 208 EBR of 18 kbit (16384x1, 8192x2, 4096x4, 2048x9,
  1024x18, 512x36).
"""

from __future__ import annotations

from typing import Any

from unlayered.sim import Model

from .layout import CoreLayout

__all__ = ["DEVICES", "fit_estimate", "memories"]

# Block RAM aspect ratios (depth, width) and block counts of the target devices.
_ICE40_EBR = ((256, 16), (512, 8), (1024, 4), (2048, 2))
_ECP5_EBR = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))

DEVICES: dict[str, dict[str, Any]] = {
    "ice40-up5k": {
        "family": "ice40",
        "ebr": 30,
        "ebr_bits": 4096,
        "ebr_shapes": _ICE40_EBR,
        "spram": 4,
        "spram_bits": 256 * 1024,
        "spram_shape": (16384, 16),
    },
    "ecp5-25f": {"family": "ecp5", "ebr": 56, "ebr_bits": 18432, "ebr_shapes": _ECP5_EBR},
    "ecp5-45f": {"family": "ecp5", "ebr": 108, "ebr_bits": 18432, "ebr_shapes": _ECP5_EBR},
    "ecp5-85f": {"family": "ecp5", "ebr": 208, "ebr_bits": 18432, "ebr_shapes": _ECP5_EBR},
}


def _blocks(depth: int, width: int, shapes) -> int:
    """Fewest blocks of the given aspect ratios that hold a ``depth x width`` memory."""
    return min(-(-depth // d) * -(-width // w) for d, w in shapes)


def memories(model: Model, lanes: int) -> list[dict[str, Any]]:
    """Every memory of the core for ``model`` with ``lanes`` lanes: name, kind, depth, width."""
    lay = CoreLayout.from_model(model, lanes)
    ns = lay.n_sources
    mems = []
    for b in range(lanes):
        mems.append(
            {
                "name": f"weight{b}",
                "kind": "synapses",
                "depth": max(lay.weight_depth, 2),
                "width": model.weight_bits,
            }
        )
    for b in range(lanes):
        mems.append(
            {
                "name": f"membrane{b}",
                "kind": "membranes",
                "depth": max(lay.bank_depth, 2),
                "width": model.membrane_bits + 1,
            }
        )
    sched = model.scheduler.name
    if sched == "fifo":
        pending = {"name": "pending.fifo", "depth": max(ns, 2) - 1, "width": 16}
    elif sched == "sync":
        pending = {"name": "pending.flags", "depth": max(ns, 2), "width": 1}
    elif sched == "random":
        pending = {"name": "pending.list", "depth": ns, "width": 16}
    else:
        pending = {"name": "pending.next", "depth": max(ns, 2), "width": 16}
    mems.append({**pending, "kind": "pending"})
    for m in mems:
        m["bits"] = m["depth"] * m["width"]
    return mems


def _pending_register_bits(model: Model) -> int:
    """Registers of the pending structure that grow with the model (not RAM)."""
    ns = model.n_inputs + model.n_neurons
    count_bits = max(1, ns.bit_length())
    s = model.scheduler
    if s.name == "momentum":
        return s.momentum_buckets * (16 + 16 + count_bits)
    if s.name == "sync":
        return (len(model.layers) + 1) * count_bits
    return 0


def fit_estimate(model: Model, lanes: int = 1) -> dict[str, Any]:
    """Memory needed by the core for ``model`` on ``lanes`` lanes, and which devices it fits.

    Returns
    -------
    dict
        ``bits``: totals by kind (``synapses`` including padding, ``synapses_logical`` = weights
        of the network x ``weight_bits``, ``membranes`` including the refractory bits,
        ``pending``, ``pending_registers``, ``total`` of the RAMs); ``memories``: each memory
        with its depth, width, bits and the blocks it takes per device family; ``devices``: per
        device, the blocks used and available, ``fits`` (everything in EBR) and, for the iCE40
        UP5K, ``fits_with_spram`` (weights in SPRAM, the rest in EBR; the host must then load
        the weights after configuration, SPRAM cannot be initialized by the bitstream).
    """
    model.validate()
    mems = memories(model, lanes)
    for m in mems:
        m["ice40_ebr"] = _blocks(m["depth"], m["width"], _ICE40_EBR)
        m["ecp5_ebr"] = _blocks(m["depth"], m["width"], _ECP5_EBR)
        m["ice40_spram"] = _blocks(m["depth"], m["width"], (DEVICES["ice40-up5k"]["spram_shape"],))
    by_kind: dict[str, int] = {"synapses": 0, "membranes": 0, "pending": 0}
    for m in mems:
        by_kind[m["kind"]] += m["bits"]
    synapses = sum(int(w.size) for w in model.weights)
    bits = {
        **by_kind,
        "synapses_logical": synapses * model.weight_bits,
        "pending_registers": _pending_register_bits(model),
        "total": sum(by_kind.values()),
    }
    devices = {}
    for name, dev in DEVICES.items():
        key = f"{dev['family']}_ebr"
        ebr = sum(m[key] for m in mems)
        entry: dict[str, Any] = {
            "ebr_used": ebr,
            "ebr_available": dev["ebr"],
            "ebr_bits_available": dev["ebr"] * dev["ebr_bits"],
            "fits": ebr <= dev["ebr"],
        }
        if "spram" in dev:
            spram = sum(m["ice40_spram"] for m in mems if m["kind"] == "synapses")
            rest = sum(m[key] for m in mems if m["kind"] != "synapses")
            entry.update(
                {
                    "spram_used_for_weights": spram,
                    "spram_available": dev["spram"],
                    "ebr_used_with_spram": rest,
                    "fits_with_spram": spram <= dev["spram"] and rest <= dev["ebr"],
                    "note": "SPRAM cannot be initialized by the bitstream: with weights in "
                    "SPRAM the host loads them through the weight port after configuration",
                }
            )
        devices[name] = entry
    return {
        "lanes": lanes,
        "neurons": model.n_neurons,
        "sources": model.n_inputs + model.n_neurons,
        "synapses": synapses,
        "scheduler": model.scheduler.name,
        "bits": bits,
        "memories": mems,
        "devices": devices,
        "fits": [name for name, d in devices.items() if d["fits"]],
        "fits_with_spram": [name for name, d in devices.items() if d.get("fits_with_spram")],
    }
