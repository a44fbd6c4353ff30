"""Evaluate a deployed artifact on a dataset split in the reference simulator
(``unlayered evaluate``).

The artifact runs in :func:`unlayered.sim.simulate` (the compiled engine by default), optionally
under another scheduler or group size than the one it carries. The report holds the accuracy and
the per-sample means of every metric of the contract (spikes per layer, synaptic operations,
groups, time steps) and the decision latency in each unit (``*_to_decision`` and the decision
step), plus, when a checkpoint is given, the accuracy of the float network it came from under the
same scheduler (``ScheduledSNN`` float mode), to see what quantization cost.

The dataset defaults to the one recorded in the artifact's ``input_encoding`` (name, steps,
seed), so ``unlayered evaluate MODEL`` finds the training's data again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from unlayered.sim import Model, UnlayeredError, load_model, simulate

__all__ = ["dataset_for", "evaluate", "float_accuracy", "format_report", "split_events"]


def dataset_for(model: Model, name: str | None = None, path: str | None = None):
    """The dataset an artifact was trained on (or ``name`` with the artifact's steps and seed)."""
    from .train import open_dataset

    enc = model.input_encoding
    name = name or enc.get("dataset")
    if not name:
        raise UnlayeredError("the artifact names no dataset in its input_encoding; pass --dataset")
    same = name == enc.get("dataset")
    return open_dataset(
        name,
        num_steps=enc.get("num_steps") if same else None,
        seed=enc.get("seed", 0) if same else 0,
        path=path,
        options=enc.get("dataset_options") if same else None,
    )


def split_events(dataset, split: str, max_samples: int | None = None):
    if split not in ("test", "train"):
        raise UnlayeredError(f"unknown split {split!r}; expected test or train")
    events = getattr(dataset, split)
    if max_samples is not None and max_samples < len(events):
        events = events.select(np.arange(max_samples))
    return events


def float_accuracy(
    checkpoint: str | os.PathLike | dict,
    events,
    *,
    scheduler: str | None = None,
    group_size: int | None = None,
    n_inputs: int | None = None,
) -> float:
    """Accuracy of a checkpoint's float network (its own rounding off: exactly the trained
    network, QAT included) on ``events`` under a scheduler (default: the training's)."""
    from dataclasses import replace

    from .train import _Split, evaluate_float, load_checkpoint, network_from_checkpoint

    ckpt = checkpoint if isinstance(checkpoint, dict) else load_checkpoint(checkpoint)
    net, cfg = network_from_checkpoint(ckpt)
    changes = {}
    if scheduler is not None:
        changes["scheduler"] = scheduler
    if group_size is not None:
        changes["group_size"] = group_size
    net.config = replace(net.config, **changes)
    split = _Split(events, n_inputs or net.n_inputs, cfg.num_steps, "cpu")
    return evaluate_float(net, split)


def evaluate(
    model: Model | str | os.PathLike,
    dataset=None,
    *,
    split: str = "test",
    scheduler: str | None = None,
    group_size: int | None = None,
    seed: int | None = None,
    max_samples: int | None = None,
    engine: str = "compiled",
    checkpoint: str | os.PathLike | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run an artifact on a dataset split and return the report (see the module docstring)."""
    from .demo import latency_to_decision

    source = None
    if not isinstance(model, Model):
        source = str(model)
        model = load_model(model)
    if dataset is None or isinstance(dataset, str):
        dataset = dataset_for(model, dataset)
    changes = {}
    if scheduler is not None:
        changes["name"] = scheduler
    if group_size is not None:
        changes["group_size"] = group_size
    if changes:
        model = model.with_scheduler(**changes)
    events = split_events(dataset, split, max_samples)
    events.check_channels(model.n_inputs, where=f"dataset {dataset.name}")
    wrap = None
    if progress:
        from tqdm import tqdm

        def wrap(it):
            return tqdm(it, desc="evaluate", leave=False, dynamic_ncols=True)

    result = simulate(model, events, seed=seed, engine=engine, progress=wrap)
    report = result.report(include_traces=False)
    decided = [r for r in result.samples if r.decision >= 0]
    report["model"] = source
    report["dataset"] = dataset.name
    report["split"] = split
    report["to_decision"] = latency_to_decision(report)
    report["mean"]["decision_step"] = (
        float(np.mean([r.decision_step for r in decided])) if decided else None
    )
    if checkpoint is not None:
        report["float_accuracy"] = float_accuracy(
            checkpoint,
            events,
            scheduler=model.scheduler.name,
            group_size=model.scheduler.group_size,
            n_inputs=model.n_inputs,
        )
    return report


def format_report(report: dict[str, Any]) -> str:
    """The readable table of an evaluation report."""
    from .cli import format_summary

    text = format_summary(report)
    head = f"dataset     {report['dataset']} ({report['split']} split)"
    lines = [head, text]
    if report.get("float_accuracy") is not None:
        acc = report["accuracy"] or 0.0
        lines.append(
            f"float model {100 * report['float_accuracy']:.1f} % under the same scheduler "
            f"(deployed integer {100 * acc:.1f} %, "
            f"difference {100 * (acc - report['float_accuracy']):+.1f} points)"
        )
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")
    except OSError as exc:
        raise UnlayeredError(f"{path}: cannot write the report ({exc.strerror or exc})") from None
    return path
