#!/usr/bin/env bash
# Sessions benchmark: pub/sub fan-out and MULTI/EXEC transactions, through percore and
# straight on the nodes, with benches/session_load (redis-benchmark cannot express either:
# it has no subscribers, and its MULTI test sends no keys).
#
# - pubsub: SUBSCRIBERS subscribers (default 1000) on CHANNELS channel(s), one publisher
#   sending MESSAGES messages of SIZE bytes as fast as the subscribers keep up (at most
#   WINDOW messages ahead of them; RATE>0 paces it instead). Each subscriber checks it got
#   every message once and in order. Figures: delivered messages/s, CPU per delivered
#   message. Run once per publisher batch in PUBSUB_BATCHES (default "1 10"; line
#   pubsub-b<N>): PUBLISHes written together before their replies are read. The batch sets
#   the cost: a server writes each subscriber what has queued for it since its last write,
#   so an unpipelined publisher (1) costs a write per subscriber per message, and 10
#   pipelined PUBLISHes let one write carry up to 10 messages.
# - tx: CLIENTS clients each looping MULTI, INCR {session-load}a, INCR {session-load}b,
#   EXEC (the 4 written together, TX_PIPELINE transactions in flight), TRANSACTIONS in all;
#   every EXEC must show a == b, and both keys must end at TRANSACTIONS. Figures:
#   transactions/s, CPU per transaction.
#
# Targets: "percore" (1 thread, over a 3-master cluster: subscribers and publisher on it);
# "node" (straight on the cluster's masters: pub/sub subscribers and publisher on the first
# master, transactions on the master that owns the keys' slot); "standalone" (one
# non-cluster redis-server, for reference: a cluster node also sends every PUBLISH over the
# cluster bus to the other nodes, which a standalone server does not). The nodes' CPU is that
# of all three masters for "percore" and "node" (PUBLISH reaches every node either way).
#
# CPU is utime+stime of all threads from /proc, as compare.sh counts it, but sampled by the
# load tool itself from the first PUBLISH / MULTI to the last delivery / EXEC reply, so
# connecting and subscribing 1,000 clients is not counted per message. Each run also
# records how much CPU the rest of the machine used (flag "busy" over OTHER_BUSY_LIMIT).
# Every line runs ROUNDS times (default 3), targets taking turns in an order that rotates
# each round, as in compare.sh.
#
# Ports are picked free at start (cluster from 7400 up, percore from 6400 up, standalone
# from 7500 up), so it can run next to compare.sh. Everything it started is stopped on exit.
# Output: bench-scripts/results/sessions-<stamp>.{csv,md}.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
MODES=${MODES:-"pubsub tx"}
TARGETS=${TARGETS:-"percore node standalone"}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
MESSAGES=${MESSAGES:-3000}
SIZE=${SIZE:-64}
CHANNELS=${CHANNELS:-1}
WINDOW=${WINDOW:-100}
PUBSUB_BATCHES=${PUBSUB_BATCHES:-"1 10"}
RATE=${RATE:-0}
CLIENTS=${CLIENTS:-50}
TRANSACTIONS=${TRANSACTIONS:-200000}
TX_PIPELINE=${TX_PIPELINE:-1}
LOAD_THREADS=${LOAD_THREADS:-1}      # the load tool's polling threads
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
OTHER_BUSY_LIMIT=${OTHER_BUSY_LIMIT:-0.15}   # share of a core others used per second of run
TAG=session-load
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench-scripts/results
mkdir -p "$OUT"
CSV="$OUT/sessions-$STAMP.csv"
MD="$OUT/sessions-$STAMP.md"

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
cargo build --release --quiet
LOAD=$(cargo bench --bench session_load --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == "session_load":
        print(msg["executable"])')
[ -x "$LOAD" ] || { echo "could not build benches/session_load" >&2; exit 1; }
ulimit -l unlimited 2>/dev/null || true
# Every subscriber is a socket in the tool, in percore or the node, and (through percore) not
# in the node: 1,000 of them need more than a default 1024 descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

listening() { [ -n "$(ss -ltnH "sport = :$1")" ]; }
# The first port from $1 up (step $2) where $3 consecutive ports and their cluster bus ports
# (+10000) are free.
free_ports() {
  local port=$1 step=$2 count=$3 i ok
  while [ "$port" -lt 60000 ]; do
    ok=1
    for ((i = 0; i < count; i++)); do
      if listening $((port + i)) || listening $((port + i + 10000)); then ok=0; break; fi
    done
    [ "$ok" = 1 ] && { echo "$port"; return; }
    port=$((port + step))
  done
  echo "no free ports" >&2; exit 1
}

WORK=$(mktemp -d /tmp/percore-sessions.XXXXXX)
BASE=$(free_ports 7400 10 3)
PPORT=$(free_ports 6400 1 1)
SPORT=$(free_ports 7500 1 1)
PROXY_PID=""
cleanup() {
  [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
  redis-cli -p "$SPORT" shutdown nosave >/dev/null 2>&1 || true
  MASTERS=3 BASE_PORT=$BASE CLUSTER_DIR="$WORK/cluster" bash bench-scripts/cluster-down.sh >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

MASTERS=3 BASE_PORT=$BASE CLUSTER_DIR="$WORK/cluster" bash bench-scripts/cluster-up.sh >/dev/null
redis-server --port "$SPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --dir "$WORK" --logfile "$WORK/standalone.log" >/dev/null
SEEDS=127.0.0.1:$BASE,127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2))
./target/release/percore --listen "127.0.0.1:$PPORT" --cluster "$SEEDS" --threads 1 \
  --log-level warn 2>"$WORK/percore.log" &
PROXY_PID=$!
for port in "$PPORT" "$SPORT"; do
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
done
pid_of_port() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
NODE_PIDS="$(pid_of_port "$BASE"),$(pid_of_port $((BASE + 1))),$(pid_of_port $((BASE + 2)))"
STANDALONE_PID=$(pid_of_port "$SPORT")
# The master owning the transaction keys' slot: the one that does not answer MOVED.
TX_NODE=""
for port in "$BASE" $((BASE + 1)) $((BASE + 2)); do
  [[ "$(redis-cli -p "$port" exists "{$TAG}a" 2>&1)" =~ ^[0-9]+$ ]] && TX_NODE=$port
done
[ -n "$TX_NODE" ] || { echo "no master owns {$TAG}" >&2; exit 1; }
echo "== cluster $SEEDS, percore :$PPORT (pid $PROXY_PID), standalone :$SPORT, tx keys on :$TX_NODE"

# The targets, rotated left by the round number: each round starts with a different one.
rotate() {
  local shift=$1; shift
  local list=("$@") n=$# i
  for ((i = 0; i < n; i++)); do echo "${list[$(((i + shift) % n))]}"; done
}
# A field of the tool's key=value result line.
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }

echo "round,mode,target,ops,secs,ops_per_s,proxy_cpu_us_per_op,nodes_cpu_us_per_op,tool_cpu_us_per_op,other_cpu_frac,flag" >"$CSV"
echo "== results in $CSV"
LINES=""
for mode in $MODES; do
  if [ "$mode" = pubsub ]; then
    for batch in $PUBSUB_BATCHES; do LINES="$LINES pubsub-b$batch"; done
  else
    LINES="$LINES $mode"
  fi
done
for mode in $LINES; do
  for round in $(seq 1 "$ROUNDS"); do
    for target in $(rotate "$round" $TARGETS); do
      case $target in
        percore) port=$PPORT; cpu=(--cpu "proxy=$PROXY_PID" --cpu "nodes=$NODE_PIDS") ;;
        node) port=$BASE; [ "$mode" = tx ] && port=$TX_NODE; cpu=(--cpu "nodes=$NODE_PIDS") ;;
        standalone) port=$SPORT; cpu=(--cpu "nodes=$STANDALONE_PID") ;;
        *) echo "unknown target $target" >&2; continue ;;
      esac
      case $mode in
        pubsub-b*) args=(pubsub --subscribers "$SUBSCRIBERS" --messages "$MESSAGES" --size "$SIZE"
                      --channels "$CHANNELS" --window "$WINDOW" --batch "${mode#pubsub-b}" --rate "$RATE") ;;
        tx) args=(tx --clients "$CLIENTS" --transactions "$TRANSACTIONS" --pipeline "$TX_PIPELINE" --tag "$TAG") ;;
        *) echo "unknown mode $mode" >&2; continue ;;
      esac
      flag=ok
      line=$(timeout "$RUN_TIMEOUT" "$LOAD" "${args[@]}" --port "$port" --threads "$LOAD_THREADS" \
        "${cpu[@]}" 2>"$WORK/load.err") || flag=failed
      if [ "$flag" = failed ] || [ -z "$line" ]; then
        echo "  r$round $mode $target: FAILED: $(tail -3 "$WORK/load.err" | tr '\n' ' ')"
        flag=failed
      fi
      if [ "$mode" != tx ]; then ops=$(field deliveries "$line"); rate=$(field delivered_per_s "$line")
      else ops=$(field transactions "$line"); rate=$(field tx_per_s "$line"); fi
      proxy=$(field cpu_proxy_us "$line"); nodes=$(field cpu_nodes_us "$line")
      tool=$(field cpu_tool_us "$line"); other=$(field other_cpu_frac "$line")
      if [ "$flag" = ok ] && awk -v o="$other" -v l="$OTHER_BUSY_LIMIT" 'BEGIN {exit !(o > l)}'; then flag=busy; fi
      echo "$round,$mode,$target,$ops,$(field secs "$line"),$rate,$proxy,$nodes,$tool,$other,$flag" >>"$CSV"
      printf '  r%s %-6s %-10s %9s ops/s  proxy %6s us/op  nodes %6s us/op  tool %6s us/op  other %5s  %s\n' \
        "$round" "$mode" "$target" "${rate:--}" "${proxy:--}" "${nodes:--}" "${tool:--}" "${other:--}" "$flag"
      sleep 0.5   # let the previous run's connections close before the next one starts
    done
  done
done

python3 - "$CSV" "$MD" "$SUBSCRIBERS" "$MESSAGES" "$SIZE" "$CLIENTS" "$TRANSACTIONS" <<'EOF'
import csv, sys
path, md, subs, messages, size, clients, transactions = sys.argv[1:]
rows = list(csv.DictReader(open(path)))

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

def median(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2

def fmt(v):
    return "-" if v is None else f"{v:.0f}" if v >= 1000 else f"{v:.3g}"

def spread(values):
    v = [x for x in values if x is not None]
    return f"{fmt(median(v))} ({fmt(min(v))}-{fmt(max(v))})" if v else "-"

def total(r):
    p, n = num(r["proxy_cpu_us_per_op"]), num(r["nodes_cpu_us_per_op"])
    return None if n is None else n + (p or 0)

def describe(mode):
    if mode.startswith("pubsub-b"):
        batch = mode[len("pubsub-b"):]
        return ("delivered msg", f"pub/sub: 1 publisher ({batch} PUBLISH per write), {subs} "
                f"subscribers, {messages} messages of {size} B")
    return ("transaction", f"transactions: {clients} clients, {transactions} x (MULTI, INCR, INCR, EXEC)")

out = []
for mode in dict.fromkeys(r["mode"] for r in rows):
    runs = [r for r in rows if r["mode"] == mode]
    unit, what = describe(mode)
    out += [f"### {what}", "",
            f"| target | {unit}s/s | proxy CPU µs/{unit} | nodes CPU µs | proxy+nodes µs | tool µs | other cores busy | rounds (busy, failed) |",
            "|---|---|---|---|---|---|---|---|"]
    for target in dict.fromkeys(r["target"] for r in runs):
        t = [r for r in runs if r["target"] == target]
        ok = [r for r in t if r["flag"] != "failed"]
        col = lambda f: spread(num(r[f]) for r in ok)
        busy = sum(r["flag"] == "busy" for r in t); failed = sum(r["flag"] == "failed" for r in t)
        out.append(f"| {target} | {col('ops_per_s')} | {col('proxy_cpu_us_per_op')} | {col('nodes_cpu_us_per_op')} "
                   f"| {spread(total(r) for r in ok)} | {col('tool_cpu_us_per_op')} | {col('other_cpu_frac')} | {len(t)} ({busy}, {failed}) |")
    # percore against each direct target, round by round.
    for base in ("node", "standalone"):
        pairs = []
        for rnd in dict.fromkeys(r["round"] for r in runs):
            p = [r for r in runs if r["round"] == rnd and r["target"] == "percore" and r["flag"] != "failed"]
            b = [r for r in runs if r["round"] == rnd and r["target"] == base and r["flag"] != "failed"]
            if p and b and num(b[0]["ops_per_s"]) and total(b[0]):
                pairs.append((num(p[0]["ops_per_s"]) / num(b[0]["ops_per_s"]), total(p[0]) / total(b[0])))
        if pairs:
            out += ["", f"percore / {base}, per round: rate {', '.join(f'{a:.2f}' for a, _ in pairs)}; "
                        f"CPU (proxy+nodes) per {unit} {', '.join(f'{c:.2f}' for _, c in pairs)}"]
    out.append("")
out.append("Cells: median of the rounds (min-max). CPU: utime+stime from /proc from the first "
           "PUBLISH/MULTI to the last delivery/EXEC reply; \"other cores busy\": share of a core "
           "the rest of the machine used per second of the run.")
open(md, "w").write("\n".join(out) + "\n")
EOF
echo "== $MD"
cat "$MD"
