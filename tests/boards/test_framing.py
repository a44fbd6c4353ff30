"""Frame receiver and transmitter gateware against the protocol's executable spec.

The receiver must split, decode and judge a byte stream exactly as ``protocol.FrameReader`` and
``decode_frame`` do, and recognise a retransmission of the saved frame; the transmitter must
send ``encode_frame``'s bytes. Seeded random streams keep the simulations short and repeatable.
"""

from __future__ import annotations

import random
import struct

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from unlayered.boards import protocol as p
from unlayered.boards.framing import FrameReceiver, FrameStatus, FrameTransmitter
from unlayered.sim import UnlayeredError


def run(dut, *benches, background=()):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in benches:
        sim.add_testbench(bench)
    for bench in background:
        sim.add_testbench(bench, background=True)
    sim.run()


def crc_bytes(data: bytes) -> bytes:
    return struct.pack("<H", p.crc16_ccitt(data))


def wire(body: bytes) -> bytes:
    """A body (header and payload, maybe malformed) framed with its correct CRC."""
    return b"\x00" + p.cobs_encode(body + crc_bytes(body)) + b"\x00"


def header(kind: int, seq: int, payload: bytes) -> bytes:
    return struct.pack("<BBH", kind, seq, len(payload)) + payload


def nonzero(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(1, 256) for _ in range(n))


def payload_bytes(rng: random.Random, n: int) -> bytes:
    """Random bytes, now and then mostly zeros or free of zeros (long COBS blocks)."""
    mode = rng.randrange(4)
    if mode == 0:
        return bytes(rng.choice([0, 0, 0, rng.randrange(256)]) for _ in range(n))
    if mode == 1:
        return nonzero(rng, n)
    return bytes(rng.randrange(256) for _ in range(n))


def zero_free_body(rng: random.Random, size: int) -> bytes:
    """Zero-free bytes whose CRC is zero-free too: ``size`` bytes with the CRC."""
    while True:
        body = nonzero(rng, size - 2)
        if 0 not in crc_bytes(body):
            return body


# --------------------------------------------------------------------------------------------
# Receiver


class ReceiverModel:
    """What the receiver must report, from FrameReader plus the saved-frame bookkeeping."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.reader = p.FrameReader()
        self.frame = bytearray()  # encoded bytes since the last delimiter
        self.saved: bytes | None = None

    def feed(self, byte: int) -> dict | None:
        frame = bytes(self.frame)
        if byte:
            self.frame.append(byte)
        else:
            self.frame.clear()
        results = self.reader.feed(bytes([byte]))
        if not results:
            return None
        (result,) = results
        if isinstance(result, p.FramingError):
            return {"status": FrameStatus.BAD_FRAME}
        body = p.cobs_decode(frame)
        if isinstance(result, p.CrcError):
            status = FrameStatus.BAD_CRC
        elif isinstance(result, p.LengthError) and len(body) < 6:
            status = FrameStatus.SHORT
        else:  # a packet, or a length field the executor must refuse
            assert isinstance(result, p.Packet | p.LengthError), result
            status = FrameStatus.OK
        head = body[:4].ljust(4, b"\x00")
        return {
            "status": status,
            "length": len(body),
            "type": head[0],
            "seq": head[1],
            "payload_length": head[2] | head[3] << 8,
            "same": self.saved is not None and len(body) <= self.capacity and body == self.saved,
            "body": body,
        }


async def check_held(ctx, rx: FrameReceiver, want: dict, capacity: int) -> None:
    got = {name: ctx.get(getattr(rx, name)) for name in want if name != "body"}
    expected = {name: value for name, value in want.items() if name != "body"}
    assert got == expected
    if "body" in want:
        stored = want["body"][:capacity]
        read = []
        ctx.set(rx.rd_addr, 0)
        for i in range(len(stored)):
            await ctx.tick()
            ctx.set(rx.rd_addr, (i + 1) % capacity)  # the next address: data must not follow yet
            read.append(ctx.get(rx.rd_data))  # byte i, one cycle after its address
        assert bytes(read) == stored


def receiver_bench(rx: FrameReceiver, data: bytes, seed: int, log: list):
    """Feeds ``data`` (random gaps, often none) and checks every report, then releases it,
    saving the frame half of the time (only frames whose bytes are known: not BAD_FRAME)."""
    rng = random.Random(seed)
    model = ReceiverModel(rx.capacity)

    async def bench(ctx):
        for byte in data:
            ctx.set(rx.bytes_in.valid, 1)
            ctx.set(rx.bytes_in.payload, byte)
            await ctx.tick()
            ctx.set(rx.bytes_in.valid, 0)
            want = model.feed(byte)
            assert ctx.get(rx.valid) == (want is not None)
            if want is None:
                gap = rng.choice([0, 0, 0, 0, 1, 2])  # often back to back
                if gap:
                    await ctx.tick().repeat(gap)
                continue
            await check_held(ctx, rx, want, rx.capacity)
            save = want["status"] != FrameStatus.BAD_FRAME and rng.random() < 0.5
            log.append((want["status"], want.get("same"), save))
            ctx.set(rx.release, 1)
            ctx.set(rx.save, save)
            await ctx.tick()
            ctx.set(rx.release, 0)
            ctx.set(rx.save, 0)
            assert not ctx.get(rx.valid)
            if save:
                model.saved = want["body"]
        assert ctx.get(rx.dropped) == 0

    return bench


def random_stream(rng: random.Random, capacity: int, n: int) -> bytes:
    """``n`` frames of every kind, good and bad, for a receiver of ``capacity``."""
    out = bytearray()
    last = header(0x05, 0, b"")  # the last good body, for retransmissions and near-misses
    for _ in range(n):
        kind = rng.choice(
            ["good"] * 6
            + ["again"] * 3
            + ["near"] * 2
            + ["edge", "flip", "drop", "junk"]
            + ["short", "cobs", "field", "empty", "bare"]
            + ["huge"] * (rng.random() < 0.3)
        )
        if kind == "good":
            size = rng.choice([0, 1, 2, 5, 10, capacity - 7, capacity - 6, capacity - 5])
            last = header(rng.randrange(256), rng.randrange(256), payload_bytes(rng, max(size, 0)))
            out += wire(last)
        elif kind == "again":  # a retransmission: same bytes, same=1 if it was saved
            out += wire(last)
        elif kind == "near":  # same length, one byte different (header or payload)
            near = bytearray(last)
            i = rng.randrange(len(near))
            near[i] = (near[i] + rng.randrange(1, 256)) % 256
            if i in (2, 3):
                near[2:4] = last[2:4]  # keep the length field right
                near[rng.choice([0, 1])] ^= 0x40
            out += wire(bytes(near))
        elif kind == "edge":  # decoded length around the capacity and the memory half
            size = rng.choice([capacity - 1, capacity, capacity + 1, 31, 32, 33, 63, 64, 65, 300])
            body = header(1, 2, payload_bytes(rng, max(size - 6, 0)))
            out += wire(body)
        elif kind == "flip":
            frame = bytearray(wire(header(3, 4, payload_bytes(rng, rng.randrange(12)))))
            i = rng.randrange(1, len(frame) - 1)
            frame[i] = rng.choice([0, (frame[i] + rng.randrange(1, 256)) % 256])
            out += frame
        elif kind == "drop":
            frame = bytearray(wire(header(3, 4, payload_bytes(rng, rng.randrange(12)))))
            del frame[rng.randrange(1, len(frame) - 1)]
            out += frame
        elif kind == "junk":
            out += b"\x00" + nonzero(rng, rng.randrange(1, 20)) + b"\x00"
        elif kind == "short":  # valid COBS, fewer than 6 bytes
            out += b"\x00" + p.cobs_encode(payload_bytes(rng, rng.randrange(6))) + b"\x00"
        elif kind == "cobs":  # a block that claims more bytes than the frame has
            good = p.cobs_encode(payload_bytes(rng, rng.randrange(4, 10)))
            out += b"\x00" + good + bytes([rng.randrange(3, 10)]) + nonzero(rng, 1) + b"\x00"
        elif kind == "field":  # CRC right, length field wrong: OK here, the executor refuses
            body = bytearray(header(7, 8, payload_bytes(rng, 4)))
            body[2] ^= rng.choice([1, 2, 0x80])
            out += wire(bytes(body))
        elif kind == "empty":
            out += b"\x00" * rng.randrange(1, 4)
        elif kind == "huge":  # around MAX_FRAME encoded bytes of junk: BAD_FRAME
            out += b"\x00" + nonzero(rng, p.MAX_FRAME + rng.randrange(-1, 3)) + b"\x00"
        elif kind == "bare":  # no leading delimiter: ends whatever came before
            out += wire(header(9, 9, payload_bytes(rng, 3)))[1:]
    return bytes(out)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_receiver_matches_frame_reader(seed):
    """Random good, bad, repeated and near-miss frames; status, fields, bytes, `same`."""
    capacity = 22  # halves of 32 bytes: frames of 23..33 and 64+ bytes probe both limits
    rng = random.Random(seed)
    data = random_stream(rng, capacity, 300)
    assert {len(frame) for frame in data.split(b"\x00")} & {p.MAX_FRAME + 1, p.MAX_FRAME + 2}
    log = []
    rx = FrameReceiver(capacity)
    run(rx, receiver_bench(rx, data, seed, log))
    # The stream really exercised every verdict, and `same` both ways after saves
    statuses = {status for status, _, _ in log}
    assert statuses == set(FrameStatus)
    assert {same for _, same, _ in log if same is not None} == {False, True}
    assert sum(save for _, _, save in log) >= 50


def test_receiver_long_frames():
    """Capacity 1030: block edges, the capacity edge, MAX_FRAME and one byte past it."""
    capacity = 1030
    rng = random.Random(7)
    bodies = [
        header(1, 0, payload_bytes(rng, 247)),  # 253 decoded bytes
        header(1, 1, nonzero(rng, 248)),  # 254: one full COBS block (plus the CRC's block)
        header(1, 2, nonzero(rng, 250)),  # 256
        header(1, 3, payload_bytes(rng, 503)),  # 509
        zero_free_body(rng, 508),
        zero_free_body(rng, 512),
        zero_free_body(rng, capacity),  # encoded in exactly MAX_FRAME bytes: accepted
    ]
    stream = b"".join(wire(body) for body in bodies)
    assert len(wire(bodies[-1])) == p.MAX_FRAME + 2
    stream += wire(bodies[-1])  # its retransmission (saved below: same = 1)
    bad = zero_free_body(rng, capacity + 1)  # valid COBS, but MAX_FRAME + 1 bytes: BAD_FRAME
    stream += wire(bad) + b"\x00" + nonzero(rng, p.MAX_FRAME + 40) + b"\x00"
    over = bytes(b if i % 100 else 0 for i, b in enumerate(nonzero(rng, capacity + 2)))
    assert len(wire(over)) == p.MAX_FRAME + 2
    stream += wire(over)  # 1034 bytes, longer than capacity, in MAX_FRAME: OK, not all stored
    stream += wire(bodies[-1])
    log = []
    rx = FrameReceiver(capacity)
    run(rx, receiver_bench(rx, stream, 1, log))
    statuses = [status for status, _, _ in log]
    assert statuses == [FrameStatus.OK] * 8 + [FrameStatus.BAD_FRAME] * 2 + [FrameStatus.OK] * 2


def test_receiver_save_sequence_and_dropped_bytes():
    """Explicit save/no-save sequence, bytes dropped while a frame is held, restart on release."""
    rx = FrameReceiver(30)
    a = header(0x03, 5, b"\x01\x00\x02")
    b = header(0x03, 6, b"\x01\x00\x02")  # same length as a, one byte different

    async def send(ctx, data):
        for byte in data:
            ctx.set(rx.bytes_in.valid, 1)
            ctx.set(rx.bytes_in.payload, byte)
            await ctx.tick()
        ctx.set(rx.bytes_in.valid, 0)

    async def release(ctx, save):
        ctx.set(rx.release, 1)
        ctx.set(rx.save, save)
        await ctx.tick()
        ctx.set(rx.release, 0)
        ctx.set(rx.save, 0)

    async def expect(ctx, status, same, body):
        assert ctx.get(rx.valid)
        await check_held(ctx, rx, {"status": status, "same": same, "body": body}, 30)

    async def bench(ctx):
        await send(ctx, wire(a))
        await expect(ctx, FrameStatus.OK, 0, a + crc_bytes(a))  # nothing saved yet
        await release(ctx, save=False)
        await send(ctx, wire(a))
        await expect(ctx, FrameStatus.OK, 0, a + crc_bytes(a))  # still nothing saved
        await release(ctx, save=True)  # a saved
        await send(ctx, wire(b))
        await expect(ctx, FrameStatus.OK, 0, b + crc_bytes(b))
        # Bytes while b is held are dropped and counted; b stays intact
        await send(ctx, wire(a)[:5])
        assert ctx.get(rx.dropped) == 5
        await expect(ctx, FrameStatus.OK, 0, b + crc_bytes(b))
        await release(ctx, save=False)  # b not saved: a still is
        await send(ctx, wire(a)[1:])  # no leading delimiter: release restarted the frame
        await expect(ctx, FrameStatus.OK, 1, a + crc_bytes(a))
        await release(ctx, save=False)
        await send(ctx, wire(b))
        await expect(ctx, FrameStatus.OK, 0, b + crc_bytes(b))
        await release(ctx, save=True)  # b replaces a
        await send(ctx, wire(a))
        await expect(ctx, FrameStatus.OK, 0, a + crc_bytes(a))
        await release(ctx, save=False)
        await send(ctx, wire(b))
        await expect(ctx, FrameStatus.OK, 1, b + crc_bytes(b))
        await release(ctx, save=False)
        # Only the last byte differs (the CRC's high byte): BAD_CRC, and not the same
        bad = b + crc_bytes(b)[:1] + bytes([crc_bytes(b)[1] ^ 0x01])
        await send(ctx, b"\x00" + p.cobs_encode(bad) + b"\x00")
        await expect(ctx, FrameStatus.BAD_CRC, 0, bad)
        await release(ctx, save=False)
        await send(ctx, wire(b))
        await expect(ctx, FrameStatus.OK, 1, b + crc_bytes(b))
        await release(ctx, save=False)
        # A frame longer than capacity, saved and sent again, is not `same` (not all compared)
        long = header(0x03, 7, bytes(range(1, 40)))
        await send(ctx, wire(long))
        await expect(ctx, FrameStatus.OK, 0, long + crc_bytes(long))
        await release(ctx, save=True)
        await send(ctx, wire(long))
        await expect(ctx, FrameStatus.OK, 0, long + crc_bytes(long))
        await release(ctx, save=False)
        await send(ctx, wire(b))
        await expect(ctx, FrameStatus.OK, 0, b + crc_bytes(b))
        await release(ctx, save=True)
        # A release without a frame held does nothing; nor does a strobe before the delimiter
        await release(ctx, save=True)
        await send(ctx, wire(b)[:-1])
        await release(ctx, save=True)
        assert not ctx.get(rx.valid)
        await send(ctx, b"\x00")
        await expect(ctx, FrameStatus.OK, 1, b + crc_bytes(b))
        assert ctx.get(rx.dropped) == 5

    run(rx, bench)


def test_receiver_dropped_saturates():
    rx = FrameReceiver(6)

    async def bench(ctx):
        ctx.set(rx.bytes_in.valid, 1)
        for byte in wire(b"\x01\x02\x03\x04"):
            ctx.set(rx.bytes_in.payload, byte)
            await ctx.tick()
        assert ctx.get(rx.valid) and ctx.get(rx.status) == FrameStatus.OK
        await ctx.tick().repeat(0xFFFF + 5)  # the same byte, again and again, all dropped
        assert ctx.get(rx.dropped) == 0xFFFF
        assert ctx.get(rx.valid) and ctx.get(rx.length) == 6

    run(rx, bench)


# --------------------------------------------------------------------------------------------
# Transmitter


def expected_frame(raw: bytes) -> bytes:
    return b"\x00" + p.cobs_encode(raw + crc_bytes(raw)) + b"\x00"


def crc_with_zero(rng: random.Random, size: int, which: int) -> bytes:
    """Random raw bytes whose CRC has a zero low (``which`` 0) or high (1) byte."""
    while True:
        raw = payload_bytes(rng, size)
        if crc_bytes(raw)[which] == 0:
            return raw


class Collector:
    """A sink with random backpressure that also checks the stream rules."""

    def __init__(self, port, rng: random.Random, ready: float):
        self.port, self.rng, self.ready, self.bytes = port, rng, ready, bytearray()

    async def bench(self, ctx):
        held = None  # (payload) offered but not taken at the last edge
        while True:
            ready = self.rng.random() < self.ready
            ctx.set(self.port.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(self.port.valid, self.port.payload)
            if held is not None:
                assert valid and payload == held, "valid dropped or payload changed while stalled"
            held = payload if valid and not ready else None
            if valid and ready:
                self.bytes.append(payload)


async def write_slot(ctx, tx: FrameTransmitter, slot: int, raw: bytes) -> None:
    ctx.set(tx.wr_slot, slot)
    ctx.set(tx.wr_en, 1)
    for i, byte in enumerate(raw):
        ctx.set(tx.wr_addr, i)
        ctx.set(tx.wr_data, byte)
        await ctx.tick()
    ctx.set(tx.wr_en, 0)


async def send_and_wait(ctx, tx: FrameTransmitter, slot: int, length: int, during=None) -> int:
    """Strobes ``send``; returns the cycles until busy falls (``during`` runs meanwhile)."""
    ctx.set(tx.send, 1)
    ctx.set(tx.send_slot, slot)
    ctx.set(tx.send_length, length)
    await ctx.tick()
    ctx.set(tx.send, 0)
    assert ctx.get(tx.busy)
    cycles = 1
    if during is not None:
        await during(ctx)
    while ctx.get(tx.busy):
        await ctx.tick()
        cycles += 1
        assert cycles < 20 * (length + 10), "the transmitter never finishes"
    await ctx.tick()  # let the collector see the last handshake
    return cycles


def transmitter_messages(rng: random.Random, capacity: int) -> list[bytes]:
    messages = [
        b"",
        b"\x00",
        b"\x80\x07\x00\x00",  # an OK response
        bytes(capacity),  # all zeros
        nonzero(rng, capacity),
        crc_with_zero(rng, 6, 0),
        crc_with_zero(rng, 9, 1),
    ]
    for n in (253, 254, 255, 256):  # with the CRC, blocks end before, at, after 254 bytes
        messages.append(zero_free_body(rng, n))
    for run_length in (253, 254, 255):
        messages.append(payload_bytes(rng, 3) + nonzero(rng, run_length) + b"\x00" * 2)
    for n in (250, 251, 506, 507, 508, capacity - 1):
        messages.append(payload_bytes(rng, n))
    messages.append(nonzero(rng, 254) + b"\x00" + nonzero(rng, 254))
    messages.append(header(0x83, 200, payload_bytes(rng, 300)))
    messages += [payload_bytes(rng, rng.randrange(capacity + 1)) for _ in range(4)]
    return messages


def test_transmitter_matches_cobs_encode():
    """Every message, sent from slot 0 under random backpressure, equals encode_frame's bytes;
    slot 1 sends (and is written during a slot 0 send) without touching slot 0."""
    capacity = 600
    rng = random.Random(3)
    tx = FrameTransmitter(capacity)
    sink = Collector(tx.bytes_out, rng, ready=0.6)
    messages = transmitter_messages(rng, capacity)
    error = p.ErrorReply(p.ErrorCode.BAD_CRC, 0)
    short = header(int(p.MsgType.ERROR), 0, error.payload())  # 14 bytes

    async def bench(ctx):
        await write_slot(ctx, tx, 1, short)
        for raw in messages:
            await write_slot(ctx, tx, 0, raw)
            start = len(sink.bytes)
            await send_and_wait(ctx, tx, 0, len(raw))
            assert bytes(sink.bytes[start:]) == expected_frame(raw)
            # A link error from slot 1 keeps slot 0; the resend of slot 0 is identical
            start = len(sink.bytes)
            await send_and_wait(ctx, tx, 1, len(short))
            assert bytes(sink.bytes[start:]) == p.encode_frame(p.Packet(0xFF, 0, error.payload()))
            start = len(sink.bytes)

            async def rewrite_slot1(ctx):
                await write_slot(ctx, tx, 1, bytes(rng.randrange(256) for _ in range(16)))
                await write_slot(ctx, tx, 1, short)

            await send_and_wait(ctx, tx, 0, len(raw), during=rewrite_slot1)
            assert bytes(sink.bytes[start:]) == expected_frame(raw)
        # A well-formed response equals encode_message's frame
        response = p.ErrorReply(p.ErrorCode.BAD_PAYLOAD, 0x1000, "weight out of range")
        raw = header(int(response.TYPE), 42, response.payload())
        await write_slot(ctx, tx, 0, raw)
        start = len(sink.bytes)
        await send_and_wait(ctx, tx, 0, len(raw))
        assert bytes(sink.bytes[start:]) == p.encode_message(response, 42)

    run(tx, bench, background=[sink.bench])


def test_transmitter_slot1_is_16_bytes():
    """Slot 1 addresses wrap at 16 (slot 0 untouched); a longer slot 1 send is cut to 16."""
    capacity = 100
    rng = random.Random(6)
    tx = FrameTransmitter(capacity)
    sink = Collector(tx.bytes_out, rng, ready=0.8)
    raw = payload_bytes(rng, capacity)
    junk = nonzero(rng, capacity)

    async def bench(ctx):
        await write_slot(ctx, tx, 0, raw)
        await write_slot(ctx, tx, 1, junk)  # addresses 0..99 of slot 1: the last 16 stay
        kept = bytes(junk[max(a for a in range(capacity) if a % 16 == i)] for i in range(16))
        for slot, length, want in [(0, capacity, raw), (1, 40, kept), (0, capacity, raw)]:
            start = len(sink.bytes)
            await send_and_wait(ctx, tx, slot, length)
            assert bytes(sink.bytes[start:]) == expected_frame(want)

    run(tx, bench, background=[sink.bench])


def test_transmitter_speed_and_busy():
    """Always-ready sink: about 2 cycles per byte; `send` while busy is ignored."""
    capacity = 1030
    rng = random.Random(4)
    tx = FrameTransmitter(capacity)
    sink = Collector(tx.bytes_out, rng, ready=1.0)
    raws = [nonzero(rng, capacity), bytes(capacity), payload_bytes(rng, capacity)]

    async def bench(ctx):
        for raw in raws:
            await write_slot(ctx, tx, 0, raw)
            start = len(sink.bytes)

            async def poke(ctx):  # a second send while busy: ignored
                ctx.set(tx.send, 1)
                ctx.set(tx.send_slot, 1)
                ctx.set(tx.send_length, 3)
                await ctx.tick()
                ctx.set(tx.send, 0)

            cycles = await send_and_wait(ctx, tx, 0, len(raw), during=poke)
            await ctx.tick().repeat(3)
            sent = bytes(sink.bytes[start:])
            assert sent == expected_frame(raw)
            assert cycles <= 2.1 * len(sent)  # well under a UART byte (>= 40 cycles)

    run(tx, bench, background=[sink.bench])


def test_loopback():
    """Transmitter into receiver, back to back: OK, same bytes; a resend is `same`."""
    capacity = 518
    rng = random.Random(5)
    m = Module()
    m.submodules.tx = tx = FrameTransmitter(capacity - 2)
    m.submodules.rx = rx = FrameReceiver(capacity)
    wiring.connect(m, tx.bytes_out, rx.bytes_in)
    raws = [
        header(0x80, 1, b""),
        header(0x84, 2, payload_bytes(rng, 300)),
        header(0x83, 3, nonzero(rng, capacity - 6)),
    ]

    async def bench(ctx):
        for raw in raws:
            await write_slot(ctx, tx, 0, raw)
            for saved in (False, True):
                await send_and_wait(ctx, tx, 0, len(raw))
                body = raw + crc_bytes(raw)
                want = {
                    "status": FrameStatus.OK,
                    "length": len(body),
                    "type": raw[0],
                    "seq": raw[1],
                    "payload_length": len(raw) - 4,
                    "same": saved,
                    "body": body,
                }
                await check_held(ctx, rx, want, capacity)
                ctx.set(rx.release, 1)
                ctx.set(rx.save, 1)
                await ctx.tick()
                ctx.set(rx.release, 0)
                ctx.set(rx.save, 0)

    run(m, bench)


# --------------------------------------------------------------------------------------------
# Details


def test_status_values_are_error_codes():
    assert FrameStatus.BAD_FRAME.value == p.ErrorCode.BAD_FRAME
    assert FrameStatus.BAD_CRC.value == p.ErrorCode.BAD_CRC
    assert FrameStatus.SHORT.value == p.ErrorCode.BAD_LENGTH


def test_capacity_is_checked():
    with pytest.raises(UnlayeredError, match="capacity must be an integer >= 6"):
        FrameReceiver(5)
    with pytest.raises(UnlayeredError, match="capacity must be an integer >= 4"):
        FrameTransmitter(3)
