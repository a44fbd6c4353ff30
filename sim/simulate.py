"""Run a model on a batch of event samples: the reference simulator's public entry point."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UnlayeredError
from .events import EventSamples
from .model import Model
from .reference import run_sample
from .result import SampleResult
from .rng import sample_seed

__all__ = ["ENGINES", "SimulationResult", "simulate"]

ENGINES = ("compiled", "readable")


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """Per-sample results of one run, with aggregates for reports."""

    model: Model
    seed: int
    engine: str
    samples: list[SampleResult]

    @property
    def accuracy(self) -> float | None:
        """Fraction of labelled samples decided correctly (``None`` if none is labelled)."""
        labelled = [r for r in self.samples if r.label >= 0]
        if not labelled:
            return None
        return sum(r.correct for r in labelled) / len(labelled)

    def means(self) -> dict[str, Any]:
        """Per-sample means of every metric (semantics section 8)."""
        if not self.samples:
            return {}

        def mean(get) -> Any:
            values = np.array([get(r) for r in self.samples], dtype=np.float64)
            m = values.mean(axis=0)
            return m.tolist() if m.ndim else float(m)

        return {
            "input_events": mean(lambda r: r.input_events),
            "spikes": mean(lambda r: r.spikes),
            "spikes_total": mean(lambda r: r.spikes.sum()),
            "synops": mean(lambda r: r.synops),
            "groups": mean(lambda r: r.groups),
            "dropped": mean(lambda r: r.dropped),
            "steps": mean(lambda r: r.steps),
            "spikes_to_decision": mean(lambda r: r.spikes_to_decision),
            "synops_to_decision": mean(lambda r: r.synops_to_decision),
            "groups_to_decision": mean(lambda r: r.groups_to_decision),
            "decided": mean(lambda r: r.decision >= 0),
        }

    def report(self, include_traces: bool = True) -> dict[str, Any]:
        """The JSON report: settings, aggregates, and each sample's metrics and trace."""
        per_sample = []
        for r in self.samples:
            entry = r.summary()
            if include_traces:
                entry["trace"] = r.trace.tolist()
            per_sample.append(entry)
        s = self.model.scheduler
        return {
            "network": {"n_inputs": self.model.n_inputs, "layers": list(self.model.sizes)},
            "scheduler": s.name,
            "group_size": s.group_size,
            "prioritized_input": s.prioritized_input,
            "decision_rule": self.model.decision,
            "seed": self.seed,
            "engine": self.engine,
            "samples": len(self.samples),
            "accuracy": self.accuracy,
            "mean": self.means(),
            "per_sample": per_sample,
        }

    def write_report(self, path: str | os.PathLike, include_traces: bool = True) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.report(include_traces), indent=1) + "\n")
        return path


def simulate(
    model: Model,
    events: EventSamples,
    *,
    seed: int | None = None,
    engine: str = "compiled",
    record_membranes: bool = False,
    progress: Iterable | None = None,
) -> SimulationResult:
    """Run ``model`` on every sample of ``events`` and return their results.

    Parameters
    ----------
    seed
        Seed of the ``random`` scheduler; default the artifact's. Each sample starts from
        ``sample_seed(seed, sample_id)`` (semantics 6.3).
    engine
        ``"compiled"`` (fast, the default) or ``"readable"`` (the contract as plain Python).
    record_membranes
        Also return the membranes at the end of every step.
    progress
        Optional wrapper of the sample loop (for example ``tqdm``).
    """
    if engine not in ENGINES:
        raise UnlayeredError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    seed = model.scheduler.seed if seed is None else int(seed)
    if not 0 <= seed < 1 << 32:
        raise UnlayeredError(f"seed {seed} is out of range [0, 2^32)")
    events.check_channels(model.n_inputs)
    if engine == "compiled":
        from .kernel import CompiledEngine  # imports numba, only when asked for

        compiled = CompiledEngine(model)
    indices = range(len(events))
    results = []
    for s in progress(indices) if progress else indices:
        state = sample_seed(seed, int(events.sample_ids[s]))
        if engine == "compiled":
            result = compiled.run(events, s, state=state, record_membranes=record_membranes)
        else:
            result = run_sample(
                model,
                events.sample_steps(s),
                state=state,
                sample_id=int(events.sample_ids[s]),
                label=int(events.labels[s]),
                record_membranes=record_membranes,
            )
        results.append(result)
    return SimulationResult(model=model, seed=seed, engine=engine, samples=results)
