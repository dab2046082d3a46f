//! `SCAN` over every master, as one scan. Each call runs as a task of its own: it asks the
//! master the client's cursor names for a page, on the shared backend connections, and gives
//! the client that page with the cursor rewritten (`command::cursor` has the encoding and
//! the order of the masters). Later replies to the client wait behind it like behind any
//! backend reply.

use std::rc::Rc;

use bytes::Bytes;

use crate::cluster::slot::Slot;
use crate::command::cursor::{self, NodeRequest, Position, Step};
use crate::command::keys::{Args, FrameArgs};
use crate::resp::Protocol;

use super::backend::Lane;
use super::dispatch::error_reply;
use super::reply_to::ReplyTo;
use super::sidecar::select;
use super::Shard;

/// Redis's reply to a cursor that is not one (percore's too, to one naming a slot no master
/// serves).
const INVALID_CURSOR: &[u8] = b"-ERR invalid cursor\r\n";

/// The reply Redis Cluster gives when no master is known.
const CLUSTERDOWN: &[u8] = b"-CLUSTERDOWN Hash slot not served\r\n";

/// Masters one call may go through when each one's last page comes back empty, before it
/// answers with the next master's cursor. Each is one more round trip inside the call, so this
/// bounds a call's wait to a few round trips, while an empty (or, with MATCH or TYPE, sparse)
/// cluster of up to this many masters is still done in one call instead of one per master.
const EMPTY_MASTERS_PER_CALL: usize = 8;

/// `SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]`, of the database of `lane`.
pub fn scan(
    shard: &Rc<Shard>,
    args: &FrameArgs,
    protocol: Protocol,
    lane: Lane,
    reply_to: ReplyTo,
) {
    let Some(client_cursor) = cursor::parse(args.get(1)) else {
        return reply_to.deliver(Bytes::from_static(INVALID_CURSOR));
    };
    let (slot, node_cursor) = match cursor::decode(client_cursor) {
        Position::Start => match shard.first_scan_master() {
            Some(slot) => (slot, 0),
            None => return reply_to.deliver(Bytes::from_static(CLUSTERDOWN)),
        },
        Position::At { slot, node_cursor } => (slot, node_cursor),
    };
    if shard.node_for(Some(slot)).is_none() {
        return reply_to.deliver(Bytes::from_static(INVALID_CURSOR));
    }
    let request = NodeRequest::new(args);
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let reply = pages(&shard, &request, (slot, node_cursor), protocol, lane).await;
        reply_to.deliver(reply);
    })
    .detach();
}

/// Asks the master serving `slot` for the page at `node_cursor`, going on to the next masters
/// while their last pages are empty (at most [`EMPTY_MASTERS_PER_CALL`]); the client's reply.
async fn pages(
    shard: &Rc<Shard>,
    request: &NodeRequest,
    (mut slot, mut node_cursor): (Slot, u64),
    protocol: Protocol,
    lane: Lane,
) -> Bytes {
    let mut masters = 0;
    loop {
        // Looked up again for every master: the slot map may have changed during the wait.
        let Some(node) = shard.node_for(Some(slot)) else {
            return Bytes::from_static(INVALID_CURSOR);
        };
        let page = request.with_cursor(node_cursor);
        let reply = select::ask_on(shard, &node, page, protocol, lane).await;
        let Some((returned, keys)) = cursor::split_reply(&reply) else {
            return not_a_page(&node.addr, reply);
        };
        masters += 1;
        let next = match shard.scan_step(slot, returned) {
            Ok(Step::More(client_cursor)) => return cursor::page(client_cursor, keys),
            Ok(Step::Done) => return cursor::page(0, keys),
            Ok(Step::NextMaster(next)) => next,
            Err(overflow) => {
                return error_reply(&format!("ERR percore: node {}: {overflow}", node.addr))
            }
        };
        if !cursor::is_empty_page(keys) || masters == EMPTY_MASTERS_PER_CALL {
            // The next master's highest slot is above this one's, so this is never 0.
            return cursor::page(cursor::start_of(next), keys);
        }
        slot = next;
        node_cursor = 0;
    }
}

/// The client's reply to a node's answer that is not a page: the node's own error as it is
/// (a bad COUNT, TYPE, ..., or percore's error naming the node when it failed), else an error
/// naming the node.
fn not_a_page(node: &str, reply: Bytes) -> Bytes {
    if reply.first() == Some(&b'-') {
        return reply;
    }
    error_reply(&format!(
        "ERR percore: node {node} answered SCAN with something other than a page"
    ))
}
