"""The reference device model: every error response, sequence numbers, idempotent replays."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from unlayered.boards import protocol as p
from unlayered.boards.device_model import DeviceModel, weights_from_image
from unlayered.gateware.layout import CoreLayout
from unlayered.sim.reference import run_sample

from .links import small_model

E = p.ErrorCode


def replies(device: DeviceModel, wire: bytes) -> list[tuple[int, p.Message]]:
    return [(pk.seq, p.decode_message(pk)) for pk in p.FrameReader().feed(device.receive(wire))]


def ask(device: DeviceModel, message: p.Message, seq: int) -> p.Message:
    ((got_seq, reply),) = replies(device, p.encode_message(message, seq))
    assert got_seq == seq
    return reply


def error(reply: p.Message, code: p.ErrorCode, text: str = "") -> None:
    assert isinstance(reply, p.ErrorReply), reply
    assert reply.code is code, reply
    assert text in reply.message, reply.message


@pytest.fixture
def device():
    d = DeviceModel(small_model(), lanes=2)
    assert ask(d, p.Reset(), 10) == p.Ok()
    return d


def raw(body: bytes) -> bytes:
    return b"\x00" + p.cobs_encode(body + struct.pack("<H", p.crc16_ccitt(body))) + b"\x00"


def test_frame_level_errors(device):
    (r,) = replies(device, b"\x00\x05\x01\x00")  # COBS block runs past the frame
    error(r[1], E.BAD_FRAME, "COBS")
    (r,) = replies(device, b"\x00" + p.cobs_encode(b"\x01\x0b") + b"\x00")
    error(r[1], E.BAD_LENGTH, "shorter")
    wire = bytearray(p.encode_message(p.Info(), 11))
    wire[3] ^= 0x40
    (r,) = replies(device, bytes(wire))
    error(r[1], E.BAD_CRC)
    (r,) = replies(device, raw(struct.pack("<BBH", 2, 11, 5) + b"\x01"))
    error(r[1], E.BAD_LENGTH, "length field says 5")
    (r,) = replies(device, raw(struct.pack("<BBH", 0x42, 11, 0)))
    assert r[0] == 11
    error(r[1], E.UNKNOWN_COMMAND, "0x42")
    error(ask(device, p.Ok(), 11), E.UNKNOWN_COMMAND, "0x80")  # a response is no command
    (r,) = replies(device, raw(struct.pack("<BBH", p.MsgType.START_SAMPLE, 11, 3) + bytes(3)))
    error(r[1], E.BAD_LENGTH, "START_SAMPLE payload must be 8 bytes")
    (r,) = replies(device, b"\x00" + b"\x01" * (p.MAX_FRAME + 3) + b"\x00")
    error(r[1], E.BAD_FRAME, "exceeds")
    # None of these consumed sequence number 11.
    assert isinstance(ask(device, p.Info(), 11), p.InfoReply)


def test_sequence_numbers():
    d = DeviceModel(small_model())
    error(ask(d, p.Info(), 0), E.OUT_OF_ORDER, "send RESET first")
    assert ask(d, p.Reset(), 255) == p.Ok()
    r = ask(d, p.Info(), 1)
    error(r, E.OUT_OF_ORDER, "expected 0")
    assert r.arg == 0
    info = ask(d, p.Info(), 0)  # wraps around
    assert info.n_inputs == 12 and info.n_outputs == 4 and info.version == p.PROTOCOL_VERSION
    # A retransmission of the last command is answered from the saved response...
    start = p.StartSample(5, 77)
    assert ask(d, start, 1) == p.Ok()
    assert ask(d, start, 1) == p.Ok()  # not a BAD_STATE: it was not done twice
    # ... but the same number with different contents is out of order.
    error(ask(d, p.StartSample(6, 77), 1), E.OUT_OF_ORDER, "expected 2")
    # RESET takes any sequence number and starts over.
    assert ask(d, p.Reset(), 100) == p.Ok()
    error(ask(d, p.Events(0, True), 102), E.OUT_OF_ORDER, "expected 101")
    error(ask(d, p.Events(0, True), 101), E.BAD_STATE, "no sample was started")


def test_command_errors_consume_the_sequence_number(device):
    seq = iter(range(11, 100))
    error(ask(device, p.Events(0, False, (1,)), next(seq)), E.BAD_STATE, "no sample")
    error(ask(device, p.ReadResult(p.ResultPart.SUMMARY), next(seq)), E.BAD_STATE, "no result")
    error(ask(device, p.StartSample(3, 0), next(seq)), E.BAD_PAYLOAD, "random state 0")
    error(ask(device, p.LoadWeights(2, 0, (1,)), next(seq)), E.BAD_PAYLOAD, "bank 2")
    depth = device.layout.weight_depth
    error(ask(device, p.LoadWeights(0, depth - 1, (1, 2)), next(seq)), E.BAD_PAYLOAD, "exceed")
    r = ask(device, p.LoadWeights(1, 4, (1, 128, 3)), next(seq))
    error(r, E.BAD_PAYLOAD, "weight 128 at address 5 does not fit in 8 bits")
    assert r.arg == 5
    assert ask(device, p.StartSample(3, 99), next(seq)) == p.Ok()
    error(ask(device, p.StartSample(4, 99), next(seq)), E.BAD_STATE, "sample 3 is in progress")
    error(ask(device, p.LoadWeights(0, 0, (1,)), next(seq)), E.BAD_STATE, "in progress")
    error(ask(device, p.Events(1, False), next(seq)), E.BAD_PAYLOAD, "current step is 0")
    error(ask(device, p.Events(0, False, (12,)), next(seq)), E.BAD_PAYLOAD, "channel 12")
    error(ask(device, p.Events(0, False, (3, 3)), next(seq)), E.BAD_PAYLOAD, "occurs twice")
    error(ask(device, p.Events(0, True, (3,)), next(seq)), E.BAD_PAYLOAD, "inside step 0")
    flags = raw(struct.pack("<BBHIB", p.MsgType.EVENTS, next(seq), 5, 0, 0x80))
    ((_, r),) = replies(device, flags)
    error(r, E.BAD_PAYLOAD, "flags 0x80")
    # Refused commands changed nothing: the sample is still at step 0.
    assert ask(device, p.Events(0, False, (3, p.END_STEP, 3)), next(seq)) == p.Ok()
    assert ask(device, p.Events(1, True, (p.END_STEP,)), next(seq)) == p.Ok()
    summary = ask(device, p.ReadResult(p.ResultPart.SUMMARY), next(seq))
    assert summary.sample_id == 3 and summary.counters[0] == 2
    r = ask(device, p.ReadResult(p.ResultPart.TRACE, summary.trace_length + 1, 5), next(seq))
    error(r, E.BAD_PAYLOAD, "past the end")
    assert device.executed == [3]


def test_busy_while_computing():
    d = DeviceModel(small_model(), busy_reads=3)
    assert ask(d, p.Reset(), 0) == p.Ok()
    assert ask(d, p.StartSample(1, 99), 1) == p.Ok()
    assert ask(d, p.Events(0, True, (1, 2, p.END_STEP)), 2) == p.Ok()
    error(ask(d, p.ReadResult(p.ResultPart.SUMMARY), 3), E.BUSY, "still computing")
    assert ask(d, p.ReadResult(p.ResultPart.SUMMARY), 3).code is E.BUSY  # replayed, not counted
    error(ask(d, p.LoadWeights(0, 0, (1,)), 4), E.BUSY)
    error(ask(d, p.StartSample(2, 99), 5), E.BUSY)
    assert isinstance(ask(d, p.ReadResult(p.ResultPart.SUMMARY), 6), p.Summary)


def test_weight_image_round_trip_and_reload():
    model, other = small_model(seed=0), small_model(seed=1)
    for lanes in (1, 3):
        layout = CoreLayout.from_model(model, lanes)
        back = weights_from_image(layout, model, layout.weight_image(other))
        for a, b in zip(back, other.weights, strict=True):
            np.testing.assert_array_equal(a, b)
    d = DeviceModel(model, lanes=3)
    assert ask(d, p.Reset(), 0) == p.Ok()
    seq = 1
    for bank, addr, w in CoreLayout.from_model(other, 3).weight_writes(other):
        assert ask(d, p.LoadWeights(bank, addr, (w,)), seq) == p.Ok()
        seq = (seq + 1) % 256
    for a, b in zip(d.model.weights, other.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    steps = [np.array([0, 3, 5]), np.array([], dtype=np.int64), np.array([7, 1])]
    assert ask(d, p.StartSample(9, 4321), seq) == p.Ok()
    records = (0, 3, 5, p.END_STEP, p.END_STEP, 7, 1, p.END_STEP)
    assert ask(d, p.Events(0, True, records), (seq + 1) % 256) == p.Ok()
    expected = run_sample(other, steps, state=4321, sample_id=9)
    chunk = ask(d, p.ReadResult(p.ResultPart.TRACE, 0, 1000), (seq + 2) % 256)
    assert [list(r) for r in chunk.records] == expected.trace.tolist()


def test_announced_limits_are_enforced():
    """A device with a smaller payload and trace buffer refuses longer frames, cuts the trace."""
    model = small_model("fifo", seed=2)
    d = DeviceModel(model, lanes=2, max_payload=64, trace_depth=3, clock_hz=12_000_000)
    assert ask(d, p.Reset(), 0) == p.Ok()
    info = ask(d, p.Info(), 1)
    assert (info.max_payload, info.trace_depth, info.clock_hz) == (64, 3, 12_000_000)
    words = tuple(range(30))  # 66 payload bytes
    (r,) = replies(d, p.encode_message(p.LoadWeights(0, 0, words), 2))
    assert r[0] == 0  # frame-level: the number is not trusted
    error(r[1], E.BAD_LENGTH, "exceeds 64")
    assert ask(d, p.LoadWeights(0, 0, words[:29]), 2) == p.Ok()  # 64 bytes fit
    assert ask(d, p.StartSample(5, 77), 3) == p.Ok()
    steps = [list(range(12))] * 3
    records = tuple(r for s in steps for r in (*s, p.END_STEP))
    assert ask(d, p.Events(0, False, records[:20]), 4) == p.Ok()
    assert ask(d, p.Events(1, True, records[20:]), 5) == p.Ok()
    summary = ask(d, p.ReadResult(p.ResultPart.SUMMARY), 6)
    assert summary.trace_length > 3
    chunk = ask(d, p.ReadResult(p.ResultPart.TRACE, 0, 100), 7)
    assert len(chunk.records) == 3  # the stored part only
    error(ask(d, p.ReadResult(p.ResultPart.TRACE, 4, 1), 8), E.BAD_PAYLOAD, "past the end")
    assert ask(d, p.ReadResult(p.ResultPart.TRACE, 3, 1), 9).records == ()
