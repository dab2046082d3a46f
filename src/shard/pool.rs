//! The backend connections of this core to one master ([`Node`]), and the core's pool of
//! nodes by address. A replica read from (`shard::replica`) is a node too, kept apart from
//! the masters' because its connections are in READONLY mode.
//!
//! Nodes outlive topology changes: when a new topology arrives, masters that stay keep their
//! connections. A node is made on first use (from a topology or a MOVED/ASK naming a node not
//! seen before) and its connection tasks start at once. Each server's counters
//! ([`ServerCounters`]) are kept for as long as the process runs, so a node that leaves and
//! comes back keeps counting where it was, as nutcracker's per-server stats do.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::metrics::{Queues, ServerCounters, ServerStats};
use crate::resp::Protocol;

use super::backend::{self, Backend, Outbound};
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
    /// The server's counters on this core.
    counters: Rc<ServerCounters>,
    /// A replica's node (`shard::replica`): its connections send READONLY first, and
    /// it is read from only while `lag_ok` and its connections are up.
    replica: bool,
    /// The lag watcher's last verdict allows reads (always, for a master).
    lag_ok: Cell<bool>,
}

impl Node {
    /// Queues `out` on the next connection of its protocol.
    pub fn send(&self, shard: &Rc<Shard>, out: Outbound) {
        self.pick(shard, out.protocol).send(out);
    }

    /// The next connection of `protocol`, opened if the node has none yet.
    fn pick(&self, shard: &Rc<Shard>, protocol: Protocol) -> Rc<Backend> {
        let conns = &self.conns[protocol.index()];
        if conns.borrow().is_empty() {
            *conns.borrow_mut() = open(shard, &self.addr, protocol, &self.counters, self.replica);
        }
        let conns = conns.borrow();
        let index = self.next.get() % conns.len();
        self.next.set(index + 1);
        conns[index].clone()
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
    /// them fails, and they are not remade while the node stays out of the layout.
    pub fn retire(&self) {
        for conns in &self.conns {
            for conn in conns.borrow().iter() {
                conn.close();
            }
        }
    }

    /// Queues `outs` on one connection of their protocol, in order and with nothing of
    /// another client between them (a transaction's MULTI ... EXEC).
    pub fn send_all(&self, shard: &Rc<Shard>, outs: Vec<Outbound>) {
        let Some(protocol) = outs.first().map(|out| out.protocol) else {
            return;
        };
        let backend = self.pick(shard, protocol);
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
    let auth = config.backend_auth.as_ref();
    (0..config.backend_conns.max(1))
        .map(|_| {
            let conn = Backend::new(addr.clone(), protocol, auth, counters.clone())
                .selecting(config.database())
                .reading_replica(replica)
                .retrying_on_request(config.servers.is_some());
            let conn = Rc::new(conn);
            glommio::spawn_local(backend::run(shard.clone(), conn.clone())).detach();
            conn
        })
        .collect()
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
            return node.clone();
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
            counters,
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
                    for conns in &node.conns {
                        for backend in conns.borrow().iter() {
                            queues.add(backend.queues());
                        }
                    }
                }
                counters.snapshot(addr, queues)
            })
            .collect();
        stats.sort_by(|a, b| a.addr.cmp(&b.addr));
        stats
    }

    /// Clears every server's event counters (CONFIG RESETSTAT).
    pub fn reset_stats(&self) {
        for counters in self.servers.borrow().values() {
            counters.reset();
        }
    }
}
