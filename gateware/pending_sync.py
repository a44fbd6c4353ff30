"""``sync`` pending structure (semantics 6.1): pending flags scanned in ascending source order."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from .memory import COLLISION_FREE
from .pending import pending_ports

__all__ = ["PendingSync"]

WORD_BITS = 4
WORD = 1 << WORD_BITS  # flags per memory word


class PendingSync(wiring.Component):
    """The lowest pending source of the lowest pending layer.

    A one-bit flag per source, 16 to a word of a memory (source ``s``: bit ``s % 16`` of word
    ``s // 16``), a count per layer, and a scan over words. Sources are numbered layer by layer,
    so the lowest pending source is in the lowest pending layer. ``lowest`` (the lowest layer
    code with a pending entry) lets the core end a group when its layer is exhausted, so groups
    never mix layers. ``clear`` walks the flag memory, a word per cycle (``busy`` meanwhile); it
    is needed only after drops or an early stop.

    The scan keeps word ``cw``, below which nothing is pending, in a register ``cur`` (its flags
    not yet presented); the memory's read port fetches word ``cw + 1`` ahead. The head is
    ``cw * 16`` plus the lowest bit of ``cur`` (a priority encoder on the register), found in
    the cycle after ``cur`` is loaded; that bit then leaves ``cur``. A take writes ``cur`` (the
    word less the head, nothing pending below it) back to the memory and presents the next bit
    of ``cur`` in the next cycle; with ``cur`` empty it loads the prefetched word instead and
    the head follows a cycle later. An empty word costs a cycle.

    A push sets its flag by a read-modify-write of its word (read in the push cycle, written in
    the next); the word being written is forwarded to a read of the same word in that cycle,
    whose memory output is undefined (``COLLISION_FREE``). It updates the scan from registers:
    into word ``cw`` or above, its bit joins ``cur`` (if in ``cw``), the head's bit goes back
    into ``cur`` and the head is found again in the next cycle; below ``cw``, or with nothing
    pending, its word holds no other entry, so the scan restarts there with ``cur`` its bit.
    Either way a head in word ``cw`` is valid two cycles after the push.

    Parameters
    ----------
    n_sources
        ``n_inputs + N``.
    n_layers
        Neuron layers (layer codes ``0 .. n_layers``, 0 for inputs).
    n_buckets
        Unused.
    """

    def __init__(self, *, n_sources: int, n_layers: int, n_buckets: int):
        self._n_sources = n_sources
        self._n_layers = n_layers
        super().__init__(pending_ports(n_sources, n_layers, n_buckets))

    def elaborate(self, platform):
        m = Module()
        ns, nl = self._n_sources, self._n_layers
        nw = -(-ns // WORD)  # words of flags
        # Two more words, never written: the prefetch beyond the last word (cw + 2 <= nw + 1)
        # reads zeros.
        m.submodules.flags = mem = Memory(shape=WORD, depth=nw + 2, init=[], attrs=COLLISION_FREE)
        wp = mem.write_port()
        rp = mem.read_port()

        layer_counts = [Signal(range(ns + 1), name=f"count_l{i}") for i in range(nl + 1)]
        # nonempty[i] == (layer_counts[i] != 0) and single[i] == (layer_counts[i] == 1),
        # registers, so that ``lowest`` and ``last`` start at flip-flops (not behind the
        # counts' compares)
        nonempty = Signal(nl + 1)
        single = Signal(nl + 1)
        for i in reversed(range(nl + 1)):  # the last assignment wins: the lowest non-empty
            with m.If(nonempty[i]):
                m.d.comb += [self.lowest.eq(i), self.last.eq(single[i])]
        pending = nonempty.any()  # count != 0

        cw = Signal(range(nw + 1))  # the scan's word: no entry is pending below it
        cur = Signal(WORD)  # word cw's pending flags not yet presented (above hb while found)
        found = Signal()  # the head is valid: source cw * WORD + hb
        hb = Signal(WORD_BITS)
        nx_ok = Signal()  # rdata is word cw + 1 (the prefetch)
        pw_valid = Signal()  # a push's write is due: word pw_addr, read last cycle, | bit pw_bit
        pw_addr = Signal(range(nw))
        pw_bit = Signal(WORD_BITS)
        fw_hit = Signal()  # last cycle's read collided with the push write: use fw_data
        fw_data = Signal(WORD)
        clearing = Signal()
        clr_addr = Signal(range(nw + 1))

        rdata = Signal(WORD)  # the word read last cycle, as it is after last cycle's write
        m.d.comb += rdata.eq(Mux(fw_hit, fw_data, rp.data))
        first = Signal(WORD_BITS)  # the lowest set bit of cur

        def lowest4(bits):
            """The index of the lowest set bit of four (3 if none)."""
            return Mux(bits[0], 0, Mux(bits[1], 1, Mux(bits[2], 2, 3)))

        # A tree, not a chain of 16 multiplexers: the lowest set bit of each nibble, the lowest
        # non-empty nibble.
        nibbles = [cur[4 * k : 4 * k + 4] for k in range(WORD // 4)]
        any4 = Cat(*(nib.any() for nib in nibbles))
        low4 = [lowest4(nib) for nib in nibbles]
        m.d.comb += first.eq(
            Cat(
                Mux(any4[0], low4[0], Mux(any4[1], low4[1], Mux(any4[2], low4[2], low4[3]))),
                lowest4(any4),
            )
        )
        rest = cur & (cur - 1)[:WORD]  # cur less that bit

        ws = self.push_source[WORD_BITS:][: len(cw)]  # the push's word (< nw) and bit
        bs = self.push_source[:WORD_BITS]
        take = self.head.ready  # asserted only while the head is valid (pending.py)
        # Advance: load the prefetched word cw + 1 into cur, and prefetch the one after (flat,
        # for a short path to the read address; what a clear reads is never used).
        adv = Signal()
        m.d.comb += [
            adv.eq((cur == 0) & (take | (~found & pending & nx_ok))),
            rp.addr.eq(Mux(self.push_valid, ws, Mux(adv, cw + 2, cw + 1))),
            self.head.valid.eq(found),
            self.head.payload.source.eq(hb | (cw << WORD_BITS)),
            self.head.payload.code.eq(self.lowest),  # the head is in the lowest layer
            self.busy.eq(clearing),
        ]
        # Only the push write can meet a read of its word (a push's or the prefetch; nothing
        # takes or advances in a cycle after a push): forward it, from registers.
        m.d.sync += [
            fw_hit.eq(pw_valid & (pw_addr == Mux(self.push_valid, ws, cw + 1))),
            fw_data.eq(wp.data),
            pw_valid.eq(0),
            nx_ok.eq(1),
        ]

        with m.If(self.clear | clearing):
            m.d.comb += [wp.addr.eq(clr_addr), wp.data.eq(0), wp.en.eq(1)]
            m.d.sync += [
                clearing.eq(clr_addr != nw - 1),
                clr_addr.eq(clr_addr + 1),
                found.eq(0),
                nx_ok.eq(0),
                cw.eq(0),
                cur.eq(0),
                self.count.eq(0),
            ]
            with m.If(self.clear):
                m.d.comb += wp.addr.eq(0)
                m.d.sync += [clearing.eq(nw > 1), clr_addr.eq(1)]
            for i in range(nl + 1):
                m.d.sync += layer_counts[i].eq(0)
            m.d.sync += [nonempty.eq(0), single.eq(0)]
        with m.Else():
            with m.If(pw_valid):
                m.d.comb += [
                    wp.addr.eq(pw_addr),
                    wp.data.eq(rdata | (1 << pw_bit)),
                    wp.en.eq(1),
                ]
            with m.If(self.push_valid):
                for i in range(nl + 1):  # per layer: no multiplexer before the adders
                    with m.If(self.push_layer == i):
                        m.d.sync += [
                            layer_counts[i].eq(layer_counts[i] + 1),
                            nonempty[i].eq(1),
                            single[i].eq(layer_counts[i] == 0),
                        ]
                m.d.sync += [
                    self.count.eq(self.count + 1),
                    found.eq(0),
                    nx_ok.eq(0),
                    pw_valid.eq(1),
                    pw_addr.eq(ws),
                    pw_bit.eq(bs),
                ]
                # Below cw, or with nothing pending, the push's word holds nothing else: the
                # scan restarts there. Else the head, if any, goes back into cur (found again
                # in the next cycle), and the push's bit too if in word cw.
                restart = ~pending | (ws < cw)
                m.d.sync += cur.eq(
                    Mux(restart, 0, cur | Mux(found, 1 << hb, 0))
                    | Mux(~pending | (ws <= cw), 1 << bs, 0)
                )
                with m.If(restart):
                    m.d.sync += cw.eq(ws)
            with m.Elif(take):
                # The memory keeps word cw less the head (and nothing below it: cur).
                m.d.comb += [wp.addr.eq(cw), wp.data.eq(cur), wp.en.eq(1)]
                for i in range(nl + 1):  # the head is in the lowest non-empty layer
                    with m.If(self.lowest == i):
                        m.d.sync += [
                            layer_counts[i].eq(layer_counts[i] - 1),
                            nonempty[i].eq(layer_counts[i] != 1),
                            single[i].eq(layer_counts[i] == 2),
                        ]
                m.d.sync += self.count.eq(self.count - 1)
                with m.If(cur != 0):  # the next head is in the same word
                    m.d.sync += hb.eq(first)
                with m.Else():  # adv: the prefetch is valid (nothing pushed last cycle)
                    m.d.sync += [found.eq(0), cw.eq(cw + 1)]
            with m.Elif(~found & (cur != 0)):
                m.d.sync += [found.eq(1), hb.eq(first)]
            with m.Elif(adv):  # word cw is exhausted
                m.d.sync += cw.eq(cw + 1)
            # cur on a take or while no head is found: less the bit presented, or the
            # prefetched word on an advance (written flat: ``cur != 0`` selects last).
            with m.If(~self.push_valid & (take | ~found)):
                m.d.sync += cur.eq(Mux(cur != 0, rest, Mux(take | (pending & nx_ok), rdata, 0)))
        return m
