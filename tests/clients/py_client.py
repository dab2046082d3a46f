#!/usr/bin/env python3
"""redis-py against percore, with the library's default settings.

Run by tests/client_libraries.rs with the interpreter of the venv it installs redis-py into:

    py_client.py SUITE --port PORT [--port PORT ...] [--protocol 2|3]
                 [--password PW [--username USER]] [--prefix PREFIX]

SUITE is `plain` (one percore as one server: strings, MGET and DEL across masters, INCR, a
non-transactional pipeline, binary keys and values, hashes, sorted sets and sets, the
connection's own view in CLIENT INFO), `scan` (scan_iter over keys on every master),
`cluster` (RedisCluster pointed at percore, which must present only percore addresses),
`sessions` (one percore as one server: transactions, WATCH, blocking pops, pub/sub and RESET,
in py_sessions.py) or `cluster-sessions` (RedisCluster: a transaction, a blocking pop and
pub/sub in one slot, also in py_sessions.py).
Without --protocol the library's default is used. With --password, a client without it and
one with a wrong one must be refused first.

Prints the library's version and each check; exits 1 at the first mismatch, naming it. The
`plain` suite leaves PREFIX:kept:0..15 = kept-0..15 for the caller to find on the masters.
"""

import argparse
import sys

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

# The sessions suites live beside this script; importing them must not leave a __pycache__
# in the source tree.
sys.dont_write_bytecode = True
import py_sessions  # noqa: E402

KEYS = 16
SCAN_KEYS = 120


class Mismatch(Exception):
    pass


def expect(what, got, want):
    if got != want:
        raise Mismatch(f"{what}: got {got!r}, want {want!r}")
    print(f"ok {what}")


def expect_refused(what, action):
    try:
        got = action()
    except (redis.AuthenticationError, redis.ResponseError) as e:
        print(f"ok {what} (refused: {e})")
        return
    raise Mismatch(f"{what}: expected a refusal, got {got!r}")


def connect(args, **extra):
    options = dict(host="127.0.0.1", port=args.port[0], **extra)
    if args.protocol is not None:
        options["protocol"] = args.protocol
    if args.password is not None and "password" not in extra:
        options["password"] = args.password
        if args.username is not None:
            options["username"] = args.username
    return redis.Redis(**options)


def check_login(args):
    if args.password is None:
        return
    # Without retries: redis-py retries a refused login for about 4 s (against Redis too).
    once = Retry(NoBackoff(), 0)
    expect_refused("no password", lambda: connect(args, password=None, retry=once).ping())
    expect_refused(
        "wrong password",
        lambda: connect(
            args, password="wrong", username=args.username, retry=once
        ).ping(),
    )


def plain(args):
    check_login(args)
    r = connect(args)
    p = args.prefix
    expect("PING", r.ping(), True)
    proto = r.connection_pool.connection_kwargs.get("protocol")
    info = r.client_info()
    print(f"protocol asked: {proto}, CLIENT INFO resp={info.get('resp')}")
    if args.protocol is not None:
        expect("CLIENT INFO resp", info.get("resp"), str(args.protocol))
    # redis-py decodes ACL WHOAMI with its RESP2 callbacks only (bytes with protocol=3, as
    # against Redis itself).
    whoami = r.acl_whoami()
    whoami = whoami.decode() if isinstance(whoami, bytes) else whoami
    expect("ACL WHOAMI", whoami, args.username or "default")

    keys = [f"{p}:k:{i}" for i in range(KEYS)]
    for i, key in enumerate(keys):
        expect(f"SET {key}", r.set(key, f"v{i}"), True)
    for i, key in enumerate(keys):
        expect(f"GET {key}", r.get(key), f"v{i}".encode())
    want = [f"v{i}".encode() for i in range(KEYS)] + [None]
    expect("MGET across masters", r.mget(keys + [f"{p}:missing"]), want)
    expect("GET missing", r.get(f"{p}:missing"), None)

    counter = f"{p}:counter"
    r.delete(counter, f"{p}:pipe:counter", f"{p}:hash", f"{p}:zset", f"{p}:set")
    expect("INCR", r.incr(counter), 1)
    expect("INCR again", r.incr(counter), 2)
    expect("INCRBY", r.incrby(counter, 10), 12)

    pipe = r.pipeline(transaction=False)
    for i in range(10):
        pipe.set(f"{p}:pipe:{i}", i)
    for i in range(10):
        pipe.get(f"{p}:pipe:{i}")
    pipe.incr(f"{p}:pipe:counter")
    want = [True] * 10 + [str(i).encode() for i in range(10)] + [1]
    expect("pipeline", pipe.execute(), want)

    value = bytes(range(256))
    key = f"{p}:bin:".encode() + b"\x00\xff\r\n"
    expect("SET binary", r.set(key, value), True)
    expect("GET binary", r.get(key), value)
    expect("MGET binary", r.mget([key, keys[0]]), [value, b"v0"])

    h = f"{p}:hash"
    expect("HSET", r.hset(h, mapping={"f1": "1", "f2": b"\x00"}), 2)
    expect("HGETALL", r.hgetall(h), {b"f1": b"1", b"f2": b"\x00"})
    z = f"{p}:zset"
    expect("ZADD", r.zadd(z, {"a": 1.5, "b": 2}), 2)
    expect("ZSCORE", r.zscore(z, "a"), 1.5)
    # Pairs are tuples with RESP2 and lists with RESP3 (so against Redis too).
    pairs = [tuple(pair) for pair in r.zrange(z, 0, -1, withscores=True)]
    expect("ZRANGE WITHSCORES", pairs, [(b"a", 1.5), (b"b", 2.0)])
    s = f"{p}:set"
    expect("SADD", r.sadd(s, "x", "y"), 2)
    expect("SMEMBERS", r.smembers(s), {b"x", b"y"})

    expect("DEL across masters", r.delete(*keys), KEYS)
    expect("EXISTS after DEL", r.exists(*keys), 0)
    for i in range(KEYS):
        r.set(f"{p}:kept:{i}", f"kept-{i}")


def scan(args):
    check_login(args)
    r = connect(args)
    p = args.prefix
    want = {f"{p}:scan:{i}".encode() for i in range(SCAN_KEYS)}
    pipe = r.pipeline(transaction=False)
    for key in want:
        pipe.set(key, "1")
    for i in range(5):
        pipe.set(f"{p}:other:{i}", "1")
    pipe.execute()
    seen = list(r.scan_iter(match=f"{p}:scan:*", count=10))
    expect("scan_iter MATCH", set(seen), want)
    everything = set(r.scan_iter(count=50))
    expect("scan_iter sees every key", want - everything, set())
    expect("scan_iter sees the others", f"{p}:other:0".encode() in everything, True)


def cluster(args):
    check_login(args)
    options = dict(host="127.0.0.1", port=args.port[0])
    if args.protocol is not None:
        options["protocol"] = args.protocol
    if args.password is not None:
        options["password"] = args.password
        if args.username is not None:
            options["username"] = args.username
    rc = RedisCluster(**options)
    p = args.prefix
    rc.delete(f"{p}:c:counter")
    allowed = {("127.0.0.1", port) for port in args.port}
    nodes = {(n.host, n.port) for n in rc.get_nodes()}
    print(f"nodes the cluster client learned: {sorted(nodes)}")
    expect("only percore addresses", nodes - allowed, set())

    keys = [f"{p}:c:{i}" for i in range(KEYS)]
    for i, key in enumerate(keys):
        expect(f"SET {key}", rc.set(key, f"v{i}"), True)
    for i, key in enumerate(keys):
        expect(f"GET {key}", rc.get(key), f"v{i}".encode())
    want = [f"v{i}".encode() for i in range(KEYS)]
    expect("mget_nonatomic", rc.mget_nonatomic(keys), want)
    expect("INCR", rc.incr(f"{p}:c:counter"), 1)
    pipe = rc.pipeline()
    for key in keys:
        pipe.get(key)
    expect("cluster pipeline", pipe.execute(), want)
    value = bytes(range(256))
    expect("SET binary", rc.set(f"{p}:c:bin", value), True)
    expect("GET binary", rc.get(f"{p}:c:bin"), value)
    seen = set(rc.scan_iter(match=f"{p}:c:*", count=10))
    expect("scan_iter", seen, {k.encode() for k in keys + [f"{p}:c:counter", f"{p}:c:bin"]})
    expect("DEL across slots", rc.delete(*keys), KEYS)


def main():
    parser = argparse.ArgumentParser()
    suites = {
        "plain": plain,
        "scan": scan,
        "cluster": cluster,
        "sessions": lambda args: py_sessions.sessions(args, connect),
        "cluster-sessions": py_sessions.cluster_sessions,
    }
    parser.add_argument("suite", choices=sorted(suites))
    parser.add_argument("--port", type=int, action="append", required=True)
    parser.add_argument("--protocol", type=int, choices=[2, 3])
    parser.add_argument("--password")
    parser.add_argument("--username")
    parser.add_argument("--prefix", default="py")
    args = parser.parse_args()
    print(f"redis-py {redis.__version__}, python {sys.version.split()[0]}")
    try:
        suites[args.suite](args)
    except (Mismatch, py_sessions.Mismatch, py_sessions.Hung) as e:
        print(f"MISMATCH {e}")
        sys.exit(1)
    except Exception as e:  # any library error is a failed check, reported by name
        where = f" at step '{py_sessions.step}'" if args.suite.endswith("sessions") else ""
        print(f"ERROR from redis-py{where}: {type(e).__name__}: {e}")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
