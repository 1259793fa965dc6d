#!/usr/bin/env bash
# Install the stock Socket.IO clients the gateway's integration tests drive.
#
# Idempotent and quick when already done:
#   - socket.io-client (npm, version pinned by package.json + package-lock.json)
#     into services/gateway/tests/clients/node_modules (git-ignored), with `npm ci`;
#   - python-socketio[client] (PyPI, pinned below) into the venv .venv-sio (git-ignored).
# Uses only npm and pip against their registries. Needs node >= 18, npm and
# python3 with the venv module; if one is missing it installs Debian's package
# when root (as scripts/ensure-deps.sh does), else says what to install.
#
# Usage: scripts/ensure-sio-clients.sh      (make test runs it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIENTS="$ROOT/services/gateway/tests/clients"
VENV="$ROOT/.venv-sio"
PY_REQUIREMENT="python-socketio[client]==5.14.0"

ENSURE_NAME=ensure-sio-clients
# shellcheck source=scripts/ensure-lib.sh
. "$ROOT/scripts/ensure-lib.sh"

# --- node: socket.io-client --------------------------------------------------
if ! have node || ! have npm; then
    apt_install nodejs npm
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old; socket.io-client tests need node >= 18"

stamp="$CLIENTS/node_modules/.tickstream-lock"
if [ -f "$stamp" ] && cmp -s "$stamp" "$CLIENTS/package-lock.json" &&
    [ -f "$CLIENTS/node_modules/socket.io-client/package.json" ]; then
    log "socket.io-client ok ($(node -p "require('$CLIENTS/node_modules/socket.io-client/package.json').version"))"
else
    log "npm ci in services/gateway/tests/clients"
    (cd "$CLIENTS" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed"
    cp "$CLIENTS/package-lock.json" "$stamp"
    log "socket.io-client installed"
fi

# --- python: python-socketio -------------------------------------------------
have python3 || apt_install python3 python3-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    rm -rf "$VENV"
    log "creating venv $VENV"
    python3 -m venv "$VENV" 2>/dev/null || {
        apt_install python3-venv
        python3 -m venv "$VENV"
    } || die "python3 -m venv failed"
fi
if "$VENV/bin/python" - "$PY_REQUIREMENT" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
want = sys.argv[1].split("==")[1]
assert version("python-socketio") == want
import socketio, requests, websocket  # noqa: F401  (the [client] extra)
PY
    log "python-socketio ok ($PY_REQUIREMENT)"
else
    log "pip install $PY_REQUIREMENT"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$PY_REQUIREMENT" ||
        die "pip install $PY_REQUIREMENT failed"
    log "python-socketio installed"
fi
