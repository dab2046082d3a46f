//! One core's figures of background writes (`async_writes: true`): what waits, what the
//! server took, what it refused or could not be given, and what was sent the usual way
//! because the bound was reached.

/// A core's background writes, for `PROXY INFO` and `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackgroundStats {
    /// Writes answered `+OK` and not yet answered by the server.
    pub pending: u64,
    /// Their bytes (what `async_writes_max_bytes` bounds).
    pub pending_bytes: u64,
    /// Writes the server answered with its `+OK`.
    pub sent: u64,
    /// Writes the server refused, or that could not be delivered before the retries ran out:
    /// acknowledged to the client, and not applied.
    pub failed: u64,
    /// Writes still waiting when a stop had to end the process (or a pool change its pool):
    /// acknowledged, and maybe not applied.
    pub unflushed: u64,
    /// Writes sent the usual way, the client waiting for the server's reply, because the
    /// core's background bytes were at the bound (back-pressure).
    pub synchronous: u64,
}

impl BackgroundStats {
    /// Adds `other`'s figures to these.
    pub fn add(&mut self, other: &BackgroundStats) {
        self.pending += other.pending;
        self.pending_bytes += other.pending_bytes;
        self.sent += other.sent;
        self.failed += other.failed;
        self.unflushed += other.unflushed;
        self.synchronous += other.synchronous;
    }
}
