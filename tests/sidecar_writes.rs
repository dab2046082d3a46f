//! Background writes (`async_writes: true`) over a real redis-server: fixed-reply writes are
//! answered `+OK` while the server is paused for writes (`CLIENT PAUSE ... WRITE`), and what
//! the same client reads afterwards sees them, on its own connection or, after HELLO or WATCH,
//! on another one; the bound turns writes synchronous (never dropped); a refused write is
//! counted and logged; a kill -9 of the server in the middle of a stream of writes loses
//! nothing when it comes back in time, and what is counted as failed when it does not is
//! exactly what the server lacks once it is back; SIGTERM flushes what waits.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::nutcracker::free_ports;
use common::{wait_until, Conn, Proxy, RedisServer, Value};

/// How long the server is paused for writes where a test needs it to hold writes back.
const PAUSE_MS: u64 = 1500;
/// Longest an answer given by percore itself (a background write's `+OK`) may take on this
/// busy machine: far below [`PAUSE_MS`], so a reply faster than this did not wait for the
/// paused server.
const AT_ONCE: Duration = Duration::from_millis(700);
/// Writes of the read-your-writes and kill -9 tests.
const STREAM: usize = 3000;
/// The bound of the back-pressure test.
const MAX_BYTES: usize = 1000;
/// redis-server options that keep every acknowledged write across a kill -9.
const DURABLE: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];

/// A one-server pool with background writes and `extra` pool keys, on `threads` cores.
fn start(server: &RedisServer, extra: &str, args: &[&str]) -> (Proxy, tempfile::TempDir) {
    let port = free_ports(1, &HashSet::from([server.port]))[0];
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("writes.yml");
    let yaml = format!(
        "writes:\n  listen: 127.0.0.1:{port}\n  redis: true\n  async_writes: true\n{extra}  \
         servers:\n   - 127.0.0.1:{}:1\n",
        server.port
    );
    std::fs::write(&file, yaml).unwrap();
    let file = file.to_str().unwrap().to_string();
    let mut all = vec!["-c", &file, "--log-level", "info"];
    all.extend(args);
    let proxy = Proxy::start_with_args(port, &all);
    (proxy, dir)
}

/// A figure of PROXY INFO's `# Background writes` section.
fn figure(proxy: &Proxy, name: &str) -> u64 {
    let info = proxy.conn().cmd_str("PROXY INFO").text();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("background_{name}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no background_{name} in PROXY INFO:\n{info}"))
}

/// Pauses the server's writes for `ms`.
fn pause_writes(server: &RedisServer, ms: u64) {
    let pause = format!("CLIENT PAUSE {ms} WRITE");
    assert_eq!(server.conn().cmd_str(&pause), Value::ok());
}

/// `line`'s reply and how long it took.
fn timed(conn: &mut Conn, line: &str) -> (Value, Duration) {
    let started = Instant::now();
    let reply = conn.cmd_str(line);
    (reply, started.elapsed())
}

/// Waits until no background write waits.
fn wait_flushed(proxy: &Proxy, timeout: Duration) {
    wait_until("background writes to be answered", timeout, || {
        figure(proxy, "pending") == 0
    });
}

/// The sum over the cores of the `/metrics` samples named `name` (of the pool `writes`).
fn metric(port: u16, name: &str) -> f64 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let samples = response
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains("pool=\"writes\""));
    samples
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn fixed_writes_are_ok_at_once_and_the_same_client_reads_them() {
    let server = RedisServer::start();
    let metrics_port = free_ports(1, &HashSet::from([server.port]))[0];
    let metrics = format!("127.0.0.1:{metrics_port}");
    let (proxy, _dir) = start(
        &server,
        "",
        &["--threads", "1", "--metrics-listen", &metrics],
    );
    let mut c = proxy.conn();
    pause_writes(&server, PAUSE_MS);
    for line in [
        "SET a 1",
        "SET b 2 EX 100",
        "SET c 3 KEEPTTL",
        "SETEX d 100 4",
        "PSETEX e 100000 5",
        "MSET f 6 g 7",
        "HMSET h x 8 y 9",
    ] {
        let (reply, took) = timed(&mut c, line);
        assert_eq!(reply, Value::ok(), "{line}");
        assert!(
            took < AT_ONCE,
            "{line} took {took:?}: not in the background"
        );
    }
    // Reads come after the writes on the same connection: they see them, once the server runs.
    assert_eq!(c.cmd_str("GET a"), Value::bulk("1"));
    let mget = ["2", "3", "6", "7"].map(Value::bulk).to_vec();
    assert_eq!(c.cmd_str("MGET b c f g"), Value::Array(Some(mget)));
    assert_eq!(c.cmd_str("HGET h y"), Value::bulk("9"));
    assert!(c.cmd_str("TTL d").as_int().unwrap() > 90);
    assert!(c.cmd_str("PTTL e").as_int().unwrap() > 90_000);
    wait_flushed(&proxy, Duration::from_secs(10));
    assert_eq!((figure(&proxy, "sent"), figure(&proxy, "failed")), (7, 0));
    assert_eq!(
        metric(metrics_port, "percore_background_writes_sent_total"),
        7.0
    );
    assert_eq!(
        metric(metrics_port, "percore_background_writes_failed_total"),
        0.0
    );
    assert_eq!(
        metric(metrics_port, "percore_background_writes_pending"),
        0.0
    );

    // What the reply depends on waits for the server, and MULTI/EXEC stays synchronous.
    pause_writes(&server, PAUSE_MS);
    let (reply, took) = timed(&mut c, "SET a 10 NX");
    assert_eq!(reply, Value::Bulk(None));
    assert!(took >= Duration::from_millis(PAUSE_MS / 2), "{took:?}");
    pause_writes(&server, PAUSE_MS);
    assert_eq!(c.cmd_str("MULTI"), Value::ok());
    assert_eq!(c.cmd_str("SET t 1"), Value::Simple("QUEUED".into()));
    let (reply, took) = timed(&mut c, "EXEC");
    assert_eq!(reply, Value::Array(Some(vec![Value::ok()])));
    assert!(took >= Duration::from_millis(PAUSE_MS / 2), "{took:?}");
    assert_eq!(
        figure(&proxy, "sent"),
        7,
        "none of those was a background write"
    );

    // A write the server refuses after the +OK (WRONGTYPE) is counted and logged.
    assert_eq!(c.cmd_str("HMSET a f v"), Value::ok());
    wait_flushed(&proxy, Duration::from_secs(10));
    assert_eq!(figure(&proxy, "failed"), 1);
    assert_eq!(
        metric(metrics_port, "percore_background_writes_failed_total"),
        1.0
    );
    let log = proxy.log();
    let line = log
        .lines()
        .find(|l| l.contains("background write failed"))
        .unwrap_or_else(|| panic!("no failure logged:\n{log}"));
    assert!(
        line.contains("hmset") && line.contains(&server.port.to_string()),
        "{line}"
    );
    assert!(line.contains("WRONGTYPE"), "{line}");
}

#[test]
fn requests_that_take_another_connection_wait_for_the_client_s_background_writes() {
    let server = RedisServer::start();
    let (proxy, _dir) = start(&server, "", &["--threads", "1"]);
    let mut c = proxy.conn();
    // HELLO 3 moves the client to RESP3 connections: its GET there waits for the SET sent
    // on the RESP2 one (a read is not held by the server's write pause).
    pause_writes(&server, PAUSE_MS);
    assert_eq!(timed(&mut c, "SET p 1").0, Value::ok());
    let _ = c.cmd_str("HELLO 3");
    let (reply, took) = timed(&mut c, "GET p");
    assert_eq!(reply, Value::bulk("1"));
    assert!(took >= Duration::from_millis(PAUSE_MS / 2), "{took:?}");
    // WATCH leases a dedicated connection: it and what goes over it wait likewise.
    pause_writes(&server, PAUSE_MS);
    assert_eq!(timed(&mut c, "SET w 1").0, Value::ok());
    assert_eq!(c.cmd_str("WATCH w"), Value::ok());
    assert_eq!(c.cmd_str("GET w"), Value::bulk("1"));
    assert_eq!(c.cmd_str("MULTI"), Value::ok());
    assert_eq!(c.cmd_str("SET w 2"), Value::Simple("QUEUED".into()));
    assert_eq!(c.cmd_str("EXEC"), Value::Array(Some(vec![Value::ok()])));
    // A watching client's writes are synchronous.
    assert_eq!(c.cmd_str("WATCH w"), Value::ok());
    let before = figure(&proxy, "sent");
    assert_eq!(c.cmd_str("SET w 3"), Value::ok());
    assert_eq!(c.cmd_str("UNWATCH"), Value::ok());
    assert_eq!(figure(&proxy, "sent"), before);
}

#[test]
fn every_client_reads_its_own_writes_on_pinned_connections() {
    let server = RedisServer::start();
    // Four connections per core: without pinning, a GET would often overtake the SET before
    // it on another connection.
    let (proxy, _dir) = start(&server, "  server_connections: 4\n", &["--threads", "2"]);
    let clients: Vec<_> = (0..4)
        .map(|id| {
            let port = proxy.port;
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                for i in 0..STREAM / 4 {
                    let value = format!("{id}-{i}");
                    assert_eq!(c.cmd_str(&format!("SET k{id} {value}")), Value::ok());
                    assert_eq!(c.cmd_str(&format!("GET k{id}")), Value::bulk(&value));
                }
            })
        })
        .collect();
    for client in clients {
        client
            .join()
            .expect("a client read a value older than its own write");
    }
    wait_flushed(&proxy, Duration::from_secs(10));
    assert_eq!(figure(&proxy, "sent"), STREAM as u64);
    assert_eq!(figure(&proxy, "failed"), 0);
}

#[test]
fn at_the_bound_writes_become_synchronous_and_none_is_dropped() {
    let server = RedisServer::start();
    let extra = format!("  async_writes_max_bytes: {MAX_BYTES}\n");
    let (proxy, _dir) = start(&server, &extra, &["--threads", "1"]);
    let mut c = proxy.conn();
    let value = "x".repeat(60);
    let set = |i: usize| format!("SET key:{i:02} {value}");
    let bytes = common::encode(&set(0).split(' ').map(str::as_bytes).collect::<Vec<_>>()).len();
    let fit = MAX_BYTES / bytes;
    pause_writes(&server, PAUSE_MS);
    let took: Vec<Duration> = (0..40)
        .map(|i| {
            let (reply, took) = timed(&mut c, &set(i));
            assert_eq!(reply, Value::ok());
            took
        })
        .collect();
    // As many as fit under the bound are answered at once; the next one waits for the
    // server (the pause), and those after it find the bound free again.
    let waited = took.iter().position(|t| *t >= AT_ONCE);
    assert_eq!(waited, Some(fit), "{took:?}");
    assert!(took[fit] >= Duration::from_millis(PAUSE_MS / 2), "{took:?}");
    assert!(figure(&proxy, "synchronous") >= 1);
    wait_flushed(&proxy, Duration::from_secs(10));
    assert_eq!(server.conn().cmd_str("DBSIZE"), Value::Int(40));
    assert_eq!(figure(&proxy, "failed"), 0);
}

/// Writes `keys` one at a time through `port`, each answered OK.
fn write_keys(port: u16, keys: std::ops::Range<usize>) {
    let mut c = Conn::connect(port);
    for i in keys {
        assert_eq!(c.cmd_str(&format!("SET w{i} {i}")), Value::ok(), "w{i}");
    }
}

/// Which of the keys `w0`.. `w{count-1}` the server lacks.
fn missing(server: &RedisServer, count: usize) -> Vec<usize> {
    let mut c = server.conn();
    let commands: Vec<Vec<Vec<u8>>> = (0..count)
        .map(|i| vec![b"EXISTS".to_vec(), format!("w{i}").into_bytes()])
        .collect();
    let replies = c.pipeline(&commands);
    (0..count)
        .filter(|&i| replies[i] != Value::Int(1))
        .collect()
}

#[test]
fn a_server_killed_mid_stream_and_back_in_time_loses_nothing() {
    let mut server = RedisServer::start_with(DURABLE);
    let (proxy, _dir) = start(&server, "", &["--threads", "1"]);
    let port = proxy.port;
    let writer = std::thread::spawn(move || write_keys(port, 0..STREAM));
    wait_until("writes to flow", Duration::from_secs(20), || {
        server.conn().cmd_str("DBSIZE").as_int().unwrap_or(0) > (STREAM / 3) as i64
    });
    server.kill();
    std::thread::sleep(Duration::from_millis(500));
    server.restart_with(DURABLE);
    writer.join().expect("every write answered OK");
    wait_flushed(&proxy, Duration::from_secs(30));
    let log = proxy.log();
    let failures: Vec<&str> = log.lines().filter(|l| l.contains("failed")).collect();
    assert_eq!(figure(&proxy, "failed"), 0, "{failures:#?}");
    assert_eq!(missing(&server, STREAM), Vec::<usize>::new());
    assert_eq!(figure(&proxy, "sent"), STREAM as u64);
}

#[test]
fn a_server_away_past_the_retry_timeout_lacks_exactly_what_failed() {
    let mut server = RedisServer::start_with(DURABLE);
    let extra = "  async_writes_retry_timeout: 2s\n";
    let (proxy, _dir) = start(&server, extra, &["--threads", "1"]);
    let port = proxy.port;
    let writer = std::thread::spawn(move || write_keys(port, 0..STREAM));
    wait_until("writes to flow", Duration::from_secs(20), || {
        server.conn().cmd_str("DBSIZE").as_int().unwrap_or(0) > (STREAM / 3) as i64
    });
    // Paused, the server runs no more writes and answers those it ran; then it dies with
    // writes sent to it and not run, and the stream goes on while it is away.
    pause_writes(&server, 60_000);
    std::thread::sleep(Duration::from_millis(300));
    server.kill();
    writer.join().expect("every write answered OK");
    wait_flushed(&proxy, Duration::from_secs(30));
    let failed = figure(&proxy, "failed");
    server.restart_with(DURABLE);
    let lacking = missing(&server, STREAM);
    println!("{failed} writes failed, {} missing", lacking.len());
    assert!(failed > 0, "the outage outlasted the retry timeout");
    assert_eq!(
        lacking.len() as u64,
        failed,
        "failed writes are exactly the missing ones"
    );
    assert_eq!(figure(&proxy, "sent") + failed, STREAM as u64);
    // The missing ones are the last ones: every write before them was applied.
    let first = lacking[0];
    assert_eq!(lacking, (first..STREAM).collect::<Vec<_>>());
    assert!(proxy.log().contains("background write failed"));
}

#[test]
fn sigterm_flushes_background_writes_before_exiting() {
    let server = RedisServer::start();
    let (mut proxy, _dir) = start(&server, "", &["--threads", "1"]);
    let mut c = proxy.conn();
    pause_writes(&server, PAUSE_MS);
    for i in 0..100 {
        assert_eq!(c.cmd_str(&format!("SET f{i} {i}")), Value::ok());
    }
    drop(c);
    proxy.signal("-TERM");
    assert_eq!(proxy.wait_exit(Duration::from_secs(15)), Some(0));
    assert_eq!(server.conn().cmd_str("DBSIZE"), Value::Int(100));
    let log = proxy.log();
    assert!(log.contains("background writes flushed"), "{log}");
}

#[test]
fn sigterm_past_the_shutdown_timeout_counts_and_logs_what_was_not_flushed() {
    let server = RedisServer::start();
    let args = ["--threads", "1", "--shutdown-timeout", "500ms"];
    let (mut proxy, _dir) = start(&server, "", &args);
    let mut c = proxy.conn();
    pause_writes(&server, 3000);
    for i in 0..100 {
        assert_eq!(c.cmd_str(&format!("SET f{i} {i}")), Value::ok());
    }
    drop(c);
    proxy.signal("-TERM");
    assert_eq!(proxy.wait_exit(Duration::from_secs(15)), Some(0));
    let log = proxy.log();
    let line = log
        .lines()
        .find(|l| l.contains("background writes not flushed"))
        .unwrap_or_else(|| panic!("nothing logged:\n{log}"));
    assert!(line.contains("unflushed=100"), "{line}");
    // The server never ran them: percore's connection went with the process.
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(server.conn().cmd_str("DBSIZE"), Value::Int(0));
}
