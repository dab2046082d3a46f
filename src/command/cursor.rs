//! SCAN over every master, as one scan: the cursor percore gives its clients and the pure
//! steps of a scan (which master, which cursor next), without I/O. `shard::cluster_scan` asks
//! the masters for the pages.
//!
//! The client's cursor carries the master being scanned and that master's own cursor:
//!
//! ```text
//! cursor = node_cursor << 14 | slot        (14 bits: a slot, 0..16383)
//! ```
//!
//! The masters are scanned one after the other, in the order of their highest slot, and `slot`
//! is the highest slot of the master being scanned. Cursor 0 starts at the first master and,
//! returned, means every master is done, as in Redis; when a master's own scan ends the client
//! gets `0 << 14 | slot` of the next master, which is never 0 (the next master's highest slot
//! is above the last one's).
//!
//! - A master is named by a slot it serves, not by its address, so a scan goes on through a
//!   failover: the promoted replica serves the same slots. (It goes on with a cursor into
//!   another node's hash table, laid out with that node's own seed, so that master's keys may
//!   be missed or repeated; the README says exactly what a scan guarantees.)
//! - The node cursor sits in the high bits so that cursors stay as small as the node's own
//!   (a Redis 7.0 cursor is below its table's size), and always fit 64 bits: clients that
//!   parse cursors as `u64`, or hold them in a JavaScript number (exact below 2^53), keep
//!   working.
//! - Highest, not lowest, slot: a slot move can misdirect a scan only by moving the slot a
//!   cursor names while its master is scanned, or skip a master only by changing the slot
//!   that orders it (see [`next_master`]). redis-cli's `reshard` and `rebalance` move a
//!   master's lowest slots first, and may give them to any master; ordered by lowest slot,
//!   such a move into a master not yet scanned would put it behind the scan and skip it, and
//!   the slot in a cursor would be the first to go. Ordered by highest slot, a master that
//!   gains slots is at worst scanned twice, and one that gives away its lowest slots keeps
//!   its place.
//! - A node cursor must fit in 50 bits here. Redis 7.0's is below its hash table's size, and
//!   2^50 buckets would take 8 PiB; Redis 7.4+ and Valkey 8+ in cluster mode put the node's
//!   slot in their cursor's low 14 bits, leaving 36 bits for one slot's table (2^36 keys in
//!   one slot). A larger one is refused with an error ([`CursorOverflow`]), never cut short
//!   into a cursor that would name another master.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::cluster::slot::{Slot, SLOT_COUNT};
use crate::cluster::topology::UNASSIGNED;
use crate::command::keys::Args;
use crate::resp::encode;
use crate::resp::scan::reply_len;

/// Bits of a cursor that hold the slot naming the master (16384 slots).
const SLOT_BITS: u32 = 14;

/// The slot part of a cursor.
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;

/// The largest node cursor a client's cursor can carry.
pub const MAX_NODE_CURSOR: u64 = u64::MAX >> SLOT_BITS;

/// Where a client's cursor says a scan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Cursor 0: the first master, from its start.
    Start,
    /// The master serving `slot` (its highest slot when the cursor was made), at its own
    /// cursor `node_cursor` (0: from its start).
    At {
        /// Names the master.
        slot: Slot,
        /// That master's cursor.
        node_cursor: u64,
    },
}

/// What comes after a master's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The master has more: the client gets this cursor.
    More(u64),
    /// The master is done; the master whose highest slot this is comes next, from its start.
    NextMaster(Slot),
    /// Every master is done: the client gets cursor 0.
    Done,
}

/// A master's cursor too large to carry in a client's cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("SCAN cursor {0} is too large to carry with its master's slot in 64 bits")]
pub struct CursorOverflow(pub u64);

/// A client's cursor read as Redis reads it (`strtoul`, then nothing may follow): decimal
/// digits with an optional sign (a minus wraps around, so `-1` is the largest cursor), the
/// empty string is 0, and anything else, or more than 64 bits, is `None` (`ERR invalid
/// cursor`).
pub fn parse(arg: &[u8]) -> Option<u64> {
    let (negative, digits) = match arg.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, arg),
    };
    if digits.is_empty() {
        // strtoul converts nothing: Redis takes "" as 0 (nothing is left after it) but not a
        // lone sign.
        return arg.is_empty().then_some(0);
    }
    let mut value: u64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// Where a client's cursor says the scan is. Every 64-bit cursor names a position; whether a
/// master serves its slot is for the caller to check.
pub fn decode(cursor: u64) -> Position {
    if cursor == 0 {
        return Position::Start;
    }
    // The mask keeps the number below 16384, so `new` never gives `None`.
    Slot::new((cursor & SLOT_MASK) as u16).map_or(Position::Start, |slot| Position::At {
        slot,
        node_cursor: cursor >> SLOT_BITS,
    })
}

/// The client's cursor for the master at `slot`, at its cursor `node_cursor`.
///
/// Slot 0 at node cursor 0 is cursor 0, the start; it is the same place: a master whose
/// highest slot is 0 is the first master.
pub fn encode(slot: Slot, node_cursor: u64) -> Result<u64, CursorOverflow> {
    if node_cursor > MAX_NODE_CURSOR {
        return Err(CursorOverflow(node_cursor));
    }
    Ok(node_cursor << SLOT_BITS | u64::from(slot.get()))
}

/// The client's cursor for the start of the master at `slot`: [`encode()`] at node cursor 0,
/// which always fits.
pub fn start_of(slot: Slot) -> u64 {
    u64::from(slot.get())
}

/// The highest slot of the master to scan after the one named by `after` (the first master
/// for `None`): of the masters whose highest slot is above `after`, the one with the lowest.
/// `owners` gives each slot's master as an index, or [`UNASSIGNED`].
///
/// Going by `after` rather than by the master that serves it now keeps the order when
/// `after` has moved. A master is skipped only if, before the scan reaches it, it gives away
/// every slot above `after`; one scanned already comes again only if it gains a slot above
/// `after`.
pub fn next_master(owners: &[u16], after: Option<Slot>) -> Option<Slot> {
    let floor = after.map_or(0, |slot| slot.index() + 1);
    let seen_len = owners
        .iter()
        .filter(|&&owner| owner != UNASSIGNED)
        .map(|&owner| usize::from(owner) + 1)
        .max()?;
    let mut seen = vec![false; seen_len];
    let mut next = None;
    // From the top down, the first slot met of each master is its highest; the last such
    // slot met above `floor` is the lowest of those highest slots.
    for index in (floor..owners.len().min(SLOT_COUNT)).rev() {
        let owner = owners[index];
        if owner == UNASSIGNED || seen[usize::from(owner)] {
            continue;
        }
        seen[usize::from(owner)] = true;
        next = Slot::new(index as u16);
    }
    next
}

/// What comes after the master named by `at` answered with its cursor `returned`.
pub fn after_page(owners: &[u16], at: Slot, returned: u64) -> Result<Step, CursorOverflow> {
    if returned != 0 {
        return encode(at, returned).map(Step::More);
    }
    Ok(match next_master(owners, Some(at)) {
        Some(next) => Step::NextMaster(next),
        None => Step::Done,
    })
}

/// A master's SCAN reply, `*2 $cursor *N keys`, split into its cursor and the frame of its
/// keys (the same shape in RESP2 and RESP3). `None` for anything else (an error, say).
pub fn split_reply(reply: &[u8]) -> Option<(u64, &[u8])> {
    let rest = reply.strip_prefix(b"*2\r\n$")?;
    let eol = rest.iter().position(|&b| b == b'\r')?;
    let len: usize = std::str::from_utf8(&rest[..eol]).ok()?.parse().ok()?;
    let rest = rest[eol..].strip_prefix(b"\r\n")?;
    let digits = rest.get(..len)?;
    let keys = rest[len..].strip_prefix(b"\r\n")?;
    // A node writes its cursor as plain digits; no sign, no empty string.
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let cursor = parse(digits)?;
    let whole = matches!(reply_len(keys), Ok(Some(n)) if n == keys.len());
    (keys.first() == Some(&b'*') && whole).then_some((cursor, keys))
}

/// True if a page's keys frame holds no key.
pub fn is_empty_page(keys: &[u8]) -> bool {
    keys == b"*0\r\n"
}

/// The client's reply: its cursor and a master's keys frame, as they came.
pub fn page(cursor: u64, keys: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(keys.len() + 32);
    out.put_slice(b"*2\r\n");
    let mut digits = BytesMut::with_capacity(20);
    encode::unsigned(&mut digits, cursor);
    encode::bulk(&mut out, &digits);
    out.put_slice(keys);
    out.freeze()
}

/// The SCAN a master is sent: the client's own arguments after the cursor (MATCH, COUNT,
/// TYPE, unchanged, so the node checks them and words any error), behind the master's
/// cursor.
pub struct NodeRequest {
    /// Arguments in all, as the client sent them.
    argc: usize,
    /// The arguments after the cursor, encoded once for every master asked.
    options: Bytes,
}

impl NodeRequest {
    /// The request for a client's `SCAN cursor [options]`.
    pub fn new<A: Args + ?Sized>(args: &A) -> NodeRequest {
        let mut options = BytesMut::new();
        for index in 2..args.count() {
            encode::bulk(&mut options, args.get(index));
        }
        NodeRequest {
            argc: args.count().max(2),
            options: options.freeze(),
        }
    }

    /// The request with `node_cursor` in the cursor's place.
    pub fn with_cursor(&self, node_cursor: u64) -> Bytes {
        let mut out = BytesMut::with_capacity(self.options.len() + 40);
        encode::header(&mut out, b'*', self.argc);
        encode::bulk(&mut out, b"SCAN");
        let mut digits = BytesMut::with_capacity(20);
        encode::unsigned(&mut digits, node_cursor);
        encode::bulk(&mut out, &digits);
        out.put_slice(&self.options);
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn slot(n: u16) -> Slot {
        Slot::new(n).unwrap()
    }

    /// An owner table: each `(first, last, master)` range, the rest unassigned.
    fn owners(ranges: &[(u16, u16, u16)]) -> Vec<u16> {
        let mut table = vec![UNASSIGNED; SLOT_COUNT];
        for &(first, last, master) in ranges {
            table[usize::from(first)..=usize::from(last)].fill(master);
        }
        table
    }

    const THREE: &[(u16, u16, u16)] = &[(0, 5460, 0), (5461, 10922, 1), (10923, 16383, 2)];

    #[test]
    fn parses_cursors_as_redis_does() {
        // Each answer is what redis-server 7.0.15 does with the cursor (None: invalid cursor).
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("00", Some(0)),
            ("", Some(0)),
            ("-0", Some(0)),
            ("+1", Some(1)),
            ("01", Some(1)),
            ("-1", Some(u64::MAX)),
            ("18446744073709551615", Some(u64::MAX)),
            ("-18446744073709551615", Some(1)),
            ("18446744073709551616", None),
            ("-18446744073709551616", None),
            ("abc", None),
            ("1x", None),
            (" 1", None),
            ("1 ", None),
            ("\t1", None),
            ("-", None),
            ("+", None),
            ("+-1", None),
            ("++1", None),
            ("0x10", None),
            ("1.5", None),
        ];
        for &(arg, expected) in cases {
            assert_eq!(parse(arg.as_bytes()), expected, "{arg:?}");
        }
    }

    proptest! {
        #[test]
        fn every_position_round_trips(s in 0u16..16384, node_cursor in 0..=MAX_NODE_CURSOR) {
            let cursor = encode(slot(s), node_cursor).unwrap();
            let expected = match (s, node_cursor) {
                (0, 0) => Position::Start,
                _ => Position::At { slot: slot(s), node_cursor },
            };
            prop_assert_eq!(decode(cursor), expected);
        }

        #[test]
        fn every_cursor_round_trips(cursor in 1u64..) {
            let Position::At { slot, node_cursor } = decode(cursor) else {
                return Err(TestCaseError::fail("a cursor other than 0 is a position"));
            };
            prop_assert_eq!(encode(slot, node_cursor), Ok(cursor));
        }

        #[test]
        fn a_scan_of_a_still_cluster_meets_every_master_once(
            cuts in proptest::collection::vec((1u16..16384, 0u16..6), 0..40),
        ) {
            // Masters 0..6 owning slot runs cut at random points, some unassigned.
            let mut table = owners(&[(0, 16383, 0)]);
            let mut cuts = cuts;
            cuts.sort_unstable();
            for (from, master) in cuts {
                let owner = if master == 5 { UNASSIGNED } else { master };
                table[usize::from(from)..].fill(owner);
            }
            let mut expected: Vec<u16> =
                table.iter().copied().filter(|&o| o != UNASSIGNED).collect();
            expected.sort_unstable();
            expected.dedup();
            let mut met = walk(&[&table[..]]);
            met.sort_unstable();
            prop_assert_eq!(met, expected);
        }
    }

    /// The masters a scan meets, in order, where `tables[i]` is the layout once `i` masters
    /// are done (the last one for the rest).
    fn walk(tables: &[&[u16]]) -> Vec<u16> {
        let table = |done: usize| tables[done.min(tables.len() - 1)];
        let mut met = Vec::new();
        let mut at = next_master(table(0), None);
        while let Some(slot) = at {
            met.push(table(met.len())[slot.index()]);
            at = next_master(table(met.len()), Some(slot));
        }
        met
    }

    #[test]
    fn masters_come_in_the_order_of_their_highest_slot() {
        let three = owners(THREE);
        assert_eq!(next_master(&three, None), Some(slot(5460)));
        assert_eq!(next_master(&three, Some(slot(5460))), Some(slot(10922)));
        assert_eq!(next_master(&three, Some(slot(10922))), Some(slot(16383)));
        assert_eq!(next_master(&three, Some(slot(16383))), None);
        // After a position between two highest slots (a moved slot): the next one above it.
        assert_eq!(next_master(&three, Some(slot(7000))), Some(slot(10922)));
        // Interleaved: 1 serves 101..=199, 0 serves 0..=100 and 200..=300.
        let mixed = owners(&[(0, 300, 0), (101, 199, 1), (301, 16000, 2)]);
        assert_eq!(walk(&[&mixed]), vec![1, 0, 2]);
        assert_eq!(next_master(&owners(&[]), None), None);
        assert_eq!(next_master(&owners(&[(0, 0, 7)]), None), Some(slot(0)));
    }

    #[test]
    fn slot_moves_that_keep_the_highest_slots_skip_no_master() {
        let three = owners(THREE);
        // While master 1 is scanned, slot 100 goes from 0 (done) to 2 (not yet): ordered by
        // lowest slot, 2 would now come before 1 and be skipped.
        let mut moved = three.clone();
        moved[100] = 2;
        assert_eq!(walk(&[&three, &moved]), vec![0, 1, 2]);
        // While master 0 is scanned, its lowest slots go to master 1 and to master 2.
        let mut resharded = three.clone();
        resharded[..100].fill(1);
        resharded[100..200].fill(2);
        assert_eq!(walk(&[&three, &resharded]), vec![0, 1, 2]);
        // A master that gains a slot above the scan's place after it was scanned comes again
        // (its keys twice, none lost).
        let mut gained = three.clone();
        gained[12000] = 0;
        assert_eq!(walk(&[&three, &three, &gained]), vec![0, 1, 0, 2]);
    }

    #[test]
    fn pages_go_on_then_move_to_the_next_master() {
        let three = owners(THREE);
        let at = slot(5460);
        assert_eq!(after_page(&three, at, 7), Ok(Step::More(7 << 14 | 5460)));
        assert_eq!(after_page(&three, at, 0), Ok(Step::NextMaster(slot(10922))));
        assert_eq!(after_page(&three, slot(16383), 0), Ok(Step::Done));
        assert_eq!(
            after_page(&three, at, MAX_NODE_CURSOR + 1),
            Err(CursorOverflow(MAX_NODE_CURSOR + 1))
        );
        assert_eq!(encode(at, 0), Ok(start_of(at)));
        assert_eq!(
            encode(at, MAX_NODE_CURSOR),
            Ok(MAX_NODE_CURSOR << 14 | 5460)
        );
    }

    #[test]
    fn splits_a_masters_reply() {
        let page = b"*2\r\n$5\r\n17408\r\n*2\r\n$1\r\na\r\n$2\r\nbc\r\n";
        assert_eq!(
            split_reply(page),
            Some((17408, &b"*2\r\n$1\r\na\r\n$2\r\nbc\r\n"[..]))
        );
        let last = b"*2\r\n$1\r\n0\r\n*0\r\n";
        assert_eq!(split_reply(last), Some((0, &b"*0\r\n"[..])));
        assert!(is_empty_page(split_reply(last).unwrap().1));
        let max = b"*2\r\n$20\r\n18446744073709551615\r\n*0\r\n";
        assert_eq!(split_reply(max), Some((u64::MAX, &b"*0\r\n"[..])));
        let refused: &[&[u8]] = &[
            b"-ERR syntax error\r\n",
            b"*2\r\n$1\r\n0\r\n",
            b"*2\r\n$1\r\n0\r\n*1\r\n",
            b"*2\r\n$1\r\n0\r\n*0\r\n+extra\r\n",
            b"*2\r\n$1\r\n0\r\n$1\r\na\r\n",
            b"*2\r\n$2\r\n-1\r\n*0\r\n",
            b"*2\r\n$0\r\n\r\n*0\r\n",
            b"*2\r\n$20\r\n18446744073709551616\r\n*0\r\n",
            b"*2\r\n$-1\r\n*0\r\n",
            b"*2\r\n$9\r\n0\r\n*0\r\n",
        ];
        for reply in refused {
            assert_eq!(
                split_reply(reply),
                None,
                "{:?}",
                String::from_utf8_lossy(reply)
            );
        }
    }

    #[test]
    fn builds_the_page_and_the_masters_request() {
        assert_eq!(
            page(87364, b"*1\r\n$1\r\na\r\n"),
            &b"*2\r\n$5\r\n87364\r\n*1\r\n$1\r\na\r\n"[..]
        );
        assert_eq!(page(0, b"*0\r\n"), &b"*2\r\n$1\r\n0\r\n*0\r\n"[..]);
        let args: Vec<&[u8]> = vec![b"scan", b"123", b"MATCH", b"a*", b"COUNT", b"5"];
        assert_eq!(
            NodeRequest::new(&args[..]).with_cursor(42),
            &b"*6\r\n$4\r\nSCAN\r\n$2\r\n42\r\n$5\r\nMATCH\r\n$2\r\na*\r\n$5\r\nCOUNT\r\n$1\r\n5\r\n"[..]
        );
        let bare: Vec<&[u8]> = vec![b"SCAN", b"0"];
        assert_eq!(
            NodeRequest::new(&bare[..]).with_cursor(0),
            &b"*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n"[..]
        );
    }
}
