//! The lag watcher of a cluster pool, on core 0 beside the topology refresher: every
//! [`POLL`] it asks each master that has replicas for `INFO replication` (on the core's
//! shared connections to it, so it costs no connection of its own), judges how far behind
//! each replica is (`control::replica_lag`) and tells every core the verdicts
//! (`Notice::Replicas`), which each core's replica reads follow (`shard::replica`).
//!
//! It runs only with a lag bound (`--max-replica-lag` other than 0). Until its first verdict
//! it polls every [`FIRST_POLL`], so that a pool reading replicas only starts reading them
//! soon after its first topology.

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

/// Starts the watcher of this core's pool, if it has a lag bound.
pub(super) fn spawn(shard: &Rc<Shard>) {
    let Some(max_lag) = shard.config().replica_reads.max_lag else {
        return;
    };
    let shard = shard.clone();
    glommio::spawn_local(async move { watch(&shard, LagJudge::new(max_lag)).await }).detach();
}

/// Polls the masters for ever.
async fn watch(shard: &Rc<Shard>, mut judge: LagJudge) {
    let mut judged = false;
    let mut out_of_rotation: Vec<String> = Vec::new();
    loop {
        glommio::timer::sleep(if judged { POLL } else { FIRST_POLL }).await;
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
