//! The figures of the whole process at one moment: every pool's [`CoreStats`] from every core
//! that answered the gather, with the pool's servers. Built on the core that serves the stats
//! port and `/metrics`, from one gather per pool, and rendered two ways (nutcracker's JSON and
//! Prometheus's text): one snapshot type, so the two never disagree about what was counted.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{CoreStats, ServerStats};

/// Every pool at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Since the process started serving.
    pub uptime: Duration,
    /// When the snapshot was taken, in seconds since the Unix epoch.
    pub timestamp: u64,
    /// The pools, in the configuration's order.
    pub pools: Vec<PoolSnapshot>,
    /// A stop signal arrived: the process drains and will end.
    pub draining: bool,
    /// The configuration the process serves: 1 at start, one more per reload applied.
    pub config_epoch: u64,
    /// Reloads refused (an invalid file, or a change only a restart makes) since start.
    pub config_reload_failures: u64,
}

/// One pool at one moment.
#[derive(Debug, Clone)]
pub struct PoolSnapshot {
    /// The pool's name (the file's key; `default` without a file).
    pub name: String,
    /// Cores the pool runs on; fewer in `cores` means some did not answer in time.
    pub threads: usize,
    /// A static pool's servers in the configured order, each as nutcracker names it in its
    /// stats (the server's name when it has one, else `host:port`) with its `host:port`;
    /// `None` for a cluster pool, whose servers are the masters seen.
    pub servers: Option<Vec<(String, String)>>,
    /// The stats of each core that answered, in core order.
    pub cores: Vec<CoreStats>,
    /// A static pool in cache mode: servers taken out of the ring so far (every core takes
    /// the same ones out, so this is one core's count, not a sum).
    pub ejects: u64,
    /// The servers out of the ring now, by `host:port`: when they were taken out, in
    /// microseconds since the Unix epoch (nutcracker's `server_ejected_at`).
    pub ejected_at: BTreeMap<String, u64>,
}

impl PoolSnapshot {
    /// Whether every core of the pool answered and accepts clients.
    pub fn serving(&self) -> bool {
        self.cores.len() == self.threads && self.cores.iter().all(|core| core.serving)
    }

    /// `figure` summed over the cores.
    pub fn sum(&self, figure: impl Fn(&CoreStats) -> u64) -> u64 {
        self.cores.iter().map(figure).sum()
    }

    /// The pool's servers with their figures summed over the cores, each under the name its
    /// stats show: a static pool's configured servers in order (those no core has used yet
    /// with zeros), or every node a cluster pool's cores have counted for, by address.
    pub fn servers(&self) -> Vec<(String, ServerStats)> {
        let mut merged: BTreeMap<&str, ServerStats> = BTreeMap::new();
        for stats in self.cores.iter().flat_map(|core| &core.servers) {
            merged
                .entry(stats.addr.as_str())
                .and_modify(|sum| sum.add(stats))
                .or_insert_with(|| stats.clone());
        }
        match &self.servers {
            Some(configured) => configured
                .iter()
                .map(|(name, addr)| {
                    let stats = merged.get(addr.as_str()).cloned();
                    let stats = stats.unwrap_or_else(|| ServerStats {
                        addr: addr.clone(),
                        ..ServerStats::default()
                    });
                    (name.clone(), stats)
                })
                .collect(),
            None => merged
                .into_iter()
                .map(|(addr, stats)| (addr.to_string(), stats))
                .collect(),
        }
    }
}

impl Snapshot {
    /// Whether the process serves every pool on every core and is not draining (`/health`).
    pub fn healthy(&self) -> bool {
        !self.draining && !self.pools.is_empty() && self.pools.iter().all(PoolSnapshot::serving)
    }

    /// Connections since start and open now, counted as nutcracker counts them: the
    /// listening sockets (one per pool per core here), client and server connections.
    pub fn connections(&self) -> (u64, u64) {
        let (mut total, mut current) = (0, 0);
        for pool in &self.pools {
            let listeners = pool.cores.iter().filter(|core| core.serving).count() as u64;
            let servers = pool.cores.iter().flat_map(|core| &core.servers);
            let (connects, open) = servers.fold((0, 0), |(made, open), server| {
                (made + server.connects, open + server.connections)
            });
            total += listeners + pool.sum(|core| core.connections_total) + connects;
            current += listeners + pool.sum(|core| core.clients) + open;
        }
        (total, current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Metrics, Queues, ServerCounters};
    use crate::net::RingStats;

    fn core(index: usize, serving: bool, servers: Vec<ServerStats>) -> CoreStats {
        let mut stats = Metrics::default().snapshot(index, 1, RingStats::default());
        stats.serving = serving;
        stats.servers = servers;
        stats
    }

    fn server(addr: &str, requests: usize) -> ServerStats {
        let counters = ServerCounters::default();
        counters.connected(false);
        for _ in 0..requests {
            counters.request(10);
        }
        counters.snapshot(addr, Queues::default())
    }

    #[test]
    fn servers_merge_over_cores_in_the_configured_order() {
        let pool = PoolSnapshot {
            name: "p".into(),
            threads: 2,
            servers: Some(vec![
                ("h:2".into(), "h:2".into()),
                ("named".into(), "h:1".into()),
                ("h:3".into(), "h:3".into()),
            ]),
            cores: vec![
                core(0, true, vec![server("h:1", 2)]),
                core(1, true, vec![server("h:1", 3), server("h:2", 1)]),
            ],
            ejects: 0,
            ejected_at: BTreeMap::new(),
        };
        let servers = pool.servers();
        let shown: Vec<(&str, u64)> = servers
            .iter()
            .map(|(name, s)| (name.as_str(), s.requests))
            .collect();
        assert_eq!(shown, [("h:2", 1), ("named", 5), ("h:3", 0)]);
        let snapshot = Snapshot {
            uptime: Duration::ZERO,
            timestamp: 0,
            pools: vec![pool.clone()],
            draining: false,
            config_epoch: 1,
            config_reload_failures: 0,
        };
        assert!(snapshot.healthy());
        // Two listeners, three server connections.
        assert_eq!(snapshot.connections(), (5, 5));
        let missing = PoolSnapshot {
            cores: vec![core(0, true, Vec::new())],
            ..pool
        };
        assert!(!missing.serving());
        let draining = Snapshot {
            draining: true,
            ..snapshot
        };
        assert!(!draining.healthy());
    }
}
