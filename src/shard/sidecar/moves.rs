//! What background writes do when their server changes under them: a write is acknowledged
//! for the server its key is on at that moment, and must reach that server (or be counted
//! failed and logged), never another one that may have had a later write of the same key.
//!
//! - **A reload changes a static pool's servers** (a server removed, added or re-weighted:
//!   keys move). Each core places keys over the new list only once the background writes it
//!   acknowledged under the old one are answered ([`servers_changed`]), waiting at most
//!   `--shutdown-timeout`; until then it places requests by the old list and takes no new
//!   background write (they are synchronous, counted in `synchronous`), so the wait ends.
//!   This is the simplest way to be sure no write placed by one list is sent by the other: a
//!   static pool's keys do not take their data with them when they move, so a client reads
//!   what it wrote only from the server it wrote it to, and a reload (an operator's act)
//!   can wait the few milliseconds its server needs to answer. A write still waiting past
//!   the bound (its server unreachable) stays on the connection of the server it was placed
//!   on: it is answered there, or counted failed (if the reload removed that server, as
//!   soon as its connection fails again, since it is not remade). One that would be routed
//!   again under the new list (a retry after `-LOADING`), whose route names a position that
//!   is another server now, is counted failed instead ([`unless_placed_before`]).
//! - **A Sentinel failover** replaces a server's master. The background writes waiting on
//!   the connections to the old master, which percore closes, are taken out in order and sent
//!   by their server's position, so to its new master ([`resend`]), ahead of anything their
//!   clients send after (that happens in the same step as the new layout). While the server
//!   has no master (held while its replica is promoted), those and any new background
//!   write for it wait in the core's parking lot ([`park`]) until it has one again, for at
//!   most `async_writes_retry_timeout` after they were last sent (then they are counted
//!   failed); their clients' later requests wait behind them, so a client reads its own
//!   writes throughout. A write that was in flight may have run on the old master already and
//!   runs again on the new one: these are writes that leave the same state when run twice.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::shard::backend::Outbound;
use crate::shard::dispatch;
use crate::shard::reply_to::failure;
use crate::shard::Shard;
use crate::shutdown;

use super::background::{self, Writes};

/// How often parked writes look whether their server has a master again, so how late they
/// follow Sentinel's naming it. Writes park only while a failover promotes a replica (a
/// second or two), and then a hundred looks a second cost nothing.
const PARK_POLL: Duration = Duration::from_millis(10);

/// Why percore gave a background write up without its server's answer.
#[derive(Debug, thiserror::Error)]
enum Undelivered {
    /// It was to be routed again after a reload placed keys over a new server list: the
    /// position its route names may be another server now.
    #[error(
        "the pool's servers changed (a reload) before it could be sent again to the server \
         it was placed on"
    )]
    ServersChanged,
}

/// A reload changed the pool's static servers (now in its configuration): this core places
/// keys over them now, or, with background writes waiting, once they are answered (see the
/// module).
pub fn servers_changed(shard: &Rc<Shard>) {
    let Some(writes) = shard.background_writes.clone() else {
        return shard.place_servers();
    };
    if writes.held() {
        // A reload before this one waits already, and places the newest list.
        return;
    }
    if !writes.behind() {
        return shard.place_servers();
    }
    writes.hold(true);
    let deadline = Instant::now() + shard.config().shutdown_timeout;
    info!(
        core = shard.id(),
        pool = shard.pool_name(),
        waiting = writes.pending(),
        "the pool's servers changed: placing keys over them once the background writes \
         placed before are answered (writes are synchronous until then)"
    );
    let placing = glommio::spawn_local(place_when_answered(shard.clone(), writes, deadline));
    // Cancelled if a reload removes the pool meanwhile: it must not place anything then.
    shard.keep(placing);
}

/// Waits until the core's background writes are answered (or `deadline`), then places keys
/// over the pool's servers of the moment.
async fn place_when_answered(shard: Rc<Shard>, writes: Rc<Writes>, deadline: Instant) {
    writes.answered(deadline).await;
    writes.hold(false);
    if shutdown::requested() {
        // Stopping: the stop's flush sees to what still waits, and nothing is placed.
        return;
    }
    let left = writes.pending();
    if left > 0 {
        warn!(
            core = shard.id(),
            pool = shard.pool_name(),
            waiting = left,
            "placing keys over the new servers with background writes still waiting past \
             --shutdown-timeout: each is answered by the server it was placed on, or counted \
             failed"
        );
    }
    shard.place_servers();
}

/// `out`, unless it is a background write acknowledged before keys were last placed over a
/// reload's new server list: that one is failed (counted and logged) rather than routed by
/// a position that may name another server now.
pub fn unless_placed_before(shard: &Shard, out: Outbound) -> Option<Outbound> {
    let now = shard.background_writes.as_ref().map(|w| w.placement());
    let placed = out.reply_to.background_placement();
    if placed.is_none() || placed == now {
        return Some(out);
    }
    let error = Undelivered::ServersChanged;
    out.reply_to.deliver(failure(&error));
    None
}

/// Sends the background writes `waiting` on the connections to `from`, a master Sentinel
/// replaced, by their server's position (to its new master, or the parking lot while it has
/// none), in order.
pub fn resend(shard: &Rc<Shard>, from: &str, waiting: Vec<Outbound>) {
    if waiting.is_empty() {
        return;
    }
    info!(
        core = shard.id(),
        pool = shard.pool_name(),
        node = from,
        writes = waiting.len(),
        "background writes waiting on a former master go to the server's new master"
    );
    for mut out in waiting {
        out.asking = false;
        dispatch::forward(shard, out);
    }
}

/// `out` has no node to go to (no master serves its slot or server now): a background write
/// waits in the core's parking lot for one, its client's later requests behind it; anything
/// else is answered `shard.unserved()` at once.
pub fn park(shard: &Rc<Shard>, out: Outbound) {
    let writes = shard.background_writes.as_ref();
    let Some(writes) = writes.filter(|_| out.reply_to.background_client().is_some()) else {
        return out.answer(shard.unserved(), None);
    };
    background::scatter(&out.reply_to);
    let mut parked = writes.parked().borrow_mut();
    parked.push_back(out);
    if parked.len() == 1 {
        glommio::spawn_local(unpark(shard.clone(), writes.clone())).detach();
    }
}

/// Sends parked writes on as their servers have a master again, in order, until none is
/// parked; one parked for longer than `async_writes_retry_timeout` since it was last sent
/// is answered `shard.unserved()` (counted failed and logged).
async fn unpark(shard: Rc<Shard>, writes: Rc<Writes>) {
    loop {
        glommio::timer::sleep(PARK_POLL).await;
        let retry_for = shard.config().sidecar.async_writes.map(|on| on.retry_for);
        let retry_for = retry_for.unwrap_or_default();
        let lot = std::mem::take(&mut *writes.parked().borrow_mut());
        let mut still = VecDeque::new();
        for out in lot {
            let Some(out) = unless_placed_before(&shard, out) else {
                continue;
            };
            if shard.node_for(out.slot).is_some() {
                dispatch::forward(&shard, out);
            } else if out.sent.elapsed() >= retry_for {
                out.answer(shard.unserved(), None);
            } else {
                still.push_back(out);
            }
        }
        // Ahead of any parked meanwhile (none: a write with a node is not parked).
        let mut parked = writes.parked().borrow_mut();
        still.append(&mut parked);
        *parked = still;
        if parked.is_empty() {
            return;
        }
    }
}
