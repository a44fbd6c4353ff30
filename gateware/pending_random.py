"""``random`` pending structure (semantics 6.3): a list with swap-remove and xorshift32 picks."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from .memory import COLLISION_FREE
from .pending import pending_ports
from .rng import Xorshift32

__all__ = ["PendingRandom"]


class PendingRandom(wiring.Component):
    """Uniform picks from a list memory with swap-remove.

    The head is ``P[idx]`` with ``idx = ((r >> 16) * n) >> 16`` (one 16x16 multiply) for
    ``r = xorshift32(state)``. Taking it advances the generator (exactly once per pick), writes
    ``P[idx] = P[n-1]`` and decrements ``n``; a push appends at ``P[n]``. Either registers the
    next ``idx`` in the same cycle, for the list it leaves: a push with ``r`` and ``n + 1``, a
    take with the generator's output after the advance (``rng.after``) and ``n - 1``.
    ``P[idx]`` and ``P[n-1]`` are read in the next cycle and the head is valid in the one
    after. While the head waits, the multiplier computes the take's ``idx`` ahead of it, so
    that a take one cycle or more after the head became valid reads the next head in its own
    cycle and the head is valid in the next (picks every two cycles, as the core makes them).
    After a clear or a load, ``idx`` is computed first (three cycles).

    Parameters
    ----------
    n_sources
        ``n_inputs + N``: the list memory's depth.
    n_layers
        Neuron layers (layer codes ``0 .. n_layers``, stored with the sources).
    n_buckets
        Unused.
    """

    def __init__(self, *, n_sources: int, n_layers: int, n_buckets: int):
        self._n_sources = n_sources
        super().__init__(pending_ports(n_sources, n_layers, n_buckets))

    def elaborate(self, platform):
        m = Module()
        ns = max(self._n_sources, 2)
        entry = self.head.payload.shape()  # a source with its layer code
        m.submodules.list = mem = Memory(shape=entry, depth=ns, init=[], attrs=COLLISION_FREE)
        wp = mem.write_port()
        rp_pick = mem.read_port()
        rp_last = mem.read_port()
        m.submodules.rng = rng = Xorshift32()
        m.d.comb += [rng.seed.eq(self.seed), rng.load.eq(self.load)]

        n = self.count
        # n - 1 and n + 1 kept beside n (modulo its width), so that no carry chain sits
        # before the multiplier or the read port
        n_dec = Signal.like(n, init=(1 << len(n)) - 1)
        n_inc = Signal.like(n, init=1)
        idx = Signal(16)
        # neither: compute idx; ``reading``: idx computed, P[idx] being read; ``waiting``: the
        # head is valid (flags, not a state code: ``waiting`` selects the multiplier's operands)
        reading, waiting = Signal(), Signal()

        def scaled(r, count):
            """The pick's index into a list of ``count`` entries; ``r``: the output's top half."""
            return (r * count) >> 16

        # While the head waits, the multiplier computes the index the next pick will leave
        # (``idx_next``, ``next_ok`` once it is computed for the current list and generator),
        # and a pick then reads that entry in its own cycle: the head is valid in the next
        # cycle. The entry is the one the pick moves (``hit``: it is P[n-1], read beside it)
        # when the two indices meet.
        idx_next = Signal(16)
        next_ok, hit = Signal(), Signal()
        last_q = Signal(entry)  # P[n-1] of the previous cycle
        take = self.head.ready  # asserted only while the head is valid (pending.py)
        fast = Signal()  # this pick reads the next head at once
        m.d.comb += fast.eq(take & next_ok)
        m.d.comb += [
            rp_pick.addr.eq(Mux(fast, idx_next, idx)),
            rp_last.addr.eq(n_dec),
            self.head.payload.eq(Mux(hit, last_q, rp_pick.data)),
            self.head.valid.eq(waiting),
        ]
        m.d.sync += [last_q.eq(rp_last.data), hit.eq(0), next_ok.eq(0)]
        # One multiplier: its operands are registers selected by two registers, the push and
        # ``waiting`` (a take comes only while the head waits); with the head valid it computes
        # the next pick's index.
        r, count = Signal(16), Signal.like(n)
        after_pick = Signal()  # the list a pick leaves
        m.d.comb += [
            after_pick.eq(~self.push_valid & waiting),
            r.eq(Mux(after_pick, rng.after[16:], rng.next[16:])),
            count.eq(Mux(after_pick, n_dec, Mux(self.push_valid, n_inc, n))),
        ]
        with m.If(self.clear | self.load):
            m.d.sync += [reading.eq(0), waiting.eq(0)]
            with m.If(self.clear):
                m.d.sync += [n.eq(0), n_dec.eq(n_dec.init), n_inc.eq(1)]
        with m.Elif(self.push_valid):
            m.d.comb += [wp.addr.eq(n), wp.en.eq(1)]
            m.d.comb += [wp.data.source.eq(self.push_source), wp.data.code.eq(self.push_layer)]
            m.d.sync += [n.eq(n_inc), n_dec.eq(n), n_inc.eq(n + 2)]
            m.d.sync += [idx.eq(scaled(r, count)), reading.eq(1), waiting.eq(0)]
        with m.Elif(take):
            m.d.comb += [wp.addr.eq(idx), wp.data.eq(rp_last.data), wp.en.eq(1), rng.advance.eq(1)]
            m.d.sync += [n.eq(n_dec), n_dec.eq(n - 2), n_inc.eq(n)]
            m.d.sync += [idx.eq(scaled(r, count)), reading.eq(~fast), waiting.eq(fast)]
            m.d.sync += hit.eq(fast & (idx_next == idx))
        with m.Elif(waiting):
            m.d.sync += [idx_next.eq(scaled(r, count)), next_ok.eq(n != 1)]  # not the last entry
        with m.Elif(n != 0):
            with m.If(reading):
                m.d.sync += [reading.eq(0), waiting.eq(1)]
            with m.Else():
                m.d.sync += [idx.eq(scaled(r, count)), reading.eq(1)]
        return m
