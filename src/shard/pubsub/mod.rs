//! The core's pub/sub hub: every subscription of the core's clients, the few connections to
//! nodes that carry them ([`link`]), and the fan-out of each message to the clients that want
//! it.
//!
//! One link per node holds the union of what the core's clients need from that node:
//! - classic channels and patterns on one master, the core's *primary* (a cluster delivers
//!   every PUBLISH on every node, so one is enough); the cores pick different masters;
//! - sharded channels on their slot's master, followed when the slot moves;
//! - keyspace-notification channels, and patterns that could match them, on every master,
//!   since each node publishes those for its own keys only. A pattern held on a master that is
//!   not the primary delivers only keyspace notifications from there, so a PUBLISH matching it
//!   is still delivered once.
//!
//! A client's SUBSCRIBE is confirmed once every link it needs has confirmed the name (at once
//! when they already hold it), so a message published after the client saw its confirmation
//! reaches it. Messages are fanned out to each subscriber's own queue
//! ([`subscriber::Subscriber`]); the hub never waits for a client.
//!
//! [`Hub::mark_dirty`] has a small task compare what the links hold with what the core's
//! subscriptions and the topology ask for, after a topology change, a reconnect or a moved
//! slot, and fix the difference.

mod command;
mod link;
mod query;
pub(super) mod subscriber;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::cluster::slot::Slot;
use crate::command::glob;
use crate::command::pubsub::{is_keyspace, on_every_master, Kind};
use crate::control::mesh::{Answer, HeldName, NameFilter, PubsubQuestion};
use crate::metrics::{Counters, PubsubStats};
use crate::resp::push::as_push;
use crate::resp::Protocol;
use crate::sync::Signal;

use super::client::ClientState;
use super::Shard;
use link::Link;

pub use command::{gate_resp2, publish, subscribe, unsubscribe};
pub use query::{counts, pubsub_command};

/// Least time between two reconciliations: a burst of slot moves or reconnects is handled in
/// one pass, and two nodes disagreeing about a slot cannot make the hub spin.
const RECONCILE_GAP: Duration = Duration::from_millis(10);
/// Wait before trying again a subscription a node refused while the cluster was down.
const RETRY_DELAY: Duration = Duration::from_millis(200);
/// MOVED replies one sharded subscription follows at once; past it, it waits for the next
/// reconciliation (the cluster is mid-move and its nodes disagree).
const MAX_FOLLOWS: u8 = 8;

/// A client's subscription confirmation, waiting for the links it needs. It is written when
/// the last of them has confirmed (or failed: the hub subscribes again by itself).
pub struct Confirm {
    client: Rc<ClientState>,
    /// The client's reply place.
    seq: u64,
    reply: RefCell<Bytes>,
    /// Links still to confirm, plus one while the reply is being built.
    pending: Cell<usize>,
}

impl Confirm {
    fn new(client: Rc<ClientState>, seq: u64) -> Rc<Confirm> {
        Rc::new(Confirm {
            client,
            seq,
            reply: RefCell::new(Bytes::new()),
            pending: Cell::new(1),
        })
    }

    /// One more link to wait for.
    fn hold(&self) {
        self.pending.set(self.pending.get() + 1);
    }

    /// One fewer; the last sends the reply. Confirmations are pushes: Redis sends them even
    /// to a client that turned replies off.
    fn release(&self) {
        let left = self.pending.get().saturating_sub(1);
        self.pending.set(left);
        if left == 0 {
            self.client.complete_pushing(self.seq, self.reply.take());
        }
    }
}

/// The hub of one core.
#[derive(Default)]
pub struct Hub {
    /// The core's clients subscribed to each name, per kind ([`Kind::index`]).
    members: [RefCell<HashMap<Bytes, Vec<Rc<ClientState>>>>; 3],
    /// Links by node.
    links: RefCell<HashMap<Rc<str>, Rc<Link>>>,
    /// The master holding this core's classic channels and patterns.
    primary: RefCell<Option<Rc<str>>>,
    /// The masters' addresses and the topology epoch they are from.
    masters: RefCell<(u64, Vec<Rc<str>>)>,
    /// Links must be compared with what is wanted again.
    dirty: Cell<bool>,
    wake: Signal,
    /// The reconciling task has been started.
    started: Cell<bool>,
}

impl Hub {
    /// Whether the core has no subscription and no link: topology changes need no work.
    fn is_idle(&self) -> bool {
        self.links.borrow().is_empty() && self.members.iter().all(|m| m.borrow().is_empty())
    }

    /// `client` subscribed to `name`: it joins the members, and every node that must hold the
    /// name is asked to, `confirm` waiting for them.
    fn join(
        &self,
        shard: &Rc<Shard>,
        client: &Rc<ClientState>,
        kind: Kind,
        name: &Bytes,
        confirm: &Rc<Confirm>,
    ) {
        self.members[kind.index()]
            .borrow_mut()
            .entry(name.clone())
            .or_default()
            .push(client.clone());
        for addr in self.targets(shard, kind, name) {
            confirm.hold();
            let link = self.link(shard, &addr);
            link.hold_with(kind, name, vec![confirm.clone()], 0, None);
        }
    }

    /// `client` left `name`; the last member's leaving makes the links drop it.
    fn leave(&self, client: &ClientState, kind: Kind, name: &[u8]) {
        let emptied = {
            let mut members = self.members[kind.index()].borrow_mut();
            let Some(clients) = members.get_mut(name) else {
                return;
            };
            if let Some(at) = clients.iter().position(|c| std::ptr::eq(&**c, client)) {
                clients.swap_remove(at);
            }
            let emptied = clients.is_empty();
            if emptied {
                members.remove(name);
                if members.is_empty() {
                    members.shrink_to_fit();
                }
            }
            emptied
        };
        if emptied {
            let links: Vec<Rc<Link>> = self.links.borrow().values().cloned().collect();
            for link in links {
                link.release(kind, name);
            }
        }
    }

    /// Removes a client from everything it is subscribed to (it closed, or RESET).
    pub fn forget(&self, shard: &Shard, client: &ClientState) {
        let was_active = client.pubsub.is_active();
        for kind in Kind::ALL {
            for name in client.pubsub.names(kind) {
                self.leave(client, kind, &name);
            }
        }
        client.pubsub.clear();
        if was_active {
            let subscribers = &shard.counters().subscribers;
            subscribers.set(subscribers.get().saturating_sub(1));
        }
    }

    /// The nodes that must hold `name`.
    fn targets(&self, shard: &Shard, kind: Kind, name: &[u8]) -> Vec<Rc<str>> {
        if kind == Kind::Shard {
            let node = shard.node_for(Some(Slot::for_key(name)));
            return node.map(|node| node.addr.clone()).into_iter().collect();
        }
        if on_every_master(kind, name) {
            return self.master_addrs(shard);
        }
        self.primary(shard).into_iter().collect()
    }

    /// The masters of the current topology (cached per epoch: listing them walks the slots).
    fn master_addrs(&self, shard: &Shard) -> Vec<Rc<str>> {
        let epoch = shard.slot_map.borrow().epoch();
        let mut cached = self.masters.borrow_mut();
        if cached.0 != epoch || cached.1.is_empty() {
            let masters = shard.masters().iter().map(|n| n.addr.clone()).collect();
            *cached = (epoch, masters);
        }
        cached.1.clone()
    }

    /// The core's primary: kept while it is a master, else chosen so that the cores spread
    /// over the masters.
    fn primary(&self, shard: &Shard) -> Option<Rc<str>> {
        let masters = self.master_addrs(shard);
        let mut primary = self.primary.borrow_mut();
        if primary.as_ref().is_none_or(|p| !masters.contains(p)) {
            *primary = (!masters.is_empty()).then(|| masters[shard.id() % masters.len()].clone());
        }
        primary.clone()
    }

    /// The link to `addr`, made and started if there is none.
    fn link(&self, shard: &Rc<Shard>, addr: &Rc<str>) -> Rc<Link> {
        if let Some(link) = self.links.borrow().get(addr) {
            return link.clone();
        }
        let link = Rc::new(Link::new(addr.clone()));
        self.links.borrow_mut().insert(addr.clone(), link.clone());
        glommio::spawn_local(link::run(shard.clone(), link.clone())).detach();
        link
    }

    /// Drops a link whose task has ended.
    fn forget_link(&self, link: &Link) {
        let mut links = self.links.borrow_mut();
        if links
            .get(&link.addr)
            .is_some_and(|l| std::ptr::eq(&**l, link))
        {
            links.remove(&link.addr);
        }
    }

    /// Whether any subscription of the core must be held on `addr`.
    fn wants(&self, shard: &Shard, addr: &str) -> bool {
        Kind::ALL.iter().any(|&kind| {
            self.members[kind.index()]
                .borrow()
                .keys()
                .any(|name| self.targets(shard, kind, name).iter().any(|t| &**t == addr))
        })
    }

    /// A sharded channel must be subscribed on its slot's owner again (the slot moved, or a
    /// node answered MOVED), its waiting clients still waiting.
    fn follow_slot(
        &self,
        shard: &Rc<Shard>,
        name: &Bytes,
        waiters: Vec<Rc<Confirm>>,
        follows: u8,
        gap_since: Option<Instant>,
    ) {
        let wanted = self.members[Kind::Shard.index()]
            .borrow()
            .contains_key(name);
        let owner = self.targets(shard, Kind::Shard, name).pop();
        match owner {
            Some(addr) if wanted && follows <= MAX_FOLLOWS => {
                let link = self.link(shard, &addr);
                link.hold_with(Kind::Shard, name, waiters, follows, gap_since);
            }
            _ => {
                waiters.iter().for_each(|w| w.release());
                if wanted {
                    self.mark_dirty_later(shard);
                }
            }
        }
    }

    /// A new topology: subscriptions may have to move.
    pub fn topology_changed(&self, shard: &Rc<Shard>) {
        if !self.is_idle() {
            self.mark_dirty(shard);
        }
    }

    /// Asks for a reconciliation soon.
    fn mark_dirty(&self, shard: &Rc<Shard>) {
        self.dirty.set(true);
        if !self.started.replace(true) {
            shard.keep(glommio::spawn_local(reconcile_loop(shard.clone())));
        }
        self.wake.notify();
    }

    /// Asks for a reconciliation after [`RETRY_DELAY`].
    fn mark_dirty_later(&self, shard: &Rc<Shard>) {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(RETRY_DELAY).await;
            shard.pubsub.mark_dirty(&shard);
        })
        .detach();
    }

    /// Makes every link hold exactly what the core's subscriptions need from its node.
    fn reconcile(&self, shard: &Rc<Shard>) {
        let mut wanted: HashMap<Rc<str>, HashSet<(Kind, Bytes)>> = HashMap::new();
        for kind in Kind::ALL {
            for name in self.members[kind.index()].borrow().keys() {
                for addr in self.targets(shard, kind, name) {
                    wanted.entry(addr).or_default().insert((kind, name.clone()));
                }
            }
        }
        let links: Vec<Rc<Link>> = self.links.borrow().values().cloned().collect();
        for link in links.iter().filter(|link| link.is_open()) {
            let wants = wanted.get(&link.addr);
            for (kind, name) in link.held() {
                if !wants.is_some_and(|w| w.contains(&(kind, name.clone()))) {
                    link.release(kind, &name);
                }
            }
        }
        for (addr, names) in wanted {
            let link = self.link(shard, &addr);
            for (kind, name) in names {
                link.hold(kind, &name, None);
            }
        }
    }

    /// Fans a message out to the core's clients subscribed to `name` (the channel, or for a
    /// pattern message the pattern, which matched `channel`).
    fn deliver(
        &self,
        shard: &Shard,
        link: &Link,
        frame: &Bytes,
        kind: Kind,
        name: Option<&[u8]>,
        channel: Option<&[u8]>,
    ) {
        let counters = shard.counters();
        Counters::bump(&counters.pubsub_messages);
        let (Some(name), Some(channel)) = (name, channel) else {
            return;
        };
        let from_primary = self
            .primary
            .borrow()
            .as_ref()
            .is_some_and(|p| *p == link.addr);
        // A classic message reaches every node; only the primary's copy is delivered, but
        // keyspace notifications are each node's own.
        if kind != Kind::Shard && !from_primary && !is_keyspace(channel) {
            return;
        }
        let members = self.members[kind.index()].borrow();
        let Some(clients) = members.get(name) else {
            return;
        };
        let limit = &shard.config().pubsub_limit;
        let mut resp3: Option<Bytes> = None;
        for client in clients {
            let frame = match client.identity.protocol() {
                Protocol::Resp2 => frame.clone(),
                Protocol::Resp3 => resp3.get_or_insert_with(|| as_push(frame)).clone(),
            };
            match client.push_message(frame, limit) {
                Ok(true) => Counters::bump(&counters.pubsub_deliveries),
                Ok(false) => {}
                Err(_) => Counters::bump(&counters.pubsub_cut_off),
            }
        }
    }

    /// This core's figures for PROXY INFO (the counters are filled in by the caller).
    pub fn stats(&self, stats: &mut PubsubStats) {
        let len = |kind: Kind| self.members[kind.index()].borrow().len() as u64;
        stats.channels = len(Kind::Channel);
        stats.patterns = len(Kind::Pattern);
        stats.shard_channels = len(Kind::Shard);
        stats.links = self.links.borrow().len() as u64;
    }

    /// This core's answer to a pub/sub gather.
    pub fn answer(&self, question: &PubsubQuestion) -> Answer {
        match question {
            PubsubQuestion::Held { kind, filter } => Answer::Held(self.held(*kind, filter)),
            PubsubQuestion::Receivers {
                shard,
                channel,
                node,
            } => {
                let (clients, links) = self.receivers(*shard, channel, node);
                Answer::Receivers { clients, links }
            }
        }
    }

    /// The core's names of `kind` that `filter` selects, with their clients and the nodes
    /// whose links hold them.
    fn held(&self, kind: Kind, filter: &NameFilter) -> Vec<HeldName> {
        let members = self.members[kind.index()].borrow();
        let names: Vec<Vec<u8>> = match filter {
            NameFilter::All => members.keys().map(|n| n.to_vec()).collect(),
            NameFilter::Matching(pattern) => members
                .keys()
                .filter(|name| glob::matches(pattern, name))
                .map(|n| n.to_vec())
                .collect(),
            NameFilter::Named(names) => names.clone(),
        };
        let links = self.links.borrow();
        names
            .into_iter()
            .map(|name| HeldName {
                clients: members.get(&name[..]).map_or(0, |c| c.len() as u64),
                nodes: links
                    .values()
                    .filter(|link| link.holds(kind, &name))
                    .map(|link| link.addr.to_string())
                    .collect(),
                name,
            })
            .collect()
    }

    /// For a message on `channel` published at `node`: the core's clients that receive it,
    /// and the receivers `node` counts among this core's link's subscriptions.
    fn receivers(&self, shard: bool, channel: &[u8], node: &str) -> (u64, u64) {
        let links = self.links.borrow();
        let link = links.get(node);
        let count = |kind: Kind, name: &[u8]| {
            self.members[kind.index()]
                .borrow()
                .get(name)
                .map_or(0, |c| c.len() as u64)
        };
        if shard {
            let held = link.is_some_and(|l| l.holds(Kind::Shard, channel));
            return (count(Kind::Shard, channel), u64::from(held));
        }
        let patterns = self.members[Kind::Pattern.index()].borrow();
        let by_patterns: u64 = patterns
            .iter()
            .filter(|(pattern, _)| glob::matches(pattern, channel))
            .map(|(_, clients)| clients.len() as u64)
            .sum();
        let clients = count(Kind::Channel, channel) + by_patterns;
        let held = link.map_or(0, |link| {
            link.held()
                .iter()
                .filter(|(kind, name)| match kind {
                    Kind::Channel => &name[..] == channel,
                    Kind::Pattern => glob::matches(name, channel),
                    Kind::Shard => false,
                })
                .count() as u64
        });
        (clients, held)
    }
}

/// Reconciles whenever asked, at most once per [`RECONCILE_GAP`].
async fn reconcile_loop(shard: Rc<Shard>) {
    loop {
        shard.pubsub.wake.wait().await;
        if shard.pubsub.dirty.replace(false) {
            shard.pubsub.reconcile(&shard);
        }
        glommio::timer::sleep(RECONCILE_GAP).await;
    }
}
