//! Replica reads on this core: which read-only requests follow a read policy, which node of
//! the slot's shard reads each one, and the state that choice rests on.
//!
//! - Policy ([`policy`]): a read-only command (the table's READONLY flag) routed by its keys
//!   (one slot, or a split such as MGET's parts) follows the pool's `--read-from`, or
//!   `prefer-replica` for a client that sent READONLY; everything else reads and writes the
//!   master. With `master` and no READONLY client this is one flag check per request.
//! - Choice ([`forward`]): the master's replicas in the topology ([`ReplicaSet`]), in turn
//!   (round robin per core), skipping those out of rotation: further behind than
//!   `--max-replica-lag` by the lag watcher's last verdict ([`Verdicts`], sent by core 0), or
//!   with a connection down on this core (a failed one is retried with backoff and counts
//!   again once greeted). `prefer-replica` falls back to the master, `replica` answers
//!   CLUSTERDOWN naming the slots, `any` takes the master as one more turn.
//! - A replica's connections send READONLY first; a MOVED from one is followed as any MOVED
//!   (the slot map learns the new master); a replica that fails, or refuses because it loads
//!   its data, has its reads read elsewhere (`backend::replica`).
//!
//! A core opens connections to the replicas when a topology names them if the pool reads
//! replicas, and otherwise on the first read of a READONLY client that needs them.

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use crate::cluster::topology::Topology;
use crate::command::keys::Args;
use crate::command::route::{Command, Route};
use crate::command::table::CommandFlags;
use crate::config::ReadFrom;
use crate::control::replica_lag::ReplicaLag;
use crate::metrics::{ReadStats, ReplicaStats};
use crate::resp::encode;

use super::backend::Outbound;
use super::dispatch::error_reply;
use super::identity::Identity;
use super::pool::Node;
use super::slot_map::SlotMap;
use super::Shard;

/// The replicas of one master, as this core reads from them.
pub struct ReplicaSet {
    /// Their addresses, as the topology lists them.
    addrs: Box<[Rc<str>]>,
    /// This core's nodes for them, made on first use (see the module's last paragraph).
    nodes: OnceCell<Box<[Rc<Node>]>>,
    /// Whose turn is next.
    next: Cell<usize>,
}

impl ReplicaSet {
    /// This core's nodes for the replicas, made (and connecting) if not yet.
    fn nodes(&self, shard: &Rc<Shard>) -> &[Rc<Node>] {
        self.nodes.get_or_init(|| {
            let verdicts = &shard.pool.verdicts;
            let make = |addr: &Rc<str>| {
                shard
                    .pool
                    .replica(shard, addr, verdicts.allows(shard, addr))
            };
            self.addrs.iter().map(make).collect()
        })
    }

    /// The next replica in rotation, in turn; `None` when none is, or (`with_master`) when it
    /// is the master's turn.
    fn next(&self, shard: &Rc<Shard>, with_master: bool) -> Option<Rc<Node>> {
        let nodes = self.nodes(shard);
        let turns = nodes.len() + usize::from(with_master);
        let start = self.next.get();
        for step in 0..turns {
            let turn = (start + step) % turns;
            match nodes.get(turn) {
                Some(node) if !node.in_rotation() => continue,
                found => {
                    self.next.set(turn + 1);
                    return found.cloned();
                }
            }
        }
        None
    }

    /// Whether `addr` is one of these replicas.
    fn has(&self, addr: &str) -> bool {
        self.addrs.iter().any(|a| &**a == addr)
    }
}

/// The lag watcher's last verdicts, as this core got them.
#[derive(Default)]
pub struct Verdicts {
    /// `None` until the first arrives.
    last: RefCell<Option<Arc<[ReplicaLag]>>>,
}

impl Verdicts {
    /// Whether the verdicts let reads go to the replica at `addr`: always without a lag
    /// bound; else only once a check has found it within the bound (a replica just seen may
    /// still be syncing).
    fn allows(&self, shard: &Shard, addr: &str) -> bool {
        shard.config().replica_reads.max_lag.is_none()
            || self.find(addr).is_some_and(|v| v.state.in_rotation())
    }

    /// The last verdict on `addr`.
    fn find(&self, addr: &str) -> Option<ReplicaLag> {
        let last = self.last.borrow();
        last.as_ref()?.iter().find(|v| v.addr == addr).cloned()
    }
}

/// The read policy `command`, routed as `route`, follows for this client.
#[inline]
pub fn policy(
    shard: &Shard,
    identity: &Identity,
    route: &Route,
    command: Option<Command>,
) -> ReadFrom {
    let pool = shard.read_policy();
    if pool == ReadFrom::Master && !identity.reads_replicas() {
        return ReadFrom::Master;
    }
    let read_only = command.is_some_and(|c| c.spec.flags.contains(CommandFlags::READONLY));
    match (read_only, route, pool) {
        (true, Route::Keyed(_) | Route::Split(_), ReadFrom::Master) => ReadFrom::PreferReplica,
        (true, Route::Keyed(_) | Route::Split(_), pool) => pool,
        _ => ReadFrom::Master,
    }
}

/// Sends a read to the node its policy chooses for its slot.
pub fn forward(shard: &Rc<Shard>, out: Outbound) {
    match choose(shard, &out) {
        Ok(node) => {
            node.count_read();
            node.send(shard, out);
        }
        Err(reply) => out.answer(reply, None),
    }
}

/// The node that reads `out`, or the reply when none may.
fn choose(shard: &Rc<Shard>, out: &Outbound) -> Result<Rc<Node>, Bytes> {
    let map = shard.slot_map.borrow();
    let master = match out.slot {
        Some(slot) => map.node_for(slot),
        None => map.any_node(),
    };
    let Some(master) = master else {
        return Err(shard.unserved());
    };
    let Some(slot) = out.slot else {
        return Ok(master.clone());
    };
    let with_master = out.read_from == ReadFrom::Any;
    let replica = map
        .replicas_for(slot)
        .and_then(|set| set.next(shard, with_master));
    match (replica, out.read_from) {
        (Some(replica), _) => Ok(replica),
        (None, ReadFrom::Replica) => Err(no_replica(&map, slot, master)),
        (None, _) => Ok(master.clone()),
    }
}

/// The refusal of a read under `replica` when none of the master's replicas is in rotation.
fn no_replica(map: &SlotMap, slot: crate::cluster::slot::Slot, master: &Node) -> Bytes {
    let (first, last) = map.range_of(slot);
    error_reply(&format!(
        "CLUSTERDOWN percore: no healthy replica for slots {first}-{last} (master {}); \
         read_from replica reads replicas only",
        master.addr
    ))
}

/// The replicas of each master of `topology`, in its order; connected at once when the pool
/// reads replicas.
pub(super) fn sets(shard: &Rc<Shard>, topology: &Topology) -> Vec<Rc<ReplicaSet>> {
    let eager = shard.config().replica_reads.read_from != ReadFrom::Master;
    (0..topology.masters.len())
        .map(|index| {
            let addrs = topology.replicas_of(index).iter();
            let set = ReplicaSet {
                addrs: addrs.map(|addr| Rc::from(addr.as_str())).collect(),
                nodes: OnceCell::new(),
                next: Cell::new(0),
            };
            if eager {
                set.nodes(shard);
            }
            Rc::new(set)
        })
        .collect()
}

/// READONLY or READWRITE: the client reads replicas, or masters again (in a cluster pool;
/// a static pool's servers have no replicas). Redis answers OK to both.
pub(super) fn read_mode<A: Args + ?Sized>(shard: &Shard, identity: &Identity, args: &A) -> Bytes {
    if shard.config().servers.is_none() {
        identity.set_read_replicas(args.get(0).eq_ignore_ascii_case(b"readonly"));
    }
    Bytes::from_static(encode::OK)
}

/// Takes the lag watcher's verdicts: every replica node of this core follows them.
pub(super) fn heed(shard: &Rc<Shard>, verdicts: Arc<[ReplicaLag]>) {
    *shard.pool.verdicts.last.borrow_mut() = Some(verdicts);
    for node in shard.pool.replica_nodes() {
        node.set_lag_ok(shard.pool.verdicts.allows(shard, &node.addr));
    }
}

impl Shard {
    /// True if `addr` is a replica of the current topology.
    pub(super) fn has_replica(&self, addr: &str) -> bool {
        let map = self.slot_map.borrow();
        let mut sets = map.replica_sets();
        sets.any(|(_, set)| set.has(addr))
    }

    /// Each master of the current topology that has replicas, with their addresses.
    pub(super) fn replicated_masters(self: &Rc<Self>) -> Vec<(Rc<Node>, Vec<String>)> {
        let map = self.slot_map.borrow();
        map.replica_sets()
            .filter(|(_, set)| !set.addrs.is_empty())
            .map(|(master, set)| {
                let addrs = set.addrs.iter().map(|a| a.to_string()).collect();
                (master.clone(), addrs)
            })
            .collect()
    }

    /// The read policy and every replica as this core reads from it, for the stats.
    pub(super) fn read_stats(&self) -> ReadStats {
        let reads = self.config().replica_reads;
        let map = self.slot_map.borrow();
        let mut replicas = Vec::new();
        for (master, set) in map.replica_sets() {
            for addr in set.addrs.iter() {
                let verdict = self.pool.verdicts.find(addr);
                let node = self.pool.made_replica(addr);
                let connected = node.as_ref().is_none_or(|node| node.connected());
                let lag_ok = node.as_ref().map_or_else(
                    || self.pool.verdicts.allows(self, addr),
                    |node| node.lag_ok(),
                );
                let lag_state = match (&verdict, reads.max_lag) {
                    (_, None) => "unbounded",
                    (None, Some(_)) => "unchecked",
                    (Some(verdict), Some(_)) => verdict.state.name(),
                };
                replicas.push(ReplicaStats {
                    addr: addr.to_string(),
                    master: master.addr.to_string(),
                    in_rotation: lag_ok && connected,
                    lag_state,
                    lag_ms: verdict
                        .and_then(|v| v.lag)
                        .map(|lag| lag.as_millis() as u64),
                    link: match (&node, connected) {
                        (None, _) => "unused",
                        (Some(_), true) => "up",
                        (Some(_), false) => "down",
                    },
                });
            }
        }
        ReadStats {
            policy: reads.read_from.name(),
            max_lag_ms: reads.max_lag.map(|lag| lag.as_millis() as u64),
            replicas,
        }
    }
}
