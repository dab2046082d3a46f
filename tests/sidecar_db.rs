//! SELECT without waste, in a pool of one standalone server: clients use the server's
//! databases as on the server; percore answers SELECT itself (after Redis's own checks) and
//! keeps one connection per database it needs, selected once when it is opened, so the
//! server's `cmdstat_select` counts databases, not requests. Keys written in db 3 through
//! percore are in db 3 on the server, through the shared connections, a transaction, WATCH
//! and blocking commands alike; two clients on two databases interleave without seeing each
//! other's keys; SCAN, RANDOMKEY, DBSIZE, CLIENT LIST and RESET follow the client's database.
//! A RESP3 client of database 5 with background writes gets its `+OK`s at once and reads them
//! back in RESP3, and the server's database 5 has them.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::nutcracker::free_ports;
use common::{Conn, Proxy, RedisServer, Value};

/// Writes each client makes, far more than the SELECTs the server may see.
const WRITES: usize = 200;
/// Longest a reply percore gives itself (a background write's `+OK`) may take on this busy
/// machine: far below the server's 1.5 s write pause, so a faster reply did not wait for it.
const AT_ONCE: Duration = Duration::from_millis(700);

/// A one-server pool on `port`, with `extra` pool keys.
fn start(server: &RedisServer, extra: &str) -> (Proxy, tempfile::TempDir) {
    let port = free_ports(1, &HashSet::from([server.port]))[0];
    let dir = tempfile::TempDir::new().unwrap();
    let file = dir.path().join("one.yml");
    let yaml = format!(
        "one:\n  listen: 127.0.0.1:{port}\n  redis: true\n{extra}  servers:\n   - 127.0.0.1:{}:1\n",
        server.port
    );
    std::fs::write(&file, yaml).unwrap();
    let file = file.to_str().unwrap().to_string();
    let proxy = Proxy::start_with_args(port, &["-c", &file, "--threads", "1"]);
    (proxy, dir)
}

/// A connection to the server on database `db`, as `redis-cli -n db`.
fn on_db(server: &RedisServer, db: u32) -> Conn {
    let mut conn = server.conn();
    assert_eq!(conn.cmd_str(&format!("SELECT {db}")), Value::ok());
    conn
}

/// The raw reply to `line`.
fn raw(conn: &mut Conn, line: &str) -> String {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    conn.send_raw(&common::encode(&args));
    String::from_utf8(conn.read_raw_reply()).unwrap()
}

/// The `calls` of `cmdstat_select` in the server's INFO commandstats (0 if none).
fn select_calls(server: &RedisServer) -> u64 {
    common::command_calls(server.port, "select")
}

/// The `db=` of each client connected to the server (its own connections left out).
fn server_client_dbs(server: &RedisServer) -> Vec<u32> {
    let mut conn = server.conn();
    let list = conn.cmd_str("CLIENT LIST").text();
    let own = conn.cmd_str("CLIENT ID").as_int().unwrap();
    list.lines()
        .filter(|line| !line.starts_with(&format!("id={own} ")))
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("db=")))
        .map(|db| db.parse().unwrap())
        .collect()
}

#[test]
fn clients_use_every_database_and_each_connection_selects_once() {
    let server = RedisServer::start();
    let (proxy, _dir) = start(&server, "");
    let mut a = proxy.conn();
    let mut b = proxy.conn();
    let mut zero = proxy.conn();
    assert_eq!(zero.cmd_str("SET plain 0"), Value::ok());
    assert_eq!(server.conn().cmd_str("CONFIG RESETSTAT"), Value::ok());

    assert_eq!(raw(&mut a, "SELECT 3"), "+OK\r\n");
    assert_eq!(raw(&mut b, "SELECT 5"), "+OK\r\n");
    // Interleaved, each on its own database.
    for i in 0..WRITES {
        assert_eq!(a.cmd_str(&format!("SET k{i} a{i}")), Value::ok());
        assert_eq!(b.cmd_str(&format!("SET k{i} b{i}")), Value::ok());
        if i % 50 == 0 {
            assert_eq!(
                a.cmd_str(&format!("GET k{i}")),
                Value::bulk(&format!("a{i}"))
            );
            assert_eq!(
                b.cmd_str(&format!("GET k{i}")),
                Value::bulk(&format!("b{i}"))
            );
            assert_eq!(zero.cmd_str(&format!("GET k{i}")), Value::Bulk(None));
        }
    }
    // A transaction without WATCH goes on the database's shared connection.
    assert_eq!(a.cmd_str("MULTI"), Value::ok());
    assert_eq!(a.cmd_str("SET tx 1"), Value::Simple("QUEUED".into()));
    assert_eq!(a.cmd_str("EXEC"), Value::Array(Some(vec![Value::ok()])));
    // SCAN, RANDOMKEY, DBSIZE, KEYS and MGET see the client's database.
    assert_eq!(a.cmd_str("DBSIZE"), Value::Int(WRITES as i64 + 1));
    assert_eq!(zero.cmd_str("DBSIZE"), Value::Int(1));
    let Value::Array(Some(page)) = a.cmd_str("SCAN 0 COUNT 1000") else {
        panic!("SCAN")
    };
    let Value::Array(Some(keys)) = &page[1] else {
        panic!("SCAN keys")
    };
    assert_eq!(keys.len(), WRITES + 1);
    assert!(b.cmd_str("RANDOMKEY").text().starts_with('k'));
    assert_eq!(zero.cmd_str("RANDOMKEY"), Value::bulk("plain"));
    let mget = Value::Array(Some(vec![Value::bulk("a1"), Value::bulk("1")]));
    assert_eq!(a.cmd_str("MGET k1 tx"), mget);
    // CLIENT LIST shows each client's database.
    let list = a.cmd_str("CLIENT LIST").text();
    let id = a.cmd_str("CLIENT ID").as_int().unwrap();
    let own = list
        .lines()
        .find(|line| line.starts_with(&format!("id={id} ")))
        .unwrap();
    assert!(own.contains(" db=3 "), "{own}");

    // On the server: one SELECT per database used (one core, one connection each), not one
    // per request, and each key in its database.
    assert_eq!(select_calls(&server), 2);
    assert_eq!(on_db(&server, 3).cmd_str("GET k7"), Value::bulk("a7"));
    assert_eq!(on_db(&server, 5).cmd_str("GET k7"), Value::bulk("b7"));
    assert_eq!(on_db(&server, 3).cmd_str("GET tx"), Value::bulk("1"));
    assert_eq!(on_db(&server, 0).cmd_str("EXISTS k7"), Value::Int(0));
    let selects = select_calls(&server);
    let mut dbs = server_client_dbs(&server);
    dbs.sort_unstable();
    assert_eq!(
        dbs,
        [0, 3, 5],
        "the pool's connection and one per other database"
    );

    // SELECT is checked as Redis checks it, and answered by percore.
    assert_eq!(
        raw(&mut a, "SELECT 16"),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        raw(&mut a, "SELECT -1"),
        "-ERR DB index is out of range\r\n"
    );
    let not_an_integer = "-ERR value is not an integer or out of range\r\n";
    assert_eq!(raw(&mut a, "SELECT 03"), not_an_integer);
    assert_eq!(raw(&mut a, "SELECT x"), not_an_integer);
    assert_eq!(a.cmd_str("GET k1"), Value::bulk("a1"), "still on db 3");
    // Back to 0, and a new SELECT of 3 costs the server nothing.
    assert_eq!(raw(&mut a, "SELECT 0"), "+OK\r\n");
    assert_eq!(a.cmd_str("GET plain"), Value::bulk("0"));
    assert_eq!(raw(&mut a, "SELECT 3"), "+OK\r\n");
    assert_eq!(a.cmd_str("GET k1"), Value::bulk("a1"));
    assert_eq!(select_calls(&server), selects);
    // RESET puts the client back on the pool's database.
    assert_eq!(a.cmd_str("RESET"), Value::Simple("RESET".into()));
    assert_eq!(a.cmd_str("GET plain"), Value::bulk("0"));
}

#[test]
fn watch_and_blocking_commands_run_on_connections_of_the_client_s_database() {
    let server = RedisServer::start();
    let (proxy, _dir) = start(&server, "");
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SELECT 3"), Value::ok());
    // WATCH twice: the second lease is the first one cleaned with RESET and selected again.
    for round in 0..2 {
        assert_eq!(c.cmd_str("WATCH watched"), Value::ok());
        assert!(!c.cmd_str("GET watched").is_error());
        assert_eq!(c.cmd_str("MULTI"), Value::ok());
        let set = format!("SET watched {round}");
        assert_eq!(c.cmd_str(&set), Value::Simple("QUEUED".into()));
        assert_eq!(c.cmd_str("EXEC"), Value::Array(Some(vec![Value::ok()])));
        // Given up (UNWATCH after WATCH): the lease is reset, then selects 3 again.
        assert_eq!(c.cmd_str("WATCH other"), Value::ok());
        assert_eq!(c.cmd_str("UNWATCH"), Value::ok());
    }
    assert_eq!(c.cmd_str("RPUSH list a"), Value::Int(1));
    let popped = Value::Array(Some(vec![Value::bulk("list"), Value::bulk("a")]));
    assert_eq!(c.cmd_str("BLPOP list 1"), popped);
    // A blocked client served by a push from another client on the same database.
    let mut pusher = proxy.conn();
    assert_eq!(pusher.cmd_str("SELECT 3"), Value::ok());
    c.send_raw(&common::encode(&[b"BLPOP", b"later", b"5"]));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(pusher.cmd_str("RPUSH later x"), Value::Int(1));
    let popped = Value::Array(Some(vec![Value::bulk("later"), Value::bulk("x")]));
    assert_eq!(c.read_value(), popped);
    assert_eq!(on_db(&server, 3).cmd_str("GET watched"), Value::bulk("1"));
    assert_eq!(on_db(&server, 0).cmd_str("DBSIZE"), Value::Int(0));
    // A watch lives on one database's connection.
    assert_eq!(c.cmd_str("WATCH watched"), Value::ok());
    assert_eq!(c.cmd_str("SELECT 4"), Value::ok());
    let refused = c.cmd_str("WATCH elsewhere").text();
    assert!(
        refused.contains("WATCH keys must all be in one database"),
        "{refused}"
    );
    assert_eq!(c.cmd_str("UNWATCH"), Value::ok());
}

#[test]
fn a_pool_with_a_redis_db_starts_there_and_selects_any_other() {
    let server = RedisServer::start();
    let (proxy, _dir) = start(&server, "  redis_db: 2\n  databases: 8\n");
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SET start 2"), Value::ok());
    assert_eq!(c.cmd_str("SELECT 0"), Value::ok());
    assert_eq!(c.cmd_str("SET zero 0"), Value::ok());
    assert_eq!(c.cmd_str("SELECT 2"), Value::ok());
    assert_eq!(c.cmd_str("GET start"), Value::bulk("2"));
    assert_eq!(raw(&mut c, "SELECT 8"), "-ERR DB index is out of range\r\n");
    assert_eq!(raw(&mut c, "SELECT 7"), "+OK\r\n");
    // The pool's connection selected 2 once; the one for database 0 needed no SELECT, and
    // none was sent to it; nothing was sent in 7 yet.
    assert_eq!(select_calls(&server), 1);
    assert_eq!(on_db(&server, 2).cmd_str("GET start"), Value::bulk("2"));
    assert_eq!(on_db(&server, 0).cmd_str("GET zero"), Value::bulk("0"));
}

#[test]
fn resp3_clients_write_in_the_background_to_the_database_they_selected() {
    let server = RedisServer::start();
    let (proxy, _dir) = start(&server, "  async_writes: true\n");
    let mut c = proxy.conn();
    let hello = raw(&mut c, "HELLO 3");
    assert!(hello.starts_with('%'), "{hello}");
    assert_eq!(raw(&mut c, "SELECT 5"), "+OK\r\n");
    // The server holds its writes: each +OK is percore's, given before the write runs.
    assert_eq!(
        server.conn().cmd_str("CLIENT PAUSE 1500 WRITE"),
        Value::ok()
    );
    let started = Instant::now();
    for write in ["SET a 1", "HMSET h f v", "MSET b 2 c 3", "SETEX e 100 4"] {
        assert_eq!(raw(&mut c, write), "+OK\r\n", "{write}");
    }
    assert!(
        started.elapsed() < AT_ONCE,
        "{:?}: not in the background",
        started.elapsed()
    );
    // Read behind them, on database 5's RESP3 connection.
    assert_eq!(raw(&mut c, "GET a"), "$1\r\n1\r\n");
    assert_eq!(raw(&mut c, "HGETALL h"), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert_eq!(
        raw(&mut c, "MGET a b c nope"),
        "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n_\r\n"
    );
    let ttl = raw(&mut c, "TTL e");
    assert!(ttl == ":100\r\n" || ttl == ":99\r\n", "{ttl}");
    common::sidecar::wait_flushed(proxy.port, Duration::from_secs(10));
    assert_eq!(common::sidecar::background(proxy.port, "sent"), 4);
    assert_eq!(common::sidecar::background(proxy.port, "failed"), 0);
    // The server's database 5 has them, and its database 0 nothing.
    let mut five = on_db(&server, 5);
    assert_eq!(five.cmd_str("DBSIZE"), Value::Int(5));
    assert_eq!(five.cmd_str("HGET h f"), Value::bulk("v"));
    assert_eq!(on_db(&server, 0).cmd_str("DBSIZE"), Value::Int(0));
    // Nothing came that was not a reply: no push frame.
    assert_eq!(c.try_read_raw_reply(Duration::from_millis(200)), None);
}
