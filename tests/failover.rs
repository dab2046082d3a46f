//! Backend failure: a master killed mid-test gives its clients a fast error naming the node
//! (never a hang), other masters keep serving, and the proxy recovers by itself when the
//! master comes back.

mod common;

use std::time::{Duration, Instant};

use common::{key_on_each_master, wait_until, Proxy, RedisCluster, Value};

#[test]
fn dead_master_fails_fast_and_service_resumes() {
    let mut cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(
        &cluster,
        &["--backend-timeout", "1s", "--refresh-interval", "1s"],
    );
    let mut c = proxy.conn();
    let keys = key_on_each_master(&cluster, "f:");
    for (_, key) in &keys {
        assert_eq!(c.cmd_str(&format!("SET {key} v")), Value::ok());
    }
    let (dead_port, dead_key) = keys[0].clone();
    cluster.kill(dead_port);

    for _ in 0..5 {
        let started = Instant::now();
        let reply = c.cmd_str(&format!("GET {dead_key}"));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "error came fast"
        );
        assert!(reply.is_error(), "{reply:?}");
        assert!(
            reply.text().contains(&format!("127.0.0.1:{dead_port}")),
            "the error names the node: {reply:?}"
        );
        for (_, key) in &keys[1..] {
            assert_eq!(c.cmd_str(&format!("GET {key}")), Value::bulk("v"));
        }
    }
    // A pipeline mixing dead and live keys: errors where due, values elsewhere, in order.
    let commands: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .map(|(_, k)| vec![b"GET".to_vec(), k.as_bytes().to_vec()])
        .collect();
    let replies = c.pipeline(&commands);
    assert!(replies[0].is_error());
    assert_eq!(&replies[1..], &[Value::bulk("v"), Value::bulk("v")]);

    cluster.restart(dead_port);
    let port = proxy.port;
    wait_until(
        "the proxy to serve the restarted master",
        Duration::from_secs(15),
        || common::try_cmd(port, &format!("SET {dead_key} back")) == Some(Value::ok()),
    );
    assert_eq!(c.cmd_str(&format!("GET {dead_key}")), Value::bulk("back"));
    assert!(
        proxy.log().contains("backend connection failed"),
        "the failure was logged"
    );
}

#[test]
fn unreachable_cluster_gives_errors_not_hangs() {
    let port = common::free_port();
    let proxy = Proxy::start_with_seeds(
        &format!("127.0.0.1:{port}"),
        &["--backend-timeout", "500ms"],
    );
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("PING"), Value::Simple("PONG".into()));
    let reply = c.cmd_str("GET k");
    assert!(reply.text().starts_with("CLUSTERDOWN"), "{reply:?}");
    // The reason is told, naming the seed, once the refresher has tried it.
    wait_until(
        "the refresher's error in the reply",
        Duration::from_secs(5),
        || {
            let reply = c.cmd_str("GET k").text();
            reply.contains("no cluster topology yet")
                && reply.contains(&format!("127.0.0.1:{port}"))
        },
    );
}

#[test]
fn stopped_master_times_out_without_slowing_other_masters() {
    let mut cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--backend-timeout", "1s"]);
    let keys = key_on_each_master(&cluster, "s:");
    let mut c = proxy.conn();
    for (_, key) in &keys {
        assert_eq!(c.cmd_str(&format!("SET {key} v")), Value::ok());
    }
    let (paused_port, paused_key) = keys[0].clone();
    cluster.pause(paused_port, true);

    // A client of the stopped master gets an error within about the backend timeout.
    let port = proxy.port;
    let stuck = std::thread::spawn(move || {
        let mut c = common::Conn::connect(port);
        let started = Instant::now();
        let reply = c.cmd_str(&format!("GET {paused_key}"));
        (reply, started.elapsed())
    });
    // Meanwhile clients of the other masters see no added latency.
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        for (_, key) in &keys[1..] {
            let started = Instant::now();
            assert_eq!(c.cmd_str(&format!("GET {key}")), Value::bulk("v"));
            slowest = slowest.max(started.elapsed());
        }
    }
    let (reply, waited) = stuck.join().expect("stuck client");
    assert!(reply.is_error(), "{reply:?}");
    assert!(
        reply.text().contains(&format!("127.0.0.1:{paused_port}")),
        "{reply:?}"
    );
    assert!(
        waited < Duration::from_millis(2500),
        "error after {waited:?}"
    );
    // Waiting behind the stopped master would take the whole 1 s timeout.
    assert!(
        slowest < Duration::from_millis(500),
        "other masters slowed to {slowest:?}"
    );

    cluster.pause(paused_port, false);
    let key = keys[0].1.clone();
    wait_until(
        "the resumed master to serve again",
        Duration::from_secs(10),
        || common::try_cmd(port, &format!("GET {key}")) == Some(Value::bulk("v")),
    );
    eprintln!("stopped master: error after {waited:?}; slowest other-master GET {slowest:?}");
}

/// A master that sees the cluster as down answers CLUSTERDOWN without running the command, as
/// during a failover before the replica is promoted. The proxy resends until the cluster is
/// back, so the client gets its reply late rather than an error.
#[test]
fn clusterdown_is_retried_until_the_cluster_is_back() {
    let mut cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SET down:key v"), Value::ok());
    let slot = cluster.keyslot("down:key");
    let owner = cluster.master_for_slot(slot);
    // Another slot of the same master: giving it up costs the master its full coverage, so
    // it answers every command with CLUSTERDOWN, this key's slot included.
    let other = if slot > 0 && cluster.master_for_slot(slot - 1) == owner {
        slot - 1
    } else {
        slot + 1
    };
    assert_eq!(cluster.master_for_slot(other), owner);
    assert_eq!(
        cluster
            .node(owner)
            .cmd(&format!("CLUSTER DELSLOTS {other}")),
        Value::ok()
    );
    let mut direct = common::Conn::connect(owner);
    wait_until(
        "the master to see the cluster as down",
        Duration::from_secs(5),
        || {
            direct
                .cmd_str("GET down:key")
                .text()
                .starts_with("CLUSTERDOWN")
        },
    );

    let started = Instant::now();
    let restore = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        common::Conn::connect(owner).cmd_str(&format!("CLUSTER ADDSLOTS {other}"))
    });
    assert_eq!(c.cmd_str("GET down:key"), Value::bulk("v"));
    let waited = started.elapsed();
    assert_eq!(restore.join().expect("restore thread"), Value::ok());
    assert!(
        waited >= Duration::from_millis(300),
        "served after {waited:?}, before the cluster was back"
    );
    eprintln!("GET answered {waited:?} after it was sent into a down cluster");
}
