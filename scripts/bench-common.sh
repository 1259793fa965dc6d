# Shared by the benchmark scripts (sourced, not run): the processes they start and stop,
# free ports, polling for readiness, and a private Redis. Needs `die` defined first.

# --- processes we start, stopped on exit
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

free_port() {
  local p
  for _ in $(seq 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  die "no free port found"
}

# Polls a command every 100 ms until it succeeds, for at most WAIT_FOR_SECS (default 20) s.
wait_for() {
  local what=$1; shift
  for _ in $(seq $(( ${WAIT_FOR_SECS:-20} * 10 ))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  die "timed out waiting for $what"
}

# Starts a throw-away redis-server in DIR/redis on a free port; sets REDIS_PORT, REDIS_PID, REDIS_URL.
start_redis() { # DIR
  REDIS_PORT=$(free_port)
  mkdir -p "$1/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$1/redis" --protected-mode no >"$1/redis/redis.log" 2>&1 &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  REDIS_URL=redis://127.0.0.1:$REDIS_PORT
  wait_for "redis on $REDIS_PORT" redis-cli -p "$REDIS_PORT" ping
}
