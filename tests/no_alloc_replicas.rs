//! Replica reads allocate nothing per request either: GETs read from the replicas
//! (`--read-from prefer-replica` over 3 masters with a replica each), one at a time and
//! pipelined, once the connections are warm.
//!
//! As `tests/no_alloc_proxy.rs`: percore runs inside this test process (one core) under a
//! counting global allocator, and what is left is per unit of time, not per request:
//! glommio's timers and the lag watcher's poll of the masters twice a second (its INFO
//! replies, verdicts and notice). Measured: 60,000 GETs made ~7,100 allocations one at a
//! time in 9.2 s and ~1,600 pipelined in 1.1 s: ~780 a second, none per request.

mod common;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{free_port, wait_until, Conn, RedisCluster, Value};
use counting_alloc::allocations;
use percore::config::{ReadFrom, ReplicaReads};
use percore::resp::parse::encode_request;
use percore::resp::scan::ReplyScanner;
use percore::Config;

/// Keys read, spread over every master.
const KEYS: usize = 300;
/// Requests measured, after as many for warm-up.
const REQUESTS: usize = 6_000;
/// Allocations per second allowed for what runs by time (glommio's timers, the lag
/// watcher), twice what the proxy's own test allows for the timers alone.
const TIMED_ALLOCATIONS_PER_SEC: f64 = 2400.0;
/// Requests sent back to back in the pipelined half.
const PIPELINE: usize = 50;

/// `calls` of `cmdstat_get` on a node.
fn gets(port: u16) -> u64 {
    common::command_calls(port, "get")
}

/// Sends `requests` (cycling) `count` times, `depth` at a time, over one connection with a
/// fixed buffer; returns the error replies.
fn run(stream: &mut TcpStream, requests: &[Vec<u8>], count: usize, depth: usize) -> usize {
    let mut buf = vec![0u8; 256 * 1024];
    let mut scanner = ReplyScanner::new();
    let (mut errors, mut next) = (0, 0);
    while next < count {
        let batch = depth.min(count - next);
        for i in next..next + batch {
            stream.write_all(&requests[i % requests.len()]).unwrap();
        }
        let (mut wanted, mut filled) = (batch, 0);
        while wanted > 0 {
            let read = stream.read(&mut buf[filled..]).unwrap();
            assert!(read > 0, "proxy closed the connection");
            filled += read;
            let mut at = 0;
            while let Ok(Some(len)) = scanner.scan(&buf[at..filled]) {
                errors += usize::from(buf[at] == b'-');
                at += len;
                wanted -= 1;
            }
            buf.copy_within(at..filled, 0);
            filled -= at;
        }
        next += batch;
    }
    errors
}

#[test]
fn replica_reads_allocate_nothing_per_request() {
    let cluster = RedisCluster::start(3, 1);
    // The proxy reads the topology once (no periodic refresh): it must list the replicas.
    cluster.wait_replicas_listed(1);
    let port = free_port();
    let config = Config {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        seeds: cluster.seeds().split(',').map(String::from).collect(),
        threads: 1,
        refresh_interval: Duration::from_secs(3600),
        backend_timeout: Duration::from_secs(10),
        shutdown_timeout: Duration::from_secs(1),
        replica_reads: ReplicaReads {
            read_from: ReadFrom::PreferReplica,
            max_lag: Some(Duration::from_secs(5)),
        },
        ..Config::default()
    };
    std::thread::spawn(move || percore::run(config));
    wait_until("percore to serve", Duration::from_secs(30), || {
        common::try_cmd(port, "SET percore:ready 1") == Some(Value::ok())
    });
    let mut writer = Conn::connect(port);
    let mut requests = Vec::new();
    for i in 0..KEYS {
        let key = format!("alloc:{i}");
        assert_eq!(
            writer.cmd(&[b"SET", key.as_bytes(), b"0123456789"]),
            Value::ok()
        );
        let mut get = bytes::BytesMut::new();
        encode_request(&mut get, &[b"GET", key.as_bytes()]);
        requests.push(get.to_vec());
    }
    let masters = cluster.master_ports();
    let replicas: Vec<u16> = cluster
        .nodes
        .iter()
        .map(|n| n.port)
        .filter(|p| !masters.contains(p))
        .collect();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
    // Warm-up, until every replica is in rotation and reads.
    let on_replicas = |ports: &[u16]| ports.iter().map(|&p| gets(p)).sum::<u64>();
    wait_until("reads on the replicas", Duration::from_secs(15), || {
        let before = on_replicas(&replicas);
        run(&mut stream, &requests, KEYS, 1);
        on_replicas(&replicas) >= before + KEYS as u64
    });
    assert_eq!(run(&mut stream, &requests, REQUESTS, 1), 0);
    assert_eq!(run(&mut stream, &requests, REQUESTS, PIPELINE), 0);

    let masters_before = on_replicas(&masters);
    for (depth, what) in [(1, "one at a time"), (PIPELINE, "pipelined")] {
        let (before, started) = (allocations(), Instant::now());
        let errors = run(&mut stream, &requests, REQUESTS, depth);
        let (made, took) = (allocations() - before, started.elapsed());
        println!("replica reads {what}: {made} allocations for {REQUESTS} GETs in {took:?}");
        assert_eq!(errors, 0);
        // The client's own buffer is one allocation per run.
        let timed = (took.as_secs_f64() * TIMED_ALLOCATIONS_PER_SEC) as usize;
        assert!(
            made < REQUESTS / 2 + timed,
            "{what}: {made} allocations for {REQUESTS} GETs in {took:?}"
        );
    }
    assert_eq!(
        on_replicas(&masters),
        masters_before,
        "the GETs read replicas"
    );
}
