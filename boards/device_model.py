"""The device side of the host link protocol, in Python, on top of the reference simulator.

:class:`DeviceModel` behaves as a board is specified to (``docs/protocol.md``): it parses frames,
checks sequence numbers, keeps the last response for retransmissions, holds a weight image that
``LOAD_WEIGHTS`` rewrites word by word exactly as the core's weight write port does
(:class:`~unlayered.gateware.layout.CoreLayout`), buffers a sample's input records and, at the end
of the sample, runs it in the reference simulator (``unlayered.sim.reference.run_sample``, the
contract as plain Python). The host code is tested against it end to end; the simulated board
top must answer the same bytes (except the ``cycles`` counter, which the model reports as 0).
"""

from __future__ import annotations

import enum
from dataclasses import replace

import numpy as np

from unlayered.gateware.layout import CoreLayout
from unlayered.sim import Model
from unlayered.sim.reference import run_sample
from unlayered.sim.result import SampleResult

from .protocol import (
    COMMANDS,
    END_STEP,
    MAX_PAYLOAD,
    MAX_SEQ,
    PROTOCOL_VERSION,
    CountsChunk,
    ErrorCode,
    ErrorReply,
    Events,
    FrameReader,
    Info,
    InfoReply,
    LengthError,
    LoadWeights,
    Message,
    Ok,
    Packet,
    PayloadError,
    PayloadLimits,
    ProtocolError,
    ReadResult,
    Reset,
    ResultPart,
    StartSample,
    Summary,
    TraceChunk,
    decode_message,
    encode_message,
)

__all__ = ["DeviceModel", "weights_from_image"]


class Phase(enum.Enum):
    IDLE = "idle"  # no sample, no result
    RUNNING = "running"  # a sample was started and has not ended
    DONE = "done"  # the last sample ended; its result can be read


class _Refusal(Exception):
    """A command-level error: answered, cached and consuming the sequence number."""

    def __init__(self, code: ErrorCode, message: str, arg: int = 0):
        super().__init__(message)
        self.reply = ErrorReply(code, arg, message)


def weights_from_image(layout: CoreLayout, model: Model, image: np.ndarray) -> tuple:
    """The weight matrices ``[target, source]`` that a weight-bank image holds (inverse of
    :meth:`CoreLayout.weight_image`; padding words are ignored, as the core masks them)."""
    weights = []
    for layer, w in enumerate(model.weights):
        out = np.zeros(np.shape(w), dtype=np.int64)
        big_k = layout.cycles[layer]
        for source in range(out.shape[1]):
            base = layout.row_start[layer] + source * big_k
            for b in range(layout.lanes):
                for k in range(layout.bank_count[layer][b]):
                    target = layout.lanes * (layout.bank_offset[layer][b] + k) + b
                    out[target - layout.starts[layer], source] = image[b, base + k]
        weights.append(out)
    return tuple(weights)


class DeviceModel:
    """A board running ``model`` on a core with ``lanes`` lanes, as the protocol specifies.

    Parameters
    ----------
    model
        The artifact the board was built for; its weights are the initial weight image.
    lanes
        Lanes of the core (the weight image's banks).
    busy_reads
        After a sample ends, answer this many commands that need the result (or the idle core)
        with BUSY, as a board does while the core still computes.
    max_payload, trace_depth
        The limits a board announces in ``INFO_REPLY``: the largest payload it accepts (a
        longer one is answered ``BAD_LENGTH``) and how many spikes of a trace it stores (the
        rest are counted, not stored; ``TRACE`` reads end there). Default: no limit.
    clock_hz
        The core clock announced in ``INFO_REPLY`` (0: unknown; the model counts no cycles).

    Members
    -------
    executed
        ``sample_id`` of every sample run, in order: a test checks that none ran twice.
    """

    def __init__(
        self,
        model: Model,
        lanes: int = 1,
        *,
        busy_reads: int = 0,
        max_payload: int = MAX_PAYLOAD,
        trace_depth: int = 0xFFFF_FFFF,
        clock_hz: int = 0,
    ):
        self._model = model
        self.limits = PayloadLimits(max_payload)
        self.trace_depth = trace_depth
        self.clock_hz = clock_hz
        self._stale_weights = False
        self.layout = CoreLayout.from_model(model, lanes)
        self.image = self.layout.weight_image(model)
        self.busy_reads = busy_reads
        self.executed: list[int] = []
        self._reader = FrameReader()
        self._expected: int | None = None  # no session before the first RESET
        self._last: tuple[Packet, bytes] | None = None
        self._reset_state()

    @property
    def model(self) -> Model:
        """The artifact with the weights the image holds now."""
        if self._stale_weights:
            weights = weights_from_image(self.layout, self._model, self.image)
            self._model = replace(self._model, weights=weights)
            self._stale_weights = False
        return self._model

    def _reset_state(self) -> None:
        self.phase = Phase.IDLE
        self._sample_id = 0
        self._state = 0
        self._steps: list[list[int]] = []
        self._open: list[int] = []
        self._result: SampleResult | None = None
        self._busy = 0

    # ---- the byte stream

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the host; return the bytes of every response they caused."""
        out = bytearray()
        for item in self._reader.feed(data):
            out += self._answer(item)
        return bytes(out)

    def _answer(self, item: Packet | ProtocolError) -> bytes:
        if isinstance(item, ProtocolError):  # frame-level fault: the seq cannot be trusted
            return encode_message(ErrorReply(item.code, 0, str(item)), 0)
        packet = item
        if len(packet.payload) > self.limits.max_payload:
            error = LengthError(
                f"payload of {len(packet.payload)} bytes exceeds {self.limits.max_payload}"
            )
            return encode_message(ErrorReply(error.code, 0, str(error)), 0)
        try:
            message = decode_message(packet, allowed=COMMANDS)
        except PayloadError as exc:
            message = exc  # a well-formed frame with a bad field: answered as the command
        except ProtocolError as exc:
            return encode_message(ErrorReply(exc.code, packet.seq, str(exc)), packet.seq)
        if self._last is not None and packet == self._last[0]:
            return self._last[1]  # a retransmission: the same answer, not done again
        if not isinstance(message, Reset):
            if self._expected is None:
                return self._link_error(packet, "no session: send RESET first")
            if packet.seq != self._expected:
                return self._link_error(
                    packet,
                    f"sequence number {packet.seq}, expected {self._expected}",
                    self._expected,
                )
        try:
            if isinstance(message, PayloadError):
                raise _Refusal(ErrorCode.BAD_PAYLOAD, str(message))
            reply = self._execute(message)
        except _Refusal as refusal:
            reply = refusal.reply
        response = encode_message(reply, packet.seq)
        self._last = (packet, response)
        self._expected = (packet.seq + 1) % MAX_SEQ
        return response

    def _link_error(self, packet: Packet, message: str, arg: int = 0) -> bytes:
        return encode_message(ErrorReply(ErrorCode.OUT_OF_ORDER, arg, message), packet.seq)

    # ---- commands

    def _execute(self, message: Message) -> Message:
        if isinstance(message, Reset):
            self._reset_state()
            return Ok()
        if isinstance(message, Info):
            return InfoReply(
                version=PROTOCOL_VERSION,
                max_payload=self.limits.max_payload,
                lanes=self.layout.lanes,
                weight_bits=self._model.weight_bits,
                weight_depth=self.layout.weight_depth,
                n_inputs=self._model.n_inputs,
                n_outputs=self._model.sizes[-1],
                trace_depth=self.trace_depth,
                clock_hz=self.clock_hz,
            )
        if isinstance(message, LoadWeights):
            return self._load_weights(message)
        if isinstance(message, StartSample):
            return self._start(message)
        if isinstance(message, Events):
            return self._events(message)
        if isinstance(message, ReadResult):
            return self._read(message)
        raise AssertionError(f"unhandled command {message!r}")  # pragma: no cover

    def _check_not_computing(self, what: str) -> None:
        if self.phase is Phase.DONE and self._busy:
            self._busy -= 1
            raise _Refusal(ErrorCode.BUSY, f"{what}: the core is still computing", self._busy)

    def _load_weights(self, m: LoadWeights) -> Message:
        if self.phase is Phase.RUNNING:
            raise _Refusal(
                ErrorCode.BAD_STATE, f"LOAD_WEIGHTS: sample {self._sample_id} is in progress"
            )
        self._check_not_computing("LOAD_WEIGHTS")
        if m.bank >= self.layout.lanes:
            raise _Refusal(
                ErrorCode.BAD_PAYLOAD,
                f"LOAD_WEIGHTS: bank {m.bank} does not exist (lanes {self.layout.lanes})",
                m.bank,
            )
        end = m.addr + len(m.words)
        if end > self.layout.weight_depth:
            raise _Refusal(
                ErrorCode.BAD_PAYLOAD,
                f"LOAD_WEIGHTS: addresses {m.addr}..{end - 1} exceed the weight depth "
                f"{self.layout.weight_depth}",
                m.addr,
            )
        half = 1 << (self._model.weight_bits - 1)
        for i, w in enumerate(m.words):
            if not -half <= w < half:
                raise _Refusal(
                    ErrorCode.BAD_PAYLOAD,
                    f"LOAD_WEIGHTS: weight {w} at address {m.addr + i} does not fit in "
                    f"{self._model.weight_bits} bits",
                    m.addr + i,
                )
        self.image[m.bank, m.addr : end] = m.words
        self._stale_weights = True
        return Ok()

    def _start(self, m: StartSample) -> Message:
        if self.phase is Phase.RUNNING:
            raise _Refusal(
                ErrorCode.BAD_STATE,
                f"START_SAMPLE: sample {self._sample_id} is in progress",
                self._sample_id,
            )
        self._check_not_computing("START_SAMPLE")
        if m.state == 0:
            raise _Refusal(ErrorCode.BAD_PAYLOAD, "START_SAMPLE: random state 0 is not allowed")
        self._reset_state()
        self.phase = Phase.RUNNING
        self._sample_id, self._state = m.sample_id, m.state
        return Ok()

    def _events(self, m: Events) -> Message:
        if self.phase is not Phase.RUNNING:
            raise _Refusal(ErrorCode.BAD_STATE, "EVENTS: no sample was started")
        if m.step != len(self._steps):
            raise _Refusal(
                ErrorCode.BAD_PAYLOAD,
                f"EVENTS: records for step {m.step}, the current step is {len(self._steps)}",
                len(self._steps),
            )
        # Check everything first, so that a refused command changes nothing.
        steps, current = len(self._steps), set(self._open)
        for i, record in enumerate(m.records):
            if record == END_STEP:
                steps, current = steps + 1, set()
            elif record >= self._model.n_inputs:
                raise _Refusal(
                    ErrorCode.BAD_PAYLOAD,
                    f"EVENTS: record {i}: channel {record} is not an input "
                    f"({self._model.n_inputs} channels)",
                    i,
                )
            elif record in current:
                raise _Refusal(
                    ErrorCode.BAD_PAYLOAD,
                    f"EVENTS: record {i}: channel {record} occurs twice in step {steps}",
                    i,
                )
            else:
                current.add(record)
        if m.end_sample and current:
            raise _Refusal(
                ErrorCode.BAD_PAYLOAD, f"EVENTS: end of sample inside step {steps} (no END_STEP)"
            )
        for record in m.records:
            if record == END_STEP:
                self._steps.append(self._open)
                self._open = []
            else:
                self._open.append(record)
        if m.end_sample:
            self._result = run_sample(
                self.model,
                [np.asarray(s, dtype=np.int64) for s in self._steps],
                state=self._state,
                sample_id=self._sample_id,
            )
            self.executed.append(self._sample_id)
            self.phase = Phase.DONE
            self._busy = self.busy_reads
        return Ok()

    def _read(self, m: ReadResult) -> Message:
        if self.phase is not Phase.DONE:
            raise _Refusal(ErrorCode.BAD_STATE, f"READ_RESULT: no result ({self.phase.value})")
        self._check_not_computing("READ_RESULT")
        r = self._result
        if m.part is ResultPart.SUMMARY:
            return Summary(
                sample_id=r.sample_id,
                decision=r.decision,
                n_outputs=len(r.output_counts),
                trace_length=len(r.trace),
                counters=(
                    r.steps,
                    int(r.spikes.sum()),
                    r.synops,
                    r.groups,
                    r.dropped,
                    r.input_events,
                    0,  # cycles: the model has none
                ),
            )
        values = r.output_counts if m.part is ResultPart.COUNTS else r.trace[: self.trace_depth]
        if m.offset > len(values):
            raise _Refusal(
                ErrorCode.BAD_PAYLOAD,
                f"READ_RESULT: offset {m.offset} is past the end ({len(values)} entries)",
                len(values),
            )
        if m.part is ResultPart.COUNTS:
            n = min(m.count, self.limits.counts)
            return CountsChunk(m.offset, tuple(int(c) for c in values[m.offset : m.offset + n]))
        n = min(m.count, self.limits.trace)
        rows = values[m.offset : m.offset + n]
        return TraceChunk(m.offset, tuple(tuple(int(x) for x in row) for row in rows))
