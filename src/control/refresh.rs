//! The topology refresher: one task, on core 0, that owns the truth about the cluster layout.
//!
//! It asks a node for `CLUSTER SLOTS` at start, every `--refresh-interval`, and whenever a core
//! asks (after MOVED or a backend failure). At most one refresh runs at a time and requests
//! that arrive meanwhile are folded into the next one, with a short minimum gap, so a burst of
//! MOVED during a resharding costs a handful of refreshes, not thousands. A layout that differs
//! from the last one gets the next epoch and is handed to `publish`, which sends it to every
//! core; the refresher itself knows nothing of shards.

use std::fmt;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::cluster::topology::{Topology, TopologyError};
use crate::error::ReplyError;
use crate::net::{connect, ConnectError, Uring};
use crate::resp::value::parse_value;
use crate::sync::Signal;

/// Least time between two refreshes, so a storm of requests becomes one refresh.
const MIN_REFRESH_GAP: Duration = Duration::from_millis(100);
/// Delay between attempts while no node has answered yet.
const STARTUP_RETRY: Duration = Duration::from_millis(250);
/// Largest CLUSTER SLOTS reply accepted (a 1000-node cluster is well under 1 MiB).
const MAX_SLOTS_REPLY: usize = 16 * 1024 * 1024;
/// Bytes a read of the reply asks for at least.
const READ_SIZE: usize = 16 * 1024;
/// During an outage, one failed refresh in this many is logged at warn level.
const FAILURE_LOG_EVERY: u32 = 20;

/// The request sent to a node.
const CLUSTER_SLOTS: &[u8] = b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

/// Why one node could not give a layout.
#[derive(Debug, Error)]
pub enum FetchError {
    /// No connection.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The connection broke.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The node closed the connection before answering.
    #[error("connection closed")]
    Closed,
    /// The reply is not RESP.
    #[error("bad reply: {0}")]
    BadReply(#[from] ReplyError),
    /// The reply is RESP but not a layout.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The reply grew past [`MAX_SLOTS_REPLY`].
    #[error("CLUSTER SLOTS reply too large")]
    TooLarge,
    /// No answer within the backend timeout.
    #[error("timed out")]
    TimedOut,
    /// The node answered with a layout that serves no slot.
    #[error("serves no slots")]
    NoSlots,
}

/// Every node asked in one refresh, and why each failed.
#[derive(Debug)]
pub struct RefreshError(Vec<(String, FetchError)>);

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (node, error)) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{node}: {error}")?;
        }
        Ok(())
    }
}

/// What the refresher needs: where to ask, how long to wait, and when to ask again.
pub struct Refresher {
    /// The core's socket ring.
    pub uring: Rc<Uring>,
    /// Nodes to ask when none of the known masters answers.
    pub seeds: &'static [String],
    /// Bound on one node's answer (connect included).
    pub timeout: Duration,
    /// Period of the background refresh.
    pub interval: Duration,
    /// Notified by the cores that want a refresh now.
    pub wanted: Rc<Signal>,
}

impl Refresher {
    /// Runs forever, handing every new layout to `publish`.
    pub async fn run<F, Fut>(self, mut publish: F)
    where
        F: FnMut(Arc<Topology>) -> Fut,
        Fut: Future<Output = ()>,
    {
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
            match self.fetch_any(current.as_ref()).await {
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
                        publish(Arc::new(topology.clone())).await;
                        current = Some(topology);
                    }
                }
                Err(error) => {
                    failures += 1;
                    // Loud on the first failure, quieter while it persists.
                    if failures == 1 || failures.is_multiple_of(FAILURE_LOG_EVERY) {
                        warn!(%error, failures, "topology refresh failed");
                    }
                }
            }
            let wait = if current.is_none() {
                STARTUP_RETRY
            } else {
                self.interval
            };
            let _ = glommio::timer::timeout(wait, async {
                self.wanted.wait().await;
                Ok(())
            })
            .await;
        }
    }

    /// Asks the known masters, then the seeds, until one answers.
    async fn fetch_any(&self, current: Option<&Topology>) -> Result<Topology, RefreshError> {
        let known = current.map(|t| t.masters.as_slice()).unwrap_or_default();
        let mut errors = Vec::new();
        for node in known.iter().chain(self.seeds.iter()) {
            match self.fetch(node).await {
                Ok(topology) if topology.covered_slots() > 0 => return Ok(topology),
                Ok(_) => errors.push((node.clone(), FetchError::NoSlots)),
                Err(error) => {
                    debug!(node, %error, "CLUSTER SLOTS failed");
                    errors.push((node.clone(), error));
                }
            }
        }
        Err(RefreshError(errors))
    }

    /// Reads `CLUSTER SLOTS` from one node, bounded by the timeout.
    async fn fetch(&self, node: &str) -> Result<Topology, FetchError> {
        let work = async {
            let stream = connect(&self.uring, node, self.timeout).await?;
            stream.write_all(CLUSTER_SLOTS).await?;
            let mut buf = BytesMut::new();
            loop {
                let grow = buf.len().max(READ_SIZE);
                if stream.read_into(&mut buf, 0, grow).await? == 0 {
                    return Err(FetchError::Closed);
                }
                if let Some((value, _)) = parse_value(&buf)? {
                    return Ok(Topology::from_cluster_slots(&value, node)?);
                }
                if buf.len() > MAX_SLOTS_REPLY {
                    return Err(FetchError::TooLarge);
                }
            }
        };
        glommio::timer::timeout(self.timeout, async { Ok(work.await) })
            .await
            .map_err(|_| FetchError::TimedOut)?
    }
}
