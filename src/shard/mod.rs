//! A shard: everything one core owns. Its listener, its clients, its backend connections, its
//! slot map replica and its metrics all live here, on one thread, behind `Rc` and `RefCell`.
//! No other core touches any of it; they send [`Message`](crate::mesh::Message)s instead.
//!
//! [`run`] is the body of each core's executor: join the mesh, start the listener (and on
//! core 0 the topology refresher), then serve until the process ends.

pub mod backend;
pub mod client;
pub mod dispatch;
pub mod gather;
pub mod io;
pub mod local;
pub mod pool;
pub mod routing;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::{Full, MeshBuilder};
use tracing::{debug, error, info, warn};

use crate::cluster::topology::Topology;
use crate::config::Config;
use crate::mesh::{self, Mesh, Message, REFRESHER_CORE};
use crate::metrics::{CoreStats, Metrics};
use crate::refresh;
use crate::shard::client::ClientState;
use crate::shard::io::Listener;
use crate::shard::pool::{Node, Pool};
use crate::shard::routing::Routing;
use crate::shutdown;
use crate::sync::Signal;
use crate::uring::{self, Uring};

/// Least time between two refresh requests from one core: one request covers every MOVED
/// seen meanwhile.
const REFRESH_REQUEST_GAP: Duration = Duration::from_millis(100);

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

/// The state of one core.
pub struct Shard {
    /// This core's index (its place in the mesh).
    pub id: usize,
    /// The process configuration.
    pub config: &'static Config,
    /// Slot map replica.
    pub routing: RefCell<Routing>,
    /// Backend connections by node.
    pool: Pool,
    /// Counters and latency histogram.
    pub metrics: Metrics,
    /// This core's end of the cross-core mesh.
    pub mesh: Mesh,
    /// This core's io_uring, through which every socket of the core is read and written.
    pub uring: Rc<Uring>,
    /// When the process started serving (for uptime).
    pub started: Instant,
    /// Wakes the refresher (on the refresher core only).
    pub refresh_wanted: Signal,
    /// Notified when a topology is applied: the start-up waits for the first.
    topology_applied: Signal,
    /// When this core last asked for a refresh.
    last_refresh_request: Cell<Option<Instant>>,
    /// Open client connections, to close them at shutdown.
    clients: RefCell<HashMap<u64, Weak<ClientState>>>,
    next_client_id: Cell<u64>,
}

impl Shard {
    /// This core's connections to the node at `addr`, made if new.
    pub fn node(self: &Rc<Self>, addr: &str) -> Rc<Node> {
        self.pool.node(self, addr)
    }

    /// Drops a node whose connections have ended.
    pub fn forget_node(&self, addr: &str) {
        self.pool.forget(addr);
    }

    /// Asks the refresher for a new topology soon; repeated asks are folded together.
    pub fn request_refresh(&self) {
        let now = Instant::now();
        if let Some(last) = self.last_refresh_request.get() {
            if now.duration_since(last) < REFRESH_REQUEST_GAP {
                return;
            }
        }
        self.last_refresh_request.set(Some(now));
        if self.id == REFRESHER_CORE {
            self.refresh_wanted.notify();
        } else {
            // A full channel already holds a request; dropping this one loses nothing.
            let _ = self.mesh.try_send(REFRESHER_CORE, Message::RefreshRequest);
        }
    }

    /// Replaces the slot map replica with a newer topology.
    pub fn apply_topology(self: &Rc<Self>, topology: &Arc<Topology>) {
        if topology.epoch <= self.routing.borrow().epoch {
            return;
        }
        let nodes = topology.masters.iter().map(|m| self.node(m)).collect();
        let routing = Routing::new(topology.epoch, topology.slots.clone(), nodes);
        *self.routing.borrow_mut() = routing;
        self.topology_applied.notify();
        debug!(core = self.id, epoch = topology.epoch, "topology applied");
    }

    /// Registers an open client; returns its id for [`Shard::unregister_client`].
    pub fn register_client(&self, client: &Rc<ClientState>) -> u64 {
        let id = self.next_client_id.get();
        self.next_client_id.set(id + 1);
        self.clients.borrow_mut().insert(id, Rc::downgrade(client));
        id
    }

    /// Forgets a closed client.
    pub fn unregister_client(&self, id: u64) {
        self.clients.borrow_mut().remove(&id);
    }

    /// A snapshot of this core's stats; resets its latency histogram after if asked.
    pub fn stats(&self, reset_latency: bool) -> CoreStats {
        let epoch = self.routing.borrow().epoch;
        let stats = self.metrics.snapshot(self.id, epoch, self.uring.stats());
        if reset_latency {
            self.metrics.reset_latency();
        }
        stats
    }
}

/// The body of one core's executor.
pub async fn run(config: &'static Config, mesh: MeshBuilder<Message, Full>) {
    let Ok((senders, receivers)) = mesh.join().await else {
        error!("could not join the cross-core mesh");
        std::process::exit(1);
    };
    let mesh = Mesh::new(senders);
    let uring = match Uring::new() {
        Ok(uring) => Rc::new(uring),
        Err(err) => {
            error!(core = mesh.core(), %err, "cannot set up this core's io_uring");
            std::process::exit(1);
        }
    };
    uring::spawn_driver(uring.clone());
    let shard = Rc::new(Shard {
        id: mesh.core(),
        config,
        routing: RefCell::new(Routing::default()),
        pool: Pool::default(),
        metrics: Metrics::default(),
        mesh,
        uring: uring.clone(),
        started: Instant::now(),
        refresh_wanted: Signal::default(),
        topology_applied: Signal::default(),
        last_refresh_request: Cell::new(None),
        clients: RefCell::new(HashMap::new()),
        next_client_id: Cell::new(0),
    });
    mesh::spawn_receivers(&shard, receivers);
    if shard.id == REFRESHER_CORE {
        glommio::spawn_local(refresh::run(shard.clone())).detach();
        glommio::spawn_local(trim_memory()).detach();
    }
    let first_topology = async {
        shard.topology_applied.wait().await;
        true
    };
    let deadline = async {
        glommio::timer::sleep(FIRST_TOPOLOGY_WAIT).await;
        false
    };
    if !futures_lite::future::or(first_topology, deadline).await {
        warn!(core = shard.id, "no topology yet; listening anyway");
    }
    let listener = match Listener::bind(config.listen, uring) {
        Ok(listener) => listener,
        Err(err) => {
            error!(core = shard.id, listen = %config.listen, %err, "cannot listen");
            std::process::exit(1);
        }
    };
    info!(core = shard.id, listen = %config.listen, "accepting clients");
    futures_lite::future::or(accept_loop(&shard, &listener), shutdown::wait()).await;
    drop(listener);
    drain(&shard).await;
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
            Ok(stream) if shard.metrics.counters.clients.get() as usize >= max_clients => {
                glommio::spawn_local(client::refuse(stream, MAX_CLIENTS_REACHED)).detach();
            }
            Ok(stream) => {
                glommio::spawn_local(client::serve(shard.clone(), stream)).detach();
            }
            Err(err) => {
                warn!(core = shard.id, %err, "accept failed");
                glommio::timer::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

/// Stops reading from every client, then waits (bounded by `--shutdown-timeout`) until their
/// in-flight requests are answered and the replies written.
async fn drain(shard: &Rc<Shard>) {
    let clients = shard.clients.take();
    info!(core = shard.id, clients = clients.len(), "draining clients");
    for client in clients.values().filter_map(Weak::upgrade) {
        client.close_after_replies();
    }
    let deadline = Instant::now() + shard.config.shutdown_timeout;
    while shard.metrics.counters.clients.get() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(DRAIN_POLL).await;
    }
    let left = shard.metrics.counters.clients.get();
    if left > 0 {
        warn!(
            core = shard.id,
            left, "shutdown timeout: closing clients with requests in flight"
        );
    } else {
        info!(core = shard.id, "drained");
    }
}
