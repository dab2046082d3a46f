//! This core's replica of the slot map: slot -> master -> this core's connections to it, and
//! each master's replicas (for replica reads).
//!
//! Built from each topology the refresher publishes, and patched in place by MOVED so the
//! core routes correctly at once without waiting for the next refresh. Only this core reads
//! or writes it, so a lookup is two array indexes and no synchronisation.

use std::rc::Rc;

use crate::cluster::slot::{Slot, SLOT_COUNT};
use crate::cluster::topology::UNASSIGNED;

use super::pool::Node;
use super::replica::ReplicaSet;

/// Slot map replica of one core.
pub struct SlotMap {
    /// Epoch of the topology this was built from (0: none yet).
    epoch: u64,
    /// Index into `nodes` per slot, or [`UNASSIGNED`].
    slots: Box<[u16]>,
    /// Masters, including any learned from MOVED since the last topology.
    nodes: Vec<Rc<Node>>,
    /// How many of `nodes` came from the topology (the rest from MOVED).
    masters: usize,
    /// The replicas of each topology master, by its index in `nodes` (none for the masters
    /// learned from MOVED): what replica reads choose from.
    replicas: Vec<Rc<ReplicaSet>>,
}

impl Default for SlotMap {
    fn default() -> Self {
        SlotMap {
            epoch: 0,
            slots: vec![UNASSIGNED; SLOT_COUNT].into_boxed_slice(),
            nodes: Vec::new(),
            masters: 0,
            replicas: Vec::new(),
        }
    }
}

impl SlotMap {
    /// A slot map for a topology's slots and its masters' nodes (in topology order).
    pub fn new(epoch: u64, slots: Box<[u16]>, nodes: Vec<Rc<Node>>) -> Self {
        let masters = nodes.len();
        SlotMap {
            epoch,
            slots,
            nodes,
            masters,
            replicas: Vec::new(),
        }
    }

    /// This map, with the replicas of each of its masters (in topology order).
    pub fn with_replicas(mut self, replicas: Vec<Rc<ReplicaSet>>) -> Self {
        self.replicas = replicas;
        self
    }

    /// The replicas of the master serving `slot`, if it has any this map knows of.
    #[inline]
    pub fn replicas_for(&self, slot: Slot) -> Option<&Rc<ReplicaSet>> {
        self.replicas.get(usize::from(self.slots[slot.index()]))
    }

    /// Each topology master with its replicas.
    pub fn replica_sets(&self) -> impl Iterator<Item = (&Rc<Node>, &Rc<ReplicaSet>)> {
        self.nodes.iter().zip(&self.replicas)
    }

    /// The first and last slot of the run of slots around `slot` that one master serves
    /// (for an error naming them).
    pub fn range_of(&self, slot: Slot) -> (usize, usize) {
        let at = slot.index();
        let owner = self.slots[at];
        let first = self.slots[..at]
            .iter()
            .rposition(|&s| s != owner)
            .map_or(0, |i| i + 1);
        let last = self.slots[at..]
            .iter()
            .position(|&s| s != owner)
            .map_or(self.slots.len() - 1, |i| at + i - 1);
        (first, last)
    }

    /// Epoch of the topology this was built from (0: none yet).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The master serving `slot`.
    pub fn node_for(&self, slot: Slot) -> Option<&Rc<Node>> {
        self.nodes.get(usize::from(self.slots[slot.index()]))
    }

    /// Each slot's master, as an index (the same for every slot of one master), or
    /// [`UNASSIGNED`]: what SCAN orders the masters by.
    pub fn owners(&self) -> &[u16] {
        &self.slots
    }

    /// Some master, for keyless commands.
    pub fn any_node(&self) -> Option<&Rc<Node>> {
        self.nodes.first()
    }

    /// Every master of the topology, for commands sent to all.
    pub fn masters(&self) -> Vec<Rc<Node>> {
        let mut seen: Vec<Rc<Node>> = Vec::with_capacity(self.masters);
        for &index in self.slots.iter() {
            if let Some(node) = self.nodes.get(usize::from(index)) {
                if !seen.iter().any(|n| Rc::ptr_eq(n, node)) {
                    seen.push(node.clone());
                }
            }
        }
        seen
    }

    /// How many slots have a master.
    pub fn covered_slots(&self) -> usize {
        let nodes = self.nodes.len();
        self.slots
            .iter()
            .filter(|&&s| usize::from(s) < nodes)
            .count()
    }

    /// Points `slot` at `node` (after MOVED).
    pub fn patch(&mut self, slot: Slot, node: Rc<Node>) {
        let index = match self.nodes.iter().position(|n| Rc::ptr_eq(n, &node)) {
            Some(index) => index,
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        self.slots[slot.index()] = index as u16;
    }

    /// True if `addr` serves at least one slot.
    pub fn serves(&self, addr: &str) -> bool {
        self.nodes
            .iter()
            .position(|n| &*n.addr == addr)
            .is_some_and(|index| self.slots.iter().any(|&s| usize::from(s) == index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_of_slots_around_a_slot() {
        let mut slots = vec![UNASSIGNED; SLOT_COUNT];
        slots[..100].fill(0);
        slots[100..200].fill(1);
        slots[200..].fill(0);
        let map = SlotMap::new(1, slots.into_boxed_slice(), Vec::new());
        let at = |slot| map.range_of(Slot::new(slot).unwrap());
        assert_eq!(at(0), (0, 99));
        assert_eq!(at(99), (0, 99));
        assert_eq!(at(150), (100, 199));
        assert_eq!(at(16383), (200, 16383));
        assert!(map.replicas_for(Slot::new(5).unwrap()).is_none());
    }
}
