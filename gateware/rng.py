"""Marsaglia's xorshift32 generator of the ``random`` scheduler (semantics 6.3)."""

from amaranth.hdl import Module, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from unlayered.sim.rng import xorshift32

__all__ = ["Xorshift32", "xorshift32_next"]


def xorshift32_next(x: Value) -> Value:
    """The next state (and output) after ``x``: three shifts and XORs, 32 bits, combinational."""
    a = (x ^ (x << 13))[:32]
    b = a ^ (a >> 17)
    return (b ^ (b << 5))[:32]


class Xorshift32(wiring.Component):
    """The generator's next two outputs, both registers (no XOR logic in front of their users).

    The state itself is not kept: ``next`` is the output of the next advance, ``after`` the one
    of the advance after it.

    Members
    -------
    seed : In(32)
        State to load (the host computes ``sample_seed(seed, sample_id)``; never 0).
    load : In(1)
        Load ``seed`` this cycle.
    advance : In(1)
        Advance the generator this cycle (ignored while ``load``).
    next : Out(32)
        ``xorshift32(state)``: the output the next pick uses.
    after : Out(32)
        ``xorshift32(next)``: the output after one advance.
    """

    seed: In(32)
    load: In(1)
    advance: In(1)
    next: Out(32, init=xorshift32(1))
    after: Out(32, init=xorshift32(xorshift32(1)))

    def elaborate(self, platform):
        m = Module()
        first = xorshift32_next(self.seed)
        with m.If(self.load):
            m.d.sync += [self.next.eq(first), self.after.eq(xorshift32_next(first))]
        with m.Elif(self.advance):
            m.d.sync += [self.next.eq(self.after), self.after.eq(xorshift32_next(self.after))]
        return m
