"""Collects what the neuron core reports for one sample: the trace, output counts, decision.

:class:`ResultCollector` sits between the core's ``spikes`` and ``summary`` streams and the link
engine (:mod:`.link`), which reads the result back page by page for ``READ_RESULT``
(``docs/protocol.md``). The decision follows the contract (semantics 7, ``sim/result.py``):
``first_to_threshold`` takes the first output spike of the trace; otherwise the output with the
most spikes, ties to the lowest index, is tracked as counts grow (a count only grows, so the
running best after the last spike is the argmax of the final counts). -1 when no output fired.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from unlayered.gateware.memory import COLLISION_FREE
from unlayered.gateware.streams import SpikeRecord, SummaryRecord
from unlayered.sim import Model

__all__ = ["ResultCollector"]


class ResultCollector(wiring.Component):
    """The result of the running (or last) sample of ``model``.

    Parameters
    ----------
    model
        The deployed model (output layer position and size, decision rule).
    trace_depth
        Spikes of the trace stored (0: no trace buffer); later spikes are not stored. The
        trace's length is the core's spike counter.

    Members
    -------
    spikes : In(stream.Signature(SpikeRecord))
        The core's spikes. At most one every other cycle when it is an output spike (its count
        is read, incremented and written back).
    summary : In(stream.Signature(SummaryRecord))
        The core's end-of-sample record; taken after the last spike's count is written.
    clear : In(1)
        Strobe: forget the result (a sample starts). ``clearing`` is high while the counts are
        zeroed (one cycle per output); neither stream is taken meanwhile.
    done : Out(1)
        The summary record of the sample arrived: ``decision``, the counts and the trace are
        final (the counters stay readable on the core's ``counters`` port).
    stored : Out(range(trace_depth + 1))
        Spikes stored since ``clear``.
    decision : Out(signed(32))
    counts_addr, counts_data
        Read port of the output counts (``counts_data`` one cycle after ``counts_addr``).
    trace_addr, trace_data
        Read port of the stored trace (``trace_data`` one cycle after ``trace_addr``).
    """

    def __init__(self, model: Model, trace_depth: int):
        if trace_depth < 0:
            raise ValueError(f"trace_depth must be >= 0, got {trace_depth}")
        self._model = model
        self._depth = trace_depth
        self._n_out = int(model.sizes[-1])
        super().__init__(
            {
                "spikes": In(stream.Signature(SpikeRecord)),
                "summary": In(stream.Signature(SummaryRecord)),
                "clear": In(1),
                "clearing": Out(1),
                "done": Out(1),
                "stored": Out(range(trace_depth + 1)),
                "decision": Out(signed(32)),
                "counts_addr": In(range(max(self._n_out, 2))),
                "counts_data": Out(32),
                "trace_addr": In(range(max(trace_depth, 2))),
                "trace_data": Out(SpikeRecord),
            }
        )

    def elaborate(self, platform):
        m = Module()
        n_out, depth = self._n_out, self._depth
        out_start = int(self._model.layer_starts[-1])

        m.submodules.counts = counts = Memory(
            shape=unsigned(32), depth=max(n_out, 2), init=[], attrs=COLLISION_FREE
        )
        count_rmw = counts.read_port()  # the count of the output that just fired
        count_read = counts.read_port()  # the link engine's
        count_write = counts.write_port()
        m.d.comb += [
            count_read.addr.eq(self.counts_addr),
            self.counts_data.eq(count_read.data),
        ]
        if depth:
            m.submodules.trace = trace = Memory(
                shape=SpikeRecord, depth=max(depth, 2), init=[], attrs=COLLISION_FREE
            )
            trace_read, trace_write = trace.read_port(), trace.write_port()
            m.d.comb += [trace_read.addr.eq(self.trace_addr), self.trace_data.eq(trace_read.data)]

        best_count = Signal(32)
        best_index = Signal(range(max(n_out, 2)))
        first_index = Signal(range(max(n_out, 2)))
        first_seen = Signal()
        bump = Signal()  # an output's count is read this cycle, written back the next
        bump_index = Signal(range(max(n_out, 2)))
        clear_index = Signal(range(max(n_out, 2)))

        if self._model.decision == "first_to_threshold":
            m.d.comb += self.decision.eq(Mux(first_seen, first_index, -1))
        else:
            m.d.comb += self.decision.eq(Mux(best_count != 0, best_index, -1))

        with m.If(self.clear):
            m.d.sync += [
                self.clearing.eq(1),
                clear_index.eq(0),
                self.done.eq(0),
                self.stored.eq(0),
                best_count.eq(0),
                best_index.eq(0),
                first_seen.eq(0),
            ]
        with m.Elif(self.clearing):
            m.d.comb += [count_write.addr.eq(clear_index), count_write.data.eq(0)]
            m.d.comb += count_write.en.eq(1)
            m.d.sync += clear_index.eq(clear_index + 1)
            with m.If(clear_index == n_out - 1):
                m.d.sync += self.clearing.eq(0)
        with m.Elif(bump):
            new = Signal(32)
            m.d.comb += [
                new.eq(count_rmw.data + 1),
                count_write.addr.eq(bump_index),
                count_write.data.eq(new),
                count_write.en.eq(1),
            ]
            with m.If((new > best_count) | ((new == best_count) & (bump_index < best_index))):
                m.d.sync += [best_count.eq(new), best_index.eq(bump_index)]
            m.d.sync += bump.eq(0)
        with m.Else():
            spike = self.spikes.payload
            m.d.comb += self.spikes.ready.eq(1)
            with m.If(self.spikes.valid):
                if depth:
                    with m.If(self.stored < depth):
                        m.d.comb += [
                            trace_write.addr.eq(self.stored),
                            trace_write.data.eq(spike),
                            trace_write.en.eq(1),
                        ]
                        m.d.sync += self.stored.eq(self.stored + 1)
                with m.If(spike.neuron >= out_start):
                    index = spike.neuron - out_start
                    m.d.comb += count_rmw.addr.eq(index)
                    m.d.sync += [bump.eq(1), bump_index.eq(index)]
                    with m.If(~first_seen):
                        m.d.sync += [first_seen.eq(1), first_index.eq(index)]
            with m.Else():
                m.d.comb += self.summary.ready.eq(1)
                with m.If(self.summary.valid):
                    m.d.sync += self.done.eq(1)
        return m
