//! One core's view of replica reads, for `PROXY INFO` and `/metrics`: the pool's read policy
//! and each replica of the topology, whether the core reads from it now and why not.
//!
//! The reads themselves are counted per server ([`super::ServerCounters::read`]); this is the
//! state beside them, copied out of the shard when stats are gathered.

/// The read policy of a pool and its replicas, as one core sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadStats {
    /// `--read-from`: `master`, `prefer-replica`, `replica` or `any`.
    pub policy: &'static str,
    /// `--max-replica-lag` in milliseconds; `None`: no bound.
    pub max_lag_ms: Option<u64>,
    /// Every replica of the topology, in slot order of their masters.
    pub replicas: Vec<ReplicaStats>,
}

impl Default for ReadStats {
    fn default() -> Self {
        ReadStats {
            policy: "master",
            max_lag_ms: None,
            replicas: Vec::new(),
        }
    }
}

/// One replica as one core sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStats {
    /// The replica's `host:port`.
    pub addr: String,
    /// Its master's `host:port`.
    pub master: String,
    /// The core sends reads to it now: its lag is within the bound and its connections
    /// are up (or not opened yet).
    pub in_rotation: bool,
    /// What the last lag check found: `ok`, `lagging`, `not-replicating` (its master does not
    /// list it as an online replica), `unchecked` (no check yet), `master-unreachable` (the
    /// last verdict kept), or `unbounded` (no `--max-replica-lag`).
    pub lag_state: &'static str,
    /// Its lag at the last check, when known, in milliseconds.
    pub lag_ms: Option<u64>,
    /// The core's connections to it: `up`, `down` (failed, retried with backoff) or
    /// `unused` (none opened: no read has needed it yet).
    pub link: &'static str,
}
