//! The driver of a core's socket ring: one task that submits what the core's tasks queued and
//! delivers the completions, in rounds, and puts the core to sleep when there is nothing to do.
//!
//! It runs in a task queue of its own, so it can tell when no other task of the core can run.
//! Then it waits in the ring for the next completion, for up to [`NAP`]; only when that runs out
//! does it park through glommio, by reading an eventfd registered with the ring, so either side
//! wakes the core. glommio's park allocates and makes system calls of its own each time (timer
//! sources, its three rings): at `-P 1` a core runs out of work between most requests, and that
//! cost was ~24 allocations per request with one client. The eventfd is silenced except while
//! parked, so it costs nothing otherwise.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use glommio::io::BufferedFile;
use glommio::{Latency, Shares, Task, TaskQueueHandle};

use super::ring::Uring;
use crate::error::RingError;

/// Longest the driver waits in the ring itself, when nothing else on the core can run, before
/// it parks through glommio. Under load the next completion comes well within it, so the core
/// never goes through glommio's park (several allocations and system calls each time); glommio's
/// timers and cross-core messages wait at most this long meanwhile.
const NAP: Duration = Duration::from_millis(1);

/// Starts the core's driver ([`drive`]) in a task queue of its own, so that it can tell when the
/// rest of the core (the calling task's queue) has nothing to run. The task ends only if the
/// ring fails, with the reason: the core cannot serve without it.
pub fn spawn_driver(uring: Rc<Uring>) -> Result<Task<RingError>, RingError> {
    let executor = glommio::executor();
    let others = executor.current_task_queue();
    // One share against the default queue's thousand: whenever the other queue has anything
    // to run, the scheduler picks it before the driver's next round.
    let queue = executor.create_task_queue(Shares::Static(1), Latency::NotImportant, "ring");
    glommio::spawn_local_into(async move { drive(&uring, others).await }, queue)
        .map_err(|err| RingError::Driver(err.to_string()))
}

/// Whether the tasks of queue `others` have run since the last call.
fn others_ran(others: TaskQueueHandle) -> bool {
    // The stats are taken (reset) by each read. Were the queue ever gone, answering "no" costs
    // at most a 1 ms wait before the park; "yes" would spin the driver.
    glommio::executor()
        .task_queue_stats(others)
        .is_ok_and(|stats| stats.queue_selected() > 0)
}

/// Runs the core's ring until it fails: submits and reaps in rounds while there is work. When
/// there is none and no other task of the core can run, waits in the ring for up to [`NAP`];
/// after that, parks on the eventfd (through glommio) until woken.
async fn drive(uring: &Uring, others: TaskQueueHandle) -> RingError {
    // SAFETY: dup returns a new descriptor (or -1, checked) that the BufferedFile then owns.
    let dup = unsafe { libc::dup(uring.eventfd.as_raw_fd()) };
    if dup < 0 {
        let err = io::Error::last_os_error();
        return RingError::Driver(format!("cannot duplicate the ring's eventfd: {err}"));
    }
    // SAFETY: `dup` is a fresh descriptor owned by nothing else.
    let bell = unsafe { BufferedFile::from_raw_fd(dup) };
    // The pending eventfd read, kept across kicks (dropping it would cancel it in glommio) and
    // pinned here rather than boxed, so a park allocates nothing of percore's own.
    let mut ringing = std::pin::pin!(None);
    loop {
        if let Some(err) = uring.take_failure() {
            return RingError::Enter(err);
        }
        uring.busy.set(true);
        let reaped = uring.reap(false);
        if uring.end_round(reaped) || others_ran(others) {
            // Let the woken tasks run; what they queue goes out in the next round.
            glommio::executor().yield_task_queue_now().await;
            continue;
        }
        // Nothing came back and nothing else can run: wait in the ring.
        let reaped = uring.nap(NAP);
        if uring.end_round(reaped) {
            glommio::executor().yield_task_queue_now().await;
            continue;
        }
        // Nothing came back: arm the eventfd, then look once more, so a completion that
        // arrived in between is not left waiting for the next one.
        uring.set_eventfd(true);
        if uring.end_round(uring.reap(false)) {
            uring.set_eventfd(false);
            glommio::executor().yield_task_queue_now().await;
            continue;
        }
        uring.busy.set(false);
        uring.stop_clock();
        uring.parks.set(uring.parks.get() + 1);
        if ringing.is_none() {
            ringing.set(Some(bell.read_at(0, 8)));
        }
        let read = ringing.as_mut();
        let rang = future::or(
            async {
                if let Some(read) = read.as_pin_mut() {
                    let _ = read.await;
                }
                true
            },
            async {
                uring.kick.wait().await;
                false
            },
        )
        .await;
        if rang {
            ringing.set(None);
        }
        uring.set_eventfd(false);
    }
}
