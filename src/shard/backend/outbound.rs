//! A request on its way to a node: what a backend connection queues, writes and matches its
//! reply to, and what a redirect sends again.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::cluster::slot::Slot;
use crate::config::ReadFrom;
use crate::error::BackendError;
use crate::resp::Protocol;

use crate::shard::reply_to::{failure, ReplyTo};

/// Which of a node's shared connections of the request's protocol carry it, beyond the
/// protocol: for a client that selected another database than the pool's, that database's
/// connection; for a pool with background writes, the client's own one of the node's
/// connections (so its later requests queue behind its background writes). The default, for
/// every other request, is the pool's database, connections taken in turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lane {
    /// The database, when not the pool's own (`SELECT` in a one-server pool).
    pub db: Option<u16>,
    /// Which connection (taken modulo their number), when not the next in turn.
    pub pin: Option<u32>,
}

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
    /// Which of the node's connections of `protocol` it goes on.
    pub lane: Lane,
    /// The read policy a read-only request follows (`shard::replica`); `Master` for every
    /// other request, and for every request of a pool and client that read masters.
    pub read_from: ReadFrom,
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
            lane: Lane::default(),
            read_from: ReadFrom::Master,
        }
    }

    /// This request, on `lane`'s connections.
    pub fn on(mut self, lane: Lane) -> Self {
        self.lane = lane;
        self
    }

    /// This request, following the read policy `read_from`.
    #[inline]
    pub fn reading(mut self, read_from: ReadFrom) -> Self {
        self.read_from = read_from;
        self
    }

    /// Delivers the reply `node` gave (`None`: the proxy made it), and with it the request's
    /// frame to a client's reply place, for the slow log.
    pub fn answer(self, reply: Bytes, node: Option<&Rc<str>>) {
        self.reply_to.answer(reply, node, self.request);
    }

    /// Fails the request with `error`.
    pub fn fail(self, error: &BackendError) {
        self.reply_to.answer(failure(error), None, self.request);
    }

    /// Patience of a request that may wait for its reply without end (BLPOP ... 0).
    pub const FOREVER: Duration = Duration::MAX;
}
