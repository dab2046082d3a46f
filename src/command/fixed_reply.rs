//! Writes whose reply is known before they run: what a pool with `async_writes: true` answers
//! `+OK` at once and sends in the background.
//!
//! A write qualifies when, its arguments being well formed, the server answers `+OK` whatever
//! the keys hold, and when sending it twice leaves what sending it once does (a background
//! write whose connection broke before its reply came is sent again). Those are:
//! - `SET key value`, alone or with one of `EX`/`PX`/`EXAT`/`PXAT n` or `KEEPTTL`: `SET`
//!   replaces any value of any type;
//! - `SETEX key seconds value`, `PSETEX key milliseconds value`;
//! - `MSET key value [key value ...]`;
//! - `HMSET key field value [field value ...]`: the one whose reply can still be an error
//!   that depends on the key (`WRONGTYPE` when it holds something else than a hash).
//!
//! Not these, though their reply can look fixed: `SET` with `NX`, `XX` or `GET` (the reply
//! says whether it ran, or what was there), `HSET`/`LPUSH`/`SADD`/`INCR`/`DEL`... (the reply
//! is a count or a value), `LTRIM`, `RENAME`, `LSET` (`+OK`, but run twice they do more than
//! once, or they fail when the key is missing), `FLUSHDB`/`FLUSHALL` (never behind a client's
//! back). Anything percore is not sure the server accepts as it stands (an expire time out of
//! Redis's range, an option given twice, an odd number of arguments) is sent the usual way, and
//! the client gets the server's own reply.
//!
//! Pure: a command and its arguments in, the kind of fixed write out, so every rule is tested
//! here.

use crate::command::keys::Args;
use crate::command::route::Command;
use crate::resp::line::parse_int;

/// Largest expire time taken, in milliseconds: Redis refuses times whose milliseconds,
/// added to the current time, overflow a signed 64-bit number; up to 2^62 ms (146 million
/// years) none can.
const MAX_EXPIRE_MS: i64 = 1 << 62;

/// A write whose reply is `+OK` whatever the keys hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedWrite {
    /// `SET key value [EX|PX|EXAT|PXAT n | KEEPTTL]`.
    Set,
    /// `SETEX key seconds value`.
    SetEx,
    /// `PSETEX key milliseconds value`.
    PSetEx,
    /// `MSET key value ...`.
    MSet,
    /// `HMSET key field value ...`.
    HMSet,
}

impl FixedWrite {
    /// The command's name, as logs show it.
    pub fn name(self) -> &'static str {
        match self {
            FixedWrite::Set => "set",
            FixedWrite::SetEx => "setex",
            FixedWrite::PSetEx => "psetex",
            FixedWrite::MSet => "mset",
            FixedWrite::HMSet => "hmset",
        }
    }
}

/// The kind of fixed write `args` (`command`'s) is, if it is one.
pub fn fixed_write<A: Args + ?Sized>(command: Command, args: &A) -> Option<FixedWrite> {
    if command.parent.is_some() {
        return None;
    }
    let count = args.count();
    match command.spec.name {
        "set" => set_is_fixed(args).then_some(FixedWrite::Set),
        "setex" => (count == 4 && expire_ok(args.get(2), 1000)).then_some(FixedWrite::SetEx),
        "psetex" => (count == 4 && expire_ok(args.get(2), 1)).then_some(FixedWrite::PSetEx),
        "mset" => (count >= 3 && count % 2 == 1).then_some(FixedWrite::MSet),
        "hmset" => (count >= 4 && count.is_multiple_of(2)).then_some(FixedWrite::HMSet),
        _ => None,
    }
}

/// `SET key value`, with at most one option, and that one `KEEPTTL` or an expire Redis takes.
fn set_is_fixed<A: Args + ?Sized>(args: &A) -> bool {
    match args.count() {
        3 => true,
        4 => args.get(3).eq_ignore_ascii_case(b"keepttl"),
        5 => {
            let option = args.get(3);
            let unit = if option.eq_ignore_ascii_case(b"ex") || option.eq_ignore_ascii_case(b"exat")
            {
                1000
            } else if option.eq_ignore_ascii_case(b"px") || option.eq_ignore_ascii_case(b"pxat") {
                1
            } else {
                return false;
            };
            expire_ok(args.get(4), unit)
        }
        _ => false,
    }
}

/// Whether `text` is an expire time Redis takes: a strict integer above 0, in units of
/// `unit_ms` milliseconds, within [`MAX_EXPIRE_MS`].
fn expire_ok(text: &[u8], unit_ms: i64) -> bool {
    parse_int(text).is_some_and(|n| n > 0 && n <= MAX_EXPIRE_MS / unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::route::route_command;

    fn kind(line: &str) -> Option<FixedWrite> {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let (_, command) = route_command(&args[..]);
        fixed_write(command?, &args[..])
    }

    #[test]
    fn fixed_writes_are_those_whose_reply_is_ok_whatever_the_keys_hold() {
        use FixedWrite::*;
        let cases: &[(&str, Option<FixedWrite>)] = &[
            ("SET k v", Some(Set)),
            ("set k v", Some(Set)),
            ("SET k v EX 10", Some(Set)),
            ("SET k v ex 10", Some(Set)),
            ("SET k v PX 1", Some(Set)),
            ("SET k v EXAT 1700000000", Some(Set)),
            ("SET k v PXAT 1700000000000", Some(Set)),
            ("SET k v KEEPTTL", Some(Set)),
            ("SET k v keepttl", Some(Set)),
            ("SET k v EX 4611686018427387", Some(Set)),
            ("SET k v PX 4611686018427387904", Some(Set)),
            ("SETEX k 10 v", Some(SetEx)),
            ("PSETEX k 10 v", Some(PSetEx)),
            ("MSET a 1", Some(MSet)),
            ("MSET a 1 b 2 c 3", Some(MSet)),
            ("HMSET h f v", Some(HMSet)),
            ("HMSET h f v g w", Some(HMSet)),
            // The reply says whether it ran, or what was there.
            ("SET k v NX", None),
            ("SET k v XX", None),
            ("SET k v GET", None),
            ("SET k v EX 10 NX", None),
            ("SET k v KEEPTTL GET", None),
            // Refused by the server: its own error is the client's reply.
            ("SET k v EX 0", None),
            ("SET k v EX -5", None),
            ("SET k v EX 09", None),
            ("SET k v EX 1.5", None),
            ("SET k v EX 4611686018427388", None),
            ("SET k v PX 4611686018427387905", None),
            ("SET k v EX", None),
            ("SET k v EX 5 EX 4", None),
            ("SET k v EX 5 PX 4", None),
            ("SET k v KEEPTTL EX 5", None),
            ("SET k v FOO", None),
            ("SET k", None),
            ("SETEX k 0 v", None),
            ("SETEX k x v", None),
            ("SETEX k 10", None),
            ("PSETEX k -1 v", None),
            ("MSET a", None),
            ("MSET a 1 b", None),
            ("HMSET h f", None),
            ("HMSET h f v g", None),
            // A count or a value for a reply, or more than once is not once.
            ("HSET h f v", None),
            ("LPUSH l a", None),
            ("INCR n", None),
            ("DEL k", None),
            ("LTRIM l 0 1", None),
            ("RENAME a b", None),
            ("LSET l 0 v", None),
            ("FLUSHDB", None),
            ("MSETNX a 1", None),
            ("GET k", None),
        ];
        for (line, expected) in cases {
            assert_eq!(kind(line), *expected, "{line}");
        }
    }

    #[test]
    fn names_are_redis_s() {
        let names: Vec<&str> = [
            FixedWrite::Set,
            FixedWrite::SetEx,
            FixedWrite::PSetEx,
            FixedWrite::MSet,
            FixedWrite::HMSet,
        ]
        .iter()
        .map(|kind| kind.name())
        .collect();
        assert_eq!(names, ["set", "setex", "psetex", "mset", "hmset"]);
    }
}
