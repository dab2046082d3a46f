//! The topology refresher: one task, on core 0, that owns the truth about the cluster layout.
//!
//! It asks a node for `CLUSTER SLOTS` at start, every `--refresh-interval`, and whenever a core
//! asks (after MOVED or a backend failure). At most one refresh runs at a time and requests
//! that arrive meanwhile are folded into the next one, with a short minimum gap, so a burst of
//! MOVED during a resharding costs a handful of refreshes, not thousands. A layout that differs
//! from the last one gets the next epoch and goes to every core.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tracing::{debug, info, warn};

use crate::cluster::topology::Topology;
use crate::mesh::Message;
use crate::resp::value::parse_value;
use crate::shard::io::Stream;
use crate::shard::Shard;
use crate::uring::Uring;

/// Least time between two refreshes, so a storm of requests becomes one refresh.
const MIN_REFRESH_GAP: Duration = Duration::from_millis(100);
/// Delay between attempts while no node has answered yet.
const STARTUP_RETRY: Duration = Duration::from_millis(250);
/// Largest CLUSTER SLOTS reply accepted (a 1000-node cluster is well under 1 MiB).
const MAX_SLOTS_REPLY: usize = 16 * 1024 * 1024;

/// The request sent to a node.
const CLUSTER_SLOTS: &[u8] = b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

/// Runs the refresher forever.
pub async fn run(shard: Rc<Shard>) {
    let mut current: Option<Topology> = None;
    let mut epoch = 0;
    let mut last_refresh = Instant::now() - MIN_REFRESH_GAP;
    let mut failures = 0u32;
    loop {
        let since = last_refresh.elapsed();
        if since < MIN_REFRESH_GAP {
            glommio::timer::sleep(MIN_REFRESH_GAP - since).await;
        }
        last_refresh = Instant::now();
        match fetch_any(&shard, current.as_ref()).await {
            Ok(mut topology) => {
                failures = 0;
                if current.as_ref().is_none_or(|c| !c.same_layout(&topology)) {
                    epoch += 1;
                    topology.epoch = epoch;
                    info!(
                        epoch,
                        masters = topology.masters.len(),
                        covered_slots = topology.covered_slots(),
                        "new cluster topology"
                    );
                    publish(&shard, Arc::new(topology.clone())).await;
                    current = Some(topology);
                }
            }
            Err(error) => {
                failures += 1;
                // Loud on the first failure, quieter while it persists.
                if failures == 1 || failures.is_multiple_of(20) {
                    warn!(%error, failures, "topology refresh failed");
                }
            }
        }
        let wait = if current.is_none() {
            STARTUP_RETRY
        } else {
            shard.config.refresh_interval
        };
        let _ = glommio::timer::timeout(wait, async {
            shard.refresh_wanted.wait().await;
            Ok(())
        })
        .await;
    }
}

/// Sends a topology to every core, this one included.
async fn publish(shard: &Rc<Shard>, topology: Arc<Topology>) {
    for core in 0..shard.mesh.cores() {
        if core == shard.id {
            shard.apply_topology(&topology);
        } else if !shard
            .mesh
            .send(core, Message::Topology(topology.clone()))
            .await
        {
            warn!(core, "could not send the topology to a core");
        }
    }
}

/// Asks the known masters, then the seeds, until one answers.
async fn fetch_any(shard: &Shard, current: Option<&Topology>) -> Result<Topology, String> {
    let known = current.map(|t| t.masters.as_slice()).unwrap_or_default();
    let mut errors = Vec::new();
    for node in known.iter().chain(shard.config.seeds.iter()) {
        match fetch(&shard.uring, node, shard.config.backend_timeout).await {
            Ok(topology) if topology.covered_slots() > 0 => return Ok(topology),
            Ok(_) => errors.push(format!("{node}: serves no slots")),
            Err(error) => {
                debug!(node, %error, "CLUSTER SLOTS failed");
                errors.push(format!("{node}: {error}"));
            }
        }
    }
    Err(errors.join("; "))
}

/// Reads `CLUSTER SLOTS` from one node, bounded by `timeout`.
async fn fetch(uring: &Rc<Uring>, node: &str, timeout: Duration) -> Result<Topology, String> {
    let work = async {
        let addr = std::net::ToSocketAddrs::to_socket_addrs(node)
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("address resolves to nothing")?;
        let stream = Stream::connect(uring, addr, timeout)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(CLUSTER_SLOTS)
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = BytesMut::new();
        loop {
            let grow = buf.len().max(16 * 1024);
            if stream
                .read_into(&mut buf, 0, grow)
                .await
                .map_err(|e| e.to_string())?
                == 0
            {
                return Err("connection closed".to_string());
            }
            if let Some((value, _)) = parse_value(&buf).map_err(|e| e.to_string())? {
                return Topology::from_cluster_slots(&value, node);
            }
            if buf.len() > MAX_SLOTS_REPLY {
                return Err("CLUSTER SLOTS reply too large".to_string());
            }
        }
    };
    glommio::timer::timeout(timeout, async { Ok(work.await) })
        .await
        .map_err(|_| "timed out".to_string())?
}
