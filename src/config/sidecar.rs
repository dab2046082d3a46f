//! A pool's sidecar settings (percore next to an application, in front of a Redis further
//! away): whether it connects before it listens (`preconnect`), which databases a one-server
//! pool's clients may SELECT (`databases`), and background writes (`async_writes`, bounded by
//! `async_writes_max_bytes`, retried for `async_writes_retry_timeout`).

use std::time::Duration;

use super::error::Problem;
use super::read::{Fields, Reader};
use super::Config;

/// Redis's own default for `databases`: a one-server pool's clients may SELECT 0 to 15 unless
/// the file says the server has more (or fewer).
pub const DEFAULT_DATABASES: u32 = 16;
/// Most databases a pool may declare: a client's database travels with each of its requests
/// as a 16-bit index, and no deployment has more than a few dozen.
pub const MAX_DATABASES: u32 = 1 << 16;
/// Default bound on background write bytes per core (`async_writes_max_bytes`). What it
/// bounds is what a crash of percore itself loses after acknowledging it, and the memory the
/// acknowledged requests hold: 4 MiB is ~40,000 typical 100-byte SETs, which percore pipelines
/// to a server 1 ms away in a few round trips, so a writer that outpaces the server meets
/// back-pressure (synchronous writes) within milliseconds instead of building a backlog that
/// takes seconds to drain and that a crash would lose.
pub const DEFAULT_ASYNC_WRITES_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Default for how long background writes wait for their server to come back
/// (`async_writes_retry_timeout`): a server restarted after a crash (by its supervisor), or a
/// replica promoted, is usually back within a few seconds; 10 s covers that without holding
/// acknowledged writes (and back-pressuring their clients) for longer than an application would
/// wait for a reply.
pub const DEFAULT_ASYNC_WRITES_RETRY: Duration = Duration::from_secs(10);

/// A pool's sidecar settings: for percore next to an application, in front of a Redis further
/// away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sidecar {
    /// Listen only once the pool's shared server connections are up (`preconnect`), bounded
    /// like the wait for a first topology. They are opened at start, and kept, either way.
    pub preconnect: bool,
    /// The databases a client of a one-server pool may SELECT (0 to this less one): the
    /// server's `databases` (`databases`, Redis's default 16).
    pub databases: u32,
    /// Background writes (`async_writes: true`), if on.
    pub async_writes: Option<AsyncWrites>,
}

/// Background writes: writes whose reply is known before they run are answered at once and
/// sent behind the client's back, on the connection its later requests take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncWrites {
    /// Most bytes of background writes waiting on one core (`async_writes_max_bytes`); past
    /// it, writes are sent the usual way (the client waits for the server's reply).
    pub max_bytes: usize,
    /// How long background writes wait for their server when its connection fails
    /// (`async_writes_retry_timeout`): they are sent again, in order, once it is back; past
    /// this outage they are given up, counted and logged.
    pub retry_for: Duration,
}

impl Default for Sidecar {
    fn default() -> Self {
        Sidecar {
            preconnect: false,
            databases: DEFAULT_DATABASES,
            async_writes: None,
        }
    }
}

impl Config {
    /// The database every backend connection selects: a static pool's `redis_db`, else 0
    /// (a cluster has no other).
    pub fn database(&self) -> u32 {
        self.servers.as_ref().map_or(0, |servers| servers.db)
    }

    /// How many databases a client may SELECT, when it may select any: only in a pool of
    /// one standalone server, whose connections percore keeps per database. A pool of
    /// several servers, or a cluster, serves its one database.
    pub fn selectable_databases(&self) -> Option<u32> {
        let servers = self.servers.as_ref()?;
        (servers.addrs.len() == 1).then_some(self.sidecar.databases)
    }
}

/// The sidecar keys (`preconnect` is nutcracker's, read with its others).
pub(super) const SIDECAR_KEYS: &[&str] = &[
    "databases",
    "async_writes",
    "async_writes_max_bytes",
    "async_writes_retry_timeout",
];

/// The sidecar keys of one pool; `preconnect` is nutcracker's key, read with its others.
pub(super) fn read_sidecar(
    reader: &mut Reader,
    fields: &Fields,
    (preconnect, cluster): (bool, bool),
) -> Sidecar {
    if let (true, Some(entry)) = (cluster, fields.get("databases")) {
        reader.error(entry.line, Some("databases"), Problem::OnlyFor("servers:"));
    }
    let databases = fields
        .get("databases")
        .and_then(|entry| reader.number(entry, 1, u64::from(MAX_DATABASES)))
        .map_or(DEFAULT_DATABASES, |n| n as u32);
    let enabled = fields
        .get("async_writes")
        .and_then(|entry| reader.boolean(entry))
        .unwrap_or(false);
    let max_bytes = fields
        .get("async_writes_max_bytes")
        .and_then(|entry| reader.number(entry, 1, usize::MAX as u64))
        .map(|n| n as usize);
    let retry_for = fields
        .get("async_writes_retry_timeout")
        .and_then(|entry| reader.positive_duration(entry));
    for key in ["async_writes_max_bytes", "async_writes_retry_timeout"] {
        if let (false, Some(entry)) = (enabled, fields.get(key)) {
            reader.error(entry.line, Some(key), Problem::Needs("async_writes: true"));
        }
    }
    Sidecar {
        preconnect,
        databases,
        async_writes: enabled.then(|| AsyncWrites {
            max_bytes: max_bytes.unwrap_or(DEFAULT_ASYNC_WRITES_MAX_BYTES),
            retry_for: retry_for.unwrap_or(DEFAULT_ASYNC_WRITES_RETRY),
        }),
    }
}
