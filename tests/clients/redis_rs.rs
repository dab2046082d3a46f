//! redis-rs (the `redis` crate, sync API) against percore: the suites of py_client.py and
//! node_client.mjs, run in-process, with the library's default settings. The only thing set
//! beyond the URL is a read timeout, so a missing reply fails the test instead of hanging it.
//!
//! Each suite returns its log (one line per check) or the log ending in the first mismatch.
//! The `sessions` and `cluster-sessions` suites (transactions, WATCH, blocking pops, pub/sub,
//! RESET) are in redis_rs_sessions.rs.

#[path = "redis_rs_sessions.rs"]
mod sessions;

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::time::Duration;

use redis::cluster::ClusterClient;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo, SingleNodeRoutingInfo};
use redis::{Commands, RedisResult, Value};

/// How long one reply may take before the suite fails.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Keys the plain suite spreads over the masters (and leaves as PREFIX:kept:N).
pub const KEYS: usize = 16;
/// Keys the scan suite writes.
const SCAN_KEYS: usize = 120;

/// What to connect to and as whom.
pub struct Target<'a> {
    /// percore's port(s): the first is connected to, all are the addresses a cluster client
    /// may learn.
    pub ports: &'a [u16],
    /// `Some(3)` adds `protocol=resp3` to the URL; `None` keeps the library's default.
    pub protocol: Option<u8>,
    /// Password, with an optional user name.
    pub login: Option<(&'a str, Option<&'a str>)>,
    /// Prefix of every key the suite touches.
    pub prefix: &'a str,
}

impl Target<'_> {
    fn url(&self, login: Option<(&str, Option<&str>)>) -> String {
        let credentials = match login {
            None => String::new(),
            Some((password, user)) => format!("{}:{password}@", user.unwrap_or("")),
        };
        let query = match self.protocol {
            None => String::new(),
            Some(version) => format!("?protocol=resp{version}"),
        };
        format!("redis://{credentials}127.0.0.1:{}/{query}", self.ports[0])
    }
}

/// The log of one suite run.
struct Log(Vec<String>);

impl Log {
    fn expect<T: PartialEq + Debug>(&mut self, what: &str, got: RedisResult<T>, want: T) -> Step {
        match got {
            Ok(got) if got == want => {
                self.0.push(format!("ok {what}"));
                Ok(())
            }
            Ok(got) => Err(format!("MISMATCH {what}: got {got:?}, want {want:?}")),
            Err(e) => Err(format!("ERROR from redis-rs at {what}: {e}")),
        }
    }

    fn refused<T: Debug>(&mut self, what: &str, got: RedisResult<T>) -> Step {
        match got {
            Err(e) => {
                self.0.push(format!("ok {what} (refused: {e})"));
                Ok(())
            }
            Ok(got) => Err(format!("MISMATCH {what}: expected a refusal, got {got:?}")),
        }
    }

    fn finish(mut self, result: Step) -> Result<String, String> {
        match result {
            Ok(()) => {
                self.0.push("all checks passed".into());
                Ok(self.0.join("\n"))
            }
            Err(e) => {
                self.0.push(e);
                Err(self.0.join("\n"))
            }
        }
    }
}

type Step = Result<(), String>;

/// Runs `suite` (`plain`, `scan`, `cluster`, `sessions` or `cluster-sessions`).
pub fn run(suite: &str, target: &Target) -> Result<String, String> {
    let mut log = Log(vec![format!("redis-rs, URL {}", target.url(None))]);
    let result = match suite {
        "plain" => plain(&mut log, target),
        "scan" => scan(&mut log, target),
        "cluster" => cluster(&mut log, target),
        "sessions" => sessions::sessions(&mut log, target),
        "cluster-sessions" => sessions::cluster_sessions(&mut log, target),
        other => Err(format!("no suite {other}")),
    };
    log.finish(result)
}

fn connect(target: &Target, login: Option<(&str, Option<&str>)>) -> RedisResult<redis::Connection> {
    let client = redis::Client::open(target.url(login))?;
    let con = client.get_connection_with_timeout(TIMEOUT)?;
    con.set_read_timeout(Some(TIMEOUT))?;
    Ok(con)
}

fn error(what: &str) -> impl Fn(redis::RedisError) -> String + '_ {
    move |e| format!("ERROR from redis-rs at {what}: {e}")
}

/// With a password, a client without it and one with a wrong one must be refused.
fn check_login(log: &mut Log, target: &Target) -> Step {
    let Some((_, user)) = target.login else {
        return Ok(());
    };
    let ping = |login| -> RedisResult<String> {
        let mut con = connect(target, login)?;
        redis::cmd("PING").query(&mut con)
    };
    log.refused("no password", ping(None))?;
    log.refused("wrong password", ping(Some(("wrong", user))))
}

fn plain(log: &mut Log, target: &Target) -> Step {
    check_login(log, target)?;
    let mut con = connect(target, target.login).map_err(error("connect"))?;
    let p = target.prefix;
    log.expect(
        "PING",
        redis::cmd("PING").query(&mut con),
        "PONG".to_string(),
    )?;
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut con)
        .map_err(error("CLIENT INFO"))?;
    let resp = info
        .split_ascii_whitespace()
        .find_map(|field| field.strip_prefix("resp="))
        .map(str::to_string);
    let want = target.protocol.unwrap_or(2).to_string();
    log.expect("CLIENT INFO resp", Ok(resp), Some(want))?;
    let user = target.login.and_then(|l| l.1).unwrap_or("default");
    let whoami = redis::cmd("ACL").arg("WHOAMI").query(&mut con);
    log.expect("ACL WHOAMI", whoami, user.to_string())?;
    let scratch = ["counter", "pipe:counter", "hash", "zset", "set"].map(|k| format!("{p}:{k}"));
    let _: usize = con.del(&scratch).map_err(error("DEL scratch"))?;

    let keys: Vec<String> = (0..KEYS).map(|i| format!("{p}:k:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        log.expect(&format!("SET {key}"), con.set(key, format!("v{i}")), ())?;
    }
    for (i, key) in keys.iter().enumerate() {
        log.expect(&format!("GET {key}"), con.get(key), format!("v{i}"))?;
    }
    let mut with_missing = keys.clone();
    with_missing.push(format!("{p}:missing"));
    let mut want: Vec<Option<String>> = (0..KEYS).map(|i| Some(format!("v{i}"))).collect();
    want.push(None);
    log.expect("MGET across masters", con.mget(&with_missing), want)?;
    log.expect(
        "GET missing",
        con.get(format!("{p}:missing")),
        None::<String>,
    )?;

    log.expect("INCR", con.incr(&scratch[0], 1), 1i64)?;
    log.expect("INCR again", con.incr(&scratch[0], 1), 2i64)?;
    log.expect("INCRBY", con.incr(&scratch[0], 10), 12i64)?;

    let mut pipe = redis::pipe();
    for i in 0..10 {
        pipe.set(format!("{p}:pipe:{i}"), i);
    }
    for i in 0..10 {
        pipe.get(format!("{p}:pipe:{i}"));
    }
    pipe.incr(&scratch[1], 1);
    let mut want = vec![Value::Okay; 10];
    want.extend((0..10).map(|i| Value::BulkString(i.to_string().into_bytes())));
    want.push(Value::Int(1));
    log.expect("pipeline", pipe.query::<Vec<Value>>(&mut con), want)?;

    let value: Vec<u8> = (0..=255).collect();
    let mut key = format!("{p}:bin:").into_bytes();
    key.extend_from_slice(b"\x00\xff\r\n");
    log.expect("SET binary", con.set(&key, &value), ())?;
    log.expect("GET binary", con.get(&key), value.clone())?;
    let both = [key.clone(), keys[0].clone().into_bytes()];
    log.expect("MGET binary", con.mget(&both), vec![value, b"v0".to_vec()])?;

    let hset = redis::cmd("HSET")
        .arg(&scratch[2])
        .arg(&["f1", "1", "f2", "\0"])
        .query(&mut con);
    log.expect("HSET", hset, 2i64)?;
    let want = HashMap::from([
        ("f1".to_string(), "1".to_string()),
        ("f2".into(), "\0".into()),
    ]);
    log.expect("HGETALL", con.hgetall(&scratch[2]), want)?;
    log.expect(
        "ZADD",
        con.zadd_multiple(&scratch[3], &[(1.5, "a"), (2.0, "b")]),
        2i64,
    )?;
    log.expect("ZSCORE", con.zscore(&scratch[3], "a"), 1.5f64)?;
    let want = vec![("a".to_string(), 1.5f64), ("b".to_string(), 2.0)];
    log.expect(
        "ZRANGE WITHSCORES",
        con.zrange_withscores(&scratch[3], 0, -1),
        want,
    )?;
    log.expect("SADD", con.sadd(&scratch[4], &["x", "y"]), 2i64)?;
    let want = HashSet::from(["x".to_string(), "y".to_string()]);
    log.expect("SMEMBERS", con.smembers(&scratch[4]), want)?;

    log.expect("DEL across masters", con.del(&keys), KEYS)?;
    log.expect("EXISTS after DEL", con.exists(&keys), 0usize)?;
    for i in 0..KEYS {
        let kept: RedisResult<()> = con.set(format!("{p}:kept:{i}"), format!("kept-{i}"));
        kept.map_err(error("SET kept"))?;
    }
    Ok(())
}

fn scan(log: &mut Log, target: &Target) -> Step {
    check_login(log, target)?;
    let mut con = connect(target, target.login).map_err(error("connect"))?;
    let p = target.prefix;
    let want: HashSet<String> = (0..SCAN_KEYS).map(|i| format!("{p}:scan:{i}")).collect();
    let mut pipe = redis::pipe();
    for key in &want {
        pipe.set(key, 1).ignore();
    }
    for i in 0..5 {
        pipe.set(format!("{p}:other:{i}"), 1).ignore();
    }
    pipe.query::<()>(&mut con).map_err(error("fill"))?;
    let seen: RedisResult<HashSet<String>> = con
        .scan_match(format!("{p}:scan:*"))
        .and_then(|iter| iter.collect());
    log.expect("scan_match", seen, want.clone())?;
    let everything: HashSet<Vec<u8>> = con
        .scan()
        .and_then(|iter| iter.collect())
        .map_err(error("scan"))?;
    let missing: HashSet<&String> = want
        .iter()
        .filter(|key| !everything.contains(key.as_bytes()))
        .collect();
    log.expect("scan sees every key", Ok(missing), HashSet::new())?;
    let other = everything.contains(format!("{p}:other:0").as_bytes());
    log.expect("scan sees the others", Ok(other), true)
}

fn cluster(log: &mut Log, target: &Target) -> Step {
    check_login(log, target)?;
    let mut builder = ClusterClient::builder([target.url(None)]);
    if let Some((password, user)) = target.login {
        builder = builder.password(password);
        if let Some(user) = user {
            builder = builder.username(user);
        }
    }
    let client = builder.build().map_err(error("ClusterClient"))?;
    let mut con = client.get_connection().map_err(error("cluster connect"))?;
    con.set_read_timeout(Some(TIMEOUT))
        .map_err(error("timeout"))?;
    let p = target.prefix;
    // A command sent to every node, without a reply policy, answers with each node's
    // address: the nodes the client learned.
    let all_nodes = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllNodes, None));
    let replies = con
        .route_command(&redis::cmd("PING"), all_nodes)
        .map_err(error("PING every node"))?;
    let Value::Map(replies) = replies else {
        return Err(format!("PING every node: not a map: {replies:?}"));
    };
    let mut nodes = Vec::new();
    for (address, _) in &replies {
        let address: String =
            redis::from_redis_value(address.clone()).map_err(|e| e.to_string())?;
        nodes.push(address);
    }
    log.0
        .push(format!("nodes the cluster client learned: {nodes:?}"));
    if nodes.is_empty() {
        // redis-rs connects even when the topology query fails; say what percore answered.
        let mut plain = connect(target, target.login).map_err(error("connect"))?;
        let slots: RedisResult<Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut plain);
        return Err(format!(
            "the cluster client learned no node (CLUSTER SLOTS: {slots:?})"
        ));
    }
    let allowed: Vec<String> = target
        .ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let strangers: Vec<&String> = nodes.iter().filter(|n| !allowed.contains(n)).collect();
    log.expect(
        "only percore addresses",
        Ok(strangers),
        Vec::<&String>::new(),
    )?;

    let _: usize = con
        .del(format!("{p}:c:counter"))
        .map_err(error("DEL counter"))?;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("{p}:c:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        log.expect(&format!("SET {key}"), con.set(key, format!("v{i}")), ())?;
    }
    for (i, key) in keys.iter().enumerate() {
        log.expect(&format!("GET {key}"), con.get(key), format!("v{i}"))?;
    }
    let want: Vec<String> = (0..KEYS).map(|i| format!("v{i}")).collect();
    log.expect("MGET across slots", con.mget(&keys), want.clone())?;
    log.expect("INCR", con.incr(format!("{p}:c:counter"), 1), 1i64)?;
    let mut pipe = redis::cluster::cluster_pipe();
    for key in &keys {
        pipe.get(key);
    }
    log.expect("cluster pipeline", pipe.query(&mut con), want)?;
    let value: Vec<u8> = (0..=255).collect();
    log.expect("SET binary", con.set(format!("{p}:c:bin"), &value), ())?;
    log.expect("GET binary", con.get(format!("{p}:c:bin")), value)?;
    let mut seen = HashSet::new();
    for node in &nodes {
        scan_node(&mut con, node, &format!("{p}:c:*"), &mut seen)?;
    }
    let mut want: HashSet<String> = keys.iter().cloned().collect();
    want.extend([format!("{p}:c:counter"), format!("{p}:c:bin")]);
    log.expect("SCAN on every node", Ok(seen), want)?;
    log.expect("DEL across slots", con.del(&keys), KEYS)
}

/// SCAN with MATCH over one node, by its address, until the cursor comes back to 0.
fn scan_node(
    con: &mut redis::cluster::ClusterConnection,
    node: &str,
    pattern: &str,
    seen: &mut HashSet<String>,
) -> Step {
    let (host, port) = node.rsplit_once(':').ok_or("node address without port")?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("bad node address {node}"))?;
    let mut cursor = 0u64;
    loop {
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.to_string(),
            port,
        });
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(10);
        let reply = con.route_command(&scan, routing).map_err(error("SCAN"))?;
        let (next, keys): (u64, Vec<String>) =
            redis::from_redis_value(reply).map_err(|e| format!("SCAN reply: {e}"))?;
        seen.extend(keys);
        cursor = next;
        if cursor == 0 {
            return Ok(());
        }
    }
}
