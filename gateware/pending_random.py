"""``random`` pending structure (semantics 6.3): a list with swap-remove and xorshift32 picks."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from .memory import COLLISION_FREE
from .pending import pending_ports
from .rng import Xorshift32

__all__ = ["PendingRandom"]


class PendingRandom(wiring.Component):
    """Uniform picks from a list memory with swap-remove.

    The head is prepared in three cycles whenever the list changed: ``r = xorshift32(state)``
    and ``idx = ((r >> 16) * n) >> 16`` (one 16x16 multiply) are registered; ``P[idx]`` and
    ``P[n-1]`` are read; the head is then valid. Taking it advances the generator (exactly once
    per pick), writes ``P[idx] = P[n-1]`` and decrements ``n``. A push appends at ``P[n]``.

    Parameters
    ----------
    n_sources
        ``n_inputs + N``: the list memory's depth.
    n_layers, n_buckets
        Unused.
    """

    def __init__(self, *, n_sources: int, n_layers: int, n_buckets: int):
        self._n_sources = n_sources
        super().__init__(pending_ports(n_sources, n_layers, n_buckets))

    def elaborate(self, platform):
        m = Module()
        ns = max(self._n_sources, 2)
        m.submodules.list = mem = Memory(shape=16, depth=ns, init=[], attrs=COLLISION_FREE)
        wp = mem.write_port()
        rp_pick = mem.read_port()
        rp_last = mem.read_port()
        m.submodules.rng = rng = Xorshift32()
        m.d.comb += [rng.seed.eq(self.seed), rng.load.eq(self.load)]

        n = self.count
        idx = Signal(16)
        stage = Signal(range(3))  # 0: compute idx, 1: read, 2: head valid
        m.d.comb += [
            rp_pick.addr.eq(idx),
            rp_last.addr.eq(n - 1),
            self.head.payload.eq(rp_pick.data),
            self.head.valid.eq(stage == 2),
        ]
        take = self.head.ready  # asserted only while the head is valid (pending.py)
        with m.If(self.clear):
            m.d.sync += [n.eq(0), stage.eq(0)]
        with m.Elif(self.push_valid):
            m.d.comb += [wp.addr.eq(n), wp.data.eq(self.push_source), wp.en.eq(1)]
            m.d.sync += [n.eq(n + 1), stage.eq(0)]
        with m.Elif(take):
            m.d.comb += [wp.addr.eq(idx), wp.data.eq(rp_last.data), wp.en.eq(1), rng.advance.eq(1)]
            m.d.sync += [n.eq(n - 1), stage.eq(0)]
        with m.Elif(n != 0):
            with m.Switch(stage):
                with m.Case(0):
                    m.d.sync += [idx.eq((rng.next[16:] * n) >> 16), stage.eq(1)]
                with m.Case(1):
                    m.d.sync += stage.eq(2)
        return m
