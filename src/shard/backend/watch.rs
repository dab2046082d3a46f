//! The watchdogs of a backend connection: a request that waits for its reply past its time
//! fails the connection, so no client waits on a stuck node without end; and a connection
//! whose server left the pool is closed once nothing waits on it.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::BackendError;

use super::Backend;

/// How often a connection whose server left the pool looks whether its last request is
/// answered, to close then. Replies come in microseconds; a few milliseconds more of an idle
/// connection cost nothing.
const RETIRE_POLL: Duration = Duration::from_millis(5);

/// Longest a dedicated connection's watchdog sleeps while it is idle or its oldest request may
/// wait longer (a BLPOP with a long timeout, or none): a thousand blocked clients, or idle
/// pooled connections, then cost a thousand timer wake-ups a second, not four thousand. A
/// request arriving meanwhile is found overdue at most this late.
const LONG_WATCH: Duration = Duration::from_secs(1);

/// How often a watchdog looks at its connection's oldest request.
fn watch_period(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(5), Duration::from_millis(250))
}

/// Fails the connection when its oldest request has waited longer than `timeout()`, the
/// pool's backend timeout now (read at each look, so a reload's takes effect on connections
/// already open).
pub(super) async fn watch_timeouts(
    backend: &Backend,
    timeout: impl Fn() -> Duration,
) -> BackendError {
    loop {
        let timeout = timeout();
        glommio::timer::sleep(watch_period(timeout)).await;
        let oldest = backend
            .waiting
            .borrow()
            .oldest_written()
            .map(|out| out.sent);
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
pub(super) async fn watch_dedicated(backend: &Backend, timeout: Duration) -> BackendError {
    let period = watch_period(timeout);
    loop {
        let now = Instant::now();
        let left = backend.waiting.borrow().oldest_written().map(|out| {
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

impl Backend {
    /// Closes the connection once every request on it is answered (or failed by the backend
    /// timeout), and does not remake it: its server left the pool in a reload, and what was
    /// sent there before is answered there.
    pub fn close_when_idle(self: &Rc<Self>) {
        if self.retired.replace(true) {
            return;
        }
        let backend = self.clone();
        glommio::spawn_local(async move {
            while backend.pending() > 0 {
                glommio::timer::sleep(RETIRE_POLL).await;
            }
            backend.close();
        })
        .detach();
    }
}
