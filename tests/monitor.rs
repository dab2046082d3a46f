//! MONITOR: a line for every request the proxy receives, from both cores, in Redis's exact
//! format; several monitors; a monitor that leaves stops being fed; one that stops reading
//! costs bounded memory (lines dropped and counted, or the output limit disconnects it).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{rss_kib, wait_until, Conn, Proxy, RedisCluster, Value, READ_TIMEOUT};

/// The core serving a connection: core `c` of 2 hands out client ids `c + 1`, `c + 3`, ...
fn core_of(conn: &mut Conn) -> i64 {
    (conn.cmd_str("CLIENT ID").as_int().expect("CLIENT ID") - 1) % 2
}

/// Opens connections until `each` of them are on each of the 2 cores; returns them with
/// their core.
fn on_both_cores(proxy: &Proxy, each: usize) -> Vec<(Conn, i64)> {
    let mut conns: Vec<(Conn, i64)> = Vec::new();
    for _ in 0..200 {
        let on = |core| conns.iter().filter(|(_, c)| *c == core).count();
        if on(0) >= each && on(1) >= each {
            break;
        }
        let mut conn = proxy.conn();
        let core = core_of(&mut conn);
        if on(core) < each {
            conns.push((conn, core));
        }
    }
    assert_eq!(
        conns.len(),
        2 * each,
        "SO_REUSEPORT put no connection on one core"
    );
    conns
}

/// The connection's address as the proxy sees it.
fn addr_of(conn: &mut Conn) -> String {
    let info = conn.cmd_str("CLIENT INFO").text();
    info.split(' ')
        .find_map(|field| field.strip_prefix("addr="))
        .expect("addr= in CLIENT INFO")
        .to_string()
}

/// A MONITOR line split into the client's address and the quoted arguments, after checking
/// the parts Redis formats exactly: `<10 digits>.<6 digits> [0 <addr>] <args>`.
fn split_line(line: &str) -> (String, String) {
    let (time, rest) = line.split_once(" [0 ").expect("a monitor line");
    let (secs, micros) = time.split_once('.').expect("seconds.micros");
    assert!(
        secs.len() == 10 && secs.bytes().all(|b| b.is_ascii_digit()),
        "{line}"
    );
    assert!(
        micros.len() == 6 && micros.bytes().all(|b| b.is_ascii_digit()),
        "{line}"
    );
    let (addr, args) = rest.split_once("] ").expect("] after the address");
    (addr.to_string(), args.to_string())
}

/// The next MONITOR line on a RESP2 connection.
fn next_line(monitor: &mut Conn) -> String {
    match monitor.read_value() {
        Value::Simple(line) => line,
        other => panic!("expected a monitor line, got {other:?}"),
    }
}

/// Reads lines until every client of `addrs` has sent `wanted` lines; returns each one's
/// lines (arguments only), in the order they came.
fn lines_by_client(monitor: &mut Conn, addrs: &[String], wanted: usize) -> Vec<Vec<String>> {
    let mut seen = vec![Vec::new(); addrs.len()];
    while seen.iter().any(|lines| lines.len() < wanted) {
        let (addr, args) = split_line(&next_line(monitor));
        if let Some(index) = addrs.iter().position(|a| *a == addr) {
            seen[index].push(args);
        }
    }
    seen
}

/// `field=value` of each `core<N>:` line of PROXY INFO.
fn per_core(proxy: &Proxy, field: &str) -> Vec<u64> {
    let report = proxy.conn().cmd_str("PROXY INFO").text();
    report
        .lines()
        .filter(|l| l.starts_with("core"))
        .map(|l| {
            l.split(&[':', ','][..])
                .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("{field} in {l}"))
        })
        .collect()
}

#[test]
fn a_monitor_sees_every_core_in_order_in_redis_format() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut clients = on_both_cores(&proxy, 2);
    let addrs: Vec<String> = clients.iter_mut().map(|(c, _)| addr_of(c)).collect();
    let mut monitor = proxy.conn();
    let monitor_addr = addr_of(&mut monitor);
    assert_eq!(monitor.cmd_str("MONITOR"), Value::ok());

    for (i, (client, _)) in clients.iter_mut().enumerate() {
        for j in 0..5 {
            assert_eq!(
                client.cmd_str(&format!("SET mon:{i}:{j} v{j}")),
                Value::ok()
            );
        }
        // Not shown, as in Redis: unknown commands and admin commands.
        assert!(client.cmd_str("NOPE x").is_error());
        assert!(!client.cmd_str("CONFIG GET maxmemory").is_error());
        // Shown with the secret hidden, and binary arguments quoted as Redis quotes them.
        assert!(client.cmd_str("AUTH secret").is_error());
        let value = b"a\x00\"b\\\n\xff";
        assert_eq!(client.cmd(&[b"SET", b"mon:bin", value]), Value::ok());
    }
    let seen = lines_by_client(&mut monitor, &addrs, 7);
    for (i, lines) in seen.iter().enumerate() {
        let mut expected: Vec<String> = (0..5)
            .map(|j| format!("\"SET\" \"mon:{i}:{j}\" \"v{j}\""))
            .collect();
        expected.push("\"AUTH\" \"(redacted)\"".into());
        expected.push(r#""SET" "mon:bin" "a\x00\"b\\\n\xff""#.into());
        assert_eq!(lines, &expected, "client {i}");
    }

    // The monitor's own requests: it may ping and is shown, it may not touch keys, and a
    // second MONITOR gets no reply at all.
    assert_eq!(monitor.cmd_str("PING"), Value::Simple("PONG".into()));
    assert_eq!(
        split_line(&next_line(&mut monitor)),
        (monitor_addr.clone(), "\"PING\"".into())
    );
    assert_eq!(
        monitor.cmd_str("GET k"),
        Value::Error("ERR Replica can't interact with the keyspace".into())
    );
    monitor.send_raw(&common::encode(&[b"MONITOR"]));
    assert_eq!(monitor.cmd_str("ECHO after"), Value::bulk("after"));
    assert_eq!(
        split_line(&next_line(&mut monitor)),
        (monitor_addr.clone(), "\"ECHO\" \"after\"".into())
    );
    let info = monitor.cmd_str("CLIENT INFO").text();
    assert!(info.contains(" flags=O "), "a monitor is flagged O: {info}");
    next_line(&mut monitor);
    assert_eq!(monitor.cmd_str("QUIT"), Value::ok());
    monitor.expect_closed();
}

#[test]
fn monitors_on_both_cores_get_every_line_until_they_leave() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut clients = on_both_cores(&proxy, 1);
    let addrs: Vec<String> = clients.iter_mut().map(|(c, _)| addr_of(c)).collect();
    let mut first = proxy.conn();
    let first_core = core_of(&mut first);
    assert_eq!(first.cmd_str("MONITOR"), Value::ok());
    // The second, on the other core, speaks RESP3: Redis sends it the same simple strings.
    let mut second = Resp3Monitor::on_core(proxy.port, 1 - first_core);
    assert_eq!(per_core(&proxy, "monitors"), [2, 2]);
    for (i, (client, _)) in clients.iter_mut().enumerate() {
        assert_eq!(client.cmd_str(&format!("GET both:{i}")), Value::Bulk(None));
    }
    let expected: Vec<Vec<String>> = (0..2)
        .map(|i| vec![format!("\"GET\" \"both:{i}\"")])
        .collect();
    assert_eq!(lines_by_client(&mut first, &addrs, 1), expected);
    let mut seen = vec![Vec::new(); 2];
    while seen.iter().any(Vec::is_empty) {
        let line = second.next_line();
        let (addr, args) = split_line(&line);
        if let Some(index) = addrs.iter().position(|a| *a == addr) {
            seen[index].push(args);
        }
    }
    assert_eq!(seen, expected);

    // The RESP3 monitor leaves: every core forgets it, and the other is still fed.
    drop(second);
    wait_until("every core to forget the monitor", READ_TIMEOUT, || {
        per_core(&proxy, "monitors") == [1, 1]
    });
    assert_eq!(clients[1].0.cmd_str("GET both:after"), Value::Bulk(None));
    assert_eq!(
        lines_by_client(&mut first, &addrs[1..], 1),
        [vec!["\"GET\" \"both:after\"".to_string()]]
    );
    drop(first);
    wait_until("every core to stop monitoring", READ_TIMEOUT, || {
        per_core(&proxy, "monitors") == [0, 0]
    });
}

/// A monitor that speaks RESP3, on its own socket (the test client reads RESP2 only).
struct Resp3Monitor(BufReader<TcpStream>);

impl Resp3Monitor {
    /// Connects until a connection lands on `core`; then HELLO 3 and MONITOR.
    fn on_core(port: u16, core: i64) -> Resp3Monitor {
        for _ in 0..200 {
            let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            let mut monitor = Resp3Monitor(BufReader::new(stream));
            monitor.send(b"CLIENT ID\r\n");
            let id: i64 = monitor.read_line()[1..].parse().expect("CLIENT ID");
            if (id - 1) % 2 != core {
                continue;
            }
            monitor.send(b"HELLO 3\r\n");
            // The HELLO map ends with its `modules` array, empty.
            while monitor.read_line() != "*0" {}
            monitor.send(b"MONITOR\r\n");
            assert_eq!(monitor.read_line(), "+OK");
            return monitor;
        }
        panic!("no connection landed on core {core}");
    }

    fn send(&mut self, bytes: &[u8]) {
        self.0.get_mut().write_all(bytes).expect("write");
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.0
            .read_line(&mut line)
            .expect("a line within the timeout");
        line.strip_suffix("\r\n").expect("a CRLF line").to_string()
    }

    /// The next MONITOR line: a simple string in RESP3 as in RESP2.
    fn next_line(&mut self) -> String {
        let line = self.read_line();
        line.strip_prefix('+')
            .unwrap_or_else(|| panic!("a simple string: {line}"))
            .to_string()
    }
}

/// Floods the proxy with SETs of `size`-byte values, `count` of them, pipelined.
fn flood(conn: &mut Conn, count: usize, size: usize) {
    let value = vec![b'x'; size];
    for batch in 0..count / 50 {
        let commands: Vec<Vec<Vec<u8>>> = (0..50)
            .map(|i| {
                let key = format!("flood:{}", batch * 50 + i);
                vec![b"SET".to_vec(), key.into_bytes(), value.clone()]
            })
            .collect();
        for reply in conn.pipeline(&commands) {
            assert_eq!(reply, Value::ok());
        }
    }
}

#[test]
fn a_monitor_that_stops_reading_costs_bounded_memory() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let mut monitor = proxy.conn();
    assert_eq!(monitor.cmd_str("MONITOR"), Value::ok());
    let mut client = proxy.conn();
    flood(&mut client, 200, 16 * 1024);
    let before = rss_kib(proxy.pid());
    // 64 MiB of lines for a monitor that reads none of them.
    flood(&mut client, 4000, 16 * 1024);
    let grown = rss_kib(proxy.pid()).saturating_sub(before);
    println!(
        "the proxy grew by {grown} KiB; dropped {:?}",
        per_core(&proxy, "monitor_dropped")
    );
    assert!(grown < 32 * 1024, "the proxy grew by {grown} KiB");
    let dropped: u64 = per_core(&proxy, "monitor_dropped").iter().sum();
    assert!(dropped > 0, "lines were dropped and counted");

    // The monitor is still there: once it has caught up, new lines reach it again (those
    // sent while it is still behind are dropped, so the marker is sent until one is seen).
    let seen = Arc::new(AtomicBool::new(false));
    let marker = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            while !seen.load(Ordering::Relaxed) {
                assert_eq!(client.cmd_str("GET flood:marker"), Value::Bulk(None));
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    while !next_line(&mut monitor).ends_with("\"GET\" \"flood:marker\"") {}
    seen.store(true, Ordering::Relaxed);
    marker.join().unwrap();
}

/// Rounds of 32 MB of requests the non-reading monitor's test sends at most.
const FLOOD_ROUNDS: usize = 10;

#[test]
fn the_output_limit_disconnects_a_monitor_that_stops_reading() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--max-output-buffer", "1000000"]);
    let mut monitor = proxy.conn();
    let core_of = |conn: &mut Conn| conn.cmd_str("CLIENT ID").as_int().expect("an id") % 2;
    let monitor_core = core_of(&mut monitor);
    assert_eq!(monitor.cmd_str("MONITOR"), Value::ok());
    // The flooding client on the monitor's own core (ids of core c of 2 are c + 1, c + 3, ...):
    // lines from the other core cross a bounded channel that drops them when full, so they
    // need not pile up in the monitor's output at all, and the limit would not be reached.
    let mut client = (0..64)
        .map(|_| proxy.conn())
        .find_map(|mut c| (core_of(&mut c) == monitor_core).then_some(c))
        .expect("a connection on the monitor's core");
    // The kernel's socket buffers hold megabytes before percore's own output grows, and a
    // loaded machine's flusher runs late (each flush carries at most its batch limit), so
    // flood until percore has cut the monitor off, in bounded rounds.
    for _ in 0..FLOOD_ROUNDS {
        flood(&mut client, 2000, 16 * 1024);
        if per_core(&proxy, "monitors") == [0, 0] {
            break;
        }
    }
    monitor.expect_closed();
    wait_until("every core to forget the monitor", READ_TIMEOUT, || {
        per_core(&proxy, "monitors") == [0, 0]
    });
}
