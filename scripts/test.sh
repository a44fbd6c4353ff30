#!/usr/bin/env bash
# The project's whole check: set-up, lint, format check, then the tests. Extra arguments are
# passed to pytest (for example `bash scripts/test.sh -k artifact -x`). Every check runs; the
# script exits non-zero if any failed (pytest's "no tests collected", 5, is a failure too).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

failed=()
check() {
    printf '\n=== %s\n' "$*"
    local status=0
    "$@" || status=$?
    if ((status != 0)); then
        failed+=("$* (exit $status)")
    fi
}

check .venv/bin/ruff check
check .venv/bin/ruff format --check
check .venv/bin/python -m pytest "$@"

echo
if ((${#failed[@]})); then
    printf 'FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "all checks passed"
