//! The whole request path of GET and SET — client socket read, parse, route, backend queue and
//! write, reply read and scan, client reply write, the io_uring rounds in between — allocates
//! nothing per request once a connection is warm.
//!
//! percore runs inside this test process (one core), so the counting global allocator sees
//! every allocation its threads make; the test's own client uses fixed buffers, so it adds
//! none. The backends are real redis-server cluster nodes.
//!
//! Both one request at a time (the core runs out of work between requests, so every request
//! is a wait of its own) and pipelined 50 deep. What is left is glommio's, per unit of time
//! rather than per request: its preemption timer, the backends' timeout watchdogs, parks after
//! the driver's wait in the ring runs out. Measured for 6,000 requests: ~190 allocations
//! pipelined (in ~70 ms), ~600 one at a time (in ~1 s, so more timer ticks).

mod common;
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{free_port, wait_until, RedisCluster};
use counting_alloc::allocations;
use percore::resp::parse::encode_request;
use percore::resp::scan::ReplyScanner;
use percore::Config;

/// Keys used, spread over every master.
const KEYS: usize = 300;
/// Requests measured, after as many for warm-up.
const REQUESTS: usize = 6_000;
/// Allocations per second allowed for glommio's timers (preemption timer, the backends'
/// timeout watchdogs), twice what was measured.
const TIMER_ALLOCATIONS_PER_SEC: f64 = 1200.0;
/// Requests sent back to back in the pipelined half of the test.
const PIPELINE: usize = 50;

fn config(port: u16, seeds: String) -> Config {
    Config {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        seeds: seeds.split(',').map(String::from).collect(),
        threads: 1,
        pin: true,
        backend_conns: 1,
        // No periodic refresh during the measurement: it allocates a topology by design.
        refresh_interval: Duration::from_secs(3600),
        backend_timeout: Duration::from_secs(10),
        max_clients: 100,
        shutdown_timeout: Duration::from_secs(1),
        ..Config::default()
    }
}

/// A client with its requests encoded up front and one fixed read buffer.
struct Client {
    stream: TcpStream,
    requests: Vec<Vec<u8>>,
    buf: Vec<u8>,
    scanner: ReplyScanner,
}

impl Client {
    /// Sends requests `from..from + count` (cycling) `depth` at a time and reads every reply;
    /// returns how many replies were errors.
    fn run(&mut self, from: usize, count: usize, depth: usize) -> usize {
        let mut errors = 0;
        let mut next = from;
        while next < from + count {
            let batch = depth.min(from + count - next);
            for i in next..next + batch {
                let request = &self.requests[i % self.requests.len()];
                self.stream.write_all(request).unwrap();
            }
            errors += self.read_replies(batch);
            next += batch;
        }
        errors
    }

    fn read_replies(&mut self, mut wanted: usize) -> usize {
        let (mut filled, mut errors) = (0, 0);
        while wanted > 0 {
            let read = self.stream.read(&mut self.buf[filled..]).unwrap();
            assert!(read > 0, "proxy closed the connection");
            filled += read;
            let mut at = 0;
            while let Ok(Some(len)) = self.scanner.scan(&self.buf[at..filled]) {
                errors += usize::from(self.buf[at] == b'-');
                at += len;
                wanted -= 1;
            }
            self.buf.copy_within(at..filled, 0);
            filled -= at;
        }
        errors
    }
}

#[test]
fn get_and_set_through_the_proxy_allocate_nothing_per_request() {
    let cluster = RedisCluster::start(3, 0);
    let port = free_port();
    let config = config(port, cluster.seeds());
    std::thread::spawn(move || percore::run(config));
    wait_until(
        "percore to serve the cluster",
        Duration::from_secs(30),
        || common::try_cmd(port, "SET percore:ready 1") == Some(common::Value::ok()),
    );

    let mut requests = Vec::new();
    for i in 0..KEYS {
        let key = format!("alloc:{i}");
        let mut set = bytes::BytesMut::new();
        encode_request(&mut set, &[b"SET", key.as_bytes(), b"0123456789abcdef"]);
        let mut get = bytes::BytesMut::new();
        encode_request(&mut get, &[b"GET", key.as_bytes()]);
        requests.push(set.to_vec());
        requests.push(get.to_vec());
    }
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(common::READ_TIMEOUT)).unwrap();
    let mut client = Client {
        stream,
        requests,
        buf: vec![0; 256 * 1024],
        scanner: ReplyScanner::new(),
    };

    measure(&mut client, "RESP2");
    // The same through RESP3 connections (HELLO 3 opens them, on first use, per master).
    client
        .stream
        .write_all(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
        .unwrap();
    assert_eq!(client.read_replies(1), 0);
    measure(&mut client, "RESP3");
}

/// Warms the path up, then counts the allocations of GET/SET one at a time and pipelined, and
/// checks both are well under one per request.
fn measure(client: &mut Client, protocol: &str) {
    // Warm-up: every backend connection made, every queue and buffer at its working size.
    assert_eq!(client.run(0, REQUESTS, 1), 0);
    assert_eq!(client.run(0, REQUESTS, PIPELINE), 0);

    let (before, started) = (allocations(), Instant::now());
    let errors = client.run(0, REQUESTS, 1);
    let (one_at_a_time, one_at_a_time_took) = (allocations() - before, started.elapsed());
    let (before, started) = (allocations(), Instant::now());
    let errors = errors + client.run(0, REQUESTS, PIPELINE);
    let (pipelined, pipelined_took) = (allocations() - before, started.elapsed());
    println!(
        "{protocol}: allocations for {REQUESTS} GET/SET requests through the proxy: \
         {pipelined} pipelined {PIPELINE} deep in {pipelined_took:?}, {one_at_a_time} one at \
         a time in {one_at_a_time_took:?}"
    );
    assert_eq!(errors, 0);
    // Under one allocation per request by a wide margin, after allowing for glommio's timers,
    // which allocate per unit of time (measured: ~600 per second, so a slower machine makes
    // more per request). One allocation per request, percore's or glommio's, breaks these.
    let timers = |took: Duration| (took.as_secs_f64() * TIMER_ALLOCATIONS_PER_SEC) as usize;
    assert!(
        pipelined < REQUESTS / 2 + timers(pipelined_took),
        "{protocol}: {pipelined} allocations for {REQUESTS} pipelined requests in \
         {pipelined_took:?}"
    );
    assert!(
        one_at_a_time < REQUESTS / 2 + timers(one_at_a_time_took),
        "{protocol}: {one_at_a_time} allocations for {REQUESTS} requests one at a time in \
         {one_at_a_time_took:?}"
    );
}
