//! Client limits and the process lifecycle: maxclients, idle timeout, the output buffer limit
//! for clients that never read, and a graceful drain on SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::{Proxy, RedisCluster, Value};

fn pong() -> Value {
    Value::Simple("PONG".into())
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
    assert_eq!(fresh.cmd(&[b"STRLEN", b"big"]), Value::Int(100_000));
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let cluster = RedisCluster::start(3, 0);
    let mut proxy = Proxy::start(&cluster, &["--shutdown-timeout", "5s"]);
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SET drain 1"), Value::ok());
    // A script that keeps its master busy for a while: in flight when the signal arrives.
    let script = b"local i = 0 while i < 20000000 do i = i + 1 end return 7";
    c.send_raw(&common::encode(&[b"EVAL", script, b"0"]));
    std::thread::sleep(Duration::from_millis(50));
    proxy.signal("-TERM");
    assert_eq!(
        c.read_value(),
        Value::Int(7),
        "the in-flight request was answered"
    );
    c.expect_closed();
    assert_eq!(proxy.wait_exit(Duration::from_secs(10)), Some(0));
}
