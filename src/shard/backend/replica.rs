//! What a backend connection does differently when it is a replica's, for replica reads
//! (`shard::replica`): it sends READONLY after its handshake, it leaves the rotation the
//! moment it fails, and the reads it held then are read elsewhere instead of failing (reads
//! change nothing, so one the replica may have run already is safe to send again).

use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::config::ReadFrom;
use crate::resp::encode;

use super::{Backend, Outbound};
use crate::shard::dispatch::{self, MAX_REDIRECTS};
use crate::shard::Shard;

/// Error replies of a replica that cannot serve reads now, whose reads the master can: it
/// loads its data set (after a restart or a full sync), or its link to its master is down
/// and it is set not to serve stale data (`replica-serve-stale-data no`).
const REFUSALS: [&[u8]; 2] = [b"-LOADING", b"-MASTERDOWN"];

impl Backend {
    /// This backend, in READONLY mode when `replica`: a replica's connection.
    pub fn reading_replica(mut self, replica: bool) -> Self {
        self.readonly = replica.then(|| {
            let mut out = BytesMut::new();
            encode::command(&mut out, [&b"READONLY"[..]]);
            out.freeze()
        });
        self
    }

    /// Whether the connection is up: connected and greeted since its last failure, or not
    /// failed yet.
    pub fn is_ready(&self) -> bool {
        self.ready.get()
    }

    /// The connection has failed: it is not ready until greeted again, and a replica's
    /// reads, queued or in flight, are routed again (another replica, or the master) rather
    /// than failed, each counting as one redirect so none goes round for ever.
    pub(super) fn read_elsewhere(&self, shard: &Rc<Shard>) {
        self.ready.set(false);
        if self.readonly.is_none() {
            return;
        }
        let elsewhere = self
            .waiting
            .borrow_mut()
            .take_unless(|out| out.read_from == ReadFrom::Master || out.redirects >= MAX_REDIRECTS);
        for mut out in elsewhere {
            out.redirects += 1;
            dispatch::forward(shard, out);
        }
    }

    /// Whether `reply` to `out` is a replica's refusal to read now (see [`REFUSALS`]).
    pub(super) fn refuses_read(&self, out: &Outbound, reply: &[u8]) -> bool {
        self.readonly.is_some()
            && out.read_from != ReadFrom::Master
            && REFUSALS.iter().any(|refusal| reply.starts_with(refusal))
    }

    /// Whether the node is still in the topology in this connection's role.
    pub(super) fn in_topology(&self, shard: &Shard) -> bool {
        match self.readonly {
            Some(_) => shard.has_replica(&self.addr),
            None => shard.serves(&self.addr),
        }
    }

    /// Drops the node of this connection from the core's pool (its tasks have ended).
    pub(super) fn forget(&self, shard: &Shard) {
        match self.readonly {
            Some(_) => shard.pool.forget(&self.addr, true),
            None => shard.forget_node(&self.addr),
        }
    }
}

/// A replica refused to read `out` now (`reply`): the master reads it instead, unless the
/// pool reads replicas only, whose client then gets the replica's own words.
pub(super) fn refused(shard: &Rc<Shard>, from: &Rc<str>, mut out: Outbound, reply: Bytes) {
    match out.read_from {
        ReadFrom::Replica => out.answer(reply, Some(from)),
        _ => {
            out.read_from = ReadFrom::Master;
            dispatch::forward(shard, out);
        }
    }
}
