#!/usr/bin/env bash
# Stops the cluster started by cluster-up.sh and removes its data. MASTERS, REPLICAS, HOST and PORT_OFFSET as
# given to cluster-up.sh (the nodes are stopped at the ports they really listen on).
set -uo pipefail
MASTERS=${MASTERS:-3}
REPLICAS=${REPLICAS:-0}
BASE_PORT=${BASE_PORT:-7000}
DIR=${CLUSTER_DIR:-/tmp/percore-cluster}
HOST=${HOST:-127.0.0.1}
PORT_OFFSET=${PORT_OFFSET:-0}
for ((i = 0; i < MASTERS * (1 + REPLICAS); i++)); do
  redis-cli -h "$HOST" -p $((BASE_PORT + i + PORT_OFFSET)) shutdown nosave >/dev/null 2>&1 || true
done
rm -rf "$DIR"
echo "cluster stopped"
