#!/usr/bin/env bash
# Scale-out (part of `make bench`): the same offered load on one Redis and on a
# Redis Cluster of 3 masters + 3 replicas (sharded pub/sub), publish side and
# gateway side.
#
# Publish side, for each deployment: ingest-sim publishes BENCH_SCALEOUT_RATE ticks/s
# (default 20,000) over BENCH_SCALEOUT_SYMBOLS symbols (default 1,000; trades
# off), runs BENCH_SCALEOUT_WARMUP s (default 5), then is measured for
# BENCH_SCALEOUT_DURATION s (default 20):
#   - ticks Redis accepted per second (ingest-sim's published counter);
#   - CPU of ingest-sim and of every Redis process (% of one core, from /proc/PID/stat),
#     which gives the cost per published tick on one Redis and per master/replica.
# Gateway side, for each deployment: 1 and then 2 gateway processes sharing one port
# (gateway.reuse_port; the kernel spreads the clients over them), BENCH_SCALEOUT_CLIENTS
# native clients (default 1,000) × 10 of 100 symbols, loadgen publishing
# BENCH_SCALEOUT_GW_RATE ticks/s (default 2,000) through the ingestors' atomic script
# (SPUBLISH on the cluster; the same script with PUBLISH on one Redis, `--history`):
# deliveries/s, delivered %, p99, and CPU of each gateway, each Redis process and loadgen.
# On a 2-core machine absolute scaling is capped; the per-shard and per-gateway costs are
# what carry over to more machines (docs/scale-out.md turns them into a paper estimate).
# Writes bench/results/<UTC time>-scaleout/summary.md (or $BENCH_OUT).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
  d_rate=2000; d_symbols=100; d_warmup=2; d_duration=5; d_clients=200; d_gw_rate=500
else
  d_rate=20000; d_symbols=1000; d_warmup=5; d_duration=20; d_clients=1000; d_gw_rate=2000
fi
GW_CLIENTS=${BENCH_SCALEOUT_CLIENTS:-$d_clients}
GW_RATE=${BENCH_SCALEOUT_GW_RATE:-$d_gw_rate}
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

packages=()
[[ -n "${BENCH_SIM_BIN:-}" ]] || packages+=(-p ingest-sim)
[[ -n "${BENCH_GATEWAY_BIN:-}" ]] || packages+=(-p gateway)
[[ -n "${BENCH_LOADGEN_BIN:-}" ]] || packages+=(-p loadgen)
if (( ${#packages[@]} > 0 )); then
  log "cargo build --release ${packages[*]}"
  cargo build --release "${packages[@]}"
fi
SIM=${BENCH_SIM_BIN:-$TARGET_DIR/release/ingest-sim}
GATEWAY=${BENCH_GATEWAY_BIN:-$TARGET_DIR/release/gateway}
LOADGEN=${BENCH_LOADGEN_BIN:-$TARGET_DIR/release/loadgen}
for bin in "$SIM" "$GATEWAY" "$LOADGEN"; do [[ -x "$bin" ]] || die "no binary at $bin"; done
command -v ss >/dev/null || die "ss (iproute2) is needed to see the gateway processes listening"
command -v python3 >/dev/null || die "python3 is needed to read loadgen's JSON reports"

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

# Starts N gateways on one port (SO_REUSEPORT) with the Redis env given, runs loadgen's clients
# and publisher against them, appends one summary row to $OUT/gateway-rows.md and stops them.
# Redis processes to sample: NODE_PIDS / NODE_ROLES; loadgen publishes with PUBLISH_ARGS.
gateway_case() { # LABEL N ENV...
  local label=$1 n=$2; shift 2
  local port pids=() r name
  name=gw-$label-x$n
  port=$(free_port)
  for (( r = 1; r <= n; r++ )); do
    env "$@" HOST=127.0.0.1 PORT="$port" LOG_LEVEL=warn LOG_FORMAT=json \
      TICKSTREAM_GATEWAY__REUSE_PORT=true "$GATEWAY" >"$OUT/$name.$r.log" 2>&1 &
    pids+=("$!"); PIDS+=("$!")
    wait_for "gateway $r of $n listening on $port" \
      bash -c "(( \$(ss -Hltn 'sport = :$port' | wc -l) >= $r ))"
  done
  wait_for "gateway /health on $port" curl -sf --noproxy '*' "http://127.0.0.1:$port/health"
  local watch=() i
  for (( r = 0; r < n; r++ )); do watch+=(--watch "gateway$((r + 1))=${pids[r]}"); done
  for i in "${!NODE_PIDS[@]}"; do watch+=(--watch "redis-${NODE_ROLES[i]}$((i + 1))=${NODE_PIDS[i]}"); done
  "$LOADGEN" run --url "ws://127.0.0.1:$port/ws" --protocol native "${PUBLISH_ARGS[@]}" \
    --rate "$GW_RATE" --clients "$GW_CLIENTS" --symbols 100 --per-client 10 \
    --warmup "$WARMUP" --duration "$DURATION" --connect-concurrency 500 \
    --scenario scaleout --server "$label×$n" "${watch[@]}" \
    --json "$OUT/$name.json" >"$OUT/$name.loadgen.log" 2>&1 \
    || die "loadgen failed; see $OUT/$name.loadgen.log"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  python3 - "$OUT/$name.json" "$label" "$n" >>"$OUT/gateway-rows.md" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
procs = {p["name"]: p["cpu_percent"] for p in r["processes"]}
gw = [v for k, v in procs.items() if k.startswith("gateway")]
masters = [v for k, v in procs.items() if k.startswith("redis-master")]
replicas = [v for k, v in procs.items() if k.startswith("redis-replica")]
fmt = lambda xs: " / ".join(f"{x:.0f} %" for x in xs) or "–"
per_delivery = sum(gw) / 100 / r["delivered_per_sec"] * 1e6 if r["delivered_per_sec"] else float("nan")
print(f"| {sys.argv[2]} | {sys.argv[3]} | {r['published_per_sec']:.0f} | {r['delivered_per_sec']:,.0f} "
      f"| {100 * r['delivered_ratio']:.2f} % | {r['latency']['p99_ms']:.2f} ms | {fmt(gw)} | {per_delivery:.2f} µs "
      f"| {fmt(masters)} | {fmt(replicas)} | {procs.get('loadgen', float('nan')):.0f} % |")
PY
}

log "one Redis"
start_redis "$OUT"
NODE_PIDS=("$REDIS_PID"); NODE_ROLES=(master)
row_single=$(measure one-redis REDIS_URL="$REDIS_URL")
PUBLISH_ARGS=(--redis-url "$REDIS_URL" --history)
: >"$OUT/gateway-rows.md"
for n in 1 2; do
  log "one Redis: $n gateway(s)"
  gateway_case one-redis "$n" REDIS_URL="$REDIS_URL"
done
kill "$REDIS_PID" 2>/dev/null || true

log "Redis Cluster: 3 masters + 3 replicas"
NODE_PIDS=(); NODE_ROLES=(); ports=()
# The nodes' nodes.conf and replication dumps are scratch; only their logs go with the results.
CLUSTER_DATA=$(mktemp -d)
trap 'cleanup; rm -rf "$CLUSTER_DATA"' EXIT
for n in 1 2 3 4 5 6; do
  p=$(free_port); b=$(free_port)
  mkdir -p "$OUT/cluster/node$n" "$CLUSTER_DATA/node$n"
  redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-port "$b" \
    --cluster-config-file nodes.conf --cluster-node-timeout 5000 --save "" --appendonly no \
    --repl-diskless-sync-delay 0 --dir "$CLUSTER_DATA/node$n" >"$OUT/cluster/node$n/redis.log" 2>&1 &
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
PUBLISH_ARGS=(--redis-cluster-nodes "$seeds")
for n in 1 2; do
  log "Redis Cluster: $n gateway(s)"
  gateway_case cluster-3x2 "$n" REDIS_CLUSTER_NODES="$seeds"
done

{
  echo "# Scale-out ($(date -u +%FT%TZ))"
  echo
  echo "## Publish side"
  echo
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')); ingest-sim and every Redis process share the machine; $SYMBOLS symbols, trades off, ${DURATION} s measured after ${WARMUP} s. CPU: % of one core."
  echo
  echo "| deployment | offered ticks/s | accepted ticks/s | ingest-sim CPU | Redis CPU per master | Redis CPU per replica |"
  echo "|---|---:|---:|---:|---|---|"
  echo "$row_single"
  echo "$row_cluster"
  echo
  echo
  echo "## Gateway side"
  echo
  echo "$GW_CLIENTS native clients × 10 of 100 symbols spread by the kernel over the gateways (one port, SO_REUSEPORT); loadgen publishes $GW_RATE ticks/s through the ingestors' script (SPUBLISH on the cluster) and runs the clients; every process shares the $(nproc) cores; ${DURATION} s measured after ${WARMUP} s. CPU: % of one core; µs per delivery = all gateways' CPU / deliveries."
  echo
  echo "| deployment | gateways | published ticks/s | deliveries/s | delivered | p99 | CPU per gateway | gateway µs per delivery | Redis CPU per master | per replica | loadgen CPU |"
  echo "|---|---:|---:|---:|---:|---:|---|---:|---|---|---:|"
  cat "$OUT/gateway-rows.md"
  echo
  echo "Command: BENCH_SCALEOUT_RATE=$RATE BENCH_SCALEOUT_SYMBOLS=$SYMBOLS BENCH_SCALEOUT_CLIENTS=$GW_CLIENTS BENCH_SCALEOUT_GW_RATE=$GW_RATE BENCH_SCALEOUT_WARMUP=$WARMUP BENCH_SCALEOUT_DURATION=$DURATION scripts/bench-scaleout.sh"
} >"$OUT/summary.md"
cat "$OUT/summary.md"
