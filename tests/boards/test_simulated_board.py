"""The host code against the board top in simulation (UART, link engine, core), end to end.

Every run compares each sample's result (decision, counts, counters, trace) with ``simulate``;
the fault tests damage frames on the simulated serial line in both directions.
"""

from __future__ import annotations

import pytest

from unlayered.boards.run import run_samples_on_board, simulated_link
from unlayered.sim import UnlayeredError, simulate
from unlayered.sim.rng import sample_seed

from .links import small_events, small_model


def run(model, events, **options):
    link, board = simulated_link(model, lanes=2, max_payload=128, trace_depth=512, **options)
    report = run_samples_on_board(model, events, link, clock=board.clock)
    return report, link, board


def test_clean_run_matches_simulate():
    model = small_model("momentum", seed=1)
    events = small_events(3, seed=8)
    report, link, _ = run(model, events)
    assert report["mismatches"] == [] and report["agree"] == 3
    assert report["traces_cut"] == 0
    assert link.stats.retransmissions == 0 and link.stats.busy >= 0
    info = report["device"]
    assert (info["lanes"], info["max_payload"], info["clock_hz"]) == (2, 128, 1_000_000)
    cycles = report["cycles_per_sample"]
    assert cycles > 0 and report["core_seconds"] == pytest.approx(3 * cycles / 1e6)
    assert 0 < report["core_seconds"] < report["seconds"]


def test_spram_weights_start_empty_and_are_loaded_by_the_host():
    model = small_model("fifo", seed=2)
    events = small_events(2, seed=3)
    reference = simulate(model, events).samples
    link, board = simulated_link(
        model, lanes=2, max_payload=128, trace_depth=64, weight_ram="spram"
    )
    link.reset()
    first = next(i for i, r in enumerate(reference) if len(r.trace))
    sample_id = int(events.sample_ids[first])
    empty = link.run_sample(
        events.sample_steps(first),
        sample_id=sample_id,
        state=sample_seed(model.scheduler.seed, sample_id),
    )
    assert empty.trace_length == 0  # no weights yet: nothing fires
    report = run_samples_on_board(model, events, link, clock=board.clock)
    assert report["mismatches"] == [] and report["weights"]["frames"] > 0


def test_faults_on_the_line_are_recovered():
    """A corrupted, dropped, lost, stalled and duplicated frame in each direction."""
    model = small_model("random", seed=4)
    events = small_events(3, seed=9)
    faults = ("corrupt", "drop_byte", "lose", "stall", "duplicate")
    to_board = {6 + 2 * i: fault for i, fault in enumerate(faults)}
    to_host = {7 + 2 * i: fault for i, fault in enumerate(faults)}
    report, link, board = run(
        model, events, to_board=to_board, to_host=to_host, timeout=0.03, seed=5
    )
    assert report["mismatches"] == [] and report["agree"] == 3
    assert sorted(board.injected) == sorted(
        [("to_board", i, f) for i, f in to_board.items()]
        + [("to_host", i, f) for i, f in to_host.items()]
    )
    stats = link.stats
    # The faults were recovered from, not missed: they cost retries and timeouts (bounds, as a
    # fault that lands on a reply the host no longer waits for, a stale one, costs nothing)
    assert stats.retransmissions >= 4 and stats.timeouts >= 2
    assert stats.corrupt_responses + stats.error_responses >= 2


def test_unknown_fault_is_refused():
    with pytest.raises(UnlayeredError, match="unknown line fault 'melt'"):
        simulated_link(small_model(), lanes=1, max_payload=128, trace_depth=8, to_board={0: "melt"})
