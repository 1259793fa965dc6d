#!/usr/bin/env bash
# Scale-out, publish side (part of `make bench`): the same offered tick load on
# one Redis and on a Redis Cluster of 3 masters + 3 replicas (sharded pub/sub).
#
# For each deployment: ingest-sim publishes BENCH_SCALEOUT_RATE ticks/s
# (default 20,000) over BENCH_SCALEOUT_SYMBOLS symbols (default 1,000; trades
# off), runs BENCH_SCALEOUT_WARMUP s (default 5), then is measured for
# BENCH_SCALEOUT_DURATION s (default 20):
#   - ticks Redis accepted per second (ingest-sim's published counter);
#   - CPU of ingest-sim and of every Redis process (% of one core, from /proc/PID/stat),
#     which gives the cost per published tick on one Redis and per master/replica.
# On a 2-core machine absolute scaling is capped; the per-shard cost is what carries
# over to more machines (docs/scale-out.md turns it into a paper estimate).
# Writes bench/results/<UTC time>-scaleout/summary.md (or $BENCH_OUT).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
  d_rate=2000; d_symbols=100; d_warmup=2; d_duration=5
else
  d_rate=20000; d_symbols=1000; d_warmup=5; d_duration=20
fi
RATE=${BENCH_SCALEOUT_RATE:-$d_rate}
SYMBOLS=${BENCH_SCALEOUT_SYMBOLS:-$d_symbols}
WARMUP=${BENCH_SCALEOUT_WARMUP:-$d_warmup}
DURATION=${BENCH_SCALEOUT_DURATION:-$d_duration}
OUT=${BENCH_OUT:-bench/results/$(date -u +%Y%m%dT%H%MZ)-scaleout}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'bench-scaleout: %s\n' "$*" >&2; exit 1; }

if [[ -z "${BENCH_SIM_BIN:-}" ]]; then
  log "cargo build --release -p ingest-sim"
  cargo build --release -p ingest-sim
fi
SIM=${BENCH_SIM_BIN:-$TARGET_DIR/release/ingest-sim}
[[ -x "$SIM" ]] || die "no binary at $SIM"

# shellcheck source=scripts/bench-common.sh
source "$ROOT/scripts/bench-common.sh"
WAIT_FOR_SECS=60

metric() { # URL NAME_PREFIX
  curl -sf --noproxy '*' "$1" | awk -v n="$2" 'index($0, n) == 1 { print $NF; exit }'
}
cpu_seconds() { # PID
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
symbols=$(seq -f 'SO%04g' 1 "$SYMBOLS" | paste -sd, -)

# Starts ingest-sim with the extra env given, measures, prints one summary row and stops it.
# Redis processes to sample: the global arrays NODE_PIDS / NODE_ROLES.
measure() { # LABEL ENV...
  local label=$1; shift
  local port pid pub0 pub1 cpu0 cpu1 t0 t1 i
  port=$(free_port)
  env "$@" HOST=127.0.0.1 PORT="$port" LOG_LEVEL=warn SYMBOLS="$symbols" \
    TICKSTREAM_SIM__RATE="$RATE" TICKSTREAM_SIM__TRADES=false TICKSTREAM_SIM__SEED=7 \
    "$SIM" >"$OUT/sim-$label.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_for "ingest-sim /health ($label)" curl -sf --noproxy '*' "http://127.0.0.1:$port/health"
  sleep "$WARMUP"
  local -a n0=()
  for i in "${!NODE_PIDS[@]}"; do n0[i]=$(cpu_seconds "${NODE_PIDS[i]}"); done
  pub0=$(metric "http://127.0.0.1:$port/metrics" tickstream_ingest_ticks_published_total)
  cpu0=$(cpu_seconds "$pid")
  t0=$(date +%s.%N)
  sleep "$DURATION"
  pub1=$(metric "http://127.0.0.1:$port/metrics" tickstream_ingest_ticks_published_total)
  cpu1=$(cpu_seconds "$pid")
  t1=$(date +%s.%N)
  local masters="" replicas=""
  for i in "${!NODE_PIDS[@]}"; do
    local pct
    pct=$(awk -v a="${n0[i]}" -v b="$(cpu_seconds "${NODE_PIDS[i]}")" -v t0="$t0" -v t1="$t1" \
      'BEGIN { printf "%.0f", 100 * (b - a) / (t1 - t0) }')
    if [[ "${NODE_ROLES[i]}" == replica ]]; then replicas+="${replicas:+ / }$pct %"; else masters+="${masters:+ / }$pct %"; fi
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  awk -v l="$label" -v p0="$pub0" -v p1="$pub1" -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" \
    -v rate="$RATE" -v m="$masters" -v r="${replicas:--}" 'BEGIN {
    secs = t1 - t0; pub = (p1 - p0) / secs;
    printf "| %s | %d | %.0f | %.0f %% | %s | %s |\n", l, rate, pub, 100 * (c1 - c0) / secs, m, r
  }'
}

log "one Redis"
start_redis "$OUT"
NODE_PIDS=("$REDIS_PID"); NODE_ROLES=(master)
row_single=$(measure one-redis REDIS_URL="$REDIS_URL")
kill "$REDIS_PID" 2>/dev/null || true

log "Redis Cluster: 3 masters + 3 replicas"
NODE_PIDS=(); NODE_ROLES=(); ports=()
for n in 1 2 3 4 5 6; do
  p=$(free_port); b=$(free_port)
  mkdir -p "$OUT/cluster/node$n"
  redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-port "$b" \
    --cluster-config-file nodes.conf --cluster-node-timeout 5000 --save "" --appendonly no \
    --repl-diskless-sync-delay 0 --dir "$OUT/cluster/node$n" >"$OUT/cluster/node$n/redis.log" 2>&1 &
  PIDS+=("$!"); NODE_PIDS+=("$!"); ports+=("$p")
  wait_for "cluster node on $p" redis-cli -p "$p" ping
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 1 --cluster-yes \
  >"$OUT/cluster/create.log" 2>&1 || die "redis-cli --cluster create failed; see $OUT/cluster/create.log"
for p in "${ports[@]}"; do
  wait_for "cluster_state:ok on $p" bash -c "redis-cli -p $p cluster info | grep -q cluster_state:ok"
done
for p in "${ports[@]}"; do
  if redis-cli -p "$p" role | head -1 | grep -q master; then NODE_ROLES+=(master); else NODE_ROLES+=(replica); fi
done
seeds=$(printf '127.0.0.1:%s,' "${ports[@]:0:3}"); seeds=${seeds%,}
row_cluster=$(measure cluster-3x2 REDIS_CLUSTER_NODES="$seeds")

{
  echo "# Scale-out, publish side ($(date -u +%FT%TZ))"
  echo
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')); ingest-sim and every Redis process share the machine; $SYMBOLS symbols, trades off, ${DURATION} s measured after ${WARMUP} s. CPU: % of one core."
  echo
  echo "| deployment | offered ticks/s | accepted ticks/s | ingest-sim CPU | Redis CPU per master | Redis CPU per replica |"
  echo "|---|---:|---:|---:|---|---|"
  echo "$row_single"
  echo "$row_cluster"
  echo
  echo "Command: BENCH_SCALEOUT_RATE=$RATE BENCH_SCALEOUT_SYMBOLS=$SYMBOLS BENCH_SCALEOUT_DURATION=$DURATION scripts/bench-scaleout.sh"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
