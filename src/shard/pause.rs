//! CLIENT PAUSE held in the proxy: while a pause lasts, requests it covers (every request for
//! `ALL`, those that may write for `WRITE`) wait in their client's reader, in order, and go on
//! when it ends or `CLIENT UNPAUSE` comes. Useful around a failover: clients hold, nothing
//! fails. Every core holds the same pause (sent as a notice); a core that is not paused pays
//! one flag read per request.

use std::time::{Duration, Instant};

use crate::command::keys::Args;
use crate::command::table::{lookup, CommandFlags};

/// How often a held request looks whether the pause is over. Pauses last seconds; an
/// UNPAUSE is seen within this.
pub const POLL: Duration = Duration::from_millis(10);

/// A pause in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pause {
    /// When it ends by itself.
    pub until: Instant,
    /// `ALL` (every request) rather than `WRITE`.
    pub all: bool,
}

impl Pause {
    /// Whether this pause, at `now`, holds the request `args` of a client whose transaction,
    /// if it is in one, `writes` (or not). CLIENT commands are never held (unlike in Redis,
    /// where an ALL pause also holds the UNPAUSE meant to end it). Inside a transaction, as in
    /// Redis, a WRITE pause holds only EXEC, and only of a transaction that writes.
    pub fn holds<A: Args + ?Sized>(&self, now: Instant, args: &A, writes: Option<bool>) -> bool {
        if now >= self.until || args.get(0).eq_ignore_ascii_case(b"client") {
            return false;
        }
        match writes {
            _ if self.all => true,
            Some(writes) => writes && args.get(0).eq_ignore_ascii_case(b"exec"),
            None => may_write(args),
        }
    }

    /// The pause in force after `self` and a new `CLIENT PAUSE` `other`: as in Redis, the
    /// later end and the stricter mode win.
    pub fn merge(self, other: Pause) -> Pause {
        Pause {
            until: self.until.max(other.until),
            all: self.all || other.all,
        }
    }
}

/// Whether a request may write: its command is flagged `write`, or it is one Redis marks as
/// may-replicate (scripts and functions, publishing, PFCOUNT, which may rewrite its key),
/// which Redis's WRITE pause holds too. An EVAL whose script declares `flags=no-writes` in
/// its shebang does not write; an EVALSHA or FCALL cannot be told apart from its script's
/// flags, which percore does not see, and is held.
pub fn may_write<A: Args + ?Sized>(args: &A) -> bool {
    let name = args.get(0);
    let Some(spec) = lookup(name) else {
        return false;
    };
    match spec.name {
        "eval" => !declares_no_writes(args.get(1)),
        "evalsha" | "fcall" | "publish" | "spublish" | "pfcount" => true,
        _ => spec.flags.contains(CommandFlags::WRITE),
    }
}

/// Whether a script's shebang line (`#!lua flags=no-writes,...`) declares it writes nothing.
fn declares_no_writes(script: &[u8]) -> bool {
    let Some(shebang) = script.strip_prefix(b"#!") else {
        return false;
    };
    let line = shebang.split(|&b| b == b'\n').next().unwrap_or_default();
    line.split(|&b| b == b' ')
        .filter_map(|word| word.strip_prefix(b"flags="))
        .any(|flags| flags.split(|&b| b == b',').any(|flag| flag == b"no-writes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<&[u8]> {
        line.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn write_pause_holds_writes_only() {
        let now = Instant::now();
        let pause = Pause {
            until: now + Duration::from_secs(1),
            all: false,
        };
        let holds = |pause: &Pause, line: &str| pause.holds(now, &args(line)[..], None);
        for line in [
            "SET k v",
            "DEL k",
            "EVAL s 0",
            "PUBLISH c m",
            "INCR k",
            "PFCOUNT h",
        ] {
            assert!(holds(&pause, line), "{line}");
        }
        for line in ["GET k", "PING", "EVAL_RO s 0", "NOSUCH x"] {
            assert!(!holds(&pause, line), "{line}");
        }
        let read_only: Vec<&[u8]> = vec![b"EVAL", b"#!lua flags=no-writes\nreturn 1", b"0"];
        assert!(!pause.holds(now, &read_only[..], None));
        let writing: Vec<&[u8]> = vec![b"EVAL", b"#!lua\nreturn 1", b"0"];
        assert!(pause.holds(now, &writing[..], None));
        assert!(!pause.holds(now + Duration::from_secs(2), &args("SET k v")[..], None));
        // In a transaction: only the EXEC of one that writes.
        assert!(!pause.holds(now, &args("SET k v")[..], Some(true)));
        assert!(pause.holds(now, &args("EXEC")[..], Some(true)));
        assert!(!pause.holds(now, &args("EXEC")[..], Some(false)));
        let all = Pause { all: true, ..pause };
        assert!(holds(&all, "GET k"));
        assert!(!holds(&all, "CLIENT UNPAUSE"));
        assert_eq!(pause.merge(all), all);
    }
}
