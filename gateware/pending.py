"""The interface shared by the pending-spike structures, and a factory by scheduler name.

Every pending structure (``PendingFifo``, ``PendingSync``, ``PendingRandom``, ``PendingMomentum``)
has the same ports, so the core's group controller is the same for all of them:

* ``push_valid``/``push_source``/``push_layer``/``push_bucket`` (in): add an entry; always
  accepted (capacity ``n_sources`` can never be exceeded, semantics 11). ``push_layer`` is the
  source's layer plus one (0: input channel); ``push_bucket`` its momentum bucket.
* ``head`` (out stream of an :func:`entry_layout`: the source and its layer code, as pushed):
  the entry the scheduler's next pick returns. The code comes with the entry (stored beside the
  source, or for ``PendingSync`` its ``lowest``) so that the core compares nothing behind a
  memory's output. Taking it (``valid & ready``) is the pick. ``head`` is never valid in the
  cycle after a push or a pick when the structure needs time to find the next one; once valid,
  it stays valid with the same payload until a push, a pick or a clear. A pick is a request,
  which sees the head valid, and a take in the next cycle: the core asserts ``ready`` only in a
  cycle after one in which ``head`` was valid (it still is), so a structure takes on ``ready``
  alone (the take logic then starts at the core's ``pick_go`` flip-flop), and never in two
  consecutive cycles. Only ``PendingFifo`` sees a push and a pick in one cycle (the core's
  group overlap for ``fifo``); the others never do (the core overlaps their groups only after a
  group that pushes nothing).
* ``count`` (out): entries pending; ``lowest`` (out, ``PendingSync`` only, else 0): the lowest
  layer code with a pending entry, valid while ``count > 0``; ``last`` (out, ``PendingSync``
  only, else 0): that layer has exactly one entry, so taking the head empties it.
* ``clear`` (in): discard every entry; ``busy`` (out) while a clear is in progress.
* ``seed``/``load`` (in): ``PendingRandom``'s generator state, loaded once per sample.
"""

from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

__all__ = ["entry_layout", "make_pending", "pending_ports"]


def entry_layout(n_sources: int, n_layers: int) -> data.StructLayout:
    """A pending entry: ``source`` (``0 .. n_sources - 1``) and its layer ``code``."""
    return data.StructLayout({"source": range(max(n_sources, 2)), "code": range(n_layers + 1)})


def pending_ports(n_sources: int, n_layers: int, n_buckets: int) -> dict:
    """The signature members of a pending structure (see the module docstring)."""
    return {
        "push_valid": In(1),
        "push_source": In(16),
        "push_layer": In(range(n_layers + 1)),
        "push_bucket": In(range(max(n_buckets, 2))),
        "head": Out(stream.Signature(entry_layout(n_sources, n_layers))),
        "count": Out(range(n_sources + 1)),
        "lowest": Out(range(n_layers + 1)),
        "last": Out(1),
        "clear": In(1),
        "busy": Out(1),
        "seed": In(32),
        "load": In(1),
    }


def make_pending(name: str, n_sources: int, n_layers: int, n_buckets: int):
    """The pending structure of scheduler ``name``."""
    from .pending_fifo import PendingFifo
    from .pending_momentum import PendingMomentum
    from .pending_random import PendingRandom
    from .pending_sync import PendingSync

    cls = {
        "fifo": PendingFifo,
        "sync": PendingSync,
        "random": PendingRandom,
        "momentum": PendingMomentum,
    }[name]
    return cls(n_sources=n_sources, n_layers=n_layers, n_buckets=n_buckets)
