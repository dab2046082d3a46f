//! A reloaded configuration on its way to the cores: [`ConfigUpdate`], the immutable value
//! with an epoch that core 0 sends every core ([`Notice::Config`]), as a topology is sent.
//!
//! It carries the whole new configuration (every pool, in the file's order) and, for each pool
//! it adds, what each core needs to serve it: its own end of the pool's new mesh, and its share
//! of the pool's Unix socket if it listens on one. Each core takes its own and leaves the rest.
//!
//! Why the meshes are made on core 0 and handed out in the update, not made by each core: a
//! glommio mesh is one value all its cores join, so it has to be made in one place and given
//! to every core; the notice that tells each core of the new pool is the one message every
//! core receives, so it carries it. The builders are cloned on core 0 alone (glommio counts
//! a builder's clones without atomics), one per core, and core 0 keeps one more for the pool's
//! life, so no core ever drops the last one while another clones (see `NewPool::take`).
//!
//! [`Notice::Config`]: super::mesh::Notice::Config

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use glommio::channels::channel_mesh::{Full, MeshBuilder};

use crate::config::Config;
use crate::net::SharedListener;

use super::mesh::Message;

/// A configuration for every core: the whole of it, with its epoch.
pub struct ConfigUpdate {
    /// Which configuration this is: 1 is the one the process started with, and every reload
    /// applied counts one more.
    pub epoch: u64,
    /// When the file was read.
    pub loaded_at: SystemTime,
    /// Every pool, in the file's order: the pools not in it are removed.
    pub pools: Vec<Arc<Config>>,
    /// The pools new in this configuration, each with what every core needs to join it.
    pub added: Vec<NewPool>,
}

impl fmt::Debug for ConfigUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.pools.iter().map(|p| p.name.as_str()).collect();
        f.debug_struct("ConfigUpdate")
            .field("epoch", &self.epoch)
            .field("pools", &names)
            .finish()
    }
}

/// What the cores need to start serving a pool a reload added.
pub struct NewPool {
    /// The pool's name.
    pub name: String,
    /// Per core, its mesh builder and (for a Unix socket pool) its share of the socket; each
    /// core takes its own once.
    ends: Mutex<Vec<Option<PoolEnd>>>,
}

/// One core's way into a new pool.
pub struct PoolEnd {
    /// The pool's mesh, to join.
    pub mesh: MeshBuilder<Message, Full>,
    /// The core's descriptor of the pool's Unix socket, bound by core 0 (`None` for TCP,
    /// which each core binds itself).
    pub share: Option<SharedListener>,
}

impl NewPool {
    /// A new pool for `cores` cores: `mesh` (made and kept by the caller, on one thread) is
    /// cloned here once per core, on the caller's thread; `shares` has one entry per core
    /// for a Unix socket pool, none for TCP.
    pub fn new(
        name: String,
        mesh: &MeshBuilder<Message, Full>,
        cores: usize,
        shares: Vec<SharedListener>,
    ) -> NewPool {
        let mut shares = shares.into_iter();
        let ends = (0..cores)
            .map(|_| {
                Some(PoolEnd {
                    mesh: mesh.clone(),
                    share: shares.next(),
                })
            })
            .collect();
        NewPool {
            name,
            ends: Mutex::new(ends),
        }
    }

    /// Core `core`'s end of the pool, the first time it asks (`None` after).
    pub fn take(&self, core: usize) -> Option<PoolEnd> {
        let mut ends = self.ends.lock().unwrap_or_else(|p| p.into_inner());
        ends.get_mut(core).and_then(Option::take)
    }
}

/// Which configuration a core serves, for the reports.
#[derive(Debug, Clone)]
pub struct ConfigEpoch {
    /// See [`ConfigUpdate::epoch`].
    pub epoch: u64,
    /// When its file was read (at start, when the process started).
    pub loaded_at: SystemTime,
    /// The file, if the configuration came from one (`-c`).
    pub file: Option<Arc<str>>,
}
