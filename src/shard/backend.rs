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
//! a static pool's connections then select the pool's `redis_db` (as nutcracker does on every
//! server connection), and a replica's connection sends READONLY (`replica`, for replica
//! reads). Nothing else is sent until the node has accepted that handshake.
//!
//! Failure model: a connect error, a refused handshake, a reset, garbage from the node, or a
//! request older than `--backend-timeout` (a dedicated connection: its own patience) ends the
//! connection. Every waiting request gets an error naming the node (never a hang), the core
//! asks for a topology refresh, and the connection is remade with exponential backoff; while
//! it is down, new requests fail at once. A static pool's connection instead tries again at
//! once for a request that comes while it is down (as nutcracker does), which waits for that
//! attempt. In cache mode each end counts as a failure of the server, and a connection's
//! first reply as a sign of life (`shard::eject`). A replica's connection that ends sends the
//! reads it held to another node instead of failing them.
//!
//! Background writes (`async_writes`), whose clients have had their `+OK` already, are not
//! failed with the rest: they go back to the front of the queue, in order, and are sent
//! again when the connection is back (they are writes that may run twice), and one sent while
//! the connection is down waits there too; only once the server has been unreachable for
//! `async_writes_retry_timeout` are they failed (counted and logged as such), or at once if
//! the connection is one a reload retired (`backend::keep`).
//!
//! A dedicated connection (leased to one client for WATCH or a blocking command, see
//! `shard::lease`) is the same type, run by [`run_dedicated`]: connected once, never remade,
//! and closed on purpose with [`Backend::close`].

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tracing::{debug, info, warn};

use crate::config::BackendAuth;
use crate::error::BackendError;
use crate::metrics::{Counters, ServerCounters};
use crate::net::{connect_node, Stream};
use crate::resp::encode;
use crate::resp::Protocol;
use crate::sync::Signal;

use super::Shard;
use super::{eject, greeting};

mod keep;
mod outbound;
mod queue;
mod replica;
mod stats;
mod watch;
mod wire;

pub use outbound::{Lane, Outbound};
use queue::Waiting;
use stats::{connection_end, Disconnects};
use watch::{watch_dedicated, watch_timeouts};
use wire::{read_replies, write_requests};

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

/// During an outage, one reconnect failure in this many is logged at warn level.
const FAILURE_LOG_EVERY: u32 = 30;

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
    /// The protocol the connection speaks (its handshake says HELLO 3 for RESP3).
    protocol: Protocol,
    /// What the connection sends before any request (HELLO 3, AUTH), if anything. Made again
    /// before each connection ([`Backend::authenticating`]): after a reload changed the
    /// backend password, a connection made from then on gives the new one, while one already
    /// authenticated stays so.
    handshake: RefCell<Option<Bytes>>,
    /// `SELECT db`, sent after the handshake, for a static pool with a `redis_db` (no other
    /// database than 0 exists in a cluster).
    select: Option<Bytes>,
    /// `READONLY`, sent after the handshake on a replica's connection (`shard::replica`),
    /// so that the replica serves reads of its master's slots instead of redirecting them.
    readonly: Option<Bytes>,
    /// Connected and greeted since the last failure, or not failed yet: a replica is read
    /// from only while its connections are.
    ready: Cell<bool>,
    state: Cell<State>,
    /// The connection has greeted its node and serves requests now (what `preconnect` waits
    /// for before the pool listens).
    up: Cell<bool>,
    /// Since when the node has been unreachable (the first failure since it last served), for
    /// how long background writes are kept for it.
    down_since: Cell<Option<Instant>>,
    /// How long background writes wait for the node to come back
    /// (`async_writes_retry_timeout`); `None`: the pool has none.
    retry_background: Option<Duration>,
    /// Why the last connection failed, for the errors given while down.
    last_failure: RefCell<String>,
    /// Requests waiting: written and awaiting their replies, then not written yet.
    waiting: RefCell<Waiting>,
    wake_writer: Signal,
    /// Asks a dedicated connection's run loop ([`run_dedicated`]) to close the connection, or
    /// a shared one's to end its current connection ([`Backend::close`]).
    stop: Signal,
    /// Whether a request sent while the connection is down queues and cuts the reconnect
    /// backoff short ([`Backend::retrying_on_request`]) instead of failing at once.
    retry_on_request: bool,
    /// Wakes the reconnect loop out of its backoff: a request is waiting.
    retry: Signal,
    /// The server left the pool (a reload): the connection closes once idle, and is not
    /// remade ([`Backend::close_when_idle`]).
    retired: Cell<bool>,
    /// The server's counters on this core, shared by all its connections.
    counters: Rc<ServerCounters>,
}

impl Backend {
    /// A backend for `addr` speaking `protocol`, authenticating with `auth`, counting into
    /// the server's `counters`; [`run`] must be spawned for it to connect.
    pub fn new(
        addr: Rc<str>,
        protocol: Protocol,
        auth: Option<&BackendAuth>,
        counters: Rc<ServerCounters>,
    ) -> Self {
        Backend {
            addr,
            protocol,
            handshake: RefCell::new(handshake(protocol, auth)),
            select: None,
            readonly: None,
            ready: Cell::new(true),
            state: Cell::new(State::Open),
            up: Cell::new(false),
            down_since: Cell::new(None),
            retry_background: None,
            last_failure: RefCell::new(String::new()),
            waiting: RefCell::new(Waiting::default()),
            wake_writer: Signal::default(),
            stop: Signal::default(),
            retry_on_request: false,
            retry: Signal::default(),
            retired: Cell::new(false),
            counters,
        }
    }

    /// This backend, reconnecting at once for a request sent while it is down (a static
    /// pool's, when `on`), the request waiting for that attempt.
    pub fn retrying_on_request(mut self, on: bool) -> Self {
        self.retry_on_request = on;
        self
    }

    /// This backend, selecting database `db` after its handshake (none for 0, every
    /// connection's database until told otherwise).
    pub fn selecting(mut self, db: u32) -> Self {
        self.select = (db != 0).then(|| {
            let mut out = BytesMut::new();
            encode::command(&mut out, [&b"SELECT"[..], db.to_string().as_bytes()]);
            out.freeze()
        });
        self
    }

    /// What the connection sends before any request (to send again after a RESET).
    pub fn handshake(&self) -> Option<Bytes> {
        self.handshake.borrow().clone()
    }

    /// Authenticates with `auth` from the next handshake on (a reload changed it).
    pub fn authenticating(&self, auth: Option<&BackendAuth>) {
        *self.handshake.borrow_mut() = handshake(self.protocol, auth);
    }

    /// The connection's `SELECT`, if it has one (to send again after a RESET, which
    /// selects database 0).
    pub fn select(&self) -> Option<Bytes> {
        self.select.clone()
    }

    /// Whether the connection is established and greeted, serving requests now.
    pub fn is_up(&self) -> bool {
        self.up.get()
    }

    /// Whether requests sent now are queued (not failed at once).
    pub fn is_open(&self) -> bool {
        self.state.get() == State::Open
    }

    /// Closes a dedicated connection ([`run_dedicated`]): its waiting requests fail, and the
    /// node sees the connection go at once (a client blocked there is unblocked). A shared
    /// one's node left the layout (its server moved): [`run`] remakes it only if it is back.
    pub fn close(&self) {
        self.state.set(State::Down);
        self.stop.notify();
    }

    /// Queues a request, or fails it at once if the node is down.
    pub fn send(&self, out: Outbound) {
        if self.state.get() == State::Down && self.retry_on_request {
            self.waiting.borrow_mut().push(out);
            return self.retry.notify();
        }
        if self.state.get() == State::Down && self.keeps_background(&out) {
            // Sent once the node is back, after the background writes queued before it.
            self.counters.request(out.request.len());
            return self.waiting.borrow_mut().push(out);
        }
        if self.state.get() == State::Down {
            let error = BackendError::Down {
                node: self.addr.to_string(),
                reason: self.last_failure.borrow().clone(),
            };
            self.counters.failed(1);
            return out.fail(&error);
        }
        self.counters.request(out.request.len());
        self.waiting.borrow_mut().push(out);
        self.wake_writer.notify();
    }

    /// Requests queued or in flight.
    pub fn pending(&self) -> usize {
        self.waiting.borrow().len()
    }
}

/// The handshake of a connection speaking `protocol` with `auth`, if it needs one.
fn handshake(protocol: Protocol, auth: Option<&BackendAuth>) -> Option<Bytes> {
    let mut out = BytesMut::new();
    let credentials = auth.map(|a| (a.user.as_deref(), a.password.as_str()));
    encode::handshake(&mut out, protocol, credentials).then(|| out.freeze())
}

/// Keeps `backend` connected for as long as its node is part of the topology.
pub async fn run(shard: Rc<Shard>, backend: Rc<Backend>) {
    let core = shard.id();
    let node = backend.addr.to_string();
    let mut backoff = MIN_BACKOFF;
    let mut failures = 0u32;
    loop {
        backend.state.set(State::Open);
        // Each connection is made with the configuration of its time: a reload changes the
        // timeout, TLS and credentials of the connections made after it.
        let config = shard.config();
        let timeout = config.backend_timeout;
        backend.authenticating(config.backend_auth.as_ref());
        let connected = connect_node(shard.uring(), &node, timeout, config.backend_tls.as_ref());
        let connected = connected.await;
        // Not held while connected: an old configuration goes when nothing needs it.
        drop(config);
        let error = match connected {
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
                backend.counters.connected(failures > 0);
                let error = match greet(&backend, &stream, timeout).await {
                    Ok(()) => {
                        backoff = MIN_BACKOFF;
                        failures = 0;
                        backend.down_since.set(None);
                        backend.up.set(true);
                        let error = serve(&shard, &backend, &stream).await;
                        backend.up.set(false);
                        error
                    }
                    Err(error) => error,
                };
                backend.counters.disconnected();
                error
            }
            Err(err) => BackendError::Connect {
                node: node.clone(),
                reason: err.to_string(),
            },
        };
        if backend.retired.get() {
            // Closed on purpose once idle, or failed before it was: nothing is remade, so
            // what still waits (background writes kept for a retry too) fails now.
            info!(
                core,
                pool = shard.pool_name(),
                node,
                waiting = backend.pending(),
                "server left the pool: its connection is closed"
            );
            backend.state.set(State::Down);
            backend.fail_everything(&error);
            shard.pool.forget_retired(&node);
            return;
        }
        failures += 1;
        // Loud on the first failure of an outage, then every so often, not every retry.
        if failures == 1 || failures.is_multiple_of(FAILURE_LOG_EVERY) {
            warn!(core, pool = shard.pool_name(), node, %error, failures, "backend connection failed");
        } else {
            debug!(core, node, %error, failures, "backend connection failed");
        }
        Counters::bump(&shard.counters().backend_failures);
        backend.counters.ended(connection_end(&error));
        backend.state.set(State::Down);
        if backend.down_since.get().is_none() {
            backend.down_since.set(Some(Instant::now()));
        }
        *backend.last_failure.borrow_mut() = error.cause();
        backend.read_elsewhere(&shard);
        backend.fail_all(&error);
        // A static pool in cache mode counts it, and may eject the server.
        eject::backend_failed(&shard, &node);
        shard.request_refresh();
        let pause = glommio::timer::sleep(backoff);
        match backend.retry_on_request {
            true => futures_lite::future::or(pause, backend.retry.wait()).await,
            false => pause.await,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if !backend.in_topology(&shard) && backend.pending() == 0 {
            info!(
                core,
                pool = shard.pool_name(),
                node,
                "node left the topology, closing its backend"
            );
            backend.forget(&shard);
            return;
        }
    }
}

/// Runs a dedicated connection until it fails or is closed ([`Backend::close`]); it is never
/// remade. The socket is closed when this returns.
pub async fn run_dedicated(shard: Rc<Shard>, backend: Rc<Backend>) {
    let config = shard.config();
    let timeout = config.backend_timeout;
    let node = backend.addr.to_string();
    let session = async {
        let stream = connect_node(shard.uring(), &node, timeout, config.backend_tls.as_ref())
            .await
            .map_err(|err| BackendError::Connect {
                node: node.clone(),
                reason: err.to_string(),
            })?;
        backend.counters.connected(false);
        let _open = Disconnects(&backend.counters);
        greet(&backend, &stream, timeout).await?;
        let reader = read_replies(&shard, &backend, &stream);
        let writer = write_requests(&backend, &stream, shard.uring());
        // Its own task, as for a shared connection (see `serve`): not polled at every reply.
        let watchdog = {
            let backend = backend.clone();
            glommio::spawn_local(async move { watch_dedicated(&backend, timeout).await })
        };
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
            backend.counters.ended(connection_end(&error));
        }
        backend.state.set(State::Down);
        *backend.last_failure.borrow_mut() = error.cause();
        backend.fail_all(&error);
    }
}

/// Sends the connection's handshake, its SELECT and its READONLY, those it has
/// ([`greeting::greet`]); the connection is ready once the node has accepted them.
async fn greet(backend: &Backend, stream: &Stream, timeout: Duration) -> Result<(), BackendError> {
    let handshake = backend.handshake();
    let requests = [&handshake, &backend.select, &backend.readonly];
    greeting::greet(
        &backend.addr,
        requests.into_iter().flatten(),
        stream,
        timeout,
    )
    .await?;
    backend.ready.set(true);
    Ok(())
}

/// Runs one connection until it fails; returns why.
async fn serve(shard: &Rc<Shard>, backend: &Rc<Backend>, stream: &Stream) -> BackendError {
    let reader = read_replies(shard, backend, stream);
    let writer = write_requests(backend, stream, shard.uring());
    // A task of its own (cancelled when this returns): raced here with the reader and writer,
    // its timer would be polled at every reply too, and glommio takes a polled timer out of its
    // timer tree and puts it back, which allocates once a core has a dozen timers (measured:
    // ~3 allocations per request on such a core, tests/no_alloc_proxy.rs).
    let watchdog = {
        let (shard, backend) = (shard.clone(), backend.clone());
        glommio::spawn_local(async move {
            watch_timeouts(&backend, || shard.config().backend_timeout).await
        })
    };
    let retired = async {
        backend.stop.wait().await;
        BackendError::Lost {
            node: backend.addr.to_string(),
            reason: "the server's master moved (Sentinel failover)".into(),
        }
    };
    let serving = futures_lite::future::or(reader, futures_lite::future::or(writer, watchdog));
    futures_lite::future::or(retired, serving).await
}
