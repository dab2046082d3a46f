//! Per-core counters and the per-core latency histogram.
//!
//! Each core counts only its own work in plain `Cell`s and records request latency in its own
//! hdrhistogram, so recording costs a few instructions and nothing is shared. `PROXY INFO` and
//! `PROXY LATENCY` gather a [`CoreStats`] snapshot from every core over the cross-core channels
//! and merge them there; the stats port and `/metrics` gather the same snapshot, with each
//! pool's per-server figures ([`server`]), into a [`Snapshot`] ([`snapshot`]).

use std::cell::{Cell, RefCell};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::net::RingStats;

mod background;
mod replicas;
mod server;
mod snapshot;

pub use background::BackgroundStats;
pub use replicas::{ReadStats, ReplicaStats};
pub use server::{ConnectionEnd, Queues, ServerCounters, ServerStats};
pub use snapshot::{PoolSnapshot, Snapshot};

/// Highest latency the histogram tracks, in microseconds (one hour); longer values are
/// clamped, so a stuck request cannot make recording fail.
const MAX_TRACKED_MICROS: u64 = 3_600_000_000;
/// Significant digits kept: 3 gives 0.1% precision at about 40 KiB per core.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Counters of one core. Names match the keys shown by `PROXY INFO`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Client connections open now.
    pub clients: Cell<u64>,
    /// Client connections accepted since start.
    pub connections_total: Cell<u64>,
    /// Requests received from clients.
    pub requests: Cell<u64>,
    /// MOVED redirects followed.
    pub moved: Cell<u64>,
    /// ASK redirects followed.
    pub asked: Cell<u64>,
    /// Backend connection failures (connect errors, resets, timeouts).
    pub backend_failures: Cell<u64>,
    /// Failed AUTH (and HELLO ... AUTH) attempts.
    pub auth_failures: Cell<u64>,
    /// Clients subscribed to at least one channel or pattern now.
    pub subscribers: Cell<u64>,
    /// Pub/sub messages received from nodes on the core's subscription connections.
    pub pubsub_messages: Cell<u64>,
    /// Messages queued to subscribers (one message to ten subscribers counts ten).
    pub pubsub_deliveries: Cell<u64>,
    /// Subscribers cut off at the pub/sub output limit.
    pub pubsub_cut_off: Cell<u64>,
    /// Subscription connections lost and re-established (or subscriptions moved after their
    /// slot did): each is a gap in which messages published were not delivered.
    pub pubsub_gaps: Cell<u64>,
    /// Total length of those gaps, in milliseconds.
    pub pubsub_gap_ms: Cell<u64>,
    /// Dedicated backend connections leased to a client now (WATCH, blocking commands).
    pub leased_conns: Cell<u64>,
    /// Dedicated backend connections idle in the pool now, kept for the next lease.
    pub pooled_conns: Cell<u64>,
    /// Clients waiting for a blocking command of theirs now (BLPOP, XREAD BLOCK, ...); with
    /// `blocked`, what INFO's `blocked_clients` counts.
    pub blocking_clients: Cell<u64>,
    /// Clients watching keys now (between WATCH and EXEC/DISCARD/UNWATCH/RESET).
    pub watching_clients: Cell<u64>,
    /// Leases refused since start because `--max-leased-conns` were all in use.
    pub lease_refusals: Cell<u64>,
    /// Clients whose next request waits now (held by CLIENT PAUSE), as INFO's
    /// blocked_clients counts them.
    pub blocked: Cell<u64>,
    /// MONITOR lines not delivered because a monitor (or the way to its core) could not keep
    /// up; counted per monitor that missed them.
    pub monitor_dropped: Cell<u64>,
    /// Bytes read from clients.
    pub bytes_in: Cell<u64>,
    /// Bytes written to clients.
    pub bytes_out: Cell<u64>,
    /// Client connections the client closed (nutcracker's `client_eof`).
    pub client_eof: Cell<u64>,
    /// Client connections ended by an error: a failed read, a protocol error, a limit
    /// (nutcracker's `client_err`).
    pub client_err: Cell<u64>,
    /// Parts made by splitting multi-key requests across servers (`fragments`).
    pub fragments: Cell<u64>,
}

impl Counters {
    /// Adds one to a counter.
    pub fn bump(cell: &Cell<u64>) {
        cell.set(cell.get() + 1);
    }

    /// Adds `n` to a counter.
    #[inline]
    pub fn add(cell: &Cell<u64>, n: u64) {
        cell.set(cell.get().wrapping_add(n));
    }
}

/// Everything a core reports about itself; sent between cores, so it owns its data.
#[derive(Debug, Clone)]
pub struct CoreStats {
    /// The core's index.
    pub core: usize,
    /// Snapshot of its counters, in `PROXY INFO` order.
    pub clients: u64,
    /// Connections accepted since start.
    pub connections_total: u64,
    /// Requests received.
    pub requests: u64,
    /// MOVED redirects followed.
    pub moved: u64,
    /// ASK redirects followed.
    pub asked: u64,
    /// Backend connection failures.
    pub backend_failures: u64,
    /// Failed authentication attempts.
    pub auth_failures: u64,
    /// Pub/sub figures.
    pub pubsub: PubsubStats,
    /// Dedicated connections leased now.
    pub leased_conns: u64,
    /// Dedicated connections idle in the pool now.
    pub pooled_conns: u64,
    /// Clients waiting for a blocking command now.
    pub blocking_clients: u64,
    /// Clients watching keys now.
    pub watching_clients: u64,
    /// Leases refused since start.
    pub lease_refusals: u64,
    /// Clients blocked now.
    pub blocked: u64,
    /// MONITOR lines dropped.
    pub monitor_dropped: u64,
    /// MONITOR clients the core feeds, on every core (filled in by the shard).
    pub monitors: usize,
    /// Topology epoch the core routes with.
    pub epoch: u64,
    /// Configuration epoch the core serves (filled in by the shard).
    pub config_epoch: u64,
    /// Latency of requests in the proxy, microseconds.
    pub latency: Histogram<u64>,
    /// The core's socket ring.
    pub ring: RingStats,
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Client connections the client closed.
    pub client_eof: u64,
    /// Client connections ended by an error.
    pub client_err: u64,
    /// Parts made by splits.
    pub fragments: u64,
    /// Every server the core has counted for (filled in by the shard).
    pub servers: Vec<ServerStats>,
    /// The core accepts clients of the pool now (filled in by the shard).
    pub serving: bool,
    /// Background writes (filled in by the shard).
    pub background: BackgroundStats,
    /// The read policy and the replicas as the core reads from them (filled in by the shard).
    pub reads: ReadStats,
}

/// One core's pub/sub figures for `PROXY INFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PubsubStats {
    /// Clients subscribed to something.
    pub subscribers: u64,
    /// Classic channels the core's clients are subscribed to.
    pub channels: u64,
    /// Patterns the core's clients are subscribed to.
    pub patterns: u64,
    /// Sharded channels the core's clients are subscribed to.
    pub shard_channels: u64,
    /// Subscription connections open to nodes.
    pub links: u64,
    /// Messages received from nodes.
    pub messages: u64,
    /// Messages queued to subscribers.
    pub deliveries: u64,
    /// Subscribers cut off at the output limit.
    pub cut_off: u64,
    /// Gaps in delivery (a subscription connection lost, a slot moved).
    pub gaps: u64,
    /// Their total length, milliseconds.
    pub gap_ms: u64,
}

impl CoreStats {
    /// Clients blocked as INFO's `blocked_clients` counts them: held by CLIENT PAUSE, or
    /// waiting for a blocking command.
    pub fn blocked_clients(&self) -> u64 {
        self.blocked + self.blocking_clients
    }
}

/// The metrics of one core.
#[derive(Debug)]
pub struct Metrics {
    /// Event counters.
    pub counters: Counters,
    latency: RefCell<Histogram<u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            counters: Counters::default(),
            latency: RefCell::new(new_histogram()),
        }
    }
}

impl Metrics {
    /// Records one request's time in the proxy.
    pub fn record_latency(&self, elapsed: Duration) {
        let micros = (elapsed.as_micros() as u64).clamp(1, MAX_TRACKED_MICROS);
        // Cannot fail: the value is clamped into the histogram's range.
        let _ = self.latency.borrow_mut().record(micros);
    }

    /// Clears the latency histogram (`PROXY LATENCY RESET`).
    pub fn reset_latency(&self) {
        self.latency.borrow_mut().reset();
    }

    /// Clears the event counters and the latency histogram (CONFIG RESETSTAT), keeping the
    /// counts of open connections, subscribers, leases and blocked clients, which are states,
    /// not event counts.
    pub fn reset(&self) {
        let c = &self.counters;
        for counter in [
            &c.connections_total,
            &c.requests,
            &c.moved,
            &c.asked,
            &c.backend_failures,
            &c.auth_failures,
            &c.pubsub_messages,
            &c.pubsub_deliveries,
            &c.pubsub_cut_off,
            &c.pubsub_gaps,
            &c.pubsub_gap_ms,
            &c.lease_refusals,
            &c.monitor_dropped,
            &c.bytes_in,
            &c.bytes_out,
            &c.client_eof,
            &c.client_err,
            &c.fragments,
        ] {
            counter.set(0);
        }
        self.reset_latency();
    }

    /// A snapshot for reporting.
    pub fn snapshot(&self, core: usize, epoch: u64, ring: RingStats) -> CoreStats {
        let c = &self.counters;
        CoreStats {
            core,
            clients: c.clients.get(),
            connections_total: c.connections_total.get(),
            requests: c.requests.get(),
            moved: c.moved.get(),
            asked: c.asked.get(),
            backend_failures: c.backend_failures.get(),
            auth_failures: c.auth_failures.get(),
            pubsub: PubsubStats {
                subscribers: c.subscribers.get(),
                messages: c.pubsub_messages.get(),
                deliveries: c.pubsub_deliveries.get(),
                cut_off: c.pubsub_cut_off.get(),
                gaps: c.pubsub_gaps.get(),
                gap_ms: c.pubsub_gap_ms.get(),
                ..PubsubStats::default()
            },
            leased_conns: c.leased_conns.get(),
            pooled_conns: c.pooled_conns.get(),
            blocking_clients: c.blocking_clients.get(),
            watching_clients: c.watching_clients.get(),
            lease_refusals: c.lease_refusals.get(),
            blocked: c.blocked.get(),
            monitor_dropped: c.monitor_dropped.get(),
            monitors: 0,
            epoch,
            config_epoch: 0,
            latency: self.latency.borrow().clone(),
            ring,
            bytes_in: c.bytes_in.get(),
            bytes_out: c.bytes_out.get(),
            client_eof: c.client_eof.get(),
            client_err: c.client_err.get(),
            fragments: c.fragments.get(),
            servers: Vec::new(),
            serving: false,
            background: BackgroundStats::default(),
            reads: ReadStats::default(),
        }
    }
}

/// An empty latency histogram with the proxy's bounds.
pub fn new_histogram() -> Histogram<u64> {
    // Cannot fail: the bounds are constants within hdrhistogram's limits.
    Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_resets() {
        let metrics = Metrics::default();
        metrics.record_latency(Duration::from_micros(50));
        metrics.record_latency(Duration::from_secs(10_000));
        let stats = metrics.snapshot(0, 1, RingStats::default());
        assert_eq!(stats.latency.len(), 2);
        assert!(stats.latency.max() >= MAX_TRACKED_MICROS - MAX_TRACKED_MICROS / 500);
        metrics.counters.requests.set(7);
        metrics.counters.clients.set(2);
        metrics.reset();
        assert_eq!(metrics.counters.requests.get(), 0);
        assert_eq!(
            metrics.counters.clients.get(),
            2,
            "open connections are kept"
        );
        assert_eq!(
            metrics.snapshot(0, 1, RingStats::default()).latency.len(),
            0
        );
    }
}
