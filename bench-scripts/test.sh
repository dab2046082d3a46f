#!/usr/bin/env bash
# Runs every test of percore, on a fresh machine too: installs redis-server and nutcracker when
# missing (and Python's venv or Node.js when missing, for the client library tests), then
# formatting and lint checks, unit and integration tests (against real redis-server and
# nutcracker processes the tests start themselves, and the real client libraries they install
# under target/), and compiles the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

# nutcracker (twemproxy) is what tests/pool_placement.rs checks static pools' key placement
# against; Debian installs it in /usr/sbin, which a non-root PATH may not have.
servers=()
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  servers+=(redis-server)
fi
if ! command -v nutcracker >/dev/null && [ ! -x /usr/sbin/nutcracker ]; then
  servers+=(nutcracker)
fi
if [ ${#servers[@]} -gt 0 ]; then
  echo "== installing ${servers[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${servers[@]}" >/dev/null
fi
# tests/config_file.rs checks that nutcracker (twemproxy) accepts the same configuration files
# as percore -t; Debian packages it.
if ! command -v nutcracker >/dev/null; then
  echo "== installing nutcracker (for tests/config_file.rs)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nutcracker >/dev/null
fi
# The demo cluster must not be left running by the tests, and the tests must not depend on
# it: they start their own nodes on free ports.
redis-server --version
# sed reads all of nutcracker's output (head would exit after one line, and with pipefail
# the SIGPIPE nutcracker may then get would fail the whole run).
"$(command -v nutcracker || echo /usr/sbin/nutcracker)" -V 2>&1 | sed -n 1p

# tests/client_libraries.rs installs redis-py (into a venv) and ioredis and node-redis (with
# npm) under target/ itself; it needs Python 3 with venv and Node.js with npm. Installed only
# where missing: Debian's own python3 comes without venv (python3-venv), a machine without
# Node.js gets Debian's (nodejs, npm).
need=()
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then need+=(python3-venv); fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then need+=(nodejs npm); fi
# tests/static_pool.rs reads a listening socket's backlog with ss (iproute2).
if ! command -v ss >/dev/null; then need+=(iproute2); fi
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} (for tests/client_libraries.rs, tests/static_pool.rs)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "python: $(python3 --version), node: $(node --version), npm: $(npm --version)"

echo "== layout: no import circles, no process::exit below main, file sizes"
python3 bench-scripts/check-layout.py
echo "== cargo fmt --check"
cargo fmt --all -- --check
# The generated command table must be exactly what its generator writes; that can only be
# checked against the redis-server version it was generated from, so another version is
# reported, not failed (tests/command_table.rs still checks the table against it).
echo "== command table is what its redis-server generates"
table_version=$(sed -n 's/^pub const GENERATED_FROM: &str = "\(.*\)";$/\1/p' src/command/commands.rs)
server_version=$(redis-server --version | sed -n 's/.* v=\([0-9.]*\) .*/\1/p')
if [ -z "$table_version" ] || [ -z "$server_version" ]; then
  echo "cannot read the versions: table '$table_version', redis-server '$server_version'" >&2
  exit 1
elif [ "$server_version" = "$table_version" ]; then
  python3 bench-scripts/gen-command-table.py --check
else
  echo "gen-command-table.py --check not applicable: the table is from redis-server" \
    "$table_version and this one is $server_version (it would differ by design)"
fi
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo doc (every intra-doc link resolves)"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps --document-private-items
echo "== fuzz targets compile (run them with cargo fuzz, see README)"
cargo check --quiet --manifest-path tests/fuzz/Cargo.toml --bins
# compare.sh's delay relay (NET_DELAY_US on kernels without netem) is a crate of its own, not
# a member of percore's workspace: the steps above do not see it.
echo "== benches/delay-relay: fmt, clippy"
cargo fmt --manifest-path benches/delay-relay/Cargo.toml -- --check
cargo clippy --quiet --manifest-path benches/delay-relay/Cargo.toml --target-dir target/delay-relay -- -D warnings
echo "== cargo bench --no-run (every benchmark compiles)"
cargo bench --no-run
echo "== cargo test"
cargo test --all-targets
echo "== cargo test --doc"
cargo test --doc
