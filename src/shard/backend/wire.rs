//! The two loops of one backend connection: the writer sends what the core's clients queued,
//! as many requests as one gathered write takes, and the reader hands each reply to the
//! request it answers, first in, first out (Redis answers in order on a connection). Apart
//! from `backend`, which connects, greets and restarts a connection, because these are what
//! every request and reply goes through.

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use crate::cluster::redirect::parse_redirect;
use crate::error::BackendError;
use crate::net::{FrameReader, Stream, Uring, WriteBatch, MAX_FRAMES, READ_CHUNK};
use crate::resp::encode;
use crate::resp::scan::ReplyScanner;

use super::super::reply_to::ReplyTo;
use super::super::sidecar::background;
use super::super::{dispatch, eject, Shard};
use super::queue::Waiting;
use super::replica;
use super::{Backend, Outbound, HOLD_BATCH, HOLD_ROUNDS, READ_BUFFER};

/// Writes queued requests, all that are queued in one gathered write, each from the client's
/// own buffer.
pub(super) async fn write_requests(
    backend: &Backend,
    stream: &Stream,
    uring: &Uring,
) -> BackendError {
    let mut batch = WriteBatch::new(MAX_FRAMES);
    loop {
        if backend.waiting.borrow().all_written() {
            backend.waiting.borrow_mut().shrink_if_idle();
            backend.wake_writer.wait().await;
            // Hold the write while the core's rounds still bring in requests, so one write
            // carries a client burst rather than its first few requests: each write wakes a
            // sleeping redis-server, and at -P 1 that wake-up is most of what it costs it.
            for _ in 0..HOLD_ROUNDS {
                if uring.caught_up() || backend.waiting.borrow().unwritten() >= HOLD_BATCH {
                    break;
                }
                uring.next_round().await;
            }
            continue;
        }
        fill(&mut batch, &mut backend.waiting.borrow_mut(), uring.now());
        if let Err(e) = batch.write(stream).await {
            return BackendError::Lost {
                node: backend.addr.to_string(),
                reason: e.to_string(),
            };
        }
    }
}

/// Puts the oldest requests not written yet into `batch`, as many as it takes, each counted
/// as written at `now` (for the timeout watchdog).
fn fill(batch: &mut WriteBatch, waiting: &mut Waiting, now: Instant) {
    while !batch.is_full() {
        let Some(out) = waiting.write_next() else {
            return;
        };
        out.sent = now;
        if out.asking {
            // ASKING goes on the wire first; its reply is percore's own business.
            let (request, protocol) = (out.request.clone(), out.protocol);
            batch.push(Bytes::from_static(encode::ASKING));
            batch.push(request);
            let asking = Outbound::new(Bytes::new(), ReplyTo::Discard, None, protocol, now);
            waiting.write_before_last(asking);
            continue;
        }
        batch.push(out.request.clone());
    }
}

/// Reads replies and hands each to the request it answers.
pub(super) async fn read_replies(
    shard: &Rc<Shard>,
    backend: &Backend,
    stream: &Stream,
) -> BackendError {
    let lost = |reason: String| BackendError::Lost {
        node: backend.addr.to_string(),
        reason,
    };
    let mut reader = FrameReader::new(READ_BUFFER, READ_CHUNK / 4);
    let mut scanner = ReplyScanner::new();
    // The first reply shows the node answers: a static pool in cache mode forgets its
    // failures (nutcracker's `server_ok`): told once per connection, not per reply.
    let mut answered = false;
    loop {
        let reply = match reader.next(stream, |buf| scanner.scan(buf)).await {
            Ok(reply) => reply,
            Err(e) => return lost(e.to_string()),
        };
        if reader.is_drained() {
            // Caught up with the node: a good moment to give back what a burst grew.
            backend.waiting.borrow_mut().shrink_if_idle();
        }
        if reply.first() == Some(&b'>') {
            // A RESP3 push is not the reply to a request; none is expected on a shared
            // connection, and it must not be taken for the next request's reply.
            debug!(node = %backend.addr, "push message on a shared connection dropped");
            continue;
        }
        let Some(out) = backend.waiting.borrow_mut().answered() else {
            return lost("reply to no request".into());
        };
        if !answered {
            answered = true;
            eject::backend_answered(shard, &backend.addr);
        }
        // ASKING's reply is percore's own business, as its request was (not counted either).
        if !out.request.is_empty() {
            backend.counters.response(reply.len());
        }
        let out = match reply.first() == Some(&b'-') && out.reply_to.follows_redirects() {
            false => out,
            true => {
                if backend.refuses_read(&out, &reply) {
                    replica::refused(shard, &backend.addr, out, reply);
                    continue;
                }
                if let Some(redirect) = parse_redirect(&reply) {
                    dispatch::redirect(shard, &backend.addr, out, redirect, &reply);
                    continue;
                }
                // A background write met a server still loading its data: sent again soon.
                match background::unless_loading(shard, &reply, out) {
                    Some(out) => out,
                    None => continue,
                }
            }
        };
        out.answer(reply, Some(&backend.addr));
    }
}
