//! Redis Cluster knowledge: hash slots, redirect errors, and the slot-to-master layout.

pub mod redirect;
pub mod slot;
pub mod topology;
