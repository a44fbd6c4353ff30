"""The command-line interface: ``unlayered VERB ...``.

Each verb parses its arguments, calls importable functions (the Python API) and prints; it does
no work of its own. Every :class:`~unlayered.sim.UnlayeredError` is printed as
``error: <message>`` on stderr, without a traceback, with exit status 1; usage errors (unknown
verb, option or value) exit with status 2, as argparse does.

This module imports only the standard library at start-up: each verb imports what it needs when
it runs, so ``unlayered simulate`` never loads torch and ``unlayered --help`` is instant.

Verbs
-----
``simulate``
    Run an artifact on an events file in the reference simulator; print a summary, optionally
    write the full JSON report.
``demo``
    Train, export and evaluate a small digits model, then compare the schedulers in the
    reference simulator (:func:`unlayered.sw.demo.run_demo`).
``train``
    Train a network with the scheduled execution in the loop (:func:`unlayered.sw.train.train`).
``export``
    Quantize a checkpoint into a model artifact (:func:`unlayered.sw.export.export`).
``evaluate``
    Run an artifact on a dataset split in the reference simulator
    (:func:`unlayered.sw.evaluate.evaluate`).
``study``
    Train sync and async models, evaluate each under every scheduler, write a table and plots
    (:func:`unlayered.sw.study.run_study`).
``generate``
    Write the neuron core's Verilog, port description, configuration and fit estimate
    (:func:`unlayered.gateware.verify.generate`).
``verify``
    Run the generated Verilog under cocotb on samples and compare every event with the
    reference simulator (:func:`unlayered.gateware.verify.verify`).
``build``
    Build the board top (UART, link engine, neuron core) of an artifact into a bitstream for a
    board, with the open toolchain (:func:`unlayered.boards.build.build_bitstream`).
``program``
    Program a board with a build's bitstream (:func:`unlayered.boards.program.program`).
``run``
    Run samples on a board, or on the simulated board top, and compare every result with the
    reference simulator (:func:`unlayered.boards.run.run_samples_on_board`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["ENGINES", "build_parser", "format_summary", "main"]

# The reference simulator's engines (``unlayered.sim.simulate.ENGINES``), repeated here so that
# parsing needs no import of numpy; a test keeps the two equal.
ENGINES = ("compiled", "readable")


def _seed(text: str) -> int:
    """argparse type of ``--seed``: an integer in [0, 2^32)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 1 << 32:
        raise argparse.ArgumentTypeError(f"{value} is out of range [0, 2^32)")
    return value


# ---------------------------------------------------------------------------------------------
# simulate


def format_summary(report: dict[str, Any], report_path: Path | None = None) -> str:
    """A readable summary of a simulation report (:meth:`SimulationResult.report`)."""
    from unlayered.sw.demo import latency_to_decision

    net = report["network"]
    layers = net["layers"]
    mean = report["mean"]
    lines = [
        f"network     {net['n_inputs']} inputs -> {' -> '.join(map(str, layers))} "
        f"({len(layers)} layers, {sum(layers)} neurons)",
        f"scheduler   {report['scheduler']}, F = {report['group_size'] or 'unbounded'}, "
        f"{'prioritized' if report['prioritized_input'] else 'pending'} input, "
        f"seed {report['seed']}",
        f"decision    {report['decision_rule']}",
        f"engine      {report['engine']}",
    ]
    labelled = [s for s in report["per_sample"] if s["label"] >= 0]
    lines.append(f"samples     {report['samples']} ({len(labelled)} labelled)")
    if report["accuracy"] is None:
        lines.append("accuracy    - (no labels)")
    else:
        correct = sum(s["decision"] == s["label"] for s in labelled)
        lines.append(f"accuracy    {100 * report['accuracy']:.1f} % ({correct} of {len(labelled)})")
    if mean:
        per_layer = ", ".join(f"{x:.2f}" for x in mean["spikes"])
        d = latency_to_decision(report)
        steps = "-" if d["steps"] is None else f"{d['steps']:.2f}"
        lines += [
            "mean per sample",
            f"  input events       {mean['input_events']:.2f}",
            f"  spikes per layer   {per_layer} (total {mean['spikes_total']:.2f})",
            f"  synaptic ops       {mean['synops']:.1f}",
            f"  groups             {mean['groups']:.2f}",
            f"  time steps         {mean['steps']:.2f}",
        ]
        if mean["dropped"]:
            lines.append(f"  dropped            {mean['dropped']:.2f}")
        lines += [
            f"decision latency (mean per sample; {100 * d['decided']:.1f} % of samples decided)",
            f"  time steps         {steps} (samples that decided)",
            f"  groups             {d['groups']:.2f}",
            f"  spikes             {d['spikes']:.2f}",
            f"  synaptic ops       {d['synops']:.1f}",
        ]
    if report_path is not None:
        lines.append(f"report      {report_path}")
    return "\n".join(lines)


def _write_report(path: Path, report: dict[str, Any]) -> None:
    from unlayered.sim import UnlayeredError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1) + "\n")
    except OSError as exc:
        raise UnlayeredError(f"{path}: cannot write the report ({exc.strerror or exc})") from None


def cmd_simulate(args: argparse.Namespace) -> int:
    from unlayered.sim import load_events, load_model, simulate

    model = load_model(args.artifact)
    events = load_events(args.events)
    events.check_channels(model.n_inputs, where=str(args.events))
    result = simulate(
        model, events, seed=args.seed, engine=args.engine, record_membranes=args.membranes
    )
    report = result.report()
    if args.membranes:
        for entry, sample in zip(report["per_sample"], result.samples, strict=True):
            entry["membranes"] = sample.membranes.tolist()
    if args.report is not None:
        _write_report(args.report, report)
    print(format_summary(report, args.report))
    return 0


# ---------------------------------------------------------------------------------------------
# demo


def cmd_demo(args: argparse.Namespace) -> int:
    from unlayered.sw.demo import run_demo

    result = run_demo(
        args.out,
        model_path=args.model,
        events_path=args.events,
        engine=args.engine,
        seed=args.seed,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        quick=args.quick,
        train=False if args.no_train else None,
        hardware=not args.no_hardware,
        bitstream=False if args.no_bitstream else None,
        board_samples=args.board_samples,
    )
    print(result.table)
    trained = "train/, model.npz, events.npz, " if result.evaluation is not None else ""
    hardware = "hardware/, verify/, " if result.verification is not None else ""
    if result.bitstream is not None:
        hardware += "bitstream/, "
    print(
        f"\nwrote {result.out_dir}/ ({trained}{hardware}config.json, timings.json, reports/, "
        "summary.*)"
    )
    return 0


# ---------------------------------------------------------------------------------------------
# train, export, evaluate, study

# Options of `train` that map one to one onto TrainConfig fields (dest == field name).
TRAIN_FIELDS = (
    "dataset", "dataset_path", "num_steps", "max_train_samples", "max_test_samples",
    "val_fraction", "hidden", "threshold", "beta", "reset", "surrogate", "scheduler",
    "group_size", "scheduler_seed", "momentum_buckets", "momentum_shift", "max_groups_per_step",
    "decision", "epochs", "batch_size", "lr", "weight_decay", "loss", "refractory_dropout",
    "seed", "device", "threads", "qat", "weight_bits", "membrane_bits", "leak_shift",
    "threshold_int", "out",
)  # fmt: skip
SCHEDULER_NAMES = ("sync", "fifo", "random", "momentum")


def train_config(args: argparse.Namespace):
    """The :class:`~unlayered.sw.config.TrainConfig` of ``train``'s options (over ``--config``)."""
    from unlayered.sw.config import TrainConfig, load_config

    base = load_config(args.config).to_dict() if args.config else {}
    for name in TRAIN_FIELDS:
        value = getattr(args, name, None)
        if value is not None:
            base[name] = value
    if args.no_prioritized_input:
        base["prioritized_input"] = False
    if "out" not in base:
        cfg = TrainConfig.from_dict(base)
        base["out"] = f"out/train/{cfg.dataset}_{cfg.scheduler}_F{cfg.group_size}_s{cfg.seed}" + (
            "_qat" if cfg.qat else ""
        )
    return TrainConfig.from_dict(base)


def cmd_train(args: argparse.Namespace) -> int:
    from unlayered.sw.train import train

    config = train_config(args)
    result = train(
        config, log=lambda line: print(line, file=sys.stderr, flush=True), progress=not args.quiet
    )
    best = result.best_val_accuracy
    print(f"checkpoint  {result.checkpoint}")
    print(f"best val    {100 * best:.1f} %")
    if result.test_accuracy is not None:
        print(f"test        {100 * result.test_accuracy:.1f} % (float model)")
    print(f"wrote {result.out_dir}/ (config.json, checkpoint.pt, best.pt, history.json, train.log)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from unlayered.sw.export import export

    out = args.output or Path(args.checkpoint).with_name("model.npz")
    result = export(
        args.checkpoint,
        out,
        allow_silent=args.allow_silent,
        scheduler=args.scheduler,
        group_size=args.group_size,
        check_samples=args.check_samples,
    )
    m = result.model
    spikes = ", ".join(f"{x:.1f}" for x in result.spikes_per_layer)
    print(f"network     {m.n_inputs} inputs -> {' -> '.join(map(str, m.sizes))}")
    print(
        f"integers    {m.weight_bits}-bit weights, {m.membrane_bits}-bit membranes, thresholds "
        f"{[x.threshold for x in m.layers]}, leaks {[x.leak for x in m.layers]}"
    )
    print(f"scheduler   {m.scheduler.name}, F = {m.scheduler.group_size or 'unbounded'}")
    print(f"check       spikes per layer {spikes} (mean of {result.check_samples} samples)")
    print(f"wrote {result.path}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from unlayered.sw.evaluate import evaluate, format_report, write_report

    report = evaluate(
        args.artifact,
        args.dataset,
        split=args.split,
        scheduler=args.scheduler,
        group_size=args.group_size,
        seed=args.seed,
        max_samples=args.max_samples,
        engine=args.engine,
        checkpoint=args.checkpoint,
        progress=not args.quiet,
    )
    path = args.report
    if path is None:
        f = report["group_size"]
        path = Path(args.artifact).with_name(
            f"evaluate_{args.split}_{report['scheduler']}_F{f}.json"
        )
    write_report(report, path)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "per_sample"}, indent=1))
    else:
        print(format_report(report))
        print(f"report      {path}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from unlayered.sw.study import StudyConfig, run_study

    config = StudyConfig(
        dataset=args.dataset,
        out=str(args.out),
        hidden=tuple(args.hidden),
        epochs=args.epochs,
        group_sizes=tuple(args.group_sizes),
        eval_group_size=args.eval_group_size,
        seed=args.seed,
        max_train_samples=args.max_train_samples,
        max_test_samples=args.max_test_samples,
        qat=not args.no_qat,
    )
    result = run_study(config, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(result.table)
    print(f"\nwrote {result.out_dir}/ (study.json, study.txt, plots, models/)")
    return 0


# ---------------------------------------------------------------------------------------------
# generate, verify


def cmd_generate(args: argparse.Namespace) -> int:
    from unlayered.gateware.verify import generate
    from unlayered.sim import load_model

    paths = generate(load_model(args.artifact), args.out, lanes=args.lanes)
    fit = json.loads(paths["fit"].read_text())
    for key, path in paths.items():
        print(f"{key:<10}  {path}")
    print(f"fits        {', '.join(fit['fits']) or 'no target device'}")
    if fit.get("fits_with_spram"):
        print(f"with SPRAM  {', '.join(fit['fits_with_spram'])} (weights loaded by the host)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from unlayered.gateware.verify import simulator_available, verify
    from unlayered.sim import UnlayeredError, load_model

    if not simulator_available(args.simulator):
        raise UnlayeredError(f"simulator {args.simulator!r} is not installed")
    model = load_model(args.artifact)
    events = _load_samples(model, args)
    report = verify(
        model,
        events,
        out_dir=args.out,
        simulator=args.simulator,
        lanes=args.lanes,
        seed=args.seed,
        tb_seed=args.tb_seed,
        debug=not args.no_debug,
    )
    cycles = [c for c in report["cycles"] if c is not None]
    print(f"simulator   {report['simulator']}, {report['lanes']} lane(s)")
    print(f"samples     {report['samples']} of {report['expected_samples']}")
    print(f"mismatches  {len(report['mismatches'])}")
    if report["mismatches"]:
        print(f"first       {json.dumps(report['mismatches'][0])}")
    if cycles:
        print(f"cycles      {sum(cycles) / len(cycles):.0f} per sample (mean)")
    if report["cycles_per_synop"]:
        print(f"            {report['cycles_per_synop']:.3f} per synaptic operation")
    print(f"report      {Path(args.out) / 'report.json'}")
    if not report["passed"]:
        raise UnlayeredError(
            "the hardware does not match the reference simulator"
            + (f": {report['error']}" if report["error"] else "")
        )
    print("passed      every trace, count and membrane equals the reference simulator's")
    return 0


def _load_samples(model, args: argparse.Namespace):
    """The samples a verb runs: ``--events FILE`` or the first ``--samples`` of a dataset."""
    from unlayered.sim import load_events

    if args.events is not None:
        events = load_events(args.events)
        return events.select(range(args.samples)) if args.samples < len(events) else events
    from unlayered.sw.evaluate import dataset_for, split_events

    return split_events(dataset_for(model, args.dataset), args.split, args.samples)


def cmd_run(args: argparse.Namespace) -> int:
    import time

    from unlayered.boards.host import HostLink
    from unlayered.boards.run import run_samples_on_board, simulated_link
    from unlayered.boards.targets import get_target
    from unlayered.sim import UnlayeredError, load_model

    model = load_model(args.artifact)
    events = _load_samples(model, args)
    target = get_target(args.board)
    lanes = args.lanes or target.lanes
    if args.sim:
        link, board = simulated_link(
            model,
            lanes=lanes,
            max_payload=target.max_payload,
            trace_depth=target.trace_depth,
            weight_ram=target.weight_ram,
        )
        clock, where = board.clock, f"simulated {target.name} top (Amaranth simulator)"
    else:
        from unlayered.boards.serial_transport import SerialTransport

        transport = SerialTransport(args.port, args.baud or target.baud)
        link = HostLink(transport, timeout=args.timeout)
        clock, where = time.monotonic, f"{args.port} at {args.baud or target.baud} baud"
    report = run_samples_on_board(
        model, events, link, trace=not args.no_trace, clock=clock, load=not args.no_load_weights
    )
    report["board"] = where
    if args.report:
        _write_report(args.report, report)
    print(f"board       {where}")
    print(f"samples     {report['samples']}, {report['agree']} identical to the reference")
    if report["accuracy"] is not None:
        print(f"accuracy    {100 * report['accuracy']:.1f} %")
    if report["traces_cut"]:
        print(f"traces      {report['traces_cut']} longer than the board's buffer: prefix compared")
    rate = report["samples_per_second"]
    if rate:
        core = report["core_seconds"]
        split = f" (core {core:.4f} s, link {report['link_seconds']:.4f} s)" if core else ""
        print(f"throughput  {rate:.1f} samples/s over {report['seconds']:.3f} s{split}")
    stats = report["link"]
    print(f"link        {stats['commands']} commands, {stats['retransmissions']} retransmissions")
    if args.report:
        print(f"report      {args.report}")
    if report["mismatches"]:
        first = report["mismatches"][0]
        raise UnlayeredError(
            f"{len(report['mismatches'])} difference(s) from the reference simulator; first: "
            f"sample {first['sample']}: {first['difference']}"
        )
    return 0


# ---------------------------------------------------------------------------------------------
# build, program


def _fraction(used: int, available: int) -> str:
    return f"{used}/{available}" if available else str(used)


def format_build(report: dict[str, Any], out: Path) -> str:
    """The summary of a successful build's report (``report.json``): fit, bitstream, resources,
    clock."""
    config, clock = report["config"], report["clock"]
    fit = report["fit"]["totals"]
    lines = [
        f"fit         block RAM {_fraction(fit['ebr']['used'], fit['ebr']['available'])}, "
        f"SPRAM {_fraction(fit['spram']['used'], fit['spram']['available'])} "
        f"(estimate, {out / 'fit.json'})",
    ]
    bitstream = report["bitstream"]
    lines.append(f"bitstream   {out / bitstream['path']} ({bitstream['bytes']} bytes)")
    lines.append(
        f"design      {report['board']} ({report['device']}): {config['lanes']} lane(s), "
        f"weights in {config['weight_ram'].upper()}, {config['baud']} baud "
        f"({config['uart_divisor']} clocks per bit), max payload {config['max_payload']}, "
        f"trace depth {config['trace_depth']}"
    )
    names = {"logic": "LC" if report["family"] == "ice40" else "LUT4", "ff": "FF"}
    lines.append(
        "resources   "
        + ", ".join(
            f"{names.get(k, k.upper())} {_fraction(v['used'], v['available'])}"
            for k, v in report["resources"].items()
        )
    )
    requested, pll = clock["requested_hz"] / 1e6, clock["pll_hz"] / 1e6
    made = "" if abs(pll - requested) < 5e-7 else f" (the PLL makes {pll:.4f})"
    lines.append(
        f"clock       {requested:g} MHz requested{made}; Fmax {report['fmax_min_mhz']:.1f} MHz "
        f"({'met' if report['timing_met'] else 'not met'})"
    )
    secs = report["seconds"]
    lines.append(
        "seconds     "
        + ", ".join(
            f"{k.replace('_', ' ')} {secs[k]:.1f}"
            for k in ("synthesis", "place_and_route", "pack")
            if k in secs
        )
        + f" (total {secs['total']:.1f})"
    )
    lines.append(f"report      {out / 'report.json'}")
    return "\n".join(lines)


def cmd_build(args: argparse.Namespace) -> int:
    from unlayered.boards.build import build_bitstream
    from unlayered.boards.top import LinkTop
    from unlayered.sim import load_model

    model = load_model(args.artifact)

    def top(cfg):
        print(
            f"building {args.artifact} for {cfg.target.name} at {cfg.clock_hz / 1e6:g} MHz, "
            f"{cfg.lanes} lane(s), weights in {cfg.weight_ram.upper()} into {args.out} "
            "(synthesis and place and route take minutes)",
            file=sys.stderr,
            flush=True,
        )
        return LinkTop.for_board(model, cfg)

    report = build_bitstream(
        top,
        args.board,
        args.out,
        clock_hz=None if args.clock_mhz is None else args.clock_mhz * 1e6,
        lanes=args.lanes,
        max_payload=args.max_payload,
        trace_depth=args.trace_depth,
        model=model,
        seed=args.seed,
    )
    print(format_build(report, args.out))
    return 0


def cmd_program(args: argparse.Namespace) -> int:
    import shlex

    from unlayered.boards.program import program

    cmd = program(args.build_dir, tool=args.tool, dry_run=args.dry_run)
    print(f"{'would run' if args.dry_run else 'programmed'}  {shlex.join(cmd)}")
    return 0


def _add_train_options(p: argparse.ArgumentParser) -> None:
    """Options of `train` (defaults: TrainConfig's)."""
    p.add_argument("--config", type=Path, metavar="FILE", help="start from this config JSON")
    p.add_argument(
        "--dataset",
        help="dataset name (digits, digits_events, manifolds, nmnist, shd, tonic; default digits)",
    )  # fmt: skip
    p.add_argument("--dataset-path", metavar="DIR", help="where the dataset's files are")
    p.add_argument("--num-steps", type=int, metavar="T", help="time steps (default: dataset's)")
    p.add_argument("--max-train-samples", type=int, metavar="N", help="use N training samples")
    p.add_argument("--max-test-samples", type=int, metavar="N", help="use N test samples")
    p.add_argument("--val-fraction", type=float, metavar="X", help="validation share (0.1)")
    p.add_argument("--hidden", type=int, nargs="+", metavar="N", help="hidden layer sizes (64)")
    p.add_argument("--threshold", type=float, help="float threshold (1.0)")
    p.add_argument("--beta", type=float, help="float decay (0.9)")
    p.add_argument("--reset", choices=("zero", "subtract"), help="reset mode (zero)")
    p.add_argument("--surrogate", choices=("atan", "fast_sigmoid"), help="surrogate (atan)")
    p.add_argument(
        "--scheduler",
        choices=(*SCHEDULER_NAMES, "momentum_exact"),
        help="scheduler during training (momentum)",
    )
    p.add_argument("--group-size", type=int, metavar="F", help="group size F, 0 = all (8)")
    p.add_argument(
        "--no-prioritized-input",
        action="store_true",
        help="input events enter the pending set (default: one input group)",
    )
    p.add_argument("--scheduler-seed", type=_seed, metavar="N", help="random scheduler seed (1)")
    p.add_argument("--momentum-buckets", type=int, metavar="B", help="momentum buckets (8)")
    p.add_argument("--momentum-shift", type=int, metavar="K", help="momentum shift (auto)")
    p.add_argument("--max-groups-per-step", type=int, metavar="G", help="group cap (0: none)")
    p.add_argument("--decision", choices=("argmax_spike_count", "first_to_threshold"))
    p.add_argument("--epochs", type=int, metavar="N", help="epochs (10)")
    p.add_argument("--batch-size", type=int, metavar="B", help="global batch size (64)")
    p.add_argument("--lr", type=float, help="Adam learning rate (5e-3)")
    p.add_argument("--weight-decay", type=float, help="Adam weight decay (0)")
    p.add_argument(
        "--loss", choices=("ce_per_step", "ce_cumulative", "ce_total"), help="loss (ce_per_step)"
    )
    p.add_argument("--refractory-dropout", type=float, metavar="P", help="regularizer (0)")
    p.add_argument("--seed", type=int, help="seed of initialisation, data order and splits (0)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads (auto)")
    p.add_argument(
        "--qat",
        action="store_true",
        default=None,
        help="quantization-aware training (fake-quantized weights, STE)",
    )
    p.add_argument("--weight-bits", type=int, metavar="B", help="integer weight width (8)")
    p.add_argument("--membrane-bits", type=int, metavar="B", help="membrane width (16)")
    p.add_argument("--leak-shift", type=int, metavar="K", help="leak shift (8)")
    p.add_argument(
        "--threshold-int",
        type=int,
        metavar="N",
        help="integer threshold; sets the scale (auto: half the largest weight)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="output directory (default: out/train/DATASET_SCHEDULER_F<F>_s<SEED>)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


# ---------------------------------------------------------------------------------------------
# The parser and the entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unlayered",
        description="FPGA design generator for asynchronous spiking neural networks trained "
        "with the asynchronous execution in the loop.",
    )
    verbs = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = verbs.add_parser(
        "simulate",
        help="run a model artifact on an events file in the reference simulator",
        description="Run a model artifact on an events file in the bit-exact integer reference "
        "simulator and print a summary (accuracy, spikes, synaptic operations, groups, decision "
        "latency).",
    )
    p.add_argument("artifact", type=Path, help="model artifact (.npz)")
    p.add_argument("--events", type=Path, required=True, metavar="FILE", help="events file (.npz)")
    p.add_argument("--report", type=Path, metavar="FILE", help="write the full JSON report here")
    p.add_argument(
        "--seed", type=_seed, metavar="N", help="seed of the random scheduler (default: the "
        "artifact's)"
    )  # fmt: skip
    p.add_argument(
        "--engine", choices=ENGINES, default="compiled",
        help="simulator engine (default: compiled; readable is the contract as plain Python)",
    )  # fmt: skip
    p.add_argument(
        "--membranes", action="store_true",
        help="record the membranes at the end of every step into the report (needs --report)",
    )  # fmt: skip
    p.set_defaults(func=cmd_simulate, parser=p)

    p = verbs.add_parser(
        "demo",
        help="train, export and evaluate a digits model, and compare the schedulers",
        description="Train a small digits model with the asynchronous execution in the loop, "
        "export and evaluate it, run test samples under each of the four schedulers (same "
        "weights), print a comparison and write reports, the resolved configuration and "
        "per-stage timings into the output directory. With --model/--events/--no-train, skip "
        "training and compare the schedulers on that artifact. Then generate the core's "
        "Verilog and verify it under cocotb, build the iCEBreaker bitstream of the board top "
        "and run samples on the simulated board top over the host link (--no-hardware skips "
        "these).",
    )
    p.add_argument(
        "--out", type=Path, default=Path("out/demo"), metavar="DIR",
        help="output directory (default: out/demo)",
    )  # fmt: skip
    p.add_argument("--model", type=Path, metavar="FILE", help="artifact (default: the example)")
    p.add_argument("--events", type=Path, metavar="FILE", help="events (default: the example)")
    p.add_argument(
        "--engine", choices=ENGINES, default="compiled", help="simulator engine (default: compiled)"
    )
    p.add_argument(
        "--seed", type=_seed, metavar="N", help="seed of the random scheduler (default: the "
        "artifact's)"
    )  # fmt: skip
    p.add_argument(
        "--quick", action="store_true", help="train a tiny model on a few samples (seconds)"
    )
    p.add_argument(
        "--no-train", action="store_true",
        help="skip training: compare the schedulers on the example artifact (or --model)",
    )  # fmt: skip
    p.add_argument(
        "--no-hardware", action="store_true",
        help="skip the hardware stages: Verilog, cocotb, bitstream, simulated board",
    )  # fmt: skip
    p.add_argument(
        "--no-bitstream", action="store_true",
        help="skip building the iCEBreaker bitstream (minutes; --quick skips it too)",
    )  # fmt: skip
    p.add_argument(
        "--board-samples", type=int, default=2, metavar="N",
        help="samples run on the simulated iCEBreaker board top (2; 0 skips the stage)",
    )  # fmt: skip
    p.set_defaults(func=cmd_demo, parser=p)

    p = verbs.add_parser(
        "train",
        help="train a network with the scheduled execution in the loop",
        description="Train a spiking network with the asynchronous scheduled execution in the "
        "loop (unlayered backprop); writes config.json, checkpoints, history and a log into the "
        "output directory. Under torchrun (WORLD_SIZE > 1) it trains data-parallel.",
    )
    _add_train_options(p)
    p.set_defaults(func=cmd_train, parser=p)

    p = verbs.add_parser(
        "export",
        help="quantize a checkpoint into a model artifact",
        description="Quantize a training checkpoint to the contract's integers and write the "
        "model artifact; refuses a model with a silent layer unless --allow-silent.",
    )
    p.add_argument("checkpoint", type=Path, help="training checkpoint (.pt)")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="MODEL",
        help="artifact to write (default: model.npz beside the checkpoint)",
    )
    p.add_argument(
        "--allow-silent", action="store_true", help="write the artifact even if a layer never fires"
    )
    p.add_argument("--scheduler", choices=SCHEDULER_NAMES, help="deployed scheduler (training's)")
    p.add_argument("--group-size", type=int, metavar="F", help="deployed group size (training's)")
    p.add_argument(
        "--check-samples",
        type=int,
        default=256,
        metavar="N",
        help="validation samples of the silent-layer check (256)",
    )
    p.set_defaults(func=cmd_export, parser=p)

    p = verbs.add_parser(
        "evaluate",
        help="run an artifact on a dataset split in the reference simulator",
        description="Run a model artifact on a dataset split in the reference simulator and "
        "report accuracy, spikes, synaptic operations, groups and decision latency (a table, "
        "and a JSON report).",
    )
    p.add_argument("artifact", type=Path, help="model artifact (.npz)")
    p.add_argument("--dataset", help="dataset (default: the one in the artifact's encoding)")
    p.add_argument("--split", choices=("test", "train"), default="test", help="split (test)")
    p.add_argument("--scheduler", choices=SCHEDULER_NAMES, help="run under this scheduler")
    p.add_argument("--group-size", type=int, metavar="F", help="run with this group size")
    p.add_argument("--seed", type=_seed, metavar="N", help="random scheduler seed (artifact's)")
    p.add_argument("--max-samples", type=int, metavar="N", help="only the first N samples")
    p.add_argument("--engine", choices=ENGINES, default="compiled", help="engine (compiled)")
    p.add_argument(
        "--checkpoint",
        type=Path,
        metavar="FILE",
        help="also report this checkpoint's float accuracy, same scheduler",
    )
    p.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="JSON report (default: evaluate_SPLIT_SCHEDULER_F<F>.json beside MODEL)",
    )
    p.add_argument("--json", action="store_true", help="print the JSON summary, not the table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate, parser=p)

    p = verbs.add_parser(
        "study",
        help="train sync and async models, evaluate each under every scheduler",
        description="Train a sync-trained model and one async-trained model per scheduler and "
        "group size, export them, evaluate every model under every execution scheduler, and "
        "write a JSON table and plots (accuracy, spikes, decision latency).",
    )
    p.add_argument("--dataset", default="digits", help="dataset (digits)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("out/study"),
        metavar="DIR",
        help="output directory (out/study)",
    )
    p.add_argument("--hidden", type=int, nargs="+", default=[64], metavar="N")
    p.add_argument("--epochs", type=int, default=20, metavar="N", help="epochs (20)")
    p.add_argument(
        "--group-sizes", type=int, nargs="+", default=[8], metavar="F",
        help="group sizes of the async-trained models (8)",
    )  # fmt: skip
    p.add_argument(
        "--eval-group-size", type=int, default=8, metavar="F",
        help="group size of the async execution schedulers (8)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-train-samples", type=int, metavar="N")
    p.add_argument("--max-test-samples", type=int, metavar="N")
    p.add_argument("--no-qat", action="store_true", help="train without quantization awareness")
    p.set_defaults(func=cmd_study, parser=p)

    p = verbs.add_parser(
        "generate",
        help="write the neuron core's Verilog for an artifact",
        description="Write the Verilog of the neuron core for a model artifact, a JSON "
        "description of its ports, the memory layout, the resolved configuration and a fit "
        "estimate against the target devices' RAM.",
    )
    p.add_argument("artifact", type=Path, help="model artifact (.npz)")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="output dir")
    p.add_argument("--lanes", type=int, choices=(1, 2, 4, 8), default=1, help="lanes (1)")
    p.set_defaults(func=cmd_generate, parser=p)

    p = verbs.add_parser(
        "verify",
        help="run the generated Verilog under cocotb and compare with the reference simulator",
        description="Generate the core, run it under cocotb on dataset or events-file samples "
        "with random input stalls and output backpressure, and compare every sample's trace, "
        "counts and end-of-step membranes with the reference simulator.",
    )
    p.add_argument("artifact", type=Path, help="model artifact (.npz)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="dataset (default: the one in the artifact's encoding)")
    source.add_argument("--events", type=Path, metavar="FILE", help="events file (.npz)")
    p.add_argument("--split", choices=("test", "train"), default="test", help="split (test)")
    p.add_argument("--samples", type=int, default=10, metavar="N", help="first N samples (10)")
    p.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus")
    p.add_argument("--lanes", type=int, choices=(1, 2, 4, 8), default=1, help="lanes (1)")
    p.add_argument("--seed", type=_seed, metavar="N", help="random scheduler seed (artifact's)")
    p.add_argument("--tb-seed", type=int, metavar="N", help="seed of stalls and backpressure")
    p.add_argument("--no-debug", action="store_true", help="skip the membrane comparison")
    p.add_argument(
        "-o", "--out", type=Path, default=Path("out/verify"), metavar="DIR",
        help="build directory and report (out/verify)",
    )  # fmt: skip
    p.set_defaults(func=cmd_verify, parser=p)

    p = verbs.add_parser(
        "run",
        help="run samples on a board (or the simulated board) and compare with the reference",
        description="Reset the board, load the model's weights, stream samples over the host "
        "link, read every result back and compare it with the reference simulator: accuracy, "
        "mismatches, throughput with link and core time separated. --sim runs the board top "
        "(UART, link engine, core) in the Amaranth simulator on simulated time.",
    )
    p.add_argument("artifact", type=Path, help="model artifact (.npz)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="DEV", help="serial port of the board (/dev/ttyUSB1)")
    where.add_argument("--sim", action="store_true", help="the simulated board top")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="dataset (default: the one in the artifact's encoding)")
    source.add_argument("--events", type=Path, metavar="FILE", help="events file (.npz)")
    p.add_argument("--split", choices=("test", "train"), default="test", help="split (test)")
    p.add_argument("--samples", type=int, default=10, metavar="N", help="first N samples (10)")
    p.add_argument("--board", default="icebreaker", help="board the bitstream is for (icebreaker)")
    p.add_argument("--lanes", type=int, choices=(1, 2, 4, 8), help="lanes (the board's)")
    p.add_argument("--baud", type=int, help="serial bit rate (the board's)")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds per response (1.0)")
    p.add_argument("--no-trace", action="store_true", help="do not read and compare the traces")
    p.add_argument(
        "--no-load-weights", action="store_true",
        help="keep the weights the board has (only for a bitstream built from this model, "
        "with weights in block RAM)",
    )  # fmt: skip
    p.add_argument("--report", type=Path, metavar="FILE", help="write the JSON report here")
    p.set_defaults(func=cmd_run, parser=p)

    p = verbs.add_parser(
        "build",
        help="build the bitstream of an artifact's board top (UART, link engine, core)",
        description="Build the board top of a model artifact (UART, link engine, neuron core) "
        "into a bitstream for a board with the open toolchain (yosys, nextpnr, icepack or "
        "ecppack from pip): fit estimate, synthesis, place and route at the PLL's clock, "
        "packing. Writes the bitstream and report.json into the output directory; a design "
        "that does not fit or misses the clock is an error.",
    )
    p.add_argument("artifact", type=Path, help="model artifact (.npz)")
    p.add_argument(
        "--board", required=True, metavar="NAME", help="board target (icebreaker, ulx3s, ...)"
    )
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="output dir")
    p.add_argument("--lanes", type=int, choices=(1, 2, 4, 8), help="lanes (the board's)")
    p.add_argument("--clock-mhz", type=float, metavar="F", help="core clock in MHz (the board's)")
    p.add_argument(
        "--trace-depth", type=int, metavar="N", help="spikes of the trace kept (the board's)"
    )
    p.add_argument(
        "--max-payload", type=int, metavar="N", help="largest frame payload (the board's)"
    )
    p.add_argument("--seed", type=int, default=1, metavar="N", help="placement seed (1)")
    p.set_defaults(func=cmd_build, parser=p)

    p = verbs.add_parser(
        "program",
        help="program a board with the bitstream of a build",
        description="Program the board of a build directory (written by `unlayered build`) "
        "with its bitstream: iceprog for the iCEBreaker (SPI flash), openFPGALoader for the "
        "ULX3S (SRAM). Refuses a failed build or a bitstream that is not the one built.",
    )
    p.add_argument("build_dir", type=Path, metavar="DIR", help="build directory")
    p.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    p.add_argument("--tool", metavar="PATH", help="the programmer executable to run instead")
    p.set_defaults(func=cmd_program, parser=p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``unlayered`` console entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "membranes", False) and args.report is None:
        args.parser.error("--membranes needs --report FILE (the membranes go into the report)")
    from unlayered.sim import UnlayeredError

    try:
        return args.func(args)
    except UnlayeredError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`unlayered ... | head`): silence the final flush of stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
