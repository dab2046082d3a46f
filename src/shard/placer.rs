//! Where this core places keys: by Redis Cluster hash slot, or, for a static pool, by the
//! pool's hash ring over its servers (twemproxy's placement, identical to nutcracker's). Either
//! way a key gets a token of the same kind, and the rest of the request path (routing,
//! splitting, one-slot transactions, the slot map) works by token without knowing which.
//!
//! A static pool's routes are the cluster's made standalone ([`static_pool::route`]): no
//! CROSSSLOT, no CLUSTER, no sharded channels.
//!
//! The ring is the core's own copy: when a server is ejected (or comes back) the core
//! rebuilds it, between requests.

use crate::cluster::slot::{HashSlots, Placement, Slot};
use crate::command::fanout::{plan_split, SplitPlan};
use crate::command::keys::Args;
use crate::command::route::{route_command_in, route_queued, Command, Route, SplitKind};
use crate::command::static_pool;
use crate::upstream::Ring;

/// How this core's pool places keys.
pub enum Placer {
    /// A Redis Cluster: CRC16 hash slots.
    Cluster,
    /// A static pool: the position of the key's server on the pool's ring.
    Servers(Ring),
}

impl Placer {
    /// Routes one request.
    #[inline]
    pub fn route<A: Args + ?Sized>(&self, args: &A) -> (Route, Option<Command>) {
        match self {
            Placer::Cluster => route_command_in(args, &HashSlots),
            Placer::Servers(ring) => {
                let (route, command) = route_command_in(args, ring);
                (static_pool::route(route, command), command)
            }
        }
    }

    /// Routes a request queued in a transaction.
    pub fn route_queued<A: Args + ?Sized>(&self, command: Command, args: &A) -> Route {
        match self {
            Placer::Cluster => route_queued(command, args, &HashSlots),
            Placer::Servers(ring) => {
                static_pool::route(route_queued(command, args, ring), Some(command))
            }
        }
    }

    /// Splits a multi-key request by token.
    pub fn split<A: Args + ?Sized>(&self, kind: SplitKind, args: &A) -> SplitPlan {
        match self {
            Placer::Cluster => plan_split(kind, args, &HashSlots),
            Placer::Servers(ring) => plan_split(kind, args, ring),
        }
    }

    /// The token of one key.
    pub fn place(&self, key: &[u8]) -> Slot {
        match self {
            Placer::Cluster => HashSlots.place(key),
            Placer::Servers(ring) => ring.place(key),
        }
    }
}
