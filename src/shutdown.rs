//! Graceful stop on SIGTERM and SIGINT.
//!
//! The signals are blocked in every thread (the mask is set before the executors start, and
//! threads inherit it) and received by one plain thread with `sigwait`, so no async-signal
//! handler ever runs inside an executor. That thread sets a flag each core checks a few times
//! a second, off the request path; a second signal cuts the drain short, for operators who do
//! not want to wait. A core that fails sets the same flag ([`request`]), so the others drain
//! and the process ends with that core's error. A handover to a new process (an upgrade)
//! sets it too, without telling systemd the service stops, and the first signal after it
//! counts as a first: the drain goes on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{info, warn};

use crate::service;

/// Set once a stop signal arrived (or a core failed).
static STOP: AtomicBool = AtomicBool::new(false);
/// Set by a second stop signal: stop draining at once.
static IMMEDIATE: AtomicBool = AtomicBool::new(false);
/// Set from [`handing_over`] until the first stop signal: that signal is a first one (the
/// drain goes on), not a second, and not the service stopping.
static HANDED_OVER: AtomicBool = AtomicBool::new(false);

/// How often each core looks at the flag. Shutdown is not latency-critical; 50 ms keeps the
/// cost at a few wake-ups a second.
const POLL: Duration = Duration::from_millis(50);

/// Blocks SIGTERM and SIGINT in this thread (and so in every thread it starts) and starts the
/// thread that waits for them. Call before starting the executors.
pub fn install() {
    // SAFETY: the sigset is initialised by sigemptyset before use; pthread_sigmask and
    // sigwait only read and write it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            warn!("cannot block SIGTERM/SIGINT; they will stop the process without draining");
            return;
        }
        std::thread::Builder::new()
            .name("percore-signals".into())
            .spawn(move || loop {
                let mut signal: libc::c_int = 0;
                if libc::sigwait(&set, &mut signal) != 0 {
                    continue;
                }
                let handed_over = HANDED_OVER.swap(false, Ordering::SeqCst);
                if STOP.swap(true, Ordering::SeqCst) && !handed_over {
                    warn!(signal, "second stop signal, exiting now");
                    IMMEDIATE.store(true, Ordering::SeqCst);
                    continue;
                }
                info!(
                    signal,
                    "stop signal: no new clients, draining in-flight requests"
                );
                // Handed over, the service goes on in the new process: not stopping.
                if !handed_over {
                    service::stopping();
                }
            })
            .map(drop)
            .unwrap_or_else(|e| warn!(error = %e, "cannot start the signal thread"));
    }
}

/// Asks every core to stop, as a stop signal does.
pub fn request() {
    if !STOP.swap(true, Ordering::SeqCst) {
        service::stopping();
    }
}

/// This process is about to tell a new one that it stops ([`hand_over`] follows): a stop
/// signal from now on is not the service stopping, as the new process, told, announces
/// itself ready at once. Set before the telling, so that a signal the service manager sends
/// on hearing that readiness cannot beat it.
pub fn handing_over() {
    HANDED_OVER.store(true, Ordering::SeqCst);
}

/// The new process could not be told ([`handing_over`] was premature): a stop signal is the
/// service stopping again.
pub fn not_handing_over() {
    HANDED_OVER.store(false, Ordering::SeqCst);
}

/// Stops this process as a stop signal does, but without telling the service manager the
/// service stops: it goes on, in the new process this one handed its sockets to (an
/// upgrade). After [`handing_over`].
pub fn hand_over() {
    if !STOP.swap(true, Ordering::SeqCst) {
        info!("handed over: no new clients, draining in-flight requests");
    }
}

/// True once a stop signal arrived.
pub fn requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// True once a second stop signal arrived: draining ends at once.
pub fn immediate() -> bool {
    IMMEDIATE.load(Ordering::Relaxed)
}

/// Completes when a stop signal arrives.
pub async fn wait() {
    while !requested() {
        glommio::timer::sleep(POLL).await;
    }
}
