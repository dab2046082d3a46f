//! What a connection that fails keeps: the background writes (`async_writes`) waiting on it,
//! whose clients have had their `+OK` already. They go back to the front of the queue, in
//! their order, ahead of anything sent later, and are written again once the connection is
//! back (they are writes that may run twice); one sent while the node is down waits there
//! too. Once the node has been unreachable for `async_writes_retry_timeout`, they fail with
//! the rest (each then counted and logged as a failed background write), and so they do at
//! once when the connection is one a reload retired (its server left the pool), which is
//! never remade. A connection to a master Sentinel replaced gives its background writes up
//! to be sent to the new master (`take_background`, `sidecar::moves`).

use std::time::Duration;

use crate::error::BackendError;

use super::{Backend, Outbound};

impl Backend {
    /// This backend, keeping background writes for `retry` of an outage (`None`: the pool has
    /// none).
    pub fn retrying_background(mut self, retry: Option<Duration>) -> Self {
        self.retry_background = retry;
        self
    }

    /// Whether `out` is a background write this connection keeps while its node is down: it
    /// has not been down for longer than the pool's `async_writes_retry_timeout`.
    pub(super) fn keeps_background(&self, out: &Outbound) -> bool {
        let Some(retry) = self.retry_background else {
            return false;
        };
        let within = self
            .down_since
            .get()
            .is_none_or(|since| since.elapsed() < retry);
        within && out.reply_to.background_client().is_some()
    }

    /// Fails every request waiting on the connection, but the background writes it keeps
    /// ([`Backend::keeps_background`]), which go back to the queue in their order.
    pub(super) fn fail_all(&self, error: &BackendError) {
        self.fail_but(error, |out| self.keeps_background(out));
    }

    /// Fails every request waiting on the connection, background writes too: its server
    /// left the pool (a reload) and the connection is not remade, so nothing would ever
    /// send them (each is counted and logged as a failed background write).
    pub(super) fn fail_everything(&self, error: &BackendError) {
        self.fail_but(error, |_| false);
    }

    /// Takes out the background writes waiting on the connection, in their order (those in
    /// flight first): its node is no longer its server's master (a Sentinel failover), and
    /// they go to the new one. The rest stay, to fail when the connection ends; none of
    /// their replies is read any more ([`Backend::close`] came first).
    pub fn take_background(&self) -> Vec<Outbound> {
        if self.retry_background.is_none() {
            return Vec::new();
        }
        self.waiting
            .borrow_mut()
            .take_unless(|out| out.reply_to.background_client().is_none())
    }

    /// Fails every request waiting on the connection but those `kept`, which go back to the
    /// queue in their order.
    fn fail_but(&self, error: &BackendError, kept: impl Fn(&Outbound) -> bool) {
        let failed = {
            let mut waiting = self.waiting.borrow_mut();
            let failed = waiting.take_unless(kept);
            // What is kept is written again: none of it is on a wire any more.
            waiting.unwrite_all();
            failed
        };
        // ASKING's placeholders (no request of their own) are not requests that failed.
        self.counters
            .failed(failed.iter().filter(|out| !out.request.is_empty()).count());
        for out in failed {
            out.fail(error);
        }
    }
}
