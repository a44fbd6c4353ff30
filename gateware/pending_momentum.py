"""``momentum`` pending structure (semantics 6.4): B linked-list FIFOs and a priority encoder."""

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from .memory import COLLISION_FREE
from .pending import pending_ports

__all__ = ["PendingMomentum"]


class PendingMomentum(wiring.Component):
    """The oldest entry of the highest non-empty bucket.

    Each bucket is a FIFO kept as a linked list through one next-pointer memory indexed by
    source (``n_sources`` words, each the successor's entry: source and layer code; a source is
    pending at most once), with head (an entry), tail and count registers per bucket. A pick
    takes the head of the highest non-empty bucket; the bucket's new head is its successor in
    the next-pointer memory, read while the head waits. The heads of the highest and the
    second-highest non-empty buckets are chosen from the buckets' registers in one cycle into
    registers (``head_q`` and ``head2_q``): after a pick the head is valid again in
    the next cycle (the successor, read into a register of its own, or ``head2_q`` if the pick
    emptied its bucket), after a push or a clear in the second.

    Parameters
    ----------
    n_sources
        ``n_inputs + N``.
    n_layers
        Neuron layers (layer codes ``0 .. n_layers``, kept with the sources).
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
        entry = self.head.payload.shape()  # a source with its layer code
        m.submodules.next = mem = Memory(
            shape=entry, depth=max(ns, 2), init=[], attrs=COLLISION_FREE
        )
        wp = mem.write_port()
        rp = mem.read_port()

        heads = Array(Signal(entry, name=f"head{b}") for b in range(nb))
        tails = Array(Signal(16, name=f"tail{b}") for b in range(nb))
        counts = Array(Signal(range(ns + 1), name=f"count{b}") for b in range(nb))

        # nonempty[b] == (counts[b] != 0), kept as a register so that the priority encoder and
        # the heads' one-hot choices below start at flip-flops, not behind B count comparisons.
        # The top bucket is found twice on purpose: binary into ``top_q`` (the take's decrement
        # and the bucket head's copy), one-hot for the head. Deriving ``top_q`` from the one-hot
        # choice puts that choice on the UP5K's critical path (synth.md, thirteenth session).
        nonempty = Signal(nb)
        single = Signal(nb)  # single[b] == (counts[b] == 1), likewise
        top = Signal(range(max(nb, 2)))
        top_single = Signal()  # ``top`` holds one entry
        for b in range(nb):  # the last assignment wins: the highest non-empty bucket
            with m.If(nonempty[b]):
                m.d.comb += [top.eq(b), top_single.eq(single[b])]
        top_q, top_single_q = Signal.like(top), Signal()  # of the previous cycle
        m.d.sync += [top_q.eq(top), top_single_q.eq(top_single)]
        # The heads of the highest and the second-highest non-empty buckets, chosen one-hot
        # (bucket b is the top when it is non-empty with no non-empty bucket above it, the
        # second with exactly one) and AND-ORed: fewer LUT levels than an encoder and a
        # multiplexer, so both are computed in one cycle from the flags. ``head2`` is what a
        # pick that empties the top leaves as the head; its register is current at every take:
        # a take follows a cycle in which the head was valid and stays valid (pending.py), so
        # no push, clear or take came in that cycle.
        head_top = head2 = Const(0, entry.size)
        one_above, two_above = Const(0), Const(0)  # non-empty buckets above b: >= 1, >= 2
        for b in reversed(range(nb)):
            head_top = head_top | Mux(nonempty[b] & ~one_above, heads[b].as_value(), 0)
            head2 = head2 | Mux(nonempty[b] & one_above & ~two_above, heads[b].as_value(), 0)
            one_above, two_above = one_above | nonempty[b], two_above | (one_above & nonempty[b])
        head2_q = Signal(entry)
        m.d.sync += head2_q.eq(head2)
        # The head is ``head_top`` of the previous cycle (``head_q``), or, after a pick that
        # leaves its bucket non-empty (``advance``), the bucket's new head: next[head], which the
        # read port already holds in the pick's cycle. It is kept in a register of its own
        # (``succ_q``, loaded through its enable: the memory's output feeds that register and
        # nothing else) and chosen after it (``use_succ``). The port is addressed by the head,
        # which is current in the cycle before any take (the head was valid then: pending.py).
        # In the cycle after such a pick the bucket's head register copies it. After a pick
        # that empties its bucket (``jump``) ``head_q`` is ``head2_q``. So the head is current
        # (``fresh``) after such picks and after any cycle that changed nothing; ``top_q`` and
        # ``top_single_q`` are current whenever it is.
        head_q, succ_q, head = Signal(entry), Signal(entry), Signal(entry)
        use_succ = Signal()
        m.d.comb += head.eq(Mux(use_succ, succ_q, head_q))
        fresh = Signal()
        change = Signal()  # a push, pick or clear
        advance, advancing = Signal(), Signal()  # a pick that leaves its bucket non-empty; ...
        jump = Signal()  # a pick that empties its bucket
        take = self.head.ready  # asserted only while the head is valid (pending.py)
        m.d.comb += [
            advance.eq(take & ~top_single_q),
            jump.eq(take & top_single_q),
            rp.addr.eq(head.source),
            self.head.payload.eq(head),
            self.head.valid.eq((self.count != 0) & fresh),
            change.eq(self.clear | self.push_valid | take),
        ]
        m.d.sync += [advancing.eq(advance), fresh.eq(advance | jump | ~change)]
        with m.If(self.clear):
            for b in range(nb):
                m.d.sync += counts[b].eq(0)
            m.d.sync += [self.count.eq(0), nonempty.eq(0), single.eq(0)]
        with m.Elif(self.push_valid):
            pushed = Signal(entry)
            m.d.comb += [pushed.source.eq(self.push_source), pushed.code.eq(self.push_layer)]
            m.d.sync += self.count.eq(self.count + 1)
            for b in range(nb):  # per bucket, like the picks: no multiplexer before the adders
                with m.If(self.push_bucket == b):
                    with m.If(~nonempty[b]):
                        m.d.sync += heads[b].eq(pushed)
                    with m.Else():
                        m.d.comb += [wp.addr.eq(tails[b]), wp.data.eq(pushed)]
                        m.d.comb += wp.en.eq(1)
                    m.d.sync += [
                        tails[b].eq(self.push_source),
                        counts[b].eq(counts[b] + 1),
                        nonempty[b].eq(1),
                        single[b].eq(~nonempty[b]),
                    ]
        with m.Elif(take):
            m.d.sync += self.count.eq(self.count - 1)
            for b in range(nb):  # one decrement per bucket: no multiplexer before the adders
                with m.If(top_q == b):
                    m.d.sync += [counts[b].eq(counts[b] - 1), single[b].eq(counts[b] == 2)]
                    with m.If(top_single_q):
                        m.d.sync += nonempty[b].eq(0)
        with m.If(advance):
            m.d.sync += [succ_q.eq(rp.data), use_succ.eq(1)]
        with m.Elif(jump):
            m.d.sync += [head_q.eq(head2_q), use_succ.eq(0)]
        with m.Elif(advancing):  # the bucket's new head, from succ_q
            for b in range(nb):
                with m.If(top_q == b):
                    m.d.sync += heads[b].eq(succ_q)
        with m.Else():
            m.d.sync += [head_q.eq(head_top), use_succ.eq(0)]
        return m
