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
    /// Whether this pause, at `now`, holds the request `args`. CLIENT commands are never
    /// held (unlike in Redis, where an ALL pause also holds the UNPAUSE meant to end it).
    pub fn holds<A: Args + ?Sized>(&self, now: Instant, args: &A) -> bool {
        now < self.until
            && !args.get(0).eq_ignore_ascii_case(b"client")
            && (self.all || may_write(args))
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

/// Whether a request may write: its command is flagged `write`, or it is one that may write
/// through the back door (scripts and functions, publishing), which Redis's WRITE pause holds
/// too.
fn may_write<A: Args + ?Sized>(args: &A) -> bool {
    let name = args.get(0);
    let Some(spec) = lookup(name) else {
        return false;
    };
    spec.flags.contains(CommandFlags::WRITE)
        || matches!(
            spec.name,
            "eval" | "evalsha" | "fcall" | "publish" | "spublish"
        )
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
        for line in ["SET k v", "DEL k", "EVAL s 0", "PUBLISH c m", "INCR k"] {
            assert!(pause.holds(now, &args(line)[..]), "{line}");
        }
        for line in ["GET k", "PING", "EVAL_RO s 0", "NOSUCH x"] {
            assert!(!pause.holds(now, &args(line)[..]), "{line}");
        }
        assert!(!pause.holds(now + Duration::from_secs(2), &args("SET k v")[..]));
        let all = Pause { all: true, ..pause };
        assert!(all.holds(now, &args("GET k")[..]));
        assert!(!all.holds(now, &args("CLIENT UNPAUSE")[..]));
        assert_eq!(pause.merge(all), all);
    }
}
