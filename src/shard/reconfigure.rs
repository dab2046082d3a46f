//! A pool that stays through a reload takes its new configuration on each core, between
//! requests, without closing a client: [`Shard::reconfigure`]; a pool a reload removes frees
//! what it holds once drained: [`Shard::retire`].
//!
//! Most settings are read where they are used, from the configuration of the moment
//! (`Shard::config`): limits at each accept and each read, the backend timeout at each look of
//! a connection's watchdog, credentials, TLS and timeouts when a backend connection is made.
//! What a reload must act on itself:
//! - users: a logged-in client keeps its user, found again by name (their positions change),
//!   with the user's new rules from its next request; a client whose user is gone is closed
//!   once its replies are written, as Redis's `ACL DELUSER` closes them. A new password is the
//!   next AUTH's.
//! - the output buffer limit of the clients already connected;
//! - the slow log's settings, when the file changes them (a `CONFIG SET` stays until then);
//! - a static pool's servers: the ring is rebuilt from the new list exactly as nutcracker
//!   builds it (`upstream::Ring::build`), every server back in it, and a server that left keeps
//!   its connections (those of its other databases too) until what was sent there is
//!   answered, then they close. With background writes waiting, a core keeps the old list
//!   until they are answered (at most `--shutdown-timeout`, see `sidecar::moves`).

use std::rc::Rc;
use std::sync::Arc;

use tracing::{debug, info, warn};

use crate::cluster::topology::Topology;
use crate::config::{Config, StaticServers};
use crate::upstream::Ring;

use super::placer::Placer;
use super::slot_map::SlotMap;
use super::{lease, session, sidecar, Shard};

impl Shard {
    /// Takes `new` as the pool's configuration from the next request on (see the module).
    pub(super) fn reconfigure(self: &Rc<Self>, new: Rc<Config>) {
        let old = self.config.replace(new.clone());
        if old.users != new.users {
            self.follow_users(&old, &new);
        }
        if old.max_output_buffer != new.max_output_buffer {
            for client in self.open_clients() {
                client.set_output_limit(new.max_output_buffer);
            }
        }
        let slower_than =
            (old.slowlog_slower_than != new.slowlog_slower_than).then_some(new.slowlog_slower_than);
        let max_len = (old.slowlog_max_len != new.slowlog_max_len).then_some(new.slowlog_max_len);
        if slower_than.is_some() || max_len.is_some() {
            self.slowlog().configure(slower_than, max_len);
        }
        if let (Some(was), Some(now)) = (&old.servers, &new.servers) {
            // A Sentinel pool's servers are where Sentinel says; a reload cannot change them.
            if now.sentinel.is_none() && was != now {
                // Now, or once the background writes placed by the old list are answered.
                sidecar::moves::servers_changed(self);
            }
        }
        debug!(
            core = self.id,
            pool = self.pool_name(),
            "new configuration applied"
        );
    }

    /// Frees what the pool holds on this core, once a reload removed it and its clients are
    /// gone: its long-lived tasks are cancelled (nothing holds the shard after them), and its
    /// backend connections close once what was sent on them is answered.
    pub(super) fn retire(self: &Rc<Self>) {
        drop(self.background.take());
        *self.slot_map.borrow_mut() = SlotMap::default();
        for node in self.pool.nodes() {
            node.retire_when_idle();
        }
        lease::close_idle(self);
        info!(
            core = self.id,
            pool = self.pool_name(),
            "pool removed; its connections close"
        );
    }

    /// The logged-in clients' users, found again in `new` by name.
    fn follow_users(self: &Rc<Self>, old: &Config, new: &Config) {
        for client in self.open_clients() {
            let Some(user) = client.identity.user() else {
                continue;
            };
            let name = &old.users.get(user).name;
            match new.users.find(name) {
                Some(user) => client.identity.log_in(&new.users, user),
                None => {
                    let (core, pool, id) = (self.id, self.pool_name(), client.identity.id);
                    info!(core, pool, user = %name, client = id, "user removed: closing its client");
                    client.close_after_replies();
                    session::peer_closed(self, &client);
                }
            }
        }
    }

    /// Places keys over the pool's server list of the moment (a reload changed it), unless
    /// it has none (no longer a static pool: a reload cannot do that).
    pub(super) fn place_servers(self: &Rc<Self>) {
        if let Some(servers) = &self.config().servers {
            self.follow_new_servers(servers);
        }
    }

    /// Places keys over the pool's new server list, and lets the servers that left finish.
    fn follow_new_servers(self: &Rc<Self>, servers: &StaticServers) {
        let ring = match Ring::build(&servers.specs, servers.scheme) {
            Ok(ring) => ring,
            // Checked when the file was read; a ring that cannot be built keeps the old one.
            Err(e) => return warn!(core = self.id, pool = self.pool_name(), %e, "ring not rebuilt"),
        };
        self.ejections.reset(Some(servers));
        *self.placer.borrow_mut() = Placer::Servers(ring);
        if let Some(writes) = &self.background_writes {
            writes.placed_anew();
        }
        let before = self.masters();
        let epoch = self.slot_map.borrow().epoch() + 1;
        let layout = Topology::of_live_servers(&servers.addrs, &[], epoch);
        self.apply_topology(&Arc::new(layout));
        for node in before.iter().filter(|node| !self.serves(&node.addr)) {
            info!(
                core = self.id,
                pool = self.pool_name(),
                node = &*node.addr,
                "server left the pool: its connections close once their requests are answered"
            );
            node.retire_when_idle();
        }
        info!(
            core = self.id,
            pool = self.pool_name(),
            servers = servers.addrs.len(),
            epoch,
            "keys placed over the new server list"
        );
    }
}

impl Drop for Shard {
    /// A pool a reload removed is freed once nothing of it runs (`tests/reload.rs` looks for
    /// the line); at process end the executor frees them all.
    fn drop(&mut self) {
        debug!(
            core = self.id,
            pool = self.pool_name(),
            "pool freed on this core"
        );
    }
}
