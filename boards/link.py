"""The device side of the host link in gateware: frames in, commands run on the core, responses out.

:class:`LinkEngine` implements ``docs/protocol.md`` exactly as :class:`~.device_model.DeviceModel`
does in Python (the tests hold the two to the same responses), except that ``ERROR`` responses
carry no message text and the ``cycles`` counter is the core's. It owns the frame receiver and
transmitter (:mod:`.framing`) and the result collector (:mod:`.results`), and drives the neuron
core's ``events`` and ``weights`` streams.

Why it is shaped this way:

- A command is executed only once its whole frame is in the receive buffer and its CRC is
  right, so a damaged frame never reaches the core.
- The last accepted command stays in the receiver's other buffer half and its response in the
  transmitter's slot 0: a retransmission (an identical frame) is answered from slot 0 without
  running the command again. Link errors are answered from slot 1 so slot 0 survives them.
- An ``EVENTS`` frame is checked completely before any record goes to the core, so a refused
  frame changes nothing. "At most once per step" uses two stamp memories indexed by channel:
  ``marks`` holds ``step + 1`` of the step each channel last went to the core in (cleared at
  ``START_SAMPLE``), ``tokens`` a fresh number per step of the frame being checked (tokens are
  never reused without clearing the memory first), so checking never writes ``marks``.
- ``RESET`` during a sample closes it on the core (``END_STEP`` if the step is open, then
  ``END_SAMPLE``) and discards its result: the core's memories need no reset.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from unlayered.gateware.layout import CoreLayout
from unlayered.gateware.memory import COLLISION_FREE
from unlayered.gateware.streams import (
    InputKind,
    InputRecord,
    SpikeRecord,
    SummaryRecord,
    weight_write_layout,
)
from unlayered.sim import Model

from .framing import FrameReceiver, FrameStatus, FrameTransmitter
from .protocol import (
    CRC_SIZE,
    END_STEP,
    HEADER_SIZE,
    PROTOCOL_VERSION,
    SUMMARY_COUNTERS,
    TRACE_RECORD_SIZE,
    ErrorCode,
    InfoReply,
    MsgType,
    PayloadLimits,
)
from .results import ResultCollector

__all__ = ["LinkEngine"]

_IDLE, _RUNNING, _DONE = range(3)  # no result / a sample is being fed / the sample ended
_TOKEN_LIMIT = 1 << 16  # ``tokens`` entries are 16 bits


class LinkEngine(wiring.Component):
    """Runs host-link commands on a neuron core for ``model`` laid out as ``layout``.

    Parameters
    ----------
    model, layout
        The deployed model and its memory layout on the core (lanes, weight depth).
    max_payload
        The largest payload accepted (announced in ``INFO_REPLY``; sizes the buffers).
    trace_depth
        Spikes of a sample's trace stored for ``READ_RESULT`` (announced in ``INFO_REPLY``).
    clock_hz
        The core clock, announced in ``INFO_REPLY`` (0: unknown).

    Members
    -------
    rx : In(stream.Signature(8))
        Bytes from the host (always ready).
    tx : Out(stream.Signature(8))
        Bytes to the host.
    events, weights : Out(stream.Signature(...))
        To the core's ``events`` and ``weights`` streams.
    spikes, summary : In(stream.Signature(...))
        From the core's ``spikes`` and ``summary`` streams.
    counters : In(SummaryRecord)
        The core's counters (the last sample's once its summary record was sent).
    running : Out(1)
        A sample is in progress on the core (fed or still computing).
    computing : Out(1)
        The sample's inputs are complete and the core is still computing it (``READ_RESULT``
        is answered ``BUSY``).
    link_error : Out(1)
        A damaged or out-of-order frame was answered since the last ``RESET``.
    """

    def __init__(
        self,
        model: Model,
        layout: CoreLayout,
        *,
        max_payload: int,
        trace_depth: int,
        clock_hz: int = 0,
    ):
        self._model = model
        self._layout = layout
        self._limits = PayloadLimits(max_payload)
        self._trace_depth = trace_depth
        self._clock_hz = clock_hz
        super().__init__(
            {
                "rx": In(stream.Signature(unsigned(8))),
                "tx": Out(stream.Signature(unsigned(8))),
                "events": Out(stream.Signature(InputRecord)),
                "weights": Out(
                    stream.Signature(
                        weight_write_layout(layout.lanes, layout.weight_depth, model.weight_bits)
                    )
                ),
                "spikes": In(stream.Signature(SpikeRecord)),
                "summary": In(stream.Signature(SummaryRecord)),
                "counters": In(SummaryRecord),
                "running": Out(1),
                "computing": Out(1),
                "link_error": Out(1),
            }
        )

    def info(self) -> InfoReply:
        """What this engine answers to ``INFO``."""
        return InfoReply(
            version=PROTOCOL_VERSION,
            max_payload=self._limits.max_payload,
            lanes=self._layout.lanes,
            weight_bits=self._model.weight_bits,
            weight_depth=self._layout.weight_depth,
            n_inputs=self._model.n_inputs,
            n_outputs=int(self._model.sizes[-1]),
            trace_depth=self._trace_depth,
            clock_hz=self._clock_hz,
        )

    def memory_report(self) -> list[dict]:
        """The engine's memories (name, words, bits per word, what they hold)."""
        capacity = self._limits.max_payload + HEADER_SIZE + CRC_SIZE
        n_in = self._model.n_inputs
        return [
            {"name": "receive buffer", "words": 2 * capacity, "bits": 8,
             "holds": "the frame being received and the last accepted command"},
            {"name": "transmit buffer", "words": capacity + 16, "bits": 8,
             "holds": "the last response (for retransmissions) and a link-error response"},
            {"name": "channel marks", "words": n_in, "bits": 32,
             "holds": "the step each input channel last went to the core in"},
            {"name": "channel tokens", "words": n_in, "bits": 16,
             "holds": "duplicate check of the EVENTS frame being validated"},
            *({"name": f"output counts ({port})", "words": int(self._model.sizes[-1]),
               "bits": 32, "holds": "spikes per output neuron of the last sample; one copy per "
               "read port"} for port in ("collector", "engine")),
            {"name": "trace", "words": self._trace_depth, "bits": 80,
             "holds": "the last sample's spikes (step, group, neuron)"},
        ]  # fmt: skip

    def elaborate(self, platform):
        m = Module()
        model, lay, limits = self._model, self._layout, self._limits
        n_in, n_out = model.n_inputs, int(model.sizes[-1])
        capacity = limits.max_payload + HEADER_SIZE + CRC_SIZE
        wb = model.weight_bits

        m.submodules.receiver = rx = FrameReceiver(capacity)
        m.submodules.transmitter = tx = FrameTransmitter(capacity)
        m.submodules.results = res = ResultCollector(model, self._trace_depth)
        wiring.connect(m, wiring.flipped(self.rx), rx.bytes_in)
        wiring.connect(m, tx.bytes_out, wiring.flipped(self.tx))
        wiring.connect(m, wiring.flipped(self.spikes), res.spikes)
        wiring.connect(m, wiring.flipped(self.summary), res.summary)

        m.submodules.marks = marks = Memory(
            shape=unsigned(32), depth=max(n_in, 2), init=[], attrs=COLLISION_FREE
        )
        m.submodules.tokens = tokens = Memory(
            shape=unsigned(16), depth=max(n_in, 2), init=[], attrs=COLLISION_FREE
        )
        mark_rd, mark_wr = marks.read_port(), marks.write_port()
        token_rd, token_wr = tokens.read_port(), tokens.write_port()

        # ---- session and sample state --------------------------------------------------
        session = Signal()  # a RESET was accepted
        expected = Signal(8)  # the next sequence number
        saved_length = Signal(range(capacity + 1))  # of the response in slot 0
        phase = Signal(2)
        end_sent = Signal()  # END_SAMPLE went to the core
        sample_id = Signal(32)
        step = Signal(32)  # the step the next record belongs to
        step_open = Signal()  # records of ``step`` went to the core
        token = Signal(16)  # the duplicate-check token of the step being validated
        busy = self.computing  # the sample ended but the core is still computing it
        m.d.comb += [
            busy.eq((phase == _DONE) & ~res.done),
            self.running.eq((phase == _RUNNING) | busy),
        ]

        # ---- the command being executed --------------------------------------------------
        seq = Signal(8)
        kind = Signal(8)
        payload_length = Signal(16)
        fixed = Signal(64)  # payload bytes 0..7: every command's fixed fields
        err_code = Signal(8)
        err_arg = Signal(32)
        index = Signal(16)  # loop counter of the current state
        entries = Signal(16)  # entries of a COUNTS or TRACE page
        check_open = Signal()  # the validated records leave a step open
        first_segment = Signal()  # validating records of the step already open on the core

        lw_bank, lw_addr = fixed[0:16], fixed[16:48]
        st_id, st_state = fixed[0:32], fixed[32:64]
        ev_step, ev_flags = fixed[0:32], fixed[32:40]
        rr_part, rr_offset, rr_count = fixed[0:8], fixed[8:40], fixed[40:56]
        lw_count = (payload_length - 6)[1:]
        # Weight addresses and result indices are narrow; a wide field is out of range as soon
        # as a bit above the narrow part is set.
        addr_bits = max(1, lay.weight_depth.bit_length())
        lw_addr_low = lw_addr[:addr_bits]
        lw_addr_wide = lw_addr[addr_bits:] != 0
        index_bits = max(n_out, self._trace_depth).bit_length()
        rr_offset_low = rr_offset[:index_bits]
        rr_offset_wide = rr_offset[index_bits:] != 0
        ev_count = (payload_length - 5)[1:]

        # ---- 16-bit items of the payload (weights, records), one at a time: the low byte is
        # addressed, then the high byte, then the item is held until taken -----------------
        item = Signal(16)
        item_have = Signal()
        item_phase = Signal(range(3))
        item_index = Signal(range(capacity // 2 + 1))
        item_ptr = Signal(range(capacity + 2))  # frame address of the next item's low byte
        item_count = Signal(range(capacity // 2 + 1))
        item_start = Signal()  # comb: restart at ``item_base``
        item_base = Signal(range(capacity + 2))
        item_take = Signal()  # comb: the item is consumed
        item_done = Signal()
        m.d.comb += item_done.eq(item_index == item_count)
        parsing = Signal()
        parse_addr = Signal(range(capacity + 2))
        m.d.comb += rx.rd_addr.eq(Mux(parsing, parse_addr, item_ptr + (item_phase == 1)))
        with m.If(item_start):
            m.d.sync += [
                item_index.eq(0),
                item_ptr.eq(item_base),
                item_have.eq(0),
                item_phase.eq(0),
            ]
        with m.Elif(item_take):
            m.d.sync += [item_have.eq(0), item_index.eq(item_index + 1)]
        with m.Elif(~item_have & ~item_done):
            with m.Switch(item_phase):
                with m.Case(0):
                    m.d.sync += item_phase.eq(1)
                with m.Case(1):
                    m.d.sync += [item[0:8].eq(rx.rd_data), item_phase.eq(2)]
                with m.Case(2):
                    m.d.sync += [
                        item[8:16].eq(rx.rd_data),
                        item_phase.eq(0),
                        item_ptr.eq(item_ptr + 2),
                        item_have.eq(1),
                    ]

        def start_items(base, count):
            m.d.comb += [item_start.eq(1), item_base.eq(base)]
            m.d.sync += item_count.eq(count)

        # ---- response bytes into the transmitter's slot: a state that emits a value stays
        # until its last byte is written, one byte per cycle. Each state selects its own byte,
        # so the only wide multiplexer is per state (not one per value into a shift register).
        e_k = Signal(range(64))  # byte of the value being written
        e_go = Signal()  # comb: a state emits
        e_byte = Signal(8)  # comb: its byte ``e_k``
        e_count = Signal(range(64))  # comb: its length
        e_last = Signal()
        wptr = Signal(range(capacity + 1))
        wslot = Signal()
        m.d.comb += e_last.eq(e_go & (e_k == e_count - 1))
        with m.If(e_go):
            m.d.comb += [
                tx.wr_en.eq(1),
                tx.wr_slot.eq(wslot),
                tx.wr_addr.eq(wptr),
                tx.wr_data.eq(e_byte),
            ]
            m.d.sync += [wptr.eq(wptr + 1), e_k.eq(Mux(e_last, 0, e_k + 1))]

        def emit(value, n_bytes):
            """Write ``n_bytes`` little-endian bytes of ``value``; ``e_last`` on the last."""
            assert len(value) == 8 * n_bytes and n_bytes <= 64
            m.d.comb += [e_go.eq(1), e_byte.eq(value.word_select(e_k, 8)), e_count.eq(n_bytes)]

        def header(kind_: MsgType, length):
            return Cat(Const(int(kind_), 8), seq, length.as_unsigned()[:16])

        def respond(*, slot: int, length, save: bool = False):
            """Send the response in ``slot`` and release the frame (kept as the last accepted
            command with ``save``); then wait for the next frame."""
            m.d.comb += [
                tx.send.eq(1),
                tx.send_slot.eq(slot),
                tx.send_length.eq(length),
                rx.release.eq(1),
                rx.save.eq(save),
            ]
            m.next = "WAIT"

        def refuse(code: ErrorCode, arg=0):
            m.d.sync += [err_code.eq(int(code)), err_arg.eq(arg)]
            m.next = "ERROR"

        def link_fault(code: ErrorCode, seq_, arg=0):
            m.d.sync += [err_code.eq(int(code)), err_arg.eq(arg), seq.eq(seq_), wslot.eq(1)]
            m.next = "ERROR"

        # ---- constants ---------------------------------------------------------------------
        depth = self._trace_depth
        half = 1 << (wb - 1)
        out_page = limits.counts
        trace_page = limits.trace
        info_payload = self.info().payload()
        stored = res.stored  # trace entries readable
        summary_words = Array(
            [
                sample_id,
                res.decision.as_unsigned(),
                Const(n_out, 32),
                self.counters.spikes,  # the trace's length: the core sends every spike
                *(getattr(self.counters, name) for name in SUMMARY_COUNTERS),
            ]
        )
        frame_payload = rx.payload_length
        payload_sizes = {  # the payload size each command must have
            MsgType.RESET: frame_payload == 0,
            MsgType.INFO: frame_payload == 0,
            MsgType.LOAD_WEIGHTS: (frame_payload >= 8) & ~frame_payload[0],
            MsgType.START_SAMPLE: frame_payload == 8,
            MsgType.EVENTS: (frame_payload >= 5) & frame_payload[0],
            MsgType.READ_RESULT: frame_payload == 7,
        }
        known, size_ok = Signal(), Signal()
        with m.Switch(rx.type):
            for command, ok in payload_sizes.items():
                with m.Case(int(command)):
                    m.d.comb += [known.eq(1), size_ok.eq(ok)]

        with m.FSM(name="link"):
            with m.State("WAIT"):
                with m.If(rx.valid & ~tx.busy):
                    m.d.sync += [
                        seq.eq(rx.seq),
                        kind.eq(rx.type),
                        payload_length.eq(rx.payload_length),
                        wptr.eq(0),
                        wslot.eq(0),
                        index.eq(0),
                    ]
                    not_reset = rx.type != int(MsgType.RESET)
                    with m.If(rx.status == FrameStatus.BAD_FRAME):
                        link_fault(ErrorCode.BAD_FRAME, 0)
                    with m.Elif(rx.status == FrameStatus.SHORT):
                        link_fault(ErrorCode.BAD_LENGTH, 0)
                    with m.Elif(rx.status == FrameStatus.BAD_CRC):
                        link_fault(ErrorCode.BAD_CRC, 0)
                    with m.Elif(
                        (rx.payload_length != rx.length - (HEADER_SIZE + CRC_SIZE))
                        | (rx.payload_length > limits.max_payload)
                    ):
                        link_fault(ErrorCode.BAD_LENGTH, 0)
                    with m.Elif(~known):  # answered with the frame's number, also as ``arg``
                        link_fault(ErrorCode.UNKNOWN_COMMAND, rx.seq, rx.seq)
                    with m.Elif(~size_ok):
                        link_fault(ErrorCode.BAD_LENGTH, rx.seq, rx.seq)
                    with m.Elif(rx.same):
                        m.next = "REPLAY"
                    with m.Elif(not_reset & ~session):
                        link_fault(ErrorCode.OUT_OF_ORDER, rx.seq)
                    with m.Elif(not_reset & (rx.seq != expected)):
                        link_fault(ErrorCode.OUT_OF_ORDER, rx.seq, expected)
                    with m.Else():  # accepted: the number is consumed, the response saved
                        m.d.sync += [expected.eq(rx.seq + 1), session.eq(1)]
                        m.next = "PARSE"

            with m.State("LINK_ERROR_SEND"):
                respond(slot=1, length=9)
                m.d.sync += self.link_error.eq(1)

            with m.State("REPLAY"):
                respond(slot=0, length=saved_length)

            with m.State("PARSE"):  # payload bytes 0..7 into ``fixed``, byte 0 lowest
                m.d.comb += [parsing.eq(1), parse_addr.eq(HEADER_SIZE + index)]
                with m.If(index != 0):
                    m.d.sync += fixed.eq(Cat(fixed[8:], rx.rd_data))
                m.d.sync += index.eq(index + 1)
                with m.If(index == 8):
                    m.d.sync += index.eq(0)
                    m.next = "EXEC"

            with m.State("EXEC"):
                with m.Switch(kind):
                    with m.Case(int(MsgType.RESET)):
                        with m.If(self.running):
                            m.next = "ABORT"
                        with m.Else():
                            m.next = "RESET_DONE"
                    with m.Case(int(MsgType.INFO)):
                        m.next = "INFO"
                    with m.Case(int(MsgType.LOAD_WEIGHTS)):
                        with m.If(phase == _RUNNING):
                            refuse(ErrorCode.BAD_STATE)
                        with m.Elif(busy):
                            refuse(ErrorCode.BUSY)
                        with m.Elif(lw_bank >= lay.lanes):
                            refuse(ErrorCode.BAD_PAYLOAD, lw_bank)
                        with m.Elif(lw_addr_wide | (lw_addr_low + lw_count > lay.weight_depth)):
                            refuse(ErrorCode.BAD_PAYLOAD, lw_addr)
                        with m.Else():
                            start_items(HEADER_SIZE + 6, lw_count)
                            m.next = "WEIGHTS_CHECK"
                    with m.Case(int(MsgType.START_SAMPLE)):
                        with m.If(phase == _RUNNING):
                            refuse(ErrorCode.BAD_STATE, sample_id)
                        with m.Elif(busy):
                            refuse(ErrorCode.BUSY)
                        with m.Elif(st_state == 0):
                            refuse(ErrorCode.BAD_PAYLOAD)
                        with m.Else():
                            m.d.comb += res.clear.eq(1)
                            m.next = "START_CLEAR"
                    with m.Case(int(MsgType.EVENTS)):
                        with m.If(ev_flags[1:] != 0):
                            refuse(ErrorCode.BAD_PAYLOAD)
                        with m.Elif(phase != _RUNNING):
                            refuse(ErrorCode.BAD_STATE)
                        with m.Elif(ev_step != step):
                            refuse(ErrorCode.BAD_PAYLOAD, step)
                        with m.Elif(token >= _TOKEN_LIMIT - 1024):  # a frame has < 1024 steps
                            m.next = "TOKENS_CLEAR"
                        with m.Else():
                            m.next = "EVENTS_BEGIN"
                    with m.Case(int(MsgType.READ_RESULT)):
                        total = Signal(index_bits)
                        m.d.comb += total.eq(Mux(rr_part == 1, n_out, stored))
                        page = Mux(rr_part == 1, out_page, trace_page)
                        left = Signal(index_bits)
                        m.d.comb += left.eq(total - rr_offset_low)
                        with m.If(rr_part > 2):
                            refuse(ErrorCode.BAD_PAYLOAD)
                        with m.Elif(phase != _DONE):
                            refuse(ErrorCode.BAD_STATE)
                        with m.Elif(busy):
                            refuse(ErrorCode.BUSY)
                        with m.Elif(rr_part == 0):
                            m.next = "SUMMARY"
                        with m.Elif(rr_offset_wide | (rr_offset_low > total)):
                            refuse(ErrorCode.BAD_PAYLOAD, total)
                        with m.Else():
                            n = Mux(rr_count < page, rr_count, page)
                            m.d.sync += entries.eq(Mux(n < left, n, left))
                            m.next = "PAGE_HEAD"

            # -- RESET
            with m.State("ABORT"):  # close the sample on the core, discard its result
                with m.If((phase == _RUNNING) & ~end_sent):
                    m.d.comb += self.events.valid.eq(1)
                    with m.If(step_open):
                        m.d.comb += self.events.payload.kind.eq(InputKind.END_STEP)
                        with m.If(self.events.ready):
                            m.d.sync += step_open.eq(0)
                    with m.Else():
                        m.d.comb += self.events.payload.kind.eq(InputKind.END_SAMPLE)
                        with m.If(self.events.ready):
                            m.d.sync += end_sent.eq(1)
                with m.Elif(res.done):
                    m.next = "RESET_DONE"

            with m.State("RESET_DONE"):
                m.d.sync += [phase.eq(_IDLE), self.link_error.eq(0)]
                m.next = "OK"

            # -- INFO
            with m.State("INFO"):
                info_length = Const(len(info_payload), 16)
                info = Const(int.from_bytes(info_payload, "little"), 8 * len(info_payload))
                emit(Cat(header(MsgType.INFO_REPLY, info_length), info), 4 + len(info_payload))
                with m.If(e_last):
                    m.next = "FINISH"

            # -- LOAD_WEIGHTS: check every word, then write them
            with m.State("WEIGHTS_CHECK"):
                with m.If(item_done):
                    start_items(HEADER_SIZE + 6, lw_count)
                    m.next = "WEIGHTS_WRITE"
                with m.Elif(item_have):
                    word = item.as_signed()
                    with m.If((word < -half) | (word >= half)):
                        refuse(ErrorCode.BAD_PAYLOAD, lw_addr_low + item_index)
                    with m.Else():
                        m.d.comb += item_take.eq(1)

            with m.State("WEIGHTS_WRITE"):
                with m.If(item_done):
                    m.next = "OK"
                with m.Elif(item_have):
                    m.d.comb += [
                        self.weights.valid.eq(1),
                        self.weights.payload.bank.eq(lw_bank),
                        self.weights.payload.addr.eq(lw_addr_low + item_index),
                        self.weights.payload.data.eq(item[:wb]),
                        item_take.eq(self.weights.ready),
                    ]

            # -- START_SAMPLE: forget the channel marks, then start the core
            with m.State("START_CLEAR"):
                m.d.comb += [mark_wr.addr.eq(index), mark_wr.data.eq(0), mark_wr.en.eq(1)]
                m.d.sync += index.eq(index + 1)
                with m.If(index == n_in - 1):
                    m.next = "START_CORE"

            with m.State("START_CORE"):
                with m.If(~res.clearing):
                    m.d.comb += [
                        self.events.valid.eq(1),
                        self.events.payload.kind.eq(InputKind.START),
                        self.events.payload.data.eq(st_state),
                    ]
                    with m.If(self.events.ready):
                        m.d.sync += [
                            phase.eq(_RUNNING),
                            end_sent.eq(0),
                            step.eq(0),
                            step_open.eq(0),
                            sample_id.eq(st_id),
                        ]
                        m.next = "OK"

            # -- EVENTS: check every record, then send them to the core
            with m.State("TOKENS_CLEAR"):
                m.d.comb += [token_wr.addr.eq(index), token_wr.data.eq(0), token_wr.en.eq(1)]
                m.d.sync += index.eq(index + 1)
                with m.If(index == n_in - 1):
                    m.d.sync += token.eq(0)
                    m.next = "EVENTS_BEGIN"

            with m.State("EVENTS_BEGIN"):
                start_items(HEADER_SIZE + 5, ev_count)
                m.d.sync += [token.eq(token + 1), check_open.eq(step_open), first_segment.eq(1)]
                m.next = "EVENTS_CHECK"

            with m.State("EVENTS_CHECK"):
                m.d.comb += [mark_rd.addr.eq(item), token_rd.addr.eq(item)]
                with m.If(item_done):
                    with m.If(ev_flags[0] & check_open):
                        refuse(ErrorCode.BAD_PAYLOAD)  # the sample ends inside a step
                    with m.Else():
                        start_items(HEADER_SIZE + 5, ev_count)
                        m.next = "EVENTS_COMMIT"
                with m.Elif(item_have):
                    with m.If(item == END_STEP):
                        m.d.comb += item_take.eq(1)
                        m.d.sync += [check_open.eq(0), first_segment.eq(0), token.eq(token + 1)]
                    with m.Elif(item >= n_in):
                        refuse(ErrorCode.BAD_PAYLOAD, item_index)
                    with m.Else():
                        m.next = "EVENTS_DUPLICATE"

            with m.State("EVENTS_DUPLICATE"):  # the stamps of channel ``item`` are read
                m.d.comb += [mark_rd.addr.eq(item), token_rd.addr.eq(item)]
                committed = first_segment & (mark_rd.data == step + 1)
                with m.If(committed | (token_rd.data == token)):
                    refuse(ErrorCode.BAD_PAYLOAD, item_index)
                with m.Else():
                    m.d.comb += [
                        token_wr.addr.eq(item),
                        token_wr.data.eq(token),
                        token_wr.en.eq(1),
                        item_take.eq(1),
                    ]
                    m.d.sync += check_open.eq(1)
                    m.next = "EVENTS_CHECK"

            with m.State("EVENTS_COMMIT"):
                with m.If(item_done):
                    with m.If(ev_flags[0]):
                        m.next = "EVENTS_END"
                    with m.Else():
                        m.next = "OK"
                with m.Elif(item_have):
                    end_of_step = item == END_STEP
                    m.d.comb += [
                        self.events.valid.eq(1),
                        self.events.payload.kind.eq(
                            Mux(end_of_step, InputKind.END_STEP, InputKind.EVENT)
                        ),
                        self.events.payload.data.eq(item),
                    ]
                    with m.If(self.events.ready):
                        m.d.comb += item_take.eq(1)
                        with m.If(end_of_step):
                            m.d.sync += [step.eq(step + 1), step_open.eq(0)]
                        with m.Else():
                            m.d.comb += [
                                mark_wr.addr.eq(item),
                                mark_wr.data.eq(step + 1),
                                mark_wr.en.eq(1),
                            ]
                            m.d.sync += step_open.eq(1)

            with m.State("EVENTS_END"):
                m.d.comb += [
                    self.events.valid.eq(1),
                    self.events.payload.kind.eq(InputKind.END_SAMPLE),
                ]
                with m.If(self.events.ready):
                    m.d.sync += [phase.eq(_DONE), end_sent.eq(1)]
                    m.next = "OK"

            # -- READ_RESULT
            with m.State("SUMMARY"):
                emit(header(MsgType.SUMMARY, Const(4 * len(summary_words), 16)), 4)
                with m.If(e_last):
                    m.next = "SUMMARY_BODY"

            with m.State("SUMMARY_BODY"):  # word by word: one 32-bit multiplexer, not 44 bytes'
                emit(summary_words[index], 4)
                with m.If(e_last):
                    m.d.sync += index.eq(index + 1)
                    with m.If(index == len(summary_words) - 1):
                        m.next = "FINISH"

            with m.State("PAGE_HEAD"):
                counts = rr_part == 1
                length = Mux(counts, 4 + 4 * entries, 4 + TRACE_RECORD_SIZE * entries)
                kind_ = Mux(counts, Const(int(MsgType.COUNTS), 8), Const(int(MsgType.TRACE), 8))
                emit(Cat(kind_, seq, length[:16], rr_offset), 8)
                with m.If(e_last):
                    m.next = "PAGE_ADDRESS"

            with m.State("PAGE_ADDRESS"):
                m.d.comb += [
                    res.counts_addr.eq(rr_offset_low + index),
                    res.trace_addr.eq(rr_offset_low + index),
                ]
                with m.If(index == entries):
                    m.next = "FINISH"
                with m.Else():
                    m.next = "PAGE_ENTRY"

            with m.State("PAGE_ENTRY"):  # the entry's read data is valid now
                m.d.comb += [
                    res.counts_addr.eq(rr_offset_low + index),
                    res.trace_addr.eq(rr_offset_low + index),
                ]
                if depth:
                    with m.If(rr_part == 1):
                        emit(res.counts_data, 4)
                    with m.Else():
                        emit(res.trace_data.as_value(), TRACE_RECORD_SIZE)
                else:  # no trace buffer: no TRACE entry is ever read
                    emit(res.counts_data, 4)
                with m.If(e_last):
                    m.d.sync += index.eq(index + 1)
                    m.next = "PAGE_ADDRESS"

            # -- the response of an accepted command, saved in slot 0
            with m.State("OK"):
                emit(header(MsgType.OK, Const(0, 16)), 4)
                with m.If(e_last):
                    m.next = "FINISH"

            with m.State("ERROR"):  # a command error (slot 0, saved) or a link error (slot 1)
                emit(Cat(header(MsgType.ERROR, Const(5, 16)), err_code, err_arg), 9)
                with m.If(e_last & wslot):
                    m.next = "LINK_ERROR_SEND"
                with m.Elif(e_last):
                    m.next = "FINISH"

            with m.State("FINISH"):
                respond(slot=0, length=wptr, save=True)
                m.d.sync += saved_length.eq(wptr)
        return m
