"""The host side of the host link: :class:`HostLink` runs samples on a board over any byte link.

The link is stop-and-wait: one command is outstanding at a time. A command that gets no valid
response within ``timeout`` (lost, corrupted, stalled) is sent again with the same sequence
number, at most ``retries`` times; the device answers a retransmission from its saved response
without doing the command twice, so no sample is lost or run twice (``docs/protocol.md``).

A transport is anything with ``write(data: bytes) -> None`` and ``read(n: int, timeout: float)
-> bytes`` that returns between 1 and ``n`` bytes as soon as some are available, or ``b""`` when
none arrived within ``timeout`` seconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from unlayered.sim.events import EventSamples
from unlayered.sim.result import SampleResult
from unlayered.sim.rng import sample_seed

from .protocol import (
    END_STEP,
    MAX_SEQ,
    SUMMARY_COUNTERS,
    CountsChunk,
    DeviceBusyError,
    DeviceError,
    ErrorCode,
    ErrorReply,
    Events,
    FrameReader,
    Info,
    InfoReply,
    LinkTimeoutError,
    LoadWeights,
    Message,
    Ok,
    Packet,
    PayloadLimits,
    ProtocolError,
    ReadResult,
    Reset,
    ResultPart,
    SequenceError,
    StartSample,
    Summary,
    TraceChunk,
    chunks,
    decode_message,
    encode_message,
)

__all__ = ["BoardResult", "HostLink", "LinkStats", "Transport"]

# Errors that a corrupted or lost frame can cause: answered by sending the command again.
_RETRY_CODES = frozenset({ErrorCode.BAD_FRAME, ErrorCode.BAD_CRC, ErrorCode.BAD_LENGTH})


class Transport(Protocol):
    """A byte link to a device (serial port, simulated board top, loopback)."""

    def write(self, data: bytes) -> None: ...

    def read(self, n: int, timeout: float) -> bytes: ...


@dataclass
class LinkStats:
    """What the link went through: commands, retransmissions and why, stale responses."""

    commands: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    corrupt_responses: int = 0
    error_responses: int = 0
    stale_responses: int = 0
    busy: int = 0


@dataclass(frozen=True, eq=False)
class BoardResult:
    """What the board reports for one sample.

    Members
    -------
    counters
        The core's summary record: ``steps``, ``spikes`` (all layers), ``synops``, ``groups``,
        ``dropped``, ``input_events``, ``cycles``.
    trace
        ``(K, 3)`` rows ``(step, group, neuron)``, or ``None`` if not read. When the sample
        fired more spikes than the board's trace buffer holds (``INFO_REPLY.trace_depth``),
        the first ``trace_depth`` of them.
    trace_length
        Spikes in the sample's trace, as the board counted them (stored or not).
    """

    sample_id: int
    decision: int
    output_counts: np.ndarray
    counters: dict[str, int]
    trace: np.ndarray | None = None
    trace_length: int = 0

    @property
    def trace_complete(self) -> bool:
        return self.trace is not None and len(self.trace) == self.trace_length

    def mismatches(self, reference: SampleResult) -> list[str]:
        """How this result differs from the reference simulator's (empty when identical).

        ``cycles`` is hardware-only and not compared.
        """
        out = []
        expected = {
            "sample_id": reference.sample_id,
            "decision": reference.decision,
            "steps": reference.steps,
            "spikes": int(reference.spikes.sum()),
            "synops": reference.synops,
            "groups": reference.groups,
            "dropped": reference.dropped,
            "input_events": reference.input_events,
        }
        got = {"sample_id": self.sample_id, "decision": self.decision, **self.counters}
        expected["trace_length"] = len(reference.trace)
        got["trace_length"] = self.trace_length
        for name, value in expected.items():
            if got[name] != value:
                out.append(f"{name}: board {got[name]}, reference {value}")
        if not np.array_equal(self.output_counts, reference.output_counts):
            out.append(
                f"output_counts: board {self.output_counts.tolist()}, "
                f"reference {reference.output_counts.tolist()}"
            )
        # A trace cut at the board's buffer is compared as far as it goes.
        prefix = reference.trace[: len(self.trace)] if self.trace is not None else None
        if self.trace is not None and not np.array_equal(self.trace, prefix):
            n = min(len(self.trace), len(reference.trace))
            diff = np.flatnonzero(np.any(self.trace[:n] != reference.trace[:n], axis=1))
            i = int(diff[0]) if len(diff) else n
            board = self.trace[i].tolist() if i < len(self.trace) else None
            ref = reference.trace[i].tolist() if i < len(reference.trace) else None
            out.append(f"trace: first difference at spike {i}: board {board}, reference {ref}")
        return out


class HostLink:
    """Commands to a board over ``transport``, with timeouts and bounded retries.

    Parameters
    ----------
    timeout
        Seconds to wait for each response before sending the command again.
    retries
        Retransmissions of one command before :class:`LinkTimeoutError`.
    busy_retries, busy_delay
        How often, and how many seconds apart, a command the device answers BUSY is sent again
        (each time as a new command) before :class:`DeviceBusyError`.
    seq
        The first sequence number (the session starts with :meth:`reset`).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float = 0.5,
        retries: int = 8,
        busy_retries: int = 1000,
        busy_delay: float = 0.001,
        seq: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        self.busy_retries = busy_retries
        self.busy_delay = busy_delay
        self.stats = LinkStats()
        self._seq = seq % MAX_SEQ
        self._clock = clock
        self._sleep = sleep
        self._reader = FrameReader()
        self._received: deque[Packet | ProtocolError] = deque()
        self._synced = False
        self._unanswered = False  # a command with the current number may still be answered
        self.device: InfoReply | None = None  # what the device announced after reset()
        self.limits = PayloadLimits()  # frame sizes: MAX_PAYLOAD until the device says

    # ---- one command

    def command(self, message: Message) -> Message:
        """Send ``message`` and return the device's response to it.

        Retransmits on timeout or a corrupted exchange; raises :class:`LinkTimeoutError` when
        ``retries`` are spent (the link must then be :meth:`reset`), :class:`DeviceError` for an
        ERROR response (BUSY included: see :meth:`_until_ready`).
        """
        if not self._synced and not isinstance(message, Reset):
            raise SequenceError("the link has no session: call reset() first")
        seq = self._seq
        frame = encode_message(message, seq)
        name = message.TYPE.name
        self.stats.commands += 1
        last_problem = "no response"
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retransmissions += 1
            self.transport.write(frame)
            outcome = self._await(seq)
            if isinstance(outcome, str):
                last_problem = outcome
                continue
            self._seq = (seq + 1) % MAX_SEQ
            if isinstance(outcome, ErrorReply):
                raise DeviceError(outcome, name)
            return outcome
        self._synced = False
        self._unanswered = True
        raise LinkTimeoutError(
            f"{name} (sequence {seq}): no valid response after {self.retries + 1} attempts "
            f"(last: {last_problem}); call reset() before the next command"
        )

    def _await(self, seq: int) -> Message | str:
        """The response to ``seq``, or why to send the command again."""
        deadline = self._clock() + self.timeout
        while True:
            while self._received:
                item = self._received.popleft()
                if isinstance(item, ProtocolError):
                    self.stats.corrupt_responses += 1
                    return f"corrupted response ({item})"
                try:
                    message = decode_message(item)
                except ProtocolError as exc:
                    self.stats.corrupt_responses += 1
                    return f"malformed response ({exc})"
                if isinstance(message, ErrorReply) and message.code in _RETRY_CODES:
                    self.stats.error_responses += 1
                    return f"device reported {message.code.name}: {message.message}"
                if item.seq != seq:
                    self.stats.stale_responses += 1  # an answer to an earlier transmission
                    continue
                if isinstance(message, ErrorReply) and message.code is ErrorCode.OUT_OF_ORDER:
                    self._synced = False
                    self._unanswered = True
                    raise SequenceError(
                        f"device refused sequence {seq}: {message.message}; call reset()"
                    )
                return message
            remaining = deadline - self._clock()
            data = self.transport.read(4096, remaining) if remaining > 0 else b""
            if not data:
                self.stats.timeouts += 1
                return f"timeout after {self.timeout} s"
            self._received.extend(self._reader.feed(data))

    def _expect(self, message: Message, kind: type[Message]) -> Message:
        reply = self.command(message)
        if not isinstance(reply, kind):
            raise ProtocolError(
                f"{message.TYPE.name}: expected a {kind.TYPE.name} response, got {reply.TYPE.name}"
            )
        return reply

    def _until_ready(self, message: Message, kind: type[Message]) -> Message:
        """Send ``message`` (each time as a new command) while the device answers BUSY."""
        for _ in range(self.busy_retries + 1):
            try:
                return self._expect(message, kind)
            except DeviceError as exc:
                if exc.code is not ErrorCode.BUSY:
                    raise
                self.stats.busy += 1
                last = exc
                if self.busy_delay:
                    self._sleep(self.busy_delay)
        raise DeviceBusyError(last.reply, f"{message.TYPE.name} ({self.busy_retries} retries)")

    # ---- the API

    def reset(self) -> None:
        """Start a session: the device aborts any sample and takes this sequence number.

        After a failed command, RESET takes the next number, so that a late answer to the
        failed command cannot pass for RESET's.
        """
        if self._unanswered:
            self._seq = (self._seq + 1) % MAX_SEQ
            self._unanswered = False
        self._received.clear()
        self._synced = True
        try:
            self._expect(Reset(), Ok)
            self.device = self.info()
        except ProtocolError:
            self._synced = False
            raise
        self.limits = PayloadLimits(self.device.max_payload)

    def info(self) -> InfoReply:
        """The device's protocol version and core parameters."""
        return self._expect(Info(), InfoReply)

    def write_weights(self, writes: Iterable[tuple[int, int, int]]) -> int:
        """Write ``(bank, address, weight)`` words through the core's weight port.

        Runs of consecutive addresses in one bank go in one frame. Returns the frames sent.
        """
        frames = 0
        run: list[int] = []
        bank = addr = -1
        for b, a, w in sorted(writes):
            if run and (b != bank or a != addr + len(run) or len(run) == self.limits.words):
                self._until_ready(LoadWeights(bank, addr, tuple(run)), Ok)
                frames += 1
                run = []
            if not run:
                bank, addr = b, a
            run.append(int(w))
        if run:
            self._until_ready(LoadWeights(bank, addr, tuple(run)), Ok)
            frames += 1
        return frames

    def load_weights(self, model, lanes: int | None = None) -> int:
        """Load ``model``'s weights (same shape as the board's) without resynthesis."""
        from unlayered.gateware.layout import CoreLayout

        if lanes is None:
            lanes = self.info().lanes
        return self.write_weights(CoreLayout.from_model(model, lanes).weight_writes(model))

    def run_sample(
        self,
        steps: Sequence[Iterable[int]],
        *,
        sample_id: int,
        state: int,
        trace: bool = True,
    ) -> BoardResult:
        """Run one sample: ``steps[t]`` lists the input channels of step ``t`` in arrival order.

        ``state`` is the random scheduler's starting state, ``sample_seed(seed, sample_id)``.
        """
        self._until_ready(StartSample(sample_id, state), Ok)
        records: list[int] = []
        step_of: list[int] = []
        for t, channels in enumerate(steps):
            for c in channels:
                records.append(int(c))
                step_of.append(t)
            records.append(END_STEP)
            step_of.append(t)
        pieces = chunks(records, self.limits.events)
        start = 0
        for i, piece in enumerate(pieces):
            step = step_of[start] if piece else len(steps)
            last = i == len(pieces) - 1
            self._expect(Events(step, last, tuple(piece)), Ok)
            start += len(piece)
        summary = self._until_ready(ReadResult(ResultPart.SUMMARY), Summary)
        if summary.sample_id != sample_id:
            raise ProtocolError(
                f"the device reports the result of sample {summary.sample_id}, not {sample_id}"
            )
        counts = self._read_all(ResultPart.COUNTS, summary.n_outputs, self.limits.counts)
        spikes = None
        if trace:
            stored = min(summary.trace_length, self.device.trace_depth)
            rows = self._read_all(ResultPart.TRACE, stored, self.limits.trace)
            spikes = np.array(rows, dtype=np.int64).reshape(-1, 3)
        return BoardResult(
            sample_id=summary.sample_id,
            decision=summary.decision,
            output_counts=np.array(counts, dtype=np.int64),
            counters=dict(zip(SUMMARY_COUNTERS, summary.counters, strict=True)),
            trace=spikes,
            trace_length=summary.trace_length,
        )

    def _read_all(self, part: ResultPart, total: int, per_frame: int) -> list:
        kind = CountsChunk if part is ResultPart.COUNTS else TraceChunk
        out: list = []
        while len(out) < total:
            chunk = self._until_ready(ReadResult(part, len(out), per_frame), kind)
            values = chunk.counts if part is ResultPart.COUNTS else chunk.records
            if chunk.offset != len(out) or not values:
                raise ProtocolError(
                    f"READ_RESULT {part.name}: asked from {len(out)}, got {len(values)} "
                    f"entries from {chunk.offset}"
                )
            out.extend(values)
        if len(out) != total:
            raise ProtocolError(f"READ_RESULT {part.name}: {len(out)} entries, expected {total}")
        return out

    def run_samples(
        self,
        events: EventSamples,
        *,
        seed: int,
        trace: bool = True,
        progress: Callable | None = None,
    ) -> list[BoardResult]:
        """Run every sample of ``events`` (the random state of each from ``seed`` and its id)."""
        indices = range(len(events))
        results = []
        for s in progress(indices) if progress else indices:
            sample_id = int(events.sample_ids[s])
            results.append(
                self.run_sample(
                    events.sample_steps(s),
                    sample_id=sample_id,
                    state=sample_seed(seed, sample_id),
                    trace=trace,
                )
            )
        return results
