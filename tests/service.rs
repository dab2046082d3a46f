//! Running under a service manager: systemd's `Type=notify` readiness (`READY=1` only once
//! every core accepts clients, `STOPPING=1` when the drain starts) and the JSON log format
//! a log pipeline reads.

mod common;

use std::process::Command;
use std::time::Duration;

use common::notify::NotifySocket;
use common::{free_port, try_cmd, wait_until, Proxy, RedisCluster, Value};
use tempfile::TempDir;

#[test]
fn systemd_hears_ready_once_every_core_serves_and_stopping_at_the_drain() {
    let cluster = RedisCluster::start(3, 0);
    let dir = TempDir::new().unwrap();
    let socket = NotifySocket::bind(dir.path());
    let notify = socket.env_value();
    // Two threads (the fixture's): READY=1 must wait for both cores' listeners.
    let mut proxy = Proxy::start_with_env(&cluster.seeds(), &[], &[("NOTIFY_SOCKET", notify)]);

    let ready = socket.next();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    // Ready means every core's listener accepts: it is said after both cores said so, and new
    // connections, whichever core takes them, are served at once.
    let log = proxy.log();
    let ready_at = log
        .find("every core accepts clients: ready")
        .expect("logged");
    assert_eq!(
        log[..ready_at].matches("accepting clients").count(),
        2,
        "{log}"
    );
    for _ in 0..8 {
        assert_eq!(proxy.conn().cmd_str("SET service:k v"), Value::ok());
    }

    proxy.signal("-TERM");
    let stopping = socket.next();
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
    assert_eq!(proxy.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn json_logs_are_one_object_per_line_naming_pool_node_and_cause() {
    let mut cluster = RedisCluster::start(3, 0);
    let dir = TempDir::new().unwrap();
    let port = free_port();
    let file = cluster_pool_file(
        &cluster,
        &dir,
        port,
        "percore:\n  threads: 2\n  log_format: json\n\n",
    );
    let mut proxy = Proxy::start_with_args(port, &["-c", file.to_str().unwrap()]);
    wait_until("percore to serve", Duration::from_secs(10), || {
        try_cmd(port, "SET service:ready 1") == Some(Value::ok())
    });
    // A node that dies: the line that says so names the pool, the node and the cause.
    let dead = cluster.master_ports()[0];
    cluster.kill(dead);
    let dead_node = format!("127.0.0.1:{dead}");
    wait_until("a backend failure logged", Duration::from_secs(10), || {
        for i in 0..20 {
            let _ = try_cmd(port, &format!("GET service:{i}"));
        }
        proxy.log().contains("backend connection failed")
    });
    proxy.signal("-TERM");
    assert_eq!(proxy.wait_exit(Duration::from_secs(10)), Some(0));

    let log = proxy.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let accepting: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "accepting clients")
        .collect();
    assert_eq!(accepting.len(), 2, "a line per core: {log}");
    for line in accepting {
        assert_eq!(line["level"], "INFO");
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line["core"].is_u64(), "{line}");
        assert_eq!(line["pool"], "app");
        assert_eq!(line["listen"], format!("127.0.0.1:{port}"));
    }
    let failure = lines
        .iter()
        .find(|l| l["message"] == "backend connection failed")
        .expect("logged");
    assert_eq!(failure["level"], "WARN");
    assert_eq!(failure["pool"], "app");
    assert_eq!(failure["node"], dead_node);
    assert!(
        failure["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{failure}"
    );
}

#[test]
fn an_unknown_log_format_is_refused_with_the_choices() {
    let out = Command::new(env!("CARGO_BIN_EXE_percore"))
        .args(["--log-format", "xml", "--cluster", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("'xml' is not a log format: text or json"),
        "{stderr}"
    );
}

#[test]
fn a_reload_is_bracketed_by_reloading_and_ready_for_notify_reload_units() {
    let cluster = RedisCluster::start(3, 0);
    let dir = TempDir::new().unwrap();
    let socket = NotifySocket::bind(dir.path());
    let port = free_port();
    let file = cluster_pool_file(&cluster, &dir, port, "");
    let notify = socket.env_value();
    let file_arg = file.to_str().unwrap();
    let mut proxy =
        Proxy::start_with_args_env(port, &["-c", file_arg], &[("NOTIFY_SOCKET", notify)]);
    let ready = socket.next();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");

    // systemd's Type=notify-reload: SIGHUP, then RELOADING=1 with the monotonic time, then
    // READY=1 once the reload is done.
    proxy.signal("-HUP");
    let reloading = socket.next();
    assert!(reloading.lines().any(|l| l == "RELOADING=1"), "{reloading}");
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading}"
    );
    let ready = socket.next();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(ready.contains("configuration epoch 2"), "{ready}");
    assert_eq!(
        try_cmd(port, "SET service:after-reload 1"),
        Some(Value::ok())
    );

    // A reload the file refuses still ends with READY=1: the old configuration serves on.
    std::fs::write(&file, "app:\n  listen: 127.0.0.1:1\n  hash: nonsense\n").unwrap();
    proxy.signal("-HUP");
    let reloading = socket.next();
    assert!(reloading.lines().any(|l| l == "RELOADING=1"), "{reloading}");
    let ready = socket.next();
    assert!(ready.contains("configuration epoch 2"), "{ready}");
    assert_eq!(
        try_cmd(port, "GET service:after-reload"),
        Some(Value::bulk("1"))
    );
    proxy.signal("-TERM");
    assert_eq!(proxy.wait_exit(Duration::from_secs(10)), Some(0));
}

/// Writes `percore.yml` in `dir`: `before` (e.g. a `percore:` section), then pool `app` on
/// `port` over `cluster`.
fn cluster_pool_file(
    cluster: &RedisCluster,
    dir: &TempDir,
    port: u16,
    before: &str,
) -> std::path::PathBuf {
    let seeds: String = cluster
        .seeds()
        .split(',')
        .map(|s| format!("   - {s}\n"))
        .collect();
    let file = dir.path().join("percore.yml");
    let yaml = format!("{before}app:\n  listen: 127.0.0.1:{port}\n  cluster:\n{seeds}");
    std::fs::write(&file, yaml).unwrap();
    file
}
