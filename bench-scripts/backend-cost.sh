#!/usr/bin/env bash
# What a Redis server spends per request when the same load reaches it directly and when it
# comes through percore, on the same server with the same data.
#
# compare.sh sets one standalone redis-server against three cluster masters behind percore,
# which measures more than batching: a cluster-mode server spends ~15% more per command
# (slot checks), and three servers each sleep and wake on their own. Here one cluster-mode
# server owns all 16384 slots, so the only difference between the two targets is the path:
# 50 clients' connections straight to it, or percore (1 thread) gathering them onto one
# connection. Besides CPU per request it records the server's commands per read
# (total_commands_processed / total_reads_processed from INFO stats): the batch size each
# wake-up of the server gets.
#
# Output: bench-scripts/results/backend-cost-<stamp>.{csv,md}.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-7300}
PROXY_PORT=${PROXY_PORT:-6383}
REQUESTS=${REQUESTS:-200000}          # per P16 run; P1 runs use REQUESTS/4
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
SIZE=${SIZE:-16}
TESTS=${TESTS:-"get set"}
PIPELINES=${PIPELINES:-"1 16"}
ROUNDS=${ROUNDS:-3}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench-scripts/results
mkdir -p "$OUT"
CSV="$OUT/backend-cost-$STAMP.csv"
MD="$OUT/backend-cost-$STAMP.md"

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
cargo build --release --quiet
ulimit -l unlimited 2>/dev/null || true

WORK=$(mktemp -d /tmp/percore-backend-cost.XXXXXX)
PROXY_PID=""
cleanup() {
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

redis-server --port "$PORT" --bind 127.0.0.1 --cluster-enabled yes \
  --cluster-config-file "$WORK/nodes.conf" --save '' --appendonly no --daemonize yes \
  --dir "$WORK" --logfile "$WORK/redis.log" >/dev/null
for _ in $(seq 1 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$PORT" cluster addslotsrange 0 16383 >/dev/null
for _ in $(seq 1 100); do
  redis-cli -p "$PORT" cluster info | grep -q cluster_state:ok && break
  sleep 0.1
done
./target/release/percore --listen "127.0.0.1:$PROXY_PORT" --cluster "127.0.0.1:$PORT" \
  --threads 1 --log-level warn 2>"$WORK/percore.log" &
PROXY_PID=$!
for _ in $(seq 1 100); do
  [ "$(redis-cli -p "$PROXY_PORT" set backend-cost:ready 1 2>/dev/null)" = OK ] && break
  sleep 0.1
done
# Every key set (5 SETs per key at random: ~99%), so GETs hit and return SIZE bytes.
redis-benchmark -p "$PORT" -t set -P 64 -c 10 -n $((KEYSPACE * 5)) -r "$KEYSPACE" -d "$SIZE" \
  -q >/dev/null 2>&1

SERVER_PID=$(ss -ltnpH "sport = :$PORT" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
TICKS=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
server_stats() {
  redis-cli -p "$PORT" info stats |
    awk -F: '/^total_reads_processed/{r = $2 + 0} /^total_commands_processed/{c = $2 + 0} END {print r, c}'
}

echo "round,target,test,pipeline,requests,rps,p50_ms,server_cpu_us_per_req,proxy_cpu_us_per_req,commands_per_read" >"$CSV"
echo "== results in $CSV"
for pipeline in $PIPELINES; do
  for test in $TESTS; do
    n=$REQUESTS; [ "$pipeline" = 1 ] && n=$((REQUESTS / 4))
    for round in $(seq 1 "$ROUNDS"); do
      order="direct percore"; [ $((round % 2)) = 0 ] && order="percore direct"
      for target in $order; do
        port=$PORT; [ "$target" = percore ] && port=$PROXY_PORT
        s0=$(cpu_of "$SERVER_PID"); p0=$(cpu_of "$PROXY_PID"); read -r r0 c0 < <(server_stats)
        row=$(timeout "$RUN_TIMEOUT" redis-benchmark -p "$port" -t "$test" -P "$pipeline" \
          -c "$CLIENTS" -n "$n" -r "$KEYSPACE" -d "$SIZE" --csv 2>/dev/null |
          grep -v '^"test"' | grep '^"' | tail -1 | tr -d '"' || true)
        s1=$(cpu_of "$SERVER_PID"); p1=$(cpu_of "$PROXY_PID"); read -r r1 c1 < <(server_stats)
        if [ -z "$row" ]; then echo "  $target $test P$pipeline: FAILED"; continue; fi
        rps=$(echo "$row" | cut -d, -f2); p50=$(echo "$row" | cut -d, -f5)
        read -r server_us proxy_us per_read < <(awk -v s=$((s1 - s0)) -v p=$((p1 - p0)) \
          -v r=$((r1 - r0)) -v c=$((c1 - c0)) -v tk="$TICKS" -v n="$n" 'BEGIN {
            printf "%.2f %.2f %.1f\n", s / tk * 1e6 / n, p / tk * 1e6 / n, (r > 0 ? c / r : 0) }')
        [ "$target" = direct ] && proxy_us=""
        echo "$round,$target,$test,$pipeline,$n,$rps,$p50,$server_us,$proxy_us,$per_read" >>"$CSV"
        printf '  r%s %-7s %-4s P%-2s %10s req/s  p50 %6s ms  server %6s us/req  proxy %6s us/req  %6s commands/read\n' \
          "$round" "$target" "$test" "$pipeline" "$rps" "$p50" "$server_us" "${proxy_us:--}" "$per_read"
      done
    done
  done
done

python3 - "$CSV" "$MD" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
lines = ["Medians over the rounds; one cluster-mode redis-server with all slots, the same data, "
         "reached directly or through percore (1 thread).", "",
         "| test | P | target | req/s | p50 ms | server CPU µs/req | proxy CPU µs/req | commands/read |",
         "|---|---|---|---|---|---|---|---|"]
ratios = {}
keys = sorted({(r["test"], int(r["pipeline"])) for r in rows}, key=lambda k: (k[1], k[0] != "get", k[0]))
for test, pipeline in keys:
    for target in ("direct", "percore"):
        sel = [r for r in rows if r["test"] == test and int(r["pipeline"]) == pipeline and r["target"] == target]
        if not sel:
            continue
        med = lambda f: statistics.median(float(r[f]) for r in sel if r[f])
        proxy = f"{med('proxy_cpu_us_per_req'):.2f}" if target == "percore" else "-"
        lines.append(f"| {test} | {pipeline} | {target} | {med('rps'):.0f} | {med('p50_ms'):.3g} | "
                     f"{med('server_cpu_us_per_req'):.2f} | {proxy} | {med('commands_per_read'):.1f} |")
    per_round = []
    for rnd in sorted({r["round"] for r in rows}):
        pair = {r["target"]: float(r["server_cpu_us_per_req"]) for r in rows
                if r["round"] == rnd and r["test"] == test and int(r["pipeline"]) == pipeline}
        if pair.get("direct") and "percore" in pair:
            per_round.append(pair["percore"] / pair["direct"])
    if per_round:
        ratios[(test, pipeline)] = per_round
lines += ["", "Server CPU per request behind percore / direct, per round: median (min-max).", "",
          "| test | P | ratio |", "|---|---|---|"]
for (test, pipeline), values in ratios.items():
    lines.append(f"| {test} | {pipeline} | {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) |")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
EOF
echo "== $MD"
cat "$MD"
