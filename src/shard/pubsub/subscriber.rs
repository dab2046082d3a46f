//! One client's side of pub/sub: what it is subscribed to, and the messages waiting to be
//! written to it.
//!
//! Messages are not replies to any request, so they do not take a place in the client's
//! ordered reply queue. They wait in a queue of their own, each marked with the reply it must
//! follow: the last one reserved when it arrived, as a node writes a message after the replies
//! to the commands it has already run. The client's writer interleaves them at reply
//! boundaries. This queue is bounded like Redis's pubsub output class: the hub never waits for
//! a slow subscriber, it cuts it off ([`OutputLimit`]).
//!
//! A client that never subscribes pays one pointer here and a flag check in its writer.

use std::cell::{Cell, RefCell};
use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::command::pubsub::Kind;
use crate::config::OutputLimit;
use crate::net::WriteBatch;

/// Message capacity a subscriber's queue keeps once drained; more is released, so a burst
/// does not pin memory for the life of the connection.
const KEEP_PUSHES: usize = 64;

/// A message waiting to be written.
struct Push {
    /// Written once the client's reply queue has sent every reply before this sequence
    /// number (the replies reserved when the message arrived).
    after: u64,
    /// The frame, in the client's protocol.
    frame: Bytes,
}

/// What a subscribed client holds; allocated on its first subscription.
#[derive(Default)]
struct State {
    /// Its channels, patterns and sharded channels, indexed by [`Kind::index`].
    names: [HashSet<Bytes>; 3],
    /// Messages waiting to be written, oldest first.
    pushes: VecDeque<Push>,
    /// Bytes of `pushes`.
    bytes: usize,
    /// Since when the output has been over the soft limit, while it stays over.
    over_soft_since: Option<Instant>,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The output went past a limit: the client must be cut off.
    OverLimit,
}

/// A client's subscriptions and waiting messages.
#[derive(Default)]
pub struct Subscriber {
    /// Subscribed to at least one name: RESP2's subscribe mode.
    active: Cell<bool>,
    /// Messages waiting, so the writer checks a number, not the state.
    waiting: Cell<usize>,
    state: RefCell<Option<Box<State>>>,
}

impl Subscriber {
    /// Whether the client is subscribed to anything.
    pub fn is_active(&self) -> bool {
        self.active.get()
    }

    /// Whether the client ever subscribed (its state may hold names or messages).
    pub fn has_state(&self) -> bool {
        self.state.borrow().is_some()
    }

    /// Adds `name`; returns whether it is new and the count a confirmation carries.
    pub fn add(&self, kind: Kind, name: &Bytes) -> (bool, usize) {
        let mut state = self.state.borrow_mut();
        let state = state.get_or_insert_with(Box::default);
        let added = state.names[kind.index()].insert(name.clone());
        self.active.set(true);
        (added, count(state, kind))
    }

    /// Removes `name`; returns whether it was there and the count a confirmation carries.
    pub fn remove(&self, kind: Kind, name: &[u8]) -> (bool, usize) {
        let mut state = self.state.borrow_mut();
        let Some(state) = state.as_mut() else {
            return (false, 0);
        };
        let removed = state.names[kind.index()].remove(name);
        self.active
            .set(state.names.iter().any(|names| !names.is_empty()));
        (removed, count(state, kind))
    }

    /// The count a confirmation of `kind` carries now.
    pub fn count(&self, kind: Kind) -> usize {
        self.state
            .borrow()
            .as_ref()
            .map_or(0, |state| count(state, kind))
    }

    /// The names of `kind` the client holds.
    pub fn names(&self, kind: Kind) -> Vec<Bytes> {
        self.state.borrow().as_ref().map_or_else(Vec::new, |state| {
            state.names[kind.index()].iter().cloned().collect()
        })
    }

    /// How many channels, patterns and sharded channels the client holds (CLIENT LIST).
    pub fn counts(&self) -> [usize; 3] {
        self.state
            .borrow()
            .as_ref()
            .map_or([0; 3], |state| state.names.each_ref().map(HashSet::len))
    }

    /// Forgets every subscription (RESET, or the connection closing); messages already queued
    /// still go out in order.
    pub fn clear(&self) {
        if let Some(state) = self.state.borrow_mut().as_mut() {
            state.names = Default::default();
        }
        self.active.set(false);
    }

    /// Queues `frame` to be written after the reply with sequence number `after - 1`, unless
    /// that takes the output (these messages plus `replies` bytes of unwritten replies) past
    /// `limit`.
    pub fn push(
        &self,
        frame: Bytes,
        after: u64,
        replies: usize,
        limit: &OutputLimit,
    ) -> Result<(), Refused> {
        let mut state = self.state.borrow_mut();
        let state = state.get_or_insert_with(Box::default);
        state.bytes += frame.len();
        state.pushes.push_back(Push { after, frame });
        self.waiting.set(state.pushes.len());
        let total = state.bytes + replies;
        if limit.hard > 0 && total > limit.hard {
            return Err(Refused::OverLimit);
        }
        if limit.soft > 0 && total > limit.soft {
            let now = Instant::now();
            let since = *state.over_soft_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= limit.soft_for {
                return Err(Refused::OverLimit);
            }
        } else {
            state.over_soft_since = None;
        }
        Ok(())
    }

    /// Whether messages wait (a flag check for clients that never subscribed).
    pub fn has_waiting(&self) -> bool {
        self.waiting.get() > 0
    }

    /// Moves the messages that may be written now that every reply before `written` has
    /// been, into `batch` (as many as fit); returns whether it moved any.
    pub fn take_due(&self, written: u64, batch: &mut WriteBatch) -> bool {
        let mut state = self.state.borrow_mut();
        let Some(state) = state.as_mut() else {
            return false;
        };
        let mut moved = false;
        while !batch.is_full() {
            if state.pushes.front().is_none_or(|push| push.after > written) {
                break;
            }
            let Some(push) = state.pushes.pop_front() else {
                break;
            };
            state.bytes -= push.frame.len();
            batch.push(push.frame);
            moved = true;
        }
        if state.pushes.is_empty() && state.pushes.capacity() > KEEP_PUSHES {
            state.pushes.shrink_to(KEEP_PUSHES);
        }
        self.waiting.set(state.pushes.len());
        moved
    }
}

/// The count a confirmation of `kind` carries: channels and patterns together, or sharded
/// channels alone, as Redis counts them.
fn count(state: &State, kind: Kind) -> usize {
    Kind::ALL
        .iter()
        .filter(|other| kind.counts_with(**other))
        .map(|other| state.names[other.index()].len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limit(hard: usize, soft: usize, soft_for: Duration) -> OutputLimit {
        OutputLimit {
            hard,
            soft,
            soft_for,
        }
    }

    #[test]
    fn counts_as_redis_does() {
        let sub = Subscriber::default();
        let name = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        assert!(!sub.is_active());
        assert_eq!(sub.add(Kind::Channel, &name("a")), (true, 1));
        assert_eq!(sub.add(Kind::Channel, &name("a")), (false, 1));
        assert_eq!(sub.add(Kind::Pattern, &name("p*")), (true, 2));
        assert_eq!(sub.add(Kind::Shard, &name("s")), (true, 1));
        assert_eq!(sub.counts(), [1, 1, 1]);
        assert_eq!(sub.remove(Kind::Channel, b"a"), (true, 1));
        assert_eq!(sub.remove(Kind::Pattern, b"p*"), (true, 0));
        assert!(sub.is_active(), "still subscribed to a sharded channel");
        assert_eq!(sub.remove(Kind::Shard, b"s"), (true, 0));
        assert!(!sub.is_active());
        assert_eq!(sub.remove(Kind::Shard, b"s"), (false, 0));
    }

    #[test]
    fn messages_wait_for_the_replies_before_them() {
        let sub = Subscriber::default();
        let unlimited = limit(0, 0, Duration::ZERO);
        for (frame, after) in [("m1", 3), ("m2", 3), ("m3", 5)] {
            let frame = Bytes::copy_from_slice(frame.as_bytes());
            assert_eq!(sub.push(frame, after, 0, &unlimited), Ok(()));
        }
        let mut batch = WriteBatch::new(8);
        assert!(!sub.take_due(2, &mut batch), "reply 2 is not written yet");
        assert!(sub.take_due(3, &mut batch));
        assert!(sub.has_waiting() && !sub.take_due(4, &mut batch));
        assert!(sub.take_due(7, &mut batch));
        assert!(!sub.has_waiting());
    }

    #[test]
    fn limits() {
        let sub = Subscriber::default();
        let frame = Bytes::from(vec![b'x'; 100]);
        let hard = limit(250, 0, Duration::ZERO);
        assert_eq!(sub.push(frame.clone(), 0, 0, &hard), Ok(()));
        assert_eq!(
            sub.push(frame.clone(), 0, 100, &hard),
            Err(Refused::OverLimit)
        );

        let sub = Subscriber::default();
        let soft = limit(0, 150, Duration::ZERO);
        assert_eq!(sub.push(frame.clone(), 0, 0, &soft), Ok(()));
        assert_eq!(
            sub.push(frame.clone(), 0, 0, &soft),
            Err(Refused::OverLimit)
        );

        let sub = Subscriber::default();
        let patient = limit(0, 150, Duration::from_secs(60));
        assert_eq!(sub.push(frame.clone(), 0, 0, &patient), Ok(()));
        assert_eq!(
            sub.push(frame, 0, 0, &patient),
            Ok(()),
            "over soft, not for long"
        );
    }
}
