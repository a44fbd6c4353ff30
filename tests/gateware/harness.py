"""Run the neuron core in Amaranth's simulator on event samples, and compare with the reference.

Shared by the component tests: :func:`run_core` drives the ``events`` stream (optionally with
random stalls), drains ``spikes``, ``summary`` and ``membranes`` (optionally with random
backpressure) and returns, per sample, what the hardware reported. :func:`compare` checks it
against :func:`unlayered.sim.simulate` and returns a list of differences (empty when equal).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

from unlayered.gateware.core import NeuronCore
from unlayered.gateware.streams import InputKind
from unlayered.sim import EventSamples, LayerSpec, Model, SchedulerSpec, simulate
from unlayered.sim.rng import sample_seed

__all__ = [
    "HwSample",
    "compare",
    "random_events",
    "random_model",
    "run_core",
    "stream_get",
    "stream_put",
]


@dataclass
class HwSample:
    trace: list = field(default_factory=list)
    membranes: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    # ("input", step) as each EVENT is taken, ("spike", step, neuron) as each spike arrives
    order: list = field(default_factory=list)


async def stream_put(ctx, stream, payload):
    """Offer ``payload`` until it is taken (plain awaits: safe in background testbenches)."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    while True:
        _, _, ready = await ctx.tick().sample(stream.ready)
        if ready:
            break
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    """Accept one transfer and return its payload."""
    ctx.set(stream.ready, 1)
    while True:
        _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
        if valid:
            break
    ctx.set(stream.ready, 0)
    return payload


def random_model(rnd: np.random.Generator, **scheduler) -> Model:
    """A small random model that fires a lot; ``scheduler`` fixes scheduler fields."""
    n_inputs = int(rnd.integers(1, 7))
    sizes = [int(rnd.integers(1, 7)) for _ in range(int(rnd.integers(1, 4)))]
    wb = int(rnd.integers(2, 9))
    mb = int(rnd.choice([wb, wb + 1, wb + 2, 16]))
    mb = min(max(mb, wb), 32)
    shift = int(rnd.choice([0, 2, 4, 8]))
    wmin, wmax = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
    vmax = (1 << (mb - 1)) - 1
    layers, weights, fan_in = [], [], n_inputs
    for size in sizes:
        thr = int(rnd.integers(0, min(vmax - 1, wmax) + 1))
        leak = int(rnd.choice([1 << shift, int(rnd.integers(0, (1 << shift) + 1))]))
        reset = str(rnd.choice(["zero", "subtract"]))
        layers.append(LayerSpec(size=size, threshold=thr, leak=leak, reset=reset))
        lo = int(rnd.choice([0, wmin // 4, wmin]))
        weights.append(rnd.integers(lo, wmax, size=(size, fan_in), endpoint=True))
        fan_in = size
    spec = dict(
        name=str(rnd.choice(["sync", "fifo", "random", "momentum"])),
        group_size=int(rnd.choice([0, 1, 2, 3, 5])),
        prioritized_input=bool(rnd.integers(0, 2)),
        seed=int(rnd.integers(0, 1 << 32)),
        momentum_buckets=int(rnd.choice([1, 2, 3, 4, 8])),
        momentum_shift=int(rnd.integers(0, 4)),
        max_groups_per_step=int(rnd.choice([0, 0, 0, 1, 2, 3, 5])),
    )
    spec.update(scheduler)
    decision = scheduler.pop("decision", None) if "decision" in scheduler else None
    spec.pop("decision", None)
    model = Model(
        n_inputs=n_inputs,
        layers=tuple(layers),
        weights=tuple(weights),
        weight_bits=wb,
        membrane_bits=mb,
        leak_shift=shift,
        scheduler=SchedulerSpec(**spec),
        decision=decision or str(rnd.choice(["argmax_spike_count", "first_to_threshold"])),
    )
    model.validate()
    return model


def random_events(rnd: np.random.Generator, n_inputs: int, n_samples: int = 2) -> EventSamples:
    """Random samples: 1-4 steps, each a random subset of channels in random order."""
    samples = []
    for _ in range(n_samples):
        steps = []
        for _ in range(int(rnd.integers(1, 5))):
            k = int(rnd.integers(0, n_inputs + 1))
            steps.append(rnd.permutation(n_inputs)[:k].tolist())
        samples.append(steps)
    ids = rnd.choice(1 << 20, size=n_samples, replace=False)
    return EventSamples.from_lists(samples, sample_ids=ids)


def input_records(model: Model, events: EventSamples, seed: int | None = None):
    """The ``events`` stream of a batch: ``(kind, data)`` records."""
    seed = model.scheduler.seed if seed is None else seed
    records = []
    for s in range(len(events)):
        records.append((InputKind.START, sample_seed(seed, int(events.sample_ids[s]))))
        for chans in events.sample_steps(s):
            records += [(InputKind.EVENT, int(c)) for c in chans]
            records.append((InputKind.END_STEP, 0))
        records.append((InputKind.END_SAMPLE, 0))
    return records


def run_core(
    model: Model,
    events: EventSamples,
    *,
    lanes: int = 1,
    stall: float = 0.0,
    backpressure: float = 0.0,
    rng_seed: int = 0,
    debug: bool = True,
    weights: Model | None = None,
    max_cycles: int = 2_000_000,
    spikes: str = "all",
    weight_ram: str = "bram",
) -> list[HwSample]:
    """Run the core (built for ``model``) on ``events``; reload ``weights``' weights first.

    ``spikes`` and ``weight_ram`` are the core's options."""
    core = NeuronCore(model, lanes, spikes=spikes, weight_ram=weight_ram)
    rnd = random.Random(rng_seed)
    records = input_records(model, events)
    n = len(events)
    out = [HwSample() for _ in range(n)]
    done = {"summaries": 0, "spike_sample": 0, "mem_sample": 0, "mem_count": 0}

    async def driver(ctx):
        ctx.set(core.debug, int(debug))
        if weights is not None:
            for bank, addr, data in core.layout.weight_writes(weights):
                await stream_put(ctx, core.weights, {"bank": bank, "addr": addr, "data": data})
        sample, step = -1, 0
        for kind, data in records:
            while stall and rnd.random() < stall:
                await ctx.tick()
            await stream_put(ctx, core.events, {"kind": kind, "data": data})
            if kind == InputKind.START:
                sample, step = sample + 1, 0
            elif kind == InputKind.EVENT:
                out[sample].order.append(("input", step))
            elif kind == InputKind.END_STEP:
                step += 1

    async def spike_monitor(ctx):
        while True:
            while backpressure and rnd.random() < backpressure:
                await ctx.tick()
            p = await stream_get(ctx, core.spikes)
            out[done["summaries"]].trace.append((int(p.step), int(p.group), int(p.neuron)))
            out[done["summaries"]].order.append(("spike", int(p.step), int(p.neuron)))

    async def summary_monitor(ctx):
        while done["summaries"] < n:
            p = await stream_get(ctx, core.summary)
            out[done["summaries"]].summary = {
                k: int(getattr(p, k))
                for k in (
                    "steps",
                    "spikes",
                    "synops",
                    "groups",
                    "dropped",
                    "input_events",
                    "cycles",
                )
            }
            done["summaries"] += 1

    async def membrane_monitor(ctx):
        nn = model.n_neurons
        row = []
        while True:
            while backpressure and rnd.random() < backpressure:
                await ctx.tick()
            p = await stream_get(ctx, core.membranes)
            row.append(int(p))
            if len(row) == nn:
                out[done["summaries"]].membranes.append(row)
                row = []

    async def watchdog(ctx):
        for _ in range(max_cycles):
            await ctx.tick()
        raise AssertionError(
            f"the core did not finish in {max_cycles} cycles "
            f"({done['summaries']} of {n} summaries received)"
        )

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(watchdog, background=True)
    sim.add_testbench(driver, background=True)
    sim.add_testbench(spike_monitor, background=True)
    sim.add_testbench(membrane_monitor, background=True)
    sim.add_testbench(summary_monitor)
    if os.environ.get("UNLAYERED_VCD"):
        with sim.write_vcd(os.environ["UNLAYERED_VCD"]):
            sim.run()
    else:
        sim.run()
    return out


def compare(
    model: Model, events: EventSamples, hw: list[HwSample], membranes=True, spikes="all"
) -> list[str]:
    """Differences between the hardware's report and the reference simulator (empty: equal).

    With ``spikes="outputs"`` the hardware's trace is compared with the reference's
    output-layer spikes (the counters with all of them)."""
    ref = simulate(model, events, engine="readable", record_membranes=True)
    first_output = model.layer_starts[-1]
    errors = []
    for s, (r, h) in enumerate(zip(ref.samples, hw, strict=True)):
        rtrace = [tuple(int(x) for x in row) for row in r.trace]
        if spikes == "outputs":
            rtrace = [row for row in rtrace if row[2] >= first_output]
        if rtrace != h.trace:
            first = next(
                (i for i, (a, b) in enumerate(zip(rtrace, h.trace, strict=False)) if a != b),
                min(len(rtrace), len(h.trace)),
            )
            errors.append(
                f"sample {s}: trace differs at spike {first}: ref {rtrace[first : first + 3]} "
                f"hw {h.trace[first : first + 3]} (lengths {len(rtrace)}, {len(h.trace)})"
            )
        want = {
            "steps": r.steps,
            "spikes": int(r.spikes.sum()),
            "synops": r.synops,
            "groups": r.groups,
            "dropped": r.dropped,
            "input_events": r.input_events,
        }
        got = {k: h.summary.get(k) for k in want}
        if want != got:
            errors.append(f"sample {s}: counters ref {want} hw {got}")
        if membranes:
            rm = np.asarray(r.membranes).tolist()
            if rm != h.membranes:
                errors.append(f"sample {s}: membranes ref {rm} hw {h.membranes}")
    return errors
