"""The study on a tiny configuration: every trained model under every execution scheduler."""

from __future__ import annotations

import json

from unlayered.sw.study import EXEC_SCHEDULERS, StudyConfig, run_study


def test_study_tiny(tmp_path):
    config = StudyConfig(
        dataset="digits",
        out=str(tmp_path / "study"),
        hidden=(16,),
        epochs=1,
        group_sizes=(4,),
        eval_group_size=4,
        train_schedulers=("momentum",),
        max_train_samples=120,
        max_test_samples=30,
    )
    result = run_study(config)
    out = tmp_path / "study"
    rows = json.loads((out / "study.json").read_text())["rows"]
    assert [(r["trained"], r["executed"]) for r in rows] == [
        (t, e) for t in ("sync", "momentum_F4") for e in EXEC_SCHEDULERS
    ]
    for r in rows:
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["float_accuracy"] <= 1
        assert r["synops_to_decision"] <= r["synops"]
    for name in ("accuracy.png", "spikes.png", "latency.png", "study.txt", "config.json"):
        assert (out / name).is_file(), name
    assert (out / "models" / "sync" / "model.npz").is_file()
    assert "momentum_F4" in result.table
