//! The topology refresher: one task, on core 0, that owns the truth about the cluster layout.
//!
//! It asks a node for `CLUSTER SLOTS` at start, every `--refresh-interval`, and whenever a core
//! asks (after MOVED or a backend failure). At most one refresh runs at a time and requests
//! that arrive meanwhile are folded into the next one, with a short minimum gap, so a burst of
//! MOVED during a resharding costs a handful of refreshes, not thousands. A layout that differs
//! from the last one gets the next epoch and is handed to `publish`, which sends it to every
//! core; the refresher itself knows nothing of shards.
//!
//! Once, after the first layout, it also asks that node for `COMMAND` and publishes the
//! commands the server has that percore's generated table lacks (a server newer than the
//! table), so they are refused with a reason instead of as unknown commands.

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
use crate::command::table::{missing_from_table, GENERATED_FROM};
use crate::config::Config;
use crate::error::ReplyError;
use crate::net::{connect_node, ConnectError, Uring};
use crate::resp::value::{parse_value, Value};
use crate::resp::{encode, Protocol};
use crate::sync::Signal;

/// Least time between two refreshes, so a storm of requests becomes one refresh.
const MIN_REFRESH_GAP: Duration = Duration::from_millis(100);
/// Delay between attempts while no node has answered yet.
const STARTUP_RETRY: Duration = Duration::from_millis(250);
/// Largest reply accepted (CLUSTER SLOTS of a 1000-node cluster is well under 1 MiB,
/// COMMAND of Redis 7 about 100 KiB).
const MAX_REPLY: usize = 16 * 1024 * 1024;
/// Bytes a read of the reply asks for at least.
const READ_SIZE: usize = 16 * 1024;
/// During an outage, one failed refresh in this many is logged at warn level.
const FAILURE_LOG_EVERY: u32 = 20;

/// The request for the layout.
const CLUSTER_SLOTS: &[u8] = b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
/// The request for the server's commands.
const COMMAND: &[u8] = b"*1\r\n$7\r\nCOMMAND\r\n";

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
    /// The reply grew past [`MAX_REPLY`].
    #[error("reply too large")]
    TooLarge,
    /// The node refused percore's credentials.
    #[error("refused percore's credentials: {0}")]
    Rejected(String),
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

/// What the refresher tells the cores.
pub enum Update {
    /// A new layout.
    Topology(Arc<Topology>),
    /// Commands (`name` or `container|sub`) the cluster's server has and the table lacks.
    NewerCommands(Arc<[String]>),
    /// No layout yet, and why: every node asked failed (so clients can be told).
    Unreachable(Arc<str>),
}

/// What the refresher needs: where to ask, how long to wait, and when to ask again.
pub struct Refresher {
    /// The pool's name, for log lines.
    pub pool: Rc<str>,
    /// The core's socket ring.
    pub uring: Rc<Uring>,
    /// The pool's configuration now, read at every refresh, so a reload's seeds, timeout,
    /// interval, credentials and TLS are the next refresh's: the seeds are the nodes asked
    /// when none of the known masters answers; the backend timeout bounds one node's answer
    /// (connect included); the refresh interval is the background period.
    pub config: Box<dyn Fn() -> Rc<Config>>,
    /// Notified by the cores that want a refresh now.
    pub wanted: Rc<Signal>,
}

impl Refresher {
    /// Runs forever, handing every new layout (and once the newer commands) to `publish`.
    pub async fn run<F, Fut>(self, mut publish: F)
    where
        F: FnMut(Update) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut current: Option<Topology> = None;
        let mut epoch = 0;
        let mut last_refresh = Instant::now() - MIN_REFRESH_GAP;
        let mut failures = 0u32;
        // The last failure told to the cores while there is no layout (told again on change).
        let mut last_error: Option<String> = None;
        loop {
            let since = last_refresh.elapsed();
            if since < MIN_REFRESH_GAP {
                glommio::timer::sleep(MIN_REFRESH_GAP - since).await;
            }
            last_refresh = Instant::now();
            let config = (self.config)();
            match self.fetch_any(&config, current.as_ref()).await {
                Ok(mut topology) => {
                    failures = 0;
                    if current.as_ref().is_none_or(|c| !c.same_layout(&topology)) {
                        epoch += 1;
                        topology.epoch = epoch;
                        info!(
                            pool = &*self.pool,
                            epoch,
                            masters = topology.masters.len(),
                            covered_slots = topology.covered_slots(),
                            "new cluster topology"
                        );
                        publish(Update::Topology(Arc::new(topology.clone()))).await;
                        if current.is_none() {
                            self.publish_newer_commands(&config, &topology, &mut publish)
                                .await;
                        }
                        current = Some(topology);
                    }
                }
                Err(error) => {
                    failures += 1;
                    if current.is_none() {
                        let text = error.to_string();
                        if last_error.as_deref() != Some(text.as_str()) {
                            publish(Update::Unreachable(Arc::from(text.as_str()))).await;
                            last_error = Some(text);
                        }
                    }
                    // Loud on the first failure, quieter while it persists.
                    if failures == 1 || failures.is_multiple_of(FAILURE_LOG_EVERY) {
                        warn!(pool = &*self.pool, %error, failures, "topology refresh failed");
                    }
                }
            }
            let wait = if current.is_none() {
                STARTUP_RETRY
            } else {
                config.refresh_interval
            };
            drop(config);
            let _ = glommio::timer::timeout(wait, async {
                self.wanted.wait().await;
                Ok(())
            })
            .await;
        }
    }

    /// Asks the known masters, then the seeds, until one answers.
    async fn fetch_any(
        &self,
        config: &Config,
        current: Option<&Topology>,
    ) -> Result<Topology, RefreshError> {
        let known = current.map(|t| t.masters.as_slice()).unwrap_or_default();
        let mut errors = Vec::new();
        for node in known.iter().chain(config.seeds.iter()) {
            match self.fetch(config, node).await {
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

    /// Reads `CLUSTER SLOTS` from one node.
    async fn fetch(&self, config: &Config, node: &str) -> Result<Topology, FetchError> {
        let reply = self.ask(config, node, CLUSTER_SLOTS).await?;
        Ok(Topology::from_cluster_slots(&reply, node)?)
    }

    /// Asks a master of `topology` for its commands and publishes, if there are any, those
    /// the table lacks. A failure only costs the better error text, so it is logged and left.
    async fn publish_newer_commands<F, Fut>(
        &self,
        config: &Config,
        topology: &Topology,
        publish: &mut F,
    ) where
        F: FnMut(Update) -> Fut,
        Fut: Future<Output = ()>,
    {
        let Some(node) = topology.masters.first() else {
            return;
        };
        let reply = match self.ask(config, node, COMMAND).await {
            Ok(reply) => reply,
            Err(error) => return debug!(node, %error, "COMMAND failed"),
        };
        let newer = missing_from_table(command_names(&reply).iter().map(String::as_str));
        if newer.is_empty() {
            return;
        }
        warn!(
            node,
            table = GENERATED_FROM,
            commands = newer.join(" "),
            "the cluster's redis-server has commands percore's table lacks; they are refused \
             until the table is regenerated from that server"
        );
        publish(Update::NewerCommands(newer.into())).await;
    }

    /// Sends `request` to `node` (after AUTH when there are credentials) and reads its reply,
    /// bounded by the timeout.
    async fn ask(&self, config: &Config, node: &str, request: &[u8]) -> Result<Value, FetchError> {
        let timeout = config.backend_timeout;
        let work = async {
            let tls = config.backend_tls.as_ref();
            let stream = connect_node(&self.uring, node, timeout, tls).await?;
            let mut wire = BytesMut::new();
            let auth = config.backend_auth.as_ref();
            let credentials = auth.map(|a| (a.user.as_deref(), a.password.as_str()));
            let authenticating = encode::handshake(&mut wire, Protocol::Resp2, credentials);
            wire.extend_from_slice(request);
            stream.write_all(&wire).await?;
            let mut buf = BytesMut::new();
            let mut replies_left = 1 + usize::from(authenticating);
            loop {
                let grow = buf.len().max(READ_SIZE);
                if stream.read_into(&mut buf, 0, grow).await? == 0 {
                    return Err(FetchError::Closed);
                }
                while let Some((value, len)) = parse_value(&buf)? {
                    let _ = buf.split_to(len);
                    replies_left -= 1;
                    if let Value::Error(text) = &value {
                        if replies_left > 0 {
                            let text = String::from_utf8_lossy(text).into_owned();
                            return Err(FetchError::Rejected(text));
                        }
                    }
                    if replies_left == 0 {
                        return Ok(value);
                    }
                }
                if buf.len() > MAX_REPLY {
                    return Err(FetchError::TooLarge);
                }
            }
        };
        glommio::timer::timeout(timeout, async { Ok(work.await) })
            .await
            .map_err(|_| FetchError::TimedOut)?
    }
}

/// Every command and subcommand name (`container|sub`) in a `COMMAND` reply.
fn command_names(reply: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for entry in reply.as_array().unwrap_or_default() {
        let Some(fields) = entry.as_array() else {
            continue;
        };
        if let Some(name) = fields.first().and_then(Value::as_bytes) {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
        // Subcommands are full COMMAND entries themselves, named `container|sub`.
        for sub in fields.get(9).and_then(Value::as_array).unwrap_or_default() {
            if let Some(name) = sub.as_array().and_then(|f| f.first()?.as_bytes()) {
                names.push(String::from_utf8_lossy(name).into_owned());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Some(s.as_bytes().to_vec()))
    }

    /// A `COMMAND` entry: name, then the nine fields Redis 7 sends, subcommands last.
    fn entry(name: &str, subcommands: Vec<Value>) -> Value {
        let mut fields = vec![bulk(name), Value::Integer(-2)];
        fields.extend((0..7).map(|_| Value::Array(Some(vec![]))));
        fields.push(Value::Array(Some(subcommands)));
        Value::Array(Some(fields))
    }

    #[test]
    fn names_of_commands_and_subcommands() {
        let reply = Value::Array(Some(vec![
            entry("get", vec![]),
            entry("client", vec![entry("client|no-touch", vec![])]),
        ]));
        let names = command_names(&reply);
        assert_eq!(names, ["get", "client", "client|no-touch"]);
        let newer = missing_from_table(names.iter().map(String::as_str));
        assert_eq!(newer, ["client|no-touch"]);
    }
}
