//! The new process's side: before anything is bound, ask the process on the upgrade socket
//! for its listening sockets ([`receive`]); once every core serves on them, say so and take
//! over when the old process answers that it stops ([`Takeover::finish`]).
//!
//! Until then nothing is this process's for good: the sockets are shared with the old
//! process, which accepts from them too, so failing here loses no connection. A failure
//! stops this process (its clients, if it took any, are drained and reconnect to the old
//! one) and makes it exit non-zero with the reason.

use std::io;
use std::path::Path;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};
use tracing::info;

use super::endpoint::describe;
use super::sockets::{close_unclaimed, inherit};
use super::wire::{self, Message, VERSION};
use super::{fail, set_state, wait_until_serving, State};
use crate::{net, service};

/// How long the old process may take to answer and send its sockets: it does at once what
/// it is asked, from a thread of its own.
const RECEIVE_WAIT: Duration = Duration::from_secs(10);

/// How long the old process may take to answer `ready` with `stopping`: it answers at once.
const STOPPING_WAIT: Duration = Duration::from_secs(10);

/// A handover under way: the old process's sockets are here (in `sockets`), not yet ours.
pub(super) struct Takeover {
    conn: Socket,
    /// The old process, for the logs.
    old_pid: u32,
}

/// Connects to the upgrade socket at `path`: `None` when no process serves it (no file, or
/// nothing listening on it: a process that died), so this process starts afresh.
pub(super) fn connect(path: &Path) -> Result<Option<Socket>, String> {
    let addr = SockAddr::unix(path).map_err(|e| format!("not a socket path: {e}"))?;
    let conn = Socket::new(Domain::UNIX, Type::SEQPACKET, None).map_err(|e| e.to_string())?;
    match conn.connect(&addr) {
        Ok(()) => Ok(Some(conn)),
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Ok(None)
        }
        Err(err) => Err(format!("cannot connect: {err}")),
    }
}

/// Asks the process at the other end of `conn` for its listening sockets and keeps them
/// for the cores to take.
pub(super) fn receive(conn: Socket) -> Result<Takeover, String> {
    conn.set_read_timeout(Some(RECEIVE_WAIT))
        .and_then(|()| conn.set_write_timeout(Some(RECEIVE_WAIT)))
        .map_err(|e| e.to_string())?;
    let hello = Message::Hello {
        version: VERSION,
        pid: std::process::id(),
    };
    wire::send(&conn, &hello, None).map_err(|e| format!("saying hello: {e}"))?;
    let old_pid = match wire::recv(&conn) {
        Ok(Some((Message::Hello { version, pid }, None))) if version == VERSION => pid,
        Ok(Some((Message::No(reason), None))) => {
            return Err(format!("the running percore refused: {reason}"))
        }
        other => return Err(format!("the running percore: {}", describe(other))),
    };
    set_state(State::TakingOver);
    let mut received = 0;
    loop {
        match wire::recv(&conn) {
            Ok(Some((Message::Listener(role), Some(fd)))) => {
                let local = inherit(role.clone(), fd)?;
                tracing::debug!(?role, %local, "listener handed over");
                received += 1;
            }
            Ok(Some((Message::End(sent), None))) if sent == received => break,
            Ok(Some((Message::End(sent), None))) => {
                return Err(format!(
                    "pid {old_pid} sent {received} sockets but counted {sent}"
                ))
            }
            other => return Err(format!("pid {old_pid}: {}", describe(other))),
        }
    }
    info!(
        old_pid,
        sockets = received,
        "upgrade: took the listening sockets of the running percore"
    );
    Ok(Takeover { conn, old_pid })
}

impl Takeover {
    /// Waits until every core serves (all but the one readiness count the takeover holds
    /// back), tells the old process, and takes over when it answers. False when the
    /// takeover failed: then the process is stopping.
    pub(super) fn finish(self) -> bool {
        let old_pid = self.old_pid;
        if !wait_until_serving(1) {
            let why = "the new process stopped before it served (see its log)";
            let _ = wire::send(&self.conn, &Message::No(why.into()), None);
            fail(format!("stopped before serving; pid {old_pid} serves on"));
            return false;
        }
        let answer = self
            .conn
            .set_read_timeout(Some(STOPPING_WAIT))
            .and_then(|()| wire::send(&self.conn, &Message::Ready, None))
            .map(|()| wire::recv(&self.conn));
        match answer {
            Ok(Ok(Some((Message::Stopping, None)))) => {}
            Ok(Ok(Some((Message::No(reason), None)))) => {
                fail(format!("pid {old_pid} did not hand over: {reason}"));
                return false;
            }
            Ok(other) => {
                fail(format!("pid {old_pid} did not stop: {}", describe(other)));
                return false;
            }
            Err(err) => {
                fail(format!(
                    "pid {old_pid} did not hear that this one serves: {err}"
                ));
                return false;
            }
        }
        set_state(State::TookOver);
        net::claim_adopted_files();
        close_unclaimed();
        info!(old_pid, "upgrade: took over; the old process drains");
        service::announce_main_pid();
        // The readiness count the takeover held back: READY=1 goes out now.
        service::listener_ready();
        true
    }
}
