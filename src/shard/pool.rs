//! The backend connections of this core to one master ([`Node`]), and the core's pool of
//! nodes by address.
//!
//! Nodes outlive topology changes: when a new topology arrives, masters that stay keep their
//! connections. A node is made on first use (from a topology or a MOVED/ASK naming a node not
//! seen before) and its connection tasks start at once.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use super::backend::{self, Backend};
use super::Shard;

/// This core's connections to one master.
pub struct Node {
    /// The master's `host:port`.
    pub addr: Rc<str>,
    /// `--backend-conns` connections, used round-robin.
    conns: Vec<Rc<Backend>>,
    next: Cell<usize>,
}

impl Node {
    /// The connection for the next request.
    pub fn pick(&self) -> &Rc<Backend> {
        let index = self.next.get();
        self.next.set(if index + 1 == self.conns.len() {
            0
        } else {
            index + 1
        });
        &self.conns[index]
    }
}

/// Nodes of this core by address.
#[derive(Default)]
pub struct Pool {
    nodes: RefCell<HashMap<String, Rc<Node>>>,
}

impl Pool {
    /// The node for `addr`, made and connected if new.
    pub fn node(&self, shard: &Rc<Shard>, addr: &str) -> Rc<Node> {
        if let Some(node) = self.nodes.borrow().get(addr) {
            return node.clone();
        }
        let addr: Rc<str> = Rc::from(addr);
        let conns: Vec<Rc<Backend>> = (0..shard.config().backend_conns)
            .map(|_| Rc::new(Backend::new(addr.clone())))
            .collect();
        for conn in &conns {
            glommio::spawn_local(backend::run(shard.clone(), conn.clone())).detach();
        }
        let node = Rc::new(Node {
            addr: addr.clone(),
            conns,
            next: Cell::new(0),
        });
        self.nodes
            .borrow_mut()
            .insert(addr.to_string(), node.clone());
        node
    }

    /// Drops the node for `addr` (its connection tasks have ended).
    pub fn forget(&self, addr: &str) {
        self.nodes.borrow_mut().remove(addr);
    }
}
