//! `/metrics`: a [`Snapshot`] in the Prometheus text format (0.0.4), per pool and per core,
//! with each core's latency histogram as a Prometheus histogram, and the configuration's
//! epoch and refused reloads.
//!
//! The exposition format is written by the `prometheus-client` crate (the Prometheus
//! project's own Rust client): its encoder gets names, `_total` suffixes, label escaping and
//! histogram lines right, which a hand-written one would have to relearn. Its metric types hold
//! live atomics, which percore does not use (each core counts in its own cells); a scrape
//! hands the gathered snapshot to it as a collector instead, so the values are the gather's.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::metrics::{CoreStats, PoolSnapshot, ReplicaStats, ServerStats, Snapshot};

/// The `Content-Type` of a `/metrics` reply.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds of the latency histogram's buckets, in microseconds: 50 µs (a fast request
/// through the proxy) to 10 s (far past any backend timeout), about three per decade, as
/// Prometheus's own defaults space them.
const LATENCY_BUCKETS_MICROS: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Microseconds in a second (Prometheus measures time in seconds).
const MICROS_PER_SECOND: f64 = 1_000_000.0;

/// A sample's labels.
type Labels = Vec<(&'static str, String)>;

/// A figure of one core's stats.
type Figure = fn(&CoreStats) -> u64;

/// Per-core counters: name (without `_total`), help, figure.
const CORE_COUNTERS: &[(&str, &str, Figure)] = &[
    (
        "percore_client_connections_accepted",
        "Client connections accepted.",
        |c| c.connections_total,
    ),
    ("percore_requests", "Requests received from clients.", |c| {
        c.requests
    }),
    (
        "percore_client_received_bytes",
        "Bytes read from clients.",
        |c| c.bytes_in,
    ),
    (
        "percore_client_sent_bytes",
        "Bytes written to clients.",
        |c| c.bytes_out,
    ),
    (
        "percore_backend_failures",
        "Backend connection failures: connect errors, resets, timeouts, refused handshakes.",
        |c| c.backend_failures,
    ),
    (
        "percore_backend_reconnects",
        "Backend connections made again after a failure.",
        |c| c.servers.iter().map(|s| s.reconnects).sum(),
    ),
    (
        "percore_fragments",
        "Parts made by splitting multi-key requests across servers.",
        |c| c.fragments,
    ),
    (
        "percore_background_writes_sent",
        "Background writes (async_writes) the server answered with OK.",
        |c| c.background.sent,
    ),
    (
        "percore_background_writes_failed",
        "Background writes the server refused or that could not be delivered: their clients had OK.",
        |c| c.background.failed,
    ),
    (
        "percore_background_writes_unflushed",
        "Background writes still waiting when a stop ended the process.",
        |c| c.background.unflushed,
    ),
    (
        "percore_background_writes_synchronous",
        "Writes sent the usual way, the client waiting, because the background bytes were at the bound.",
        |c| c.background.synchronous,
    ),
];

/// Per-core gauges: name, help, figure.
const CORE_GAUGES: &[(&str, &str, Figure)] = &[
    (
        "percore_client_connections",
        "Client connections open.",
        |c| c.clients,
    ),
    (
        "percore_backend_connections",
        "Backend connections open (shared and dedicated).",
        |c| c.servers.iter().map(|s| s.connections).sum(),
    ),
    (
        "percore_leased_connections",
        "Dedicated backend connections leased to a client (WATCH, blocking commands).",
        |c| c.leased_conns,
    ),
    (
        "percore_pooled_connections",
        "Dedicated backend connections idle, kept for the next lease.",
        |c| c.pooled_conns,
    ),
    (
        "percore_background_writes_pending",
        "Background writes answered OK to their client and not yet by the server.",
        |c| c.background.pending,
    ),
    (
        "percore_background_writes_pending_bytes",
        "Bytes of those writes (what async_writes_max_bytes bounds).",
        |c| c.background.pending_bytes,
    ),
];

/// `percore_errors_total` by `kind`: kind, figure.
const ERROR_KINDS: &[(&str, Figure)] = &[
    ("auth", |c| c.auth_failures),
    ("client", |c| c.client_err),
    ("forward", |c| c.servers.iter().map(|s| s.failed).sum()),
    ("lease_refused", |c| c.lease_refusals),
    ("monitor_dropped", |c| c.monitor_dropped),
    ("pubsub_cut_off", |c| c.pubsub.cut_off),
];

/// A figure of one server on one core.
type ServerFigure = fn(&ServerStats) -> u64;

/// Per-server counters: name (without `_total`), help, figure.
const SERVER_COUNTERS: &[(&str, &str, ServerFigure)] = &[
    (
        "percore_server_requests",
        "Requests queued to the server.",
        |s| s.requests,
    ),
    (
        "percore_server_request_bytes",
        "Bytes of the requests queued to the server.",
        |s| s.request_bytes,
    ),
    (
        "percore_server_responses",
        "Replies read from the server.",
        |s| s.responses,
    ),
    (
        "percore_server_response_bytes",
        "Bytes of the replies read from the server.",
        |s| s.response_bytes,
    ),
    (
        "percore_server_failed_requests",
        "Requests answered with an error because the server was down or its connection failed.",
        |s| s.failed,
    ),
    (
        "percore_server_reads",
        "Read-only requests a read policy (--read-from, READONLY clients) sent to the server: \
         replica reads, and reads that fell back to the master.",
        |s| s.reads,
    ),
];

/// The `/metrics` text for `snapshot`.
pub fn render(snapshot: Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(snapshot)));
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_text::encode(&mut text, &registry);
    text
}

/// One scrape's snapshot, as the registry's only collector.
#[derive(Debug)]
struct Scrape(Snapshot);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let snapshot = &self.0;
        let pools = &snapshot.pools;
        let uptime = vec![(Labels::new(), snapshot.uptime.as_secs())];
        let help = "Seconds since percore started serving.";
        family(
            &mut encoder,
            "percore_uptime_seconds",
            help,
            MetricType::Gauge,
            uptime,
        )?;
        let epoch = vec![(Labels::new(), snapshot.config_epoch)];
        let help = "The configuration served: 1 at start, one more for each reload applied.";
        family(
            &mut encoder,
            "percore_config_epoch",
            help,
            MetricType::Gauge,
            epoch,
        )?;
        let refused = vec![(Labels::new(), snapshot.config_reload_failures)];
        let help = "Reloads refused: the file was invalid, or changed what only a restart does.";
        family(
            &mut encoder,
            "percore_config_reload_failures",
            help,
            MetricType::Counter,
            refused,
        )?;
        let serving = pools
            .iter()
            .map(|p| (vec![("pool", p.name.clone())], u64::from(p.serving())))
            .collect();
        let help = "1 if every core of the pool answered and accepts its clients, else 0.";
        family(
            &mut encoder,
            "percore_pool_serving",
            help,
            MetricType::Gauge,
            serving,
        )?;
        for (name, help, figure) in CORE_COUNTERS {
            let samples = per_core(pools, |_, core| vec![(Labels::new(), figure(core))]);
            family(&mut encoder, name, help, MetricType::Counter, samples)?;
        }
        for (name, help, figure) in CORE_GAUGES {
            let samples = per_core(pools, |_, core| vec![(Labels::new(), figure(core))]);
            family(&mut encoder, name, help, MetricType::Gauge, samples)?;
        }
        let errors = per_core(pools, |_, core| {
            let kinds = ERROR_KINDS.iter();
            kinds
                .map(|(kind, f)| (vec![("kind", kind.to_string())], f(core)))
                .collect()
        });
        let help = "Errors by kind: failed authentications, client connection errors, requests \
                    failed by their server, refused leases, dropped MONITOR lines, subscribers \
                    cut off.";
        family(
            &mut encoder,
            "percore_errors",
            help,
            MetricType::Counter,
            errors,
        )?;
        let redirects = per_core(pools, |_, core| {
            vec![
                (vec![("kind", "moved".to_string())], core.moved),
                (vec![("kind", "ask".to_string())], core.asked),
            ]
        });
        let help = "MOVED and ASK redirects followed.";
        family(
            &mut encoder,
            "percore_redirects",
            help,
            MetricType::Counter,
            redirects,
        )?;
        server_families(&mut encoder, pools)?;
        replica_families(&mut encoder, pools)?;
        latency(&mut encoder, pools)
    }
}

/// The per-server families: every server each core counted for.
fn server_families(encoder: &mut DescriptorEncoder, pools: &[PoolSnapshot]) -> fmt::Result {
    let servers = |figure: &dyn Fn(&ServerStats) -> Vec<(Labels, u64)>| {
        per_core(pools, |_, core| {
            let each = core.servers.iter().flat_map(|server| {
                figure(server).into_iter().map(|(mut labels, value)| {
                    labels.insert(0, ("server", server.addr.clone()));
                    (labels, value)
                })
            });
            each.collect()
        })
    };
    for (name, help, figure) in SERVER_COUNTERS {
        let samples = servers(&|s| vec![(Labels::new(), figure(s))]);
        family(encoder, name, help, MetricType::Counter, samples)?;
    }
    let open = servers(&|s| vec![(Labels::new(), s.connections)]);
    let help = "Connections open to the server.";
    family(
        encoder,
        "percore_server_connections",
        help,
        MetricType::Gauge,
        open,
    )?;
    let ends = servers(&|s| {
        let reason = |r: &str| vec![("reason", r.to_string())];
        vec![
            (reason("eof"), s.eof),
            (reason("timeout"), s.timed_out),
            (reason("error"), s.errors),
        ]
    });
    let help = "Connections to the server that ended: closed by it, timed out, or failed.";
    family(
        encoder,
        "percore_server_connection_ends",
        help,
        MetricType::Counter,
        ends,
    )
}

/// The replicas of a cluster pool as each core reads from them: in rotation or not, and
/// their lag at the last check.
fn replica_families(encoder: &mut DescriptorEncoder, pools: &[PoolSnapshot]) -> fmt::Result {
    let replicas = |figure: &dyn Fn(&ReplicaStats) -> Option<u64>| {
        per_core(pools, |_, core| {
            let each = core.reads.replicas.iter().filter_map(|replica| {
                let labels = vec![
                    ("replica", replica.addr.clone()),
                    ("master", replica.master.clone()),
                ];
                figure(replica).map(|value| (labels, value))
            });
            each.collect()
        })
    };
    let help = "1 if the core sends reads to the replica now (its lag within \
                --max-replica-lag and its connections up), else 0.";
    let rotation = replicas(&|r| Some(u64::from(r.in_rotation)));
    let name = "percore_replica_in_rotation";
    family(encoder, name, help, MetricType::Gauge, rotation)?;
    let help = "How far behind its master the replica was at the last lag check: the time \
                since the master had no more than the replica has.";
    let lag = replicas(&|r| r.lag_ms);
    let name = "percore_replica_lag_milliseconds";
    family(encoder, name, help, MetricType::Gauge, lag)
}

/// `percore_request_duration_seconds`: each core's latency histogram (time from reading a
/// request to writing its reply) in [`LATENCY_BUCKETS_MICROS`].
fn latency(encoder: &mut DescriptorEncoder, pools: &[PoolSnapshot]) -> fmt::Result {
    let name = "percore_request_duration_seconds";
    let help = "Time requests spend in percore, from read to reply written (per core; the sum \
                is computed from the histogram, precise to 0.1%).";
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for pool in pools {
        for core in &pool.cores {
            let labels = core_labels(pool, core);
            let histogram = &core.latency;
            let mut below = 0;
            let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS_MICROS
                .iter()
                .map(|&bound| {
                    let upto = histogram.count_between(0, bound);
                    let bucket = upto.saturating_sub(below);
                    below = upto;
                    (bound as f64 / MICROS_PER_SECOND, bucket)
                })
                .collect();
            let count = histogram.len();
            let sum = histogram.mean() * count as f64 / MICROS_PER_SECOND;
            metric
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
    }
    Ok(())
}

/// `samples` of every core of every pool, each with the pool and core labels first.
fn per_core(
    pools: &[PoolSnapshot],
    samples: impl Fn(&PoolSnapshot, &CoreStats) -> Vec<(Labels, u64)>,
) -> Vec<(Labels, u64)> {
    let mut all = Vec::new();
    for pool in pools {
        for core in &pool.cores {
            for (labels, value) in samples(pool, core) {
                let mut full = core_labels(pool, core);
                full.extend(labels);
                all.push((full, value));
            }
        }
    }
    all
}

/// The labels naming one core of one pool.
fn core_labels(pool: &PoolSnapshot, core: &CoreStats) -> Labels {
    vec![("pool", pool.name.clone()), ("core", core.core.to_string())]
}

/// One metric family of counters or gauges.
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: Vec<(Labels, u64)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in &samples {
        let mut sample = metric.encode_family(labels)?;
        match kind {
            MetricType::Counter => sample.encode_counter::<NoLabelSet, _, u64>(value, None)?,
            _ => sample.encode_gauge(value)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Metrics, Queues, ServerCounters};
    use crate::net::RingStats;
    use std::time::Duration;

    #[test]
    fn renders_counters_gauges_and_histograms_with_pool_and_core() {
        let metrics = Metrics::default();
        metrics.counters.requests.set(7);
        metrics.record_latency(Duration::from_micros(80));
        metrics.record_latency(Duration::from_millis(3));
        let mut core = metrics.snapshot(1, 1, RingStats::default());
        let counters = ServerCounters::default();
        counters.request(10);
        core.servers = vec![counters.snapshot("h:1", Queues::default())];
        core.serving = true;
        core.reads.replicas = vec![ReplicaStats {
            addr: "h:2".into(),
            master: "h:1".into(),
            in_rotation: true,
            lag_state: "ok",
            lag_ms: Some(120),
            link: "up",
        }];
        let snapshot = Snapshot {
            uptime: Duration::from_secs(4),
            timestamp: 0,
            pools: vec![PoolSnapshot {
                name: "a\"b".into(),
                threads: 1,
                servers: None,
                cores: vec![core],
                ejects: 0,
                ejected_at: Default::default(),
            }],
            draining: false,
            config_epoch: 1,
            config_reload_failures: 0,
        };
        let text = render(snapshot);
        for line in [
            "# TYPE percore_requests_total counter",
            "percore_requests_total{pool=\"a\\\"b\",core=\"1\"} 7",
            "percore_uptime_seconds 4",
            "percore_config_epoch 1",
            "percore_config_reload_failures_total 0",
            "percore_pool_serving{pool=\"a\\\"b\"} 1",
            "percore_server_requests_total{pool=\"a\\\"b\",core=\"1\",server=\"h:1\"} 1",
            "percore_errors_total{pool=\"a\\\"b\",core=\"1\",kind=\"auth\"} 0",
            "percore_server_reads_total{pool=\"a\\\"b\",core=\"1\",server=\"h:1\"} 0",
            "percore_replica_in_rotation{pool=\"a\\\"b\",core=\"1\",replica=\"h:2\",master=\"h:1\"} 1",
            "percore_replica_lag_milliseconds{pool=\"a\\\"b\",core=\"1\",replica=\"h:2\",master=\"h:1\"} 120",
            "percore_request_duration_seconds_bucket{pool=\"a\\\"b\",core=\"1\",le=\"0.0001\"} 1",
            "percore_request_duration_seconds_bucket{pool=\"a\\\"b\",core=\"1\",le=\"0.005\"} 2",
            "percore_request_duration_seconds_bucket{pool=\"a\\\"b\",core=\"1\",le=\"+Inf\"} 2",
            "percore_request_duration_seconds_count{pool=\"a\\\"b\",core=\"1\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
