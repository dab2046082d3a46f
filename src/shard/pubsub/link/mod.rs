//! A subscription connection ("link") from this core's hub to one node: it holds the names
//! the hub needs from that node, and hands every message it receives to the hub.
//!
//! What the link holds is kept per name: asked for and not yet confirmed ([`Hold::Pending`],
//! with the clients waiting for that confirmation) or confirmed. Commands go out in order and
//! their confirmations come back in order, one frame per name, so the oldest command in flight
//! is always the one a confirmation answers; messages come in between. A node also sends an
//! `sunsubscribe` of its own accord when a sharded channel's slot leaves it: that one matches
//! no command in flight, and the hub moves the channel to the slot's new owner.
//!
//! Failure model, as for the shared connections: a reset, garbage, refused credentials, or a
//! command unanswered for `--backend-timeout` ends the connection. Clients waiting for a confirmation are answered
//! (they are subscribed as far as percore is concerned), the link reconnects with backoff and
//! the hub subscribes everything again. The time without delivery is a gap, counted in
//! PROXY INFO and logged. A link that holds nothing closes, so idle cores keep no connection.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tracing::warn;

use crate::command::pubsub::Kind;
use crate::metrics::Counters;
use crate::resp::{encode, Protocol};

use super::super::Shard;
use super::Confirm;

mod wire;

pub use wire::run;

/// Most names in one SUBSCRIBE or PSUBSCRIBE: thousands of subscriptions re-made after a
/// reconnect go out in a few commands, none of them huge.
const MAX_BATCH: usize = 512;
/// The name a link gives itself on the node (`CLIENT LIST`), so operators can tell it apart.
const LINK_NAME: &[u8] = b"percore-pubsub";

/// What a command in flight asks the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Subscribe(Kind),
    Unsubscribe(Kind),
    /// PING: its `pong` (or `+PONG`) is one frame.
    Ping,
    /// CLIENT SETNAME: its `+OK` is one frame.
    SetName,
    /// AUTH with percore's backend credentials, first on the connection: `+OK`, or an error
    /// that ends the connection.
    Auth,
}

/// One command to the node, and who waits for its confirmations.
pub struct Op {
    verb: Verb,
    /// The names, one confirmation frame each (none for PING and SETNAME).
    names: RefCell<Vec<Bytes>>,
    /// Confirmation frames received so far.
    answered: Cell<usize>,
    /// Clients whose confirmation waits for this command's.
    waiters: RefCell<Vec<Rc<Confirm>>>,
    /// When it was written, for the timeout.
    sent: Cell<Option<Instant>>,
    /// Times this subscription was sent again after MOVED.
    redirects: u8,
    /// When delivery of this sharded channel stopped (its slot moved), for the gap count.
    gap_since: Option<Instant>,
}

impl Op {
    fn new(verb: Verb, names: Vec<Bytes>, redirects: u8, gap_since: Option<Instant>) -> Rc<Op> {
        Rc::new(Op {
            verb,
            names: RefCell::new(names),
            answered: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
            sent: Cell::new(None),
            redirects,
            gap_since,
        })
    }

    /// Frames the node answers this command with.
    fn frames(&self) -> usize {
        match self.verb {
            Verb::Subscribe(_) | Verb::Unsubscribe(_) => self.names.borrow().len(),
            Verb::Ping | Verb::SetName | Verb::Auth => 1,
        }
    }

    /// Appends the command; `auth` is percore's backend user and password, if any.
    fn encode(&self, out: &mut BytesMut, auth: Option<(Option<&str>, &str)>) {
        let names = self.names.borrow();
        let word: &[u8] = match self.verb {
            Verb::Subscribe(kind) => kind.subscribe_command(),
            Verb::Unsubscribe(kind) => kind.unsubscribe_command(),
            Verb::Ping => return encode::command(out, [&b"PING"[..]]),
            Verb::SetName => return encode::command(out, [&b"CLIENT"[..], b"SETNAME", LINK_NAME]),
            Verb::Auth => {
                encode::handshake(out, Protocol::Resp2, auth);
                return;
            }
        };
        let args: Vec<&[u8]> = std::iter::once(word)
            .chain(names.iter().map(|name| &name[..]))
            .collect();
        encode::command(out, args);
    }

    /// Answers every client waiting for this command.
    fn release(&self) {
        for waiter in self.waiters.take() {
            waiter.release();
        }
    }
}

/// A name the link holds.
enum Hold {
    /// Asked for by this command, confirmation not here yet.
    Pending(Rc<Op>),
    /// Confirmed by the node.
    Confirmed,
}

/// Connection state, as the hub sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Connecting or connected: commands queue.
    Open,
    /// Failed, waiting to reconnect: nothing queues; the hub subscribes again once it is back.
    Down,
}

/// One subscription connection.
pub struct Link {
    /// The node's `host:port`.
    pub addr: Rc<str>,
    state: Cell<State>,
    held: RefCell<HashMap<(Kind, Bytes), Hold>>,
    /// Commands not written yet.
    queue: RefCell<VecDeque<Rc<Op>>>,
    /// Commands written, oldest first.
    inflight: RefCell<VecDeque<Rc<Op>>>,
    wake_writer: crate::sync::Signal,
    /// A frame arrived since the last liveness check.
    heard: Cell<bool>,
    /// Delivery stopped at this time, holding this many names, until they are back.
    gap: Cell<Option<(Instant, usize)>>,
}

impl Link {
    /// A link to `addr`; [`run`] must be spawned for it to connect.
    pub fn new(addr: Rc<str>) -> Link {
        Link {
            addr,
            state: Cell::new(State::Open),
            held: RefCell::new(HashMap::new()),
            queue: RefCell::new(VecDeque::new()),
            inflight: RefCell::new(VecDeque::new()),
            wake_writer: crate::sync::Signal::default(),
            heard: Cell::new(false),
            gap: Cell::new(None),
        }
    }

    /// Makes the node hold `name`; `waiter`'s confirmation waits until it does (not when the
    /// link is down: the hub subscribes again once it is back).
    pub fn hold(&self, kind: Kind, name: &Bytes, waiter: Option<&Rc<Confirm>>) {
        let waiters = waiter.map(|waiter| {
            waiter.hold();
            waiter.clone()
        });
        self.hold_with(kind, name, waiters.into_iter().collect(), 0, None);
    }

    /// [`Link::hold`] for waiters already counting on it (each is released once), after
    /// `redirects` MOVEDs, with a gap running since `gap_since`.
    pub fn hold_with(
        &self,
        kind: Kind,
        name: &Bytes,
        waiters: Vec<Rc<Confirm>>,
        redirects: u8,
        gap_since: Option<Instant>,
    ) {
        if self.state.get() == State::Down {
            waiters.iter().for_each(|w| w.release());
            return;
        }
        let mut held = self.held.borrow_mut();
        let op = match held.get(&(kind, name.clone())) {
            Some(Hold::Confirmed) => {
                waiters.iter().for_each(|w| w.release());
                return;
            }
            Some(Hold::Pending(op)) => op.clone(),
            None => {
                let op = self.enqueue(Verb::Subscribe(kind), name, redirects, gap_since);
                held.insert((kind, name.clone()), Hold::Pending(op.clone()));
                op
            }
        };
        op.waiters.borrow_mut().extend(waiters);
    }

    /// Makes the node drop `name`, if the link holds it.
    pub fn release(&self, kind: Kind, name: &[u8]) {
        let key = (kind, Bytes::copy_from_slice(name));
        if self.held.borrow_mut().remove(&key).is_some() && self.state.get() == State::Open {
            self.enqueue(Verb::Unsubscribe(kind), &key.1, 0, None);
        }
    }

    /// Whether the link holds (or has asked for) `name`.
    pub fn holds(&self, kind: Kind, name: &[u8]) -> bool {
        self.held
            .borrow()
            .contains_key(&(kind, Bytes::copy_from_slice(name)))
    }

    /// Everything the link holds or has asked for.
    pub fn held(&self) -> Vec<(Kind, Bytes)> {
        self.held.borrow().keys().cloned().collect()
    }

    /// Whether the link is connected or connecting (not in backoff).
    pub fn is_open(&self) -> bool {
        self.state.get() == State::Open
    }

    /// Holds nothing and waits for nothing: it can close.
    fn is_idle(&self) -> bool {
        self.held.borrow().is_empty()
            && self.queue.borrow().is_empty()
            && self.inflight.borrow().is_empty()
    }

    /// Queues a command for `name`, joining the last queued one when it has the same verb (a
    /// sharded channel goes alone: a node refuses channels of several slots in one command).
    fn enqueue(&self, verb: Verb, name: &Bytes, redirects: u8, gap: Option<Instant>) -> Rc<Op> {
        let mut queue = self.queue.borrow_mut();
        let joinable = !matches!(
            verb,
            Verb::Subscribe(Kind::Shard) | Verb::Unsubscribe(Kind::Shard)
        );
        if let Some(last) = queue.back() {
            if joinable && last.verb == verb && last.names.borrow().len() < MAX_BATCH {
                last.names.borrow_mut().push(name.clone());
                return last.clone();
            }
        }
        let op = Op::new(verb, vec![name.clone()], redirects, gap);
        queue.push_back(op.clone());
        self.wake_writer.notify();
        op
    }

    /// Queues a one-frame command (PING, SETNAME), first if `first`.
    fn enqueue_single(&self, verb: Verb, first: bool) {
        let op = Op::new(verb, Vec::new(), 0, None);
        let mut queue = self.queue.borrow_mut();
        if first {
            queue.push_front(op);
        } else {
            queue.push_back(op);
        }
        self.wake_writer.notify();
    }

    /// The connection failed: answer everyone waiting, remember the gap, forget what was held.
    fn fail(&self) {
        self.state.set(State::Down);
        let confirmed = self
            .held
            .borrow()
            .values()
            .filter(|hold| matches!(hold, Hold::Confirmed))
            .count();
        if confirmed > 0 && self.gap.get().is_none() {
            self.gap.set(Some((Instant::now(), confirmed)));
        }
        self.held.borrow_mut().clear();
        let inflight = std::mem::take(&mut *self.inflight.borrow_mut());
        let queued = std::mem::take(&mut *self.queue.borrow_mut());
        for op in inflight.into_iter().chain(queued) {
            op.release();
        }
    }

    /// Counts and logs the gap that ended now, if one was open.
    fn end_gap(&self, shard: &Shard, why: &str) {
        if let Some((since, names)) = self.gap.take() {
            let ms = since.elapsed().as_millis() as u64;
            let counters = shard.counters();
            Counters::bump(&counters.pubsub_gaps);
            counters
                .pubsub_gap_ms
                .set(counters.pubsub_gap_ms.get() + ms);
            warn!(
                core = shard.id(),
                pool = shard.pool_name(),
                node = %self.addr,
                names,
                ms,
                "pub/sub subscriptions {why}; messages published during the gap were not delivered"
            );
        }
    }
}
