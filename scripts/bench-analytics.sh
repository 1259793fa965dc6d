#!/usr/bin/env bash
# Analytics throughput (part of `make bench`): can the analytics service keep up
# with ingest-sim at BENCH_ANALYTICS_RATE ticks/s (default 50,000) over
# BENCH_ANALYTICS_SYMBOLS symbols (default 1,000), and what does it cost?
#
# Starts a private redis-server, ingest-sim and the analytics service (release
# builds), lets them run BENCH_ANALYTICS_WARMUP s (default 10), then measures
# for BENCH_ANALYTICS_DURATION s (default 30):
#   - ticks published by the sim and inputs taken by analytics per second
#     (their ratio is "kept up": 100 % means every tick was processed);
#   - analytics CPU (% of one core, from /proc/PID/stat) and RSS, and RSS per symbol;
#   - lag: the Redis output buffer of analytics' pub/sub connection at the end
#     (CLIENT LIST omem): ~0 when it keeps up, growing when it falls behind.
# Writes bench/results/<UTC time>-analytics/summary.md (or $BENCH_OUT).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# BENCH_QUICK=1 (as for scripts/bench.sh): a short smoke at a tenth of the load.
if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
  d_rate=5000; d_symbols=100; d_warmup=3; d_duration=5
else
  d_rate=50000; d_symbols=1000; d_warmup=10; d_duration=30
fi
RATE=${BENCH_ANALYTICS_RATE:-$d_rate}
SYMBOLS=${BENCH_ANALYTICS_SYMBOLS:-$d_symbols}
WARMUP=${BENCH_ANALYTICS_WARMUP:-$d_warmup}
DURATION=${BENCH_ANALYTICS_DURATION:-$d_duration}
OUT=${BENCH_OUT:-bench/results/$(date -u +%Y%m%dT%H%MZ)-analytics}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench-analytics: %s\n' "$*" >&2; exit 1; }

if [[ -z "${BENCH_SIM_BIN:-}" || -z "${BENCH_ANALYTICS_BIN:-}" ]]; then
  log "cargo build --release -p ingest-sim -p analytics"
  cargo build --release -p ingest-sim -p analytics
fi
SIM=${BENCH_SIM_BIN:-$TARGET_DIR/release/ingest-sim}
ANALYTICS=${BENCH_ANALYTICS_BIN:-$TARGET_DIR/release/analytics}
[[ -x "$SIM" && -x "$ANALYTICS" ]] || die "no binaries at $SIM / $ANALYTICS"

# shellcheck source=scripts/bench-common.sh
source "$ROOT/scripts/bench-common.sh"
WAIT_FOR_SECS=30

# The value of one Prometheus series (first match) from a /metrics URL.
metric() { # URL NAME_PREFIX
  curl -sf --noproxy '*' "$1" | awk -v n="$2" 'index($0, n) == 1 { print $NF; exit }'
}

# CPU-seconds (user + system) of a process.
cpu_seconds() { # PID
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

rss_kib() { # PID
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

start_redis "$OUT"

symbols=$(seq -f 'AN%04g' 1 "$SYMBOLS" | paste -sd, -)
SIM_PORT=$(free_port)
log "ingest-sim: $SYMBOLS symbols at $RATE ticks/s"
env REDIS_URL="$REDIS_URL" HOST=127.0.0.1 PORT="$SIM_PORT" LOG_LEVEL=warn SYMBOLS="$symbols" \
  TICKSTREAM_SIM__RATE="$RATE" TICKSTREAM_SIM__SEED=7 "$SIM" >"$OUT/sim.log" 2>&1 &
SIM_PID=$!
PIDS+=("$SIM_PID")
wait_for "ingest-sim /health" curl -sf --noproxy '*' "http://127.0.0.1:$SIM_PORT/health"

AN_PORT=$(free_port)
log "analytics: every symbol the sim announces"
env REDIS_URL="$REDIS_URL" HOST=127.0.0.1 PORT="$AN_PORT" LOG_LEVEL=warn \
  TICKSTREAM_ANALYTICS__UNIVERSE_REFRESH_MS=1000 "$ANALYTICS" >"$OUT/analytics.log" 2>&1 &
AN_PID=$!
PIDS+=("$AN_PID")
wait_for "analytics /health" curl -sf --noproxy '*' "http://127.0.0.1:$AN_PORT/health"
wait_for "analytics following $SYMBOLS symbols" \
  bash -c "[[ \$(curl -sf --noproxy '*' http://127.0.0.1:$AN_PORT/metrics | awk '/^tickstream_analytics_symbols / {print \$2}') -ge $SYMBOLS ]]"

sleep "$WARMUP"
pub0=$(metric "http://127.0.0.1:$SIM_PORT/metrics" tickstream_ingest_ticks_published_total)
in0=$(metric "http://127.0.0.1:$AN_PORT/metrics" 'tickstream_analytics_inputs_total{kind="tick"')
cpu0=$(cpu_seconds "$AN_PID")
t0=$(date +%s.%N)
sleep "$DURATION"
pub1=$(metric "http://127.0.0.1:$SIM_PORT/metrics" tickstream_ingest_ticks_published_total)
in1=$(metric "http://127.0.0.1:$AN_PORT/metrics" 'tickstream_analytics_inputs_total{kind="tick"')
cpu1=$(cpu_seconds "$AN_PID")
t1=$(date +%s.%N)
rss=$(rss_kib "$AN_PID")
# The analytics subscriber is the connection in pub/sub mode (psub/sub > 0); omem is what waits for it.
omem=$(redis-cli -p "$REDIS_PORT" client list | awk '/ (sub|psub)=[1-9]/ { for (i = 1; i <= NF; i++) if ($i ~ /^omem=/) { sub("omem=", "", $i); print $i; exit } }')
kill -0 "$AN_PID" 2>/dev/null || die "analytics exited during the run; see $OUT/analytics.log"

summary=$(awk -v p0="$pub0" -v p1="$pub1" -v i0="$in0" -v i1="$in1" -v c0="$cpu0" -v c1="$cpu1" \
  -v t0="$t0" -v t1="$t1" -v rss="$rss" -v n="$SYMBOLS" -v om="${omem:-0}" -v rate="$RATE" 'BEGIN {
  secs = t1 - t0; pub = (p1 - p0) / secs; inp = (i1 - i0) / secs;
  printf "| %d | %d | %.0f | %.0f | %.1f %% | %.0f %% | %.1f MiB | %.1f KiB | %d B |\n",
    n, rate, pub, inp, (pub > 0 ? 100 * inp / pub : 0), 100 * (c1 - c0) / secs, rss / 1024, rss / n, om
}')
{
  echo "# Analytics throughput ($(date -u +%FT%TZ))"
  echo
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')); ingest-sim, Redis and analytics share the machine; ${DURATION} s measured after ${WARMUP} s."
  echo
  echo "| symbols | sim rate set | ticks published/s | analytics inputs/s | kept up | analytics CPU (one core = 100 %) | analytics RSS | RSS per symbol | subscriber backlog in Redis |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  echo "$summary"
  echo
  echo "Command: BENCH_ANALYTICS_RATE=$RATE BENCH_ANALYTICS_SYMBOLS=$SYMBOLS BENCH_ANALYTICS_DURATION=$DURATION scripts/bench-analytics.sh"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
