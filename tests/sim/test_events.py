"""The events file: round trips, arrival order, and a clear error for every malformed input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from unlayered.sim import (
    EventSamples,
    EventsError,
    LayerSpec,
    Model,
    load_events,
    save_events,
    simulate,
)
from unlayered.sim.events import EVENTS_VERSION, from_arrays

# samples[s][t] = channels of step t of sample s, in arrival order
SAMPLES = [
    [[3, 0, 2], [], [1]],  # unsorted arrival order, an empty step
    [[], []],  # no events at all
    [],  # no steps
    [[4], [0, 4, 2, 1], [], []],  # trailing empty steps
]


def as_lists(events: EventSamples) -> list[list[list[int]]]:
    return [[x.tolist() for x in events.sample_steps(s)] for s in range(len(events))]


def save_arrays(path: Path, **arrays: Any) -> Path:
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def valid_arrays() -> dict[str, np.ndarray]:
    return EventSamples.from_lists(SAMPLES, labels=[1, -1, 0, 2]).arrays()


# ---------------------------------------------------------------------------------------------
# Round trips and order


def test_round_trip(tmp_path):
    events = EventSamples.from_lists(SAMPLES, labels=[1, -1, 0, 2], sample_ids=[7, 3, 100, 0])
    loaded = load_events(save_events(events, tmp_path / "e.npz"))
    assert as_lists(loaded) == SAMPLES
    assert loaded.labels.tolist() == [1, -1, 0, 2]
    assert loaded.sample_ids.tolist() == [7, 3, 100, 0]
    assert [loaded.num_steps(s) for s in range(len(loaded))] == [3, 2, 0, 4]
    for name, value in events.arrays().items():
        assert np.array_equal(value, loaded.arrays()[name]), name


def test_defaults_of_optional_arrays(tmp_path):
    """Without label, sample_id and format_version: labels -1, ids 0..S-1, version 1."""
    arrays = valid_arrays()
    for name in ("label", "sample_id", "format_version"):
        del arrays[name]
    loaded = load_events(save_arrays(tmp_path / "e.npz", **arrays))
    assert as_lists(loaded) == SAMPLES
    assert loaded.labels.tolist() == [-1, -1, -1, -1]
    assert loaded.sample_ids.tolist() == [0, 1, 2, 3]


def test_file_holds_the_documented_arrays(tmp_path):
    path = save_events(EventSamples.from_lists(SAMPLES), tmp_path / "e.npz")
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        version = archive["format_version"]
    assert names == {
        "sample",
        "step",
        "channel",
        "num_steps",
        "label",
        "sample_id",
        "format_version",
    }
    assert version.shape == () and int(version) == EVENTS_VERSION


def test_arrival_order_is_file_order_within_a_step():
    """Rows may come in any order across samples and steps; within a step, file order wins."""
    rows = [  # (sample, step, channel), interleaved
        (1, 0, 5),
        (0, 1, 7),
        (1, 0, 1),
        (0, 0, 9),
        (0, 1, 2),
        (1, 0, 3),
        (0, 1, 4),
    ]
    sample, step, channel = (np.array(x) for x in zip(*rows, strict=True))
    events = from_arrays(sample=sample, step=step, channel=channel, num_steps=np.array([2, 1]))
    assert as_lists(events) == [[[9], [7, 2, 4]], [[5, 1, 3]]]


def test_select_keeps_ids_labels_and_order():
    events = EventSamples.from_lists(SAMPLES, labels=[1, -1, 0, 2], sample_ids=[7, 3, 100, 0])
    chosen = events.select([3, 0])
    assert as_lists(chosen) == [SAMPLES[3], SAMPLES[0]]
    assert chosen.sample_ids.tolist() == [0, 7]
    assert chosen.labels.tolist() == [2, 1]


# ---------------------------------------------------------------------------------------------
# Malformed events: EventsError naming the field (and the sample and step where it applies)


def _with(**changes: Any) -> dict[str, np.ndarray]:
    arrays = valid_arrays()
    for name, value in changes.items():
        if value is None:
            del arrays[name]
        else:
            arrays[name] = np.asarray(value)
    return arrays


def _rows(rows: list[tuple[int, int, int]], num_steps: list[int]) -> dict[str, np.ndarray]:
    sample, step, channel = (np.array(x, dtype=np.int64) for x in zip(*rows, strict=True))
    return {"sample": sample, "step": step, "channel": channel, "num_steps": np.array(num_steps)}


MALFORMED: list[tuple[str, dict[str, np.ndarray], list[str]]] = [
    (
        "duplicate-channel",
        _rows([(0, 0, 1), (1, 2, 4), (0, 1, 3), (1, 2, 5), (1, 2, 4)], [2, 3]),
        ["'channel'", "channel 4", "sample 1", "step 2"],
    ),
    ("step-too-large", _rows([(0, 0, 1), (1, 3, 2)], [2, 3]), ["'step'", "sample 1", "3"]),
    ("step-negative", _rows([(0, -1, 1)], [2]), ["'step'", "-1"]),
    ("channel-negative", _rows([(0, 0, 1), (0, 1, -2)], [2]), ["'channel'", "-2"]),
    ("sample-out-of-range", _rows([(0, 0, 1), (2, 0, 1)], [1, 1]), ["'sample'", "2"]),
    ("sample-negative", _rows([(-1, 0, 1)], [1]), ["'sample'", "-1"]),
    ("num_steps-negative", _with(num_steps=[3, -1, 0, 4]), ["'num_steps'"]),
    ("lengths-differ", _with(channel=[1, 2, 3]), ["'sample'", "'step'", "'channel'"]),
    ("label-length", _with(label=[1, 2]), ["'label'"]),
    ("sample_id-length", _with(sample_id=[0, 1, 2, 3, 4]), ["'sample_id'"]),
    ("sample_id-not-unique", _with(sample_id=[0, 5, 2, 5]), ["'sample_id'", "unique"]),
    ("sample_id-negative", _with(sample_id=[0, -1, 2, 3]), ["'sample_id'"]),
    ("sample_id-too-large", _with(sample_id=[0, 1 << 32, 2, 3]), ["'sample_id'"]),
    ("sample-missing", _with(sample=None), ["'sample'", "missing"]),
    ("step-missing", _with(step=None), ["'step'", "missing"]),
    ("channel-missing", _with(channel=None), ["'channel'", "missing"]),
    ("num_steps-missing", _with(num_steps=None), ["'num_steps'", "missing"]),
    ("unknown-array", _with(polarity=np.zeros(3, np.int8)), ["'polarity'", "unknown"]),
    ("channel-float", _with(channel=valid_arrays()["channel"] + 0.0), ["'channel'", "float"]),
    ("step-float", _with(step=valid_arrays()["step"].astype(np.float32)), ["'step'"]),
    ("sample-float", _with(sample=valid_arrays()["sample"] + 0.5), ["'sample'"]),
    ("num_steps-float", _with(num_steps=[3.0, 2.0, 0.0, 4.0]), ["'num_steps'"]),
    ("label-float", _with(label=[1.0, -1.0, 0.0, 2.0]), ["'label'"]),
    ("channel-2d", _with(channel=valid_arrays()["channel"].reshape(-1, 1)), ["'channel'"]),
    ("num_steps-scalar", _with(num_steps=4), ["'num_steps'"]),
    ("format_version-2", _with(format_version=2), ["'format_version'"]),
    ("format_version-string", _with(format_version="1"), ["'format_version'"]),
    ("format_version-array", _with(format_version=[1]), ["'format_version'"]),
]


@pytest.mark.parametrize(
    ("arrays", "expected"), [pytest.param(a, e, id=i) for i, a, e in MALFORMED]
)
def test_malformed_events_file(tmp_path, arrays, expected):
    path = save_arrays(tmp_path / "e.npz", **arrays)
    with pytest.raises(EventsError) as info:
        load_events(path)
    message = str(info.value)
    assert str(path) in message
    for text in expected:
        assert text in message, message


def test_duplicate_channel_from_lists():
    with pytest.raises(EventsError, match=r"channel 2 occurs twice in sample 0 step 1"):
        EventSamples.from_lists([[[0], [2, 1, 2]]])


@pytest.mark.parametrize(
    "content",
    [b"", b"not an npz file at all", b"PK\x03\x04truncated zip"],
    ids=["empty", "text", "truncated-zip"],
)
def test_unreadable_events_file(tmp_path, content):
    path = tmp_path / "e.npz"
    path.write_bytes(content)
    with pytest.raises(EventsError) as info:
        load_events(path)
    assert str(path) in str(info.value)


def test_truncated_events_file(tmp_path):
    path = save_events(EventSamples.from_lists(SAMPLES), tmp_path / "e.npz")
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(EventsError) as info:
        load_events(path)
    assert str(path) in str(info.value)


def test_missing_events_file(tmp_path):
    with pytest.raises(EventsError, match="no such file"):
        load_events(tmp_path / "nothing.npz")


# ---------------------------------------------------------------------------------------------
# Channels beyond the model's inputs: checked when the events meet a model


def _model(n_inputs: int) -> Model:
    return Model(
        n_inputs=n_inputs,
        layers=(LayerSpec(size=2, threshold=1, leak=256),),
        weights=(np.ones((2, n_inputs), np.int8),),
    )


def test_channel_beyond_the_model_inputs():
    events = EventSamples.from_lists([[[0, 1]], [[1], [], [2, 9, 0]]])
    simulate(_model(10), events, engine="readable")  # 10 inputs: fine
    with pytest.raises(EventsError) as info:
        simulate(_model(9), events, engine="readable")
    message = str(info.value)
    for text in ("'channel'", "sample 1", "step 2", "channel 9", "9 input channels"):
        assert text in message, message


def test_check_channels_names_the_file():
    events = EventSamples.from_lists([[[5]]])
    with pytest.raises(EventsError, match=r"^my-events\.npz: .*sample 0 step 0 has channel 5"):
        events.check_channels(4, where="my-events.npz")
