//! The block-mixing hashes: Paul Hsieh's SuperFastHash, MurmurHash2 and Bob Jenkins' lookup3,
//! each as nutcracker 0.5.0 runs it on x86-64 (little-endian word reads, signed `char`).

use super::{le32, widened};

/// The 16-bit little-endian value at the start of `bytes` (hsieh's `get16bits` off i386).
fn le16(bytes: &[u8]) -> u32 {
    u32::from(bytes[0]) | u32::from(bytes[1]) << 8
}

pub(super) fn hsieh(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    let mut chunks = key.chunks_exact(4);
    let mut hash: u32 = 0;
    for chunk in &mut chunks {
        hash = hash.wrapping_add(le16(chunk));
        let tmp = (le16(&chunk[2..]) << 11) ^ hash;
        hash = (hash << 16) ^ tmp;
        hash = hash.wrapping_add(hash >> 11);
    }
    match *chunks.remainder() {
        [a, b, c] => {
            hash = hash.wrapping_add(le16(&[a, b]));
            hash ^= hash << 16;
            // Read through `char`: sign-extended, unlike the two bytes before it.
            hash ^= widened(c) << 18;
            hash = hash.wrapping_add(hash >> 11);
        }
        [a, b] => {
            hash = hash.wrapping_add(le16(&[a, b]));
            hash ^= hash << 11;
            hash = hash.wrapping_add(hash >> 17);
        }
        [a] => {
            hash = hash.wrapping_add(u32::from(a));
            hash ^= hash << 10;
            hash = hash.wrapping_add(hash >> 1);
        }
        _ => {}
    }
    hash ^= hash << 3;
    hash = hash.wrapping_add(hash >> 5);
    hash ^= hash << 4;
    hash = hash.wrapping_add(hash >> 17);
    hash ^= hash << 25;
    hash.wrapping_add(hash >> 6)
}

/// MurmurHash2's multiplier.
const MURMUR_M: u32 = 0x5bd1_e995;
/// MurmurHash2's shift.
const MURMUR_R: u32 = 24;
/// twemproxy's murmur seeds with this times the key length (libmemcached's choice).
const MURMUR_SEED: u32 = 0xdead_beef;

pub(super) fn murmur(key: &[u8]) -> u32 {
    // Keys are far below 4 GiB; nutcracker casts the length to 32 bits the same way.
    let len = key.len() as u32;
    let mut h = MURMUR_SEED.wrapping_mul(len) ^ len;
    let mut chunks = key.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = le32(chunk, 0).wrapping_mul(MURMUR_M);
        k ^= k >> MURMUR_R;
        k = k.wrapping_mul(MURMUR_M);
        h = h.wrapping_mul(MURMUR_M) ^ k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(MURMUR_M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(MURMUR_M);
    h ^ (h >> 15)
}

/// lookup3's golden-ratio-ish start value.
const JENKINS_START: u32 = 0xdead_beef;
/// twemproxy's `JENKINS_INITVAL`, lookup3's `initval` argument.
const JENKINS_INITVAL: u32 = 13;

pub(super) fn jenkins(key: &[u8]) -> u32 {
    hashlittle(key, JENKINS_INITVAL)
}

/// One line of lookup3's `mix`: `x -= z; x ^= rot(z, r); z += y`.
fn jenkins_step(x: &mut u32, y: u32, z: &mut u32, rotation: u32) {
    *x = x.wrapping_sub(*z) ^ z.rotate_left(rotation);
    *z = z.wrapping_add(y);
}

/// lookup3's `mix`: its six lines, each a [`jenkins_step`] with the roles rotated.
fn jenkins_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    jenkins_step(a, *b, c, 4);
    jenkins_step(b, *c, a, 6);
    jenkins_step(c, *a, b, 8);
    jenkins_step(a, *b, c, 16);
    jenkins_step(b, *c, a, 19);
    jenkins_step(c, *a, b, 4);
}

/// lookup3's `final`.
fn jenkins_final(mut a: u32, mut b: u32, mut c: u32) -> u32 {
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c.wrapping_sub(b.rotate_left(24))
}

/// lookup3's `hashlittle`: its aligned and unaligned paths agree on little-endian machines, so
/// one byte-wise path gives nutcracker's value whatever the key's alignment.
fn hashlittle(key: &[u8], initval: u32) -> u32 {
    let start = JENKINS_START
        .wrapping_add(key.len() as u32)
        .wrapping_add(initval);
    let (mut a, mut b, mut c) = (start, start, start);
    let mut rest = key;
    while rest.len() > 12 {
        a = a.wrapping_add(le32(rest, 0));
        b = b.wrapping_add(le32(rest, 1));
        c = c.wrapping_add(le32(rest, 2));
        jenkins_mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    if rest.is_empty() {
        return c;
    }
    let mut block = [0u8; 12];
    block[..rest.len()].copy_from_slice(rest);
    a = a.wrapping_add(le32(&block, 0));
    b = b.wrapping_add(le32(&block, 1));
    c = c.wrapping_add(le32(&block, 2));
    jenkins_final(a, b, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashlittle_matches_lookup3s_published_values() {
        // From the self-test (driver5) in Bob Jenkins' lookup3.c.
        assert_eq!(hashlittle(b"", 0), 0xdeadbeef);
        assert_eq!(hashlittle(b"", 0xdeadbeef), 0xbd5b7dde);
        let four_score = b"Four score and seven years ago";
        assert_eq!(hashlittle(four_score, 0), 0x17770551);
        assert_eq!(hashlittle(four_score, 1), 0xcd628161);
        // twemproxy's jenkins is the same with initval 13 (nutcracker's value, which its
        // aligned and unaligned paths both give).
        assert_eq!(jenkins(four_score), 0x1ab867b2);
    }

    #[test]
    fn empty_keys() {
        // nutcracker never hashes an empty key (it uses 0), but the functions are total.
        assert_eq!(hsieh(b""), 0);
        assert_eq!(murmur(b""), 0);
        assert_eq!(jenkins(b""), 0xdeadbeef + 13);
    }

    #[test]
    fn hsiehs_three_byte_tail_sign_extends_its_last_byte() {
        // From nutcracker's C: "\xff\x80z" (last byte positive) and a negative last byte.
        assert_eq!(hsieh(b"\xff\x80z"), 0x32aa6626);
        assert_ne!(hsieh(b"ab\x80"), hsieh_unsigned_tail(b"ab\x80"));
    }

    /// hsieh with its 3-byte tail read unsigned, to show the quirk matters.
    fn hsieh_unsigned_tail(key: &[u8; 3]) -> u32 {
        let mut hash = le16(key);
        hash ^= hash << 16;
        hash ^= u32::from(key[2]) << 18;
        hash = hash.wrapping_add(hash >> 11);
        hash ^= hash << 3;
        hash = hash.wrapping_add(hash >> 5);
        hash ^= hash << 4;
        hash = hash.wrapping_add(hash >> 17);
        hash ^= hash << 25;
        hash.wrapping_add(hash >> 6)
    }
}
