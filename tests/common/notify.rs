//! A service manager's notification socket (systemd's `NOTIFY_SOCKET`), for tests that read
//! what percore tells it: a datagram socket bound in the test's own directory.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest a test waits for one notification.
pub const NOTIFY_WAIT: Duration = Duration::from_secs(10);

/// A bound notification socket.
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    /// How long [`NotifySocket::next`] waits.
    wait: Duration,
}

impl NotifySocket {
    /// Binds `notify.sock` in `dir`; [`NotifySocket::next`] waits [`NOTIFY_WAIT`].
    pub fn bind(dir: &Path) -> NotifySocket {
        NotifySocket::bind_waiting(dir, NOTIFY_WAIT)
    }

    /// Binds `notify.sock` in `dir`; [`NotifySocket::next`] waits `wait`.
    pub fn bind_waiting(dir: &Path, wait: Duration) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifySocket { socket, path, wait }
    }

    /// What `NOTIFY_SOCKET` must say.
    pub fn env_value(&self) -> &str {
        self.path.to_str().expect("a UTF-8 temp path")
    }

    /// The next notification, as text; panics when none comes within the socket's wait.
    pub fn next(&self) -> String {
        self.within(self.wait)
            .expect("a notification within the wait")
    }

    /// The next notification, if one comes within `wait`.
    pub fn within(&self, wait: Duration) -> Option<String> {
        self.socket
            .set_read_timeout(Some(wait))
            .expect("set a read timeout");
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }
}
