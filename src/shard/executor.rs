//! Starts an executor on a thread of its own so that it never sleeps for good with a task to
//! run, from its very first turn to its end: the other half of [`keep_awake`]'s guard against
//! glommio 0.9.0 parking with a woken task waiting.
//!
//! [`keep_awake`] covers an executor once a task of it has run: its thread wakes that task's
//! waker. The executor's *first* turn comes before any task has run, and glommio's run loop can
//! park there for good (its preempt timer fired before the first task queue ran; no I/O, timer
//! or cross-thread wake-up is pending yet). At start-up that is a core that never serves and a
//! process that never says why. Nothing inside the executor can end that park, so the thread
//! that waits for the executor ([`Executor::join`]) does it from outside: while the first task
//! has not run, it sends the executor's thread a signal every [`KEEP_AWAKE`]. glommio sleeps in
//! `io_uring_enter`, which a signal with a handler installed without `SA_RESTART` interrupts
//! (`EINTR`); glommio takes that as an ordinary wake-up and goes round its loop, which runs the
//! task unless that turn is preempted too (then the next signal gives it another).
//!
//! The signal is SIGURG: ignored by default and used by nothing in percore, so a handler that
//! does nothing changes no behaviour of the process. It is sent only during the first turn of an
//! executor that has been in it for a whole period, which takes microseconds when the machine
//! lets it run: normally never. Not while glommio sets the executor up (`make`): its ring
//! registration is a system call a signal could interrupt, and it fails on its own if it fails.
//!
//! The first task the executor runs is this module's: it starts the keep-awake thread, marks
//! the executor as past its first turn, then runs the caller's future, holding the keep-awake
//! for as long as that runs.

use std::future::Future;
use std::io;
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::thread::{self, JoinHandle};

use glommio::LocalExecutorBuilder;

use super::keep_awake::{keep_awake, KEEP_AWAKE};

/// The signal that ends a first-turn park.
const KICK: libc::c_int = libc::SIGURG;

/// Where an executor's thread is: glommio is setting the executor up.
const BUILDING: u8 = 0;
/// The executor runs, and its first task has not run yet: a park now may be for good.
const FIRST_TURN: u8 = 1;
/// The first task has run and the keep-awake thread covers the executor from here on.
const RUNNING: u8 = 2;

/// Signals sent to executors in their first turn since the process started ([`kicks`]).
static KICKS: AtomicUsize = AtomicUsize::new(0);

/// Why an executor did not run its future to the end.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// glommio could not set the executor up (io_uring, pinning, memory).
    #[error("{0}")]
    Executor(String),
    /// The keep-awake thread could not be started.
    #[error("cannot start the keep-awake thread: {0}")]
    KeepAwake(io::Error),
    /// The executor's thread panicked.
    #[error("the executor's thread panicked")]
    Panicked,
}

/// An executor running on its thread; [`join`](Executor::join) waits for its future's output.
#[must_use = "join it: that is what ends a first-turn park"]
pub struct Executor<T> {
    thread: JoinHandle<Result<T, StartError>>,
    stage: Arc<AtomicU8>,
}

/// Starts a thread named `name`, builds `builder`'s executor on it and runs the future `start`
/// makes, with the executor kept awake (see the module) from its first turn to the end.
pub fn spawn<G, F, T>(
    name: &str,
    builder: LocalExecutorBuilder,
    start: G,
) -> io::Result<Executor<T>>
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    install_handler();
    let stage = Arc::new(AtomicU8::new(BUILDING));
    let on_thread = stage.clone();
    let thread = thread::Builder::new().name(name.into()).spawn(move || {
        let executor = builder
            .make()
            .map_err(|e| StartError::Executor(e.to_string()))?;
        on_thread.store(FIRST_TURN, Ordering::Release);
        executor.run(async move {
            let awake = keep_awake().await.map_err(StartError::KeepAwake)?;
            on_thread.store(RUNNING, Ordering::Release);
            let output = start().await;
            drop(awake);
            Ok(output)
        })
    })?;
    Ok(Executor { thread, stage })
}

impl<T> Executor<T> {
    /// Waits for the executor's future to end and returns its output. Until its first task has
    /// run, ends any park of its first turn every [`KEEP_AWAKE`] (see the module).
    pub fn join(self) -> Result<T, StartError> {
        while self.stage.load(Ordering::Acquire) != RUNNING && !self.thread.is_finished() {
            thread::sleep(KEEP_AWAKE);
            if self.stage.load(Ordering::Acquire) == FIRST_TURN {
                // The thread has not been joined, so its pthread_t is valid (a thread that has
                // ended since is still a valid, if finished, target).
                // SAFETY: pthread_kill only sends a signal, whose handler does nothing.
                let sent = unsafe { libc::pthread_kill(self.thread.as_pthread_t(), KICK) };
                if sent == 0 && KICKS.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(
                        thread = self.thread.thread().name().unwrap_or("executor"),
                        "an executor had not run its first task a period after it started; \
                         signalled it out of a park (a glommio 0.9.0 bug: see shard::executor)"
                    );
                }
            }
        }
        self.thread.join().unwrap_or(Err(StartError::Panicked))
    }
}

/// Signals sent since the process started to executors still in their first turn a period
/// after they started: each ended a park of that turn, or found the thread merely slow.
pub fn kicks() -> usize {
    KICKS.load(Ordering::Relaxed)
}

/// Installs the do-nothing handler for [`KICK`], once: a signal that is ignored interrupts
/// nothing, and without `SA_RESTART` the interrupted `io_uring_enter` returns instead of
/// waiting again.
fn install_handler() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        extern "C" fn interrupt_only(_: libc::c_int) {}
        // SAFETY: the sigaction is zeroed and its mask emptied before use; the handler is
        // async-signal-safe (it does nothing).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = interrupt_only as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = 0;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(KICK, &action, std::ptr::null_mut()) != 0 {
                tracing::warn!(
                    error = %io::Error::last_os_error(),
                    "cannot install the SIGURG handler: an executor's first turn cannot be woken"
                );
            }
        }
    });
}
