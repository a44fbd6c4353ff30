#!/usr/bin/env bash
# Set up this repository on a fresh Debian machine (Python 3.11, run as root or with sudo):
#   1. the system packages the project needs, installed only when missing;
#   2. the virtual environment .venv at the repository root, created if absent;
#   3. the project installed editable with its hw, train and test extras (pip install -e '.[hw,train,test]'),
#      skipped when the installed environment already satisfies pyproject.toml.
# Idempotent: a second run checks, changes nothing and takes about a second.
# Works from any directory. Environment: PYTHON (default python3), the interpreter of the venv.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
STAMP="$VENV/.unlayered-setup"
PYTHON=${PYTHON:-python3}

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- 1. system packages ---------------------------------------------------------------------
# Debian package names, installed with --no-install-recommends. Later issues add here what
# the gateware and board flows need (iverilog, g++, make, perl, ...).
APT_PACKAGES=(iverilog)

command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON to a Python 3.11 interpreter)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    die "$PYTHON is Python $("$PYTHON" -c 'import platform; print(platform.python_version())'); the project needs 3.11 (set PYTHON)"

venv_works() { [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; }

# `python3 -m venv` needs ensurepip, which Debian ships in python3-venv: ask for it only when a
# venv must be created and it is not there.
if ! venv_works && ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
    APT_PACKAGES+=(python3-venv)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "missing system packages (${missing[*]}) and no apt-get"
    SUDO=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "installing ${missing[*]} needs root (or sudo)"
        SUDO=(sudo)
    fi
    say "installing system packages: ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    say "system packages: nothing to install"
fi

# --- 2. the virtual environment -------------------------------------------------------------
if [[ -e $VENV ]] && ! venv_works; then
    die "$VENV exists but its Python does not run; remove it and run this script again"
fi
if [[ ! -e $VENV ]]; then
    say "creating $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    die "$VENV is not a Python 3.11 environment; remove it and run this script again"

# --- 3. the project, editable, with the test extras -----------------------------------------
# Up to date means: pyproject.toml is the one last installed (stamp), the project is installed
# editable from this checkout with its console script, and every requirement of unlayered[hw,train,test],
# transitively, is installed in a version that satisfies it.
stamp_value() {
    printf '%s %s %s\n' "$(sha256sum pyproject.toml | cut -d' ' -f1)" "$ROOT" \
        "$("$VENV/bin/python" -c 'import platform; print(platform.python_version())')"
}

installed_ok() {
    [[ -f $STAMP && $(cat "$STAMP") == "$(stamp_value)" && -x $VENV/bin/unlayered ]] || return 1
    "$VENV/bin/python" - "$ROOT" <<'PY' 2>/dev/null
import importlib.metadata as md
import importlib.util
import sys

from packaging.requirements import Requirement

root = sys.argv[1]
spec = importlib.util.find_spec("unlayered.sim")
if spec is None or not spec.origin.startswith(f"{root}/sim/"):
    sys.exit(f"unlayered is not installed editable from {root}")
seen, todo = set(), [("unlayered", ("hw", "test", "train"))]
while todo:
    name, extras = todo.pop()
    if (name, extras) in seen:
        continue
    seen.add((name, extras))
    for req in map(Requirement, md.requires(name) or []):
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
            continue
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            sys.exit(f"{req.name} is not installed")
        if not req.specifier.contains(version, prereleases=True):
            sys.exit(f"{req.name} {version} does not satisfy {req}")
        todo.append((req.name, tuple(sorted(req.extras))))
PY
}

if installed_ok; then
    say "project: up to date ($VENV)"
else
    say "installing the project: pip install -e '.[hw,train,test]'"
    "$VENV/bin/python" -m pip install -q -e '.[hw,train,test]'
    # Check what was installed, then record it.
    rm -f "$STAMP"
    stamp_value >"$STAMP"
    installed_ok || { rm -f "$STAMP"; die "the installed environment does not satisfy pyproject.toml"; }
fi
say "ready: $VENV/bin/unlayered"
