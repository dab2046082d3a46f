//! Cache mode (`auto_eject_hosts: true`) of a static pool: a server that fails
//! `server_failure_limit` times in a row leaves the ring for `server_retry_timeout`, its keys go
//! to the next live server exactly as nutcracker 0.5.0 places them then (`Ring::build_live`),
//! and it is put back in the ring when the time is up and tried again.
//!
//! What counts, as in nutcracker's `server_failure` / `server_ok`: every end of one of the
//! core's shared connections to the server (connect refused or timed out, reset, a request
//! older than `timeout`) is one failure; the first reply read on a connection sets the count
//! back to 0.
//! An ejection also sets it to 0, so a server that is put back and still fails goes out again
//! after `server_failure_limit` more failures. Without `auto_eject_hosts` nothing is counted:
//! a dead server's requests fail at once with an error naming it (`shard::backend`), and its
//! keys stay its own.
//!
//! Cores see failures on their own connections, but must all place every key alike, or two
//! cores would write one key to two servers. So the ring is decided by messages, not by what
//! each core saw:
//! - the core that reaches the limit first ejects the server and tells every core with a
//!   [`Notice::Eject`] carrying the server's position and the deadline (`now +
//!   server_retry_timeout`); every core (itself included) rebuilds its ring from the same live
//!   mask;
//! - every core puts the server back by itself at that deadline, with a timer. No second
//!   message is needed, nor the ejecting core to be alive and unbusy then (as it would be if
//!   that core put the server back and told the others), and the cores agree to within the
//!   time each takes to run its timer: a tick, or a few milliseconds on a busy core (the
//!   deadline is an `Instant`, one clock for the whole process).
//! - two cores that reach the limit at about the same time both send a notice; each core keeps
//!   the later deadline, in whatever order the notices arrive, so they end up agreeing; a
//!   notice whose deadline has passed is ignored.
//!
//! Until the notice reaches another core, that core may still send a few requests to the dead
//! server; they fail, as nutcracker's own requests do before it ejects. An ejected server is no
//! master of the core's layout either, so its connections close, commands sent to every server
//! leave it out, and nothing tries it before the deadline (nutcracker does not either).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn};

use crate::cluster::topology::Topology;
use crate::config::{Config, EjectPolicy, StaticServers};
use crate::control::admin::{EjectedView, PoolView};
use crate::control::mesh::{Notice, REFRESHER_CORE};
use crate::upstream::Ring;

use super::placer::Placer;
use super::Shard;

/// One core's view of which servers of its static pool are out of the ring, and the failures
/// it has counted towards ejecting the others. Empty (and never consulted) for a cluster pool
/// or without `auto_eject_hosts`.
#[derive(Default)]
pub struct Ejections {
    /// The pool's policy; `None`: nothing is ejected.
    policy: Cell<Option<EjectPolicy>>,
    /// Consecutive failures per configured server, as this core's connections saw them.
    failures: RefCell<Vec<u32>>,
    /// Per configured server: until when it is out of the ring; `None`: in the ring.
    out_until: RefCell<Vec<Option<Instant>>>,
    /// Ejections this core applied (its own and those other cores told it of).
    ejects: Cell<u64>,
}

/// What a notice changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Nothing: the server is out until then or later already, or the deadline has passed.
    None,
    /// The server left the ring: the ring is rebuilt.
    Ejected,
    /// The server was out already; it now stays out longer.
    Extended,
}

impl Ejections {
    /// The state for a pool: counting only in cache mode.
    pub fn new(servers: Option<&StaticServers>) -> Ejections {
        let ejections = Ejections::default();
        ejections.reset(servers);
        ejections
    }

    /// Starts again for the pool's servers as a reload has them: every server in the ring,
    /// no failure counted (positions may name other servers now); the ejections so far stay
    /// counted.
    pub fn reset(&self, servers: Option<&StaticServers>) {
        let servers = servers.filter(|s| s.eject.is_some());
        let count = servers.map_or(0, |s| s.addrs.len());
        self.policy.set(servers.and_then(|s| s.eject));
        *self.failures.borrow_mut() = vec![0; count];
        *self.out_until.borrow_mut() = vec![None; count];
    }

    /// Counts one failure of server `index`; returns the deadline when this one ejects it
    /// (the count starts again from 0). Failures of a server out of the ring do not count.
    fn failed(&self, index: usize, now: Instant) -> Option<Instant> {
        let policy = self.policy.get()?;
        if self
            .out_until
            .borrow()
            .get(index)
            .copied()
            .flatten()
            .is_some()
        {
            return None;
        }
        let mut failures = self.failures.borrow_mut();
        let count = failures.get_mut(index)?;
        *count += 1;
        if *count < policy.failure_limit {
            return None;
        }
        *count = 0;
        Some(now + policy.retry_timeout)
    }

    /// Server `index` answered: its failures start again from 0.
    fn answered(&self, index: usize) {
        if let Some(count) = self.failures.borrow_mut().get_mut(index) {
            *count = 0;
        }
    }

    /// Takes server `index` out of the ring until `until` (the later deadline wins).
    fn eject(&self, index: usize, until: Instant, now: Instant) -> Change {
        let mut out = self.out_until.borrow_mut();
        let Some(entry) = out.get_mut(index) else {
            return Change::None;
        };
        if until <= now || entry.is_some_and(|current| current >= until) {
            return Change::None;
        }
        let was_live = entry.is_none();
        *entry = Some(until);
        if !was_live {
            return Change::Extended;
        }
        self.ejects.set(self.ejects.get() + 1);
        if let Some(count) = self.failures.borrow_mut().get_mut(index) {
            *count = 0;
        }
        Change::Ejected
    }

    /// Puts back in the ring every server whose deadline has come; returns them.
    fn readmit_due(&self, now: Instant) -> Vec<usize> {
        let mut back = Vec::new();
        for (index, entry) in self.out_until.borrow_mut().iter_mut().enumerate() {
            if entry.is_some_and(|until| until <= now) {
                *entry = None;
                back.push(index);
            }
        }
        back
    }

    /// Which servers are in the ring, one entry per configured server.
    fn live_mask(&self) -> Vec<bool> {
        self.out_until
            .borrow()
            .iter()
            .map(Option::is_none)
            .collect()
    }
}

/// One of `shard`'s shared connections to `addr` ended in failure: counted in cache mode,
/// and the server ejected on every core if that was one too many.
pub(super) fn backend_failed(shard: &Rc<Shard>, addr: &str) {
    let Some(config) = counting(shard) else {
        return;
    };
    let Some(servers) = &config.servers else {
        return;
    };
    let now = Instant::now();
    for index in positions(servers, addr) {
        let Some(until) = shard.ejections.failed(index, now) else {
            continue;
        };
        warn!(
            core = shard.id,
            pool = %servers.pool,
            server = %server_name(servers, index),
            addr,
            retry_ms = until.saturating_duration_since(now).as_millis() as u64,
            "ejecting server from the pool's ring"
        );
        heed(shard, index, until);
        let shard = shard.clone();
        glommio::spawn_local(async move {
            shard
                .tell_every_core(Notice::Eject {
                    server: index,
                    until,
                })
                .await;
        })
        .detach();
    }
}

/// A reply came from `addr` on one of `shard`'s connections: its failures start again from 0.
pub(super) fn backend_answered(shard: &Shard, addr: &str) {
    if let Some(servers) = counting(shard).as_ref().and_then(|c| c.servers.as_ref()) {
        for index in positions(servers, addr) {
            shard.ejections.answered(index);
        }
    }
}

/// Acts on an ejection (this core's own or another's): the server leaves this core's ring
/// until `until`, and a timer puts it back then.
pub(super) fn heed(shard: &Rc<Shard>, server: usize, until: Instant) {
    let now = Instant::now();
    let change = shard.ejections.eject(server, until, now);
    if change == Change::None {
        return;
    }
    if change == Change::Ejected {
        if let Some(servers) = &shard.config().servers {
            debug!(core = shard.id, pool = %servers.pool, server = %server_name(servers, server), "server out of the ring");
        }
        rebuild(shard);
    }
    let shard = shard.clone();
    glommio::spawn_local(async move {
        glommio::timer::sleep(until.saturating_duration_since(Instant::now())).await;
        readmit(&shard);
    })
    .detach();
}

/// Puts back every server whose deadline has come, and rebuilds the ring if any.
fn readmit(shard: &Rc<Shard>) {
    let back = shard.ejections.readmit_due(Instant::now());
    let config = shard.config();
    let Some(servers) = &config.servers else {
        return;
    };
    for &index in &back {
        let name = server_name(servers, index);
        let addr = &servers.addrs[index];
        // Every core puts it back at the same deadline: one line for the process is enough.
        if shard.id == REFRESHER_CORE {
            info!(pool = %servers.pool, server = %name, addr, "server back in the pool's ring");
        } else {
            debug!(core = shard.id, pool = %servers.pool, server = %name, addr, "server back in the ring");
        }
    }
    if !back.is_empty() {
        rebuild(shard);
    }
}

/// Rebuilds this core's ring and layout from the live mask: keys of an ejected server go to
/// the next live one, as nutcracker places them.
fn rebuild(shard: &Rc<Shard>) {
    let config = shard.config();
    let Some(servers) = &config.servers else {
        return;
    };
    let live = shard.ejections.live_mask();
    match Ring::build_live(&servers.specs, servers.scheme, &live) {
        Ok(ring) => *shard.placer.borrow_mut() = Placer::Servers(ring),
        // The configuration was checked at start; a mask of the right length cannot fail.
        Err(e) => return warn!(core = shard.id, pool = %servers.pool, %e, "ring not rebuilt"),
    }
    let epoch = shard.slot_map.borrow().epoch() + 1;
    let layout = Topology::of_live_servers(&servers.addrs, &live, epoch);
    shard.apply_topology(&Arc::new(layout));
}

/// The pool's configuration, when the pool counts failures (a static pool in cache mode,
/// whose servers it has).
fn counting(shard: &Shard) -> Option<Rc<Config>> {
    shard.ejections.policy.get()?;
    Some(shard.config()).filter(|config| config.servers.is_some())
}

/// The positions of the servers at `addr` (more than one if the file lists it twice).
fn positions<'a>(servers: &'a StaticServers, addr: &'a str) -> impl Iterator<Item = usize> + 'a {
    (0..servers.addrs.len()).filter(move |&i| servers.addrs[i] == addr)
}

/// A server as logs and reports name it: its name, or its address.
fn server_name(servers: &StaticServers, index: usize) -> &str {
    servers.specs[index]
        .name()
        .unwrap_or(servers.specs[index].addr())
}

/// The pool as PROXY INFO shows it, from this core's point of view; `None` for a cluster pool.
pub(super) fn pool_view(shard: &Shard) -> Option<PoolView> {
    let config = shard.config();
    let servers = config.servers.as_ref()?;
    let now = Instant::now();
    let out = shard.ejections.out_until.borrow();
    let ejected = out
        .iter()
        .enumerate()
        .filter_map(|(index, until)| {
            let until = (*until)?;
            Some(EjectedView {
                name: server_name(servers, index).to_string(),
                addr: servers.addrs[index].clone(),
                retry_in: until.saturating_duration_since(now),
            })
        })
        .collect();
    Some(PoolView {
        name: servers.pool.clone(),
        servers: servers.addrs.len(),
        auto_eject: servers.eject.is_some(),
        ejects: shard.ejections.ejects.get(),
        ejected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SECOND: Duration = Duration::from_secs(1);

    fn ejections(servers: usize, limit: u32) -> Ejections {
        Ejections {
            policy: Cell::new(Some(EjectPolicy {
                failure_limit: limit,
                retry_timeout: 30 * SECOND,
            })),
            failures: RefCell::new(vec![0; servers]),
            out_until: RefCell::new(vec![None; servers]),
            ejects: Cell::new(0),
        }
    }

    #[test]
    fn the_limit_th_consecutive_failure_ejects_and_a_reply_resets_the_count() {
        let e = ejections(3, 2);
        let now = Instant::now();
        assert_eq!(e.failed(1, now), None);
        e.answered(1);
        assert_eq!(e.failed(1, now), None);
        assert_eq!(e.failed(1, now), Some(now + 30 * SECOND));
        // Counting starts again after an ejection.
        assert_eq!(e.failed(1, now), None);
    }

    #[test]
    fn an_ejected_server_leaves_the_mask_until_its_deadline() {
        let e = ejections(3, 2);
        let now = Instant::now();
        assert_eq!(e.eject(1, now + SECOND, now), Change::Ejected);
        assert_eq!(e.live_mask(), [true, false, true]);
        // Its failures while out do not count.
        assert_eq!(e.failed(1, now), None);
        assert!(e.readmit_due(now).is_empty());
        assert_eq!(e.readmit_due(now + SECOND), [1]);
        assert_eq!(e.live_mask(), [true, true, true]);
        assert_eq!(e.ejects.get(), 1);
    }

    #[test]
    fn notices_in_any_order_agree_on_the_later_deadline() {
        let now = Instant::now();
        let (early, late) = (now + SECOND, now + 2 * SECOND);
        let a = ejections(2, 1);
        assert_eq!(a.eject(0, early, now), Change::Ejected);
        assert_eq!(a.eject(0, late, now), Change::Extended);
        let b = ejections(2, 1);
        assert_eq!(b.eject(0, late, now), Change::Ejected);
        assert_eq!(b.eject(0, early, now), Change::None);
        for e in [&a, &b] {
            assert!(e.readmit_due(early).is_empty());
            assert_eq!(e.readmit_due(late), [0]);
        }
        // A notice that arrives after its deadline changes nothing.
        assert_eq!(a.eject(1, now, now), Change::None);
        assert_eq!(a.live_mask(), [true, true]);
    }

    #[test]
    fn without_cache_mode_nothing_counts() {
        let e = Ejections::new(None);
        assert_eq!(e.failed(0, Instant::now()), None);
        assert!(e.live_mask().is_empty());
    }
}
