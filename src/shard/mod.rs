//! A shard: everything one core owns. Its listener, its clients, its backend connections, its
//! slot map replica and its metrics all live here, on one thread, behind `Rc` and `RefCell`.
//! No other core touches any of it; they send [`Message`]s instead ([`control`] handles them).
//!
//! The request path is the loop client -> dispatch -> backend -> client, all in this folder:
//! - [`client`]: one downstream connection, read, parse, reply in order;
//! - [`dispatch`]: carries out the routing decision, follows redirects;
//! - [`reply_to`]: where a reply goes; a request sent as several parts, merged when all are back;
//! - [`local`]: commands the proxy answers itself ([`cluster_view`]: the CLUSTER commands that
//!   present percore as the cluster);
//! - [`cluster_scan`]: SCAN over every master;
//! - [`monitor`], [`slow_requests`]: MONITOR and SLOWLOG, which watch the request path;
//! - [`backend`], [`pool`]: upstream connections per node;
//! - [`lease`]: dedicated upstream connections, leased one client at a time; [`session`]
//!   (WATCH, RESET) and [`blocked`] (blocking commands) use them;
//! - [`pubsub`]: the core's pub/sub hub, its subscription connections and fan-out;
//! - [`slot_map`]: the core's replica of the slot-to-master map.
//!
//! [`Shard`]'s fields are private; the rest of the shard uses its methods, and nothing outside
//! the shard gets a `Shard` at all: the control plane receives plain values from it.
//!
//! [`run_core`] is the body of each core's executor: it sets up the core's socket ring and
//! runs every pool on it, each a `Shard` of its own (its mesh, listener, upstream, clients):
//! join the mesh, start the listener (and on core 0 a cluster pool's topology refresher),
//! then serve until the process stops.

mod backend;
mod blocked;
mod client;
mod client_command;
mod client_input;
mod clients;
mod cluster_scan;
mod cluster_view;
mod composed;
mod connection;
mod control;
mod dispatch;
mod gate;
mod identity;
mod info;
mod kill;
mod lease;
mod local;
mod monitor;
mod pause;
mod placer;
mod pool;
mod pubsub;
mod reply_to;
mod session;
mod slot_map;
mod slow_requests;
mod transaction;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::{Full, MeshBuilder};
use tracing::{debug, info, warn};

use crate::cluster::presence::Presence;
use crate::cluster::slot::Slot;
use crate::cluster::topology::Topology;
use crate::command::cursor;
use crate::config::Config;
use crate::control::mesh::{Mesh, Message, REFRESHER_CORE};
use crate::error::Error;
use crate::metrics::{Counters, Metrics};
use crate::net::{spawn_driver, Listener, Uring};
use crate::shutdown;
use crate::sync::Signal;
use crate::upstream::Ring;

use crate::slowlog::SlowLog;
use bytes::Bytes;
use client::ClientState;
use dispatch::error_reply;
use monitor::Monitors;
use pool::{Node, Pool};
use slot_map::SlotMap;

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

/// Redis Cluster's reply for a slot no master serves.
const CLUSTERDOWN: &[u8] = b"-CLUSTERDOWN Hash slot not served\r\n";

/// Redis's reply to a connection over `maxclients`.
const MAX_CLIENTS_REACHED: &[u8] = b"-ERR max number of clients reached\r\n";

/// The state of one core.
pub struct Shard {
    /// This core's index (its place in the mesh).
    id: usize,
    /// The process configuration.
    config: &'static Config,
    /// Slot map replica: which of this core's nodes serves each slot (each server position,
    /// for a static pool).
    slot_map: RefCell<SlotMap>,
    /// How keys are placed: by hash slot, or by the static pool's ring.
    placer: RefCell<placer::Placer>,
    /// Backend connections by node.
    pool: Pool,
    /// Dedicated backend connections (WATCH, blocking commands) idle between leases.
    leases: lease::Leases,
    /// Counters and latency histogram.
    metrics: Metrics,
    /// This core's end of the cross-core mesh.
    mesh: Mesh,
    /// This core's io_uring, through which every socket of the core is read and written.
    uring: Rc<Uring>,
    /// When the process started serving (for uptime).
    started: Instant,
    /// Wakes the refresher (on the refresher core only).
    refresh_wanted: Rc<Signal>,
    /// Why the refresher has no topology yet, while it has none.
    unreachable: RefCell<Option<Arc<str>>>,
    /// CLIENT PAUSE in force, if any.
    pause: Cell<Option<pause::Pause>>,
    /// Commands the cluster's server has and the command table lacks (`name`, `container|sub`).
    newer_commands: RefCell<Arc<[String]>>,
    /// Notified when a topology is applied: the start-up waits for the first.
    topology_applied: Signal,
    /// When this core last asked for a refresh.
    last_refresh_request: Cell<Option<Instant>>,
    /// Open client connections, to close them at shutdown.
    clients: RefCell<HashMap<u64, Weak<ClientState>>>,
    /// Clients this core has accepted, for [`Shard::next_client_id`].
    next_client_id: Cell<u64>,
    /// The core's pub/sub subscriptions and their connections to nodes.
    pubsub: pubsub::Hub,
    /// The cluster this percore presents to cluster-mode clients (itself and its live peers).
    presence: RefCell<Presence>,
    /// This core's slow log.
    slowlog: SlowLog,
    /// Who monitors, here and on the other cores.
    monitors: Monitors,
}

impl Shard {
    /// This core's index.
    fn id(&self) -> usize {
        self.id
    }

    /// The process configuration.
    fn config(&self) -> &'static Config {
        self.config
    }

    /// This core's counters.
    fn counters(&self) -> &Counters {
        &self.metrics.counters
    }

    /// This core's dedicated connections between leases.
    fn leases(&self) -> &lease::Leases {
        &self.leases
    }

    /// This core's socket ring.
    fn uring(&self) -> &Rc<Uring> {
        &self.uring
    }

    /// This core's slow log.
    fn slowlog(&self) -> &SlowLog {
        &self.slowlog
    }

    /// Whether some client, on any core, monitors.
    #[inline]
    fn monitoring(&self) -> bool {
        self.monitors.active()
    }

    /// Whether client `id` of this core monitors.
    fn is_monitor(&self, id: u64) -> bool {
        self.monitoring() && self.monitors.is_monitor(id)
    }

    /// Records one request's time in the proxy.
    fn record_latency(&self, elapsed: Duration) {
        self.metrics.record_latency(elapsed);
    }

    /// The node that serves `slot` (any master for `None`), if the map has one.
    fn node_for(&self, slot: Option<Slot>) -> Option<Rc<Node>> {
        let map = self.slot_map.borrow();
        match slot {
            Some(slot) => map.node_for(slot).cloned(),
            None => map.any_node().cloned(),
        }
    }

    /// The reply to a request whose slot no master serves: Redis Cluster's CLUSTERDOWN, with
    /// the reason when percore has never reached the cluster (a wrong seed, refused
    /// credentials), so the operator reads why instead of guessing.
    fn unserved(&self) -> Bytes {
        match &*self.unreachable.borrow() {
            Some(error) if self.slot_map.borrow().epoch() == 0 => error_reply(&format!(
                "CLUSTERDOWN percore has no cluster topology yet: {error}"
            )),
            _ => Bytes::from_static(CLUSTERDOWN),
        }
    }

    /// Every master of the current topology.
    fn masters(&self) -> Vec<Rc<Node>> {
        self.slot_map.borrow().masters()
    }

    /// The highest slot of the first master a SCAN visits, if any master serves a slot.
    fn first_scan_master(&self) -> Option<Slot> {
        cursor::next_master(self.slot_map.borrow().owners(), None)
    }

    /// What a SCAN does after the master named by `at` answered with its cursor `returned`.
    fn scan_step(&self, at: Slot, returned: u64) -> Result<cursor::Step, cursor::CursorOverflow> {
        cursor::after_page(self.slot_map.borrow().owners(), at, returned)
    }

    /// True if the node at `addr` serves at least one slot.
    fn serves(&self, addr: &str) -> bool {
        self.slot_map.borrow().serves(addr)
    }

    /// Points `slot` at the node at `addr` (after MOVED) and asks for a refresh; returns the
    /// node.
    fn slot_moved(self: &Rc<Self>, slot: Slot, addr: &str) -> Rc<Node> {
        let node = self.node(addr);
        self.slot_map.borrow_mut().patch(slot, node.clone());
        self.request_refresh();
        node
    }

    /// This core's connections to the node at `addr`, made if new.
    fn node(self: &Rc<Self>, addr: &str) -> Rc<Node> {
        self.pool.node(self, addr)
    }

    /// Drops a node whose connections have ended.
    fn forget_node(&self, addr: &str) {
        self.pool.forget(addr);
    }

    /// Asks the refresher for a new topology soon; repeated asks are folded together.
    fn request_refresh(&self) {
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
    fn apply_topology(self: &Rc<Self>, topology: &Arc<Topology>) {
        if topology.epoch <= self.slot_map.borrow().epoch() {
            return;
        }
        let nodes = topology.masters.iter().map(|m| self.node(m)).collect();
        let map = SlotMap::new(topology.epoch, topology.slots.clone(), nodes);
        *self.slot_map.borrow_mut() = map;
        self.unreachable.borrow_mut().take();
        self.topology_applied.notify();
        self.pubsub.topology_changed(self);
        debug!(core = self.id, epoch = topology.epoch, "topology applied");
    }

    /// True if `name` (`command` or `container|sub`, any case) is a command the cluster's
    /// server has and the command table lacks.
    fn is_newer_command(&self, name: &str) -> bool {
        self.newer_commands
            .borrow()
            .iter()
            .any(|newer| newer.eq_ignore_ascii_case(name))
    }

    /// An id for a new client, unique on every core: the cores count in turns, so core `c` of
    /// `n` hands out `c + 1`, `c + 1 + n`, `c + 1 + 2n`, ...
    fn next_client_id(&self) -> u64 {
        let turn = self.next_client_id.get();
        self.next_client_id.set(turn + 1);
        turn * self.config.threads as u64 + self.id as u64 + 1
    }

    /// Registers an open client under its id.
    fn register_client(&self, client: &Rc<ClientState>) {
        let id = client.identity.id;
        self.clients.borrow_mut().insert(id, Rc::downgrade(client));
    }

    /// Whether a CLIENT PAUSE holds the request `args` now. One flag read when none is in
    /// force.
    fn pause_holds<A: crate::command::keys::Args + ?Sized>(
        &self,
        client: &ClientState,
        args: &A,
    ) -> bool {
        let Some(pause) = self.pause.get() else {
            return false;
        };
        let now = Instant::now();
        if now >= pause.until {
            self.pause.set(None);
            return false;
        }
        pause.holds(now, args, client.transaction_writes())
    }

    /// This core's open clients.
    fn open_clients(&self) -> Vec<Rc<ClientState>> {
        self.clients
            .borrow()
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// The open client with this id, if it is on this core.
    fn client(&self, id: u64) -> Option<Rc<ClientState>> {
        self.clients.borrow().get(&id).and_then(Weak::upgrade)
    }

    /// Forgets a closed client.
    fn unregister_client(&self, id: u64) {
        self.clients.borrow_mut().remove(&id);
    }
}

/// The body of one core's executor: serves every pool until the process stops, then drains.
/// Returns an error only when this core cannot serve (no ring, or a pool with no mesh or no
/// listener).
pub async fn run_core(
    pools: &'static [Config],
    meshes: Vec<MeshBuilder<Message, Full>>,
) -> Result<(), Error> {
    // The core's one socket ring, shared by its pools: one driver, one io_uring_enter per
    // round for every socket of the core.
    let ring_error = |core| move |source| Error::Ring { core, source };
    let uring = Rc::new(Uring::new().map_err(ring_error(0))?);
    let driver = spawn_driver(uring.clone()).map_err(ring_error(0))?;
    let mut served = Vec::with_capacity(pools.len());
    for (index, (config, mesh)) in pools.iter().zip(meshes).enumerate() {
        let first = index == 0;
        let uring = uring.clone();
        served.push(glommio::spawn_local(async move {
            let result = run_pool(config, mesh, uring, first).await;
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

/// One pool on this core: serves until the process stops, then drains. Returns an error only
/// when the pool cannot serve at all (no mesh, no listener).
async fn run_pool(
    config: &'static Config,
    mesh: MeshBuilder<Message, Full>,
    uring: Rc<Uring>,
    first_pool: bool,
) -> Result<(), Error> {
    let (senders, receivers) = mesh.join().await.map_err(|e| Error::Mesh(e.to_string()))?;
    let mesh = Mesh::new(senders);
    let core = mesh.core();
    let shard = Rc::new(Shard {
        id: core,
        config,
        slot_map: RefCell::new(SlotMap::default()),
        placer: RefCell::new(placer::Placer::Cluster),
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
    });
    control::spawn_receivers(&shard, receivers);
    match &config.servers {
        // A static pool's layout is the configuration's: no refresher, no fleet.
        Some(servers) => {
            let ring = Ring::build(&servers.specs, servers.scheme)
                .map_err(|e| Error::Config(e.to_string()))?;
            *shard.placer.borrow_mut() = placer::Placer::Servers(ring);
            shard.apply_topology(&Arc::new(Topology::of_servers(&servers.addrs)));
        }
        None if core == REFRESHER_CORE => {
            control::spawn_refresher(&shard);
            cluster_view::spawn_peer_watch(&shard);
        }
        None => {}
    }
    // Once per process: by the first pool, on core 0.
    if core == REFRESHER_CORE && first_pool {
        glommio::spawn_local(trim_memory()).detach();
    }
    let serving = async {
        wait_for_first_topology(&shard).await;
        let listener = Listener::bind(config.listen, uring).map_err(|source| Error::Listen {
            core,
            addr: config.listen,
            source,
        })?;
        info!(core, listen = %config.listen, "accepting clients");
        futures_lite::future::or(accept_loop(&shard, &listener), shutdown::wait()).await;
        drop(listener);
        drain(&shard).await;
        Ok(())
    };
    serving.await
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
        warn!(core = shard.id, "no topology yet; listening anyway");
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
            Ok(stream) if shard.counters().clients.get() as usize >= max_clients => {
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

/// Stops reading from every client, then waits (bounded by `--shutdown-timeout`, cut short by
/// a second stop signal) until their in-flight requests are answered and the replies written.
async fn drain(shard: &Rc<Shard>) {
    let clients = shard.clients.take();
    info!(core = shard.id, clients = clients.len(), "draining clients");
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
    let left = open();
    if left > 0 {
        warn!(
            core = shard.id,
            left, "closing clients with requests in flight"
        );
    } else {
        info!(core = shard.id, "drained");
    }
}
