//! The lag watcher of a cluster pool, on core 0 beside the topology refresher: every
//! [`POLL`] it asks each master that has replicas for `INFO replication` (on the core's
//! shared connections to it, so it costs no connection of its own), judges how far behind
//! each replica is (`control::replica_lag`) and tells every core the verdicts
//! (`Notice::Replicas`), which each core's replica reads follow (`shard::replica`).
//!
//! It polls only while the pool has a lag bound (`--max-replica-lag` other than 0), and reads
//! the bound at every poll, so that a reload may set, change or lift it (a new bound starts
//! a fresh judge: offsets seen under the old one say nothing about the new). Until its first
//! verdict it polls every [`FIRST_POLL`], so that a pool reading replicas only starts reading
//! them soon after its first topology.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::info;

use crate::control::mesh::Notice;
use crate::control::replica_lag::{parse_replication, LagJudge, MasterReport, POLL};
use crate::resp::value::{parse_value, Value};
use crate::resp::Protocol;

use super::Shard;

/// Poll period until the first verdict: the topology comes within milliseconds of the start.
const FIRST_POLL: Duration = Duration::from_millis(20);

/// The request.
const INFO_REPLICATION: &[u8] = b"*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n";

/// Starts the watcher of this core's pool, for as long as the pool is served.
pub(super) fn spawn(shard: &Rc<Shard>) {
    let task = glommio::spawn_local({
        let shard = shard.clone();
        async move { watch(&shard).await }
    });
    shard.keep(task);
}

/// Polls the masters for ever, while the pool has a lag bound.
async fn watch(shard: &Rc<Shard>) {
    let mut judge: Option<(Duration, LagJudge)> = None;
    let mut judged = false;
    let mut out_of_rotation: Vec<String> = Vec::new();
    loop {
        glommio::timer::sleep(if judged { POLL } else { FIRST_POLL }).await;
        let Some(max_lag) = shard.config().replica_reads.max_lag else {
            // No bound: every replica may be read (`Verdicts::allows`), nothing to judge. A
            // bound a reload lifted leaves verdicts that kept replicas out: tell the cores
            // to look again.
            if judge.take().is_some() {
                shard
                    .tell_every_core(Notice::Replicas(Vec::new().into()))
                    .await;
            }
            judged = true;
            continue;
        };
        let judge = match &mut judge {
            Some((bound, judge)) if *bound == max_lag => judge,
            fresh => &mut fresh.insert((max_lag, LagJudge::new(max_lag))).1,
        };
        let masters = shard.replicated_masters();
        if masters.is_empty() {
            continue;
        }
        // All asked at once; waiting for them in turn then takes as long as the slowest.
        let request = Bytes::from_static(INFO_REPLICATION);
        let waiters: Vec<_> = masters
            .iter()
            .map(|(node, _)| shard.send_for_reply(node, request.clone(), Protocol::Resp2))
            .collect();
        let mut replies = Vec::with_capacity(waiters.len());
        for waiter in waiters {
            replies.push(waiter.reply().await);
        }
        let reports: Vec<MasterReport> = masters
            .iter()
            .zip(&replies)
            .map(|((node, replicas), reply)| MasterReport {
                master: &node.addr,
                replicas,
                replication: info_text(reply).and_then(|text| parse_replication(&text)),
            })
            .collect();
        let verdicts = judge.judge(Instant::now(), &reports);
        let out: Vec<String> = verdicts
            .iter()
            .filter(|v| !v.state.in_rotation())
            .map(|v| format!("{} ({})", v.addr, v.state.name()))
            .collect();
        if out != out_of_rotation {
            info!(
                pool = shard.pool_name(),
                out_of_rotation = out.join(", "),
                "replicas read from changed"
            );
            out_of_rotation = out;
        }
        shard
            .tell_every_core(Notice::Replicas(verdicts.into()))
            .await;
        judged = true;
    }
}

/// The text of an INFO reply (a bulk string); `None` for an error.
fn info_text(reply: &[u8]) -> Option<String> {
    match parse_value(reply).ok()?? {
        (Value::Bulk(Some(text)), _) => Some(String::from_utf8_lossy(&text).into_owned()),
        _ => None,
    }
}
