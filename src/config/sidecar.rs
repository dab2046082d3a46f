//! A pool's sidecar settings (percore next to an application, in front of a Redis further
//! away): whether it connects before it listens (`preconnect`), which databases a one-server
//! pool's clients may SELECT (`databases`), and background writes (`async_writes`, bounded by
//! `async_writes_max_bytes`).

use super::error::Problem;
use super::read::{Fields, Reader};
use super::{AsyncWrites, Sidecar};

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

impl Default for Sidecar {
    fn default() -> Self {
        Sidecar {
            preconnect: false,
            databases: DEFAULT_DATABASES,
            async_writes: None,
        }
    }
}

/// The sidecar keys of one pool; `preconnect` is nutcracker's key, read with its others.
pub(super) fn read_sidecar(reader: &mut Reader, fields: &Fields, preconnect: bool) -> Sidecar {
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
    if let (false, Some(entry)) = (enabled, fields.get("async_writes_max_bytes")) {
        let problem = Problem::Needs("async_writes: true");
        reader.error(entry.line, Some("async_writes_max_bytes"), problem);
    }
    Sidecar {
        preconnect,
        databases,
        async_writes: enabled.then(|| AsyncWrites {
            max_bytes: max_bytes.unwrap_or(DEFAULT_ASYNC_WRITES_MAX_BYTES),
        }),
    }
}
