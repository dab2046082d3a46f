//! The timeout of a blocking command: where it is among the arguments, how long it is, and the
//! same request with less time left (for a request sent again to a slot's new owner).
//!
//! A blocking command waits on the node for as long as its own timeout says, so percore must
//! wait for its reply that long too (and forever for 0), rather than `--backend-timeout`. The
//! timeout is in seconds, fractions allowed, for the list and sorted set commands (BLPOP ...
//! timeout, BLMPOP timeout numkeys ...), and in milliseconds after `BLOCK` for XREAD and
//! XREADGROUP. Pure: arguments in, positions and durations out.

use std::time::Duration;

use bytes::BytesMut;

use crate::command::keys::Args;
use crate::resp::encode;
use crate::resp::line::parse_int;

/// The shortest timeout a request sent again is given: 0 would mean "forever", so a request
/// whose time has run out goes with this instead and the node answers its own timeout reply.
const LEAST_LEFT: Duration = Duration::from_millis(1);

/// How a blocking command's timeout is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds, fractions allowed (BLPOP, BLMOVE, BZMPOP, ...).
    Seconds,
    /// Whole milliseconds (XREAD/XREADGROUP `BLOCK`).
    Millis,
}

/// How long a blocking command may wait on the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Timeout 0: until an element comes.
    Forever,
    /// Until this much time has passed.
    For(Duration),
    /// Not a timeout Redis accepts: the node answers an error at once.
    Invalid,
}

/// A blocking command's timeout argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    /// Its argument index.
    pub index: usize,
    /// How it is written.
    pub unit: Unit,
    /// What it says.
    pub wait: Wait,
}

/// The timeout of the blocking command `name` (the table's lower-case name) in `args`; `None`
/// when the command does not block as written (XREAD without `BLOCK`) or is not blocking.
pub fn timeout<A: Args + ?Sized>(name: &str, args: &A) -> Option<Timeout> {
    let last = args.count().checked_sub(1).filter(|&last| last > 0)?;
    let (index, unit) = match name {
        "blpop" | "brpop" | "bzpopmin" | "bzpopmax" | "brpoplpush" | "blmove" => {
            (last, Unit::Seconds)
        }
        "blmpop" | "bzmpop" => (1, Unit::Seconds),
        "xread" | "xreadgroup" => {
            // Only options before STREAMS count: a stream may well be named "block".
            let block = (1..args.count())
                .take_while(|&i| !args.get(i).eq_ignore_ascii_case(b"streams"))
                .filter(|&i| args.get(i).eq_ignore_ascii_case(b"block"))
                .last()?;
            (block + 1, Unit::Millis)
        }
        _ => return None,
    };
    let wait = parse_wait(args.get(index), unit);
    Some(Timeout { index, unit, wait })
}

/// What a timeout argument says, parsed as Redis parses it (negative is an error; 0 waits
/// forever).
fn parse_wait(text: &[u8], unit: Unit) -> Wait {
    let millis = match unit {
        Unit::Millis => parse_int(text).map(|ms| ms as f64),
        Unit::Seconds => std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite())
            .map(|s| s * 1000.0),
    };
    match millis {
        Some(ms) if ms < 0.0 => Wait::Invalid,
        // Redis rounds a sub-millisecond timeout down to 0, which waits forever.
        Some(ms) if ms < 1.0 => Wait::Forever,
        Some(ms) => Wait::For(Duration::from_micros((ms * 1000.0) as u64)),
        None => Wait::Invalid,
    }
}

/// The request `args` again with its timeout (at `timeout.index`) set to `left`, at least
/// 1 ms so it never becomes "forever"; a request that waits forever keeps 0.
pub fn with_time_left<A: Args + ?Sized>(
    args: &A,
    timeout: Timeout,
    left: Option<Duration>,
) -> BytesMut {
    let text = match left {
        None => "0".to_string(),
        Some(left) => {
            let left = left.max(LEAST_LEFT);
            match timeout.unit {
                Unit::Seconds => format!("{:.3}", left.as_secs_f64()),
                Unit::Millis => left.as_millis().to_string(),
            }
        }
    };
    let args: Vec<&[u8]> = (0..args.count())
        .map(|i| match i == timeout.index {
            true => text.as_bytes(),
            false => args.get(i),
        })
        .collect();
    let mut out = BytesMut::new();
    encode::command(&mut out, args.iter().copied());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout_of(line: &str) -> Option<Timeout> {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let name = line.split(' ').next().unwrap_or_default().to_lowercase();
        timeout(&name, &args[..])
    }

    fn secs(s: f64) -> Wait {
        Wait::For(Duration::from_secs_f64(s))
    }

    #[test]
    fn timeouts_are_found_and_read_as_redis_reads_them() {
        use Unit::*;
        type Found = Option<(usize, Unit, Wait)>;
        let cases: &[(&str, Found)] = &[
            ("BLPOP a b 1.5", Some((3, Seconds, secs(1.5)))),
            ("BRPOP a 0", Some((2, Seconds, Wait::Forever))),
            ("BZPOPMIN a 2", Some((2, Seconds, secs(2.0)))),
            ("BRPOPLPUSH a b 0.25", Some((3, Seconds, secs(0.25)))),
            ("BLMOVE a b LEFT RIGHT 3", Some((5, Seconds, secs(3.0)))),
            ("BLMPOP 0.5 2 a b LEFT", Some((1, Seconds, secs(0.5)))),
            ("BZMPOP 7 1 a MIN COUNT 2", Some((1, Seconds, secs(7.0)))),
            ("BLPOP a -1", Some((2, Seconds, Wait::Invalid))),
            ("BLPOP a abc", Some((2, Seconds, Wait::Invalid))),
            ("BLPOP a 0.0001", Some((2, Seconds, Wait::Forever))),
            ("XREAD BLOCK 100 STREAMS s $", Some((2, Millis, secs(0.1)))),
            (
                "XREAD COUNT 2 block 0 STREAMS s $",
                Some((4, Millis, Wait::Forever)),
            ),
            ("XREAD STREAMS block 0", None),
            (
                "XREADGROUP GROUP g c BLOCK 5 NOACK STREAMS s >",
                Some((5, Millis, secs(0.005))),
            ),
            (
                "XREAD BLOCK 1.5 STREAMS s $",
                Some((2, Millis, Wait::Invalid)),
            ),
            ("GET a", None),
        ];
        for (line, expected) in cases {
            let found = timeout_of(line).map(|t| (t.index, t.unit, t.wait));
            assert_eq!(found, *expected, "{line}");
        }
    }

    #[test]
    fn a_request_sent_again_has_the_time_left() {
        let line = |args: &[&[u8]], left| {
            let t = timeout(std::str::from_utf8(args[0]).unwrap(), args).unwrap();
            String::from_utf8(with_time_left(args, t, left).to_vec()).unwrap()
        };
        let blpop: &[&[u8]] = &[b"blpop", b"k", b"5"];
        assert_eq!(
            line(blpop, Some(Duration::from_millis(1500))),
            "*3\r\n$5\r\nblpop\r\n$1\r\nk\r\n$5\r\n1.500\r\n"
        );
        assert_eq!(
            line(blpop, Some(Duration::ZERO)),
            "*3\r\n$5\r\nblpop\r\n$1\r\nk\r\n$5\r\n0.001\r\n",
            "never 0, which would wait forever"
        );
        assert_eq!(
            line(blpop, None),
            "*3\r\n$5\r\nblpop\r\n$1\r\nk\r\n$1\r\n0\r\n"
        );
        let xread: &[&[u8]] = &[b"xread", b"BLOCK", b"900", b"STREAMS", b"s", b"$"];
        assert!(line(xread, Some(Duration::from_millis(250))).contains("$3\r\n250\r\n"));
    }
}
