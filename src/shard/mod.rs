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
//! - [`eject`]: a static pool's cache mode, servers out of the ring after failures;
//! - [`lease`]: dedicated upstream connections, leased one client at a time; [`session`]
//!   (WATCH, RESET) and [`blocked`] (blocking commands) use them;
//! - [`pubsub`]: the core's pub/sub hub, its subscription connections and fan-out;
//! - [`slot_map`]: the core's replica of the slot-to-master map;
//! - [`sidecar`]: preconnect, SELECT of a one-server pool, background writes;
//! - [`replica`], [`replica_watch`]: replica reads, and the watcher of the replicas' lag;
//! - [`observe`]: the admin ports on core 0 (nutcracker's stats, `/metrics`, `/health`), which
//!   gather every core's stats over the mesh;
//! - [`pools`], [`reload`], [`reconfigure`]: the core's pools and its end of the process's
//!   control mesh, reloads (run by core 0), and a pool taking its new configuration.
//!
//! [`Shard`]'s fields are private; the rest of the shard uses its methods, and nothing outside
//! the shard gets a `Shard` at all: the control plane receives plain values from it.
//!
//! [`run_core`] (in `run.rs`) is the body of each core's executor, which [`executor`] starts
//! kept awake (against a glommio bug that can park a core for good; see [`keep_awake`]): it
//! sets up the core's socket ring and runs every pool on it, each a `Shard` of its own (its mesh,
//! listener, upstream, clients): join the mesh, start the listener (and on core 0 a cluster
//! pool's topology refresher), then serve until the process stops.

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
mod eject;
pub mod executor;
mod gate;
mod greeting;
mod identity;
mod info;
pub mod keep_awake;
mod kill;
mod lease;
mod local;
mod monitor;
mod observe;
mod pause;
mod placer;
mod pool;
mod pools;
mod pubsub;
mod reconfigure;
mod reload;
mod replica;
mod replica_watch;
mod reply_to;
mod run;

pub use run::{run_core, CoreStart};
mod session;
mod sidecar;
mod slot_map;
mod slow_requests;
mod tls;
mod transaction;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use crate::cluster::presence::Presence;
use crate::cluster::slot::Slot;
use crate::cluster::topology::Topology;
use crate::command::cursor;
use crate::config::Config;
use crate::control::mesh::{Mesh, Message, REFRESHER_CORE};
use crate::metrics::{Counters, Metrics};
use crate::net::Uring;
use crate::sync::Signal;

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

/// Redis Cluster's reply for a slot no master serves.
const CLUSTERDOWN: &[u8] = b"-CLUSTERDOWN Hash slot not served\r\n";
/// The reply for a key of a Sentinel pool's server that has no master now: TRYAGAIN, as
/// Redis Cluster answers while a slot moves, since it is over in a second or two.
const NO_MASTER: &[u8] = b"-TRYAGAIN percore: this key's server has no master now (a Sentinel \
    failover is promoting its replica, or Sentinel has not named its master yet)\r\n";

/// The state of one core.
pub struct Shard {
    /// This core's index (its place in the mesh).
    id: usize,
    /// The pool's name (a pool is its name: a reload keeps the shard of a pool it keeps).
    name: Rc<str>,
    /// The pool's configuration now. A reload replaces it whole, between requests
    /// (`shard::reload`); a request reads it through [`Shard::config`], whose `Rc` it may
    /// keep for as long as it runs, so a request never sees half of one and half of another.
    config: RefCell<Rc<Config>>,
    /// Slot map replica: which of this core's nodes serves each slot (each server position,
    /// for a static pool).
    slot_map: RefCell<SlotMap>,
    /// How keys are placed: by hash slot, or by the static pool's ring.
    placer: RefCell<placer::Placer>,
    /// A static pool's servers out of the ring (cache mode), and failures counted towards it.
    ejections: eject::Ejections,
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
    /// The core accepts the pool's clients now: from the listener's bind until draining
    /// starts (what `/health` reports).
    serving: Cell<bool>,
    /// The core's share of the process: its other pools, the control mesh, the
    /// configuration epoch (`PROXY CONFIG RELOAD`, `PROXY INFO`).
    core: Rc<pools::Core>,
    /// The pool's tasks that run for as long as it is served (the mesh's receivers, the
    /// refresher or Sentinel watcher, pub/sub and MONITOR loops): a reload that removes the
    /// pool cancels them, so nothing holds the shard after ([`Shard::retire`]).
    background: RefCell<Vec<glommio::Task<()>>>,
    /// Background writes, in a pool with `async_writes: true`.
    background_writes: Option<Rc<sidecar::background::Writes>>,
}

impl Shard {
    /// This core's index.
    fn id(&self) -> usize {
        self.id
    }

    /// The pool's configuration now (a non-atomic count, not a copy).
    fn config(&self) -> Rc<Config> {
        self.config.borrow().clone()
    }

    /// The pool's read policy now (`read_from`), read once per request: no count touched,
    /// where [`Shard::config`] would add one.
    fn read_policy(&self) -> crate::config::ReadFrom {
        self.config.borrow().replica_reads.read_from
    }

    /// The pool's users now, borrowed for one synchronous check (the request path's gate): no
    /// count touched, where [`Shard::config`] would add one.
    fn users(&self) -> std::cell::Ref<'_, crate::auth::Users> {
        std::cell::Ref::map(self.config.borrow(), |config| &config.users)
    }

    /// The pool this shard serves, by name, for log lines.
    pub(crate) fn pool_name(&self) -> &str {
        &self.name
    }

    /// Keeps `task` running for as long as the pool is served on this core.
    fn keep(&self, task: glommio::Task<()>) {
        self.background.borrow_mut().push(task);
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

    /// The time of this core's current ring round ([`Uring::now`]): what the request path
    /// stamps arrivals, backend writes and replies with.
    fn now(&self) -> Instant {
        self.uring.now()
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
    /// credentials), so the operator reads why instead of guessing. A static pool's server
    /// is served by nobody only while Sentinel has no master for it.
    fn unserved(&self) -> Bytes {
        let unreachable = self.unreachable.borrow();
        let not_found = unreachable
            .as_ref()
            .filter(|_| self.slot_map.borrow().epoch() == 0);
        let config = self.config();
        match (&config.servers, not_found) {
            // Cache mode: a request has no server only when every server is ejected, or when
            // it was placed (queued in a transaction) before its server was.
            (Some(servers), _) if servers.eject.is_some() => error_reply(&format!(
                "ERR percore: pool '{}' has no live server for this request (ejected)",
                servers.pool
            )),
            // A Sentinel pool before any Sentinel answered: clients read why.
            (Some(servers), Some(error)) => error_reply(&format!(
                "TRYAGAIN percore: pool '{}' has found no master through Sentinel yet: {error}",
                servers.pool
            )),
            // A Sentinel pool's server not found yet, or held during a failover.
            (Some(_), None) => Bytes::from_static(NO_MASTER),
            (None, Some(error)) => error_reply(&format!(
                "CLUSTERDOWN percore has no cluster topology yet: {error}"
            )),
            (None, None) => Bytes::from_static(CLUSTERDOWN),
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
        self.pool.forget(addr, false);
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
        let map = SlotMap::new(topology.epoch, topology.slots.clone(), nodes)
            .with_replicas(replica::sets(self, topology));
        *self.slot_map.borrow_mut() = map;
        self.unreachable.borrow_mut().take();
        self.topology_applied.notify();
        self.pubsub.topology_changed(self);
        debug!(core = self.id, epoch = topology.epoch, "topology applied");
    }

    /// Applies a Sentinel pool's new layout, then closes this core's connections to the
    /// masters that left it: what waits there fails at once (it may have run, so it is not
    /// sent again), and nothing queued behind it reaches a demoted master; background
    /// writes, whose clients had `+OK`, go to the server's new master instead
    /// (`sidecar::moves`), in the same step, so ahead of anything their clients send next.
    fn follow_servers(self: &Rc<Self>, topology: &Arc<Topology>) {
        let before = self.masters();
        self.apply_topology(topology);
        for node in before.iter().filter(|node| !self.serves(&node.addr)) {
            info!(
                core = self.id,
                node = &*node.addr,
                "closing the connections to a former master"
            );
            let background = node.retire();
            sidecar::moves::resend(self, &node.addr, background);
        }
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
        turn * self.config().threads as u64 + self.id as u64 + 1
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
