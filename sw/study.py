"""The study: does training with the asynchronous execution in the loop pay off when the model
is deployed asynchronously? (``unlayered study``)

Trains one layer-synchronous model (``sync``, F = 0: the conventional time-stepped SNN) and one
asynchronously trained model per scheduler (``fifo``, ``random``, ``momentum``) and group size,
all with the same data, network, seed and epochs; exports each to the integer artifact; and
evaluates every artifact under every execution scheduler in the reference simulator (``sync``
with F = 0, the others with ``eval_group_size``). The output directory holds:

==================== ================================================================
``config.json``      the study's configuration
``models/NAME/``     each training run (config, checkpoints, history) and ``model.npz``
``study.json``       one row per (trained model, execution scheduler): accuracy, spikes,
                     synaptic operations, groups, decision latency in every unit
``study.txt``        the same as a table
``accuracy.png``     accuracy, grouped by execution scheduler
``spikes.png``       spikes per sample
``latency.png``      synaptic operations and time steps to the decision
==================== ================================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["StudyConfig", "StudyResult", "run_study"]

EXEC_SCHEDULERS = ("sync", "fifo", "random", "momentum")


@dataclass(frozen=True)
class StudyConfig:
    dataset: str = "digits"
    out: str = "out/study"
    hidden: tuple[int, ...] = (64,)
    epochs: int = 20
    group_sizes: tuple[int, ...] = (8,)  # F of the async-trained models
    eval_group_size: int = 8  # F of the async execution schedulers
    train_schedulers: tuple[str, ...] = ("fifo", "random", "momentum")
    seed: int = 0
    max_train_samples: int | None = None
    max_test_samples: int | None = None
    qat: bool = True
    lr: float = 5e-3
    batch_size: int = 64


@dataclass
class StudyResult:
    out_dir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    table: str = ""


def _train_runs(config: StudyConfig) -> list[tuple[str, str, int]]:
    runs = [("sync", "sync", 0)]
    for f in config.group_sizes:
        for s in config.train_schedulers:
            runs.append((f"{s}_F{f}", s, f))
    return runs


def run_study(config: StudyConfig, *, log: Callable[[str], None] | None = None) -> StudyResult:
    """Run the study (see the module docstring) and write its outputs into ``config.out``."""
    from .config import TrainConfig
    from .demo import _num, _pct, format_table, latency_to_decision
    from .evaluate import evaluate, float_accuracy, write_report
    from .export import export
    from .train import load_dataset, train

    say = log or (lambda _m: None)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=1) + "\n")
    base = TrainConfig(
        dataset=config.dataset,
        hidden=tuple(config.hidden),
        epochs=config.epochs,
        seed=config.seed,
        max_train_samples=config.max_train_samples,
        max_test_samples=config.max_test_samples,
        qat=config.qat,
        lr=config.lr,
        batch_size=config.batch_size,
    )
    dataset = load_dataset(base)
    test = dataset.test
    if config.max_test_samples is not None:
        test = test.select(list(range(min(config.max_test_samples, len(test)))))
    result = StudyResult(out_dir=out)
    from dataclasses import replace

    for name, scheduler, f in _train_runs(config):
        run_dir = out / "models" / name
        say(f"[train {name}]")
        cfg = replace(base, scheduler=scheduler, group_size=f, out=str(run_dir))
        trained = train(cfg, dataset=dataset, log=lambda m: say("  " + m), progress=False)
        exported = export(trained.checkpoint, run_dir / "model.npz", dataset=dataset)
        for exec_name in EXEC_SCHEDULERS:
            exec_f = 0 if exec_name == "sync" else config.eval_group_size
            report = evaluate(
                exported.model,
                _Subset(dataset, test),
                scheduler=exec_name,
                group_size=exec_f,
            )
            fa = float_accuracy(trained.checkpoint, test, scheduler=exec_name, group_size=exec_f)
            write_report(report, run_dir / f"evaluate_{exec_name}_F{exec_f}.json")
            mean, d = report["mean"], latency_to_decision(report)
            row = {
                "trained": name,
                "train_scheduler": scheduler,
                "train_group_size": f,
                "executed": exec_name,
                "exec_group_size": exec_f,
                "accuracy": report["accuracy"],
                "float_accuracy": fa,
                "spikes": mean["spikes_total"],
                "spikes_per_layer": mean["spikes"],
                "synops": mean["synops"],
                "groups": mean["groups"],
                "decided": d["decided"],
                "steps_to_decision": d["steps"],
                "groups_to_decision": d["groups"],
                "spikes_to_decision": d["spikes"],
                "synops_to_decision": d["synops"],
            }
            result.rows.append(row)
            say(
                f"  executed {exec_name} F={exec_f}: {_pct(row['accuracy'])} "
                f"(float {_pct(fa)}), {_num(row['spikes'])} spikes"
            )
    headers = ["trained", "executed", "accuracy", "float", "spikes", "synops", "dec.steps",
               "dec.synops"]  # fmt: skip
    body = [
        [
            r["trained"], f"{r['executed']} F={r['exec_group_size'] or 'all'}",
            _pct(r["accuracy"]), _pct(r["float_accuracy"]), _num(r["spikes"]),
            _num(r["synops"], 0), _num(r["steps_to_decision"], 2),
            _num(r["synops_to_decision"], 0),
        ]
        for r in result.rows
    ]  # fmt: skip
    result.table = format_table(headers, body)
    (out / "study.json").write_text(json.dumps({"config": asdict(config), "rows": result.rows},
                                               indent=1) + "\n")  # fmt: skip
    (out / "study.txt").write_text(result.table + "\n")
    _plots(result.rows, out)
    return result


class _Subset:
    """A dataset whose test split is a subset (what :func:`evaluate` reads)."""

    def __init__(self, dataset, test):
        self.name, self.train, self.test = dataset.name, dataset.train, test
        self.n_inputs = dataset.n_inputs


def _plots(rows: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    trained = list(dict.fromkeys(r["trained"] for r in rows))
    executed = list(dict.fromkeys(r["executed"] for r in rows))
    width = 0.8 / len(trained)

    def legend(ax) -> None:
        # Above the axes, not inside them: inside, the legend hid the tallest bars.
        ax.legend(fontsize="small", ncol=min(4, len(trained)), loc="lower left",
                  bbox_to_anchor=(0.0, 1.01), frameon=False)  # fmt: skip

    def bars(key: str, ylabel: str, path: str, scale: float = 1.0) -> None:
        fig, ax = plt.subplots(figsize=(7, 4))
        x = np.arange(len(executed))
        for i, t in enumerate(trained):
            values = []
            for e in executed:
                r = next(r for r in rows if r["trained"] == t and r["executed"] == e)
                values.append(np.nan if r[key] is None else r[key] * scale)
            ax.bar(x + i * width, values, width, label=f"trained {t}")
        ax.set_xticks(x + width * (len(trained) - 1) / 2, [f"run {e}" for e in executed])
        ax.set_ylabel(ylabel)
        legend(ax)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / path, dpi=120, bbox_inches="tight")
        plt.close(fig)

    bars("accuracy", "test accuracy (%), deployed integer model", "accuracy.png", 100)
    bars("spikes", "spikes per sample", "spikes.png")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(executed))
    for ax, key, label in (
        (axes[0], "synops_to_decision", "synaptic operations to decision"),
        (axes[1], "steps_to_decision", "time steps to decision"),
    ):
        for i, t in enumerate(trained):
            values = [
                next(r for r in rows if r["trained"] == t and r["executed"] == e)[key] or np.nan
                for e in executed
            ]
            ax.bar(x + i * width, values, width, label=f"trained {t}")
        ax.set_xticks(x + width * (len(trained) - 1) / 2, [f"run {e}" for e in executed])
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize="small", ncol=min(4, len(trained)), loc="lower center",
               bbox_to_anchor=(0.5, 1.0), frameon=False)  # fmt: skip
    fig.savefig(out / "latency.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
