"""The link engine in gateware answers every command exactly as the device model does.

A scripted session (valid commands, every command error, retransmissions, sequence faults,
damaged frames, a sample aborted by RESET, a trace longer than the trace buffer) is sent byte by
byte to :class:`LinkEngine` wired to a :class:`NeuronCore` in the Amaranth simulator, and to
:class:`DeviceModel`; the decoded responses must be equal (ERROR messages and the ``cycles``
counter aside: the gateware sends no message text, the model has no cycles).
"""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from unlayered.boards import protocol as p
from unlayered.boards.device_model import DeviceModel
from unlayered.boards.link import LinkEngine
from unlayered.gateware.core import NeuronCore
from unlayered.gateware.layout import CoreLayout

from .links import small_events, small_model

BYTE_GAP = 4  # cycles between bytes from the host (a UART byte takes 40 or more)


class EngineBench(Elaboratable):
    """The link engine and a neuron core, with the engine's byte streams exposed."""

    def __init__(self, model, *, lanes, max_payload, trace_depth):
        self.core = NeuronCore(model, lanes)
        self.link = LinkEngine(
            model, self.core.layout, max_payload=max_payload, trace_depth=trace_depth
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.link = link = self.link
        wiring.connect(m, link.events, core.events)
        wiring.connect(m, link.weights, core.weights)
        wiring.connect(m, core.spikes, link.spikes)
        wiring.connect(m, core.summary, link.summary)
        m.d.comb += link.counters.eq(core.counters)
        m.d.comb += core.membranes.ready.eq(1)
        return m


def run_engine(bench: EngineBench, frames: list[bytes], *, limit: int = 30_000) -> list[bytes]:
    """Send each frame, collect its response (the bytes up to a closing delimiter, or b"")."""
    link = bench.link
    responses: list[bytes] = []

    async def testbench(ctx):
        ctx.set(link.tx.ready, 1)
        for frame in frames:
            for byte in frame:
                ctx.set(link.rx.valid, 1)
                ctx.set(link.rx.payload, byte)
                await ctx.tick()
                ctx.set(link.rx.valid, 0)
                await ctx.tick().repeat(BYTE_GAP - 1)
            got = bytearray()
            for _ in range(limit):
                if ctx.get(link.tx.valid):
                    got.append(ctx.get(link.tx.payload))
                await ctx.tick()
                if len(got) > 1 and got[-1] == 0:
                    break
            while ctx.get(link.computing):  # as a host would wait for BUSY to end
                await ctx.tick()
            responses.append(bytes(got))

    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return responses


def normalize(response: bytes):
    """A response as comparable values: ERROR without its message, SUMMARY without cycles."""
    (item,) = p.FrameReader().feed(response)
    message = p.decode_message(item)
    if isinstance(message, p.ErrorReply):
        return (item.seq, "ERROR", message.code.name, message.arg)
    if isinstance(message, p.Summary):
        message = replace(message, counters=(*message.counters[:-1], 0))
    return (item.seq, message)


class Script:
    """Frames of a session, numbered like a host would number them."""

    def __init__(self):
        self.frames: list[bytes] = []
        self.seq = 0

    def send(self, message, seq=None):
        """A new command (next number) or one with an explicit number."""
        if seq is None:
            seq = self.seq
            self.seq = (self.seq + 1) % 256
        self.frames.append(p.encode_message(message, seq))

    def raw(self, kind, payload, seq=None):
        if seq is None:
            seq = self.seq
            self.seq = (self.seq + 1) % 256
        self.frames.append(p.encode_frame(p.Packet(int(kind), seq, payload)))

    def again(self):
        self.frames.append(self.frames[-1])


def session(model, lanes: int, events, limits: p.PayloadLimits) -> Script:
    """A session that exercises every response of the protocol."""
    s = Script()
    n_in = model.n_inputs
    s.send(p.Info(), seq=5)  # no session yet
    s.seq = 7
    s.send(p.Reset())
    s.again()  # a retransmission: answered from the saved response
    s.send(p.Info())
    s.again()
    s.send(p.Info(), seq=s.seq + 1)  # out of order
    s.send(p.ReadResult(p.ResultPart.SUMMARY))  # no result
    s.send(p.Events(0, False, (1,)))  # no sample
    s.send(p.StartSample(1, 0))  # state 0
    # weights: refused ones, then another model's weights loaded (same shape)
    layout = CoreLayout.from_model(model, lanes)
    s.send(p.LoadWeights(lanes, 0, (1,)))
    s.send(p.LoadWeights(0, layout.weight_depth - 1, (1, 2)))
    s.send(p.LoadWeights(1, 3, (5, -128, 127, 128)))  # 128 does not fit 8 bits
    other = small_model(model.scheduler.name, seed=9)
    writes = layout.weight_writes(other)
    for bank in range(lanes):
        words = [w for b, _, w in writes if b == bank]
        for start in range(0, len(words), limits.words):
            s.send(p.LoadWeights(bank, start, tuple(words[start : start + limits.words])))
    # a sample fed with faults in between
    steps = events.sample_steps(0)
    s.send(p.StartSample(42, 99))
    s.send(p.StartSample(43, 99))  # a sample is in progress
    s.send(p.LoadWeights(0, 0, (1,)))  # not while a sample runs
    s.send(p.Events(1, False, ()))  # wrong step
    s.raw(p.MsgType.EVENTS, struct.pack("<IBH", 0, 2, 1))  # unknown flag
    s.send(p.Events(0, False, (3, n_in)))  # not an input
    s.send(p.Events(0, False, (3, 4, 3)))  # twice in one frame
    s.send(p.Events(0, False, (3, 4)))  # accepted: step 0 stays open
    s.send(p.Events(0, False, (5, 4)))  # 4 again in step 0, across frames
    s.send(p.Events(0, True, (6,)))  # the sample would end inside a step
    s.send(p.Events(0, False, (5, p.END_STEP, 4, 3, p.END_STEP)))  # 4 and 3 again: step 1
    s.again()
    records = [r for step in steps for r in (*step, p.END_STEP)]
    for start in range(0, max(len(records), 1), 5):
        piece = tuple(records[start : start + 5])
        s.send(p.Events(2 + sum(r == p.END_STEP for r in records[:start]), False, piece))
    s.send(p.Events(2 + len(steps), True, ()))
    # the result, in pages, with refused reads
    s.send(p.ReadResult(p.ResultPart.SUMMARY))
    s.send(p.ReadResult(p.ResultPart.COUNTS, 0, 1000))
    s.send(p.ReadResult(p.ResultPart.COUNTS, 2, 1))
    s.send(p.ReadResult(p.ResultPart.COUNTS, 5, 1))  # past the end
    for offset in range(0, 40, 7):
        s.send(p.ReadResult(p.ResultPart.TRACE, offset, 7))
    s.send(p.ReadResult(p.ResultPart.TRACE, 0, 1000))
    s.again()
    s.send(p.ReadResult(p.ResultPart.TRACE, 10_000, 1))
    s.raw(p.MsgType.READ_RESULT, struct.pack("<BIH", 3, 0, 1))  # no such part
    # damaged frames: answered with number 0 (or the frame's), nothing done
    good = p.encode_message(p.Info(), s.seq)
    s.frames.append(good[:3] + bytes([good[3] ^ 0x40]) + good[4:])  # CRC
    s.frames.append(b"\x00\x03\x01\x02\x00")  # too short
    s.frames.append(b"\x00\x05\x01\x02\x00")  # COBS block past the end
    s.frames.append(
        b"\x00" + p.cobs_encode(_with_crc(struct.pack("<BBH", 2, s.seq, 3))) + b"\x00"
    )  # length field 3, payload 0
    big = struct.pack("<BBH", 2, s.seq, limits.max_payload + 1) + bytes(limits.max_payload + 1)
    s.frames.append(b"\x00" + p.cobs_encode(_with_crc(big)) + b"\x00")  # longer than accepted
    s.raw(0x7F, b"", seq=s.seq)  # unknown command
    s.raw(p.MsgType.RESET, b"\x01", seq=s.seq)  # RESET with a payload
    # a second sample aborted by RESET, a third run to the end
    s.send(p.StartSample(7, 1234))
    s.send(p.Events(0, False, tuple(events.sample_steps(1)[0]) if events.sample_steps(1) else ()))
    s.send(p.Reset())
    s.send(p.ReadResult(p.ResultPart.SUMMARY))
    s.send(p.StartSample(8, 4321))
    records = [r for step in events.sample_steps(2) for r in (*step, p.END_STEP)]
    s.send(p.Events(0, True, tuple(records)))
    s.send(p.ReadResult(p.ResultPart.SUMMARY))
    s.send(p.ReadResult(p.ResultPart.TRACE, 0, 1000))
    s.send(p.ReadResult(p.ResultPart.COUNTS, 0, 4))
    return s


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<H", p.crc16_ccitt(body))


@pytest.mark.parametrize(
    ("scheduler", "trace_depth"),
    [("fifo", 24), ("random", 24), ("momentum", 24), ("sync", 24), ("fifo", 0)],
)
def test_engine_answers_as_the_device_model(scheduler, trace_depth):
    model = small_model(scheduler, seed=4)
    lanes, max_payload = 2, 128
    events = small_events(3, seed=11, max_steps=5)
    script = session(model, lanes, events, p.PayloadLimits(max_payload))
    device = DeviceModel(model, lanes, max_payload=max_payload, trace_depth=trace_depth)
    expected = [normalize(device.receive(frame)) for frame in script.frames]
    bench = EngineBench(model, lanes=lanes, max_payload=max_payload, trace_depth=trace_depth)
    got = run_engine(bench, script.frames)
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g, f"frame {i}: no response (expected {e})"
        assert normalize(g) == e, f"frame {i}: {script.frames[i].hex()}"
    # the session covered what it is meant to
    codes = {e[2] for e in expected if e[1] == "ERROR"}
    assert codes == {c.name for c in p.ErrorCode} - {"BUSY"}
    summaries = [e[1] for e in expected if isinstance(e[1], p.Summary)]
    assert any(s.trace_length > trace_depth for s in summaries), "no trace overflowed"
    pages = [e[1] for e in expected if isinstance(e[1], p.TraceChunk)]
    assert any(page.records for page in pages) == (trace_depth > 0)
    assert np.any([s.counters[1] for s in summaries]), "no spikes at all"
