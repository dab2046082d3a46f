//! How a core serves: [`run_core`] is the body of each core's executor (started kept awake by
//! `shard::executor`). It sets up the core's socket ring, joins the process's control mesh
//! (`shard::pools`) and runs every pool on it, each a [`Shard`] of its own: join the pool's
//! mesh, set up its upstream (a cluster's refresher on core 0, a static pool's fixed layout, or
//! a Sentinel pool's watcher on core 0), listen once the layout is known, accept until the
//! process stops (or a reload removes the pool), then drain.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use tracing::{debug, info, warn};

use crate::cluster::topology::Topology;
use crate::config::{Config, ListenAddr, ReloadSource};
use crate::control::mesh::{Mesh, Message, REFRESHER_CORE};
use crate::control::reload::ConfigEpoch;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::net::{spawn_driver, Accepted, Listener, SharedListener, Stream, Uring};
use crate::slowlog::SlowLog;
use crate::sync::Signal;
use crate::upgrade::{self, Role};
use crate::upstream::Ring;
use crate::{service, shutdown};

use super::client::{self, ClientState};
use super::monitor::Monitors;
use super::pool::Pool;
use super::pools::{Core, Served};
use super::reload::Reloader;
use super::sidecar;
use super::slot_map::SlotMap;
use super::{cluster_view, control, eject, lease, observe, placer, pubsub, session, tls, Shard};

/// Longest a core waits for its first topology before it listens anyway. Until it listens, the
/// kernel gives new connections to the cores that do, so a client connecting while the proxy
/// starts is served by a core that knows the cluster instead of getting CLUSTERDOWN. When the
/// cluster cannot be reached at all, the core listens after this and answers with errors.
const FIRST_TOPOLOGY_WAIT: Duration = Duration::from_secs(2);

/// Pause after a failed accept (e.g. out of file descriptors) before accepting again, so the
/// loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Period of [`trim_memory`].
const TRIM_INTERVAL: Duration = Duration::from_secs(5);

/// How often draining checks whether every client is gone.
const DRAIN_POLL: Duration = Duration::from_millis(10);

/// How often an accept loop looks whether a reload removed its pool: a removed pool stops
/// accepting within this, and an idle listener wakes no more often than this for it.
const REMOVAL_POLL: Duration = Duration::from_millis(100);

/// Redis's reply to a connection over `maxclients`.
const MAX_CLIENTS_REACHED: &[u8] = b"-ERR max number of clients reached\r\n";

/// What one core starts with: the pools of the start, each with its mesh and (for a Unix
/// socket pool) the core's share of its socket, and the process's control mesh.
pub struct CoreStart {
    /// Every pool of the start, in the configuration's order.
    pub pools: Vec<Arc<Config>>,
    /// Each pool's mesh, in the same order.
    pub meshes: Vec<MeshBuilder<Message, Full>>,
    /// Per pool, this core's share of the pool's Unix socket (`None` for TCP, which each core
    /// binds itself).
    pub shared: Vec<Option<SharedListener>>,
    /// The control mesh of every core of the process (`control::mesh`), which carries reloads.
    pub control: MeshBuilder<Message, Full>,
    /// What a reload reads (on core 0, which runs them); `None` without `-c`.
    pub reload: Option<Arc<ReloadSource>>,
}

/// The body of one core's executor: serves every pool until the process stops, then drains.
/// Returns an error only when this core cannot serve (no ring, or a pool of the start with no
/// mesh or no listener).
pub async fn run_core(start: CoreStart) -> Result<(), Error> {
    // The core's one socket ring, shared by its pools: one driver, one io_uring_enter per
    // round for every socket of the core.
    let ring_error = |core| move |source| Error::Ring { core, source };
    let uring = Rc::new(Uring::new().map_err(ring_error(0))?);
    let driver = spawn_driver(uring.clone()).map_err(ring_error(0))?;
    let (senders, receivers) = join(start.control).await?;
    let control = Mesh::new(senders);
    let first = start.pools.first().cloned();
    let epoch = ConfigEpoch {
        epoch: 1,
        loaded_at: SystemTime::now(),
        file: start
            .reload
            .as_ref()
            .map(|r| Arc::from(r.path().display().to_string())),
    };
    let reloader = (control.core() == REFRESHER_CORE)
        .then(|| Reloader::new(start.reload, start.pools.clone()));
    let core = Core::new(uring.clone(), control, epoch, reloader);
    core.spawn_receivers(receivers);
    let pools_here = start.pools.into_iter().zip(start.meshes).zip(start.shared);
    for ((config, mesh), share) in pools_here {
        core.start_pool(Rc::new(Config::clone(&config)), mesh, share, true);
    }
    // Once per process, on core 0: the memory trim, the admin ports, the SIGHUP watch. After
    // the pools started, so that a port that cannot be bound stops the process with every
    // core draining, none waiting in a pool's mesh for this one.
    let mut failed = None;
    if core.id == REFRESHER_CORE {
        glommio::spawn_local(trim_memory()).detach();
        if let Some(Err(e)) = first.map(|first| observe::spawn(&core, &first)) {
            shutdown::request();
            failed = Some(e);
        }
        core.spawn_hangup_watch();
    }
    let serving = async {
        shutdown::wait().await;
        let finished = core.finish().await;
        failed.map_or(finished, Err)
    };
    futures_lite::future::or(serving, async { Err(ring_error(0)(driver.await)) }).await
}

/// One pool on this core: serves until the process stops or a reload removes the pool, then
/// drains. Returns an error only when the pool cannot serve at all (no mesh, no listener); a
/// pool of the start (`at_start`) that cannot stops the process, one a reload added does not.
pub(super) async fn run_pool(
    core: Rc<Core>,
    served: Rc<Served>,
    mesh: MeshBuilder<Message, Full>,
    share: Option<SharedListener>,
    at_start: bool,
) -> Result<(), Error> {
    let result = serve_pool(&core, &served, mesh, share, at_start).await;
    if let Err(e) = &result {
        match at_start {
            // A pool that cannot serve stops the process, as a core that fails does.
            true => shutdown::request(),
            false => {
                let (core, pool) = (core.id, &*served.name);
                warn!(core, pool, error = %e, "the pool a reload added cannot be served here")
            }
        }
    }
    result.or_else(|e| if at_start { Err(e) } else { Ok(()) })
}

async fn serve_pool(
    core: &Rc<Core>,
    served: &Rc<Served>,
    mesh: MeshBuilder<Message, Full>,
    share: Option<SharedListener>,
    at_start: bool,
) -> Result<(), Error> {
    let (senders, receivers) = join(mesh).await?;
    let mesh = Mesh::new(senders);
    let id = mesh.core();
    // The newest configuration of the pool: a reload may have come while the mesh was joined.
    let config = served.config();
    let uring = core.uring.clone();
    let shard = Rc::new(Shard {
        id,
        name: served.name.clone(),
        config: RefCell::new(config.clone()),
        slot_map: RefCell::new(SlotMap::default()),
        placer: RefCell::new(placer::Placer::Cluster),
        ejections: eject::Ejections::new(config.servers.as_ref()),
        pool: Pool::default(),
        leases: lease::Leases::default(),
        metrics: Metrics::default(),
        mesh,
        uring: uring.clone(),
        started: core.started,
        refresh_wanted: Rc::new(Signal::default()),
        newer_commands: RefCell::new(Arc::from([])),
        pause: Cell::new(None),
        unreachable: RefCell::new(None),
        topology_applied: Signal::default(),
        last_refresh_request: Cell::new(None),
        clients: RefCell::new(HashMap::new()),
        next_client_id: Cell::new(0),
        pubsub: pubsub::Hub::default(),
        presence: RefCell::new(cluster_view::alone(&config)),
        slowlog: SlowLog::new(
            config.slowlog_slower_than,
            config.slowlog_max_len,
            id,
            config.threads,
        ),
        monitors: Monitors::default(),
        serving: Cell::new(false),
        core: core.clone(),
        background: RefCell::new(Vec::new()),
        background_writes: sidecar::background::Writes::for_pool(&config, id),
    });
    control::spawn_receivers(&shard, receivers);
    served.seat(Some(shard.clone()));
    match &config.servers {
        // A static pool's layout is the configuration's, or Sentinel's: no refresher, no fleet.
        Some(servers) => {
            let ring = Ring::build(&servers.specs, servers.scheme)
                .map_err(|e| Error::Config(e.to_string()))?;
            *shard.placer.borrow_mut() = placer::Placer::Servers(ring);
            match &servers.sentinel {
                // Where each server is, Sentinel says: one watcher tells every core.
                Some(sentinel) if id == REFRESHER_CORE => {
                    control::spawn_sentinel_watcher(&shard, sentinel.clone());
                }
                Some(_) => {}
                None => shard.apply_topology(&Arc::new(Topology::of_servers(&servers.addrs))),
            }
        }
        None if id == REFRESHER_CORE => {
            control::spawn_refresher(&shard);
            cluster_view::spawn_peer_watch(&shard);
        }
        None => {}
    }
    drop(config);
    let serving = async {
        wait_for_first_topology(&shard).await;
        if served.is_removed() {
            // Removed by a reload before it ever listened.
            return Ok(());
        }
        if shard.config().sidecar.preconnect {
            sidecar::preconnect::wait(&shard).await;
        }
        let config = shard.config();
        let listeners = listen(id, &config, share, uring)?;
        // What an upgrade hands to the next process; out of the list before they close.
        let role = || Role::Pool {
            core: id,
            pool: config.name.clone(),
        };
        let registered: Vec<_> = listeners
            .iter()
            .map(|listener| upgrade::register(role(), listener))
            .collect();
        let sockets = listeners.len();
        info!(core = id, pool = %shard.pool_name(), listen = %config.listen, sockets, "accepting clients");
        drop(config);
        shard.serving.set(true);
        if at_start {
            service::listener_ready();
        }
        accept_all(&shard, served, &listeners).await;
        shard.serving.set(false);
        drop(registered);
        drop(listeners);
        drain(&shard).await;
        Ok(())
    };
    let result = serving.await;
    if !shutdown::requested() {
        // Removed by a reload (or it could not listen): free what it holds on this core.
        shard.retire();
        served.seat(None);
    }
    result
}

/// Joins `mesh`, unless the process stops first: a core that never joins (one whose ring could
/// not be set up, or that missed a reload's notice) must not hold the others up at shutdown.
async fn join(
    mesh: MeshBuilder<Message, Full>,
) -> Result<(Senders<Message>, Receivers<Message>), Error> {
    let joining = async { mesh.join().await.map_err(|e| e.to_string()) };
    let stopped = async {
        shutdown::wait().await;
        Err("the process stopped before every core joined".to_string())
    };
    futures_lite::future::or(joining, stopped)
        .await
        .map_err(Error::Mesh)
}

/// This core's listener for the pool: its own SO_REUSEPORT socket for TCP, or its share of the
/// Unix socket the process bound at start (SO_REUSEPORT does not apply to Unix sockets; see
/// `net::UnixSocketFile` for why every core accepts from the one socket). After an upgrade,
/// the TCP sockets the old process handed over instead: its counterpart's, and those of old
/// cores with no counterpart here (see `upgrade`), so there may be more than one.
fn listen(
    core: usize,
    config: &Config,
    share: Option<SharedListener>,
    uring: Rc<Uring>,
) -> Result<Vec<Listener>, Error> {
    let error = |source| Error::Listen {
        core,
        addr: config.listen.to_string(),
        source,
    };
    match (&config.listen, share) {
        (ListenAddr::Tcp(addr), _) => {
            let handed = upgrade::take_pool_tcp(*addr, core, config.threads);
            if handed.is_empty() {
                let backlog = config.listen_backlog;
                return Listener::bind(*addr, backlog, uring)
                    .map(|l| vec![l])
                    .map_err(error);
            }
            let adopt = |socket| Listener::adopt(socket, uring.clone());
            Ok(handed.into_iter().map(adopt).collect())
        }
        (ListenAddr::Unix { .. }, Some(share)) => Ok(vec![Listener::shared(share, uring)]),
        (ListenAddr::Unix { .. }, None) => Err(error(io::Error::other(
            "the process did not bind this Unix socket",
        ))),
    }
}

/// Waits until this core has a topology, or [`FIRST_TOPOLOGY_WAIT`].
async fn wait_for_first_topology(shard: &Shard) {
    let first_topology = async {
        shard.topology_applied.wait().await;
        true
    };
    let deadline = async {
        glommio::timer::sleep(FIRST_TOPOLOGY_WAIT).await;
        false
    };
    if !futures_lite::future::or(first_topology, deadline).await {
        warn!(
            core = shard.id,
            pool = shard.pool_name(),
            "no topology yet; listening anyway"
        );
    }
}

/// Hands memory freed after a burst (many clients, deep pipelines) back to the system now
/// and then. glibc keeps freed memory in its per-thread arenas for reuse, so without this the
/// proxy's RSS would stay at its peak long after the burst; the trim walks the arenas'
/// free lists, a few milliseconds every few seconds on one core, never per request.
async fn trim_memory() {
    loop {
        glommio::timer::sleep(TRIM_INTERVAL).await;
        // SAFETY: malloc_trim only releases free memory held by the allocator.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Accepts clients from every one of `listeners` until the process stops or a reload removes
/// the pool.
async fn accept_all(shard: &Rc<Shard>, served: &Served, listeners: &[Listener]) {
    type Loop<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;
    let each = listeners
        .iter()
        .map(|l| Box::pin(accept_loop(shard, served, l)) as Loop<'_>);
    // Joined, not raced: each loop ends only once it has stopped its own accept.
    let joined = each.reduce(|a, b| {
        Box::pin(async {
            futures_lite::future::zip(a, b).await;
        })
    });
    if let Some(all) = joined {
        all.await;
    }
}

/// Accepts clients until the process stops or a reload removes the pool; a client the last
/// accept had already taken when it was cancelled is served too (and drained with the others).
async fn accept_loop(shard: &Rc<Shard>, served: &Served, listener: &Listener) {
    let stop = stopped(served);
    let mut stop = std::pin::pin!(stop);
    loop {
        match listener.accept_until(stop.as_mut()).await {
            Accepted::Stream(Ok(stream)) => serve(shard, stream),
            Accepted::Stream(Err(err)) => {
                warn!(core = shard.id, pool = shard.pool_name(), %err, "accept failed");
                glommio::timer::sleep(ACCEPT_ERROR_PAUSE).await;
            }
            Accepted::Stopped(last) => {
                if let Some(stream) = last {
                    debug!(
                        core = shard.id,
                        "served a client accepted as the accept stopped"
                    );
                    serve(shard, stream);
                }
                return;
            }
        }
    }
}

/// Completes when the process stops or a reload removes the pool. Any number of accept loops
/// wait on it at once (after an upgrade a core may accept from several sockets), so it polls
/// the pool's flag rather than waiting on its one-waiter signal.
async fn stopped(served: &Served) {
    let removed = async {
        while !served.is_removed() {
            glommio::timer::sleep(REMOVAL_POLL).await;
        }
    };
    futures_lite::future::or(shutdown::wait(), removed).await;
}

/// Starts serving a client just accepted (or refusing it, past `--max-clients`). The
/// configuration is read at each accept: a reload's client limit and TLS apply to the next
/// client.
fn serve(shard: &Rc<Shard>, stream: Stream) {
    let config = shard.config();
    if config.tcp_keepalive {
        if let Err(err) = stream.set_keepalive() {
            // As nutcracker: the client is served all the same.
            warn!(core = shard.id, pool = shard.pool_name(), %err, "cannot set tcpkeepalive on a client");
        }
    }
    let full = shard.counters().clients.get() as usize >= config.max_clients_per_core();
    let refusal = full.then_some(MAX_CLIENTS_REACHED);
    if config.tls.is_some() {
        glommio::spawn_local(tls::serve(shard.clone(), stream, refusal)).detach();
    } else if let Some(refusal) = refusal {
        glommio::spawn_local(client::refuse(stream, refusal)).detach();
    } else {
        glommio::spawn_local(client::serve(shard.clone(), stream)).detach();
    }
}

/// Stops reading from every client, then waits (bounded by `--shutdown-timeout`, cut short by
/// a second stop signal) until their in-flight requests are answered and the replies written.
async fn drain(shard: &Rc<Shard>) {
    info!(
        core = shard.id,
        pool = shard.pool_name(),
        clients = shard.clients.borrow().len(),
        "draining clients"
    );
    let deadline = Instant::now() + shard.config().shutdown_timeout;
    let open = || shard.counters().clients.get();
    // Every client told to close, for a removed pool's last step below.
    let mut closing = Vec::new();
    loop {
        // Each round, as clients accepted just before the stop register only once their
        // task first runs, after the drain began.
        closing.extend(close_clients(shard));
        if open() == 0 || Instant::now() >= deadline || shutdown::immediate() {
            break;
        }
        glommio::timer::sleep(DRAIN_POLL).await;
    }
    sidecar::background::flush(shard, deadline).await;
    let left = open();
    if left > 0 {
        warn!(
            core = shard.id,
            pool = shard.pool_name(),
            left,
            "closing clients with requests in flight"
        );
    } else {
        info!(core = shard.id, pool = shard.pool_name(), "drained");
    }
    // A pool a reload removed, in a process that goes on: what is left is cut off now.
    if !shutdown::requested() {
        closing
            .iter()
            .filter_map(Weak::upgrade)
            .for_each(|c| c.kill());
    }
}

/// Tells every registered client to close once its replies are written; returns them.
fn close_clients(shard: &Rc<Shard>) -> Vec<Weak<ClientState>> {
    let clients = shard.clients.take();
    for client in clients.values().filter_map(Weak::upgrade) {
        client.close_after_replies();
        // A blocked client could wait past the shutdown timeout: it is unblocked now.
        session::unblock_for_shutdown(shard, &client);
    }
    clients.into_values().collect()
}
