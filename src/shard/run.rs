//! How a core serves: [`run_core`] is the body of each core's executor. It sets up the core's
//! socket ring and runs every pool on it, each a [`Shard`] of its own: join the pool's mesh,
//! set up its upstream (a cluster's refresher on core 0, a static pool's fixed layout, or a
//! Sentinel pool's watcher on core 0),
//! listen once the layout is known, accept until the process stops, then drain.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::{Full, MeshBuilder};
use tracing::{info, warn};

use crate::cluster::topology::Topology;
use crate::config::{Config, ListenAddr};
use crate::control::mesh::{Mesh, Message, REFRESHER_CORE};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::net::{spawn_driver, Listener, SharedListener, Uring};
use crate::slowlog::SlowLog;
use crate::sync::Signal;
use crate::upstream::Ring;
use crate::{service, shutdown};

use super::client;
use super::monitor::Monitors;
use super::pool::Pool;
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

/// Redis's reply to a connection over `maxclients`.
const MAX_CLIENTS_REACHED: &[u8] = b"-ERR max number of clients reached\r\n";

/// The body of one core's executor: serves every pool until the process stops, then drains.
/// Returns an error only when this core cannot serve (no ring, or a pool with no mesh or no
/// listener).
///
/// `shared` holds, per pool, this core's share of the pool's Unix socket (`None` for TCP,
/// which each core binds itself).
pub async fn run_core(
    pools: &'static [Config],
    meshes: Vec<MeshBuilder<Message, Full>>,
    shared: Vec<Option<SharedListener>>,
) -> Result<(), Error> {
    // The core's one socket ring, shared by its pools: one driver, one io_uring_enter per
    // round for every socket of the core.
    let ring_error = |core| move |source| Error::Ring { core, source };
    let uring = Rc::new(Uring::new().map_err(ring_error(0))?);
    let driver = spawn_driver(uring.clone()).map_err(ring_error(0))?;
    let mut served = Vec::with_capacity(pools.len());
    // Each pool's shard on this core, for the admin ports (served by core 0).
    let seats: observe::Seats = Rc::new(RefCell::new(vec![None; pools.len()]));
    let pools_here = pools.iter().zip(meshes).zip(shared);
    for (index, ((config, mesh), share)) in pools_here.enumerate() {
        let uring = uring.clone();
        let seat = Seat {
            pools,
            seats: seats.clone(),
            index,
        };
        served.push(glommio::spawn_local(async move {
            let result = run_pool(config, mesh, share, uring, seat).await;
            if result.is_err() {
                // A pool that cannot serve stops the process, as a core that fails does.
                shutdown::request();
            }
            result
        }));
    }
    let serving = async {
        let mut result = Ok(());
        for pool in served {
            result = result.and(pool.await);
        }
        result
    };
    futures_lite::future::or(serving, async { Err(ring_error(0)(driver.await)) }).await
}

/// Where a pool's shard sits among the core's pools.
struct Seat {
    /// Every pool of the process.
    pools: &'static [Config],
    /// The core's shards, by pool.
    seats: observe::Seats,
    /// This pool's index in `pools`.
    index: usize,
}

/// One pool on this core: serves until the process stops, then drains. Returns an error only
/// when the pool cannot serve at all (no mesh, no listener, no metrics port).
async fn run_pool(
    config: &'static Config,
    mesh: MeshBuilder<Message, Full>,
    share: Option<SharedListener>,
    uring: Rc<Uring>,
    seat: Seat,
) -> Result<(), Error> {
    let (senders, receivers) = mesh.join().await.map_err(|e| Error::Mesh(e.to_string()))?;
    let mesh = Mesh::new(senders);
    let core = mesh.core();
    let shard = Rc::new(Shard {
        id: core,
        config,
        slot_map: RefCell::new(SlotMap::default()),
        placer: RefCell::new(placer::Placer::Cluster),
        ejections: eject::Ejections::new(config.servers.as_ref()),
        pool: Pool::default(),
        leases: lease::Leases::default(),
        metrics: Metrics::default(),
        mesh,
        uring: uring.clone(),
        started: Instant::now(),
        refresh_wanted: Rc::new(Signal::default()),
        newer_commands: RefCell::new(Arc::from([])),
        pause: Cell::new(None),
        unreachable: RefCell::new(None),
        topology_applied: Signal::default(),
        last_refresh_request: Cell::new(None),
        clients: RefCell::new(HashMap::new()),
        next_client_id: Cell::new(0),
        pubsub: pubsub::Hub::default(),
        presence: RefCell::new(cluster_view::alone(config)),
        slowlog: SlowLog::new(
            config.slowlog_slower_than,
            config.slowlog_max_len,
            core,
            config.threads,
        ),
        monitors: Monitors::default(),
        serving: Cell::new(false),
        background: sidecar::background::Writes::for_pool(config, core),
    });
    control::spawn_receivers(&shard, receivers);
    seat.seats.borrow_mut()[seat.index] = Some(shard.clone());
    match &config.servers {
        // A static pool's layout is the configuration's, or Sentinel's: no refresher, no fleet.
        Some(servers) => {
            let ring = Ring::build(&servers.specs, servers.scheme)
                .map_err(|e| Error::Config(e.to_string()))?;
            *shard.placer.borrow_mut() = placer::Placer::Servers(ring);
            match &servers.sentinel {
                // Where each server is, Sentinel says: one watcher tells every core.
                Some(sentinel) if core == REFRESHER_CORE => {
                    control::spawn_sentinel_watcher(&shard, sentinel);
                }
                Some(_) => {}
                None => shard.apply_topology(&Arc::new(Topology::of_servers(&servers.addrs))),
            }
        }
        None if core == REFRESHER_CORE => {
            control::spawn_refresher(&shard);
            cluster_view::spawn_peer_watch(&shard);
        }
        None => {}
    }
    // Once per process: by the first pool, on core 0.
    if core == REFRESHER_CORE && seat.index == 0 {
        glommio::spawn_local(trim_memory()).detach();
        observe::spawn(seat.pools, seat.seats, &uring, shard.started)?;
    }
    let serving = async {
        wait_for_first_topology(&shard).await;
        if config.sidecar.preconnect {
            sidecar::preconnect::wait(&shard).await;
        }
        let listener = listen(core, config, share, uring)?;
        info!(core, pool = %config.name, listen = %config.listen, "accepting clients");
        shard.serving.set(true);
        service::listener_ready();
        futures_lite::future::or(accept_loop(&shard, &listener), shutdown::wait()).await;
        shard.serving.set(false);
        drop(listener);
        drain(&shard).await;
        Ok(())
    };
    serving.await
}

/// This core's listener for the pool: its own SO_REUSEPORT socket for TCP, or its share of the
/// Unix socket the process bound at start (SO_REUSEPORT does not apply to Unix sockets; see
/// `net::UnixSocketFile` for why every core accepts from the one socket).
fn listen(
    core: usize,
    config: &Config,
    share: Option<SharedListener>,
    uring: Rc<Uring>,
) -> Result<Listener, Error> {
    let error = |source| Error::Listen {
        core,
        addr: config.listen.to_string(),
        source,
    };
    match (&config.listen, share) {
        (ListenAddr::Tcp(addr), _) => Listener::bind(*addr, uring).map_err(error),
        (ListenAddr::Unix { .. }, Some(share)) => Ok(Listener::shared(share, uring)),
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

/// Accepts clients until the process stops.
async fn accept_loop(shard: &Rc<Shard>, listener: &Listener) {
    let max_clients = shard.config.max_clients_per_core();
    loop {
        match listener.accept().await {
            Ok(stream) if shard.config.tls.is_some() => {
                let full = shard.counters().clients.get() as usize >= max_clients;
                let refusal = full.then_some(MAX_CLIENTS_REACHED);
                glommio::spawn_local(tls::serve(shard.clone(), stream, refusal)).detach();
            }
            Ok(stream) if shard.counters().clients.get() as usize >= max_clients => {
                glommio::spawn_local(client::refuse(stream, MAX_CLIENTS_REACHED)).detach();
            }
            Ok(stream) => {
                glommio::spawn_local(client::serve(shard.clone(), stream)).detach();
            }
            Err(err) => {
                warn!(core = shard.id, pool = shard.pool_name(), %err, "accept failed");
                glommio::timer::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Stops reading from every client, then waits (bounded by `--shutdown-timeout`, cut short by
/// a second stop signal) until their in-flight requests are answered and the replies written.
async fn drain(shard: &Rc<Shard>) {
    let clients = shard.clients.take();
    info!(
        core = shard.id,
        pool = shard.pool_name(),
        clients = clients.len(),
        "draining clients"
    );
    for client in clients.values().filter_map(Weak::upgrade) {
        client.close_after_replies();
        // A blocked client could wait past the shutdown timeout: it is unblocked now.
        session::peer_closed(shard, &client);
    }
    let deadline = Instant::now() + shard.config.shutdown_timeout;
    let open = || shard.counters().clients.get();
    while open() > 0 && Instant::now() < deadline && !shutdown::immediate() {
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
}
