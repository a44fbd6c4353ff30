"""How much memory the neuron core of a model needs, and which FPGAs it fits.

Plain Python (no Amaranth): the estimate follows :class:`.layout.CoreLayout` and the memories
that ``core.py`` and the pending structures declare, so it can run on the host before any
synthesis. Memory, not logic, bounds the network size (the core's logic does not grow with the
neuron count), so this is the first question to ask of a model and a board.

Counted per memory (``lib.memory.Memory``, one synchronous read port and one write port each):

- ``weight{b}``: ``L`` banks of ``weight_depth`` words of ``weight_bits`` (padding included);
  a bank deeper than 2048 words is split into bit slices (``slices``,
  :func:`.layout.weight_slices`), each mapped on its own;
- ``membrane{b}``: ``L`` banks of ``ceil(N / L)`` words of ``membrane_bits + 1`` (membrane and
  refractory bit);
- the pending structure of the scheduler, ``S = n_inputs + N`` entries: ``fifo`` a FIFO of
  16-bit sources (:class:`~.memory.BlockFIFO`: ``S - 1`` words in RAM plus an output
  register), ``sync`` one flag bit per source, ``random`` a 16-bit list, ``momentum`` a 16-bit
  next-pointer memory (its per-bucket head, tail and count are registers, reported apart).

Each memory is mapped on its own onto the block RAM primitives of a device, in the aspect ratio
that needs the fewest blocks (yosys's memory mapping does the same; it may also put very small
memories into LUTs, so the block counts are an upper bound). Devices:

- iCE40 UP5K: 30 EBR of 4 kbit (256x16, 512x8, 1024x4, 2048x2) and 4 SPRAM of 256 kbit
  (16384x16, single port). With ``NeuronCore(..., weight_ram="spram")`` each lane's weight bank
  is one SPRAM (so at most 4 lanes, 16384 words per bank and 16-bit weights:
  :func:`spram_refusal`). SPRAM **cannot be initialized by the bitstream**: the host loads the
  weights through the core's weight port at start-up (weights are written only while the core
  is idle, so a single-port RAM serves both the reads and the writes). Membranes are read and
  written in the same cycle and stay in EBR.
- ECP5 LFE5U-25F / 45F / 85F: 56 / 108 / 208 EBR of 18 kbit (16384x1, 8192x2, 4096x4, 2048x9,
  1024x18, 512x36).
"""

from __future__ import annotations

from typing import Any

from unlayered.sim import Model, UnlayeredError

from .layout import CoreLayout, fired_queue_shape, weight_slices

__all__ = ["DEVICES", "WEIGHT_RAMS", "blocks", "fit_estimate", "memories", "spram_refusal"]

WEIGHT_RAMS = ("bram", "spram")  # NeuronCore's weight_ram

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


SPRAM_NOTE = (
    "weights in SPRAM are loaded by the host at start-up (through the weight port), since SPRAM "
    "cannot be initialised by the bitstream"
)


def spram_refusal(model: Model, lanes: int) -> str | None:
    """Why the weight banks cannot be one ``SB_SPRAM256KA`` per lane, or ``None`` if they can."""
    up5k = DEVICES["ice40-up5k"]
    words, width = up5k["spram_shape"]
    depth = CoreLayout.from_model(model, lanes).weight_depth
    if lanes > up5k["spram"]:
        return f"{lanes} lanes need {lanes} SPRAMs, the UP5K has {up5k['spram']}"
    if depth > words:
        return f"{depth} weight words per bank, an SPRAM holds {words}"
    assert model.weight_bits <= width  # Model.validate: at most 16 bits
    return None


def blocks(depth: int, width: int, shapes) -> int:
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
                "slices": weight_slices(max(lay.weight_depth, 2), model.weight_bits),
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
    width, depth = fired_queue_shape(model, lay)
    # BlockFIFO keeps depth - 1 entries in its memory, the last in a register
    mems.append({"name": "fired", "kind": "queue", "depth": max(depth - 1, 2), "width": width})
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


def fit_estimate(model: Model, lanes: int = 1, weight_ram: str = "bram") -> dict[str, Any]:
    """Memory needed by the core for ``model`` on ``lanes`` lanes, and which devices it fits.

    ``weight_ram`` is the core's option (``"bram"``: weights in block RAM, initialized by the
    bitstream; ``"spram"``: one iCE40 SPRAM per lane, loaded by the host at start-up).

    Returns
    -------
    dict
        ``bits``: totals by kind (``synapses`` including padding, ``synapses_logical`` = weights
        of the network x ``weight_bits``, ``membranes`` including the refractory bits,
        ``pending``, ``queue`` (the fired-neuron queue), ``pending_registers``, ``total`` of
        the RAMs); ``memories``: each memory
        with its depth, width, bits, the blocks it takes per device family and ``ram`` (where
        it goes with this ``weight_ram``: ``bram`` or ``spram``); ``weight_ram`` and
        ``weight_loading`` (``bitstream`` or ``host``, with ``note``); ``devices``: per device,
        ``ebr_used`` and ``spram_used`` with this ``weight_ram`` and what is available, ``fits``
        and, for the iCE40 UP5K, the SPRAM alternative whatever ``weight_ram`` is:
        ``spram_used_for_weights``, ``ebr_used_with_spram``, ``fits_with_spram`` and
        ``spram_refusal`` (why the core cannot put the weights in SPRAM, or ``None``); ``fits``
        and ``fits_with_spram`` list the devices.
    """
    model.validate()
    if weight_ram not in WEIGHT_RAMS:
        raise UnlayeredError(f"weight_ram must be one of {WEIGHT_RAMS}, got {weight_ram!r}")
    mems = memories(model, lanes)
    for m in mems:
        widths = m.get("slices", (m["width"],))
        m["ice40_ebr"] = sum(blocks(m["depth"], w, _ICE40_EBR) for w in widths)
        m["ecp5_ebr"] = sum(blocks(m["depth"], w, _ECP5_EBR) for w in widths)
        m["ram"] = "spram" if weight_ram == "spram" and m["kind"] == "synapses" else "bram"
    by_kind: dict[str, int] = {"synapses": 0, "membranes": 0, "pending": 0, "queue": 0}
    for m in mems:
        by_kind[m["kind"]] += m["bits"]
    synapses = sum(int(w.size) for w in model.weights)
    bits = {
        **by_kind,
        "synapses_logical": synapses * model.weight_bits,
        "pending_registers": _pending_register_bits(model),
        "total": sum(by_kind.values()),
    }
    refusal = spram_refusal(model, lanes)
    spram = lanes if weight_ram == "spram" else 0
    devices = {}
    for name, dev in DEVICES.items():
        key = f"{dev['family']}_ebr"
        ebr = sum(m[key] for m in mems if m["ram"] == "bram")
        rest = sum(m[key] for m in mems if m["kind"] != "synapses")
        entry: dict[str, Any] = {
            "ebr_used": ebr,
            "ebr_available": dev["ebr"],
            "ebr_bits_available": dev["ebr"] * dev["ebr_bits"],
            "spram_used": spram,
            "spram_available": dev.get("spram", 0),
            "fits": ebr <= dev["ebr"] and spram <= dev.get("spram", 0) and not (spram and refusal),
        }
        if "spram" in dev:
            entry.update(
                {
                    "spram_used_for_weights": lanes,
                    "ebr_used_with_spram": rest,
                    "fits_with_spram": refusal is None and rest <= dev["ebr"],
                    "spram_refusal": refusal,
                    "note": SPRAM_NOTE,
                }
            )
        devices[name] = entry
    return {
        "lanes": lanes,
        "neurons": model.n_neurons,
        "sources": model.n_inputs + model.n_neurons,
        "synapses": synapses,
        "scheduler": model.scheduler.name,
        "weight_ram": weight_ram,
        "weight_loading": "host" if weight_ram == "spram" else "bitstream",
        "note": SPRAM_NOTE
        if weight_ram == "spram"
        else "weights are the block RAMs' initial "
        "contents in the bitstream (the host may rewrite them through the weight port)",
        "bits": bits,
        "memories": mems,
        "devices": devices,
        "fits": [name for name, d in devices.items() if d["fits"]],
        "fits_with_spram": [name for name, d in devices.items() if d.get("fits_with_spram")],
    }
