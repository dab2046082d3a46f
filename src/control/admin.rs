//! The text of the admin replies `PROXY INFO` and `PROXY LATENCY` (INFO's is in `info`).
//!
//! Formatting is kept apart from gathering: it reads a plain [`ProxyView`] of the serving core
//! and the [`CoreStats`] gathered from every core, so it is testable without a running proxy.
//! The output is INFO-style `key:value` lines, easy for people and for scripts (`grep`, `cut`).

use std::fmt::Write;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::config::{AsyncWrites, ListenAddr};
use crate::metrics::{new_histogram, BackgroundStats, CoreStats};
use crate::resp::{encode, Protocol};

/// What the serving core knows about the proxy as a whole, copied out for a report.
#[derive(Debug, Clone)]
pub struct ProxyView {
    /// The serving core.
    pub core: usize,
    /// Cores the proxy runs on.
    pub threads: usize,
    /// Whether executors are pinned to their cores.
    pub pinned: bool,
    /// Time since the process started serving.
    pub uptime: Duration,
    /// The listen address.
    pub listen: ListenAddr,
    /// Topology epoch the serving core routes with.
    pub epoch: u64,
    /// Masters of that topology, in slot order.
    pub masters: Vec<Rc<str>>,
    /// A static pool's servers and what is ejected; `None` for a cluster pool.
    pub pool: Option<PoolView>,
    /// A static pool's servers, in order: each one's name (its address as written when it has
    /// none) and where it is served now (`None`: nowhere yet, its Sentinel master not found).
    /// Empty for a cluster.
    pub servers: Vec<(String, Option<Rc<str>>)>,
    /// The configuration the serving core serves.
    pub config: ConfigView,
    /// The pool's background writes, if it has them on (`async_writes: true`).
    pub async_writes: Option<AsyncWrites>,
}

/// Which configuration a core serves, and how reloads went.
#[derive(Debug, Clone, Default)]
pub struct ConfigView {
    /// 1 at start, one more per reload applied.
    pub epoch: u64,
    /// When its file was read, in seconds since the Unix epoch.
    pub loaded_at: u64,
    /// The file (`-c`), if there is one.
    pub file: Option<Arc<str>>,
    /// Reloads refused since start.
    pub reload_failures: u64,
}

/// A static pool as the serving core sees it (every core sees the same servers ejected).
#[derive(Debug, Clone)]
pub struct PoolView {
    /// The pool's name in the file.
    pub name: String,
    /// Servers configured.
    pub servers: usize,
    /// Whether the pool is in cache mode (`auto_eject_hosts: true`).
    pub auto_eject: bool,
    /// Ejections so far (nutcracker's `server_ejects`).
    pub ejects: u64,
    /// The servers out of the ring now.
    pub ejected: Vec<EjectedView>,
}

/// One server out of a static pool's ring.
#[derive(Debug, Clone)]
pub struct EjectedView {
    /// Its name (its address when the file names none).
    pub name: String,
    /// Its `host:port`.
    pub addr: String,
    /// Time until it is put back and tried again.
    pub retry_in: Duration,
}

/// Which report a `PROXY` command asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// `PROXY INFO`
    Info,
    /// `PROXY LATENCY`
    Latency,
    /// `PROXY LATENCY RESET`: the histograms were reset while gathering.
    LatencyReset,
}

/// The reply to a `PROXY` command from every core's stats.
pub fn report(view: &ProxyView, report: Report, stats: &[CoreStats], protocol: Protocol) -> Bytes {
    let text = match report {
        Report::Info => proxy_info(view, stats),
        Report::Latency => latency(stats),
        Report::LatencyReset => return Bytes::from_static(encode::OK),
    };
    text_reply(&text, protocol)
}

fn proxy_info(view: &ProxyView, stats: &[CoreStats]) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "# Proxy\r\nversion:{}\r\nthreads:{}\r\npinned:{}\r\nuptime_seconds:{}\r\n\
         listen:{}\r\ntopology_epoch:{}\r\nmasters:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        view.threads,
        if view.pinned { "yes" } else { "no" },
        view.uptime.as_secs(),
        view.listen,
        view.epoch,
        view.masters.len(),
    );
    let config = &view.config;
    let _ = write!(
        text,
        "config_epoch:{}\r\nconfig_loaded_at:{}\r\nconfig_file:{}\r\nconfig_reload_failures:{}\r\n",
        config.epoch,
        config.loaded_at,
        config.file.as_deref().unwrap_or(""),
        config.reload_failures,
    );
    for (index, addr) in view.masters.iter().enumerate() {
        let _ = write!(text, "master{index}:{addr}\r\n");
    }
    for (index, (name, addr)) in view.servers.iter().enumerate() {
        let addr = addr.as_deref().unwrap_or("none");
        let _ = write!(text, "server{index}:name={name},addr={addr}\r\n");
    }
    if let Some(pool) = &view.pool {
        pool_section(&mut text, pool);
    }
    text.push_str("\r\n# Cores\r\n");
    for s in stats {
        let _ = write!(
            text,
            "core{}:clients={},connections_total={},requests={},moved={},asked={},\
             backend_failures={},auth_failures={},monitors={},monitor_dropped={},leased={},\
             pooled={},blocked={},watching={},lease_refused={},epoch={},config_epoch={},ring={},\
             ring_operations={},\
             ring_enters={},ring_naps={},ring_parks={}\r\n",
            s.core,
            s.clients,
            s.connections_total,
            s.requests,
            s.moved,
            s.asked,
            s.backend_failures,
            s.auth_failures,
            s.monitors,
            s.monitor_dropped,
            s.leased_conns,
            s.pooled_conns,
            s.blocking_clients,
            s.watching_clients,
            s.lease_refusals,
            s.epoch,
            s.config_epoch,
            s.ring.mode,
            s.ring.operations,
            s.ring.enters,
            s.ring.naps,
            s.ring.parks,
        );
    }
    pubsub_section(&mut text, stats);
    if let Some(settings) = &view.async_writes {
        background_section(&mut text, settings, stats);
    }
    super::reads_report::section(&mut text, stats);
    text
}

/// The `# Background writes` section of a pool with `async_writes: true`: its settings, the
/// totals over the cores, then each core's figures.
fn background_section(text: &mut String, settings: &AsyncWrites, stats: &[CoreStats]) {
    let mut total = BackgroundStats::default();
    stats.iter().for_each(|s| total.add(&s.background));
    let _ = write!(
        text,
        "\r\n# Background writes\r\nasync_writes:on\r\nasync_writes_max_bytes:{}\r\n\
         async_writes_retry_timeout_ms:{}\r\n{}",
        settings.max_bytes,
        settings.retry_for.as_millis(),
        background_figures("background_", "\r\n", &total),
    );
    for s in stats {
        let figures = background_figures("", ",", &s.background);
        let figures = figures.trim_end_matches(',');
        let _ = write!(text, "background_core{}:{figures}\r\n", s.core);
    }
}

/// Background write figures as `<prefix>name:value<end>` (`name=value,` per core).
fn background_figures(prefix: &str, end: &str, b: &BackgroundStats) -> String {
    let sep = if end == "," { "=" } else { ":" };
    [
        ("pending", b.pending),
        ("pending_bytes", b.pending_bytes),
        ("sent", b.sent),
        ("failed", b.failed),
        ("unflushed", b.unflushed),
        ("synchronous", b.synchronous),
    ]
    .iter()
    .map(|(name, value)| format!("{prefix}{name}{sep}{value}{end}"))
    .collect()
}

/// The `# Pool` section of a static pool: its servers, and those ejected with the time left.
fn pool_section(text: &mut String, pool: &PoolView) {
    let _ = write!(
        text,
        "\r\n# Pool\r\npool:{}\r\nservers:{}\r\nauto_eject_hosts:{}\r\nservers_live:{}\r\n\
         server_ejects:{}\r\nservers_ejected:{}\r\n",
        pool.name,
        pool.servers,
        pool.auto_eject,
        pool.servers - pool.ejected.len(),
        pool.ejects,
        pool.ejected.len(),
    );
    for (index, server) in pool.ejected.iter().enumerate() {
        let _ = write!(
            text,
            "ejected{index}:name={},addr={},retry_in_ms={}\r\n",
            server.name,
            server.addr,
            server.retry_in.as_millis()
        );
    }
}

/// The `# Pubsub` section: totals over the cores, then each core's figures.
fn pubsub_section(text: &mut String, stats: &[CoreStats]) {
    let total = |field: fn(&CoreStats) -> u64| stats.iter().map(field).sum::<u64>();
    let _ = write!(
        text,
        "\r\n# Pubsub\r\nsubscribers:{}\r\npubsub_messages:{}\r\npubsub_deliveries:{}\r\n\
         pubsub_cut_off:{}\r\npubsub_gaps:{}\r\npubsub_gap_ms:{}\r\n",
        total(|s| s.pubsub.subscribers),
        total(|s| s.pubsub.messages),
        total(|s| s.pubsub.deliveries),
        total(|s| s.pubsub.cut_off),
        total(|s| s.pubsub.gaps),
        total(|s| s.pubsub.gap_ms),
    );
    for s in stats {
        let p = &s.pubsub;
        let _ = write!(
            text,
            "pubsub_core{}:subscribers={},channels={},patterns={},shard_channels={},links={},\
             messages={},deliveries={},cut_off={},gaps={},gap_ms={}\r\n",
            s.core,
            p.subscribers,
            p.channels,
            p.patterns,
            p.shard_channels,
            p.links,
            p.messages,
            p.deliveries,
            p.cut_off,
            p.gaps,
            p.gap_ms,
        );
    }
}

fn latency(stats: &[CoreStats]) -> String {
    let mut text = String::from("# Latency (microseconds in the proxy per request)\r\n");
    let mut all = new_histogram();
    for s in stats {
        let _ = all.add(&s.latency);
        let _ = writeln!(text, "core{}:{}\r", s.core, percentiles(&s.latency));
    }
    let _ = writeln!(text, "all:{}\r", percentiles(&all));
    text
}

fn percentiles(h: &hdrhistogram::Histogram<u64>) -> String {
    format!(
        "count={},p50={},p90={},p99={},p99.9={},max={}",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max()
    )
}

/// Report text as Redis sends INFO: a bulk string in RESP2, a verbatim string in RESP3.
fn text_reply(text: &str, protocol: Protocol) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 20);
    encode::verbatim(&mut out, protocol, text.as_bytes());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::net::RingStats;

    #[test]
    fn proxy_info_shows_where_each_server_is() {
        let view = ProxyView {
            core: 0,
            threads: 1,
            pinned: true,
            uptime: Duration::from_secs(1),
            listen: "127.0.0.1:6380".parse().expect("address"),
            epoch: 2,
            masters: vec!["127.0.0.1:7001".into()],
            pool: None,
            servers: vec![
                ("m-a".into(), None),
                ("m-b".into(), Some("127.0.0.1:7001".into())),
            ],
            config: ConfigView {
                epoch: 4,
                loaded_at: 1_700_000_000,
                file: Some(Arc::from("/etc/percore.yml")),
                reload_failures: 1,
            },
            async_writes: None,
        };
        let text = proxy_info(&view, &[]);
        assert!(
            text.contains("config_epoch:4\r\nconfig_loaded_at:1700000000\r\nconfig_file:/etc/percore.yml\r\nconfig_reload_failures:1\r\n"),
            "{text}"
        );
        assert!(
            text.contains("master0:127.0.0.1:7001\r\nserver0:name=m-a,addr=none\r\nserver1:name=m-b,addr=127.0.0.1:7001\r\n"),
            "{text}"
        );
    }

    #[test]
    fn background_writes_show_settings_totals_and_cores() {
        let settings = AsyncWrites {
            max_bytes: 1000,
            retry_for: Duration::from_secs(10),
        };
        let mut a = Metrics::default().snapshot(0, 1, RingStats::default());
        a.background = BackgroundStats {
            pending: 2,
            pending_bytes: 60,
            sent: 10,
            failed: 1,
            unflushed: 0,
            synchronous: 3,
        };
        let mut b = Metrics::default().snapshot(1, 1, RingStats::default());
        b.background.sent = 5;
        let mut text = String::new();
        background_section(&mut text, &settings, &[a, b]);
        assert_eq!(
            text,
            "\r\n# Background writes\r\nasync_writes:on\r\nasync_writes_max_bytes:1000\r\n\
             async_writes_retry_timeout_ms:10000\r\nbackground_pending:2\r\n\
             background_pending_bytes:60\r\nbackground_sent:15\r\nbackground_failed:1\r\n\
             background_unflushed:0\r\nbackground_synchronous:3\r\n\
             background_core0:pending=2,pending_bytes=60,sent=10,failed=1,unflushed=0,\
             synchronous=3\r\n\
             background_core1:pending=0,pending_bytes=0,sent=5,failed=0,unflushed=0,\
             synchronous=0\r\n"
        );
    }

    #[test]
    fn latency_report_has_cores_and_total() {
        let metrics = Metrics::default();
        for micros in [10, 20, 30] {
            metrics.record_latency(Duration::from_micros(micros));
        }
        let a = metrics.snapshot(0, 1, RingStats::default());
        let b = metrics.snapshot(1, 1, RingStats::default());
        let text = latency(&[a, b]);
        assert!(text.contains("core0:count=3,p50=20,"), "{text}");
        assert!(text.contains("core1:count=3,"), "{text}");
        assert!(text.contains("all:count=6,"), "{text}");
        assert!(text.contains("max=30"), "{text}");
    }

    #[test]
    fn a_static_pool_lists_its_ejected_servers() {
        let pool = PoolView {
            name: "cache".into(),
            servers: 3,
            auto_eject: true,
            ejects: 2,
            ejected: vec![EjectedView {
                name: "b".into(),
                addr: "127.0.0.1:7001".into(),
                retry_in: Duration::from_millis(1500),
            }],
        };
        let mut text = String::new();
        pool_section(&mut text, &pool);
        assert_eq!(
            text,
            "\r\n# Pool\r\npool:cache\r\nservers:3\r\nauto_eject_hosts:true\r\n\
             servers_live:2\r\nserver_ejects:2\r\nservers_ejected:1\r\n\
             ejected0:name=b,addr=127.0.0.1:7001,retry_in_ms=1500\r\n"
        );
    }
}
