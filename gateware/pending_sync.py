"""``sync`` pending structure (semantics 6.1): pending flags scanned in ascending source order."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from .memory import COLLISION_FREE
from .pending import pending_ports

__all__ = ["PendingSync"]


class PendingSync(wiring.Component):
    """The lowest pending source of the lowest pending layer.

    A one-bit flag per source in a memory, a count per layer, and a scan cursor. Sources are
    numbered layer by layer, so the lowest pending source is in the lowest pending layer: the
    scanner reads flags from the cursor upwards (one per cycle, pipelined) and presents the first
    set one as ``head``. Every pending entry is at or above the cursor; a push below it moves the
    cursor down and restarts the scan. ``lowest`` (the lowest layer code with a pending entry)
    lets the core end a group when its layer is exhausted, so groups never mix layers. ``clear``
    walks the flag memory (``busy`` meanwhile); it is needed only after drops or an early stop.

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
        m.submodules.flags = mem = Memory(shape=1, depth=max(ns, 2), init=[], attrs=COLLISION_FREE)
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

        cursor = Signal(range(ns + 1))  # next flag to read
        rd_valid = Signal()  # a read of flag rd_addr is in flight
        rd_addr = Signal(range(ns + 1))
        found = Signal()
        head = Signal(16)
        clearing = Signal()
        clr_addr = Signal(range(ns + 1))
        m.d.comb += [
            self.head.valid.eq(found),
            self.head.payload.eq(head),
            self.busy.eq(clearing),
            rp.addr.eq(cursor),
        ]
        hit = rd_valid & rp.data
        take = self.head.ready  # asserted only while the head is valid (pending.py)

        with m.If(self.clear | clearing):
            m.d.comb += [wp.addr.eq(clr_addr), wp.data.eq(0), wp.en.eq(1)]
            m.d.sync += [
                clearing.eq(clr_addr != ns - 1),
                clr_addr.eq(clr_addr + 1),
                found.eq(0),
                rd_valid.eq(0),
                cursor.eq(0),
                self.count.eq(0),
            ]
            with m.If(self.clear):
                m.d.comb += wp.addr.eq(0)
                m.d.sync += [clearing.eq(ns > 1), clr_addr.eq(1)]
            for i in range(nl + 1):
                m.d.sync += layer_counts[i].eq(0)
            m.d.sync += [nonempty.eq(0), single.eq(0)]
        with m.Elif(self.push_valid):
            m.d.comb += [wp.addr.eq(self.push_source), wp.data.eq(1), wp.en.eq(1)]
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
                rd_valid.eq(0),
            ]
            # Restart the scan at the lowest place an entry can be.
            low = Signal.like(cursor)
            m.d.comb += low.eq(cursor)
            with m.If(found):
                m.d.comb += low.eq(head)
            with m.Elif(rd_valid):
                m.d.comb += low.eq(rd_addr)
            with m.If(self.push_source < low):
                m.d.sync += cursor.eq(self.push_source)
            with m.Else():
                m.d.sync += cursor.eq(low)
        with m.Elif(take):
            m.d.comb += [wp.addr.eq(head), wp.data.eq(0), wp.en.eq(1)]
            for i in range(nl + 1):  # the head is in the lowest non-empty layer
                with m.If(self.lowest == i):
                    m.d.sync += [
                        layer_counts[i].eq(layer_counts[i] - 1),
                        nonempty[i].eq(layer_counts[i] != 1),
                        single[i].eq(layer_counts[i] == 2),
                    ]
            m.d.sync += [
                self.count.eq(self.count - 1),
                found.eq(0),
                rd_valid.eq(0),
                cursor.eq(head + 1),
            ]
        with m.Elif(~found & (self.count != 0)):
            with m.If(hit):
                m.d.sync += [found.eq(1), head.eq(rd_addr), rd_valid.eq(0), cursor.eq(rd_addr + 1)]
            with m.Else():
                m.d.sync += [rd_valid.eq(1), rd_addr.eq(cursor), cursor.eq(cursor + 1)]
        return m
