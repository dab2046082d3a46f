//! Data-store pools (`sentinels:`) over real redis-servers and real Sentinels: two masters,
//! each with a replica, watched by three Sentinels. percore finds each server's master by its
//! name (the addresses in the file are not even servers), places keys as nutcracker does by
//! the same names, follows a failover to the promoted replica without losing what was written
//! before it (none acknowledged is lost), never disturbs the other server, gives the Sentinels
//! their password, and goes on with one Sentinel down.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::nutcracker::{free_ports, Nutcracker};
use common::sentinel::{wait_until_watching, Sentinel};
use common::{wait_until, Conn, Proxy, RedisServer, Value};
use tempfile::TempDir;

/// The Sentinel master names of the pool's two servers, in the file's order.
const NAMES: [&str; 2] = ["m-a", "m-b"];
/// Keys written before a failover.
const KEYS: usize = 200;
/// Longest a failover may take, from asking for it to percore writing to the new master:
/// Sentinel needs a second or two (a killed master is down after a second, then a vote), the
/// rest is margin for a loaded test machine.
const FAILOVER_WAIT: Duration = Duration::from_secs(30);
/// Pause between two writes of the load written across a failover.
const LOAD_STEP: Duration = Duration::from_millis(2);
/// Ports tried for percore before the test gives up.
const START_ATTEMPTS: usize = 3;
/// Pause between two writes while waiting for a failover.
const STEP: Duration = Duration::from_millis(50);

/// Two masters with a replica each, and three Sentinels watching them.
struct DataStore {
    masters: Vec<RedisServer>,
    replicas: Vec<RedisServer>,
    sentinels: Vec<Sentinel>,
}

impl DataStore {
    fn start(password: Option<&str>) -> DataStore {
        let masters: Vec<RedisServer> = (0..2).map(|_| RedisServer::start()).collect();
        let replicas: Vec<RedisServer> = masters
            .iter()
            .map(|m| RedisServer::start_with(&["--replicaof", "127.0.0.1", &m.port.to_string()]))
            .collect();
        for replica in &replicas {
            wait_until("a replica to sync", Duration::from_secs(20), || {
                replica
                    .conn()
                    .cmd_str("INFO replication")
                    .text()
                    .contains("master_link_status:up")
            });
        }
        let watched: Vec<(&str, u16)> = NAMES
            .iter()
            .copied()
            .zip(masters.iter().map(|m| m.port))
            .collect();
        let sentinels: Vec<Sentinel> = (0..3)
            .map(|_| Sentinel::start(&watched, password))
            .collect();
        wait_until_watching(&sentinels, &NAMES);
        DataStore {
            masters,
            replicas,
            sentinels,
        }
    }

    /// The pool's YAML: the servers named by their master names, at `addrs`.
    fn yaml(&self, port: u16, addrs: [String; 2], password: Option<&str>) -> String {
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let password = password
            .map(|p| format!("  sentinel_password: {p}\n"))
            .unwrap_or_default();
        format!(
            "p:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n  \
             sentinels: {}\n{password}  servers:\n   - {}:1 {}\n   - {}:1 {}\n",
            sentinels.join(","),
            addrs[0],
            NAMES[0],
            addrs[1],
            NAMES[1]
        )
    }

    /// percore (2 threads) over the store; the servers' addresses in its file are ports
    /// nothing listens on, so only Sentinel can tell it where the masters are.
    /// A port found free may be taken before percore binds it (by another test's outgoing
    /// connection, say): then percore exits, and another port is tried.
    fn percore(&self, password: Option<&str>) -> (Proxy, TempDir) {
        for _ in 0..START_ATTEMPTS {
            let port = free_ports(1, &HashSet::new())[0];
            let dir = TempDir::new().unwrap();
            let file = dir.path().join("pool.yml");
            let nowhere = ["127.0.0.1:1".to_string(), "127.0.0.1:2".to_string()];
            let yaml = format!(
                "percore:\n  threads: 2\n\n{}",
                self.yaml(port, nowhere, password)
            );
            std::fs::write(&file, yaml).unwrap();
            let args = ["-c", file.to_str().unwrap(), "--log-level", "debug"];
            if let Some(proxy) = Proxy::try_start_with_args(port, &args) {
                return (proxy, dir);
            }
        }
        panic!("percore did not start in {START_ATTEMPTS} attempts");
    }

    /// Which of `servers` holds each key of `keys` (index), read from the servers.
    fn placement(servers: &[&RedisServer], keys: &[String]) -> Vec<usize> {
        let mut conns: Vec<Conn> = servers.iter().map(|s| s.conn()).collect();
        keys.iter()
            .map(|key| {
                let holders: Vec<usize> = (0..servers.len())
                    .filter(|&i| conns[i].cmd(&[b"EXISTS", key.as_bytes()]) == Value::Int(1))
                    .collect();
                assert_eq!(holders.len(), 1, "{key} on servers {holders:?}");
                holders[0]
            })
            .collect()
    }
}

fn keys(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}:{i}")).collect()
}

fn set_all(port: u16, keys: &[String], value: &str) {
    let mut c = Conn::connect(port);
    let commands: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .map(|k| {
            vec![
                b"SET".to_vec(),
                k.clone().into_bytes(),
                value.as_bytes().to_vec(),
            ]
        })
        .collect();
    for (key, reply) in keys.iter().zip(c.pipeline(&commands)) {
        assert_eq!(reply, Value::ok(), "SET {key}");
    }
}

fn flush(servers: &[&RedisServer]) {
    for server in servers {
        assert_eq!(server.conn().cmd_str("FLUSHALL"), Value::ok());
    }
}

/// Waits until `replica` holds as many keys as `master`: what a failover must keep is there.
fn wait_synced(master: &RedisServer, replica: &RedisServer) {
    let keys = master.conn().cmd_str("DBSIZE");
    wait_until(
        "the replica to have every key",
        Duration::from_secs(10),
        || replica.conn().cmd_str("DBSIZE") == keys,
    );
}

/// Waits until percore serves a key on each server.
fn wait_serving(proxy: &Proxy) {
    let port = proxy.port;
    wait_until(
        "percore to find both masters",
        Duration::from_secs(20),
        || (0..20).all(|i| common::try_cmd(port, &format!("SET ready:{i} 1")) == Some(Value::ok())),
    );
}

/// Writes to `probe` (a key of the failed-over server) until `promoted` is a master holding
/// the write, while every write and read of `steady` (a key of the other server) succeeds.
/// Returns how long it took.
fn until_promoted_serves(
    proxy: &Proxy,
    probe: &str,
    promoted: &RedisServer,
    steady: &str,
) -> Duration {
    let started = Instant::now();
    let mut c = proxy.conn();
    for step in 0.. {
        assert!(
            started.elapsed() < FAILOVER_WAIT,
            "no write reached the promoted replica in {FAILOVER_WAIT:?}; percore log:\n{}",
            proxy.log()
        );
        let value = format!("step-{step}");
        assert_eq!(
            c.cmd(&[b"SET", steady.as_bytes(), value.as_bytes()]),
            Value::ok(),
            "the other server"
        );
        assert_eq!(
            c.cmd(&[b"GET", steady.as_bytes()]),
            Value::bulk(&value),
            "the other server"
        );
        let written = c.cmd(&[b"SET", probe.as_bytes(), value.as_bytes()]) == Value::ok();
        let mut on_promoted = promoted.conn();
        if written
            && on_promoted
                .cmd_str("INFO replication")
                .text()
                .contains("role:master")
            && on_promoted.cmd(&[b"GET", probe.as_bytes()]) == Value::bulk(&value)
        {
            return started.elapsed();
        }
        std::thread::sleep(STEP);
    }
    unreachable!()
}

/// Writes `load:<n>` through percore one after the other until `stop`: the keys whose write
/// was acknowledged, and how many were refused (errors during the failover).
fn write_load(port: u16, stop: &AtomicBool) -> (Vec<String>, usize) {
    let mut c = Conn::connect(port);
    let (mut acked, mut failed) = (Vec::new(), 0);
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let key = format!("load:{n}");
        match c.cmd(&[b"SET", key.as_bytes(), b"x"]) {
            reply if reply == Value::ok() => acked.push(key),
            _ => failed += 1,
        }
        std::thread::sleep(LOAD_STEP);
    }
    (acked, failed)
}

/// After a failover of server `moved`: every key written before it (but the `probes` written
/// since) reads back through
/// percore, new writes succeed (none reach a demoted master, which would refuse them), and
/// PROXY INFO and the log name the new address.
fn check_after_failover(
    proxy: &Proxy,
    store: &DataStore,
    moved: usize,
    before: &[String],
    probes: [&str; 2],
) {
    let mut c = proxy.conn();
    for key in before.iter().filter(|k| !probes.contains(&k.as_str())) {
        assert_eq!(
            c.cmd(&[b"GET", key.as_bytes()]),
            Value::bulk("v"),
            "{key} after the failover"
        );
    }
    set_all(proxy.port, &keys("after", 50), "w");
    let now = [&store.masters[1 - moved], &store.replicas[moved]];
    let masters_now = if moved == 0 {
        [now[1], now[0]]
    } else {
        [now[0], now[1]]
    };
    let info = c.cmd_str("PROXY INFO").text();
    for (index, server) in masters_now.iter().enumerate() {
        let line = format!(
            "server{index}:name={},addr=127.0.0.1:{}",
            NAMES[index], server.port
        );
        assert!(info.contains(&line), "{line} in\n{info}");
    }
    let log = proxy.log();
    let old = format!("127.0.0.1:{}", store.masters[moved].port);
    let new = format!("127.0.0.1:{}", store.replicas[moved].port);
    assert!(
        log.lines().any(|l| l.contains("failover")
            && l.contains(NAMES[moved])
            && l.contains(&old)
            && l.contains(&new)),
        "no failover line naming {} {old} -> {new}:\n{log}",
        NAMES[moved]
    );
}

#[test]
fn keys_follow_a_sentinel_failover_to_the_promoted_replica_and_the_other_server_is_untouched() {
    let store = DataStore::start(None);
    let (proxy, _dir) = store.percore(None);
    wait_serving(&proxy);
    let masters: Vec<&RedisServer> = store.masters.iter().collect();
    let info = proxy.conn().cmd_str("PROXY INFO").text();
    assert!(
        info.contains(&format!(
            "server0:name=m-a,addr=127.0.0.1:{}",
            masters[0].port
        )),
        "{info}"
    );

    // The same names place keys as nutcracker places them over the masters' real addresses.
    let before = keys("key", KEYS);
    let nut_port = free_ports(1, &HashSet::from([proxy.port]))[0];
    let real = [0, 1].map(|i| format!("127.0.0.1:{}", masters[i].port));
    let nutcracker = Nutcracker::start(
        &store
            .yaml(nut_port, real, None)
            .replace("  sentinels:", "#"),
        &[nut_port],
    )
    .expect("nutcracker");
    flush(&masters);
    set_all(nut_port, &before, "v");
    let by_nutcracker = DataStore::placement(&masters, &before);
    drop(nutcracker);
    flush(&masters);
    set_all(proxy.port, &before, "v");
    let by_percore = DataStore::placement(&masters, &before);
    assert_eq!(by_percore, by_nutcracker);
    let on = |server: usize| {
        before
            .iter()
            .zip(&by_percore)
            .filter(move |(_, &s)| s == server)
            .map(|(k, _)| k.clone())
    };
    let (a_keys, b_keys): (Vec<String>, Vec<String>) = (on(0).collect(), on(1).collect());
    assert!(!a_keys.is_empty() && !b_keys.is_empty(), "{by_percore:?}");
    // What the failover must keep has reached the replica.
    let promoted = &store.replicas[0];
    wait_synced(masters[0], promoted);

    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (port, stop) = (proxy.port, stop.clone());
        std::thread::spawn(move || write_load(port, &stop))
    };
    let asked = store.sentinels[0].cmd("SENTINEL FAILOVER m-a");
    assert_eq!(asked, Value::ok(), "{}", store.sentinels[0].log());
    let took = until_promoted_serves(&proxy, &a_keys[0], promoted, &b_keys[0]);
    eprintln!("writes reached the promoted replica {took:?} after SENTINEL FAILOVER");
    check_after_failover(&proxy, &store, 0, &before, [&a_keys[0], &b_keys[0]]);
    // The demoted master becomes a replica of the new one, and percore never wrote to it.
    let old = &store.masters[0];
    wait_until("the old master to become a replica", FAILOVER_WAIT, || {
        old.conn()
            .cmd_str("INFO replication")
            .text()
            .contains("role:slave")
    });
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = load.join().expect("the load thread");
    let mut c = proxy.conn();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|key| c.cmd(&[b"GET", key.as_bytes()]) != Value::bulk("x"))
        .collect();
    eprintln!(
        "under load: {} writes acknowledged, {failed} refused, {} acknowledged and lost: {lost:?}",
        acked.len(),
        lost.len()
    );
    // percore held m-a from the moment Sentinel said it would promote the replica: what the
    // old master acknowledged had reached the replica, and nothing after went there.
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    assert!(
        proxy
            .log()
            .contains("holding the server while its replica is promoted"),
        "{}",
        proxy.log()
    );
    set_all(proxy.port, &a_keys[1..], "v2");
    assert_eq!(
        promoted.conn().cmd(&[b"GET", a_keys[1].as_bytes()]),
        Value::bulk("v2")
    );
}

#[test]
fn sentinel_password_reaches_sentinels_and_a_killed_master_is_replaced_with_one_sentinel_down() {
    let mut store = DataStore::start(Some("s3nt"));
    let (proxy, _dir) = store.percore(Some("s3nt"));
    wait_serving(&proxy);
    let masters: Vec<&RedisServer> = store.masters.iter().collect();
    let before = keys("key", KEYS);
    set_all(proxy.port, &before, "v");
    let placed = DataStore::placement(&masters, &before);
    let a_key = before[placed.iter().position(|&s| s == 0).expect("a key on m-a")].clone();
    let b_key = before[placed.iter().position(|&s| s == 1).expect("a key on m-b")].clone();

    // A wrong password gets no layout, and clients read why.
    let (wrong, _wrong_dir) = store.percore(Some("wrong"));
    let port = wrong.port;
    wait_until(
        "the refusal to reach clients",
        Duration::from_secs(20),
        || {
            common::try_cmd(port, "GET k")
                .is_some_and(|v| v.is_error() && v.text().contains("sentinel_password"))
        },
    );
    drop(wrong);

    wait_synced(masters[1], &store.replicas[1]);
    // One Sentinel down (the first percore asks, and one it subscribed at): the other two
    // still agree the master is down, elect a leader and fail over, and percore follows.
    drop(store.sentinels.remove(0));
    store.masters[1].kill();
    let took = until_promoted_serves(&proxy, &b_key, &store.replicas[1], &a_key);
    eprintln!("writes reached the promoted replica {took:?} after the master was killed");
    check_after_failover(&proxy, &store, 1, &before, [&a_key, &b_key]);
}
