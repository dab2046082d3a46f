#!/usr/bin/env bash
# The case sidecar mode is for (issue 15): a redis-server one network hop away, with real
# latency, and an application next to percore that opens a short-lived connection per request.
#
# The server runs in a network namespace this script creates, reached over a veth pair
# (10.231.77.1 <-> 10.231.77.2, nothing else is routed there) with `tc netem delay 1ms` on the
# host's end. Where the kernel has no netem (`Specified qdisc kind is unknown`), a small relay
# inside the namespace adds the same delay in user space instead (1 ms before each chunk
# towards the server, and 1 ms more before a new connection's first chunk, as netem's 1 ms on
# the SYN would): the output says which one ran, and the relay's CPU is shown apart.
#
# Measures, with one client process (Python, raw RESP):
#   writes: WRITES (10,000) SETs, one at a time, each on its own new connection: directly to the
#           server, through percore (synchronous), through percore with async_writes;
#   gets:   GET_RATE (100) one-shot connections a second doing one GET each, for GET_SECONDS:
#           directly, and through percore's kept connections.
# For each: wall time, latency of one request (connect included), and CPU (user+system, from
# /proc) of the client, percore, redis-server (and the relay), per request and as ratios.
#
# Needs root (ip netns), redis-server, python3, and a built percore (debug, `cargo build`).
#   sudo bash bench-scripts/sidecar.sh
# Env: WRITES, GET_RATE, GET_SECONDS, PERCORE (binary), THREADS (percore's, default 1).
set -euo pipefail

WRITES=${WRITES:-10000}
GET_RATE=${GET_RATE:-100}
GET_SECONDS=${GET_SECONDS:-10}
THREADS=${THREADS:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PERCORE=${PERCORE:-$ROOT/target/debug/percore}
NS=percore-sidecar-$$
HOST_IF=pcsc$$h
NS_IF=pcsc$$n
HOST_IP=10.231.77.1
NS_IP=10.231.77.2
SERVER_PORT=6379
WORK=$(mktemp -d)
PIDS=()

[ "$(id -u)" = 0 ] || { echo "needs root (ip netns)"; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server not found: apt-get install -y redis-server"; exit 1; }
[ -x "$PERCORE" ] || { echo "no percore at $PERCORE: cargo build"; exit 1; }
if ip -4 addr | grep -q "10.231.77."; then echo "10.231.77.0/24 is in use here"; exit 1; fi

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip link del "$HOST_IF" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

ip netns add "$NS"
ip link add "$HOST_IF" type veth peer name "$NS_IF"
ip link set "$NS_IF" netns "$NS"
ip addr add "$HOST_IP/24" dev "$HOST_IF"
ip link set "$HOST_IF" up
ip netns exec "$NS" ip addr add "$NS_IP/24" dev "$NS_IF"
ip netns exec "$NS" ip link set "$NS_IF" up
ip netns exec "$NS" ip link set lo up

cat > "$WORK/relay.py" <<'EOF'
# A delaying TCP relay: listen on sys.argv[1]:[2], forward to 127.0.0.1:sys.argv[3]; every
# chunk towards the server waits 1 ms, a connection's first chunk 1 ms more (the SYN's delay).
import asyncio, sys
DELAY = 0.001
async def pipe(reader, writer, delay_first, delay):
    loop = asyncio.get_running_loop()
    last = 0.0
    first = True
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            at = loop.time() + delay + (delay if first and delay_first else 0)
            first = False
            at = max(at, last)
            last = at
            loop.call_at(at, writer.write, data)
        await asyncio.sleep(max(0, last - loop.time()))
    finally:
        writer.close()
async def serve(reader, writer):
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(sys.argv[3]))
    await asyncio.gather(pipe(reader, up_writer, True, DELAY), pipe(up_reader, writer, False, 0),
                         return_exceptions=True)
async def main():
    server = await asyncio.start_server(serve, sys.argv[1], int(sys.argv[2]), backlog=1024)
    async with server:
        await server.serve_forever()
asyncio.run(main())
EOF

if tc qdisc add dev "$HOST_IF" root netem delay 1ms 2>/dev/null; then
    DELAY="tc netem delay 1ms on $HOST_IF"
    ip netns exec "$NS" redis-server --port "$SERVER_PORT" --bind "$NS_IP" --save '' \
        --appendonly no --protected-mode no --enable-debug-command yes --daemonize no --logfile "$WORK/redis.log" &
    PIDS+=($!)
    REDIS_PID=$!
    RELAY_PID=
else
    DELAY="user-space relay in the namespace, 1 ms per chunk towards the server (+1 ms on a new connection): this kernel has no netem"
    ip netns exec "$NS" redis-server --port 6390 --bind 127.0.0.1 --save '' \
        --appendonly no --protected-mode no --enable-debug-command yes --daemonize no --logfile "$WORK/redis.log" &
    PIDS+=($!)
    REDIS_PID=$!
    ip netns exec "$NS" python3 "$WORK/relay.py" "$NS_IP" "$SERVER_PORT" 6390 &
    PIDS+=($!)
    RELAY_PID=$!
fi

SYNC_PORT=26380
ASYNC_PORT=26381
cat > "$WORK/sidecar.yml" <<EOF
sync:
  listen: 127.0.0.1:$SYNC_PORT
  redis: true
  preconnect: true
  servers:
   - $NS_IP:$SERVER_PORT:1
async:
  listen: 127.0.0.1:$ASYNC_PORT
  redis: true
  preconnect: true
  async_writes: true
  servers:
   - $NS_IP:$SERVER_PORT:1
EOF
for _ in $(seq 100); do
    redis-cli -h "$NS_IP" -p "$SERVER_PORT" PING >/dev/null 2>&1 && break
    sleep 0.1
done
"$PERCORE" -c "$WORK/sidecar.yml" --threads "$THREADS" --log-level warn 2>"$WORK/percore.log" &
PIDS+=($!)
PERCORE_PID=$!
for _ in $(seq 100); do
    redis-cli -p "$ASYNC_PORT" PING >/dev/null 2>&1 && break
    sleep 0.1
done

cat > "$WORK/client.py" <<'EOF'
# The client: one phase, on stdout one JSON line with its figures.
import json, os, resource, socket, sys, time
mode, host, port, count, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
pids = {k: v for k, v in (a.split("=") for a in sys.argv[6:]) if v}
def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
def one(request, expect):
    s = socket.create_connection((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(request)
    reply = b""
    while not reply.endswith(b"\r\n") or (reply.startswith(b"$") and reply.count(b"\r\n") < 2):
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    assert reply.startswith(expect), reply
before = {name: cpu(pid) for name, pid in pids.items()}
me = resource.getrusage(resource.RUSAGE_SELF)
latencies = []
started = time.monotonic()
for i in range(count):
    if mode == "gets":
        due = started + i / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        key = b"key:%d" % (i % 1000)
        request = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
        expect = b"$"
    else:
        key = b"key:%d" % i
        request = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$5\r\nvalue\r\n" % (len(key), key)
        expect = b"+OK"
    t = time.monotonic()
    one(request, expect)
    latencies.append(time.monotonic() - t)
wall = time.monotonic() - started
after = resource.getrusage(resource.RUSAGE_SELF)
figures = {name: cpu(pid) - before[name] for name, pid in pids.items()}
figures["client"] = (after.ru_utime - me.ru_utime) + (after.ru_stime - me.ru_stime)
latencies.sort()
print(json.dumps({"wall": wall, "count": count, "cpu": figures,
                  "p50_ms": 1000 * latencies[len(latencies) // 2],
                  "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)]}))
EOF

# Waits until percore has handed every background write to the server.
flushed() {
    for _ in $(seq 600); do
        pending=$(redis-cli -p "$ASYNC_PORT" PROXY INFO | tr -d '\r' | sed -n 's/^background_pending://p')
        [ "$pending" = 0 ] && return 0
        sleep 0.05
    done
    echo "background writes still pending"; return 1
}

run() { # label mode port count rate
    redis-cli -h "$NS_IP" -p "$SERVER_PORT" FLUSHALL >/dev/null
    if [ "$2" = gets ]; then
        redis-cli -h "$NS_IP" -p "$SERVER_PORT" DEBUG POPULATE 1000 key >/dev/null
    fi
    local host=127.0.0.1
    [ "$3" = "$SERVER_PORT" ] && host=$NS_IP
    line=$(python3 "$WORK/client.py" "$2" "$host" "$3" "$4" "$5" \
        percore="$PERCORE_PID" redis="$REDIS_PID" relay="$RELAY_PID")
    [ "$3" = "$ASYNC_PORT" ] && flushed
    if [ "$2" = writes ]; then
        keys=$(redis-cli -h "$NS_IP" -p "$SERVER_PORT" DBSIZE)
        [ "$keys" = "$4" ] || { echo "$1: the server has $keys keys, not $4"; exit 1; }
    fi
    echo "$1 $line" >> "$WORK/results"
}

echo "delay: $DELAY"
echo "percore: $PERCORE, --threads $THREADS"
run "writes:direct" writes "$SERVER_PORT" "$WRITES" 0
run "writes:percore-sync" writes "$SYNC_PORT" "$WRITES" 0
run "writes:percore-async" writes "$ASYNC_PORT" "$WRITES" 0
gets=$((GET_RATE * GET_SECONDS))
run "gets:direct" gets "$SERVER_PORT" "$gets" "$GET_RATE"
run "gets:percore" gets "$SYNC_PORT" "$gets" "$GET_RATE"
# Idle: what percore and the server cost per second with the connections kept and nothing
# asked, which the GET runs' per-request figures include at GET_RATE a second.
idle() {
    ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
    local p0 r0
    p0=$(ticks "$PERCORE_PID"); r0=$(ticks "$REDIS_PID")
    sleep "$GET_SECONDS"
    local hz
    hz=$(getconf CLK_TCK)
    echo "idle for ${GET_SECONDS}s: percore $(( ($(ticks "$PERCORE_PID") - p0) * 1000000 / hz / GET_SECONDS )) µs CPU/s, redis-server $(( ($(ticks "$REDIS_PID") - r0) * 1000000 / hz / GET_SECONDS )) µs CPU/s"
}
idle
received=$(redis-cli -h "$NS_IP" -p "$SERVER_PORT" INFO stats | tr -d '\r' | sed -n 's/^total_connections_received://p')
echo "connections the server received in all (percore's kept ones included): $received"

python3 - "$WORK/results" <<'EOF'
import json, sys
rows = [(l.split(" ", 1)[0], json.loads(l.split(" ", 1)[1])) for l in open(sys.argv[1])]
print()
print("| run | requests | wall s | p50 ms | p99 ms | client CPU µs/req | percore CPU µs/req | redis CPU µs/req | relay CPU µs/req | total (client+percore+redis) µs/req | total vs direct |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
base = {}
for label, r in rows:
    n = r["count"]; c = r["cpu"]
    per = {k: 1e6 * v / n for k, v in c.items()}
    total = per.get("client", 0) + per.get("percore", 0) + per.get("redis", 0)
    group = label.split(":")[0]
    base.setdefault(group, total)
    print(f"| {label} | {n} | {r['wall']:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
          f"{per.get('client', 0):.0f} | {per.get('percore', 0):.0f} | {per.get('redis', 0):.0f} | "
          f"{per.get('relay', 0):.0f} | {total:.0f} | {total / base[group]:.2f} |")
EOF
