//! Redis Cluster knowledge: hash slots, redirect errors, and the slot-to-master layout.

pub(crate) mod redirect;
pub mod slot;
pub(crate) mod topology;
