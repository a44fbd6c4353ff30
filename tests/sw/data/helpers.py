"""Shared checks for the data tests."""

from __future__ import annotations

import json

import numpy as np

from unlayered.sw.data import TEST_ID_OFFSET, Dataset


def check_dataset(ds: Dataset) -> None:
    """Invariants every data set keeps."""
    for split in (ds.train, ds.test):
        assert len(split) > 0
        assert all(split.num_steps(s) == ds.num_steps for s in range(len(split)))
        assert split.labels.min() >= 0 and split.labels.max() < ds.n_classes
        if len(split.channel):
            assert split.channel.min() >= 0 and split.channel.max() < ds.n_inputs
        for s in range(len(split)):
            for events in split.sample_steps(s):
                assert len(np.unique(events)) == len(events)
    assert len(np.unique(ds.train.sample_ids)) == len(ds.train)
    assert not set(ds.train.sample_ids.tolist()) & set(ds.test.sample_ids.tolist())
    assert ds.train.sample_ids.tolist() == list(range(len(ds.train)))
    assert ds.test.sample_ids.tolist() == [TEST_ID_OFFSET + i for i in range(len(ds.test))]
    assert json.loads(json.dumps(ds.encoding)) == ds.encoding
    assert ds.encoding["dataset"] == ds.name
    assert ds.encoding["num_steps"] == ds.num_steps
    assert ds.encoding["n_train"] == len(ds.train) and ds.encoding["n_test"] == len(ds.test)


def same_events(a, b) -> bool:
    return (
        len(a) == len(b)
        and np.array_equal(a.channel, b.channel)
        and all(np.array_equal(p, q) for p, q in zip(a.step_ptr, b.step_ptr, strict=True))
        and np.array_equal(a.labels, b.labels)
        and np.array_equal(a.sample_ids, b.sample_ids)
    )
