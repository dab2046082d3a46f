//! What a backend connection tells its server's counters: how it ended, that it is open, and
//! what waits on it (nutcracker's `server_eof`/`server_timedout`/`server_err`,
//! `server_connections`, `in_queue` and `out_queue`).

use crate::error::BackendError;
use crate::metrics::{ConnectionEnd, Queues, ServerCounters};
use crate::net::CLOSED_BY_PEER;

use super::{Backend, Outbound};

impl Backend {
    /// What waits on this connection now (nutcracker's in_queue and out_queue).
    pub fn queues(&self) -> Queues {
        let measure = |requests: &mut dyn Iterator<Item = &Outbound>| {
            requests.fold((0, 0), |(n, bytes), out| {
                (n + 1, bytes + out.request.len() as u64)
            })
        };
        let waiting = self.waiting.borrow();
        let (mut written, mut unwritten) = waiting.split();
        let (in_queue, in_queue_bytes) = measure(&mut unwritten);
        let (out_queue, out_queue_bytes) = measure(&mut written);
        Queues {
            in_queue,
            in_queue_bytes,
            out_queue,
            out_queue_bytes,
        }
    }
}

/// The counter a connection's failure goes to: the node closed it, it timed out, or it failed
/// otherwise (as nutcracker tells `server_eof`, `server_timedout` and `server_err` apart).
pub(super) fn connection_end(error: &BackendError) -> ConnectionEnd {
    match error {
        BackendError::Timeout { .. } => ConnectionEnd::TimedOut,
        BackendError::Lost { reason, .. } if reason == CLOSED_BY_PEER => ConnectionEnd::Eof,
        _ => ConnectionEnd::Error,
    }
}

/// Counts an open connection closed when dropped, however its task ends.
pub(super) struct Disconnects<'a>(pub(super) &'a ServerCounters);

impl Drop for Disconnects<'_> {
    fn drop(&mut self) {
        self.0.disconnected();
    }
}
