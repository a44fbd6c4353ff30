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
    Run the demo pipeline on the example model (:func:`unlayered.sw.demo.run_demo`).
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
    )
    print(result.table)
    print(f"\nwrote {result.out_dir}/ (config.json, timings.json, reports/, summary.*)")
    return 0


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
        help="run the example model through the pipeline and compare the schedulers",
        description="Run the example artifact on the example events under each of the four "
        "schedulers (same weights), print a comparison and write reports, the resolved "
        "configuration and per-stage timings into the output directory.",
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
    p.set_defaults(func=cmd_demo, parser=p)
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
