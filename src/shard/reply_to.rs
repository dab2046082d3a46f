//! Where a reply goes: a client's reply place, one part of a request that was split or sent to
//! every master ([`SplitReply`], which merges the parts when all are back), a request on a
//! dedicated connection that handles its own redirects (WATCH, a blocking command), a
//! background write whose client has had its `+OK` already, or nowhere (the reply to the
//! proxy's own ASKING).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::Bytes;

use crate::command::fanout::{merge_all, merge_split};
use crate::command::fixed_reply::FixedWrite;
use crate::command::route::{Merge, SplitKind};
use crate::command::tally::Tally;
use crate::sync::Signal;

use super::blocked::Blocked;
use super::client::ClientState;
use super::dispatch::error_reply;
use super::session::WatchReply;
use super::sidecar::background;
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
    /// A background write (`async_writes`): its client has had `+OK`; the reply is counted
    /// (sent or failed) and the client's count of background writes waiting goes down.
    Background {
        /// The client that sent it.
        client: Rc<ClientState>,
        /// Its length, which the core's bound counts.
        bytes: u32,
        /// Which command it is, for the logs.
        kind: FixedWrite,
        /// The server lists keys had been placed over when it was acknowledged
        /// (`background::Writes::placement`): one placed before a reload's new list is not
        /// routed again under it.
        placement: u16,
    },
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
            ReplyTo::Background {
                client,
                bytes,
                kind,
                ..
            } => background::settle(&client, (bytes, kind), &reply, node),
            ReplyTo::Discard => {}
        }
    }

    /// The client of a background write (or of one's part), if this is one: such a request
    /// is kept and sent again when its connection fails, rather than failed.
    pub fn background_client(&self) -> Option<&Rc<ClientState>> {
        match self {
            ReplyTo::Background { client, .. } => Some(client),
            ReplyTo::Part { whole, .. } => whole.background_client(),
            _ => None,
        }
    }

    /// For a background write (or a part of one), the server lists keys had been placed
    /// over when it was acknowledged.
    pub fn background_placement(&self) -> Option<u16> {
        match self {
            ReplyTo::Background { placement, .. } => Some(*placement),
            ReplyTo::Part { whole, .. } => whole.background_placement(),
            _ => None,
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

    /// Delivers the reply `node` gave (`None`: the proxy made it) to the request whose frame
    /// is `request`: a client's reply place keeps the frame for the slow log, where it was
    /// not kept already ([`ClientState::keep_request`]).
    pub fn answer(self, reply: Bytes, node: Option<&Rc<str>>, request: Bytes) {
        match self {
            ReplyTo::Client { client, seq } => {
                client.complete_request(seq, reply, node.cloned(), request)
            }
            other => other.deliver_from(reply, node),
        }
    }
}

/// The reply to a request that failed with `error` (a backend's failure, or the reason the
/// proxy could not send it).
pub fn failure(error: &impl std::fmt::Display) -> Bytes {
    error_reply(&format!("ERR percore: {error}"))
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

/// The replies a [`SplitReply`]'s parts have given so far.
enum Gathered {
    /// Each part's reply, in part order, as they arrive: for the merges that need them all
    /// (MGET's values, replies compared or joined).
    Replies(Vec<Bytes>),
    /// Folded as they arrive (MSET's OKs, counts): nothing kept.
    Tally(Tally),
}

/// A request sent as several parts, waiting for all of them.
pub struct SplitReply {
    /// Where the merged reply goes; taken when it is delivered.
    reply_to: RefCell<Option<ReplyTo>>,
    kind: MergeKind,
    /// The parts' replies so far.
    gathered: RefCell<Gathered>,
    /// Parts still to come.
    remaining: Cell<usize>,
    /// The node of the part that came last, which the merged reply waited for.
    last_node: RefCell<Option<Rc<str>>>,
    /// The client, when the whole is a background write (its parts are kept and sent again
    /// when their connection fails).
    background: Option<Rc<ClientState>>,
}

impl SplitReply {
    /// Waits for `parts` replies, then delivers their merge to `reply_to`.
    pub fn new(reply_to: ReplyTo, kind: MergeKind, parts: usize) -> Rc<SplitReply> {
        let background = reply_to.background_client().cloned();
        let tally = match &kind {
            MergeKind::Split(SplitKind::Mget, _) => None,
            MergeKind::Split(SplitKind::Mset, _) => Tally::new(Merge::AllOk),
            MergeKind::Split(SplitKind::Count, _) => Tally::new(Merge::Sum),
            MergeKind::All(merge) => Tally::new(*merge),
        };
        let gathered = match tally {
            Some(tally) => Gathered::Tally(tally),
            None => Gathered::Replies(vec![Bytes::new(); parts]),
        };
        Rc::new(SplitReply {
            background,
            reply_to: RefCell::new(Some(reply_to)),
            kind,
            gathered: RefCell::new(gathered),
            remaining: Cell::new(parts),
            last_node: RefCell::new(None),
        })
    }

    /// The client whose background write this is, if it is one.
    fn background_client(&self) -> Option<&Rc<ClientState>> {
        self.background.as_ref()
    }

    /// The placement the whole was acknowledged under, if it is a background write whose
    /// merged reply is still to come.
    fn background_placement(&self) -> Option<u16> {
        let whole = self.reply_to.borrow();
        whole.as_ref().and_then(ReplyTo::background_placement)
    }

    fn complete(&self, index: usize, reply: Bytes, node: Option<&Rc<str>>) {
        match &mut *self.gathered.borrow_mut() {
            Gathered::Replies(replies) => {
                if let Some(part) = replies.get_mut(index) {
                    *part = reply;
                }
            }
            Gathered::Tally(tally) => tally.add(index, reply),
        }
        if node.is_some() {
            *self.last_node.borrow_mut() = node.cloned();
        }
        self.remaining.set(self.remaining.get().saturating_sub(1));
        if self.remaining.get() > 0 {
            return;
        }
        let gathered = self.gathered.replace(Gathered::Replies(Vec::new()));
        let merged = match (gathered, &self.kind) {
            (Gathered::Tally(tally), _) => tally.finish(),
            (Gathered::Replies(parts), MergeKind::Split(kind, order)) => {
                merge_split(*kind, order, &parts)
            }
            (Gathered::Replies(parts), MergeKind::All(merge)) => merge_all(*merge, &parts),
        };
        if let Some(reply_to) = self.reply_to.borrow_mut().take() {
            reply_to.deliver_from(merged, self.last_node.borrow().as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_background_write_s_reply_place_is_no_bigger_than_a_client_s() {
        // Every request carries one: background writes must not make them all bigger.
        assert!(
            std::mem::size_of::<ReplyTo>() <= 24,
            "{}",
            std::mem::size_of::<ReplyTo>()
        );
    }
}
