//! A client's writer: the completed front of its reply queue in order, in one gathered write,
//! with its pub/sub messages interleaved at reply boundaries.
//!
//! Messages answer no request, so they do not take a place in the reply queue: they wait in
//! the client's [`Subscriber`](super::Subscriber) queue, each marked with the reply it must follow (the last one
//! reserved when it arrived, as a node writes a message after the replies to the commands it
//! has already run). A client that never subscribed pays one flag check per reply here.

use std::rc::Rc;

use bytes::Bytes;

use crate::config::OutputLimit;
use crate::metrics::Counters;
use crate::net::{Stream, WriteBatch};

use super::super::pubsub::subscriber::Refused;
use super::super::slow_requests;
use super::super::Shard;
use super::{ClientState, Pending};

/// Reply frames a client's writer keeps room for between writes (a few dozen small replies).
const KEEP_REPLY_FRAMES: usize = 64;

impl ClientState {
    /// Fills the place `seq` with a reply the proxy made that is sent even when replies are
    /// off (CLIENT REPLY OFF/SKIP): pub/sub confirmations, which Redis sends as pushes.
    pub fn complete_pushing(&self, seq: u64, reply: Bytes) {
        let index = seq.saturating_sub(self.base_seq.get()) as usize;
        if let Some(Pending::Waiting { silent, .. }) = self.replies.borrow_mut().get_mut(index) {
            *silent = false;
        }
        self.complete(seq, reply, None);
    }

    /// Queues a pub/sub message, written after the replies already reserved. `Ok(false)`: the
    /// client is gone or being cut off, nothing queued; `Err`: this message took it past
    /// `limit`, and it is cut off now.
    pub fn push_message(&self, frame: Bytes, limit: &OutputLimit) -> Result<bool, Refused> {
        if self.closed.get() || self.overflowed.get() {
            return Ok(false);
        }
        let after = self.base_seq.get() + self.replies.borrow().len() as u64;
        if let Err(refused) = self.pubsub.push(frame, after, self.unwritten.get(), limit) {
            self.overflowed.set(true);
            self.abort.notify();
            return Err(refused);
        }
        if after <= self.base_seq.get() {
            self.wake_writer.notify();
        }
        Ok(true)
    }
}

/// Writes completed replies in order, all that are ready in one gathered write, each from the
/// buffer the backend's reply was read into.
pub(super) async fn write_loop(shard: &Rc<Shard>, state: &Rc<ClientState>, stream: &Stream) {
    // Allocates on the first reply, not for connections that never ask anything.
    let mut batch = WriteBatch::new(KEEP_REPLY_FRAMES);
    loop {
        let mut now = None;
        while !batch.is_full() {
            // Messages due before the next reply (a flag check for non-subscribers).
            if state.pubsub.has_waiting() && state.pubsub.take_due(state.base_seq.get(), &mut batch)
            {
                continue;
            }
            let reply = {
                let mut replies = state.replies.borrow_mut();
                if matches!(replies.front(), None | Some(Pending::Waiting { .. })) {
                    break;
                }
                let reply = match replies.pop_front() {
                    Some(Pending::Ready {
                        reply,
                        started,
                        request,
                        node,
                    }) => {
                        let now = *now.get_or_insert_with(|| shard.now());
                        let elapsed = now.saturating_duration_since(started);
                        shard.record_latency(elapsed);
                        if shard.slowlog().is_slow(elapsed) {
                            slow_requests::record(shard, state, &request, elapsed, node);
                        }
                        reply
                    }
                    Some(Pending::Push { lines }) => lines,
                    Some(Pending::Waiting { .. }) | None => break,
                };
                state
                    .unwritten
                    .set(state.unwritten.get().saturating_sub(reply.len()));
                state.base_seq.set(state.base_seq.get() + 1);
                reply
            };
            // An empty reply is one not to send: a request Redis does not answer (a second
            // MONITOR), or one CLIENT REPLY silenced.
            if !reply.is_empty() {
                batch.push(reply);
            }
        }
        if !batch.is_empty() {
            let bytes = batch.bytes() as u64;
            if batch.write(stream).await.is_err() {
                return;
            }
            Counters::add(&shard.counters().bytes_out, bytes);
            state.wake_reader.notify();
            continue;
        }
        if state.closing.get() && state.replies.borrow().is_empty() {
            return;
        }
        state.wake_reader.notify();
        state.wake_writer.wait().await;
    }
}
