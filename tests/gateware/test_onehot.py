"""``gateware/onehot.py``: the one-hot state machine follows ``m.FSM``'s rules."""

import itertools

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from unlayered.gateware.onehot import OneHotFSM


def _machine(kind: str):
    """A three-state machine whose state A has two gotos, the later one conditional, written
    with ``m.FSM`` (kind "fsm") or ``OneHotFSM``; returns the module, its input and a function
    giving the current state's name."""
    m = Module()
    go, late = Signal(), Signal()
    if kind == "fsm":
        with m.FSM() as fsm:
            with m.State("A"):
                with m.If(go):
                    m.next = "B"
                    with m.If(late):
                        m.next = "C"
            with m.State("B"):
                m.next = "C"
            with m.State("C"):
                with m.If(go):
                    m.next = "A"
        states = ["A", "B", "C"]
        return m, go, late, lambda ctx: next(s for s in states if ctx.get(fsm.ongoing(s)))
    seq = OneHotFSM(m, ["A", "B", "C"], name="seq")
    with seq.state("A"):
        with m.If(go):
            seq.goto("B")
            with m.If(late):
                seq.goto("C")
    with seq.state("B"):
        seq.goto("C")
    with seq.state("C"):
        with m.If(go):
            seq.goto("A")

    def current(ctx):
        hot = [s for s, flag in seq.flags.items() if ctx.get(flag)]
        assert len(hot) == 1, hot  # exactly one flag set in every cycle
        return hot[0]

    return m, go, late, current


def _trace(kind: str, inputs: list[tuple[int, int]]) -> list[str]:
    m, go, late, current = _machine(kind)
    states = []

    async def bench(ctx):
        for g, lt in inputs:
            ctx.set(go, g)
            ctx.set(late, lt)
            states.append(current(ctx))
            await ctx.tick()
        states.append(current(ctx))

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return states


def test_same_states_as_amaranth_fsm():
    """Every input sequence of length 4 gives the same state sequence as ``m.FSM``."""
    for inputs in itertools.product([(0, 0), (1, 0), (1, 1), (0, 1)], repeat=4):
        assert _trace("onehot", list(inputs)) == _trace("fsm", list(inputs)), inputs


def test_misuse_is_refused():
    m = Module()
    m._MustUse__silence = True  # never elaborated: no "created but never used" warning
    seq = OneHotFSM(m, ["A", "B"], name="seq")
    with pytest.raises(RuntimeError, match="outside a state"):
        seq.goto("B")
    with seq.state("A"):
        with pytest.raises(KeyError):
            seq.goto("Z")
        with pytest.raises(RuntimeError, match="do not nest"):
            with seq.state("B"):
                pass
