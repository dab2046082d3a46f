//! The old process's side: the upgrade socket's server, a plain thread (off every core, so a
//! handover costs the request path nothing), answering one handover at a time.
//!
//! A handover: check that the peer runs as this user (or root), exchange hellos, send every
//! registered listening socket, then keep serving until the new process says it is ready;
//! answer `stopping` and drain as on SIGTERM (but without telling systemd the service stops:
//! the new process is the service now). Anything else — the new process closing, refusing,
//! or not ready within [`READY_WAIT`] — is a rollback: this process never stopped accepting,
//! so rolling back is only saying so in the log and waiting for the next attempt.

use std::io;
use std::time::{Duration, Instant};

use socket2::Socket;
use tracing::{info, warn};

use super::sockets::{register, send_registered};
use super::wire::{self, Message, Role, VERSION};
use super::{set_state, wait_until_serving, State};
use crate::{net, shutdown};

/// How long the new process may take to say hello and to read the sockets. It sends its
/// hello as soon as it connects, and reads the sockets at once: a peer that takes longer is
/// stuck or not percore.
const HELLO_WAIT: Duration = Duration::from_secs(5);

/// How long the new process may take, from the sockets to serving on every core. Its start
/// is: executors and rings set up, the first topology (bounded at 2 s), then every core
/// listening; 30 s is far past that on a loaded host. Past it the old process gives up and
/// serves on: the handover is refused, not half done.
const READY_WAIT: Duration = Duration::from_secs(30);

/// How often, while waiting for the new process, this process checks whether it is itself
/// being stopped (then the new process may take over at once).
const READY_POLL: Duration = Duration::from_millis(100);

/// Pause after a failed accept, so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves handovers on `listener` until one succeeds (then the socket is the new process's)
/// or the process ends. Waits first until this process serves on every core: before that
/// its list of sockets is not complete.
pub(super) fn serve(listener: Socket) {
    let registration = register(Role::Endpoint, &listener);
    if !wait_until_serving(0) {
        return;
    }
    loop {
        let conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(err) => {
                warn!(%err, "upgrade socket: accept failed");
                std::thread::sleep(ACCEPT_ERROR_PAUSE);
                continue;
            }
        };
        match hand_over(&conn) {
            Ok(pid) => {
                info!(new_pid = pid, "upgrade: the new process serves; draining");
                break;
            }
            Err(reason) => warn!(%reason, "upgrade rolled back: this process serves on"),
        }
    }
    // Out of the registry before the socket closes (the new process has its own).
    drop(registration);
}

/// One handover on `conn`; the new process's pid once it has taken over, else why not.
fn hand_over(conn: &Socket) -> Result<u32, String> {
    let (peer_pid, uid) = wire::peer(conn).map_err(|e| format!("peer credentials: {e}"))?;
    // SAFETY: geteuid only returns a number.
    let me = unsafe { libc::geteuid() };
    if uid != me && uid != 0 {
        return Err(format!(
            "pid {peer_pid} runs as user {uid}, not this process's user {me}"
        ));
    }
    let timeouts = conn
        .set_read_timeout(Some(HELLO_WAIT))
        .and_then(|()| conn.set_write_timeout(Some(HELLO_WAIT)));
    timeouts.map_err(|e| e.to_string())?;
    let pid = match wire::recv(conn) {
        Ok(Some((Message::Hello { version, pid }, None))) if version == VERSION => pid,
        Ok(Some((Message::Hello { version, pid }, None))) => {
            let _ = wire::send(
                conn,
                &no(format!("this percore speaks version {VERSION}")),
                None,
            );
            return Err(format!("pid {pid} speaks handover version {version}"));
        }
        other => return Err(format!("pid {peer_pid}: no hello ({})", describe(other))),
    };
    if shutdown::requested() {
        let _ = wire::send(conn, &no("this process is stopping".into()), None);
        return Err(format!("pid {pid} asked while this process is stopping"));
    }
    let sent = send(
        conn,
        &Message::Hello {
            version: VERSION,
            pid: std::process::id(),
        },
    )
    .and_then(|()| send_registered(conn))
    .and_then(|count| send(conn, &Message::End(count)).map(|()| count))
    .map_err(|e| format!("sending the sockets to pid {pid}: {e}"))?;
    info!(
        new_pid = pid,
        sockets = sent,
        "upgrade: listening sockets handed over; serving until the new process serves"
    );
    wait_for_ready(conn, pid)?;
    // Said before this process stops accepting, so the new one knows at once that it owns
    // the sockets; if it cannot hear it (gone), nothing has changed here.
    shutdown::handing_over();
    send(conn, &Message::Stopping).map_err(|e| {
        shutdown::not_handing_over();
        format!("pid {pid} went away before it heard this process stops: {e}")
    })?;
    set_state(State::HandedOver);
    net::hand_over_files();
    shutdown::hand_over();
    Ok(pid)
}

/// Waits for `ready` from `pid`. This process being stopped meanwhile counts as ready: it
/// goes away anyway, and the new process then owns the sockets at once.
fn wait_for_ready(conn: &Socket, pid: u32) -> Result<(), String> {
    conn.set_read_timeout(Some(READY_POLL))
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + READY_WAIT;
    loop {
        match wire::recv(conn) {
            Ok(Some((Message::Ready, None))) => return Ok(()),
            Ok(Some((Message::No(reason), None))) => {
                return Err(format!("pid {pid} did not take over: {reason}"))
            }
            Err(err) if is_timeout(&err) => {
                if shutdown::requested() {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    let wait = READY_WAIT.as_secs();
                    let _ = send(conn, &no(format!("not serving after {wait} s")));
                    return Err(format!("pid {pid} did not serve within {wait} s"));
                }
            }
            Ok(None) => return Err(format!("pid {pid} went away before it served")),
            other => return Err(format!("pid {pid}: {}", describe(other))),
        }
    }
}

/// Sends a message without a descriptor.
fn send(conn: &Socket, message: &Message) -> io::Result<()> {
    wire::send(conn, message, None)
}

/// A refusal.
fn no(reason: String) -> Message {
    Message::No(reason)
}

/// Whether a receive ended because its timeout passed.
pub(super) fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// What a receive got, for a message saying it was not what was expected.
pub(super) fn describe<T>(received: io::Result<Option<(Message, T)>>) -> String {
    match received {
        Ok(Some((message, _))) => format!("unexpected {:?}", message.to_string()),
        Ok(None) => "the connection closed".into(),
        Err(err) if is_timeout(&err) => "timed out".into(),
        Err(err) => err.to_string(),
    }
}
