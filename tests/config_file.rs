//! The configuration file from the outside: `percore -t` accepts the nutcracker files that
//! `nutcracker -t` accepts (files in tests/configs in the shapes of twemproxy's own examples),
//! rejects bad ones naming the line and the key, and a file with one cluster pool runs percore
//! against a real cluster exactly as the flags do, with nutcracker's -d, -p and -o.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{free_port, try_cmd, wait_until, Proxy, RedisCluster, Value};
use tempfile::TempDir;

/// How long a daemonized percore may take to write its pid file, serve, and exit.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(30);

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs")
}

fn percore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(args)
        .output()
        .expect("run percore")
}

fn check(path: &Path) -> (bool, String) {
    let output = percore(&["-t", "-c", path.to_str().unwrap()]);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Whether `nutcracker -t -c path` accepts the file; a missing nutcracker fails the test with
/// the command that installs it.
fn nutcracker_accepts(path: &Path) -> bool {
    let output = Command::new("nutcracker")
        .args(["-t", "-c"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("nutcracker not found ({e}): install it with `apt-get install -y nutcracker`")
        });
    output.status.success()
}

#[test]
fn nutcracker_files_are_accepted_by_both() {
    let mut checked = 0;
    for entry in std::fs::read_dir(configs()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".yml") {
            continue;
        }
        let (ok, said) = check(&path);
        assert!(ok, "percore -t rejects {name}:\n{said}");
        assert!(said.contains("is valid"), "{said}");
        if name.starts_with("nutcracker-") {
            assert!(nutcracker_accepts(&path), "nutcracker -t rejects {name}");
            checked += 1;
        } else {
            assert!(
                !nutcracker_accepts(&path),
                "{name} has percore's keys, unknown to nutcracker"
            );
        }
    }
    assert_eq!(checked, 5, "the nutcracker files of tests/configs");
}

/// Bad files, each with the one error percore names; `true` where nutcracker rejects it too
/// (where it does not, percore is stricter on purpose, as the README says).
#[test]
fn bad_files_are_rejected_with_line_and_key() {
    let pool = "p:\n  listen: 127.0.0.1:22121\n  redis: true\n";
    let one = "  servers:\n   - 127.0.0.1:6379:1\n";
    let cases: &[(String, &str, bool)] = &[
        (
            format!("{pool}  hash: fnv2\n{one}"),
            ":4: pool 'p' key 'hash': unknown hash 'fnv2' (one of one_at_a_time,",
            true,
        ),
        (
            format!("{pool}  distribution: consistent\n{one}"),
            ":4: pool 'p' key 'distribution': unknown distribution 'consistent'",
            true,
        ),
        (
            format!("{pool}  hash_tag: \"{{\"\n{one}"),
            ":4: pool 'p' key 'hash_tag': '{' is not a hash tag of two characters",
            true,
        ),
        (
            format!("{pool}{one}   - 127.0.0.1:6380:0\n"),
            ":6: pool 'p' key 'servers': '127.0.0.1:6380:0' has a zero weight",
            true,
        ),
        (
            format!("{pool}{one}   - 127.0.0.1:6379:2\n"),
            ":6: pool 'p' key 'servers': two servers are named '127.0.0.1:6379'",
            true,
        ),
        (
            format!("{pool}  server_connections: 0\n{one}"),
            ":4: pool 'p' key 'server_connections': 0 is out of range",
            true,
        ),
        (
            format!("{pool}  preconnect: yes\n{one}"),
            ":4: pool 'p' key 'preconnect': 'yes' is not true or false",
            true,
        ),
        (
            format!("{pool}  timeout: 1\n  timeout: 2\n{one}"),
            ":5: pool 'p' key 'timeout': is given twice",
            true,
        ),
        (
            format!("{pool}  hashes: md5\n{one}"),
            ":4: pool 'p' key 'hashes': unknown key (known: listen,",
            true,
        ),
        (
            format!("{pool}  timeout: -1\n{one}"),
            ":4: pool 'p' key 'timeout': '-1' is not a number",
            true,
        ),
        (
            format!("{pool}  servers:\n   - 127.0.0.1:70000:1\n"),
            ":5: pool 'p' key 'servers': '127.0.0.1:70000:1' has an invalid port",
            true,
        ),
        (
            format!("{pool}  timeout: 1\n"),
            ":1: pool 'p': pool has neither servers:",
            true,
        ),
        (
            format!("p:\n  redis: true\n{one}"),
            ":1: pool 'p': pool has no listen: address",
            true,
        ),
        (
            format!("{pool}{one}q:\n  listen: 127.0.0.1:22121\n  redis: true\n{one}"),
            ":7: pool 'q' key 'listen': listens on 127.0.0.1:22121, as pool 'p' does",
            true,
        ),
        (
            format!("p:\n  listen: 127.0.0.1:22121\n{one}"),
            ":1: pool 'p': percore speaks only Redis",
            false,
        ),
        (
            format!("{pool}  cluster: 127.0.0.1:7000\n  hash: md5\n"),
            ":5: pool 'p' key 'hash': applies only to a pool with servers:",
            true,
        ),
    ];
    let dir = TempDir::new().unwrap();
    for (i, (text, expected, nutcracker_too)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.yml"));
        std::fs::write(&path, text).unwrap();
        let (ok, said) = check(&path);
        assert!(!ok, "percore -t accepts:\n{text}");
        let first = said.lines().next().unwrap_or_default();
        let want = format!("percore: {}{expected}", path.display());
        assert!(
            first.starts_with(&want),
            "{text}\nwanted {want}\ngot {said}"
        );
        assert!(said.contains("is invalid (1 error)"), "{said}");
        assert_eq!(
            nutcracker_accepts(&path),
            !nutcracker_too,
            "nutcracker on\n{text}"
        );
    }
}

#[test]
fn every_error_is_printed_and_the_exit_code_says_so() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("two.yml");
    let text = "a:\n  listen: 127.0.0.1:1\n  redis: true\n  hash: fnv2\n  servers:\n   - h:1:0\nb:\n  listen: h:0\n  cluster: h:2\n";
    std::fs::write(&path, text).unwrap();
    let output = percore(&["--check-config", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let said = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 4, "{said}");
    for (line, key) in [(4, "hash"), (6, "servers"), (8, "listen")] {
        assert!(said.contains(&format!("two.yml:{line}: pool ")), "{said}");
        assert!(said.contains(&format!("key '{key}'")), "{said}");
    }
    let missing = percore(&["-t", "-c", "/nonexistent/percore.yml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the file"));
    assert_eq!(percore(&["-t"]).status.code(), Some(2));
}

#[test]
fn every_kind_of_pool_is_served_and_check_config_says_so() {
    // Sentinel (data-store mode) was the last kind still refused at start.
    let output = percore(&[
        "-t",
        "-c",
        configs().join("percore-sentinel.yml").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("pool 'sessions' (servers, listen 127.0.0.1:22150): served"),
        "{said}"
    );
}

/// A file with one cluster pool and the process section.
fn cluster_file(dir: &Path, port: u16, seeds: &str, extra: &str) -> PathBuf {
    let seeds: String = seeds.split(',').map(|s| format!("   - {s}\n")).collect();
    let text = format!(
        "percore:\n  threads: 2\n  log_level: debug\n\napp:\n  listen: 127.0.0.1:{port}\n  cluster:\n{seeds}  backend_timeout: 2s\n{extra}"
    );
    let path = dir.join("percore.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Commands whose replies do not depend on the proxy's own address or on time.
const COMMANDS: &[&str] = &[
    "SET {k}1 a",
    "SET {k}2 b",
    "SET other c",
    "MGET {k}1 {k}2 other missing",
    "DEL {k}1 other",
    "EXISTS {k}1 {k}2 other",
    "INCR counter",
    "PING",
    "ECHO hi",
    "GET",
    "NOSUCHCOMMAND",
];

fn replies(port: u16) -> Vec<Value> {
    let mut conn = common::Conn::connect(port);
    let replies = COMMANDS.iter().map(|c| conn.cmd_str(c)).collect();
    conn.cmd_str("DEL {k}2 counter");
    replies
}

#[test]
fn a_cluster_pool_file_serves_as_the_flags_do() {
    let cluster = RedisCluster::start(3, 0);
    let by_flags = Proxy::start(&cluster, &[]);
    let flag_replies = replies(by_flags.port);
    drop(by_flags);
    let dir = TempDir::new().unwrap();
    let port = free_port();
    let path = cluster_file(dir.path(), port, &cluster.seeds(), "");
    let by_file = Proxy::start_with_args(port, &["-c", path.to_str().unwrap()]);
    wait_until("percore to serve from its file", DAEMON_TIMEOUT, || {
        try_cmd(port, "SET percore:ready 1") == Some(Value::ok())
    });
    assert_eq!(replies(port), flag_replies);
    let info = by_file.conn().cmd_str("PROXY INFO").text();
    assert!(info.contains("core1"), "threads: 2 from the file:\n{info}");
}

#[test]
fn flags_go_over_the_file() {
    let cluster = RedisCluster::start(3, 0);
    let dir = TempDir::new().unwrap();
    let (file_port, flag_port) = (free_port(), free_port());
    let extra = "  requirepass: from-file\n  users:\n   - reader on >rpw ~* +@read\n";
    let path = cluster_file(dir.path(), file_port, &cluster.seeds(), extra);
    let listen = format!("127.0.0.1:{flag_port}");
    let args = [
        "-c",
        path.to_str().unwrap(),
        "--listen",
        &listen,
        "--requirepass",
        "from-flag",
    ];
    let proxy = Proxy::start_with_args(flag_port, &args);
    let mut conn = proxy.conn();
    assert!(conn.cmd_str("AUTH from-file").is_error());
    assert_eq!(conn.cmd_str("AUTH from-flag"), Value::ok());
    // The file's users stay: --requirepass replaced only the default user's password.
    assert_eq!(conn.cmd_str("AUTH reader rpw"), Value::ok());
    assert!(std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err());
}

/// Kills a daemonized percore (not a child of the test) if the test ends before it does.
struct Daemon(Option<i32>);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            // SAFETY: kill(2) on a pid this test read from the daemon's own pid file.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Whether `pid` runs (an exited daemon no process reaps yet is a zombie: not running).
fn running(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    state.is_some_and(|s| s != 'Z' && s != 'X')
}

#[test]
fn daemonized_with_pid_and_log_files() {
    let cluster = RedisCluster::start(3, 0);
    let dir = TempDir::new().unwrap();
    let port = free_port();
    let path = cluster_file(dir.path(), port, &cluster.seeds(), "");
    let (pid_path, log_path) = (
        dir.path().join("percore.pid"),
        dir.path().join("percore.log"),
    );
    let status = Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-d", "-c", path.to_str().unwrap(), "-v", "7", "-m", "16384"])
        .arg("-p")
        .arg(&pid_path)
        .arg("-o")
        .arg(&log_path)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the foreground process returns once in the background"
    );
    let mut daemon = Daemon(None);
    wait_until("the pid file", DAEMON_TIMEOUT, || {
        daemon.0 = std::fs::read_to_string(&pid_path)
            .ok()
            .and_then(|s| s.parse().ok());
        daemon.0.is_some()
    });
    wait_until("the daemon to serve", DAEMON_TIMEOUT, || {
        try_cmd(port, "SET percore:ready 1") == Some(Value::ok())
    });
    let pid = daemon.0.unwrap();
    // SAFETY: kill(2) on the daemon's pid, as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    wait_until(
        "the daemon to exit and remove its pid file",
        DAEMON_TIMEOUT,
        || !pid_path.exists() && !running(pid),
    );
    daemon.0 = None;
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("DEBUG"),
        "-v 7 logs at debug level, to -o's file:\n{log}"
    );
}

#[test]
fn the_readme_example_is_valid() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"));
    let readme = readme.unwrap();
    let start = readme.find("```yaml\n").expect("the README's example file") + "```yaml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("example.yml");
    std::fs::write(&path, &readme[start..end]).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["-t", "-c", path.to_str().unwrap()])
        .env("APP_REQUIREPASS", "x")
        .env("APP_BACKEND_PASSWORD", "y")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("pool 'sessions' (servers"), "{said}");
}
