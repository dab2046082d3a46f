// ioredis and node-redis (the `redis` package) against percore, with each library's default
// settings.
//
// Run by tests/client_libraries.rs, with CLIENT_LIBS_NODE_DIR naming the directory it
// installed both packages into:
//
//   node node_client.mjs LIB SUITE --port PORT [--port PORT ...] [--protocol 2|3]
//        [--password PW [--username USER]] [--prefix PREFIX]
//
// LIB is `ioredis` or `node-redis`. SUITE is `plain` (one percore as one server: strings, MGET
// and DEL across masters, INCR, a non-transactional pipeline, binary keys and values, hashes,
// sorted sets and sets, the connection's own view in CLIENT INFO), `scan` (the library's scan
// iterator over keys on every master), `cluster` (the library's cluster client pointed at
// percore, which must present only percore addresses), `sessions` (transactions, WATCH,
// blocking pops, pub/sub and RESET) or `cluster-sessions` (the cluster client's multi() and
// BLPOP in one slot, and pub/sub); the last two are in node_sessions.mjs. Without --protocol the library's
// default is used. With --password, a client without it and one with a wrong one must be
// refused first.
//
// Prints the library's version and each check; exits 1 at the first mismatch, naming it. The
// `plain` suite leaves PREFIX:kept:0..15 = kept-0..15 for the caller to find on the masters.

import { createRequire } from "node:module";
import { isDeepStrictEqual, parseArgs } from "node:util";
import path from "node:path";

import * as sessions from "./node_sessions.mjs";

const KEYS = 16;
const SCAN_KEYS = 120;
/** A check still waiting after this long has hung: report which one, rather than be killed. */
const WATCHDOG_MS = 20_000;

const modules = process.env.CLIENT_LIBS_NODE_DIR;
if (!modules) {
  console.log("CLIENT_LIBS_NODE_DIR is not set (the directory with node_modules)");
  process.exit(2);
}
const require = createRequire(path.join(modules, "package.json"));

const { positionals, values: opts } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: "string", multiple: true },
    protocol: { type: "string" },
    password: { type: "string" },
    username: { type: "string" },
    prefix: { type: "string", default: "js" },
  },
});
const [lib, suite] = positionals;
const ports = (opts.port ?? []).map(Number);
const protocol = opts.protocol === undefined ? undefined : Number(opts.protocol);
const p = opts.prefix;

class Mismatch extends Error {}

let step = "start";
/** The last error a client emitted: a client that retries forever says why in the end. */
let lastError;
const noteError = (e) => {
  lastError = e;
};
function expect(what, got, want) {
  if (!isDeepStrictEqual(got, want)) {
    throw new Mismatch(`${what}: got ${show(got)}, want ${show(want)}`);
  }
  console.log(`ok ${what}`);
}
function show(value) {
  return JSON.stringify(value, (_, v) => (v && v.type === "Buffer" ? `<Buffer ${Buffer.from(v.data).toString("hex")}>` : v));
}
async function check(what, action) {
  step = what;
  return action();
}
async function expectRefused(what, action) {
  step = what;
  try {
    const got = await action();
    throw new Mismatch(`${what}: expected a refusal, got ${show(got)}`);
  } catch (e) {
    if (e instanceof Mismatch) throw e;
    console.log(`ok ${what} (refused: ${e.message})`);
  }
}
const range = (n) => [...Array(n).keys()];
const binaryValue = Buffer.from(range(256));
const binaryKey = Buffer.concat([Buffer.from(`${p}:bin:`), Buffer.from([0, 0xff, 13, 10])]);
const clientInfoResp = (line) => /(?:^| )resp=(\d)/.exec(String(line))?.[1];

// ---- ioredis ----

function ioredisClient(extra = {}) {
  const Redis = require("ioredis");
  const options = { host: "127.0.0.1", port: ports[0], ...credentials(), ...extra };
  if (protocol !== undefined) options.protocol = protocol;
  const client = new Redis(options);
  client.on("error", noteError); // reported through the commands that fail
  return client;
}

function credentials() {
  if (opts.password === undefined) return {};
  return opts.username === undefined
    ? { password: opts.password }
    : { password: opts.password, username: opts.username };
}

async function ioredisLogin() {
  if (opts.password === undefined) return;
  for (const [what, extra] of [
    ["no password", { password: undefined, username: undefined }],
    ["wrong password", { password: "wrong" }],
  ]) {
    const client = ioredisClient({ ...extra, maxRetriesPerRequest: 0 });
    await expectRefused(what, () => client.ping());
    client.disconnect();
  }
}

async function ioredisPlain() {
  await ioredisLogin();
  const r = ioredisClient();
  expect("PING", await check("PING", () => r.ping()), "PONG");
  const info = await check("CLIENT INFO", () => r.client("INFO"));
  console.log(`protocol asked: ${protocol}, CLIENT INFO resp=${clientInfoResp(info)}`);
  if (protocol !== undefined) expect("CLIENT INFO resp", clientInfoResp(info), String(protocol));
  expect("ACL WHOAMI", String(await r.acl("WHOAMI")), opts.username ?? "default");
  await r.del(`${p}:counter`, `${p}:pipe:counter`, `${p}:hash`, `${p}:zset`, `${p}:set`);

  const keys = range(KEYS).map((i) => `${p}:k:${i}`);
  for (const [i, key] of keys.entries()) expect(`SET ${key}`, await r.set(key, `v${i}`), "OK");
  for (const [i, key] of keys.entries()) expect(`GET ${key}`, await r.get(key), `v${i}`);
  const values = range(KEYS).map((i) => `v${i}`);
  step = "MGET";
  expect("MGET across masters", await r.mget(...keys, `${p}:missing`), [...values, null]);
  expect("GET missing", await r.get(`${p}:missing`), null);

  expect("INCR", await r.incr(`${p}:counter`), 1);
  expect("INCR again", await r.incr(`${p}:counter`), 2);
  expect("INCRBY", await r.incrby(`${p}:counter`, 10), 12);

  const pipe = r.pipeline();
  for (const i of range(10)) pipe.set(`${p}:pipe:${i}`, String(i));
  for (const i of range(10)) pipe.get(`${p}:pipe:${i}`);
  pipe.incr(`${p}:pipe:counter`);
  const replies = await check("pipeline", () => pipe.exec());
  const want = [...range(10).map(() => "OK"), ...range(10).map(String), 1];
  expect("pipeline", replies.map(([err, value]) => err ?? value), want);

  expect("SET binary", await r.set(binaryKey, binaryValue), "OK");
  expect("GET binary", await r.getBuffer(binaryKey), binaryValue);
  expect("MGET binary", await r.mgetBuffer(binaryKey, keys[0]), [binaryValue, Buffer.from("v0")]);

  expect("HSET", await r.hset(`${p}:hash`, { f1: "1", f2: "\0" }), 2);
  expect("HGETALL", await r.hgetall(`${p}:hash`), { f1: "1", f2: "\0" });
  expect("ZADD", await r.zadd(`${p}:zset`, 1.5, "a", 2, "b"), 2);
  expect("ZSCORE", await r.zscore(`${p}:zset`, "a"), "1.5");
  expect("ZRANGE WITHSCORES", await r.zrange(`${p}:zset`, 0, -1, "WITHSCORES"), ["a", "1.5", "b", "2"]);
  expect("SADD", await r.sadd(`${p}:set`, "x", "y"), 2);
  expect("SMEMBERS", (await r.smembers(`${p}:set`)).sort(), ["x", "y"]);

  expect("DEL across masters", await r.del(...keys), KEYS);
  expect("EXISTS after DEL", await r.exists(...keys), 0);
  for (const i of range(KEYS)) await r.set(`${p}:kept:${i}`, `kept-${i}`);
  r.disconnect();
}

function streamKeys(stream) {
  return new Promise((resolve, reject) => {
    const seen = [];
    stream.on("data", (keys) => seen.push(...keys));
    stream.on("end", () => resolve(seen));
    stream.on("error", reject);
  });
}

async function ioredisScan() {
  await ioredisLogin();
  const r = ioredisClient();
  const want = range(SCAN_KEYS).map((i) => `${p}:scan:${i}`).sort();
  const pipe = r.pipeline();
  for (const key of want) pipe.set(key, "1");
  for (const i of range(5)) pipe.set(`${p}:other:${i}`, "1");
  await check("fill", () => pipe.exec());
  step = "scanStream MATCH";
  const seen = await streamKeys(r.scanStream({ match: `${p}:scan:*`, count: 10 }));
  expect("scanStream MATCH", [...new Set(seen)].sort(), want);
  step = "scanStream";
  const everything = new Set(await streamKeys(r.scanStream({ count: 50 })));
  expect("scanStream sees every key", want.filter((k) => !everything.has(k)), []);
  expect("scanStream sees the others", everything.has(`${p}:other:0`), true);
  r.disconnect();
}

async function ioredisCluster() {
  await ioredisLogin();
  const Redis = require("ioredis");
  const redisOptions = { ...credentials() };
  if (protocol !== undefined) redisOptions.protocol = protocol;
  const rc = new Redis.Cluster([{ host: "127.0.0.1", port: ports[0] }], { redisOptions });
  rc.on("error", noteError);
  await check("cluster ready", () => rc.ping());
  const nodes = rc.nodes("all").map((n) => `${n.options.host}:${n.options.port}`);
  console.log(`nodes the cluster client learned: ${nodes}`);
  const allowed = new Set(ports.map((port) => `127.0.0.1:${port}`));
  expect("only percore addresses", nodes.filter((n) => !allowed.has(n)), []);

  await rc.del(`${p}:c:counter`);
  const keys = range(KEYS).map((i) => `${p}:c:${i}`);
  for (const [i, key] of keys.entries()) expect(`SET ${key}`, await rc.set(key, `v${i}`), "OK");
  for (const [i, key] of keys.entries()) expect(`GET ${key}`, await rc.get(key), `v${i}`);
  const tagged = range(4).map((i) => `{${p}:tag}:${i}`);
  for (const key of tagged) await rc.set(key, key);
  expect("MGET one slot", await rc.mget(...tagged), tagged);
  expect("INCR", await rc.incr(`${p}:c:counter`), 1);
  const pipe = rc.pipeline();
  for (const key of tagged) pipe.get(key);
  const replies = await check("cluster pipeline", () => pipe.exec());
  expect("cluster pipeline", replies.map(([err, value]) => err ?? value), tagged);
  expect("SET binary", await rc.set(`${p}:c:bin`, binaryValue), "OK");
  expect("GET binary", await rc.getBuffer(`${p}:c:bin`), binaryValue);
  step = "scanStream on every master";
  const seen = new Set();
  for (const node of rc.nodes("master")) {
    for (const key of await streamKeys(node.scanStream({ match: `${p}:c:*`, count: 10 }))) seen.add(key);
  }
  expect("scanStream on every master", [...seen].sort(), [...keys, `${p}:c:counter`, `${p}:c:bin`].sort());
  let deleted = 0;
  for (const key of keys) deleted += await rc.del(key);
  expect("DEL each", deleted, KEYS);
  rc.disconnect();
}

// ---- node-redis ----

function nodeRedisOptions(extra = {}) {
  const options = { socket: { host: "127.0.0.1", port: ports[0] }, ...credentials(), ...extra };
  if (protocol !== undefined) options.RESP = protocol;
  return options;
}

async function nodeRedisClient(extra = {}) {
  const { createClient } = require("redis");
  const client = createClient(nodeRedisOptions(extra));
  client.on("error", noteError); // reported through the commands that fail
  await check("connect", () => client.connect());
  return client;
}

async function nodeRedisLogin() {
  if (opts.password === undefined) return;
  const noReconnect = { socket: { host: "127.0.0.1", port: ports[0], reconnectStrategy: false } };
  for (const [what, extra] of [
    ["no password", { password: undefined, username: undefined }],
    ["wrong password", { password: "wrong" }],
  ]) {
    let client;
    await expectRefused(what, async () => {
      client = await nodeRedisClient({ ...extra, ...noReconnect });
      return client.ping();
    });
    client?.destroy();
  }
}

async function nodeRedisPlain() {
  const { RESP_TYPES } = require("redis");
  await nodeRedisLogin();
  const r = await nodeRedisClient();
  expect("PING", await check("PING", () => r.ping()), "PONG");
  const info = await check("CLIENT INFO", () => r.clientInfo());
  console.log(`protocol asked: ${protocol}, CLIENT INFO resp=${info.resp}`);
  if (protocol !== undefined) expect("CLIENT INFO resp", info.resp, protocol);
  expect("ACL WHOAMI", await r.aclWhoAmI(), opts.username ?? "default");
  await r.del([`${p}:counter`, `${p}:pipe:counter`, `${p}:hash`, `${p}:zset`, `${p}:set`]);

  const keys = range(KEYS).map((i) => `${p}:k:${i}`);
  for (const [i, key] of keys.entries()) expect(`SET ${key}`, await r.set(key, `v${i}`), "OK");
  for (const [i, key] of keys.entries()) expect(`GET ${key}`, await r.get(key), `v${i}`);
  const values = range(KEYS).map((i) => `v${i}`);
  step = "MGET";
  expect("MGET across masters", await r.mGet([...keys, `${p}:missing`]), [...values, null]);
  expect("GET missing", await r.get(`${p}:missing`), null);

  expect("INCR", await r.incr(`${p}:counter`), 1);
  expect("INCR again", await r.incr(`${p}:counter`), 2);
  expect("INCRBY", await r.incrBy(`${p}:counter`, 10), 12);

  const pipe = r.multi();
  for (const i of range(10)) pipe.set(`${p}:pipe:${i}`, String(i));
  for (const i of range(10)) pipe.get(`${p}:pipe:${i}`);
  pipe.incr(`${p}:pipe:counter`);
  const want = [...range(10).map(() => "OK"), ...range(10).map(String), 1];
  expect("pipeline", await check("pipeline", () => pipe.execAsPipeline()), want);

  const b = r.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  expect("SET binary", await r.set(binaryKey, binaryValue), "OK");
  expect("GET binary", await b.get(binaryKey), binaryValue);
  expect("MGET binary", await b.mGet([binaryKey, keys[0]]), [binaryValue, Buffer.from("v0")]);

  expect("HSET", await r.hSet(`${p}:hash`, { f1: "1", f2: "\0" }), 2);
  expect("HGETALL", { ...(await r.hGetAll(`${p}:hash`)) }, { f1: "1", f2: "\0" });
  expect("ZADD", await r.zAdd(`${p}:zset`, [{ score: 1.5, value: "a" }, { score: 2, value: "b" }]), 2);
  expect("ZSCORE", await r.zScore(`${p}:zset`, "a"), 1.5);
  expect("ZRANGE WITHSCORES", await r.zRangeWithScores(`${p}:zset`, 0, -1), [
    { value: "a", score: 1.5 },
    { value: "b", score: 2 },
  ]);
  expect("SADD", await r.sAdd(`${p}:set`, ["x", "y"]), 2);
  expect("SMEMBERS", [...(await r.sMembers(`${p}:set`))].sort(), ["x", "y"]);

  expect("DEL across masters", await r.del(keys), KEYS);
  expect("EXISTS after DEL", await r.exists(keys), 0);
  for (const i of range(KEYS)) await r.set(`${p}:kept:${i}`, `kept-${i}`);
  r.destroy();
}

async function iterate(iterator) {
  const seen = [];
  for await (const keys of iterator) seen.push(...keys);
  return seen;
}

async function nodeRedisScan() {
  await nodeRedisLogin();
  const r = await nodeRedisClient();
  const want = range(SCAN_KEYS).map((i) => `${p}:scan:${i}`).sort();
  const pipe = r.multi();
  for (const key of want) pipe.set(key, "1");
  for (const i of range(5)) pipe.set(`${p}:other:${i}`, "1");
  await check("fill", () => pipe.execAsPipeline());
  step = "scanIterator MATCH";
  const seen = await iterate(r.scanIterator({ MATCH: `${p}:scan:*`, COUNT: 10 }));
  expect("scanIterator MATCH", [...new Set(seen)].sort(), want);
  step = "scanIterator";
  const everything = new Set(await iterate(r.scanIterator({ COUNT: 50 })));
  expect("scanIterator sees every key", want.filter((k) => !everything.has(k)), []);
  expect("scanIterator sees the others", everything.has(`${p}:other:0`), true);
  r.destroy();
}

async function nodeRedisCluster() {
  const { createCluster, RESP_TYPES } = require("redis");
  await nodeRedisLogin();
  const defaults = { ...credentials() };
  if (protocol !== undefined) defaults.RESP = protocol;
  const rc = createCluster({ rootNodes: [{ socket: { host: "127.0.0.1", port: ports[0] } }], defaults });
  rc.on("error", noteError);
  await check("cluster connect", () => rc.connect());
  const nodes = rc.masters.concat(rc.replicas).map((n) => `${n.host}:${n.port}`);
  console.log(`nodes the cluster client learned: ${nodes}`);
  const allowed = new Set(ports.map((port) => `127.0.0.1:${port}`));
  expect("only percore addresses", nodes.filter((n) => !allowed.has(n)), []);

  await rc.del(`${p}:c:counter`);
  const keys = range(KEYS).map((i) => `${p}:c:${i}`);
  for (const [i, key] of keys.entries()) expect(`SET ${key}`, await rc.set(key, `v${i}`), "OK");
  for (const [i, key] of keys.entries()) expect(`GET ${key}`, await rc.get(key), `v${i}`);
  const tagged = range(4).map((i) => `{${p}:tag}:${i}`);
  for (const key of tagged) await rc.set(key, key);
  expect("MGET one slot", await rc.mGet(tagged), tagged);
  expect("INCR", await rc.incr(`${p}:c:counter`), 1);
  const pipe = rc.multi();
  for (const key of tagged) pipe.get(key);
  expect("cluster pipeline", await check("cluster pipeline", () => pipe.execAsPipeline()), tagged);
  const b = rc.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  expect("SET binary", await rc.set(`${p}:c:bin`, binaryValue), "OK");
  expect("GET binary", await b.get(`${p}:c:bin`), binaryValue);
  step = "scanIterator on every master";
  const seen = new Set();
  for (const master of rc.masters) {
    const node = await rc.nodeClient(master);
    for (const key of await iterate(node.scanIterator({ MATCH: `${p}:c:*`, COUNT: 10 }))) seen.add(key);
  }
  expect("scanIterator on every master", [...seen].sort(), [...keys, `${p}:c:counter`, `${p}:c:bin`].sort());
  let deleted = 0;
  for (const key of keys) deleted += await rc.del(key);
  expect("DEL each", deleted, KEYS);
  rc.destroy();
}

// ---- main ----

/** What node_sessions.mjs needs of this harness. */
const harness = {
  expect,
  check,
  require,
  p,
  protocol,
  ports,
  Mismatch,
  credentials,
  noteError,
  ioredisClient,
  nodeRedisClient,
  nodeRedisOptions,
};
const suites = {
  ioredis: {
    plain: ioredisPlain,
    scan: ioredisScan,
    cluster: ioredisCluster,
    sessions: () => sessions.ioredisSessions(harness),
    "cluster-sessions": () => sessions.ioredisClusterSessions(harness),
  },
  "node-redis": {
    plain: nodeRedisPlain,
    scan: nodeRedisScan,
    cluster: nodeRedisCluster,
    sessions: () => sessions.nodeRedisSessions(harness),
    "cluster-sessions": () => sessions.nodeRedisClusterSessions(harness),
  },
};
const run = suites[lib]?.[suite];
if (!run || ports.length === 0) {
  console.log("usage: node_client.mjs ioredis|node-redis plain|scan|cluster|sessions|cluster-sessions --port PORT [...]");
  process.exit(2);
}
const pkg = lib === "ioredis" ? "ioredis" : "redis";
console.log(`${lib} ${require(`${pkg}/package.json`).version}, node ${process.version}`);
const watchdog = setTimeout(() => {
  const cause = lastError?.lastNodeError ? `; from the node: ${lastError.lastNodeError.message}` : "";
  const why = lastError ? ` (last error: ${lastError.name}: ${lastError.message}${cause})` : "";
  console.log(`ERROR from ${lib}: no answer within ${WATCHDOG_MS} ms at step '${step}'${why}`);
  process.exit(1);
}, WATCHDOG_MS);
try {
  await run();
  console.log("all checks passed");
  clearTimeout(watchdog);
  process.exit(0);
} catch (e) {
  console.log(e instanceof Mismatch ? `MISMATCH ${e.message}` : `ERROR from ${lib} at step '${step}': ${e?.name}: ${e?.message}`);
  process.exit(1);
}
