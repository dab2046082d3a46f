//! Background writes (`async_writes: true`): a write whose reply is known before it runs
//! ([`crate::command::fixed_reply`]) is answered `+OK` at once, and then sent as any request
//! is, its reply going to this module instead of to the client ([`ReplyTo::Background`]).
//!
//! What holds, and why:
//! - Read-your-writes, per client: a background write takes the connection the client's next
//!   requests take (the client's lane: its protocol, its database, and its own one of the
//!   node's connections, `pin`), and a connection is first in, first out, so whatever the
//!   client sends after it runs after it. A connection that fails puts its background writes
//!   back at the front of its queue, in order, for when it is back; MOVED and ASK resend them
//!   at once, ahead of the client's later requests, which meet the same redirect behind
//!   them. A request that would take another connection (another database or protocol, a
//!   WATCH or blocking command's dedicated connection), or any request after a background
//!   write was set aside to be resent later (TRYAGAIN, CLUSTERDOWN), waits until the client's
//!   background writes are answered ([`must_wait`]).
//! - Bounded: at most `async_writes_max_bytes` of background writes wait per core; past it a
//!   write is sent the usual way and its client waits for the server (back-pressure).
//! - Failures: a write the server refuses, or that its connection could not deliver before
//!   the server had been unreachable for `async_writes_retry_timeout` (a server that answers
//!   `-LOADING`, back from a restart and still reading its data, ran nothing: the write is
//!   sent again every [`LOADING_RETRY`], for as long), is counted as failed,
//!   and logged with the node and the command (at most one line a second per core, with the
//!   count of those not logged). Its client has had `+OK` and never learns.
//! - Stops: draining waits for the core's background writes after its clients ([`flush`]),
//!   within `--shutdown-timeout`; what is still waiting is counted and logged.
//!
//! MULTI/EXEC, and everything a watching client sends, stay synchronous: a transaction is
//! queued by percore and sent as one block whose EXEC the client waits for.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{info, warn};

use crate::command::fixed_reply::{fixed_write, FixedWrite};
use crate::command::route::{Command, Route, SplitKind};
use crate::config::Config;
use crate::metrics::BackgroundStats;
use crate::resp::{encode, Protocol};
use crate::shutdown;
use crate::sync::Signal;

use crate::command::keys::FrameArgs;
use crate::shard::backend::{Lane, Outbound};
use crate::shard::client::ClientState;
use crate::shard::dispatch;
use crate::shard::reply_to::ReplyTo;
use crate::shard::Shard;

/// Least time between two log lines about failed background writes on one core: a server
/// that refuses every write (out of memory, read-only) must not flood the log; each line
/// says how many failed since the last.
const FAILURE_LOG_GAP: Duration = Duration::from_secs(1);
/// Pause before a background write that met `-LOADING` is sent again: a server loading its
/// data is usually done within a second or two, so a few tries a second.
const LOADING_RETRY: Duration = Duration::from_millis(100);
/// Redis's error while it loads its data (after a restart), before it runs any command.
const LOADING: &[u8] = b"-LOADING ";
/// How often a stop's flush (or a reload's new server list) looks again at the clock and at
/// a stop signal while it waits for the last background writes.
const FLUSH_POLL: Duration = Duration::from_millis(10);

/// One core's background writes of one pool.
pub struct Writes {
    /// The pool, for the logs.
    pool: Rc<str>,
    /// This core, for the logs.
    core: usize,
    /// `async_writes_max_bytes`.
    max_bytes: usize,
    /// Acknowledged and not yet answered by the server.
    pending: Cell<u64>,
    /// Their bytes.
    pending_bytes: Cell<usize>,
    /// Answered `+OK` by the server.
    sent: Cell<u64>,
    /// Refused by the server, or undeliverable.
    failed: Cell<u64>,
    /// Still waiting when the process stopped.
    unflushed: Cell<u64>,
    /// Sent the usual way because the bound was reached.
    synchronous: Cell<u64>,
    /// When a failure was last logged, and how many failed since without a line.
    last_logged: Cell<Option<Instant>>,
    unlogged: Cell<u64>,
    /// Notified when `pending` reaches 0 (a stop's flush waits for it).
    drained: Signal,
    /// A reload changed the pool's servers, and keys are placed over the new list once the
    /// writes acknowledged under the old one are answered ([`super::moves`]): until then,
    /// writes are synchronous.
    held: Cell<bool>,
    /// How many times a reload has placed keys over a new server list on this core: a write
    /// acknowledged under an earlier one is never routed again ([`super::moves`]).
    placement: Cell<u16>,
    /// Writes whose server has no master now (a failover promoting its replica), waiting
    /// for one ([`super::moves::park`]).
    parked: RefCell<VecDeque<Outbound>>,
}

impl Writes {
    /// The background writes of `config`'s pool on core `core`, if the pool has them on.
    pub fn for_pool(config: &Config, core: usize) -> Option<Rc<Writes>> {
        let on = config.sidecar.async_writes?;
        Some(Rc::new(Writes {
            pool: Rc::from(config.name.as_str()),
            core,
            max_bytes: on.max_bytes,
            pending: Cell::new(0),
            pending_bytes: Cell::new(0),
            sent: Cell::new(0),
            failed: Cell::new(0),
            unflushed: Cell::new(0),
            synchronous: Cell::new(0),
            last_logged: Cell::new(None),
            unlogged: Cell::new(0),
            drained: Signal::default(),
            held: Cell::new(false),
            placement: Cell::new(0),
            parked: RefCell::new(VecDeque::new()),
        }))
    }

    /// The core's figures now.
    pub fn stats(&self) -> BackgroundStats {
        BackgroundStats {
            pending: self.pending.get(),
            pending_bytes: self.pending_bytes.get() as u64,
            sent: self.sent.get(),
            failed: self.failed.get(),
            unflushed: self.unflushed.get(),
            synchronous: self.synchronous.get(),
        }
    }

    /// Whether writes acknowledged by this core wait for their server.
    pub(super) fn behind(&self) -> bool {
        self.pending.get() > 0
    }

    /// Acknowledged writes that wait for their server.
    pub(super) fn pending(&self) -> u64 {
        self.pending.get()
    }

    /// Waits until none waits, `deadline` has passed or the process is told to stop (what a
    /// reload's new server list waits for), looking again every [`FLUSH_POLL`].
    pub(super) async fn answered(&self, deadline: Instant) {
        while self.behind() && Instant::now() < deadline && !shutdown::requested() {
            let poll = glommio::timer::sleep(FLUSH_POLL);
            futures_lite::future::or(self.drained.wait(), poll).await;
        }
    }

    /// Whether a reload's new server list waits for the writes placed under the old one.
    pub(super) fn held(&self) -> bool {
        self.held.get()
    }

    /// Holds writes synchronous while a reload's new server list waits, or lets them go.
    pub(super) fn hold(&self, held: bool) {
        self.held.set(held);
    }

    /// How many server lists keys have been placed over (a write carries the count it was
    /// acknowledged under).
    pub(super) fn placement(&self) -> u16 {
        self.placement.get()
    }

    /// Keys are placed over a reload's new server list from now on.
    pub fn placed_anew(&self) {
        self.placement.set(self.placement.get().wrapping_add(1));
    }

    /// The parked writes, and what parks while they are out.
    pub(super) fn parked(&self) -> &RefCell<VecDeque<Outbound>> {
        &self.parked
    }

    /// Takes a write of `bytes` if it fits under the bound and no reload's new server list
    /// waits.
    fn take(&self, bytes: usize) -> bool {
        if self.held.get() || self.pending_bytes.get() + bytes > self.max_bytes {
            self.synchronous.set(self.synchronous.get() + 1);
            return false;
        }
        self.pending.set(self.pending.get() + 1);
        self.pending_bytes.set(self.pending_bytes.get() + bytes);
        true
    }

    /// A write of `bytes` (a `kind`) has its server's `reply`, which `node` gave (`None`: it
    /// was not delivered, and the reply is percore's error saying why).
    fn settle(&self, bytes: usize, kind: FixedWrite, reply: &[u8], node: Option<&Rc<str>>) {
        self.pending.set(self.pending.get().saturating_sub(1));
        self.pending_bytes
            .set(self.pending_bytes.get().saturating_sub(bytes));
        if reply.first() == Some(&b'-') {
            self.failed.set(self.failed.get() + 1);
            self.log_failure(kind, reply, node);
        } else {
            self.sent.set(self.sent.get() + 1);
        }
        if self.pending.get() == 0 {
            self.drained.notify();
        }
    }

    /// Logs a failed write, unless one was logged less than [`FAILURE_LOG_GAP`] ago.
    fn log_failure(&self, kind: FixedWrite, reply: &[u8], node: Option<&Rc<str>>) {
        let now = Instant::now();
        if self
            .last_logged
            .get()
            .is_some_and(|at| now.duration_since(at) < FAILURE_LOG_GAP)
        {
            self.unlogged.set(self.unlogged.get() + 1);
            return;
        }
        self.last_logged.set(Some(now));
        let error = String::from_utf8_lossy(reply.get(1..).unwrap_or_default());
        warn!(
            core = self.core,
            pool = &*self.pool,
            node = node.map_or("(percore's error)", |n| &**n),
            command = kind.name(),
            error = error.trim_end(),
            failed = self.failed.get(),
            not_logged_since_last = self.unlogged.replace(0),
            "background write failed: its client had +OK, the write was not applied"
        );
    }
}

/// What one client has of background writes: how many wait, on which connections, and
/// whether one was set aside to be resent later.
#[derive(Default)]
pub struct ClientWrites {
    /// The core's background writes, for a client of a pool that has them.
    core: OnceCell<Rc<Writes>>,
    /// Its background writes not yet answered by the server.
    pending: Cell<u32>,
    /// The protocol and lane they went on.
    lane: Cell<(Protocol, Lane)>,
    /// One of them waits to be resent later (TRYAGAIN, CLUSTERDOWN): the client's next
    /// requests could overtake it on any connection.
    scattered: Cell<bool>,
    /// Notified when `pending` reaches 0 (the client's reader waits for it).
    drained: Signal,
}

impl ClientWrites {
    /// Whether background writes of the client wait: the one check the request path makes.
    #[inline]
    pub fn behind(&self) -> bool {
        self.pending.get() > 0
    }

    /// Waits until none of the client's background writes waits.
    pub async fn caught_up(&self) {
        while self.behind() {
            self.drained.wait().await;
        }
    }
}

/// Sets up a new client of `shard`'s pool: with background writes, its requests keep to
/// its own one of each node's connections (the one its background writes take).
pub fn welcome(shard: &Shard, client: &ClientState) {
    if let Some(writes) = &shard.background_writes {
        let _ = client.writes.core.set(writes.clone());
        client.identity.pin(client.identity.id as u32);
    }
}

/// The request's reply place as dispatch goes on with it: for a fixed write that fits under
/// the bound, the client is answered `+OK` now and the request's reply goes to the core's
/// background writes; for anything else, `reply_to` as it was.
pub fn acknowledge(
    writes: &Rc<Writes>,
    client: &Rc<ClientState>,
    (route, command): (&Route, Option<Command>),
    args: &FrameArgs,
    reply_to: ReplyTo,
) -> ReplyTo {
    let routed = matches!(route, Route::Keyed(_) | Route::Split(SplitKind::Mset));
    let kind = command
        .filter(|_| routed)
        .and_then(|c| fixed_write(c, args));
    let Some(kind) = kind.filter(|_| !client.session.watching()) else {
        return reply_to;
    };
    let bytes = args.frame.len();
    if !writes.take(bytes) {
        return reply_to;
    }
    reply_to.deliver(Bytes::from_static(encode::OK));
    let identity = &client.identity;
    client
        .writes
        .lane
        .set((identity.protocol(), identity.lane()));
    client.writes.pending.set(client.writes.pending.get() + 1);
    ReplyTo::Background {
        client: client.clone(),
        bytes: bytes as u32,
        kind,
        placement: writes.placement(),
    }
}

/// The server's `reply` to a background write of `client` (`bytes` long, a `kind`), which
/// `node` gave (`None`: percore's error, it was not delivered).
pub fn settle(
    client: &ClientState,
    (bytes, kind): (u32, FixedWrite),
    reply: &[u8],
    node: Option<&Rc<str>>,
) {
    let writes = &client.writes;
    writes.pending.set(writes.pending.get().saturating_sub(1));
    if writes.pending.get() == 0 {
        writes.scattered.set(false);
        writes.drained.notify();
    }
    if let Some(core) = writes.core.get() {
        core.settle(bytes as usize, kind, reply, node);
    }
}

/// A background write (or a part of one) is set aside to be resent later: until the client's
/// background writes are all answered, each of its requests waits.
pub fn scatter(reply_to: &ReplyTo) {
    if let Some(client) = reply_to.background_client() {
        client.writes.scattered.set(true);
    }
}

/// `out` with its error `reply`, unless it is a background write the server answered
/// `-LOADING`: that one is sent again after [`LOADING_RETRY`] (for the pool's
/// `async_writes_retry_timeout` at most, counted in its redirects), and `None` returned.
pub fn unless_loading(shard: &Rc<Shard>, reply: &[u8], mut out: Outbound) -> Option<Outbound> {
    let Some(on) = shard.config().sidecar.async_writes else {
        return Some(out);
    };
    let tries = (on.retry_for.as_millis() / LOADING_RETRY.as_millis()).min(u8::MAX as u128);
    let background = out.reply_to.background_client().is_some();
    if !background || !reply.starts_with(LOADING) || u128::from(out.redirects) >= tries {
        return Some(out);
    }
    out.redirects += 1;
    dispatch::resend_later(shard, out, LOADING_RETRY);
    None
}

/// Whether `client`'s request `args` must wait for the client's background writes (it has
/// some): it would take another connection than they did, so it could overtake them.
pub fn must_wait(shard: &Shard, client: &ClientState, args: &FrameArgs) -> bool {
    let writes = &client.writes;
    let identity = &client.identity;
    if writes.scattered.get() || writes.lane.get() != (identity.protocol(), identity.lane()) {
        return true;
    }
    let (route, _) = shard.placer.borrow().route(args);
    matches!(route, Route::Dedicated(..))
}

/// At a stop, after the clients have gone: waits until the core's background writes are all
/// answered, or `deadline` (or a second stop signal); counts and logs those still waiting.
pub async fn flush(shard: &Shard, deadline: Instant) {
    let Some(writes) = &shard.background_writes else {
        return;
    };
    let waiting = writes.pending.get();
    if waiting == 0 {
        return;
    }
    let (core, pool) = (shard.id(), shard.pool_name());
    info!(core, pool, waiting, "flushing background writes");
    while writes.pending.get() > 0 && Instant::now() < deadline && !shutdown::immediate() {
        let poll = glommio::timer::sleep(FLUSH_POLL);
        futures_lite::future::or(writes.drained.wait(), poll).await;
    }
    let left = writes.pending.get();
    if left == 0 {
        return info!(core, pool, "background writes flushed");
    }
    writes.unflushed.set(writes.unflushed.get() + left);
    warn!(
        core,
        pool,
        unflushed = left,
        bytes = writes.pending_bytes.get(),
        "stopping with background writes not flushed: their clients had +OK, the server may \
         not have them"
    );
}
