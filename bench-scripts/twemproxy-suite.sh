#!/usr/bin/env bash
# Runs twemproxy's own integration suite (its tests/: test_redis, test_system, Python and nose)
# once against the real nutcracker and once with percore in nutcracker's place, file by file,
# and tabulates where they differ.
#
# Why: percore's static pools claim to serve a nutcracker configuration as nutcracker does.
# twemproxy's suite is nutcracker's own statement of what its clients see; run with nutcracker
# it is the baseline (a test that fails there is not percore's failure), run with percore in
# its place it shows each difference.
#
# The suite starts everything itself: redis-servers on 127.0.0.1:2100 and 2101, nutcracker
# (the binary it finds as tests/_binaries/nutcracker, started as `bin/nutcracker -d -c ... -s
# ... -m ... -i 1`) on 4100-4102 with its stats on 5100-5102. For the percore run that binary
# is percore itself (it takes nutcracker's command line). Those ports are fixed by the suite:
# the script refuses to start while any of them is taken.
#
# The suite is copied from a twemproxy checkout (or its git directory) into the run's
# directory, never into this repository, and adjusted there only where it would reach past its
# own processes or this run's directory (each change is asserted to apply, so a different
# suite fails loudly instead of running half-adjusted):
#   - /tmp/r/ (where it deploys servers) becomes <run>/<target>/r/;
#   - conf/control.sh stops a server by its pid file (only if that process's command line is
#     the one the suite started), not with `pkill -9 -f`; NutCracker.signal() signals the pid
#     in the pid file, not `pkill -f`;
#   - Base.start() gives up after 30 s (it waits forever) when the process never comes up;
#   - NutCracker._alive() is "the stats port answers JSON" (unchanged); for the percore run
#     only (T_ALIVE_BY_PING=1), while percore serves no stats port, it falls back to "the pool
#     port answers a PING with any reply", else the suite would wait forever for every start.
#     The tests that read the stats still fail, as they should until percore serves them.
#
# Usage:
#   bash bench-scripts/twemproxy-suite.sh [TWEMPROXY] [test_redis/test_basic.py ...]
# TWEMPROXY (first argument if it is a directory, else the environment variable, else
# /work/.mirror/twitter+twemproxy/repo): a twemproxy checkout (a directory with tests/), or a
# git directory of twemproxy (such as a bare clone or mirror), whose revision REV (default
# HEAD) is used. Get it with `git clone` of twitter/twemproxy wherever the network allows; no
# network is used here but PyPI (for the venv).
# Knobs (environment):
#   NUTCRACKER     nutcracker binary (default /usr/sbin/nutcracker: apt-get install nutcracker).
#   PERCORE        percore binary (default target/debug/percore; built with cargo if missing).
#   TARGETS        "nutcracker percore" (default), or one of them.
#   FILE_TIMEOUT   seconds per test file and target (default 600).
#   RESULTS        results dir (default bench-scripts/results); the Python packages (pynose,
#                  redis 3.5.3, which the suite's README asks for) go into
#                  RESULTS/twemproxy-suite/venv, each run's work into
#                  RESULTS/twemproxy-suite/<stamp>/.
# Output: RESULTS/twemproxy-suite-<stamp>.md, per file and per test, pass or fail for each
# target, and why percore fails where nutcracker passes; and in the run's work dir
# raw/<target>/<file>.txt (nose -v output), <target>/r/ (the servers' and the proxy's logs),
# tests.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."

TWEMPROXY=${TWEMPROXY:-/work/.mirror/twitter+twemproxy/repo}
if [[ $# -gt 0 && -d $1 ]]; then
  TWEMPROXY=$1
  shift
fi
REV=${REV:-HEAD}
NUTCRACKER=${NUTCRACKER:-/usr/sbin/nutcracker}
PERCORE=${PERCORE:-target/debug/percore}
TARGETS=${TARGETS:-"nutcracker percore"}
FILE_TIMEOUT=${FILE_TIMEOUT:-600}
RESULTS=${RESULTS:-bench-scripts/results}
# The fixed ports of the suite: redis-servers, nutcracker pools, their stats ports.
PORTS="2100 2101 4100 4101 4102 5100 5101 5102"

# Memcache tests are out of scope (percore serves Redis only); they are listed, not run.
DEFAULT_FILES="test_redis/test_auth.py test_redis/test_basic.py test_redis/test_commands.py
  test_redis/test_mget_large_binary.py test_redis/test_mget_mset.py test_redis/test_pipeline.py
  test_redis/test_protocol.py test_system/test_reload.py"
FILES=${*:-$DEFAULT_FILES}

die() { echo "twemproxy-suite: $*" >&2; exit 1; }

if [[ -f $TWEMPROXY/tests/lib/server_modules.py ]]; then
  SOURCE=checkout
  REVISION=$(git -C "$TWEMPROXY" rev-parse HEAD 2>/dev/null || echo "checkout $TWEMPROXY")
elif git --git-dir="$TWEMPROXY" rev-parse --verify -q "$REV^{commit}" >/dev/null; then
  SOURCE=git
  REVISION=$(git --git-dir="$TWEMPROXY" rev-parse "$REV")
else
  die "no twemproxy checkout or git directory at $TWEMPROXY (clone twitter/twemproxy and pass its path)"
fi
for bin in redis-server redis-cli; do
  command -v "$bin" >/dev/null || die "$bin missing: apt-get install -y redis-server"
done
if [[ " $TARGETS " == *" nutcracker "* && ! -x $NUTCRACKER ]]; then
  die "$NUTCRACKER missing: apt-get install -y nutcracker"
fi
if [[ " $TARGETS " == *" percore "* && ! -x $PERCORE ]]; then
  cargo build --bin percore
fi
for port in $PORTS; do
  if ss -Hltn "sport = :$port" | grep -q .; then
    die "port $port is taken; the suite needs $PORTS free"
  fi
done

mkdir -p "$RESULTS/twemproxy-suite"
RESULTS=$(cd "$RESULTS" && pwd)
OUT=$RESULTS/twemproxy-suite
if [[ ! -x $OUT/venv/bin/python ]]; then
  python3 -m venv "$OUT/venv"
fi
# pynose: nose 1.3.7 does not run on Python 3.10+; pynose is its maintained fork (same
# `nose` module). redis 3.5.3: the version the suite's README and CI pin.
"$OUT/venv/bin/python" -c 'import nose, redis; assert redis.__version__ == "3.5.3"' 2>/dev/null ||
  "$OUT/venv/bin/pip" install -q pynose 'redis==3.5.3'

STAMP=$(date +%Y%m%d-%H%M%S)
RUN=$OUT/$STAMP
mkdir -p "$RUN"
ln -sfn "$STAMP" "$OUT/latest"
REPORT=$RESULTS/twemproxy-suite-$STAMP.md

# Ends what the suite left running in this run's directory: each process named by a pid file
# under it whose command line is still a redis-server's or the proxy's (bin/nutcracker).
cleanup() {
  local pidfile pid
  for pidfile in "$RUN"/*/r/*/log/*.pid; do
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] || continue
    if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qE '^(bin/)?(redis-server|nutcracker) '; then
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}
trap cleanup EXIT

# Copies the suite for one target into $RUN/$1/tests and adjusts it (see the header).
prepare() {
  local target=$1 dir=$RUN/$1 binary=$2
  mkdir -p "$dir/r"
  case $SOURCE in
    checkout) cp -r "$TWEMPROXY/tests" "$dir/" ;;
    git) git --git-dir="$TWEMPROXY" archive "$REV" tests | tar -x -C "$dir" ;;
  esac
  mkdir -p "$dir/tests/_binaries" "$dir/tests/log"
  ln -sfn "$(command -v redis-server)" "$dir/tests/_binaries/redis-server"
  ln -sfn "$(command -v redis-server)" "$dir/tests/_binaries/redis-sentinel"
  ln -sfn "$(command -v redis-cli)" "$dir/tests/_binaries/redis-cli"
  ln -sfn "$(realpath "$binary")" "$dir/tests/_binaries/nutcracker"
  python3 - "$dir/tests" "$dir/r/" <<'EOF'
import pathlib, sys

tests, deploy = pathlib.Path(sys.argv[1]), sys.argv[2]

def patch(path, old, new, count=1):
    text = path.read_text()
    found = text.count(old)
    assert found == count, f"{path}: expected {count} of {old!r}, found {found}"
    path.write_text(text.replace(old, new))

moved = 0
for path in tests.rglob("*.py"):
    text = path.read_text()
    if "/tmp/r/" in text:
        path.write_text(text.replace("/tmp/r/", deploy))
        moved += 1
assert moved >= 5, f"/tmp/r/ found in only {moved} files"

patch(tests / "conf/control.sh", "    pkill -9 -f '${runcmd}'\n", """\
    # twemproxy-suite.sh: by pid file, only the process the suite started.
    if [ -f '${pidfile}' ]; then
        pid=$$(cat '${pidfile}')
        if [ -n "$$pid" ] && tr '\\0' ' ' < /proc/$$pid/cmdline 2>/dev/null | grep -qE -- '(^|/)${runcmd}'; then
            kill -9 "$$pid"
        fi
        rm -f '${pidfile}'
    fi
""")
modules = tests / "lib/server_modules.py"
# A process that never comes up fails its test file in 30 s instead of hanging it.
patch(modules, """        while not self._alive():
            lets_sleep(sleeptime)
""", """        while not self._alive():
            if time.time() - t1 > 30:
                raise Exception('%s not alive after 30 s (twemproxy-suite.sh)' % self)
            lets_sleep(sleeptime)
""")
patch(modules, """cmd = TT("pkill -$signo -f '^$runcmd'", self.args)""",
      """cmd = TT("kill -$signo $$(cat '$pidfile')", self.args)""")
patch(modules, """    def _alive(self):
        return self._info_dict()
""", """    def _alive(self):
        info = self._info_dict()
        if info is None and os.environ.get('T_ALIVE_BY_PING'):
            return self._answers_ping()
        return info

    def _answers_ping(self):
        # twemproxy-suite.sh: any reply to PING on the pool port (percore serves no stats
        # port yet).
        try:
            s = socket.create_connection((self.args['host'], self.args['port']), timeout=0.5)
            s.sendall(b'*1\\r\\n$4\\r\\nPING\\r\\n')
            reply = s.recv(100)
            s.close()
            return reply[:1] in (b'+', b'-')
        except Exception:
            return False
""")
EOF
}

# Runs one test file for one target; the nose -v output goes to raw/<target>/<file>.txt.
run_file() {
  local target=$1 file=$2 raw=$RUN/raw/$1/${2//\//_}
  local rc=0 start=$SECONDS
  mkdir -p "$RUN/raw/$target"
  (
    cd "$RUN/$target/tests"
    export T_LOGFILE=$RUN/$target/tests/log/t.log
    if [[ $target == percore ]]; then export T_ALIVE_BY_PING=1; fi
    exec timeout -k 10 "$FILE_TIMEOUT" "$OUT/venv/bin/python" -m nose -v "$file"
  ) >"${raw%.py}.txt" 2>&1 || rc=$?
  cleanup
  printf '%s\t%s\t%s\t%s\n' "$target" "$file" "$rc" "$((SECONDS - start))" >>"$RUN/runs.tsv"
  printf '  %-11s %-40s exit %-3s %4ss\n' "$target" "$file" "$rc" "$((SECONDS - start))"
}

echo "twemproxy-suite: twemproxy $REVISION, results in $RUN"
for target in $TARGETS; do
  case $target in
    nutcracker) prepare nutcracker "$NUTCRACKER" ;;
    percore) prepare percore "$PERCORE" ;;
    *) die "unknown target $target (nutcracker, percore)" ;;
  esac
  for file in $FILES; do
    run_file "$target" "$file"
  done
  # The suite copies the proxy's binary into each proxy's dir (80 MB for a debug percore).
  rm -rf "$RUN/$target"/r/*/bin
done

python3 - "$RUN" "$REVISION" "$TARGETS" "$FILES" "$REPORT" <<'EOF'
import pathlib, re, sys

run, revision, report = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[5])
targets, files = sys.argv[3].split(), sys.argv[4].split()
# nose -v prints "name ... status", or "name ... " then what the test printed, then the status
# alone on a line.
line = re.compile(r"^(\S+) \.\.\. (.*)$")
status = re.compile(r"^(ok|FAIL|ERROR|SKIP.*)$")
# Why a test percore fails is expected to fail (until the named work lands, or never: out of
# scope). Keys are test names as nose prints them (module.function); a key ending in "."
# covers a whole module. Every other test failing through percore but passing through
# nutcracker is marked PERCORE BUG?.
WAITS = {
    # Not comparable, or out of scope.
    "test_system.test_reload.": "config reload (percore's: tests/reload.rs). Not comparable: the suite skips "
    "these for nutcracker 0.5.0 (below its VERSION_SUPPORTING_RELOAD, 99.99.99) and runs them "
    "for any other --version text, where they crash in the suite itself (they send str, not "
    "bytes, to a socket under Python 3)",
    "test_redis.test_basic.test_signal": "nutcracker's signals: HUP reopens its log file, "
    "TTIN/TTOU change the log level, SEGV logs and dies; percore's SIGHUP is kept for config "
    "reload (DESIGN.md) and it logs no signal names; out of scope here",
    # Where percore answers as Redis does and nutcracker does not: kept on purpose.
    "test_redis.test_basic.test_msetnx": "nutcracker closes the connection for MSETNX; percore "
    "runs it when its keys are on one server and otherwise answers an error naming why "
    "(README, Static pools)",
    "test_redis.test_basic.test_ping_quit": "QUIT: percore answers +OK then closes, as Redis "
    "does; nutcracker closes without a reply",
    "test_redis.test_protocol.test_quit": "QUIT: percore answers +OK then closes, as Redis does "
    "(the test's own comment: +OK would also be valid)",
    "test_redis.test_protocol.test_wrong_argc": "GET without a key: percore answers Redis's "
    "-ERR wrong number of arguments and keeps the connection; nutcracker closes it",
    "test_redis.test_protocol.test_badreq": "an empty line and MSET with an odd count: percore "
    "does what Redis does (ignores the empty line; -ERR wrong number of arguments, connection "
    "kept); nutcracker closes the connection",
    "test_redis.test_auth.test_nopass_on_proxy": "AUTH with no password set: percore answers "
    "Redis 7's text (ERR AUTH <password> called without any password configured ...); "
    "nutcracker answers old Redis's 'Client sent AUTH, but no password is set'",
    "test_redis.test_auth.test_badpass_on_proxy": "redis_auth wrong for the servers: percore "
    "does not use a connection whose AUTH was refused and says so (backend ... refused the "
    "handshake: WRONGPASS ...); nutcracker uses it and passes on the server's NOAUTH",
    "test_redis.test_mget_mset.test_multi_delete_on_readonly": "a split DEL whose part hits a "
    "read-only replica: percore answers that server's own error (READONLY / You can't write "
    "against a read only replica); nutcracker answers 'Invalid argument'",
}

def why(test):
    for key, reason in WAITS.items():
        if test == key or (key.endswith(".") and test.startswith(key)):
            return reason
    return ""

exits = {}
runs = run / "runs.tsv"
if runs.exists():
    for row in runs.read_text().splitlines():
        target, file, rc, _ = row.split("\t")
        exits[target, file] = int(rc)

results = {}  # (target, file) -> {test: status}
for target in targets:
    for file in files:
        raw = run / "raw" / target / (file.replace("/", "_")[:-3] + ".txt")
        tests = {}
        if raw.exists():
            pending = None
            for text in raw.read_text(errors="replace").splitlines():
                m = line.match(text.strip())
                if m:
                    pending = m.group(1)
                    text = m.group(2)
                s = status.match(text.strip())
                if s and pending:
                    tests[pending] = "ok" if s.group(1) == "ok" else s.group(1).lower()
                    pending = None
            if exits.get((target, file)) in (124, 137):
                tests["(rest of the file: timed out)"] = "timeout"
            if not tests:
                tests["(module)"] = "error"
        results[target, file] = tests

def cell(tests):
    if not tests:
        return "not run"
    passed = sum(1 for s in tests.values() if s == "ok")
    return f"{passed}/{len(tests)} pass"

both = "percore" in targets and "nutcracker" in targets
out = [f"# twemproxy's test suite: nutcracker and percore", "",
       f"twemproxy tests at {revision}; run dir {run}.", "",
       "## Per file", "",
       "| file | " + " | ".join(targets) + " | failing through percore, passing through nutcracker |",
       "|---|" + "---|" * len(targets) + "---|"]
rows = ["test\t" + "\t".join(targets) + "\treason"]
per_test = ["## Per test", "", "| test | " + " | ".join(targets) + " | note |",
            "|---|" + "---|" * len(targets) + "---|"]
totals = {t: [0, 0] for t in targets}
for file in files:
    cells = [cell(results[t, file]) for t in targets]
    names = sorted(set().union(*(results[t, file] for t in targets)))
    lost = []
    for name in names:
        statuses = [results[t, file].get(name, "-") for t in targets]
        for t, s in zip(targets, statuses):
            totals[t][1] += 1
            totals[t][0] += s == "ok"
        note = ""
        if "percore" in targets and statuses[targets.index("percore")] != "ok":
            note = why(name)
        if both and results["nutcracker", file].get(name) == "ok" \
                and results["percore", file].get(name) != "ok":
            note = note or "PERCORE BUG?"
            lost.append(name.rsplit(".", 1)[-1])
        rows.append(name + "\t" + "\t".join(statuses) + "\t" + note)
        per_test.append(f"| {name} | " + " | ".join(statuses) + f" | {note} |")
    out.append(f"| {file} | " + " | ".join(cells) + " | " + (", ".join(lost) or "-") + " |")
out.append("| test_memcache/test_gets.py | " + " | ".join("not run" for _ in targets)
           + " | out of scope: memcache |")
out += ["", "Totals: " + ", ".join(f"{t} {p}/{n} pass" for t, (p, n) in totals.items()), ""]
text = "\n".join(out + per_test) + "\n"
report.write_text(text)
(run / "tests.tsv").write_text("\n".join(rows) + "\n")
print("\n".join(out))
print(f"report: {report}")
EOF
