"""Host link framing in gateware: COBS + CRC-16 frames in, out (``docs/protocol.md``).

:class:`FrameReceiver` splits the received byte stream into frames exactly as
:class:`~unlayered.boards.protocol.FrameReader` does, decodes COBS on the fly, checks the CRC and
holds each finished frame (status, header fields, bytes) for a command executor, comparing it
on the way with the last frame the executor saved (to recognise a retransmission).
:class:`FrameTransmitter` sends responses stored raw in one of two slots as
``0x00 | COBS(raw | crc16 LE) | 0x00``, byte for byte as
:func:`~unlayered.boards.protocol.cobs_encode` would.

CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final xor; one
byte per clock cycle.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, Value, unsigned
from amaranth.lib import enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from unlayered.gateware.memory import COLLISION_FREE

from .protocol import CRC_SIZE, HEADER_SIZE, MAX_FRAME

__all__ = ["FrameReceiver", "FrameStatus", "FrameTransmitter", "crc16_step"]

TX_SHORT_SLOT = 16  # bytes in the transmitter's slot 1 (link-error responses)


def _crc16_byte(crc: int, byte: int) -> int:
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
    return crc & 0xFFFF


def crc16_step(crc: Value, byte: Value) -> Value:
    """CRC-16/CCITT-FALSE of ``crc`` updated with one ``byte`` (MSB first), as logic.

    The update is linear over GF(2): each result bit is the xor of the ``crc`` and ``byte``
    bits that flip it (found by feeding single bits through the bit-serial definition).
    """
    inputs = Cat(Value.cast(crc)[:16], Value.cast(byte)[:8])  # bits 0..15 crc, 16..23 byte
    taps = [_crc16_byte(1 << i, 0) for i in range(16)] + [_crc16_byte(0, 1 << i) for i in range(8)]
    bits = []
    for bit in range(16):
        terms = [inputs[i] for i, tap in enumerate(taps) if tap >> bit & 1]
        bits.append(Cat(*terms).xor())
    return Cat(*bits)


class FrameStatus(enum.Enum, shape=2):
    """Verdict on a received frame; the error values equal :class:`protocol.ErrorCode`'s."""

    OK = 0  # valid COBS, at least 6 bytes, CRC matches (length field not checked)
    BAD_FRAME = 1  # invalid COBS, or more than MAX_FRAME encoded bytes
    BAD_CRC = 2  # the CRC does not match
    SHORT = 3  # fewer than 6 decoded bytes (answered with BAD_LENGTH = 3)


def _check_capacity(component: wiring.Component, capacity: int, least: int) -> int:
    from unlayered.sim import UnlayeredError

    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < least:
        component._MustUse__silence = True  # refused, so no "created but never used" warning
        raise UnlayeredError(f"frame capacity must be an integer >= {least}, got {capacity!r}")
    return capacity


class FrameReceiver(wiring.Component):
    """Receives, COBS-decodes and checks frames, and holds each one for the executor.

    Bytes are taken whenever ``valid`` is 0, back to back if need be (no minimum spacing). A
    zero byte closes a frame; an empty frame (two zeros in a row) is skipped. From the cycle after
    the closing zero, ``valid`` is 1 and the frame's verdict, header fields and bytes stay put
    until ``release``. The decoded bytes are stored in one half of a two-half memory while being
    compared with the other half, which holds the frame the executor last saved. Each half is
    ``2**ceil_log2(capacity)`` bytes: capacity 1030 needs 4 KiB (8 iCE40 block RAMs), 1024 half
    of that.

    Parameters
    ----------
    capacity
        Most decoded bytes stored: header + payload + CRC (device max payload + 6). Longer frames
        are still decoded, counted and CRC-checked, but only their first ``capacity`` bytes are
        stored.

    Members
    -------
    bytes_in : In(stream.Signature(8))
        Received bytes; ``ready`` is always 1. A byte that arrives while ``valid`` is 1 is dropped.
    dropped : Out(16)
        Bytes dropped because a frame was held (saturates at 0xFFFF).
    valid : Out(1)
        A frame is held: 1 from the cycle after its closing zero, through the cycle of
        ``release`` (0 the cycle after). The outputs below are meaningful only while it is 1.
    status : Out(FrameStatus)
        The frame's verdict, checked in :func:`protocol.decode_frame`'s order: ``BAD_FRAME``,
        ``SHORT``, ``BAD_CRC``, else ``OK``. The length field is not checked here.
    length : Out(16)
        Decoded bytes, header and CRC included (not meaningful for ``BAD_FRAME``).
    type, seq : Out(8)
        Decoded bytes 0 and 1 (0 where the frame is shorter).
    payload_length : Out(16)
        Decoded bytes 2..3, little-endian (the frame's length field; 0 bytes where shorter).
    same : Out(1)
        A saved frame exists and this frame's decoded bytes equal it (same length, every byte);
        0 for any frame longer than ``capacity``.
    release : In(1)
        Strobe while ``valid``: the frame is consumed, reception restarts as if a zero had just
        been received (a byte in that very cycle is still dropped; the next cycle's is taken).
        Ignored while ``valid`` is 0.
    save : In(1)
        With ``release``: the held frame becomes the saved frame, whatever its status (save
        only ``OK`` frames); otherwise the next frame overwrites it and the saved frame stays.
    rd_addr : In(range(capacity))
        Byte of the held frame to read, while ``valid``.
    rd_data : Out(8)
        Byte ``rd_addr`` of the held frame, one cycle after ``rd_addr`` (``valid`` must be 1 in
        the cycle the address is given).
    """

    def __init__(self, capacity: int):
        self._capacity = _check_capacity(self, capacity, HEADER_SIZE + CRC_SIZE)
        super().__init__(
            {
                "bytes_in": In(stream.Signature(unsigned(8))),
                "dropped": Out(16),
                "valid": Out(1),
                "status": Out(FrameStatus),
                "length": Out(16),
                "type": Out(8),
                "seq": Out(8),
                "payload_length": Out(16),
                "same": Out(1),
                "release": In(1),
                "save": In(1),
                "rd_addr": In(range(capacity)),
                "rd_data": Out(8),
            }
        )

    @property
    def capacity(self) -> int:
        return self._capacity

    def elaborate(self, platform):
        m = Module()
        capacity = self._capacity
        abits = ceil_log2(capacity)  # each half holds 2**abits >= capacity bytes
        m.submodules.memory = memory = Memory(
            shape=unsigned(8), depth=2 << abits, init=[], attrs=COLLISION_FREE
        )
        wr = memory.write_port()
        rd = memory.read_port()  # shared: the saved half while receiving, the held half after

        cur = Signal()  # the half being written (and then held); ~cur holds the saved frame
        have_saved = Signal()
        saved_length = Signal(16)

        # Frame state, reset at every delimiter and release
        enc_count = Signal(range(MAX_FRAME + 2))  # encoded bytes, saturates at MAX_FRAME + 1
        remaining = Signal(8)  # data bytes left in the current COBS block
        zero_pending = Signal()  # the current block ends in an implicit zero (code != 255)
        count = Signal(16)  # decoded bytes (<= MAX_FRAME, see `overflow`)
        crc = Signal(16, init=0xFFFF)
        last = Signal(8)  # the last two decoded bytes: the CRC once the frame ends
        before_last = Signal(8)
        mismatch = Signal()  # a compared byte differed from the saved frame's
        cmp_pending = Signal()  # rd.data is the saved byte to compare with cmp_byte
        cmp_byte = Signal(8)

        overflow = enc_count > MAX_FRAME
        idle = ~self.valid
        byte = self.bytes_in.payload
        take = self.bytes_in.valid & idle

        m.d.comb += self.bytes_in.ready.eq(1)
        with m.If(self.bytes_in.valid & self.valid & (self.dropped != 0xFFFF)):
            m.d.sync += self.dropped.eq(self.dropped + 1)

        # One read port: compare address while receiving, the executor's while a frame is held
        rd_index = Signal(abits)
        m.d.comb += [
            rd_index.eq(Mux(self.valid, self.rd_addr, count)),
            rd.addr.eq(Cat(rd_index, Mux(self.valid, cur, ~cur))),
            self.rd_data.eq(rd.data),
        ]
        # The byte read one cycle earlier is compared now (or folded in at the delimiter)
        differs = cmp_pending & (rd.data != cmp_byte)
        m.d.sync += cmp_pending.eq(0)
        with m.If(differs):
            m.d.sync += mismatch.eq(1)

        emit = Signal()
        emit_byte = Signal(8)
        m.d.comb += [
            wr.addr.eq(Cat(count[:abits], cur)),
            wr.data.eq(emit_byte),
            wr.en.eq(emit & (count < capacity)),
        ]
        with m.If(emit):
            m.d.sync += [
                count.eq(count + 1),
                before_last.eq(last),
                last.eq(emit_byte),
                cmp_pending.eq(count < capacity),
                cmp_byte.eq(emit_byte),
            ]
            # The CRC covers all but the last two bytes: feed each byte two bytes late
            with m.If(count >= 2):
                m.d.sync += crc.eq(crc16_step(crc, before_last))
            with m.Switch(count):
                with m.Case(0):
                    m.d.sync += self.type.eq(emit_byte)
                with m.Case(1):
                    m.d.sync += self.seq.eq(emit_byte)
                with m.Case(2):
                    m.d.sync += self.payload_length[:8].eq(emit_byte)
                with m.Case(3):
                    m.d.sync += self.payload_length[8:].eq(emit_byte)

        def restart():
            m.d.sync += [
                enc_count.eq(0),
                remaining.eq(0),
                zero_pending.eq(0),
                count.eq(0),
                crc.eq(crc.init),
                mismatch.eq(0),
            ]

        with m.If(take & (byte == 0)):
            restart()
            with m.If(enc_count != 0):
                with m.If(overflow | (remaining != 0)):  # too long, or a block runs past the end
                    m.d.sync += self.status.eq(FrameStatus.BAD_FRAME)
                with m.Elif(count < HEADER_SIZE + CRC_SIZE):
                    m.d.sync += self.status.eq(FrameStatus.SHORT)
                with m.Elif(crc != Cat(before_last, last)):
                    m.d.sync += self.status.eq(FrameStatus.BAD_CRC)
                with m.Else():
                    m.d.sync += self.status.eq(FrameStatus.OK)
                m.d.sync += [
                    self.valid.eq(1),
                    self.length.eq(count),
                    self.same.eq(
                        have_saved
                        & (count == saved_length)
                        & (count <= capacity)
                        & ~mismatch
                        & ~differs
                    ),
                ]
        with m.Elif(take):
            with m.If(~overflow):
                m.d.sync += enc_count.eq(enc_count + 1)
            with m.If(enc_count < MAX_FRAME):  # past MAX_FRAME the frame is only discarded
                with m.If(remaining == 0):  # a code byte: the previous block's zero, if any
                    m.d.comb += [emit.eq(zero_pending), emit_byte.eq(0)]
                    m.d.sync += [remaining.eq(byte - 1), zero_pending.eq(byte != 255)]
                with m.Else():
                    m.d.comb += [emit.eq(1), emit_byte.eq(byte)]
                    m.d.sync += remaining.eq(remaining - 1)

        with m.If(self.valid & self.release):
            restart()
            m.d.sync += [
                self.valid.eq(0),
                self.type.eq(0),
                self.seq.eq(0),
                self.payload_length.eq(0),
            ]
            with m.If(self.save):
                m.d.sync += [cur.eq(~cur), have_saved.eq(1), saved_length.eq(self.length)]
        return m


class FrameTransmitter(wiring.Component):
    """Sends a raw response from one of two slots as a COBS frame with its CRC.

    A slot holds ``type | seq | length | payload`` (no CRC). ``send`` transmits
    ``0x00 | COBS(raw | crc16 LE) | 0x00``. COBS needs to know where each block ends before its
    code byte goes out, so each block is scanned (CRC computed on the way), then its code byte
    sent, then its bytes read again and sent: about 2 cycles per byte, 4 per zero-free block of
    up to 254 bytes plus 2, when ``bytes_out`` is always ready.

    Parameters
    ----------
    capacity
        Bytes of slot 0 (the saved response to the last accepted command).

    Members
    -------
    wr_slot : In(1)
        Slot to write: 0 (``capacity`` bytes) or 1 (16 bytes, link-error responses; ``wr_addr``
        is taken modulo 16, so slot 0 is never touched).
    wr_addr : In(range(capacity))
        Byte to write.
    wr_data : In(8)
        Its value.
    wr_en : In(1)
        Write strobe. Never write the slot being sent while ``busy``; the other slot is fine.
    send : In(1)
        Strobe: send ``send_length`` raw bytes of ``send_slot``. Acted on only while ``busy`` is
        0 (ignored otherwise); may come in the same cycle as the slot's last write.
    send_slot : In(1)
        Slot to send.
    send_length : In(range(capacity + 1))
        Raw bytes to send, CRC not included (at most 16 for slot 1; more is cut to 16).
    bytes_out : Out(stream.Signature(8))
        The frame's bytes, both delimiters included; backpressure is honoured.
    busy : Out(1)
        From the cycle after an accepted ``send`` through the cycle in which the closing
        delimiter is accepted. (Registered: 0 during the ``send`` cycle itself.)
    """

    def __init__(self, capacity: int):
        self._capacity = _check_capacity(self, capacity, HEADER_SIZE)
        super().__init__(
            {
                "wr_slot": In(1),
                "wr_addr": In(range(capacity)),
                "wr_data": In(8),
                "wr_en": In(1),
                "send": In(1),
                "send_slot": In(1),
                "send_length": In(range(capacity + 1)),
                "bytes_out": Out(stream.Signature(unsigned(8))),
                "busy": Out(1),
            }
        )

    @property
    def capacity(self) -> int:
        return self._capacity

    def elaborate(self, platform):
        m = Module()
        capacity = self._capacity
        # Slot 0 at 0..capacity-1, slot 1 right after it
        m.submodules.memory = memory = Memory(
            shape=unsigned(8), depth=capacity + TX_SHORT_SLOT, init=[], attrs=COLLISION_FREE
        )
        wr = memory.write_port()
        rd = memory.read_port()

        m.d.comb += [
            wr.addr.eq(Mux(self.wr_slot, capacity + self.wr_addr[:4], self.wr_addr)),
            wr.data.eq(self.wr_data),
            wr.en.eq(self.wr_en),
        ]

        base = Signal(range(capacity + 1))  # memory address of the slot being sent
        raw_length = Signal(range(capacity + 1))  # L: raw bytes; the data is L + 2 with the CRC
        index = Signal(range(capacity + 3))  # the byte of raw | crc being scanned or sent
        next_index = Signal.like(index)  # index next cycle: addressed now, read data then
        block_start = Signal.like(index)
        next_block = Signal.like(index)  # where the block after this one starts
        block = Signal(8)  # bytes in the block (scan), then bytes left to send (emit)
        final = Signal()  # this block ends at the end of the data: no block after it
        crc = Signal(16, init=0xFFFF)

        # rd.data is always byte `index` (its address was given the cycle before)
        m.d.comb += [next_index.eq(index), rd.addr.eq(base + next_index)]
        m.d.sync += index.eq(next_index)
        data = Signal(8)  # byte `index` of raw | crc (low byte first)
        with m.If(index < raw_length):
            m.d.comb += data.eq(rd.data)
        with m.Elif(index == raw_length):
            m.d.comb += data.eq(crc[:8])
        with m.Else():
            m.d.comb += data.eq(crc[8:])

        out = self.bytes_out
        sent = out.valid & out.ready

        def block_done():
            with m.If(final):
                m.next = "close"
            with m.Else():
                m.d.comb += next_index.eq(next_block)
                m.d.sync += [block_start.eq(next_block), block.eq(0)]
                m.next = "scan"

        with m.FSM() as fsm:
            with m.State("idle"):
                with m.If(self.send):
                    m.d.comb += next_index.eq(0)
                    m.d.sync += [
                        base.eq(Mux(self.send_slot, capacity, 0)),
                        raw_length.eq(
                            Mux(
                                self.send_slot & (self.send_length > TX_SHORT_SLOT),
                                TX_SHORT_SLOT,
                                self.send_length,
                            )
                        ),
                        block_start.eq(0),
                        block.eq(0),
                        final.eq(0),
                        crc.eq(crc.init),
                    ]
                    m.next = "open"
            with m.State("open"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(0)]
                with m.If(sent):
                    m.next = "scan"
            with m.State("scan"):
                # Count the block's bytes up to a zero, the end of the data, or 254 bytes
                end = index == raw_length + CRC_SIZE
                with m.If((block == 254) | end | (data == 0)):
                    m.d.comb += next_index.eq(block_start)  # send the code, then re-read
                    m.d.sync += [final.eq((block != 254) & end), next_block.eq(index)]
                    with m.If((block != 254) & ~end):  # the zero ends the block, not sent
                        m.d.sync += next_block.eq(index + 1)
                        with m.If(index < raw_length):
                            m.d.sync += crc.eq(crc16_step(crc, data))
                    m.next = "code"
                with m.Else():
                    m.d.comb += next_index.eq(index + 1)
                    m.d.sync += block.eq(block + 1)
                    with m.If(index < raw_length):
                        m.d.sync += crc.eq(crc16_step(crc, data))
            with m.State("code"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(block + 1)]
                with m.If(sent):
                    with m.If(block == 0):
                        block_done()
                    with m.Else():
                        m.next = "data"
            with m.State("data"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(data)]
                with m.If(sent):
                    m.d.sync += block.eq(block - 1)
                    with m.If(block == 1):
                        block_done()
                    with m.Else():
                        m.d.comb += next_index.eq(index + 1)
            with m.State("close"):
                m.d.comb += [out.valid.eq(1), out.payload.eq(0)]
                with m.If(sent):
                    m.next = "idle"
        m.d.comb += self.busy.eq(~fsm.ongoing("idle"))
        return m
