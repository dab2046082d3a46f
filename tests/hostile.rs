//! Hostile and broken clients: huge declared bulks never sent, many half-sent requests at
//! once, pipelines abandoned before reading, and connection bursts. The proxy must keep
//! serving others, and its memory and open files must return to their baseline.

mod common;

use std::time::Duration;

use common::{open_clients, rss_kib, wait_until, Conn, Proxy, RedisCluster, Value};

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn hostile_clients_do_not_hurt_the_proxy() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let pid = proxy.pid();
    let mut bystander = proxy.conn();
    // Warm up so buffers that stay (per-core state, connections to masters) exist already.
    for i in 0..1000 {
        bystander.cmd_str(&format!("SET warm:{i} x"));
    }
    let rss_before = rss_kib(pid);
    let fds_before = open_fds(pid);

    // 300 connections each declaring a bulk just under the 512 MiB limit and sending a little.
    let mut holders = Vec::new();
    for _ in 0..300 {
        let mut c = proxy.conn();
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870000\r\npartial");
        holders.push(c);
    }
    assert_eq!(bystander.cmd_str("PING"), Value::Simple("PONG".into()));
    let rss_holding = rss_kib(pid);
    assert!(
        rss_holding < rss_before + 300 * 1024,
        "300 half-sent huge bulks cost {} KiB",
        rss_holding - rss_before
    );
    drop(holders);

    // A bulk over the limit is refused at once.
    let mut over = proxy.conn();
    over.send_raw(b"*2\r\n$3\r\nGET\r\n$1073741824\r\n");
    assert_eq!(
        over.read_raw_reply(),
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    over.expect_closed();

    // Pipelines of thousands of commands, abandoned before reading any reply.
    for round in 0..20 {
        let mut c = proxy.conn();
        let mut wire = Vec::new();
        for i in 0..2000 {
            wire.extend(common::encode(&[
                b"SET",
                format!("ab:{round}:{i}").as_bytes(),
                b"v",
            ]));
        }
        c.send_raw(&wire);
    }

    // Slowloris: 50 clients each trickling one request a byte at a time. Others are served
    // at full speed meanwhile, and each slow request is answered once complete.
    let port = proxy.port;
    let slow: Vec<_> = (0..50)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Conn::connect(port);
                let request = common::encode(&[b"SET", format!("slow:{i}").as_bytes(), b"v"]);
                for byte in request {
                    c.send_raw(&[byte]);
                    std::thread::sleep(Duration::from_millis(20));
                }
                c.read_value()
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for _ in 0..200 {
        let started = std::time::Instant::now();
        assert_eq!(bystander.cmd_str("GET warm:1"), Value::bulk("x"));
        slowest = slowest.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }
    for thread in slow {
        assert_eq!(thread.join().expect("slow client"), Value::ok());
    }
    // A stall behind the slow clients would last seconds; scheduling noise on a busy
    // 2-core machine stays well under this bound.
    assert!(
        slowest < Duration::from_millis(500),
        "bystander slowed to {slowest:?}"
    );

    // A burst of 2,000 connections opened and closed.
    for _ in 0..2000 {
        drop(Conn::connect(proxy.port));
    }
    assert_eq!(bystander.cmd_str("GET warm:7"), Value::bulk("x"));

    // Everything returns to the baseline: clients gone, files closed, memory back.
    let port = proxy.port;
    wait_until("clients to be released", Duration::from_secs(20), || {
        let info = common::try_cmd(port, "PROXY INFO")
            .map(|v| v.text())
            .unwrap_or_default();
        open_clients(&info) <= 2
    });
    wait_until(
        "open files back to baseline",
        Duration::from_secs(20),
        || open_fds(pid) <= fds_before + 2,
    );
    // Freed memory goes back to the system within a few seconds (the proxy trims every 5 s).
    let mut rss_after = rss_kib(pid);
    wait_until(
        "RSS back near its baseline",
        Duration::from_secs(15),
        || {
            rss_after = rss_kib(pid);
            rss_after < rss_before + 4 * 1024
        },
    );
    assert_eq!(bystander.cmd_str("GET warm:999"), Value::bulk("x"));
    eprintln!("rss before {rss_before} KiB, holding {rss_holding} KiB, after {rss_after} KiB; fds before {fds_before}, after {}", open_fds(pid));
}

/// A script can make a node return a reply nested thousands deep. percore frames it without
/// recursion and forwards it byte for byte, in RESP2 and RESP3; the shared connection it came
/// on, and every other client waiting on it, are unaffected.
#[test]
fn a_reply_nested_thousands_deep_is_forwarded_and_harms_no_one() {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let script: &[u8] = b"local t = {1} for i = 1, 5000 do t = {t} end return t";
    let key = "{deep}k";
    let node = cluster.master_for_slot(common::slot_of(key));
    let mut direct = Conn::connect(node);
    for hello in [&b"2"[..], b"3"] {
        let mut c = proxy.conn();
        let mut other = proxy.conn();
        let eval = common::encode(&[b"EVAL", script, b"1", key.as_bytes()]);
        for conn in [&mut c, &mut direct] {
            conn.send_raw(&common::encode(&[b"HELLO", hello]));
            conn.read_raw_reply();
            conn.send_raw(&eval);
        }
        // Another client's request queued behind it on the same backend connection.
        other.send_raw(&common::encode(&[b"SET", key.as_bytes(), b"after"]));
        let expected = direct.read_raw_reply();
        assert!(expected.starts_with(b"*1\r\n*1\r\n") && expected.len() > 20_000);
        assert_eq!(c.read_raw_reply(), expected, "RESP{}", hello[0] as char);
        assert_eq!(other.read_value(), Value::ok());
        assert_eq!(c.cmd(&[b"GET", key.as_bytes()]), Value::bulk("after"));
    }
    assert!(!proxy.log().contains("bad reply"), "{}", proxy.log());
}
