//! twemproxy's twelve key hashes, bit for bit as nutcracker 0.5.0 computes them on x86-64.
//!
//! A static pool's placement is only a drop-in for nutcracker's if every hash returns exactly
//! nutcracker's 32-bit value, quirks included, because the value picks the ketama point or the
//! modula slot. The quirks, all kept on purpose:
//! - nutcracker reads keys through `const char *`, and `char` is signed on x86-64, so wherever
//!   its code widens a key byte without masking it (one_at_a_time, the four FNVs, hsieh's
//!   3-byte tail), a byte of 0x80 or more is sign-extended ([`widened`]).
//! - crc16 is the XMODEM table, but its running value is never cut to 16 bits: bytes shifted
//!   past bit 15 stay, so a key of two bytes or more mostly hashes above 0xffff.
//! - crc32 returns only 15 bits (bits 16..30 of the CRC), libmemcached's old "crc" hash;
//!   crc32a is the full standard CRC-32.
//! - fnv1_64 is 64-bit FNV-1 cut to its low 32 bits; fnv1a_64 is computed in 32 bits with the
//!   64-bit constants truncated, which on bytes below 0x80 is the low half of FNV-1a 64 (a
//!   higher byte is sign-extended, so it is not the standard value there).
//! - md5 is the little-endian u32 of the digest's first four bytes (`digest[3..=0]`).
//! - murmur is MurmurHash2 with the seed `0xdeadbeef * len`; jenkins is Bob Jenkins'
//!   lookup3 `hashlittle` with an initial value of 13; hsieh is Paul Hsieh's SuperFastHash.
//!
//! Every function is written here from the algorithm, checked against values from nutcracker's
//! own C code (unit tests) and against a running nutcracker (`tests/pool_placement.rs`).

use md5::{Digest, Md5};

mod crc;
mod mix;

/// One of twemproxy's key hashes, as named in its YAML `hash:` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hash {
    /// Bob Jenkins' one-at-a-time hash.
    OneAtATime,
    /// The first four bytes of the key's MD5 digest, little-endian.
    Md5,
    /// CRC16 (XMODEM) left running in 32 bits.
    Crc16,
    /// 15 bits of CRC-32.
    Crc32,
    /// The full CRC-32 (IEEE).
    Crc32a,
    /// FNV-1 64-bit, low 32 bits.
    Fnv1_64,
    /// FNV-1a 64-bit, low 32 bits.
    Fnv1a64,
    /// FNV-1 32-bit.
    Fnv1_32,
    /// FNV-1a 32-bit.
    Fnv1a32,
    /// Paul Hsieh's SuperFastHash.
    Hsieh,
    /// MurmurHash2 with a length-derived seed.
    Murmur,
    /// Bob Jenkins' lookup3 (`hashlittle`).
    Jenkins,
}

impl Hash {
    /// Every hash, in nutcracker's order (its `HASH_CODEC` list).
    pub const ALL: [Hash; 12] = [
        Hash::OneAtATime,
        Hash::Md5,
        Hash::Crc16,
        Hash::Crc32,
        Hash::Crc32a,
        Hash::Fnv1_64,
        Hash::Fnv1a64,
        Hash::Fnv1_32,
        Hash::Fnv1a32,
        Hash::Hsieh,
        Hash::Murmur,
        Hash::Jenkins,
    ];

    /// nutcracker's default when a pool names no `hash:` (`CONF_DEFAULT_HASH`).
    pub const DEFAULT: Hash = Hash::Fnv1a64;

    /// The hash a YAML `hash:` value names, if any.
    pub fn from_name(name: &str) -> Option<Hash> {
        Hash::ALL.into_iter().find(|hash| hash.name() == name)
    }

    /// The name twemproxy's configuration uses.
    pub fn name(self) -> &'static str {
        match self {
            Hash::OneAtATime => "one_at_a_time",
            Hash::Md5 => "md5",
            Hash::Crc16 => "crc16",
            Hash::Crc32 => "crc32",
            Hash::Crc32a => "crc32a",
            Hash::Fnv1_64 => "fnv1_64",
            Hash::Fnv1a64 => "fnv1a_64",
            Hash::Fnv1_32 => "fnv1_32",
            Hash::Fnv1a32 => "fnv1a_32",
            Hash::Hsieh => "hsieh",
            Hash::Murmur => "murmur",
            Hash::Jenkins => "jenkins",
        }
    }

    /// The hash of `key`, as nutcracker's hash function of this name returns it.
    pub fn of(self, key: &[u8]) -> u32 {
        match self {
            Hash::OneAtATime => one_at_a_time(key),
            Hash::Md5 => md5_low(key),
            Hash::Crc16 => crc::crc16(key),
            Hash::Crc32 => crc::crc32(key),
            Hash::Crc32a => crc::crc32a(key),
            Hash::Fnv1_64 => fnv1_64(key),
            Hash::Fnv1a64 => fnv1a_64(key),
            Hash::Fnv1_32 => fnv1_32(key),
            Hash::Fnv1a32 => fnv1a_32(key),
            Hash::Hsieh => mix::hsieh(key),
            Hash::Murmur => mix::murmur(key),
            Hash::Jenkins => mix::jenkins(key),
        }
    }
}

/// A key byte as nutcracker's `(uint32_t)key[i]` widens it: `char` is signed on x86-64, so
/// 0x80..=0xff become 0xffffff80..=0xffffffff.
fn widened(byte: u8) -> u32 {
    byte as i8 as u32
}

/// Word `i` (little-endian, 4 bytes) of `bytes`, which has at least `4 * i + 4` bytes.
fn le32(bytes: &[u8], i: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[4 * i..4 * i + 4]);
    u32::from_le_bytes(word)
}

fn one_at_a_time(key: &[u8]) -> u32 {
    let mut value: u32 = 0;
    for &byte in key {
        value = value.wrapping_add(widened(byte));
        value = value.wrapping_add(value << 10);
        value ^= value >> 6;
    }
    value = value.wrapping_add(value << 3);
    value ^= value >> 11;
    value.wrapping_add(value << 15)
}

/// The little-endian u32 of an MD5 digest's bytes `4 * word .. 4 * word + 4`: the md5 hash
/// takes word 0 of the key's digest; ketama takes all four words of a point name's digest.
pub(in crate::upstream) fn md5_word(digest: &[u8; 16], word: usize) -> u32 {
    le32(digest, word)
}

/// The MD5 digest of `bytes`.
pub(in crate::upstream) fn md5_digest(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

fn md5_low(key: &[u8]) -> u32 {
    md5_word(&md5_digest(key), 0)
}

/// FNV's 64-bit offset basis.
const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV's 64-bit prime.
const FNV_64_PRIME: u64 = 0x0000_0100_0000_01b3;
/// FNV's 32-bit offset basis.
const FNV_32_INIT: u32 = 0x811c_9dc5;
/// FNV's 32-bit prime.
const FNV_32_PRIME: u32 = 0x0100_0193;

fn fnv1_64(key: &[u8]) -> u32 {
    let mut hash = FNV_64_INIT;
    for &byte in key {
        hash = hash.wrapping_mul(FNV_64_PRIME);
        hash ^= byte as i8 as u64;
    }
    hash as u32
}

fn fnv1a_64(key: &[u8]) -> u32 {
    let mut hash = FNV_64_INIT as u32;
    for &byte in key {
        hash ^= widened(byte);
        hash = hash.wrapping_mul(FNV_64_PRIME as u32);
    }
    hash
}

fn fnv1_32(key: &[u8]) -> u32 {
    let mut hash = FNV_32_INIT;
    for &byte in key {
        hash = hash.wrapping_mul(FNV_32_PRIME);
        hash ^= widened(byte);
    }
    hash
}

fn fnv1a_32(key: &[u8]) -> u32 {
    let mut hash = FNV_32_INIT;
    for &byte in key {
        hash ^= widened(byte);
        hash = hash.wrapping_mul(FNV_32_PRIME);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 14 bytes mixing ASCII, bytes of 0x80 and more (sign extension) and control bytes.
    const MIXED: &[u8] = b"Qu\xe9\xff\x80 k\x7f\x01y:\xfe\xaa!";

    /// nutcracker 0.5.0's own hash functions (its src/hashkit/*.c built with gcc on x86-64)
    /// on every prefix of [`MIXED`], lengths 0 to 14: every tail length of the block hashes,
    /// and sign-extended bytes in each position.
    const FROM_NUTCRACKER: [(Hash, [u32; 15]); 12] = [
        (
            Hash::OneAtATime,
            [
                0x00000000, 0xa51fca29, 0x5b9bdb47, 0xb652420e, 0xb5eff05a, 0x44c7624f, 0xe485d27b,
                0x3206dcca, 0xbc682d2d, 0xf4063d65, 0xc0fa2853, 0x7efc7b93, 0xdb2b0346, 0x1e0fe370,
                0x6e76ed46,
            ],
        ),
        (
            Hash::Md5,
            [
                0xd98c1dd4, 0xc96495f0, 0xb0beeadc, 0x534b09e1, 0x5d2ff282, 0xa4a28364, 0xa70dcf07,
                0x048b29ad, 0x5875b471, 0xa2507938, 0xcd1ea70c, 0xa8aa5244, 0x7de67499, 0x651f9aa7,
                0xda9f5885,
            ],
        ),
        (
            Hash::Crc16,
            [
                0x00000000, 0x00004ad4, 0x004a13bc, 0x4a13f255, 0x13f284ad, 0xf284ed84, 0x84ed8ce1,
                0xed8c6cc9, 0x8c6ceb52, 0x6ceb0e64, 0xeb0e6a70, 0x0e6a2af5, 0x6a2a7ef9, 0x2a7e72f9,
                0x7e729396,
            ],
        ),
        (
            Hash::Crc32,
            [
                0x00000000, 0x00004e6e, 0x00004216, 0x000019a1, 0x00002271, 0x0000471f, 0x00005220,
                0x00001631, 0x00002a76, 0x00001f9a, 0x00005df8, 0x0000193e, 0x000048c1, 0x000008cf,
                0x000077e5,
            ],
        ),
        (
            Hash::Crc32a,
            [
                0x00000000, 0xce6e8eef, 0xc216fb59, 0x19a14afa, 0xa271ba48, 0x471fd4b5, 0x52209792,
                0x163185a2, 0x2a767061, 0x9f9af8a5, 0x5df8eb8a, 0x193ea4ea, 0xc8c10554, 0x88cff193,
                0xf7e5f2dc,
            ],
        ),
        (
            Hash::Fnv1_64,
            [
                0x84222325, 0x8601b78e, 0xb4eae63f, 0x94dac2e4, 0x1046d693, 0x57a16449, 0xe73d682b,
                0xed58017a, 0x4c8a8231, 0x0f5b3942, 0x18024b5f, 0xcbe61257, 0x880ed62b, 0xceca14bb,
                0x616139e0,
            ],
        ),
        (
            Hash::Fnv1a64,
            [
                0x84222325, 0x86023e1c, 0xb5d00c6b, 0x0f7ac5e6, 0xb261b87b, 0xe3f44f81, 0x58234e93,
                0xc3ff2f68, 0x0a9d0415, 0x08cdedfc, 0xf5ea98ff, 0xdda196bf, 0x666cd973, 0xf50b02bb,
                0x61b56bae,
            ],
        ),
        (
            Hash::Fnv1_32,
            [
                0x811c9dc5, 0x050c5d4e, 0x4076e1bf, 0xc5daa044, 0x44d5b4f3, 0xb0942509, 0x02364d0b,
                0x867b483a, 0xee12b331, 0xf8701622, 0x3a72d7ff, 0x01ca0657, 0xd7f8050b, 0xf9900ffb,
                0xd8c92800,
            ],
        ),
        (
            Hash::Fnv1a32,
            [
                0x811c9dc5, 0xd40c0ffc, 0x57fc74ab, 0xbf9438e6, 0x82aa6c5b, 0x28b7c1c1, 0xfa463533,
                0x5485f988, 0x05e87fd5, 0x21013abc, 0xb9ef841f, 0xd90d063f, 0x117f2ad3, 0xedd00d7b,
                0xb88504ae,
            ],
        ),
        (
            Hash::Hsieh,
            [
                0x00000000, 0x78d77863, 0xea55646d, 0xca729fec, 0x6f750b81, 0x01afa7f9, 0x9335ac35,
                0x9d0028bb, 0xed47750b, 0x9fdb6fdf, 0xe3356813, 0x28cddcc4, 0x2d15693d, 0xae2efe04,
                0xb53530d6,
            ],
        ),
        (
            Hash::Murmur,
            [
                0x00000000, 0x6849ea53, 0x3169f864, 0x730665ae, 0x90839e59, 0x9f2efdee, 0x3b1471f1,
                0x3fa1ebff, 0xaf7dbbb9, 0x985f0f2c, 0x53936f17, 0x79e2ee0d, 0xaf42cf41, 0x52cfd708,
                0x93e049e3,
            ],
        ),
        (
            Hash::Jenkins,
            [
                0xdeadbefc, 0xbd84a300, 0x575b414e, 0x78713309, 0xf862dc61, 0x517c6e5e, 0x19479159,
                0x52f6d2f1, 0xf1817d58, 0x5788d637, 0x6d35781f, 0xbc2b0731, 0x7b996a12, 0xf76e309e,
                0x2752b08d,
            ],
        ),
    ];

    #[test]
    fn every_hash_matches_nutcracker_on_every_prefix() {
        for (hash, expected) in FROM_NUTCRACKER {
            for (len, want) in expected.into_iter().enumerate() {
                let got = hash.of(&MIXED[..len]);
                assert_eq!(got, want, "{} of {len} bytes: {got:#010x}", hash.name());
            }
        }
    }

    #[test]
    fn known_values_of_plain_keys() {
        // From nutcracker's C code, and where a standard exists, from the standard: crc32a is
        // CRC-32's check value, crc16's low half XMODEM's (0x31c3), md5 the first four bytes
        // of md5("a") = 0cc175b9..., the FNVs the published test vectors (low 32 bits).
        let cases: &[(Hash, &[u8], u32)] = &[
            (Hash::Crc32a, b"123456789", 0xcbf43926),
            (Hash::Crc16, b"123456789", 0x869031c3),
            (Hash::Crc32, b"123456789", 0x00004bf4),
            (Hash::Md5, b"a", 0xb975c10c),
            (Hash::Fnv1_32, b"a", 0x050c5d7e),
            (Hash::Fnv1a32, b"a", 0xe40c292c),
            (Hash::Fnv1_64, b"a", 0x8601b7be),
            (Hash::Fnv1a64, b"a", 0x8601ec8c),
            (Hash::OneAtATime, b"foo", 0x238678dd),
            (Hash::Hsieh, b"foo", 0x76d4d427),
            (Hash::Murmur, b"foo", 0xc4e0338f),
            (Hash::Jenkins, b"foo", 0x99f84f99),
            (Hash::Crc16, b"foo", 0x0c3caf96),
            (Hash::Md5, b"user:1000", 0x2e986207),
        ];
        for &(hash, key, want) in cases {
            assert_eq!(hash.of(key), want, "{} of {key:?}", hash.name());
        }
    }

    #[test]
    fn key_bytes_widen_as_signed_chars() {
        assert_eq!(widened(0x00), 0x0000_0000);
        assert_eq!(widened(0x7f), 0x0000_007f);
        assert_eq!(widened(0x80), 0xffff_ff80);
        assert_eq!(widened(0xff), 0xffff_ffff);
    }

    #[test]
    fn names_are_twemproxys() {
        let names: Vec<&str> = Hash::ALL.iter().map(|h| h.name()).collect();
        assert_eq!(
            names,
            [
                "one_at_a_time",
                "md5",
                "crc16",
                "crc32",
                "crc32a",
                "fnv1_64",
                "fnv1a_64",
                "fnv1_32",
                "fnv1a_32",
                "hsieh",
                "murmur",
                "jenkins"
            ]
        );
        for hash in Hash::ALL {
            assert_eq!(Hash::from_name(hash.name()), Some(hash));
        }
        assert_eq!(Hash::from_name("fnv1a-64"), None);
        assert_eq!(Hash::from_name("MD5"), None);
        assert_eq!(Hash::DEFAULT.name(), "fnv1a_64");
    }

    /// FNV-1a 64 over 64 bits, the published algorithm.
    fn fnv1a_64_reference(key: &[u8]) -> u64 {
        key.iter().fold(FNV_64_INIT, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(FNV_64_PRIME)
        })
    }

    proptest! {
        // On bytes below 0x80, where nutcracker's signed char does not show, the 32-bit
        // fnv1a_64 is the low half of the real FNV-1a 64 and crc16's low half is XMODEM.
        #[test]
        fn ascii_keys_agree_with_the_standard_algorithms(
            key in proptest::collection::vec(0u8..0x80, 0..64),
        ) {
            prop_assert_eq!(Hash::Fnv1a64.of(&key), fnv1a_64_reference(&key) as u32);
            prop_assert_eq!(
                Hash::Crc16.of(&key) & 0xffff,
                u32::from(::crc::Crc::<u16>::new(&::crc::CRC_16_XMODEM).checksum(&key))
            );
        }

        // No hash panics on any bytes of any length (every tail of every block size).
        #[test]
        fn any_bytes_hash_without_panicking(key in proptest::collection::vec(any::<u8>(), 0..300)) {
            for hash in Hash::ALL {
                let _ = hash.of(&key);
            }
        }
    }
}
