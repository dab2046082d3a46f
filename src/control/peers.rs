//! The fleet health check: which of the other percore instances (`--proxy-peers`) are alive,
//! so each instance advertises only the live ones to cluster-mode clients.
//!
//! One task per peer, on one core, PINGs it every [`PING_INTERVAL`] over a connection it keeps
//! open (made again after any failure), each ping bounded by [`PING_TIMEOUT`]. Any reply counts,
//! even an error such as NOAUTH: it is the proxy being up that matters, not what it lets this
//! one do. A peer is live while its last reply is under [`MISSING_AFTER`] old, so one lost
//! ping does not make clients move. Whenever the live set changes it is handed to `publish`
//! (which tells every core); nothing here knows of shards or of what is advertised.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::error::ReplyError;
use crate::net::{connect, ConnectError, Stream, Uring};
use crate::resp::scan::reply_len;

/// How often each peer is PINGed. Clients learn of a peer's death from their own connection
/// errors at once; this bounds how long new clients may still be told of a dead peer.
pub const PING_INTERVAL: Duration = Duration::from_millis(500);

/// Bound on one ping (connect included). percore answers PING itself, in microseconds; a
/// peer that takes longer than this is stalled or gone, and on loopback or a LAN a connect
/// takes well under a millisecond.
pub const PING_TIMEOUT: Duration = Duration::from_millis(250);

/// A peer that has not answered for this long leaves the advertised map: four pings in a
/// row, so a single lost one or a short pause does not move every client's slots.
pub const MISSING_AFTER: Duration = Duration::from_secs(2);

/// How often the live set is worked out from the pings' results. Short against
/// [`MISSING_AFTER`], so a peer leaves close to 2 s after its last answer; the work is a
/// comparison of a few addresses.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Largest reply accepted to a PING (PONG, or an error line).
const MAX_REPLY: usize = 4096;

/// The request.
const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// Why one ping failed.
#[derive(Debug, Error)]
enum PingError {
    /// No connection.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The connection broke.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection.
    #[error("connection closed")]
    Closed,
    /// The reply is not RESP, or too long for a PING's.
    #[error("bad reply")]
    BadReply,
    /// No reply within [`PING_TIMEOUT`].
    #[error("timed out")]
    TimedOut,
}

impl From<ReplyError> for PingError {
    fn from(_: ReplyError) -> Self {
        PingError::BadReply
    }
}

/// What the health check needs: the core's ring and whom to watch.
pub struct PeerWatch {
    /// The core's socket ring.
    pub uring: Rc<Uring>,
    /// The other instances' announce addresses (never this one's own).
    pub peers: Vec<String>,
}

impl PeerWatch {
    /// Runs forever, handing every change of the live set (in `peers` order) to `publish`.
    /// Until a peer first answers it is not live, so a fleet starting together grows into
    /// the map within a ping of each member listening. Dropped (its pool removed by a
    /// reload), it ends its pings too: they are tasks it holds, not detached ones.
    pub async fn run<F, Fut>(self, mut publish: F)
    where
        F: FnMut(Arc<[String]>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let last_seen: Rc<[Cell<Option<Instant>>]> =
            self.peers.iter().map(|_| Cell::new(None)).collect();
        let _pings: Vec<_> = (self.peers.iter().enumerate())
            .map(|(index, peer)| {
                let watch = watch(self.uring.clone(), peer.clone(), last_seen.clone(), index);
                glommio::spawn_local(watch)
            })
            .collect();
        let mut advertised: Vec<String> = Vec::new();
        loop {
            glommio::timer::sleep(CHECK_EVERY).await;
            let live = live_peers(&self.peers, &last_seen, Instant::now());
            if live == advertised {
                continue;
            }
            for peer in live.iter().filter(|p| !advertised.contains(p)) {
                info!(peer, "percore peer is live; advertising it");
            }
            for peer in advertised.iter().filter(|p| !live.contains(p)) {
                warn!(peer, missing = ?MISSING_AFTER, "percore peer stopped answering; no longer advertising it");
            }
            publish(Arc::from(live.as_slice())).await;
            advertised = live;
        }
    }
}

/// The peers whose last answer (if any) is under [`MISSING_AFTER`] old at `now`.
fn live_peers(peers: &[String], last_seen: &[Cell<Option<Instant>>], now: Instant) -> Vec<String> {
    peers
        .iter()
        .zip(last_seen)
        .filter(|(_, seen)| {
            seen.get()
                .is_some_and(|at| now.saturating_duration_since(at) < MISSING_AFTER)
        })
        .map(|(peer, _)| peer.clone())
        .collect()
}

/// PINGs `peer` every [`PING_INTERVAL`], forever, recording each answer's time.
async fn watch(
    uring: Rc<Uring>,
    peer: String,
    last_seen: Rc<[Cell<Option<Instant>>]>,
    index: usize,
) {
    let mut conn: Option<Stream> = None;
    loop {
        let started = Instant::now();
        let pinged = glommio::timer::timeout(PING_TIMEOUT, async {
            Ok(ping(&uring, &mut conn, &peer).await)
        })
        .await
        .unwrap_or(Err(PingError::TimedOut));
        match pinged {
            Ok(()) => last_seen[index].set(Some(Instant::now())),
            Err(error) => {
                // The next ping starts on a fresh connection (a late PONG must not be read
                // as the answer to it).
                conn = None;
                debug!(peer, %error, "peer ping failed");
            }
        }
        glommio::timer::sleep(PING_INTERVAL.saturating_sub(started.elapsed())).await;
    }
}

/// One PING on `conn` (connected first if need be), until its reply is complete.
async fn ping(uring: &Rc<Uring>, conn: &mut Option<Stream>, peer: &str) -> Result<(), PingError> {
    if conn.is_none() {
        *conn = Some(connect(uring, peer, PING_TIMEOUT).await?);
    }
    let Some(stream) = conn.as_ref() else {
        return Err(PingError::Closed);
    };
    stream.write_all(PING).await?;
    let mut buf = BytesMut::new();
    loop {
        if stream.read_into(&mut buf, 0, MAX_REPLY).await? == 0 {
            return Err(PingError::Closed);
        }
        match reply_len(&buf)? {
            Some(len) if len == buf.len() => return Ok(()),
            // More than one reply: not an answer to one PING.
            Some(_) => return Err(PingError::BadReply),
            None if buf.len() > MAX_REPLY => return Err(PingError::BadReply),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_live_until_missing_for_two_seconds() {
        let peers = ["a:1".to_string(), "b:2".to_string(), "c:3".to_string()];
        let now = Instant::now() + Duration::from_secs(10);
        let seen = [
            Cell::new(Some(now - Duration::from_millis(1999))),
            Cell::new(Some(now - MISSING_AFTER)),
            Cell::new(None),
        ];
        assert_eq!(live_peers(&peers, &seen, now), ["a:1"]);
    }
}
