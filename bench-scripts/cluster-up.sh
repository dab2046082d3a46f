#!/usr/bin/env bash
# Starts a local Redis Cluster for demos and benchmarks: MASTERS masters (default 3) with
# REPLICAS replicas each (default 0) on 127.0.0.1, ports BASE_PORT.. (default 7000..), data in
# a temp dir, no persistence. With replicas it returns once every node lists them.
# Re-running it while the cluster is up is a no-op. Stop it with cluster-down.sh.
#
# For compare.sh's NET_DELAY_US mode (servers in a network namespace): HOST is the address the
# nodes bind and announce (default 127.0.0.1), NETNS a network namespace to start them in, and
# PORT_OFFSET moves where they really listen: node i listens on BASE_PORT+i+PORT_OFFSET (its
# bus 10000 above that) and announces BASE_PORT+i, where a delay relay forwards to it. With an
# offset the relays must be up first: the cluster is created and checked through them, at the
# addresses clients are given.
set -euo pipefail
MASTERS=${MASTERS:-3}
REPLICAS=${REPLICAS:-0}
BASE_PORT=${BASE_PORT:-7000}
DIR=${CLUSTER_DIR:-/tmp/percore-cluster}
HOST=${HOST:-127.0.0.1}
NETNS=${NETNS:-}
PORT_OFFSET=${PORT_OFFSET:-0}

command -v redis-server >/dev/null || { echo "redis-server not found: apt-get install -y redis-server" >&2; exit 1; }
in_ns() { if [ -n "$NETNS" ]; then ip netns exec "$NETNS" "$@"; else "$@"; fi; }

ports=()
for ((i = 0; i < MASTERS * (1 + REPLICAS); i++)); do ports+=($((BASE_PORT + i))); done

if redis-cli -h "$HOST" -p "${ports[0]}" cluster info 2>/dev/null | grep -q cluster_state:ok; then
  echo "cluster already up on ports ${ports[*]}"
  exit 0
fi

mkdir -p "$DIR"
for port in "${ports[@]}"; do
  mkdir -p "$DIR/$port"
  rm -f "$DIR/$port/nodes.conf"
  announce=()
  # Nodes tell clients (CLUSTER SLOTS, MOVED) and each other where they are: the relay's
  # port, and an address other than loopback.
  [ "$HOST" = 127.0.0.1 ] || announce+=(--cluster-announce-ip "$HOST")
  [ "$PORT_OFFSET" = 0 ] || announce+=(--cluster-announce-port "$port")
  in_ns redis-server --port $((port + PORT_OFFSET)) --bind "$HOST" --cluster-enabled yes "${announce[@]}" \
    --cluster-config-file nodes.conf --cluster-node-timeout 2000 --appendonly no --save '' \
    --dir "$DIR/$port" --logfile "$DIR/$port/redis.log" --daemonize yes --protected-mode no
done
for port in "${ports[@]}"; do
  for _ in $(seq 1 100); do redis-cli -h "$HOST" -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
done
addrs=()
for port in "${ports[@]}"; do addrs+=("$HOST:$port"); done
redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$REPLICAS" --cluster-yes >/dev/null
# Every node ok, and (with replicas) listing every replica: gossip takes a moment to carry them.
for _ in $(seq 1 300); do
  ok=1
  for port in "${ports[@]}"; do
    redis-cli -h "$HOST" -p "$port" cluster info | grep -q cluster_state:ok || ok=0
    listed=$(redis-cli -h "$HOST" -p "$port" cluster nodes | grep -c 'slave [0-9a-f]' || true)
    [ "$listed" = $((MASTERS * REPLICAS)) ] || ok=0
  done
  [ "$ok" = 1 ] && { echo "cluster up on ports ${ports[*]}"; exit 0; }
  sleep 0.1
done
echo "cluster did not reach cluster_state:ok" >&2
exit 1
