//! Client limits and the process lifecycle: maxclients, idle timeout, the output buffer limit
//! for clients that never read, and a graceful drain on SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{wait_until, Proxy, RedisCluster, Value};

fn pong() -> Value {
    Value::Simple("PONG".into())
}

/// Waits until a master is running a busy script: it does not answer a PING within 200 ms.
/// The stop signal goes after that, not after a fixed pause: a request percore has not read
/// when the drain starts is never served, and a loaded machine can leave it unread for a
/// while.
fn wait_for_busy_master(cluster: &RedisCluster) {
    // Every node, from the fixture: asking the cluster which are masters could ask the busy one.
    let seeds = cluster.seeds();
    let ports: Vec<&str> = seeds
        .split(',')
        .filter_map(|s| s.rsplit(':').next())
        .collect();
    let busy = || {
        ports.iter().any(|port| {
            let port: u16 = port.parse().expect("a port");
            let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                return false;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
            let mut pong = [0u8; 7];
            stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut pong).is_err()
        })
    };
    wait_until(
        "a master busy with the script",
        Duration::from_secs(5),
        busy,
    );
}

#[test]
fn max_clients_idle_timeout_and_output_limit() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(
        &cluster,
        &[
            "--max-clients",
            "4",
            "--idle-timeout",
            "500ms",
            "--max-output-buffer",
            "1000000",
        ],
    );

    // Two threads, four clients: each core takes two; the rest are refused like Redis does.
    let mut served = Vec::new();
    let mut refused = 0;
    for _ in 0..12 {
        let mut c = proxy.conn();
        c.send_raw(b"*1\r\n$4\r\nPING\r\n");
        match c.read_value() {
            v if v == pong() => served.push(c),
            Value::Error(e) => {
                assert_eq!(e, "ERR max number of clients reached");
                c.expect_closed();
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        served.len() <= 4 && !served.is_empty(),
        "served {}",
        served.len()
    );
    assert_eq!(served.len() + refused, 12);

    // Idle clients are closed after --idle-timeout; once they are gone, new clients fit again.
    let started = Instant::now();
    for c in &mut served {
        c.expect_closed();
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut fresh = proxy.conn();
    assert_eq!(fresh.cmd_str("PING"), pong());

    // A client that pipelines large replies and never reads is dropped at the output limit;
    // others are unaffected.
    let value = vec![b'v'; 100_000];
    assert_eq!(fresh.cmd(&[b"SET", b"big", &value]), Value::ok());
    let mut hog = proxy.conn();
    let mut wire = Vec::new();
    for _ in 0..200 {
        wire.extend(common::encode(&[b"GET", b"big"]));
    }
    hog.send_raw(&wire);
    std::thread::sleep(Duration::from_millis(300));
    hog.expect_closed();
    // A new client rather than `fresh`: on a loaded machine the steps since `fresh` last spoke
    // can outlast the 500 ms idle timeout, which closes it as it should.
    drop(fresh);
    let mut other = proxy.conn();
    assert_eq!(other.cmd(&[b"STRLEN", b"big"]), Value::Int(100_000));
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let cluster = RedisCluster::start(3, 0);
    let mut proxy = Proxy::start(
        &cluster,
        &["--shutdown-timeout", "20s", "--backend-timeout", "30s"],
    );
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SET drain 1"), Value::ok());
    // A script that keeps its master busy for a while (about 2 s here; far longer than the
    // busy probe's 200 ms, so the probe sees it): in flight when the signal arrives.
    let script = b"local i = 0 while i < 100000000 do i = i + 1 end return 7";
    c.send_raw(&common::encode(&[b"EVAL", script, b"0"]));
    wait_for_busy_master(&cluster);
    proxy.signal("-TERM");
    assert_eq!(
        c.read_value(),
        Value::Int(7),
        "the in-flight request was answered"
    );
    c.expect_closed();
    assert_eq!(proxy.wait_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn second_sigterm_stops_draining_at_once_and_exits_nonzero() {
    let cluster = RedisCluster::start(3, 0);
    let mut proxy = Proxy::start(
        &cluster,
        &["--shutdown-timeout", "60s", "--backend-timeout", "60s"],
    );
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SET drain:slow 1"), Value::ok());
    // A script that keeps its master busy for seconds: the drain would wait for it.
    let script = b"local i = 0 while i < 2000000000 do i = i + 1 end return 7";
    c.send_raw(&common::encode(&[b"EVAL", script, b"0"]));
    wait_for_busy_master(&cluster);
    proxy.signal("-TERM");
    std::thread::sleep(Duration::from_millis(200));
    assert!(proxy.is_running(), "still draining after the first signal");
    let second = std::time::Instant::now();
    proxy.signal("-TERM");
    assert_eq!(proxy.wait_exit(Duration::from_secs(5)), Some(1));
    assert!(
        second.elapsed() < Duration::from_secs(2),
        "{:?}",
        second.elapsed()
    );
    for port in cluster.master_ports() {
        // The busy script is stopped so the fixture can tear the cluster down quickly.
        let _ = common::try_cmd(port, "SCRIPT KILL");
    }
}

/// The CPUs each executor thread of `pid` may run on, as `Cpus_allowed_list` in /proc:
/// glommio names a core's threads (the executor and its blocking helper) `percore-<core>-<id>`;
/// `percore-signals` (the stop signals) and `percore-awake` (a core's keep-awake) are not.
fn executor_affinities(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let name = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if !name.starts_with("percore-")
            || name.starts_with("percore-signals")
            || name.starts_with("percore-awake")
        {
            continue;
        }
        let status = std::fs::read_to_string(task.join("status")).unwrap_or_default();
        if let Some(list) = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        {
            out.push(list.trim().to_string());
        }
    }
    out
}

#[test]
fn executors_are_pinned_unless_no_pin() {
    let cluster = RedisCluster::start(3, 0);
    let allowed = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();

    // Pinned (the default): each executor thread may run on exactly one CPU, a different one.
    let pinned = Proxy::start(&cluster, &[]);
    let mut affinities = executor_affinities(pinned.pid());
    assert!(affinities.len() >= 2, "{affinities:?}");
    assert!(
        affinities.iter().all(|a| a.parse::<usize>().is_ok()),
        "one CPU each: {affinities:?}"
    );
    affinities.sort();
    affinities.dedup();
    assert_eq!(affinities.len(), 2, "two cores: {affinities:?}");

    // --no-pin: both threads may run on every CPU the process may, and they serve.
    let unpinned = Proxy::start(&cluster, &["--no-pin"]);
    let affinities = executor_affinities(unpinned.pid());
    assert!(affinities.len() >= 2, "{affinities:?}");
    assert!(affinities.iter().all(|a| *a == allowed), "{affinities:?}");
    let mut c = unpinned.conn();
    assert_eq!(c.cmd_str("SET unpinned:key 1"), Value::ok());
    assert_eq!(
        c.cmd_str("GET unpinned:key"),
        Value::Bulk(Some(b"1".to_vec()))
    );
    assert!(c.cmd_str("PROXY INFO").text().contains("pinned:no"));
}

#[test]
fn clients_connecting_while_percore_starts_are_served() {
    let cluster = RedisCluster::start(3, 0);
    // Returns as soon as a connection is accepted, without waiting for any request to work.
    let proxy = Proxy::start_with_seeds(&cluster.seeds(), &[]);
    for i in 0..20 {
        let mut c = proxy.conn();
        assert_eq!(
            c.cmd_str(&format!("SET start:{i} x")),
            Value::ok(),
            "client {i}"
        );
    }
}
