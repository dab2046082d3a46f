//! One client (downstream) connection: read and parse requests, hand each to dispatch, and
//! write the replies back strictly in the order the requests came.
//!
//! Every request reserves a place in the client's reply queue before it is routed; whoever
//! produces the reply (a backend, a split-request merge, the proxy itself) fills that place,
//! and the writer sends the completed prefix of the queue in one write. That is what keeps
//! replies in order when consecutive requests go to different masters.
//!
//! The reader stops reading while [`MAX_CLIENT_INFLIGHT`] requests are outstanding, so a client
//! that pipelines without limit is served in windows and memory stays bounded.
//!
//! Parsing the buffer and handing each request to dispatch is [`super::client_input`]'s.
//!
//! A client can be held: while a blocking command of its own waits, or a WATCH session ends,
//! its later requests are read (so that a client going away is seen at once) but not run,
//! the way Redis runs nothing more of a blocked client until it is unblocked.
//!
//! The writer, which interleaves pub/sub messages at reply boundaries, is [`output`]'s.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tracing::debug;

use crate::config::MAX_CLIENT_INFLIGHT;
use crate::metrics::Counters;
use crate::net::{Stream, READ_CHUNK};
use crate::resp::encode;
use crate::resp::parse::RequestParser;
use crate::sync::Signal;

use super::client_input::{parse_and_dispatch, Parsed};
use super::identity::Identity;
use super::monitor;
use super::pause;
use super::pubsub::subscriber::Subscriber;
use super::session::{self, Session};
use super::sidecar::background::{self, ClientWrites};
use super::transaction::Transaction;
use super::Shard;

mod output;

use output::write_loop;

/// First read size for a new client; doubled each time a read fills it, up to
/// [`READ_CHUNK`]. Most clients send small requests, and an idle connection should cost
/// little memory.
const INITIAL_READ: usize = 4 * 1024;

/// Most MONITOR batches waiting in one monitor's reply queue, and most bytes of them: past
/// either the monitor is not keeping up and further lines are dropped (and counted), so a
/// monitor that stops reading holds a bounded amount of memory. Half the in-flight limit, so
/// a monitor's own requests (QUIT) are still read; 4 MiB is seconds of a busy proxy's lines.
const MONITOR_BACKLOG_BATCHES: usize = MAX_CLIENT_INFLIGHT / 2;
/// See [`MONITOR_BACKLOG_BATCHES`].
const MONITOR_BACKLOG_BYTES: usize = 4 * 1024 * 1024;

/// A place in the reply queue.
enum Pending {
    /// Routed, reply not here yet. `started` is when the request was parsed; a `silent`
    /// reply is dropped when it comes (CLIENT REPLY OFF/SKIP); `request` is its frame, kept
    /// (one reference, no copy) for the slow log.
    Waiting {
        started: Instant,
        silent: bool,
        request: Bytes,
    },
    /// Reply ready to write; `node` is the backend that gave it, if one did.
    Ready {
        reply: Bytes,
        started: Instant,
        request: Bytes,
        node: Option<Rc<str>>,
    },
    /// MONITOR lines for a monitoring client: not the reply to any request.
    Push { lines: Bytes },
}

/// Whether the client gets replies (CLIENT REPLY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Every reply (the default).
    On,
    /// None.
    Off,
    /// None for the next request, then on again.
    SkipNext,
}

/// The part of a client connection that replies are delivered to.
pub struct ClientState {
    /// Replies in request order; the front has sequence number `base_seq`.
    replies: RefCell<VecDeque<Pending>>,
    base_seq: Cell<u64>,
    /// Set when the front reply becomes ready or the connection starts closing.
    wake_writer: Signal,
    /// Set when the writer has made room under the in-flight limit.
    wake_reader: Signal,
    /// No more requests are read; the connection closes once the queue is written.
    closing: Cell<bool>,
    /// The connection is gone; late replies are dropped.
    closed: Cell<bool>,
    /// Who the client is and what it chose for its connection.
    pub identity: Identity,
    /// CLIENT REPLY.
    reply_mode: Cell<ReplyMode>,
    /// The transaction being queued, between MULTI and EXEC/DISCARD.
    pub transaction: RefCell<Option<Transaction>>,
    /// WATCH and blocking commands: what the client holds on dedicated connections.
    pub session: Session,
    /// Requests are read but not dispatched (see [`ClientState::hold`]).
    held: Cell<bool>,
    /// Set when a hold ends.
    resumed: Signal,
    /// Bytes of replies ready but not yet written.
    unwritten: Cell<usize>,
    /// Limit on `unwritten` (0: none); past it the client is dropped. A reload sets it anew.
    max_unwritten: Cell<usize>,
    /// `unwritten` went past the limit: drop the connection.
    overflowed: Cell<bool>,
    /// Wakes the connection task to drop the connection at once, even mid-write.
    abort: Signal,
    /// Its subscriptions and the messages waiting for it.
    pub pubsub: Subscriber,
    /// Its background writes waiting for the server (`async_writes`).
    pub writes: ClientWrites,
}

impl ClientState {
    fn new(identity: Identity, max_unwritten: usize) -> Self {
        ClientState {
            identity,
            reply_mode: Cell::new(ReplyMode::On),
            transaction: RefCell::new(None),
            session: Session::default(),
            held: Cell::new(false),
            resumed: Signal::default(),
            unwritten: Cell::new(0),
            max_unwritten: Cell::new(max_unwritten),
            overflowed: Cell::new(false),
            abort: Signal::default(),
            pubsub: Subscriber::default(),
            writes: ClientWrites::default(),
            replies: RefCell::new(VecDeque::new()),
            base_seq: Cell::new(0),
            wake_writer: Signal::default(),
            wake_reader: Signal::default(),
            closing: Cell::new(false),
            closed: Cell::new(false),
        }
    }

    /// Reserves the next place in the reply queue for a request that arrived at `started`;
    /// returns its sequence number. The request's frame (for the slow log) comes with its
    /// reply ([`ClientState::complete_request`]) or from [`ClientState::keep_request`]: moved
    /// there, its reference count is not touched for it.
    pub fn reserve(&self, started: Instant) -> u64 {
        let silent = match self.reply_mode.get() {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::SkipNext => {
                self.reply_mode.set(ReplyMode::On);
                true
            }
        };
        let mut replies = self.replies.borrow_mut();
        replies.push_back(Pending::Waiting {
            started,
            silent,
            request: Bytes::new(),
        });
        self.base_seq.get() + replies.len() as u64 - 1
    }

    /// CLIENT REPLY: whether later replies are sent. The CLIENT REPLY request's own reply
    /// (its place is `seq`) is sent only for ON.
    pub fn set_reply_mode(&self, seq: u64, mode: ReplyMode) {
        self.reply_mode.set(mode);
        let index = seq.saturating_sub(self.base_seq.get()) as usize;
        if let Some(Pending::Waiting { silent, .. }) = self.replies.borrow_mut().get_mut(index) {
            *silent = mode != ReplyMode::On;
        }
    }

    /// Gives the place `seq` its request's frame, when the request did not carry it away.
    pub fn keep_request(&self, seq: u64, frame: Bytes) {
        let Some(index) = seq.checked_sub(self.base_seq.get()) else {
            return;
        };
        match self.replies.borrow_mut().get_mut(index as usize) {
            Some(Pending::Waiting { request, .. } | Pending::Ready { request, .. }) => {
                *request = frame;
            }
            Some(Pending::Push { .. }) | None => {}
        }
    }

    /// Fills the place `seq` with its reply, which `node` gave (`None`: the proxy made it).
    pub fn complete(&self, seq: u64, reply: Bytes, node: Option<Rc<str>>) {
        self.complete_request(seq, reply, node, Bytes::new());
    }

    /// [`ClientState::complete`] for a request that brings its frame with the reply.
    pub fn complete_request(&self, seq: u64, reply: Bytes, node: Option<Rc<str>>, frame: Bytes) {
        if self.closed.get() {
            return;
        }
        let Some(index) = seq.checked_sub(self.base_seq.get()) else {
            return;
        };
        let mut replies = self.replies.borrow_mut();
        if let Some(slot) = replies.get_mut(index as usize) {
            if let Pending::Waiting {
                started,
                silent,
                request,
            } = slot
            {
                let kept = std::mem::take(request);
                let request = if frame.is_empty() { kept } else { frame };
                let started = *started;
                // A silent reply keeps its place in the order, empty, and is not written.
                let reply = if *silent { Bytes::new() } else { reply };
                self.add_unwritten(reply.len());
                *slot = Pending::Ready {
                    reply,
                    started,
                    request,
                    node,
                };
                if index == 0 {
                    self.wake_writer.notify();
                }
            }
        }
    }

    /// Queues MONITOR lines behind the replies queued so far. False when they are dropped
    /// because the client is behind by [`MONITOR_BACKLOG_BYTES`] or
    /// [`MONITOR_BACKLOG_BATCHES`]; a client that is closing takes no more and drops nothing.
    pub fn push(&self, lines: Bytes) -> bool {
        if self.closing.get() || self.closed.get() {
            return true;
        }
        let mut replies = self.replies.borrow_mut();
        if replies.len() >= MONITOR_BACKLOG_BATCHES || self.unwritten.get() >= MONITOR_BACKLOG_BYTES
        {
            return false;
        }
        self.add_unwritten(lines.len());
        replies.push_back(Pending::Push { lines });
        if replies.len() == 1 {
            self.wake_writer.notify();
        }
        true
    }

    /// Counts `len` more bytes waiting to be written; past the client's output limit the
    /// connection is dropped.
    fn add_unwritten(&self, len: usize) {
        let unwritten = self.unwritten.get() + len;
        self.unwritten.set(unwritten);
        let limit = self.max_unwritten.get();
        if limit > 0 && unwritten > limit {
            self.overflowed.set(true);
            self.abort.notify();
        }
    }

    /// Requests waiting for or holding their reply, and reply bytes not yet written.
    pub fn output(&self) -> (usize, usize) {
        (self.replies.borrow().len(), self.unwritten.get())
    }

    /// Whether the client's transaction, if it is in one, has queued a command that may write.
    pub fn transaction_writes(&self) -> Option<bool> {
        self.transaction.borrow().as_ref().map(Transaction::writes)
    }

    /// Whether the client is between MULTI and EXEC.
    pub fn in_transaction(&self) -> bool {
        self.transaction.borrow().is_some()
    }

    /// Runs none of the client's later requests until [`ClientState::resume`]: a blocking
    /// command or the end of a WATCH session is in flight, and what comes after must run
    /// after it.
    pub fn hold(&self) {
        self.held.set(true);
    }

    /// Ends a hold: the requests read meanwhile are dispatched.
    pub fn resume(&self) {
        self.held.set(false);
        self.resumed.notify();
    }

    /// Whether the client is held ([`ClientState::hold`]).
    pub fn is_held(&self) -> bool {
        self.held.get()
    }

    /// Whether no more requests are to be read (QUIT, a closed connection, shutdown).
    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// Drops the connection at once (CLIENT KILL).
    pub fn kill(&self) {
        self.abort.notify();
    }

    /// Sets the limit on reply bytes waiting to be written (a reload changed it); it counts
    /// from the next reply on.
    pub fn set_output_limit(&self, limit: usize) {
        self.max_unwritten.set(limit);
    }

    /// Stops reading; the connection closes after the queued replies are written.
    pub fn close_after_replies(&self) {
        self.closing.set(true);
        self.wake_writer.notify();
    }
}

/// Serves one client connection until it closes.
pub async fn serve(shard: Rc<Shard>, stream: Stream) {
    let peer = stream.peer_addr();
    let counters = shard.counters();
    Counters::bump(&counters.connections_total);
    counters.clients.set(counters.clients.get() + 1);
    let config = shard.config();
    let identity = Identity::new(shard.next_client_id(), &stream, &config.users);
    let state = Rc::new(ClientState::new(identity, config.max_output_buffer));
    drop(config);
    let id = state.identity.id;
    background::welcome(&shard, &state);
    shard.register_client(&state);
    let reader = read_loop(&shard, &state, &stream, peer);
    let writer = write_loop(&shard, &state, &stream);
    let abort = state.abort.wait();
    futures_lite::future::or(futures_lite::future::or(reader, writer), abort).await;
    if state.overflowed.get() {
        debug!(?peer, "client output buffer limit reached, closing");
    }
    if state.pubsub.has_state() {
        shard.pubsub.forget(&shard, &state);
    }
    session::client_gone(&shard, &state);
    shard.unregister_client(id);
    monitor::forget(&shard, id);
    state.closed.set(true);
    state.replies.borrow_mut().clear();
    counters.clients.set(counters.clients.get() - 1);
    debug!(?peer, "client disconnected");
}

/// Answers a connection the proxy will not serve with `reply`, then closes it.
pub async fn refuse(stream: Stream, reply: &'static [u8]) {
    let _ = stream.write_all(reply).await;
}

/// Reads and dispatches requests. Returns only to drop the connection at once; a clean close
/// leaves the writer to finish.
async fn read_loop(
    shard: &Rc<Shard>,
    state: &Rc<ClientState>,
    stream: &Stream,
    peer: Option<SocketAddr>,
) {
    let mut parser = RequestParser::new(shard.config().limits);
    // Empty until the client sends something, so idle connections cost little.
    let mut buf = BytesMut::new();
    let mut read_size = INITIAL_READ;
    loop {
        // Read at each turn, not per request: a reload's idle timeout and query buffer limit
        // apply to the clients already connected (its bulk length limit to the next ones).
        let config = shard.config();
        while state.replies.borrow().len() >= MAX_CLIENT_INFLIGHT {
            state.wake_reader.wait().await;
        }
        if state.closing.get() {
            return std::future::pending().await;
        }
        // Room for the rest of a large request, but never more than doubling what arrived:
        // a client that declares a huge bulk and sends nothing must not make us allocate it.
        let need = parser
            .bytes_needed()
            .saturating_sub(buf.len())
            .min(buf.len().max(READ_CHUNK));
        let read = if state.held.get() {
            // Read on while held, to see the client go, until the hold ends.
            let read = async { Some(stream.read_into(&mut buf, need, read_size).await) };
            let resumed = async {
                state.resumed.wait().await;
                None
            };
            futures_lite::future::or(resumed, read).await
        } else {
            Some(match config.idle_timeout {
                Some(idle) => {
                    let read = async { Ok(stream.read_into(&mut buf, need, read_size).await) };
                    match glommio::timer::timeout(idle, read).await {
                        Ok(read) => read,
                        // Idle means no request arriving and none outstanding, as in Redis,
                        // where monitors and subscribers are never idle.
                        Err(_)
                            if state.replies.borrow().is_empty()
                                && !state.pubsub.is_active()
                                && !shard.is_monitor(state.identity.id) =>
                        {
                            debug!(?peer, "idle client timed out");
                            return;
                        }
                        Err(_) => continue,
                    }
                }
                None => stream.read_into(&mut buf, need, read_size).await,
            })
        };
        if let Some(read) = read {
            match read {
                Ok(0) | Err(_) => {
                    let end = match read {
                        Ok(_) => &shard.counters().client_eof,
                        Err(_) => &shard.counters().client_err,
                    };
                    Counters::bump(end);
                    state.close_after_replies();
                    session::peer_closed(shard, state);
                    continue;
                }
                // A read as large as the read size: the client sends in bulk, read more at a
                // time.
                Ok(n) => {
                    Counters::add(&shard.counters().bytes_in, n as u64);
                    if n >= read_size {
                        read_size = (read_size * 2).min(READ_CHUNK);
                    }
                }
            }
            if buf.len() < parser.bytes_needed() || state.held.get() {
                continue;
            }
        }
        let mut held = None;
        let parsed = loop {
            match parse_and_dispatch(shard, state, &mut parser, &mut buf) {
                Ok(Parsed::Paused) => {
                    held.get_or_insert_with(|| Blocked::count(&shard.counters().blocked));
                    glommio::timer::sleep(pause::POLL).await
                }
                Ok(Parsed::Behind) => state.writes.caught_up().await,
                other => break other,
            }
        };
        drop(held);
        if let Err(err) = parsed {
            debug!(?peer, %err, "client protocol error");
            Counters::bump(&shard.counters().client_err);
            let mut reply = BytesMut::new();
            encode::error(&mut reply, &format!("ERR {err}"));
            let seq = state.reserve(Instant::now());
            state.complete(seq, reply.freeze(), None);
            state.close_after_replies();
            continue;
        }
        if buf.len() > config.max_query_buffer {
            debug!(
                ?peer,
                len = buf.len(),
                "client query buffer limit reached, closing"
            );
            Counters::bump(&shard.counters().client_err);
            return;
        }
    }
}

/// One client counted as blocked (INFO blocked_clients) for as long as this lives, however
/// its wait ends (the connection may be dropped while it waits).
struct Blocked<'a>(&'a Cell<u64>);

impl<'a> Blocked<'a> {
    fn count(gauge: &'a Cell<u64>) -> Self {
        gauge.set(gauge.get() + 1);
        Blocked(gauge)
    }
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}
