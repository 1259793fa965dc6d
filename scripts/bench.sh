#!/usr/bin/env bash
# Benchmarks (make bench): the gateway against the Node socket.io reference
# (bench/reference), in the same run, on this machine, with a private Redis.
#
# Scenarios (issue 6):
#   fanout       BENCH_SYMBOLS symbols, BENCH_CLIENTS clients × BENCH_PER_CLIENT symbols each,
#                at each rate of BENCH_RATES ticks/s; BENCH_WARMUP s warm-up, BENCH_DURATION s measured.
#                The latency scenario is the fan-out row at the lowest rate (1k ticks/s).
#   connections  BENCH_CONN_CLIENTS clients × 1 symbol at BENCH_CONN_RATE ticks/s; RSS per connection.
#                When the clients do not fit under one process's open-file limit (ulimit -Hn, here
#                20,000), the gateway runs as R replicas sharing one port (gateway.reuse_port,
#                SO_REUSEPORT; each under the limit with a margin), watched together as "server" (CPU
#                and RSS summed) and named gateway×R in the table, and loadgen runs its clients in R
#                processes (loadgen run --shards R). The reference is one Node process: it is capped at
#                the limit (limit − 1,000 clients), and the output says so. The gateway then runs a
#                second case, connections-idle: the same clients with nothing published (its idle CPU).
#   slow-consumer  the fan-out shape (BENCH_SLOW_CLIENTS clients × BENCH_PER_CLIENT of BENCH_SYMBOLS) at
#                BENCH_SLOW_RATE ticks/s against the gateway only, twice: without and with BENCH_STALLED
#                stalled clients (subscribed to every symbol, never reading; issue 7). The table pairs
#                the two: normal clients' p99 ratio (target ≤ 1.20), delivered %, the gateway's RSS at
#                window start/end/max, and each stalled client's close code and reason (expect
#                1008 "slow consumer"). BENCH_SLOW_TIMEOUT_MS sets the gateway's slow-consumer timeout
#                for both runs (default: the gateway's own, 10 s; BENCH_QUICK=1: 2 s, to fit its window).
#                Alone: BENCH_SCENARIOS=slow-consumer make bench
#   recovery     gateway only, native protocol: BENCH_RECOVERY_CLIENTS clients × BENCH_PER_CLIENT of
#                BENCH_SYMBOLS at BENCH_RECOVERY_RATE ticks/s for BENCH_RECOVERY_DURATION s, twice: with
#                BENCH_CHURN_FRACTION of the clients dropping their TCP connection every BENCH_CHURN_EVERY s
#                (away BENCH_CHURN_OFFLINE s) and reconnecting with `since` + `epoch`, and without churn.
#                Both publish through the ingestors' script (history stream; loadgen --history) and check
#                every seq (--track-seq). The table gives the exactly-once ratio (target 100 %), gaps,
#                duplicates, recovered:false, replay latency, and the steady clients' p99 with churn ÷
#                without (target ≤ 1.20). Alone: BENCH_SCENARIOS=recovery BENCH_SERVERS=gateway make bench
#   soak         gateway only: BENCH_SOAK_CLIENTS steady clients × BENCH_PER_CLIENT of BENCH_SYMBOLS at
#                BENCH_SOAK_RATE ticks/s, BENCH_SOAK_WARMUP s warm-up then BENCH_SOAK_DURATION s measured,
#                while BENCH_SOAK_TRANSIENT clients/s connect, subscribe (BENCH_PER_CLIENT symbols) and leave
#                (loadgen --transient-rate). The table gives the gateway's RSS and open files after warm-up and
#                at the end (target ± 10 %) and the steady clients' delivered % (target ≥ 99.9 %). Not in the
#                default list (5 minutes): BENCH_SCENARIOS=soak BENCH_SERVERS=gateway make bench
#
# Every server is started fresh for every case and stopped after it. The load
# generator (tools/loadgen), Redis and the server share the machine; the
# table says so. Results: $BENCH_OUT (default bench/results/<UTC time>/):
# one JSON report and log per case, summary.md and summary.json.
#
# Environment (defaults: the full suite, about 15 minutes; BENCH_QUICK=1: a 2-minute smoke):
#   BENCH_QUICK BENCH_RATES BENCH_CLIENTS BENCH_SYMBOLS BENCH_PER_CLIENT BENCH_WARMUP
#   BENCH_DURATION BENCH_CONN_CLIENTS BENCH_CONN_RATE BENCH_CONN_SYMBOLS BENCH_SERVERS
#   BENCH_SCENARIOS (fanout connections slow-consumer) BENCH_OUT BENCH_LOADGEN_THREADS
#   BENCH_SLOW_RATE BENCH_SLOW_CLIENTS BENCH_STALLED BENCH_SLOW_TIMEOUT_MS
#   BENCH_RECOVERY_CLIENTS BENCH_RECOVERY_RATE BENCH_RECOVERY_DURATION BENCH_CHURN_FRACTION
#   BENCH_CHURN_EVERY BENCH_CHURN_OFFLINE
#   BENCH_SOAK_CLIENTS BENCH_SOAK_RATE BENCH_SOAK_DURATION BENCH_SOAK_WARMUP BENCH_SOAK_TRANSIENT
#   BENCH_SERVERS (default: gateway gateway-sio gateway-batched baseline reference); baseline is the naive tokio-tungstenite fan-out server
#                      (bench/baseline/naive-fanout, built here with its own Cargo.lock into
#                      $CARGO_TARGET_DIR/baseline; native protocol; fanout and connections scenarios).
#                      With it in the run (and BENCH_RATES unset), the fan-out rates also include 500
#                      and 2000 ticks/s; the table sets each gateway row beside the baseline's: server CPU
#                      per delivered message and its ratio, delivered %, p50/p99/p99.9.
#   BENCH_BASELINE_BIN use this naive-fanout binary instead of building it
#   BENCH_GATEWAY_BIN  use this gateway binary instead of building target/release/gateway
#   BENCH_LOADGEN_BIN  likewise for loadgen
#   BENCH_WRITE_DELAY_MS  gateway.write_delay_ms of server "gateway-batched" (default 2): the native gateway with
#                      write batching on, in the fan-out scenario only, set beside the baseline like "gateway"
#   BENCH_GATEWAY_PROTOCOL  native (default, /ws) or socketio (/socket.io/) for server "gateway";
#                      server "gateway-sio" (BENCH_SERVERS="gateway gateway-sio reference") always speaks
#                      Socket.IO, the reference's protocol, for a like-for-like row
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
  d_rates="1000 5000"; d_clients=200; d_warmup=2; d_duration=5; d_conn=2000
  d_slow_rate=5000; d_slow_timeout=2000
  d_rec_clients=200; d_rec_duration=5; d_soak_duration=30; d_soak_warmup=5
else
  d_rates="1000 5000 10000 20000"; d_clients=1000; d_warmup=5; d_duration=20; d_conn=50000
  d_slow_rate=10000; d_slow_timeout=
  d_rec_clients=1000; d_rec_duration=30; d_soak_duration=300; d_soak_warmup=20
fi
RATES=${BENCH_RATES:-$d_rates}
CLIENTS=${BENCH_CLIENTS:-$d_clients}
SYMBOLS=${BENCH_SYMBOLS:-100}
PER_CLIENT=${BENCH_PER_CLIENT:-10}
WARMUP=${BENCH_WARMUP:-$d_warmup}
DURATION=${BENCH_DURATION:-$d_duration}
CONN_CLIENTS=${BENCH_CONN_CLIENTS:-$d_conn}
CONN_RATE=${BENCH_CONN_RATE:-100}
CONN_SYMBOLS=${BENCH_CONN_SYMBOLS:-100}
SERVERS=${BENCH_SERVERS:-gateway gateway-sio gateway-batched baseline reference}
WRITE_DELAY_MS=${BENCH_WRITE_DELAY_MS:-2}
if [[ " $SERVERS " == *" baseline "* && -z "${BENCH_RATES:-}" ]]; then
  # The baseline is judged where it still keeps up, too.
  RATES=$(printf '%s\n' $RATES 500 2000 | sort -n -u | tr '\n' ' ')
fi
SCENARIOS=${BENCH_SCENARIOS:-fanout connections slow-consumer recovery}
SLOW_RATE=${BENCH_SLOW_RATE:-$d_slow_rate}
SLOW_CLIENTS=${BENCH_SLOW_CLIENTS:-$CLIENTS}
STALLED=${BENCH_STALLED:-1}
SLOW_TIMEOUT_MS=${BENCH_SLOW_TIMEOUT_MS-$d_slow_timeout}
RECOVERY_CLIENTS=${BENCH_RECOVERY_CLIENTS:-$d_rec_clients}
RECOVERY_RATE=${BENCH_RECOVERY_RATE:-5000}
RECOVERY_DURATION=${BENCH_RECOVERY_DURATION:-$d_rec_duration}
CHURN_FRACTION=${BENCH_CHURN_FRACTION:-0.1}
CHURN_EVERY=${BENCH_CHURN_EVERY:-1}
CHURN_OFFLINE=${BENCH_CHURN_OFFLINE:-0.25}
SOAK_CLIENTS=${BENCH_SOAK_CLIENTS:-1000}
SOAK_RATE=${BENCH_SOAK_RATE:-5000}
SOAK_DURATION=${BENCH_SOAK_DURATION:-$d_soak_duration}
SOAK_WARMUP=${BENCH_SOAK_WARMUP:-$d_soak_warmup}
SOAK_TRANSIENT=${BENCH_SOAK_TRANSIENT:-100}
THREADS=${BENCH_LOADGEN_THREADS:-2}
OUT=${BENCH_OUT:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
GATEWAY_PROTOCOL=${BENCH_GATEWAY_PROTOCOL:-native}

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# --- file descriptors: every connection is one fd in loadgen and one in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
# Notes for summary.md on how the connections scenario was run.
NOTES=()
# Gateway processes (and loadgen processes) of the connections scenario, and the reference's clients.
CONN_REPLICAS=1
CONN_REF_CLIENTS=$CONN_CLIENTS
if [[ "$FD_LIMIT" != unlimited ]] && (( CONN_CLIENTS + 1000 > FD_LIMIT )); then
  capped=$(( FD_LIMIT - 1000 ))
  # The kernel spreads connections over the replicas by hashing addresses, not evenly: 10 % spare each.
  per_replica=$(( capped * 9 / 10 ))
  CONN_REPLICAS=$(( (CONN_CLIENTS + per_replica - 1) / per_replica ))
  CONN_REF_CLIENTS=$capped
  printf 'bench: open-file limit is %s per process (raising it needs root with CAP_SYS_RESOURCE: ulimit -Hn); connections scenario: %s clients over %s gateway replicas sharing one port (SO_REUSEPORT) and %s loadgen processes; the reference (one Node process) is capped at %s clients\n' \
    "$FD_LIMIT" "$CONN_CLIENTS" "$CONN_REPLICAS" "$CONN_REPLICAS" "$capped" >&2
fi

# --- build (what is not given prebuilt)
GATEWAY=${BENCH_GATEWAY_BIN:-$TARGET_DIR/release/gateway}
LOADGEN=${BENCH_LOADGEN_BIN:-$TARGET_DIR/release/loadgen}
packages=()
[[ -n "${BENCH_GATEWAY_BIN:-}" ]] || packages+=(-p gateway)
[[ -n "${BENCH_LOADGEN_BIN:-}" ]] || packages+=(-p loadgen)
if (( ${#packages[@]} > 0 )); then
  log "cargo build --release ${packages[*]}"
  cargo build --release "${packages[@]}"
fi
[[ -x "$LOADGEN" ]] || die "no loadgen binary at $LOADGEN"
[[ -x "$GATEWAY" ]] || die "no gateway binary at $GATEWAY"
BASELINE=${BENCH_BASELINE_BIN:-$TARGET_DIR/baseline/release/naive-fanout}
if [[ " $SERVERS " == *" baseline "* ]]; then
  if [[ -z "${BENCH_BASELINE_BIN:-}" ]]; then
    # Its own workspace and lock file: the main workspace never builds it.
    log "cargo build --release --locked (bench/baseline/naive-fanout)"
    cargo build --release --locked --manifest-path bench/baseline/naive-fanout/Cargo.toml \
      --target-dir "$TARGET_DIR/baseline"
  fi
  [[ -x "$BASELINE" ]] || die "no naive-fanout binary at $BASELINE"
fi

if [[ " $SERVERS " == *" reference "* && ( " $SCENARIOS " == *" fanout "* || " $SCENARIOS " == *" connections "* ) ]]; then
  command -v node >/dev/null || die "node (>= 18) is needed for the reference server: apt-get install nodejs npm"
  if [[ ! -d bench/reference/node_modules || bench/reference/package-lock.json -nt bench/reference/node_modules ]]; then
    log "npm ci (bench/reference)"
    (cd bench/reference && npm ci --no-audit --no-fund --loglevel=error)
    touch bench/reference/node_modules
  fi
fi

# shellcheck source=scripts/bench-common.sh
source "$ROOT/scripts/bench-common.sh"
start_redis "$OUT"

SERVER_PID=
SERVER_PIDS=() # every process of the server under test (gateway replicas)
SERVER_URL=
SERVER_PROTOCOL=
SERVER_HTTP=
SERVER_ENV=() # extra NAME=VALUE settings for the next gateway started
CASE_ARGS=()  # extra loadgen run options for the next case
CASE_TAG=     # appended to the next case's file names
CASE_DURATION= # measured seconds of the next case, if not BENCH_DURATION
CASE_WARMUP=   # warm-up seconds of the next case, if not BENCH_WARMUP
REPLICAS=1    # gateway processes sharing the port (SO_REUSEPORT) for the next server started
start_server() { # NAME LOGFILE
  local name=$1 logfile=$2 port r
  port=$(free_port)
  SERVER_HTTP=http://127.0.0.1:$port
  SERVER_PIDS=()
  case $name in
    gateway|gateway-sio|gateway-batched)
      local extra=()
      [[ $name != gateway-batched ]] || extra=("TICKSTREAM_GATEWAY__WRITE_DELAY_MS=$WRITE_DELAY_MS")
      if (( REPLICAS > 1 )); then
        command -v ss >/dev/null || die "ss (iproute2) is needed to see the gateway replicas listening"
        # One port, REPLICAS processes: each binds it with SO_REUSEPORT, and the kernel spreads new
        # connections over them. Started one by one; each must be listening before the next.
        for (( r = 1; r <= REPLICAS; r++ )); do
          env REDIS_URL="$REDIS_URL" HOST=127.0.0.1 PORT="$port" LOG_LEVEL=warn LOG_FORMAT=json \
            TICKSTREAM_GATEWAY__REUSE_PORT=true \
            ${SERVER_ENV[@]+"${SERVER_ENV[@]}"} ${extra[@]+"${extra[@]}"} "$GATEWAY" >"${logfile%.log}.$r.log" 2>&1 &
          SERVER_PIDS+=("$!")
          PIDS+=("$!")
          wait_for "gateway replica $r of $REPLICAS listening on $port" listeners_at_least "$port" "$r"
        done
      else
        env REDIS_URL="$REDIS_URL" HOST=127.0.0.1 PORT="$port" LOG_LEVEL=warn LOG_FORMAT=json \
          ${SERVER_ENV[@]+"${SERVER_ENV[@]}"} ${extra[@]+"${extra[@]}"} "$GATEWAY" >"$logfile" 2>&1 &
      fi
      if [[ $name == gateway-sio || $GATEWAY_PROTOCOL == socketio ]]; then
        SERVER_URL="ws://127.0.0.1:$port/socket.io/?EIO=4&transport=websocket"
        SERVER_PROTOCOL=socketio
      else
        SERVER_URL=ws://127.0.0.1:$port/ws
        SERVER_PROTOCOL=native
      fi ;;
    reference)
      REDIS_URL=$REDIS_URL HOST=127.0.0.1 PORT=$port \
        node bench/reference/server.js >"$logfile" 2>&1 &
      SERVER_URL="ws://127.0.0.1:$port/socket.io/?EIO=4&transport=websocket"
      SERVER_PROTOCOL=socketio ;;
    baseline)
      # naive-fanout PORT REDIS_URL: listens on 127.0.0.1, any path; native protocol; no /health.
      "$BASELINE" "$port" "$REDIS_URL" >"$logfile" 2>&1 &
      SERVER_URL=ws://127.0.0.1:$port/ws
      SERVER_PROTOCOL=native ;;
    *) die "unknown server $name (gateway, gateway-sio, gateway-batched, reference or baseline)" ;;
  esac
  if (( ${#SERVER_PIDS[@]} == 0 )); then
    SERVER_PIDS=("$!")
    PIDS+=("$!")
  fi
  SERVER_PID=${SERVER_PIDS[0]}
  if [[ $name == baseline ]]; then
    wait_for "$name listening on $port" port_open "$port"
    # Its Redis PSUBSCRIBE is made right after start; give it a moment (it logs when done).
    wait_for "$name subscribed to Redis" grep -q 'psubscribed' "$logfile"
  else
    wait_for "$name /health on $port" curl -sf --noproxy '*' "http://127.0.0.1:$port/health"
  fi
  for pid in "${SERVER_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || die "$name process $pid exited at start; see $logfile"
  done
}

# Whether something accepts TCP connections on 127.0.0.1:PORT.
port_open() { # PORT
  if command -v ss >/dev/null; then
    listeners_at_least "$1" 1
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# Whether at least N sockets listen on PORT (SO_REUSEPORT replicas each have their own).
listeners_at_least() { # PORT N
  (( $(ss -Hltn "sport = :$1" | wc -l) >= $2 ))
}

stop_server() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${SERVER_PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

run_case() { # SCENARIO SERVER CLIENTS PER_CLIENT SYMBOLS RATE [STALLED]
  local scenario=$1 server=$2 clients=$3 per_client=$4 symbols=$5 rate=$6 stalled=${7:-0}
  local label=$server name=$scenario-$server
  # REPLICAS gateway processes are one server in the report (gateway×3), and loadgen as many processes.
  if (( REPLICAS > 1 )); then label+="×$REPLICAS"; name+="-x$REPLICAS"; fi
  name+=-$clients-$rate
  (( stalled == 0 )) || name+=-stalled$stalled
  [[ -z "$CASE_TAG" ]] || name+=-$CASE_TAG
  # ~28k ephemeral ports per address, and the previous case's ports linger in TIME_WAIT.
  local source_ips=$(( clients / 5000 + 1 ))
  log "$scenario: $label, $clients clients × $per_client of $symbols symbols, $rate ticks/s, $stalled stalled"
  start_server "$server" "$OUT/$name.server.log"
  local server_pids
  server_pids=$(IFS=,; echo "${SERVER_PIDS[*]}")
  # Rate 0: nothing is published (the idle case measures what connected clients alone cost).
  local publish=()
  (( rate == 0 )) || publish=(--redis-url "$REDIS_URL" --rate "$rate")
  "$LOADGEN" --threads "$THREADS" run \
    --url "$SERVER_URL" --protocol "$SERVER_PROTOCOL" \
    "${publish[@]}" \
    --clients "$clients" --symbols "$symbols" --per-client "$per_client" \
    --warmup "${CASE_WARMUP:-$WARMUP}" --duration "${CASE_DURATION:-$DURATION}" \
    --source-ips "$source_ips" --connect-concurrency 500 --shards "$REPLICAS" \
    --scenario "$scenario" --server "$label" \
    --watch "server=$server_pids" --watch "redis=$REDIS_PID" --stalled "$stalled" \
    ${CASE_ARGS[@]+"${CASE_ARGS[@]}"} \
    --json "$OUT/$name.json" 2>&1 | tee "$OUT/$name.log" >&2 || true
  # The server's own view (slow-consumer disconnects, conflated ticks), kept beside the report;
  # with replicas, that of whichever one the kernel hands this request to.
  # (The baseline has no HTTP endpoint.)
  [[ $server == baseline ]] || {
    (( REPLICAS == 1 )) || echo "# one of $REPLICAS gateway replicas (pids $server_pids)"
    curl -s --noproxy '*' --max-time 5 "$SERVER_HTTP/metrics" 2>/dev/null || true
  } >"$OUT/$name.metrics.txt"
  stop_server
}

for scenario in $SCENARIOS; do
  case $scenario in
    fanout)
      for rate in $RATES; do
        for server in $SERVERS; do
          run_case fanout "$server" "$CLIENTS" "$PER_CLIENT" "$SYMBOLS" "$rate"
        done
      done ;;
    connections)
      for server in $SERVERS; do
        case $server in
          gateway-batched) continue ;;  # write batching changes nothing for mostly idle connections
          gateway|gateway-sio)
            REPLICAS=$CONN_REPLICAS
            if (( REPLICAS > 1 )); then
              NOTES+=("connections, $server×$REPLICAS: $REPLICAS $server processes sharing one port with SO_REUSEPORT (gateway.reuse_port), each under the open-file limit of $FD_LIMIT; server CPU % and RSS are summed over them; loadgen ran its clients in $REPLICAS processes (--shards $REPLICAS).")
            fi
            run_case connections "$server" "$CONN_CLIENTS" 1 "$CONN_SYMBOLS" "$CONN_RATE"
            if [[ $server == gateway ]]; then
              # The same clients with nothing published: the gateway's idle CPU (pings and timers only).
              run_case connections-idle "$server" "$CONN_CLIENTS" 1 "$CONN_SYMBOLS" 0
            fi
            REPLICAS=1 ;;
          *)
            if (( CONN_REF_CLIENTS < CONN_CLIENTS )); then
              printf 'bench: connections, %s: one process cannot hold more than the open-file limit of %s and cannot share its port like the gateway replicas; capped at %s clients instead of %s\n' \
                "$server" "$FD_LIMIT" "$CONN_REF_CLIENTS" "$CONN_CLIENTS" >&2
              NOTES+=("connections, $server: capped at $CONN_REF_CLIENTS clients instead of $CONN_CLIENTS (one process, open-file limit $FD_LIMIT); not comparable with the gateway row.")
            fi
            run_case connections "$server" "$CONN_REF_CLIENTS" 1 "$CONN_SYMBOLS" "$CONN_RATE" ;;
        esac
      done ;;
    slow-consumer)
      # Gateway only (the reference has no slow-consumer handling to measure); same settings for both runs.
      SERVER_ENV=()
      [[ -z "$SLOW_TIMEOUT_MS" ]] || SERVER_ENV+=("TICKSTREAM_GATEWAY__SLOW_CONSUMER_TIMEOUT_MS=$SLOW_TIMEOUT_MS")
      run_case slow-consumer gateway "$SLOW_CLIENTS" "$PER_CLIENT" "$SYMBOLS" "$SLOW_RATE" 0
      run_case slow-consumer gateway "$SLOW_CLIENTS" "$PER_CLIENT" "$SYMBOLS" "$SLOW_RATE" "$STALLED"
      SERVER_ENV=() ;;
    recovery)
      if [[ " $SERVERS " != *" gateway "* ]]; then
        log "recovery: skipped (it runs against server gateway, not in BENCH_SERVERS)"
        continue
      fi
      # Gateway only, native protocol (the seq checks read native frames; Socket.IO is not covered).
      saved_protocol=$GATEWAY_PROTOCOL
      GATEWAY_PROTOCOL=native
      CASE_DURATION=$RECOVERY_DURATION
      CASE_ARGS=(--history --track-seq --churn-fraction "$CHURN_FRACTION" --churn-every "$CHURN_EVERY"
        --churn-offline "$CHURN_OFFLINE")
      CASE_TAG=churn$CHURN_FRACTION
      run_case recovery gateway "$RECOVERY_CLIENTS" "$PER_CLIENT" "$SYMBOLS" "$RECOVERY_RATE"
      CASE_ARGS=(--history --track-seq)
      CASE_TAG=nochurn
      run_case recovery gateway "$RECOVERY_CLIENTS" "$PER_CLIENT" "$SYMBOLS" "$RECOVERY_RATE"
      CASE_ARGS=(); CASE_TAG=; CASE_DURATION=
      GATEWAY_PROTOCOL=$saved_protocol ;;
    soak)
      if [[ " $SERVERS " != *" gateway "* ]]; then
        log "soak: skipped (it runs against server gateway, not in BENCH_SERVERS)"
        continue
      fi
      CASE_DURATION=$SOAK_DURATION
      CASE_WARMUP=$SOAK_WARMUP
      CASE_ARGS=(--transient-rate "$SOAK_TRANSIENT")
      CASE_TAG=transient$SOAK_TRANSIENT
      run_case soak gateway "$SOAK_CLIENTS" "$PER_CLIENT" "$SYMBOLS" "$SOAK_RATE"
      CASE_ARGS=(); CASE_TAG=; CASE_DURATION=; CASE_WARMUP= ;;
    *) die "unknown scenario $scenario (fanout, connections, slow-consumer, recovery or soak)" ;;
  esac
done

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//' || echo unknown CPU)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)
machine="$(nproc) cores ($cpu), $mem RAM, Linux $(uname -r); loadgen $THREADS threads"
log "summary"
reports=()
for f in "$OUT"/*.json; do
  [[ $(basename "$f") == summary.json ]] || reports+=("$f")
done
(( ${#reports[@]} > 0 )) || die "no case produced a report; see the logs in $OUT"
"$LOADGEN" report "${reports[@]}" --reference reference \
  --machine "$machine" --markdown "$OUT/summary.md" --json "$OUT/summary.json"
{
  if (( ${#NOTES[@]} > 0 )); then
    echo
    for note in "${NOTES[@]}"; do echo "- $note"; done
  fi
  echo
  echo "Command: $(env | grep -E '^BENCH_' | sort | tr '\n' ' ')scripts/bench.sh"
} >>"$OUT/summary.md"
cat "$OUT/summary.md"
echo "Results in $OUT" >&2
