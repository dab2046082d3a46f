//! The control plane: what cores tell each other and what the proxy reports, none of it per
//! request.
//!
//! - [`mesh`]: the cross-core channels and stats gathers;
//! - [`refresh`]: the topology refresher (on core 0);
//! - [`reload`]: a reloaded configuration on its way to every core;
//! - [`replica_lag`]: how far behind each replica is, from its master's INFO replication;
//! - [`sentinel`]: the Sentinel watcher of a data-store pool (on core 0);
//! - [`peers`]: the health check of the other percore instances of a fleet (on core 0);
//! - [`admin`]: the text of `PROXY INFO` and `PROXY LATENCY` ([`reads_report`]: its replica
//!   reads);
//! - [`info`], [`info_merge`], `info_rules`: the text of `INFO`, and the masters' INFO merged
//!   for it field by field;
//! - [`nutstats`]: nutcracker's JSON stats and `-D` descriptions, [`prometheus`]: `/metrics`,
//!   both rendered from one stats snapshot; [`http`]: the admin endpoints' HTTP.
//!
//! Nothing here imports a shard: a shard drives these with plain values (a topology, a stats
//! snapshot, a [`admin::ProxyView`]) and handles the messages it receives itself.

pub mod admin;
pub mod http;
pub mod info;
pub mod info_merge;
mod info_rules;
pub mod mesh;
pub mod nutstats;
pub mod peers;
pub mod prometheus;
pub mod reads_report;
pub mod refresh;
pub mod reload;
pub mod replica_lag;
pub mod sentinel;
