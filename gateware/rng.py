"""Marsaglia's xorshift32 generator of the ``random`` scheduler (semantics 6.3)."""

from amaranth.hdl import Module, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Xorshift32", "xorshift32_next"]


def xorshift32_next(x: Value) -> Value:
    """The next state (and output) after ``x``: three shifts and XORs, 32 bits, combinational."""
    a = (x ^ (x << 13))[:32]
    b = a ^ (a >> 17)
    return (b ^ (b << 5))[:32]


class Xorshift32(wiring.Component):
    """A xorshift32 state register.

    Members
    -------
    seed : In(32)
        State to load (the host computes ``sample_seed(seed, sample_id)``; never 0).
    load : In(1)
        Load ``seed`` this cycle.
    advance : In(1)
        Replace the state by ``next`` this cycle (ignored while ``load``).
    state : Out(32)
        The current state.
    next : Out(32)
        ``xorshift32(state)``, combinational: the output the next pick uses.
    """

    seed: In(32)
    load: In(1)
    advance: In(1)
    state: Out(32, init=1)
    next: Out(32)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.next.eq(xorshift32_next(self.state))
        with m.If(self.load):
            m.d.sync += self.state.eq(self.seed)
        with m.Elif(self.advance):
            m.d.sync += self.state.eq(self.next)
        return m
