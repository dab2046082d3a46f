//! What a static (twemproxy) pool answers where a cluster would speak of slots: a command
//! that cannot be split, with keys on two servers; a transaction over two servers; CLUSTER;
//! sharded pub/sub. Every answer is an error worded for a pool of standalone servers (never
//! CROSSSLOT, MOVED, a slot number or a cluster's topology), and the connection stays
//! usable. The real nutcracker, for comparison, closes the connection without a reply for
//! each command it does not serve (checked here too), and sends the ones it does serve to the
//! first key's server.

mod common;

use std::collections::HashSet;

use common::nutcracker::{free_ports, Nutcracker};
use common::{encode, Conn, Proxy, RedisServer, Value};

/// percore's reply to a command that cannot be split, with keys on two servers.
const CROSS_SERVER: &str = "-ERR percore: the keys of this command are on different servers \
     of the pool, and it cannot be split across servers (with a hash_tag in the pool's \
     configuration, keys sharing a tag are on one server)\r\n";

/// percore's EXEC reply to a transaction over two servers.
const CROSS_SERVER_EXEC: &str = "-ERR percore: the transaction touches keys on different \
     servers of the pool, so no server can run it atomically; nothing ran (with a hash_tag in \
     the pool's configuration, keys sharing a tag are on one server)\r\n";

const NOT_A_CLUSTER: &str = "-ERR percore: 'cluster' is not supported (this pool's servers \
     are standalone, not a Redis Cluster; nutcracker does not serve it either)\r\n";

fn sharded(command: &str) -> String {
    format!(
        "-ERR percore: '{command}' is not supported (sharded channels belong to a Redis \
         Cluster; a static pool serves SUBSCRIBE and PUBLISH)\r\n"
    )
}

fn pool_yaml(port: u16, servers: &[RedisServer]) -> String {
    let list: String = servers
        .iter()
        .enumerate()
        .map(|(i, s)| format!("   - 127.0.0.1:{}:1 s{i}\n", s.port))
        .collect();
    format!(
        "errors:\n  listen: 127.0.0.1:{port}\n  hash: md5\n  distribution: ketama\n  \
         hash_tag: \"{{}}\"\n  redis: true\n  servers:\n{list}"
    )
}

/// Two keys that `port`'s pool puts on different servers: written through it, found on them.
fn keys_on_two_servers(port: u16, servers: &[RedisServer]) -> (String, String) {
    let mut c = Conn::connect(port);
    let mut first: Option<(String, usize)> = None;
    for i in 0..100 {
        let key = format!("k{i}");
        assert_eq!(c.cmd_str(&format!("SET {key} 1")), Value::ok());
        let on = servers
            .iter()
            .position(|s| s.conn().cmd_str(&format!("EXISTS {key}")) == Value::Int(1))
            .expect("on a server");
        match &first {
            None => first = Some((key, on)),
            Some((a, at)) if *at != on => return (a.clone(), key),
            Some(_) => {}
        }
    }
    panic!("100 keys on one server");
}

fn raw(c: &mut Conn, line: &str) -> String {
    c.send_raw(&encode(
        &line.split(' ').map(str::as_bytes).collect::<Vec<_>>(),
    ));
    String::from_utf8_lossy(&c.read_raw_reply()).into_owned()
}

#[test]
fn commands_over_two_servers_and_cluster_commands_get_pool_worded_errors() {
    let servers: Vec<RedisServer> = (0..2).map(|_| RedisServer::start()).collect();
    let taken: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    let [port, nut_port]: [u16; 2] = free_ports(2, &taken).try_into().unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("errors.yml");
    std::fs::write(&file, pool_yaml(port, &servers)).unwrap();
    let proxy = Proxy::start_with_args(port, &["-c", file.to_str().unwrap()]);
    let (a, b) = keys_on_two_servers(port, &servers);
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str(&format!("SADD {a}:set m")), Value::Int(1));

    let cross = [
        format!("RENAME {a} {b}"),
        format!("SMOVE {a} {b} m"),
        format!("SUNIONSTORE {a} {b}"),
        format!("EVAL return 2 {a} {b}"),
        format!("MSETNX {a} 1 {b} 2"),
        format!("LMOVE {a} {b} LEFT RIGHT"),
        format!("BLPOP {a} {b} 1"),
        format!("WATCH {a} {b}"),
    ];
    for line in &cross {
        assert_eq!(raw(&mut c, line), CROSS_SERVER, "{line}");
    }
    // Split commands still work across servers.
    assert_eq!(c.cmd_str(&format!("EXISTS {a} {b}")), Value::Int(2));
    // A transaction over two servers: queued, then refused whole at EXEC, nothing run.
    assert_eq!(c.cmd_str("MULTI"), Value::ok());
    assert_eq!(
        c.cmd_str(&format!("SET {a} x")),
        Value::Simple("QUEUED".into())
    );
    assert_eq!(
        c.cmd_str(&format!("SET {b} x")),
        Value::Simple("QUEUED".into())
    );
    assert_eq!(raw(&mut c, "EXEC"), CROSS_SERVER_EXEC);
    assert_eq!(c.cmd_str(&format!("GET {a}")), Value::bulk("1"));
    // One command over two servers inside MULTI: refused as it is queued, EXEC aborts.
    assert_eq!(c.cmd_str("MULTI"), Value::ok());
    assert_eq!(raw(&mut c, &format!("RENAME {a} {b}")), CROSS_SERVER);
    assert_eq!(
        raw(&mut c, "EXEC"),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    for line in [
        "CLUSTER INFO",
        "CLUSTER SLOTS",
        "CLUSTER NODES",
        "CLUSTER KEYSLOT k",
    ] {
        assert_eq!(raw(&mut c, line), NOT_A_CLUSTER, "{line}");
    }
    assert_eq!(raw(&mut c, "CLUSTER COUNTKEYSINSLOT 1"), NOT_A_CLUSTER);
    assert_eq!(raw(&mut c, "SSUBSCRIBE ch"), sharded("ssubscribe"));
    assert_eq!(raw(&mut c, "SPUBLISH ch m"), sharded("spublish"));
    // HELLO does not call the pool a cluster either.
    let hello = raw(&mut c, "HELLO 2");
    assert!(!hello.contains("cluster"), "{hello}");
    // Nor does INFO, which some clients read to choose cluster mode.
    let info = c.cmd_str("INFO server cluster").text();
    assert!(info.contains("\r\nredis_mode:standalone\r\n"), "{info}");
    assert!(info.contains("\r\ncluster_enabled:0\r\n"), "{info}");
    assert_eq!(c.cmd_str("PING"), Value::Simple("PONG".into()));

    // nutcracker closes the connection, without a reply, for each command it does not serve.
    let _nutcracker = Nutcracker::start(&pool_yaml(nut_port, &servers), &[nut_port]).unwrap();
    let unserved = [
        format!("RENAME {a} {b}"),
        format!("MSETNX {a} 1 {b} 2"),
        format!("BLPOP {a} {b} 1"),
        format!("WATCH {a} {b}"),
        "MULTI".to_string(),
        "CLUSTER INFO".to_string(),
        "SELECT 1".to_string(),
    ];
    for line in &unserved {
        let mut n = Conn::connect(nut_port);
        n.send_raw(&encode(
            &line.split(' ').map(str::as_bytes).collect::<Vec<_>>(),
        ));
        n.expect_closed();
    }
}

#[test]
fn a_server_down_fails_each_request_with_its_connect_error_and_one_back_serves_at_once() {
    let mut servers: Vec<RedisServer> = (0..2).map(|_| RedisServer::start()).collect();
    let taken: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    let port = free_ports(1, &taken)[0];
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("errors.yml");
    std::fs::write(&file, pool_yaml(port, &servers)).unwrap();
    let proxy = Proxy::start_with_args(port, &["-c", file.to_str().unwrap(), "--threads", "1"]);
    let (a, b) = keys_on_two_servers(port, &servers);
    let mut c = proxy.conn();
    // The server drops percore's connection: the next request reconnects and is served, as
    // through nutcracker, instead of failing while a reconnect backoff runs.
    let on_a = servers
        .iter()
        .position(|s| s.conn().cmd_str(&format!("EXISTS {a}")) == Value::Int(1))
        .unwrap();
    for _ in 0..3 {
        let killed = servers[on_a]
            .conn()
            .cmd_str("CLIENT KILL TYPE normal SKIPME yes");
        assert!(killed.as_int().is_some_and(|n| n >= 1), "{killed:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(c.cmd_str(&format!("GET {a}")), Value::bulk("1"));
    }
    // Down: each request tries the server again and fails with why, naming it.
    let down_port = servers[on_a].port;
    servers[on_a].kill();
    for _ in 0..2 {
        let Value::Error(error) = c.cmd_str(&format!("GET {a}")) else {
            panic!("GET on a server that is down")
        };
        assert!(
            error.contains(&format!("127.0.0.1:{down_port}")) && error.contains("refused"),
            "{error}"
        );
    }
    assert_eq!(c.cmd_str(&format!("GET {b}")), Value::bulk("1"));
}
