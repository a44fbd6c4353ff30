"""Where every neuron and weight of a :class:`~unlayered.sim.Model` lives in the core's memories.

Plain Python (no Amaranth): the core elaborates from it, and host code and testbenches use it to
build weight images and reload them through the core's weight write port.

Neuron ``n`` lives in membrane bank ``n % L`` at address ``n // L``. A source's fan-out (a whole
layer ``l``, starting at neuron ``s``) is streamed in ``K[l]`` cycles; in cycle ``k`` bank ``b``
handles target ``L * (off[l][b] + k) + b`` when ``k < cnt[l][b]`` (``off[l][b]`` is the first
address of layer ``l`` in bank ``b``). Weight bank ``b`` holds, for every source, ``K[l]``
consecutive words: word ``row_base(source) + k`` is the weight of that bank's target in cycle
``k`` (0 where the bank has no target).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlayered.sim import Model

__all__ = ["CoreLayout", "fire_count_stored", "fired_queue_shape", "group_overlap", "weight_slices"]

# Deepest weight bank kept whole: one ECP5 block as 2048 x 9. A deeper memory is several
# blocks deep, and yosys puts a multiplexer of their outputs behind the read port.
WHOLE_WEIGHT_DEPTH = 2048
# Deepest fired queue whose entries leave the lane count to the drain: deeper ones are block
# RAMs (see ``fire_count_stored``).
SHALLOW_QUEUE_DEPTH = 64


@dataclass(frozen=True)
class CoreLayout:
    """Memory layout of a model on a core with ``lanes`` lanes.

    Members
    -------
    lanes
        ``L``, the number of membrane and weight banks.
    n_inputs, sizes, starts
        Input channels, layer sizes, global index of each layer's first neuron.
    n_sources
        ``n_inputs + N``.
    bank_depth
        Addresses per membrane bank, ``ceil(N / L)``.
    cycles
        ``K[l]``: cycles to stream one row into layer ``l``.
    bank_offset, bank_count
        ``off[l][b]`` and ``cnt[l][b]`` (see the module docstring).
    row_start
        ``WB[l]``: the first weight word of the rows that feed layer ``l``.
    weight_depth
        Words per weight bank.
    """

    lanes: int
    n_inputs: int
    sizes: tuple[int, ...]
    starts: tuple[int, ...]
    n_sources: int
    bank_depth: int
    cycles: tuple[int, ...]
    bank_offset: tuple[tuple[int, ...], ...]
    bank_count: tuple[tuple[int, ...], ...]
    row_start: tuple[int, ...]
    weight_depth: int

    @staticmethod
    def from_model(model: Model, lanes: int) -> CoreLayout:
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        sizes = tuple(int(s) for s in model.sizes)
        starts = tuple(int(s) for s in model.layer_starts)
        n = sum(sizes)
        offsets, counts, cycles, row_start = [], [], [], []
        fan_in = [model.n_inputs, *sizes[:-1]]
        word = 0
        for start, size, sources in zip(starts, sizes, fan_in, strict=True):
            off, cnt = [], []
            for b in range(lanes):
                first = max(0, -(-(start - b) // lanes))  # first address >= start in bank b
                end = max(0, -(-(start + size - b) // lanes))
                off.append(first)
                cnt.append(end - first)
            offsets.append(tuple(off))
            counts.append(tuple(cnt))
            cycles.append(max(cnt))
            row_start.append(word)
            word += sources * max(cnt)
        return CoreLayout(
            lanes=lanes,
            n_inputs=int(model.n_inputs),
            sizes=sizes,
            starts=starts,
            n_sources=int(model.n_inputs) + n,
            bank_depth=-(-n // lanes),
            cycles=tuple(cycles),
            bank_offset=tuple(offsets),
            bank_count=tuple(counts),
            row_start=tuple(row_start),
            weight_depth=max(word, 1),
        )

    def weight_image(self, model: Model) -> np.ndarray:
        """``(lanes, weight_depth)`` int64 array: the contents of every weight bank."""
        image = np.zeros((self.lanes, self.weight_depth), dtype=np.int64)
        for layer, w in enumerate(model.weights):
            w = np.asarray(w)
            big_k = self.cycles[layer]
            for source in range(w.shape[1]):
                base = self.row_start[layer] + source * big_k
                for b in range(self.lanes):
                    for k in range(self.bank_count[layer][b]):
                        target = self.lanes * (self.bank_offset[layer][b] + k) + b
                        image[b, base + k] = w[target - self.starts[layer], source]
        return image

    def weight_writes(self, model: Model) -> list[tuple[int, int, int]]:
        """``(bank, address, weight)`` for every word: what a host writes to reload weights."""
        image = self.weight_image(model)
        return [
            (b, a, int(image[b, a])) for a in range(self.weight_depth) for b in range(self.lanes)
        ]

    @property
    def group_bits(self) -> int:
        """Bits of a group's index within its step: a step has at most ``n_sources + 1``
        groups (each takes a pending entry, a source is pending at most once per step, and
        the input group may take none; semantics 11), so indices are at most ``n_sources``."""
        return max(self.n_sources.bit_length(), 1)

    @property
    def neuron_bits(self) -> int:
        """Bits of a global neuron index."""
        return max((sum(self.sizes) - 1).bit_length(), 1)

    def compatible(self, model: Model) -> bool:
        """True when ``model`` has the same shape, so its weights can be loaded into this core."""
        return CoreLayout.from_model(model, self.lanes) == self


def weight_slices(depth: int, bits: int) -> tuple[int, ...]:
    """Bit widths of the memories one weight bank is split into (low bits first).

    A bank of at most ``WHOLE_WEIGHT_DEPTH`` words is one memory. A deeper one is split into
    slices 4 bits wide (up to 4096 words) or 2 bits wide (deeper), the widths at which one
    ECP5 block (4096 x 4, 8192 x 2) holds the whole depth, so that no multiplexer sits
    between the blocks and the weight register (beyond 8192 words, one of two blocks). Two
    bits is the narrowest iCE40 block (2048 x 2), so an iCE40 needs no more blocks for it.
    """
    if depth <= WHOLE_WEIGHT_DEPTH:
        return (bits,)
    width = 4 if depth <= 2 * WHOLE_WEIGHT_DEPTH else 2
    return (width,) * (bits // width) + ((bits % width,) if bits % width else ())


def fire_count_stored(model: Model, layout: CoreLayout) -> bool:
    """Whether a fired-queue entry carries the number of lanes that fired.

    The drain needs that count in the cycle it takes an entry. A queue deeper than
    ``SHALLOW_QUEUE_DEPTH`` entries is a block RAM, whose output comes late in the cycle
    (ECP5: 7 ns of 10 at 100 MHz), so the count is stored with the entry instead of being
    added up behind the output. A shallower queue (LUT RAM on the ECP5) and a single lane
    (the count is the fire bit) do without.
    """
    return layout.lanes > 1 and _fired_queue_depth(model, layout) > SHALLOW_QUEUE_DEPTH


def _fired_queue_depth(model: Model, layout: CoreLayout) -> int:
    return (3 if group_overlap(model) else 1) * max(layout.cycles) + 1


def group_overlap(model: Model) -> bool:
    """Whether the core may start the next group's picks while this group's last row is
    delivered and evaluated, which it does only where that cannot change them: ``fifo`` with
    F >= 1 when F entries are already pending (later pushes go behind them); every scheduler
    after a group whose targets are the output layer (its spikes push nothing), but not with
    ``first_to_threshold``, where such a group may end the sample."""
    if model.scheduler.name == "fifo" and model.scheduler.group_size != 0:
        return True
    return model.decision != "first_to_threshold"


def fired_queue_shape(model: Model, layout: CoreLayout) -> tuple[int, int]:
    """``(width, depth)`` of the core's fired-neuron queue (a :class:`~.memory.BlockFIFO`).

    An entry is a write-back cycle that fired: group (``group_bits``), the step's parity (1),
    first target (``neuron_bits``), layer, per lane a fire bit and the momentum bucket, and the
    number of lanes that fired if :func:`fire_count_stored`.
    Depth K + 1, three rows' worth with group overlap (see the PICK state): the inner FIFO
    holds depth - 1 while its output register fills, and a row writes at most K entries before
    the drain takes one.
    """
    sched = model.scheduler
    buckets = sched.momentum_buckets
    bucket_bits = max(buckets - 1, 1).bit_length() if sched.name == "momentum" else 0
    layer_bits = max(len(model.layers) - 1, 1).bit_length()
    width = layout.group_bits + 1 + layout.neuron_bits + layer_bits
    width += layout.lanes * (1 + bucket_bits)
    if fire_count_stored(model, layout):
        width += layout.lanes.bit_length()
    return width, _fired_queue_depth(model, layout)
