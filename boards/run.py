"""Run samples on a board (or the simulated board) and compare every result with ``sim``.

``unlayered run`` is :func:`run_samples_on_board` plus a transport: a serial port
(:mod:`.serial_transport`) or the board top in simulation (:mod:`.simulated`). The model's
weights are always loaded first (``LOAD_WEIGHTS``): a board whose weights live in SPRAM starts
without them, and a bitstream built for another model of the same shape runs this one.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import numpy as np

from unlayered.gateware.layout import CoreLayout
from unlayered.sim import EventSamples, Model, UnlayeredError, simulate
from unlayered.sim.rng import sample_seed

from .host import HostLink

__all__ = ["check_compatible", "run_samples_on_board", "simulated_link"]


def check_compatible(model: Model, link: HostLink) -> None:
    """Raise unless the board's core has ``model``'s shape (after ``link.reset()``)."""
    info = link.device
    layout = CoreLayout.from_model(model, info.lanes)
    board = (info.n_inputs, info.n_outputs, info.weight_depth, info.weight_bits)
    ours = (model.n_inputs, int(model.sizes[-1]), layout.weight_depth, model.weight_bits)
    if board != ours:
        raise UnlayeredError(
            "the board was built for another network shape: (inputs, outputs, weight words, "
            f"weight bits) {board} on the board, {ours} for this model; rebuild with "
            "`unlayered build`"
        )


def run_samples_on_board(
    model: Model,
    events: EventSamples,
    link: HostLink,
    *,
    trace: bool = True,
    load: bool = True,
    clock=time.monotonic,
    progress=None,
) -> dict[str, Any]:
    """Reset the board, load ``model``'s weights, run every sample and compare with ``sim``.

    ``load=False`` keeps the board's weights: only right for a bitstream built from ``model``
    with its weights in block RAM (the comparison would show anything else).
    ``clock`` measures the link's time (the simulated board passes its simulated clock).
    Returns the report (see ``docs/boards.md``): agreement, accuracy, mismatches,
    throughput with link and core time separated, link statistics.
    """
    link.reset()
    check_compatible(model, link)
    info = link.device
    started = clock()
    frames = link.load_weights(model, lanes=info.lanes) if load else 0
    load_seconds = clock() - started
    reference = simulate(model, events).samples
    results, mismatches = [], []
    started = clock()
    indices = range(len(events))
    for s in progress(indices) if progress else indices:
        sample_id = int(events.sample_ids[s])
        board = link.run_sample(
            events.sample_steps(s),
            sample_id=sample_id,
            state=sample_seed(model.scheduler.seed, sample_id),
            trace=trace,
        )
        results.append(board)
        for problem in board.mismatches(reference[s]):
            mismatches.append({"sample": s, "sample_id": sample_id, "difference": problem})
    seconds = clock() - started
    cycles = [r.counters["cycles"] for r in results]
    core_seconds = sum(cycles) / info.clock_hz if info.clock_hz else None
    labels = events.labels
    decisions = np.array([r.decision for r in results])
    n = len(results)
    return {
        "samples": n,
        "mismatches": mismatches,
        "agree": n - len({m["sample"] for m in mismatches}),
        "accuracy": float(np.mean(decisions == labels)) if labels is not None and n else None,
        "trace_compared": trace,
        "traces_cut": sum(1 for r in results if trace and not r.trace_complete),
        "device": asdict(info),
        "weights": {"frames": frames, "seconds": load_seconds},
        "seconds": seconds,
        "samples_per_second": n / seconds if seconds > 0 else None,
        "core_seconds": core_seconds,
        "link_seconds": seconds - core_seconds if core_seconds is not None else None,
        "cycles_per_sample": float(np.mean(cycles)) if cycles else None,
        "link": asdict(link.stats),
    }


def simulated_link(
    model: Model,
    *,
    lanes: int,
    max_payload: int,
    trace_depth: int,
    weight_ram: str = "bram",
    clock_hz: int = 1_000_000,
    divisor: int = 4,
    timeout: float | None = None,
    **faults,
):
    """A :class:`HostLink` to the board top in the Amaranth simulator, on simulated time.

    The UART runs at ``clock_hz / divisor`` baud (the fastest the UART allows, so that the slow
    simulator spends its time on the core); the host's timeout covers the longest frame both
    ways plus 50,000 core cycles unless ``timeout`` is given (simulated seconds; a stalled
    frame costs the simulator that long). ``faults`` go to :class:`~.simulated.SimulatedBoard`.
    """
    from .simulated import SimulatedBoard, check_faults
    from .top import LinkTop

    check_faults(faults.get("to_board"), faults.get("to_host"))  # before building the top
    top = LinkTop(
        model,
        lanes=lanes,
        clock_hz=clock_hz,
        baud=clock_hz // divisor,
        max_payload=max_payload,
        trace_depth=trace_depth,
        weight_ram=weight_ram,
    )
    byte_seconds = 10 * divisor / clock_hz
    frame_seconds = (max_payload + 16) * 1.01 * byte_seconds
    if timeout is None:
        timeout = 2 * frame_seconds + 50_000 / clock_hz  # both ways, and the core's work
    faults.setdefault("stall_seconds", 1.5 * timeout)
    board = SimulatedBoard(top, **faults)
    link = HostLink(
        board, timeout=timeout, retries=8, busy_delay=200 / clock_hz,
        clock=board.clock, sleep=board.sleep,
    )  # fmt: skip
    return link, board
