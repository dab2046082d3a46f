#!/usr/bin/env bash
# What replica reads save the masters, and what they cost percore (issue 16): GET at -P 16
# through percore over a cluster of 3 masters with a replica each, with `--read-from master`
# and with each policy of POLICIES (default `prefer-replica`; `any`, `replica` too if
# asked), side by side in every round.
#
# One percore per policy (1 thread each, the same flags but the policy) runs over the same
# cluster for the whole run, and the order of the policies rotates from round to round. For each run the script reads the
# CPU ticks of every redis-server and of the percore under load from /proc before and after,
# and reports per request: the masters' CPU (summed), the replicas', and percore's. The
# ratios to look at, per round then their median: masters' CPU per request with each policy
# over master (replica reads move the GETs to the replicas), and percore's (what choosing a
# replica costs the proxy).
#
# PROFILE=debug uses a debug build (a machine that must not build release); percore's own
# cost is then a debug build's, and only the ratio between the two policies means anything.
#
# Output: bench-scripts/results/replica-reads-<stamp>.{csv,md}.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_PORT=${BASE_PORT:-7400}          # the 6 nodes take BASE_PORT..BASE_PORT+5
PROXY_PORT=${PROXY_PORT:-6390}        # percore i (master first) listens on PROXY_PORT+i
POLICIES=${POLICIES:-prefer-replica}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-16}
KEYSPACE=${KEYSPACE:-100000}
SIZE=${SIZE:-16}
ROUNDS=${ROUNDS:-5}
RUN_TIMEOUT=${RUN_TIMEOUT:-180}
PROFILE=${PROFILE:-release}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench-scripts/results
mkdir -p "$OUT"
CSV="$OUT/replica-reads-$STAMP.csv"
MD="$OUT/replica-reads-$STAMP.md"

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
case "$PROFILE" in
  release) cargo build --release --quiet ;;
  debug) cargo build --quiet ;;
  *) echo "PROFILE is release or debug, not $PROFILE" >&2; exit 2 ;;
esac
BIN=./target/$PROFILE/percore
ulimit -l unlimited 2>/dev/null || true

WORK=$(mktemp -d /tmp/percore-replica-reads.XXXXXX)
PORTS=()
for i in 0 1 2 3 4 5; do PORTS+=($((BASE_PORT + i))); done
CLUSTER=(env BASE_PORT="$BASE_PORT" MASTERS=3 REPLICAS=1 CLUSTER_DIR="$WORK/cluster")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  "${CLUSTER[@]}" bash bench-scripts/cluster-down.sh >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# 3 masters with a replica each; cluster-up.sh returns once every node lists the replicas.
"${CLUSTER[@]}" bash bench-scripts/cluster-up.sh >/dev/null

start_percore() { # port policy
  "$BIN" --listen "127.0.0.1:$1" --cluster "127.0.0.1:$BASE_PORT" --threads 1 \
    --read-from "$2" --log-level warn 2>"$WORK/percore-$2.log" &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$1" set replica-reads:ready 1 2>/dev/null)" = OK ] && return
    sleep 0.1
  done
  echo "percore on $1 did not start" >&2; exit 1
}
ALL=(master $POLICIES)
declare -A PORT_OF PID_OF
for i in "${!ALL[@]}"; do
  policy=${ALL[$i]}
  PORT_OF[$policy]=$((PROXY_PORT + i))
  start_percore "${PORT_OF[$policy]}" "$policy"
  PID_OF[$policy]=${PIDS[-1]}
done
# Every key set, so GETs hit and return SIZE bytes; then the replicas in sync and in rotation.
redis-benchmark -p "${PORT_OF[master]}" -t set -P 64 -c 10 -n $((KEYSPACE * 5)) -r "$KEYSPACE" \
  -d "$SIZE" -q >/dev/null 2>&1
for policy in $POLICIES; do
  for _ in $(seq 1 100); do
    redis-cli -p "${PORT_OF[$policy]}" proxy info | grep -q 'replicas_in_rotation:3' && break
    sleep 0.1
  done
done

pid_of() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
MASTERS=(); REPLICAS=()
for port in "${PORTS[@]}"; do
  if redis-cli -p "$port" info replication | grep -q role:master; then
    MASTERS+=("$(pid_of "$port")")
  else
    REPLICAS+=("$(pid_of "$port")")
  fi
done
TICKS=$(getconf CLK_TCK)
cpu_of() { local sum=0; for pid in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$sum"; }

echo "round,policy,requests,rps,p50_ms,masters_cpu_us_per_req,replicas_cpu_us_per_req,proxy_cpu_us_per_req" >"$CSV"
echo "== results in $CSV"
for round in $(seq 1 "$ROUNDS"); do
  shift=$(( (round - 1) % ${#ALL[@]} ))
  order=("${ALL[@]:$shift}" "${ALL[@]:0:$shift}")
  for policy in "${order[@]}"; do
    port=${PORT_OF[$policy]}; proxy=${PID_OF[$policy]}
    m0=$(cpu_of "${MASTERS[@]}"); r0=$(cpu_of "${REPLICAS[@]}"); p0=$(cpu_of "$proxy")
    row=$(timeout "$RUN_TIMEOUT" redis-benchmark -p "$port" -t get -P "$PIPELINE" \
      -c "$CLIENTS" -n "$REQUESTS" -r "$KEYSPACE" -d "$SIZE" --csv 2>/dev/null |
      grep -v '^"test"' | grep '^"' | tail -1 | tr -d '"' || true)
    m1=$(cpu_of "${MASTERS[@]}"); r1=$(cpu_of "${REPLICAS[@]}"); p1=$(cpu_of "$proxy")
    if [ -z "$row" ]; then echo "  r$round $policy: FAILED"; continue; fi
    rps=$(echo "$row" | cut -d, -f2); p50=$(echo "$row" | cut -d, -f5)
    read -r m_us r_us p_us < <(awk -v m=$((m1 - m0)) -v r=$((r1 - r0)) -v p=$((p1 - p0)) \
      -v tk="$TICKS" -v n="$REQUESTS" 'BEGIN {
        printf "%.3f %.3f %.3f\n", m / tk * 1e6 / n, r / tk * 1e6 / n, p / tk * 1e6 / n }')
    echo "$round,$policy,$REQUESTS,$rps,$p50,$m_us,$r_us,$p_us" >>"$CSV"
    printf '  r%s %-14s %10s req/s  p50 %6s ms  masters %7s  replicas %7s  percore %7s us/req\n' \
      "$round" "$policy" "$rps" "$p50" "$m_us" "$r_us" "$p_us"
  done
done

python3 - "$CSV" "$MD" "$PROFILE" "$PIPELINE" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
profile, pipeline = sys.argv[3], sys.argv[4]
policies = list(dict.fromkeys(r["policy"] for r in rows))
med = lambda sel, f: statistics.median(float(r[f]) for r in sel)
lines = [f"GET -P {pipeline} through percore (1 thread, {profile} build) over 3 masters x 1 "
         "replica; medians over the rounds, CPU from /proc in µs per request.", "",
         "| read_from | req/s | p50 ms | masters CPU | replicas CPU | percore CPU |",
         "|---|---|---|---|---|---|"]
for policy in policies:
    sel = [r for r in rows if r["policy"] == policy]
    lines.append(f"| {policy} | {med(sel, 'rps'):.0f} | {med(sel, 'p50_ms'):.3g} | "
                 f"{med(sel, 'masters_cpu_us_per_req'):.2f} | "
                 f"{med(sel, 'replicas_cpu_us_per_req'):.2f} | "
                 f"{med(sel, 'proxy_cpu_us_per_req'):.2f} |")
names = {"masters_cpu_us_per_req": "masters' CPU per request",
         "proxy_cpu_us_per_req": "percore's CPU per request", "rps": "req/s"}
lines += ["", "Each policy over master, per round: median (min-max).", "",
          "| read_from | figure | ratio |", "|---|---|---|"]
for policy in [p for p in policies if p != "master"]:
    for field, name in names.items():
        values = []
        for rnd in sorted({r["round"] for r in rows}):
            pair = {r["policy"]: r for r in rows if r["round"] == rnd}
            if "master" in pair and policy in pair and float(pair["master"][field]) > 0:
                values.append(float(pair[policy][field]) / float(pair["master"][field]))
        if values:
            lines.append(f"| {policy} | {name} | {statistics.median(values):.2f} "
                         f"({min(values):.2f}-{max(values):.2f}) |")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
EOF
echo "== $MD"
cat "$MD"
