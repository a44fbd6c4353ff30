"""Payloads of the core's host-visible streams, and the shared enums.

=============== ===== ==================================================================
stream          dir   payload
=============== ===== ==================================================================
``events``      in    :class:`InputRecord`: sample start (random state), input event,
                      end of step, end of sample
``weights``     in    :func:`weight_write_layout`: ``(bank, addr, data)``
``spikes``      out   :class:`SpikeRecord`: ``(step, group, neuron)`` of every spike
``summary``     out   :class:`SummaryRecord`: the counters of a sample, once per sample
``membranes``   out   ``signed(membrane_bits)``: all N membranes after each step (debug)
=============== ===== ==================================================================
"""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum

__all__ = [
    "InputKind",
    "InputRecord",
    "SchedulerKind",
    "SpikeRecord",
    "SummaryRecord",
    "weight_write_layout",
]


class InputKind(enum.Enum, shape=2):
    """What an :class:`InputRecord` means.

    ``START``: a sample begins; ``data`` is the random scheduler's state for it
    (``unlayered.sim.rng.sample_seed(seed, sample_id)``). ``EVENT``: input channel ``data``
    spikes in the current step. ``END_STEP``: the current step's inputs are complete (every step,
    even an empty one, ends with one). ``END_SAMPLE``: the sample has no more steps.
    """

    START = 0
    EVENT = 1
    END_STEP = 2
    END_SAMPLE = 3


class SchedulerKind(enum.Enum, shape=2):
    """The arbitration policies (semantics 6)."""

    SYNC = 0
    FIFO = 1
    RANDOM = 2
    MOMENTUM = 3


class InputRecord(data.Struct):
    """One record of the input event stream."""

    kind: InputKind
    data: unsigned(32)


class SpikeRecord(data.Struct):
    """One spike of the trace (semantics 9): step, group in the step, global neuron index."""

    step: unsigned(32)
    group: unsigned(32)
    neuron: unsigned(16)


class SummaryRecord(data.Struct):
    """Counters of one sample (semantics 8), sent after its last spike."""

    steps: unsigned(32)
    spikes: unsigned(32)
    synops: unsigned(32)
    groups: unsigned(32)
    dropped: unsigned(32)
    input_events: unsigned(32)
    cycles: unsigned(32)


def weight_write_layout(lanes: int, depth: int, weight_bits: int) -> data.StructLayout:
    """Payload of the weight write stream: one word of one weight bank."""
    return data.StructLayout(
        {
            "bank": unsigned(max(1, (lanes - 1).bit_length())),
            "addr": unsigned(max(1, (depth - 1).bit_length())),
            "data": signed(weight_bits),
        }
    )
