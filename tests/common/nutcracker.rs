//! A real nutcracker (twemproxy) for tests that compare static pools with it: started from a
//! YAML text with its stats on a free port (never the shared default 22222), readiness polled
//! on every pool's port, killed on `Drop` and with the test (`die_with_the_test`). A missing
//! nutcracker fails the test with the command that installs it.

use std::collections::HashSet;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::die_with_the_test;

/// How long nutcracker may take to listen on every pool's port.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// The nutcracker binary: on PATH, or where Debian's package puts it.
pub fn nutcracker_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("nutcracker"))
        .find(|candidate| candidate.is_file());
    let debian = Path::new("/usr/sbin/nutcracker");
    match on_path {
        Some(found) => found,
        None if debian.is_file() => debian.to_path_buf(),
        None => panic!(
            "nutcracker (twemproxy) not found on PATH or at /usr/sbin/nutcracker: install it \
             with `apt-get update && apt-get install -y nutcracker`"
        ),
    }
}

/// A running nutcracker with its configuration and log in a temp dir; killed on drop.
pub struct Nutcracker {
    child: Child,
    dir: TempDir,
    /// The port its JSON stats are served on.
    pub stats_port: u16,
}

impl Nutcracker {
    /// Starts nutcracker with `yaml` (stats on a free port, not the shared default 22222) and
    /// waits until every port in `ports` accepts connections; why not, if it exits first
    /// (another process took one of the ports since they were found free) or times out.
    pub fn start(yaml: &str, ports: &[u16]) -> Result<Nutcracker, String> {
        Nutcracker::start_with(yaml, ports, &[])
    }

    /// [`Nutcracker::start`] with more options (`-i 100`, say).
    pub fn start_with(yaml: &str, ports: &[u16], extra: &[&str]) -> Result<Nutcracker, String> {
        let binary = nutcracker_binary();
        let dir = TempDir::new().unwrap();
        let conf = dir.path().join("nutcracker.yml");
        std::fs::write(&conf, yaml).unwrap();
        let stats = free_ports(1, &ports.iter().copied().collect())[0];
        let child = die_with_the_test(Command::new(&binary))
            .arg("-c")
            .arg(&conf)
            .args(["-s", &stats.to_string(), "-a", "127.0.0.1", "-o"])
            .arg(dir.path().join("nutcracker.log"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nutcracker");
        let mut nutcracker = Nutcracker {
            child,
            dir,
            stats_port: stats,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        for &port in ports {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                let exited = nutcracker.child.try_wait().ok().flatten();
                if exited.is_some() || Instant::now() > deadline {
                    let log = nutcracker.log();
                    return Err(format!("not listening on {port} ({exited:?}); log:\n{log}"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // It binds every pool before serving any: still running means all ports are its own.
        match nutcracker.child.try_wait() {
            Ok(None) => Ok(nutcracker),
            exited => Err(format!("exited ({exited:?}); log:\n{}", nutcracker.log())),
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nutcracker.log")).unwrap_or_default()
    }
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `count` free loopback ports, distinct from each other and from `taken`.
pub fn free_ports(count: usize, taken: &HashSet<u16>) -> Vec<u16> {
    let mut ports = Vec::new();
    while ports.len() < count {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind a free port")
            .port();
        if !taken.contains(&port) && !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

/// The JSON object the stats port at `port` writes, if it parses.
pub fn stats_json(port: u16) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    match serde_json::from_str(&text) {
        Ok(serde_json::Value::Object(map)) => Some(map),
        _ => panic!("not a JSON object: {text}"),
    }
}
