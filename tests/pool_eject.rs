//! Cache mode of a static pool (`auto_eject_hosts`), against real standalone redis-servers
//! and the real nutcracker with the same pool: a killed server is ejected after
//! `server_failure_limit` failures and its keys land on the same live servers as through
//! nutcracker, on both of percore's cores; restarted, it is back after
//! `server_retry_timeout`. Without `auto_eject_hosts`, only the dead server's keys fail, fast.
//! Placement is always read from the servers themselves.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::nutcracker::{free_ports, stats_json, Nutcracker};
use common::{Conn, Proxy, RedisServer, Value};

/// `server_retry_timeout` of the cache-mode pool: long enough that percore's and then
/// nutcracker's placement are read while the server is still out, short for the test.
const RETRY_MS: u64 = 4000;
/// Client connections a round of commands is spread over: with two cores, the chance that
/// the kernel gives all of them to one core is 2^-15.
const CONNS: usize = 16;
/// Keys written per round.
const KEYS: usize = 300;
/// Longest a proxy may take to stop failing the dead server's keys (ejection), or to send
/// them back to the restarted server (retry timeout, then reconnect).
const SETTLE: Duration = Duration::from_secs(20);
/// Pause between rounds while waiting for a proxy to settle.
const ROUND_PAUSE: Duration = Duration::from_millis(100);
/// What "fast" means for the dead server's errors without ejection: no wait for a timeout.
const FAST: Duration = Duration::from_secs(2);

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("key:{i}")).collect()
}

/// The pool's YAML, with servers named alpha, beta, gamma.
fn pool_yaml(port: u16, servers: &[RedisServer], eject: bool) -> String {
    let names = ["alpha", "beta", "gamma"];
    let list: String = servers
        .iter()
        .zip(names)
        .map(|(s, name)| format!("   - 127.0.0.1:{}:1 {name}\n", s.port))
        .collect();
    format!(
        "cache:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  \
         redis: true\n  auto_eject_hosts: {eject}\n  server_failure_limit: 2\n  \
         server_retry_timeout: {RETRY_MS}\n  servers:\n{list}"
    )
}

/// percore (2 threads) and nutcracker serving the same pool over `servers`.
struct Proxies {
    percore: Proxy,
    nutcracker: Nutcracker,
    nut_port: u16,
    /// percore's nutcracker-style stats port.
    stats_port: u16,
    _dir: tempfile::TempDir,
}

fn start(servers: &[RedisServer], eject: bool) -> Proxies {
    let taken: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    let [port, nut_port, stats_port]: [u16; 3] =
        free_ports(3, &taken).try_into().expect("three ports");
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("pool.yml");
    std::fs::write(&file, pool_yaml(port, servers, eject)).unwrap();
    let stats = stats_port.to_string();
    let args = [
        "-c",
        file.to_str().unwrap(),
        "--threads",
        "2",
        "-s",
        &stats,
        "-i",
        "100",
    ];
    let percore = Proxy::start_with_args(port, &args);
    let nutcracker =
        Nutcracker::start(&pool_yaml(nut_port, servers, eject), &[nut_port]).expect("nutcracker");
    Proxies {
        percore,
        nutcracker,
        nut_port,
        stats_port,
        _dir: dir,
    }
}

/// SETs every key through the proxy at `port`, spread over [`CONNS`] connections, each
/// pipelined; the replies in key order.
fn set_spread(port: u16, keys: &[String]) -> Vec<Value> {
    let mut conns: Vec<Conn> = (0..CONNS).map(|_| Conn::connect(port)).collect();
    let chunk = keys.len().div_ceil(CONNS);
    let mut replies = Vec::with_capacity(keys.len());
    for (conn, part) in conns.iter_mut().zip(keys.chunks(chunk)) {
        let commands: Vec<Vec<Vec<u8>>> = part
            .iter()
            .map(|k| vec![b"SET".to_vec(), k.clone().into_bytes(), b"v".to_vec()])
            .collect();
        replies.extend(conn.pipeline(&commands));
    }
    replies
}

/// Rounds of [`set_spread`] until every SET is answered OK (the dead server ejected, or
/// back); panics after [`SETTLE`].
fn until_all_ok(port: u16, keys: &[String], what: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let replies = set_spread(port, keys);
        let failed = replies.iter().filter(|r| **r != Value::ok()).count();
        if failed == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {failed} SETs still fail, e.g. {:?}",
            replies.iter().find(|r| **r != Value::ok())
        );
        std::thread::sleep(ROUND_PAUSE);
    }
}

/// Server index of each key, read from the servers that are up.
fn placement(servers: &[RedisServer], up: &[usize]) -> HashMap<String, usize> {
    let mut found = HashMap::new();
    for &index in up {
        let Value::Array(Some(keys)) = servers[index].conn().cmd_str("KEYS *") else {
            panic!("KEYS")
        };
        for key in keys {
            assert!(
                found.insert(key.text(), index).is_none(),
                "a key on two servers"
            );
        }
    }
    found
}

fn flush(servers: &[RedisServer], up: &[usize]) {
    for &index in up {
        assert_eq!(servers[index].conn().cmd_str("FLUSHALL"), Value::ok());
    }
}

/// Where the proxy at `port` puts every key now: the servers in `up` emptied, every key SET
/// (all must succeed), and read back from them.
fn placed_by(port: u16, servers: &[RedisServer], up: &[usize]) -> HashMap<String, usize> {
    flush(servers, up);
    let replies = set_spread(port, &keys());
    assert!(replies.iter().all(|r| *r == Value::ok()), "{replies:?}");
    let found = placement(servers, up);
    assert_eq!(found.len(), KEYS);
    found
}

/// PROXY INFO as answered by `count` connections (spread over the cores).
fn proxy_infos(port: u16, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| Conn::connect(port).cmd_str("PROXY INFO").text())
        .collect()
}

#[test]
fn a_dead_server_is_ejected_on_every_core_to_where_nutcracker_puts_its_keys_and_comes_back() {
    let mut servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let proxies = start(&servers, true);
    let port = proxies.percore.port;
    let all = [0, 1, 2];
    let base = placed_by(port, &servers, &all);
    assert_eq!(base, placed_by(proxies.nut_port, &servers, &all));
    assert!(base.values().any(|&s| s == 1), "beta owns some keys");

    let killed = Instant::now();
    servers[1].kill();
    let up = [0, 2];
    // percore notices the dead server on its own connections and ejects it.
    until_all_ok(port, &keys(), "percore after the kill");
    let through_percore = placed_by(port, &servers, &up);
    for info in proxy_infos(port, CONNS) {
        assert!(info.contains("servers_ejected:1\r\n"), "{info}");
        assert!(info.contains("ejected0:name=beta,"), "{info}");
    }
    let log = proxies.percore.log();
    assert!(
        log.contains("ejecting server from the pool's ring") && log.contains("beta"),
        "{log}"
    );
    // nutcracker's stats say so too: one ejection, beta out since after the kill.
    let stats = stats_json(proxies.stats_port).expect("stats");
    assert_eq!(stats["cache"]["server_ejects"], 1, "{stats:?}");
    let ejected_at = stats["cache"]["beta"]["server_ejected_at"]
        .as_u64()
        .unwrap_or(0);
    let killed_at = (SystemTime::now() - killed.elapsed())
        .duration_since(UNIX_EPOCH)
        .unwrap();
    let since_kill = ejected_at.saturating_sub(killed_at.as_micros() as u64);
    assert!(
        since_kill > 0 && since_kill < SETTLE.as_micros() as u64,
        "{stats:?}"
    );
    assert_eq!(stats["cache"]["alpha"]["server_ejected_at"], 0, "{stats:?}");
    // nutcracker ejects after its own requests to beta fail.
    until_all_ok(proxies.nut_port, &keys(), "nutcracker after the kill");
    let through_nutcracker = placed_by(proxies.nut_port, &servers, &up);
    assert_eq!(through_percore, through_nutcracker);
    // Keys of the live servers stayed where they were (ketama).
    for (key, server) in &base {
        if *server != 1 {
            assert_eq!(through_percore[key], *server, "{key}");
        }
    }

    servers[1].restart();
    let deadline = Instant::now() + SETTLE + Duration::from_millis(RETRY_MS);
    loop {
        flush(&servers, &all);
        let replies = set_spread(port, &keys());
        let ok = replies.iter().all(|r| *r == Value::ok());
        if ok && placement(&servers, &all) == base {
            break;
        }
        assert!(Instant::now() < deadline, "beta never got its keys back");
        std::thread::sleep(ROUND_PAUSE);
    }
    // Not before the retry timeout: it was ejected after the kill, and nothing tried it since.
    assert!(killed.elapsed() >= Duration::from_millis(RETRY_MS));
    assert_eq!(placed_by(port, &servers, &all), base);
    for info in proxy_infos(port, CONNS) {
        assert!(info.contains("servers_ejected:0\r\n"), "{info}");
    }
    let log = proxies.percore.log();
    assert!(log.contains("server back in the pool's ring"), "{log}");
    // Both cores served clients, and agreed on every key all along.
    let info = Conn::connect(port).cmd_str("PROXY INFO").text();
    for core in ["core0:", "core1:"] {
        let line = info
            .lines()
            .find(|l| l.starts_with(core))
            .expect("core line");
        assert!(!line.contains("connections_total=0,"), "{line}");
    }
    drop(proxies.nutcracker);
}

#[test]
fn without_auto_eject_only_the_dead_server_s_keys_fail_fast_then_it_serves_again() {
    let mut servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let proxies = start(&servers, false);
    let port = proxies.percore.port;
    let all = [0, 1, 2];
    let base = placed_by(port, &servers, &all);
    let keys = keys();
    let dead = format!("127.0.0.1:{}", servers[1].port);

    servers[1].kill();
    for round in 0..3 {
        let started = Instant::now();
        let replies = set_spread(port, &keys);
        assert!(
            started.elapsed() < FAST,
            "round {round}: {:?}",
            started.elapsed()
        );
        let nut_replies = set_spread(proxies.nut_port, &keys);
        for ((key, reply), nut) in keys.iter().zip(&replies).zip(&nut_replies) {
            if base[key] == 1 {
                let Value::Error(text) = reply else {
                    panic!("{key}: {reply:?}")
                };
                assert!(text.starts_with("ERR ") && text.contains(&dead), "{text}");
                // nutcracker fails the same keys (its text: "ERR Connection refused").
                assert!(matches!(nut, Value::Error(_)), "{key}: nutcracker {nut:?}");
            } else {
                assert_eq!(*reply, Value::ok(), "{key}");
                assert_eq!(*nut, Value::ok(), "{key}: nutcracker");
            }
        }
    }
    let live = placement(&servers, &[0, 2]);
    assert!(live.iter().all(|(key, server)| base[key] == *server));
    for info in proxy_infos(port, 4) {
        assert!(info.contains("auto_eject_hosts:false\r\n"), "{info}");
        assert!(info.contains("servers_ejected:0\r\n"), "{info}");
    }

    servers[1].restart();
    until_all_ok(port, &keys, "percore after the restart");
    assert_eq!(placed_by(port, &servers, &all), base);
    drop(proxies.nutcracker);
}

#[test]
fn with_every_server_ejected_requests_get_the_pool_s_error_until_one_is_back() {
    let mut servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let proxies = start(&servers, true);
    let port = proxies.percore.port;
    let base = placed_by(port, &servers, &[0, 1, 2]);
    for server in &mut servers {
        server.kill();
    }
    let keys = keys();
    let no_live = Value::Error(
        "ERR percore: pool 'cache' has no live server for this request (ejected)".into(),
    );
    let deadline = Instant::now() + SETTLE;
    while !set_spread(port, &keys).iter().all(|r| *r == no_live) {
        assert!(Instant::now() < deadline, "never all ejected");
        std::thread::sleep(ROUND_PAUSE);
    }
    let info = Conn::connect(port).cmd_str("PROXY INFO").text();
    assert!(info.contains("servers_live:0\r\n"), "{info}");
    // nutcracker fails them too (its text: "ERR Connection refused").
    let nut = set_spread(proxies.nut_port, &keys);
    assert!(nut.iter().all(|r| matches!(r, Value::Error(_))), "{nut:?}");

    // One comes back: after the retry timeout every key is served, from it.
    servers[2].restart();
    until_all_ok(port, &keys, "percore with gamma back");
    assert!(placement(&servers, &[2]).len() == KEYS);
    assert!(
        base.values().any(|&s| s != 2),
        "the others owned keys before"
    );
    drop(proxies.nutcracker);
}
