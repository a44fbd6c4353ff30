"""HostLink end to end against the device model, with faults injected on the link.

Every test checks that each sample's result is identical to ``unlayered.sim.simulate`` and that
the device ran each sample exactly once (``DeviceModel.executed``).
"""

from __future__ import annotations

import numpy as np
import pytest

from unlayered.boards import protocol as p
from unlayered.boards.device_model import DeviceModel
from unlayered.boards.host import BoardResult, HostLink
from unlayered.sim import EventSamples, simulate

from .links import FAULTS, FaultyLoopback, small_events, small_model


def check(results: list[BoardResult], model, events, device: DeviceModel, *, trace=True):
    reference = simulate(model, events, engine="readable")
    assert [r.sample_id for r in results] == events.sample_ids.tolist()
    assert device.executed == events.sample_ids.tolist()  # none lost, none run twice
    for board, ref in zip(results, reference.samples, strict=True):
        assert board.mismatches(ref) == []
        assert (board.trace is not None) == trace


def link(device, **faults) -> tuple[HostLink, FaultyLoopback]:
    transport = FaultyLoopback(device, **faults)
    host = HostLink(transport, timeout=0.05, retries=8, busy_delay=0)
    host.reset()
    return host, transport


@pytest.mark.parametrize("scheduler", ["sync", "fifo", "random", "momentum"])
def test_clean_link_matches_simulate(scheduler):
    model = small_model(scheduler, seed=3)
    events = small_events(6, seed=4)
    device = DeviceModel(model, lanes=2)
    host, _ = link(device)
    info = host.info()
    assert (info.lanes, info.n_inputs, info.n_outputs) == (2, 12, 4)
    results = host.run_samples(events, seed=model.scheduler.seed)
    check(results, model, events, device)
    assert host.stats.retransmissions == 0 and host.stats.stale_responses == 0


def test_without_trace_and_long_samples():
    model = small_model("fifo", seed=1)
    rng = np.random.default_rng(0)
    steps = [rng.permutation(12)[: rng.integers(6, 13)].tolist() for _ in range(150)]
    events = EventSamples.from_lists([steps, [], [[]], steps[:3]], sample_ids=[5, 6, 7, 8])
    device = DeviceModel(model)
    host, _ = link(device)
    check(host.run_samples(events, seed=1235), model, events, device)
    reference = simulate(model, events, engine="readable")
    assert len(reference.samples[0].trace) > 102  # the trace took several frames
    device.executed.clear()
    check(host.run_samples(events, seed=1235, trace=False), model, events, device, trace=False)


@pytest.mark.parametrize("direction", ["to_device", "to_host"])
@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_recovers(fault, direction):
    model = small_model("random", seed=2)
    events = small_events(5, seed=7)
    device = DeviceModel(model)
    # Faults on several frames: commands and responses of every kind are hit somewhere.
    schedule = {i: fault for i in (1, 2, 4, 7, 11, 16, 22)}
    host, transport = link(device, **{direction: schedule})
    results = host.run_samples(events, seed=model.scheduler.seed)
    check(results, model, events, device)
    assert transport.injected
    if fault == "duplicate":  # the device replays, the host drops the extra responses
        assert host.stats.stale_responses > 0 and host.stats.retransmissions == 0
    else:
        assert host.stats.retransmissions > 0
    if fault == "stall":  # the late response and the replayed one both arrive
        assert host.stats.timeouts > 0 and host.stats.stale_responses > 0


@pytest.mark.parametrize("seed", range(4))
def test_random_faults_everywhere(seed):
    model = small_model(["sync", "fifo", "random", "momentum"][seed], seed=seed)
    events = small_events(12, seed=seed)
    device = DeviceModel(model, lanes=1 + seed % 3, busy_reads=2)
    host, transport = link(device, random_rate=0.15, seed=seed)
    results = host.run_samples(events, seed=model.scheduler.seed)
    check(results, model, events, device)
    kinds = {f for _, _, f in transport.injected}
    assert len(kinds) >= 3, transport.injected
    assert host.stats.busy > 0


def test_load_weights_over_a_faulty_link():
    model, other = small_model("momentum", seed=5), small_model("momentum", seed=6)
    events = small_events(4, seed=2)
    device = DeviceModel(model, lanes=3)
    host, _ = link(device, random_rate=0.1, seed=9)
    frames = host.load_weights(other)
    assert frames == 3  # one run of consecutive addresses per bank
    check(host.run_samples(events, seed=other.scheduler.seed), other, events, device)


def test_busy_polling_and_its_bound():
    model = small_model("fifo")
    events = small_events(3, seed=1)
    device = DeviceModel(model, busy_reads=5)
    host, _ = link(device)
    check(host.run_samples(events, seed=model.scheduler.seed), model, events, device)
    assert host.stats.busy == 15
    host.busy_retries = 2
    with pytest.raises(p.DeviceBusyError, match="BUSY"):
        host.run_samples(events, seed=1)


class Silent:
    """A link that loses everything."""

    def __init__(self):
        self.writes = 0

    def write(self, data):
        self.writes += 1

    def read(self, n, timeout):
        return b""


def test_timeout_after_bounded_retries_then_reset():
    transport = Silent()
    host = HostLink(transport, timeout=0.01, retries=3)
    with pytest.raises(p.LinkTimeoutError, match=r"RESET .* after 4 attempts .*timeout"):
        host.reset()
    assert transport.writes == 4
    with pytest.raises(p.SequenceError, match="call reset"):
        host.info()


def test_late_answer_after_a_timeout_is_not_taken_for_resets():
    model = small_model("fifo")
    device = DeviceModel(model)
    host, transport = link(device)
    host.retries = 1
    # reset() sent RESET and INFO (answers 0 and 1); this INFO's answers: lost, then too late
    transport.to_host = {2: "lose", 3: "stall"}
    with pytest.raises(p.LinkTimeoutError, match=r"INFO \(sequence 2\): no valid response"):
        host.info()
    host.reset()  # the late INFO_REPLY (sequence 2) arrives first and is dropped
    assert host.stats.stale_responses == 1
    events = small_events(3, seed=5)
    check(host.run_samples(events, seed=model.scheduler.seed), model, events, device)


def test_device_errors_are_raised_and_reset_recovers():
    model = small_model("fifo")
    device = DeviceModel(model)
    host, _ = link(device)
    with pytest.raises(p.DeviceError, match=r"BAD_PAYLOAD.*channel 12 is not an input") as info:
        host.run_sample([[1, 12]], sample_id=1, state=5)
    assert info.value.code is p.ErrorCode.BAD_PAYLOAD
    with pytest.raises(p.DeviceError, match=r"BAD_STATE.*sample 1 is in progress"):
        host.run_sample([[1]], sample_id=2, state=5)
    host.reset()
    events = small_events(2, seed=3)
    check(host.run_samples(events, seed=model.scheduler.seed), model, events, device)


def test_device_power_cycle_is_detected():
    model = small_model("fifo")
    device = DeviceModel(model)
    host, transport = link(device)
    transport.device = DeviceModel(model)  # the board restarted: no session
    with pytest.raises(p.SequenceError, match="send RESET first"):
        host.info()
    with pytest.raises(p.SequenceError, match="call reset"):
        host.info()
    host.reset()
    assert host.info().n_outputs == 4


def test_mismatches_names_the_first_difference():
    model = small_model("random", seed=2)
    events = small_events(3, seed=7)
    device = DeviceModel(model)
    host, _ = link(device)
    results = host.run_samples(events, seed=model.scheduler.seed)
    reference = simulate(model, events, engine="readable").samples
    k = next(i for i, r in enumerate(reference) if len(r.trace) > 2)
    board = results[k]
    board.trace[2, 2] += 1
    assert board.mismatches(reference[k]) == [
        f"trace: first difference at spike 2: board {board.trace[2].tolist()}, "
        f"reference {reference[k].trace[2].tolist()}"
    ]
    wrong = BoardResult(
        board.sample_id, board.decision + 1, board.output_counts, board.counters, None
    )
    assert wrong.mismatches(reference[k])[0].startswith("decision: board")


def test_host_follows_the_announced_limits():
    """Frames sized by the device's max_payload; a trace longer than its buffer is cut."""
    model = small_model("momentum", seed=5)
    events = small_events(4, seed=6, max_steps=6)
    device = DeviceModel(model, lanes=2, max_payload=64, trace_depth=5)
    host, transport = link(device)
    assert host.limits.max_payload == 64 and host.limits.events == 29
    results = host.run_samples(events, seed=model.scheduler.seed)
    check(results, model, events, device)
    reference = simulate(model, events, engine="readable").samples
    cut = [r for r, ref in zip(results, reference, strict=True) if len(ref.trace) > 5]
    assert cut and all(len(r.trace) == 5 and not r.trace_complete for r in cut)
    assert transport.sent > 3 * len(events)  # the events took several 64-byte frames
    broken = cut[0]
    broken.trace[0, 0] += 1
    ref = next(x for x in reference if x.sample_id == broken.sample_id)
    assert broken.mismatches(ref)[0].startswith("trace: first difference at spike 0")
