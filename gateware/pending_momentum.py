"""``momentum`` pending structure (semantics 6.4): B linked-list FIFOs and a priority encoder."""

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from .memory import COLLISION_FREE
from .pending import pending_ports

__all__ = ["PendingMomentum"]


class PendingMomentum(wiring.Component):
    """The oldest entry of the highest non-empty bucket.

    Each bucket is a FIFO kept as a linked list through one next-pointer memory indexed by
    source (``n_sources`` words; a source is pending at most once), with head, tail and count
    registers per bucket. A pick takes the head of the highest non-empty bucket; the bucket's new
    head is read from the next-pointer memory in the following cycle. The highest non-empty
    bucket (``top_q``) and ``head.payload`` are registers in series, so the priority encoder and
    the head multiplexer are in different cycles: after a pick that leaves its bucket non-empty
    the head is valid again in the second cycle, after a push, a clear or a pick that empties
    its bucket in the third.

    Parameters
    ----------
    n_sources
        ``n_inputs + N``.
    n_layers
        Unused.
    n_buckets
        ``B``, the momentum buckets.
    """

    def __init__(self, *, n_sources: int, n_layers: int, n_buckets: int):
        self._n_sources = n_sources
        self._n_buckets = n_buckets
        super().__init__(pending_ports(n_sources, n_layers, n_buckets))

    def elaborate(self, platform):
        m = Module()
        nb, ns = self._n_buckets, self._n_sources
        m.submodules.next = mem = Memory(shape=16, depth=max(ns, 2), init=[], attrs=COLLISION_FREE)
        wp = mem.write_port()
        rp = mem.read_port()

        heads = Array(Signal(16, name=f"head{b}") for b in range(nb))
        tails = Array(Signal(16, name=f"tail{b}") for b in range(nb))
        counts = Array(Signal(range(ns + 1), name=f"count{b}") for b in range(nb))

        # nonempty[b] == (counts[b] != 0), kept as a register so that the priority encoder
        # (and the head mux behind it) starts at flip-flops, not behind B count comparisons.
        nonempty = Signal(nb)
        top = Signal(range(max(nb, 2)))
        for b in range(nb):  # the last assignment wins: the highest non-empty bucket
            with m.If(nonempty[b]):
                m.d.comb += top.eq(b)
        top_q = Signal.like(top)  # ``top`` of the previous cycle
        m.d.sync += top_q.eq(top)
        advancing = Signal()  # the cycle after a pick that leaves its bucket non-empty
        adv_bucket = Signal.like(top)

        # ``head_q`` is heads[top_q] of the previous cycle, or (``advancing``) the new head of
        # the bucket just picked. It is ``fresh`` (heads[top]) when nothing changed the buckets
        # in the previous two cycles, or only a pick that left its bucket the top one.
        head_q = Signal(16)
        fresh = Signal()
        change, change_q = Signal(), Signal()  # a push, pick or clear; in the previous cycle
        take = self.head.ready  # asserted only while the head is valid (pending.py)
        m.d.comb += [
            rp.addr.eq(head_q),
            self.head.payload.eq(head_q),
            self.head.valid.eq((self.count != 0) & fresh),
            change.eq(self.clear | self.push_valid | take),
        ]
        m.d.sync += [
            advancing.eq(0),
            head_q.eq(heads[top_q]),
            change_q.eq(change),
            fresh.eq(~change & (~change_q | advancing)),
        ]
        with m.If(self.clear):
            for b in range(nb):
                m.d.sync += counts[b].eq(0)
            m.d.sync += [self.count.eq(0), nonempty.eq(0)]
        with m.Elif(self.push_valid):
            m.d.sync += self.count.eq(self.count + 1)
            for b in range(nb):  # per bucket, like the picks: no multiplexer before the adders
                with m.If(self.push_bucket == b):
                    with m.If(~nonempty[b]):
                        m.d.sync += heads[b].eq(self.push_source)
                    with m.Else():
                        m.d.comb += [wp.addr.eq(tails[b]), wp.data.eq(self.push_source)]
                        m.d.comb += wp.en.eq(1)
                    m.d.sync += [
                        tails[b].eq(self.push_source),
                        counts[b].eq(counts[b] + 1),
                        nonempty[b].eq(1),
                    ]
        with m.Elif(take):
            m.d.sync += self.count.eq(self.count - 1)
            for b in range(nb):  # one decrement per bucket: no multiplexer before the adders
                with m.If(top_q == b):
                    m.d.sync += counts[b].eq(counts[b] - 1)
                    with m.If(counts[b] != 1):
                        m.d.sync += [advancing.eq(1), adv_bucket.eq(b)]
                    with m.Else():
                        m.d.sync += nonempty[b].eq(0)
        with m.If(advancing):  # rp.data is next[old head], read in the pick cycle
            m.d.sync += [heads[adv_bucket].eq(rp.data), head_q.eq(rp.data)]
        return m
