//! The `# Reads` section of `PROXY INFO`: the read policy, each replica with whether reads
//! go to it and why not, and the reads each node was sent, summed over the cores.
//!
//! Whether a replica is in rotation can differ between cores for a moment (each core's own
//! connection to it may be down); a line shows the serving core's view (the first of the
//! gathered stats) and on how many cores it is in rotation.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::metrics::CoreStats;

/// Appends the section, for a pool that reads replicas or has any (none for a static pool).
pub fn section(text: &mut String, stats: &[CoreStats]) {
    let Some(serving) = stats.first() else {
        return;
    };
    let reads = &serving.reads;
    if reads.policy == "master" && reads.replicas.is_empty() {
        return;
    }
    let mut per_node: BTreeMap<&str, u64> = BTreeMap::new();
    for server in stats.iter().flat_map(|core| &core.servers) {
        *per_node.entry(&server.addr).or_default() += server.reads;
    }
    let max_lag = reads
        .max_lag_ms
        .map_or_else(|| "none".to_string(), |ms| ms.to_string());
    let in_rotation = reads.replicas.iter().filter(|r| r.in_rotation).count();
    let _ = write!(
        text,
        "\r\n# Reads\r\nread_from:{}\r\nmax_replica_lag_ms:{max_lag}\r\nreplicas:{}\r\n\
         replicas_in_rotation:{in_rotation}\r\nreads:{}\r\n",
        reads.policy,
        reads.replicas.len(),
        per_node.values().sum::<u64>(),
    );
    for (index, replica) in reads.replicas.iter().enumerate() {
        let cores = stats
            .iter()
            .filter(|core| {
                let same = core.reads.replicas.iter().find(|r| r.addr == replica.addr);
                same.is_some_and(|r| r.in_rotation)
            })
            .count();
        let lag_ms = replica
            .lag_ms
            .map_or_else(|| "unknown".to_string(), |ms| ms.to_string());
        let _ = write!(
            text,
            "replica{index}:addr={},master={},in_rotation={},cores_in_rotation={cores},lag={},\
             lag_ms={lag_ms},link={},reads={}\r\n",
            replica.addr,
            replica.master,
            if replica.in_rotation { "yes" } else { "no" },
            replica.lag_state,
            replica.link,
            per_node.get(replica.addr.as_str()).copied().unwrap_or(0),
        );
    }
    let read = per_node.iter().filter(|(_, reads)| **reads > 0);
    for (index, (addr, reads)) in read.enumerate() {
        let _ = write!(text, "node_reads{index}:addr={addr},reads={reads}\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Metrics, ReplicaStats, ServerCounters};
    use crate::net::RingStats;

    fn core(index: usize, in_rotation: bool, reads: usize) -> CoreStats {
        let mut core = Metrics::default().snapshot(index, 1, RingStats::default());
        core.reads.policy = "prefer-replica";
        core.reads.max_lag_ms = Some(2000);
        core.reads.replicas = vec![ReplicaStats {
            addr: "h:2".into(),
            master: "h:1".into(),
            in_rotation,
            lag_state: "ok",
            lag_ms: Some(0),
            link: if in_rotation { "up" } else { "down" },
        }];
        let counters = ServerCounters::default();
        (0..reads).for_each(|_| counters.read());
        core.servers = vec![counters.snapshot("h:2", Default::default())];
        core
    }

    #[test]
    fn shows_each_replica_and_the_reads_per_node() {
        let mut text = String::new();
        section(&mut text, &[core(0, true, 3), core(1, false, 4)]);
        assert_eq!(
            text,
            "\r\n# Reads\r\nread_from:prefer-replica\r\nmax_replica_lag_ms:2000\r\nreplicas:1\r\n\
             replicas_in_rotation:1\r\nreads:7\r\nreplica0:addr=h:2,master=h:1,in_rotation=yes,\
             cores_in_rotation=1,lag=ok,lag_ms=0,link=up,reads=7\r\nnode_reads0:addr=h:2,reads=7\r\n"
        );
    }

    #[test]
    fn nothing_for_a_pool_that_reads_masters_only() {
        let mut text = String::new();
        let core = Metrics::default().snapshot(0, 1, RingStats::default());
        section(&mut text, &[core]);
        assert!(text.is_empty());
    }
}
