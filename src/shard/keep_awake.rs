//! Keeps a core's executor from sleeping for good with a task to run: a glommio 0.9.0 bug,
//! bounded from outside glommio by a thread that wakes the core every [`KEEP_AWAKE`].
//!
//! glommio's run loop arms its preempt timer in `poll_io`, then runs the task queues, and parks
//! whenever `run_task_queues` reports that it ran none. But that also happens when the preempt
//! timer has already fired before the first queue ran: the thread lost its CPU for longer than
//! the timer (`runtime::PREEMPT_EVERY`, 10 ms) inside `poll_io`, which a loaded machine does.
//! The loop then parks although a task is woken and waiting. The park consumes the fired timer
//! and sleeps until the next I/O completion, glommio timer or wake-up from another thread; when
//! there is none (the cores joining the channel mesh at start-up wait only on each other) it
//! sleeps forever. Measured before this: 12 starts in 500 on a loaded two-core machine (two
//! busy loops besides) left both cores asleep before the first topology was applied; 0 in 500
//! with the keep-awake, alternating with those.
//!
//! Why a thread and not a glommio timer: a timer ends one such park (a park sleeps until the
//! next timer at most), but its wake-up is itself a woken task that must run to arm the next
//! timer, and when the turn after the wake-up is preempted the same way nothing is pending any
//! more. With a 30 µs preempt timer (tests/executor.rs) a 25 ms keep-awake timer hung once in
//! 12 tries of 20,000 runs. A wake-up from another thread needs nothing re-armed by a task:
//! glommio queues it on its own channel and writes its notification eventfd, whose read the
//! loop re-arms at every turn before it checks for preemption; so the park ends, and each
//! period brings one more, however many turns in a row are preempted.
//!
//! What it cannot cover: the executor's turns before the calling task first runs (its first
//! turn, for `run_core`), as no task of percore's exists yet to be woken through. That turn
//! hangs only if the thread loses its CPU for longer than the preempt timer within microseconds
//! of arming it.
//!
//! [`keep_awake`] starts the thread for the calling task's executor; every executor that serves
//! holds one for its whole life (see `run_core`). Started from the executor's thread, it
//! inherits its pinning, so it wakes on the core it keeps awake.

use std::future;
use std::io;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::task::Poll;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often the thread wakes the core: the longest a core stays asleep with a task to run, and
/// how often an otherwise idle core goes round its loop. The stall needs the thread to have been
/// off its CPU for longer than the preempt timer (10 ms) already, so the machine is overloaded
/// and every wait is stretched anyway; 25 ms adds at most about as much again. An idle core
/// pays one turn of glommio's loop and one park per period, plus the thread's own wake-up:
/// measured on an idle two-core process (release build), 14.6 ms of CPU a second with it
/// against 5.4 without, about 115 µs a wake-up. 50 ms would halve that, at twice the stall.
pub const KEEP_AWAKE: Duration = Duration::from_millis(25);

/// The thread that wakes one executor every [`KEEP_AWAKE`]; dropping this stops it.
#[must_use = "the executor is kept awake only while this is held"]
pub struct KeepAwake {
    /// Dropped to stop the thread, which waits on the other end between wake-ups.
    stop: Option<mpsc::Sender<()>>,
    /// Joined on drop, so the thread (and its waker) is gone before the executor can be.
    thread: Option<JoinHandle<()>>,
}

/// Starts a thread that wakes the calling task every [`KEEP_AWAKE`] until the returned handle
/// is dropped, so that its executor never sleeps longer than that with a task to run. Waking
/// the caller is enough, even once it has ended: any wake-up from another thread ends the park,
/// and the turn after it runs every woken task. It must be the caller's own waker, got without
/// yielding, so that the executor is covered from here on (a task of its own would be covered
/// only once it first ran).
pub async fn keep_awake() -> io::Result<KeepAwake> {
    let waker = future::poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = thread::Builder::new()
        .name("percore-awake".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(KEEP_AWAKE) {
                waker.wake_by_ref();
            }
        })?;
    Ok(KeepAwake {
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        // The thread sees the channel close at once, drops its waker and ends.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
