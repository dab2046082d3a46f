#!/usr/bin/env bash
# Side-by-side benchmark: the same redis-benchmark workloads against one redis-server
# directly, nutcracker (twemproxy) over 3 standalone servers, predixy and percore with 1 and 2
# threads over a 3-master cluster and, when selected, percore with 1 and 2 threads serving a
# static pool over nutcracker's 3 standalone servers, all in one run on this machine.
#
# Targets (TARGETS, names separated by spaces; default "redis nutcracker predixy percore-1t percore-2t"):
#   redis       one standalone redis-server (port 7100), no proxy
#   nutcracker  nutcracker over the standalone servers 7101-7103 (its YAML: ketama + fnv1a_64)
#   predixy     predixy (C++, github joyieldInc/predixy) with 1 worker thread over the cluster,
#               port 6389, its configuration generated for the run in the run's temp dir by
#               bench-scripts/predixy.sh, which builds predixy outside the repository and caches
#               the binary (PREDIXY_SRC=<unpacked source> on a machine without GitHub;
#               PREDIXY_BIN=<binary> to use one built elsewhere). Nothing of it is committed.
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
# What a target cannot do is skipped with a note, never run to fail: nutcracker speaks only
# RESP2, predixy has no HELLO (so no RESP3: redis-benchmark -3 exits at its first reply).
#
# Tests (TESTS; default "get set mset"): any redis-benchmark -t name (mset is its 10-key MSET,
# keys spread over servers and slots), and
#   mget, mget<N>  one MGET of MGET_KEYS (default 100) / N keys key:__rand_int__ (each
#                  placeholder its own random key, so they spread over every server and slot),
#                  e.g. mget100 mget1000 in one run;
#   lrange_<N>     LRANGE mylist 0 N-1 (e.g. lrange_100 lrange_600): a list of the largest N of
#                  the run, elements of the line's -d size, is filled into every target's
#                  servers (through the target, so on the cluster it is on mylist's slot, 5282)
#                  before each size's lines. redis-benchmark's own -t lrange_N would first LPUSH
#                  as many elements as the line has requests, measured with it, every run: the
#                  list would grow from run to run and the CPU figure include the LPUSHes.
# Lines of N keys or elements run 10/N as many requests, so they move as many keys or
# elements as the 10-key mset line; values over 4 KiB run 4096/size as many, so a 64 KiB line
# moves as many bytes as a 4 KiB one.
#
# Clients (CLIENTS, a list, default 50): every line runs once per count; a count other than 50
# is named in the line (get-c10000), and the report gives each target's figures over its 50-
# client line. A line runs at least MIN_PER_CLIENT (20) requests per client, so connecting
# 10,000 clients is not most of it. The script raises its open-file limit (to 65536 where
# root may), sets every redis-server's maxclients and percore's --max-clients above the
# largest count. Lines whose one request or reply carries more than MAX_MESSAGE bytes of
# values (default 8 MiB: mget1000 or lrange_600 of 64 KiB values), or whose clients ×
# pipeline × that exceeds MAX_INFLIGHT (default 512 MiB, the most the proxies may have to
# hold at once), are skipped with a note: on a shared 24 GiB machine they would only measure
# swapping or the OOM killer.
#
# A network to the backends (NET_DELAY_US, default 0: everything on loopback): with
# NET_DELAY_US=100 or 1000 every redis-server (the cluster, the standalone servers, the TLS
# one) runs in a network namespace of the script's own, reached from the host over a veth pair
# (10.231.78.1 on the host, 10.231.78.2 in the namespace; nothing else is routed there), and
# each round trip to them is NET_DELAY_US longer: `tc netem delay` on the host's end of the
# pair where the kernel has netem, else (this machine's kernel: "Specified qdisc kind is
# unknown") a delay relay per server port in the namespace, benches/delay-relay (Rust, built
# with cargo in seconds): it holds every chunk towards the server for the delay, the first of a
# connection one delay more (the SYN's), and passes replies on at once. NET_EMULATION=netem or
# relay forces one (default auto). The servers then really listen 1000 ports higher and the
# cluster announces the relays' ports; clients and proxies stay on the host and reach the
# servers only at 10.231.78.2. The relays' CPU is its own column, kept out of the proxy's,
# the backends' and the "others" figures. Needs root (ip netns).
#
# The static-pool comparison of issue 13 (pool vs nutcracker, same servers, same YAML):
#   TARGETS="nutcracker pool-1t pool-2t" TESTS="get set mset mget" PROTOCOLS=2 ROUNDS=5 \
#     bash bench-scripts/compare.sh
# Issue 17's lines (predixy, more workloads, then the same over a 1 ms network):
#   TESTS="get set mset mget100 mget1000 lrange_100 lrange_600" SIZES="16 1024 65536" \
#     CLIENTS="50 1000 10000" bash bench-scripts/compare.sh
#   NET_DELAY_US=1000 TESTS="get set mset mget100" bash bench-scripts/compare.sh
#
# Every line runs ROUNDS times (default 3), the targets taking turns within each round and
# the order rotating from round to round, so neither a burst of noise on this shared machine
# nor a place in the order favours one target; the report gives the median of the rounds and
# the range of the per-round ratios. (Two copies of the same percore binary have measured 40%
# apart within one round: only medians of several rounds are worth comparing.)
#
# For every run it records req/s, p50 and p99 (redis-benchmark --csv), the proxy process's
# own CPU time per request (utime+stime of all its threads from /proc, before and after), the
# backends' CPU per request, the relays' (NET_DELAY_US without netem), and how much CPU
# something else on the machine used meanwhile (lines where that exceeds OTHER_BUSY_LIMIT are
# flagged "busy"). A run that fails says why (redis-benchmark's first error, or the timeout).
#
# Output: bench-scripts/results/compare-<stamp>.{csv,md,png}. The .md has the medians, then
# every target's ratio to nutcracker and to predixy (target / base, round by round: median and
# range).
#
# PERCORE=<binary> (a path from the repository root) measures that binary instead of building
# target/release/percore: e.g. a debug build for a smoke run of the script itself, whose
# figures mean nothing.
#
# Extra peers (another cluster proxy, measured like percore, over the same cluster): set
# PEER_<NAME>="<command that starts it in the foreground>", where {port} is replaced by the port
# it must listen on, {seed} by one cluster node (host:port) and {seeds} by all of them,
# comma-separated. Example:
#   PEER_OTHER="/opt/proxy --listen 127.0.0.1:{port} --cluster {seeds}" bash compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-200000}          # per P16 line; P1 lines use REQUESTS/4
CLIENTS=${CLIENTS:-50}                # a list: every line runs once per count
KEYSPACE=${KEYSPACE:-100000}
SIZES=${SIZES:-"16 1024"}
TESTS=${TESTS:-"get set mset"}      # redis-benchmark -t names, mget, mget<N>, lrange_<N>
MGET_KEYS=${MGET_KEYS:-100}         # keys per MGET of the mget test
PIPELINES=${PIPELINES:-"1 16"}
PROTOCOLS=${PROTOCOLS:-"2 3"}          # RESP versions (redis-benchmark -3); nutcracker has only 2
TARGETS=${TARGETS:-"redis nutcracker predixy percore-1t percore-2t"}   # also: pool-1t pool-2t, TLS ones
ROUNDS=${ROUNDS:-3}
RUN_TIMEOUT=${RUN_TIMEOUT:-120}
OTHER_BUSY_LIMIT=${OTHER_BUSY_LIMIT:-0.15}   # CPU-seconds of others per second of run
MIN_PER_CLIENT=${MIN_PER_CLIENT:-20}  # requests per client at least
FILL_MB=${FILL_MB:-256}               # a size's keyspace holds at most this many MiB of values per copy
MAX_MESSAGE=${MAX_MESSAGE:-8388608}   # value bytes of one request or reply, at most
MAX_INFLIGHT=${MAX_INFLIGHT:-536870912}   # clients x pipeline x MAX_MESSAGE's figure, at most
NET_DELAY_US=${NET_DELAY_US:-0}       # 0: loopback; else the servers in a namespace, this far
NET_EMULATION=${NET_EMULATION:-auto}  # auto, netem or relay
# The client count the workloads were sized for; other counts are named in their lines.
BASE_CLIENTS=50
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench-scripts/results
mkdir -p "$OUT"
CSV="$OUT/compare-$STAMP.csv"
MD="$OUT/compare-$STAMP.md"
die() { echo "compare.sh: $*" >&2; exit 2; }

# A misspelt target or test would otherwise only show as a message per line, after the setup.
for target in $TARGETS; do
  case $target in
    redis | nutcracker | predixy | percore-1t | percore-2t | pool-1t | pool-2t) ;;
    redis-tls | percore-tls-1t | percore-tls-2t) ;;
    *) die "unknown target '$target' (redis nutcracker predixy percore-1t percore-2t pool-1t pool-2t redis-tls percore-tls-1t percore-tls-2t; peers come from PEER_<NAME>)" ;;
  esac
done
for test in $TESTS; do
  case $test in
    mget | mget[1-9]*) [[ $test =~ ^mget[0-9]*$ ]] || die "test '$test': mget<N> takes a number of keys" ;;
    lrange_[1-9]*) [[ $test =~ ^lrange_[0-9]+$ ]] || die "test '$test': lrange_<N> takes a number of elements" ;;
    lrange*) die "test '$test': use lrange_<N> (LRANGE of the first N elements of a list filled beforehand)" ;;
  esac
done
for clients in $CLIENTS; do [[ $clients =~ ^[1-9][0-9]*$ ]] || die "CLIENTS: '$clients' is not a count"; done
[[ $NET_DELAY_US =~ ^[0-9]+$ ]] || die "NET_DELAY_US is a whole number of microseconds"
selected() { [[ " $TARGETS " == *" $1 "* ]]; }

need() { command -v "$1" >/dev/null || MISSING="$MISSING $2"; }
MISSING=""
need redis-server redis-server; need redis-benchmark redis-server; need nutcracker nutcracker
if [ -n "$MISSING" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  # shellcheck disable=SC2086
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING >/dev/null
fi
if [ -n "${PERCORE:-}" ]; then
  BIN=$PERCORE
else
  cargo build --release --quiet
  BIN=./target/release/percore
fi
PREDIXY=""
if selected predixy; then
  PREDIXY=$(bash bench-scripts/predixy.sh bin) || die "no predixy binary (see above); or leave predixy out of TARGETS"
fi
ulimit -l unlimited 2>/dev/null || true
# 10,000 clients need 10,000 descriptors in redis-benchmark, in a proxy and in a direct
# server, and twice that in a relay; every process started below inherits this.
CLIENTS_MAX=0
for clients in $CLIENTS; do [ "$clients" -le "$CLIENTS_MAX" ] || CLIENTS_MAX=$clients; done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ $((CLIENTS_MAX + 100)) -gt "$(ulimit -n)" ]; then
  echo "== open files limited to $(ulimit -n): lines of $CLIENTS_MAX clients may fail to connect" >&2
fi
# percore's --max-clients (default 10000) is shared equally by its cores, and the kernel does
# not spread connections equally over them: twice the largest count and a margin.
PERCORE_LIMITS=()
[ $((2 * CLIENTS_MAX + 1000)) -le 10000 ] || PERCORE_LIMITS=(--max-clients $((2 * CLIENTS_MAX + 1000)))

WORK=$(mktemp -d /tmp/percore-compare.XXXXXX)
PIDS=()
NS=""; HOST_IF=""
SERVER_HOST=127.0.0.1   # where the servers are reached; proxies always listen on 127.0.0.1
PORT_OFFSET=0           # servers really listen this much above their ports (relay mode)
NET_MODE="loopback"
CLUSTER_ENV=()
SERVER_PIDS=""
in_ns() { if [ -n "$NS" ]; then ip netns exec "$NS" "$@"; else "$@"; fi; }
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for port in 7100 7101 7102 7103; do redis-cli -h "$SERVER_HOST" -p $((port + PORT_OFFSET)) shutdown nosave >/dev/null 2>&1 || true; done
  # shellcheck disable=SC2046
  [ -z "${TLS_PORTS:-}" ] || redis-cli $(tls_flags 7104) -h "$SERVER_HOST" -p $((7104 + PORT_OFFSET)) shutdown nosave >/dev/null 2>&1 || true
  env "${CLUSTER_ENV[@]}" bash bench-scripts/cluster-down.sh >/dev/null 2>&1 || true
  # A server in the namespace that did not stop would keep its network alive after `ip netns del`.
  # shellcheck disable=SC2086
  [ -z "$NS" ] || [ -z "${SERVER_PIDS// /}" ] || kill $SERVER_PIDS 2>/dev/null || true
  [ -z "$HOST_IF" ] || ip link del "$HOST_IF" 2>/dev/null || true
  [ -z "$NS" ] || ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The backends' network: loopback, or a namespace of our own behind a veth pair with a delay.
declare -A RELAY_PID
if [ "$NET_DELAY_US" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "NET_DELAY_US needs root (ip netns, ip link)"
  ! ip -4 addr | grep -q "10\.231\.78\." || die "10.231.78.0/24 is already in use on this host"
  NS=percore-compare-$$; HOST_IF=pccmp$$h; NS_IF=pccmp$$n
  ip netns add "$NS"
  ip link add "$HOST_IF" type veth peer name "$NS_IF"
  ip link set "$NS_IF" netns "$NS"
  ip addr add 10.231.78.1/24 dev "$HOST_IF"
  ip link set "$HOST_IF" up
  ip netns exec "$NS" ip addr add 10.231.78.2/24 dev "$NS_IF"
  ip netns exec "$NS" ip link set "$NS_IF" up
  ip netns exec "$NS" ip link set lo up
  # The relays open a server connection per client and close it first, so each line of 10,000
  # clients leaves 10,000 of their ports in TIME_WAIT for a minute; the default (2) reuses only
  # loopback's, and a connect that must search a nearly spent port range costs the relay
  # hundreds of microseconds. This namespace is the script's own: nothing else is affected.
  ip netns exec "$NS" sysctl -q -w net.ipv4.tcp_tw_reuse=1
  SERVER_HOST=10.231.78.2
  CLUSTER_ENV=(HOST="$SERVER_HOST" NETNS="$NS" CLUSTER_DIR="$WORK/cluster")
  if [ "$NET_EMULATION" != relay ] && tc qdisc add dev "$HOST_IF" root netem delay "${NET_DELAY_US}us" 2>"$WORK/netem.err"; then
    NET_MODE="netem"
  elif [ "$NET_EMULATION" = netem ]; then
    die "NET_EMULATION=netem, but: $(cat "$WORK/netem.err")"
  else
    NET_MODE="relay"
    PORT_OFFSET=1000
    CLUSTER_ENV+=(PORT_OFFSET="$PORT_OFFSET")
    RELAY=${DELAY_RELAY:-}
    if [ -z "$RELAY" ]; then
      cargo build --release --quiet --manifest-path benches/delay-relay/Cargo.toml --target-dir target/delay-relay
      RELAY=target/delay-relay/release/delay-relay
    fi
    relay_ports="7000 7001 7002 7100 7101 7102 7103"
    selected redis-tls && relay_ports="$relay_ports 7104"
    for port in $relay_ports; do
      # A relay takes two descriptors per client: the direct servers' relays, which take every
      # client of a line, run in as many copies (sharing the port) as the open-file limit
      # needs. The proxies hold a few connections to each server.
      copies=1
      case $port in 7100 | 7104) copies=$((1 + (2 * CLIENTS_MAX + 100) / $(ulimit -n))) ;; esac
      for ((copy = 0; copy < copies; copy++)); do
        ip netns exec "$NS" "$RELAY" "$SERVER_HOST:$port" "$SERVER_HOST:$((port + PORT_OFFSET))" "$NET_DELAY_US" \
          2>"$WORK/relay-$port-$copy.log" &
        PIDS+=($!); RELAY_PID[$port]="${RELAY_PID[$port]:-} $!"
      done
    done
  fi
  echo "== backends in network namespace $NS at $SERVER_HOST, ${NET_DELAY_US} us added per round trip by $NET_MODE"
fi
NET_NOTE="Backends: loopback."
[ "$NET_MODE" = loopback ] || NET_NOTE="Backends: in a network namespace over a veth pair, ${NET_DELAY_US} µs added to each round trip by $NET_MODE$([ "$NET_MODE" = relay ] && echo " (benches/delay-relay, its CPU apart)")."
relays_of() { local port out=""; for port in "$@"; do out="$out ${RELAY_PID[$port]:-}"; done; echo "$out"; }

# Servers: a cluster for percore, standalone servers for redis-direct and nutcracker.
env "${CLUSTER_ENV[@]}" bash bench-scripts/cluster-up.sh >/dev/null
for port in 7100 7101 7102 7103; do
  in_ns redis-server --port $((port + PORT_OFFSET)) --bind "$SERVER_HOST" --save '' --appendonly no --daemonize yes \
    --protected-mode no --dir "$WORK" --logfile "$WORK/redis-$port.log" >/dev/null
done
cat >"$WORK/nutcracker.yml" <<EOF
pool:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
   - $SERVER_HOST:7101:1
   - $SERVER_HOST:7102:1
   - $SERVER_HOST:7103:1
EOF
# Its stats port (default 22222) can be taken by another percore or nutcracker on the machine,
# which makes nutcracker exit at start: NUT_STATS_PORT moves it. Started for its own target and
# for the pools, whose servers are filled and checked through it.
NUT_PID=""; NUT_PORTS=""
if selected nutcracker || selected pool-1t || selected pool-2t; then
  nutcracker -c "$WORK/nutcracker.yml" -o "$WORK/nutcracker.log" -s "${NUT_STATS_PORT:-22222}" &
  PIDS+=($!); NUT_PID=$!; NUT_PORTS=22121
fi
SEEDS=$SERVER_HOST:7000,$SERVER_HOST:7001,$SERVER_HOST:7002
"$BIN" --listen 127.0.0.1:6381 --cluster "$SEEDS" --threads 1 "${PERCORE_LIMITS[@]}" --log-level warn 2>"$WORK/p1.log" &
PIDS+=($!); P1_PID=$!
"$BIN" --listen 127.0.0.1:6382 --cluster "$SEEDS" --threads 2 "${PERCORE_LIMITS[@]}" --log-level warn 2>"$WORK/p2.log" &
PIDS+=($!); P2_PID=$!
# predixy: 1 worker thread, like percore-1t, over the same cluster.
PREDIXY_PID=""; PREDIXY_PORTS=""
if selected predixy; then
  bash bench-scripts/predixy.sh config "$WORK/predixy.conf" 127.0.0.1:6389 "$SEEDS" 1
  "$PREDIXY" "$WORK/predixy.conf" >"$WORK/predixy.log" 2>&1 &
  PIDS+=($!); PREDIXY_PID=$!; PREDIXY_PORTS=6389
fi
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
    -CAcreateserial -days 2 -extfile <(echo "subjectAltName=IP:127.0.0.1,IP:$SERVER_HOST") \
    -out "$WORK/server.pem" 2>/dev/null
  TLS_CERT=(--tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key")
fi
PT1_PID=""; PT2_PID=""
if selected redis-tls; then
  in_ns redis-server --port 0 --tls-port $((7104 + PORT_OFFSET)) --bind "$SERVER_HOST" --save '' --appendonly no \
    --tls-cert-file "$WORK/server.pem" --tls-key-file "$WORK/server.key" --protected-mode no \
    --tls-ca-cert-file "$WORK/ca.pem" --tls-auth-clients no --daemonize yes \
    --dir "$WORK" --logfile "$WORK/redis-7104.log" >/dev/null
  TLS_PORTS="$TLS_PORTS 7104"
fi
if selected percore-tls-1t; then
  "$BIN" --listen 127.0.0.1:6385 --cluster "$SEEDS" --threads 1 "${TLS_CERT[@]}" "${PERCORE_LIMITS[@]}" --log-level warn 2>"$WORK/pt1.log" &
  PIDS+=($!); PT1_PID=$!; TLS_PORTS="$TLS_PORTS 6385"
fi
if selected percore-tls-2t; then
  "$BIN" --listen 127.0.0.1:6386 --cluster "$SEEDS" --threads 2 "${TLS_CERT[@]}" "${PERCORE_LIMITS[@]}" --log-level warn 2>"$WORK/pt2.log" &
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

# The servers' own ports (7100.., the TLS one) are at SERVER_HOST; everything else is a proxy
# on this host's loopback.
host_of() { case $1 in 70?? | 71??) echo "$SERVER_HOST" ;; *) echo 127.0.0.1 ;; esac; }
# A port that does not answer is not filled, and its target's lines are recorded as failed
# without running redis-benchmark (which spins on a refused connection until RUN_TIMEOUT).
DEAD_PORTS=""
for port in 7100 $NUT_PORTS 6381 6382 $PREDIXY_PORTS $POOL_PORTS $TLS_PORTS "${PEER_PORT[@]}"; do
  ready=""
  for _ in $(seq 1 100); do
    # shellcheck disable=SC2046
    [ "$(redis-cli $(tls_flags "$port") -h "$(host_of "$port")" -p "$port" set compare:ready 1 2>/dev/null)" = OK ] && { ready=1; break; }
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    DEAD_PORTS="$DEAD_PORTS $port"
    mkdir -p "$OUT/compare-$STAMP-logs" && cp "$WORK"/*.log "$OUT/compare-$STAMP-logs/"
    echo "== port $port is not answering SET after 10 s: its lines will be recorded as failed; logs in $OUT/compare-$STAMP-logs" >&2
  fi
done
dead() { [[ " $DEAD_PORTS " == *" $1 "* ]]; }

# A server's pid, from the port it really listens on (in the namespace when there is one).
server_pid() { in_ns ss -ltnpH "sport = :$(($1 + PORT_OFFSET))" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
CLUSTER_PIDS="$(server_pid 7000) $(server_pid 7001) $(server_pid 7002)"
NUT_BACKENDS="$(server_pid 7101) $(server_pid 7102) $(server_pid 7103)"
DIRECT_PID=$(server_pid 7100)
DIRECT_TLS_PID=""; selected redis-tls && DIRECT_TLS_PID=$(server_pid 7104)
SERVER_PIDS="$CLUSTER_PIDS $NUT_BACKENDS $DIRECT_PID $DIRECT_TLS_PID"
CLUSTER_RELAYS=$(relays_of 7000 7001 7002); NUT_RELAYS=$(relays_of 7101 7102 7103)
DIRECT_RELAY=$(relays_of 7100); DIRECT_TLS_RELAY=$(relays_of 7104)
# A direct target takes every client itself: room for the largest count (Redis's default is
# 10,000, and redis-benchmark's CONFIG GET connection may still be closing when they come).
if [ $((CLIENTS_MAX + 1000)) -gt 10000 ]; then
  for port in 7000 7001 7002 7100 7101 7102 7103 $TLS_PORTS; do
    case $port in 63??) continue ;; esac
    # shellcheck disable=SC2046
    redis-cli $(tls_flags "$port") -h "$SERVER_HOST" -p "$port" config set maxclients $((CLIENTS_MAX + 1000)) >/dev/null ||
      echo "== could not raise maxclients of the server on port $port" >&2
  done
fi
TICKS=$(getconf CLK_TCK)

# Before a line of many clients to a server over the veth pair (the direct targets with
# NET_DELAY_US): each such line leaves its clients' ports in TIME_WAIT for a minute on this
# host, where tcp_tw_reuse (2 by default) reuses only loopback's, and the host's settings are
# not the script's to change; so wait until the ephemeral range has room for this line.
PORT_RANGE=$(awk '{print $2 - $1 + 1}' /proc/sys/net/ipv4/ip_local_port_range)
wait_for_ports() {
  local clients=$1 host=$2 port=$3 waited=0 held
  [ "$host" != 127.0.0.1 ] || return 0
  while held=$(ss -tanH state time-wait dst "$host:$port" | wc -l) && [ $((PORT_RANGE - held)) -lt $((clients + 1000)) ]; do
    [ "$waited" -lt 90 ] || { echo "  still $held ports in TIME_WAIT to $host:$port after 90 s; running anyway" >&2; return 0; }
    [ "$waited" -gt 0 ] || echo "  waiting for $held ports in TIME_WAIT to $host:$port to expire (room for $clients clients)"
    sleep 5; waited=$((waited + 5))
  done
}

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

# The keys of a size's lines: KEYSPACE, or fewer where FILL_MB would not hold them (64 KiB
# values: 4,096 keys, 256 MiB per copy; there are up to four copies: direct, nutcracker's
# servers, the cluster, the TLS server).
keyspace_of() {
  local keys=$((FILL_MB * 1048576 / $1))
  [ "$keys" -lt "$KEYSPACE" ] && echo "$keys" || echo "$KEYSPACE"
}

# Fills every target's keyspace with values of SIZE bytes before that size's lines (not
# measured), so every target's GETs hit, return values of the size the line names, and look
# keys up in tables of the same size: a GET on an empty server costs it far less. Every server
# is emptied first; five SETs per key at random then leave ~99% of the keys set. The pools
# share nutcracker's servers and place keys as it does, so filling them through nutcracker
# fills them for the pools too. Only the servers some selected target reads are filled. With
# lrange_<N> tests, the list mylist too.
FILL_PORTS=""
selected redis && FILL_PORTS="$FILL_PORTS 7100"
selected redis-tls && FILL_PORTS="$FILL_PORTS 7104"
FILL_PORTS="$FILL_PORTS $NUT_PORTS"
if selected percore-1t || selected percore-2t || selected percore-tls-1t || selected percore-tls-2t || selected predixy ||
  [[ " $TARGETS" == *" peer-"* ]]; then FILL_PORTS="$FILL_PORTS 6381"; fi
populate() {
  local size=$1 port keys list_len
  keys=$(keyspace_of "$size")
  # A smaller keyspace than the last size's would leave that size's keys behind.
  for port in 7000 7001 7002 7100 7101 7102 7103 $TLS_PORTS; do
    case $port in 63??) continue ;; esac
    # shellcheck disable=SC2046
    redis-cli $(tls_flags "$port") -h "$SERVER_HOST" -p "$port" flushall >/dev/null
  done
  for port in $FILL_PORTS; do
    dead "$port" && continue
    # shellcheck disable=SC2046
    timeout "$RUN_TIMEOUT" redis-benchmark $(tls_flags "$port") -h "$(host_of "$port")" -p "$port" -t set -P 64 -c 10 \
      -n $((keys * 5)) -r "$keys" -d "$size" -q >/dev/null 2>&1 || echo "  populate via port $port failed" >&2
  done
  # The list for lrange_<N>: as long as the longest such line of this size that runs.
  list_len=0
  for test in $TESTS; do
    case $test in lrange_*) k=${test#lrange_} ;; *) continue ;; esac
    [ $((k * size)) -gt "$MAX_MESSAGE" ] || [ "$k" -le "$list_len" ] || list_len=$k
  done
  if [ "$list_len" -gt 0 ]; then
    for port in $FILL_PORTS; do
      dead "$port" && continue
      # shellcheck disable=SC2046
      redis-cli $(tls_flags "$port") -h "$(host_of "$port")" -p "$port" del mylist >/dev/null
      # shellcheck disable=SC2046
      timeout "$RUN_TIMEOUT" redis-benchmark $(tls_flags "$port") -h "$(host_of "$port")" -p "$port" -t lpush -c 1 \
        -n "$list_len" -d "$size" -q >/dev/null 2>&1 || true
      # shellcheck disable=SC2046
      got=$(redis-cli $(tls_flags "$port") -h "$(host_of "$port")" -p "$port" llen mylist)
      [ "$got" = "$list_len" ] || echo "  mylist via port $port has $got elements, not $list_len" >&2
    done
  fi
  echo "== d$size: $keys keys$([ "$list_len" -gt 0 ] && echo ", mylist of $list_len")$([ -n "$NUT_PORTS" ] &&
    echo "; keys on nutcracker's (and the pools') servers 7101/7102/7103:" \
      "$(for port in 7101 7102 7103; do redis-cli -h "$SERVER_HOST" -p $port dbsize; done | tr '\n' ' ')")"
  # A pool that placed keys elsewhere than nutcracker would miss its GETs, which cost less:
  # the same keys must read the same through both.
  local keys_list want
  [ -n "$POOL_PORTS" ] && ! dead 22121 || return 0
  keys_list=$(for ((k = 0; k < 50; k++)); do printf 'key:%012d ' "$k"; done)
  # shellcheck disable=SC2086
  want=$(redis-cli -p 22121 mget $keys_list | md5sum)
  for port in $POOL_PORTS; do
    # shellcheck disable=SC2086
    [ "$(redis-cli -p "$port" mget $keys_list | md5sum)" = "$want" ] ||
      echo "== the pool on port $port reads other values than nutcracker: placement differs" >&2
  done
}

# The redis-benchmark arguments of a test, into BENCH_ARGS; its request count for a line of n
# requests, into BENCH_N; how many values one request or reply carries, into BENCH_VALUES.
# mget is a custom command: each __rand_int__ is replaced by its own random number, so one
# MGET reads its keys spread over every server (and slot), named like those -t set fills
# (key:<12 digits>). Lines of N keys or elements run 10/N as many requests as the others, so
# they touch as many keys as the 10-key mset line.
bench_args() {
  local test=$1 n=$2 k
  case $test in
    mget | mget[0-9]*)
      k=${test#mget}; k=${k:-$MGET_KEYS}
      BENCH_ARGS=(MGET)
      for ((i = 0; i < k; i++)); do BENCH_ARGS+=("key:__rand_int__"); done
      BENCH_VALUES=$k; BENCH_N=$((n * 10 / k)) ;;
    lrange_*)
      k=${test#lrange_}
      BENCH_ARGS=(LRANGE mylist 0 $((k - 1)))
      BENCH_VALUES=$k; BENCH_N=$((n * 10 / k)) ;;
    mset) BENCH_ARGS=(-t mset); BENCH_VALUES=10; BENCH_N=$n ;;
    *) BENCH_ARGS=(-t "$test"); BENCH_VALUES=1; BENCH_N=$n ;;
  esac
  [ "$BENCH_N" -ge 1 ] || BENCH_N=1
}

# Why a target cannot serve a line, or nothing.
cannot_serve() {
  local target=$1 protocol=$2
  if [ "$protocol" = 3 ]; then
    case $target in
      nutcracker) echo "speaks only RESP2" ;;
      predixy) echo "no HELLO, so no RESP3" ;;
    esac
  fi
  true
}

echo "round,target,test,pipeline,size,requests,rps,p50_ms,p99_ms,proxy_cpu_us_per_req,backend_cpu_us_per_req,other_cpu_frac,flag,clients,relay_cpu_us_per_req,net_delay_us" >"$CSV"
echo "== results in $CSV"
for size in $SIZES; do
  populate "$size"
  keys=$(keyspace_of "$size")
  for pipeline in $PIPELINES; do
    for clients in $CLIENTS; do
    for test in $TESTS; do
    for protocol in $PROTOCOLS; do
      n=$REQUESTS; [ "$pipeline" = 1 ] && n=$((REQUESTS / 4))
      [ "$n" -ge $((MIN_PER_CLIENT * clients)) ] || n=$((MIN_PER_CLIENT * clients))
      bench_args "$test" "$n"; n=$BENCH_N
      [ "$size" -le 4096 ] || n=$((n * 4096 / size))
      [ "$n" -ge "$clients" ] || n=$clients
      # Lines are named apart (get-c1000, get-resp3) so the report keeps them apart.
      label=$test; resp_flag=""
      [ "$clients" = "$BASE_CLIENTS" ] || label="$label-c$clients"
      if [ "$protocol" = 3 ]; then label="$label-resp3"; resp_flag="-3"; fi
      message=$((BENCH_VALUES * size))
      if [ "$message" -gt "$MAX_MESSAGE" ]; then
        echo "  skip $label P$pipeline d$size: one request or reply would carry $message bytes of values (MAX_MESSAGE=$MAX_MESSAGE)"; continue
      fi
      if [ $((clients * pipeline * message)) -gt "$MAX_INFLIGHT" ]; then
        echo "  skip $label P$pipeline d$size: $clients clients x $pipeline x $message bytes in flight (MAX_INFLIGHT=$MAX_INFLIGHT)"; continue
      fi
      notes=""
      for target in $TARGETS; do
        why=$(cannot_serve "$target" "$protocol"); [ -z "$why" ] || notes="$notes, $target ($why)"
      done
      [ -z "$notes" ] || echo "  $label P$pipeline d$size: not run on${notes#,}"
      for round in $(seq 1 "$ROUNDS"); do
      # shellcheck disable=SC2086
      for target in $(rotate "$round" $TARGETS); do
        [ -z "$(cannot_serve "$target" "$protocol")" ] || continue
        host=127.0.0.1; relays=""
        case $target in
          redis) port=7100; proxy=""; backends="$DIRECT_PID"; host=$SERVER_HOST; relays=$DIRECT_RELAY ;;
          nutcracker) port=22121; proxy=$NUT_PID; backends="$NUT_BACKENDS"; relays=$NUT_RELAYS ;;
          predixy) port=6389; proxy=$PREDIXY_PID; backends="$CLUSTER_PIDS"; relays=$CLUSTER_RELAYS ;;
          percore-1t) port=6381; proxy=$P1_PID; backends="$CLUSTER_PIDS"; relays=$CLUSTER_RELAYS ;;
          percore-2t) port=6382; proxy=$P2_PID; backends="$CLUSTER_PIDS"; relays=$CLUSTER_RELAYS ;;
          pool-1t) port=6383; proxy=$POOL1_PID; backends="$NUT_BACKENDS"; relays=$NUT_RELAYS ;;
          pool-2t) port=6384; proxy=$POOL2_PID; backends="$NUT_BACKENDS"; relays=$NUT_RELAYS ;;
          redis-tls) port=7104; proxy=""; backends="$DIRECT_TLS_PID"; host=$SERVER_HOST; relays=$DIRECT_TLS_RELAY ;;
          percore-tls-1t) port=6385; proxy=$PT1_PID; backends="$CLUSTER_PIDS"; relays=$CLUSTER_RELAYS ;;
          percore-tls-2t) port=6386; proxy=$PT2_PID; backends="$CLUSTER_PIDS"; relays=$CLUSTER_RELAYS ;;
          peer-*) port=${PEER_PORT[${target#peer-}]}; proxy=${PEER_PID[${target#peer-}]}; backends="$CLUSTER_PIDS"; relays=$CLUSTER_RELAYS ;;
          *) echo "unknown target $target" >&2; continue ;;
        esac
        if dead "$port"; then
          echo "$round,$target,$label,$pipeline,$size,$n,,,,,,,failed,$clients,,$NET_DELAY_US" >>"$CSV"
          echo "  r$round $target $label P$pipeline d$size: FAILED (port $port did not answer at start)"; continue
        fi
        wait_for_ports "$clients" "$host" "$port"
        # shellcheck disable=SC2086
        { p0=$(cpu_of $proxy); b0=$(cpu_of $backends); r0=$(cpu_of $relays); m0=$(machine_busy); t0=$(date +%s.%N); }
        # shellcheck disable=SC2046,SC2086
        line=$( (/usr/bin/time -f 'BENCHCPU %U %S' timeout "$RUN_TIMEOUT" redis-benchmark $(tls_flags $port) -h "$host" -p $port \
          $resp_flag -P "$pipeline" -c "$clients" -n "$n" -r "$keys" -d "$size" --csv "${BENCH_ARGS[@]}"; echo "BENCHRC $?") 2>&1 || true)
        # shellcheck disable=SC2086
        { t1=$(date +%s.%N); p1=$(cpu_of $proxy); b1=$(cpu_of $backends); r1=$(cpu_of $relays); m1=$(machine_busy); }
        row=$(echo "$line" | grep -v '^"test"' | grep '^"' | tail -1 | tr -d '"' || true)
        bench_cpu=$(echo "$line" | awk '/BENCHCPU/{print $2 + $3}')
        if [ -z "$row" ]; then
          rc=$(echo "$line" | awk '/^BENCHRC/{print $2}')
          why=$(echo "$line" | tr '\r' '\n' | grep -v -E '^(BENCH|")|rps=|^$' | grep -i -m1 -E 'error|cannot|refused|reset|denied|max' || true)
          [ "$rc" != 124 ] || why="no result within RUN_TIMEOUT=$RUN_TIMEOUT s${why:+ ($why)}"
          echo "$round,$target,$label,$pipeline,$size,$n,,,,,,,failed,$clients,,$NET_DELAY_US" >>"$CSV"
          echo "  r$round $target $label P$pipeline d$size: FAILED (exit ${rc:-?}${why:+: $why})"; continue
        fi
        rps=$(echo "$row" | cut -d, -f2); p50=$(echo "$row" | cut -d, -f5); p99=$(echo "$row" | cut -d, -f7)
        read -r proxy_us backend_us relay_us other flag < <(awk -v p=$((p1 - p0)) -v b=$((b1 - b0)) -v r=$((r1 - r0)) \
          -v m=$((m1 - m0)) -v tk="$TICKS" -v n="$n" -v bc="${bench_cpu:-0}" -v t0="$t0" -v t1="$t1" -v lim="$OTHER_BUSY_LIMIT" 'BEGIN {
            secs = t1 - t0; other = (m - p - b - r) / tk - bc; frac = other / secs; if (frac < 0) frac = 0
            printf "%.2f %.2f %.2f %.3f %s\n", p / tk * 1e6 / n, b / tk * 1e6 / n, r / tk * 1e6 / n, frac, (frac > lim ? "busy" : "ok") }')
        [ -z "$proxy" ] && proxy_us=""
        [ -z "${relays// /}" ] && relay_us=""
        echo "$round,$target,$label,$pipeline,$size,$n,$rps,$p50,$p99,$proxy_us,$backend_us,$other,$flag,$clients,$relay_us,$NET_DELAY_US" >>"$CSV"
        printf '  r%s %-11s %-10s P%-2s d%-5s %10s req/s  p50 %6s ms  p99 %6s ms  proxy %6s us/req  backend %6s us/req%s  %s\n' \
          "$round" "$target" "$label" "$pipeline" "$size" "$rps" "$p50" "$p99" "${proxy_us:--}" "$backend_us" \
          "${relay_us:+  relay $relay_us us/req}" "$flag"
      done
      done
    done
    done
    done
  done
done

python3 bench-scripts/report.py "$CSV" "$MD" "$OUT/compare-$STAMP.png" "$NET_NOTE"
echo "== $MD"
cat "$MD"
