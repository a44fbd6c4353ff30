"""The demo: the project's pipeline, end to end, as a sequence of named stages.

By default the demo trains a small digits model with the asynchronous execution in the loop
(momentum scheduler, F = 8, quantization-aware), exports it to the integer artifact, evaluates
the artifact on the test split in the reference simulator (next to the float model under the
same scheduler), and runs a few test samples under each of the four schedulers (same weights)
to compare them. ``quick`` makes every stage tiny (tests run the demo in seconds). With
``model_path`` (``--model``) or ``events_path`` (``--events``) it skips training and runs the
given artifact and events (default: the repository's examples) under the four schedulers.
Then it generates the neuron core's Verilog for the model (``hardware/``) and runs the first
samples on it under cocotb (Icarus), comparing every event with the reference simulator
(``hardware=False`` skips these two stages). Later stages (bitstream, board) are added to the
same sequence. Every run writes into its output directory:

================== ==================================================================
``config.json``    the resolved configuration (inputs, engine, seed, every run's scheduler,
                   the training configuration)
``timings.json``   one record per stage: name, seconds, status (written after each stage,
                   so a failed run still shows how far it got)
``train/``         the training run (config, checkpoints, history, log), when training
``model.npz``      the exported artifact; ``events.npz`` the test samples simulated
``reports/``       ``evaluate.json`` (the test split), ``simulate_<scheduler>.json``: the
                   simulator's full report of each run
``hardware/``      the generated Verilog, port description, layout, fit estimate; ``verify/``
                   the cocotb build, logs and ``report.json``
``summary.json``   the comparison, one row per scheduler
``summary.txt``    the same as a table (what ``unlayered demo`` prints)
``demo.log``       the progress lines and the table
================== ==================================================================

Everything but ``timings.json`` (and the seconds in the training history) is deterministic for
the same inputs and versions.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_OUT",
    "DEMO_RUNS",
    "EXAMPLES_DIR",
    "DemoResult",
    "StageRecord",
    "comparison_row",
    "format_comparison",
    "latency_to_decision",
    "run_demo",
]

DEFAULT_OUT = Path("out/demo")
# The example files live in the repository, next to the package folders (editable install).
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
# The runs the demo compares: scheduler name and the scheduler fields it changes. `sync` runs
# layer by layer (F = 0: each group is a whole layer), the conventional time-stepped SNN; the
# others keep the artifact's group size.
DEMO_RUNS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("sync", {"group_size": 0}),
    ("fifo", {}),
    ("random", {}),
    ("momentum", {}),
)


@dataclass
class StageRecord:
    """How one stage of the demo went."""

    name: str
    seconds: float
    status: str  # "ok" or "failed"
    error: str | None = None


@dataclass
class DemoResult:
    """What :func:`run_demo` produced (all of it is also in ``out_dir``)."""

    out_dir: Path
    config: dict[str, Any]
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    table: str = ""
    stages: list[StageRecord] = field(default_factory=list)
    evaluation: dict[str, Any] | None = None  # the test-split report of the trained model
    verification: dict[str, Any] | None = None  # the cocotb run of the generated Verilog


class _Stages:
    """Runs named stages, times them and writes ``timings.json`` after each one."""

    def __init__(self, out_dir: Path, log: Callable[[str], None]):
        self.out_dir = out_dir
        self.log = log
        self.records: list[StageRecord] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.log(f"[{name}]")
        start = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self._record(StageRecord(name, time.perf_counter() - start, "failed", str(exc)))
            raise
        seconds = time.perf_counter() - start
        self._record(StageRecord(name, seconds, "ok"))
        self.log(f"[{name}] done in {seconds:.2f} s")

    def _record(self, record: StageRecord) -> None:
        self.records.append(record)
        timings = {
            "stages": [asdict(r) for r in self.records],
            "total_seconds": sum(r.seconds for r in self.records),
        }
        _write_json(self.out_dir / "timings.json", timings)


def _write_json(path: Path, value: Any) -> None:
    from unlayered.sim import UnlayeredError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=1) + "\n")
    except OSError as exc:
        raise UnlayeredError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _write_text(path: Path, text: str) -> None:
    from unlayered.sim import UnlayeredError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise UnlayeredError(f"{path}: cannot write ({exc.strerror or exc})") from None


# ---------------------------------------------------------------------------------------------
# Summaries of simulation reports (used by the demo and by `unlayered simulate`)


def latency_to_decision(report: dict[str, Any]) -> dict[str, float | None]:
    """Mean decision latency of a report in every unit.

    ``steps`` is the mean number of time steps up to and including the decision point, over the
    samples that decided (``None`` if none did); ``groups``, ``spikes`` and ``synops`` are the
    simulator's means up to the decision point (an undecided sample counts in full).
    """
    decided = [s for s in report["per_sample"] if s["decision"] >= 0]
    mean = report["mean"]
    return {
        "steps": sum(s["decision_step"] + 1 for s in decided) / len(decided) if decided else None,
        "groups": mean.get("groups_to_decision"),
        "spikes": sum(mean["spikes_to_decision"]) if mean else None,
        "synops": mean.get("synops_to_decision"),
        "decided": mean.get("decided"),
    }


def comparison_row(name: str, report: dict[str, Any]) -> dict[str, Any]:
    """One row of the comparison: a run's settings and mean metrics per sample."""
    mean = report["mean"]
    return {
        "run": name,
        "scheduler": report["scheduler"],
        "group_size": report["group_size"],
        "accuracy": report["accuracy"],
        "spikes": mean.get("spikes_total"),
        "spikes_per_layer": mean.get("spikes"),
        "synops": mean.get("synops"),
        "groups": mean.get("groups"),
        "to_decision": latency_to_decision(report),
    }


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = (str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def format_comparison(rows: Sequence[dict[str, Any]]) -> str:
    """The demo's table: per sample means of each run, and its latency to the decision."""
    headers = [
        "scheduler", "F", "accuracy", "spikes", "per layer", "synops", "groups",
        "decided", "dec.steps", "dec.groups", "dec.spikes", "dec.synops",
    ]  # fmt: skip
    body = []
    for r in rows:
        d = r["to_decision"]
        per_layer = " + ".join(_num(x) for x in r["spikes_per_layer"] or [])
        body.append([
            r["run"], str(r["group_size"]) if r["group_size"] else "all", _pct(r["accuracy"]),
            _num(r["spikes"]), per_layer, _num(r["synops"], 0), _num(r["groups"]),
            _pct(d["decided"]), _num(d["steps"], 2), _num(d["groups"]), _num(d["spikes"]),
            _num(d["synops"], 0),
        ])  # fmt: skip
    notes = (
        "Means per sample. F: group size ('all': a whole layer per group). dec.*: decision\n"
        "latency, counted up to and including the group that fixed the decision (dec.steps:\n"
        "over the samples that decided; the others count in full)."
    )
    return format_table(headers, body) + "\n\n" + notes


# ---------------------------------------------------------------------------------------------
# The demo


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in ("unlayered", "numpy", "numba"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


# The demo's training: well under a couple of minutes on a 2-core CPU (about 10 s here).
DEMO_TRAIN: dict[str, Any] = {
    "dataset": "digits",
    "hidden": (64,),
    "scheduler": "momentum",
    "group_size": 8,
    "epochs": 20,
    "batch_size": 64,
    "lr": 5e-3,
    "qat": True,
    "seed": 0,
}
# --quick: seconds, for tests (the accuracy is low)
QUICK_TRAIN: dict[str, Any] = {
    **DEMO_TRAIN,
    "hidden": (16,),
    "epochs": 1,
    "max_train_samples": 200,
    "max_test_samples": 40,
}


def run_demo(
    out_dir: str | Path = DEFAULT_OUT,
    *,
    model_path: str | Path | None = None,
    events_path: str | Path | None = None,
    engine: str = "compiled",
    seed: int | None = None,
    log: Callable[[str], None] | None = None,
    quick: bool = False,
    train: bool | None = None,
    samples: int = 20,
    hardware: bool = True,
    lanes: int = 4,
    verify_samples: int = 3,
) -> DemoResult:
    """Run the demo pipeline and write its outputs into ``out_dir`` (see the module docstring).

    Parameters
    ----------
    out_dir
        Output directory (created if needed; files of an earlier run are overwritten).
    model_path, events_path
        An artifact and events file to compare the schedulers on instead of training (default:
        the repository's ``examples/``, when one of them is given or ``train`` is false).
    engine
        Engine of the reference simulator: ``"compiled"`` or ``"readable"``.
    seed
        Seed of the ``random`` scheduler; default the artifact's.
    log
        Called with each progress line (default: nothing is printed).
    quick
        Train a tiny model on a few samples (seconds; for tests).
    train
        Train, export and evaluate a digits model first (default: when no ``model_path`` or
        ``events_path`` is given).
    samples
        Test samples simulated under each scheduler (trained model).
    hardware
        Generate the core's Verilog and verify it under cocotb (Icarus).
    lanes
        Lanes of the generated core.
    verify_samples
        Samples run on the generated Verilog.

    Raises
    ------
    UnlayeredError
        With a message naming the file, field or value at fault.
    """
    from unlayered.sim import UnlayeredError, load_events, load_model, simulate

    out_dir = Path(out_dir)
    if train is None:
        train = model_path is None and events_path is None
    lines: list[str] = []

    def say(message: str) -> None:
        lines.append(message)
        if log is not None:
            log(message)

    stages = _Stages(out_dir, say)
    result = DemoResult(out_dir=out_dir, config={}, stages=stages.records)
    try:
        with stages.stage("config"):
            if engine not in ("compiled", "readable"):
                raise UnlayeredError(f"unknown engine {engine!r}; expected compiled, readable")
            result.config = {
                "demo": {"out_dir": str(out_dir), "engine": engine, "seed": seed, "quick": quick},
                "runs": [],
                "versions": _versions(),
            }
            if train:
                from unlayered.sw.config import TrainConfig

                fields = dict(QUICK_TRAIN if quick else DEMO_TRAIN, out=str(out_dir / "train"))
                train_config = TrainConfig(**fields)
                result.config["train"] = train_config.to_dict()
                result.config["inputs"] = {"dataset": train_config.dataset, "samples": samples}
            else:
                model_path = Path(model_path) if model_path else EXAMPLES_DIR / "model.npz"
                events_path = Path(events_path) if events_path else EXAMPLES_DIR / "events.npz"
                for what, path in (("model artifact", model_path), ("events file", events_path)):
                    if not path.is_file():
                        raise UnlayeredError(
                            f"{path}: {what} not found (the demo's default inputs are in the "
                            "repository's examples/ folder; pass --model and --events otherwise)"
                        )
                result.config["inputs"] = {"model": str(model_path), "events": str(events_path)}

        if train:
            from unlayered.sim import save_events
            from unlayered.sw.evaluate import evaluate, format_report, write_report
            from unlayered.sw.export import export
            from unlayered.sw.train import load_dataset
            from unlayered.sw.train import train as train_model

            with stages.stage("data"):
                dataset = load_dataset(train_config)
                say(
                    f"  {dataset.name}: {len(dataset.train)} training and {len(dataset.test)} "
                    f"test samples, {dataset.n_inputs} inputs, {dataset.num_steps} steps"
                )
            with stages.stage("train"):
                trained = train_model(
                    train_config, dataset=dataset, log=lambda m: say("  " + m), progress=False
                )
                result.config["train"] = trained.config.to_dict()
            with stages.stage("export"):
                model_path = out_dir / "model.npz"
                exported = export(trained.checkpoint, model_path, dataset=dataset)
                say(
                    f"  {model_path}: thresholds {[x.threshold for x in exported.model.layers]}"
                    f", leaks {[x.leak for x in exported.model.layers]}"
                )
            with stages.stage("evaluate"):
                n_test = train_config.max_test_samples
                report = evaluate(
                    model_path, dataset, max_samples=n_test, checkpoint=trained.checkpoint
                )
                write_report(report, out_dir / "reports" / "evaluate.json")
                result.evaluation = {k: v for k, v in report.items() if k != "per_sample"}
                for line in format_report(report).splitlines():
                    say("  " + line)
                events_path = save_events(
                    dataset.test.select(list(range(min(samples, len(dataset.test))))),
                    out_dir / "events.npz",
                )

        with stages.stage("load"):
            model = load_model(model_path)
            events = load_events(events_path)
            events.check_channels(model.n_inputs, where=str(events_path))
            result.config["model"] = {
                key: value
                for key, value in model.manifest().items()
                if key not in ("format", "version")
            }
            result.config["demo"]["seed"] = model.scheduler.seed if seed is None else seed
            result.config["events"] = {
                "samples": len(events),
                "events": len(events.channel),
                "labelled": int((events.labels >= 0).sum()),
            }
            runs = []
            for name, changes in DEMO_RUNS:
                run_model = model.with_scheduler(name=name, **changes)
                runs.append((name, run_model))
                result.config["runs"].append(
                    {"name": name, "scheduler": run_model.manifest()["scheduler"]}
                )
            _write_json(out_dir / "config.json", result.config)

        for name, run_model in runs:
            with stages.stage(f"simulate:{name}"):
                sim = simulate(run_model, events, seed=seed, engine=engine)
                report = sim.report()
                _write_json(out_dir / "reports" / f"simulate_{name}.json", report)
                result.reports[name] = report

        with stages.stage("compare"):
            result.rows = [comparison_row(name, r) for name, r in result.reports.items()]
            result.table = format_comparison(result.rows)
            if result.evaluation is not None:
                ev = result.evaluation
                result.table = (
                    f"trained model, test split ({ev['samples']} samples): deployed integer "
                    f"{_pct(ev['accuracy'])}, float {_pct(ev.get('float_accuracy'))} "
                    f"({ev['scheduler']}, F = {ev['group_size']})\n"
                    f"scheduler comparison on the first {len(events)} test samples:\n\n"
                    + result.table
                )

        if hardware:
            from unlayered.gateware.verify import generate, simulator_available, verify

            with stages.stage("generate"):
                paths = generate(model, out_dir / "hardware", lanes=lanes)
                fit = json.loads(paths["fit"].read_text())
                say(f"  {paths['verilog']} ({lanes} lanes); fits {', '.join(fit['fits'])}")
            with stages.stage("verify"):
                if not simulator_available("icarus"):
                    raise UnlayeredError(
                        "Icarus Verilog is not installed (scripts/setup.sh installs it)"
                    )
                report = verify(
                    model,
                    events.select(list(range(min(verify_samples, len(events))))),
                    out_dir=out_dir / "verify",
                    simulator="icarus",
                    lanes=lanes,
                    seed=seed,
                    tb_seed=0,
                )
                if not report["passed"]:
                    raise UnlayeredError(
                        f"the generated Verilog differs from the reference simulator: "
                        f"{report['mismatches'][:1] or report['error']} "
                        f"(see {out_dir / 'verify' / 'report.json'})"
                    )
                cycles = sum(report["cycles"]) / report["samples"]
                result.verification = {
                    "simulator": "icarus",
                    "lanes": lanes,
                    "samples": report["samples"],
                    "mismatches": len(report["mismatches"]),
                    "cycles_per_sample": cycles,
                    "synops_per_cycle": 1 / report["cycles_per_synop"],
                }
                result.table += (
                    f"\n\ngenerated Verilog ({lanes} lanes, Icarus, random stalls and "
                    f"backpressure): {report['samples']} samples equal the reference simulator "
                    f"event for event; {cycles:.0f} cycles per sample, "
                    f"{result.verification['synops_per_cycle']:.2f} synaptic operations per cycle"
                )

        with stages.stage("summary"):
            _write_json(
                out_dir / "summary.json",
                {
                    "runs": result.rows,
                    "evaluation": result.evaluation,
                    "verification": result.verification,
                },
            )
            _write_text(out_dir / "summary.txt", result.table + "\n")
    except BaseException:
        with suppress(UnlayeredError):  # best effort: the error in flight is the one to report
            _write_log(out_dir, lines, result.table)
        raise
    _write_log(out_dir, lines, result.table)
    return result


def _write_log(out_dir: Path, lines: list[str], table: str) -> None:
    _write_text(out_dir / "demo.log", "\n".join([*lines, "", table]).rstrip() + "\n")
