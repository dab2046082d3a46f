#!/usr/bin/env bash
# Stops the cluster started by cluster-up.sh and removes its data.
set -uo pipefail
MASTERS=${MASTERS:-3}
BASE_PORT=${BASE_PORT:-7000}
DIR=${CLUSTER_DIR:-/tmp/percore-cluster}
for ((i = 0; i < MASTERS; i++)); do
  redis-cli -p $((BASE_PORT + i)) shutdown nosave >/dev/null 2>&1 || true
done
rm -rf "$DIR"
echo "cluster stopped"
