//! Sidecar mode, local listeners: one percore next to the application serving two pools, one
//! on a Unix socket and one on localhost, each to its own redis-server; with `preconnect:
//! true` every core's server connections are up before the pool listens, they are kept
//! across any number of short-lived clients (the server sees no new connection), and they
//! come back by themselves, without a client asking, after the server is killed and restarted.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::nutcracker::free_ports;
use common::unix::UnixProxy;
use common::{wait_until, Conn, RedisServer, Value};

/// Cores percore runs on here.
const THREADS: usize = 2;
/// Shared connections each core opens to each server (`server_connections`).
const SERVER_CONNECTIONS: usize = 2;
/// One-shot client connections made through each pool.
const SHORT_LIVED_CLIENTS: usize = 50;
/// Bound on the connections coming back after the server restarts: the reconnect backoff is
/// at most 1 s, and the server takes a moment to start.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A field of the server's INFO, read on `conn` (a connection of the test's own, kept so
/// that reading does not count as a connection).
fn info_field(conn: &mut Conn, field: &str) -> i64 {
    let info = conn.cmd_str("INFO").text();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in INFO:\n{info}"))
}

/// Clients connected to the server, apart from the test's own `conn`.
fn others_connected(conn: &mut Conn) -> i64 {
    info_field(conn, "connected_clients") - 1
}

#[test]
fn preconnected_connections_are_up_before_listening_kept_and_remade() {
    let mut unix_server = RedisServer::start();
    let tcp_server = RedisServer::start();
    let taken: HashSet<u16> = [unix_server.port, tcp_server.port].into();
    let tcp_port = free_ports(1, &taken)[0];
    let dir = tempfile::TempDir::new().unwrap();
    let socket = dir.path().join("app.sock");
    let file = dir.path().join("sidecar.yml");
    let yaml = format!(
        "local:\n  listen: {} 0666\n  redis: true\n  preconnect: true\n  server_connections: \
         {SERVER_CONNECTIONS}\n  servers:\n   - 127.0.0.1:{}:1\n\
         loopback:\n  listen: 127.0.0.1:{tcp_port}\n  redis: true\n  preconnect: true\n  \
         servers:\n   - 127.0.0.1:{}:1\n",
        socket.display(),
        unix_server.port,
        tcp_server.port
    );
    std::fs::write(&file, yaml).unwrap();
    let threads = THREADS.to_string();
    let proxy = UnixProxy::start(&file, &socket, &["--threads", &threads]);
    let mut watch_unix = unix_server.conn();
    let mut watch_tcp = tcp_server.conn();
    // Listening means connected: every core's connections were up before its listener.
    let expected = (THREADS * SERVER_CONNECTIONS) as i64;
    assert_eq!(
        others_connected(&mut watch_unix),
        expected,
        "{}",
        proxy.log()
    );
    wait_until(
        "the loopback pool to listen",
        Duration::from_secs(10),
        || std::net::TcpStream::connect(("127.0.0.1", tcp_port)).is_ok(),
    );
    assert_eq!(others_connected(&mut watch_tcp), THREADS as i64);
    assert!(proxy.log().contains("preconnected"), "{}", proxy.log());

    // Short-lived clients share the kept connections: the servers see none of them.
    let accepted_unix = info_field(&mut watch_unix, "total_connections_received");
    let accepted_tcp = info_field(&mut watch_tcp, "total_connections_received");
    for i in 0..SHORT_LIVED_CLIENTS {
        let mut unix = proxy.conn();
        assert_eq!(unix.cmd_str(&format!("SET u{i} {i}")), Value::ok());
        let mut tcp = Conn::connect(tcp_port);
        assert_eq!(tcp.cmd_str(&format!("SET t{i} {i}")), Value::ok());
    }
    let accepted = info_field(&mut watch_unix, "total_connections_received");
    assert_eq!(accepted, accepted_unix);
    let accepted = info_field(&mut watch_tcp, "total_connections_received");
    assert_eq!(accepted, accepted_tcp);
    // Each pool wrote to its own server only.
    assert_eq!(watch_unix.cmd_str("DBSIZE").as_int(), Some(50));
    assert_eq!(watch_tcp.cmd_str("DBSIZE").as_int(), Some(50));
    assert_eq!(watch_unix.cmd_str("EXISTS t0").as_int(), Some(0));
    assert_eq!(watch_tcp.cmd_str("EXISTS u0").as_int(), Some(0));

    // The server dies and comes back: the connections are remade with no client asking.
    unix_server.kill();
    unix_server.restart();
    let mut watch_unix = unix_server.conn();
    wait_until("the connections to come back", RECONNECT_TIMEOUT, || {
        others_connected(&mut watch_unix) == expected
    });
    let mut unix = proxy.conn();
    assert_eq!(unix.cmd_str("SET after 1"), Value::ok());
    assert_eq!(watch_unix.cmd_str("GET after"), Value::bulk("1"));
}
