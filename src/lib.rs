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
//! and a connection never leaves the core that accepted it. (A pool on a Unix socket, where
//! SO_REUSEPORT does not exist, is bound once and every core accepts from it: `net::unix`.) Each core owns its slot map
//! replica, its backend connections (per master, shared by all its clients) and its metrics.
//! Nothing on the request path is shared or locked; cores exchange only topology updates,
//! refresh requests, reloaded configurations and admin gathers, over glommio's cross-core
//! channel meshes (`control::mesh`).
//!
//! glommio runs the tasks, timers and channels; the sockets go through a second io_uring per
//! core (`net`), set up so the kernel delivers completions only when the core asks for them.
//! Every receive and send the core's tasks queue in one round goes to the kernel in one
//! `io_uring_enter`, and the core is never interrupted while busy.
//! Each executor also holds a keep-awake thread (`shard::keep_awake`) that wakes it now and
//! then, and the thread that starts it signals it out of its first turn if it parks there
//! (`shard::executor`): glommio 0.9.0 can park a core with a task to run, for good if nothing
//! else wakes it.
//!
//! # One request's path (all on one core, all in `shard/` but for the pure parts)
//! 1. `shard::client` reads into the connection's buffer; [`resp::parse`] finds each complete
//!    request and the byte ranges of its arguments, without copying.
//! 2. [`command::route`] looks the command up in [`command::table`], finds its keys
//!    ([`command::keys`]) and their slot ([`cluster::slot`]), and decides how to serve it.
//! 3. `shard::dispatch` reserves the request's place in the client's reply queue and queues
//!    the client's own bytes on the master's `shard::backend` connection (a read-only one on
//!    a replica's, when the pool or the client reads replicas: `shard::replica`), or splits
//!    it with `command::fanout`, or answers it in `shard::local`.
//! 4. The backend writer sends everything queued, from all clients, in one write.
//! 5. The backend reader finds each reply's end ([`resp::scan`]) and fills the waiting place;
//!    MOVED/ASK/TRYAGAIN go back to dispatch to be re-sent (`cluster::redirect`).
//! 6. The client writer sends the completed front of the reply queue in one write.
//!
//! # Glossary
//! - client, downstream: a connection from an application to percore.
//! - backend, upstream: a connection from percore to a Redis server.
//! - node: a Redis server, named by `host:port`.
//! - shard: one core's share of the proxy (`shard::Shard`); not a Redis shard.
//! - slot: one of Redis Cluster's 16384 hash slots.
//! - topology: the slot-to-master layout, versioned by an epoch (`cluster::topology`).
//!
//! # Modules, and which may use which
//! Each line uses only the lines above it (checked by `bench-scripts/check-layout.py`, in CI):
//! - `sync`, [`error`], `shutdown`, `service`: a wake-up flag, error types, the stop flag, and
//!   the readiness and stop notifications to systemd.
//! - [`resp`]: the wire protocol: request parser, reply scanner, encoders, a small value tree.
//! - [`cluster`]: slots and hash tags, MOVED/ASK parsing, topology from CLUSTER SLOTS, and the
//!   cluster percore presents to cluster-mode clients (its own addresses, never a backend's).
//! - [`command`]: command table (generated), key extraction, routing, split and merge.
//! - [`upstream`]: static pools' key placement (pure): twemproxy's twelve hashes, its hash
//!   tags, and ketama/modula/random rings over the live servers, identical to nutcracker's.
//! - [`auth`]: users, passwords and ACL rules (pure).
//! - [`config`]: configuration, validated whole before it is served (at start and at each
//!   reload): the runtime's `Config`, and the YAML file (twemproxy's format with percore's
//!   keys) it can be built from.
//! - [`daemon`]: nutcracker's process options: background (`-d`), pid file, log file.
//! - `net`: each core's io_uring, its driver, sockets and TLS over them, gathered writes,
//!   connecting to a node.
//! - `metrics`: per-core counters and latency histograms, per-server counters (nutcracker's),
//!   and the snapshot of every pool that the stats port and `/metrics` render.
//! - `upgrade`: upgrades without downtime: the listening sockets handed from the running
//!   process to a new one over a Unix socket (`SCM_RIGHTS`), from a thread of their own.
//! - `slowlog`: each core's slow log of requests and its entries, in Redis's format.
//! - `control`: the control plane: cross-core mesh, topology refresher, a Sentinel pool's
//!   watcher, fleet health check (`--proxy-peers`), admin report text, nutcracker's stats
//!   JSON, Prometheus text and the admin endpoints' HTTP.
//! - `shard`: per-core state and the request path: listener, client and backend connections,
//!   dispatch, local answers, the slot map replica.
//! - `runtime`: starting one executor per core and ending with the first failure.
//!
//! # Rooms for what comes next
//! - Upstreams: "which server owns this key" will sit behind one small interface, chosen per
//!   pool. The slot map (`shard::slot_map`, fed by `control::refresh`) is one kind; static pools
//!   (twemproxy's hash + ketama/modula/random over standalone servers, with ejection and
//!   Sentinel) will be a second: their placement, [`upstream::Ring`], is written (pure, checked
//!   against nutcracker), and their per-core replica will sit beside `shard::slot_map`. The request path keeps asking the shard for "the node for this
//!   key" and never learns which kind answered.
//! - Sessions: commands that need state on a backend connection lease a dedicated connection
//!   from the core's per-node pool (`shard::lease`, a `shard::backend` connection run on its
//!   own): WATCH until EXEC (`shard::session`) and blocking commands until served
//!   (`shard::blocked`) do. Pub/sub needs no lease: each core's hub (`shard::pubsub`) holds its
//!   clients' subscriptions on one connection per node and fans messages out to them. Clients
//!   that use none of it keep the shared path and pay one flag check.

#![warn(missing_docs)]

pub mod auth;
pub mod cluster;
pub mod command;
pub mod config;
pub mod daemon;
pub mod error;
pub mod resp;
pub mod upstream;

mod control;
mod metrics;
mod net;
mod runtime;
mod service;
mod shard;
mod shutdown;
mod slowlog;
mod sync;
mod upgrade;

pub use config::Config;
pub use control::nutstats::describe as describe_stats;
pub use error::Error;
pub use runtime::{run, run_pools, run_reloadable, IO_MEMORY};
pub use shard::executor::{
    kicks as first_turn_kicks, spawn as spawn_executor, Executor, StartError,
};
pub use shard::keep_awake::{keep_awake, KeepAwake, KEEP_AWAKE};
pub use upgrade::failed as upgrade_failed;
