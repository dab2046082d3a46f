//! Telling a service manager when percore serves and when it stops: systemd's `Type=notify`
//! protocol (`READY=1` once every core of every pool accepts clients, `STOPPING=1` when the
//! drain starts), so `systemctl start` returns only when percore can be reached, and units
//! ordered after it (`After=percore.service`) start only then.
//!
//! Readiness is a count of listeners still to come, set before the executors start and
//! counted down by each core once its listener accepts; the core that brings it to zero sends
//! `READY=1`. It is a process-wide atomic, like the stop flag of [`crate::shutdown`]: it is
//! touched once per listener at start, never on the request path, so it needs no cross-core
//! channel. Without `NOTIFY_SOCKET` in the environment (not started by systemd) each
//! notification is a no-op; a notification that cannot be sent is logged and changes nothing
//! else, since the service manager is the only one who would miss it.
//!
//! On an upgrade (`upgrade`) the new process holds one count back until the old process has
//! answered that it stops accepting, so `READY=1` means the new process is the one serving,
//! and it comes with `MAINPID=` the new process (for a unit whose main process was the old
//! one, with `NotifyAccess=all`). The old process then drains without `STOPPING=1`: the
//! service does not stop.
//!
//! A configuration reload is bracketed by `RELOADING=1` and `READY=1`, for `Type=notify-reload`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sd_notify::NotifyState;
use tracing::{info, warn};

/// Listeners (cores × pools) that do not accept clients yet.
static LISTENERS_LEFT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Set when this process took over from an older one (an upgrade): `READY=1` then comes
/// with `MAINPID=` this process, for a unit whose main process was the old one.
static NEW_MAIN_PID: AtomicBool = AtomicBool::new(false);

/// Sets how many listeners must accept before the process is ready. Call once, before the
/// executors start.
pub fn expect_listeners(count: usize) {
    LISTENERS_LEFT.store(count, Ordering::SeqCst);
}

/// One more listener accepts clients; the last one tells the service manager percore is
/// ready.
pub fn listener_ready() {
    // Saturating: a listener started later (a pool added on a reload) must not wrap it.
    let left = |n: usize| Some(n.saturating_sub(1));
    let before =
        (LISTENERS_LEFT.fetch_update(Ordering::SeqCst, Ordering::SeqCst, left)).unwrap_or_default();
    if before == 1 {
        info!("every core accepts clients: ready");
        let ready = [
            NotifyState::Ready,
            NotifyState::Status("serving: every core accepts clients"),
        ];
        match NEW_MAIN_PID.load(Ordering::SeqCst) {
            true => send(&[&ready[..], &[NotifyState::MainPid(std::process::id())]].concat()),
            false => send(&ready),
        }
    }
}

/// Listeners that do not accept clients yet (0 once ready).
pub fn listeners_left() -> usize {
    LISTENERS_LEFT.load(Ordering::SeqCst)
}

/// This process took over from an older one: say `MAINPID=` with `READY=1`.
pub fn announce_main_pid() {
    NEW_MAIN_PID.store(true, Ordering::SeqCst);
}

/// The process stops taking clients and drains: tells the service manager so.
pub fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("draining: no new clients"),
    ]);
}

/// A reload begins: `RELOADING=1` with the monotonic time, as systemd's `Type=notify-reload`
/// expects (its `systemctl reload` sends SIGHUP and waits for this, then for `READY=1`).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(error) => warn!(%error, "cannot read the monotonic clock for RELOADING=1"),
    }
}

/// A reload ended, applied or refused (the old configuration serves on): `READY=1` again.
pub fn reloaded(epoch: u64) {
    let status = format!("serving: configuration epoch {epoch}");
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Sends `states` to the service manager, if one listens.
fn send(states: &[NotifyState]) {
    if let Err(error) = sd_notify::notify(states) {
        warn!(%error, "cannot notify the service manager");
    }
}
