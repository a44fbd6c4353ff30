"""cocotb testbench of the generated neuron core: driver, monitor, model, checker.

The launcher (``test_core_cocotb.py``) writes, into ``UNLAYERED_CASES``, ``case_K.npz``
(artifact) and ``events_K.npz`` for ``K = 0, 1, ...``: models of the shape the Verilog was built
for, with different weights. For each case the driver reloads the weights through the weight
write port, then streams the events (random stalls); the monitor drains spikes, summaries and
membranes (random backpressure); the model is the reference simulator; the checker compares
full traces, counters and end-of-step membranes and writes ``results.json``.

``UNLAYERED_CORRUPT=1`` makes the monitor corrupt one spike: the checker must then report it.
"""

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from unlayered.gateware.layout import CoreLayout
from unlayered.sim import load_events, load_model, simulate
from unlayered.sim.rng import sample_seed

KIND_START, KIND_EVENT, KIND_END_STEP, KIND_END_SAMPLE = range(4)
SUMMARY_FIELDS = ("steps", "spikes", "synops", "groups", "dropped", "input_events", "cycles")


def bits(value: int, lo: int, width: int) -> int:
    return (value >> lo) & ((1 << width) - 1)


def signed(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) else value


class Driver:
    """Puts records on a valid/ready stream, with random idle cycles."""

    def __init__(self, dut, name: str, rnd: random.Random, stall: float):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clk, self.rnd, self.stall = dut.clk, rnd, stall
        self.valid.value = 0

    async def put(self, payload: int) -> None:
        while self.rnd.random() < self.stall:
            await RisingEdge(self.clk)
        self.payload.value = payload
        self.valid.value = 1
        while True:
            await ReadOnly()  # ready as it is just before the edge: a transfer at that edge
            taken = self.ready.value.is_resolvable and int(self.ready.value)
            await RisingEdge(self.clk)
            if taken:
                break
        self.valid.value = 0


class Monitor:
    """Takes every transfer of a stream, with random backpressure, into a list."""

    def __init__(self, dut, name: str, rnd: random.Random, backpressure: float):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clk, self.rnd, self.bp = dut.clk, rnd, backpressure
        self.items: list[int] = []
        self.ready.value = 0

    async def run(self) -> None:
        while True:
            ready = int(self.rnd.random() >= self.bp)
            self.ready.value = ready
            await ReadOnly()
            if ready and self.valid.value.is_resolvable and int(self.valid.value):
                self.items.append(int(self.payload.value))
            await RisingEdge(self.clk)


def input_records(model, events, seed):
    for s in range(len(events)):
        yield KIND_START | (sample_seed(seed, int(events.sample_ids[s])) << 2)
        for chans in events.sample_steps(s):
            for c in chans:
                yield KIND_EVENT | (int(c) << 2)
            yield KIND_END_STEP
        yield KIND_END_SAMPLE


def check(model, events, spikes, summaries, membranes) -> list[str]:
    """The checker: the hardware's records against the reference simulator."""
    ref = simulate(model, events, engine="readable", record_membranes=True)
    errors, n = [], model.n_neurons
    mem_rows = [membranes[i : i + n] for i in range(0, len(membranes), n)]
    spike_at = 0
    mem_at = 0
    if len(summaries) != len(ref.samples):
        errors.append(f"{len(summaries)} summaries for {len(ref.samples)} samples")
    for s, r in enumerate(ref.samples):
        want = [tuple(int(x) for x in row) for row in r.trace]
        got = spikes[spike_at : spike_at + len(want)]
        spike_at += len(want)
        if got != want:
            errors.append(f"sample {s}: trace ref {want} hw {got}")
        if s < len(summaries):
            counts = summaries[s]
            expect = {
                "steps": r.steps,
                "spikes": int(r.spikes.sum()),
                "synops": r.synops,
                "groups": r.groups,
                "dropped": r.dropped,
                "input_events": r.input_events,
            }
            if any(counts[k] != v for k, v in expect.items()):
                errors.append(f"sample {s}: counters ref {expect} hw {counts}")
        rows = mem_rows[mem_at : mem_at + r.steps]
        mem_at += r.steps
        if [list(x) for x in rows] != r.membranes.tolist():
            errors.append(f"sample {s}: membranes ref {r.membranes.tolist()} hw {rows}")
    if spike_at != len(spikes):
        errors.append(f"{len(spikes) - spike_at} spikes more than the reference")
    return errors


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def run_cases(dut):
    cases = Path(os.environ["UNLAYERED_CASES"])
    seed = int(os.environ.get("UNLAYERED_TB_SEED", "1"))
    corrupt = os.environ.get("UNLAYERED_CORRUPT") == "1"
    rnd = random.Random(seed)
    dut._log.info(f"random seed {seed}, corrupt={corrupt}")
    lanes = int(os.environ["UNLAYERED_LANES"])
    mb = None

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.debug.value = 1
    ev_drv = Driver(dut, "events", rnd, 0.3)
    w_drv = Driver(dut, "weights", rnd, 0.0)
    spk_mon = Monitor(dut, "spikes", rnd, 0.3)
    sum_mon = Monitor(dut, "summary", rnd, 0.3)
    mem_mon = Monitor(dut, "membranes", rnd, 0.3)
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    for mon in (spk_mon, sum_mon, mem_mon):
        cocotb.start_soon(mon.run())

    results = []
    k = 0
    while (cases / f"case_{k}.npz").exists():
        model = load_model(cases / f"case_{k}.npz")
        events = load_events(cases / f"events_{k}.npz")
        mb = model.membrane_bits
        layout = CoreLayout.from_model(model, lanes)
        bank_w = max(1, (lanes - 1).bit_length())
        addr_w = max(1, (layout.weight_depth - 1).bit_length())
        wb = model.weight_bits
        for bank, addr, data in layout.weight_writes(model):
            word = bank | (addr << bank_w) | ((data & ((1 << wb) - 1)) << (bank_w + addr_w))
            await w_drv.put(word)
        n_spk, n_sum, n_mem = len(spk_mon.items), len(sum_mon.items), len(mem_mon.items)
        for record in input_records(model, events, model.scheduler.seed):
            await ev_drv.put(record)
        waited = 0
        while len(sum_mon.items) < n_sum + len(events):
            await RisingEdge(dut.clk)
            waited += 1
            assert waited < 200_000, f"case {k}: no summary after {waited} cycles"
        spikes = [(bits(x, 0, 32), bits(x, 32, 32), bits(x, 64, 16)) for x in spk_mon.items[n_spk:]]
        if corrupt and k == 0 and spikes:
            step, group, neuron = spikes[0]
            spikes[0] = (step, group, neuron ^ 1)
        summaries = [
            {f: bits(x, 32 * i, 32) for i, f in enumerate(SUMMARY_FIELDS)}
            for x in sum_mon.items[n_sum:]
        ]
        membranes = [signed(x, mb) for x in mem_mon.items[n_mem:]]
        errors = check(model, events, spikes, summaries, membranes)
        synops = sum(s["synops"] for s in summaries)
        cycles = sum(s["cycles"] for s in summaries)
        dut._log.info(f"case {k}: {len(spikes)} spikes, {synops} synops, {cycles} cycles")
        results.append({"case": k, "errors": errors, "spikes": len(spikes), "synops": synops})
        k += 1
    (cases / "results.json").write_text(json.dumps({"seed": seed, "cases": results}, indent=1))
    failed = [r for r in results if r["errors"]]
    if corrupt:
        assert failed, "the checker missed a corrupted spike"
    else:
        assert not failed, failed[0]["errors"][:3]
