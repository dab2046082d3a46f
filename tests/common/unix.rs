//! Unix socket fixtures: redis-servers that also listen on a socket file, percore serving a
//! pool on a socket path (readiness polled by connecting to the path, killed on `Drop`), and
//! [`super::Conn::connect_unix`] for clients.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{die_with_the_test, wait_until, Conn, RedisServer};

/// How long percore may take to listen on its socket.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a readiness PING may wait (a socket nobody accepts on never answers).
const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// A redis-server on a free port that also listens on the socket `path` (owner-only, as a
/// server's socket usually is: percore runs as the same user).
pub fn redis_on_socket(path: &Path) -> RedisServer {
    let path = path.to_str().expect("a UTF-8 path");
    let server = RedisServer::start_with(&["--unixsocket", path, "--unixsocketperm", "700"]);
    wait_until(&format!("redis-server on {path}"), READY_TIMEOUT, || {
        UnixStream::connect(path).is_ok()
    });
    server
}

/// A percore process serving a configuration file whose pool listens on a Unix socket.
pub struct UnixProxy {
    /// The pool's socket path.
    pub path: PathBuf,
    child: Child,
    log: PathBuf,
}

impl UnixProxy {
    /// Starts percore with `-c file` and `extra`, and waits until it answers PING on `path`
    /// (or exits, which fails the test with its log). A connect alone is not enough: a socket
    /// file left by a killed process can take connections for a moment after it is gone.
    pub fn start(file: &Path, path: &Path, extra: &[&str]) -> UnixProxy {
        let mut proxy = UnixProxy::spawn(file, path, extra);
        let deadline = Instant::now() + READY_TIMEOUT;
        while try_ping(path).is_none() {
            let exited = proxy.child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "percore not listening on {} ({exited:?}); log:\n{}",
                path.display(),
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }

    /// Starts percore without waiting for anything (for a start that must fail).
    pub fn spawn(file: &Path, path: &Path, extra: &[&str]) -> UnixProxy {
        let log = file.with_file_name(format!("percore-{}.log", next_number()));
        let child = die_with_the_test(Command::new(env!("CARGO_BIN_EXE_percore")))
            .arg("-c")
            .arg(file)
            .args(["--log-level", "debug"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start percore");
        UnixProxy {
            path: path.to_path_buf(),
            child,
            log,
        }
    }

    /// A new client connection on the socket.
    pub fn conn(&self) -> Conn {
        Conn::connect_unix(&self.path)
    }

    /// The proxy's log (standard error) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (a clean stop).
    pub fn terminate(&self) {
        // SAFETY: kill only sends a signal to the child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }

    /// Waits up to `timeout` for the process to exit; its exit code, or `None` if it runs on.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for UnixProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// PING on a fresh connection to `path`: `Some` once answered PONG.
fn try_ping(path: &Path) -> Option<()> {
    let mut stream = UnixStream::connect(path).ok()?;
    stream.set_read_timeout(Some(PING_TIMEOUT)).ok()?;
    stream.write_all(b"PING\r\n").ok()?;
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).ok()?;
    (&reply == b"+PONG\r\n").then_some(())
}

/// A number that differs between calls, so two proxies of one test get two log files.
fn next_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
