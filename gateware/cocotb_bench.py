"""cocotb testbench of the generated neuron core: driver, monitor, model, checker.

This module is the cocotb test module that :func:`unlayered.gateware.verify.verify` runs (it is
importable from the installed package: ``test_module="unlayered.gateware.cocotb_bench"``); the
pytest launchers in ``tests/cocotb/`` run it through ``verify`` too. It gets its work from a bench
file (JSON), named by the environment variable ``UNLAYERED_BENCH`` or the plusarg
``+unlayered_bench=PATH``, that ``verify`` writes::

    {"lanes", "weight_bank_bits", "weight_addr_bits", "weight_bits", "membrane_bits",
     "debug", "tb_seed", "stall_probability", "backpressure_probability", "corrupt",
     "max_idle_cycles", "results",
     "cases": [{"name", "artifact", "events", "expected", "seed", "load_weights"}, ...]}

Every case is a model of the shape and parameters the Verilog was built for (only the weights
differ) with its events file and its expected results (the reference simulator's, written by
``verify``). Per case the **driver** writes the weights through the weight write port (unless
``load_weights`` is false: the first case of a block-RAM core runs on the Verilog's initial
contents, which the bitstream would hold), then streams the samples' input records (``START``
with the random state, ``EVENT``, ``END_STEP``, ``END_SAMPLE``); the **monitors** take
spikes, summaries and membranes; the **model** is the reference simulator, run on the host
beforehand (the expected file); the **checker** compares each sample's full trace, counters and
end-of-step membranes and writes the results file (per sample: ok, first difference, cycles).

Random input stalls and output backpressure come from one ``random.Random(tb_seed)``. One clock
loop steps every driver and monitor once per cycle (two simulator triggers per cycle, not two per
stream), which is what makes thousands of cases per simulator start affordable.

``corrupt`` flips one bit of the first spike of the first case that has one, after the monitor
took it: the checker must then report that sample.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = [
    "COUNTERS",
    "SUMMARY_FIELDS",
    "Driver",
    "Monitor",
    "check_sample",
    "input_records",
    "run_bench",
]

KIND_START, KIND_EVENT, KIND_END_STEP, KIND_END_SAMPLE = range(4)
SUMMARY_FIELDS = ("steps", "spikes", "synops", "groups", "dropped", "input_events", "cycles")
COUNTERS = SUMMARY_FIELDS[:-1]  # compared with the reference; ``cycles`` is the hardware's own


def _bits(value: int, lo: int, width: int) -> int:
    return (value >> lo) & ((1 << width) - 1)


def _signed(value: int, width: int) -> int:
    return value - (1 << width) if value >> (width - 1) & 1 else value


def _resolved(handle) -> int:
    """The value of a 1-bit handle, with X or Z read as 0."""
    v = handle.value
    return int(v) if v.is_resolvable else 0


class Driver:
    """Puts queued payloads on a valid/ready stream; stalls with probability ``stall``.

    Stepped by the clock loop: :meth:`drive` after an edge, :meth:`sample` just before the next.
    """

    def __init__(self, dut, name: str, rnd: random.Random, stall: float):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.rnd, self.stall = rnd, stall
        self.queue: deque[int] = deque()
        self.offered = False  # valid is high with queue[0] on the payload
        self.high = False  # what valid was last set to
        self.sent = 0
        self.valid.value = 0

    @property
    def busy(self) -> bool:
        return self.offered or bool(self.queue)

    def drive(self) -> None:
        """After an edge: offer the next payload, or drop valid (no writes when unchanged)."""
        if self.offered:
            return
        if self.queue and self.rnd.random() >= self.stall:
            self.payload.value = self.queue[0]
            self.offered = True
        if self.offered != self.high:
            self.valid.value = int(self.offered)
            self.high = self.offered

    def sample(self) -> bool:
        """Before the edge (read-only): True when the offered payload is taken at it."""
        if self.offered and _resolved(self.ready):
            self.queue.popleft()
            self.offered = False
            self.sent += 1
            return True
        return False


class Monitor:
    """Takes every transfer of a stream into ``items``; not ready with probability ``bp``."""

    def __init__(self, dut, name: str, rnd: random.Random, backpressure: float):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.rnd, self.bp = rnd, backpressure
        self.items: list[int] = []
        self.is_ready = False
        self.ready.value = 0

    def drive(self) -> None:
        ready = self.rnd.random() >= self.bp
        if ready != self.is_ready:
            self.ready.value = int(ready)
            self.is_ready = ready

    def sample(self) -> bool:
        if self.is_ready and _resolved(self.valid):
            self.items.append(int(self.payload.value))
            return True
        return False


def input_records(events, seeds: list[int]) -> list[int]:
    """The ``events`` stream payloads of a batch (``seeds``: each sample's random state)."""
    records = []
    for s in range(len(events)):
        records.append(KIND_START | (seeds[s] << 2))
        for chans in events.sample_steps(s):
            records += [KIND_EVENT | (int(c) << 2) for c in chans]
            records.append(KIND_END_STEP)
        records.append(KIND_END_SAMPLE)
    return records


def _first_difference(want: list, got: list) -> dict[str, Any] | None:
    for i in range(max(len(want), len(got))):
        w = want[i] if i < len(want) else None
        g = got[i] if i < len(got) else None
        if w != g:
            return {"index": i, "expected": w, "got": g}
    return None


def check_sample(expected: dict, trace: list, summary: dict | None, membranes: list | None):
    """The checker for one sample: a dict of what differs (empty when the sample matches).

    ``expected``: ``{"trace": [[step, group, neuron], ...], "counters": {...},
    "membranes": [[...] per step] or None}``; ``trace``: the hardware's spikes as lists;
    ``summary``: its summary record as a dict (``None`` if none came); ``membranes``: its
    read-out rows, one per step (``None`` when the read-out was off).
    """
    diff: dict[str, Any] = {}
    first = _first_difference(expected["trace"], trace)
    if first is not None:
        diff["trace"] = {**first, "expected_spikes": len(expected["trace"]), "spikes": len(trace)}
    if summary is None:
        diff["summary"] = "no summary record"
    else:
        bad = {
            k: {"expected": v, "got": summary[k]}
            for k, v in expected["counters"].items()
            if summary[k] != v
        }
        if bad:
            diff["counters"] = bad
    if membranes is not None and expected.get("membranes") is not None:
        want = expected["membranes"]
        if len(membranes) != len(want):
            diff["membranes"] = {"expected_steps": len(want), "steps": len(membranes)}
        for t, (w, g) in enumerate(zip(want, membranes, strict=False)):
            if w != g:
                n = next(i for i in range(max(len(w), len(g))) if w[i : i + 1] != g[i : i + 1])
                diff["membranes"] = {
                    "step": t,
                    "neuron": n,
                    "expected": w[n] if n < len(w) else None,
                    "got": g[n] if n < len(g) else None,
                }
                break
    return diff


def _load_bench() -> dict[str, Any]:
    path = os.environ.get("UNLAYERED_BENCH") or cocotb.plusargs.get("unlayered_bench")
    if not path:
        raise RuntimeError("no bench file: set UNLAYERED_BENCH or +unlayered_bench=PATH")
    return json.loads(Path(str(path)).read_text())


class _Stall(Exception):
    pass


async def run_bench(dut) -> dict[str, Any]:
    """Run every case of the bench file on ``dut``; write and return the results."""
    # Imported here: plain numpy (no numba, no Amaranth), but only the simulator process needs it.
    from unlayered.gateware.layout import CoreLayout
    from unlayered.sim import load_events, load_model

    bench = _load_bench()
    rnd = random.Random(bench["tb_seed"])
    lanes, mb = bench["lanes"], bench["membrane_bits"]
    bank_w, addr_w, wb = bench["weight_bank_bits"], bench["weight_addr_bits"], bench["weight_bits"]
    n = bench["n_neurons"]
    debug = bool(bench["debug"])
    stall, bp = bench["stall_probability"], bench["backpressure_probability"]
    max_idle = bench["max_idle_cycles"]
    dut._log.info(f"bench {len(bench['cases'])} cases, tb_seed {bench['tb_seed']}")

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.debug.value = int(debug)
    ev = Driver(dut, "events", rnd, stall)
    wr = Driver(dut, "weights", rnd, stall)
    spikes = Monitor(dut, "spikes", rnd, bp)
    summary = Monitor(dut, "summary", rnd, bp)
    mems = Monitor(dut, "membranes", rnd, bp)
    streams = (ev, wr, spikes, summary, mems)
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    cycle = 0

    async def run_until(done) -> int:
        """Step every stream once per cycle until ``done()``; the cycles it took."""
        nonlocal cycle
        start, idle = cycle, 0
        while not done():
            for s in streams:
                s.drive()
            await ReadOnly()
            moved = False
            for s in streams:
                moved |= s.sample()
            await RisingEdge(dut.clk)
            cycle += 1
            idle = 0 if moved else idle + 1
            if idle > max_idle:
                raise _Stall(f"no transfer on any stream for {idle} cycles")
        return cycle - start

    results: list[dict[str, Any]] = []
    corrupted = not bench.get("corrupt")
    error = None
    for case in bench["cases"]:
        model = load_model(case["artifact"])
        events = load_events(case["events"])
        expected = json.loads(Path(case["expected"]).read_text())
        layout = CoreLayout.from_model(model, lanes)
        mask = (1 << wb) - 1
        words = [
            b | (a << bank_w) | ((w & mask) << (bank_w + addr_w))
            for b, a, w in layout.weight_writes(model)
        ]
        n_spk, n_mem = len(spikes.items), len(mems.items)
        bounds = []  # (spikes, membranes) taken when each summary arrived
        n_sum = len(summary.items)

        try:
            if case["load_weights"]:
                wr.queue.extend(words)
            load_cycles = await run_until(lambda: not wr.busy)
            ev.queue.extend(input_records(events, [s["state"] for s in expected["samples"]]))
            want = n_sum + len(events)

            def done(n_sum=n_sum, want=want, bounds=bounds) -> bool:
                while len(bounds) < len(summary.items) - n_sum:
                    bounds.append((len(spikes.items), len(mems.items)))
                return len(summary.items) >= want

            run_cycles = await run_until(done)
        except _Stall as e:
            error = f"case {case['name']}: {e}"
            dut._log.error(error)
            run_cycles = load_cycles = None

        samples = []
        spk_at, mem_at = n_spk, n_mem
        for s, exp in enumerate(expected["samples"]):
            got_summary = None
            if s < len(bounds):
                spk_end, mem_end = bounds[s]
                x = summary.items[n_sum + s]
                got_summary = {f: _bits(x, 32 * i, 32) for i, f in enumerate(SUMMARY_FIELDS)}
            else:
                spk_end, mem_end = len(spikes.items), len(mems.items)
            trace = [
                [_bits(x, 0, 32), _bits(x, 32, 32), _bits(x, 64, 16)]
                for x in spikes.items[spk_at:spk_end]
            ]
            if not corrupted and trace:
                trace[0][2] ^= 1
                corrupted = True
            rows = None
            if debug:
                flat = [_signed(x, mb) for x in mems.items[mem_at:mem_end]]
                rows = [flat[i : i + n] for i in range(0, len(flat), n)]
            spk_at, mem_at = spk_end, mem_end
            diff = check_sample(exp, trace, got_summary, rows)
            samples.append(
                {
                    "sample": s,
                    "sample_id": exp["sample_id"],
                    "ok": not diff,
                    "cycles": got_summary["cycles"] if got_summary else None,
                    "synops": got_summary["synops"] if got_summary else None,
                    "spikes": len(trace),
                    **({"differences": diff} if diff else {}),
                }
            )
        bad = sum(not s["ok"] for s in samples)
        dut._log.info(
            f"case {case['name']}: {len(samples)} samples, {bad} mismatching, "
            f"weights {load_cycles} cycles, samples {run_cycles} cycles"
        )
        results.append(
            {
                "name": case["name"],
                "samples": samples,
                "load_cycles": load_cycles,
                "run_cycles": run_cycles,
            }
        )
        if error:
            break
    out = {"tb_seed": bench["tb_seed"], "error": error, "cases": results}
    Path(bench["results"]).write_text(json.dumps(out) + "\n")
    return out


@cocotb.test()
async def run_cases(dut):
    """Every case of the bench file; fails when a sample differs from the reference."""
    out = await run_bench(dut)
    bad = [(c["name"], s["sample"]) for c in out["cases"] for s in c["samples"] if not s["ok"]]
    assert out["error"] is None, out["error"]
    assert not bad, f"{len(bad)} samples differ from the reference, first {bad[0]}"
