"""Framing, CRC and message codecs of the host link protocol (``docs/protocol.md``)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unlayered.boards import protocol as p
from unlayered.sim import UnlayeredError


def body_frame(body: bytes) -> bytes:
    """COBS bytes (without delimiters) of a raw body, CRC appended."""
    return p.cobs_encode(body + struct.pack("<H", p.crc16_ccitt(body)))


def test_crc_check_values():
    assert p.crc16_ccitt(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE check value
    assert p.crc16_ccitt(b"") == 0xFFFF
    assert p.crc16_ccitt(b"\x00") == 0xE1F0


@given(st.binary(max_size=2000))
def test_cobs_round_trip(data):
    encoded = p.cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) <= len(data) + len(data) // 254 + 1
    assert p.cobs_decode(encoded) == data


@pytest.mark.parametrize(
    ("data", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255)) + b"\x01"),
    ],
)
def test_cobs_known_vectors(data, encoded):
    assert p.cobs_encode(data) == encoded
    assert p.cobs_decode(encoded) == data


@given(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=p.MAX_PAYLOAD), st.binary())
def test_frame_round_trip_through_reader(kind, seq, payload, noise):
    packet = p.Packet(kind, seq, payload)
    wire = p.encode_frame(packet)
    assert wire[0] == 0 and wire[-1] == 0 and 0 not in wire[1:-1]
    assert len(wire) - 2 <= p.MAX_FRAME
    assert p.decode_frame(wire[1:-1]) == packet
    # Whatever garbage came before, the leading delimiter resynchronizes the reader.
    items = p.FrameReader().feed(noise + wire + wire)
    assert items[-2:] == [packet, packet]


@given(st.binary(min_size=1, max_size=300), st.data())
def test_any_single_byte_corruption_is_detected(payload, data):
    wire = bytearray(p.encode_frame(p.Packet(0x05, 7, payload)))
    i = data.draw(st.integers(1, len(wire) - 2))
    wire[i] ^= data.draw(st.integers(1, 255))
    items = p.FrameReader().feed(bytes(wire))
    assert items and all(isinstance(x, p.ProtocolError) for x in items)


def test_decode_errors_are_specific():
    with pytest.raises(p.FramingError, match="empty"):
        p.cobs_decode(b"")
    with pytest.raises(p.FramingError, match="zero byte"):
        p.cobs_decode(b"\x02\x00")
    with pytest.raises(p.FramingError, match="claims 4 bytes"):
        p.cobs_decode(b"\x05\x01\x02")
    with pytest.raises(p.FramingError, match="exceeds the maximum"):
        p.decode_frame(b"\x01" * (p.MAX_FRAME + 1))
    with pytest.raises(p.LengthError, match="shorter than header and CRC"):
        p.decode_frame(p.cobs_encode(b"\x01\x02\x03"))
    with pytest.raises(p.CrcError, match="does not match"):
        p.decode_frame(p.cobs_encode(b"\x01\x00\x00\x00\x12\x34"))
    with pytest.raises(p.LengthError, match="length field says 3 bytes, the payload has 1"):
        p.decode_frame(body_frame(b"\x05\x00\x03\x00\xaa"))
    big = p.MAX_PAYLOAD + 1
    with pytest.raises(p.LengthError, match=f"payload of {big} bytes exceeds"):
        p.decode_frame(body_frame(struct.pack("<BBH", 5, 0, big) + bytes(big)))
    with pytest.raises(p.LengthError):
        p.encode_frame(p.Packet(1, 0, bytes(big)))
    with pytest.raises(p.SequenceError):
        p.encode_frame(p.Packet(1, 256))
    # Every one is the project's exception, with the code a device answers it with.
    for cls, code in [
        (p.FramingError, p.ErrorCode.BAD_FRAME),
        (p.CrcError, p.ErrorCode.BAD_CRC),
        (p.LengthError, p.ErrorCode.BAD_LENGTH),
        (p.UnknownCommandError, p.ErrorCode.UNKNOWN_COMMAND),
        (p.SequenceError, p.ErrorCode.OUT_OF_ORDER),
        (p.PayloadError, p.ErrorCode.BAD_PAYLOAD),
    ]:
        assert issubclass(cls, UnlayeredError) and cls.code is code


def test_frame_reader_skips_empty_frames_and_reports_overflow():
    reader = p.FrameReader()
    assert reader.feed(b"\x00\x00\x00") == []
    items = reader.feed(b"\x01" * (p.MAX_FRAME + 50) + b"\x00")
    assert len(items) == 1 and isinstance(items[0], p.FramingError)
    good = p.encode_frame(p.Packet(1, 2))
    assert reader.feed(good[:3]) == []  # a frame split over reads
    assert reader.feed(good[3:]) == [p.Packet(1, 2)]


messages = st.one_of(
    st.just(p.Reset()),
    st.just(p.Info()),
    st.just(p.Ok()),
    st.builds(
        p.LoadWeights,
        st.integers(0, 0xFFFF),
        st.integers(0, 2**32 - 1),
        st.lists(st.integers(-(2**15), 2**15 - 1), min_size=1, max_size=509).map(tuple),
    ),
    st.builds(p.StartSample, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.builds(
        p.Events,
        st.integers(0, 2**32 - 1),
        st.booleans(),
        st.lists(st.integers(0, 0xFFFF), max_size=509).map(tuple),
    ),
    st.builds(
        p.ReadResult,
        st.sampled_from(p.ResultPart),
        st.integers(0, 2**32 - 1),
        st.integers(0, 0xFFFF),
    ),
    st.builds(
        p.InfoReply,
        *(st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
        *(st.integers(0, 255), *[st.integers(0, 2**32 - 1)] * 5),
    ),
    st.builds(
        p.Summary,
        st.integers(0, 2**32 - 1),
        st.integers(-1, 2**31 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.tuples(*[st.integers(0, 2**32 - 1)] * 7),
    ),
    st.builds(
        p.CountsChunk,
        st.integers(0, 2**32 - 1),
        st.lists(st.integers(0, 2**32 - 1), max_size=255).map(tuple),
    ),
    st.builds(
        p.TraceChunk,
        st.integers(0, 2**32 - 1),
        st.lists(
            st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 65535)),
            max_size=102,
        ).map(tuple),
    ),
    st.builds(
        p.ErrorReply,
        st.sampled_from(p.ErrorCode),
        st.integers(0, 2**32 - 1),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=100),
    ),
)


@given(messages, st.integers(0, 255))
def test_message_round_trip(message, seq):
    wire = p.encode_message(message, seq)
    (packet,) = p.FrameReader().feed(wire)
    assert packet.seq == seq and packet.type == message.TYPE
    assert p.decode_message(packet) == message


def test_message_decode_errors():
    with pytest.raises(p.UnknownCommandError, match="0x42"):
        p.decode_message(p.Packet(0x42, 0))
    with pytest.raises(p.UnknownCommandError, match="0x80"):
        p.decode_message(p.Packet(p.MsgType.OK, 0), allowed=p.COMMANDS)
    with pytest.raises(p.LengthError, match="RESET payload must be 0 bytes, got 1"):
        p.decode_message(p.Packet(p.MsgType.RESET, 0, b"\x00"))
    with pytest.raises(p.LengthError, match="START_SAMPLE payload must be 8 bytes, got 7"):
        p.decode_message(p.Packet(p.MsgType.START_SAMPLE, 0, bytes(7)))
    with pytest.raises(p.LengthError, match="LOAD_WEIGHTS payload must be 6 bytes plus"):
        p.decode_message(p.Packet(p.MsgType.LOAD_WEIGHTS, 0, bytes(9)))
    with pytest.raises(p.LengthError, match="no weight words"):
        p.decode_message(p.Packet(p.MsgType.LOAD_WEIGHTS, 0, bytes(6)))
    with pytest.raises(p.LengthError, match="EVENTS payload must be 5 bytes plus"):
        p.decode_message(p.Packet(p.MsgType.EVENTS, 0, bytes(4)))
    with pytest.raises(p.PayloadError, match="flags 0x02"):
        p.decode_message(p.Packet(p.MsgType.EVENTS, 0, bytes(4) + b"\x02"))
    with pytest.raises(p.PayloadError, match="part 3"):
        p.decode_message(p.Packet(p.MsgType.READ_RESULT, 0, b"\x03" + bytes(6)))
    with pytest.raises(p.LengthError, match="TRACE payload must be 4 bytes plus a multiple of 10"):
        p.decode_message(p.Packet(p.MsgType.TRACE, 0, bytes(9)))
    with pytest.raises(p.LengthError, match="ERROR payload must be at least 5"):
        p.decode_message(p.Packet(p.MsgType.ERROR, 0, bytes(4)))
    with pytest.raises(p.PayloadError, match="ERROR code 99"):
        p.decode_message(p.Packet(p.MsgType.ERROR, 0, b"\x63" + bytes(4)))
