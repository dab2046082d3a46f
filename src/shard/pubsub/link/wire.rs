//! The connection task of a [`Link`]: connect (AUTH, then CLIENT SETNAME, go first), write the
//! queued commands, read the node's frames and act on each (a message for the hub, a
//! confirmation for the oldest command, MOVED or an unprompted `sunsubscribe` for a sharded
//! channel that moved), and notice a node that stopped answering.
//!
//! AUTH is pipelined with what follows rather than awaited alone: if the node refuses it, a
//! SUBSCRIBE behind it either fails too (the node wants a password) or subscribes harmlessly
//! (it wants none), and the connection is remade either way.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tracing::{debug, info, warn};

use crate::cluster::redirect::{parse_redirect, resolve_node, Redirect};
use crate::cluster::slot::Slot;
use crate::command::pubsub::Kind;
use crate::error::BackendError;
use crate::metrics::Counters;
use crate::net::{connect_node, FrameReader, Stream, READ_CHUNK};
use crate::resp::push::{elements, Element};
use crate::resp::scan::ReplyScanner;

use super::super::super::Shard;
use super::{Hold, Link, Op, State, Verb};

/// First reconnect delay after a failure; doubled on each further failure.
const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// Longest reconnect delay: a node that comes back is subscribed again within this time.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// A link with nothing in flight sends PING this often, so a node that stopped answering is
/// found within this plus `--backend-timeout`, not only when it closes the socket.
const PING_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps `link` connected while the hub needs it; ends when it holds nothing.
pub async fn run(shard: Rc<Shard>, link: Rc<Link>) {
    let core = shard.id();
    let mut backoff = MIN_BACKOFF;
    let mut failures = 0u32;
    loop {
        // Read again for each connection: a reload changes them for the next one.
        let timeout = shard.config().backend_timeout;
        let error = match open(&shard, &link, timeout).await {
            Ok(stream) => {
                if failures > 0 {
                    info!(core, pool = shard.pool_name(), node = %link.addr, failures, "pub/sub connection re-established");
                }
                backoff = MIN_BACKOFF;
                failures = 0;
                link.enqueue_single(Verb::SetName, true);
                if shard.config().backend_auth.is_some() {
                    // Before anything else: a node that refuses it fails the connection.
                    link.enqueue_single(Verb::Auth, true);
                }
                // Everything this node should hold is asked for again.
                shard.pubsub.mark_dirty(&shard);
                match serve(&shard, &link, &stream, timeout).await {
                    Ok(()) => return,
                    Err(error) => error,
                }
            }
            Err(error) => error,
        };
        failures += 1;
        warn!(core, pool = shard.pool_name(), node = %link.addr, %error, failures, "pub/sub connection failed");
        Counters::bump(&shard.counters().backend_failures);
        link.fail();
        shard.request_refresh();
        glommio::timer::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if !shard.pubsub.wants(&shard, &link.addr) {
            link.end_gap(&shard, "moved to other nodes");
            shard.pubsub.forget_link(&link);
            debug!(core, node = %link.addr, "pub/sub connection no longer needed");
            return;
        }
        link.state.set(State::Open);
    }
}

/// Connects (AUTH goes first on the connection, as a command of its own).
async fn open(shard: &Shard, link: &Link, timeout: Duration) -> Result<Stream, BackendError> {
    let config = shard.config();
    connect_node(
        shard.uring(),
        &link.addr,
        timeout,
        config.backend_tls.as_ref(),
    )
    .await
    .map_err(|err| BackendError::Connect {
        node: link.addr.to_string(),
        reason: err.to_string(),
    })
}

/// Runs one connection: `Ok` when the link closed because nothing needs it, else why it
/// failed.
async fn serve(
    shard: &Rc<Shard>,
    link: &Rc<Link>,
    stream: &Stream,
    timeout: Duration,
) -> Result<(), BackendError> {
    let reader = read_frames(shard, link, stream);
    let writer = write_commands(shard, link, stream);
    let watch = watch(shard, link, timeout);
    futures_lite::future::or(reader, futures_lite::future::or(writer, watch)).await
}

/// Writes queued commands, all that are queued at once.
async fn write_commands(shard: &Shard, link: &Link, stream: &Stream) -> Result<(), BackendError> {
    let config = shard.config();
    let auth = config.backend_auth.as_ref();
    let auth = auth.map(|a| (a.user.as_deref(), a.password.as_str()));
    let mut out = BytesMut::new();
    loop {
        if link.queue.borrow().is_empty() {
            link.wake_writer.wait().await;
            continue;
        }
        out.clear();
        let now = Instant::now();
        while let Some(op) = link.queue.borrow_mut().pop_front() {
            op.encode(&mut out, auth);
            op.sent.set(Some(now));
            link.inflight.borrow_mut().push_back(op);
        }
        stream
            .write_all(&out)
            .await
            .map_err(|e| BackendError::Lost {
                node: link.addr.to_string(),
                reason: e.to_string(),
            })?;
    }
}

/// Fails the connection when a command waits longer than `timeout`, pings a quiet one, and
/// closes the link once it holds nothing.
async fn watch(shard: &Shard, link: &Link, timeout: Duration) -> Result<(), BackendError> {
    let period = (timeout / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
    let mut quiet = Duration::ZERO;
    loop {
        glommio::timer::sleep(period).await;
        let oldest = link.inflight.borrow().front().and_then(|op| op.sent.get());
        if oldest.is_some_and(|sent| sent.elapsed() > timeout) {
            return Err(BackendError::Timeout {
                node: link.addr.to_string(),
            });
        }
        if link.is_idle() {
            link.end_gap(shard, "no longer needed on this node");
            shard.pubsub.forget_link(link);
            debug!(core = shard.id(), node = %link.addr, "pub/sub connection closed: holds nothing");
            return Ok(());
        }
        quiet = if link.heard.replace(false) {
            Duration::ZERO
        } else {
            quiet + period
        };
        if quiet >= PING_INTERVAL && link.inflight.borrow().is_empty() {
            quiet = Duration::ZERO;
            link.enqueue_single(Verb::Ping, false);
        }
    }
}

/// Read buffer a link starts with; it grows for large frames.
const READ_BUFFER: usize = 16 * 1024;

/// Reads frames and acts on each.
async fn read_frames(shard: &Rc<Shard>, link: &Link, stream: &Stream) -> Result<(), BackendError> {
    let lost = |reason: String| BackendError::Lost {
        node: link.addr.to_string(),
        reason,
    };
    let mut reader = FrameReader::new(READ_BUFFER, READ_CHUNK / 4);
    let mut scanner = ReplyScanner::new();
    loop {
        let frame = reader
            .next(stream, |buf| scanner.scan(buf))
            .await
            .map_err(|e| lost(e.to_string()))?;
        link.heard.set(true);
        handle(shard, link, &frame).map_err(|why| lost(why.into()))?;
    }
}

/// Acts on one frame from the node. An `Err` means the frames no longer match the commands
/// sent, and the connection must be remade.
fn handle(shard: &Rc<Shard>, link: &Link, frame: &Bytes) -> Result<(), &'static str> {
    if frame.first() == Some(&b'-') {
        return handle_error(shard, link, frame);
    }
    let Some(parsed) = elements(frame) else {
        // `+OK` to SETNAME, `+PONG` to a PING sent while nothing was subscribed.
        return answer(shard, link, None, None);
    };
    let items = parsed.get();
    let word = items.first().and_then(|e| e.bulk()).unwrap_or_default();
    let bulk = |i: usize| items.get(i).and_then(|e| e.bulk());
    let hub = &shard.pubsub;
    match (word, items.len()) {
        (b"message", 3) => hub.deliver(shard, link, frame, Kind::Channel, bulk(1), bulk(1)),
        (b"pmessage", 4) => hub.deliver(shard, link, frame, Kind::Pattern, bulk(1), bulk(2)),
        (b"smessage", 3) => hub.deliver(shard, link, frame, Kind::Shard, bulk(1), bulk(1)),
        (b"pong", 2) => return answer(shard, link, None, None),
        (word, 3) => {
            let name = match items[1] {
                Element::Bulk(name) => Some(name),
                _ => None,
            };
            let verb = match word {
                b"subscribe" => Verb::Subscribe(Kind::Channel),
                b"psubscribe" => Verb::Subscribe(Kind::Pattern),
                b"ssubscribe" => Verb::Subscribe(Kind::Shard),
                b"unsubscribe" => Verb::Unsubscribe(Kind::Channel),
                b"punsubscribe" => Verb::Unsubscribe(Kind::Pattern),
                b"sunsubscribe" => Verb::Unsubscribe(Kind::Shard),
                _ => return Err("unexpected frame"),
            };
            if verb == Verb::Unsubscribe(Kind::Shard) && !answers_front(link, verb, name) {
                if let Some(name) = name {
                    slot_left(shard, link, name);
                }
                return Ok(());
            }
            return answer(shard, link, Some(verb), name);
        }
        _ => return Err("unexpected frame"),
    }
    Ok(())
}

/// Whether a confirmation of `verb` for `name` is the next one the oldest command expects.
fn answers_front(link: &Link, verb: Verb, name: Option<&[u8]>) -> bool {
    let inflight = link.inflight.borrow();
    let Some(op) = inflight.front() else {
        return false;
    };
    let names = op.names.borrow();
    op.verb == verb && name == names.get(op.answered.get()).map(|n| &n[..])
}

/// Takes one confirmation frame of the oldest command (`verb` `None`: a one-frame reply).
fn answer(
    shard: &Shard,
    link: &Link,
    verb: Option<Verb>,
    name: Option<&[u8]>,
) -> Result<(), &'static str> {
    let Some(op) = link.inflight.borrow().front().cloned() else {
        return Err("confirmation of no command");
    };
    match verb {
        None if matches!(op.verb, Verb::Ping | Verb::SetName | Verb::Auth) => {}
        Some(verb) if verb == op.verb => {}
        _ => return Err("confirmation of another command"),
    }
    let index = op.answered.get();
    op.answered.set(index + 1);
    if let (Verb::Subscribe(kind), Some(name)) = (op.verb, name) {
        let key = (kind, Bytes::copy_from_slice(name));
        let mut held = link.held.borrow_mut();
        if let Some(hold) = held.get_mut(&key) {
            if matches!(hold, Hold::Pending(pending) if Rc::ptr_eq(pending, &op)) {
                *hold = Hold::Confirmed;
            }
        }
    }
    if op.answered.get() >= op.frames() {
        link.inflight.borrow_mut().pop_front();
        finish(shard, &op);
        op.release();
        if link.inflight.borrow().is_empty() && link.queue.borrow().is_empty() {
            link.end_gap(shard, "re-established");
        }
    }
    Ok(())
}

/// A command is answered: a sharded channel that had moved is delivered again.
fn finish(shard: &Shard, op: &Op) {
    if let Some(since) = op.gap_since {
        let counters = shard.counters();
        let ms = since.elapsed().as_millis() as u64;
        counters
            .pubsub_gap_ms
            .set(counters.pubsub_gap_ms.get() + ms);
    }
}

/// An error from the node answers the oldest command (as a whole). A sharded subscription
/// redirected by MOVED follows the slot, its clients still waiting.
fn handle_error(shard: &Rc<Shard>, link: &Link, frame: &Bytes) -> Result<(), &'static str> {
    let Some(op) = link.inflight.borrow().front().cloned() else {
        return Err("error reply to no command");
    };
    if op.verb == Verb::Auth {
        warn!(
            core = shard.id(),
            pool = shard.pool_name(),
            node = %link.addr,
            error = %String::from_utf8_lossy(frame.trim_ascii_end()),
            "node refused percore's credentials on a pub/sub connection"
        );
        return Err("the node refused percore's credentials");
    }
    let redirect = parse_redirect(frame);
    if let (Verb::Subscribe(Kind::Shard), Some(Redirect::Moved { slot, node })) =
        (op.verb, &redirect)
    {
        let name = op.names.borrow().first().cloned().unwrap_or_default();
        if Slot::for_key(&name) != *slot {
            // The stray answer of a SUNSUBSCRIBE that raced its slot's move.
            return Ok(());
        }
        link.inflight.borrow_mut().pop_front();
        drop_pending(link, Kind::Shard, &name, &op);
        shard.slot_moved(*slot, &resolve_node(node, &link.addr));
        let waiters = op.waiters.take();
        let gap = op.gap_since;
        shard
            .pubsub
            .follow_slot(shard, &name, waiters, op.redirects + 1, gap);
        return Ok(());
    }
    link.inflight.borrow_mut().pop_front();
    if let Verb::Subscribe(kind) = op.verb {
        for name in op.names.borrow().iter() {
            drop_pending(link, kind, name, &op);
        }
        warn!(
            core = shard.id(),
            pool = shard.pool_name(),
            node = %link.addr,
            error = %String::from_utf8_lossy(frame.trim_ascii_end()),
            "node refused a subscription"
        );
        if redirect.is_some() {
            // CLUSTERDOWN or TRYAGAIN: try again once the cluster settles.
            shard.pubsub.mark_dirty_later(shard);
        }
    }
    op.release();
    Ok(())
}

/// Forgets `name` if `op` is what asked for it.
fn drop_pending(link: &Link, kind: Kind, name: &Bytes, op: &Rc<Op>) {
    let key = (kind, name.clone());
    let mut held = link.held.borrow_mut();
    if matches!(held.get(&key), Some(Hold::Pending(pending)) if Rc::ptr_eq(pending, op)) {
        held.remove(&key);
    }
}

/// The node dropped a sharded channel on its own: its slot moved away. The hub subscribes it
/// on the slot's owner; the time without it is a gap.
fn slot_left(shard: &Rc<Shard>, link: &Link, name: &[u8]) {
    let key = (Kind::Shard, Bytes::copy_from_slice(name));
    if link.held.borrow_mut().remove(&key).is_none() {
        return;
    }
    Counters::bump(&shard.counters().pubsub_gaps);
    info!(
        core = shard.id(),
        pool = shard.pool_name(),
        node = %link.addr,
        channel = %String::from_utf8_lossy(name),
        "sharded channel's slot moved; subscribing it on the new owner"
    );
    shard.request_refresh();
    shard
        .pubsub
        .follow_slot(shard, &key.1, Vec::new(), 0, Some(Instant::now()));
}
