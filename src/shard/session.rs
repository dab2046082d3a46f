//! WATCH sessions and RESET: what a client holds on a dedicated backend connection between
//! WATCH and EXEC, and how it ends.
//!
//! The first WATCH leases a connection to the master of its keys ([`super::lease`]); from then
//! until EXEC, DISCARD, UNWATCH, RESET or disconnect the client's requests that this master
//! serves go over it, in order (reads in between included), and EXEC sends the transaction as
//! one block on it. Requests for other masters go the usual way: a watch on one node cannot
//! see them anyway.
//!
//! A watch can break without the node's help: a redirect on the lease (the slot has moved, or
//! is moving) or a watched slot the map now places on another node. EXEC then answers nil, as
//! for a watched key that was modified, and sends nothing: the client's retry watches on the
//! new owner. A transaction is never applied on a node whose watch could not see the key.
//!
//! Ending a session is ordered like everything else of the client: the client's later
//! requests wait (the client is held) until the node has answered the last request on the
//! lease, so nothing sent after UNWATCH or EXEC overtakes what was sent before on another
//! connection. EXEC leaves the connection clean; every other end resets it ([`lease::reset`]).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::cluster::redirect::{parse_redirect, resolve_node, Redirect};
use crate::cluster::slot::Slot;
use crate::command::route::Route;
use crate::resp::{encode, Protocol};

use super::backend::Outbound;
use super::blocked::{self, Blocked};
use super::client::{ClientState, ReplyMode};
use super::dispatch::{error_reply, MAX_REDIRECTS};
use super::lease::{self, Dedicated};
use super::reply_to::ReplyTo;
use super::Shard;

/// Redis's reply to RESET.
const RESET: &[u8] = b"+RESET\r\n";
/// EXEC's reply when a watched key changed, in RESP2 (a null array).
const NULL_ARRAY: &[u8] = b"*-1\r\n";
/// The reply Redis Cluster gives for a slot no master serves.
const CLUSTERDOWN: &[u8] = b"-CLUSTERDOWN Hash slot not served\r\n";
/// WATCH of keys on another master than the keys the client watches already.
const OTHER_MASTER: &str = "ERR percore: WATCH keys must all be on one master (a client's \
     watches live on one backend connection); these keys are on another master than the keys \
     this client watches already";
/// WATCH in another database than the keys the client watches already.
const OTHER_DB: &str = "ERR percore: WATCH keys must all be in one database (a client's \
     watches live on one backend connection, which has selected one database); this client \
     watches keys of another database already";

/// What a client holds of sessions. Empty, and never looked at past one flag, for a client
/// that uses none.
#[derive(Default)]
pub struct Session {
    /// From the first WATCH until EXEC, DISCARD, UNWATCH, RESET or disconnect.
    watch: RefCell<Option<Watch>>,
    /// Whether `watch` is set: the one check the request path makes.
    watching: Cell<bool>,
    /// The blocking request the client waits for, if any.
    pub(super) blocked: RefCell<Option<Rc<Blocked>>>,
}

impl Session {
    /// Whether the client watches keys (its requests may go over its lease).
    pub fn watching(&self) -> bool {
        self.watching.get()
    }

    /// The WATCH lease, if the client has one of `protocol` on database `db`.
    pub(super) fn watch_lease(&self, protocol: Protocol, db: Option<u16>) -> Option<Rc<Dedicated>> {
        let watch = self.watch.borrow();
        let watch = watch.as_ref()?;
        watch
            .lease
            .serves(protocol, db)
            .then(|| watch.lease.clone())
    }

    /// The address of the WATCH lease's node.
    fn watch_lease_addr(&self) -> Option<String> {
        let watch = self.watch.borrow();
        Some(watch.as_ref()?.lease.addr().to_string())
    }

    /// The watch can no longer see every change of its keys: EXEC will answer nil.
    fn break_watch(&self) {
        if let Some(watch) = self.watch.borrow_mut().as_mut() {
            watch.broken = true;
        }
    }

    /// The node and node-side id of the connection the client is blocked on, for CLIENT
    /// UNBLOCK.
    pub fn blocked_on(&self) -> Option<(String, i64)> {
        self.blocked.borrow().as_ref()?.blocked_on()
    }
}

/// A client's watch.
struct Watch {
    /// The connection the watches live on.
    lease: Rc<Dedicated>,
    /// The watched keys' slots.
    slots: Vec<Slot>,
    /// The watch can no longer see every change of its keys: EXEC answers nil.
    broken: bool,
}

/// A WATCH request on its way, whose reply tells whether the watch holds. The client is held
/// until it is in, so that nothing it sends after WATCH runs before the watch is set.
pub struct WatchReply {
    shard: Rc<Shard>,
    client: Rc<ClientState>,
    seq: u64,
    /// The request, to send again to the slot's owner after MOVED.
    frame: Bytes,
    slot: Slot,
    /// The client's first WATCH: the lease holds no other watch, so it may move.
    first: bool,
    /// Times it was sent again.
    redirects: Cell<u8>,
}

impl WatchReply {
    /// The node's reply to WATCH. MOVED on the first WATCH moves the lease to the slot's
    /// owner and watches there. Any other redirect means the keys are not (or not all) there:
    /// the watch is broken (EXEC will answer nil) but WATCH itself answers OK, as it does when
    /// a watched key is later modified.
    pub fn deliver(self: &Rc<Self>, reply: Bytes, node: Option<&Rc<str>>) {
        let Some(redirect) = parse_redirect(&reply) else {
            return self.answer(reply, node);
        };
        let session = &self.client.session;
        let from = session.watch_lease_addr().unwrap_or_default();
        if let Redirect::Moved { slot, node } = redirect {
            let node = self.shard.slot_moved(slot, &resolve_node(node, &from));
            if self.first && self.redirects.get() < MAX_REDIRECTS {
                self.redirects.set(self.redirects.get() + 1);
                if let Err(error) = self.move_to(&node.addr) {
                    session.break_watch();
                    self.answer(error, None);
                }
                return;
            }
        } else {
            self.shard.request_refresh();
        }
        session.break_watch();
        self.answer(Bytes::from_static(encode::OK), node);
    }

    /// Gives back the lease (the refused WATCH left nothing on it) and watches at `addr`.
    fn move_to(self: &Rc<Self>, addr: &str) -> Result<(), Bytes> {
        let protocol = self.client.identity.protocol();
        let db = self.client.identity.db();
        let lease = lease::lease(&self.shard, addr, protocol, db).map_err(|r| r.reply())?;
        let old = {
            let mut watch = self.client.session.watch.borrow_mut();
            let Some(watch) = watch.as_mut() else {
                // The client is gone: nothing to watch for.
                lease::give_back(&self.shard, &lease);
                return Ok(());
            };
            std::mem::replace(&mut watch.lease, lease.clone())
        };
        lease::give_back(&self.shard, &old);
        let out = Outbound::new(
            self.frame.clone(),
            ReplyTo::Watch(self.clone()),
            Some(self.slot),
            protocol,
            Instant::now(),
        );
        lease.conn.send(out);
        Ok(())
    }

    /// WATCH's reply (which `node` gave) goes to the client, whose next requests go on.
    fn answer(&self, reply: Bytes, node: Option<&Rc<str>>) {
        self.client.complete(self.seq, reply, node.cloned());
        self.client.resume();
    }
}

/// `WATCH key ...` (all in `slot`): leases a connection to the slot's master on the first one.
pub fn watch(
    shard: &Rc<Shard>,
    client: &Rc<ClientState>,
    slot: Slot,
    frame: Bytes,
    reply_to: ReplyTo,
    started: Instant,
) {
    let protocol = client.identity.protocol();
    let db = client.identity.db();
    let Some(node) = shard.node_for(Some(slot)) else {
        return reply_to.deliver(Bytes::from_static(CLUSTERDOWN));
    };
    let ReplyTo::Client { seq, .. } = reply_to else {
        return reply_to.deliver(error_reply("ERR percore: WATCH from no client"));
    };
    let first = client.session.watch.borrow().is_none();
    let lease = {
        let mut watch = client.session.watch.borrow_mut();
        match watch.as_mut() {
            Some(watch) if *watch.lease.addr() == node.addr && watch.lease.serves(protocol, db) => {
                if !watch.slots.contains(&slot) {
                    watch.slots.push(slot);
                }
                Ok(watch.lease.clone())
            }
            Some(watch) if watch.lease.db != db => Err(error_reply(OTHER_DB)),
            Some(_) => Err(error_reply(OTHER_MASTER)),
            None => lease::lease(shard, &node.addr, protocol, db)
                .inspect(|lease| {
                    *watch = Some(Watch {
                        lease: lease.clone(),
                        slots: vec![slot],
                        broken: false,
                    });
                })
                .map_err(|refused| refused.reply()),
        }
    };
    let lease = match lease {
        Ok(lease) => lease,
        Err(error) => return reply_to.deliver(error),
    };
    if !client.session.watching.replace(true) {
        let counters = shard.counters();
        counters
            .watching_clients
            .set(counters.watching_clients.get() + 1);
    }
    client.hold();
    let reply_to = ReplyTo::Watch(Rc::new(WatchReply {
        shard: shard.clone(),
        client: client.clone(),
        seq,
        frame: frame.clone(),
        slot,
        first,
        redirects: Cell::new(0),
    }));
    lease.conn.send(Outbound::new(
        frame,
        reply_to,
        Some(slot),
        protocol,
        started,
    ));
}

/// Sends a watching client's request over its lease when the lease's master serves it (a
/// keyed request for a slot there, or a keyless one any master answers); otherwise hands
/// `reply_to` back for the usual path.
pub fn forward(
    shard: &Shard,
    client: &ClientState,
    route: &Route,
    frame: &Bytes,
    reply_to: ReplyTo,
    started: Instant,
) -> Option<ReplyTo> {
    let protocol = client.identity.protocol();
    let slot = match *route {
        Route::Keyed(slot) => Some(slot),
        Route::AnyMaster => None,
        _ => return Some(reply_to),
    };
    let Some(lease) = client.session.watch_lease(protocol, client.identity.db()) else {
        return Some(reply_to);
    };
    if !lease.conn.is_open() {
        // The node closed it: the watch is gone with it.
        client.session.break_watch();
        return Some(reply_to);
    }
    if let Some(slot) = slot {
        if shard
            .node_for(Some(slot))
            .is_none_or(|node| node.addr != *lease.addr())
        {
            return Some(reply_to);
        }
    }
    let out = Outbound::new(frame.clone(), reply_to, slot, protocol, started);
    lease.conn.send(out);
    None
}

/// EXEC of a watching client whose transaction is in `slot`: the lease to send the block on,
/// taken from the client, which is held until [`exec_done`]. `None` when the watch cannot
/// hold (broken, another protocol now, a slot now elsewhere): the caller answers nil through
/// [`end_watch`].
pub fn exec_lease(
    shard: &Shard,
    client: &ClientState,
    slot: Option<Slot>,
) -> Option<Rc<Dedicated>> {
    let protocol = client.identity.protocol();
    let lease = client.session.watch_lease(protocol, client.identity.db())?;
    let holds = {
        let watch = client.session.watch.borrow();
        let watch = watch.as_ref()?;
        let here = |slot: &Slot| {
            shard
                .node_for(Some(*slot))
                .is_some_and(|node| node.addr == *lease.addr())
        };
        !watch.broken
            && lease.conn.is_open()
            && watch.slots.iter().all(here)
            && slot.as_ref().is_none_or(here)
    };
    if !holds {
        return None;
    }
    take_watch(shard, client);
    client.hold();
    Some(lease)
}

/// EXEC's reply is in: EXEC leaves no watch on the node, so the lease goes back as it is,
/// and the client's next requests go on.
pub fn exec_done(shard: &Rc<Shard>, client: &ClientState, lease: &Rc<Dedicated>) {
    lease::give_back(shard, lease);
    client.resume();
}

/// EXEC's reply when the watch could not hold: nil, in the client's protocol.
pub fn watch_failed(protocol: Protocol) -> Bytes {
    match protocol {
        Protocol::Resp2 => Bytes::from_static(NULL_ARRAY),
        Protocol::Resp3 => {
            let mut out = bytes::BytesMut::with_capacity(3);
            encode::null(&mut out, protocol);
            out.freeze()
        }
    }
}

/// Whether the client watches keys.
pub fn is_watching(client: &ClientState) -> bool {
    client.session.watching()
}

/// Ends the client's watch, if any (UNWATCH, DISCARD, RESET, a failed EXEC, disconnect): the
/// lease is reset and given back, and only then does `reply` go to `reply_to` and the
/// client's later requests go on. Without a watch, `reply` goes at once.
pub fn end_watch(
    shard: &Rc<Shard>,
    client: &Rc<ClientState>,
    reply_to: Option<ReplyTo>,
    reply: Bytes,
) {
    let Some(watch) = take_watch(shard, client) else {
        if let Some(reply_to) = reply_to {
            reply_to.deliver(reply);
        }
        return;
    };
    client.hold();
    let (shard, client) = (shard.clone(), client.clone());
    glommio::spawn_local(async move {
        lease::reset(&shard, &watch.lease).await;
        if let Some(reply_to) = reply_to {
            reply_to.deliver(reply);
        }
        client.resume();
    })
    .detach();
}

/// Takes the watch from the client.
fn take_watch(shard: &Shard, client: &ClientState) -> Option<Watch> {
    let watch = client.session.watch.borrow_mut().take()?;
    client.session.watching.set(false);
    let counters = shard.counters();
    counters
        .watching_clients
        .set(counters.watching_clients.get().saturating_sub(1));
    Some(watch)
}

/// `RESET`: everything the client chose or holds goes back to a new connection's: its
/// transaction, its watch (and lease), name, protocol, reply mode and login.
pub fn reset(shard: &Rc<Shard>, client: &Rc<ClientState>, reply_to: ReplyTo) {
    client.transaction.borrow_mut().take();
    if let ReplyTo::Client { seq, .. } = &reply_to {
        // RESET's own reply is sent whatever the reply mode was.
        client.set_reply_mode(*seq, ReplyMode::On);
    }
    let identity = &client.identity;
    identity.set_name(None);
    identity.set_protocol(Protocol::Resp2);
    // Back on the database a new connection starts on: the pool's.
    identity.select(None);
    identity.set_read_replicas(false);
    let users = &shard.config().users;
    match users.initial() {
        Some(user) => identity.log_in(users, user),
        None => identity.log_out(),
    }
    // Every subscription too, without unsubscribe frames, as Redis's RESET.
    if client.pubsub.has_state() {
        shard.pubsub.forget(shard, client);
    }
    end_watch(shard, client, Some(reply_to), Bytes::from_static(RESET));
}

/// The client's connection has closed (read end): a blocking request it waits for is ended
/// at once, closing its connection so the node unblocks it and pops nothing for it.
pub fn peer_closed(shard: &Rc<Shard>, client: &ClientState) {
    let blocked = client.session.blocked.borrow_mut().take();
    if let Some(blocked) = blocked {
        blocked.abandon(shard);
    }
}

/// How many times a stopping process asks a node to unblock a client, [`UNBLOCK_RETRY`]
/// apart, before leaving it to the drain's deadline.
const UNBLOCK_TRIES: u32 = 20;
/// The pause between two tries: the node may not have read the blocking command yet.
const UNBLOCK_RETRY: Duration = Duration::from_millis(50);

/// The process stops while the client is blocked: its node ends the blocking command as its
/// timeout would (`CLIENT UNBLOCK id TIMEOUT`), so the client gets the node's own reply (nil,
/// or the element the node popped for it a moment before, which closing the connection would
/// lose) and the drain can finish. A request not on a node yet is abandoned as for a client
/// that left.
pub fn unblock_for_shutdown(shard: &Rc<Shard>, client: &Rc<ClientState>) {
    let Some((addr, _)) = client.session.blocked_on() else {
        return peer_closed(shard, client);
    };
    let (shard, client) = (shard.clone(), client.clone());
    glommio::spawn_local(async move {
        for _ in 0..UNBLOCK_TRIES {
            let Some((_, id)) = client.session.blocked_on() else {
                return;
            };
            let answer = blocked::unblock_on_node(&shard, &addr, id, b"TIMEOUT", Protocol::Resp2);
            if answer.await[..] == b":1\r\n"[..] {
                return;
            }
            // :0: not blocked on the node yet, or answered already (the reply on its way).
            glommio::timer::sleep(UNBLOCK_RETRY).await;
        }
    })
    .detach();
}

/// The client is gone: its blocking request is ended, and its watch given up.
pub fn client_gone(shard: &Rc<Shard>, client: &Rc<ClientState>) {
    peer_closed(shard, client);
    end_watch(shard, client, None, Bytes::new());
}
