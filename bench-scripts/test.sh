#!/usr/bin/env bash
# Runs every test of percore, on a fresh machine too: installs redis-server when missing,
# then formatting and lint checks, unit and integration tests (against real redis-server
# processes the tests start themselves), and compiles the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "== installing redis-server"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
# The demo cluster must not be left running by the tests, and the tests must not depend on
# it: they start their own nodes on free ports.
redis-server --version

echo "== layout: no import circles, no process::exit below main, file sizes"
python3 bench-scripts/check-layout.py
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== fuzz targets compile (run them with cargo fuzz, see README)"
cargo check --quiet --manifest-path tests/fuzz/Cargo.toml --bins
echo "== cargo bench --no-run (every benchmark compiles)"
cargo bench --no-run
echo "== cargo test"
cargo test --all-targets
echo "== cargo test --doc"
cargo test --doc
