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

DEFAULT_DEPS=(redis)

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

# Later: ensure_node (node/npm for Socket.IO client tests), ensure_python
# (a .venv with python-socketio), ensure_promtool (prometheus package).

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
