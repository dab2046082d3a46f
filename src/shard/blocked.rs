//! Blocking commands (BLPOP, BLMOVE, BZPOPMIN, XREAD ... BLOCK, ...): each runs on a dedicated
//! connection leased for its duration, so the node can hold it as long as the command's own
//! timeout says while the core's other clients go on over the shared connections.
//!
//! The client is held while it waits: its later requests are read but not run until the
//! blocking one is answered, as Redis runs a blocked client's pipeline. A client that goes
//! away meanwhile is unblocked on the node at once: its connection is closed, and a node
//! pops nothing for a connection it has closed.
//!
//! percore waits for the reply as long as the command's timeout, plus `--backend-timeout` for
//! the node's answer to travel back ([`Outbound::patience`]); 0 waits forever. A redirect, or
//! `-UNBLOCKED` after a node became a replica, means the slot's owner is elsewhere now: the
//! request is sent to the new owner with the time that is left.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::cluster::redirect::{parse_redirect, resolve_node, Redirect};
use crate::cluster::slot::Slot;
use crate::command::blocking::{self, Timeout, Wait};
use crate::command::keys::{Args, FrameArgs};
use crate::command::route::Command;
use crate::error::BackendError;
use crate::resp::parse::{Frame, RequestParser};
use crate::resp::{encode, Protocol};

use super::backend::Outbound;
use super::client::ClientState;
use super::dispatch::{error_reply, MAX_REDIRECTS};
use super::lease::{self, Dedicated};
use super::reply_to::{failure, ReplyTo};
use super::Shard;

/// What a node answers a blocked client when it stops being a master: the slot's owner is
/// elsewhere now. (CLIENT UNBLOCK ... ERROR's `-UNBLOCKED` is the client's to see.)
const STATE_CHANGED: &[u8] = b"-UNBLOCKED force unblock from blocking operation, instance state";
/// Pause before sending again after TRYAGAIN, CLUSTERDOWN or UNBLOCKED: the migration of a
/// key batch, or a replica's promotion, takes milliseconds to a second.
const RETRY_DELAY: Duration = Duration::from_millis(100);
/// The reply Redis Cluster gives for a slot no master serves.
const CLUSTERDOWN: &[u8] = b"-CLUSTERDOWN Hash slot not served\r\n";

/// A blocking request in flight.
pub struct Blocked {
    /// The core, to lease again and to follow redirects.
    shard: Rc<Shard>,
    /// The waiting client, and its reply place.
    client: Rc<ClientState>,
    seq: u64,
    /// The request as the client sent it.
    request: Bytes,
    /// Its slot, where all its keys are.
    slot: Slot,
    /// The protocol of its connections.
    protocol: Protocol,
    /// The client's database when not the pool's: its connections selected it.
    db: Option<u16>,
    /// Its timeout argument.
    timeout: Option<Timeout>,
    /// When its time is up on the node (`None`: never).
    deadline: Option<Instant>,
    /// The connection it waits on (`None` between two nodes).
    lease: RefCell<Option<Rc<Dedicated>>>,
    /// The lease is the client's WATCH connection, which stays the client's afterwards.
    on_watch_lease: Cell<bool>,
    /// Times it was sent again.
    redirects: Cell<u8>,
    /// Answered or abandoned: late replies are dropped.
    done: Cell<bool>,
}

/// Starts a blocking request: leases a connection to the slot's master (or uses the client's
/// WATCH connection when it goes there), holds the client, sends the request.
#[allow(clippy::too_many_arguments)]
pub fn start(
    shard: &Rc<Shard>,
    client: &Rc<ClientState>,
    slot: Slot,
    command: Option<Command>,
    frame: Bytes,
    args: &FrameArgs,
    reply_to: ReplyTo,
    started: Instant,
) {
    let ReplyTo::Client { seq, .. } = reply_to else {
        return reply_to.deliver(error_reply("ERR percore: blocking request from no client"));
    };
    let timeout = command.and_then(|command| blocking::timeout(command.spec.name, args));
    let deadline = match timeout.map(|t| t.wait) {
        Some(Wait::For(wait)) => Some(started + wait),
        _ => None,
    };
    let blocked = Rc::new(Blocked {
        shard: shard.clone(),
        client: client.clone(),
        seq,
        request: frame.clone(),
        slot,
        protocol: client.identity.protocol(),
        db: client.identity.db(),
        timeout,
        deadline,
        lease: RefCell::new(None),
        on_watch_lease: Cell::new(false),
        redirects: Cell::new(0),
        done: Cell::new(false),
    });
    let Some(node) = shard.node_for(Some(slot)) else {
        return blocked.finish(Bytes::from_static(CLUSTERDOWN), None);
    };
    *client.session.blocked.borrow_mut() = Some(blocked.clone());
    client.hold();
    let counters = shard.counters();
    counters
        .blocking_clients
        .set(counters.blocking_clients.get() + 1);
    blocked.send_to(&node.addr, frame, false);
}

impl Blocked {
    /// Sends `request` to the node at `addr`, on the client's WATCH connection if that goes
    /// there, else on a connection leased for it.
    fn send_to(self: &Rc<Self>, addr: &str, request: Bytes, asking: bool) {
        let watch = self.client.session.watch_lease(self.protocol, self.db);
        let lease = match watch.filter(|lease| &**lease.addr() == addr) {
            Some(lease) => {
                self.on_watch_lease.set(true);
                lease
            }
            None => match lease::lease(&self.shard, addr, self.protocol, self.db) {
                Ok(lease) => {
                    self.on_watch_lease.set(false);
                    lease
                }
                Err(refused) => return self.finish(refused.reply(), None),
            },
        };
        let mut out = Outbound::new(
            request,
            ReplyTo::Blocked(self.clone()),
            Some(self.slot),
            self.protocol,
            Instant::now(),
        );
        out.asking = asking;
        out.patience = self.patience();
        *self.lease.borrow_mut() = Some(lease.clone());
        lease.conn.send(out);
    }

    /// How long the reply may take once sent: the time left on the node, plus
    /// `--backend-timeout` for the answer to come back.
    fn patience(&self) -> Option<Duration> {
        let grace = self.shard.config().backend_timeout;
        match self.timeout.map(|t| t.wait) {
            Some(Wait::Forever) => Some(Outbound::FOREVER),
            Some(Wait::For(_)) => Some(self.time_left().unwrap_or_default() + grace),
            // An invalid timeout is answered at once, with an error.
            Some(Wait::Invalid) | None => None,
        }
    }

    /// Time left on the node (`None`: forever).
    fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The reply `node` gave (or an error for it): a redirect sends the request to the slot's owner
    /// now; anything else is the client's.
    pub fn deliver(self: &Rc<Self>, reply: Bytes, node: Option<&Rc<str>>) {
        if self.done.get() {
            return;
        }
        let from = self.release();
        let resend = match parse_redirect(&reply) {
            Some(redirect) => Some(redirect),
            None if reply.starts_with(STATE_CHANGED) => Some(Redirect::ClusterDown),
            None => None,
        };
        let Some(redirect) = resend else {
            return self.finish(reply, node);
        };
        if self.redirects.get() >= MAX_REDIRECTS {
            let error = BackendError::TooManyRedirects { node: from };
            return self.finish(failure(&error), None);
        }
        self.redirects.set(self.redirects.get() + 1);
        let request = self.with_time_left();
        match redirect {
            Redirect::Moved { slot, node } => {
                let node = self.shard.slot_moved(slot, &resolve_node(node, &from));
                self.send_to(&node.addr, request, false);
            }
            Redirect::Ask { node, .. } => self.send_to(&resolve_node(node, &from), request, true),
            Redirect::TryAgain | Redirect::ClusterDown => {
                self.shard.request_refresh();
                let blocked = self.clone();
                glommio::spawn_local(async move {
                    glommio::timer::sleep(RETRY_DELAY).await;
                    if blocked.done.get() {
                        return;
                    }
                    match blocked.shard.node_for(Some(blocked.slot)) {
                        Some(node) => {
                            let request = blocked.with_time_left();
                            blocked.send_to(&node.addr, request, false);
                        }
                        None => blocked.finish(Bytes::from_static(CLUSTERDOWN), None),
                    }
                })
                .detach();
            }
        }
    }

    /// Gives the connection back after the node answered (it holds nothing for the client
    /// now); returns the node's address.
    fn release(&self) -> String {
        let Some(lease) = self.lease.borrow_mut().take() else {
            return String::new();
        };
        if !self.on_watch_lease.get() {
            lease::give_back(&self.shard, &lease);
        }
        lease.addr().to_string()
    }

    /// The reply goes to the client, whose next requests go on.
    fn finish(&self, reply: Bytes, node: Option<&Rc<str>>) {
        if self.done.replace(true) {
            return;
        }
        let mine = {
            let mut blocked = self.client.session.blocked.borrow_mut();
            let mine = blocked
                .as_ref()
                .is_some_and(|b| std::ptr::eq(Rc::as_ptr(b), self));
            if mine {
                blocked.take();
            }
            mine
        };
        if mine {
            let counters = self.shard.counters();
            counters
                .blocking_clients
                .set(counters.blocking_clients.get().saturating_sub(1));
        }
        self.client.complete(self.seq, reply, node.cloned());
        self.client.resume();
    }

    /// The client went away: its connection is closed, which unblocks it on the node before
    /// anything can be popped for it.
    pub fn abandon(&self, shard: &Rc<Shard>) {
        if self.done.replace(true) {
            return;
        }
        let counters = shard.counters();
        counters
            .blocking_clients
            .set(counters.blocking_clients.get().saturating_sub(1));
        let lease = self.lease.borrow_mut().take();
        if let Some(lease) = lease {
            lease::discard(shard, &lease);
        }
        // Its place must be filled for the connection to finish closing; nobody reads it.
        let gone = error_reply("ERR percore: the client closed its connection while blocked");
        self.client.complete(self.seq, gone, None);
    }

    /// The node and node-side id of the connection it waits on ([`unblock_on_node`] takes them).
    pub fn blocked_on(&self) -> Option<(String, i64)> {
        let lease = self.lease.borrow();
        let lease = lease.as_ref()?;
        Some((lease.addr().to_string(), lease.node_id()?))
    }

    /// The request with its timeout set to the time left.
    fn with_time_left(&self) -> Bytes {
        let Some(timeout) = self.timeout.filter(|t| t.wait != Wait::Invalid) else {
            return self.request.clone();
        };
        let mut parser = RequestParser::new(self.shard.config().limits);
        let Ok(Some(Frame::Multibulk { .. })) = parser.parse(&self.request) else {
            return self.request.clone();
        };
        let args = FrameArgs {
            frame: &self.request,
            args: parser.args(),
        };
        if args.count() <= timeout.index {
            return self.request.clone();
        }
        let rebuilt: BytesMut = blocking::with_time_left(&args, timeout, self.time_left());
        rebuilt.freeze()
    }
}

/// Has the node at `addr` unblock its connection `node_id` (`CLIENT UNBLOCK id how`, `how`
/// being `TIMEOUT` or `ERROR`): the blocked command then answers as Redis says. The node's
/// reply: `:1`, or `:0` when that connection was not blocked.
pub async fn unblock_on_node(
    shard: &Rc<Shard>,
    addr: &str,
    node_id: i64,
    how: &[u8],
    protocol: Protocol,
) -> Bytes {
    let mut request = BytesMut::new();
    let node_id = node_id.to_string();
    encode::command(
        &mut request,
        [&b"CLIENT"[..], b"UNBLOCK", node_id.as_bytes(), how],
    );
    let node = shard.node(addr);
    shard.ask(&node, request.freeze(), protocol).await
}
