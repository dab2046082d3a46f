//! Splitting a multi-key command across slots and merging the parts' replies.
//!
//! Redis Cluster refuses a multi-key command whose keys are in different slots, even on the
//! same master, so a split MGET/MSET/DEL/... becomes one sub-command per slot. The parts go out
//! in parallel (pipelined on each master's connection) and come back in any order; the merge
//! puts MGET values back in key order, sums counts, and requires every MSET part to be OK.
//! Planning and merging are pure functions so they are tested without a cluster.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};

use crate::cluster::slot::Slot;
use crate::command::keys::Args;
use crate::command::route::{Merge, SplitKind};
use crate::resp::encode;
use crate::resp::parse::parse_int;
use crate::resp::scan::{reply_len, ReplyScanner};

/// The sub-commands of one split request.
#[derive(Debug)]
pub struct SplitPlan {
    /// One sub-command per slot, in order of first appearance.
    pub parts: Vec<(Slot, Bytes)>,
    /// For MGET: which part and position within it holds the value of each key, in key order.
    pub order: Vec<(u32, u32)>,
}

/// Splits a request by slot. `args.get(0)` is the command name, reused for every part.
pub fn plan_split<A: Args + ?Sized>(kind: SplitKind, args: &A) -> SplitPlan {
    let step = if kind == SplitKind::Mset { 2 } else { 1 };
    let keys = (args.count() - 1) / step;
    // Per part: its slot and the argument indexes of its keys.
    let mut groups: Vec<(Slot, Vec<usize>)> = Vec::new();
    let mut by_slot: HashMap<Slot, usize> = HashMap::new();
    let mut order = Vec::with_capacity(if kind == SplitKind::Mget { keys } else { 0 });
    for key in 0..keys {
        let index = 1 + key * step;
        let slot = Slot::for_key(args.get(index));
        let part = *by_slot.entry(slot).or_insert_with(|| {
            groups.push((slot, Vec::new()));
            groups.len() - 1
        });
        if kind == SplitKind::Mget {
            order.push((part as u32, groups[part].1.len() as u32));
        }
        groups[part].1.push(index);
    }
    let name = args.get(0);
    let parts = groups
        .into_iter()
        .map(|(slot, indexes)| {
            let mut out = BytesMut::new();
            encode::header(&mut out, b'*', 1 + indexes.len() * step);
            encode::bulk(&mut out, name);
            for index in indexes {
                for arg in index..index + step {
                    encode::bulk(&mut out, args.get(arg));
                }
            }
            (slot, out.freeze())
        })
        .collect();
    SplitPlan { parts, order }
}

/// Merges the replies of a split request, given in part order.
pub fn merge_split(kind: SplitKind, order: &[(u32, u32)], replies: &[Bytes]) -> Bytes {
    if let Some(error) = first_error(replies) {
        return error;
    }
    match kind {
        SplitKind::Mget => merge_mget(order, replies),
        SplitKind::Mset => merge_all(Merge::AllOk, replies),
        SplitKind::Count => merge_all(Merge::Sum, replies),
    }
}

/// Merges the replies of a command sent to every master.
pub fn merge_all(merge: Merge, replies: &[Bytes]) -> Bytes {
    if let Some(error) = first_error(replies) {
        return error;
    }
    match merge {
        Merge::Sum => {
            let mut total: i64 = 0;
            for reply in replies {
                match integer(reply) {
                    Some(n) => total = total.saturating_add(n),
                    None => return unexpected(reply),
                }
            }
            let mut out = BytesMut::with_capacity(24);
            encode::integer(&mut out, total);
            out.freeze()
        }
        Merge::AllOk => match replies.iter().find(|r| r.as_ref() != encode::OK) {
            Some(other) => other.clone(),
            None => Bytes::from_static(encode::OK),
        },
        Merge::Same => match replies.split_first() {
            Some((first, rest)) if rest.iter().all(|r| r == first) => first.clone(),
            Some(_) => error("masters gave different replies"),
            None => error("no master to send to"),
        },
        Merge::Concat => {
            let mut count = 0;
            let mut body = BytesMut::new();
            for reply in replies {
                let Some((n, items)) = array_items(reply) else {
                    return unexpected(reply);
                };
                count += n;
                body.put_slice(items);
            }
            let mut out = BytesMut::with_capacity(body.len() + 16);
            encode::header(&mut out, b'*', count);
            out.put_slice(&body);
            out.freeze()
        }
    }
}

fn merge_mget(order: &[(u32, u32)], replies: &[Bytes]) -> Bytes {
    // Each part's element boundaries, so values can be picked in key order.
    let mut elements: Vec<Vec<Bytes>> = Vec::with_capacity(replies.len());
    for reply in replies {
        let Some(items) = split_array(reply) else {
            return unexpected(reply);
        };
        elements.push(items);
    }
    let mut out = BytesMut::new();
    encode::header(&mut out, b'*', order.len());
    for &(part, index) in order {
        match elements
            .get(part as usize)
            .and_then(|e| e.get(index as usize))
        {
            Some(value) => out.put_slice(value),
            None => return error("a split MGET part returned too few values"),
        }
    }
    out.freeze()
}

/// The elements of an array reply as slices of it.
fn split_array(reply: &Bytes) -> Option<Vec<Bytes>> {
    let (count, body) = array_items(reply)?;
    let mut at = reply.len() - body.len();
    let mut items = Vec::with_capacity(count);
    let mut scanner = ReplyScanner::new();
    for _ in 0..count {
        let len = scanner.scan(&reply[at..]).ok()??;
        items.push(reply.slice(at..at + len));
        at += len;
    }
    Some(items)
}

/// Element count and the bytes after the header of an array reply.
fn array_items(reply: &[u8]) -> Option<(usize, &[u8])> {
    let rest = reply.strip_prefix(b"*")?;
    let line_end = rest.iter().position(|&b| b == b'\r')?;
    let count = parse_int(&rest[..line_end])?;
    let body = rest.get(line_end + 2..)?;
    Some((usize::try_from(count).unwrap_or(0), body))
}

fn integer(reply: &[u8]) -> Option<i64> {
    parse_int(reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?)
}

fn first_error(replies: &[Bytes]) -> Option<Bytes> {
    replies.iter().find(|r| r.first() == Some(&b'-')).cloned()
}

fn unexpected(reply: &Bytes) -> Bytes {
    let shown = reply_len(reply)
        .ok()
        .flatten()
        .unwrap_or(reply.len())
        .min(64);
    error(&format!(
        "unexpected reply to a split command: {}",
        String::from_utf8_lossy(&reply[..shown])
    ))
}

fn error(text: &str) -> Bytes {
    let mut out = BytesMut::new();
    encode::error(&mut out, &format!("ERR percore: {text}"));
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<&[u8]> {
        line.split(' ').map(str::as_bytes).collect()
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn splits_by_slot_and_keeps_order() {
        // {a} and {b} are different slots; {a}1 and {a}2 share one.
        let plan = plan_split(SplitKind::Mget, &args("MGET {a}1 {b}1 {a}2")[..]);
        assert_eq!(plan.parts.len(), 2);
        assert_eq!(
            plan.parts[0].1,
            b("*3\r\n$4\r\nMGET\r\n$4\r\n{a}1\r\n$4\r\n{a}2\r\n")
        );
        assert_eq!(plan.parts[1].1, b("*2\r\n$4\r\nMGET\r\n$4\r\n{b}1\r\n"));
        assert_eq!(plan.order, vec![(0, 0), (1, 0), (0, 1)]);
        let merged = merge_split(
            SplitKind::Mget,
            &plan.order,
            &[b("*2\r\n$2\r\nv1\r\n$-1\r\n"), b("*1\r\n$2\r\nv3\r\n")],
        );
        assert_eq!(merged, b("*3\r\n$2\r\nv1\r\n$2\r\nv3\r\n$-1\r\n"));
    }

    #[test]
    fn mset_pairs_stay_together() {
        let plan = plan_split(SplitKind::Mset, &args("MSET {a}k 1 {b}k 2")[..]);
        assert_eq!(
            plan.parts[0].1,
            b("*3\r\n$4\r\nMSET\r\n$4\r\n{a}k\r\n$1\r\n1\r\n")
        );
        assert_eq!(
            merge_split(SplitKind::Mset, &[], &[b("+OK\r\n"), b("+OK\r\n")]),
            b("+OK\r\n")
        );
    }

    #[test]
    fn merges() {
        assert_eq!(
            merge_all(Merge::Sum, &[b(":2\r\n"), b(":3\r\n")]),
            b(":5\r\n")
        );
        assert_eq!(
            merge_all(Merge::Sum, &[b(":2\r\n"), b("-ERR x\r\n")]),
            b("-ERR x\r\n")
        );
        assert_eq!(
            merge_all(
                Merge::Concat,
                &[b("*1\r\n$1\r\na\r\n"), b("*0\r\n"), b("*1\r\n:1\r\n")]
            ),
            b("*2\r\n$1\r\na\r\n:1\r\n")
        );
        assert_eq!(
            merge_all(Merge::Same, &[b("$1\r\na\r\n"), b("$1\r\na\r\n")]),
            b("$1\r\na\r\n")
        );
        assert!(merge_all(Merge::Same, &[b("$1\r\na\r\n"), b("$1\r\nb\r\n")]).starts_with(b"-ERR"));
        assert!(merge_all(Merge::Sum, &[b("+OK\r\n")]).starts_with(b"-ERR"));
    }
}
