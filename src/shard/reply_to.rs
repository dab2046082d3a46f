//! Where a reply goes: a client's reply place, one part of a request that was split or sent to
//! every master ([`SplitReply`], which merges the parts when all are back), a request on a
//! dedicated connection that handles its own redirects (WATCH, a blocking command), or nowhere
//! (the reply to the proxy's own ASKING).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;

use crate::command::fanout::{merge_all, merge_split};
use crate::command::route::{Merge, SplitKind};
use crate::error::BackendError;
use crate::sync::Signal;

use super::blocked::Blocked;
use super::client::ClientState;
use super::dispatch::error_reply;
use super::session::WatchReply;
use super::transaction::Block;

/// Where a reply goes.
pub enum ReplyTo {
    /// A client's reply place.
    Client {
        /// The client.
        client: Rc<ClientState>,
        /// Its reply place.
        seq: u64,
    },
    /// One part of a split or broadcast request.
    Part {
        /// The request being assembled.
        whole: Rc<SplitReply>,
        /// Which part.
        index: usize,
    },
    /// The proxy itself, waiting for the reply in a task (INFO from every master, ...).
    Waiter(Rc<ReplyWaiter>),
    /// One frame of a transaction's MULTI ... EXEC block, which handles redirects itself.
    Block {
        /// The block.
        block: Rc<Block>,
        /// Which frame.
        index: usize,
    },
    /// A WATCH on the client's dedicated connection: a redirect breaks the watch.
    Watch(Rc<WatchReply>),
    /// A blocking command on a dedicated connection: a redirect sends it to the new owner.
    Blocked(Rc<Blocked>),
    /// Nowhere (the reply to the proxy's own ASKING).
    Discard,
}

impl ReplyTo {
    /// Delivers a reply the proxy made.
    pub fn deliver(self, reply: Bytes) {
        self.deliver_from(reply, None);
    }

    /// Delivers the reply that `node` gave (`None`: the proxy made it), which the slow log
    /// names.
    pub fn deliver_from(self, reply: Bytes, node: Option<&Rc<str>>) {
        match self {
            ReplyTo::Client { client, seq } => client.complete(seq, reply, node.cloned()),
            ReplyTo::Part { whole, index } => whole.complete(index, reply, node),
            ReplyTo::Waiter(waiter) => waiter.fill(reply),
            ReplyTo::Block { block, index } => block.complete(index, reply),
            ReplyTo::Watch(watch) => watch.deliver(reply, node),
            ReplyTo::Blocked(blocked) => blocked.deliver(reply, node),
            ReplyTo::Discard => {}
        }
    }

    /// Whether a MOVED/ASK/TRYAGAIN reply is followed by the backend (resending this one
    /// request), rather than delivered: a transaction's block sends itself again as a whole,
    /// and what needs a dedicated connection must never be resent on a shared one.
    pub fn follows_redirects(&self) -> bool {
        !matches!(
            self,
            ReplyTo::Block { .. } | ReplyTo::Watch(_) | ReplyTo::Blocked(_)
        )
    }

    /// Delivers an error reply.
    pub fn fail(self, error: &BackendError) {
        self.deliver(error_reply(&format!("ERR percore: {error}")));
    }
}

/// A reply the proxy waits for itself. It always comes: a node that fails or times out
/// answers with an error reply, so the wait is bounded by `--backend-timeout`.
#[derive(Default)]
pub struct ReplyWaiter {
    reply: RefCell<Option<Bytes>>,
    arrived: Signal,
}

impl ReplyWaiter {
    fn fill(&self, reply: Bytes) {
        *self.reply.borrow_mut() = Some(reply);
        self.arrived.notify();
    }

    /// The reply, once it has come.
    pub async fn reply(&self) -> Bytes {
        loop {
            if let Some(reply) = self.reply.borrow_mut().take() {
                return reply;
            }
            self.arrived.wait().await;
        }
    }
}

/// How a split request's parts become one reply.
pub enum MergeKind {
    /// Split by slot: merged per the split's kind, MGET values put back in key order.
    Split(SplitKind, Vec<(u32, u32)>),
    /// Sent to every master: merged per `Merge`.
    All(Merge),
}

/// A request sent as several parts, waiting for all of them.
pub struct SplitReply {
    /// Where the merged reply goes; taken when it is delivered.
    reply_to: RefCell<Option<ReplyTo>>,
    kind: MergeKind,
    /// Each part's reply, in part order, as they arrive.
    parts: RefCell<Vec<Bytes>>,
    /// Parts still to come.
    remaining: Cell<usize>,
    /// The node of the part that came last, which the merged reply waited for.
    last_node: RefCell<Option<Rc<str>>>,
}

impl SplitReply {
    /// Waits for `parts` replies, then delivers their merge to `reply_to`.
    pub fn new(reply_to: ReplyTo, kind: MergeKind, parts: usize) -> Rc<SplitReply> {
        Rc::new(SplitReply {
            reply_to: RefCell::new(Some(reply_to)),
            kind,
            parts: RefCell::new(vec![Bytes::new(); parts]),
            remaining: Cell::new(parts),
            last_node: RefCell::new(None),
        })
    }

    fn complete(&self, index: usize, reply: Bytes, node: Option<&Rc<str>>) {
        if let Some(part) = self.parts.borrow_mut().get_mut(index) {
            *part = reply;
        }
        if node.is_some() {
            *self.last_node.borrow_mut() = node.cloned();
        }
        self.remaining.set(self.remaining.get().saturating_sub(1));
        if self.remaining.get() > 0 {
            return;
        }
        let parts = self.parts.take();
        let merged = match &self.kind {
            MergeKind::Split(kind, order) => merge_split(*kind, order, &parts),
            MergeKind::All(merge) => merge_all(*merge, &parts),
        };
        if let Some(reply_to) = self.reply_to.borrow_mut().take() {
            reply_to.deliver_from(merged, self.last_node.borrow().as_ref());
        }
    }
}
