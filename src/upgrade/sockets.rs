//! The listening sockets of an upgrade, on both sides: the ones this process listens on
//! ([`register`]: what it would hand to the next process), and the ones an old process handed
//! to this one, waiting for the part of this process that serves their address to take them
//! ([`take_pool_tcp`], [`take_unix`], [`take_admin`]).
//!
//! Both are process-wide lists behind a mutex, not per-core state: a core touches them only
//! when it starts or stops listening, and the upgrade thread only during a handover, never on
//! the request path. The registry holds descriptor numbers, not descriptors: a listener leaves
//! the registry (under the lock) before its socket is closed, and the handover sends every
//! registered descriptor with the lock held, so what it sends is always open and always the
//! socket registered.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use socket2::Socket;
use tracing::info;

use super::wire::{self, Message, Role};

/// Where a socket listens, read from the socket itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket's path.
    Unix(PathBuf),
}

impl Local {
    /// What `socket` is bound to, if it is bound to something this process could listen on.
    pub fn of(socket: &Socket) -> Option<Local> {
        let addr = socket.local_addr().ok()?;
        match (addr.as_socket(), addr.as_pathname()) {
            (Some(tcp), _) => Some(Local::Tcp(tcp)),
            (None, Some(path)) => Some(Local::Unix(path.to_path_buf())),
            (None, None) => None,
        }
    }
}

impl std::fmt::Display for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Local::Tcp(addr) => write!(f, "{addr}"),
            Local::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A listening socket of this process, as the next process would take it over.
struct Entry {
    /// The registration's own number, so it removes exactly its entry.
    id: u64,
    role: Role,
    fd: RawFd,
}

/// Every listening socket this process accepts from now.
static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
/// The next registration's number.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
/// Sockets an old process handed over that nothing here has taken yet.
static INHERITED: Mutex<Vec<Handed>> = Mutex::new(Vec::new());

/// A list behind its lock; a thread that panicked holding it left it whole (every change is
/// one push or one removal), so the poison is ignored.
fn lock<T>(list: &Mutex<T>) -> MutexGuard<'_, T> {
    list.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A listening socket's place in the registry; leaves it when dropped. Drop it before the
/// socket is closed.
#[must_use = "the socket leaves the registry when this is dropped"]
pub struct Registration(u64);

/// Registers `socket` as one a handover gives away, for `role`.
pub fn register(role: Role, socket: &impl AsRawFd) -> Registration {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    lock(&REGISTRY).push(Entry {
        id,
        role,
        fd: socket.as_raw_fd(),
    });
    Registration(id)
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&REGISTRY).retain(|entry| entry.id != self.0);
    }
}

/// Sends every registered socket over `conn`, each with its role; returns how many.
pub(super) fn send_registered(conn: &Socket) -> std::io::Result<usize> {
    let registry = lock(&REGISTRY);
    for entry in registry.iter() {
        wire::send(conn, &Message::Listener(entry.role.clone()), Some(entry.fd))?;
    }
    Ok(registry.len())
}

/// A socket an old process handed over.
struct Handed {
    role: Role,
    local: Local,
    socket: Socket,
}

/// Keeps a socket handed over for whoever serves its address here.
pub(super) fn inherit(role: Role, fd: OwnedFd) -> Result<Local, String> {
    let socket = Socket::from(fd);
    let local = Local::of(&socket).ok_or("a socket with no address was handed over")?;
    lock(&INHERITED).push(Handed {
        role,
        local: local.clone(),
        socket,
    });
    Ok(local)
}

/// The handed-over TCP listeners of the pool on `addr` that `core` of this process's
/// `threads` accepts from: the one the old process's core of the same number had, and those
/// of old cores this process does not have (round the cores), which must go on being
/// accepted from since the kernel keeps queueing connections on them. Empty: nothing was
/// handed over for this address, bind afresh.
pub fn take_pool_tcp(addr: SocketAddr, core: usize, threads: usize) -> Vec<Socket> {
    let mine = |handed: &Handed| match handed.role {
        Role::Pool { core: old, .. } => {
            handed.local == Local::Tcp(addr) && old % threads.max(1) == core
        }
        _ => false,
    };
    take(mine).into_iter().map(|handed| handed.socket).collect()
}

/// The handed-over socket of the Unix-socket pool at `path` (every old core had its own
/// descriptor of the one socket: one is kept, the others closed).
pub fn take_unix(path: &Path) -> Option<Socket> {
    let local = Local::Unix(path.to_path_buf());
    let mine = |handed: &Handed| matches!(handed.role, Role::Pool { .. }) && handed.local == local;
    take(mine).into_iter().next().map(|handed| handed.socket)
}

/// The handed-over admin listener on `addr`.
pub fn take_admin(addr: SocketAddr) -> Option<Socket> {
    let mine = |handed: &Handed| handed.role == Role::Admin && handed.local == Local::Tcp(addr);
    take(mine).into_iter().next().map(|handed| handed.socket)
}

/// The handed-over upgrade socket.
pub(super) fn take_endpoint() -> Option<Socket> {
    let mine = |handed: &Handed| handed.role == Role::Endpoint;
    take(mine).into_iter().next().map(|handed| handed.socket)
}

/// Closes what was handed over and is served by nothing here (a pool removed or moved): the
/// old process's own descriptors keep those sockets open until it exits.
pub(super) fn close_unclaimed() {
    let left = std::mem::take(&mut *lock(&INHERITED));
    if !left.is_empty() {
        let addrs: Vec<String> = left.iter().map(|h| h.local.to_string()).collect();
        info!(
            ?addrs,
            "closed listeners the old process had and this one does not serve"
        );
    }
}

/// Removes and returns every inherited socket `mine` picks.
fn take(mine: impl Fn(&Handed) -> bool) -> Vec<Handed> {
    let mut inherited = lock(&INHERITED);
    let (taken, kept) = std::mem::take(&mut *inherited).into_iter().partition(mine);
    *inherited = kept;
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Type};

    /// A listening TCP socket on a free loopback port.
    fn listening() -> Socket {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any.into()).unwrap();
        socket.listen(8).unwrap();
        socket
    }

    fn pool(core: usize) -> Role {
        Role::Pool {
            core,
            pool: "p".into(),
        }
    }

    /// One test owns the process-wide lists (tests run in parallel threads).
    #[test]
    fn registered_sockets_are_sent_and_inherited_ones_go_to_their_cores() {
        let a = listening();
        let registration = register(Role::Admin, &a);
        let (left, right) = Socket::pair(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        assert_eq!(send_registered(&left).unwrap(), 1);
        let (message, fd) = wire::recv(&right).unwrap().unwrap();
        assert_eq!(message, Message::Listener(Role::Admin));
        let local = inherit(Role::Admin, fd.unwrap()).unwrap();
        let Local::Tcp(addr) = local else {
            panic!("{local}")
        };
        assert_eq!(Some(addr), a.local_addr().unwrap().as_socket());
        drop(registration);
        assert_eq!(send_registered(&left).unwrap(), 0, "left the registry");
        assert!(take_admin(addr).is_some());
        assert!(take_admin(addr).is_none(), "taken once");

        // Three old cores on one address, two new ones: core 0 takes old 0 and old 2.
        let old: Vec<Socket> = (0..3).map(|_| listening()).collect();
        let port_of = |s: &Socket| s.local_addr().unwrap().as_socket().unwrap();
        for (core, socket) in old.iter().enumerate() {
            let dup = socket.try_clone().unwrap();
            // Each old core's socket has its own port here; match them all as one address
            // by taking each port in turn.
            inherit(pool(core), OwnedFd::from(dup)).unwrap();
        }
        assert_eq!(take_pool_tcp(port_of(&old[2]), 0, 2).len(), 1);
        assert_eq!(
            take_pool_tcp(port_of(&old[1]), 0, 2).len(),
            0,
            "old core 1 is core 1's"
        );
        assert_eq!(take_pool_tcp(port_of(&old[1]), 1, 2).len(), 1);
        close_unclaimed();
        assert_eq!(take_pool_tcp(port_of(&old[0]), 0, 2).len(), 0, "closed");
    }
}
