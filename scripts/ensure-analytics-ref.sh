#!/usr/bin/env bash
# Install the independent reference the analytics indicator test compares against.
#
# Idempotent and quick when already done: TA-Lib's Python package (PyPI
# `TA-Lib`, whose wheels bundle the TA-Lib C library) and numpy, pinned below,
# into the venv .venv-analytics (git-ignored). Uses only pip against PyPI.
# Needs python3 with the venv module; if it is missing it installs Debian's
# package when root (as scripts/ensure-deps.sh does), else says what to install.
#
# Usage: scripts/ensure-analytics-ref.sh      (make test runs it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-analytics"
TALIB_REQUIREMENT="TA-Lib==0.8.2"
NUMPY_REQUIREMENT="numpy==2.4.6"

ENSURE_NAME=ensure-analytics-ref
# shellcheck source=scripts/ensure-lib.sh
. "$ROOT/scripts/ensure-lib.sh"

have python3 || apt_install python3 python3-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$VENV"
    log "creating venv $VENV"
    python3 -m venv "$VENV" 2>/dev/null || {
        apt_install python3-venv
        python3 -m venv "$VENV"
    } || die "python3 -m venv failed"
fi
if "$VENV/bin/python" - "$TALIB_REQUIREMENT" "$NUMPY_REQUIREMENT" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
for req in sys.argv[1:]:
    name, want = req.split("==")
    assert version(name) == want, (name, version(name), want)
import talib, numpy  # noqa: F401
PY
    log "reference ok ($TALIB_REQUIREMENT, $NUMPY_REQUIREMENT)"
else
    log "pip install $TALIB_REQUIREMENT $NUMPY_REQUIREMENT"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$TALIB_REQUIREMENT" "$NUMPY_REQUIREMENT" ||
        die "pip install $TALIB_REQUIREMENT $NUMPY_REQUIREMENT failed"
    log "reference installed"
fi
