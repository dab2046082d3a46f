//! A single-waiter wake-up flag for tasks on one core.
//!
//! Backends wake a client's writer when its oldest reply is ready, clients wake a backend's
//! writer when they queue a request. Each of these has exactly one waiting task on the same
//! thread, so a `Cell` flag plus one stored waker does the job: no atomics, no allocation,
//! and a notify before the wait is not lost.

use std::cell::Cell;
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// Wakes one task on this core.
#[derive(Default)]
pub struct Signal {
    notified: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Signal {
    /// Sets the flag and wakes the waiting task, if any.
    pub fn notify(&self) {
        self.notified.set(true);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    /// Waits until notified, then clears the flag.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.notified.replace(false) {
                Poll::Ready(())
            } else {
                // A task polls its signals again whenever anything else wakes it (a client's
                // reader and writer share one task).
                let mut stored = self.waker.take();
                store_waker(&mut stored, cx.waker());
                self.waker.set(stored);
                Poll::Pending
            }
        })
        .await
    }
}

/// Stores `waker` in `stored` to be woken later, keeping the one already there when it wakes
/// the same task: a task that polls again without having been woken does not clone its waker
/// and drop the last one each time.
pub fn store_waker(stored: &mut Option<Waker>, waker: &Waker) {
    match stored {
        Some(old) if old.will_wake(waker) => {}
        _ => *stored = Some(waker.clone()),
    }
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("notified", &self.notified.get())
            .finish()
    }
}
