#!/usr/bin/env bash
# Side-by-side benchmark: the same redis-benchmark workloads against one redis-server
# directly, nutcracker (twemproxy) over 3 standalone servers, percore with 1 and 2 threads
# over a 3-master cluster and, when selected, percore with 1 and 2 threads serving a static
# pool over nutcracker's 3 standalone servers, all in one run on this machine.
#
# Targets (TARGETS, names separated by spaces; default "redis nutcracker percore-1t percore-2t"):
#   redis       one standalone redis-server (port 7100), no proxy
#   nutcracker  nutcracker over the standalone servers 7101-7103 (its YAML: ketama + fnv1a_64)
#   percore-1t  percore --threads 1 over a 3-master cluster (7000-7002)
#   percore-2t  percore --threads 2 over the same cluster
#   pool-1t     percore --threads 1 -c <nutcracker's own YAML>, only --listen differing: the
#               same 3 standalone servers, hash and distribution, so every key lands on the
#               server nutcracker puts it on (tests/pool_placement.rs proves it; the script
#               checks that 50 keys read the same through both)
#   pool-2t     the same with --threads 2. The pools start only when selected.
#   redis-tls   one standalone redis-server speaking TLS only (tls-port 7104), no proxy
#   percore-tls-1t, percore-tls-2t  percore --threads 1 / 2 over the 3-master cluster with TLS
#               to its clients (--tls-cert/--tls-key; the cluster itself plain), ports 6385/6386.
#               TLS targets start only when selected; their certificates (a CA and a server
#               certificate for 127.0.0.1) are made with openssl in the run's temp dir, and
#               redis-benchmark runs with --tls against them. The TLS comparison of issue 14:
#   TARGETS="redis-tls percore-tls-1t percore-1t" TESTS="get set" PROTOCOLS=2 \
#     bash bench-scripts/compare.sh
#   peer-<name> from PEER_<NAME> (below), always added.
# Tests (TESTS; default "get set mset"): any redis-benchmark -t name (mset is its 10-key MSET,
# keys spread over servers and slots), and mget: one MGET of MGET_KEYS (default 100) keys
# key:__rand_int__ (each placeholder its own random key, so they spread over the servers),
# with n scaled by 10/MGET_KEYS so it reads as many keys as the mset line writes.
#
# The static-pool comparison of issue 13 (pool vs nutcracker, same servers, same YAML):
#   TARGETS="nutcracker pool-1t pool-2t" TESTS="get set mset mget" PROTOCOLS=2 ROUNDS=5 \
#     bash bench-scripts/compare.sh
#
# Every line runs ROUNDS times (default 3), the targets taking turns within each round and
# the order rotating from round to round, so neither a burst of noise on this shared machine
# nor a place in the order favours one target; the report gives the median of the rounds and
# the range of the per-round ratios. (Two copies of the same percore binary have measured 40%
# apart within one round: only medians of several rounds are worth comparing.)
#
# For every run it records req/s, p50 and p99 (redis-benchmark --csv), the proxy process's
# own CPU time per request (utime+stime of all its threads from /proc, before and after), the
# backends' CPU per request, and how much CPU something else on the machine used meanwhile
# (lines where that exceeds OTHER_BUSY_LIMIT are flagged "busy").
#
# Output: bench-scripts/results/compare-<stamp>.{csv,md,png}. The .md has the medians, then
# every target's ratio to nutcracker (target / nutcracker, round by round: median and range).
#
# PERCORE=<binary> (a path from the repository root) measures that binary instead of building
# target/release/percore: e.g. a debug build for a smoke run of the script itself, whose
# figures mean nothing.
#
# Extra peers (another cluster proxy, measured like percore, over the same cluster): set
# PEER_<NAME>="<command that starts it in the foreground>", where {port} is replaced by the port
# it must listen on, {seed} by one cluster node (host:port) and {seeds} by all of them,
# comma-separated. Example:
#   PEER_PREDIXY_LIKE="/opt/proxy --listen 127.0.0.1:{port} --cluster {seeds}" bash compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-200000}          # per P16 line; P1 lines use REQUESTS/4
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
SIZES=${SIZES:-"16 1024"}
TESTS=${TESTS:-"get set mset"}      # redis-benchmark -t names, and mget
MGET_KEYS=${MGET_KEYS:-100}         # keys per MGET of the mget test
PIPELINES=${PIPELINES:-"1 16"}
PROTOCOLS=${PROTOCOLS:-"2 3"}          # RESP versions (redis-benchmark -3); nutcracker has only 2
TARGETS=${TARGETS:-"redis nutcracker percore-1t percore-2t"}   # also: pool-1t pool-2t
ROUNDS=${ROUNDS:-3}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
OTHER_BUSY_LIMIT=${OTHER_BUSY_LIMIT:-0.15}   # CPU-seconds of others per second of run
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench-scripts/results
mkdir -p "$OUT"
CSV="$OUT/compare-$STAMP.csv"
MD="$OUT/compare-$STAMP.md"

# A misspelt target would otherwise only show as a message per line, after the setup.
for target in $TARGETS; do
  case $target in
    redis | nutcracker | percore-1t | percore-2t | pool-1t | pool-2t) ;;
    redis-tls | percore-tls-1t | percore-tls-2t) ;;
    *) echo "compare.sh: unknown target '$target' (redis nutcracker percore-1t percore-2t pool-1t pool-2t redis-tls percore-tls-1t percore-tls-2t; peers come from PEER_<NAME>)" >&2; exit 2 ;;
  esac
done
selected() { [[ " $TARGETS " == *" $1 "* ]]; }

need() { command -v "$1" >/dev/null || MISSING="$MISSING $2"; }
MISSING=""
need redis-server redis-server; need redis-benchmark redis-server; need nutcracker nutcracker
if [ -n "$MISSING" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING >/dev/null
fi
if [ -n "${PERCORE:-}" ]; then
  BIN=$PERCORE
else
  cargo build --release --quiet
  BIN=./target/release/percore
fi
ulimit -l unlimited 2>/dev/null || true

WORK=$(mktemp -d /tmp/percore-compare.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for port in 7100 7101 7102 7103; do redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true; done
  [ -z "${TLS_PORTS:-}" ] || redis-cli $(tls_flags 7104) -p 7104 shutdown nosave >/dev/null 2>&1 || true
  bash bench-scripts/cluster-down.sh >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Servers: a cluster for percore, standalone servers for redis-direct and nutcracker.
bash bench-scripts/cluster-up.sh >/dev/null
for port in 7100 7101 7102 7103; do
  redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$WORK" --logfile "$WORK/redis-$port.log" >/dev/null
done
cat >"$WORK/nutcracker.yml" <<EOF
pool:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
   - 127.0.0.1:7101:1
   - 127.0.0.1:7102:1
   - 127.0.0.1:7103:1
EOF
# Its stats port (default 22222) can be taken by another percore or nutcracker on the machine,
# which makes nutcracker exit at start: NUT_STATS_PORT moves it.
nutcracker -c "$WORK/nutcracker.yml" -o "$WORK/nutcracker.log" -s "${NUT_STATS_PORT:-22222}" &
PIDS+=($!); NUT_PID=$!
SEEDS=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002
"$BIN" --listen 127.0.0.1:6381 --cluster $SEEDS --threads 1 --log-level warn 2>"$WORK/p1.log" &
PIDS+=($!); P1_PID=$!
"$BIN" --listen 127.0.0.1:6382 --cluster $SEEDS --threads 2 --log-level warn 2>"$WORK/p2.log" &
PIDS+=($!); P2_PID=$!
# Static pools: nutcracker's own YAML, unchanged but for the listen address, so hash,
# distribution and servers are nutcracker's. Started only when selected: by default the run is
# what it was before they existed.
POOL_PORTS=""
POOL1_PID=""; POOL2_PID=""
if selected pool-1t; then
  "$BIN" -c "$WORK/nutcracker.yml" --listen 127.0.0.1:6383 --threads 1 --log-level warn 2>"$WORK/pool1.log" &
  PIDS+=($!); POOL1_PID=$!; POOL_PORTS="$POOL_PORTS 6383"
fi
if selected pool-2t; then
  "$BIN" -c "$WORK/nutcracker.yml" --listen 127.0.0.1:6384 --threads 2 --log-level warn 2>"$WORK/pool2.log" &
  PIDS+=($!); POOL2_PID=$!; POOL_PORTS="$POOL_PORTS 6384"
fi
# TLS targets: a CA and a server certificate for 127.0.0.1, then the servers that use them.
# ECDSA P-256 keys: each of the CLIENTS connections' handshakes costs ~1.5 ms of CPU with an
# RSA-2048 key (its signature), which in a line of 25,000 requests reads as ~3 us per request
# on every TLS target and hides the steady-state cost; P-256 signs in tens of microseconds.
TLS_PORTS=""
tls_flags() { [[ " $TLS_PORTS " == *" $1 "* ]] && echo "--tls --cacert $WORK/ca.pem"; true; }
if selected redis-tls || selected percore-tls-1t || selected percore-tls-2t; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=compare CA" \
    -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" -keyout "$WORK/server.key" \
    -out "$WORK/server.csr" 2>/dev/null
  openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -days 2 -extfile <(echo "subjectAltName=IP:127.0.0.1") \
    -out "$WORK/server.pem" 2>/dev/null
  TLS_CERT=(--tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key")
fi
REDIS_TLS_PID=""; PT1_PID=""; PT2_PID=""
if selected redis-tls; then
  redis-server --port 0 --tls-port 7104 --bind 127.0.0.1 --save '' --appendonly no \
    --tls-cert-file "$WORK/server.pem" --tls-key-file "$WORK/server.key" \
    --tls-ca-cert-file "$WORK/ca.pem" --tls-auth-clients no --daemonize yes \
    --dir "$WORK" --logfile "$WORK/redis-7104.log" >/dev/null
  TLS_PORTS="$TLS_PORTS 7104"
fi
if selected percore-tls-1t; then
  "$BIN" --listen 127.0.0.1:6385 --cluster $SEEDS --threads 1 "${TLS_CERT[@]}" --log-level warn 2>"$WORK/pt1.log" &
  PIDS+=($!); PT1_PID=$!; TLS_PORTS="$TLS_PORTS 6385"
fi
if selected percore-tls-2t; then
  "$BIN" --listen 127.0.0.1:6386 --cluster $SEEDS --threads 2 "${TLS_CERT[@]}" --log-level warn 2>"$WORK/pt2.log" &
  PIDS+=($!); PT2_PID=$!; TLS_PORTS="$TLS_PORTS 6386"
fi

# Extra peers from PEER_<NAME> variables, each on its own port from 6390 up.
declare -A PEER_PID PEER_PORT
peer_port=6390
for var in $(compgen -v PEER_ || true); do
  name=$(echo "${var#PEER_}" | tr 'A-Z_' 'a-z-')
  cmd=${!var}
  cmd=${cmd//\{port\}/$peer_port}; cmd=${cmd//\{seeds\}/$SEEDS}; cmd=${cmd//\{seed\}/${SEEDS%%,*}}
  bash -c "exec $cmd" >"$WORK/peer-$name.log" 2>&1 &
  PIDS+=($!); PEER_PID[$name]=$!; PEER_PORT[$name]=$peer_port
  TARGETS="$TARGETS peer-$name"
  echo "== peer $name on port $peer_port: $cmd"
  peer_port=$((peer_port + 1))
done

for port in 7100 22121 6381 6382 $POOL_PORTS $TLS_PORTS "${PEER_PORT[@]}"; do
  ready=""
  for _ in $(seq 1 100); do
    # shellcheck disable=SC2046
    [ "$(redis-cli $(tls_flags $port) -p $port set compare:ready 1 2>/dev/null)" = OK ] && { ready=1; break; }
    sleep 0.1
  done
  # Its lines will fail; say which port now, with the logs still in $WORK.
  [ -n "$ready" ] || echo "== port $port is not answering SET after 10 s; logs: $(ls "$WORK"/*.log | tr '\n' ' ')" >&2
done

pid_of_port() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
CLUSTER_PIDS="$(pid_of_port 7000) $(pid_of_port 7001) $(pid_of_port 7002)"
NUT_BACKENDS="$(pid_of_port 7101) $(pid_of_port 7102) $(pid_of_port 7103)"
DIRECT_PID=$(pid_of_port 7100)
DIRECT_TLS_PID=""; selected redis-tls && DIRECT_TLS_PID=$(pid_of_port 7104)
TICKS=$(getconf CLK_TCK)

# CPU seconds (utime+stime, all threads) of a list of pids.
cpu_of() {
  local total=0 pid
  for pid in "$@"; do
    [ -r "/proc/$pid/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
# Busy CPU seconds of the whole machine, in ticks.
machine_busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }

# The targets, rotated left by the round number: each round starts with a different one.
rotate() {
  local shift=$1; shift
  local list=("$@") n=$# i
  for ((i = 0; i < n; i++)); do echo "${list[$(((i + shift) % n))]}"; done
}

# Fills every target's keyspace with values of SIZE bytes before that size's lines (not
# measured), so every target's GETs hit, return values of the size the line names, and look
# keys up in tables of the same size: a GET on an empty server costs it far less. Five SETs per
# key at random leave ~99% of the keys set. The pools share nutcracker's servers and place
# keys as it does, so filling them through nutcracker fills them for the pools too. Only the
# servers some selected target reads are filled.
FILL_PORTS=""
selected redis && FILL_PORTS="$FILL_PORTS 7100"
selected redis-tls && FILL_PORTS="$FILL_PORTS 7104"
FILL_PORTS="$FILL_PORTS 22121"
if selected percore-1t || selected percore-2t || selected percore-tls-1t || selected percore-tls-2t || [[ " $TARGETS" == *" peer-"* ]]; then FILL_PORTS="$FILL_PORTS 6381"; fi
populate() {
  local size=$1 port
  for port in $FILL_PORTS; do
    # shellcheck disable=SC2046
    timeout "$RUN_TIMEOUT" redis-benchmark $(tls_flags $port) -p $port -t set -P 64 -c 10 -n $((KEYSPACE * 5)) \
      -r "$KEYSPACE" -d "$size" -q >/dev/null 2>&1 || echo "  populate via port $port failed" >&2
  done
  echo "== d$size: keys on nutcracker's (and the pools') servers 7101/7102/7103:" \
    "$(for port in 7101 7102 7103; do redis-cli -p $port dbsize; done | tr '\n' ' ')"
  # A pool that placed keys elsewhere than nutcracker would miss its GETs, which cost less:
  # the same keys must read the same through both.
  local keys want
  keys=$(for ((k = 0; k < 50; k++)); do printf 'key:%012d ' "$k"; done)
  want=$(redis-cli -p 22121 mget $keys | md5sum)
  for port in $POOL_PORTS; do
    [ "$(redis-cli -p $port mget $keys | md5sum)" = "$want" ] ||
      echo "== the pool on port $port reads other values than nutcracker: placement differs" >&2
  done
}

# The redis-benchmark arguments of a test, into BENCH_ARGS, and its request count for a line
# of n requests, into BENCH_N. mget is a custom command: each __rand_int__ is replaced by its
# own random number, so one MGET reads MGET_KEYS keys spread over every server (and slot),
# named like those -t set fills (key:<12 digits>); it runs 10/MGET_KEYS as many requests as
# the other lines, so it touches as many keys as the 10-key mset line.
bench_args() {
  local test=$1 n=$2 k
  case $test in
    mget)
      BENCH_ARGS=(MGET)
      for ((k = 0; k < MGET_KEYS; k++)); do BENCH_ARGS+=("key:__rand_int__"); done
      BENCH_N=$((n * 10 / MGET_KEYS)); [ "$BENCH_N" -ge 1 ] || BENCH_N=1 ;;
    *) BENCH_ARGS=(-t "$test"); BENCH_N=$n ;;
  esac
}

echo "round,target,test,pipeline,size,requests,rps,p50_ms,p99_ms,proxy_cpu_us_per_req,backend_cpu_us_per_req,other_cpu_frac,flag" >"$CSV"
echo "== results in $CSV"
for size in $SIZES; do
  populate "$size"
  for pipeline in $PIPELINES; do
    for test in $TESTS; do
    for protocol in $PROTOCOLS; do
      n=$REQUESTS; [ "$pipeline" = 1 ] && n=$((REQUESTS / 4))
      bench_args "$test" "$n"; n=$BENCH_N
      # RESP3 lines are named apart (get-resp3) so the report keeps them apart.
      label=$test; resp_flag=""
      if [ "$protocol" = 3 ]; then label="$test-resp3"; resp_flag="-3"; fi
      for round in $(seq 1 "$ROUNDS"); do
      for target in $(rotate "$round" $TARGETS); do
        [ "$protocol" = 3 ] && [ "$target" = nutcracker ] && continue
        case $target in
          redis) port=7100; proxy=""; backends="$DIRECT_PID" ;;
          nutcracker) port=22121; proxy=$NUT_PID; backends="$NUT_BACKENDS" ;;
          percore-1t) port=6381; proxy=$P1_PID; backends="$CLUSTER_PIDS" ;;
          percore-2t) port=6382; proxy=$P2_PID; backends="$CLUSTER_PIDS" ;;
          pool-1t) port=6383; proxy=$POOL1_PID; backends="$NUT_BACKENDS" ;;
          pool-2t) port=6384; proxy=$POOL2_PID; backends="$NUT_BACKENDS" ;;
          redis-tls) port=7104; proxy=""; backends="$DIRECT_TLS_PID" ;;
          percore-tls-1t) port=6385; proxy=$PT1_PID; backends="$CLUSTER_PIDS" ;;
          percore-tls-2t) port=6386; proxy=$PT2_PID; backends="$CLUSTER_PIDS" ;;
          peer-*) port=${PEER_PORT[${target#peer-}]}; proxy=${PEER_PID[${target#peer-}]}; backends="$CLUSTER_PIDS" ;;
          *) echo "unknown target $target" >&2; continue ;;
        esac
        p0=$(cpu_of $proxy); b0=$(cpu_of $backends); m0=$(machine_busy); t0=$(date +%s.%N)
        line=$( (/usr/bin/time -f 'BENCHCPU %U %S' timeout "$RUN_TIMEOUT" redis-benchmark $(tls_flags $port) -p $port \
          $resp_flag -P "$pipeline" -c "$CLIENTS" -n "$n" -r "$KEYSPACE" -d "$size" --csv "${BENCH_ARGS[@]}") 2>&1 || true)
        t1=$(date +%s.%N); p1=$(cpu_of $proxy); b1=$(cpu_of $backends); m1=$(machine_busy)
        row=$(echo "$line" | grep -v '^"test"' | grep '^"' | tail -1 | tr -d '"' || true)
        bench_cpu=$(echo "$line" | awk '/BENCHCPU/{print $2 + $3}')
        if [ -z "$row" ]; then
          echo "$round,$target,$label,$pipeline,$size,$n,,,,,,,failed" >>"$CSV"; echo "  $target $label P$pipeline d$size: FAILED"; continue
        fi
        rps=$(echo "$row" | cut -d, -f2); p50=$(echo "$row" | cut -d, -f5); p99=$(echo "$row" | cut -d, -f7)
        read -r proxy_us backend_us other flag < <(awk -v p=$((p1 - p0)) -v b=$((b1 - b0)) -v m=$((m1 - m0)) \
          -v tk="$TICKS" -v n="$n" -v bc="${bench_cpu:-0}" -v t0="$t0" -v t1="$t1" -v lim="$OTHER_BUSY_LIMIT" 'BEGIN {
            secs = t1 - t0; other = (m - p - b) / tk - bc; frac = other / secs; if (frac < 0) frac = 0
            printf "%.2f %.2f %.3f %s\n", p / tk * 1e6 / n, b / tk * 1e6 / n, frac, (frac > lim ? "busy" : "ok") }')
        [ -z "$proxy" ] && proxy_us=""
        echo "$round,$target,$label,$pipeline,$size,$n,$rps,$p50,$p99,$proxy_us,$backend_us,$other,$flag" >>"$CSV"
        printf '  r%s %-11s %-10s P%-2s d%-5s %10s req/s  p50 %6s ms  p99 %6s ms  proxy %6s us/req  backend %6s us/req  %s\n' \
          "$round" "$target" "$label" "$pipeline" "$size" "$rps" "$p50" "$p99" "${proxy_us:--}" "$backend_us" "$flag"
      done
      done
    done
    done
  done
done

python3 bench-scripts/report.py "$CSV" "$MD" "$OUT/compare-$STAMP.png"
echo "== $MD"
cat "$MD"
