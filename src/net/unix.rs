//! A pool's Unix socket: bound once for the process, accepted from by every core.
//!
//! Why one socket for all cores, not one per core as for TCP: Linux has SO_REUSEPORT for TCP
//! and UDP only; a path names one socket, and a second bind on it fails with EADDRINUSE. So
//! the process binds the path once at start ([`UnixSocketFile::bind`], from `runtime`), gives
//! each core its own descriptor of that one listening socket ([`UnixSocketFile::share`]), and
//! each core accepts from it through its own io_uring, exactly as it accepts TCP
//! (`Listener::shared`). The kernel queues the cores' pending accepts on the socket's wait
//! queue as exclusive waiters (io_uring arms accept's poll with `EPOLLEXCLUSIVE`), so a new
//! connection wakes one core, not all of them; a core re-arms after each accept and goes to the
//! back of the queue, so connections go round the cores, and a busy core, slower to re-arm,
//! takes fewer. A connection never leaves the core that accepted it: the request path has no
//! cross-core hop, as for TCP. Measured with `--threads 2` (tests/pool_unix.rs prints it):
//! 200 connections made one after another split 100/100 every time (the cores' accepts are
//! woken in turn); 200 opened at once from 8 threads split anywhere from 50/50 to 11/89 on a
//! 2-core machine shared with other builds, since queued connections go to whichever core
//! accepts next and a core the OS has not scheduled takes none meanwhile (SO_REUSEPORT's hash
//! would queue them on the stalled core instead). Rejected: one core accepting and handing
//! descriptors to the others over the mesh (a cross-core message and an extra wake-up per
//! connection, and the accepting core a bottleneck), and a socket per core at `path.N`
//! (clients would have to pick one).
//!
//! The file: nutcracker unlinks whatever is at the path before binding, which would silently
//! take the path from a live server (another nutcracker, or a percore still running). Here an
//! existing socket is removed only when nothing listens on it (a connect is refused), anything
//! else is a clear error, and the file this process made is removed when it stops (only if the
//! path still names that file: a new process may already have taken the path over).
//!
//! Upgrades (`upgrade`) hand a listening socket, file and all, from one process to the next:
//! the new one adopts it ([`UnixSocketFile::adopt`]) instead of binding, and the file must
//! outlive whichever process gives it up. So a process that handed its sockets over removes no
//! file ([`hand_over_files`]), and an adopted file is removed only once the new process has
//! taken over for good ([`claim_adopted_files`]): if it fails first, the old process, still
//! serving on that file, keeps it.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};
use tracing::{info, warn};

use super::socket::LISTEN_BACKLOG;

/// How long a socket that takes connections may take to stop before it counts as another
/// process's. A process killed with accepts in flight on its io_uring (a percore killed with
/// SIGKILL, say) leaves its socket listening until the kernel has torn the ring down, after
/// the process is gone: a restart right after the crash would otherwise be refused. That
/// took under 20 ms here; a live listener keeps listening, so waiting only delays the error.
const LISTENER_LINGER: Duration = Duration::from_millis(500);

/// Pause between looks at a socket that takes connections (each look is a connection, which
/// a live listener accepts and sees closed at once).
const LINGER_POLL: Duration = Duration::from_millis(20);

/// Set once this process handed its listening sockets to a new process: the files are the
/// new process's now, and this one removes none of them.
static HANDED_OVER: AtomicBool = AtomicBool::new(false);
/// Set once this process took an old one's sockets over for good: the files adopted with
/// them are its own, to remove when it stops.
static ADOPTED_CLAIMED: AtomicBool = AtomicBool::new(false);

/// This process gave its listening sockets to another: it must remove none of their files.
pub fn hand_over_files() {
    HANDED_OVER.store(true, Ordering::SeqCst);
}

/// This process owns the socket files it adopted: it removes them when it stops.
pub fn claim_adopted_files() {
    ADOPTED_CLAIMED.store(true, Ordering::SeqCst);
}

/// One core's descriptor of a shared listening socket, to accept from with its own ring.
pub struct SharedListener(pub(super) Socket);

impl SharedListener {
    /// The descriptor itself, for a plain thread that accepts without a ring.
    pub fn into_socket(self) -> Socket {
        self.0
    }
}

/// A Unix socket this process bound and listens on; removes its file when dropped.
pub struct UnixSocketFile {
    /// The path as configured.
    path: PathBuf,
    /// Device and inode of the socket file bound, to tell whether the path still names it.
    file: (u64, u64),
    /// The process's own descriptor; `None` once every core has its share, so the socket
    /// closes as soon as the last core stops accepting.
    socket: Option<Socket>,
    /// Bound by an older process and handed over ([`UnixSocketFile::adopt`]): removed only
    /// once this process has claimed it ([`claim_adopted_files`]).
    adopted: bool,
}

impl UnixSocketFile {
    /// Binds `path` (removing a stale socket file there first), gives the file `permissions`
    /// and listens, queueing up to `backlog` connections. Permissions are set before
    /// listening, so no client can connect while the file still has the umask's.
    pub fn bind(
        path: &Path,
        permissions: Option<u32>,
        backlog: i32,
    ) -> Result<UnixSocketFile, String> {
        UnixSocketFile::bind_listening(path, permissions, Type::STREAM, backlog)
    }

    /// [`UnixSocketFile::bind`] for a socket of type `kind` (the upgrade endpoint is a
    /// `SOCK_SEQPACKET` one: its messages keep their bounds and their descriptors).
    pub fn bind_as(
        path: &Path,
        permissions: Option<u32>,
        kind: Type,
    ) -> Result<UnixSocketFile, String> {
        UnixSocketFile::bind_listening(path, permissions, kind, LISTEN_BACKLOG)
    }

    fn bind_listening(
        path: &Path,
        permissions: Option<u32>,
        kind: Type,
        backlog: i32,
    ) -> Result<UnixSocketFile, String> {
        clear_stale(path, kind)?;
        let addr = SockAddr::unix(path).map_err(|e| format!("not a socket path: {e}"))?;
        let socket = Socket::new(Domain::UNIX, kind, None)
            .map_err(|e| format!("cannot create a socket: {e}"))?;
        socket
            .bind(&addr)
            .map_err(|e| format!("cannot bind: {e}"))?;
        // From here the file is ours: dropping `bound` removes it if a later step fails.
        let meta = fs::symlink_metadata(path).map_err(|e| format!("bound, then: {e}"))?;
        let mut bound = UnixSocketFile {
            path: path.to_path_buf(),
            file: (meta.dev(), meta.ino()),
            socket: None,
            adopted: false,
        };
        if let Some(bits) = permissions {
            fs::set_permissions(path, fs::Permissions::from_mode(bits))
                .map_err(|e| format!("cannot set permissions {bits:04o}: {e}"))?;
        }
        socket
            .listen(backlog)
            .map_err(|e| format!("cannot listen: {e}"))?;
        bound.socket = Some(socket);
        Ok(bound)
    }

    /// The listening socket an older process bound at `path` and handed over, already
    /// listening; its file (the one at the path now) gets `permissions` if given, as a file
    /// bound here would.
    pub fn adopt(
        path: &Path,
        socket: Socket,
        permissions: Option<u32>,
    ) -> Result<UnixSocketFile, String> {
        let meta = fs::symlink_metadata(path)
            .map_err(|e| format!("the socket handed over has no file here: {e}"))?;
        if let Some(bits) = permissions {
            fs::set_permissions(path, fs::Permissions::from_mode(bits))
                .map_err(|e| format!("cannot set permissions {bits:04o}: {e}"))?;
        }
        Ok(UnixSocketFile {
            path: path.to_path_buf(),
            file: (meta.dev(), meta.ino()),
            socket: Some(socket),
            adopted: true,
        })
    }

    /// A descriptor of the listening socket for one core.
    pub fn share(&self) -> io::Result<SharedListener> {
        match &self.socket {
            Some(socket) => socket.try_clone().map(SharedListener),
            None => Err(io::Error::other(
                "the socket was already handed to the cores",
            )),
        }
    }

    /// Closes the process's own descriptor; the cores' shares keep the socket open.
    pub fn close(&mut self) {
        self.socket = None;
    }
}

impl Drop for UnixSocketFile {
    fn drop(&mut self) {
        let handed = HANDED_OVER.load(Ordering::SeqCst);
        if handed || (self.adopted && !ADOPTED_CLAIMED.load(Ordering::SeqCst)) {
            return info!(path = %self.path.display(), "socket file left to the process that serves it");
        }
        let ours = fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file);
        if !ours {
            return warn!(path = %self.path.display(), "socket file replaced; left in place");
        }
        match fs::remove_file(&self.path) {
            Ok(()) => info!(path = %self.path.display(), "removed the socket file"),
            Err(err) => warn!(path = %self.path.display(), %err, "cannot remove the socket file"),
        }
    }
}

/// Makes `path` free to bind: nothing there, or a socket nobody listens on (removed). A socket
/// with a listener, or any other kind of file, is an error that says so.
fn clear_stale(path: &Path, kind: Type) -> Result<(), String> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err.to_string()),
    };
    if !meta.file_type().is_socket() {
        return Err("the path exists and is not a socket; not removing it".into());
    }
    let deadline = Instant::now() + LISTENER_LINGER;
    while is_listened_on(path, kind)? {
        if Instant::now() >= deadline {
            return Err(
                "another process is listening on this socket (stop it, or give another path)"
                    .into(),
            );
        }
        std::thread::sleep(LINGER_POLL);
    }
    fs::remove_file(path).map_err(|e| format!("cannot remove the stale socket file: {e}"))?;
    info!(path = %path.display(), "removed a stale socket file (nothing listened on it)");
    Ok(())
}

/// Whether a process accepts connections on the socket at `path`. The connect does not block:
/// a listener whose queue is full (EAGAIN) is still a listener, and must not hold up start-up.
fn is_listened_on(path: &Path, kind: Type) -> Result<bool, String> {
    let probe = Socket::new(Domain::UNIX, kind, None).map_err(|e| e.to_string())?;
    probe.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = SockAddr::unix(path).map_err(|e| e.to_string())?;
    match probe.connect(&addr) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => Ok(false),
        Err(err) => Err(format!(
            "cannot tell whether a process listens on it: {err}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_is_replaced_a_live_one_or_a_file_is_not() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("p.sock");
        let first = UnixSocketFile::bind(&path, Some(0o600), LISTEN_BACKLOG).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let refused = UnixSocketFile::bind(&path, None, LISTEN_BACKLOG)
            .err()
            .unwrap_or_default();
        assert!(
            refused.contains("another process is listening"),
            "{refused}"
        );
        // A socket left behind by a process that died: a file with no listener.
        let mut stale = first;
        stale.socket = None;
        std::mem::forget(stale);
        let second = UnixSocketFile::bind(&path, Some(0o666), LISTEN_BACKLOG).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666);
        drop(second);
        assert!(!path.exists(), "removed when dropped");
        fs::write(&path, "data").unwrap();
        let refused = UnixSocketFile::bind(&path, None, LISTEN_BACKLOG)
            .err()
            .unwrap_or_default();
        assert!(refused.contains("not a socket"), "{refused}");
        assert_eq!(fs::read(&path).unwrap(), b"data");
    }
}
