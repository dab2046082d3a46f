//! How a core takes part in the control plane: it answers the messages other cores send it
//! (a new topology, a refresh request, a stats request), and on the refresher core it runs
//! the refresher and publishes each of its updates to every core, itself included.
//!
//! The mesh and the refresher know nothing of shards; this is where a shard plugs into them.

use std::rc::Rc;
use std::sync::Arc;

use glommio::channels::channel_mesh::Receivers;
use tracing::{debug, warn};

use crate::control::mesh::{Answer, Message, Notice, Question};
use crate::control::refresh::{Refresher, Update};
use crate::control::sentinel::Watcher;

use std::time::Instant;

use bytes::Bytes;

use crate::cluster::slot::Slot;
use crate::config::SentinelConfig;
use crate::control::admin::{ConfigView, ProxyView};
use crate::metrics::CoreStats;
use crate::resp::Protocol;

use super::backend::Outbound;
use super::monitor;
use super::pause::Pause;
use super::pool::Node;
use super::reply_to::{ReplyTo, ReplyWaiter};
use super::{clients, Shard};

/// Spawns one task per peer that handles the messages it sends.
pub(super) fn spawn_receivers(shard: &Rc<Shard>, mut receivers: Receivers<Message>) {
    for (peer, receiver) in receivers.streams() {
        let task = glommio::spawn_local({
            let shard = shard.clone();
            async move {
                while let Some(message) = receiver.recv().await {
                    handle(&shard, message).await;
                }
                debug!(core = shard.id, peer, "mesh channel closed");
            }
        });
        shard.keep(task);
    }
}

async fn handle(shard: &Rc<Shard>, message: Message) {
    match message {
        Message::Topology(topology) => shard.apply_topology(&topology),
        Message::NewerCommands(names) => *shard.newer_commands.borrow_mut() = names,
        Message::Unreachable(error) => *shard.unreachable.borrow_mut() = Some(error),
        Message::RefreshRequest => shard.refresh_wanted.notify(),
        Message::Ask { from, id, question } => {
            let answer = answer(shard, question);
            let core = shard.id;
            shard
                .mesh
                .send(from, Message::Answer { id, core, answer })
                .await;
        }
        Message::Answer { id, core, answer } => shard.mesh.deliver(id, core, answer),
        Message::MonitorLines { lines, count } => monitor::deliver(shard, lines, count),
    }
}

/// This core's answer to a gather's question.
pub(super) fn answer(shard: &Rc<Shard>, question: Question) -> Answer {
    match question {
        Question::Stats { reset } => Answer::Stats(Box::new(shard.stats(reset))),
        Question::ClientList(filter) => Answer::Text(clients::list(shard, &filter)),
        Question::ClientKill(filter) => Answer::Count(clients::kill(shard, &filter)),
        Question::BlockedOn(id) => {
            Answer::BlockedOn(shard.client(id).and_then(|c| c.session.blocked_on()))
        }
        Question::Heed(notice) => {
            heed(shard, notice);
            Answer::Done
        }
        Question::Pubsub(question) => shard.pubsub.answer(&question),
        Question::Slowlog { count } => Answer::Slowlog(shard.slowlog.newest(count)),
        Question::SlowlogLen => Answer::Count(shard.slowlog.len() as u64),
        Question::SlowlogReset => {
            shard.slowlog.reset();
            Answer::Done
        }
        Question::Monitors(update) => {
            monitor::apply(shard, update);
            Answer::Done
        }
        // Asked on the control mesh (`shard::pools`), never a pool's.
        Question::Reload => Answer::Done,
    }
}

/// Acts on a notice.
fn heed(shard: &Rc<Shard>, notice: Notice) {
    match notice {
        Notice::ResetStats => {
            shard.metrics.reset();
            shard.pool.reset_stats();
        }
        Notice::Pause { until, all } => {
            let pause = Pause { until, all };
            let merged = shard.pause.get().map_or(pause, |old| old.merge(pause));
            shard.pause.set(Some(merged));
        }
        Notice::Unpause => shard.pause.set(None),
        Notice::Peers(live) => super::cluster_view::adopt(shard, &live),
        Notice::Monitors(update) => monitor::apply(shard, update),
        Notice::Servers(topology) => shard.follow_servers(&topology),
        Notice::Slowlog {
            slower_than,
            max_len,
        } => shard.slowlog().configure(slower_than, max_len),
        Notice::Eject { server, until } => super::eject::heed(shard, server, until),
        // Sent on the control mesh (`shard::pools`), never a pool's.
        Notice::Config(_) => {}
        Notice::Replicas(verdicts) => super::replica::heed(shard, verdicts),
    }
}

/// Starts the topology refresher on this core.
pub(super) fn spawn_refresher(shard: &Rc<Shard>) {
    let weak = Rc::downgrade(shard);
    let refresher = Refresher {
        pool: shard.name.clone(),
        uring: shard.uring.clone(),
        // Weak: the refresher does not keep a removed pool's shard alive; it ends with it.
        config: Box::new(move || weak.upgrade().map_or_else(Default::default, |s| s.config())),
        wanted: shard.refresh_wanted.clone(),
    };
    super::replica_watch::spawn(shard);
    let task = glommio::spawn_local({
        let shard = shard.clone();
        async move {
            refresher
                .run(|update| {
                    let shard = shard.clone();
                    async move { publish(&shard, update).await }
                })
                .await
        }
    });
    shard.keep(task);
}

/// Starts the Sentinel watcher of this core's pool (a static pool with `sentinels:`). Its
/// layouts go to every core as [`Notice::Servers`], so it knows when each has switched.
pub(super) fn spawn_sentinel_watcher(shard: &Rc<Shard>, sentinel: SentinelConfig) {
    let config = shard.config();
    let watcher = Watcher::new(
        shard.uring.clone(),
        Rc::new(sentinel),
        config.backend_timeout,
        config.refresh_interval,
        shard.refresh_wanted.clone(),
    );
    let task = glommio::spawn_local({
        let shard = shard.clone();
        async move {
            watcher
                .run(|update| {
                    let shard = shard.clone();
                    async move {
                        match update {
                            Update::Topology(topology) => {
                                let epoch = topology.epoch;
                                shard.tell_every_core(Notice::Servers(topology)).await;
                                debug!(epoch, "every core follows the Sentinel pool's new layout");
                            }
                            other => publish(&shard, other).await,
                        }
                    }
                })
                .await
        }
    });
    shard.keep(task);
}

/// Sends the refresher's update to every core, this one included.
async fn publish(shard: &Rc<Shard>, update: Update) {
    for core in 0..shard.mesh.cores() {
        let message = match &update {
            Update::Topology(topology) => Message::Topology(Arc::clone(topology)),
            Update::NewerCommands(names) => Message::NewerCommands(Arc::clone(names)),
            Update::Unreachable(error) => Message::Unreachable(Arc::clone(error)),
        };
        if core == shard.id {
            handle(shard, message).await;
        } else if !shard.mesh.send(core, message).await {
            warn!(core, "could not send the refresher's update to a core");
        }
    }
}

/// The control-plane side of a shard: its stats, gathers and notices over the mesh, the
/// requests it sends on its own behalf, and its view for the admin reports.
impl Shard {
    /// Sends `request` to `node` on the proxy's own behalf and waits for the reply (an error
    /// reply if the node fails; bounded by `--backend-timeout`).
    pub(super) async fn ask(
        self: &Rc<Self>,
        node: &Node,
        request: Bytes,
        protocol: Protocol,
    ) -> Bytes {
        self.send_for_reply(node, request, protocol).reply().await
    }

    /// Sends `request` to `node` on the proxy's own behalf; the reply arrives in the waiter.
    pub(super) fn send_for_reply(
        self: &Rc<Self>,
        node: &Node,
        request: Bytes,
        protocol: Protocol,
    ) -> Rc<ReplyWaiter> {
        let waiter = Rc::new(ReplyWaiter::default());
        let reply_to = ReplyTo::Waiter(waiter.clone());
        node.send(
            self,
            Outbound::new(request, reply_to, None, protocol, Instant::now()),
        );
        waiter
    }

    /// Sends `request` to every master at once and waits for all the replies, each with the
    /// master's address, in slot order.
    pub(super) async fn ask_masters(
        self: &Rc<Self>,
        request: Bytes,
        protocol: Protocol,
    ) -> Vec<(Rc<str>, Bytes)> {
        let masters = self.masters();
        // All go out at once; waiting for them in turn then takes as long as the slowest.
        let waiters: Vec<_> = masters
            .iter()
            .map(|node| self.send_for_reply(node, request.clone(), protocol))
            .collect();
        let mut replies = Vec::with_capacity(masters.len());
        for (node, waiter) in masters.iter().zip(waiters) {
            replies.push((node.addr.clone(), waiter.reply().await));
        }
        replies
    }

    /// A snapshot of this core's stats; resets its latency histogram after if asked.
    pub(super) fn stats(&self, reset_latency: bool) -> CoreStats {
        let epoch = self.slot_map.borrow().epoch();
        let mut stats = self.metrics.snapshot(self.id, epoch, self.uring.stats());
        stats.monitors = self.monitors.fed();
        stats.servers = self.pool.server_stats();
        stats.serving = self.serving.get();
        stats.config_epoch = self.core.epoch().epoch;
        if let Some(writes) = &self.background_writes {
            stats.background = writes.stats();
        }
        stats.reads = self.read_stats();
        self.pubsub.stats(&mut stats.pubsub);
        if reset_latency {
            self.metrics.reset_latency();
        }
        stats
    }

    /// Every core's answer to `question`, this one's first, gathered over the mesh.
    pub(super) async fn gather(self: &Rc<Self>, question: Question) -> Vec<Answer> {
        let local = answer(self, question.clone());
        self.mesh.gather(local, question).await
    }

    /// Has every core act on `notice`; returns once they all have (or the gather timed out).
    pub(super) async fn tell_every_core(self: &Rc<Self>, notice: Notice) {
        self.gather(Question::Heed(notice)).await;
    }

    /// Every core's stats, gathered over the mesh.
    pub(super) async fn gather_stats(self: &Rc<Self>, reset_latency: bool) -> Vec<CoreStats> {
        let question = Question::Stats {
            reset: reset_latency,
        };
        let answers = self.gather(question).await;
        answers
            .into_iter()
            .filter_map(|answer| match answer {
                Answer::Stats(stats) => Some(*stats),
                _ => None,
            })
            .collect()
    }

    /// What the admin reports show about the proxy, from this core's point of view.
    pub(super) fn admin_view(&self) -> ProxyView {
        let map = self.slot_map.borrow();
        let config = self.config();
        let epoch = self.core.epoch();
        ProxyView {
            config: ConfigView {
                epoch: epoch.epoch,
                loaded_at: self.core.loaded_at_secs(),
                file: epoch.file,
                reload_failures: super::reload::reload_failures(),
            },
            core: self.id,
            threads: config.threads,
            pinned: config.pin,
            uptime: self.started.elapsed(),
            listen: config.listen.clone(),
            epoch: map.epoch(),
            masters: map.masters().iter().map(|node| node.addr.clone()).collect(),
            pool: super::eject::pool_view(self),
            servers: config
                .servers
                .iter()
                .flat_map(|servers| {
                    servers.specs.iter().enumerate().map(|(index, spec)| {
                        let slot = u16::try_from(index).ok().and_then(Slot::new);
                        let node = slot.and_then(|slot| map.node_for(slot));
                        let name = spec.name().unwrap_or(spec.addr()).to_string();
                        (name, node.map(|node| node.addr.clone()))
                    })
                })
                .collect(),
            async_writes: self.config().sidecar.async_writes,
        }
    }
}
