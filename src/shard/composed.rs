//! Keyless commands whose answer is composed from several masters' by the proxy, in a task of
//! its own that asks them and fills the client's reply place (later replies wait behind it
//! like behind any backend reply): RANDOMKEY (of the client's database), CONFIG SET /
//! RESETSTAT / REWRITE.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use crate::command::keys::Args;
use crate::control::mesh::Notice;
use crate::resp::Protocol;

use super::backend::Lane;
use super::dispatch::error_reply;
use super::reply_to::ReplyTo;
use super::sidecar::select;
use super::Shard;

/// `RANDOMKEY`: asks the masters in turn, from a random one, until one has a key; null only
/// when every master is empty (one master always asked first would never show the others'
/// keys).
pub fn random_key(
    shard: &Rc<Shard>,
    request: Bytes,
    (protocol, lane): (Protocol, Lane),
    reply_to: ReplyTo,
) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let masters = shard.masters();
        if masters.is_empty() {
            return reply_to.deliver(shard.unserved());
        }
        let start = fastrand::usize(..masters.len());
        let mut last = Bytes::new();
        for offset in 0..masters.len() {
            let node = &masters[(start + offset) % masters.len()];
            last = select::ask_on(&shard, node, request.clone(), protocol, lane).await;
            if !is_null(&last) {
                break;
            }
        }
        reply_to.deliver(last);
    })
    .detach();
}

/// `CONFIG SET | RESETSTAT | REWRITE`: every master; OK when all are, else the first error
/// with the node that gave it. RESETSTAT also clears percore's counters on every core, and a
/// CONFIG SET of the slow log's settings that every master took sets percore's slow log too
/// (`SLOWLOG` through percore shows percore's log).
pub fn config_all<A: Args + ?Sized>(
    shard: &Rc<Shard>,
    args: &A,
    request: Bytes,
    protocol: Protocol,
    reply_to: ReplyTo,
) {
    let resetstat = args.get(1).eq_ignore_ascii_case(b"resetstat");
    let slowlog = slowlog_settings(args);
    let shard = shard.clone();
    glommio::spawn_local(async move {
        if resetstat {
            shard.tell_every_core(Notice::ResetStats).await;
        }
        let replies = shard.ask_masters(request, protocol).await;
        if replies.is_empty() {
            return reply_to.deliver(shard.unserved());
        }
        let reply = all_ok(&replies);
        if let Some(notice) = slowlog.filter(|_| reply.as_ref() == b"+OK\r\n") {
            shard.tell_every_core(notice).await;
        }
        reply_to.deliver(reply);
    })
    .detach();
}

/// The slow log settings a `CONFIG SET` changes, as a notice for every core; `None` when it
/// sets neither or a value a node would refuse.
fn slowlog_settings<A: Args + ?Sized>(args: &A) -> Option<Notice> {
    if !args.get(1).eq_ignore_ascii_case(b"set") {
        return None;
    }
    let (mut slower_than, mut max_len) = (None, None);
    let mut index = 2;
    while index + 1 < args.count() {
        let (name, value) = (args.get(index), args.get(index + 1));
        let number = || std::str::from_utf8(value).ok()?.parse::<i64>().ok();
        if name.eq_ignore_ascii_case(b"slowlog-log-slower-than") {
            let micros = number()?;
            slower_than = Some(u64::try_from(micros).ok().map(Duration::from_micros));
        } else if name.eq_ignore_ascii_case(b"slowlog-max-len") {
            max_len = Some(usize::try_from(number()?).ok()?);
        }
        index += 2;
    }
    (slower_than.is_some() || max_len.is_some()).then_some(Notice::Slowlog {
        slower_than,
        max_len,
    })
}

/// `+OK` when every reply is, else the first other reply, an error naming its node.
fn all_ok(replies: &[(Rc<str>, Bytes)]) -> Bytes {
    match replies
        .iter()
        .find(|(_, reply)| reply.as_ref() != b"+OK\r\n")
    {
        None => Bytes::from_static(b"+OK\r\n"),
        Some((node, reply)) => {
            let text = String::from_utf8_lossy(reply);
            let text = text.trim_end().trim_start_matches(['-', '+']);
            error_reply(&format!("{text} (node {node})"))
        }
    }
}

/// Whether a reply is a null (RESP2 null bulk or RESP3 null).
fn is_null(reply: &[u8]) -> bool {
    reply == b"$-1\r\n" || reply == b"_\r\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_ok_names_the_failing_node() {
        let ok = (Rc::from("a:1"), Bytes::from_static(b"+OK\r\n"));
        let bad = (
            Rc::from("b:2"),
            Bytes::from_static(b"-ERR Unknown option 'x'\r\n"),
        );
        assert_eq!(all_ok(&[ok.clone(), ok.clone()]), &b"+OK\r\n"[..]);
        assert_eq!(
            all_ok(&[ok, bad]),
            &b"-ERR Unknown option 'x' (node b:2)\r\n"[..]
        );
    }
}
