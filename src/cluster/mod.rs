//! Redis Cluster knowledge: hash slots, redirect errors, the slot-to-master layout, and the
//! cluster percore presents to cluster-mode clients.

pub(crate) mod presence;
pub(crate) mod redirect;
pub mod slot;
pub(crate) mod topology;
