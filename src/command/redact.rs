//! Which arguments of a request are secrets that logs must not show: the passwords of AUTH,
//! HELLO ... AUTH and MIGRATE ... AUTH/AUTH2, sensitive CONFIG SET values and ACL SETUSER
//! rules. MONITOR and SLOWLOG show each of them as `(redacted)`, exactly where Redis 7 does
//! (checked against redis-server 7.0's own MONITOR and SLOWLOG output).
//!
//! Pure, like the rest of `command`: arguments in, the hidden positions out. Only the handful
//! of commands named here are looked at beyond their name, and the answer for every other
//! command allocates nothing.

use crate::command::keys::Args;

/// What Redis shows in place of a hidden argument.
pub const REDACTED: &[u8] = b"(redacted)";

/// CONFIG parameters whose values Redis 7 hides (those it flags sensitive).
const SENSITIVE_CONFIG: [&[u8]; 3] = [b"requirepass", b"masterauth", b"masteruser"];

/// The hidden arguments of one request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Redaction {
    /// Every argument from this index on is hidden (`usize::MAX`: none).
    from: usize,
    /// Single hidden arguments, by index.
    listed: Vec<usize>,
}

impl Redaction {
    /// Whether argument `index` is hidden.
    pub fn hides(&self, index: usize) -> bool {
        index >= self.from || self.listed.contains(&index)
    }

    fn nothing() -> Self {
        Redaction {
            from: usize::MAX,
            listed: Vec::new(),
        }
    }

    fn from(index: usize) -> Self {
        Redaction {
            from: index,
            listed: Vec::new(),
        }
    }
}

/// The arguments of `args` that logs must hide.
pub fn redaction<A: Args + ?Sized>(args: &A) -> Redaction {
    let name = args.get(0);
    let is = |i: usize, word: &[u8]| args.get(i).eq_ignore_ascii_case(word);
    if name.eq_ignore_ascii_case(b"auth") {
        return Redaction::from(1);
    }
    if name.eq_ignore_ascii_case(b"acl") && is(1, b"setuser") {
        // The user name too, as Redis does.
        return Redaction::from(2);
    }
    let mut hidden = Redaction::nothing();
    if name.eq_ignore_ascii_case(b"hello") {
        // HELLO protover [AUTH user password] [SETNAME name]
        let mut i = 2;
        while i < args.count() {
            if is(i, b"auth") && i + 2 < args.count() {
                hidden.listed.extend([i + 1, i + 2]);
                i += 3;
            } else {
                i += 1;
            }
        }
    } else if name.eq_ignore_ascii_case(b"migrate") {
        // MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS ..]
        for i in 6..args.count() {
            if is(i, b"auth") {
                hidden.listed.push(i + 1);
            } else if is(i, b"auth2") {
                hidden.listed.extend([i + 1, i + 2]);
            }
        }
    } else if name.eq_ignore_ascii_case(b"config") && is(1, b"set") {
        // CONFIG SET parameter value [parameter value ...]
        for i in (2..args.count()).step_by(2) {
            if SENSITIVE_CONFIG.iter().any(|p| is(i, p)) {
                hidden.listed.push(i + 1);
            }
        }
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arguments shown for `line`, hidden ones as Redis shows them.
    fn shown(line: &str) -> String {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let hidden = redaction(&args[..]);
        let shown: Vec<&str> = args
            .iter()
            .enumerate()
            .map(|(i, a)| match hidden.hides(i) {
                true => "(redacted)",
                false => std::str::from_utf8(a).unwrap_or("?"),
            })
            .collect();
        shown.join(" ")
    }

    #[test]
    fn hides_what_redis_hides() {
        // Each expectation is what redis-server 7.0 logged for the same request.
        let cases = [
            ("AUTH pw", "AUTH (redacted)"),
            ("auth u pw", "auth (redacted) (redacted)"),
            (
                "HELLO 2 AUTH u pw SETNAME x",
                "HELLO 2 AUTH (redacted) (redacted) SETNAME x",
            ),
            ("HELLO 3", "HELLO 3"),
            (
                "MIGRATE h 1 k 0 10 AUTH pw",
                "MIGRATE h 1 k 0 10 AUTH (redacted)",
            ),
            (
                "MIGRATE h 1 k 0 10 AUTH2 u pw",
                "MIGRATE h 1 k 0 10 AUTH2 (redacted) (redacted)",
            ),
            (
                "CONFIG SET masterauth foo maxmemory 0",
                "CONFIG SET masterauth (redacted) maxmemory 0",
            ),
            (
                "CONFIG SET tls-key-file-pass a masteruser c",
                "CONFIG SET tls-key-file-pass a masteruser (redacted)",
            ),
            (
                "ACL SETUSER bob on >secret",
                "ACL SETUSER (redacted) (redacted) (redacted)",
            ),
            ("SET auth pw", "SET auth pw"),
        ];
        for (line, expected) in cases {
            assert_eq!(shown(line), expected, "{line}");
        }
    }

    #[test]
    fn other_commands_allocate_nothing() {
        let args: [&[u8]; 3] = [b"SET", b"k", b"v"];
        assert_eq!(redaction(&args[..]).listed.capacity(), 0);
    }
}
