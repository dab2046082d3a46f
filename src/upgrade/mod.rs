//! Upgrades without downtime (`--upgrade-socket PATH`): a new percore started with the same
//! upgrade socket takes the running one's listening sockets over, serves on them, and only
//! then does the old one stop accepting and drain. No connection is lost on the way, and
//! clients that reconnect when the old process closes them land on the new one.
//!
//! Why hand the sockets over: with SO_REUSEPORT alone a new process could bind the same
//! addresses, but each listening socket has its own accept queue, and the connections queued
//! on the old process's sockets when it closes them are reset (a Unix socket cannot even be
//! bound twice). Handed over, a socket stays open across the change, queue and all: the
//! kernel never sees a listener go away.
//!
//! The handover, on a `SOCK_SEQPACKET` Unix socket at the path (mode 0600, and the peer must
//! run as the same user or root, since whoever holds the sockets holds the service):
//! 1. The new process connects before it binds anything. Nobody there (no file, or a dead
//!    process's file): it binds every address itself and serves the upgrade socket.
//! 2. Otherwise it says hello; the old process answers with every listening socket it has
//!    (`sockets::register`: each core's TCP listener of each pool, each pool's Unix socket,
//!    the admin ports, the upgrade socket itself), each with `SCM_RIGHTS` and its role.
//! 3. The new process starts its cores on them: a pool's core takes the socket its
//!    counterpart had (matched by the address the socket is bound to, the pool name only
//!    logged), binds afresh what the old process did not have, and accepts as well from old
//!    cores' sockets it has no counterpart for (fewer threads): the kernel goes on queueing
//!    connections there, so they are accepted from, never closed. Sockets of addresses it no
//!    longer serves are closed once it has taken over (the old process's copies go with it).
//! 4. Meanwhile the old process serves on. Both processes accept from the same sockets,
//!    each connection going to one of them: nothing pauses while the new process starts
//!    (rings, executors, its first topology). The brief's "stop accepting first" would leave
//!    connections waiting that whole time, and a rollback would have to resume.
//! 5. Once every core of every pool accepts, the new process says `ready`; the old one
//!    answers `stopping`, stops accepting (cancelling its accepts; the kernel's queues are
//!    shared, so what waits there is the new process's to take) and drains exactly as on
//!    SIGTERM, without `STOPPING=1` to systemd, since the service goes on. It exits 0.
//! 6. Anything else before `stopping` — the new process exits, refuses, or is not ready
//!    within 30 s — is a rollback: the old process never stopped, logs why, and waits for
//!    the next attempt; a new process that fails exits non-zero and leaves every socket file
//!    to the old one.
//!
//! The upgrade socket itself is handed over the same way, so the path is never unserved and
//! the next upgrade asks the new process.

mod endpoint;
mod sockets;
mod takeover;
mod wire;

use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use socket2::Type;
use tracing::error;

use crate::error::Error;
use crate::net::UnixSocketFile;
use crate::{service, shutdown};

pub use sockets::{register, take_admin, take_pool_tcp, take_unix};
pub use wire::Role;

/// The upgrade socket's mode: only its owner (and root) may connect; the peer's user is
/// checked again on each handover.
const ENDPOINT_MODE: u32 = 0o600;

/// How often the upgrade thread looks whether every core serves yet (at start only).
const SERVING_POLL: Duration = Duration::from_millis(10);

/// Where this process is in an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Started on its own: no old process answered (or no upgrade socket).
    Alone = 0,
    /// Holds an old process's sockets, not yet its own.
    TakingOver = 1,
    /// Took an old process's sockets over for good.
    TookOver = 2,
    /// The takeover failed; the old process serves on.
    Failed = 3,
    /// Handed its sockets to a new process, and drains.
    HandedOver = 4,
}

/// This process's [`State`].
static STATE: AtomicU8 = AtomicU8::new(State::Alone as u8);
/// Why the takeover failed, once it has.
static FAILURE: Mutex<Option<String>> = Mutex::new(None);

fn set_state(state: State) {
    STATE.store(state as u8, Ordering::SeqCst);
}

/// True once this process handed its sockets to a new one.
pub fn handed_over() -> bool {
    STATE.load(Ordering::SeqCst) == State::HandedOver as u8
}

/// Completes once this process has handed its sockets over: the admin ports stop accepting
/// then, so probes of `/health` go to the new process (on SIGTERM they go on answering
/// "draining").
pub async fn handed_over_wait() {
    shutdown::wait().await;
    // The state is set before the stop flag, so it is known by now.
    if !handed_over() {
        std::future::pending::<()>().await;
    }
}

/// True when this process set out to take over from a running percore and did not: that
/// one serves on (its pid file, say, is its own again).
pub fn failed() -> bool {
    STATE.load(Ordering::SeqCst) == State::Failed as u8
}

/// Why the takeover failed, as the process's error, if it did.
pub fn failure() -> Option<Error> {
    let reason = FAILURE.lock().ok()?.clone()?;
    Some(Error::Upgrade(reason))
}

/// The takeover failed: say why, and stop (this process's clients, if any, reconnect to the
/// old process, which serves on).
fn fail(reason: String) {
    set_state(State::Failed);
    error!(%reason, "upgrade failed; stopping this process");
    if let Ok(mut failure) = FAILURE.lock() {
        failure.get_or_insert(reason);
    }
    shutdown::request();
}

/// Waits until all but `held` of the process's listeners accept; false if the process is
/// stopping first.
fn wait_until_serving(held: usize) -> bool {
    loop {
        if shutdown::requested() {
            return false;
        }
        if service::listeners_left() <= held {
            return true;
        }
        std::thread::sleep(SERVING_POLL);
    }
}

/// This process's upgrade socket, and the old process's sockets if one handed them over.
pub struct Upgrade {
    file: UnixSocketFile,
    takeover: Option<takeover::Takeover>,
}

/// Takes the sockets of the percore serving the upgrade socket at `path`, if one does, or
/// binds the path. Call before binding anything else: the cores then take what was handed
/// over instead of binding it ([`take_pool_tcp`], [`take_unix`], [`take_admin`]).
pub fn prepare(path: &Path) -> Result<Upgrade, Error> {
    let error = |reason: String| Error::Upgrade(format!("{}: {reason}", path.display()));
    let Some(conn) = takeover::connect(path).map_err(error)? else {
        let file = UnixSocketFile::bind_as(path, Some(ENDPOINT_MODE), Type::SEQPACKET);
        return Ok(Upgrade {
            file: file.map_err(error)?,
            takeover: None,
        });
    };
    let taken = takeover::receive(conn).and_then(|takeover| {
        let socket = sockets::take_endpoint().ok_or("the upgrade socket was not handed over")?;
        let file = UnixSocketFile::adopt(path, socket, Some(ENDPOINT_MODE))?;
        Ok(Upgrade {
            file,
            takeover: Some(takeover),
        })
    });
    if taken.is_err() {
        set_state(State::Failed);
    }
    taken.map_err(error)
}

impl Upgrade {
    /// Readiness counts the takeover holds back from the service manager: `READY=1` waits
    /// for the old process's `stopping` too, not only for every core.
    pub fn held_readiness(&self) -> usize {
        usize::from(self.takeover.is_some())
    }

    /// Starts the upgrade thread: it finishes the takeover, if any, then serves the upgrade
    /// socket. Returns the socket's file, to keep until the process ends.
    pub fn start(mut self) -> Result<UnixSocketFile, Error> {
        let socket = self
            .file
            .share()
            .map_err(|e| Error::Upgrade(format!("the upgrade socket: {e}")))?
            .into_socket();
        self.file.close();
        let takeover = self.takeover.take();
        std::thread::Builder::new()
            .name("percore-upgrade".into())
            .spawn(move || {
                if takeover.is_some_and(|takeover| !takeover.finish()) {
                    return;
                }
                endpoint::serve(socket);
            })
            .map_err(|e| Error::Upgrade(format!("cannot start the upgrade thread: {e}")))?;
        Ok(self.file)
    }
}
