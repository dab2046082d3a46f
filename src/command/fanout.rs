//! Splitting a multi-key command across slots and merging the parts' replies.
//!
//! Redis Cluster refuses a multi-key command whose keys are in different slots, even on the
//! same master, so a split MGET/MSET/DEL/... becomes one sub-command per slot. The parts go out
//! in parallel (pipelined on each master's connection) and come back in any order; the merge
//! puts MGET values back in key order, sums counts, and requires every MSET part to be OK.
//! Planning and merging are pure functions so they are tested without a cluster.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use crate::cluster::slot::{Placement, Slot};
use crate::command::keys::Args;
use crate::command::route::{Merge, SplitKind};
use crate::resp::encode::{self, bulk_len, header_len};
use crate::resp::line::parse_int;
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
///
/// Keys are grouped by slot with a sort of slot and position packed in one integer (so each
/// part keeps its keys in request order) and every part is written into one buffer sized
/// exactly in advance: a split costs a handful of allocations whatever the number of keys.
pub fn plan_split<A: Args + ?Sized, P: Placement>(
    kind: SplitKind,
    args: &A,
    place: &P,
) -> SplitPlan {
    let step = if kind == SplitKind::Mset { 2 } else { 1 };
    let keys = (args.count() - 1) / step;
    // Slot and argument position packed in one integer, sorted as such: by slot, then by
    // position, the order a stable sort by slot gives (each part keeps its keys in request
    // order), at the cost of sorting plain integers rather than pairs.
    let mut by_slot: Vec<u64> = (0..keys)
        .map(|key| {
            let index = 1 + key * step;
            u64::from(place.place(args.get(index)).get()) << 32 | index as u64
        })
        .collect();
    by_slot.sort_unstable();
    let slot_of = |packed: u64| (packed >> 32) as u16;
    let index_of = |packed: u64| (packed & u64::from(u32::MAX)) as usize;

    let name = args.get(0);
    let groups = || by_slot.chunk_by(|&a, &b| slot_of(a) == slot_of(b));
    let part_len = |group: &[u64]| {
        let values: usize = group
            .iter()
            .flat_map(|&packed| index_of(packed)..index_of(packed) + step)
            .map(|arg| bulk_len(args.get(arg).len()))
            .sum();
        header_len(1 + group.len() * step) + bulk_len(name.len()) + values
    };
    let total: usize = groups().map(part_len).sum();
    let mut out = BytesMut::with_capacity(total);
    let mut lens = Vec::with_capacity(by_slot.len().min(64));
    let mut order = vec![(0, 0); if kind == SplitKind::Mget { keys } else { 0 }];
    for (part, group) in groups().enumerate() {
        let start = out.len();
        encode::header(&mut out, b'*', 1 + group.len() * step);
        encode::bulk(&mut out, name);
        for (position, &packed) in group.iter().enumerate() {
            let index = index_of(packed);
            for arg in index..index + step {
                match args.bulk(arg) {
                    Some(bulk) => out.put_slice(bulk),
                    None => encode::bulk(&mut out, args.get(arg)),
                }
            }
            if let Some(slot) = order.get_mut((index - 1) / step) {
                *slot = (part as u32, position as u32);
            }
        }
        lens.push((slot_of(group[0]), out.len() - start));
    }
    debug_assert_eq!(out.len(), total, "part sizes computed exactly");
    let mut encoded = out.freeze();
    let parts = lens
        .into_iter()
        .map(|(slot, len)| (Slot::from_number(slot), encoded.split_to(len)))
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
        Merge::AllTrue => merge_all_true(replies),
        Merge::Digest => merge_digests(replies),
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

/// What an empty database's digest starts from once it has a key: Redis mixes the database
/// number (0, big-endian) into zeros first, which is SHA1(SHA1(0x00000000)).
const DIGEST_OF_DB0: [u8; 20] = [
    0xaa, 0x30, 0x98, 0xf3, 0xaa, 0xe9, 0x4b, 0xaa, 0xc1, 0x4e, 0x3b, 0x8b, 0x8d, 0xca, 0xe9, 0x89,
    0xaf, 0x93, 0xf6, 0xa2,
];

/// DEBUG DIGEST over several masters. A node's digest of database 0 is `DIGEST_OF_DB0` XOR
/// one hash per key (all zeros when it has no key), so the XOR of the non-empty nodes'
/// digests holds every key's hash and the constant once per node: XORing the constant once
/// more when their number is even leaves exactly the digest of one node holding every key.
fn merge_digests(replies: &[Bytes]) -> Bytes {
    let mut combined = [0u8; 20];
    let mut holding_keys = 0usize;
    for reply in replies {
        let Some(digest) = reply
            .strip_prefix(b"+")
            .and_then(|r| r.strip_suffix(b"\r\n"))
            .and_then(parse_digest)
        else {
            return unexpected(reply);
        };
        if digest != [0u8; 20] {
            holding_keys += 1;
            combined.iter_mut().zip(digest).for_each(|(c, d)| *c ^= d);
        }
    }
    if holding_keys > 0 && holding_keys.is_multiple_of(2) {
        combined
            .iter_mut()
            .zip(DIGEST_OF_DB0)
            .for_each(|(c, d)| *c ^= d);
    }
    let mut out = BytesMut::with_capacity(43);
    out.put_u8(b'+');
    for byte in combined {
        out.put_slice(format!("{byte:02x}").as_bytes());
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

/// A digest's 40 hex digits.
fn parse_digest(hex: &[u8]) -> Option<[u8; 20]> {
    if hex.len() != 40 {
        return None;
    }
    let mut digest = [0u8; 20];
    for (byte, pair) in digest.iter_mut().zip(hex.chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(digest)
}

/// SCRIPT EXISTS: each master's array of 0/1, ANDed element by element.
fn merge_all_true(replies: &[Bytes]) -> Bytes {
    let mut all: Vec<bool> = Vec::new();
    let mut items = Vec::new();
    for (index, reply) in replies.iter().enumerate() {
        items.clear();
        if push_elements(reply, &mut items).is_none() {
            return unexpected(reply);
        }
        if index == 0 {
            all = vec![true; items.len()];
        } else if items.len() != all.len() {
            return error("masters gave arrays of different lengths");
        }
        for (known, item) in all.iter_mut().zip(&items) {
            match integer(&reply[item.clone()]) {
                Some(n) => *known &= n != 0,
                None => return unexpected(reply),
            }
        }
    }
    let mut out = BytesMut::with_capacity(16 + all.len() * 4);
    encode::header(&mut out, b'*', all.len());
    for known in all {
        encode::integer(&mut out, i64::from(known));
    }
    out.freeze()
}

fn merge_mget(order: &[(u32, u32)], replies: &[Bytes]) -> Bytes {
    // Every part's element boundaries, in one list (part after part), so values can be picked
    // in key order: ranges rather than slices, so no reference count is touched per value.
    let mut elements: Vec<Range<usize>> = Vec::with_capacity(order.len());
    let mut firsts: Vec<usize> = Vec::with_capacity(replies.len() + 1);
    for reply in replies {
        firsts.push(elements.len());
        if push_elements(reply, &mut elements).is_none() {
            return unexpected(reply);
        }
    }
    firsts.push(elements.len());
    // The values and their headers come from the parts: the merged reply is no longer than
    // they are together, plus its own header.
    let values: usize = replies.iter().map(Bytes::len).sum();
    let mut out = BytesMut::with_capacity(values + MERGED_HEADER);
    encode::header(&mut out, b'*', order.len());
    for &(part, index) in order {
        let (part, index) = (part as usize, index as usize);
        let value = match (firsts.get(part), firsts.get(part + 1)) {
            (Some(&first), Some(&end)) if first + index < end => &elements[first + index],
            _ => return error("a split MGET part returned too few values"),
        };
        out.put_slice(&replies[part][value.clone()]);
    }
    out.freeze()
}

/// Room for an array header (`*`, up to 20 digits, CRLF).
const MERGED_HEADER: usize = 24;

/// Appends the range of each element of the array reply `reply` to `elements`; `None` when it
/// is not a complete array.
fn push_elements(reply: &[u8], elements: &mut Vec<Range<usize>>) -> Option<()> {
    let (count, body) = array_items(reply)?;
    let mut at = reply.len() - body.len();
    let mut scanner = ReplyScanner::new();
    for _ in 0..count {
        let len = scanner.scan(&reply[at..]).ok()??;
        elements.push(at..at + len);
        at += len;
    }
    Some(())
}

/// Element count and the bytes after the header of an array reply.
fn array_items(reply: &[u8]) -> Option<(usize, &[u8])> {
    let rest = reply.strip_prefix(b"*")?;
    let line_end = rest.iter().position(|&b| b == b'\r')?;
    let count = parse_int(&rest[..line_end])?;
    let body = rest.get(line_end + 2..)?;
    Some((usize::try_from(count).unwrap_or(0), body))
}

/// The value of an integer reply.
pub(super) fn integer(reply: &[u8]) -> Option<i64> {
    parse_int(reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?)
}

fn first_error(replies: &[Bytes]) -> Option<Bytes> {
    replies.iter().find(|r| r.first() == Some(&b'-')).cloned()
}

/// The error the client gets for a part reply the merge cannot use.
pub(super) fn unexpected(reply: &Bytes) -> Bytes {
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
    use crate::cluster::slot::HashSlots;

    fn args(line: &str) -> Vec<&[u8]> {
        line.split(' ').map(str::as_bytes).collect()
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn splits_by_slot_and_keeps_order() {
        // {a} and {b} are different slots; {a}1 and {a}2 share one.
        let plan = plan_split(
            SplitKind::Mget,
            &args("MGET {a}1 {b}1 {a}2")[..],
            &HashSlots,
        );
        // Parts come in slot order: {b} (3300) before {a} (15495).
        assert_eq!(plan.parts.len(), 2);
        assert_eq!(plan.parts[0].1, b("*2\r\n$4\r\nMGET\r\n$4\r\n{b}1\r\n"));
        assert_eq!(
            plan.parts[1].1,
            b("*3\r\n$4\r\nMGET\r\n$4\r\n{a}1\r\n$4\r\n{a}2\r\n")
        );
        assert_eq!(plan.order, vec![(1, 0), (0, 0), (1, 1)]);
        let merged = merge_split(
            SplitKind::Mget,
            &plan.order,
            &[b("*1\r\n$2\r\nv3\r\n"), b("*2\r\n$2\r\nv1\r\n$-1\r\n")],
        );
        assert_eq!(merged, b("*3\r\n$2\r\nv1\r\n$2\r\nv3\r\n$-1\r\n"));
    }

    #[test]
    fn parts_copied_from_the_request_equal_parts_encoded() {
        use crate::command::keys::FrameArgs;
        use crate::resp::parse::{encode_request, ParseLimits, RequestParser};
        let line = args("MSET {a}k 1 {b}k 22 {a}j 333 plain 4444");
        let mut frame = BytesMut::new();
        encode_request(&mut frame, &line);
        let mut parser = RequestParser::new(ParseLimits::default());
        assert!(parser.parse(&frame).expect("a request").is_some());
        let parsed = FrameArgs {
            frame: &frame,
            args: parser.args(),
        };
        for kind in [SplitKind::Mset, SplitKind::Count] {
            let copied = plan_split(kind, &parsed, &HashSlots);
            let encoded = plan_split(kind, &line[..], &HashSlots);
            assert_eq!(copied.parts, encoded.parts);
            assert_eq!(copied.order, encoded.order);
        }
    }

    #[test]
    fn mset_pairs_stay_together() {
        let plan = plan_split(SplitKind::Mset, &args("MSET {a}k 1 {b}k 2")[..], &HashSlots);
        assert_eq!(
            plan.parts[1].1,
            b("*3\r\n$4\r\nMSET\r\n$4\r\n{a}k\r\n$1\r\n1\r\n")
        );
        for (n, expected) in [(0, 4), (9, 4), (10, 5), (100, 6)] {
            assert_eq!(header_len(n), expected);
        }
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
        assert_eq!(
            merge_all(
                Merge::AllTrue,
                &[b("*3\r\n:1\r\n:1\r\n:0\r\n"), b("*3\r\n:1\r\n:0\r\n:1\r\n")]
            ),
            b("*3\r\n:1\r\n:0\r\n:0\r\n")
        );
        assert_eq!(merge_all(Merge::AllTrue, &[b("*0\r\n")]), b("*0\r\n"));
        assert!(merge_all(Merge::AllTrue, &[b("*1\r\n:1\r\n"), b("*0\r\n")]).starts_with(b"-ERR"));
    }
}
