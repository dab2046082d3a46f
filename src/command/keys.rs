//! Finds the key arguments of a request from its command's key specs, the way Redis 7 does
//! (`getKeysUsingKeySpecs`), so percore routes exactly the keys Redis would check.
//!
//! A numkeys argument is read the way Redis Cluster reads it when it decides where a command
//! runs (the commands' own `getkeys_proc`, `genericGetKeys`): with C's `atoi`, and a count
//! below one or beyond the arguments means the request has no keys at all. Such a request is
//! malformed ([`KeyError`]); the cluster runs it on whichever node got it, and that node's
//! command reports the error in its own words (which differ by command, and for FCALL by
//! whether the function exists), so percore sends it to a master too instead of wording the
//! error itself.
//!
//! Arguments are reached through the [`Args`] trait, so the client path can pass ranges of its
//! read buffer and tests can pass string slices; nothing is collected or allocated.

use std::ops::Range;

use thiserror::Error;

use crate::command::table::{BeginSearch, CommandFlags, CommandSpec, FindKeys};
use crate::resp::encode;
use crate::resp::line::parse_int;

/// Argument access by index; index 0 is the command name.
pub trait Args {
    /// Number of arguments, including the command name.
    fn count(&self) -> usize;
    /// Argument `index`; empty when out of range.
    fn get(&self, index: usize) -> &[u8];

    /// Argument `index` as the request carried it, a whole RESP bulk string
    /// (`$<len>\r\n<bytes>\r\n`, the length written as the proxy's own encoder writes
    /// it), so a sub-request built from it copies it as it is; `None` when the request has no
    /// such bytes (arguments held apart, an inline command) and it must be encoded.
    fn bulk(&self, _index: usize) -> Option<&[u8]> {
        None
    }
}

impl Args for [&[u8]] {
    fn count(&self) -> usize {
        self.len()
    }

    fn get(&self, index: usize) -> &[u8] {
        <[&[u8]]>::get(self, index).copied().unwrap_or_default()
    }
}

/// A request's arguments as ranges of its frame.
pub struct FrameArgs<'a> {
    /// The whole request.
    pub frame: &'a [u8],
    /// Argument ranges within `frame`.
    pub args: &'a [Range<usize>],
}

impl Args for FrameArgs<'_> {
    fn count(&self) -> usize {
        self.args.len()
    }

    fn get(&self, index: usize) -> &[u8] {
        self.args.get(index).map_or(&[], |r| &self.frame[r.clone()])
    }

    fn bulk(&self, index: usize) -> Option<&[u8]> {
        let range = self.args.get(index)?;
        let header = encode::header_len(range.len());
        let whole = self
            .frame
            .get(range.start.checked_sub(header)?..range.end + 2)?;
        let canonical = whole[0] == b'$'
            && whole[header - 2..header] == *b"\r\n"
            && whole[whole.len() - 2..] == *b"\r\n"
            && parse_int(&whole[1..header - 2]) == Some(range.len() as i64);
        canonical.then_some(whole)
    }
}

/// Key arguments that cannot be found because the request is malformed. Redis Cluster finds
/// no keys in such a request, and the command itself then refuses it with its own error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The numkeys argument is missing, or negative as `atoi` reads it (`abc` reads as 0,
    /// `1.5` as 1, `4294967297` as 1: C's int).
    #[error("numkeys is missing or negative")]
    BadNumKeys,
    /// A numkeys argument larger than the arguments that follow it.
    #[error("numkeys is larger than the arguments that follow it")]
    NumKeysOutOfRange,
    /// XREAD or XREADGROUP with a stream key and no ID, or an ID and no key.
    #[error("streams and IDs are unbalanced")]
    UnbalancedStreams,
}

/// Calls `f` with the index of every key argument, spec by spec in the order Redis lists
/// them. An index may be reported twice when two specs cover the same argument (harmless for
/// routing: same key, same slot).
pub fn for_each_key<A: Args + ?Sized>(
    spec: &CommandSpec,
    args: &A,
    mut f: impl FnMut(usize),
) -> Result<(), KeyError> {
    let argc = args.count() as i64;
    for key_spec in spec.key_specs {
        let Some(first) = begin(key_spec.begin, args) else {
            continue;
        };
        let (first, last, step) = match key_spec.find {
            FindKeys::Range {
                last_key,
                key_step,
                limit,
            } => {
                let last_key = i64::from(last_key);
                let last = if last_key >= 0 {
                    first + last_key
                } else if limit == 0 {
                    argc + last_key
                } else {
                    // Only XREAD and XREADGROUP have a limit (STREAMS k1 k2 id1 id2), and
                    // Redis's `xreadGetKeys` finds no keys unless there is an ID per key.
                    if (argc - first) % i64::from(limit) != 0 {
                        return Err(KeyError::UnbalancedStreams);
                    }
                    first + ((argc - first) / i64::from(limit) + last_key)
                };
                (first, last, i64::from(key_step.max(1)))
            }
            FindKeys::KeyNum {
                key_num_idx,
                first_key,
                key_step,
            } => {
                let at = first + i64::from(key_num_idx);
                if at >= argc {
                    return Err(KeyError::BadNumKeys);
                }
                let numkeys = i64::from(atoi(args.get(at as usize)));
                let step = i64::from(key_step.max(1));
                let first = first + i64::from(first_key);
                if numkeys < 0 {
                    return Err(KeyError::BadNumKeys);
                }
                if numkeys > (argc - first) / step {
                    return Err(KeyError::NumKeysOutOfRange);
                }
                (first, first + (numkeys - 1) * step, step)
            }
            FindKeys::Unknown => continue,
        };
        let mut index = first;
        // Like Redis, indexes past the end are skipped: the command itself reports the
        // arity or syntax error.
        while index <= last && index < argc {
            if !is_migrate_placeholder(spec, index, args) {
                f(index as usize);
            }
            index += step;
        }
    }
    // SORT's destination has no key spec Redis can describe (it uses a key-finding function
    // instead); find it the same way that function does.
    if spec.flags.contains(CommandFlags::MOVABLE_KEYS) && spec.name == "sort" {
        if let Some(store) = sort_store_key(args) {
            f(store);
        }
    }
    Ok(())
}

/// MIGRATE's key argument is "" when the keys follow KEYS; Redis (`migrateGetKeys`) does
/// not count it as a key, and routing by it would wrongly send the request to slot 0.
fn is_migrate_placeholder<A: Args + ?Sized>(spec: &CommandSpec, index: i64, args: &A) -> bool {
    index == 3
        && args.get(3).is_empty()
        && spec.flags.contains(CommandFlags::MOVABLE_KEYS)
        && spec.name == "migrate"
}

/// The destination key of `SORT key ... STORE dst`, skipping the arguments of LIMIT, BY and
/// GET as Redis's `sortGetKeys` does; the last STORE wins.
fn sort_store_key<A: Args + ?Sized>(args: &A) -> Option<usize> {
    let mut store = None;
    let mut i = 2;
    while i < args.count() {
        let arg = args.get(i);
        let skip = if arg.eq_ignore_ascii_case(b"limit") {
            2
        } else if arg.eq_ignore_ascii_case(b"get") || arg.eq_ignore_ascii_case(b"by") {
            1
        } else if arg.eq_ignore_ascii_case(b"store") {
            if i + 1 < args.count() {
                store = Some(i + 1);
            }
            1
        } else {
            0
        };
        i += 1 + skip;
    }
    store
}

/// The argument index where a key search starts, or `None` if the spec does not apply.
fn begin<A: Args + ?Sized>(begin: BeginSearch, args: &A) -> Option<i64> {
    let argc = args.count() as i64;
    match begin {
        BeginSearch::Index(index) => Some(i64::from(index)).filter(|&i| i < argc),
        BeginSearch::Keyword {
            keyword,
            start_from,
        } => {
            let start_from = i64::from(start_from);
            let (start, end, step) = if start_from > 0 {
                (start_from, argc - 1, 1)
            } else {
                (argc + start_from, 0, -1)
            };
            let mut i = start;
            while i != end + step {
                if i >= argc || i < 1 {
                    break;
                }
                if args
                    .get(i as usize)
                    .eq_ignore_ascii_case(keyword.as_bytes())
                {
                    return Some(i + 1);
                }
                i += step;
            }
            None
        }
        BeginSearch::Unknown => None,
    }
}

/// A numkeys argument as C's `atoi` (glibc: `(int) strtol(s, NULL, 10)`) reads it, which is
/// how Redis Cluster reads it to find a command's keys: leading white space, a sign, then
/// digits up to the first non-digit; a value past `long` saturates, and the cast to `int`
/// keeps the low 32 bits.
fn atoi(arg: &[u8]) -> i32 {
    let start = arg
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .unwrap_or(arg.len());
    let mut rest = &arg[start..];
    let negative = rest.first() == Some(&b'-');
    if matches!(rest.first(), Some(b'-' | b'+')) {
        rest = &rest[1..];
    }
    let mut value: i64 = 0;
    for &b in rest.iter().take_while(|b| b.is_ascii_digit()) {
        let digit = i64::from(b - b'0');
        value = match negative {
            false => value.saturating_mul(10).saturating_add(digit),
            true => value.saturating_mul(10).saturating_sub(digit),
        };
    }
    value as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::table::lookup;

    #[test]
    fn a_bulk_is_copied_only_as_the_request_carried_it() {
        let frame = b"*3\r\n$4\r\nMGET\r\n$3\r\nabc\r\n$0\r\n\r\n";
        let ranges = [8..12, 18..21, 27..27];
        let args = FrameArgs {
            frame,
            args: &ranges,
        };
        assert_eq!(args.bulk(0), Some(&b"$4\r\nMGET\r\n"[..]));
        assert_eq!(args.bulk(1), Some(&b"$3\r\nabc\r\n"[..]));
        assert_eq!(args.bulk(2), Some(&b"$0\r\n\r\n"[..]));
        assert_eq!(args.bulk(3), None);
        // An inline command's arguments have no bulk header to copy.
        let inline = b"MGET abc xyz\r\n";
        let ranges = [0..4, 5..8, 9..12];
        let args = FrameArgs {
            frame: inline,
            args: &ranges,
        };
        assert!((0..3).all(|index| args.bulk(index).is_none()));
        // A length written with a leading zero is not the header the encoder writes.
        let padded = b"*2\r\n$04\r\nMGET\r\n$3\r\nabc\r\n";
        let ranges = [9..13, 19..22];
        let args = FrameArgs {
            frame: padded,
            args: &ranges,
        };
        assert_eq!(args.bulk(0), None);
        assert_eq!(args.bulk(1), Some(&b"$3\r\nabc\r\n"[..]));
    }

    fn keys(line: &str) -> Result<Vec<usize>, KeyError> {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let mut spec = lookup(args[0]).expect("known command");
        if !spec.subcommands.is_empty() {
            spec = spec.subcommand(args[1]).expect("known subcommand");
        }
        let mut found = Vec::new();
        for_each_key(spec, &args[..], |i| found.push(i))?;
        found.dedup();
        Ok(found)
    }

    #[test]
    fn key_positions_match_redis() {
        let cases: &[(&str, &[usize])] = &[
            ("GET k", &[1]),
            ("SET k v EX 10", &[1]),
            ("MSET a 1 b 2", &[1, 3]),
            ("MGET a b c", &[1, 2, 3]),
            ("DEL a b", &[1, 2]),
            ("EVAL s 2 k1 k2 a1", &[3, 4]),
            ("EVAL s 0", &[]),
            ("FCALL f 1 k", &[3]),
            ("ZUNIONSTORE dst 2 a b WEIGHTS 1 2", &[1, 3, 4]),
            ("XREAD COUNT 2 STREAMS s1 s2 0 0", &[4, 5]),
            ("XREADGROUP GROUP g c STREAMS s 0", &[5]),
            ("MIGRATE h p  0 5000 KEYS a b", &[7, 8]),
            ("MIGRATE h p k 0 5000", &[3]),
            ("LMOVE a b LEFT RIGHT", &[1, 2]),
            ("SORT k STORE d", &[1, 3]),
            ("OBJECT ENCODING k", &[2]),
            ("XINFO STREAM s", &[2]),
            ("MEMORY USAGE k", &[2]),
            ("BITOP AND d a b", &[2, 3, 4]),
            ("RENAME a b", &[1, 2]),
            ("PING", &[]),
        ];
        for (line, expected) in cases {
            assert_eq!(keys(line).as_deref(), Ok(*expected), "{line}");
        }
    }

    #[test]
    fn numkeys_read_as_redis_cluster_reads_them() {
        use KeyError::*;
        let cases: &[(&str, Result<&[usize], KeyError>)] = &[
            ("EVAL s -1 k", Err(BadNumKeys)),
            ("EVAL s -2147483649 k", Err(NumKeysOutOfRange)),
            ("EVAL s 2147483648 k", Err(BadNumKeys)),
            ("EVAL s 5 k", Err(NumKeysOutOfRange)),
            ("EVAL s 2 k", Err(NumKeysOutOfRange)),
            // atoi stops at the first non-digit and keeps C int's low 32 bits.
            ("EVAL s abc k", Ok(&[])),
            ("EVAL s  k", Ok(&[])),
            ("EVAL s 1.5 k", Ok(&[3])),
            ("EVAL s 1abc k", Ok(&[3])),
            ("EVAL s +1 k", Ok(&[3])),
            ("EVAL s 4294967297 k", Ok(&[3])),
            ("EVAL s 99999999999999999999 k", Err(BadNumKeys)),
            ("FCALL f 1 k", Ok(&[3])),
            ("ZUNIONSTORE dst -1 k", Err(BadNumKeys)),
            ("ZUNIONSTORE dst 1.5 k", Ok(&[1, 3])),
            ("ZUNION 5 k", Err(NumKeysOutOfRange)),
            ("SINTERCARD 2 a b LIMIT 1", Ok(&[2, 3])),
            ("LMPOP 1 k LEFT", Ok(&[2])),
            ("BZMPOP 0 -1 k MIN", Err(BadNumKeys)),
            ("XREAD STREAMS a b c", Err(UnbalancedStreams)),
            ("XREADGROUP GROUP g c STREAMS a b c", Err(UnbalancedStreams)),
        ];
        for (line, expected) in cases {
            assert_eq!(keys(line).as_deref(), expected.as_deref(), "{line}");
        }
    }

    #[test]
    fn atoi_is_c_atoi() {
        let cases: &[(&str, i32)] = &[
            ("12", 12),
            ("-3", -3),
            (" \t+7x", 7),
            ("", 0),
            ("x1", 0),
            ("- 1", 0),
            ("2147483647", i32::MAX),
            ("2147483648", i32::MIN),
            ("99999999999999999999", -1),
            ("-99999999999999999999", 0),
        ];
        for (arg, expected) in cases {
            assert_eq!(atoi(arg.as_bytes()), *expected, "{arg:?}");
        }
    }
}
