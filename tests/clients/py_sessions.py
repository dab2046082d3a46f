"""redis-py's session features against percore, with the library's default settings: the
`sessions` and `cluster-sessions` suites of py_client.py (which parses the arguments and
reports the outcome).

- sessions: `pipeline()` (a MULTI/EXEC transaction by default) in one slot, one aborted at
  queue time and one across slots, neither of which may change anything;
  `pipeline(transaction=False)` across masters; WATCH with a `WatchError` when another client
  changes the key, UNWATCH, and `transaction()` retrying once; BLPOP woken by another client's
  push, timing out, and BLMOVE; `pubsub()` with subscribe, psubscribe, ssubscribe, PING,
  get_message and listen receiving what another client publishes, and the unsubscribes, and
  `run_in_thread()` calling a handler;
  RESET on a single-connection client, which ends its WATCH, name and protocol.
- cluster-sessions: RedisCluster's pipeline (not a transaction by default) and
  `pipeline(transaction=True)` with WATCH, in one slot (hash tags), BLPOP, and `pubsub()`
  with subscribe and ssubscribe.

Every wait is bounded: a reply that does not come within WATCHDOG_S fails the suite, naming
the step, instead of hanging it.
"""

import signal
import threading
import time

import redis
from redis.cluster import RedisCluster
from redis.exceptions import WatchError

# A step still waiting after this long has hung (the slowest step waits under a second).
WATCHDOG_S = 20
# How long a message may take to arrive once published.
MESSAGE_WAIT_S = 5.0
# When another client pushes to the list a BLPOP waits on, and the shortest wait that shows
# the BLPOP did block (a little under PUSH_AFTER_S: timers are not exact).
PUSH_AFTER_S = 0.3
BLOCKED_AT_LEAST_S = 0.25
# The timeout of the BLPOP that must time out, and how late its nil may come.
POP_TIMEOUT_S = 0.3
POP_TIMEOUT_LATE_S = 2.0


class Mismatch(Exception):
    pass


class Hung(BaseException):
    """Raised by the watchdog; a BaseException so the library's `except Exception` lets it
    through."""


step = "start"


def at(what):
    global step
    step = what


def on_alarm(_signum, _frame):
    raise Hung(f"no answer within {WATCHDOG_S} s at step '{step}'")


def watchdog():
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(WATCHDOG_S)


def expect(what, got, want):
    if got != want:
        raise Mismatch(f"{what}: got {got!r}, want {want!r}")
    print(f"ok {what}")


def expect_between(what, got, low, high):
    if not low <= got <= high:
        raise Mismatch(f"{what}: {got:.3f} s, want {low} to {high} s")
    print(f"ok {what} ({got:.3f} s)")


def expect_error(what, action, text):
    at(what)
    try:
        got = action()
    except redis.ResponseError as e:
        # redis-py drops the error's code from the message and names it by the class.
        if text not in f"{type(e).__name__}: {e}":
            raise Mismatch(f"{what}: error {e!r}, want one containing {text!r}")
        print(f"ok {what} (refused: {e})")
        return
    raise Mismatch(f"{what}: expected an error containing {text!r}, got {got!r}")


def clear(client, *keys):
    """Deletes keys one by one: keys of several slots in one DEL are refused by a cluster
    node (percore would split them), and the suites run against Redis too."""
    for key in keys:
        client.delete(key)


def sessions(args, connect):
    watchdog()
    r = connect(args)
    other = connect(args)
    p = args.prefix
    at("CLIENT INFO")
    print(f"protocol: {r.client_info().get('resp')}")
    transactions(r, other, p)
    watch(r, other, p)
    blocking(r, other, p)
    pubsub(r, other, p)
    reset(args, connect, other, p)


def transactions(r, other, p):
    a, n, b = f"{{{p}:tx}}:a", f"{{{p}:tx}}:n", f"{{{p}:elsewhere}}:b"
    clear(other, a, n, b)
    at("pipeline()")
    pipe = r.pipeline()
    pipe.set(a, "1").incr(n).incr(n).get(a)
    expect("pipeline() is MULTI/EXEC", pipe.execute(), [True, 1, 2, b"1"])
    # Replies of every type inside EXEC (a map and a double in RESP3).
    h, z = f"{{{p}:tx}}:h", f"{{{p}:tx}}:z"
    pipe = r.pipeline()
    pipe.hset(h, mapping={"f": "v"}).hgetall(h).zadd(z, {"m": 1.5}).zscore(z, "m").delete(h, z)
    expect("pipeline() with a hash and a sorted set", pipe.execute(), [1, {b"f": b"v"}, 1, 1.5, 2])

    # A command refused at queue time aborts the whole transaction: the SET before it must
    # not run.
    pipe = r.pipeline()
    pipe.set(a, "aborted").execute_command("NO-SUCH-COMMAND", a)
    expect_error("pipeline() with an unknown command", pipe.execute, "unknown command")
    expect("nothing of the aborted transaction ran", other.get(a), b"1")

    pipe = r.pipeline()
    pipe.set(a, "cross").set(b, "cross")
    expect_error("pipeline() across slots", pipe.execute, "CrossSlot")
    expect("nothing of the cross-slot transaction ran", [other.get(a), other.get(b)], [b"1", None])

    at("pipeline(transaction=False)")
    keys = [f"{p}:np:{i}" for i in range(6)]
    pipe = r.pipeline(transaction=False)
    for i, key in enumerate(keys):
        pipe.set(key, i)
    for key in keys:
        pipe.incr(key)
    for key in keys:
        pipe.get(key)
    want = [True] * 6 + [i + 1 for i in range(6)] + [str(i + 1).encode() for i in range(6)]
    expect("pipeline(transaction=False) across masters", pipe.execute(), want)
    clear(other, a, n, *keys)


def watch(r, other, p):
    k = f"{{{p}:w}}:balance"
    other.set(k, 10)
    at("WATCH, another client writes, EXEC")
    with r.pipeline() as pipe:
        pipe.watch(k)
        balance = int(pipe.get(k))
        other.set(k, 100)
        pipe.multi()
        pipe.set(k, balance - 1)
        try:
            got = pipe.execute()
            raise Mismatch(f"EXEC after another client changed the watched key: got {got!r}")
        except WatchError as e:
            print(f"ok WatchError when another client changed the key ({e})")
    expect("the other client's write stands", other.get(k), b"100")

    at("WATCH, nobody writes, EXEC")
    with r.pipeline() as pipe:
        pipe.watch(k)
        balance = int(pipe.get(k))
        pipe.multi()
        pipe.set(k, balance - 1)
        expect("EXEC with the watched key unchanged", pipe.execute(), [True])
    expect("the transaction's write", other.get(k), b"99")

    at("WATCH, UNWATCH, another client writes, EXEC")
    with r.pipeline() as pipe:
        pipe.watch(k)
        pipe.unwatch()
        other.set(k, 50)
        pipe.multi()
        pipe.incr(k)
        expect("EXEC after UNWATCH", pipe.execute(), [51])

    at("transaction()")
    attempts = []

    def debit(pipe):
        attempts.append(1)
        balance = int(pipe.get(k))
        if len(attempts) == 1:
            other.incr(k)  # a concurrent change: this attempt must fail and be retried
        pipe.multi()
        pipe.set(k, balance - 1)

    expect("transaction() with one conflict", r.transaction(debit, k), [True])
    expect("transaction() attempts", len(attempts), 2)
    expect("transaction() applied once, on the fresh value", other.get(k), b"51")
    other.delete(k)


def blocking(r, other, p):
    q, dst = f"{{{p}:q}}:jobs", f"{{{p}:q}}:done"
    other.delete(q, dst)
    at("BLPOP woken by another client")
    pusher = threading.Timer(PUSH_AFTER_S, lambda: other.rpush(q, "job-1"))
    start = time.monotonic()
    pusher.start()
    got = r.blpop([q], timeout=0)  # 0: wait for ever, as job queues do
    waited = time.monotonic() - start
    pusher.join()
    # A pair is a tuple with RESP2 and a list with RESP3 (so against Redis too).
    expect("BLPOP woken by another client's RPUSH", tuple(got or ()), (q.encode(), b"job-1"))
    expect_between("BLPOP waited for the push", waited, BLOCKED_AT_LEAST_S, 4.0)

    at("BLPOP timing out")
    start = time.monotonic()
    got = r.blpop([q], timeout=POP_TIMEOUT_S)
    waited = time.monotonic() - start
    expect("BLPOP timing out", got, None)
    expect_between("BLPOP's timeout", waited, POP_TIMEOUT_S - 0.05, POP_TIMEOUT_LATE_S)

    at("BLPOP with an element there")
    other.rpush(q, "a", "b")
    expect("BLPOP with an element there", tuple(r.blpop([q], timeout=1)), (q.encode(), b"a"))
    expect("BLMOVE", r.blmove(q, dst, 1, "LEFT", "RIGHT"), b"b")
    expect("BLMOVE's destination", other.lrange(dst, 0, -1), [b"b"])
    other.delete(q, dst)


def next_message(ps, what, sharded=False):
    """The next message of `ps`, or a Mismatch once MESSAGE_WAIT_S has passed. `sharded`:
    RedisCluster's pubsub reads sharded channels with a method of their own."""
    at(what)
    get = ps.get_sharded_message if sharded else ps.get_message
    deadline = time.monotonic() + MESSAGE_WAIT_S
    while time.monotonic() < deadline:
        message = get(timeout=deadline - time.monotonic())
        if message is not None:
            return message
    raise Mismatch(f"{what}: no message within {MESSAGE_WAIT_S} s")


def msg(kind, channel, data, pattern=None):
    return {"type": kind, "pattern": pattern, "channel": channel.encode(), "data": data}


def pubsub(r, other, p):
    ch, pat, sch = f"{p}:news", f"{p}:ne*", f"{p}:sharded"
    ps = r.pubsub()
    at("subscribe")
    ps.subscribe(ch)
    expect("subscribe", next_message(ps, "subscribe"), msg("subscribe", ch, 1))
    ps.psubscribe(pat)
    expect("psubscribe", next_message(ps, "psubscribe"), msg("psubscribe", pat, 2))
    ps.ping()
    pong = {"type": "pong", "pattern": None, "channel": None, "data": b""}
    expect("PING while subscribed", next_message(ps, "PING while subscribed"), pong)
    numsub = [tuple(pair) for pair in other.pubsub_numsub(ch)]
    expect("PUBSUB NUMSUB", numsub, [(ch.encode(), 1)])

    at("publish")
    expect("PUBLISH counts the channel and the pattern", other.publish(ch, "hello"), 2)
    expect("message", next_message(ps, "message"), msg("message", ch, b"hello"))
    expect("pmessage", next_message(ps, "pmessage"), msg("pmessage", ch, b"hello", pat.encode()))

    at("listen")
    other.publish(ch, "second")
    expect("listen()", next(ps.listen()), msg("message", ch, b"second"))
    expect("listen()'s pmessage", next(ps.listen()), msg("pmessage", ch, b"second", pat.encode()))

    at("ssubscribe")
    ps.ssubscribe(sch)
    expect("ssubscribe", next_message(ps, "ssubscribe"), msg("ssubscribe", sch, 1))
    expect("SPUBLISH", other.spublish(sch, "sharded-hello"), 1)
    expect("smessage", next_message(ps, "smessage"), msg("smessage", sch, b"sharded-hello"))

    at("unsubscribe")
    ps.unsubscribe(ch)
    expect("unsubscribe", next_message(ps, "unsubscribe"), msg("unsubscribe", ch, 1))
    ps.punsubscribe(pat)
    expect("punsubscribe", next_message(ps, "punsubscribe"), msg("punsubscribe", pat, 0))
    expect("PUBLISH after the unsubscribes", other.publish(ch, "unheard"), 0)
    ps.sunsubscribe(sch)
    expect("sunsubscribe", next_message(ps, "sunsubscribe"), msg("sunsubscribe", sch, 0))
    expect("nothing more", ps.get_message(timeout=0.2), None)
    ps.close()
    expect("the client goes on after pub/sub", r.ping(), True)

    at("run_in_thread")
    handled = []
    ps = r.pubsub()
    ps.subscribe(**{ch: handled.append})
    worker = ps.run_in_thread(sleep_time=0.01)
    deadline = time.monotonic() + MESSAGE_WAIT_S
    # The worker's subscription is confirmed once NUMSUB counts it.
    while other.pubsub_numsub(ch)[0][1] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    expect("PUBLISH to the worker", other.publish(ch, "to-worker"), 1)
    while not handled and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    worker.join(timeout=MESSAGE_WAIT_S)
    expect("run_in_thread() handler", handled, [msg("message", ch, b"to-worker")])


def reset(args, connect, other, p):
    k = f"{{{p}:reset}}:k"
    other.delete(k)
    s = connect(args, single_connection_client=True)
    at("RESET")
    protocol = s.client_info().get("resp")
    s.client_setname("before-reset")
    s.execute_command("WATCH", k)
    other.set(k, "changed while watched")
    # bytes with protocol=3 given, str with the default (so against Redis too).
    got = s.execute_command("RESET")
    expect("RESET", got.decode() if isinstance(got, bytes) else got, "RESET")
    # CLIENT INFO is a bulk string, which the library reads in either protocol.
    info = s.execute_command("CLIENT", "INFO")
    expect("RESET goes back to RESP2", b" resp=2" in info, True)
    if protocol == "3":
        # redis-py's RESP3 parser cannot read RESP2's nulls (against Redis too: it waits,
        # then reconnects), so the connection asks for RESP3 again, as after any RESET.
        s.execute_command("HELLO", 3)
    expect("RESET drops the name", s.client_getname(), None)
    at("MULTI/EXEC after RESET")
    s.execute_command("MULTI")
    s.execute_command("SET", k, "after reset")
    expect("RESET ended the WATCH: EXEC applies", s.execute_command("EXEC"), [b"OK"])
    expect("the write after RESET", other.get(k), b"after reset")
    other.delete(k)
    s.close()


def cluster_sessions(args):
    watchdog()
    options = dict(host="127.0.0.1", port=args.port[0])
    if args.protocol is not None:
        options["protocol"] = args.protocol
    if args.password is not None:
        options["password"] = args.password
        if args.username is not None:
            options["username"] = args.username
    at("RedisCluster")
    rc = RedisCluster(**options)
    other = RedisCluster(**options)
    p = args.prefix
    a, n, q = f"{{{p}:ctx}}:a", f"{{{p}:ctx}}:n", f"{{{p}:ctx}}:q"
    other.delete(a, n, q)

    at("cluster pipeline()")
    pipe = rc.pipeline()
    pipe.set(a, "1").incr(n).get(a)
    expect("cluster pipeline() in one slot", pipe.execute(), [True, 1, b"1"])
    at("cluster pipeline(transaction=True)")
    pipe = rc.pipeline(transaction=True)
    pipe.set(a, "2").incr(n).get(a)
    # SET answers b"OK" here: redis-py's cluster transactions skip its callback (so against
    # Redis too).
    want = [b"OK", 2, b"2"]
    expect("cluster pipeline(transaction=True) in one slot", pipe.execute(), want)

    at("cluster WATCH")
    with rc.pipeline(transaction=True) as pipe:
        pipe.watch(n)
        count = int(pipe.get(n))
        other.incr(n)
        pipe.multi()
        pipe.set(n, count + 10)
        try:
            got = pipe.execute()
            raise Mismatch(f"cluster EXEC after another client changed the key: got {got!r}")
        except WatchError as e:
            print(f"ok cluster WatchError when another client changed the key ({e})")
    expect("the other client's INCR stands", other.get(n), b"3")

    at("cluster BLPOP")
    pusher = threading.Timer(PUSH_AFTER_S, lambda: other.rpush(q, "job"))
    start = time.monotonic()
    pusher.start()
    got = rc.blpop([q], timeout=5)
    waited = time.monotonic() - start
    pusher.join()
    expect("cluster BLPOP woken by another client", tuple(got or ()), (q.encode(), b"job"))
    expect_between("cluster BLPOP waited for the push", waited, BLOCKED_AT_LEAST_S, 4.0)
    expect("cluster BLPOP timing out", rc.blpop([q], timeout=POP_TIMEOUT_S), None)
    other.delete(a, n, q)
    cluster_pubsub(rc, other, p)


def cluster_pubsub(rc, other, p):
    at("cluster pubsub()")
    ch, sch = f"{p}:cluster-news", f"{p}:cluster-sharded"
    ps = rc.pubsub()
    ps.subscribe(ch)
    expect("cluster subscribe", next_message(ps, "cluster subscribe"), msg("subscribe", ch, 1))
    expect("cluster PUBLISH", other.publish(ch, "hello"), 1)
    expect("cluster message", next_message(ps, "cluster message"), msg("message", ch, b"hello"))
    ps.close()
    ps = rc.pubsub()
    ps.ssubscribe(sch)
    want = msg("ssubscribe", sch, 1)
    expect("cluster ssubscribe", next_message(ps, "cluster ssubscribe", sharded=True), want)
    expect("cluster SPUBLISH", other.spublish(sch, "sharded"), 1)
    want = msg("smessage", sch, b"sharded")
    expect("cluster smessage", next_message(ps, "cluster smessage", sharded=True), want)
    ps.close()
