//! Hash slots: which of Redis Cluster's 16384 slots a key belongs to.
//!
//! The rule is Redis Cluster's own: CRC16 (XMODEM) of the key modulo 16384, where a key that
//! contains `{...}` with at least one byte between the first `{` and the next `}` hashes only
//! that part (the hash tag), so related keys can be kept on one node.

use std::fmt;

use crc::{Crc, Table, CRC_16_XMODEM};

/// CRC16/XMODEM (Redis Cluster's CRC16) with one 256-entry table: a byte per step.
static BYTEWISE: Crc<u16, Table<1>> = Crc::<u16, Table<1>>::new(&CRC_16_XMODEM);

/// The same CRC sixteen bytes per step over 16 tables, for keys of at least 16 bytes.
static BLOCKWISE: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_XMODEM);

/// Number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: usize = 16384;

/// A hash slot, always below [`SLOT_COUNT`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(u16);

impl Slot {
    /// Slot 0: its master answers the keyless commands about one node's state.
    pub const FIRST: Slot = Slot(0);

    /// The last slot, 16383.
    pub const LAST: Slot = Slot(SLOT_COUNT as u16 - 1);

    /// The slot of `key`, honouring hash tags.
    ///
    /// ```
    /// use percore::cluster::slot::Slot;
    /// assert_eq!(Slot::for_key(b"foo").get(), 12182);
    /// assert_eq!(Slot::for_key(b"{user1000}.following"), Slot::for_key(b"user1000"));
    /// assert_eq!(Slot::for_key(b"foo{}{bar}").get(), 8363);
    /// ```
    pub fn for_key(key: &[u8]) -> Slot {
        let hashed = hash_tag(key).unwrap_or(key);
        // Slice-by-16 pays for its bigger table only when there is a whole block to hash.
        let crc = if hashed.len() >= 16 {
            BLOCKWISE.checksum(hashed)
        } else {
            BYTEWISE.checksum(hashed)
        };
        Slot(crc & (SLOT_COUNT as u16 - 1))
    }

    /// A slot from its number, if in range.
    pub fn new(slot: u16) -> Option<Slot> {
        (usize::from(slot) < SLOT_COUNT).then_some(Slot(slot))
    }

    /// The slot a number from [`Slot::get`] names, given back as a number (a split's packed
    /// sort key): total, as the number is taken modulo [`SLOT_COUNT`].
    pub fn from_number(slot: u16) -> Slot {
        Slot(slot & (SLOT_COUNT as u16 - 1))
    }

    /// The slot number.
    pub fn get(self) -> u16 {
        self.0
    }

    /// The slot number as an index into slot tables.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where keys go: the routing token of a key, as the request path routes, splits and checks
/// CROSSSLOT by it. For a Redis Cluster upstream that is the key's hash slot
/// ([`HashSlots`]); a static pool places a key on one of its servers and uses that server's
/// position as the token (its slot map sends token `i` to server `i`), so everything that
/// works per slot (routing, splitting, one-slot transactions) works per server there.
pub trait Placement {
    /// The token of `key`.
    fn place(&self, key: &[u8]) -> Slot;
}

/// Redis Cluster's placement: CRC16 hash slots with `{hash tags}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashSlots;

impl Placement for HashSlots {
    #[inline]
    fn place(&self, key: &[u8]) -> Slot {
        Slot::for_key(key)
    }
}

/// The hash tag of `key`: the bytes between the first `{` and the first `}` after it, if
/// there is at least one.
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = memchr::memchr(b'{', key)?;
    let len = memchr::memchr(b'}', &key[open + 1..])?;
    (len > 0).then(|| &key[open + 1..open + 1 + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_slots_from_redis() {
        // Values from CLUSTER KEYSLOT on redis-server 7.
        let cases: &[(&[u8], u16)] = &[
            (b"foo", 12182),
            (b"bar", 5061),
            (b"", 0),
            (b"{user1000}.following", 3443),
            (b"user1000", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", 4015),
            (b"foo{bar}{zap}", 5061),
            (b"{}", 15257),
        ];
        for (key, slot) in cases {
            assert_eq!(
                Slot::for_key(key).get(),
                *slot,
                "{:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn tags() {
        assert_eq!(hash_tag(b"a{b}c"), Some(&b"b"[..]));
        assert_eq!(hash_tag(b"a{}c"), None);
        assert_eq!(hash_tag(b"a{bc"), None);
        assert_eq!(hash_tag(b"{{a}}"), Some(&b"{a"[..]));
        assert_eq!(Slot::new(16384), None);
    }

    /// CRC16/XMODEM bit by bit, as Redis's crc16.c defines it, with no table.
    fn bitwise_xmodem(data: &[u8]) -> u16 {
        let mut crc = 0u16;
        for &byte in data {
            crc ^= u16::from(byte) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
            }
        }
        crc
    }

    proptest::proptest! {
        // Both table forms (under and over 16 bytes, and the block's tail) against the
        // definition.
        #[test]
        fn every_length_hashes_as_the_definition(
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
        ) {
            let hashed = hash_tag(&key).unwrap_or(&key);
            proptest::prop_assert_eq!(Slot::for_key(&key).get(), bitwise_xmodem(hashed) & 0x3fff);
        }
    }
}
