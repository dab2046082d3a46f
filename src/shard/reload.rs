//! Reloads, run by core 0 alone (so two never interleave and epochs never fork): on SIGHUP
//! (which the signal thread counts, `config::hangups`, and core 0 looks at a few times a
//! second), or on `PROXY CONFIG RELOAD` from any core's client (asked of core 0 over the
//! control mesh).
//!
//! A reload reads the file on a thread of its own (a file read and the TLS files' parsing,
//! never on an executor), refuses it whole if anything in it is invalid or would change what a
//! running process cannot (`config::reload`), prepares what new pools need (a mesh, and a Unix
//! socket bound once for the process; a TCP address is tried first, so a taken one refuses the
//! reload instead of failing on every core), and only then hands the new configuration, with
//! the next epoch, to every core at once ([`Core::tell_every_core`]). An invalid file changes
//! nothing: the epoch stays, every error is logged, counted, and given to the client that
//! asked.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use glommio::channels::channel_mesh::{Full, MeshBuilder};
use glommio::sync::Semaphore;
use tracing::{info, warn};

use crate::config::{Config, ListenAddr, Loaded, ReloadSource};
use crate::control::mesh::{Message, CHANNEL_CAPACITY};
use crate::control::reload::{ConfigUpdate, NewPool};
use crate::net::UnixSocketFile;
use crate::resp::encode;
use crate::{service, shutdown};

use super::dispatch::error_reply;
use super::pools::Core;
use super::reply_to::ReplyTo;
use super::Shard;

/// How often core 0 looks for a SIGHUP the signal thread has counted. A reload is an
/// operator's act; a tenth of a second later is no one's loss, and one look is a load of a
/// counter.
const HANGUP_POLL: Duration = Duration::from_millis(100);

/// How often core 0 looks whether the file read, on its thread, is done. Reading a file and
/// its certificates takes a millisecond or so; the reload waits at most this much more.
const LOAD_POLL: Duration = Duration::from_millis(2);

/// Reloads refused since start, for `PROXY INFO` and `/metrics` (an atomic: counted by core 0,
/// read by whichever core reports, and never on the request path).
static RELOAD_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Reloads refused since start.
pub(super) fn reload_failures() -> u64 {
    RELOAD_FAILURES.load(Ordering::Relaxed)
}

/// What core 0 keeps to run reloads.
pub struct Reloader {
    /// The file and the flags; `None` when the process was started without `-c`.
    source: Option<Arc<ReloadSource>>,
    /// The pools served now, as the last configuration applied has them.
    running: RefCell<Vec<Arc<Config>>>,
    /// That configuration's epoch.
    epoch: Cell<u64>,
    /// One reload at a time; the next waits its turn.
    turn: Semaphore,
    /// The mesh of each pool a reload added, kept here for the pool's life so its last clone
    /// goes on this core (see `control::reload`).
    meshes: RefCell<Vec<(String, MeshBuilder<Message, Full>)>>,
    /// The Unix socket of each pool a reload added, bound here; dropped (its file removed)
    /// when a reload removes the pool.
    sockets: RefCell<Vec<(String, UnixSocketFile)>>,
}

impl Reloader {
    /// Reloads from `source` (if any), the process running `pools` at epoch 1.
    pub fn new(source: Option<Arc<ReloadSource>>, pools: Vec<Arc<Config>>) -> Reloader {
        Reloader {
            source,
            running: RefCell::new(pools),
            epoch: Cell::new(1),
            turn: Semaphore::new(1),
            meshes: RefCell::new(Vec::new()),
            sockets: RefCell::new(Vec::new()),
        }
    }
}

impl Core {
    /// Reads the file again and applies it on every core; the epoch applied, or every reason
    /// it was refused (also logged). On core 0 only (others ask it: `request_reload`).
    pub(super) async fn reload(
        self: &Rc<Self>,
        trigger: &'static str,
    ) -> Result<u64, Arc<[String]>> {
        let Some(reloader) = &self.reloader else {
            return Err(Arc::from(["only core 0 reloads".to_string()]));
        };
        let Some(source) = reloader.source.clone() else {
            let error = "percore was started without a configuration file (-c): nothing to reload";
            warn!(trigger, "{error}");
            return Err(Arc::from([error.to_string()]));
        };
        let _turn = reloader.turn.acquire_permit(1).await;
        info!(trigger, file = %source.path().display(), "reloading the configuration");
        service::reloading();
        let reloaded = self.reload_from(reloader, source).await;
        service::reloaded(reloader.epoch.get());
        match reloaded {
            Ok(epoch) => Ok(epoch),
            Err(errors) => {
                RELOAD_FAILURES.fetch_add(1, Ordering::Relaxed);
                for error in &errors {
                    warn!(trigger, %error, "configuration error");
                }
                warn!(
                    trigger,
                    errors = errors.len(),
                    epoch = reloader.epoch.get(),
                    "configuration not reloaded; nothing changed"
                );
                Err(Arc::from(errors))
            }
        }
    }

    async fn reload_from(
        self: &Rc<Self>,
        reloader: &Reloader,
        source: Arc<ReloadSource>,
    ) -> Result<u64, Vec<String>> {
        let loaded = load_off_core(source.clone()).await?;
        let running = reloader.running.borrow().clone();
        let fixed = source.fixed_changes(running.iter().map(|c| &**c), &loaded);
        if !fixed.is_empty() {
            return Err(fixed.iter().map(ToString::to_string).collect());
        }
        let cores = self.cores();
        let mut added = Vec::new();
        let mut meshes = Vec::new();
        let mut sockets = Vec::new();
        for pool in &loaded.pools {
            if running.iter().any(|r| r.name == pool.name) {
                continue;
            }
            let listen_error = |reason: String| {
                let (file, name, listen) = (&loaded.file, &pool.name, &pool.listen);
                vec![format!(
                    "{file}: pool '{name}' key 'listen': cannot listen on {listen}: {reason}"
                )]
            };
            let shares = match &pool.listen {
                ListenAddr::Tcp(addr) => {
                    try_bind(*addr).map_err(|e| listen_error(e.to_string()))?;
                    Vec::new()
                }
                ListenAddr::Unix { path, permissions } => {
                    let mut file = UnixSocketFile::bind(path, *permissions, pool.listen_backlog)
                        .map_err(listen_error)?;
                    let shares: Result<Vec<_>, _> = (0..cores).map(|_| file.share()).collect();
                    let shares = shares.map_err(|e| listen_error(e.to_string()))?;
                    // The cores hold it now: it closes when the last stops accepting.
                    file.close();
                    sockets.push((pool.name.clone(), file));
                    shares
                }
            };
            let mesh = MeshBuilder::full(cores, CHANNEL_CAPACITY);
            added.push(NewPool::new(pool.name.clone(), &mesh, cores, shares));
            meshes.push((pool.name.clone(), mesh));
        }
        let epoch = reloader.epoch.get() + 1;
        let update = Arc::new(ConfigUpdate {
            epoch,
            loaded_at: SystemTime::now(),
            pools: loaded.pools.into_iter().map(Arc::new).collect(),
            added,
        });
        summarize(&running, &update);
        reloader.epoch.set(epoch);
        *reloader.running.borrow_mut() = update.pools.clone();
        let staying = |name: &String| update.pools.iter().any(|p| p.name == *name);
        reloader
            .meshes
            .borrow_mut()
            .retain(|(name, _)| staying(name));
        reloader.meshes.borrow_mut().extend(meshes);
        reloader
            .sockets
            .borrow_mut()
            .retain(|(name, _)| staying(name));
        reloader.sockets.borrow_mut().extend(sockets);
        let told = self.tell_every_core(update).await;
        if told < cores {
            warn!(
                epoch,
                told, cores, "not every core confirmed the new configuration in time"
            );
        }
        info!(epoch, "configuration reloaded");
        Ok(epoch)
    }

    /// On core 0: reloads on every SIGHUP, until the process stops.
    pub(super) fn spawn_hangup_watch(self: &Rc<Self>) {
        let core = self.clone();
        glommio::spawn_local(async move {
            let mut seen = crate::config::hangups();
            while !shutdown::requested() {
                glommio::timer::sleep(HANGUP_POLL).await;
                let now = crate::config::hangups();
                if now != seen {
                    seen = now;
                    // The outcome is logged; there is no one else to tell.
                    let _ = core.reload("SIGHUP").await;
                }
            }
        })
        .detach();
    }
}

/// `PROXY CONFIG RELOAD`: `+OK` once every core serves the file's configuration, or an error
/// that lists every reason it was refused (each with the file's line and key where it has
/// them), in one line.
pub(super) fn command(shard: &Rc<Shard>, reply_to: ReplyTo) {
    let core = shard.core.clone();
    glommio::spawn_local(async move {
        let reply = match core.request_reload().await {
            Ok(_) => Bytes::from_static(encode::OK),
            Err(errors) => error_reply(&format!(
                "ERR configuration not reloaded: {}",
                errors.join("; ")
            )),
        };
        reply_to.deliver(reply);
    })
    .detach();
}

/// Reads the file on a thread of its own and waits for it without blocking the core.
async fn load_off_core(source: Arc<ReloadSource>) -> Result<Loaded, Vec<String>> {
    let reading = std::thread::Builder::new()
        .name("percore-reload".into())
        .spawn(move || source.load())
        .map_err(|e| vec![format!("cannot start the thread that reads the file: {e}")])?;
    while !reading.is_finished() {
        glommio::timer::sleep(LOAD_POLL).await;
    }
    reading
        .join()
        .unwrap_or_else(|_| Err(vec!["reading the file panicked".to_string()]))
}

/// Binds `addr` as a core's listener would (SO_REUSEPORT), without listening, and lets it go:
/// a pool added on an address another process holds is refused before any core tries.
fn try_bind(addr: SocketAddr) -> std::io::Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())
}

/// Logs what a reload changes: pools added, removed and kept.
fn summarize(running: &[Arc<Config>], update: &ConfigUpdate) {
    let names = |pools: &[Arc<Config>]| pools.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
    let (before, after) = (names(running), names(&update.pools));
    let added: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    let removed: Vec<&String> = before.iter().filter(|n| !after.contains(n)).collect();
    info!(
        epoch = update.epoch,
        added = ?added,
        removed = ?removed,
        kept = after.len() - added.len(),
        "applying the new configuration on every core"
    );
}
