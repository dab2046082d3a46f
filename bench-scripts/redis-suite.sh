#!/usr/bin/env bash
# Runs Redis's own test suite (the tag 7.0.15 tree's tests/unit) against one cluster-mode
# redis-server directly and through percore, file by file, and tabulates where they differ.
#
# Why: percore claims to behave like Redis Cluster to a plain client. Redis's suite run with
# `--host --port --cluster-mode` is the most complete statement of what a cluster-mode server
# answers that exists; running it both ways over the same kind of server shows, test by test,
# what percore breaks and why (a refused command, a wrong reply, a hang), and what a change
# fixed. The direct run is the baseline: tests that fail there too (they need something an
# external server cannot give) are not percore's failures.
#
# Each (unit file, target) pair gets a fresh redis-server on free 127.0.0.1 ports, with
# `--cluster-enabled yes`, all 16384 slots, and the settings of the suite's own
# tests/assets/default.conf (DEBUG enabled, keyspace events, latency monitor...), so that
# state left by one file (configs, ACL users, a crashed server) never reaches the next; the
# "percore" target puts a percore (1 thread) in front of its server.
#
# Usage:
#   REDIS_SRC=/path/to/redis-7.0.15 bash bench-scripts/redis-suite.sh [unit/x unit/type/y ...]
# Knobs (environment):
#   REDIS_SRC     Redis source tree at tag 7.0.15 (required; only tests/ and runtest are used,
#                 copied to a temp dir, the tree itself is not written).
#   PERCORE       percore binary (default target/release/percore).
#   TARGETS       "direct percore" (default), or one of them.
#   FILE_TIMEOUT  seconds per unit file and target (default 600); past it the run is killed.
#   OUT           results dir (default bench-scripts/results/redis-suite); each run writes
#                 OUT/<stamp>/ and points OUT/latest at it.
#   RUNTEST_ARGS  extra runtest flags, as shell words (e.g. "--tags -slow",
#                 "--skiptest 'Script return recursive object'", "--only /HyperLogLog").
#   SKIPS         tests skipped in both runs, one name per line (default
#                 bench-scripts/redis-suite-skips.txt, which says why for each).
#   REPORT_ONLY   an existing OUT/<stamp> dir: re-parse its raw output, run nothing.
# Output (OUT/<stamp>/): raw/<target>/<unit>.txt (runtest output), raw/<target>/<unit>.*.log
# (server and percore logs), runs.tsv (exit code and seconds per run), summary.csv,
# summary.md, failures.tsv (every failed test with its first error line).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-bench-scripts/results/redis-suite}
PERCORE=${PERCORE:-target/release/percore}
TARGETS=${TARGETS:-"direct percore"}
FILE_TIMEOUT=${FILE_TIMEOUT:-600}
RUNTEST_ARGS=${RUNTEST_ARGS:-}
REDIS_SERVER=$(command -v redis-server || true)
REDIS_CLI=$(command -v redis-cli || true)

# Unit files not run by default, and why (each runs no test against an external server).
#   unit/type/list-common  a helper the list tests source, not a unit
#   unit/printver          prints the version, no tests
#   unit/tls               tests only under --tls
#   unit/violations        every test is tagged large-memory (needs --large-memory)
#   the rest               every test in them is tagged external:skip (they start their own
#                          servers, or need replication, persistence, a local process, ACL files)
DEFAULT_EXCLUDE="unit/type/list-common unit/printver unit/tls unit/violations
  unit/acl unit/acl-v2 unit/aofrw unit/auth unit/client-eviction unit/cluster
  unit/cluster-scripting unit/info unit/limits unit/maxmemory unit/memefficiency
  unit/networking unit/obuf-limits unit/oom-score-adj unit/pendingquerybuf unit/pubsubshard
  unit/shutdown unit/wait"

report() {
  python3 - "$1" <<'EOF'
import csv, os, re, sys
from collections import Counter, defaultdict

run_dir = sys.argv[1]
ansi = re.compile(r"\x1b\[[0-9;]*m")
status_line = re.compile(r"^\[(ok|err|exception|skip|ignore)\]: ")
done_line = re.compile(r"^\[\d+/\d+ done\]: ")
test_name = re.compile(r"^(.*) in (tests/\S+\.tcl)$")
refused = re.compile(r"percore: '([^']+)' is not supported \(([^)]*)\)")
containers = {"client", "config", "cluster", "object", "memory", "debug", "script", "function",
              "command", "acl", "latency", "slowlog", "xinfo", "pubsub", "module", "xgroup"}

def first_error(details):
    """The error text of a failure: runtest cuts the first 10 characters of a non-assertion
    error off its first line; the errorInfo that follows starts with the whole of it."""
    if not details:
        return ""
    if len(details) > 1 and details[1].endswith(details[0]) and details[0]:
        return details[1]
    return details[0]

def invoked(details):
    """The innermost command of the test file that was running when it failed, from Tcl's
    errorInfo (skipping the suite's own wrappers), and where: the start_server harness
    (CONFIG GET/SET of a block's overrides, FLUSHALL, FUNCTION FLUSH) or a line of the file."""
    wrappers = ("[srv ", "uplevel", "run_external_server_test", "start_server", "source ",
                "execute_test_file", "test_client_main", "eval ", "tags ", "test ")
    cmd, place = "", ""
    for i, line in enumerate(details):
        frame = line.strip()
        if line.startswith('"') and not frame.strip('"').startswith(wrappers):
            cmd = frame.strip('"').splitlines()[0]
            after = details[i + 1].strip() if i + 1 < len(details) else ""
            if after.startswith('(procedure "run_external_server_test"'):
                place = "start_server harness"
            break
    where = re.search(r'\(file "tests/([^"]+)" line (\d+)\)', "\n".join(details))
    if where:
        place += (" at " if place else "") + f"{where.group(1)}:{where.group(2)}"
    return f"{cmd} ({place})" if place else cmd

def cause_of(details):
    text = "\n".join(details)
    m = refused.search(text)
    if m:
        name = m.group(1).upper()
        if name.lower() in containers:
            sub = re.search(r"\b%s\s+([A-Za-z][A-Za-z-]*)" % re.escape(m.group(1)), text, re.I)
            if sub and not sub.group(1).lower().startswith("is"):
                name += " " + sub.group(1).upper()
        return f"refused: {name} ({m.group(2)})"
    for pattern, cause in [
        (r"SELECT is not allowed in cluster mode", "SELECT other than 0"),
        (r"NOPROTO", "HELLO 3 / RESP3 (NOPROTO)"),
        (r"CROSSSLOT", "CROSSSLOT"),
        (r"unknown command", "unknown command"),
        (r"I/O error reading reply|connection reset|broken pipe|error writing", "connection lost"),
    ]:
        if re.search(pattern, text, re.I):
            return cause
    first = first_error(details)
    if first.startswith(("Expected", "assertion")) or "(context:" in text:
        return "wrong reply (assertion)"
    if "percore" in first:
        return "other percore error"
    return "other error: " + first[:80]

def parse(path):
    r = dict(ok=[], err=[], blockerr=[], exception=[], skip=0, ignore=0, done=False, timeout=False)
    if not os.path.exists(path):
        return r
    lines = [ansi.sub("", l.rstrip("\r\n")) for l in open(path, errors="replace")]
    i = 0
    while i < len(lines):
        line = lines[i]
        m = status_line.match(line)
        if done_line.match(line):
            r["done"] = True
        if "[TIMEOUT]" in line:
            r["timeout"] = True
        if not m:
            i += 1
            continue
        kind, rest = m.group(1), line[m.end():]
        details = []
        j = i + 1
        while j < len(lines) and not status_line.match(lines[j]) and not done_line.match(lines[j]) \
                and not lines[j].startswith(("Testing ", "Killing still running", "[TIMEOUT]")) \
                and lines[j].strip() != "The End":
            details.append(lines[j])
            j += 1
        if kind == "ok":
            r["ok"].append(re.sub(r" \(\d+ ms\)$", "", rest))
        elif kind == "err":
            t = test_name.match(rest)
            if t:
                r["err"].append((t.group(1), details))
            else:  # an error in a start_server block outside any test: the block's rest is lost
                r["blockerr"].append(([rest] + details))
        elif kind == "exception":
            r["exception"].append([rest] + details)
        elif kind == "skip":
            r["skip"] += 1
        elif kind == "ignore":
            r["ignore"] += 1
        i = j
    return r

runs = {}
for row in csv.DictReader(open(os.path.join(run_dir, "runs.tsv")), delimiter="\t"):
    runs[(row["target"], row["unit"])] = row
units = list(dict.fromkeys(u for _, u in runs))
targets = [t for t in ("direct", "percore") if any(k[0] == t for k in runs)]

res = {}
for (target, unit) in runs:
    res[(target, unit)] = parse(os.path.join(run_dir, "raw", target, unit.replace("/", "_") + ".txt"))

def state(target, unit):
    r, meta = res[(target, unit)], runs[(target, unit)]
    if meta["rc"] == "-1":
        return "setup failed"
    if meta.get("proxy_alive") == "no":
        return "percore died"
    if meta["rc"] in ("124", "137") or r["timeout"]:
        return "timeout"
    if r["exception"]:
        return "exception"
    if not r["done"]:
        return "aborted"
    return "done"

def abort_reason(target, unit):
    r = res[(target, unit)]
    if r["exception"]:
        d = r["exception"][0]
        return f'{cause_of(d)} at "{invoked(d)[:110]}"'
    if state(target, unit) == "timeout":
        return "killed after FILE_TIMEOUT"
    if state(target, unit) in ("percore died", "setup failed"):
        return state(target, unit)
    return ""

fields = ["file"]
for t in targets:
    fields += [f"{t}_{f}" for f in ("ok", "err", "exception", "block_err", "skipped", "ignored",
                                      "state", "seconds")]
if len(targets) == 2:
    fields += ["percore_only_fail", "not_run_through_percore"]
failures = []
with open(os.path.join(run_dir, "summary.csv"), "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(fields)
    for unit in units:
        row = [unit]
        for t in targets:
            if (t, unit) not in res:
                row += [""] * 8
                continue
            r = res[(t, unit)]
            row += [len(r["ok"]), len(r["err"]), len(r["exception"]), len(r["blockerr"]),
                    r["skip"], r["ignore"], state(t, unit), runs[(t, unit)]["seconds"]]
            for name, details in r["err"]:
                failures.append((t, unit, name, cause_of(details), first_error(details)[:200]))
        if len(targets) == 2 and ("direct", unit) in res and ("percore", unit) in res:
            d, p = res[("direct", unit)], res[("percore", unit)]
            p_err = Counter(n for n, _ in p["err"])
            d_ok = Counter(d["ok"])
            row += [sum(min(n, d_ok[k]) for k, n in p_err.items()),
                    sum((d_ok - Counter(p["ok"]) - p_err).values())]
        w.writerow(row)

with open(os.path.join(run_dir, "failures.tsv"), "w", newline="") as f:
    w = csv.writer(f, delimiter="\t")
    w.writerow(["target", "file", "test", "cause", "error"])
    for row in failures:
        w.writerow([c.replace("\t", " ").replace("\n", " ") for c in row])

md = []
total = {t: Counter() for t in targets}
secs = Counter()
total_lost = 0
md += ["Redis 7.0.15's test suite (`runtest --cluster-mode --durable`, one file at a time) "
       "against one cluster-mode redis-server with all slots, directly and through percore "
       "(1 thread), a fresh server per file and target.", "",
       "ok/err/exc: tests passed / failed / an exception that ended the file. "
       "`block` counts errors outside any test that ended a `start_server` block (its remaining "
       "tests never ran). `lost`: tests that passed directly and failed or never ran through "
       "percore.", ""]
head = "| file |" + "".join(f" {t} ok/err/exc |" for t in targets)
if len(targets) == 2:
    head += " lost | percore: how it ended |"
md += [head, "|---" * (head.count("|") - 1) + "|"]
for unit in units:
    cells = [unit]
    for t in targets:
        if (t, unit) not in res:
            cells.append("-")
            continue
        r = res[(t, unit)]
        s = f'{len(r["ok"])}/{len(r["err"])}/{len(r["exception"])}'
        if r["blockerr"]:
            s += f' (block {len(r["blockerr"])})'
        if state(t, unit) in ("timeout", "aborted"):
            s += f" {state(t, unit)}"
        cells.append(s)
        total[t]["ok"] += len(r["ok"]); total[t]["err"] += len(r["err"])
        total[t]["exc"] += len(r["exception"]); total[t]["block"] += len(r["blockerr"])
        secs[t] += float(runs[(t, unit)]["seconds"])
    if len(targets) == 2:
        if ("direct", unit) in res and ("percore", unit) in res:
            d, p = res[("direct", unit)], res[("percore", unit)]
            lost = sum((Counter(d["ok"]) - Counter(p["ok"])).values())
            total_lost += lost
            how = abort_reason("percore", unit) or ("completed" if state("percore", unit) == "done"
                                                    else state("percore", unit))
            if p["blockerr"]:
                how += "; blocks ended by: " + "; ".join(
                    sorted({f'{cause_of(b)} at "{invoked(b)[:90]}"' for b in p["blockerr"]}))
            cells += [str(lost), how.replace("|", "\\|")]
        else:
            cells += ["", ""]
    md.append("| " + " | ".join(cells) + " |")
cells = ["**total**"] + [f'**{total[t]["ok"]}/{total[t]["err"]}/{total[t]["exc"]}**' for t in targets]
if len(targets) == 2:
    cells += [f"**{total_lost}**", ""]
md.append("| " + " | ".join(cells) + " |")
md += [""] + [f"- {t}: {total[t]['ok']} ok, {total[t]['err']} err, {total[t]['exc']} files ended by an "
              f"exception, {total[t]['block']} blocks ended early; {secs[t]:.0f} s in all" for t in targets]

if len(targets) == 2:
    causes = Counter()
    never, never_files = Counter(), defaultdict(list)
    examples = defaultdict(list)
    per_file = []
    for unit in units:
        if ("direct", unit) not in res or ("percore", unit) not in res:
            continue
        d, p = res[("direct", unit)], res[("percore", unit)]
        direct_ok = set(d["ok"])
        bad = [(n, det) for n, det in p["err"] if n in direct_ok]
        for n, det in bad:
            c = cause_of(det)
            causes[c] += 1
            if len(examples[c]) < 3:
                examples[c].append(f"{n} ({unit})")
        not_run = list((Counter(d["ok"]) - Counter(p["ok"]) - Counter(x for x, _ in p["err"])).elements())
        if bad or not_run:
            per_file.append((unit, bad, not_run))
        if not_run:
            if p["exception"]:
                why = "file ended: " + cause_of(p["exception"][0])
            elif state("percore", unit) != "done":
                why = "file ended: " + (abort_reason("percore", unit) or state("percore", unit))
            elif p["blockerr"]:
                why = "block ended: " + " + ".join(sorted({cause_of(b) for b in p["blockerr"]}))
            else:
                why = "skipped by a condition in the file (e.g. on an INFO field)"
            never[why] += len(not_run)
            never_files[why].append(unit)
    by_command = Counter()
    for c, n in causes.items():
        m = re.match(r"refused: (\S+)", c)
        by_command["refused " + m.group(1) if m else c] += n
    md += ["", "## Failures through percore of tests that pass directly, by command refused", "",
           "Only the failed tests; tests that never ran are listed per file below.", "",
           "| cause | tests |", "|---|---|"]
    md += [f"| {c.replace('|', '/')} | {n} |" for c, n in by_command.most_common()]
    md += ["", "## Tests that pass directly and never ran through percore, by what ended them", "",
           "| what ended the file or block | tests | files |", "|---|---|---|"]
    md += [f"| {c.replace('|', '/')} | {n} | {', '.join(never_files[c])} |" for c, n in never.most_common()]
    md += ["", "## Failed tests by cause and subcommand", "",
           "| cause | tests | examples |", "|---|---|---|"]
    for c, n in causes.most_common():
        md.append(f"| {c.replace('|', '/')} | {n} | {'; '.join(examples[c]).replace('|', '/')} |")
    md += ["", "## Per file", ""]
    for unit, bad, not_run in per_file:
        md.append(f"### {unit}")
        md.append("")
        for n, det in bad:
            c = cause_of(det)
            extra = "" if c.startswith("refused") else ": " + " ".join(first_error(det).split())[:140]
            md.append(f"- FAIL {n}: {c}{extra}".replace("|", "/"))
        if not_run:
            md.append(f"- never ran through percore ({len(not_run)}): " + "; ".join(not_run[:15])
                      + (" ..." if len(not_run) > 15 else ""))
        md.append("")
open(os.path.join(run_dir, "summary.md"), "w").write("\n".join(md) + "\n")
print(os.path.join(run_dir, "summary.md"))
EOF
}

if [ -n "${REPORT_ONLY:-}" ]; then
  report "$REPORT_ONLY"
  exit 0
fi

if [ -z "${REDIS_SRC:-}" ] || [ ! -f "${REDIS_SRC}/tests/test_helper.tcl" ]; then
  cat >&2 <<'EOF'
redis-suite.sh: REDIS_SRC must point at a Redis source tree at tag 7.0.15 (it needs its
tests/ directory and runtest; nothing is built). Get one with:
  git clone --depth 1 --branch 7.0.15 https://github.com/redis/redis.git /tmp/redis-7.0.15
or: curl -L https://download.redis.io/releases/redis-7.0.15.tar.gz | tar -xz -C /tmp
then: REDIS_SRC=/tmp/redis-7.0.15 bash bench-scripts/redis-suite.sh
EOF
  exit 2
fi
if ! grep -q '"7.0.15"' "$REDIS_SRC/src/version.h" 2>/dev/null; then
  echo "redis-suite.sh: warning: $REDIS_SRC is not tag 7.0.15 (src/version.h)" >&2
fi
[ -n "$REDIS_SERVER" ] && [ -n "$REDIS_CLI" ] || { echo "redis-suite.sh: needs redis-server and redis-cli" >&2; exit 2; }
command -v tclsh8.6 >/dev/null || command -v tclsh8.5 >/dev/null || command -v tclsh8.7 >/dev/null ||
  { echo "redis-suite.sh: needs tclsh 8.5+ (apt-get install tcl)" >&2; exit 2; }
case " $TARGETS " in *" percore "*)
  [ -x "$PERCORE" ] || { echo "redis-suite.sh: no percore binary at $PERCORE (cargo build --release, or set PERCORE)" >&2; exit 2; }
esac
server_version=$("$REDIS_SERVER" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
[ "$server_version" = 7.0.15 ] || echo "redis-suite.sh: warning: redis-server is $server_version, the suite is 7.0.15's" >&2

if [ $# -gt 0 ]; then
  UNITS="$*"
else
  UNITS=""
  for f in "$REDIS_SRC"/tests/unit/*.tcl "$REDIS_SRC"/tests/unit/type/*.tcl; do
    u=${f#"$REDIS_SRC"/tests/}; u=${u%.tcl}
    case " $(echo $DEFAULT_EXCLUDE) " in *" $u "*) continue ;; esac
    UNITS="$UNITS $u"
  done
fi

eval "EXTRA_ARGS=($RUNTEST_ARGS)"
# The tests skipped in both runs, with why (SKIPS=/dev/null runs them all).
while IFS= read -r name; do
  case "$name" in ''|'#'*) continue ;; esac
  EXTRA_ARGS+=(--skiptest "$name")
done < "${SKIPS:-bench-scripts/redis-suite-skips.txt}"
ulimit -l unlimited 2>/dev/null || ulimit -l "$(ulimit -Hl)" 2>/dev/null || true
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT/$STAMP/raw/direct" "$OUT/$STAMP/raw/percore"
RUN_DIR=$(cd "$OUT/$STAMP" && pwd)  # absolute: redis-server opens its logfile after chdir to --dir
ln -sfn "$STAMP" "$OUT/latest"
WORK=$(mktemp -d /tmp/percore-redis-suite.XXXXXX)
# runtest works in its tree (tests/tmp) and runs src/redis-server for a few argument checks:
# give it a copy with src/ pointing at the installed binaries.
mkdir -p "$WORK/redis/src"
cp -r "$REDIS_SRC/tests" "$REDIS_SRC/runtest" "$WORK/redis/"
ln -s "$REDIS_SERVER" "$WORK/redis/src/redis-server"
ln -s "$REDIS_CLI" "$WORK/redis/src/redis-cli"
command -v redis-benchmark >/dev/null && ln -s "$(command -v redis-benchmark)" "$WORK/redis/src/redis-benchmark"

SERVER_PID="" PROXY_PID="" RUN_PID="" SERVER_PORT=""
stop_all() {
  if [ -n "$RUN_PID" ]; then kill -- "-$RUN_PID" 2>/dev/null || true; RUN_PID=""; fi
  if [ -n "$PROXY_PID" ]; then
    kill "$PROXY_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=""
  fi
  if [ -n "$SERVER_PID" ]; then
    timeout 5 "$REDIS_CLI" -h 127.0.0.1 -p "$SERVER_PORT" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
cleanup() { stop_all; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port no socket on this host uses, from 29200-32767: below the kernel's ephemeral range
# (so no outgoing connection can hold it when the server binds) and above the ports runtest
# itself takes (21079-29111). Sets FREE_PORT; PICKED keeps the ports of one setup apart.
PICKED=""
free_port() {
  local p
  for _ in $(seq 1 500); do
    p=$((29200 + RANDOM % 3568))
    case " $PICKED " in *" $p "*) continue ;; esac
    if [ -z "$(ss -Htan "( sport = :$p )")" ]; then PICKED="$PICKED $p"; FREE_PORT=$p; return; fi
  done
  echo "redis-suite.sh: no free port" >&2; return 1
}

# A cluster-mode server owning every slot, configured like the suite's default.conf.
start_server() { # dir log
  local dir=$1 log=$2 bus
  PICKED=""
  free_port || return 1; SERVER_PORT=$FREE_PORT
  free_port || return 1; bus=$FREE_PORT
  mkdir -p "$dir"
  "$REDIS_SERVER" --port "$SERVER_PORT" --bind 127.0.0.1 --cluster-enabled yes --cluster-port "$bus" \
    --cluster-config-file "$dir/nodes.conf" --dir "$dir" --logfile "$log" --daemonize no \
    --save "900 1" --appendonly no --dbfilename dump.rdb --loglevel verbose \
    --notify-keyspace-events KEA --latency-monitor-threshold 1 --repl-diskless-sync-delay 0 \
    --enable-protected-configs yes --enable-debug-command yes --enable-module-command yes \
    --propagation-error-behavior panic </dev/null >/dev/null 2>&1 &
  SERVER_PID=$!
  local ok=""
  for _ in $(seq 1 100); do
    [ "$("$REDIS_CLI" -h 127.0.0.1 -p "$SERVER_PORT" ping 2>/dev/null)" = PONG ] && { ok=1; break; }
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$ok" ] || { echo "redis-server did not start (see $log)" >&2; return 1; }
  "$REDIS_CLI" -h 127.0.0.1 -p "$SERVER_PORT" cluster addslotsrange 0 16383 >/dev/null
  for _ in $(seq 1 100); do
    "$REDIS_CLI" -h 127.0.0.1 -p "$SERVER_PORT" cluster info | grep -q cluster_state:ok && return 0
    sleep 0.1
  done
  echo "cluster_state never became ok" >&2; return 1
}

start_proxy() { # log
  free_port || return 1; PROXY_PORT=$FREE_PORT
  "$PERCORE" --cluster "127.0.0.1:$SERVER_PORT" --listen "127.0.0.1:$PROXY_PORT" --threads 1 \
    --log-level warn </dev/null >"$1" 2>&1 &
  PROXY_PID=$!
  for _ in $(seq 1 100); do
    [ "$("$REDIS_CLI" -h 127.0.0.1 -p "$PROXY_PORT" set redis-suite:ready 1 2>/dev/null)" = OK ] && return 0
    kill -0 "$PROXY_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "percore did not start (see $1)" >&2; return 1
}

printf 'target\tunit\trc\tseconds\tproxy_alive\n' >"$RUN_DIR/runs.tsv"
echo "== $(echo $UNITS | wc -w) unit files, targets: $TARGETS, results in $RUN_DIR"
for unit in $UNITS; do
  [ -f "$WORK/redis/tests/$unit.tcl" ] || { echo "  no such unit: $unit" >&2; continue; }
  for target in $TARGETS; do
    base="$RUN_DIR/raw/$target/${unit//\//_}"
    rc=0 alive=""
    if start_server "$WORK/srv-$target" "$base.redis.log"; then
      port=$SERVER_PORT
      if [ "$target" = percore ]; then
        if start_proxy "$base.percore.log"; then port=$PROXY_PORT; else rc=-1; fi
      fi
    else
      rc=-1
    fi
    t0=$(date +%s.%N)
    if [ "$rc" = 0 ]; then
      # timeout leads its own process group and kills all of it (the suite's test client too).
      ( cd "$WORK/redis" && exec env TERM=dumb timeout -k 10 "$FILE_TIMEOUT" ./runtest --host 127.0.0.1 \
          --port "$port" --cluster-mode --durable --single "$unit" ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"} ) \
        </dev/null >"$base.txt" 2>&1 &
      RUN_PID=$!
      wait "$RUN_PID" || rc=$?
      kill -- "-$RUN_PID" 2>/dev/null || true
      RUN_PID=""
    fi
    t1=$(date +%s.%N)
    if [ "$target" = percore ] && [ -n "$PROXY_PID" ]; then
      if kill -0 "$PROXY_PID" 2>/dev/null; then alive=yes; else alive=no; fi
    fi
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
    printf '%s\t%s\t%s\t%s\t%s\n' "$target" "$unit" "$rc" "$secs" "$alive" >>"$RUN_DIR/runs.tsv"
    printf '  %-26s %-8s rc=%-4s %6ss  ok=%-4s err=%s%s\n' "$unit" "$target" "$rc" "$secs" \
      "$(grep -c '^\[ok\]' "$base.txt" 2>/dev/null || true)" \
      "$(grep -c '^\[err\]' "$base.txt" 2>/dev/null || true)" \
      "$([ "$alive" = no ] && echo '  PERCORE DIED' || true)"
    stop_all
    rm -rf "$WORK/srv-$target"
  done
done

report "$RUN_DIR"
cat "$RUN_DIR/summary.md"
