//! The shard's side of the slow log: recording a slow request with who sent it and which node
//! answered (the client writer calls [`record`] when [`crate::slowlog::SlowLog::is_slow`]
//! says so), and `SLOWLOG GET | LEN | RESET | HELP` and `PROXY SLOWLOG`, which gather every
//! core's log.

use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::command::keys::{Args, FrameArgs};
use crate::control::mesh::{Answer, Question};
use crate::resp::encode;
use crate::slowlog::{self, Fields, Origin, DEFAULT_GET_COUNT};

use super::client::ClientState;
use super::dispatch::error_reply;
use super::reply_to::ReplyTo;
use super::Shard;

/// Redis's error for a bad `SLOWLOG GET` count.
const BAD_COUNT: &str = "ERR count should be greater than or equal to -1";

/// `SLOWLOG HELP`: Redis's text, and where percore's backend node of each entry is.
const HELP: [&str; 13] = [
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name. (percore) PROXY SLOWLOG [<count>] adds the backend node that",
    "    served the request, empty when percore answered it itself.",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

/// Logs a request that took `elapsed` from its arrival to its reply's write; `node` gave the
/// reply (`None`: the proxy did).
pub fn record(
    shard: &Shard,
    client: &ClientState,
    request: &[u8],
    elapsed: Duration,
    node: Option<Rc<str>>,
) {
    let identity = &client.identity;
    let origin = Origin {
        client: identity.peer.clone(),
        name: identity.name(),
        node,
    };
    shard.slowlog().record(request, elapsed, origin);
}

/// `SLOWLOG <subcommand>`; the table has checked the subcommand and its arity.
pub fn command(shard: &Rc<Shard>, args: &FrameArgs, reply_to: ReplyTo) {
    let sub = args.get(1);
    let question = if sub.eq_ignore_ascii_case(b"get") && args.count() <= 3 {
        let count = match args.count() {
            3 => count(args.get(2)),
            _ => Some(DEFAULT_GET_COUNT),
        };
        match count {
            Some(count) => Question::Slowlog { count },
            None => return reply_to.deliver(error_reply(BAD_COUNT)),
        }
    } else if sub.eq_ignore_ascii_case(b"len") {
        Question::SlowlogLen
    } else if sub.eq_ignore_ascii_case(b"reset") {
        Question::SlowlogReset
    } else if sub.eq_ignore_ascii_case(b"help") {
        return reply_to.deliver(help());
    } else {
        return reply_to.deliver(error_reply(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(sub)
        )));
    };
    ask_every_core(shard, question, Fields::Redis, reply_to);
}

/// `PROXY SLOWLOG [count]`: `SLOWLOG GET` with the backend node of each entry.
pub fn with_nodes(shard: &Rc<Shard>, count_arg: Option<&[u8]>, reply_to: ReplyTo) {
    match count_arg.map_or(Some(DEFAULT_GET_COUNT), count) {
        Some(count) => ask_every_core(
            shard,
            Question::Slowlog { count },
            Fields::WithNode,
            reply_to,
        ),
        None => reply_to.deliver(error_reply(BAD_COUNT)),
    }
}

/// Gathers `question` from every core and delivers the merged reply.
fn ask_every_core(shard: &Rc<Shard>, question: Question, fields: Fields, reply_to: ReplyTo) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let answers = shard.gather(question.clone()).await;
        let max_len = shard.slowlog().max_len();
        reply_to.deliver(merged_reply(&question, answers, max_len, fields));
    })
    .detach();
}

/// The reply to a SLOWLOG gather: the merged entries, the summed length, or OK. The cores'
/// logs together are one log of at most `max_len` entries, the newest, as a node keeps.
fn merged_reply(
    question: &Question,
    answers: Vec<Answer>,
    max_len: usize,
    fields: Fields,
) -> Bytes {
    let mut out = BytesMut::new();
    match *question {
        Question::Slowlog { count } => {
            let per_core = answers.into_iter().filter_map(|answer| match answer {
                Answer::Slowlog(entries) => Some(entries),
                _ => None,
            });
            let count = count.min(max_len);
            let merged = slowlog::merge(per_core.collect(), count);
            slowlog::encode_entries(&mut out, &merged, fields);
        }
        Question::SlowlogLen => {
            let len = answers
                .into_iter()
                .map(|answer| match answer {
                    Answer::Count(n) => n,
                    _ => 0,
                })
                .sum::<u64>()
                .min(max_len as u64);
            encode::integer(&mut out, len as i64);
        }
        _ => return Bytes::from_static(encode::OK),
    }
    out.freeze()
}

/// A `SLOWLOG GET` count as Redis reads it: an integer, -1 for all; `None` if it is not one.
fn count(arg: &[u8]) -> Option<usize> {
    // Redis's string2ll: no sign but '-', no leading zeros, no spaces.
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    if !digits.first().is_some_and(u8::is_ascii_digit) || (digits[0] == b'0' && arg.len() > 1) {
        return None;
    }
    let value: i64 = std::str::from_utf8(arg).ok()?.parse().ok()?;
    match value {
        -1 => Some(usize::MAX),
        0.. => Some(value as usize),
        _ => None,
    }
}

/// Redis's help reply: an array of simple strings.
fn help() -> Bytes {
    let mut out = BytesMut::new();
    encode::header(&mut out, b'*', HELP.len());
    for line in HELP {
        out.extend_from_slice(b"+");
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_as_redis_reads_them() {
        let cases: [(&[u8], Option<usize>); 9] = [
            (b"0", Some(0)),
            (b"5", Some(5)),
            (b"-1", Some(usize::MAX)),
            (b"-2", None),
            (b"x", None),
            (b"+5", None),
            (b"05", None),
            (b"-0", None),
            (b"", None),
        ];
        for (arg, expected) in cases {
            assert_eq!(count(arg), expected, "{:?}", String::from_utf8_lossy(arg));
        }
    }
}
