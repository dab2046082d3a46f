#!/usr/bin/env bash
# The main job, from a fresh machine: install redis-server if missing, build percore, start a
# local 3-master Redis Cluster and percore in front of it, benchmark through percore with
# redis-benchmark next to the same run against one redis-server directly, check the data is
# really in the cluster, and print percore's own latency report. Stops percore and the
# cluster at the end (KEEP=1 leaves both running).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-6380}
REQUESTS=${REQUESTS:-200000}
THREADS=${THREADS:-$(nproc)}
DIRECT_PORT=${DIRECT_PORT:-7100}

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  echo "== installing redis-server"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

echo "== building percore (release)"
cargo build --release --quiet

echo "== starting a 3-master cluster on 127.0.0.1:7000-7002"
bash bench-scripts/cluster-up.sh

# io_uring registers its buffers as locked memory: lift the soft limit where allowed.
ulimit -l unlimited 2>/dev/null || ulimit -l "$(ulimit -H -l)" 2>/dev/null || true
LOG=$(mktemp /tmp/percore-demo.XXXXXX.log)
./target/release/percore --listen "127.0.0.1:$PORT" --cluster 127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 \
  --threads "$THREADS" >"$LOG" 2>&1 &
PROXY_PID=$!
cleanup() {
  if [ "${KEEP:-0}" = 1 ]; then
    echo "== left running: percore pid $PROXY_PID on port $PORT (log $LOG), cluster on 7000-7002"
    return
  fi
  kill "$PROXY_PID" 2>/dev/null || true
  bash bench-scripts/cluster-down.sh >/dev/null
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  [ "$(redis-cli -p "$PORT" set percore:demo ok 2>/dev/null)" = OK ] && break
  sleep 0.1
done
[ "$(redis-cli -p "$PORT" get percore:demo)" = ok ] || { echo "percore did not come up:"; cat "$LOG"; exit 1; }
echo "== percore up on port $PORT with $THREADS threads (log $LOG)"

redis-cli -p 7000 flushall >/dev/null; redis-cli -p 7001 flushall >/dev/null; redis-cli -p 7002 flushall >/dev/null
redis-cli -p "$PORT" proxy latency reset >/dev/null

echo "== redis-benchmark through percore: -t set,get,mset -P 16 -n $REQUESTS -r 100000 -c 50"
redis-benchmark -p "$PORT" -t set,get,mset -P 16 -n "$REQUESTS" -r 100000 -c 50 -q 2>&1 | tr '\r' '\n' | grep -E 'requests per second' 
echo "== the same against one standalone redis-server directly (port $DIRECT_PORT)"
redis-server --port "$DIRECT_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --dir /tmp --logfile "/tmp/percore-direct-$DIRECT_PORT.log" >/dev/null
for _ in $(seq 1 100); do redis-cli -p "$DIRECT_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-benchmark -p "$DIRECT_PORT" -t set,get,mset -P 16 -n "$REQUESTS" -r 100000 -c 50 -q 2>&1 | tr '\r' '\n' | grep -E 'requests per second'
redis-cli -p "$DIRECT_PORT" shutdown nosave >/dev/null 2>&1 || true

keys=0
for p in 7000 7001 7002; do
  n=$(redis-cli -p $p dbsize); echo "keys on master 127.0.0.1:$p: $n"; keys=$((keys + n))
done
[ "$keys" -gt 0 ] || { echo "no keys reached the cluster"; exit 1; }
sample=$(redis-cli -p 7000 randomkey)
echo "sample key $sample read through percore: $(redis-cli -p "$PORT" get "$sample" | head -c 40)"

echo "== PROXY LATENCY"
redis-cli -p "$PORT" proxy latency
echo "== PROXY INFO"
redis-cli -p "$PORT" proxy info
