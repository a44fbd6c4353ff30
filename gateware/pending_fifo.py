"""``fifo`` pending structure (semantics 6.2): a FIFO memory of depth ``n_inputs + N``."""

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.lib import wiring

from .memory import BlockFIFO
from .pending import pending_ports

__all__ = ["PendingFifo"]


class PendingFifo(wiring.Component):
    """Arrival order: a :class:`~.memory.BlockFIFO` of entries (source and layer code).

    Parameters
    ----------
    n_sources
        ``n_inputs + N``: the FIFO depth (an entry is pending at most once per step).
    n_layers
        Neuron layers (layer codes ``0 .. n_layers``).
    n_buckets
        Unused; the ports are those of :func:`.pending.pending_ports`.
    """

    def __init__(self, *, n_sources: int, n_layers: int, n_buckets: int):
        self._n_sources = n_sources
        super().__init__(pending_ports(n_sources, n_layers, n_buckets))

    def elaborate(self, platform):
        m = Module()
        layout = self.head.payload.shape()  # an entry: source and layer code
        entry = Signal(layout)
        # Depth 3 at least: a BlockFIFO of depth 2 has one memory word and refuses a write in
        # the cycle after the first one (while that word moves to the read register).
        fifo = BlockFIFO(width=layout.size, depth=max(self._n_sources, 3))
        m.submodules.fifo = ResetInserter(self.clear)(fifo)
        take = Signal()
        m.d.comb += [
            entry.source.eq(self.push_source),
            entry.code.eq(self.push_layer),
            fifo.w_data.eq(entry),
            fifo.w_en.eq(self.push_valid),
            self.head.valid.eq(fifo.r_rdy),
            self.head.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.head.ready),
            take.eq(self.head.ready),  # asserted only while the head is valid (pending.py)
        ]
        with m.If(self.clear):
            m.d.sync += self.count.eq(0)
        with m.Elif(self.push_valid & ~take):
            m.d.sync += self.count.eq(self.count + 1)
        with m.Elif(take & ~self.push_valid):
            m.d.sync += self.count.eq(self.count - 1)
        return m
