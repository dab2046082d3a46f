//! percore: a thread-per-core, shared-nothing Redis Cluster proxy.
//!
//! Any plain Redis client talks to percore as if it were one Redis server; percore routes each
//! request to the master that owns its slot, follows MOVED and ASK itself, splits multi-key
//! commands across masters and merges their replies, and keeps every client's replies in the
//! order the requests were sent.
//!
//! # Thread model
//! One glommio executor per core, pinned to it (`Placement::Fixed`). Each core binds its own
//! SO_REUSEPORT listener on the same address, so the kernel spreads connections across cores,
//! and a connection never leaves the core that accepted it. Each core owns its slot map
//! replica, its backend connections (per master, shared by all its clients) and its metrics.
//! Nothing on the request path is shared or locked; cores exchange only topology updates,
//! refresh requests and admin gathers, over glommio's cross-core channel mesh ([`mesh`]).
//!
//! glommio runs the tasks, timers and channels; the sockets go through a second io_uring per
//! core ([`uring`]), set up so the kernel delivers completions only when the core asks for
//! them. Every receive and send the core's tasks queue in one round goes to the kernel in one
//! `io_uring_enter`, and the core is never interrupted while busy.
//!
//! # One request's path (all on one core)
//! 1. [`shard::client`] reads into the connection's buffer; [`resp::parse`] finds each complete
//!    request and the byte ranges of its arguments, without copying.
//! 2. [`command::route`] looks the command up in [`command::table`], finds its keys
//!    ([`command::keys`]) and their slot ([`cluster::slot`]), and decides how to serve it.
//! 3. [`shard::dispatch`] reserves the request's place in the client's reply queue and queues
//!    the client's own bytes on the master's [`shard::backend`] connection (or splits it with
//!    [`command::fanout`], or answers it in [`shard::local`]).
//! 4. The backend writer sends everything queued, from all clients, in one write.
//! 5. The backend reader finds each reply's end ([`resp::scan`]) and fills the waiting place;
//!    MOVED/ASK/TRYAGAIN go back to dispatch to be re-sent ([`cluster::redirect`]).
//! 6. The client writer sends the completed front of the reply queue in one write.
//!
//! # Glossary
//! - client, downstream: a connection from an application to percore.
//! - backend, upstream: a connection from percore to a Redis Cluster master.
//! - node: a Redis Cluster server, named by `host:port`.
//! - shard: one core's share of the proxy ([`shard::Shard`]); not a Redis shard.
//! - slot: one of Redis Cluster's 16384 hash slots.
//! - topology: the slot-to-master layout, versioned by an epoch ([`cluster::topology`]).
//!
//! # Modules
//! - [`config`], [`error`]: configuration and error types.
//! - [`resp`]: the wire protocol. [`cluster`]: slots, redirects, topology.
//! - [`command`]: command table, key extraction, routing, multi-key split and merge.
//! - [`shard`]: per-core state, listener, client and backend connections.
//! - [`mesh`], [`refresh`]: cross-core messages and the topology refresher.
//! - [`shutdown`]: draining on SIGTERM/SIGINT.
//! - [`uring`]: each core's own io_uring, through which all its socket I/O goes.
//! - [`metrics`], [`admin`]: counters, latency histograms and their reports.

#![warn(missing_docs)]

pub mod admin;
pub mod cluster;
pub mod command;
pub mod config;
pub mod error;
pub mod mesh;
pub mod metrics;
pub mod refresh;
pub mod resp;
pub mod shard;
pub mod shutdown;
pub mod sync;
pub mod uring;

mod runtime;

pub use config::Config;
pub use error::Error;
pub use runtime::run;
