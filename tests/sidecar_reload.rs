//! Background writes (`async_writes: true`) across a reload that changes a static pool's
//! servers: each core places keys over the new list only once the background writes
//! acknowledged under the old one are answered (writes are synchronous meanwhile), so a key
//! that moved has its earlier write on the server it was on and its later ones on the new
//! one, never the other way round; a write retried past the reload (its server answered
//! `-LOADING`) never reaches the server that took its server's place, it is counted failed; a
//! removed server that is down has its writes counted failed, none left waiting; and a
//! one-server pool moved to another server closes every connection to the old one, those of
//! the databases its clients selected too.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::nutcracker::free_ports;
use common::pool::{flush, placement};
use common::sidecar::{background, wait_flushed, File};
use common::{command_calls, wait_until, Conn, Proxy, RedisServer, Value};

/// How long a server is paused for writes where a test needs writes held back.
const PAUSE_MS: u64 = 2000;
/// Keys written by each test.
const KEYS: usize = 200;
/// Longest the background writes of a test may take to be answered or given up.
const FLUSHED: Duration = Duration::from_secs(30);
/// redis-server options that keep every write it ran across a kill -9.
const DURABLE: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];
/// What the log says on each core once keys are placed over a reload's new server list.
const PLACED: &str = "keys placed over the new server list";
/// A redis-server's reply while it loads its data after a restart.
const LOADING: &[u8] = b"-LOADING Redis is loading the dataset in memory\r\n";

/// A pool `p` on `port` with background writes over `servers` (`host:port:weight`), with
/// `extra` pool keys (each line indented by two spaces). Keys are hashed with md5: the
/// default fnv1a_64 can put every one of a test's few similar keys on one server.
fn pool(port: u16, servers: &[String], extra: &str) -> String {
    let list: String = servers.iter().map(|s| format!("   - {s}\n")).collect();
    format!(
        "p:\n  listen: 127.0.0.1:{port}\n  redis: true\n  hash: md5\n  async_writes: true\n\
         {extra}  servers:\n{list}"
    )
}

/// The server at `port` as a `servers:` entry of weight `weight`.
fn entry(port: u16, weight: u32) -> String {
    format!("127.0.0.1:{port}:{weight}")
}

/// percore, with `args`, on a free port (none of `taken`) and the file `yaml` makes for it.
fn start(taken: &[u16], yaml: impl Fn(u16) -> String, args: &[&str]) -> (Proxy, File) {
    let port = free_ports(1, &taken.iter().copied().collect::<HashSet<_>>())[0];
    let file = File::new(&yaml(port));
    let mut all = vec!["-c", file.arg(), "--log-level", "info"];
    all.extend(args);
    (Proxy::start_with_args(port, &all), file)
}

/// The test's keys.
fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("k{i}")).collect()
}

/// SETs each of `keys` to `value` through `c`, one at a time, each answered `+OK`.
fn write_all(c: &mut Conn, keys: &[String], value: &str) {
    for key in keys {
        let reply = c.cmd(&[b"SET", key.as_bytes(), value.as_bytes()]);
        assert_eq!(reply, Value::ok(), "SET {key}");
    }
}

/// SETs each of `keys` to `value` through `port`, each on a connection of its own (a write
/// set aside to be sent again holds its client's next requests until it is answered).
fn write_each(port: u16, keys: &[String], value: &str) {
    for key in keys {
        write_all(&mut Conn::connect(port), std::slice::from_ref(key), value);
    }
}

/// Pauses `server`'s writes for `ms`.
fn pause_writes(server: &RedisServer, ms: u64) {
    let pause = format!("CLIENT PAUSE {ms} WRITE");
    assert_eq!(server.conn().cmd_str(&pause), Value::ok());
}

/// Waits until each of the `cores` has placed keys over the reload's new server list.
fn wait_placed(proxy: &Proxy, cores: usize) {
    wait_until(
        "every core to place keys over the new servers",
        FLUSHED,
        || proxy.log().matches(PLACED).count() >= cores,
    );
}

/// `key`'s value on `conn` (a server's), `None` if it has none.
fn value(conn: &mut Conn, key: &str) -> Option<String> {
    conn.cmd(&[b"GET", key.as_bytes()])
        .as_bulk()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[test]
fn keys_move_to_the_new_servers_once_the_writes_placed_before_them_are_answered() {
    let servers = [RedisServer::start(), RedisServer::start()];
    let (a, b) = (servers[0].port, servers[1].port);
    let before = |port| pool(port, &[entry(a, 1), entry(b, 1)], "");
    // B's weight up: ketama moves some of A's keys to B, and none of B's to A.
    let after = |port| pool(port, &[entry(a, 1), entry(b, 3)], "");
    let (proxy, file) = start(&[a, b], before, &["--threads", "2"]);
    let port = proxy.port;
    let keys = keys();
    let mut c = proxy.conn();
    write_all(&mut c, &keys, "probe");
    wait_flushed(port, FLUSHED);
    let was = placement(&servers);
    flush(&servers);

    // A holds its writes: those of its keys wait when the reload comes.
    pause_writes(&servers[0], PAUSE_MS);
    write_all(&mut c, &keys, "old");
    assert!(background(port, "pending") > 0, "A's writes wait");
    file.reload(&after(port), port);
    // Meanwhile the old list places keys, and writes are synchronous.
    let synchronous = background(port, "synchronous");
    assert_eq!(c.cmd_str("SET during:reload 1"), Value::ok());
    assert_eq!(background(port, "synchronous"), synchronous + 1);
    wait_placed(&proxy, 2);
    assert_eq!(
        background(port, "pending"),
        0,
        "the new list waited for every write placed before it"
    );
    let log = proxy.log();
    assert!(log.contains("placing keys over them once"), "{log}");

    write_all(&mut c, &keys, "new");
    wait_flushed(port, FLUSHED);
    for key in &keys {
        assert_eq!(
            c.cmd(&[b"GET", key.as_bytes()]),
            Value::bulk("new"),
            "{key}"
        );
    }
    // A key that moved has its old value on A and its new one on B; one that stayed has its
    // new one on A; B's keys stayed. No "old" ever reached B.
    let (mut on_a, mut on_b) = (servers[0].conn(), servers[1].conn());
    let (mut moved, mut stayed) = (0, 0);
    for key in &keys {
        let now = (value(&mut on_a, key), value(&mut on_b, key));
        let (old, new) = (Some("old".to_string()), Some("new".to_string()));
        match was[key] {
            0 if now.1.is_some() => {
                assert_eq!(now, (old, new), "{key} moved to B");
                moved += 1;
            }
            0 => {
                assert_eq!(now, (new, None), "{key} stayed on A");
                stayed += 1;
            }
            _ => assert_eq!(now, (None, new), "{key} stayed on B"),
        }
    }
    assert!(moved > 0 && stayed > 0, "moved {moved}, stayed {stayed}");
    assert_eq!(background(port, "failed"), 0);
}

#[test]
fn writes_for_a_server_removed_while_it_is_down_are_counted_failed_and_none_left_waiting() {
    let mut servers = [RedisServer::start_with(DURABLE), RedisServer::start()];
    let (a, b) = (servers[0].port, servers[1].port);
    let extra = "  async_writes_retry_timeout: 3s\n";
    let before = |port| pool(port, &[entry(a, 1), entry(b, 1)], extra);
    let args = ["--threads", "1", "--shutdown-timeout", "1s"];
    let (proxy, file) = start(&[a, b], before, &args);
    let port = proxy.port;
    let keys = keys();
    // A runs none of its writes: paused, then killed with them sent and unanswered.
    pause_writes(&servers[0], 60_000);
    write_all(&mut proxy.conn(), &keys, "v");
    std::thread::sleep(Duration::from_millis(300));
    servers[0].kill();
    let waiting = background(port, "pending");
    assert!(waiting > 0, "A's writes wait");
    file.reload(&pool(port, &[entry(b, 1)], extra), port);
    wait_flushed(port, FLUSHED);

    let failed = background(port, "failed");
    assert_eq!(
        failed, waiting,
        "every write waiting for A is counted failed"
    );
    assert_eq!(background(port, "sent") + failed, KEYS as u64);
    servers[0].restart_with(DURABLE);
    let placed = placement(&servers);
    let missing = keys.iter().filter(|k| !placed.contains_key(*k)).count();
    assert_eq!(missing as u64, failed, "what failed is what no server has");
    assert!(placed.values().all(|&s| s == 1), "A ran none: {placed:?}");
    assert!(proxy.log().contains("background write failed"));
}

/// A server that answers every command `-LOADING`, as a redis-server reading its data after
/// a restart does; it runs in threads of its own until the test process ends. Its port.
fn loading_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer_loading(stream));
        }
    });
    port
}

/// Answers each request `stream` sends with [`LOADING`], until it closes.
fn answer_loading(mut stream: TcpStream) {
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        while let Some(len) = request_len(&buf) {
            buf.drain(..len);
            if stream.write_all(LOADING).is_err() {
                return;
            }
        }
    }
}

/// The length of the first request in `buf` (an array of bulk strings), once all there.
fn request_len(buf: &[u8]) -> Option<usize> {
    // The number after a line's type byte, and where the next line starts.
    let line = |at: usize| -> Option<(usize, usize)> {
        let end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        let number = std::str::from_utf8(buf.get(at + 1..end)?).ok()?;
        Some((number.parse().ok()?, end + 2))
    };
    let (count, mut at) = line(0)?;
    for _ in 0..count {
        let (len, next) = line(at)?;
        at = next + len + 2;
    }
    (at <= buf.len()).then_some(at)
}

#[test]
fn a_write_retried_past_a_reload_never_reaches_the_server_that_took_its_server_s_place() {
    let loading = loading_server();
    let servers = [RedisServer::start(), RedisServer::start()];
    let (b, c) = (servers[0].port, servers[1].port);
    // Named servers place keys by their names, not their addresses: the keys of the server
    // named `first` are C's once C has that name.
    let extra = "  async_writes_retry_timeout: 3s\n";
    let named = |port: u16, name: &str| format!("{} {name}", entry(port, 1));
    let before = |port| pool(port, &[named(loading, "first"), named(b, "second")], extra);
    let args = ["--threads", "1", "--shutdown-timeout", "500ms"];
    let (proxy, file) = start(&[loading, b, c], before, &args);
    let port = proxy.port;
    let keys = keys();
    write_each(port, &keys, "old");
    // B answers its writes; the loading server's wait.
    wait_until("B's writes to be answered", FLUSHED, || {
        let on_b = servers[0].conn().cmd_str("DBSIZE").as_int().unwrap_or(0) as u64;
        background(port, "sent") == on_b && background(port, "pending") == KEYS as u64 - on_b
    });
    let on_b: HashSet<String> = placement(&servers[..1]).into_keys().collect();
    let first: Vec<String> = keys
        .iter()
        .filter(|k| !on_b.contains(*k))
        .cloned()
        .collect();
    assert!(!first.is_empty(), "some keys are on the loading server");
    assert_eq!(background(port, "pending"), first.len() as u64);

    let after = pool(port, &[named(c, "first"), named(b, "second")], extra);
    file.reload(&after, port);
    wait_placed(&proxy, 1);
    write_each(port, &first, "new");
    wait_flushed(port, FLUSHED);
    // C got the writes acknowledged after the reload, and not one of those before it.
    assert_eq!(command_calls(c, "set"), first.len() as u64);
    let mut on_c = servers[1].conn();
    for key in &first {
        assert_eq!(value(&mut on_c, key).as_deref(), Some("new"), "{key}");
    }
    assert_eq!(background(port, "failed"), first.len() as u64);
    let log = proxy.log();
    assert!(log.contains("background write failed"), "{log}");
}

#[test]
fn a_one_server_pool_moved_to_another_server_closes_every_connection_to_the_old_one() {
    let servers = [RedisServer::start(), RedisServer::start()];
    let (a, b) = (servers[0].port, servers[1].port);
    let (proxy, file) = start(
        &[a, b],
        |port| pool(port, &[entry(a, 1)], ""),
        &["--threads", "1"],
    );
    let port = proxy.port;
    let mut c = proxy.conn();
    assert_eq!(c.cmd_str("SELECT 5"), Value::ok());
    assert_eq!(c.cmd_str("SET x 1"), Value::ok());
    assert_eq!(c.cmd_str("GET x"), Value::bulk("1"));
    pause_writes(&servers[0], PAUSE_MS);
    assert_eq!(c.cmd_str("SET y 2"), Value::ok());
    file.reload(&pool(port, &[entry(b, 1)], ""), port);
    wait_placed(&proxy, 1);
    assert_eq!(c.cmd_str("SET z 3"), Value::ok());
    assert_eq!(c.cmd_str("GET z"), Value::bulk("3"));
    wait_flushed(port, FLUSHED);

    let on_db = |server: &RedisServer, db: u32| {
        let mut conn = server.conn();
        assert_eq!(conn.cmd_str(&format!("SELECT {db}")), Value::ok());
        let Value::Array(Some(keys)) = conn.cmd_str("KEYS *") else {
            panic!("KEYS")
        };
        let mut keys: Vec<String> = keys.iter().map(Value::text).collect();
        keys.sort();
        keys
    };
    assert_eq!(on_db(&servers[0], 5), ["x", "y"]);
    assert_eq!(on_db(&servers[1], 5), ["z"]);
    assert_eq!(on_db(&servers[1], 0), Vec::<String>::new());
    wait_until("percore to close its connections to A", FLUSHED, || {
        let clients = servers[0].conn().cmd_str("CLIENT LIST").text();
        let percore: Vec<&str> = clients
            .lines()
            .filter(|l| !l.contains("cmd=client|list"))
            .collect();
        percore.is_empty()
    });
    assert_eq!(background(port, "failed"), 0);
}
