//! Reloading the configuration file (`PROXY CONFIG RELOAD`, SIGHUP) while clients pipeline
//! through the pools that stay: a static pool's servers changed (keys then land where the real
//! nutcracker puts them under the new list), a pool added, a pool removed (it stops listening
//! and its clients are closed), a user's password rotated, the backend password rotated; not
//! one request of a pool that stays fails. A cluster pool's read policy and lag bound change
//! where its reads go. An invalid file changes nothing and says why.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::nutcracker::{free_ports, Nutcracker};
use common::pool::{flush, placement, set_all};
use common::{
    command_calls, key_on_each_master, try_cmd, wait_until, Conn, Proxy, RedisCluster, RedisServer,
    Value,
};
use tempfile::TempDir;

/// How long a reload may take to show (a pool added listening, one removed gone).
const RELOADED: Duration = Duration::from_secs(10);
/// Bound on a load client's run, whatever happens to the test around it.
const LOAD_AT_MOST: Duration = Duration::from_secs(120);
/// SET/GET pairs per pipelined round of a load client.
const PAIRS: usize = 16;
/// Keys each load client cycles over.
const LOAD_KEYS: u64 = 500;

/// A static pool of the test's file: fnv1a_64 over ketama with `{}` hash tags, as nutcracker
/// files are written; `extra` is more keys, each line indented by two spaces.
fn pool(name: &str, port: u16, servers: &[String], extra: &str) -> String {
    let list: String = servers.iter().map(|s| format!("   - {s}\n")).collect();
    format!(
        "{name}:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  \
         hash_tag: \"{{}}\"\n  redis: true\n{extra}  servers:\n{list}\n"
    )
}

/// `server` as a `servers:` entry of weight `weight`.
fn entry(server: &RedisServer, weight: u32) -> String {
    format!("127.0.0.1:{}:{weight}", server.port)
}

/// The configuration file of a test, in a temp dir of its own.
struct File {
    _dir: TempDir,
    path: PathBuf,
}

impl File {
    fn new(text: &str) -> File {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("percore.yml");
        std::fs::write(&path, text).unwrap();
        File { _dir: dir, path }
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.path, text).unwrap();
    }

    fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

/// Tries at most this many sets of free ports to start percore on: a port found free can be
/// taken by a server another test starts before percore binds it.
const START_ATTEMPTS: usize = 5;

/// Starts percore on the file `yaml` makes of `N` free ports (none in `taken`), whose first
/// `listening` are the pools it starts with; waits until each answers. Tries other ports when
/// percore cannot bind one.
fn start<const N: usize>(
    taken: &HashSet<u16>,
    listening: usize,
    yaml: impl Fn([u16; N]) -> String,
) -> (Proxy, File, [u16; N]) {
    for _ in 0..START_ATTEMPTS {
        let ports: [u16; N] = free_ports(N, taken).try_into().expect("free ports");
        let file = File::new(&yaml(ports));
        let args = ["-c", file.arg(), "--log-level", "debug"];
        let Some(mut proxy) = Proxy::try_start_with_args(ports[0], &args) else {
            continue;
        };
        let deadline = Instant::now() + RELOADED;
        let up = |port: u16| try_cmd(port, "PING").is_some();
        while !ports[..listening].iter().all(|&p| up(p)) && proxy.is_running() {
            assert!(
                Instant::now() < deadline,
                "percore did not listen:\n{}",
                proxy.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
        if proxy.is_running() {
            return (proxy, file, ports);
        }
    }
    panic!("percore did not start in {START_ATTEMPTS} tries");
}

/// `PROXY INFO` of the pool at `port` (after `AUTH auth` if given).
fn proxy_info(port: u16, auth: Option<&str>) -> String {
    let mut c = Conn::connect(port);
    if let Some(auth) = auth {
        assert_eq!(c.cmd_str(&format!("AUTH {auth}")), Value::ok());
    }
    c.cmd_str("PROXY INFO").text()
}

/// The value of `key:` in an INFO-style text.
fn field(info: &str, key: &str) -> String {
    let prefix = format!("{key}:");
    let line = info.lines().find(|l| l.starts_with(&prefix));
    let line = line.unwrap_or_else(|| panic!("no {key} in\n{info}"));
    line[prefix.len()..].trim().to_string()
}

/// Each core's `config_epoch=` in `PROXY INFO`'s `# Cores` lines.
fn core_epochs(info: &str) -> Vec<u64> {
    let cores = info.lines().filter(|l| l.starts_with("core"));
    let epochs = cores.filter_map(|l| l.split(",config_epoch=").nth(1)?.split(',').next());
    epochs.map(|n| n.parse().expect("a number")).collect()
}

/// What one load client did.
#[derive(Debug, Default)]
struct Load {
    requests: u64,
    failures: Vec<String>,
}

/// A client pipelining SET then GET of the same key on `port` until `stop` (or
/// [`LOAD_AT_MOST`]); every reply checked. `exact`: the GET must give what the SET just wrote
/// (a pool whose servers do not change); else (a pool whose servers change under it, where the
/// SET may go to the old server and the GET to the new one) a GET may also find nothing.
fn load(
    port: u16,
    auth: Option<&'static str>,
    id: usize,
    exact: bool,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> JoinHandle<Load> {
    thread::spawn(move || {
        let mut c = Conn::connect(port);
        if let Some(auth) = auth {
            assert_eq!(c.cmd_str(&format!("AUTH {auth}")), Value::ok());
        }
        let mut result = Load::default();
        let deadline = Instant::now() + LOAD_AT_MOST;
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let mut commands = Vec::with_capacity(2 * PAIRS);
            let mut values = Vec::with_capacity(PAIRS);
            for i in 0..PAIRS as u64 {
                let key = format!("load:{id}:{}", (round * PAIRS as u64 + i) % LOAD_KEYS);
                let value = format!("{round}:{i}");
                commands.push(vec![
                    b"SET".to_vec(),
                    key.clone().into_bytes(),
                    value.clone().into_bytes(),
                ]);
                commands.push(vec![b"GET".to_vec(), key.into_bytes()]);
                values.push(value);
            }
            let replies = c.pipeline(&commands);
            for (pair, value) in replies.chunks(2).zip(&values) {
                let got = &pair[1];
                let fine = pair[0] == Value::ok()
                    && (*got == Value::bulk(value) || (!exact && *got == Value::Bulk(None)));
                if !fine {
                    result
                        .failures
                        .push(format!("round {round}: {pair:?}, wrote {value}"));
                }
            }
            result.requests += replies.len() as u64;
            done.fetch_add(replies.len() as u64, Ordering::Relaxed);
            round += 1;
        }
        result
    })
}

/// Sums the load clients' work; a client that panicked (its connection closed, say) counts as
/// a failure with its message.
fn finish(clients: Vec<JoinHandle<Load>>) -> Load {
    let mut total = Load::default();
    for client in clients {
        match client.join() {
            Ok(load) => {
                total.requests += load.requests;
                total.failures.extend(load.failures);
            }
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
                total.failures.push(format!("client died: {text:?}"));
            }
        }
    }
    total
}

/// Waits until the load clients have sent `more` requests beyond `from`.
fn wait_for_load(done: &AtomicU64, more: u64) {
    let from = done.load(Ordering::Relaxed);
    wait_until("the load clients to make progress", LOAD_AT_MOST, || {
        done.load(Ordering::Relaxed) >= from + more
    });
}

/// Client connections a server has other than the one asking (percore's backends, here).
fn connections_but_mine(server: &RedisServer) -> usize {
    let list = server.conn().cmd_str("CLIENT LIST").text();
    list.lines()
        .filter(|l| !l.contains("cmd=client|list"))
        .count()
}

/// Where the keys of `keys` land through nutcracker serving `yaml` (listening on `port`),
/// over `servers`, which are flushed first.
fn nutcracker_placement(
    yaml: &str,
    port: u16,
    servers: &[RedisServer],
    keys: &[String],
) -> std::collections::HashMap<String, usize> {
    let nutcracker = Nutcracker::start(yaml, &[port]).expect("nutcracker");
    flush(servers);
    set_all(port, keys);
    let placed = placement(servers);
    drop(nutcracker);
    placed
}

#[test]
fn reload_under_load_fails_no_request_of_a_pool_that_stays() {
    let servers: Vec<RedisServer> = (0..5).map(|_| RedisServer::start()).collect();
    let taken: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    let third_list = [
        entry(&servers[2], 1),
        entry(&servers[3], 2),
        entry(&servers[4], 1),
    ];
    // The file, as each step has it.
    let text = |[steady, moving, doomed, fresh, _]: [u16; 5], step: usize| {
        let steady_pool = |password: &str| {
            let users =
                format!("  requirepass: admin-pw\n  users:\n   - app on >{password} ~* +@all\n");
            let list = [entry(&servers[0], 1), entry(&servers[1], 1)];
            pool("steady", steady, &list, &users)
        };
        let moving_pool = |list: &[String]| pool("moving", moving, list, "");
        let fresh_pool = pool("fresh", fresh, &[entry(&servers[1], 1)], "");
        let pools = match step {
            1 => format!(
                "{}{}{}",
                steady_pool("old"),
                moving_pool(&[entry(&servers[2], 1), entry(&servers[3], 1)]),
                pool("doomed", doomed, &[entry(&servers[0], 1)], ""),
            ),
            2 => format!(
                "{}{}{fresh_pool}",
                steady_pool("new"),
                moving_pool(&[entry(&servers[3], 2), entry(&servers[4], 1)]),
            ),
            _ => format!(
                "{}{}{fresh_pool}",
                steady_pool("new"),
                moving_pool(&third_list)
            ),
        };
        format!("percore:\n  threads: 2\n\n{pools}")
    };
    let (proxy, file, ports) = start(&taken, 3, |ports| text(ports, 1));
    let [steady, moving, doomed, fresh, nut] = ports;
    let info = proxy_info(moving, None);
    assert_eq!(field(&info, "config_epoch"), "1", "{info}");
    assert_eq!(field(&info, "config_file"), file.arg());
    // A client of the pool to be removed, connected and idle.
    let mut leaving = Conn::connect(doomed);
    assert_eq!(leaving.cmd_str("SET doomed:k v"), Value::ok());

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for id in 0..2 {
        clients.push(load(
            steady,
            Some("app old"),
            id,
            true,
            stop.clone(),
            done.clone(),
        ));
        clients.push(load(
            moving,
            None,
            10 + id,
            false,
            stop.clone(),
            done.clone(),
        ));
    }
    wait_for_load(&done, 2_000);

    // Reload 1 (PROXY CONFIG RELOAD): the moving pool's servers changed (one removed, one
    // re-weighted, one added), the app user's password rotated, a pool added, one removed.
    file.write(&text(ports, 2));
    assert_eq!(
        Conn::connect(moving).cmd_str("PROXY CONFIG RELOAD"),
        Value::ok()
    );
    let info = proxy_info(moving, None);
    assert_eq!(field(&info, "config_epoch"), "2", "{info}");
    assert_eq!(core_epochs(&info), [2, 2], "every core applied it:\n{info}");
    assert_eq!(
        field(&info, "server0"),
        format!("name=127.0.0.1:{0},addr=127.0.0.1:{0}", servers[3].port)
    );
    wait_until("the added pool to listen", RELOADED, || {
        try_cmd(fresh, "SET fresh:k v") == Some(Value::ok())
    });
    assert_eq!(servers[1].conn().cmd_str("GET fresh:k"), Value::bulk("v"));
    wait_until("the removed pool to stop listening", RELOADED, || {
        std::net::TcpStream::connect(("127.0.0.1", doomed)).is_err()
    });
    leaving.expect_closed();
    // Everything it held is freed once its connections have closed.
    wait_until(
        "the removed pool to be freed on both cores",
        RELOADED,
        || {
            let log = proxy.log();
            (0..2).all(|core| {
                log.contains(&format!(
                    "pool freed on this core core={core} pool=\"doomed\""
                ))
            })
        },
    );
    // The app user's new password is the one AUTH takes now; its clients go on meanwhile.
    let mut c = Conn::connect(steady);
    assert!(
        c.cmd_str("AUTH app old").is_error(),
        "the old password is refused"
    );
    assert_eq!(c.cmd_str("AUTH app new"), Value::ok());
    assert_eq!(c.cmd_str("PING"), Value::Simple("PONG".into()));
    // The removed server's connections close once their requests are answered.
    wait_until(
        "percore to close its connections to the removed server",
        RELOADED,
        || connections_but_mine(&servers[2]) == 0,
    );
    wait_for_load(&done, 2_000);

    // Reload 2 (SIGHUP): the removed server comes back.
    file.write(&text(ports, 3));
    proxy.signal("-HUP");
    wait_until("the SIGHUP reload", RELOADED, || {
        core_epochs(&proxy_info(moving, None)) == [3, 3]
    });
    wait_for_load(&done, 2_000);
    stop.store(true, Ordering::Relaxed);
    let total = finish(clients);
    assert!(
        total.failures.is_empty(),
        "{} of {} requests failed, the first: {:?}\n{}",
        total.failures.len(),
        total.requests,
        &total.failures[..total.failures.len().min(5)],
        proxy.log()
    );
    assert!(total.requests >= 6_000, "{} requests", total.requests);

    // Keys land where nutcracker puts them under the last list.
    let moving_servers = &servers[2..5];
    let keys: Vec<String> = (0..600).map(|i| format!("key:{i}")).collect();
    flush(moving_servers);
    set_all(moving, &keys);
    let through_percore = placement(moving_servers);
    let yaml = pool("moving", nut, &third_list, "");
    let through_nutcracker = nutcracker_placement(&yaml, nut, moving_servers, &keys);
    assert_eq!(through_percore.len(), keys.len());
    assert_eq!(through_percore, through_nutcracker);
    let log = proxy.log();
    for said in [
        "pool removed by a reload",
        "pool added by a reload",
        "configuration reloaded epoch=3",
    ] {
        assert!(log.contains(said), "{said} not in\n{log}");
    }
}

#[test]
fn an_invalid_file_changes_nothing_and_says_why() {
    let servers: Vec<RedisServer> = (0..2).map(|_| RedisServer::start()).collect();
    let taken: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    let head = |metrics: u16, threads: usize| {
        format!("percore:\n  threads: {threads}\n  metrics_listen: 127.0.0.1:{metrics}\n\n")
    };
    let valid = |[port, _, metrics]: [u16; 3]| {
        format!(
            "{}{}",
            head(metrics, 2),
            pool("p", port, &[entry(&servers[0], 1)], "")
        )
    };
    let (proxy, file, ports) = start(&taken, 1, valid);
    let [port, other, metrics] = ports;
    let valid = valid(ports);
    let reload = || Conn::connect(port).cmd_str("PROXY CONFIG RELOAD").text();

    // A bad value: the error names its line and key; nothing changes.
    let bad = valid
        .replace("hash: fnv1a_64", "hash: fnv2")
        .replace(&servers[0].port.to_string(), &servers[1].port.to_string());
    file.write(&bad);
    let line = 1 + bad.lines().position(|l| l.contains("fnv2")).unwrap();
    let expected = format!(
        "ERR configuration not reloaded: {}:{line}: pool 'p' key 'hash': unknown hash 'fnv2'",
        file.arg()
    );
    assert!(reload().starts_with(&expected), "{}", reload());
    // Settings only a restart changes: refused whole, each named.
    let moved = pool("p", other, &[entry(&servers[1], 1)], "");
    file.write(&format!("{}{moved}", head(metrics, 1)));
    let said = reload();
    assert!(
        said.contains(
            "section 'percore' key 'threads': cannot change on reload (2 now, 1 in the file)"
        ),
        "{said}"
    );
    assert!(
        said.contains(":5: pool 'p' key 'listen': cannot change on reload"),
        "{said}"
    );
    // A pool added on an address another socket holds.
    let holder = std::net::TcpListener::bind(("127.0.0.1", other)).unwrap();
    file.write(&format!(
        "{valid}{}",
        pool("q", other, &[entry(&servers[1], 1)], "")
    ));
    let said = reload();
    assert!(
        said.contains(&format!(
            "pool 'q' key 'listen': cannot listen on 127.0.0.1:{other}"
        )),
        "{said}"
    );
    drop(holder);
    // An unreadable file, by SIGHUP: logged and counted.
    std::fs::remove_file(&file.path).unwrap();
    proxy.signal("-HUP");
    wait_until("the SIGHUP reload to fail", RELOADED, || {
        field(&proxy_info(port, None), "config_reload_failures") == "4"
    });
    let info = proxy_info(port, None);
    assert_eq!(field(&info, "config_epoch"), "1", "{info}");
    assert_eq!(core_epochs(&info), [1, 1], "{info}");
    // The old configuration serves on: the key lands on the first server.
    assert_eq!(try_cmd(port, "SET still:here v"), Some(Value::ok()));
    assert_eq!(
        servers[0].conn().cmd_str("GET still:here"),
        Value::bulk("v")
    );
    let scraped = metrics_text(metrics);
    for line in [
        "percore_config_epoch 1",
        "percore_config_reload_failures_total 4",
    ] {
        assert!(
            scraped.lines().any(|l| l == line),
            "{line} not in\n{scraped}"
        );
    }
    let log = proxy.log();
    assert!(
        log.contains("configuration not reloaded; nothing changed"),
        "{log}"
    );
    assert!(
        log.contains("unknown hash 'fnv2'") && log.contains("cannot read the file"),
        "{log}"
    );
}

/// The body of `GET /metrics` at `port`.
fn metrics_text(port: u16) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("metrics port");
    stream.set_read_timeout(Some(RELOADED)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body);
    body.unwrap_or_default().to_string()
}

#[test]
fn a_new_backend_password_is_the_next_connections() {
    let server = RedisServer::start();
    assert_eq!(
        server.conn().cmd_str("CONFIG SET requirepass old-pw"),
        Value::ok()
    );
    let taken: HashSet<u16> = [server.port].into();
    let auth = |password: &str| format!("  requirepass: client-pw\n  redis_auth: {password}\n");
    let (_proxy, file, [port]) = start(&taken, 1, |[port]| {
        pool("p", port, &[entry(&server, 1)], &auth("old-pw"))
    });
    let mut client = Conn::connect(port);
    assert_eq!(client.cmd_str("AUTH client-pw"), Value::ok());
    assert_eq!(client.cmd_str("SET a 1"), Value::ok());
    // The server's password rotates (its connections stay logged in), then percore's.
    let mut admin = server.conn();
    assert_eq!(admin.cmd_str("AUTH old-pw"), Value::ok());
    assert_eq!(admin.cmd_str("CONFIG SET requirepass new-pw"), Value::ok());
    file.write(&pool("p", port, &[entry(&server, 1)], &auth("new-pw")));
    assert_eq!(client.cmd_str("PROXY CONFIG RELOAD"), Value::ok());
    assert_eq!(
        client.cmd_str("GET a"),
        Value::bulk("1"),
        "the connection made before"
    );
    // Its connections cut, percore makes new ones with the new password.
    let killed = admin.cmd_str("CLIENT KILL TYPE normal SKIPME yes");
    assert!(killed.as_int().is_some_and(|n| n >= 1), "{killed:?}");
    wait_until(
        "percore to reconnect with the new password",
        RELOADED,
        || client.cmd_str("GET a") == Value::bulk("1"),
    );
}

#[test]
fn a_pool_added_on_a_unix_socket_listens_and_its_file_goes_with_it() {
    let server = RedisServer::start();
    let taken: HashSet<u16> = [server.port].into();
    let tcp = |port: u16| pool("tcp", port, &[entry(&server, 1)], "");
    let (_proxy, file, [port]) = start(&taken, 1, |[port]| tcp(port));
    let tcp = tcp(port);
    let socket = file.path.with_file_name("u.sock");
    let unix = format!(
        "u:\n  listen: {} 0600\n  redis: true\n  servers:\n   - {}\n",
        socket.display(),
        entry(&server, 1)
    );
    file.write(&format!("{tcp}{unix}"));
    assert_eq!(
        Conn::connect(port).cmd_str("PROXY CONFIG RELOAD"),
        Value::ok()
    );
    wait_until("the Unix socket pool to listen", RELOADED, || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    });
    let mut c = Conn::connect_unix(&socket);
    assert_eq!(c.cmd_str("SET over:unix v"), Value::ok());
    assert_eq!(server.conn().cmd_str("GET over:unix"), Value::bulk("v"));
    file.write(&tcp);
    assert_eq!(
        Conn::connect(port).cmd_str("PROXY CONFIG RELOAD"),
        Value::ok()
    );
    c.expect_closed();
    wait_until("the socket file to be removed", RELOADED, || {
        !socket.exists()
    });
}

#[test]
fn a_cluster_pool_takes_new_users_and_limits_and_its_clients_go_on() {
    let cluster = RedisCluster::start(3, 0);
    let taken: HashSet<u16> = cluster.master_ports().into_iter().collect();
    let text = |port: u16, password: &str, max_clients: usize| {
        format!(
            "percore:\n  threads: 2\n\nc:\n  listen: 127.0.0.1:{port}\n  cluster: {}\n  \
             max_clients: {max_clients}\n  requirepass: admin-pw\n  users:\n   - app on \
             >{password} ~* +@all\n   - gone on >pw ~* +@all\n",
            cluster.seeds()
        )
    };
    let (proxy, file, [port]) = start(&taken, 1, |[port]| text(port, "one", 100));
    let keys = key_on_each_master(&cluster, "reload");
    let mut app = Conn::connect(port);
    assert_eq!(app.cmd_str("AUTH app one"), Value::ok());
    let mut leaving = Conn::connect(port);
    assert_eq!(leaving.cmd_str("AUTH gone pw"), Value::ok());
    wait_until("percore to know the cluster", RELOADED, || {
        app.cmd_str(&format!("SET {} 0", keys[0].1)) == Value::ok()
    });

    // The password rotated, a user removed, room for two clients on each core only.
    file.write(&text(port, "two", 4).replace("   - gone on >pw ~* +@all\n", ""));
    assert_eq!(app.cmd_str("PROXY CONFIG RELOAD"), Value::ok());
    for (_, key) in &keys {
        assert_eq!(
            app.cmd_str(&format!("SET {key} 1")),
            Value::ok(),
            "{}",
            proxy.log()
        );
    }
    leaving.expect_closed();
    let mut again = Conn::connect(port);
    assert!(again.cmd_str("AUTH app one").is_error());
    assert_eq!(again.cmd_str("AUTH app two"), Value::ok());
    // Two cores, two clients each at most: some of the next ones are refused.
    let extra: Vec<Conn> = (0..6).map(|_| Conn::connect(port)).collect();
    let refused = extra
        .into_iter()
        .map(|mut c| c.cmd_str("PING"))
        .filter(|reply| *reply == Value::Error("ERR max number of clients reached".into()))
        .count();
    assert!(refused >= 2, "{refused} refused");
    assert_eq!(app.cmd_str(&format!("GET {}", keys[0].1)), Value::bulk("1"));
}

#[test]
fn a_cluster_pool_changes_its_read_policy_and_lag_bound() {
    let cluster = RedisCluster::start(3, 1);
    cluster.wait_replicas_listed(1);
    let taken: HashSet<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let text = |port: u16, read_from: &str, max_lag: &str| {
        format!(
            "c:\n  listen: 127.0.0.1:{port}\n  cluster: {}\n  read_from: {read_from}\n  \
             max_replica_lag: {max_lag}\n",
            cluster.seeds()
        )
    };
    let (proxy, file, [port]) = start(&taken, 1, |[port]| text(port, "master", "5s"));
    let keys = key_on_each_master(&cluster, "policy");
    let mut conn = Conn::connect(port);
    wait_until("percore to know the cluster", RELOADED, || {
        keys.iter()
            .all(|(_, key)| conn.cmd_str(&format!("SET {key} v")) == Value::ok())
    });
    let masters = cluster.master_ports();
    let replicas: Vec<u16> = taken
        .iter()
        .copied()
        .filter(|p| !masters.contains(p))
        .collect();
    wait_until("the replicas to have the keys", RELOADED, || {
        replicas
            .iter()
            .all(|&p| Conn::connect(p).cmd_str("DBSIZE") == Value::Int(1))
    });
    let gets = |ports: &[u16]| -> u64 { ports.iter().map(|&p| command_calls(p, "get")).sum() };
    // Reads every key, and says how many GETs the masters and the replicas served.
    let mut read_all = || {
        let before = (gets(&masters), gets(&replicas));
        for (_, key) in &keys {
            assert_eq!(conn.cmd_str(&format!("GET {key}")), Value::bulk("v"));
        }
        (gets(&masters) - before.0, gets(&replicas) - before.1)
    };
    assert_eq!(read_all(), (3, 0), "read_from master reads the masters");

    // Replicas only, without a lag bound: read from at once, no verdict awaited.
    file.write(&text(port, "replica", "0"));
    let mut admin = Conn::connect(port);
    assert_eq!(
        admin.cmd_str("PROXY CONFIG RELOAD"),
        Value::ok(),
        "{}",
        proxy.log()
    );
    assert_eq!(read_all(), (0, 3), "read_from replica reads the replicas");
    let info = admin.cmd_str("PROXY INFO").text();
    assert!(
        info.contains("read_from:replica\r\nmax_replica_lag_ms:none\r"),
        "{info}"
    );

    // A bound again, and the replicas stay in rotation once judged within it.
    file.write(&text(port, "prefer-replica", "3s"));
    assert_eq!(admin.cmd_str("PROXY CONFIG RELOAD"), Value::ok());
    wait_until(
        "the lag watcher's verdicts under the new bound",
        RELOADED,
        || {
            let info = admin.cmd_str("PROXY INFO").text();
            info.contains("max_replica_lag_ms:3000\r") && info.matches(",lag=ok,").count() == 3
        },
    );
    assert_eq!(read_all(), (0, 3), "prefer-replica reads the replicas");

    // Back to the masters.
    file.write(&text(port, "master", "5s"));
    assert_eq!(admin.cmd_str("PROXY CONFIG RELOAD"), Value::ok());
    assert_eq!(read_all(), (3, 0), "read_from master again");
}

#[test]
fn without_a_file_there_is_nothing_to_reload() {
    let proxy = Proxy::start_with_seeds("127.0.0.1:1", &[]);
    let reply = proxy.conn().cmd_str("PROXY CONFIG RELOAD").text();
    assert!(
        reply.contains("without a configuration file (-c)"),
        "{reply}"
    );
}
