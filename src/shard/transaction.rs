//! MULTI / EXEC / DISCARD without WATCH: percore queues the transaction itself and sends it to
//! the slot's master as one contiguous block, `MULTI`, the commands, `EXEC`, on the core's
//! shared pipelined connection. Pushed onto the connection's queue in one go, nothing of
//! another client can come between them, and a block contiguous on one connection is atomic
//! on the node: it costs no connection of its own.
//!
//! Checks at queue time are Redis's: an unknown command or a wrong arity answers its error and
//! dooms the transaction (`EXECABORT` at EXEC); keys of several slots are queued, and EXEC then
//! answers `CROSSSLOT` without sending anything, exactly as a cluster node owning every slot
//! does. What percore answers itself and what runs on every master cannot be queued (the error
//! says so, and dooms the transaction). Nothing of a refused or aborted transaction runs.
//!
//! A MOVED, ASK, TRYAGAIN or CLUSTERDOWN met while the block is queued on the node means the
//! node refused a command before EXEC, so EXEC aborted and nothing ran: the whole block is sent
//! again to the right node (after ASK, preceded by ASKING, which lasts for the whole block).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use crate::cluster::redirect::{parse_redirect, resolve_node, Redirect};
use crate::cluster::slot::Slot;
use crate::command::route::{Command, Local, Rejection, Route};
use crate::error::BackendError;
use crate::metrics::Counters;
use crate::resp::{encode, Protocol};

use super::backend::Outbound;
use super::client::ClientState;
use super::dispatch::{error_reply, rejection_reply, FrameArgs, MAX_REDIRECTS};
use super::pool::Node;
use super::reply_to::ReplyTo;
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
    client: &ClientState,
    route: Route,
    command: Option<Command>,
    frame: Bytes,
    args: &FrameArgs,
    reply_to: ReplyTo,
) {
    // Blocking commands do not block inside MULTI: route them by their keys.
    let route = match (route, command) {
        (Route::Reject(Rejection::Unsupported(_)), Some(command)) => {
            crate::command::route::route_queued(command, args)
        }
        // PUBLISH and SPUBLISH inside MULTI are the node's own, as any keyless or keyed
        // command (the count of receivers is then the node's).
        (Route::Local(Local::Publish), _) => Route::AnyMaster,
        (Route::Local(Local::SPublish), _) => {
            use crate::command::keys::Args;
            Route::Keyed(Slot::for_key(args.get(1)))
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
            return reply_to.deliver(Bytes::from_static(encode::OK));
        }
        Route::Reject(Rejection::Unsupported(_)) if is_watch(args) => {
            let error = error_reply("ERR WATCH inside MULTI is not allowed");
            return reply_to.deliver(error);
        }
        Route::Reject(Rejection::CrossSlot) | Route::Split(_) => {
            mark(client, |tx| tx.cross_slot = true);
            None
        }
        Route::AnyMaster => None,
        Route::Keyed(slot) => {
            slot_of_request = Some(slot);
            None
        }
        Route::Local(Local::Ping | Local::Echo) => None,
        Route::Reject(rejection) => Some(rejection_reply(shard, rejection, args)),
        Route::AllMasters(_) | Route::Local(_) => Some(error_reply(&format!(
            "ERR percore: '{}' cannot be part of a transaction through percore (it is answered \
             by percore itself or runs on every master)",
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
        tx.queued.push(frame);
    });
    reply_to.deliver(Bytes::from_static(QUEUED));
}

fn is_watch(args: &FrameArgs) -> bool {
    use crate::command::keys::Args;
    args.get(0).eq_ignore_ascii_case(b"watch")
}

fn mark(client: &ClientState, change: impl FnOnce(&mut Transaction)) {
    if let Some(tx) = client.transaction.borrow_mut().as_mut() {
        change(tx);
    }
}

/// EXEC: answers at once when nothing can run, else sends the block.
fn exec(shard: &Rc<Shard>, client: &ClientState, reply_to: ReplyTo) {
    let Some(tx) = client.transaction.borrow_mut().take() else {
        return reply_to.deliver(error_reply("ERR EXEC without MULTI"));
    };
    if tx.doomed {
        return reply_to.deliver(Bytes::from_static(EXECABORT));
    }
    if tx.cross_slot {
        return reply_to.deliver(Bytes::from_static(encode::CROSSSLOT));
    }
    if tx.queued.is_empty() {
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
        reply_to: RefCell::new(Some(reply_to)),
        replies: RefCell::new(Vec::new()),
        redirects: Cell::new(0),
    });
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
    /// Where EXEC's reply goes; taken when it is delivered.
    reply_to: RefCell<Option<ReplyTo>>,
    /// The replies of the current sending, in order.
    replies: RefCell<Vec<Bytes>>,
    /// Times the block was sent again.
    redirects: Cell<u8>,
}

/// Queues the whole block on one connection to `node`, in one go (so it stays contiguous).
fn send(shard: &Rc<Shard>, block: &Rc<Block>, node: &Node, asking: bool) {
    block.replies.borrow_mut().clear();
    let now = std::time::Instant::now();
    let parts = block.frames.iter().enumerate().map(|(index, frame)| {
        let part = ReplyTo::Block {
            block: block.clone(),
            index,
        };
        let mut out = Outbound::new(frame.clone(), part, block.slot, block.protocol, now);
        // ASKING before MULTI lasts for the whole transaction on the node.
        out.asking = asking && index == 0;
        out
    });
    node.send_all(shard, parts.collect());
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
            let exec = replies.into_iter().last().unwrap_or_default();
            return self.finish(exec);
        };
        if self.redirects.get() >= MAX_REDIRECTS {
            let error = BackendError::TooManyRedirects {
                node: "the transaction's node".into(),
            };
            return self.finish(error_reply(&format!("ERR percore: {error}")));
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
        }
    }
}

/// Where a refused block goes next.
enum Resend {
    Moved(Slot, String),
    Ask(String),
    Later,
}
