//! MONITOR: a monitoring client gets a line for every request the proxy receives, on any core,
//! in Redis's format (`+1700000000.123456 [0 127.0.0.1:50000] "get" "key"`).
//!
//! Nobody monitoring costs one flag read per request ([`Monitors::active`]). While someone
//! does, each core formats the lines of its own requests into one buffer, and a flusher task
//! sends what gathered there every [`FLUSH_EVERY`], as one `Bytes` shared by every core that
//! has monitors (the mesh carries it to the others). Everything is bounded, so a monitor that
//! cannot keep up loses lines (counted in `monitor_dropped`) instead of growing memory: the
//! core's buffer ([`BATCH_LIMIT`]), the mesh channel (a full one drops the batch), and each
//! monitor's backlog (`ClientState::push`); the client output limit applies as to any reply.
//!
//! Which cores have monitors travels as versioned counts: a new monitor's `+OK` waits for
//! every core to have applied its count (a gather), so the requests that follow it are seen;
//! a monitor that goes away is announced with a notice.
//!
//! As in Redis: requests refused before they run (unknown, wrong arity, not permitted, or
//! rejected by percore) and admin commands are not shown, secrets are `(redacted)`, and a
//! monitoring client may not run commands on the keyspace.

use std::cell::{Cell, RefCell};
use std::fmt::Write;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use crate::command::keys::{Args, FrameArgs};
use crate::command::redact::{redaction, REDACTED};
use crate::command::route::{Command, Route};
use crate::command::table::CommandFlags;
use crate::control::mesh::{Message, MonitorCount, Notice, Question};
use crate::net::Endpoint;
use crate::resp::encode;
use crate::sync::Signal;

use super::client::ClientState;
use super::reply_to::ReplyTo;
use super::Shard;

/// How long a core gathers lines before sending them: one batch per core pair per period at
/// most, so monitor traffic never crowds the mesh channels, and a human watching sees no lag.
const FLUSH_EVERY: Duration = Duration::from_millis(1);

/// Most bytes of lines one core holds between flushes; past it, lines are dropped. 256 KiB a
/// millisecond is ~3 million lines a second from one core, more than a monitor can read.
const BATCH_LIMIT: usize = 256 * 1024;

/// Redis's reply when a monitoring client tries a command on the keyspace.
const NO_KEYSPACE: &[u8] = b"-ERR Replica can't interact with the keyspace\r\n";

/// Commands Redis flags "may replicate", which a monitoring client may not run either (the
/// flag is not in `COMMAND`'s output, so not in the table).
const MAY_REPLICATE: [&str; 5] = ["eval", "evalsha", "fcall", "publish", "spublish"];

/// One core's view of the monitors.
#[derive(Default)]
pub struct Monitors {
    /// This core's monitoring clients.
    clients: RefCell<Vec<Rc<ClientState>>>,
    /// Per core, the last count it announced: (version, monitors).
    counts: RefCell<Vec<(u64, usize)>>,
    /// Some core has a monitor: the flag the request path reads.
    active: Cell<bool>,
    /// Version of this core's last announcement.
    version: Cell<u64>,
    /// Lines formatted on this core, not sent yet, and how many.
    pending: RefCell<BytesMut>,
    pending_lines: Cell<usize>,
    /// Set when `pending` gets its first line.
    wake_flusher: Signal,
    /// The flusher task runs (started with the first monitor anywhere).
    flusher: Cell<bool>,
}

impl Monitors {
    /// Whether any core has a monitor.
    #[inline]
    pub fn active(&self) -> bool {
        self.active.get()
    }

    /// Whether client `id` (of this core) is monitoring.
    pub fn is_monitor(&self, id: u64) -> bool {
        self.clients.borrow().iter().any(|c| c.identity.id == id)
    }

    /// The monitors this core feeds, on every core.
    pub fn fed(&self) -> usize {
        self.counts.borrow().iter().map(|&(_, n)| n).sum()
    }

    /// Counts `lines` dropped for one monitor.
    fn dropped(shard: &Shard, lines: usize) {
        let counter = &shard.counters().monitor_dropped;
        counter.set(counter.get() + lines as u64);
    }
}

/// `MONITOR`: `+OK` once every core feeds this client. A client already monitoring gets no
/// reply at all, as in Redis.
pub fn start(shard: &Rc<Shard>, client: &Rc<ClientState>, reply_to: ReplyTo) {
    let monitors = &shard.monitors;
    if monitors.is_monitor(client.identity.id) {
        return reply_to.deliver(Bytes::new());
    }
    monitors.clients.borrow_mut().push(client.clone());
    let update = announce(shard);
    let shard = shard.clone();
    glommio::spawn_local(async move {
        shard.gather(Question::Monitors(update)).await;
        reply_to.deliver(Bytes::from_static(encode::OK));
    })
    .detach();
}

/// Client `id` is gone: if it was monitoring, every core stops feeding it.
pub fn forget(shard: &Rc<Shard>, id: u64) {
    let removed = {
        let mut clients = shard.monitors.clients.borrow_mut();
        let before = clients.len();
        clients.retain(|c| c.identity.id != id);
        clients.len() != before
    };
    if removed {
        let update = announce(shard);
        let shard = shard.clone();
        glommio::spawn_local(async move { shard.tell_every_core(Notice::Monitors(update)).await })
            .detach();
    }
}

/// This core's monitor count, as a new version, applied here at once.
fn announce(shard: &Rc<Shard>) -> MonitorCount {
    let monitors = &shard.monitors;
    monitors.version.set(monitors.version.get() + 1);
    let update = MonitorCount {
        core: shard.id(),
        version: monitors.version.get(),
        monitors: monitors.clients.borrow().len(),
    };
    apply(shard, update);
    update
}

/// Takes a core's monitor count into account (older versions than the one known are stale).
pub fn apply(shard: &Rc<Shard>, update: MonitorCount) {
    let monitors = &shard.monitors;
    let mut counts = monitors.counts.borrow_mut();
    if counts.len() <= update.core {
        counts.resize(update.core + 1, (0, 0));
    }
    if update.version <= counts[update.core].0 {
        return;
    }
    counts[update.core] = (update.version, update.monitors);
    monitors.active.set(counts.iter().any(|&(_, n)| n > 0));
    if monitors.active() && !monitors.flusher.replace(true) {
        shard.keep(glommio::spawn_local(flush_loop(shard.clone())));
    }
}

/// Called for every request while someone monitors (after the gate let it through): refuses a
/// monitoring client's keyspace command, and queues the request's line.
pub fn observe(
    shard: &Shard,
    client: &ClientState,
    route: &Route,
    command: Option<Command>,
    args: &FrameArgs,
) -> Option<Bytes> {
    let monitors = &shard.monitors;
    if command.is_some_and(touches_keyspace) && monitors.is_monitor(client.identity.id) {
        return Some(Bytes::from_static(NO_KEYSPACE));
    }
    let shown = !matches!(route, Route::Reject(_)) && command.is_some_and(|c| !is_admin(c));
    if !shown {
        return None;
    }
    let mut pending = monitors.pending.borrow_mut();
    if pending.len() >= BATCH_LIMIT {
        Monitors::dropped(shard, 1);
        return None;
    }
    if pending.is_empty() {
        monitors.wake_flusher.notify();
    }
    let peer = (
        super::sidecar::select::db_of(shard, client),
        client.identity.peer.as_ref(),
    );
    format_line(&mut pending, SystemTime::now(), peer, args);
    monitors.pending_lines.set(monitors.pending_lines.get() + 1);
    None
}

/// Hands lines from any core to this core's monitors.
pub fn deliver(shard: &Shard, lines: Bytes, count: usize) {
    for client in shard.monitors.clients.borrow().iter() {
        if !client.push(lines.clone()) {
            Monitors::dropped(shard, count);
        }
    }
}

/// Sends the lines gathered on this core to every core with monitors, every [`FLUSH_EVERY`]
/// while there are any.
async fn flush_loop(shard: Rc<Shard>) {
    let monitors = &shard.monitors;
    loop {
        monitors.wake_flusher.wait().await;
        glommio::timer::sleep(FLUSH_EVERY).await;
        let count = monitors.pending_lines.replace(0);
        let lines = monitors.pending.borrow_mut().split().freeze();
        if count == 0 {
            continue;
        }
        let cores: Vec<usize> = monitors
            .counts
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, &(_, n))| n > 0)
            .map(|(core, _)| core)
            .collect();
        for core in cores {
            if core == shard.id() {
                deliver(&shard, lines.clone(), count);
                continue;
            }
            let message = Message::MonitorLines {
                lines: lines.clone(),
                count,
            };
            if !shard.mesh.try_send(core, message) {
                Monitors::dropped(&shard, count);
            }
        }
    }
}

/// Whether a monitoring client may not run `command`: Redis refuses it what reads or writes
/// data, or may replicate.
fn touches_keyspace(command: Command) -> bool {
    let flags = command.spec.flags;
    flags.contains(CommandFlags::WRITE)
        || flags.contains(CommandFlags::READONLY)
        || (command.parent.is_none() && MAY_REPLICATE.contains(&command.spec.name))
}

/// Admin commands, which Redis does not show to monitors.
fn is_admin(command: Command) -> bool {
    let admin = |flags: CommandFlags| flags.contains(CommandFlags::ADMIN);
    admin(command.spec.flags) || command.parent.is_some_and(|p| admin(p.flags))
}

/// Appends one MONITOR line: `+<unix seconds>.<micros> [<db> <client>] "arg" ...\r\n`, each
/// argument quoted as Redis's `sdscatrepr` does, secrets as `"(redacted)"`.
fn format_line<A: Args + ?Sized>(
    out: &mut BytesMut,
    at: SystemTime,
    (db, peer): (u32, Option<&Endpoint>),
    args: &A,
) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    out.put_u8(b'+');
    encode::decimal(out, since.as_secs() as i64);
    let _ = write!(out, ".{:06} [{db} ", since.subsec_micros());
    match peer {
        Some(Endpoint::Ip(addr)) => {
            let _ = write!(out, "{addr}");
        }
        // As Redis shows a Unix socket client.
        Some(Endpoint::Unix(path)) => {
            let _ = write!(out, "unix:{path}");
        }
        None => {}
    }
    out.put_u8(b']');
    let hidden = redaction(args);
    for index in 0..args.count() {
        out.put_u8(b' ');
        match hidden.hides(index) {
            true => quote(out, REDACTED),
            false => quote(out, args.get(index)),
        }
    }
    out.put_slice(b"\r\n");
}

/// Appends `value` in double quotes, escaped as Redis's `sdscatrepr`: `\\`, `\"`, `\n`, `\r`,
/// `\t`, `\a`, `\b`, other bytes outside printable ASCII as `\xhh`.
fn quote(out: &mut BytesMut, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(value.len() + 2);
    out.put_u8(b'"');
    for &byte in value {
        match byte {
            b'\\' | b'"' => out.put_slice(&[b'\\', byte]),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\t' => out.put_slice(b"\\t"),
            0x07 => out.put_slice(b"\\a"),
            0x08 => out.put_slice(b"\\b"),
            0x20..=0x7e => out.put_u8(byte),
            _ => out.put_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
        }
    }
    out.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&[u8]]) -> String {
        let mut out = BytesMut::new();
        let at = UNIX_EPOCH + Duration::from_micros(1_796_123_104_045_078);
        let peer = Endpoint::Ip("127.0.0.1:40328".parse().unwrap());
        format_line(&mut out, at, (0, Some(&peer)), args);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn lines_are_redis_lines() {
        // Each expectation is what redis-server 7.0's MONITOR sent for the same request.
        assert_eq!(
            line(&[b"GET", b"k"]),
            "+1796123104.045078 [0 127.0.0.1:40328] \"GET\" \"k\"\r\n"
        );
        assert_eq!(
            line(&[b"SET", b"k", b"a\x00\x01\xff\"\\\n\r\t\x07\x08 b"]),
            "+1796123104.045078 [0 127.0.0.1:40328] \"SET\" \"k\" \
             \"a\\x00\\x01\\xff\\\"\\\\\\n\\r\\t\\a\\b b\"\r\n"
        );
        assert_eq!(
            line(&[b"HELLO", b"2", b"AUTH", b"u", b"pw"]),
            "+1796123104.045078 [0 127.0.0.1:40328] \"HELLO\" \"2\" \"AUTH\" \"(redacted)\" \
             \"(redacted)\"\r\n"
        );
    }

    #[test]
    fn what_a_monitor_may_run_and_see() {
        use crate::command::route::route_command;
        let command = |line: &str| {
            let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
            route_command(&args[..]).1.expect("known command")
        };
        for refused in [
            "GET k",
            "DBSIZE",
            "EVAL s 0",
            "PUBLISH c m",
            "FUNCTION FLUSH",
        ] {
            assert!(touches_keyspace(command(refused)), "{refused}");
        }
        for allowed in ["PING", "CLIENT ID", "SCRIPT LOAD s", "TIME", "SLOWLOG LEN"] {
            assert!(!touches_keyspace(command(allowed)), "{allowed}");
        }
        for admin in ["CONFIG GET x", "SLOWLOG GET", "MONITOR"] {
            assert!(is_admin(command(admin)), "{admin}");
        }
        assert!(!is_admin(command("SET k v")));
    }
}
