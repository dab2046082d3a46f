//! MULTI / EXEC / DISCARD without WATCH: percore queues the transaction itself and sends it to
//! the slot's master as one contiguous block, `MULTI`, the commands, `EXEC`, on the core's
//! shared pipelined connection. Pushed onto the connection's queue in one go, nothing of
//! another client can come between them, and a block contiguous on one connection is atomic
//! on the node: it costs no connection of its own.
//!
//! Checks at queue time are Redis's: an unknown command or a wrong arity answers its error and
//! dooms the transaction (`EXECABORT` at EXEC); keys of several slots are queued, and EXEC then
//! answers `CROSSSLOT` without sending anything, exactly as a cluster node owning every slot
//! does. What percore answers itself cannot be queued (the error says so, and dooms the
//! transaction); what it sends to every master otherwise (FLUSHALL, CONFIG SET, ...) runs on
//! the transaction's node, as inside MULTI on one cluster node. Nothing of a refused or
//! aborted transaction runs. What depends on the node's state (OOM, BUSY, LOADING) is only
//! known when the block reaches it: the command was answered QUEUED, and EXEC's EXECABORT
//! names the node's error.
//!
//! A MOVED, ASK, TRYAGAIN or CLUSTERDOWN met while the block is queued on the node means the
//! node refused a command before EXEC, so EXEC aborted and nothing ran: the whole block is sent
//! again to the right node (after ASK, preceded by ASKING, which lasts for the whole block).
//!
//! After WATCH the block goes on the client's WATCH connection instead ([`super::session`]),
//! and is never sent again: a redirect there means a watched slot has moved, so EXEC answers
//! nil, as for a watched key that changed.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use crate::cluster::redirect::{parse_redirect, resolve_node, Redirect};
use crate::cluster::slot::Slot;
use crate::command::keys::FrameArgs;
use crate::command::route::{Command, Dedicated, Local, Rejection, Route};
use crate::command::static_pool;
use crate::error::BackendError;
use crate::metrics::Counters;
use crate::resp::{encode, Protocol};

use super::backend::{Lane, Outbound};
use super::client::ClientState;
use super::dispatch::{error_reply, rejection_reply, MAX_REDIRECTS};
use super::lease::Dedicated as Lease;
use super::pool::Node;
use super::reply_to::{failure, ReplyTo};
use super::session;
use super::Shard;

/// `MULTI`, as the block starts.
const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
/// `EXEC`, as the block ends.
const EXEC: &[u8] = b"*1\r\n$4\r\nEXEC\r\n";
/// Redis's reply to a command queued in a transaction.
const QUEUED: &[u8] = b"+QUEUED\r\n";
/// Redis's reply to EXEC after a queue-time error.
const EXECABORT: &[u8] = b"-EXECABORT Transaction discarded because of previous errors.\r\n";
/// The reply to EXEC of an empty transaction.
const EMPTY: &[u8] = b"*0\r\n";
/// Pause before sending a block again after TRYAGAIN or CLUSTERDOWN.
const RETRY_DELAY: Duration = Duration::from_millis(50);

/// A transaction being queued.
#[derive(Default)]
pub struct Transaction {
    /// The queued requests, in order.
    queued: Vec<Bytes>,
    /// The slot of the first keyed command.
    slot: Option<Slot>,
    /// A command's keys were in another slot than that: EXEC answers CROSSSLOT.
    cross_slot: bool,
    /// A queue-time error: EXEC answers EXECABORT.
    doomed: bool,
    /// A queued command may write (a WRITE pause then holds EXEC).
    writes: bool,
}

impl Transaction {
    /// Whether a queued command may write.
    pub fn writes(&self) -> bool {
        self.writes
    }
}

/// MULTI: starts queueing.
pub fn begin(client: &ClientState) -> Bytes {
    *client.transaction.borrow_mut() = Some(Transaction::default());
    Bytes::from_static(encode::OK)
}

/// Handles a request of a client in a transaction: queues it (answering QUEUED), or ends the
/// transaction (EXEC, DISCARD), or refuses it.
pub fn queue(
    shard: &Rc<Shard>,
    client: &Rc<ClientState>,
    route: Route,
    command: Option<Command>,
    frame: Bytes,
    args: &FrameArgs,
    reply_to: ReplyTo,
) {
    // Blocking commands do not block inside MULTI: route them by their keys.
    let route = match (route, command) {
        (Route::Dedicated(Dedicated::Blocking, _) | Route::AnyMaster, Some(command)) => {
            shard.placer.borrow().route_queued(command, args)
        }
        // PUBLISH and SPUBLISH inside MULTI are the node's own, as any keyless or keyed
        // command (the count of receivers is then the node's).
        (Route::Local(Local::Publish), _) => Route::AnyMaster,
        (Route::Local(Local::SPublish), _) => {
            use crate::command::keys::Args;
            Route::Keyed(shard.placer.borrow().place(args.get(1)))
        }
        (route, _) => route,
    };
    let mut slot_of_request = None;
    let refusal = match route {
        Route::Local(Local::Multi) => {
            return reply_to.deliver(error_reply("ERR MULTI calls can not be nested"));
        }
        Route::Local(Local::Exec) => return exec(shard, client, reply_to),
        Route::Local(Local::Discard) => {
            client.transaction.borrow_mut().take();
            // DISCARD also gives up the client's watches, as in Redis.
            let ok = Bytes::from_static(encode::OK);
            return session::end_watch(shard, client, Some(reply_to), ok);
        }
        Route::Dedicated(Dedicated::Watch, _) => {
            let error = error_reply("ERR WATCH inside MULTI is not allowed");
            return reply_to.deliver(error);
        }
        Route::Reject(Rejection::CrossSlot) | Route::Split(_) => {
            mark(client, |tx| tx.cross_slot = true);
            None
        }
        Route::AnyMaster => None,
        Route::Keyed(slot) | Route::Dedicated(Dedicated::Blocking, slot) => {
            slot_of_request = Some(slot);
            None
        }
        // Queued and run in EXEC by the node, as Redis queues them.
        Route::Local(Local::Ping | Local::Echo | Local::Unwatch) => None,
        // What percore sends to every master outside a transaction runs, inside one, on the
        // transaction's node alone: what MULTI ... EXEC sent to one node of a cluster does.
        Route::AllMasters(_) | Route::Local(Local::ConfigAll | Local::RandomKey) => None,
        Route::Reject(rejection) => Some(rejection_reply(shard, rejection, args)),
        Route::Local(_) => Some(error_reply(&format!(
            "ERR percore: '{}' cannot be part of a transaction through percore (it is answered \
             by percore itself)",
            command.map_or_else(|| "proxy".to_string(), |c| c.full_name())
        ))),
    };
    if let Some(error) = refusal {
        mark(client, |tx| tx.doomed = true);
        return reply_to.deliver(error);
    }
    mark(client, |tx| {
        if let Some(slot) = slot_of_request {
            match tx.slot {
                None => tx.slot = Some(slot),
                Some(first) if first != slot => tx.cross_slot = true,
                Some(_) => {}
            }
        }
        tx.writes |= super::pause::may_write(args);
        tx.queued.push(frame);
    });
    reply_to.deliver(Bytes::from_static(QUEUED));
}

fn mark(client: &ClientState, change: impl FnOnce(&mut Transaction)) {
    if let Some(tx) = client.transaction.borrow_mut().as_mut() {
        change(tx);
    }
}

/// EXEC: answers at once when nothing can run, else sends the block (on the client's WATCH
/// connection if it watches keys).
fn exec(shard: &Rc<Shard>, client: &Rc<ClientState>, reply_to: ReplyTo) {
    let Some(tx) = client.transaction.borrow_mut().take() else {
        return reply_to.deliver(error_reply("ERR EXEC without MULTI"));
    };
    let answer = if tx.doomed {
        Some(Bytes::from_static(EXECABORT))
    } else if tx.cross_slot && shard.config().servers.is_some() {
        Some(error_reply(static_pool::CROSS_SERVER_EXEC))
    } else if tx.cross_slot {
        Some(Bytes::from_static(encode::CROSSSLOT))
    } else {
        None
    };
    if let Some(answer) = answer {
        // As in Redis, EXEC ends the watch whatever it answers.
        return session::end_watch(shard, client, Some(reply_to), answer);
    }
    let lease = match session::is_watching(client) {
        false => None,
        true => match session::exec_lease(shard, client, tx.slot) {
            Some(lease) => Some(lease),
            None => {
                let nil = session::watch_failed(client.identity.protocol());
                return session::end_watch(shard, client, Some(reply_to), nil);
            }
        },
    };
    // Watched, even an empty transaction goes to the node: its EXEC says whether a watched
    // key changed.
    if tx.queued.is_empty() && lease.is_none() {
        return reply_to.deliver(Bytes::from_static(EMPTY));
    }
    let mut block = Vec::with_capacity(tx.queued.len() + 2);
    block.push(Bytes::from_static(MULTI));
    block.extend(tx.queued);
    block.push(Bytes::from_static(EXEC));
    let block = Rc::new(Block {
        shard: shard.clone(),
        frames: block,
        slot: tx.slot,
        protocol: client.identity.protocol(),
        lane: client.identity.lane(),
        reply_to: RefCell::new(Some(reply_to)),
        replies: RefCell::new(Vec::new()),
        redirects: Cell::new(0),
        lease: lease.map(|lease| (lease, client.clone())),
    });
    if let Some((lease, _)) = &block.lease {
        return send_on(&block, lease);
    }
    match shard.node_for(tx.slot) {
        Some(node) => send(shard, &block, &node, false),
        None => block.finish(shard.unserved()),
    }
}

/// A transaction sent as MULTI ... EXEC, waiting for its replies.
pub struct Block {
    /// The core, to send the block again after a redirect.
    shard: Rc<Shard>,
    /// MULTI, the queued requests, EXEC.
    frames: Vec<Bytes>,
    /// The transaction's slot, to find its node again.
    slot: Option<Slot>,
    /// The client's protocol (the block goes on connections of it).
    protocol: Protocol,
    /// The client's lane: its database's connection, or its own connection of the node.
    lane: Lane,
    /// Where EXEC's reply goes; taken when it is delivered.
    reply_to: RefCell<Option<ReplyTo>>,
    /// The replies of the current sending, in order.
    replies: RefCell<Vec<Bytes>>,
    /// Times the block was sent again.
    redirects: Cell<u8>,
    /// The client's WATCH connection the block goes on, and the client, held until EXEC's
    /// reply is in.
    lease: Option<(Rc<Lease>, Rc<ClientState>)>,
}

/// Queues the whole block on one connection to `node`, in one go (so it stays contiguous).
fn send(shard: &Rc<Shard>, block: &Rc<Block>, node: &Node, asking: bool) {
    node.send_all(shard, parts(block, asking));
}

/// Queues the whole block on the client's WATCH connection.
fn send_on(block: &Rc<Block>, lease: &Lease) {
    for out in parts(block, false) {
        lease.conn.send(out);
    }
}

/// The block's frames as requests, for a new sending.
fn parts(block: &Rc<Block>, asking: bool) -> Vec<Outbound> {
    block.replies.borrow_mut().clear();
    let now = std::time::Instant::now();
    let parts = block.frames.iter().enumerate().map(|(index, frame)| {
        let part = ReplyTo::Block {
            block: block.clone(),
            index,
        };
        let mut out =
            Outbound::new(frame.clone(), part, block.slot, block.protocol, now).on(block.lane);
        // ASKING before MULTI lasts for the whole transaction on the node.
        out.asking = asking && index == 0;
        out
    });
    parts.collect()
}

impl Block {
    /// Takes the reply to frame `index`; with the last one, acts on them all.
    pub fn complete(self: &Rc<Self>, index: usize, reply: Bytes) {
        let done = {
            let mut replies = self.replies.borrow_mut();
            if index != replies.len() {
                // A reply of an earlier sending that failed: ignored.
                return;
            }
            replies.push(reply);
            replies.len() == self.frames.len()
        };
        if done {
            let shard = self.shard.clone();
            self.settle(&shard);
        }
    }

    /// All replies are in: a redirect before EXEC sends the block again; otherwise EXEC's
    /// reply is the client's.
    fn settle(self: &Rc<Self>, shard: &Rc<Shard>) {
        let replies = self.replies.take();
        let queued = &replies[..replies.len() - 1];
        let redirect = queued.iter().find_map(|reply| {
            let redirect = parse_redirect(reply)?;
            Some(match redirect {
                Redirect::Moved { slot, node } => Resend::Moved(slot, node.to_string()),
                Redirect::Ask { node, .. } => Resend::Ask(node.to_string()),
                Redirect::TryAgain | Redirect::ClusterDown => Resend::Later,
            })
        });
        let Some(resend) = redirect else {
            let exec = match replies.last() {
                Some(exec) if exec.starts_with(b"-EXECABORT") => naming_the_refusal(queued, exec),
                Some(exec) => exec.clone(),
                None => Bytes::new(),
            };
            return self.finish(exec);
        };
        if let Some((lease, _)) = &self.lease {
            // A watched slot moved: the watch could not see every change, so nil.
            match resend {
                Resend::Moved(slot, node) => {
                    shard.slot_moved(slot, &resolve_node(&node, lease.addr()));
                }
                _ => shard.request_refresh(),
            }
            return self.finish(session::watch_failed(self.protocol));
        }
        if self.redirects.get() >= MAX_REDIRECTS {
            let error = BackendError::TooManyRedirects {
                node: "the transaction's node".into(),
            };
            return self.finish(failure(&error));
        }
        self.redirects.set(self.redirects.get() + 1);
        let from = shard
            .node_for(self.slot)
            .map(|n| n.addr.to_string())
            .unwrap_or_default();
        match resend {
            Resend::Moved(slot, node) => {
                Counters::bump(&shard.counters().moved);
                let node = shard.slot_moved(slot, &resolve_node(&node, &from));
                send(shard, self, &node, false);
            }
            Resend::Ask(node) => {
                Counters::bump(&shard.counters().asked);
                let node = shard.node(&resolve_node(&node, &from));
                send(shard, self, &node, true);
            }
            Resend::Later => {
                let (shard, block) = (shard.clone(), self.clone());
                glommio::spawn_local(async move {
                    glommio::timer::sleep(RETRY_DELAY).await;
                    match shard.node_for(block.slot) {
                        Some(node) => send(&shard, &block, &node, false),
                        None => block.finish(shard.unserved()),
                    }
                })
                .detach();
            }
        }
    }

    fn finish(&self, reply: Bytes) {
        if let Some(reply_to) = self.reply_to.borrow_mut().take() {
            reply_to.deliver(reply);
            if let Some((lease, client)) = &self.lease {
                session::exec_done(&self.shard, client, lease);
            }
        }
    }
}

/// The node's EXECABORT, naming the error the node gave a queued command (OOM, BUSY,
/// LOADING, ...): the client saw QUEUED from percore for it, so EXEC's reply is where it
/// learns why, in the words Redis uses when it refuses EXEC itself.
fn naming_the_refusal(queued: &[Bytes], exec: &Bytes) -> Bytes {
    let refusal = queued.iter().skip(1).find(|reply| reply.starts_with(b"-"));
    let Some(refusal) = refusal else {
        return exec.clone();
    };
    let why = refusal[1..].strip_suffix(b"\r\n").unwrap_or(&refusal[1..]);
    let mut answer = Vec::with_capacity(why.len() + 48);
    answer.extend_from_slice(b"-EXECABORT Transaction discarded because of: ");
    answer.extend_from_slice(why);
    answer.extend_from_slice(b"\r\n");
    Bytes::from(answer)
}

/// Where a refused block goes next.
enum Resend {
    Moved(Slot, String),
    Ask(String),
    Later,
}
