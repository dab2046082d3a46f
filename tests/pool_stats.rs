//! nutcracker's stats port, served by percore: the real nutcracker and percore run the same
//! pool over the same real redis-servers and get the same traffic; their JSON stats have the
//! same keys at every level and count the same requests and replies for every server.
//! `-D` describes the same figures as nutcracker's `-D`.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::process::Command;
use std::time::Duration;

use common::nutcracker::{free_ports, nutcracker_binary, stats_json, Nutcracker};
use common::{wait_until, Conn, Proxy, RedisServer, Value};
use serde_json::{Map, Value as Json};

/// How long the stats may take to show the traffic (both gather every 100 ms here).
const STATS_WAIT: Duration = Duration::from_secs(10);

fn keys(map: &Map<String, Json>) -> BTreeSet<String> {
    map.keys().cloned().collect()
}

fn object<'a>(map: &'a Map<String, Json>, key: &str) -> &'a Map<String, Json> {
    map.get(key)
        .and_then(Json::as_object)
        .unwrap_or_else(|| panic!("no object {key:?} in {map:?}"))
}

fn number(map: &Map<String, Json>, key: &str) -> u64 {
    map.get(key)
        .and_then(Json::as_u64)
        .unwrap_or_else(|| panic!("no number {key:?} in {map:?}"))
}

/// Whether `stats` show all `sent` requests on `servers` of `pool`, and every client gone.
fn settled(stats: &Map<String, Json>, pool: &str, servers: &[&str], sent: u64) -> bool {
    let pool = object(stats, pool);
    let requests: u64 = servers
        .iter()
        .map(|s| number(object(pool, s), "requests"))
        .sum();
    requests == sent && number(pool, "client_connections") == 0
}

/// The same traffic through the proxy at `port`: SETs and GETs on many keys, pipelined, and
/// a few single-key commands on their own connections. Returns the requests sent.
fn traffic(port: u16) -> u64 {
    let mut c = Conn::connect(port);
    let sets: Vec<Vec<Vec<u8>>> = (0..300)
        .map(|i| {
            vec![
                b"SET".to_vec(),
                format!("k:{i}").into_bytes(),
                b"value".to_vec(),
            ]
        })
        .collect();
    assert!(c.pipeline(&sets).iter().all(|r| *r == Value::ok()));
    let gets: Vec<Vec<Vec<u8>>> = (0..300)
        .map(|i| vec![b"GET".to_vec(), format!("k:{i}").into_bytes()])
        .collect();
    assert!(c.pipeline(&gets).iter().all(|r| *r == Value::bulk("value")));
    for i in 0..5 {
        let mut one = Conn::connect(port);
        assert_eq!(one.cmd_str(&format!("INCR n:{i}")), Value::Int(1));
    }
    605
}

fn flush(servers: &[RedisServer]) {
    for server in servers {
        assert_eq!(server.conn().cmd_str("FLUSHALL"), Value::ok());
    }
}

#[test]
fn stats_port_has_nutcracker_s_keys_and_counts_the_same_requests_per_server() {
    let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let taken: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    let [percore_port, nut_port, stats_port]: [u16; 3] =
        free_ports(3, &taken).try_into().expect("three ports");
    let lines = [
        format!("127.0.0.1:{}:1", servers[0].port),
        format!("127.0.0.1:{}:2 second", servers[1].port),
        format!("127.0.0.1:{}:1", servers[2].port),
    ];
    let names = [
        format!("127.0.0.1:{}", servers[0].port),
        "second".to_string(),
        format!("127.0.0.1:{}", servers[2].port),
    ];
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    // md5, not nutcracker's default fnv1a_64: nutcracker's fnv1a_64 keeps 32 bits of the
    // hash and multiplies by the 64-bit prime's low 32 bits (435) per byte, so keys that
    // differ in their last digits hash within a few hundred thousand of each other, and on
    // some runs (the ketama points come from the random ports) all of them landed on one
    // server, for nutcracker as for percore.
    let yaml = |port: u16| {
        let list: String = lines.iter().map(|s| format!("   - {s}\n")).collect();
        format!(
            "alpha:\n  listen: 127.0.0.1:{port}\n  hash: md5\n  distribution: ketama\n  \
             redis: true\n  servers:\n{list}"
        )
    };
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("pool.yml");
    std::fs::write(&file, yaml(percore_port)).unwrap();
    let stats_arg = stats_port.to_string();
    let _proxy = Proxy::start_with_args(
        percore_port,
        &[
            "-c",
            file.to_str().unwrap(),
            "--threads",
            "2",
            "-s",
            &stats_arg,
            "-a",
            "127.0.0.1",
            "-i",
            "100",
        ],
    );
    let nutcracker =
        Nutcracker::start_with(&yaml(nut_port), &[nut_port], &["-i", "100"]).expect("nutcracker");

    flush(&servers);
    let sent = traffic(percore_port);
    flush(&servers);
    assert_eq!(traffic(nut_port), sent);

    // Both gather every 100 ms: wait until each shows every request.
    let mut ours = None;
    wait_until("percore's stats to count the traffic", STATS_WAIT, || {
        ours = stats_json(stats_port).filter(|s| settled(s, "alpha", &names, sent));
        ours.is_some()
    });
    let mut theirs = None;
    wait_until(
        "nutcracker's stats to count the traffic",
        STATS_WAIT,
        || {
            theirs =
                stats_json(nutcracker.stats_port).filter(|s| settled(s, "alpha", &names, sent));
            theirs.is_some()
        },
    );
    let (ours, theirs) = (ours.unwrap(), theirs.unwrap());

    assert_eq!(keys(&ours), keys(&theirs), "top-level keys");
    let (our_pool, their_pool) = (object(&ours, "alpha"), object(&theirs, "alpha"));
    assert_eq!(keys(our_pool), keys(their_pool), "pool keys");
    for name in &names {
        let (our_server, their_server) = (object(our_pool, name), object(their_pool, name));
        assert_eq!(keys(our_server), keys(their_server), "server {name} keys");
        for figure in ["requests", "request_bytes", "responses", "response_bytes"] {
            assert_eq!(
                number(our_server, figure),
                number(their_server, figure),
                "{figure} of server {name}"
            );
        }
    }
    let used = names
        .iter()
        .filter(|name| number(object(our_pool, name), "requests") > 0);
    assert!(
        used.count() >= 2,
        "the keys spread over the servers: {our_pool:?}"
    );
    // The pool's figures: six clients came and went, each closing its connection.
    for figure in ["client_eof", "client_connections", "server_ejects"] {
        assert_eq!(
            number(our_pool, figure),
            number(their_pool, figure),
            "{figure}"
        );
    }
    assert_eq!(ours.get("service"), Some(&Json::from("percore")));
    assert_eq!(ours.get("source"), theirs.get("source"));
}

#[test]
fn describe_stats_lists_nutcracker_s_figures() {
    let figures = |binary: &std::path::Path| -> BTreeSet<String> {
        let out = Command::new(binary).arg("-D").output().expect("run -D");
        assert!(out.status.success());
        // nutcracker writes it to standard error, percore to standard output.
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        text.lines()
            .filter(|line| line.starts_with("  ") && line.contains('"'))
            .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    let ours = figures(env!("CARGO_BIN_EXE_percore").as_ref());
    let theirs = figures(&nutcracker_binary());
    assert_eq!(theirs.len(), 19, "{theirs:?}");
    assert_eq!(ours, theirs);
}
