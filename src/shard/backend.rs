//! One backend (upstream) connection from this core to one master, shared by all of the
//! core's clients.
//!
//! Requests queue here from any client; the writer sends everything queued in one write, so
//! the requests of many clients share a packet (this is what makes the proxy cheaper than
//! one-connection-per-client designs). Redis answers in order on a connection, so replies are
//! matched to requests first in, first out. A reply that redirects (MOVED/ASK/TRYAGAIN) goes
//! back to dispatch to be sent again; every other reply is delivered where the request said.
//!
//! Each connection speaks one protocol ([`Protocol`]): RESP3 connections (for RESP3 clients)
//! start with `HELLO 3`, and with `--backend-password` every connection authenticates first;
//! nothing else is sent until the node has accepted that handshake.
//!
//! Failure model: a connect error, a refused handshake, a reset, garbage from the node, or a
//! request older than `--backend-timeout` (on a dedicated connection, its own patience) ends
//! the connection. Every waiting request gets an error naming the node (never a hang),
//! the core asks for a topology refresh, and the connection is remade with exponential
//! backoff; while it is down, new requests fail at once. A static pool in cache mode counts
//! each such end as a failure of the server, and the first reply on a connection as a sign of
//! life (`shard::eject`).
//!
//! A dedicated connection (leased to one client for WATCH or a blocking command, see
//! `shard::lease`) is the same type, run by [`run_dedicated`]: connected once, never remade,
//! and closed on purpose with [`Backend::close`].

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tracing::{debug, info, warn};

use crate::cluster::redirect::parse_redirect;
use crate::cluster::slot::Slot;
use crate::config::BackendAuth;
use crate::error::BackendError;
use crate::metrics::Counters;
use crate::net::{connect_node, FrameReader, Stream, Uring, WriteBatch, MAX_FRAMES, READ_CHUNK};
use crate::resp::encode;
use crate::resp::scan::ReplyScanner;
use crate::resp::Protocol;
use crate::sync::Signal;

use super::reply_to::ReplyTo;
use super::Shard;
use super::{dispatch, eject};

/// Request queue capacity kept when idle; more is released (see [`shrink_if_idle`]).
const QUEUE_KEEP: usize = 1024;
/// First reconnect delay after a failure; doubled on each further failure.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest reconnect delay: a node that comes back is used again within this time.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Most driver rounds a backend write is held for while requests keep arriving. A round is a
/// few microseconds; measured at GET -P 1 with 50 clients, holding cut the masters' wake-ups
/// from 0.43 to 0.34 per request and their CPU by ~10%, with no cost in latency. Holding for
/// a time instead (25-100 µs) does not pay: requests reach each master at ~15k/s there, so a
/// write gathered 3.2-3.7 instead of ~2.8 of them, and the masters' 20% saving cost the proxy
/// 30% more CPU (the timer wakes it).
const HOLD_ROUNDS: usize = 8;
/// Queued requests that make a batch worth writing at once, without holding.
const HOLD_BATCH: usize = 64;

/// Read buffer a connection starts with; it grows for large replies.
const READ_BUFFER: usize = 16 * 1024;

/// First read of a handshake reply: HELLO 3's map is a few hundred bytes.
const HANDSHAKE_READ: usize = 1024;

/// During an outage, one reconnect failure in this many is logged at warn level.
const FAILURE_LOG_EVERY: u32 = 30;

/// Longest a dedicated connection's watchdog sleeps while it is idle or its oldest request may
/// wait longer (a BLPOP with a long timeout, or none): a thousand blocked clients, or idle
/// pooled connections, then cost a thousand timer wake-ups a second, not four thousand. A
/// request arriving meanwhile is found overdue at most this late.
const LONG_WATCH: Duration = Duration::from_secs(1);

/// A request on its way to a backend.
pub struct Outbound {
    /// The request frame, as the client sent it (or as the proxy built it for a split part).
    pub request: Bytes,
    /// Where the reply goes.
    pub reply_to: ReplyTo,
    /// The request's slot, to route it again after TRYAGAIN; `None` for keyless requests.
    pub slot: Option<Slot>,
    /// Send ASKING first (the request follows an ASK redirect).
    pub asking: bool,
    /// Redirects followed so far.
    pub redirects: u8,
    /// The protocol of the client the reply goes to: a redirected request is sent again on a
    /// connection of the same protocol.
    pub protocol: Protocol,
    /// When it was last written to a backend, for the timeout watchdog (until then, when the
    /// client's request was parsed).
    pub sent: Instant,
    /// How long its reply may take once written, when not `--backend-timeout`: a blocking
    /// command waits as long as its own timeout says ([`Outbound::FOREVER`] for 0). Only
    /// dedicated connections carry such requests, and only their watchdog reads it.
    pub patience: Option<Duration>,
}

impl Outbound {
    /// A request not sent anywhere yet.
    pub fn new(
        request: Bytes,
        reply_to: ReplyTo,
        slot: Option<Slot>,
        protocol: Protocol,
        started: Instant,
    ) -> Self {
        Outbound {
            request,
            reply_to,
            slot,
            asking: false,
            redirects: 0,
            protocol,
            sent: started,
            patience: None,
        }
    }

    /// Patience of a request that may wait for its reply without end (BLPOP ... 0).
    pub const FOREVER: Duration = Duration::MAX;
}

/// Connection state, as seen by requests arriving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Connecting or connected: requests queue.
    Open,
    /// Failed and waiting to reconnect: requests fail at once.
    Down,
}

/// One connection to one master.
pub struct Backend {
    /// The master's `host:port`.
    pub addr: Rc<str>,
    /// What the connection sends before any request (HELLO 3, AUTH), if anything.
    handshake: Option<Bytes>,
    state: Cell<State>,
    /// Why the last connection failed, for the errors given while down.
    last_failure: RefCell<String>,
    /// Requests not written yet.
    queue: RefCell<VecDeque<Outbound>>,
    /// Requests written and waiting for their reply, oldest first.
    inflight: RefCell<VecDeque<Outbound>>,
    wake_writer: Signal,
    /// Asks a dedicated connection's run loop ([`run_dedicated`]) to close the connection.
    /// Shared connections never look at it.
    stop: Signal,
}

impl Backend {
    /// A backend for `addr` speaking `protocol`, authenticating with `auth`; [`run`] must be
    /// spawned for it to connect.
    pub fn new(addr: Rc<str>, protocol: Protocol, auth: Option<&BackendAuth>) -> Self {
        let mut handshake = BytesMut::new();
        let credentials = auth.map(|a| (a.user.as_deref(), a.password.as_str()));
        let handshake =
            encode::handshake(&mut handshake, protocol, credentials).then(|| handshake.freeze());
        Backend {
            addr,
            handshake,
            state: Cell::new(State::Open),
            last_failure: RefCell::new(String::new()),
            queue: RefCell::new(VecDeque::new()),
            inflight: RefCell::new(VecDeque::new()),
            wake_writer: Signal::default(),
            stop: Signal::default(),
        }
    }

    /// What the connection sends before any request (to send again after a RESET).
    pub fn handshake(&self) -> Option<Bytes> {
        self.handshake.clone()
    }

    /// Whether requests sent now are queued (not failed at once).
    pub fn is_open(&self) -> bool {
        self.state.get() == State::Open
    }

    /// Closes a dedicated connection ([`run_dedicated`]): its waiting requests fail, and the
    /// node sees the connection go at once (a client blocked there is unblocked).
    pub fn close(&self) {
        self.state.set(State::Down);
        self.stop.notify();
    }

    /// Queues a request, or fails it at once if the node is down.
    pub fn send(&self, out: Outbound) {
        if self.state.get() == State::Down {
            let error = BackendError::Down {
                node: self.addr.to_string(),
                reason: self.last_failure.borrow().clone(),
            };
            return out.reply_to.fail(&error);
        }
        self.queue.borrow_mut().push_back(out);
        self.wake_writer.notify();
    }

    /// Requests queued or in flight.
    pub fn pending(&self) -> usize {
        self.queue.borrow().len() + self.inflight.borrow().len()
    }

    fn fail_all(&self, error: &BackendError) {
        let inflight = std::mem::take(&mut *self.inflight.borrow_mut());
        let queued = std::mem::take(&mut *self.queue.borrow_mut());
        for out in inflight.into_iter().chain(queued) {
            out.reply_to.fail(error);
        }
    }
}

/// Keeps `backend` connected for as long as its node is part of the topology.
pub async fn run(shard: Rc<Shard>, backend: Rc<Backend>) {
    let timeout = shard.config().backend_timeout;
    let core = shard.id();
    let node = backend.addr.to_string();
    let mut backoff = MIN_BACKOFF;
    let mut failures = 0u32;
    loop {
        backend.state.set(State::Open);
        let error = match connect_node(shard.uring(), &node, timeout, shard.backend_tls()).await {
            Ok(stream) => {
                if failures > 0 {
                    info!(
                        core,
                        pool = shard.pool_name(),
                        node,
                        failures,
                        "backend reconnected"
                    );
                }
                debug!(core, node, "backend connected");
                match greet(&backend, &stream, timeout).await {
                    Ok(()) => {
                        backoff = MIN_BACKOFF;
                        failures = 0;
                        serve(&shard, &backend, &stream, timeout).await
                    }
                    Err(error) => error,
                }
            }
            Err(err) => BackendError::Connect {
                node: node.clone(),
                reason: err.to_string(),
            },
        };
        failures += 1;
        // Loud on the first failure of an outage, then every so often, not every retry.
        if failures == 1 || failures.is_multiple_of(FAILURE_LOG_EVERY) {
            warn!(core, pool = shard.pool_name(), node, %error, failures, "backend connection failed");
        } else {
            debug!(core, node, %error, failures, "backend connection failed");
        }
        Counters::bump(&shard.counters().backend_failures);
        backend.state.set(State::Down);
        *backend.last_failure.borrow_mut() = error.cause();
        backend.fail_all(&error);
        // A static pool in cache mode counts it, and may eject the server.
        eject::backend_failed(&shard, &node);
        shard.request_refresh();
        glommio::timer::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if !shard.serves(&node) && backend.pending() == 0 {
            info!(
                core,
                pool = shard.pool_name(),
                node,
                "node left the topology, closing its backend"
            );
            shard.forget_node(&node);
            return;
        }
    }
}

/// Runs a dedicated connection until it fails or is closed ([`Backend::close`]); it is never
/// remade. The socket is closed when this returns.
pub async fn run_dedicated(shard: Rc<Shard>, backend: Rc<Backend>) {
    let timeout = shard.config().backend_timeout;
    let node = backend.addr.to_string();
    let session = async {
        let stream = connect_node(shard.uring(), &node, timeout, shard.backend_tls())
            .await
            .map_err(|err| BackendError::Connect {
                node: node.clone(),
                reason: err.to_string(),
            })?;
        greet(&backend, &stream, timeout).await?;
        let reader = read_replies(&shard, &backend, &stream);
        let writer = write_requests(&backend, &stream, shard.uring());
        let watchdog = watch_dedicated(&backend, timeout);
        let error = futures_lite::future::or(reader, futures_lite::future::or(writer, watchdog));
        Err::<(), _>(error.await)
    };
    let stopped = async {
        backend.stop.wait().await;
        Err(BackendError::Lost {
            node: node.clone(),
            reason: "closed by percore".into(),
        })
    };
    if let Err(error) = futures_lite::future::or(stopped, session).await {
        if backend.state.get() == State::Open {
            debug!(core = shard.id(), node, %error, "dedicated backend connection failed");
            Counters::bump(&shard.counters().backend_failures);
        }
        backend.state.set(State::Down);
        *backend.last_failure.borrow_mut() = error.cause();
        backend.fail_all(&error);
    }
}

/// Sends the connection's handshake, if it has one, and waits for the node to accept it.
/// Nothing else is written before: a request sent behind a refused AUTH could still run on a
/// node that has no password, while its client is told it failed.
async fn greet(backend: &Backend, stream: &Stream, timeout: Duration) -> Result<(), BackendError> {
    let Some(handshake) = &backend.handshake else {
        return Ok(());
    };
    let node = || backend.addr.to_string();
    let lost = |reason: String| BackendError::Lost {
        node: node(),
        reason,
    };
    let exchange = async {
        stream
            .write_all(handshake)
            .await
            .map_err(|e| lost(e.to_string()))?;
        let mut reader = FrameReader::new(HANDSHAKE_READ, HANDSHAKE_READ);
        let mut scanner = ReplyScanner::new();
        let reply = reader
            .next(stream, |buf| scanner.scan(buf))
            .await
            .map_err(|e| lost(e.to_string()))?;
        if !reader.is_drained() {
            return Err(lost("more than one reply to the handshake".into()));
        }
        if reply.first() == Some(&b'-') {
            let reason = String::from_utf8_lossy(&reply[1..reply.len() - 2]).into_owned();
            return Err(BackendError::Rejected {
                node: node(),
                reason,
            });
        }
        Ok(())
    };
    glommio::timer::timeout(timeout, async { Ok(exchange.await) })
        .await
        .unwrap_or_else(|_| Err(BackendError::Timeout { node: node() }))
}

/// Runs one connection until it fails; returns why.
async fn serve(
    shard: &Rc<Shard>,
    backend: &Backend,
    stream: &Stream,
    timeout: Duration,
) -> BackendError {
    let reader = read_replies(shard, backend, stream);
    let writer = write_requests(backend, stream, shard.uring());
    let watchdog = watch_timeouts(backend, timeout);
    futures_lite::future::or(reader, futures_lite::future::or(writer, watchdog)).await
}

/// Writes queued requests, all that are queued in one gathered write, each from the client's
/// own buffer.
async fn write_requests(backend: &Backend, stream: &Stream, uring: &Uring) -> BackendError {
    let mut batch = WriteBatch::new(MAX_FRAMES);
    loop {
        if backend.queue.borrow().is_empty() {
            shrink_if_idle(&backend.queue);
            backend.wake_writer.wait().await;
            // Hold the write while the core's rounds still bring in requests, so one write
            // carries a client burst rather than its first few requests: each write wakes a
            // sleeping redis-server, and at -P 1 that wake-up is most of what it costs it.
            for _ in 0..HOLD_ROUNDS {
                if uring.caught_up() || backend.queue.borrow().len() >= HOLD_BATCH {
                    break;
                }
                uring.next_round().await;
            }
            continue;
        }
        let now = Instant::now();
        while !batch.is_full() {
            let Some(mut out) = backend.queue.borrow_mut().pop_front() else {
                break;
            };
            out.sent = now;
            if out.asking {
                batch.push(Bytes::from_static(encode::ASKING));
                let asking = Outbound::new(Bytes::new(), ReplyTo::Discard, None, out.protocol, now);
                backend.inflight.borrow_mut().push_back(asking);
            }
            batch.push(out.request.clone());
            backend.inflight.borrow_mut().push_back(out);
        }
        if let Err(e) = batch.write(stream).await {
            return BackendError::Lost {
                node: backend.addr.to_string(),
                reason: e.to_string(),
            };
        }
    }
}

/// Reads replies and hands each to the request it answers.
async fn read_replies(shard: &Rc<Shard>, backend: &Backend, stream: &Stream) -> BackendError {
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
            shrink_if_idle(&backend.inflight);
        }
        if reply.first() == Some(&b'>') {
            // A RESP3 push is not the reply to a request; none is expected on a shared
            // connection, and it must not be taken for the next request's reply.
            debug!(node = %backend.addr, "push message on a shared connection dropped");
            continue;
        }
        let Some(out) = backend.inflight.borrow_mut().pop_front() else {
            return lost("reply to no request".into());
        };
        if !answered {
            answered = true;
            eject::backend_answered(shard, &backend.addr);
        }
        if reply.first() == Some(&b'-') && out.reply_to.follows_redirects() {
            if let Some(redirect) = parse_redirect(&reply) {
                dispatch::redirect(shard, &backend.addr, out, redirect, &reply);
                continue;
            }
        }
        out.reply_to.deliver_from(reply, Some(&backend.addr));
    }
}

/// Gives back the memory of a request queue that a burst grew, once it is empty again, so
/// a past burst does not pin memory for the life of the connection.
fn shrink_if_idle(queue: &RefCell<VecDeque<Outbound>>) {
    let mut queue = queue.borrow_mut();
    if queue.is_empty() && queue.capacity() > QUEUE_KEEP {
        queue.shrink_to(QUEUE_KEEP);
    }
}

/// How often a watchdog looks at its connection's oldest request.
fn watch_period(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(5), Duration::from_millis(250))
}

/// Fails the connection when its oldest request has waited longer than `timeout`.
async fn watch_timeouts(backend: &Backend, timeout: Duration) -> BackendError {
    let period = watch_period(timeout);
    loop {
        glommio::timer::sleep(period).await;
        let oldest = backend.inflight.borrow().front().map(|out| out.sent);
        if oldest.is_some_and(|sent| sent.elapsed() > timeout) {
            return BackendError::Timeout {
                node: backend.addr.to_string(),
            };
        }
    }
}

/// [`watch_timeouts`] for a dedicated connection, whose oldest request may be a blocking
/// command waiting long or forever: while it may, the watchdog sleeps up to [`LONG_WATCH`]
/// instead of a quarter of `timeout`.
async fn watch_dedicated(backend: &Backend, timeout: Duration) -> BackendError {
    let period = watch_period(timeout);
    loop {
        let now = Instant::now();
        let left = backend.inflight.borrow().front().map(|out| {
            let patience = out.patience.unwrap_or(timeout);
            patience.checked_sub(now.saturating_duration_since(out.sent))
        });
        let sleep = match left {
            None => LONG_WATCH.max(period),
            Some(None) => {
                return BackendError::Timeout {
                    node: backend.addr.to_string(),
                }
            }
            Some(Some(left)) => left.clamp(period, LONG_WATCH.max(period)),
        };
        glommio::timer::sleep(sleep).await;
    }
}
