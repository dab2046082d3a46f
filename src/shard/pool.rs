//! The backend connections of this core to one master ([`Node`]), and the core's pool of
//! nodes by address. A replica read from (`shard::replica`) is a node too, kept apart from
//! the masters' because its connections are in READONLY mode.
//!
//! Nodes outlive topology changes: when a new topology arrives, masters that stay keep their
//! connections. A node is made on first use (from a topology or a MOVED/ASK naming a node not
//! seen before) and its connection tasks start at once. Each server's counters
//! ([`ServerCounters`]) are kept for as long as the process runs, so a node that leaves and
//! comes back keeps counting where it was, as nutcracker's per-server stats do.
//!
//! A one-server pool whose clients SELECT other databases than the pool's also keeps one
//! connection per protocol for each such database, opened when the first request for it
//! comes and selected once, at its handshake: a client's SELECT only changes which
//! connection its requests take ([`Lane`]), and no connection is ever sent a SELECT it does
//! not need.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::metrics::{Queues, ServerCounters, ServerStats};
use crate::resp::Protocol;

use super::backend::{self, Backend, Lane, Outbound};
use super::replica::Verdicts;
use super::Shard;

/// This core's connections to one master.
pub struct Node {
    /// The master's `host:port`.
    pub addr: Rc<str>,
    /// `--backend-conns` connections per protocol, used round-robin, indexed by
    /// [`Protocol::index`]. RESP3 ones are opened when the first RESP3 client needs one, so a
    /// proxy whose clients all speak RESP2 never opens any.
    conns: [RefCell<Vec<Rc<Backend>>>; 2],
    /// Round-robin position.
    next: Cell<usize>,
    /// One connection per database other than the pool's and protocol, opened on first use:
    /// (database, protocol index, connection). Empty unless clients SELECT.
    other_dbs: RefCell<Vec<(u16, usize, Rc<Backend>)>>,
    /// The server's counters on this core.
    counters: Rc<ServerCounters>,
    /// Its server left the pool in a reload: its connections close once idle, and a request
    /// for the address gets a new node.
    retiring: Cell<bool>,
    /// A replica's node (`shard::replica`): its connections send READONLY first, and
    /// it is read from only while `lag_ok` and its connections are up.
    replica: bool,
    /// The lag watcher's last verdict allows reads (always, for a master).
    lag_ok: Cell<bool>,
}

impl Node {
    /// Queues `out` on the next connection of its protocol and lane.
    pub fn send(&self, shard: &Rc<Shard>, out: Outbound) {
        self.pick(shard, out.protocol, out.lane).send(out);
    }

    /// The connection for `protocol` and `lane` (by default the next in turn), opened if the
    /// node has none yet.
    fn pick(&self, shard: &Rc<Shard>, protocol: Protocol, lane: Lane) -> Rc<Backend> {
        if let Some(db) = lane.db {
            return self.db_conn(shard, protocol, db);
        }
        let conns = &self.conns[protocol.index()];
        if conns.borrow().is_empty() {
            *conns.borrow_mut() = open(shard, &self.addr, protocol, &self.counters, self.replica);
        }
        let conns = conns.borrow();
        let index = match lane.pin {
            Some(pin) => pin as usize % conns.len(),
            // In turn, wrapping without a division (this is once per request).
            None => {
                let index = Some(self.next.get())
                    .filter(|&i| i < conns.len())
                    .unwrap_or(0);
                self.next.set(index + 1);
                index
            }
        };
        conns[index].clone()
    }

    /// The connection to database `db` speaking `protocol`, opened (and selecting `db` once,
    /// at its handshake) on first use.
    fn db_conn(&self, shard: &Rc<Shard>, protocol: Protocol, db: u16) -> Rc<Backend> {
        let index = protocol.index();
        let found = self
            .other_dbs
            .borrow()
            .iter()
            .find_map(|(d, p, conn)| (*d == db && *p == index).then(|| conn.clone()));
        if let Some(conn) = found {
            return conn;
        }
        let (addr, counters) = (&self.addr, &self.counters);
        let conn = connect(shard, addr, protocol, counters, u32::from(db), self.replica);
        self.other_dbs.borrow_mut().push((db, index, conn.clone()));
        conn
    }

    /// Every shared connection of the node: its protocols' and its other databases'.
    fn each_conn(&self, mut visit: impl FnMut(&Rc<Backend>)) {
        for conns in &self.conns {
            conns.borrow().iter().for_each(&mut visit);
        }
        self.other_dbs
            .borrow()
            .iter()
            .for_each(|(_, _, conn)| visit(conn));
    }
}

impl Node {
    /// Whether reads may go to this replica now: its lag is within the bound and each of its
    /// connections is up (connected and greeted since its last failure, or not failed yet).
    pub fn in_rotation(&self) -> bool {
        self.lag_ok.get() && self.connected()
    }

    /// Whether each of the node's connections is up.
    pub fn connected(&self) -> bool {
        let ready = |conns: &RefCell<Vec<Rc<Backend>>>| conns.borrow().iter().all(|c| c.is_ready());
        self.conns.iter().all(ready)
    }

    /// Whether the lag watcher's last verdict allows reads from this replica.
    pub fn lag_ok(&self) -> bool {
        self.lag_ok.get()
    }

    /// Records the lag watcher's verdict on this replica.
    pub fn set_lag_ok(&self, ok: bool) {
        self.lag_ok.set(ok);
    }

    /// Counts one read a read policy sent here.
    pub fn count_read(&self) {
        self.counters.read();
    }

    /// Ends the node's connections (it left the layout: a Sentinel failover): what waits on
    /// them fails, but the background writes, which are returned in order to be sent to the
    /// server's new master; the connections are not remade while the node stays out of the
    /// layout.
    pub fn retire(&self) -> Vec<Outbound> {
        let mut background = Vec::new();
        self.each_conn(|conn| {
            conn.close();
            background.extend(conn.take_background());
        });
        background
    }

    /// Ends the node's connections, those of its other databases too, once their requests
    /// are answered (its server left the pool in a reload); they are not remade.
    pub fn retire_when_idle(&self) {
        self.retiring.set(true);
        self.each_conn(Backend::close_when_idle);
    }

    /// Queues `outs` on one connection of their protocol, in order and with nothing of
    /// another client between them (a transaction's MULTI ... EXEC).
    pub fn send_all(&self, shard: &Rc<Shard>, outs: Vec<Outbound>) {
        let Some((protocol, lane)) = outs.first().map(|out| (out.protocol, out.lane)) else {
            return;
        };
        let backend = self.pick(shard, protocol, lane);
        for out in outs {
            backend.send(out);
        }
    }
}

/// Opens `--backend-conns` connections to `addr` speaking `protocol` (in READONLY mode for
/// a `replica`).
fn open(
    shard: &Rc<Shard>,
    addr: &Rc<str>,
    protocol: Protocol,
    counters: &Rc<ServerCounters>,
    replica: bool,
) -> Vec<Rc<Backend>> {
    let config = shard.config();
    (0..config.backend_conns.max(1))
        .map(|_| connect(shard, addr, protocol, counters, config.database(), replica))
        .collect()
}

/// Opens one shared connection to `addr` speaking `protocol`, on database `db` (in READONLY
/// mode for a `replica`).
fn connect(
    shard: &Rc<Shard>,
    addr: &Rc<str>,
    protocol: Protocol,
    counters: &Rc<ServerCounters>,
    db: u32,
    replica: bool,
) -> Rc<Backend> {
    let config = shard.config();
    let auth = config.backend_auth.as_ref();
    let conn = Backend::new(addr.clone(), protocol, auth, counters.clone())
        .selecting(db)
        .reading_replica(replica)
        .retrying_on_request(config.servers.is_some())
        .retrying_background(config.sidecar.async_writes.map(|on| on.retry_for));
    let conn = Rc::new(conn);
    glommio::spawn_local(backend::run(shard.clone(), conn.clone())).detach();
    conn
}

/// Nodes of this core by address.
#[derive(Default)]
pub struct Pool {
    nodes: RefCell<HashMap<String, Rc<Node>>>,
    /// Replicas' nodes by address, apart from the masters': their connections are READONLY
    /// (a node may be both while a failover settles).
    replicas: RefCell<HashMap<String, Rc<Node>>>,
    /// The lag watcher's last verdicts on the replicas, which a replica node made later
    /// starts from.
    pub(super) verdicts: Verdicts,
    /// Every server this core has had connections to, by address.
    servers: RefCell<HashMap<String, Rc<ServerCounters>>>,
}

impl Pool {
    /// The node for `addr`, made and connected (RESP2) if new.
    pub fn node(&self, shard: &Rc<Shard>, addr: &str) -> Rc<Node> {
        if let Some(node) = self.nodes.borrow().get(addr) {
            // A server a reload removed and a later one put back: fresh connections.
            if !node.retiring.get() {
                return node.clone();
            }
        }
        let node = self.make(shard, addr, false, true);
        self.nodes
            .borrow_mut()
            .insert(addr.to_string(), node.clone());
        node
    }

    /// The replica node for `addr`, made and connected (RESP2, READONLY) if new, read from
    /// once `lag_ok` (the lag watcher's verdict on it so far).
    pub fn replica(&self, shard: &Rc<Shard>, addr: &str, lag_ok: bool) -> Rc<Node> {
        if let Some(node) = self.replicas.borrow().get(addr) {
            return node.clone();
        }
        let node = self.make(shard, addr, true, lag_ok);
        let mut replicas = self.replicas.borrow_mut();
        replicas.insert(addr.to_string(), node.clone());
        node
    }

    /// A node for `addr` with its RESP2 connections opened.
    fn make(&self, shard: &Rc<Shard>, addr: &str, replica: bool, lag_ok: bool) -> Rc<Node> {
        let counters = self.counters(addr);
        let addr: Rc<str> = Rc::from(addr);
        Rc::new(Node {
            conns: [
                RefCell::new(open(shard, &addr, Protocol::Resp2, &counters, replica)),
                RefCell::new(Vec::new()),
            ],
            addr,
            next: Cell::new(0),
            other_dbs: RefCell::new(Vec::new()),
            counters,
            retiring: Cell::new(false),
            replica,
            lag_ok: Cell::new(lag_ok),
        })
    }

    /// Drops the node for `addr` (its connection tasks have ended); `replica`: the replica's.
    pub fn forget(&self, addr: &str, replica: bool) {
        match replica {
            true => self.replicas.borrow_mut().remove(addr),
            false => self.nodes.borrow_mut().remove(addr),
        };
    }

    /// Every replica node this core has made.
    pub fn replica_nodes(&self) -> Vec<Rc<Node>> {
        self.replicas.borrow().values().cloned().collect()
    }

    /// The replica node for `addr`, if this core has made it.
    pub fn made_replica(&self, addr: &str) -> Option<Rc<Node>> {
        self.replicas.borrow().get(addr).cloned()
    }

    /// Drops the node for `addr` if it is one whose server left the pool (not a new one made
    /// for the address since).
    pub fn forget_retired(&self, addr: &str) {
        let mut nodes = self.nodes.borrow_mut();
        if nodes.get(addr).is_some_and(|node| node.retiring.get()) {
            nodes.remove(addr);
        }
    }

    /// Every node of this core (to close them all when the pool is removed).
    pub fn nodes(&self) -> Vec<Rc<Node>> {
        self.nodes.borrow().values().cloned().collect()
    }

    /// The counters of the server at `addr`, made if new.
    pub fn counters(&self, addr: &str) -> Rc<ServerCounters> {
        if let Some(counters) = self.servers.borrow().get(addr) {
            return counters.clone();
        }
        let counters = Rc::new(ServerCounters::default());
        let mut servers = self.servers.borrow_mut();
        servers.insert(addr.to_string(), counters.clone());
        counters
    }

    /// Every server's figures on this core, with what waits on its shared connections.
    pub fn server_stats(&self) -> Vec<ServerStats> {
        let nodes = self.nodes.borrow();
        let servers = self.servers.borrow();
        let mut stats: Vec<ServerStats> = servers
            .iter()
            .map(|(addr, counters)| {
                let mut queues = Queues::default();
                let replica = self.replicas.borrow().get(addr).cloned();
                for node in nodes.get(addr).into_iter().chain(replica.as_ref()) {
                    node.each_conn(|backend| queues.add(backend.queues()));
                }
                counters.snapshot(addr, queues)
            })
            .collect();
        stats.sort_by(|a, b| a.addr.cmp(&b.addr));
        stats
    }

    /// This core's shared RESP2 connections (those every node opens at once), and how many of
    /// them are up now.
    pub fn connections_up(&self) -> (usize, usize) {
        let nodes = self.nodes.borrow();
        let conns = nodes.values().flat_map(|node| {
            let conns = node.conns[Protocol::Resp2.index()].borrow();
            conns.iter().map(|conn| conn.is_up()).collect::<Vec<_>>()
        });
        conns.fold((0, 0), |(up, all), is_up| {
            (up + usize::from(is_up), all + 1)
        })
    }

    /// Clears every server's event counters (CONFIG RESETSTAT).
    pub fn reset_stats(&self) {
        for counters in self.servers.borrow().values() {
            counters.reset();
        }
    }
}
