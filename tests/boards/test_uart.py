"""The UART in Amaranth's simulator: loopback, bit timing, framing errors, overrun."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from unlayered.boards import protocol as p
from unlayered.boards.uart import UART, UARTRx, UARTTx
from unlayered.sim import UnlayeredError


async def put(ctx, port, value):
    ctx.set(port.valid, 1)
    ctx.set(port.payload, value)
    await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)


async def get(ctx, port):
    ctx.set(port.ready, 1)
    (value,) = await ctx.tick().sample(port.payload).until(port.valid)
    ctx.set(port.ready, 0)
    return value


def run(dut, *benches):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for bench in benches:
        sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_loopback(divisor):
    """Bytes through TX into RX (a protocol frame among them), with random gaps and stalls."""
    rng = random.Random(divisor)
    data = list(p.encode_message(p.StartSample(1234, 0xDEADBEEF), 17))
    data += [0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(12)]
    uart = UART(divisor)
    m = Module()
    m.submodules.uart = uart
    m.d.comb += uart.rx.eq(uart.tx)
    received = []

    async def sender(ctx):
        for byte in data:
            await ctx.tick().repeat(rng.choice([1, 1, 3, 5 * divisor]))
            await put(ctx, uart.tx_data, byte)

    async def receiver(ctx):
        for _ in data:
            received.append(await get(ctx, uart.rx_data))
            assert not ctx.get(uart.rx_error) and not ctx.get(uart.rx_overrun)
            await ctx.tick().repeat(rng.randrange(1, 3 * divisor))  # well within one byte time

    run(m, sender, receiver)
    assert received == data
    (packet,) = p.FrameReader().feed(bytes(received))
    assert p.decode_message(packet) == p.StartSample(1234, 0xDEADBEEF)


def test_tx_bit_timing():
    divisor = 5
    tx = UARTTx(divisor)
    line = []

    async def bench(ctx):
        assert ctx.get(tx.tx) == 1 and ctx.get(tx.data.ready)
        await put(ctx, tx.data, 0b1011_0010)
        for _ in range(11 * divisor):
            line.append(ctx.get(tx.tx))
            await ctx.tick()

    run(tx, bench)
    bits = [0, 0, 1, 0, 0, 1, 1, 0, 1, 1]  # start, LSB first, stop
    assert line == [b for b in bits for _ in range(divisor)] + [1] * divisor


async def send_bits(ctx, port, bits, divisor):
    for bit in bits:
        ctx.set(port, bit)
        await ctx.tick().repeat(divisor)


def test_rx_framing_error_overrun_and_rate_tolerance():
    divisor = 32
    rx = UARTRx(divisor)
    events = []

    def frame(byte, stop=1):
        return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]

    async def line(ctx):
        await send_bits(ctx, rx.rx, [1, 1], divisor)
        await send_bits(ctx, rx.rx, [*frame(0x3C, stop=0), 0, 0, 1], divisor)  # then a break
        await send_bits(ctx, rx.rx, [*frame(0xA5), 1], divisor)
        await send_bits(ctx, rx.rx, [*frame(0x5A), 1], divisor)  # overruns: 0xA5 not taken
        await send_bits(ctx, rx.rx, [1, 1], divisor)
        # senders 3% fast and 3% slow are still read right
        await send_bits(ctx, rx.rx, [*frame(0x81), 1], divisor - 1)
        await send_bits(ctx, rx.rx, [*frame(0x7E), 1], divisor + 1)
        await send_bits(ctx, rx.rx, [1, 1], divisor)

    async def watch(ctx):
        async for _clk, _rst, error, overrun in ctx.tick().sample(rx.error, rx.overrun):
            if error:
                events.append("error")
            if overrun:
                events.append("overrun")

    async def consumer(ctx):
        await ctx.tick().until(rx.overrun)
        events.append(await get(ctx, rx.data))  # the byte before the overrun
        events.append(await get(ctx, rx.data))
        events.append(await get(ctx, rx.data))

    sim = Simulator(rx)
    sim.add_clock(1e-6)
    sim.add_testbench(line)
    sim.add_testbench(consumer)
    sim.add_testbench(watch, background=True)
    sim.run()
    assert events == ["error", "overrun", 0xA5, 0x81, 0x7E]


def test_divisor_is_checked():
    with pytest.raises(UnlayeredError, match="divisor must be an integer >= 4"):
        UART(3)
