"""The demo: the project's pipeline, end to end, as a sequence of named stages.

By default the demo trains a small digits model with the asynchronous execution in the loop
(momentum scheduler, F = 8, quantization-aware), exports it to the integer artifact, evaluates
the artifact on the test split in the reference simulator (next to the float model under the
same scheduler), and runs a few test samples under each of the four schedulers (same weights)
to compare them. ``quick`` makes every stage tiny (tests run the demo in seconds). With
``model_path`` (``--model``) or ``events_path`` (``--events``) it skips training and runs the
given artifact and events (default: the repository's examples) under the four schedulers.
Then it generates the neuron core's Verilog for the model (``hardware/``) and runs the first
samples on it under cocotb (Icarus), comparing every event with the reference simulator; builds
the iCEBreaker bitstream of the board top (UART, link engine, core) with the open toolchain
(``bitstream/``; ``bitstream=False`` skips it, ``quick`` too); and runs the first samples on
the board top in the Amaranth simulator over the host link (the simulated board), comparing
every result with the reference simulator (``board_samples=0`` skips it). ``hardware=False``
skips these four stages. Every run writes into its output directory:

================== ==================================================================
``config.json``    the resolved configuration (inputs, engine, seed, every run's scheduler,
                   the training configuration)
``timings.json``   one record per stage: name, seconds, status (written after each stage,
                   so a failed run still shows how far it got)
``train/``         the training run (config, checkpoints, history, log), when training
``model.npz``      the exported artifact; ``events.npz`` the test samples simulated
``reports/``       ``evaluate.json`` (the test split), ``simulate_<scheduler>.json``: the
                   simulator's full report of each run; ``board.json``: the simulated
                   board's run (agreement, link statistics, cycles)
``hardware/``      the generated Verilog, port description, layout, fit estimate; ``verify/``
                   the cocotb build, logs and ``report.json``
``bitstream/``     the iCEBreaker build: ``top.bin``, ``report.json`` (Fmax, resources,
                   seconds per stage), ``fit.json`` and the tools' plan and logs (``build/``)
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
    "DEMO_BOARD",
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
    bitstream: dict[str, Any] | None = None  # the board build (clock, Fmax, resources)
    board: dict[str, Any] | None = None  # the run on the simulated board top


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
# The board the demo builds a bitstream for, and whose board top it runs in simulation; when
# the model does not fit it (the UP5K is small: the demo's momentum network at one lane uses
# about 5,230 of its 5,280 logic cells, so a larger network does not fit), the next board is
# built instead and the refusal is reported.
DEMO_BOARD = "icebreaker"
FALLBACK_BOARDS = ("ulx3s",)
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
    bitstream: bool | None = None,
    board_samples: int = 2,
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
    bitstream
        Build the iCEBreaker bitstream of the board top (:data:`DEMO_BOARD`; the board's
        defaults: clock, lanes, weights in SPRAM, link buffers); default: unless ``quick``.
        Minutes. When the design does not fit or misses the clock there, the refusal is
        reported and the next of :data:`FALLBACK_BOARDS` is built; if none can be, the demo
        fails.
    board_samples
        Samples run on the simulated board top (the board's lanes and link buffers, weights in
        block RAM); 0 skips the stage. A difference from the reference simulator fails the demo.

    Raises
    ------
    UnlayeredError
        With a message naming the file, field or value at fault.
    """
    from unlayered.sim import UnlayeredError, load_events, load_model, simulate

    out_dir = Path(out_dir)
    if bitstream is None:
        bitstream = not quick
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
            if bitstream:
                with stages.stage("bitstream"):
                    result.bitstream = _build_first_fitting(model, out_dir / "bitstream", say)
                    result.table += "\n\n" + _bitstream_line(result.bitstream)
            if board_samples > 0:
                with stages.stage("board"):
                    board_model = model if seed is None else model.with_scheduler(seed=seed)
                    picked = events.select(list(range(min(board_samples, len(events)))))
                    board = result.bitstream["board"] if result.bitstream else DEMO_BOARD
                    result.board = _run_on_simulated_board(board_model, picked, out_dir, board)
                    result.table += "\n\n" + _board_line(result.board)

        with stages.stage("summary"):
            _write_json(
                out_dir / "summary.json",
                {
                    "runs": result.rows,
                    "evaluation": result.evaluation,
                    "verification": result.verification,
                    "bitstream": result.bitstream,
                    "board": result.board,
                },
            )
            _write_text(out_dir / "summary.txt", result.table + "\n")
    except BaseException:
        with suppress(UnlayeredError):  # best effort: the error in flight is the one to report
            _write_log(out_dir, lines, result.table)
        raise
    _write_log(out_dir, lines, result.table)
    return result


def _build_first_fitting(model, out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Build for :data:`DEMO_BOARD`, else the first of :data:`FALLBACK_BOARDS` that succeeds;
    the summary of the build, with ``refused``: the boards that failed and why."""
    from unlayered.boards.build import BuildError

    refused = []
    for board in (DEMO_BOARD, *FALLBACK_BOARDS):
        try:
            summary = _build_board(model, board, out / board, say)
        except BuildError as exc:
            reason = str(exc).split("; log ")[0]
            say(f"  {board}: {reason}")
            refused.append({"board": board, "stage": exc.stage, "reason": reason})
            continue
        return {**summary, "refused": refused}
    raise BuildError(f"no board fits this model: {refused}", stage="fit")


def _build_board(model, board: str, out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Build the bitstream of ``model``'s board top for ``board``; its summary."""
    from unlayered.boards.build import build_bitstream
    from unlayered.boards.top import LinkTop

    def top(cfg):
        say(
            f"  LinkTop for {cfg.target.name} at {cfg.clock_hz / 1e6:g} MHz, {cfg.lanes} lane(s), "
            f"weights in {cfg.weight_ram.upper()} (synthesis, place and route: minutes)"
        )
        return LinkTop.for_board(model, cfg)

    report = build_bitstream(top, board, out, model=model)
    summary = {
        "board": report["board"],
        "device": report["device"],
        "bitstream": str(out / report["bitstream"]["path"]),
        "bytes": report["bitstream"]["bytes"],
        "lanes": report["config"]["lanes"],
        "weight_ram": report["config"]["weight_ram"],
        "clock_mhz": report["clock"]["pll_hz"] / 1e6,
        "fmax_mhz": report["fmax_min_mhz"],
        "resources": report["resources"],
        "seconds": report["seconds"]["total"],
        "report": str(out / "report.json"),
    }
    say(
        f"  {summary['bitstream']}: Fmax {summary['fmax_mhz']:.1f} MHz at "
        f"{summary['clock_mhz']:g} MHz, {_resources(summary['resources'])}"
    )
    return summary


def _resources(res: dict[str, dict[str, int]]) -> str:
    names = {"logic": "LC", "ff": "FF", "bram": "BRAM", "spram": "SPRAM", "dsp": "DSP"}
    return ", ".join(
        f"{res[k]['used']}/{res[k]['available']} {name}" for k, name in names.items() if k in res
    )


def _bitstream_line(b: dict[str, Any]) -> str:
    refused = "".join(f"{r['board']}: {r['reason']}\n" for r in b.get("refused", ()))
    return refused + (
        f"{b['board']} bitstream (board top: UART, link engine, core; {b['lanes']} lane(s), "
        f"weights in {b['weight_ram'].upper()}): {b['clock_mhz']:g} MHz clock, Fmax "
        f"{b['fmax_mhz']:.1f} MHz; {_resources(b['resources'])}; {b['bitstream']} (built in "
        f"{b['seconds']:.0f} s)"
    )


def _run_on_simulated_board(model, events, out_dir: Path, board: str) -> dict[str, Any]:
    """Run ``events`` on the board top of ``board`` in the Amaranth simulator over the host
    link and compare every result (decision, counts, counters, trace) with ``simulate``."""
    from unlayered.boards.run import run_samples_on_board, simulated_link
    from unlayered.boards.targets import get_target
    from unlayered.sim import UnlayeredError

    target = get_target(board)
    # Weights in block RAM, initialized from the model, and no LOAD_WEIGHTS: the board's SPRAM
    # would start empty and loading its ~4,700 weights over the simulated UART takes about 50 s
    # of simulation. The logic behind the weight memory is the same.
    link, board = simulated_link(
        model,
        lanes=target.lanes,
        max_payload=target.max_payload,
        trace_depth=target.trace_depth,
        weight_ram="bram",
    )
    report = run_samples_on_board(model, events, link, clock=board.clock, load=False, trace=True)
    report["board"] = f"simulated {target.name} top (Amaranth simulator)"
    path = out_dir / "reports" / "board.json"
    _write_json(path, report)
    if report["mismatches"]:
        first = report["mismatches"][0]
        raise UnlayeredError(
            f"the simulated board differs from the reference simulator in "
            f"{len(report['mismatches'])} place(s); first: sample {first['sample']}: "
            f"{first['difference']} (see {path})"
        )
    return {
        "board": target.name,
        "lanes": target.lanes,
        "weight_ram": "bram",
        "samples": report["samples"],
        "mismatches": len(report["mismatches"]),
        "traces_cut": report["traces_cut"],
        "cycles_per_sample": report["cycles_per_sample"],
        "commands": report["link"]["commands"],
        "retransmissions": report["link"]["retransmissions"],
        "report": str(path),
    }


def _board_line(b: dict[str, Any]) -> str:
    cut = (
        f" ({b['traces_cut']} trace(s) longer than the board's buffer: prefix compared)"
        if b["traces_cut"]
        else ""
    )
    return (
        f"simulated {b['board']} board top ({b['lanes']} lane(s), weights in BRAM, over the "
        f"host link): {b['samples']} samples equal the reference simulator (decision, counts, "
        f"counters, trace){cut}; the core busy {b['cycles_per_sample']:.0f} cycles per sample "
        "(waits for input over the slow simulated UART included), "
        f"{b['commands']} link commands, {b['retransmissions']} retransmissions"
    )


def _write_log(out_dir: Path, lines: list[str], table: str) -> None:
    _write_text(out_dir / "demo.log", "\n".join([*lines, "", table]).rstrip() + "\n")
