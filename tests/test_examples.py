"""The committed example files are what ``examples/make_examples.py`` writes, and are active."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from unlayered.sim import load_events, load_model, simulate
from unlayered.sim.model import SCHEDULERS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@pytest.mark.parametrize("name", ["model.npz", "events.npz"])
def test_committed_files_match_the_script(tmp_path, name):
    """Regenerate into a temporary folder: same arrays, dtypes, shapes and values.

    (npz files carry zip timestamps, so the comparison is by content, not by bytes.)
    """
    _load_script().make_examples(tmp_path)
    committed, fresh = _arrays(EXAMPLES / name), _arrays(tmp_path / name)
    assert sorted(committed) == sorted(fresh)
    for key in committed:
        assert committed[key].dtype == fresh[key].dtype, key
        assert committed[key].shape == fresh[key].shape, key
        assert np.array_equal(committed[key], fresh[key]), (
            f"examples/{name}: array {key!r} differs from what make_examples.py writes; "
            "regenerate with `.venv/bin/python examples/make_examples.py`"
        )


def test_example_shapes():
    model = load_model(EXAMPLES / "model.npz")
    events = load_events(EXAMPLES / "events.npz")
    assert model.n_inputs == 64
    assert model.sizes == (32, 10)
    assert model.weight_bits == 8
    assert model.scheduler.name == "momentum"
    assert model.scheduler.group_size == 4
    assert len(events) == 20
    assert all(events.num_steps(s) == 20 for s in range(len(events)))
    assert set(events.labels.tolist()) == set(range(10))
    for path in EXAMPLES.glob("*.npz"):
        assert path.stat().st_size < 100_000, f"{path} is too large to commit"


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_example_network_is_active(scheduler):
    """Every layer spikes in most samples, and the output decides most samples."""
    model = load_model(EXAMPLES / "model.npz").with_scheduler(name=scheduler)
    events = load_events(EXAMPLES / "events.npz")
    result = simulate(model, events, engine="readable")
    spikes = np.array([r.spikes for r in result.samples])  # (samples, layers)
    active = (spikes > 0).mean(axis=0)
    assert (active >= 0.8).all(), f"fraction of samples with spikes, per layer: {active}"
    decided = np.mean([r.decision >= 0 for r in result.samples])
    assert decided >= 0.8
    assert result.accuracy is not None and result.accuracy > 0.3  # well above chance (0.1)
