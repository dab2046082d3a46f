//! Test fixtures: a real Redis Cluster of redis-server processes, the percore binary in front
//! of it, and a small blocking RESP client.
//!
//! Every node runs from its own temp dir on a free loopback port (and its cluster bus port);
//! readiness is polled (PING, `cluster_state:ok`, agreeing slot maps), never slept for; and
//! `Drop` kills every process, so nothing outlives a test, even a failing one. A missing
//! redis-server fails the test with the command that installs it.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod notify;
pub mod nutcracker;
pub mod pool;
pub mod reconnecting;
pub mod sentinel;
pub mod sidecar;
pub mod tls;
pub mod unix;

/// How long a reply may take before a test fails instead of hanging.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cluster or proxy may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between readiness polls.
const POLL: Duration = Duration::from_millis(20);

/// A RESP value as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Value>>),
}

impl Value {
    /// A bulk string value.
    pub fn bulk(s: &str) -> Value {
        Value::Bulk(Some(s.as_bytes().to_vec()))
    }

    /// `+OK`.
    pub fn ok() -> Value {
        Value::Simple("OK".into())
    }

    /// The bytes of a bulk string.
    pub fn as_bulk(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(Some(b)) => Some(b),
            _ => None,
        }
    }

    /// The integer of an integer reply.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Text of a bulk or simple string, lossy.
    pub fn text(&self) -> String {
        match self {
            Value::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Value::Simple(s) | Value::Error(s) => s.clone(),
            other => format!("{other:?}"),
        }
    }

    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Value::Error(_))
    }
}

/// What a [`Conn`] talks over: a TCP connection, or a Unix socket's.
pub trait Wire: Read + Write + Send {
    /// As the std streams' own `set_read_timeout`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()>;

    /// The connection's own TCP port (`None` for a Unix socket).
    fn local_port(&self) -> Option<u16> {
        None
    }
}

impl Wire for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn local_port(&self) -> Option<u16> {
        self.local_addr().ok().map(|addr| addr.port())
    }
}

impl Wire for std::os::unix::net::UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }
}

/// A blocking RESP connection with a read timeout, over TCP or a Unix socket.
pub struct Conn {
    stream: Box<dyn Wire>,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects to 127.0.0.1:`port`.
    pub fn connect(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn {
            stream: Box::new(stream),
            buf: Vec::new(),
        }
    }

    /// Connects to the Unix socket at `path`.
    pub fn connect_unix(path: &std::path::Path) -> Conn {
        let stream = std::os::unix::net::UnixStream::connect(path).expect("connect to the socket");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        Conn {
            stream: Box::new(stream),
            buf: Vec::new(),
        }
    }

    /// Connects to 127.0.0.1:`port`, or says why not (for clients that retry).
    pub fn try_connect(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: Box::new(stream),
            buf: Vec::new(),
        })
    }

    /// Connects to the Unix socket at `path`, or says why not.
    pub fn try_connect_unix(path: &std::path::Path) -> std::io::Result<Conn> {
        let stream = std::os::unix::net::UnixStream::connect(path)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        Ok(Conn {
            stream: Box::new(stream),
            buf: Vec::new(),
        })
    }

    /// The client's own TCP port, which the proxy sees as the peer's (`None` over a Unix
    /// socket).
    pub fn local_port(&self) -> Option<u16> {
        self.stream.local_port()
    }

    /// Writes raw bytes, or says why they could not be (the server closed, say).
    pub fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The next reply, or the error that ended the wait for it: `UnexpectedEof` when the
    /// server closed the connection, a timeout after [`READ_TIMEOUT`].
    pub fn try_read_value(&mut self) -> std::io::Result<Value> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(len) = frame_len(&self.buf, 0) {
                let raw: Vec<u8> = self.buf.drain(..len).collect();
                return Ok(parse(&raw, &mut 0));
            }
            match self.stream.read(&mut chunk)? {
                0 => return Err(ErrorKind::UnexpectedEof.into()),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Writes raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a command and reads its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Value {
        self.send_raw(&encode(args));
        self.read_value()
    }

    /// `cmd` with the arguments split on spaces.
    pub fn cmd_str(&mut self, line: &str) -> Value {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        self.cmd(&args)
    }

    /// Writes all commands, then reads all replies.
    pub fn pipeline(&mut self, commands: &[Vec<Vec<u8>>]) -> Vec<Value> {
        let mut wire = Vec::new();
        for command in commands {
            let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
            wire.extend(encode(&args));
        }
        self.send_raw(&wire);
        commands.iter().map(|_| self.read_value()).collect()
    }

    /// The exact bytes of the next reply.
    pub fn read_raw_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some(len) = frame_len(&self.buf, 0) {
                return self.buf.drain(..len).collect();
            }
            self.fill();
        }
    }

    /// The next reply, parsed.
    pub fn read_value(&mut self) -> Value {
        let raw = self.read_raw_reply();
        parse(&raw, &mut 0)
    }

    /// Asserts the server closes the connection (after any bytes still to come).
    pub fn expect_closed(&mut self) {
        let mut chunk = [0u8; 4096];
        let deadline = Instant::now() + READ_TIMEOUT;
        while Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
                Err(e) => panic!("expected the connection to close, got {e}"),
            }
        }
        panic!("the connection was not closed");
    }

    /// The exact bytes of the next reply if one arrives within `wait`, else `None` (for
    /// checking that nothing more comes).
    pub fn try_read_raw_reply(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let mut chunk = [0u8; 64 * 1024];
        loop {
            if let Some(len) = frame_len(&self.buf, 0) {
                return Some(self.buf.drain(..len).collect());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let read = self.stream.read(&mut chunk);
            self.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            match read {
                Ok(0) => panic!("connection closed while waiting for a reply"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!("connection closed while waiting for a reply"),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("no reply within {READ_TIMEOUT:?}: {e}"),
        }
    }
}

/// Encodes a command as a multibulk.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|p| from + p)
}

/// Length of the complete reply starting at `at`, if complete. RESP3 types are framed too
/// (a map's pairs count twice; an attribute is framed with the value after it). Iterative, so
/// replies nested thousands deep frame too.
fn frame_len(buf: &[u8], at: usize) -> Option<usize> {
    // Values still to read in each open aggregate (attributes add one for their value).
    let mut open: Vec<i64> = vec![1];
    let mut pos = at;
    while let Some(left) = open.last_mut() {
        if *left == 0 {
            open.pop();
            continue;
        }
        *left -= 1;
        let end = line_end(buf, pos)?;
        let header = std::str::from_utf8(&buf[pos + 1..end]).ok()?;
        let kind = buf[pos];
        pos = end + 2;
        match kind {
            b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
            b'$' | b'=' | b'!' => {
                let n: i64 = header.parse().ok()?;
                if n >= 0 {
                    pos += n as usize + 2;
                    if pos > buf.len() {
                        return None;
                    }
                }
            }
            b'*' | b'%' | b'~' | b'>' | b'|' => {
                let n: i64 = header.parse().ok()?;
                let items = if matches!(kind, b'%' | b'|') {
                    n * 2
                } else {
                    n
                };
                if kind == b'|' {
                    // The attribute is followed by the value it describes.
                    if let Some(left) = open.last_mut() {
                        *left += 1;
                    }
                }
                open.push(items.max(0));
            }
            other => panic!(
                "bad reply type byte {other:?} in {:?}",
                String::from_utf8_lossy(buf)
            ),
        }
    }
    Some(pos - at)
}

fn parse(buf: &[u8], pos: &mut usize) -> Value {
    let end = line_end(buf, *pos).expect("complete frame");
    let kind = buf[*pos];
    let header = String::from_utf8_lossy(&buf[*pos + 1..end]).into_owned();
    *pos = end + 2;
    match kind {
        b'+' | b',' | b'#' | b'(' => Value::Simple(header),
        b'-' => Value::Error(header),
        b':' => Value::Int(header.parse().unwrap()),
        b'_' => Value::Bulk(None),
        b'|' => {
            let n: i64 = header.parse().unwrap();
            for _ in 0..n * 2 {
                parse(buf, pos);
            }
            parse(buf, pos)
        }
        b'!' => {
            let n: usize = header.parse().unwrap();
            let text = String::from_utf8_lossy(&buf[*pos..*pos + n]).into_owned();
            *pos += n + 2;
            Value::Error(text)
        }
        b'$' | b'=' => {
            // A verbatim string keeps its `txt:` prefix, so a test sees what was sent.
            let n: i64 = header.parse().unwrap();
            if n < 0 {
                return Value::Bulk(None);
            }
            let data = buf[*pos..*pos + n as usize].to_vec();
            *pos += n as usize + 2;
            Value::Bulk(Some(data))
        }
        // A map is shown as the flat array RESP2 would send.
        b'*' | b'%' | b'~' | b'>' => {
            let n: i64 = header.parse().unwrap();
            if n < 0 {
                return Value::Array(None);
            }
            let n = if kind == b'%' { n * 2 } else { n };
            Value::Array(Some((0..n).map(|_| parse(buf, pos)).collect()))
        }
        _ => unreachable!(),
    }
}

/// Makes the child killed by the kernel if the test's thread ends without dropping its fixture
/// (a test process that aborts, say on a stack overflow, runs no `Drop`): no server outlives
/// its test.
pub fn die_with_the_test(mut command: Command) -> Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl only sets a flag of the child about to exec; nothing is allocated.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
}

/// A loopback port that is free, with its cluster bus port (+10000) free too.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair found");
}

fn require(binary: &str) {
    let found = Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "{binary} not found on PATH: install it with `apt-get update && apt-get install -y redis-server`"
    );
}

/// Polls `check` until it holds, or panics after `timeout` with `what`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(POLL);
    }
    panic!("timed out waiting for {what}");
}

/// Sends one command to a port on a fresh connection; `None` if it cannot connect.
pub fn try_cmd(port: u16, line: &str) -> Option<Value> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut conn = Conn {
        stream: Box::new(stream),
        buf: Vec::new(),
    };
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    conn.send_raw(&encode(&args));
    let mut chunk = [0u8; 64 * 1024];
    loop {
        if let Some(len) = frame_len(&conn.buf, 0) {
            return Some(parse(&conn.buf[..len], &mut 0));
        }
        match conn.stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One redis-server process of the cluster.
pub struct RedisNode {
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl RedisNode {
    fn start(port: u16, dir: TempDir) -> RedisNode {
        let mut node = RedisNode {
            port,
            dir,
            child: None,
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let dir = self.dir.path();
        let child = die_with_the_test(Command::new("redis-server"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args([
                "--cluster-node-timeout",
                "2000",
                "--appendonly",
                "no",
                "--save",
                "",
            ])
            // As Redis's own test suite runs its servers: DEBUG works from loopback.
            .args(["--enable-debug-command", "local"])
            .args(["--protected-mode", "no", "--dir"])
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let port = self.port;
        wait_until(&format!("redis-server on {port}"), READY_TIMEOUT, || {
            try_cmd(port, "PING") == Some(Value::Simple("PONG".into()))
        });
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Kills the process at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The node's cluster id.
    pub fn id(&self) -> String {
        self.cmd("CLUSTER MYID").text()
    }

    /// Runs a command on this node.
    pub fn cmd(&self, line: &str) -> Value {
        Conn::connect(self.port).cmd_str(line)
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
            assert!(status.is_ok_and(|s| s.success()), "kill {signal} failed");
        }
    }
}

impl Drop for RedisNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A standalone redis-server (no cluster mode), as a static pool's servers are.
pub struct RedisServer {
    pub port: u16,
    dir: TempDir,
    child: Child,
}

impl RedisServer {
    /// Starts a redis-server on a free port and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// `start` with more redis-server options (e.g. `["--databases", "128"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        require("redis-server");
        let port = free_port();
        let dir = TempDir::new().unwrap();
        let child = RedisServer::spawn(port, &dir, extra);
        let server = RedisServer { port, dir, child };
        server.wait_ready();
        server
    }

    /// Starts a (killed) server again on the same port and directory, empty, and waits
    /// until it answers PING: a crashed server that comes back.
    pub fn restart(&mut self) {
        self.kill();
        self.child = RedisServer::spawn(self.port, &self.dir, &[]);
        self.wait_ready();
    }

    /// `restart` with redis-server options (the ones it was started with, say, to load its
    /// append-only file again).
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.kill();
        self.child = RedisServer::spawn(self.port, &self.dir, extra);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let port = self.port;
        wait_until(&format!("redis-server on {port}"), READY_TIMEOUT, || {
            try_cmd(port, "PING") == Some(Value::Simple("PONG".into()))
        });
    }

    fn spawn(port: u16, dir: &TempDir, extra: &[&str]) -> Child {
        die_with_the_test(Command::new("redis-server"))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--appendonly", "no", "--save", "", "--protected-mode", "no"])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("redis.log"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server")
    }

    /// A new connection to the server.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Kills the process at once (SIGKILL), as a crashed server.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis Cluster of real redis-server processes.
pub struct RedisCluster {
    pub nodes: Vec<RedisNode>,
    masters: usize,
}

impl RedisCluster {
    /// Starts `masters` masters with `replicas` replicas each and waits until every node
    /// reports `cluster_state:ok` with the same slot map.
    pub fn start(masters: usize, replicas: usize) -> RedisCluster {
        require("redis-server");
        require("redis-cli");
        let nodes: Vec<RedisNode> = (0..masters * (1 + replicas))
            .map(|_| RedisNode::start(free_port(), TempDir::new().unwrap()))
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let output = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = RedisCluster { nodes, masters };
        cluster.wait_ok();
        // Replicas must have finished their first sync, or a failover cannot happen.
        for node in &cluster.nodes {
            let port = node.port;
            wait_until("replicas in sync", READY_TIMEOUT, || {
                let info = try_cmd(port, "INFO replication")
                    .map(|v| v.text())
                    .unwrap_or_default();
                !info.contains("role:slave") || info.contains("master_link_status:up")
            });
        }
        cluster
    }

    /// The ports of the nodes running now (not stopped by the test).
    fn running_ports(&self) -> Vec<u16> {
        let running = self.nodes.iter().filter(|n| n.child.is_some());
        running.map(|n| n.port).collect()
    }

    /// Waits until every running node agrees the cluster is ok and maps all slots alike.
    pub fn wait_ok(&self) {
        let ports = self.running_ports();
        wait_until("cluster_state:ok on every node", READY_TIMEOUT, || {
            let maps: Vec<Option<Vec<(i64, i64, i64)>>> =
                ports.iter().map(|&p| slot_ranges(p)).collect();
            ports.iter().all(|&p| {
                try_cmd(p, "CLUSTER INFO").is_some_and(|v| v.text().contains("cluster_state:ok"))
            }) && maps.iter().all(|m| m.is_some() && *m == maps[0])
                && maps[0]
                    .as_ref()
                    .is_some_and(|m| m.iter().map(|r| r.1 - r.0 + 1).sum::<i64>() == 16384)
        });
    }

    /// Waits until every running node's CLUSTER SLOTS lists `replicas` replicas for every
    /// range: right after the cluster is made, the replicas are known to the others only once
    /// gossip has carried them (a second or so), and a proxy asking earlier sees none.
    pub fn wait_replicas_listed(&self, replicas: usize) {
        let ports = self.running_ports();
        wait_until("every node to list the replicas", READY_TIMEOUT, || {
            ports.iter().all(|&port| {
                let Some(Value::Array(Some(ranges))) = try_cmd(port, "CLUSTER SLOTS") else {
                    return false;
                };
                ranges.iter().all(|range| match range {
                    // first, last, master, then one entry per replica.
                    Value::Array(Some(fields)) => fields.len() == 3 + replicas,
                    _ => false,
                })
            })
        });
    }

    /// `host:port` of every node, comma separated, for `--cluster`.
    pub fn seeds(&self) -> String {
        let list: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        list.join(",")
    }

    /// Ports of the nodes that are masters now.
    pub fn master_ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .live_slot_ranges()
            .unwrap_or_default()
            .iter()
            .map(|r| r.2 as u16)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The node on `port`.
    pub fn node(&mut self, port: u16) -> &mut RedisNode {
        self.nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("node on that port")
    }

    /// Slot of a key, as Redis computes it.
    pub fn keyslot(&self, key: &str) -> u16 {
        let mut conn = Conn::connect(self.nodes[0].port);
        conn.cmd(&[b"CLUSTER", b"KEYSLOT", key.as_bytes()])
            .as_int()
            .unwrap() as u16
    }

    /// Port of the master serving `slot`.
    pub fn master_for_slot(&self, slot: u16) -> u16 {
        let ranges = self.live_slot_ranges().expect("slot map");
        let range = ranges
            .iter()
            .find(|r| r.0 <= slot as i64 && slot as i64 <= r.1)
            .expect("slot served");
        range.2 as u16
    }

    /// Kills a node (SIGKILL).
    pub fn kill(&mut self, port: u16) {
        self.node(port).kill();
    }

    /// Starts a killed node again from its directory, and waits for the cluster to be ok.
    pub fn restart(&mut self, port: u16) {
        self.node(port).spawn();
        self.wait_ok();
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) a node.
    pub fn pause(&mut self, port: u16, paused: bool) {
        self.node(port)
            .signal(if paused { "-STOP" } else { "-CONT" });
    }

    /// Marks `slot` as migrating from `from` to `to` (keys move with `migrate_key`).
    pub fn begin_migration(&mut self, slot: u16, from: u16, to: u16) {
        let from_id = self.node(from).id();
        let to_id = self.node(to).id();
        assert_eq!(
            self.node(to)
                .cmd(&format!("CLUSTER SETSLOT {slot} IMPORTING {from_id}")),
            Value::ok()
        );
        assert_eq!(
            self.node(from)
                .cmd(&format!("CLUSTER SETSLOT {slot} MIGRATING {to_id}")),
            Value::ok()
        );
    }

    /// Moves one key from `from` to `to` with MIGRATE.
    pub fn migrate_key(&mut self, key: &str, from: u16, to: u16) {
        let mut conn = Conn::connect(from);
        let reply = conn.cmd(&[
            b"MIGRATE",
            b"127.0.0.1",
            to.to_string().as_bytes(),
            key.as_bytes(),
            b"0",
            b"5000",
        ]);
        assert_eq!(reply, Value::ok(), "MIGRATE {key}");
    }

    /// Gives `slot` to `to` on every master, ending a migration.
    pub fn finish_migration(&mut self, slot: u16, to: u16) {
        let to_id = self.node(to).id();
        for port in self.master_ports() {
            assert_eq!(
                self.node(port)
                    .cmd(&format!("CLUSTER SETSLOT {slot} NODE {to_id}")),
                Value::ok()
            );
        }
        self.wait_ok();
    }

    /// Moves `slot` with all its keys from `from` to `to`.
    pub fn move_slot(&mut self, slot: u16, from: u16, to: u16) {
        self.begin_migration(slot, from, to);
        loop {
            let keys = self
                .node(from)
                .cmd(&format!("CLUSTER GETKEYSINSLOT {slot} 100"));
            let Value::Array(Some(keys)) = keys else {
                panic!("GETKEYSINSLOT")
            };
            if keys.is_empty() {
                break;
            }
            for key in keys {
                self.migrate_key(&key.text(), from, to);
            }
        }
        self.finish_migration(slot, to);
    }

    /// CLUSTER SLOTS as seen by the first running node that answers.
    fn live_slot_ranges(&self) -> Option<Vec<(i64, i64, i64)>> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .find_map(|n| slot_ranges(n.port))
    }

    /// Number of masters the cluster was created with.
    pub fn masters(&self) -> usize {
        self.masters
    }
}

/// CLUSTER SLOTS of one node as (first, last, master port), sorted.
fn slot_ranges(port: u16) -> Option<Vec<(i64, i64, i64)>> {
    let Value::Array(Some(ranges)) = try_cmd(port, "CLUSTER SLOTS")? else {
        return None;
    };
    let mut out = Vec::new();
    for range in ranges {
        let Value::Array(Some(fields)) = range else {
            return None;
        };
        let Value::Array(Some(master)) = &fields[2] else {
            return None;
        };
        out.push((
            fields[0].as_int()?,
            fields[1].as_int()?,
            master[1].as_int()?,
        ));
    }
    out.sort_unstable();
    Some(out)
}

/// A percore process in front of a cluster.
pub struct Proxy {
    pub port: u16,
    child: Child,
    log: PathBuf,
    _dir: TempDir,
}

impl Proxy {
    /// Starts percore with 2 threads and waits until it serves the cluster.
    pub fn start(cluster: &RedisCluster, extra: &[&str]) -> Proxy {
        let proxy = Proxy::start_with_seeds(&cluster.seeds(), extra);
        let port = proxy.port;
        wait_until("percore to serve the cluster", READY_TIMEOUT, || {
            try_cmd(port, "SET percore:ready 1") == Some(Value::ok())
        });
        proxy
    }

    /// Starts percore with the given seeds; waits only until it accepts connections.
    pub fn start_with_seeds(seeds: &str, extra: &[&str]) -> Proxy {
        Proxy::start_with_env(seeds, extra, &[])
    }

    /// Starts percore with the given seeds and environment variables; waits only until it
    /// accepts connections.
    pub fn start_with_env(seeds: &str, extra: &[&str], env: &[(&str, &str)]) -> Proxy {
        Proxy::start_on_with_env(free_port(), seeds, extra, env)
    }

    /// Starts percore on 127.0.0.1:`port` with the given seeds; waits only until it accepts
    /// connections.
    pub fn start_on(port: u16, seeds: &str, extra: &[&str]) -> Proxy {
        Proxy::start_on_with_env(port, seeds, extra, &[])
    }

    /// Starts percore on 127.0.0.1:`port` with the given seeds and environment variables.
    fn start_on_with_env(port: u16, seeds: &str, extra: &[&str], env: &[(&str, &str)]) -> Proxy {
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["--listen", &listen, "--cluster", seeds];
        args.extend(["--threads", "2", "--log-level", "debug"]);
        args.extend(extra);
        Proxy::spawn(port, &args, env)
    }

    /// Starts percore with exactly `args` (a configuration file, say), which must make it
    /// listen on 127.0.0.1:`port`; waits only until it accepts connections.
    pub fn start_with_args(port: u16, args: &[&str]) -> Proxy {
        Proxy::spawn(port, args, &[])
    }

    /// `start_with_args` with environment variables set for the process.
    pub fn start_with_args_env(port: u16, args: &[&str], env: &[(&str, &str)]) -> Proxy {
        Proxy::spawn(port, args, env)
    }

    /// `start_with_args`, but `None` when percore exits before it accepts connections (its
    /// port was taken since it was found free, say), so the caller can try another port.
    pub fn try_start_with_args(port: u16, args: &[&str]) -> Option<Proxy> {
        let mut proxy = Proxy::launch(port, args, &[]);
        let deadline = Instant::now() + READY_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if !proxy.is_running() || Instant::now() > deadline {
                eprintln!("percore did not start on {port}:\n{}", proxy.log());
                return None;
            }
            std::thread::sleep(POLL);
        }
        Some(proxy)
    }

    fn spawn(port: u16, args: &[&str], env: &[(&str, &str)]) -> Proxy {
        let proxy = Proxy::launch(port, args, env);
        wait_until("percore to accept connections", READY_TIMEOUT, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        proxy
    }

    /// Starts the process, without waiting for it.
    fn launch(port: u16, args: &[&str], env: &[(&str, &str)]) -> Proxy {
        let dir = TempDir::new().unwrap();
        let log = dir.path().join("percore.log");
        let child = die_with_the_test(Command::new(env!("CARGO_BIN_EXE_percore")))
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start percore");
        Proxy {
            port,
            child,
            log,
            _dir: dir,
        }
    }

    /// A new client connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// The proxy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().map(|s| s.is_none()).unwrap_or(false)
    }

    /// Sends a signal (e.g. "-TERM") to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill {signal} failed");
    }

    /// Waits up to `timeout` for the process to exit; its exit code, or `None` if it runs on.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(POLL);
        }
        None
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A key per master: for each master port, a key (with `prefix`) whose slot it serves.
/// Wrap it in braces (`{key}:suffix`) to derive more keys in the same slot.
pub fn key_on_each_master(cluster: &RedisCluster, prefix: &str) -> Vec<(u16, String)> {
    let mut found: Vec<(u16, String)> = Vec::new();
    for i in 0..10_000 {
        let key = format!("{prefix}{i}");
        let port = cluster.master_for_slot(slot_of(&key));
        if !found.iter().any(|(p, _)| *p == port) {
            found.push((port, key));
        }
        if found.len() == cluster.masters() {
            break;
        }
    }
    found
}

/// `calls` of `cmdstat_<command>` in a node's INFO commandstats (0 before the first).
pub fn command_calls(port: u16, command: &str) -> u64 {
    let info = Conn::connect(port).cmd_str("INFO commandstats").text();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// One key per slot, so a pipeline of them proves every slot is served.
pub fn key_per_slot() -> Vec<String> {
    let mut keys: Vec<Option<String>> = vec![None; 16384];
    let mut missing = 16384;
    let mut n = 0u64;
    while missing > 0 {
        let key = format!("slot:{n}");
        let slot = slot_of(&key) as usize;
        if keys[slot].is_none() {
            keys[slot] = Some(key);
            missing -= 1;
        }
        n += 1;
    }
    keys.into_iter().flatten().collect()
}

/// Slot of a key, computed the way Redis does (checked against CLUSTER KEYSLOT in tests).
pub fn slot_of(key: &str) -> u16 {
    percore::cluster::slot::Slot::for_key(key.as_bytes()).get()
}

/// Open client connections summed over the cores of a `PROXY INFO` report.
pub fn open_clients(proxy_info: &str) -> u64 {
    proxy_info
        .lines()
        .filter(|l| l.starts_with("core"))
        .filter_map(|l| {
            l.split("clients=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}
