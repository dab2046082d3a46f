//! `INFO [section ...]`: gathers what the asked-for sections need, in a task of its own that
//! fills the client's reply place when done (later replies wait behind it like behind any
//! backend reply), and hands it to `control::info` for the text.
//!
//! Only what is asked for is gathered: every core's figures (over the mesh) for the clients
//! and proxy sections, one `INFO` per master with just the sections made from theirs, and
//! the process's own figures (`getrusage`, `uname`).

use std::ffi::CStr;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::control::info::{info_reply, info_text, CpuTimes, Facts, Sections};
use crate::control::info_merge::{merge, Merged};
use crate::resp::value::{parse_value, Value};
use crate::resp::Protocol;

use super::dispatch::error_reply;
use super::pubsub;
use super::reply_to::ReplyTo;
use super::Shard;

/// The reply Redis Cluster gives when no master is known.
const CLUSTERDOWN: &[u8] = b"-CLUSTERDOWN Hash slot not served\r\n";

/// Answers `INFO` with the sections `sections` names.
pub fn info(shard: &Rc<Shard>, sections: Sections, protocol: Protocol, reply_to: ReplyTo) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let mut masters = match sections.masters_request() {
            Some(request) => match masters_info(&shard, request).await {
                Ok(merged) => merged,
                Err(reply) => return reply_to.deliver(reply),
            },
            None => Merged::default(),
        };
        // The masters count percore's subscription connections; these count its clients.
        if !masters.section("stats").is_empty() {
            let counts = pubsub::counts(&shard).await;
            for (key, count) in [
                ("pubsub_channels", counts.channels),
                ("pubsub_patterns", counts.patterns),
                ("pubsubshard_channels", counts.shard_channels),
            ] {
                masters.replace("stats", key, count.to_string());
            }
        }
        let cores = match sections.needs_cores() {
            true => shard.gather_stats(false).await,
            false => Vec::new(),
        };

        let facts = Facts {
            view: shard.admin_view(),
            pid: std::process::id(),
            executable: std::env::current_exe()
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
            os: os(),
            now: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
            max_clients: shard.config().max_clients,
            cpu: cpu_times(),
            cores,
            redis_mode: match shard.config().servers {
                Some(_) => "standalone",
                None => "cluster",
            },
        };
        reply_to.deliver(info_reply(&info_text(sections, &facts, &masters), protocol));
    })
    .detach();
}

/// Every master's answer to `request` (an INFO), merged; or the reply to give instead when a
/// master could not answer, naming it.
async fn masters_info(shard: &Rc<Shard>, request: Bytes) -> Result<Merged, Bytes> {
    // RESP2: a bulk string, whatever the client speaks; percore writes the reply itself.
    let replies = shard.ask_masters(request, Protocol::Resp2).await;
    if replies.is_empty() {
        return Err(Bytes::from_static(CLUSTERDOWN));
    }
    let mut texts = Vec::with_capacity(replies.len());
    for (node, reply) in &replies {
        match parse_value(reply) {
            Ok(Some((Value::Bulk(Some(text)), _))) => {
                texts.push(String::from_utf8_lossy(&text).into_owned());
            }
            _ => {
                let shown = String::from_utf8_lossy(reply);
                let shown = shown.trim_end().trim_start_matches(['-', '+']);
                return Err(error_reply(&format!("{shown} (node {node})")));
            }
        }
    }
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    Ok(merge(&texts))
}

/// CPU time of the process and of its waited-for children.
fn cpu_times() -> CpuTimes {
    let usage = |who| {
        // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF/CHILDREN are valid `who`s.
        if unsafe { libc::getrusage(who, &mut usage) } != 0 {
            return (Duration::ZERO, Duration::ZERO);
        }
        let time = |t: libc::timeval| {
            Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000)
        };
        (time(usage.ru_stime), time(usage.ru_utime))
    };
    let (sys, user) = usage(libc::RUSAGE_SELF);
    let (sys_children, user_children) = usage(libc::RUSAGE_CHILDREN);
    CpuTimes {
        sys,
        user,
        sys_children,
        user_children,
    }
}

/// The kernel's name, release and machine (`Linux 6.1.0 x86_64`), as Redis shows `os`.
fn os() -> String {
    // SAFETY: an all-zero utsname is a valid value for uname to overwrite.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a valid, writable utsname.
    if unsafe { libc::uname(&mut name) } != 0 {
        return String::new();
    }
    let field = |chars: &[libc::c_char]| {
        // SAFETY: uname fills each field with a NUL-terminated string within the array.
        let text = unsafe { CStr::from_ptr(chars.as_ptr()) };
        text.to_string_lossy().into_owned()
    };
    format!(
        "{} {} {}",
        field(&name.sysname),
        field(&name.release),
        field(&name.machine)
    )
}
