//! The real client libraries against percore in front of a real cluster, each with its default
//! settings (nothing beyond host, port and credentials): redis-py, ioredis and node-redis,
//! installed at their latest release under the target directory by tests/clients/install.rs,
//! and redis-rs, a dev-dependency.
//!
//! The Python and JavaScript checks live in tests/clients/ (py_client.py, node_client.mjs), the
//! Rust ones in tests/clients/redis_rs.rs; each suite is the same for every library:
//! - plain: percore as one server: strings, MGET and DEL across masters, INCR, a
//!   non-transactional pipeline, binary keys and values, hashes, sorted sets, sets, and the
//!   connection's own view (CLIENT INFO's `resp`, ACL WHOAMI); the keys it leaves behind are
//!   then read from the masters directly;
//! - over RESP2, over RESP3 and with the library's default protocol;
//! - logged in with a password (`--requirepass`) and as an ACL user (`--user`), after a client
//!   without the password and one with a wrong one are refused;
//! - scan: the library's scan iterator finds every key on every master;
//! - cluster: the library's cluster client pointed at percore learns only percore's address;
//! - sessions: transactions (the library's `pipeline()` / `multi()` / `pipe().atomic()`, one
//!   aborted at queue time and one across slots that change nothing), a non-transactional
//!   pipeline, WATCH with another client's write in between, blocking pops woken by another
//!   client and timing out, pub/sub (channels, patterns, sharded channels) with messages from
//!   another client, and RESET; then cluster-sessions: the library's cluster client with a
//!   transaction in one slot and a blocking pop. Over the library's default protocol, RESP2
//!   and RESP3.
//!
//! Each test prints the library's log; a failure shows the check that failed and the error the
//! library gave.

mod common;
#[path = "clients/install.rs"]
mod install;
#[path = "clients/redis_rs.rs"]
mod redis_rs;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{slot_of, Proxy, RedisCluster};

/// Longest one script run may take; the JavaScript one gives up on its own after 20 s and
/// says at which step, this only bounds a script that hangs.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between checks whether a script has finished.
const POLL: Duration = Duration::from_millis(20);
/// percore's password for the default user in the login tests.
const PASSWORD: &str = "pw";
/// The ACL user of the login tests, and its password.
const USER: (&str, &str) = ("app", "apppw");
const USER_DEFINITION: &str = "app on >apppw ~* +@all";

#[derive(Clone, Copy, Debug)]
enum Lib {
    RedisPy,
    Ioredis,
    NodeRedis,
    RedisRs,
}

/// One run of one suite.
struct Run<'a> {
    suite: &'a str,
    /// `None`: the library's default protocol.
    protocol: Option<u8>,
    /// Password, and the user it belongs to (`None`: the default user).
    login: Option<(&'a str, Option<&'a str>)>,
    prefix: String,
}

/// Runs one suite of one library against percore on `ports`; its log, or the log ending in
/// what failed.
fn drive(lib: Lib, ports: &[u16], run: &Run) -> Result<String, String> {
    let mut args: Vec<String> = vec![run.suite.into()];
    for port in ports {
        args.extend(["--port".into(), port.to_string()]);
    }
    if let Some(protocol) = run.protocol {
        args.extend(["--protocol".into(), protocol.to_string()]);
    }
    if let Some((password, user)) = run.login {
        args.extend(["--password".into(), password.into()]);
        if let Some(user) = user {
            args.extend(["--username".into(), user.into()]);
        }
    }
    args.extend(["--prefix".into(), run.prefix.clone()]);
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let mut command = match lib {
        Lib::RedisRs => {
            let version = format!("redis-rs {}\n", install::redis_rs_version());
            let target = redis_rs::Target {
                ports,
                protocol: run.protocol,
                login: run.login,
                prefix: &run.prefix,
            };
            return redis_rs::run(run.suite, &target)
                .map(|log| version.clone() + &log)
                .map_err(|log| version + &log);
        }
        Lib::RedisPy => {
            // -u: a script killed at the timeout still shows what it printed.
            let mut command = Command::new(&install::python().interpreter);
            command.arg("-u").arg(scripts.join("py_client.py"));
            command
        }
        Lib::Ioredis | Lib::NodeRedis => {
            let mut command = Command::new("node");
            command.env("CLIENT_LIBS_NODE_DIR", &install::node().dir);
            command.arg(scripts.join("node_client.mjs"));
            command.arg(if matches!(lib, Lib::Ioredis) {
                "ioredis"
            } else {
                "node-redis"
            });
            command
        }
    };
    run_script(command.args(&args))
}

/// Runs a script within [`SCRIPT_TIMEOUT`]; its output, as the error if it failed.
fn run_script(command: &mut Command) -> Result<String, String> {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("output");
    let out = File::create(&path).unwrap();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(POLL);
    };
    let output = std::fs::read_to_string(&path).unwrap_or_default();
    match status {
        Some(status) if status.success() => Ok(output),
        Some(status) => Err(format!("{output}\n(exit: {status})")),
        None => Err(format!("{output}\n(killed after {SCRIPT_TIMEOUT:?})")),
    }
}

/// Runs a suite and fails the test with the library's log if any check failed.
fn expect_pass(lib: Lib, ports: &[u16], run: &Run) {
    match drive(lib, ports, run) {
        Ok(log) => println!("{log}"),
        Err(log) => panic!(
            "{lib:?} {} suite (protocol {:?}, login {:?}) failed:\n{log}",
            run.suite, run.protocol, run.login
        ),
    }
}

/// The plain suite leaves PREFIX:kept:N = kept-N: each must be on the master of its slot, and
/// together they must cover every master (so the suite did write across masters).
fn check_kept(cluster: &RedisCluster, prefix: &str) {
    let mut masters = Vec::new();
    for i in 0..redis_rs::KEYS {
        let key = format!("{prefix}:kept:{i}");
        let port = cluster.master_for_slot(slot_of(&key));
        let value = common::Conn::connect(port).cmd(&[b"GET", key.as_bytes()]);
        assert_eq!(
            value.text(),
            format!("kept-{i}"),
            "{key} on its master {port}"
        );
        masters.push(port);
    }
    masters.sort_unstable();
    masters.dedup();
    assert_eq!(
        masters,
        cluster.master_ports(),
        "the keys must span every master"
    );
}

fn prefix(lib: Lib, protocol: Option<u8>, login: Option<(&str, Option<&str>)>) -> String {
    let user = login.map_or("nologin", |l| l.1.unwrap_or("default"));
    let protocol = protocol.map_or("default".into(), |p| p.to_string());
    format!("{lib:?}-{protocol}-{user}")
}

/// The plain suite with each of `protocols`, on one cluster.
fn plain_over(lib: Lib, protocols: &[Option<u8>]) {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    for &protocol in protocols {
        let prefix = prefix(lib, protocol, None);
        let run = Run {
            suite: "plain",
            protocol,
            login: None,
            prefix: prefix.clone(),
        };
        expect_pass(lib, &[proxy.port], &run);
        check_kept(&cluster, &prefix);
    }
}

/// The plain suite with percore's password and as its ACL user, over the library's default
/// protocol, RESP2 and RESP3.
fn logs_in(lib: Lib) {
    let cluster = RedisCluster::start(3, 0);
    let args = ["--requirepass", PASSWORD, "--user", USER_DEFINITION];
    let proxy = Proxy::start_with_seeds(&cluster.seeds(), &args);
    let port = proxy.port;
    common::wait_until(
        "percore to serve the cluster",
        Duration::from_secs(30),
        || {
            let mut conn = common::Conn::connect(port);
            conn.cmd(&[b"AUTH", PASSWORD.as_bytes()]);
            conn.cmd(&[b"SET", b"percore:ready", b"1"]) == common::Value::ok()
        },
    );
    for protocol in [None, Some(2), Some(3)] {
        for login in [(PASSWORD, None), (USER.1, Some(USER.0))] {
            let prefix = prefix(lib, protocol, Some(login));
            let run = Run {
                suite: "plain",
                protocol,
                login: Some(login),
                prefix: prefix.clone(),
            };
            expect_pass(lib, &[proxy.port], &run);
            check_kept(&cluster, &prefix);
        }
    }
}

/// The scan suite, with the library's default protocol.
fn scans(lib: Lib) {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let run = Run {
        suite: "scan",
        protocol: None,
        login: None,
        prefix: prefix(lib, None, None),
    };
    expect_pass(lib, &[proxy.port], &run);
}

/// The cluster suite, with the library's default protocol: percore must present itself as
/// the cluster.
fn cluster_client(lib: Lib) {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    let run = Run {
        suite: "cluster",
        protocol: None,
        login: None,
        prefix: prefix(lib, None, None),
    };
    expect_pass(lib, &[proxy.port], &run);
}

/// The sessions suite over the library's default protocol, RESP2 and RESP3, then the
/// cluster-sessions suite over the default protocol, on one cluster.
fn sessions(lib: Lib) {
    let cluster = RedisCluster::start(3, 0);
    let proxy = Proxy::start(&cluster, &[]);
    for (suite, protocol) in [
        ("sessions", None),
        ("sessions", Some(2)),
        ("sessions", Some(3)),
        ("cluster-sessions", None),
    ] {
        let run = Run {
            suite,
            protocol,
            login: None,
            prefix: prefix(lib, protocol, None),
        };
        expect_pass(lib, &[proxy.port], &run);
    }
}

/// Runs the suite `CLIENT_LIBS_SUITE` (default `sessions`) of every library, over its default
/// protocol, RESP2 and RESP3, against the server on 127.0.0.1:`CLIENT_LIBS_PORT`: Redis
/// itself, to see that a check percore fails is one Redis passes (a node in cluster mode
/// owning every slot for `sessions`, a cluster for `cluster-sessions`). For instance
/// `CLIENT_LIBS_PORT=7000 cargo test --test client_libraries -- --ignored --nocapture`.
#[test]
#[ignore = "runs against the server on CLIENT_LIBS_PORT"]
fn against_a_server() {
    let port: u16 = std::env::var("CLIENT_LIBS_PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .expect("CLIENT_LIBS_PORT: the port of the server to run against");
    let suite = std::env::var("CLIENT_LIBS_SUITE").unwrap_or_else(|_| "sessions".into());
    let mut failed = Vec::new();
    for lib in [Lib::RedisPy, Lib::Ioredis, Lib::NodeRedis, Lib::RedisRs] {
        for protocol in [None, Some(2), Some(3)] {
            let run = Run {
                suite: &suite,
                protocol,
                login: None,
                prefix: format!("against-{}", prefix(lib, protocol, None)),
            };
            match drive(lib, &[port], &run) {
                Ok(log) => println!("{log}"),
                Err(log) => {
                    println!("{log}");
                    failed.push(format!("{lib:?} over {protocol:?}"));
                }
            }
        }
    }
    assert!(failed.is_empty(), "{suite} failed for {failed:?}");
}

/// The tests of one library: one per suite, so each result stands on its own line.
macro_rules! library_tests {
    ($module:ident, $lib:expr) => {
        mod $module {
            use super::*;

            #[test]
            fn serves_plain_commands_over_resp2() {
                plain_over($lib, &[Some(2)]);
            }

            #[test]
            fn serves_plain_commands_over_resp3_and_the_default_protocol() {
                plain_over($lib, &[Some(3), None]);
            }

            #[test]
            fn logs_in_with_a_password_and_as_an_acl_user() {
                logs_in($lib);
            }

            #[test]
            fn scan_iterator_finds_every_key_on_every_master() {
                scans($lib);
            }

            #[test]
            fn cluster_client_learns_only_percore() {
                cluster_client($lib);
            }

            #[test]
            fn transactions_watch_blocking_and_pubsub_with_defaults() {
                sessions($lib);
            }
        }
    };
}

library_tests!(redis_py, Lib::RedisPy);
library_tests!(ioredis, Lib::Ioredis);
library_tests!(node_redis, Lib::NodeRedis);
library_tests!(redis_rs_crate, Lib::RedisRs);
