"""The host link protocol: framed, sequenced, CRC-checked packets over a byte stream.

Pure Python (no Amaranth), shared by the host (:mod:`.host`), the reference device model
(:mod:`.device_model`) and, later, the testbenches of the board tops. ``docs/protocol.md`` is the
specification; this module is its executable form.

Wire format of one packet::

    0x00 | COBS( type:u8 | seq:u8 | length:u16le | payload[length] | crc:u16le ) | 0x00

The CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no final
xor) over ``type .. payload``. Every multi-byte integer is little-endian.

Every malformed frame raises a specific :class:`ProtocolError` subclass whose ``code`` is the
:class:`ErrorCode` a device answers with.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from unlayered.sim.errors import UnlayeredError

__all__ = [
    "COMMANDS",
    "CRC_SIZE",
    "END_STEP",
    "HEADER_SIZE",
    "LINK_ERRORS",
    "MAX_FRAME",
    "MAX_PAYLOAD",
    "MAX_SEQ",
    "MIN_PAYLOAD",
    "PROTOCOL_VERSION",
    "SUMMARY_COUNTERS",
    "TRACE_RECORD_SIZE",
    "CountsChunk",
    "CrcError",
    "DeviceBusyError",
    "DeviceError",
    "ErrorCode",
    "ErrorReply",
    "Events",
    "FrameReader",
    "FramingError",
    "Info",
    "InfoReply",
    "LengthError",
    "LinkTimeoutError",
    "LoadWeights",
    "Message",
    "MsgType",
    "Ok",
    "Packet",
    "PayloadError",
    "PayloadLimits",
    "ProtocolError",
    "ReadResult",
    "Reset",
    "ResultPart",
    "SequenceError",
    "StartSample",
    "Summary",
    "TraceChunk",
    "UnknownCommandError",
    "chunks",
    "cobs_decode",
    "cobs_encode",
    "crc16_ccitt",
    "decode_frame",
    "decode_message",
    "encode_frame",
    "encode_message",
]

PROTOCOL_VERSION = 1
HEADER_SIZE = 4  # type, seq, length (u16)
CRC_SIZE = 2
MAX_PAYLOAD = 1024  # bytes; a device may not accept more, a host never sends more
MAX_SEQ = 256
# A COBS encoding adds one byte per 254 bytes, plus one.
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE + (HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE) // 254 + 1
END_STEP = 0xFFFF  # the EVENTS record that closes a step (channels are < 0xFFFF)
TRACE_RECORD_SIZE = 10  # step u32, group u32, neuron u16
MIN_PAYLOAD = 64  # the smallest max_payload a device may announce (a SUMMARY takes 44 bytes)


@dataclass(frozen=True)
class PayloadLimits:
    """How many items fit in one frame for a device that accepts ``max_payload`` bytes.

    A device announces its ``max_payload`` in ``INFO_REPLY`` (at most :data:`MAX_PAYLOAD`);
    the host sizes the frames it sends and the pages it asks for from it.
    """

    max_payload: int = 1024

    def __post_init__(self):
        if not MIN_PAYLOAD <= self.max_payload <= MAX_PAYLOAD:
            raise LengthError(
                f"max_payload {self.max_payload} is outside {MIN_PAYLOAD}..{MAX_PAYLOAD}"
            )

    @property
    def events(self) -> int:  # EVENTS: step u32, flags u8, records u16[n]
        return (self.max_payload - 5) // 2

    @property
    def words(self) -> int:  # LOAD_WEIGHTS: bank u16, addr u32, words i16[n]
        return (self.max_payload - 6) // 2

    @property
    def counts(self) -> int:  # COUNTS: offset u32, counts u32[n]
        return (self.max_payload - 4) // 4

    @property
    def trace(self) -> int:  # TRACE: offset u32, records[n]
        return (self.max_payload - 4) // TRACE_RECORD_SIZE


class ErrorCode(enum.IntEnum):
    """What an ERROR response names (``docs/protocol.md``, "Errors")."""

    BAD_FRAME = 1  # not a valid COBS frame, or longer than MAX_FRAME
    BAD_CRC = 2  # the CRC does not match
    BAD_LENGTH = 3  # too short for a header, length field wrong, payload too long or wrong size
    UNKNOWN_COMMAND = 4  # the type is not a command
    OUT_OF_ORDER = 5  # sequence number neither the expected one nor a retransmission
    BUSY = 6  # the device cannot do it yet (result not ready); ask again later
    BAD_PAYLOAD = 7  # a field's value is out of range (channel, address, weight, step)
    BAD_STATE = 8  # the command is not valid now (no sample started, sample in progress)


# Errors that are answered without executing the command or consuming its sequence number.
LINK_ERRORS = frozenset(
    {
        ErrorCode.BAD_FRAME,
        ErrorCode.BAD_CRC,
        ErrorCode.BAD_LENGTH,
        ErrorCode.UNKNOWN_COMMAND,
        ErrorCode.OUT_OF_ORDER,
    }
)


class ProtocolError(UnlayeredError):
    """A fault on the host link; ``code`` is the error code a device answers it with."""

    code: ClassVar[ErrorCode] = ErrorCode.BAD_FRAME


class FramingError(ProtocolError):
    """The bytes between two delimiters are not a valid COBS frame, or are too long."""

    code = ErrorCode.BAD_FRAME


class CrcError(ProtocolError):
    """The frame's CRC does not match its contents."""

    code = ErrorCode.BAD_CRC


class LengthError(ProtocolError):
    """A length is wrong: frame too short, length field, payload size of the message type."""

    code = ErrorCode.BAD_LENGTH


class UnknownCommandError(ProtocolError):
    """The type byte names no known message."""

    code = ErrorCode.UNKNOWN_COMMAND


class SequenceError(ProtocolError):
    """A sequence number is out of order."""

    code = ErrorCode.OUT_OF_ORDER


class PayloadError(ProtocolError):
    """A field of a well-formed message has a value that is not allowed."""

    code = ErrorCode.BAD_PAYLOAD


class LinkTimeoutError(ProtocolError):
    """No valid response came back within the timeout after every retry."""


class DeviceError(ProtocolError):
    """The device answered a command with an ERROR response (``code``, ``arg``, ``message``)."""

    def __init__(self, reply: ErrorReply, command: str = ""):
        self.reply = reply
        self.code = reply.code
        self.arg = reply.arg
        what = f" to {command}" if command else ""
        text = f": {reply.message}" if reply.message else ""
        super().__init__(f"device answered{what} with {reply.code.name} (arg {reply.arg}){text}")


class DeviceBusyError(DeviceError):
    """The device stayed busy for every allowed retry."""


# --------------------------------------------------------------------------------------------
# CRC and COBS


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16_ccitt(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (check value of ``b"123456789"``: 0x29B1)."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: ``data`` without any zero byte (no delimiter)."""
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(byte)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; raises :class:`FramingError` on an invalid encoding."""
    out = bytearray()
    i, n = 0, len(data)
    if n == 0:
        raise FramingError("empty COBS frame")
    while i < n:
        code = data[i]
        if code == 0:
            raise FramingError(f"COBS frame has a zero byte at offset {i}")
        end = i + code
        if end > n:
            raise FramingError(
                f"COBS block at offset {i} claims {code - 1} bytes, only {n - i - 1} remain"
            )
        block = data[i + 1 : end]
        if 0 in block:
            raise FramingError(f"COBS frame has a zero byte at offset {i + 1 + block.index(0)}")
        out += block
        i = end
        if code != 255 and i < n:
            out.append(0)
    return bytes(out)


# --------------------------------------------------------------------------------------------
# Packets


@dataclass(frozen=True)
class Packet:
    """One decoded packet: message type, sequence number, payload."""

    type: int
    seq: int
    payload: bytes = b""


def encode_frame(packet: Packet) -> bytes:
    """The bytes on the wire for ``packet``, both delimiters included."""
    if not 0 <= packet.type < 256:
        raise ProtocolError(f"packet type {packet.type} does not fit in a byte")
    if not 0 <= packet.seq < MAX_SEQ:
        raise SequenceError(f"sequence number {packet.seq} does not fit in a byte")
    if len(packet.payload) > MAX_PAYLOAD:
        raise LengthError(f"payload of {len(packet.payload)} bytes exceeds {MAX_PAYLOAD}")
    body = struct.pack("<BBH", packet.type, packet.seq, len(packet.payload)) + packet.payload
    body += struct.pack("<H", crc16_ccitt(body))
    return b"\x00" + cobs_encode(body) + b"\x00"


def decode_frame(frame: bytes) -> Packet:
    """Decode the COBS bytes between two delimiters; raise the specific :class:`ProtocolError`.

    Checks, in order: COBS encoding and size (:class:`FramingError`), minimum size
    (:class:`LengthError`), CRC (:class:`CrcError`), length field and maximum payload
    (:class:`LengthError`). The type is not checked here (see :func:`decode_message`).
    """
    if len(frame) > MAX_FRAME:
        raise FramingError(f"frame of {len(frame)} bytes exceeds the maximum of {MAX_FRAME}")
    body = cobs_decode(frame)
    if len(body) < HEADER_SIZE + CRC_SIZE:
        raise LengthError(
            f"frame of {len(body)} bytes is shorter than header and CRC "
            f"({HEADER_SIZE + CRC_SIZE} bytes)"
        )
    (crc,) = struct.unpack_from("<H", body, len(body) - CRC_SIZE)
    expected = crc16_ccitt(body[:-CRC_SIZE])
    if crc != expected:
        raise CrcError(f"CRC 0x{crc:04x} does not match the contents (0x{expected:04x})")
    kind, seq, length = struct.unpack_from("<BBH", body)
    payload = body[HEADER_SIZE:-CRC_SIZE]
    if length != len(payload):
        raise LengthError(f"length field says {length} bytes, the payload has {len(payload)}")
    if length > MAX_PAYLOAD:
        raise LengthError(f"payload of {length} bytes exceeds {MAX_PAYLOAD}")
    return Packet(kind, seq, payload)


class FrameReader:
    """Splits a byte stream at zero delimiters into packets or the errors their frames raise.

    Empty frames (two delimiters in a row) are skipped. A frame that grows past
    :data:`MAX_FRAME` is discarded up to the next delimiter and reported once as a
    :class:`FramingError`.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._overflow = False

    def feed(self, data: bytes) -> list[Packet | ProtocolError]:
        out: list[Packet | ProtocolError] = []
        for byte in data:
            if byte != 0:
                if len(self._buffer) <= MAX_FRAME:
                    self._buffer.append(byte)
                else:
                    self._overflow = True
                continue
            frame, overflow = bytes(self._buffer), self._overflow
            self._buffer.clear()
            self._overflow = False
            if overflow:
                out.append(FramingError(f"frame exceeds the maximum of {MAX_FRAME} bytes"))
            elif frame:
                try:
                    out.append(decode_frame(frame))
                except ProtocolError as exc:
                    out.append(exc)
        return out


# --------------------------------------------------------------------------------------------
# Messages


class MsgType(enum.IntEnum):
    """Type byte of each message; commands below 0x80, responses from 0x80."""

    RESET = 0x01
    INFO = 0x02
    LOAD_WEIGHTS = 0x03
    START_SAMPLE = 0x04
    EVENTS = 0x05
    READ_RESULT = 0x06
    OK = 0x80
    INFO_REPLY = 0x81
    SUMMARY = 0x82
    COUNTS = 0x83
    TRACE = 0x84
    ERROR = 0xFF


COMMANDS = frozenset(t for t in MsgType if t < 0x80)


class ResultPart(enum.IntEnum):
    """What a READ_RESULT asks for."""

    SUMMARY = 0
    COUNTS = 1
    TRACE = 2


class Message:
    """Base of every message: a type byte and a payload codec."""

    TYPE: ClassVar[MsgType]

    def payload(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, payload: bytes) -> Message:
        _expect_size(cls, payload, 0)
        return cls()


def _expect_size(cls: type, payload: bytes, size: int) -> None:
    if len(payload) != size:
        raise LengthError(f"{cls.TYPE.name} payload must be {size} bytes, got {len(payload)}")


def _expect_array(cls: type, payload: bytes, fixed: int, item: int) -> int:
    """Number of ``item``-byte entries after ``fixed`` bytes; LengthError if it does not divide."""
    if len(payload) < fixed or (len(payload) - fixed) % item:
        raise LengthError(
            f"{cls.TYPE.name} payload must be {fixed} bytes plus a multiple of {item}, "
            f"got {len(payload)}"
        )
    return (len(payload) - fixed) // item


@dataclass(frozen=True)
class Reset(Message):
    """Abort any sample, forget the result, start a session at this sequence number."""

    TYPE: ClassVar[MsgType] = MsgType.RESET


@dataclass(frozen=True)
class Info(Message):
    """Ask for the device's parameters (:class:`InfoReply`)."""

    TYPE: ClassVar[MsgType] = MsgType.INFO


@dataclass(frozen=True)
class LoadWeights(Message):
    """Write ``words`` to consecutive addresses of weight bank ``bank`` from ``addr``."""

    TYPE: ClassVar[MsgType] = MsgType.LOAD_WEIGHTS
    bank: int
    addr: int
    words: tuple[int, ...]

    def payload(self) -> bytes:
        return struct.pack(f"<HI{len(self.words)}h", self.bank, self.addr, *self.words)

    @classmethod
    def parse(cls, payload: bytes) -> LoadWeights:
        n = _expect_array(cls, payload, 6, 2)
        if n == 0:
            raise LengthError("LOAD_WEIGHTS payload carries no weight words")
        bank, addr, *words = struct.unpack(f"<HI{n}h", payload)
        return cls(bank, addr, tuple(words))


@dataclass(frozen=True)
class StartSample(Message):
    """Begin sample ``sample_id`` with the random scheduler's ``state`` (32 bits, nonzero)."""

    TYPE: ClassVar[MsgType] = MsgType.START_SAMPLE
    sample_id: int
    state: int

    def payload(self) -> bytes:
        return struct.pack("<II", self.sample_id, self.state)

    @classmethod
    def parse(cls, payload: bytes) -> StartSample:
        _expect_size(cls, payload, 8)
        return cls(*struct.unpack("<II", payload))


@dataclass(frozen=True)
class Events(Message):
    """Input records of the current sample: channels, :data:`END_STEP` closes a step.

    ``step`` is the index of the step the first record belongs to (a check: the device answers
    BAD_PAYLOAD if it is not its current step). ``end_sample``: the sample ends after these
    records (its last step must be closed).
    """

    TYPE: ClassVar[MsgType] = MsgType.EVENTS
    step: int
    end_sample: bool
    records: tuple[int, ...] = field(default=())

    def payload(self) -> bytes:
        n = len(self.records)
        return struct.pack(f"<IB{n}H", self.step, int(self.end_sample), *self.records)

    @classmethod
    def parse(cls, payload: bytes) -> Events:
        n = _expect_array(cls, payload, 5, 2)
        step, flags, *records = struct.unpack(f"<IB{n}H", payload)
        if flags & ~1:
            raise PayloadError(f"EVENTS flags 0x{flags:02x} has unknown bits set")
        return cls(step, bool(flags & 1), tuple(records))


@dataclass(frozen=True)
class ReadResult(Message):
    """Read part of the last sample's result: the summary, or ``count`` entries from ``offset``."""

    TYPE: ClassVar[MsgType] = MsgType.READ_RESULT
    part: ResultPart
    offset: int = 0
    count: int = 0

    def payload(self) -> bytes:
        return struct.pack("<BIH", self.part, self.offset, self.count)

    @classmethod
    def parse(cls, payload: bytes) -> ReadResult:
        _expect_size(cls, payload, 7)
        part, offset, count = struct.unpack("<BIH", payload)
        try:
            part = ResultPart(part)
        except ValueError:
            raise PayloadError(f"READ_RESULT part {part} is not 0, 1 or 2") from None
        return cls(part, offset, count)


@dataclass(frozen=True)
class Ok(Message):
    """The command was done."""

    TYPE: ClassVar[MsgType] = MsgType.OK


@dataclass(frozen=True)
class InfoReply(Message):
    """The device's protocol version and core parameters."""

    TYPE: ClassVar[MsgType] = MsgType.INFO_REPLY
    version: int
    max_payload: int
    lanes: int
    weight_bits: int
    weight_depth: int
    n_inputs: int
    n_outputs: int
    trace_depth: int  # spikes of a sample's trace the device stores (its trace buffer)
    clock_hz: int  # the core's clock (0: unknown), to turn its cycle counter into time

    _FMT: ClassVar[str] = "<BHHBIIIII"

    def payload(self) -> bytes:
        return struct.pack(
            self._FMT,
            self.version,
            self.max_payload,
            self.lanes,
            self.weight_bits,
            self.weight_depth,
            self.n_inputs,
            self.n_outputs,
            self.trace_depth,
            self.clock_hz,
        )

    @classmethod
    def parse(cls, payload: bytes) -> InfoReply:
        _expect_size(cls, payload, struct.calcsize(cls._FMT))
        return cls(*struct.unpack(cls._FMT, payload))


SUMMARY_COUNTERS = ("steps", "spikes", "synops", "groups", "dropped", "input_events", "cycles")


@dataclass(frozen=True)
class Summary(Message):
    """Decision and counters of the last sample (the core's summary record), sizes of the rest."""

    TYPE: ClassVar[MsgType] = MsgType.SUMMARY
    sample_id: int
    decision: int  # -1: undecided
    n_outputs: int
    trace_length: int
    counters: tuple[int, ...]  # SUMMARY_COUNTERS, in that order

    _FMT: ClassVar[str] = "<IiII7I"

    def payload(self) -> bytes:
        return struct.pack(
            self._FMT,
            self.sample_id,
            self.decision,
            self.n_outputs,
            self.trace_length,
            *self.counters,
        )

    @classmethod
    def parse(cls, payload: bytes) -> Summary:
        _expect_size(cls, payload, struct.calcsize(cls._FMT))
        sample_id, decision, n_outputs, trace_length, *counters = struct.unpack(cls._FMT, payload)
        return cls(sample_id, decision, n_outputs, trace_length, tuple(counters))


@dataclass(frozen=True)
class CountsChunk(Message):
    """Output spike counts ``offset .. offset + len(counts) - 1``."""

    TYPE: ClassVar[MsgType] = MsgType.COUNTS
    offset: int
    counts: tuple[int, ...]

    def payload(self) -> bytes:
        return struct.pack(f"<I{len(self.counts)}I", self.offset, *self.counts)

    @classmethod
    def parse(cls, payload: bytes) -> CountsChunk:
        n = _expect_array(cls, payload, 4, 4)
        offset, *counts = struct.unpack(f"<I{n}I", payload)
        return cls(offset, tuple(counts))


@dataclass(frozen=True)
class TraceChunk(Message):
    """Spike records ``(step, group, neuron)`` from index ``offset`` of the trace."""

    TYPE: ClassVar[MsgType] = MsgType.TRACE
    offset: int
    records: tuple[tuple[int, int, int], ...]

    def payload(self) -> bytes:
        flat = [x for record in self.records for x in record]
        return struct.pack("<I" + "IIH" * len(self.records), self.offset, *flat)

    @classmethod
    def parse(cls, payload: bytes) -> TraceChunk:
        n = _expect_array(cls, payload, 4, TRACE_RECORD_SIZE)
        values = struct.unpack("<I" + "IIH" * n, payload)
        records = tuple(tuple(values[1 + 3 * i : 4 + 3 * i]) for i in range(n))
        return cls(values[0], records)


@dataclass(frozen=True)
class ErrorReply(Message):
    """An error response: code, a numeric argument, an optional ASCII message."""

    TYPE: ClassVar[MsgType] = MsgType.ERROR
    code: ErrorCode
    arg: int = 0
    message: str = ""

    def payload(self) -> bytes:
        text = self.message.encode("ascii", "replace")[:255]
        return struct.pack("<BI", self.code, self.arg) + text

    @classmethod
    def parse(cls, payload: bytes) -> ErrorReply:
        if len(payload) < 5:
            raise LengthError(f"ERROR payload must be at least 5 bytes, got {len(payload)}")
        code, arg = struct.unpack_from("<BI", payload)
        try:
            code = ErrorCode(code)
        except ValueError:
            raise PayloadError(f"ERROR code {code} is not a known error code") from None
        return cls(code, arg, payload[5:].decode("ascii", "replace"))


MESSAGES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        Reset,
        Info,
        LoadWeights,
        StartSample,
        Events,
        ReadResult,
        Ok,
        InfoReply,
        Summary,
        CountsChunk,
        TraceChunk,
        ErrorReply,
    )
}


def encode_message(message: Message, seq: int) -> bytes:
    """The framed bytes of ``message`` with sequence number ``seq``."""
    return encode_frame(Packet(int(message.TYPE), seq, message.payload()))


def decode_message(packet: Packet, allowed: Iterable[int] | None = None) -> Message:
    """The message a packet carries.

    ``allowed`` limits the accepted types (a device passes the commands): any other type raises
    :class:`UnknownCommandError`. A payload of the wrong size raises :class:`LengthError`, a
    field with an impossible value :class:`PayloadError`.
    """
    cls = MESSAGES.get(packet.type)
    if cls is None or (allowed is not None and packet.type not in allowed):
        raise UnknownCommandError(f"unknown message type 0x{packet.type:02x}")
    return cls.parse(packet.payload)


def chunks(values: Sequence, size: int) -> list[Sequence]:
    """``values`` cut into pieces of at most ``size`` (one empty piece for empty input)."""
    return [values[i : i + size] for i in range(0, len(values), size)] or [values[:0]]
