//! Upgrades without downtime: a new percore started with the same `upgrade_socket` takes the
//! running one's listening sockets (a TCP pool's per-core listeners, a Unix-socket pool's
//! socket, the stats port, the upgrade socket itself) over, serves on them, and the old one
//! drains and exits 0, while clients that reconnect on close keep sending: not one request
//! fails, no connect is refused, and new connections reach the new process. A new process
//! that fails after it got the sockets leaves the old one serving (and its pid file), and the
//! next upgrade, with fewer threads, still takes over.

mod common;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::notify::NotifySocket;
use common::reconnecting::{Load, Tally, Target};
use common::{
    free_port, key_on_each_master, try_cmd, wait_until, Conn, Proxy, RedisCluster, Value,
};
use tempfile::TempDir;

/// Client threads per pool.
const CLIENTS_PER_POOL: usize = 4;
/// Requests answered before the upgrade starts, and again after the old process is gone:
/// enough that the clients have been connecting and reconnecting throughout.
const REQUESTS_EACH_SIDE: u64 = 2_000;
/// Bound on the load making that many requests (a debug build on a shared 2-core machine).
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on the old process's drain and exit (the drain is bounded by 5 s, then exit).
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the processes being ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest the test waits for a notification to systemd.
const NOTIFY_WAIT: Duration = Duration::from_secs(30);
/// How long the test listens for a notification that must not come.
const QUIET_WAIT: Duration = Duration::from_millis(500);

/// A cluster and the paths and ports of a percore with a TCP pool and a Unix-socket pool in
/// front of it.
struct Setup {
    cluster: RedisCluster,
    dir: TempDir,
    port: u16,
    stats: u16,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            cluster: RedisCluster::start(3, 0),
            dir: TempDir::new().unwrap(),
            port: free_port(),
            stats: free_port(),
        }
    }

    /// The Unix-socket pool's path.
    fn socket(&self) -> PathBuf {
        self.dir.path().join("pool.sock")
    }

    /// A configuration file named `name`: both pools, the Unix socket's file with `mode`,
    /// with `extra` (more pools) after them.
    fn file(&self, name: &str, mode: &str, extra: &str) -> PathBuf {
        let seeds: String = (self.cluster.seeds().split(','))
            .map(|seed| format!("   - {seed}\n"))
            .collect();
        let text = format!(
            "percore:\n  threads: 2\n  upgrade_socket: {upgrade}\n  stats_listen: \
             127.0.0.1:{stats}\n\ntcp:\n  listen: 127.0.0.1:{port}\n  backend_timeout: 10s\n  \
             cluster:\n{seeds}\nunix:\n  listen: {socket} {mode}\n  cluster:\n{seeds}{extra}",
            upgrade = self.dir.path().join("upgrade.sock").display(),
            stats = self.stats,
            port = self.port,
            socket = self.socket().display(),
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Starts percore with the file `path` and `extra` flags; waits only until the TCP pool's
    /// port takes connections (at once, for a new process: the old one serves it).
    fn percore(&self, path: &Path, extra: &[&str]) -> Proxy {
        let mut args = vec!["-c", path.to_str().unwrap(), "--log-level", "info"];
        args.extend(extra);
        Proxy::start_with_args(self.port, &args)
    }

    /// Waits until both pools serve the cluster.
    fn wait_serving(&self) {
        let port = self.port;
        wait_until("the TCP pool to serve", READY_TIMEOUT, || {
            try_cmd(port, "SET upgrade:ready 1") == Some(Value::ok())
        });
        let socket = self.socket();
        wait_until("the Unix-socket pool to serve", READY_TIMEOUT, || {
            Conn::try_connect_unix(&socket)
                .and_then(|mut c| c.try_send_raw(b"SET upgrade:ready 1\r\n").map(|()| c))
                .and_then(|mut c| c.try_read_value())
                .is_ok_and(|reply| reply == Value::ok())
        });
    }

    /// The pid that new connections to each pool are served by.
    fn pids(&self) -> (u32, u32) {
        let pid = |mut conn: Conn| {
            let info = conn.cmd_str("INFO server").text();
            let line = info.lines().find(|l| l.starts_with("process_id:"));
            line.and_then(|l| l[11..].trim().parse().ok())
                .expect("process_id in INFO")
        };
        (
            pid(Conn::connect(self.port)),
            pid(Conn::connect_unix(&self.socket())),
        )
    }

    fn load(&self) -> Load {
        let targets = [Target::Tcp(self.port), Target::Unix(self.socket())];
        Load::start(&targets, CLIENTS_PER_POOL)
    }
}

/// Asserts the clients saw no failure and no refused connect.
fn assert_clean(tally: &Tally) {
    let summary = tally.summary();
    eprintln!("clients saw: {summary}");
    assert_eq!(tally.failed, 0, "failed requests: {summary}");
    assert_eq!(tally.refused, 0, "refused connects: {summary}");
    assert!(tally.answered >= 2 * REQUESTS_EACH_SIDE, "{summary}");
}

#[test]
fn handover_under_load_fails_no_request_and_new_connections_reach_the_new_process() {
    let setup = Setup::new();
    let file = setup.file("percore.yml", "0600", "");
    let mut old = setup.percore(&file, &[]);
    setup.wait_serving();
    assert_eq!(setup.pids(), (old.pid(), old.pid()));

    let load = setup.load();
    load.wait_for_more(REQUESTS_EACH_SIDE, LOAD_TIMEOUT);
    // The new configuration gives the Unix socket's file other permissions.
    let mut new = setup.percore(&setup.file("upgraded.yml", "0660", ""), &[]);
    assert_eq!(old.wait_exit(EXIT_TIMEOUT), Some(0), "{}", old.log());
    load.wait_for_more(REQUESTS_EACH_SIDE, LOAD_TIMEOUT);
    let tally = load.stop();

    assert!(new.is_running(), "{}", new.log());
    let mode = std::fs::metadata(setup.socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    assert_eq!(setup.pids(), (new.pid(), new.pid()));
    assert_clean(&tally);
    let (old_log, new_log) = (old.log(), new.log());
    assert!(
        old_log.contains("upgrade: the new process serves; draining"),
        "{old_log}"
    );
    assert!(new_log.contains("upgrade: took over"), "{new_log}");
    // Every socket came over: none was bound afresh next to the old one's, and the stats
    // port (not SO_REUSEPORT: a second bind would fail) is served by the new process.
    assert!(new_log.contains("sockets=6"), "{new_log}");
    assert!(!new_log.contains("stats port not served"), "{new_log}");
    let mut stats = String::new();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", setup.stats)).unwrap();
    std::io::Read::read_to_string(&mut stream, &mut stats).unwrap();
    assert!(
        stats.starts_with('{') && stats.contains("\"tcp\""),
        "{stats}"
    );
    // The old process left the socket files to the new one.
    assert!(setup.socket().exists());
    assert!(!old_log.contains("removed the socket file"), "{old_log}");
}

#[test]
fn a_new_process_that_fails_after_taking_the_sockets_leaves_the_old_one_serving() {
    let setup = Setup::new();
    let pid_file = setup.dir.path().join("percore.pid");
    let pid_flag = ["-p", pid_file.to_str().unwrap()];
    let file = setup.file("percore.yml", "0600", "");
    let mut old = setup.percore(&file, &pid_flag);
    setup.wait_serving();
    let load = setup.load();
    load.wait_for_more(REQUESTS_EACH_SIDE, LOAD_TIMEOUT);

    // A third pool on a port another socket holds: the new process gets the sockets, starts
    // its cores, and fails when that pool cannot listen.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let seeds: String = (setup.cluster.seeds().split(','))
        .map(|seed| format!("   - {seed}\n"))
        .collect();
    let third = format!("\ntaken:\n  listen: 127.0.0.1:{taken_port}\n  cluster:\n{seeds}");
    let bad_file = setup.file("bad.yml", "0600", &third);
    let mut bad = setup.percore(&bad_file, &pid_flag);
    let code = bad.wait_exit(EXIT_TIMEOUT);
    assert!(matches!(code, Some(c) if c != 0), "{code:?}\n{}", bad.log());
    let bad_log = bad.log();
    assert!(
        bad_log.contains("upgrade: took the listening sockets"),
        "{bad_log}"
    );
    assert!(bad_log.contains("upgrade failed"), "{bad_log}");
    wait_until("the old process to log the rollback", READY_TIMEOUT, || {
        old.log()
            .contains("upgrade rolled back: this process serves on")
    });
    assert!(old.is_running());
    assert_eq!(setup.pids(), (old.pid(), old.pid()));
    let pid_text = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(
        pid_text,
        old.pid().to_string(),
        "the pid file names the old one again"
    );
    load.wait_for_more(REQUESTS_EACH_SIDE, LOAD_TIMEOUT);

    // The next upgrade, with one thread where the old one had two: its one core accepts
    // from both of the old cores' TCP sockets.
    let mut new = setup.percore(&file, &["--threads", "1", pid_flag[0], pid_flag[1]]);
    assert_eq!(old.wait_exit(EXIT_TIMEOUT), Some(0), "{}", old.log());
    load.wait_for_more(REQUESTS_EACH_SIDE, LOAD_TIMEOUT);
    let tally = load.stop();
    assert!(new.is_running(), "{}", new.log());
    assert_eq!(setup.pids(), (new.pid(), new.pid()));
    assert_clean(&tally);
    let new_log = new.log();
    let tcp_line = new_log
        .lines()
        .find(|l| l.contains("accepting clients") && l.contains("pool=tcp"));
    assert!(
        tcp_line.is_some_and(|l| l.contains("sockets=2")),
        "{new_log}"
    );
    let pid_text = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(
        pid_text,
        new.pid().to_string(),
        "the old one left the file to the new"
    );
    drop(taken);
}

#[test]
fn systemd_hears_ready_and_mainpid_from_the_new_process_and_no_stopping_from_the_old() {
    let mut setup = Setup::new();
    let socket = NotifySocket::bind_waiting(setup.dir.path(), NOTIFY_WAIT);
    let env = [("NOTIFY_SOCKET", socket.env_value())];
    let file = setup.file("percore.yml", "0600", "");
    let args = ["-c", file.to_str().unwrap(), "--log-level", "info"];
    let mut old = Proxy::start_with_args_env(setup.port, &args, &env);
    let ready = socket.next();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(!ready.contains("MAINPID="), "{ready}");

    // A request in flight on the old process (its master paused), so that it is still
    // draining when the new one is ready.
    let (master, key) = key_on_each_master(&setup.cluster, "upgrade:slow").remove(0);
    setup.cluster.pause(master, true);
    let mut slow = Conn::connect(setup.port);
    slow.send_raw(&common::encode(&[b"GET", key.as_bytes()]));
    let mut new = Proxy::start_with_args_env(setup.port, &args, &env);
    // The unit's main process is the new one from here, said with its readiness, which
    // waits for the old process to stop accepting.
    let ready = socket.next();
    // A stop signal to the draining old process is a first one: the drain goes on.
    old.signal("-TERM");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    let main_pid = format!("MAINPID={}", new.pid());
    assert!(ready.lines().any(|l| l == main_pid), "{ready}");
    let log = new.log();
    let took_over = log.find("upgrade: took over").expect("took over");
    assert!(
        log[took_over..].contains("every core accepts clients: ready"),
        "{log}"
    );
    wait_until("the old process to take the signal", READY_TIMEOUT, || {
        old.log().contains("stop signal: no new clients")
    });
    setup.cluster.pause(master, false);
    assert_eq!(
        slow.read_value(),
        Value::Bulk(None),
        "answered in the drain"
    );
    assert_eq!(old.wait_exit(EXIT_TIMEOUT), Some(0), "{}", old.log());
    assert!(!old.log().contains("second stop signal"), "{}", old.log());
    // The old process drained without STOPPING=1: the service did not stop.
    let said = socket.within(QUIET_WAIT);
    assert!(said.is_none(), "{said:?}");
    new.signal("-TERM");
    let stopping = socket.next();
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
    assert_eq!(new.wait_exit(EXIT_TIMEOUT), Some(0));
}

/// Batches per connection in the measurement: a new connection for every one, so
/// connections keep arriving in the listeners' queues.
const MEASURE_CHURN: u64 = 1;

/// Log filter for the measurement: every connection percore accepts is logged, with the
/// client's port, when it ends (`client disconnected peer=...`), and little else.
const ACCEPT_LOG: &str = "info,percore::shard::client=debug";

/// The client ports of the connections a percore accepted, read from its log.
fn accepted_ports(log: &str) -> HashSet<u16> {
    let port = |line: &str| {
        let peer = line.split("peer=Some(").nth(1)?.split(')').next()?;
        peer.rsplit(':').next()?.parse().ok()
    };
    log.lines()
        .filter(|line| line.contains("client disconnected"))
        .filter_map(port)
        .collect()
}

/// The clients' connections that no percore accepted: established by the kernel (the
/// client's connect returned), queued on a listener, and reset when it closed.
fn never_accepted(tally: &Tally, logs: &[String]) -> usize {
    let accepted: HashSet<u16> = logs.iter().flat_map(|log| accepted_ports(log)).collect();
    tally.ports.iter().filter(|p| !accepted.contains(p)).count()
}

/// The claim the handover answers, measured (run by hand, it asserts nothing): with
/// SO_REUSEPORT alone, a new process binding the same address and the old one stopped with
/// SIGTERM, connections queued on the old process's listeners when it closes them are reset.
/// `cargo test --test upgrade -- --ignored --nocapture` prints, per round, what the clients
/// saw and how many of their connections neither percore ever accepted, next to the same
/// load across a handover.
#[test]
#[ignore = "a measurement, printed; run with --ignored --nocapture"]
fn measure_so_reuseport_alone_against_the_handover() {
    const ROUNDS: usize = 5;
    let setup = Setup::new();
    let seeds = setup.cluster.seeds();
    let listen = format!("127.0.0.1:{}", setup.port);
    let flags = [
        "--listen",
        &listen,
        "--cluster",
        &seeds,
        "--threads",
        "2",
        "--log-level",
        ACCEPT_LOG,
    ];
    let serving = || {
        wait_until("percore to serve", READY_TIMEOUT, || {
            try_cmd(setup.port, "SET upgrade:ready 1") == Some(Value::ok())
        })
    };
    for round in 0..ROUNDS {
        let mut old = Proxy::start_with_args(setup.port, &flags);
        serving();
        let load = Load::start_churning(
            &[Target::Tcp(setup.port)],
            2 * CLIENTS_PER_POOL,
            MEASURE_CHURN,
        );
        load.wait_for_more(REQUESTS_EACH_SIDE, LOAD_TIMEOUT);
        let mut new = Proxy::start_with_args(setup.port, &flags);
        wait_until("the new process to listen", READY_TIMEOUT, || {
            new.log().contains("every core accepts clients: ready")
        });
        old.signal("-TERM");
        assert_eq!(old.wait_exit(EXIT_TIMEOUT), Some(0));
        load.wait_for_more(REQUESTS_EACH_SIDE, LOAD_TIMEOUT);
        let tally = load.stop();
        new.signal("-TERM");
        assert_eq!(new.wait_exit(EXIT_TIMEOUT), Some(0));
        let lost = never_accepted(&tally, &[old.log(), new.log()]);
        eprintln!(
            "SO_REUSEPORT alone, round {round}: never accepted {lost}; {}",
            tally.summary()
        );
    }
    let file = setup.file("percore.yml", "0600", "");
    let args = ["-c", file.to_str().unwrap(), "--log-level", ACCEPT_LOG];
    let mut old = Proxy::start_with_args(setup.port, &args);
    setup.wait_serving();
    // Each round's tally is read against every log once every process has exited, so the
    // last connections' ends are in the logs.
    let (mut logs, mut tallies) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let load = Load::start_churning(
            &[Target::Tcp(setup.port)],
            2 * CLIENTS_PER_POOL,
            MEASURE_CHURN,
        );
        load.wait_for_more(REQUESTS_EACH_SIDE, LOAD_TIMEOUT);
        let new = Proxy::start_with_args(setup.port, &args);
        assert_eq!(old.wait_exit(EXIT_TIMEOUT), Some(0));
        load.wait_for_more(REQUESTS_EACH_SIDE, LOAD_TIMEOUT);
        tallies.push(load.stop());
        logs.push(old.log());
        old = new;
    }
    old.signal("-TERM");
    assert_eq!(old.wait_exit(EXIT_TIMEOUT), Some(0));
    logs.push(old.log());
    for (round, tally) in tallies.iter().enumerate() {
        let lost = never_accepted(tally, &logs);
        eprintln!(
            "handover, round {round}: never accepted {lost}; {}",
            tally.summary()
        );
    }
}
