//! The cluster's layout: which master serves each slot, and its replicas, as read from
//! `CLUSTER SLOTS`.
//!
//! A [`Topology`] is immutable once built. The refresher on core 0 builds one, gives it the next
//! epoch number and sends it to every core inside an `Arc`; each core turns it into its own
//! local routing table (see `shard::routing`) and never touches the `Arc` per request.

use thiserror::Error;

use crate::cluster::slot::{Slot, SLOT_COUNT};
use crate::resp::value::Value;

/// Marks a slot no master serves.
pub const UNASSIGNED: u16 = u16::MAX;

/// Why a `CLUSTER SLOTS` reply could not be read as a layout.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TopologyError {
    /// The reply is not an array (an error, or not a cluster node).
    #[error("CLUSTER SLOTS reply is not an array: {0}")]
    NotArray(String),
    /// A slot range entry is not `[first, last, [host, port, ...], ...]`.
    #[error("bad slot range entry")]
    BadRange,
    /// A range's master entry is not `[host, port, ...]` with a string host and integer port.
    #[error("bad master entry in a slot range")]
    BadMaster,
    /// A slot range with bounds outside 0..16383.
    #[error("slot range {0}-{1} out of bounds")]
    OutOfBounds(i64, i64),
}

/// One layout of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Increases by one each time the refresher publishes a changed layout.
    pub epoch: u64,
    /// `host:port` of each master; a slot entry is an index into this list.
    pub masters: Vec<String>,
    /// Master index serving each slot, or [`UNASSIGNED`].
    pub slots: Box<[u16]>,
    /// `host:port` of each master's replicas, by master index, as CLUSTER SLOTS lists them
    /// (it leaves out replicas the cluster marks failed); shorter than `masters` (or empty)
    /// where masters have none.
    pub replicas: Vec<Vec<String>>,
}

impl Topology {
    /// Builds a topology from a `CLUSTER SLOTS` reply given by the node at `asked`
    /// (used to fill in an empty host in the reply).
    pub fn from_cluster_slots(reply: &Value, asked: &str) -> Result<Topology, TopologyError> {
        let ranges = reply
            .as_array()
            .ok_or_else(|| TopologyError::NotArray(format!("{reply:?}")))?;
        let asked_host = asked.rsplit_once(':').map_or(asked, |(host, _)| host);
        let mut topology = Topology {
            epoch: 0,
            masters: Vec::new(),
            slots: vec![UNASSIGNED; SLOT_COUNT].into_boxed_slice(),
            replicas: Vec::new(),
        };
        for range in ranges {
            let fields = range
                .as_array()
                .filter(|f| f.len() >= 3)
                .ok_or(TopologyError::BadRange)?;
            let (Some(first), Some(last)) = (fields[0].as_int(), fields[1].as_int()) else {
                return Err(TopologyError::BadRange);
            };
            let master = fields[2]
                .as_array()
                .filter(|m| m.len() >= 2)
                .ok_or(TopologyError::BadMaster)?;
            let host = master[0].as_bytes().ok_or(TopologyError::BadMaster)?;
            let port = master[1].as_int().ok_or(TopologyError::BadMaster)?;
            let host = match std::str::from_utf8(host) {
                Ok("") => asked_host,
                Ok("?") => continue, // endpoint unknown to that node: skip, refresh again later
                Ok(host) => host,
                Err(_) => return Err(TopologyError::BadMaster),
            };
            let addr = format!("{host}:{port}");
            let index = match topology.masters.iter().position(|m| *m == addr) {
                Some(index) => index,
                None => {
                    topology.masters.push(addr);
                    topology.replicas.push(replicas(&fields[3..], asked_host));
                    topology.masters.len() - 1
                }
            };
            let (Some(first), Some(last)) = (slot_bound(first), slot_bound(last)) else {
                return Err(TopologyError::OutOfBounds(first, last));
            };
            for slot in &mut topology.slots[first.index()..=last.index()] {
                *slot = index as u16;
            }
        }
        Ok(topology)
    }

    /// The fixed layout of a static pool: server `i` serves token `i` (a key's token is its
    /// server's position on the pool's ring), and nothing else is served.
    pub fn of_servers(addrs: &[String]) -> Topology {
        Topology::of_live_servers(addrs, &vec![true; addrs.len()], 1)
    }

    /// A static pool's layout while some servers are ejected: live server `i` serves token
    /// `i`, an ejected one serves nothing and is no master (commands sent to every master
    /// leave it out, and its connections close). `live` has one entry per server; a missing
    /// entry counts as live.
    pub fn of_live_servers(addrs: &[String], live: &[bool], epoch: u64) -> Topology {
        let mut slots = vec![UNASSIGNED; SLOT_COUNT].into_boxed_slice();
        let mut masters = Vec::with_capacity(addrs.len());
        for (index, addr) in addrs.iter().enumerate().take(SLOT_COUNT) {
            if live.get(index).copied().unwrap_or(true) {
                slots[index] = masters.len() as u16;
                masters.push(addr.clone());
            }
        }
        Topology {
            epoch,
            masters,
            slots,
            replicas: Vec::new(),
        }
    }

    /// The layout of a static pool whose servers' addresses come from Sentinel, at `epoch`:
    /// server `i` serves token `i` at `addrs[i]`, and a server whose master is not found yet
    /// (`None`) serves nothing until it is.
    pub fn of_found_servers(addrs: &[Option<String>], epoch: u64) -> Topology {
        let mut slots = vec![UNASSIGNED; SLOT_COUNT].into_boxed_slice();
        let mut masters = Vec::with_capacity(addrs.len());
        for (slot, addr) in slots.iter_mut().zip(addrs) {
            if let Some(addr) = addr {
                *slot = masters.len() as u16;
                masters.push(addr.clone());
            }
        }
        Topology {
            epoch,
            masters,
            slots,
            replicas: Vec::new(),
        }
    }

    /// How many slots have a master.
    pub fn covered_slots(&self) -> usize {
        self.slots.iter().filter(|&&s| s != UNASSIGNED).count()
    }

    /// True when both send every slot to the same master address, with the same replicas
    /// (epochs aside).
    pub fn same_layout(&self, other: &Topology) -> bool {
        let same_slots = self.slots.iter().zip(other.slots.iter()).all(|(a, b)| {
            let a = self.masters.get(usize::from(*a));
            let b = other.masters.get(usize::from(*b));
            a == b
        });
        same_slots
            && self.masters.len() == other.masters.len()
            && (0..self.masters.len()).all(|index| {
                let addr = &self.masters[index];
                let there = other.masters.iter().position(|m| m == addr);
                there.is_some_and(|there| self.replicas_of(index) == other.replicas_of(there))
            })
    }

    /// The replicas of master `index` (none for a master without, or out of range).
    pub fn replicas_of(&self, index: usize) -> &[String] {
        self.replicas.get(index).map_or(&[], Vec::as_slice)
    }
}

/// The replicas of a CLUSTER SLOTS range: the `[host, port, ...]` entries after its master.
/// One whose endpoint its node does not know (`?`) or that is not an entry is left out; an
/// empty host is the asked node's, as for the master.
fn replicas(entries: &[Value], asked_host: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in entries {
        let Some(fields) = entry.as_array().filter(|f| f.len() >= 2) else {
            continue;
        };
        let host = fields[0]
            .as_bytes()
            .and_then(|h| std::str::from_utf8(h).ok());
        let (Some(host), Some(port)) = (host, fields[1].as_int()) else {
            continue;
        };
        let host = match host {
            "?" => continue,
            "" => asked_host,
            host => host,
        };
        found.push(format!("{host}:{port}"));
    }
    found
}

fn slot_bound(value: i64) -> Option<Slot> {
    u16::try_from(value).ok().and_then(Slot::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Some(s.as_bytes().to_vec()))
    }

    fn range(first: i64, last: i64, host: &str, port: i64) -> Value {
        Value::Array(Some(vec![
            Value::Integer(first),
            Value::Integer(last),
            Value::Array(Some(vec![bulk(host), Value::Integer(port), bulk("id")])),
        ]))
    }

    #[test]
    fn builds_from_cluster_slots() {
        let reply = Value::Array(Some(vec![
            range(0, 5460, "127.0.0.1", 7000),
            range(5461, 10922, "", 7001),
            range(10923, 16383, "127.0.0.1", 7002),
        ]));
        let topology = Topology::from_cluster_slots(&reply, "127.0.0.1:7000").unwrap();
        assert_eq!(
            topology.masters,
            ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]
        );
        assert_eq!(topology.covered_slots(), SLOT_COUNT);
        let owner = topology.slots[Slot::new(5461).unwrap().index()];
        assert_eq!(topology.masters[usize::from(owner)], "127.0.0.1:7001");
        assert!(topology.same_layout(&topology.clone()));
    }

    #[test]
    fn replicas_follow_their_master() {
        let replica = |host: &str, port| Value::Array(Some(vec![bulk(host), Value::Integer(port)]));
        let mut with_replicas = range(0, 8191, "h", 1);
        if let Value::Array(Some(fields)) = &mut with_replicas {
            fields.push(replica("h", 4));
            fields.push(replica("?", 5));
            fields.push(replica("", 6));
        }
        let reply = Value::Array(Some(vec![with_replicas, range(8192, 16383, "h", 2)]));
        let topology = Topology::from_cluster_slots(&reply, "a:1").unwrap();
        assert_eq!(topology.replicas_of(0), ["h:4", "a:6"]);
        assert!(topology.replicas_of(1).is_empty());
        assert!(topology.same_layout(&topology.clone()));
        let mut fewer = topology.clone();
        fewer.replicas[0].pop();
        assert!(!topology.same_layout(&fewer));
    }

    #[test]
    fn servers_found_by_sentinel_keep_their_tokens() {
        let addrs = [None, Some("h:2".to_string()), Some("h:3".to_string())];
        let topology = Topology::of_found_servers(&addrs, 7);
        assert_eq!((topology.epoch, topology.covered_slots()), (7, 2));
        assert_eq!(topology.slots[..4], [UNASSIGNED, 0, 1, UNASSIGNED]);
        assert_eq!(topology.masters, ["h:2", "h:3"]);
    }

    #[test]
    fn rejects_bad_replies() {
        assert!(Topology::from_cluster_slots(&Value::Integer(1), "a:1").is_err());
        let reply = Value::Array(Some(vec![range(0, 16384, "h", 1)]));
        assert_eq!(
            Topology::from_cluster_slots(&reply, "a:1"),
            Err(TopologyError::OutOfBounds(0, 16384))
        );
    }

    #[test]
    fn an_ejected_server_serves_no_token_and_is_no_master() {
        let addrs: Vec<String> = ["a:1", "b:2", "c:3"].map(String::from).to_vec();
        let all = Topology::of_servers(&addrs);
        assert_eq!(
            (all.epoch, all.masters.len(), all.covered_slots()),
            (1, 3, 3)
        );
        let live = Topology::of_live_servers(&addrs, &[true, false, true], 7);
        assert_eq!(live.epoch, 7);
        assert_eq!(live.masters, ["a:1", "c:3"]);
        assert_eq!(&live.slots[..3], &[0, UNASSIGNED, 1]);
        assert_eq!(live.covered_slots(), 2);
    }
}
