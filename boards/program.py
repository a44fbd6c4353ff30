"""Program a board with a bitstream that :func:`~.build.build_bitstream` built.

The build directory's ``report.json`` names the board and the bitstream; the board's target
names the programmer: ``iceprog`` for the iCEBreaker (writes the SPI flash the iCE40 boots from),
``openFPGALoader -b ulx3s`` for the ULX3S (loads the ECP5's SRAM). Only a build whose report says
``"status": "ok"`` and whose bitstream still has the recorded sha256 is programmed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from unlayered.sim import UnlayeredError

from .targets import TargetError, get_target

__all__ = ["ProgramError", "program", "program_command"]


class ProgramError(UnlayeredError):
    """The board cannot be programmed: no valid build, no programmer, or the programmer failed."""


def _read_report(build_dir: Path) -> dict:
    path = build_dir / "report.json"
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProgramError(
            f"{path} not found: build first (unlayered build ... -o {build_dir})"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ProgramError(f"cannot read {path}: {exc}") from None
    if report.get("status") != "ok":
        raise ProgramError(
            f"the build in {build_dir} did not succeed ({report.get('stage', '?')}: "
            f"{str(report.get('error', 'no bitstream')).splitlines()[0]}); nothing to program"
        )
    return report


def program_command(build_dir: str | os.PathLike, *, tool: str | None = None) -> list[str]:
    """The command that programs the board of the build in ``build_dir`` (not run).

    Checks the build: ``report.json`` with ``"status": "ok"``, the bitstream present with the
    recorded sha256. ``tool`` replaces the programmer's executable (a name or a path).
    """
    build_dir = Path(build_dir)
    report = _read_report(build_dir)
    try:
        target = get_target(report.get("board"))
    except TargetError as exc:
        raise ProgramError(f"{build_dir / 'report.json'}: {exc}") from None
    info = report.get("bitstream") or {}
    bitstream = build_dir / str(info.get("path", ""))
    if not info.get("path") or not bitstream.is_file() or bitstream.stat().st_size == 0:
        raise ProgramError(f"the bitstream of {build_dir} is missing ({bitstream}): build again")
    digest = hashlib.sha256(bitstream.read_bytes()).hexdigest()
    if digest != info.get("sha256"):
        raise ProgramError(
            f"{bitstream} is not the bitstream the build reported (sha256 {digest[:16]}..., "
            f"report {str(info.get('sha256'))[:16]}...): build again"
        )
    cmd = target.program_command(str(bitstream.resolve()))
    if tool:
        cmd[0] = tool
    return cmd


def program(
    build_dir: str | os.PathLike,
    *,
    tool: str | None = None,
    dry_run: bool = False,
    timeout: float | None = 300,
) -> list[str]:
    """Program the board with the bitstream built in ``build_dir``; return the command.

    ``tool`` replaces the programmer's executable; ``dry_run`` returns the command without
    running it (and without looking for the programmer). Raises :class:`ProgramError` when the
    build is missing or failed, the programmer is not installed (the message says how to
    install it) or it fails (with its output).
    """
    cmd = program_command(build_dir, tool=tool)
    if dry_run:
        return cmd
    target = get_target(json.loads((Path(build_dir) / "report.json").read_text())["board"])
    exe = shutil.which(cmd[0])
    if exe is None:
        raise ProgramError(
            f"the programmer {cmd[0]!r} of {target.name} is not on PATH; install it: "
            f"{target.programmer_install}"
        )
    try:
        res = subprocess.run(
            [exe, *cmd[1:]], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ProgramError(f"{' '.join(cmd)} did not finish within {timeout} s") from None
    if res.returncode != 0:
        tail = "\n".join((res.stdout + res.stderr).splitlines()[-15:])
        raise ProgramError(f"{' '.join(cmd)} failed (exit status {res.returncode}):\n{tail}")
    return cmd
