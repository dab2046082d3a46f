//! twemproxy's `hash_tag`: two delimiter bytes that pick the part of a key that is hashed.
//!
//! nutcracker's rule (`server_pool_idx`): find the first `open` byte in the key; after it, find
//! the first `close` byte; if both are there and at least one byte lies between them, hash only
//! the bytes between; otherwise hash the whole key. So a missing tag, an empty tag (`{}`) and
//! an unterminated one (`{abc`) all hash the whole key, and the search for `close` starts after
//! `open`, which lets both delimiters be the same byte (`$$`: `a$b$c` hashes `b`).
//!
//! With `{}` this is the rule Redis Cluster uses too (`cluster::slot::hash_tag`), but the two
//! differ around it: twemproxy's delimiters are any two bytes of the YAML value, a tag only
//! applies when a pool sets `hash_tag`, and what is hashed is fed to the pool's hash, where
//! an empty result is special: nutcracker gives an empty key the hash 0 without calling the
//! hash function ([`super::Ring::server_for`] does the same), so `""` does not hash like the
//! function's value of no bytes.

/// A pool's two hash tag delimiters, e.g. `{` and `}` for the YAML value `"{}"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashTag {
    /// The byte that opens a tag (the value's first byte).
    open: u8,
    /// The byte that closes it (the value's second byte), searched for after `open`.
    close: u8,
}

impl HashTag {
    /// The tag a YAML `hash_tag:` value names: exactly two bytes, as nutcracker requires
    /// ("is not a valid hash tag string with two characters" otherwise).
    pub fn new(value: &[u8]) -> Option<HashTag> {
        match *value {
            [open, close] => Some(HashTag { open, close }),
            _ => None,
        }
    }

    /// The part of `key` that is hashed: the bytes of a non-empty tag, or the whole key.
    ///
    /// ```
    /// use percore::upstream::HashTag;
    /// let tag = HashTag::new(b"{}").unwrap();
    /// assert_eq!(tag.hashed(b"user:{42}:name"), b"42");
    /// assert_eq!(tag.hashed(b"user:{}:name"), b"user:{}:name");
    /// assert_eq!(tag.hashed(b"user:{42"), b"user:{42");
    /// ```
    pub fn hashed(self, key: &[u8]) -> &[u8] {
        let Some(open) = key.iter().position(|&b| b == self.open) else {
            return key;
        };
        let inside = &key[open + 1..];
        match inside.iter().position(|&b| b == self.close) {
            Some(len) if len > 0 => &inside[..len],
            _ => key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_two_bytes_make_a_tag() {
        assert!(HashTag::new(b"{}").is_some());
        assert!(HashTag::new(b"$$").is_some());
        assert!(HashTag::new(b"").is_none());
        assert!(HashTag::new(b"{").is_none());
        assert!(HashTag::new(b"{{}}").is_none());
    }

    #[test]
    fn what_is_hashed() {
        let braces = HashTag::new(b"{}").unwrap();
        let dollars = HashTag::new(b"$$").unwrap();
        let cases: &[(HashTag, &[u8], &[u8])] = &[
            (braces, b"foo", b"foo"),
            (braces, b"{user1000}.following", b"user1000"),
            (braces, b"foo{}{bar}", b"foo{}{bar}"),
            (braces, b"foo{{bar}}zap", b"{bar"),
            (braces, b"foo{bar}{zap}", b"bar"),
            (braces, b"{}", b"{}"),
            (braces, b"{", b"{"),
            (braces, b"}{a}", b"a"),
            (braces, b"a}b", b"a}b"),
            (braces, b"abc{", b"abc{"),
            (braces, b"{x}", b"x"),
            (braces, b"", b""),
            (dollars, b"a$b$c", b"b"),
            (dollars, b"a$$b$c$", b"a$$b$c$"),
            (dollars, b"$", b"$"),
            (dollars, b"$ab", b"$ab"),
        ];
        for &(tag, key, want) in cases {
            assert_eq!(tag.hashed(key), want, "{tag:?} of {key:?}");
        }
    }
}
