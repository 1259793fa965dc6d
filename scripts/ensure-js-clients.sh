#!/usr/bin/env bash
# Install what the JavaScript client and dashboard tests drive.
#
# Idempotent and quick when already done:
#   - the dev dependencies of clients/js (ws, react, react-test-renderer,
#     playwright-core; versions pinned by package.json + package-lock.json)
#     into clients/js/node_modules (git-ignored), with `npm ci`;
#   - Debian's `chromium` (the browser playwright-core drives headless), with
#     apt-get when /usr/bin/chromium is missing and we are root.
# Never downloads a browser through playwright. Needs node >= 18 and npm.
#
# Usage: scripts/ensure-js-clients.sh      (make test runs it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JS="$ROOT/clients/js"

ENSURE_NAME=ensure-js-clients
# shellcheck source=scripts/ensure-lib.sh
. "$ROOT/scripts/ensure-lib.sh"

if ! have node || ! have npm; then
    apt_install nodejs npm
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old; the JS client tests need node >= 18"

stamp="$JS/node_modules/.tickstream-lock"
if [ -f "$stamp" ] && cmp -s "$stamp" "$JS/package-lock.json" &&
    [ -f "$JS/node_modules/playwright-core/package.json" ]; then
    log "clients/js dev dependencies ok"
else
    log "npm ci in clients/js"
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing, but say it anyway.
    (cd "$JS" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2) ||
        die "npm ci failed"
    cp "$JS/package-lock.json" "$stamp"
    log "clients/js dev dependencies installed"
fi

if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
fi
log "chromium ok ($(/usr/bin/chromium --version 2>/dev/null | head -1))"
