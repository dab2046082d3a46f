//! Static pools over Unix sockets, as nutcracker serves them: percore listening on a socket
//! path with the configured permissions, its servers real redis-servers reached only by their
//! `unixsocket` paths; keys where the real nutcracker puts them on the same file's servers;
//! redis-cli -s and redis-rs as clients; two cores sharing the one socket; a stale socket file
//! replaced, a live one refused, and the file removed on a clean stop.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::nutcracker::Nutcracker;
use common::pool::{flush, placement};
use common::unix::{redis_on_socket, UnixProxy};
use common::{wait_until, Conn, RedisServer, Value};

/// Bound on a percore that must stop (a clean stop drains within its 5 s shutdown timeout).
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// Connections opened per measurement of how the two cores share the socket.
const SPREAD_CONNECTIONS: usize = 200;

/// Threads opening connections at once in the second measurement.
const SPREAD_THREADS: usize = 8;

/// Least share of connections made one after another each of two cores must take: the kernel
/// wakes the cores' accepts in turn, and 100/100 was measured every time; one core first in line
/// every time would take them all.
const MIN_SHARE_IN_TURN: f64 = 0.4;

/// Least share of connections opened at once each core must take. Queued connections go to
/// whichever core accepts next, so a core the OS has not scheduled (this machine's two cores
/// run other builds too) takes fewer: the smaller share measured 11% to 50%. Zero would mean
/// one core never accepts from the shared socket.
const MIN_SHARE_AT_ONCE: f64 = 0.05;

fn pool_yaml(listen: &str, hash: &str, distribution: &str, servers: &[String]) -> String {
    let list: String = servers.iter().map(|s| format!("   - {s}\n")).collect();
    format!(
        "p:\n  listen: {listen}\n  hash: {hash}\n  distribution: {distribution}\n  \
         hash_tag: \"{{}}\"\n  redis: true\n  servers:\n{list}"
    )
}

/// The permission bits of the file at `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("socket file")
        .permissions()
        .mode()
        & 0o777
}

/// SETs `keys` through the proxy on the socket `path`, pipelined.
fn set_all(path: &Path, keys: &[String]) {
    let commands: Vec<Vec<Vec<u8>>> = keys
        .iter()
        .map(|k| vec![b"SET".to_vec(), k.clone().into_bytes(), b"v".to_vec()])
        .collect();
    for reply in Conn::connect_unix(path).pipeline(&commands) {
        assert_eq!(reply, Value::ok());
    }
}

/// `count` redis-servers listening on sockets in `dir`, and their `servers:` lines: the
/// second named and weighted, the others unnamed (ketama then names them by the path and the
/// `:` after it, as nutcracker does).
fn socket_servers(dir: &Path, count: usize) -> (Vec<RedisServer>, Vec<String>) {
    let servers: Vec<RedisServer> = (0..count)
        .map(|i| redis_on_socket(&dir.join(format!("r{i}.sock"))))
        .collect();
    let lines = (0..count)
        .map(|i| {
            let path = dir.join(format!("r{i}.sock"));
            match i {
                1 => format!("{}:2 second", path.display()),
                _ => format!("{}:1", path.display()),
            }
        })
        .collect();
    (servers, lines)
}

#[test]
fn keys_land_where_nutcracker_puts_them_over_unix_sockets() {
    let dir = tempfile::TempDir::new().unwrap();
    let (servers, lines) = socket_servers(dir.path(), 3);
    let keys: Vec<String> = (0..600).map(|i| format!("key:{i}")).collect();
    for (hash, distribution) in [("md5", "ketama"), ("murmur", "modula")] {
        let ours = dir.path().join("percore.sock");
        let theirs = dir.path().join("nut.sock");
        let file = dir.path().join("pool.yml");
        let listen = format!("{} 0666", ours.display());
        std::fs::write(&file, pool_yaml(&listen, hash, distribution, &lines)).unwrap();
        let proxy = UnixProxy::start(&file, &ours, &[]);
        assert_eq!(mode(&ours), 0o666, "permissions as configured");
        let yaml = pool_yaml(&theirs.display().to_string(), hash, distribution, &lines);
        let nutcracker = Nutcracker::start(&yaml, &[]).expect("nutcracker");
        wait_until("nutcracker on its socket", Duration::from_secs(20), || {
            UnixStream::connect(&theirs).is_ok()
        });

        flush(&servers);
        set_all(&ours, &keys);
        let through_percore = placement(&servers);
        flush(&servers);
        set_all(&theirs, &keys);
        let through_nutcracker = placement(&servers);
        assert_eq!(through_percore.len(), keys.len(), "{hash}/{distribution}");
        assert_eq!(through_percore, through_nutcracker, "{hash}/{distribution}");
        let used: std::collections::HashSet<usize> = through_percore.values().copied().collect();
        let mut counts = [0; 3];
        through_percore.values().for_each(|&i| counts[i] += 1);
        println!("{hash}/{distribution}: keys per server {counts:?}");
        assert_eq!(used.len(), 3, "every server takes keys: {counts:?}");
        drop(nutcracker);

        // Split per server over the sockets and merged, in key order.
        let mut c = proxy.conn();
        let mut mget: Vec<&[u8]> = vec![b"MGET"];
        mget.extend(keys[..20].iter().map(|k| k.as_bytes()));
        mget.push(b"missing");
        let Value::Array(Some(values)) = c.cmd(&mget) else {
            panic!("MGET")
        };
        assert!(values[..20].iter().all(|v| *v == Value::bulk("v")));
        assert_eq!(values[20], Value::Bulk(None));
        drop(proxy);
    }
}

/// Each core's `connections_total` from PROXY INFO.
fn accepted_per_core(conn: &mut Conn) -> Vec<u64> {
    let info = conn.cmd_str("PROXY INFO").text();
    info.lines()
        .filter(|l| l.starts_with("core"))
        .filter_map(|l| {
            l.split("connections_total=")
                .nth(1)?
                .split(',')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// The connections each core accepted while `open` ran.
fn spread(path: &Path, open: impl FnOnce()) -> Vec<u64> {
    let mut admin = Conn::connect_unix(path);
    let before = accepted_per_core(&mut admin);
    open();
    let after = accepted_per_core(&mut admin);
    after.iter().zip(&before).map(|(a, b)| a - b).collect()
}

fn assert_shared(what: &str, per_core: &[u64], min_share: f64) {
    println!("{what}: connections per core {per_core:?}");
    assert_eq!(per_core.len(), 2);
    assert_eq!(per_core.iter().sum::<u64>(), SPREAD_CONNECTIONS as u64);
    let least = *per_core.iter().min().unwrap() as f64 / SPREAD_CONNECTIONS as f64;
    assert!(least >= min_share, "{what}: {per_core:?}");
}

fn redis_cli(path: &Path, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-s")
        .arg(path)
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn two_cores_share_a_0600_socket_for_redis_cli_and_redis_rs() {
    let dir = tempfile::TempDir::new().unwrap();
    let (mut servers, lines) = socket_servers(dir.path(), 2);
    let path = dir.path().join("p.sock");
    let file = dir.path().join("pool.yml");
    let listen = format!("{} 0600", path.display());
    std::fs::write(&file, pool_yaml(&listen, "md5", "ketama", &lines)).unwrap();
    let proxy = UnixProxy::start(&file, &path, &["--threads", "2"]);
    assert_eq!(mode(&path), 0o600, "permissions as configured");

    assert_eq!(redis_cli(&path, &["SET", "cli", "1"]), "OK");
    assert_eq!(redis_cli(&path, &["GET", "cli"]), "1");
    assert_eq!(redis_cli(&path, &["PING"]), "PONG");
    let mut c = proxy.conn();
    let server = c.cmd_str("INFO server").text();
    assert!(server.contains("\r\ntcp_port:0\r\n"), "{server}");
    let proxy_info = c.cmd_str("PROXY INFO").text();
    assert!(
        proxy_info.contains(&format!("\r\nlisten:{listen}\r\n")),
        "{proxy_info}"
    );

    let client = redis::Client::open(format!("unix://{}", path.display())).unwrap();
    let mut con = client.get_connection().expect("redis-rs over the socket");
    let keys: Vec<String> = (0..50).map(|i| format!("rs:{i}")).collect();
    for key in &keys {
        let _: () = redis::cmd("SET").arg(key).arg(key).query(&mut con).unwrap();
    }
    let values: Vec<String> = redis::cmd("MGET").arg(&keys).query(&mut con).unwrap();
    assert_eq!(values, keys);
    let on_servers: usize = placement(&servers)
        .keys()
        .filter(|k| k.starts_with("rs:"))
        .count();
    assert_eq!(on_servers, keys.len());

    // One after another: each connection is accepted before the next is made.
    let sequential = spread(&path, || {
        let held: Vec<Conn> = (0..SPREAD_CONNECTIONS)
            .map(|_| {
                let mut c = proxy.conn();
                assert_eq!(c.cmd_str("PING"), Value::Simple("PONG".into()));
                c
            })
            .collect();
        drop(held);
    });
    assert_shared("one after another", &sequential, MIN_SHARE_IN_TURN);
    // At once, from several threads.
    let burst = spread(&path, || {
        std::thread::scope(|scope| {
            for _ in 0..SPREAD_THREADS {
                scope.spawn(|| {
                    let held: Vec<Conn> = (0..SPREAD_CONNECTIONS / SPREAD_THREADS)
                        .map(|_| Conn::connect_unix(&path))
                        .collect();
                    for mut c in held {
                        assert_eq!(c.cmd_str("PING"), Value::Simple("PONG".into()));
                    }
                });
            }
        });
    });
    assert_shared("at once", &burst, MIN_SHARE_AT_ONCE);

    // A server gone from its socket: its keys get an error naming it by its path.
    let gone = dir.path().join("r0.sock");
    let key = placement(&servers)
        .into_iter()
        .find_map(|(key, server)| (server == 0).then_some(key))
        .expect("a key on the first server");
    servers[0].kill();
    let reply = proxy.conn().cmd_str(&format!("GET {key}"));
    assert!(
        reply.is_error() && reply.text().contains(&gone.display().to_string()),
        "{reply:?}"
    );
}

#[test]
fn a_stale_socket_is_replaced_a_live_one_refused_and_a_clean_stop_removes_the_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let (_servers, lines) = socket_servers(dir.path(), 1);
    let path: PathBuf = dir.path().join("p.sock");
    let file = dir.path().join("pool.yml");
    std::fs::write(
        &file,
        pool_yaml(&path.display().to_string(), "md5", "ketama", &lines),
    )
    .unwrap();
    // What a process that died leaves: the socket file, with nothing listening on it.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists() && UnixStream::connect(&path).is_err());

    let mut first = UnixProxy::start(&file, &path, &[]);
    assert_eq!(first.conn().cmd_str("SET k v"), Value::ok());
    assert!(
        first.log().contains("removed a stale socket file"),
        "{}",
        first.log()
    );

    let mut second = UnixProxy::spawn(&file, &path, &[]);
    assert_eq!(second.wait_exit(EXIT_TIMEOUT), Some(1), "{}", second.log());
    let refused = second.log();
    assert!(
        refused.contains(&format!("cannot listen on {}", path.display()))
            && refused.contains("another process is listening on this socket"),
        "{refused}"
    );
    // The refused start took nothing from the running one.
    assert_eq!(first.conn().cmd_str("GET k"), Value::bulk("v"));

    first.terminate();
    assert_eq!(first.wait_exit(EXIT_TIMEOUT), Some(0), "{}", first.log());
    assert!(!path.exists(), "the socket file is removed on a clean stop");

    // Something that is not a socket is never removed.
    std::fs::write(&path, "keep me").unwrap();
    let mut third = UnixProxy::spawn(&file, &path, &[]);
    assert_eq!(third.wait_exit(EXIT_TIMEOUT), Some(1), "{}", third.log());
    assert!(
        third.log().contains("not a socket; not removing it"),
        "{}",
        third.log()
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}

/// `name=value` of a CLIENT INFO line.
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}=");
    line.split(' ')
        .find_map(|f| f.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// What MONITOR shows for a SET from another connection on the socket at `path`.
fn monitored_set(path: &Path) -> String {
    let mut monitor = Conn::connect_unix(path);
    assert_eq!(monitor.cmd_str("MONITOR"), Value::ok());
    assert_eq!(Conn::connect_unix(path).cmd_str("SET m 1"), Value::ok());
    monitor.read_value().text()
}

#[test]
fn unix_socket_clients_show_as_redis_shows_them() {
    let dir = tempfile::TempDir::new().unwrap();
    let (_servers, lines) = socket_servers(dir.path(), 1);
    let path = dir.path().join("p.sock");
    let file = dir.path().join("pool.yml");
    std::fs::write(
        &file,
        pool_yaml(&path.display().to_string(), "md5", "ketama", &lines),
    )
    .unwrap();
    let proxy = UnixProxy::start(&file, &path, &[]);
    let server_path = dir.path().join("r0.sock");
    for (socket, who) in [(&server_path, "redis-server"), (&path, "percore")] {
        let info = Conn::connect_unix(socket).cmd_str("CLIENT INFO").text();
        let shown = format!("{}:0", socket.display());
        assert_eq!(field(&info, "addr"), shown, "{who}: {info}");
        assert_eq!(field(&info, "laddr"), shown, "{who}: {info}");
        assert_eq!(field(&info, "flags"), "U", "{who}: {info}");
        let line = monitored_set(socket);
        let origin = format!("[0 unix:{}] \"SET\" \"m\" \"1\"", socket.display());
        assert!(
            line.to_lowercase().ends_with(&origin.to_lowercase()),
            "{who}: {line}"
        );
    }
    // CLIENT KILL ADDR takes the address as shown (the monitors above may still be there).
    let mut victim = proxy.conn();
    assert_eq!(victim.cmd_str("PING"), Value::Simple("PONG".into()));
    let kill = format!("CLIENT KILL ADDR {}:0 SKIPME yes", path.display());
    let killed = proxy.conn().cmd_str(&kill);
    assert!(killed.as_int().is_some_and(|n| n >= 1), "{killed:?}");
    victim.expect_closed();
}
