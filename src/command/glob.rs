//! Redis's glob-style patterns (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), as `PSUBSCRIBE`,
//! `PUBSUB CHANNELS` and `KEYS` use them.
//!
//! [`matches()`] is a port of Redis's `stringmatchlen` (util.c, 7.0), including its quirks (an
//! unclosed `[` class, a reversed range `[z-a]`), so percore's answers agree with a node's.
//! [`may_match_prefix`] answers a different question: could the pattern match *some* string
//! that starts with a given prefix? It decides where a pattern subscription must go (a pattern
//! that can match keyspace-notification channels is subscribed on every master), and it errs
//! on the side of yes: a needless subscription costs a little, a missing one loses events.

/// Whether `pattern` matches the whole of `text`, exactly as Redis matches it (case-sensitive).
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let mut skip_longer = false;
    match_from(pattern, text, &mut skip_longer)
}

/// `stringmatchlen_impl`: `skip_longer` is set once a `*` found no match for the rest of the
/// pattern anywhere in the rest of the string, so earlier stars need not try longer spans
/// (this keeps patterns like `a*a*a*a*b` linear rather than exponential).
fn match_from(mut p: &[u8], mut s: &[u8], skip_longer: &mut bool) -> bool {
    while !p.is_empty() && !s.is_empty() {
        match p[0] {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if match_from(&p[1..], s, skip_longer) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                *skip_longer = true;
                return false;
            }
            b'?' => p = &p[1..],
            b'[' => {
                let (matched, rest) = class(&p[1..], s[0]);
                if !matched {
                    return false;
                }
                p = rest;
            }
            b'\\' if p.len() >= 2 => {
                if p[1] != s[0] {
                    return false;
                }
                p = &p[2..];
            }
            literal => {
                if literal != s[0] {
                    return false;
                }
                p = &p[1..];
            }
        }
        s = &s[1..];
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

/// Matches `c` against the class whose body starts at `p` (just after `[`); returns whether it
/// matched and the pattern after the class. Checked in Redis's order: an escape, the closing
/// `]`, the end of the pattern (an unclosed class runs to it), a range, a single byte.
fn class(mut p: &[u8], c: u8) -> (bool, &[u8]) {
    let negated = p.first() == Some(&b'^');
    if negated {
        p = &p[1..];
    }
    let mut matched = false;
    loop {
        match p {
            [b'\\', escaped, ..] => {
                matched |= *escaped == c;
                p = &p[2..];
            }
            [b']', ..] => {
                p = &p[1..];
                break;
            }
            [] => break,
            [a, b'-', b, ..] => {
                // A reversed range is the same range.
                matched |= (*a.min(b)..=*a.max(b)).contains(&c);
                p = &p[3..];
            }
            [single, ..] => {
                matched |= *single == c;
                p = &p[1..];
            }
        }
    }
    (matched != negated, p)
}

/// Whether `pattern` could match some string that starts with `prefix`. Exact for literals,
/// `?` and escapes; yes as soon as a `*` or a `[` class is met (the rest of the pattern can
/// then always be satisfied, or is assumed to be).
pub fn may_match_prefix(pattern: &[u8], prefix: &[u8]) -> bool {
    let (mut p, mut s) = (pattern, prefix);
    loop {
        let Some(&first) = s.first() else {
            // The prefix is consumed; any rest of the pattern matches some suffix.
            return true;
        };
        match p.first() {
            None => return false,
            Some(b'*' | b'[') => return true,
            Some(b'?') => p = &p[1..],
            Some(b'\\') if p.len() >= 2 => {
                if p[1] != first {
                    return false;
                }
                p = &p[2..];
            }
            Some(&literal) => {
                if literal != first {
                    return false;
                }
                p = &p[1..];
            }
        }
        s = &s[1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_redis() {
        let cases: &[(&str, &str, bool)] = &[
            // Redis's quirk: the loop never runs on an empty string, so `*` does not match it.
            ("*", "", false),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("a", "", false),
            ("foo.*", "foo.1", true),
            ("foo.*", "foo1", false),
            ("bar.*", "barfoo.1", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("[\\]]", "]", true),
            ("a*", "a", true),
            ("a**", "a", true),
            ("*a", "a", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            (
                "a*a*a*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("__keyspace@*__:foo", "__keyspace@0__:foo", true),
            // Unclosed class: Redis treats the bytes up to the end as the class.
            ("[ab", "a", true),
            ("[ab", "c", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), text.as_bytes()),
                *expected,
                "{pattern:?} vs {text:?}"
            );
        }
    }

    #[test]
    fn prefix_possibility() {
        let prefix = b"__keyspace@";
        let cases: &[(&str, bool)] = &[
            ("*", true),
            ("__key*", true),
            ("__keyspace@0__:*", true),
            ("__keyspace@0__:foo", true),
            ("_?keyspace@*", true),
            ("[_]*", true),
            ("\\_\\_keyspace@*", true),
            ("foo*", false),
            ("__keyevent@*", false),
            ("__key", false),
            ("chan.*", false),
        ];
        for (pattern, expected) in cases {
            assert_eq!(
                may_match_prefix(pattern.as_bytes(), prefix),
                *expected,
                "{pattern:?}"
            );
        }
    }

    #[test]
    fn acl_key_patterns_match_like_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("app:*", "app:1", true),
            ("app:*", "ap", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("h[ae]llo", "hello", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-c]llo", "hbllo", true),
            ("h[a-c]llo", "hdllo", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("*:*:end", "x:y:z:end", true),
            ("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("", "", true),
            ("", "x", false),
        ];
        for (pattern, key, expected) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), key.as_bytes()),
                *expected,
                "{pattern} ~ {key}"
            );
        }
    }
}
