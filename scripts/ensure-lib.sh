# Shared by the ensure-*.sh install scripts (sourced, not run): logging, failing, and
# installing a missing Debian package when root. Set ENSURE_NAME before sourcing.

log() { printf '%s: %s\n' "${ENSURE_NAME:-ensure}" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
    if ! have apt-get || [ "$(id -u)" -ne 0 ]; then
        die "missing $*; install it (Debian: apt-get install $*)"
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
        die "apt-get install $* failed"
}
