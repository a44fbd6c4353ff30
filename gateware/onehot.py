"""A one-hot state machine written like Amaranth's ``m.FSM``.

Amaranth encodes the states of ``m.FSM`` in binary and yosys does not re-encode that register
(it has an init value), so the enable of every transition decodes the whole state register: in
the core's sequencer that decode was the start of the slowest paths on the iCE40. Here each state
is one flip-flop; a transition clears the current state's flag and sets the target's, so the
logic of a state starts at a single flip-flop.
"""

from contextlib import contextmanager

from amaranth.hdl import Signal

__all__ = ["OneHotFSM"]


class OneHotFSM:
    """States ``states`` (the first is the initial one); flags named ``{name}_{state}``.

    Use ``with fsm.state("A"):`` for a state's logic and ``fsm.goto("B")`` inside it for a
    transition at the next clock edge; as with ``m.next``, the last ``goto`` executed wins.
    """

    def __init__(self, m, states: list[str], *, name: str):
        self._m = m
        self.flags = {s: Signal(init=int(i == 0), name=f"{name}_{s}") for i, s in enumerate(states)}
        self._targets: set[str] | None = None  # the current state and the targets seen in it

    @contextmanager
    def state(self, name: str):
        if self._targets is not None:
            raise RuntimeError("state blocks do not nest")
        self._targets = {name}
        with self._m.If(self.flags[name]):
            yield
        self._targets = None

    def goto(self, target: str):
        """Leave the current state for ``target`` at the next clock edge."""
        if self._targets is None:
            raise RuntimeError("goto outside a state block")
        self.flags[target]  # an unknown state is a KeyError here, not a silent new flag
        self._targets.add(target)
        # Every flag an earlier goto of this state may have set is assigned again, so that the
        # last goto executed wins, as with ``m.next``.
        self._m.d.sync += [self.flags[t].eq(int(t == target)) for t in sorted(self._targets)]
