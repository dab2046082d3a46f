//! nutcracker's stats, from a [`Snapshot`]: the JSON its stats port writes (the same keys, in
//! the same order and layout as nutcracker 0.5.0, so twemproxy's dashboards and exporters read
//! it unchanged), and the descriptions its `-D` prints.
//!
//! Every value is a true one. Where percore has no such thing, the value says so with the
//! closest truth: `service` and `version` are percore's. `server_ejects` and
//! `server_ejected_at` come from the pool's ejections (cache mode, `shard::eject`), as one core
//! applied them: every core applies the same ones, so they are not summed.

use std::fmt::Write;

use crate::metrics::{PoolSnapshot, ServerStats, Snapshot};

/// What the `service` key holds: the program serving the stats.
const SERVICE: &str = "percore";

/// nutcracker's pool figures in its order, each with its description (`-D`).
pub const POOL_FIELDS: &[(&str, &str)] = &[
    ("client_eof", "# eof on client connections"),
    ("client_err", "# errors on client connections"),
    ("client_connections", "# active client connections"),
    ("server_ejects", "# times backend server was ejected"),
    ("forward_error", "# times we encountered a forwarding error"),
    (
        "fragments",
        "# fragments created from a multi-vector request",
    ),
];

/// nutcracker's server figures in its order, each with its description (`-D`).
pub const SERVER_FIELDS: &[(&str, &str)] = &[
    ("server_eof", "# eof on server connections"),
    ("server_err", "# errors on server connections"),
    ("server_timedout", "# timeouts on server connections"),
    ("server_connections", "# active server connections"),
    (
        "server_ejected_at",
        "timestamp when server was ejected in usec since epoch",
    ),
    ("requests", "# requests"),
    ("request_bytes", "total request bytes"),
    ("responses", "# responses"),
    ("response_bytes", "total response bytes"),
    ("in_queue", "# requests in incoming queue"),
    ("in_queue_bytes", "current request bytes in incoming queue"),
    ("out_queue", "# requests in outgoing queue"),
    ("out_queue_bytes", "current request bytes in outgoing queue"),
];

/// What `-D` prints, as nutcracker's `-D` does.
pub fn describe() -> String {
    let mut text = format!(
        "This is percore-{}\n\npool stats:\n",
        env!("CARGO_PKG_VERSION")
    );
    for (name, description) in POOL_FIELDS {
        let _ = writeln!(text, "  {name:<20}\"{description}\"");
    }
    text.push_str("\nserver stats:\n");
    for (name, description) in SERVER_FIELDS {
        let _ = writeln!(text, "  {name:<20}\"{description}\"");
    }
    text
}

/// The stats port's JSON for `snapshot`, taken on host `source`.
pub fn render(snapshot: &Snapshot, source: &str) -> String {
    let (total, current) = snapshot.connections();
    let mut json = String::with_capacity(1024);
    let _ = write!(
        json,
        "{{\"service\":{}, \"source\":{}, \"version\":{}, \"uptime\":{}, \"timestamp\":{}, \
         \"total_connections\":{total}, \"curr_connections\":{current}",
        quoted(SERVICE),
        quoted(source),
        quoted(env!("CARGO_PKG_VERSION")),
        snapshot.uptime.as_secs(),
        snapshot.timestamp,
    );
    for pool in &snapshot.pools {
        let _ = write!(json, ", {}: {{", quoted(&pool.name));
        let figures = pool_figures(pool);
        write_figures(&mut json, POOL_FIELDS, &figures);
        for (name, server) in pool.servers() {
            let _ = write!(json, ", {}: {{", quoted(&name));
            let ejected_at = pool.ejected_at.get(&server.addr).copied().unwrap_or(0);
            write_figures(
                &mut json,
                SERVER_FIELDS,
                &server_figures(&server, ejected_at),
            );
            json.push('}');
        }
        json.push('}');
    }
    json.push('}');
    json
}

/// A pool's figures in [`POOL_FIELDS`] order, summed over its cores.
fn pool_figures(pool: &PoolSnapshot) -> [u64; 6] {
    let forward_errors = pool.servers().iter().map(|(_, s)| s.failed).sum();
    [
        pool.sum(|core| core.client_eof),
        pool.sum(|core| core.client_err),
        pool.sum(|core| core.clients),
        pool.ejects,
        forward_errors,
        pool.sum(|core| core.fragments),
    ]
}

/// A server's figures in [`SERVER_FIELDS`] order.
fn server_figures(server: &ServerStats, ejected_at: u64) -> [u64; 13] {
    [
        server.eof,
        server.errors,
        server.timed_out,
        server.connections,
        ejected_at,
        server.requests,
        server.request_bytes,
        server.responses,
        server.response_bytes,
        server.queues.in_queue,
        server.queues.in_queue_bytes,
        server.queues.out_queue,
        server.queues.out_queue_bytes,
    ]
}

/// `"name":value` pairs, comma-separated as nutcracker writes them.
fn write_figures(json: &mut String, fields: &[(&str, &str)], values: &[u64]) {
    for (index, ((name, _), value)) in fields.iter().zip(values).enumerate() {
        let comma = if index == 0 { "" } else { ", " };
        let _ = write!(json, "{comma}\"{name}\":{value}");
    }
}

/// `text` as a JSON string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Metrics, Queues, ServerCounters};
    use crate::net::RingStats;
    use std::time::Duration;

    #[test]
    fn json_has_nutcracker_s_keys_and_layout() {
        let metrics = Metrics::default();
        metrics.counters.client_eof.set(3);
        let mut core = metrics.snapshot(0, 1, RingStats::default());
        let counters = ServerCounters::default();
        counters.request(27);
        counters.response(5);
        counters.connected(false);
        core.servers = vec![counters.snapshot("127.0.0.1:1", Queues::default())];
        core.serving = true;
        let snapshot = Snapshot {
            uptime: Duration::from_secs(1),
            timestamp: 1796133228,
            pools: vec![PoolSnapshot {
                name: "alpha".into(),
                threads: 1,
                servers: Some(vec![
                    ("named".into(), "127.0.0.1:2".into()),
                    ("127.0.0.1:1".into(), "127.0.0.1:1".into()),
                ]),
                cores: vec![core],
                ejects: 0,
                ejected_at: Default::default(),
            }],
            draining: false,
            config_epoch: 1,
            config_reload_failures: 0,
        };
        let json = render(&snapshot, "vm\"x");
        let version = env!("CARGO_PKG_VERSION");
        let zeros = "\"server_eof\":0, \"server_err\":0, \"server_timedout\":0";
        assert_eq!(
            json,
            format!(
                "{{\"service\":\"percore\", \"source\":\"vm\\\"x\", \"version\":\"{version}\", \
                 \"uptime\":1, \"timestamp\":1796133228, \"total_connections\":2, \
                 \"curr_connections\":2, \"alpha\": {{\"client_eof\":3, \"client_err\":0, \
                 \"client_connections\":0, \"server_ejects\":0, \"forward_error\":0, \
                 \"fragments\":0, \"named\": {{{zeros}, \"server_connections\":0, \
                 \"server_ejected_at\":0, \"requests\":0, \"request_bytes\":0, \
                 \"responses\":0, \"response_bytes\":0, \"in_queue\":0, \"in_queue_bytes\":0, \
                 \"out_queue\":0, \"out_queue_bytes\":0}}, \"127.0.0.1:1\": {{{zeros}, \
                 \"server_connections\":1, \"server_ejected_at\":0, \"requests\":1, \
                 \"request_bytes\":27, \"responses\":1, \"response_bytes\":5, \"in_queue\":0, \
                 \"in_queue_bytes\":0, \"out_queue\":0, \"out_queue_bytes\":0}}}}}}"
            )
        );
    }

    #[test]
    fn describe_lists_every_field() {
        let text = describe();
        assert!(text.contains("  client_eof          \"# eof on client connections\"\n"));
        assert!(
            text.contains("  out_queue_bytes     \"current request bytes in outgoing queue\"\n")
        );
    }
}
