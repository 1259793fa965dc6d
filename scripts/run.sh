#!/usr/bin/env bash
# `make run`: build the release binaries and run a local tickstream
# (redis + ingest-sim + analytics + gateway) in the foreground. Ctrl-C stops everything.
#
# Environment (all optional):
#   REDIS_URL        use this Redis if it answers; otherwise a private, throw-away
#                    redis-server is started on a free port (never 6379)
#   PORT, HOST       gateway address            (default 5021, 0.0.0.0)
#   SIM_PORT         ingest-sim HTTP port       (default 9100)
#   SIM_HOST         ingest-sim bind address    (default 127.0.0.1)
#   ANALYTICS_PORT   analytics HTTP port        (default 9105)
#   ANALYTICS_HOST   analytics bind address     (default 127.0.0.1)
#   LOG_LEVEL, LOG_FORMAT, SYMBOLS, TICKSTREAM_CONFIG, TICKSTREAM_*  passed through
#   CARGO_TARGET_DIR where the binaries are     (default target)
#   NO_BUILD=1       skip `cargo build` and use the binaries already built
#   RUN_DIR          logs and redis working dir (default .run)
#   READY_TIMEOUT    seconds to wait for the gateway's /health (default 30)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PORT="${PORT:-5021}"
HOST="${HOST:-0.0.0.0}"
SIM_PORT="${SIM_PORT:-9100}"
SIM_HOST="${SIM_HOST:-127.0.0.1}"
ANALYTICS_PORT="${ANALYTICS_PORT:-9105}"
ANALYTICS_HOST="${ANALYTICS_HOST:-127.0.0.1}"
READY_TIMEOUT="${READY_TIMEOUT:-30}"
RUN_DIR="${RUN_DIR:-$ROOT/.run}"
BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
export LOG_LEVEL="${LOG_LEVEL:-info}"
export LOG_FORMAT="${LOG_FORMAT:-pretty}"

PIDS=()  # every process we started, in start order
NAMES=() # their names, same order

log() { printf 'run: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# The address to connect to for a bind address.
connect_host() {
    case "$1" in
    0.0.0.0 | "" | "::" | "[::]") printf '127.0.0.1' ;;
    *) printf '%s' "$1" ;;
    esac
}

# tcp_open HOST PORT: true if something accepts connections there.
tcp_open() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# --- process management ------------------------------------------------------

# start NAME CMD...: runs CMD in the background; its output goes to the
# terminal with a "[NAME] " prefix and, unprefixed, to $RUN_DIR/NAME.log.
start() {
    local name="$1"
    shift
    local logfile="$RUN_DIR/$name.log"
    : >"$logfile"
    # The log pipe ignores Ctrl-C so it can still show the shutdown logs; it
    # ends by itself when the command's output closes.
    "$@" > >(
        trap '' INT TERM
        tee -a "$logfile" | sed -u "s/^/[$name] /"
    ) 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
}

# start_quiet NAME CMD...: like start, but output goes to the log file only.
start_quiet() {
    local name="$1"
    shift
    "$@" >"$RUN_DIR/$name.log" 2>&1 &
    PIDS+=("$!")
    NAMES+=("$name")
}

alive() { kill -0 "$1" 2>/dev/null; }

# Prints the name of the first started process that has exited; fails if none.
first_dead() {
    local i
    for i in "${!PIDS[@]}"; do
        if ! alive "${PIDS[$i]}"; then
            printf '%s %s' "$i" "${NAMES[$i]}"
            return 0
        fi
    done
    return 1
}

show_log_tail() {
    local name="$1" file="$RUN_DIR/$1.log"
    [ -s "$file" ] || return 0
    printf '\n----- last lines of %s -----\n' "$file" >&2
    tail -n 30 "$file" >&2
}

# Stops everything we started, newest first: TERM, then KILL after 10 s.
stop_all() {
    local i pid deadline
    [ "${#PIDS[@]}" -gt 0 ] || return 0
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid="${PIDS[$i]}"
        alive "$pid" || continue
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.1
        done
        if alive "$pid"; then
            log "${NAMES[$i]} did not stop within 10 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    wait 2>/dev/null || true
    PIDS=()
    NAMES=()
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    exit "$rc"
}

on_signal() {
    printf '\n' >&2
    log "stopping..."
    exit 0 # runs on_exit
}

trap on_exit EXIT
trap on_signal INT TERM

# --- redis -------------------------------------------------------------------

redis_answers() { # URL
    local url="$1" hostport host port
    if have redis-cli; then
        [ "$(timeout 3 redis-cli --no-auth-warning -u "$url" ping 2>/dev/null)" = "PONG" ]
        return
    fi
    # No redis-cli: just check that the port accepts connections.
    hostport="${url#*://}"     # drop scheme
    hostport="${hostport##*@}" # drop user:password@
    hostport="${hostport%%/*}" # drop /db
    host="${hostport%:*}"
    port="${hostport##*:}"
    [ "$host" != "$hostport" ] || port=6379
    tcp_open "${host:-127.0.0.1}" "$port"
}

free_port() {
    local p
    if have python3; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' &&
            return 0
    fi
    for p in $(seq 16379 16479); do
        if ! tcp_open 127.0.0.1 "$p"; then
            printf '%s\n' "$p"
            return 0
        fi
    done
    return 1
}

# Starts a private redis-server on a free port and exports REDIS_URL for it.
start_own_redis() {
    local try port deadline pid
    "$ROOT/scripts/ensure-deps.sh" redis
    for try in 1 2 3; do
        port="$(free_port)" || die "found no free port for redis-server"
        [ "$port" != 6379 ] || continue
        start_quiet redis redis-server --port "$port" --bind 127.0.0.1 \
            --save "" --appendonly no --dir "$RUN_DIR" --daemonize no --logfile ""
        pid="${PIDS[-1]}"
        deadline=$((SECONDS + 10))
        while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
            if redis_answers "redis://127.0.0.1:$port"; then
                export REDIS_URL="redis://127.0.0.1:$port"
                log "started redis-server (pid $pid) at $REDIS_URL, log $RUN_DIR/redis.log"
                return 0
            fi
            sleep 0.1
        done
        log "redis-server on port $port did not come up (try $try)"
        show_log_tail redis
        stop_all
    done
    die "could not start redis-server"
}

# --- main --------------------------------------------------------------------

mkdir -p "$RUN_DIR"

if [ "${NO_BUILD:-0}" != 1 ]; then
    log "cargo build --release --bins"
    cargo build --release --bins
fi
for bin in gateway ingest-sim analytics; do
    [ -x "$BIN_DIR/$bin" ] || die "$BIN_DIR/$bin not found (build it with: cargo build --release --bins)"
done

GW_HOST="$(connect_host "$HOST")"
if tcp_open "$GW_HOST" "$PORT"; then
    die "port $PORT is already in use on $GW_HOST (set PORT=... to use another)"
fi
if tcp_open "$(connect_host "$SIM_HOST")" "$SIM_PORT"; then
    die "port $SIM_PORT is already in use (set SIM_PORT=... to use another)"
fi
if tcp_open "$(connect_host "$ANALYTICS_HOST")" "$ANALYTICS_PORT"; then
    die "port $ANALYTICS_PORT is already in use (set ANALYTICS_PORT=... to use another)"
fi

REDIS_NOTE="yours"
if [ -n "${REDIS_URL:-}" ] && redis_answers "$REDIS_URL"; then
    log "using Redis at $REDIS_URL"
else
    if [ -n "${REDIS_URL:-}" ]; then
        log "REDIS_URL=$REDIS_URL does not answer; starting a private redis-server instead"
    fi
    start_own_redis
    REDIS_NOTE="private, data discarded on exit"
fi

start ingest-sim env HOST="$SIM_HOST" PORT="$SIM_PORT" "$BIN_DIR/ingest-sim"
start analytics env HOST="$ANALYTICS_HOST" PORT="$ANALYTICS_PORT" "$BIN_DIR/analytics"
start gateway env HOST="$HOST" PORT="$PORT" "$BIN_DIR/gateway"

HEALTH_URL="http://$GW_HOST:$PORT/health"
deadline=$((SECONDS + READY_TIMEOUT))
until curl -fsS -o /dev/null --max-time 2 "$HEALTH_URL" 2>/dev/null; do
    if dead="$(first_dead)"; then
        name="${dead#* }"
        log "$name exited before the gateway was ready"
        show_log_tail "$name"
        exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        log "gateway did not answer $HEALTH_URL within ${READY_TIMEOUT} s"
        curl -sS --max-time 2 "$HEALTH_URL" >&2 || true
        show_log_tail ingest-sim
        show_log_tail gateway
        exit 1
    fi
    sleep 0.5
done

cat >&2 <<EOF

  tickstream is up (gateway $HEALTH_URL)

  Dashboard  http://$GW_HOST:$PORT/          (client library: http://$GW_HOST:$PORT/client/tickstream.js)
  WebSocket  ws://$GW_HOST:$PORT/ws
             send: {"event":"subscribe","data":{"symbols":["BTCUSDT"]}}
  REST       curl $GW_HOST:$PORT/price/BTCUSDT
             curl '$GW_HOST:$PORT/prices?symbols=BTCUSDT,ETHUSDT'
             curl $GW_HOST:$PORT/symbols    curl $GW_HOST:$PORT/stats
  Metrics    http://$GW_HOST:$PORT/metrics    ingest-sim: http://$(connect_host "$SIM_HOST"):$SIM_PORT/metrics
  Analytics  http://$(connect_host "$ANALYTICS_HOST"):$ANALYTICS_PORT/health  (candles:1m:BTCUSDT, signals:BTCUSDT, sentiment on Redis)
  Socket.IO  http://$GW_HOST:$PORT  (io("http://$GW_HOST:$PORT") in socket.io-client)
  Redis      $REDIS_URL ($REDIS_NOTE)
  Logs       $RUN_DIR/

  Ctrl-C stops everything.

EOF

# Supervise: if any process exits, stop the rest and fail.
while true; do
    sleep 1 &
    wait "$!" || true
    if dead="$(first_dead)"; then
        idx="${dead%% *}"
        name="${dead#* }"
        rc=0
        wait "${PIDS[$idx]}" || rc=$?
        log "$name exited (status $rc); stopping everything"
        [ "$rc" -ne 0 ] || rc=1
        exit "$rc"
    fi
done
