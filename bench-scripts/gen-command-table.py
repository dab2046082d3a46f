#!/usr/bin/env python3
"""Generates src/command/commands.rs, percore's command table, from a live redis-server.

The table is Redis's own answer to `COMMAND` (arity, flags, key specs, subcommands), so the
proxy finds keys exactly where Redis does. This script starts a throwaway redis-server from
PATH (standalone: in 7.0.15 `COMMAND` answers the same with or without cluster mode, and
standalone needs no cluster bus port) on a free loopback port in a temp dir, asks it
`COMMAND` over a socket with a small RESP2 reader, writes the Rust file sorted by name (so the
output depends only on the server's answer, never on its dict order), stops the server and
removes the temp dir, also on error or Ctrl-C.

    python3 bench-scripts/gen-command-table.py           # rewrite src/command/commands.rs
    python3 bench-scripts/gen-command-table.py --check   # exit 1 with a diff if it differs

Python 3 standard library only, so it runs on any machine that has redis-server.
"""

import argparse
import difflib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = "bench-scripts/gen-command-table.py"
REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "src" / "command" / "commands.rs"

# How long redis-server may take to answer PING before we give up (it starts in milliseconds;
# a slow shared machine gets plenty of slack, a broken binary still fails fast).
READY_TIMEOUT_S = 20.0
# Pause between readiness polls.
POLL_S = 0.02
# Socket timeout for one reply; even COMMAND, the largest, comes back in milliseconds.
REPLY_TIMEOUT_S = 10.0
# Attempts with a fresh port when another process takes the one we picked before the server
# binds it (the port is free when chosen, but nothing holds it meanwhile).
START_ATTEMPTS = 3

# Redis command flags percore routes by, in the bit order of `CommandFlags` in table.rs; the
# generated unions list them in this order. Other Redis flags are not carried.
FLAGS = [
    ("write", "WRITE"),
    ("readonly", "READONLY"),
    ("admin", "ADMIN"),
    ("pubsub", "PUBSUB"),
    ("noscript", "NOSCRIPT"),
    ("blocking", "BLOCKING"),
    ("loading", "LOADING"),
    ("stale", "STALE"),
    ("fast", "FAST"),
    ("no_multi", "NO_MULTI"),
    ("movablekeys", "MOVABLE_KEYS"),
    ("allow_busy", "ALLOW_BUSY"),
]

# Positions of the fields of one `COMMAND` entry (Redis 7: name, arity, flags, first key,
# last key, step, ACL categories, tips, key specs, subcommands).
NAME, ARITY, FLAGS_FIELD, KEY_SPECS, SUBCOMMANDS = 0, 1, 2, 8, 9
MIN_ENTRY_FIELDS = 10


class GenError(Exception):
    """A failure worth one line to the user, not a traceback."""


class RedisError(Exception):
    """An error reply from the server."""


# ---------------------------------------------------------------------------------------------
# RESP2


class Resp:
    """A blocking RESP2 connection: encodes commands, reads one reply at a time."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=REPLY_TIMEOUT_S)
        self.reader = self.sock.makefile("rb")

    def close(self):
        self.reader.close()
        self.sock.close()

    def call(self, *args):
        """Sends one command; returns its reply, raises RedisError for an error reply."""
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))
        reply = self.read()
        if isinstance(reply, RedisError):
            raise reply
        return reply

    def line(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise GenError("connection to redis-server closed mid-reply")
        return line[:-2]

    def read(self):
        """One reply: str for simple and bulk strings, int, None, list, or RedisError."""
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.reader.read(size + 2)
            if len(data) != size + 2 or data[-2:] != b"\r\n":
                raise GenError("truncated bulk string from redis-server")
            return data[:-2].decode()
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.read() for _ in range(size)]
        raise GenError(f"unexpected RESP type byte {kind!r} from redis-server")


def pairs(flat):
    """A RESP2 map (a flat key, value, key, value array) as a dict."""
    return dict(zip(flat[0::2], flat[1::2]))


# ---------------------------------------------------------------------------------------------
# The throwaway server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, work_dir):
    """Starts redis-server in `work_dir`; returns (process, port) once it answers PING."""
    for _ in range(START_ATTEMPTS):
        port = free_port()
        log = Path(work_dir) / "redis.log"
        # No persistence and no config file: nothing of the user's setup can change the
        # answer, and nothing is written outside the temp dir.
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work_dir),
                "--save", "", "--appendonly", "no", "--logfile", str(log)]
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        except FileNotFoundError:
            raise GenError(f"{binary} not found on PATH: install it with "
                           "`apt-get update && apt-get install -y redis-server`") from None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            if ping(port):
                return proc, port
            time.sleep(POLL_S)
        stop_server(proc)
        text = log.read_text(errors="replace") if log.exists() else ""
        if "Address already in use" not in text:
            raise GenError(f"{binary} did not start on port {port}; its log:\n{text}")
    raise GenError(f"no free port after {START_ATTEMPTS} attempts")


def ping(port):
    try:
        conn = Resp(port)
    except OSError:
        return False
    try:
        return conn.call("PING") == "PONG"
    except (OSError, RedisError, GenError):
        return False
    finally:
        conn.close()


def stop_server(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=READY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def query(binary):
    """(server version, COMMAND reply) from a throwaway redis-server."""
    with tempfile.TemporaryDirectory(prefix="percore-gen-") as work_dir:
        proc, port = start_server(binary, work_dir)
        try:
            conn = Resp(port)
            try:
                info = conn.call("INFO", "server")
                commands = conn.call("COMMAND")
            finally:
                conn.close()
        finally:
            stop_server(proc)
    match = re.search(r"^redis_version:(\d+(?:\.\d+)*)\r?$", info, re.M)
    if not match:
        raise GenError("no redis_version in INFO server")
    return match.group(1), commands


# ---------------------------------------------------------------------------------------------
# COMMAND reply -> Rust


def rust_flags(entry):
    have = set(entry[FLAGS_FIELD])
    names = [f"CommandFlags::{rust}" for redis, rust in FLAGS if redis in have]
    if not names:
        return "CommandFlags::NONE"
    return names[0] + "".join(f".union({n})" for n in names[1:])


def rust_begin(begin):
    kind, spec = begin["type"], pairs(begin["spec"])
    if kind == "index":
        return f"BeginSearch::Index({spec['index']})"
    if kind == "keyword":
        # The table holds lower-case keywords; matching is case-insensitive.
        keyword = spec["keyword"].lower()
        if not re.fullmatch(r"[a-z0-9_-]+", keyword):
            raise GenError(f"keyword {keyword!r} needs escaping in a Rust string")
        return f'BeginSearch::Keyword {{ keyword: "{keyword}", start_from: {spec["startfrom"]} }}'
    if kind == "unknown":
        return "BeginSearch::Unknown"
    raise GenError(f"unknown begin_search type {kind!r}")


def rust_find(find):
    kind, spec = find["type"], pairs(find["spec"])
    if kind == "range":
        return (f"FindKeys::Range {{ last_key: {spec['lastkey']}, key_step: {spec['keystep']}, "
                f"limit: {spec['limit']} }}")
    if kind == "keynum":
        return (f"FindKeys::KeyNum {{ key_num_idx: {spec['keynumidx']}, "
                f"first_key: {spec['firstkey']}, key_step: {spec['keystep']} }}")
    if kind == "unknown":
        return "FindKeys::Unknown"
    raise GenError(f"unknown find_keys type {kind!r}")


def rust_key_specs(entry):
    specs = []
    for raw in entry[KEY_SPECS]:
        spec = pairs(raw)
        incomplete = "incomplete" in spec.get("flags", [])
        specs.append(f"KeySpec {{ begin: {rust_begin(pairs(spec['begin_search']))}, "
                     f"find: {rust_find(pairs(spec['find_keys']))}, "
                     f"incomplete: {'true' if incomplete else 'false'} }}")
    return "&[" + ", ".join(specs) + "]"


def short_name(entry):
    """The table's name of an entry: a subcommand is only its own part ("object|encoding")."""
    name = entry[NAME].rsplit("|", 1)[-1]
    # lookup() compares lower-case table names with ASCII-lowercased input.
    if not re.fullmatch(r"[a-z0-9_-]+", name):
        raise GenError(f"command name {entry[NAME]!r} is not lower-case ASCII")
    return name


def sorted_entries(entries):
    for entry in entries:
        if not isinstance(entry, list) or len(entry) < MIN_ENTRY_FIELDS:
            raise GenError(f"COMMAND entry {entry!r:.80} lacks the Redis 7 fields")
    # Sorted bytewise, as the table's binary search expects; names are ASCII.
    return sorted(entries, key=short_name)


def render_entry(entry, indent, out):
    pad = " " * indent
    out.append(f"{pad}CommandSpec {{")
    out.append(f'{pad}    name: "{short_name(entry)}",')
    out.append(f"{pad}    arity: {entry[ARITY]},")
    out.append(f"{pad}    flags: {rust_flags(entry)},")
    out.append(f"{pad}    key_specs: {rust_key_specs(entry)},")
    subcommands = sorted_entries(entry[SUBCOMMANDS])
    if subcommands:
        out.append(f"{pad}    subcommands: &[")
        for sub in subcommands:
            render_entry(sub, indent + 8, out)
        out.append(f"{pad}    ],")
    else:
        out.append(f"{pad}    subcommands: &[],")
    out.append(f"{pad}}},")


def render(version, commands):
    out = [
        f"// @generated by {SCRIPT} from redis-server {version}; do not edit",
        "//! The command table's data: every command and subcommand as `COMMAND` of the",
        "//! redis-server named by [`GENERATED_FROM`] describes it (arity, the flags percore",
        "//! routes by, key specs). The types and the lookup are in `table.rs`; regenerate this",
        f"//! file with `python3 {SCRIPT}` instead of editing it.",
        "",
        "use crate::command::table::{BeginSearch, CommandFlags, CommandSpec, FindKeys, KeySpec};",
        "",
        "/// The redis-server version the table was generated from; a newer server may have",
        "/// commands the table lacks.",
        f'pub const GENERATED_FROM: &str = "{version}";',
        "",
        f"/// Every command of redis-server {version}, sorted by name (subcommands too).",
        "#[rustfmt::skip]",
        "pub static COMMANDS: &[CommandSpec] = &[",
    ]
    for entry in sorted_entries(commands):
        render_entry(entry, 4, out)
    out.append("];")
    return "\n".join(out) + "\n"


def write(path, text):
    # Bytes, not the platform's newline or locale: regeneration must be byte-identical.
    path.write_bytes(text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate to a temp file; exit 1 with a diff if it differs "
                             f"from {OUTPUT.relative_to(REPO)}")
    parser.add_argument("--redis-server", default="redis-server", metavar="PATH",
                        help="the redis-server binary to ask (default: from PATH)")
    opts = parser.parse_args()

    # SIGTERM should clean up like Ctrl-C does: unwind through the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    version, commands = query(opts.redis_server)
    text = render(version, commands)
    relative = OUTPUT.relative_to(REPO)
    if not opts.check:
        write(OUTPUT, text)
        print(f"wrote {relative} from redis-server {version} ({len(commands)} commands)")
        return 0
    with tempfile.TemporaryDirectory(prefix="percore-gen-check-") as check_dir:
        fresh = Path(check_dir) / "commands.rs"
        write(fresh, text)
        committed = OUTPUT.read_bytes() if OUTPUT.exists() else b""
        if fresh.read_bytes() == committed:
            print(f"{relative} is what redis-server {version} generates")
            return 0
        committed = committed.decode("utf-8", errors="replace")
        diff = difflib.unified_diff(committed.splitlines(keepends=True),
                                    text.splitlines(keepends=True),
                                    fromfile=f"{relative} (committed)",
                                    tofile=f"{relative} (from redis-server {version})")
        sys.stdout.writelines(diff)
        print(f"{relative} differs from what redis-server {version} generates; "
              f"run python3 {SCRIPT}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (GenError, RedisError, OSError) as err:
        print(f"gen-command-table: {err}", file=sys.stderr)
        sys.exit(2)
