// The session features of ioredis and node-redis against percore, with each library's default
// settings: the `sessions` and `cluster-sessions` suites of node_client.mjs, which parses the
// arguments, runs the suite and reports the outcome (its watchdog names a step that hangs).
//
// - sessions (one percore as one server): multi().set().incr().exec() in one slot, one aborted
//   at queue time and one across slots, neither of which may change anything; a
//   non-transactional pipeline across masters; WATCH with a conflict (ioredis: exec() answers
//   null; node-redis: WatchError, on a client of a pool as its docs advise), and UNWATCH;
//   BLPOP woken by another client's push, timing out, and BLMOVE; subscribe, psubscribe and
//   ssubscribe on a dedicated connection, receiving what another client publishes, and the
//   unsubscribes; RESET, which ends a WATCH and the connection's name.
// - cluster-sessions: the library's cluster client: multi() in one slot (hash tags), BLPOP,
//   and subscribe (node-redis: sSubscribe too; ioredis's cluster client passes no smessage
//   on without its shardedSubscribers option, against Redis too).
//
// Each export takes the harness `t` of node_client.mjs: { expect, check, require, p, protocol,
// ports, Mismatch, credentials, noteError, ioredisClient, nodeRedisClient, nodeRedisOptions }.

/** How long a message may take to arrive once published. */
const MESSAGE_WAIT_MS = 5_000;
/** When another client pushes to the list a BLPOP waits on, and the shortest wait that shows
 * the BLPOP did block (a little under PUSH_AFTER_MS: timers are not exact). */
const PUSH_AFTER_MS = 300;
const BLOCKED_AT_LEAST_MS = 250;
/** The timeout of the BLPOP that must time out (seconds, as the command takes it), and how
 * late its nil may come. */
const POP_TIMEOUT_S = 0.3;
const POP_TIMEOUT_LATE_MS = 2_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function expectBetween(t, what, ms, low, high) {
  if (ms < low || ms > high) throw new t.Mismatch(`${what}: ${ms} ms, want ${low} to ${high} ms`);
  console.log(`ok ${what} (${ms} ms)`);
}

async function expectFailure(t, what, action, text) {
  let got;
  try {
    got = await t.check(what, action);
  } catch (e) {
    const message = `${e?.name}: ${e?.message} ${JSON.stringify(e?.replies ?? "")}`;
    if (!message.includes(text)) throw new t.Mismatch(`${what}: error ${message}, want one containing ${text}`);
    console.log(`ok ${what} (refused: ${message})`);
    return;
  }
  throw new t.Mismatch(`${what}: expected an error containing ${text}, got ${JSON.stringify(got)}`);
}

/** Events of one kind, each as an array of its arguments, to be awaited one at a time. */
function inbox(emitter, events) {
  const queue = [];
  const waiting = [];
  for (const event of events) {
    emitter.on(event, (...args) => {
      const item = [event, ...args];
      const waiter = waiting.shift();
      if (waiter) waiter(item);
      else queue.push(item);
    });
  }
  return {
    next(t, what) {
      t.check(what, () => {});
      if (queue.length > 0) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new t.Mismatch(`${what}: nothing within ${MESSAGE_WAIT_MS} ms`)), MESSAGE_WAIT_MS);
        waiting.push((item) => {
          clearTimeout(timer);
          resolve(item);
        });
      });
    },
    pending: () => queue.length,
  };
}

/** In RESP3 a subscribed connection goes on serving every command, its replies interleaved
 * with the messages: a PUBLISH on it (whose own message comes around its reply) and a GET. */
async function resp3Subscribed(t, sub, got, ch, pat) {
  const { expect, check } = t;
  expect("RESP3: PUBLISH on the subscribed connection", await check("RESP3 PUBLISH", () => sub.publish(ch, "from-self")), 2);
  expect("RESP3: its message", await got.next(t, "message"), ["message", ch, "from-self"]);
  expect("RESP3: its pmessage", await got.next(t, "pmessage"), ["pmessage", pat, ch, "from-self"]);
  expect("RESP3: GET on the subscribed connection", await check("RESP3 GET", () => sub.get(`${t.p}:missing`)), null);
}

/** Runs `pop` while `push` (another client's) runs after PUSH_AFTER_MS; the pop's result and
 * how long it took. */
async function popWhilePushed(pop, push) {
  const start = Date.now();
  const pusher = sleep(PUSH_AFTER_MS).then(push);
  const got = await pop();
  await pusher;
  return [got, Date.now() - start];
}

/** Deletes keys one by one: a cluster node refuses keys of several slots in one DEL (percore
 * would split them), and the suites run against Redis too. */
async function clear(client, ...keys) {
  for (const key of keys) await client.del(key);
}

// ---- ioredis ----

export async function ioredisSessions(t) {
  const { expect, check, p } = t;
  const r = t.ioredisClient();
  const other = t.ioredisClient();
  const a = `{${p}:tx}:a`, n = `{${p}:tx}:n`, b = `{${p}:elsewhere}:b`;
  await clear(other, a, n, b);
  const tx = await check("multi", () => r.multi().set(a, "1").incr(n).incr(n).get(a).exec());
  expect("multi().exec()", tx, [[null, "OK"], [null, 1], [null, 2], [null, "1"]]);
  // Replies of every type inside EXEC (a map and a double in RESP3; ioredis gives doubles as
  // strings in both protocols).
  const h = `{${p}:tx}:h`, z = `{${p}:tx}:z`;
  const typed = await check("multi with a hash", () => r.multi().hset(h, { f: "v" }).hgetall(h).zadd(z, 1.5, "m").zscore(z, "m").del(h, z).exec());
  expect("multi() with a hash and a sorted set", typed, [[null, 1], [null, { f: "v" }], [null, 1], [null, "1.5"], [null, 2]]);
  await expectFailure(t, "multi with an unknown command", () => r.multi().set(a, "aborted").call("NO-SUCH-COMMAND", a).exec(), "EXECABORT");
  expect("nothing of the aborted transaction ran", await other.get(a), "1");
  await expectFailure(t, "multi across slots", () => r.multi().set(a, "cross").set(b, "cross").exec(), "CROSSSLOT");
  expect("nothing of the cross-slot transaction ran", [await other.get(a), await other.get(b)], ["1", null]);

  const keys = [...Array(6).keys()].map((i) => `${p}:np:${i}`);
  const pipe = r.pipeline();
  for (const [i, key] of keys.entries()) pipe.set(key, String(i));
  for (const key of keys) pipe.incr(key);
  const replies = await check("pipeline", () => pipe.exec());
  const want = [...keys.map(() => "OK"), ...keys.map((_, i) => i + 1)];
  expect("pipeline() across masters", replies.map(([err, value]) => err ?? value), want);
  await clear(other, a, n, ...keys);

  const k = `{${p}:w}:balance`;
  await other.set(k, "10");
  await check("watch", () => r.watch(k));
  const balance = Number(await r.get(k));
  await other.set(k, "100");
  expect("multi after another client changed the watched key: null", await r.multi().set(k, String(balance - 1)).exec(), null);
  expect("the other client's write stands", await other.get(k), "100");
  await r.watch(k);
  expect("multi with the watched key unchanged", await r.multi().decr(k).exec(), [[null, 99]]);
  await r.watch(k);
  expect("UNWATCH", await r.unwatch(), "OK");
  await other.set(k, "50");
  expect("multi after UNWATCH", await r.multi().incr(k).exec(), [[null, 51]]);
  await clear(other, k);

  await ioredisBlocking(t, r, other);
  await ioredisPubsub(t, r, other);

  const s = t.ioredisClient();
  await s.client("SETNAME", "before-reset");
  await s.watch(k);
  await other.set(k, "changed while watched");
  expect("RESET", await check("RESET", () => s.call("RESET")), "RESET");
  expect("RESET drops the name", await s.client("GETNAME"), null);
  expect("RESET ended the WATCH: exec applies", await s.multi().set(k, "after reset").exec(), [[null, "OK"]]);
  await clear(other, k);
  for (const client of [r, other, s]) client.disconnect();
}

async function ioredisBlocking(t, r, other) {
  const { expect, check, p } = t;
  const q = `{${p}:q}:jobs`, dst = `{${p}:q}:done`;
  await clear(other, q, dst);
  const [got, waited] = await check("BLPOP woken", () => popWhilePushed(() => r.blpop(q, 0), () => other.rpush(q, "job-1")));
  expect("BLPOP woken by another client's RPUSH", got, [q, "job-1"]);
  expectBetween(t, "BLPOP waited for the push", waited, BLOCKED_AT_LEAST_MS, 4_000);
  const start = Date.now();
  expect("BLPOP timing out", await check("BLPOP timing out", () => r.blpop(q, POP_TIMEOUT_S)), null);
  expectBetween(t, "BLPOP's timeout", Date.now() - start, POP_TIMEOUT_S * 1000 - 50, POP_TIMEOUT_LATE_MS);
  await other.rpush(q, "a", "b");
  expect("BLPOP with an element there", await r.blpop(q, 1), [q, "a"]);
  expect("BLMOVE", await r.blmove(q, dst, "LEFT", "RIGHT", 1), "b");
  expect("BLMOVE's destination", await other.lrange(dst, 0, -1), ["b"]);
  await clear(other, q, dst);
}

async function ioredisPubsub(t, r, other) {
  const { expect, check, p } = t;
  const ch = `${p}:news`, pat = `${p}:ne*`, sch = `${p}:sharded`;
  const sub = t.ioredisClient();
  const resp = /(?:^| )resp=(\d)/.exec(await check("CLIENT INFO", () => sub.client("INFO")))?.[1];
  console.log(`protocol: ${resp}`);
  const got = inbox(sub, ["message", "pmessage", "smessage"]);
  expect("subscribe", await check("subscribe", () => sub.subscribe(ch)), 1);
  expect("psubscribe", await check("psubscribe", () => sub.psubscribe(pat)), 2);
  expect("PUBSUB NUMSUB", await other.pubsub("NUMSUB", ch), [ch, 1]);
  expect("PUBLISH counts the channel and the pattern", await other.publish(ch, "hello"), 2);
  expect("message", await got.next(t, "message"), ["message", ch, "hello"]);
  expect("pmessage", await got.next(t, "pmessage"), ["pmessage", pat, ch, "hello"]);
  if (resp === "3") await resp3Subscribed(t, sub, got, ch, pat);
  expect("ssubscribe", await check("ssubscribe", () => sub.ssubscribe(sch)), 1);
  expect("SPUBLISH", await other.spublish(sch, "sharded-hello"), 1);
  expect("smessage", await got.next(t, "smessage"), ["smessage", sch, "sharded-hello"]);
  expect("unsubscribe", await check("unsubscribe", () => sub.unsubscribe(ch)), 1);
  expect("punsubscribe", await check("punsubscribe", () => sub.punsubscribe(pat)), 0);
  expect("PUBLISH after the unsubscribes", await other.publish(ch, "unheard"), 0);
  expect("sunsubscribe", await check("sunsubscribe", () => sub.sunsubscribe(sch)), 0);
  await sleep(200);
  expect("nothing more", got.pending(), 0);
  sub.disconnect();
  expect("the other connections go on", await r.ping(), "PONG");
}

export async function ioredisClusterSessions(t) {
  const { expect, check, p } = t;
  const Redis = t.require("ioredis");
  const redisOptions = { ...t.credentials() };
  if (t.protocol !== undefined) redisOptions.protocol = t.protocol;
  const cluster = () => {
    const rc = new Redis.Cluster([{ host: "127.0.0.1", port: t.ports[0] }], { redisOptions });
    rc.on("error", t.noteError);
    return rc;
  };
  const rc = cluster();
  const other = cluster();
  const a = `{${p}:ctx}:a`, n = `{${p}:ctx}:n`, q = `{${p}:ctx}:q`;
  await check("cluster ready", () => clear(other, a, n, q));
  const tx = await check("cluster multi", () => rc.multi().set(a, "1").incr(n).get(a).exec());
  expect("cluster multi() in one slot", tx, [[null, "OK"], [null, 1], [null, "1"]]);
  const [got, waited] = await check("cluster BLPOP", () => popWhilePushed(() => rc.blpop(q, 5), () => other.rpush(q, "job")));
  expect("cluster BLPOP woken by another client", got, [q, "job"]);
  expectBetween(t, "cluster BLPOP waited for the push", waited, BLOCKED_AT_LEAST_MS, 4_000);
  expect("cluster BLPOP timing out", await check("cluster BLPOP timing out", () => rc.blpop(q, POP_TIMEOUT_S)), null);
  await clear(other, a, n, q);

  // PUBLISH's count is not checked: a cluster node counts only its own subscribers.
  // (ioredis's cluster client passes no smessage on without its shardedSubscribers option.)
  const ch = `${p}:cluster-news`;
  const heard = inbox(rc, ["message"]);
  expect("cluster subscribe", await check("cluster subscribe", () => rc.subscribe(ch)), 1);
  await other.publish(ch, "hello");
  expect("cluster message", await heard.next(t, "cluster message"), ["message", ch, "hello"]);
  rc.disconnect();
  other.disconnect();
}

// ---- node-redis ----

export async function nodeRedisSessions(t) {
  const { expect, check, p } = t;
  const r = await t.nodeRedisClient();
  const other = await t.nodeRedisClient();
  const a = `{${p}:tx}:a`, n = `{${p}:tx}:n`, b = `{${p}:elsewhere}:b`;
  await clear(other, a, n, b);
  const tx = await check("multi", () => r.multi().set(a, "1").incr(n).incr(n).get(a).exec());
  expect("multi().exec()", tx, ["OK", 1, 2, "1"]);
  // Replies of every type inside EXEC (a map and a double in RESP3).
  const h = `{${p}:tx}:h`, z = `{${p}:tx}:z`;
  const typed = await check("multi with a hash", () => r.multi().hSet(h, { f: "v" }).hGetAll(h).zAdd(z, { score: 1.5, value: "m" }).zScore(z, "m").del([h, z]).exec());
  typed[1] = { ...typed[1] }; // an object without a prototype
  expect("multi() with a hash and a sorted set", typed, [1, { f: "v" }, 1, 1.5, 2]);
  await expectFailure(t, "multi with an unknown command", () => r.multi().set(a, "aborted").addCommand(["NO-SUCH-COMMAND", a]).exec(), "unknown command");
  expect("nothing of the aborted transaction ran", await other.get(a), "1");
  await expectFailure(t, "multi across slots", () => r.multi().set(a, "cross").set(b, "cross").exec(), "CROSSSLOT");
  expect("nothing of the cross-slot transaction ran", [await other.get(a), await other.get(b)], ["1", null]);

  const keys = [...Array(6).keys()].map((i) => `${p}:np:${i}`);
  const pipe = r.multi();
  for (const [i, key] of keys.entries()) pipe.set(key, String(i));
  for (const key of keys) pipe.incr(key);
  const want = [...keys.map(() => "OK"), ...keys.map((_, i) => i + 1)];
  expect("execAsPipeline() across masters", await check("pipeline", () => pipe.execAsPipeline()), want);
  await clear(other, a, n, ...keys);

  await nodeRedisWatch(t, other);
  await nodeRedisBlocking(t, r, other);
  await nodeRedisPubsub(t, r, other);

  const k = `{${p}:reset}:k`;
  const s = await t.nodeRedisClient();
  await s.clientSetName("before-reset");
  await s.watch(k);
  await other.set(k, "changed while watched");
  expect("RESET", await check("RESET", () => s.sendCommand(["RESET"])), "RESET");
  expect("RESET drops the name", await s.clientGetName(), null);
  expect("RESET ended the WATCH: exec applies", await s.multi().set(k, "after reset").exec(), ["OK"]);
  await clear(other, k);
  for (const client of [r, other, s]) client.destroy();
}

async function nodeRedisWatch(t, other) {
  const { expect, check, p, require } = t;
  const { createClientPool, WatchError } = require("redis");
  const pool = createClientPool(t.nodeRedisOptions());
  pool.on("error", t.noteError);
  await check("pool connect", () => pool.connect());
  const k = `{${p}:w}:balance`;
  await other.set(k, "10");
  step(t, "watch conflict");
  try {
    const got = await pool.execute(async (client) => {
      await client.watch(k);
      const balance = Number(await client.get(k));
      await other.set(k, "100");
      return client.multi().set(k, String(balance - 1)).exec();
    });
    throw new t.Mismatch(`exec after another client changed the watched key: got ${JSON.stringify(got)}`);
  } catch (e) {
    if (!(e instanceof WatchError)) throw e;
    console.log(`ok WatchError when another client changed the key (${e.message})`);
  }
  expect("the other client's write stands", await other.get(k), "100");
  const done = await check("watch", () =>
    pool.execute(async (client) => {
      await client.watch(k);
      const balance = Number(await client.get(k));
      return client.multi().set(k, String(balance - 1)).exec();
    }),
  );
  expect("exec with the watched key unchanged", done, ["OK"]);
  expect("the transaction's write", await other.get(k), "99");
  const unwatched = await check("unwatch", () =>
    pool.execute(async (client) => {
      await client.watch(k);
      await client.unwatch();
      await other.set(k, "50");
      return client.multi().incr(k).exec();
    }),
  );
  expect("exec after UNWATCH", unwatched, [51]);
  await clear(other, k);
  pool.destroy();
}

function step(t, what) {
  t.check(what, () => {});
}

async function nodeRedisBlocking(t, r, other) {
  const { expect, check, p } = t;
  const q = `{${p}:q}:jobs`, dst = `{${p}:q}:done`;
  await clear(other, q, dst);
  const [got, waited] = await check("blPop woken", () => popWhilePushed(() => r.blPop(q, 0), () => other.rPush(q, "job-1")));
  expect("blPop woken by another client's rPush", got, { key: q, element: "job-1" });
  expectBetween(t, "blPop waited for the push", waited, BLOCKED_AT_LEAST_MS, 4_000);
  const start = Date.now();
  expect("blPop timing out", await check("blPop timing out", () => r.blPop(q, POP_TIMEOUT_S)), null);
  expectBetween(t, "blPop's timeout", Date.now() - start, POP_TIMEOUT_S * 1000 - 50, POP_TIMEOUT_LATE_MS);
  await other.rPush(q, ["a", "b"]);
  expect("blPop with an element there", await r.blPop(q, 1), { key: q, element: "a" });
  expect("blMove", await r.blMove(q, dst, "LEFT", "RIGHT", 1), "b");
  expect("blMove's destination", await other.lRange(dst, 0, -1), ["b"]);
  await clear(other, q, dst);
}

async function nodeRedisPubsub(t, r, other) {
  const { expect, check, p } = t;
  const ch = `${p}:news`, pat = `${p}:ne*`, sch = `${p}:sharded`;
  const sub = r.duplicate();
  sub.on("error", t.noteError);
  await check("duplicate connect", () => sub.connect());
  const resp = String((await check("CLIENT INFO", () => sub.clientInfo())).resp);
  console.log(`protocol: ${resp}`);
  const events = new (await import("node:events")).EventEmitter();
  const got = inbox(events, ["message", "pmessage", "smessage"]);
  await check("subscribe", () => sub.subscribe(ch, (message, channel) => events.emit("message", channel, message)));
  await check("pSubscribe", () => sub.pSubscribe(pat, (message, channel) => events.emit("pmessage", pat, channel, message)));
  expect("PUBSUB NUMSUB", { ...(await other.pubSubNumSub(ch)) }, { [ch]: 1 });
  expect("PUBLISH counts the channel and the pattern", await other.publish(ch, "hello"), 2);
  expect("message", await got.next(t, "message"), ["message", ch, "hello"]);
  expect("pmessage", await got.next(t, "pmessage"), ["pmessage", pat, ch, "hello"]);
  if (resp === "3") await resp3Subscribed(t, sub, got, ch, pat);
  await check("sSubscribe", () => sub.sSubscribe(sch, (message, channel) => events.emit("smessage", channel, message)));
  expect("sPublish", await other.sPublish(sch, "sharded-hello"), 1);
  expect("smessage", await got.next(t, "smessage"), ["smessage", sch, "sharded-hello"]);
  await check("unsubscribe", () => sub.unsubscribe(ch));
  await check("pUnsubscribe", () => sub.pUnsubscribe(pat));
  expect("PUBLISH after the unsubscribes", await other.publish(ch, "unheard"), 0);
  await check("sUnsubscribe", () => sub.sUnsubscribe(sch));
  expect("sPublish after sUnsubscribe", await other.sPublish(sch, "unheard"), 0);
  await sleep(200);
  expect("nothing more", got.pending(), 0);
  sub.destroy();
  expect("the other connections go on", await r.ping(), "PONG");
}

export async function nodeRedisClusterSessions(t) {
  const { expect, check, p } = t;
  const { createCluster } = t.require("redis");
  const defaults = { ...t.credentials() };
  if (t.protocol !== undefined) defaults.RESP = t.protocol;
  const cluster = async () => {
    const rc = createCluster({ rootNodes: [{ socket: { host: "127.0.0.1", port: t.ports[0] } }], defaults });
    rc.on("error", t.noteError);
    await check("cluster connect", () => rc.connect());
    return rc;
  };
  const rc = await cluster();
  const other = await cluster();
  const a = `{${p}:ctx}:a`, n = `{${p}:ctx}:n`, q = `{${p}:ctx}:q`;
  await clear(other, a, n, q);
  const tx = await check("cluster multi", () => rc.multi().set(a, "1").incr(n).get(a).exec());
  expect("cluster multi() in one slot", tx, ["OK", 1, "1"]);
  const [got, waited] = await check("cluster blPop", () => popWhilePushed(() => rc.blPop(q, 5), () => other.rPush(q, "job")));
  expect("cluster blPop woken by another client", got, { key: q, element: "job" });
  expectBetween(t, "cluster blPop waited for the push", waited, BLOCKED_AT_LEAST_MS, 4_000);
  expect("cluster blPop timing out", await check("cluster blPop timing out", () => rc.blPop(q, POP_TIMEOUT_S)), null);
  await clear(other, a, n, q);

  // PUBLISH's count is not checked: a cluster node counts only its own subscribers.
  const ch = `${p}:cluster-news`, sch = `${p}:cluster-sharded`;
  const events = new (await import("node:events")).EventEmitter();
  const heard = inbox(events, ["message", "smessage"]);
  await check("cluster subscribe", () => rc.subscribe(ch, (message, channel) => events.emit("message", channel, message)));
  await other.publish(ch, "hello");
  expect("cluster message", await heard.next(t, "cluster message"), ["message", ch, "hello"]);
  await check("cluster sSubscribe", () => rc.sSubscribe(sch, (message, channel) => events.emit("smessage", channel, message)));
  expect("cluster sPublish", await other.sPublish(sch, "sharded"), 1);
  expect("cluster smessage", await heard.next(t, "cluster smessage"), ["smessage", sch, "sharded"]);
  rc.destroy();
  other.destroy();
}
