#!/usr/bin/env bash
# What operating percore costs its clients: the same GET load through one percore (a static
# pool over 3 standalone servers, --threads 1) while nothing else happens, while Prometheus
# scrapes /metrics every second, and while the configuration is reloaded (SIGHUP) every
# second, in turns within each round so noise on this shared machine lands on a round rather
# than on one mode. Reports, per mode, the median over the rounds of req/s, p50, p99 and the
# proxy's own CPU time per request, and each mode's ratio to the quiet one.
#
#   ROUNDS=5 bash bench-scripts/ops-cost.sh
#
# Settings: ROUNDS (default 5), N requests per run (default 400000), PIPELINE (default 16),
# CLIENTS (default 50), PERCORE (a binary; default: build target/release/percore).
# Output: bench-scripts/results/ops-cost-<stamp>.md (and the raw rows in a .csv beside it).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
N=${N:-400000}
PIPELINE=${PIPELINE:-16}
CLIENTS=${CLIENTS:-50}
if [ -n "${PERCORE:-}" ]; then
  BIN=$PERCORE
else
  cargo build --release --quiet
  BIN=./target/release/percore
fi
ulimit -l unlimited 2>/dev/null || true

PORTS=(7201 7202 7203)
PROXY_PORT=6391
METRICS_PORT=9391
WORK=$(mktemp -d /tmp/percore-ops-cost.XXXXXX)
PROXY_PID=""
cleanup() {
  [ -z "$PROXY_PID" ] || kill "$PROXY_PID" 2>/dev/null || true
  for port in "${PORTS[@]}"; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for port in "${PORTS[@]}"; do
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$WORK" --logfile "$WORK/redis-$port.log" >/dev/null
done
cat >"$WORK/pool.yml" <<EOF
pool:
  listen: 127.0.0.1:$PROXY_PORT
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
   - 127.0.0.1:${PORTS[0]}:1
   - 127.0.0.1:${PORTS[1]}:1
   - 127.0.0.1:${PORTS[2]}:1
EOF
"$BIN" -c "$WORK/pool.yml" --threads 1 --metrics-listen "127.0.0.1:$METRICS_PORT" \
  --log-level warn 2>"$WORK/percore.log" &
PROXY_PID=$!
for _ in $(seq 100); do
  redis-cli -p "$PROXY_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$PROXY_PORT" ping >/dev/null
redis-benchmark -p "$PROXY_PORT" -t set -n 100000 -r 100000 -c "$CLIENTS" -P 16 -q >/dev/null

# The disturbance of each mode, run in the background while the benchmark runs.
disturb() {
  case "$1" in
    quiet) exec sleep 3600 ;;
    scrape)
      exec python3 - "$METRICS_PORT" <<'EOF'
import sys, time, urllib.request
port = sys.argv[1]
while True:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        body = reply.read()
        assert reply.status == 200 and b"percore_" in body, "not a percore scrape"
    time.sleep(1)
EOF
      ;;
    reload)
      while kill -HUP "$PROXY_PID" 2>/dev/null; do sleep 1; done ;;
  esac
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$PROXY_PID/stat"; }
CLK_TCK=$(getconf CLK_TCK)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench-scripts/results
CSV=bench-scripts/results/ops-cost-$STAMP.csv
echo "round,mode,rps,p50_ms,p99_ms,cpu_us_per_req" >"$CSV"
MODES=(quiet scrape reload)
for round in $(seq "$ROUNDS"); do
  # Rotate the order from round to round.
  for i in 0 1 2; do
    mode=${MODES[$(( (i + round) % 3 ))]}
    disturb "$mode" &
    disturber=$!
    before=$(cpu_ticks)
    line=$(redis-benchmark -p "$PROXY_PORT" -t get -n "$N" -r 100000 -c "$CLIENTS" \
      -P "$PIPELINE" --csv 2>/dev/null | grep '^"GET"')
    after=$(cpu_ticks)
    # Its child first (a reload loop's sleep), so the loop ends now rather than after it.
    pkill -P "$disturber" 2>/dev/null || true
    kill "$disturber" 2>/dev/null || true
    wait "$disturber" 2>/dev/null || true
    kill -0 "$PROXY_PID" || { echo "ops-cost.sh: percore died during '$mode'" >&2; exit 1; }
    IFS=, read -r _ rps _ _ p50 _ p99 _ <<<"$(tr -d '"' <<<"$line")"
    cpu=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$N" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }')
    echo "$round,$mode,$rps,$p50,$p99,$cpu" | tee -a "$CSV"
  done
done

MD=bench-scripts/results/ops-cost-$STAMP.md
python3 - "$CSV" "$N" "$PIPELINE" "$CLIENTS" >"$MD" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
n, pipeline, clients = sys.argv[2:5]
print(f"# ops-cost: GET -P {pipeline} -c {clients}, {n} requests per run, percore 1 thread, static pool of 3\n")
print("| mode | req/s | p50 ms | p99 ms | CPU µs/req | p99 / quiet | CPU / quiet |")
print("|---|---|---|---|---|---|---|")
def med(mode, key):
    return statistics.median(float(r[key]) for r in rows if r["mode"] == mode)
for mode in ["quiet", "scrape", "reload"]:
    print(f"| {mode} | {med(mode, 'rps'):.0f} | {med(mode, 'p50_ms'):.3f} | {med(mode, 'p99_ms'):.3f} "
          f"| {med(mode, 'cpu_us_per_req'):.3f} | {med(mode, 'p99_ms') / med('quiet', 'p99_ms'):.2f} "
          f"| {med(mode, 'cpu_us_per_req') / med('quiet', 'cpu_us_per_req'):.2f} |")
EOF
cat "$MD"
echo "raw rows: $CSV"
