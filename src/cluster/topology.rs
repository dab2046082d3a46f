//! The cluster's layout: which master serves each slot, as read from `CLUSTER SLOTS`.
//!
//! A [`Topology`] is immutable once built. The refresher on core 0 builds one, gives it the next
//! epoch number and sends it to every core inside an `Arc`; each core turns it into its own
//! local routing table (see `shard::routing`) and never touches the `Arc` per request.

use crate::cluster::slot::{Slot, SLOT_COUNT};
use crate::resp::value::Value;

/// Marks a slot no master serves.
pub const UNASSIGNED: u16 = u16::MAX;

/// One layout of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Increases by one each time the refresher publishes a changed layout.
    pub epoch: u64,
    /// `host:port` of each master; a slot entry is an index into this list.
    pub masters: Vec<String>,
    /// Master index serving each slot, or [`UNASSIGNED`].
    pub slots: Box<[u16]>,
}

impl Topology {
    /// Builds a topology from a `CLUSTER SLOTS` reply given by the node at `asked`
    /// (used to fill in an empty host in the reply).
    pub fn from_cluster_slots(reply: &Value, asked: &str) -> Result<Topology, String> {
        let ranges = reply
            .as_array()
            .ok_or_else(|| format!("CLUSTER SLOTS from {asked} is not an array: {reply:?}"))?;
        let asked_host = asked.rsplit_once(':').map_or(asked, |(host, _)| host);
        let mut topology = Topology {
            epoch: 0,
            masters: Vec::new(),
            slots: vec![UNASSIGNED; SLOT_COUNT].into_boxed_slice(),
        };
        for range in ranges {
            let fields = range
                .as_array()
                .filter(|f| f.len() >= 3)
                .ok_or("bad slot range")?;
            let (Some(first), Some(last)) = (fields[0].as_int(), fields[1].as_int()) else {
                return Err("slot range bounds are not integers".into());
            };
            let master = fields[2]
                .as_array()
                .filter(|m| m.len() >= 2)
                .ok_or("bad master")?;
            let host = master[0].as_bytes().ok_or("master host is not a string")?;
            let port = master[1].as_int().ok_or("master port is not an integer")?;
            let host = match std::str::from_utf8(host) {
                Ok("") => asked_host,
                Ok("?") => continue, // endpoint unknown to that node: skip, refresh again later
                Ok(host) => host,
                Err(_) => return Err("master host is not UTF-8".into()),
            };
            let addr = format!("{host}:{port}");
            let index = match topology.masters.iter().position(|m| *m == addr) {
                Some(index) => index,
                None => {
                    topology.masters.push(addr);
                    topology.masters.len() - 1
                }
            };
            let (Some(first), Some(last)) = (slot_bound(first), slot_bound(last)) else {
                return Err(format!("slot range {first}-{last} out of bounds"));
            };
            for slot in &mut topology.slots[first.index()..=last.index()] {
                *slot = index as u16;
            }
        }
        Ok(topology)
    }

    /// The master serving `slot`, if any.
    pub fn master_for(&self, slot: Slot) -> Option<&str> {
        let index = self.slots[slot.index()];
        self.masters.get(usize::from(index)).map(String::as_str)
    }

    /// How many slots have a master.
    pub fn covered_slots(&self) -> usize {
        self.slots.iter().filter(|&&s| s != UNASSIGNED).count()
    }

    /// True when both send every slot to the same master address (epochs aside).
    pub fn same_layout(&self, other: &Topology) -> bool {
        self.slots.iter().zip(other.slots.iter()).all(|(a, b)| {
            let a = self.masters.get(usize::from(*a));
            let b = other.masters.get(usize::from(*b));
            a == b
        })
    }
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
        assert_eq!(
            topology.master_for(Slot::new(5461).unwrap()),
            Some("127.0.0.1:7001")
        );
        assert!(topology.same_layout(&topology.clone()));
    }

    #[test]
    fn rejects_bad_replies() {
        assert!(Topology::from_cluster_slots(&Value::Integer(1), "a:1").is_err());
        let reply = Value::Array(Some(vec![range(0, 16384, "h", 1)]));
        assert!(Topology::from_cluster_slots(&reply, "a:1").is_err());
    }
}
