"""The pending-spike structures (``gateware/pending*.py``) against the schedulers of semantics 6.

A seeded driver interleaves pushes (each source pending at most once, semantics 11), picks,
clears and, at each new sample, a load of the generator state, with random idle cycles, as the
core drives them (see ``gateware/pending.py``). A model of the scheduler written from the
contract predicts every pick; in every cycle ``count`` must equal the model's, a valid ``head``
must show the model's next pick (its source and layer code) and, for ``sync``, ``lowest`` the
lowest pending layer code and ``last`` whether that layer has a single entry. As the core does,
the driver takes a head only in a cycle after one in which it was valid. ``random`` and
``momentum`` must have a head again in the cycle after every take that leaves an entry (what
keeps a group's picks two cycles apart, docs/gateware.md).
"""

import random

import pytest
from amaranth.sim import Simulator

from unlayered.gateware.pending import make_pending
from unlayered.sim.rng import pick_index, sample_seed, xorshift32

SCHEDULERS = ["sync", "fifo", "random", "momentum"]
HEAD_AFTER_TAKE = {"random", "momentum"}  # valid again in the cycle after a take

# (n_inputs, layer sizes, momentum buckets): sources are numbered inputs first, then layer by
# layer (semantics 1), so a source's layer code (0: input, i + 1: layer i) follows from its index.
SIZES = [
    (2, (3, 2), 4),
    (3, (4,), 1),
    (1, (1,), 2),
    (1, (2, 1, 3), 3),
    (5, (6, 6, 3), 8),
    (8, (24, 20, 5), 2),
    (16, (40, 30, 10), 4),
]


class Scheduler:
    """Semantics 6 on a list of ``(source, layer code, bucket)`` entries in entry order."""

    def __init__(self, name: str):
        self.name = name
        self.entries = []
        self.state = 1  # the generator state of ``random``

    def _index(self) -> int:
        e = self.entries
        if self.name == "fifo":  # 6.2: the first to enter
            return 0
        if self.name == "sync":  # 6.1: the lowest layer, then the lowest source
            return min(range(len(e)), key=lambda i: (e[i][1], e[i][0]))
        if self.name == "momentum":  # 6.4: the oldest entry of the highest non-empty bucket
            top = max(bucket for _, _, bucket in e)
            return next(i for i, (_, _, bucket) in enumerate(e) if bucket == top)
        return pick_index(xorshift32(self.state), len(e))  # 6.3

    def peek(self) -> tuple[int, int]:
        """The source and layer code the next pick returns."""
        return self.entries[self._index()][:2]

    def pick(self) -> tuple[int, int]:
        i = self._index()
        head = self.entries[i][:2]
        if self.name == "random":  # one generator step per pick, swap-remove
            self.state = xorshift32(self.state)
            self.entries[i] = self.entries[-1]
            self.entries.pop()
        else:
            del self.entries[i]
        return head

    def lowest(self) -> int:
        return min(layer for _, layer, _ in self.entries)


def run(scheduler: str, sizes: tuple, seed: int, model: Scheduler | None = None, n_ops=250):
    """Drive ``make_pending(scheduler, ...)`` with ``n_ops`` random operations against ``model``
    (by default ``Scheduler(scheduler)``); a difference fails an assertion naming the operation."""
    n_inputs, layer_sizes, n_buckets = sizes
    layers = [0] * n_inputs + [i + 1 for i, size in enumerate(layer_sizes) for _ in range(size)]
    ns = len(layers)
    dut = make_pending(scheduler, ns, len(layer_sizes), n_buckets)
    model = model or Scheduler(scheduler)
    rnd = random.Random(f"{scheduler} {sizes} {seed}")
    log = []  # the operations so far, for the failure messages
    limit = 2 * ns + 8  # cycles a head or the end of a clear may take

    def where(what, want, got) -> str:
        case = f"{scheduler} {sizes} seed {seed}, op {len(log)}"
        return f"{case}: {what}: want {want}, got {got}; last ops {log[-12:]}"

    def head_entry(ctx) -> tuple[int, int]:
        head = ctx.get(dut.head.payload)
        return head.source, head.code

    def check(ctx):
        count = ctx.get(dut.count)
        assert count == len(model.entries), where("count", len(model.entries), count)
        lowest = ctx.get(dut.lowest)
        if scheduler == "sync" and count:
            assert lowest == model.lowest(), where("lowest", model.lowest(), lowest)
            last = ctx.get(dut.last)
            want = sum(layer == lowest for _, layer, _ in model.entries) == 1
            assert last == want, where("last", want, last)
        if ctx.get(dut.head.valid):
            want = model.peek() if model.entries else None
            got = head_entry(ctx)
            assert got == want, where("valid head", want, got)

    inputs = (dut.push_valid, dut.head.ready, dut.clear, dut.load)
    cycles = {"now": 0, "take": -2}  # the cycle of the last take

    async def tick(ctx):
        """One cycle with the operation set up; then every input back to idle, and the checks."""
        held = ctx.get(dut.head.valid) and not any(ctx.get(port) for port in inputs)
        took = ctx.get(dut.head.ready)
        await ctx.tick()
        cycles["now"] += 1
        for port in inputs:
            ctx.set(port, 0)
        check(ctx)
        assert ctx.get(dut.head.valid) or not held, where("a valid head stays valid", 1, 0)
        if took and model.entries and scheduler in HEAD_AFTER_TAKE:
            assert ctx.get(dut.head.valid), where("a head in the cycle after a take", 1, 0)

    async def wait(ctx, port, level, what):
        for _ in range(limit):
            if ctx.get(port) == level:
                return
            await tick(ctx)
        raise AssertionError(where(what, f"within {limit} cycles", "timeout"))

    async def new_sample(ctx, sample):
        log.append(f"clear+load {sample}")
        ctx.set(dut.clear, 1)
        model.entries.clear()
        await tick(ctx)
        await wait(ctx, dut.busy, 0, "end of clear")
        model.state = sample_seed(seed, sample)
        ctx.set(dut.seed, model.state)
        ctx.set(dut.load, 1)
        await tick(ctx)

    async def bench(ctx):
        check(ctx)
        await new_sample(ctx, 0)
        for op in range(n_ops):
            if op % 20 == 0:  # phases that fill up and that drain
                p_push = rnd.choice([0.25, 0.5, 0.8])
            for _ in range(rnd.choice([0, 0, 0, 0, 1, 2, 6])):
                await tick(ctx)
            pending = {source for source, _, _ in model.entries}
            free = [s for s in range(ns) if s not in pending]
            weights = [p_push, 1 - p_push, 0.04, 0.03]
            kind = rnd.choices(["push", "pick", "clear", "sample"], weights)[0]
            if kind == "push" and not free:
                kind = "pick"
            if kind == "pick" and not pending:
                kind = "push"
            if kind == "sample":
                await new_sample(ctx, op + 1)
            elif kind == "clear":
                log.append("clear")
                ctx.set(dut.clear, 1)
                model.entries.clear()
                await tick(ctx)
                await wait(ctx, dut.busy, 0, "end of clear")
            elif kind == "push":
                source = rnd.choice(free)
                entry = (source, layers[source], rnd.randrange(n_buckets))
                log.append(f"push {entry}")
                ctx.set(dut.push_source, source)
                ctx.set(dut.push_layer, entry[1])
                ctx.set(dut.push_bucket, entry[2])
                ctx.set(dut.push_valid, 1)
                model.entries.append(entry)
                await tick(ctx)
            else:
                log.append("pick")
                await wait(ctx, dut.head.valid, 1, "valid head")
                # the core takes it in a cycle after one that saw it valid (pending.py)
                for _ in range(rnd.choice([1, 1, 2, 4])):
                    await tick(ctx)
                while cycles["now"] < cycles["take"] + 2:  # never two takes in a row (pending.py)
                    await tick(ctx)
                got, want = head_entry(ctx), model.pick()
                assert got == want, where("pick", want, got)
                ctx.set(dut.head.ready, 1)
                cycles["take"] = cycles["now"]
                await tick(ctx)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


CASES = [(name, sizes) for name in SCHEDULERS for sizes in SIZES]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("scheduler", "sizes"), CASES, ids=str)
def test_picks_follow_the_scheduler(scheduler, sizes, seed):
    """Every pick, ``count`` (``lowest``, ``last``) in every cycle, as the contract says."""
    run(scheduler, sizes, seed)


@pytest.mark.parametrize(("scheduler", "sizes"), CASES, ids=str)
def test_picks_do_not_depend_on_collisions(reads_see_new_data, scheduler, sizes):
    """The same with every collision-free memory's colliding reads returning the new word."""
    run(scheduler, sizes, 100)


class _Lifo(Scheduler):
    """A wrong model of ``fifo``: the last entry first."""

    def _index(self) -> int:
        return len(self.entries) - 1


def test_the_checker_catches_a_wrong_order():
    with pytest.raises(AssertionError, match=r"head|pick"):
        run("fifo", SIZES[0], 0, model=_Lifo("fifo"))
