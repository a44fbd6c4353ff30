"""Bitstream builds: real builds of the board top (``LinkTop``: UART, link engine, core) of a
small model for each board with the board's defaults (marked ``bitstream``; a minute or two each
once the YoWASP WebAssembly is compiled, which the first run does), the failures a build must
refuse loudly (no fit, a missed clock: on the small bring-up ``EchoTop``, seconds, which is
also built for each board), and programming (dry run and error paths only)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from unlayered.boards.build import BuildError, build_bitstream, fit_report
from unlayered.boards.program import ProgramError, program, program_command
from unlayered.boards.targets import EchoTop, get_target
from unlayered.boards.top import LinkTop
from unlayered.sim import load_model
from unlayered.sw.demo import EXAMPLES_DIR

from .links import small_model

BOARDS = {
    # board: (bitstream, programmer command without the bitstream)
    "icebreaker": ("top.bin", ["iceprog"]),
    "ulx3s": ("top.bit", ["openFPGALoader", "-b", "ulx3s"]),
}


def _no_bitstream(out: Path) -> None:
    assert not (out / "top.bin").exists() and not (out / "top.bit").exists()
    for leftover in ("top.asc", "top.config", "top.bin", "top.bit", "top.svf"):
        assert not (out / "build" / leftover).exists()
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed" and "bitstream" not in report


def link_top(model):
    """The factory ``unlayered build`` uses: the board top for a resolved BoardConfig."""

    def make(cfg):
        return LinkTop.for_board(model, cfg)

    return make


# ---------------------------------------------------------------------------------------------
# real builds


@pytest.mark.bitstream
@pytest.mark.parametrize("board", sorted(BOARDS))
def test_build_the_board_top(board, tmp_path):
    """The real design, with the board's defaults: clock, lanes, weight memory, link buffers.

    The network is the repository's example (64-32-10, momentum), the largest pending structure
    of the four schedulers."""
    model = load_model(EXAMPLES_DIR / "model.npz")
    assert model.scheduler.name == "momentum"
    target = get_target(board)
    report = build_bitstream(link_top(model), board, tmp_path, model=model)
    assert report == json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "ok" and report["board"] == board
    assert report["device"] == target.device
    config = report["config"]
    assert (config["lanes"], config["weight_ram"]) == (target.lanes, target.weight_ram)
    assert (config["max_payload"], config["trace_depth"]) == (
        target.max_payload,
        target.trace_depth,
    )
    assert config["uart_divisor"] == target.clock_hz // target.baud

    # the bitstream: there, not empty, the recorded hash
    name, command = BOARDS[board]
    bitstream = tmp_path / report["bitstream"]["path"]
    assert bitstream.name == name and bitstream.stat().st_size > 10_000
    assert report["bitstream"]["bytes"] == bitstream.stat().st_size
    assert report["bitstream"]["sha256"] == hashlib.sha256(bitstream.read_bytes()).hexdigest()

    # the clock: the PLL's, met on every clock
    mhz = target.clock_hz / 1e6
    assert report["clock"]["pll_hz"] == report["clock"]["requested_hz"] == target.clock_hz
    assert report["timing_met"] is True and report["fmax_mhz"]
    for clock in report["fmax_mhz"].values():
        assert clock["achieved"] >= clock["constraint"] >= mhz * 0.999
    assert report["fmax_min_mhz"] >= mhz

    # resources: placed, within the device; the core's weights where the target keeps them
    res = report["resources"]
    assert set(res) == {"logic", "ff", "bram", "spram", "dsp", "io", "pll"}
    for column, entry in res.items():
        assert 0 <= entry["used"] <= entry["available"], column
    assert res["logic"]["used"] > 1000 and res["ff"]["used"] > 500
    assert res["bram"]["used"] >= 1 and res["pll"]["used"] == 1
    assert res["io"]["used"] >= 2 + len(target.leds)  # oscillator, UART, LEDs
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert report["fit"]["fits"] and fit["core"]["lanes"] == target.lanes
    assert {m["name"] for m in fit["top_memories"]} >= {"receive buffer", "trace"}
    if target.weight_ram == "spram":
        assert res["spram"]["used"] == fit["core"]["spram"] >= 1
    else:
        assert res["spram"]["used"] == 0
    # yosys may put small memories into logic: the estimate is an upper bound
    assert res["bram"]["used"] <= report["fit"]["totals"]["ebr"]["used"]

    assert {"fit", "elaborate", "synthesis", "place_and_route", "pack", "total"} <= set(
        report["seconds"]
    )
    assert report["versions"]["amaranth-boards"] == "0.0.21"
    assert report["versions"]["yosys"].startswith("Yosys")

    # what programming would run
    assert program(tmp_path, dry_run=True) == [*command, str(bitstream.resolve())]


@pytest.mark.bitstream
@pytest.mark.parametrize("board", sorted(BOARDS))
def test_build_the_bring_up_top(board, tmp_path):
    """EchoTop, the bring-up design (seconds): it builds, and its one memory, the echo FIFO,
    is exactly the block RAM the fit estimate counts."""
    report = build_bitstream(EchoTop.for_board, board, tmp_path)
    assert report["status"] == "ok" and report["timing_met"] is True
    assert (tmp_path / BOARDS[board][0]).stat().st_size > 10_000
    res = report["resources"]
    assert 0 < res["logic"]["used"] < 1000 and 0 < res["ff"]["used"] < 1000
    assert res["bram"]["used"] == report["fit"]["totals"]["ebr"]["used"] == 1
    assert res["spram"]["used"] == res["dsp"]["used"] == 0 and res["pll"]["used"] == 1


@pytest.mark.bitstream
def test_missed_clock_is_refused_after_place_and_route(tmp_path):
    """200 MHz on the UP5K: the PLL can make it (201 MHz), the logic cannot run at it."""
    (tmp_path / "top.bin").write_bytes(b"stale bitstream of an earlier build")
    with pytest.raises(BuildError, match=r"timing not met on icebreaker at 201 MHz") as info:
        build_bitstream(EchoTop.for_board, "icebreaker", tmp_path, clock_hz=200e6)
    assert info.value.stage == "timing"
    assert re.search(r"clock 'clk': \d+\.\d+ MHz achieved, 201\.\d+ MHz required", str(info.value))
    _no_bitstream(tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["timing_met"] is False and report["fmax_min_mhz"] < 200
    assert (tmp_path / "build" / "top.tim").exists()  # the log stays for a look
    with pytest.raises(ProgramError, match="did not succeed"):
        program(tmp_path, dry_run=True)


# ---------------------------------------------------------------------------------------------
# failures before any tool runs


def test_impossible_clock_is_refused_at_once(tmp_path):
    with pytest.raises(BuildError, match=r"400 MHz is outside 16\.\.275 MHz") as info:
        build_bitstream(EchoTop.for_board, "icebreaker", tmp_path, clock_hz=400e6)
    assert info.value.stage == "config"
    _no_bitstream(tmp_path)
    assert not (tmp_path / "build").exists()


def test_design_too_large_is_refused_before_synthesis(tmp_path):
    def huge(config):
        return EchoTop.for_board(config, fifo_depth=1 << 17)  # 1 Mbit of FIFO

    with pytest.raises(BuildError, match=r"does not fit iCE40UP5K .* ebr 256 > 30") as info:
        build_bitstream(huge, "icebreaker", tmp_path)
    assert info.value.stage == "fit"
    _no_bitstream(tmp_path)
    assert not (tmp_path / "build").exists()
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["fits"] is False and fit["top_memories"][0]["ebr"] == 256


def test_unknown_board_and_a_top_for_another_clock(tmp_path):
    with pytest.raises(BuildError, match="unknown board 'arty'; known boards: icebreaker, ulx3s"):
        build_bitstream(EchoTop.for_board, "arty", tmp_path)
    top = EchoTop(clock_hz=12_000_000, divisor=12)
    mhz = get_target("icebreaker").clock_hz / 1e6
    with pytest.raises(
        BuildError, match=f"made for 12 MHz but the PLL of icebreaker makes {mhz:g}"
    ):
        build_bitstream(top, "icebreaker", tmp_path)


def test_fit_report_counts_the_core_and_the_top():
    model = small_model("fifo")
    ice = get_target("icebreaker").config()
    memories = [
        {"name": "rx", "words": 1100, "bits": 8},  # the link engine's convention
        {"name": "trace", "depth": 256, "width": 80},
        {"name": "regs", "depth": 16, "width": 8, "ram": "lut"},
    ]
    fit = fit_report(ice, model=model, memories=memories)
    assert fit["core"]["weight_ram"] == "spram" and fit["core"]["spram"] >= 1
    ebr = [m["ebr"] for m in fit["top_memories"]]
    assert ebr == [3, 5, 0]  # 1100x8 in 512x8 blocks; 256x80 in 256x16 blocks; LUTs
    assert fit["totals"]["ebr"]["used"] == fit["core"]["ebr"] + 8
    assert fit["totals"]["spram"] == {"used": fit["core"]["spram"], "available": 4}
    assert fit["fits"]

    ecp = fit_report(get_target("ulx3s").config(), model=model, lanes=2, memories=memories)
    assert ecp["core"]["lanes"] == 2 and ecp["core"]["spram"] == 0
    assert ecp["totals"]["ebr"]["available"] == 208 and ecp["fits"]
    with pytest.raises(BuildError, match="SPRAM"):
        fit_report(
            get_target("ulx3s").config(), memories=[{"depth": 8, "width": 8, "ram": "spram"}]
        )
    with pytest.raises(BuildError, match="needs integer 'depth' and 'width'"):
        fit_report(ice, memories=[{"name": "x"}])


# ---------------------------------------------------------------------------------------------
# programming: dry runs and refusals (never a board)


def _fake_build(tmp_path: Path, board: str, content: bytes = b"\xff\x00" * 64) -> Path:
    name = BOARDS[board][0]
    (tmp_path / name).write_bytes(content)
    report = {
        "status": "ok",
        "board": board,
        "bitstream": {
            "path": name,
            "bytes": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        },
    }
    (tmp_path / "report.json").write_text(json.dumps(report))
    return tmp_path / name


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_program_dry_run(board, tmp_path):
    bitstream = _fake_build(tmp_path, board)
    expected = [*BOARDS[board][1], str(bitstream.resolve())]
    assert program(tmp_path, dry_run=True) == expected
    assert program_command(tmp_path) == expected
    custom = program(tmp_path, tool="/opt/bin/prog", dry_run=True)
    assert custom == ["/opt/bin/prog", *expected[1:]]


def test_program_refuses_without_a_valid_build(tmp_path):
    with pytest.raises(ProgramError, match=r"report\.json not found: build first"):
        program(tmp_path, dry_run=True)
    bitstream = _fake_build(tmp_path, "icebreaker")
    bitstream.write_bytes(b"something else")
    with pytest.raises(ProgramError, match="not the bitstream the build reported"):
        program(tmp_path, dry_run=True)
    bitstream.unlink()
    with pytest.raises(ProgramError, match=r"bitstream of .* is missing"):
        program(tmp_path, dry_run=True)
    (tmp_path / "report.json").write_text(
        json.dumps({"status": "failed", "stage": "timing", "error": "timing not met"})
    )
    with pytest.raises(ProgramError, match="did not succeed \\(timing: timing not met\\)"):
        program(tmp_path)
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(ProgramError, match="cannot read"):
        program(tmp_path)


@pytest.mark.parametrize(
    ("board", "package"), [("icebreaker", "fpga-icestorm"), ("ulx3s", "openfpgaloader")]
)
def test_program_says_how_to_install_a_missing_programmer(board, package, tmp_path):
    _fake_build(tmp_path, board)
    with pytest.raises(ProgramError, match=f"not on PATH; install it: apt-get .*{package}"):
        program(tmp_path, tool="/nonexistent/programmer")
