//! Ten thousand concurrent client connections: all are served, and an idle connection costs
//! the proxy little memory (measured from its RSS, reported by the test).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{open_clients, rss_kib, Conn, Proxy, RedisCluster, Value};

const CONNECTIONS: usize = 10_000;

/// Raises this test process's open-file limit so it can hold the client side.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    limit.rlim_cur
}

#[test]
fn ten_thousand_connections() {
    let available = raise_fd_limit();
    assert!(
        available >= (CONNECTIONS + 200) as u64,
        "this machine allows only {available} open files; 10,000 connections need more"
    );
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &["--max-clients", "20000"]);
    let mut control = proxy.conn();
    assert_eq!(control.cmd_str("SET k v"), Value::ok());
    let before = rss_kib(proxy.pid());

    let mut idle: Vec<TcpStream> = (0..CONNECTIONS)
        .map(|_| TcpStream::connect(("127.0.0.1", proxy.port)).expect("connect"))
        .collect();
    // Every connection is accepted and counted before memory is read.
    common::wait_until(
        "all connections accepted",
        std::time::Duration::from_secs(30),
        || {
            let info = control.cmd_str("PROXY INFO").text();
            open_clients(&info) > CONNECTIONS as u64
        },
    );
    let after = rss_kib(proxy.pid());
    let per_connection = (after.saturating_sub(before)) as f64 * 1024.0 / CONNECTIONS as f64;
    eprintln!("{CONNECTIONS} idle connections: RSS {before} KiB -> {after} KiB, {per_connection:.0} bytes each");

    // A sample of them is fully served.
    let mut sample: Vec<Conn> = (0..100).map(|_| proxy.conn()).collect();
    for c in &mut sample {
        assert_eq!(c.cmd_str("GET k"), Value::bulk("v"));
    }
    assert!(
        per_connection <= 16.0 * 1024.0,
        "{per_connection:.0} bytes per idle connection"
    );

    // Every one of them is served: a PING on each, all sent before any reply is read, so
    // thousands of receives complete on each core in a burst.
    for stream in &mut idle {
        stream.write_all(b"PING\r\n").expect("send PING");
    }
    for stream in &mut idle {
        stream
            .set_read_timeout(Some(common::READ_TIMEOUT))
            .expect("set timeout");
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).expect("read PONG");
        assert_eq!(&reply, b"+PONG\r\n");
    }
    drop(idle);
}
