//! Cross-core messages: the only way cores affect each other.
//!
//! Cores are joined in a glommio channel mesh (one bounded single-producer channel per ordered
//! pair of cores). Three things travel on it, none of them per request:
//! - topology: the refresher on core 0 sends each new layout to every core;
//! - refresh requests: a core that saw MOVED or a backend failure asks core 0 to refresh;
//! - admin gathers: the core serving `PROXY INFO`/`PROXY LATENCY` asks every core for a stats
//!   snapshot (or to reset its histogram) and merges the answers.
//!
//! This module is the transport: it sends and keeps track of gathers. What a core does with a
//! message it receives is the shard's business (`shard::control`), so nothing here reaches
//! back into a shard.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::channel_mesh::Senders;

use crate::cluster::topology::Topology;
use crate::metrics::CoreStats;
use crate::sync::Signal;

/// Messages in each channel before a sender waits. Messages are rare (topology changes,
/// refresh requests, admin commands), so a small bound is plenty.
pub const CHANNEL_CAPACITY: usize = 64;

/// How long an admin gather waits for the other cores. A core that does not answer in this
/// time is busy beyond reason; the report says so instead of hanging the admin client.
const GATHER_TIMEOUT: Duration = Duration::from_secs(2);

/// The core that runs the topology refresher.
pub const REFRESHER_CORE: usize = 0;

/// A message between cores.
pub enum Message {
    /// A new topology for every core.
    Topology(Arc<Topology>),
    /// Commands the cluster's server has and the command table lacks.
    NewerCommands(Arc<[String]>),
    /// Please refresh the topology (sent to the refresher core).
    RefreshRequest,
    /// Please send your stats to core `from`, tagged `id`; reset latency first if asked.
    StatsRequest {
        /// The asking core.
        from: usize,
        /// The gather this belongs to.
        id: u64,
        /// Reset the latency histogram after the snapshot.
        reset: bool,
    },
    /// A core's stats for gather `id`.
    Stats {
        /// The gather this answers.
        id: u64,
        /// The snapshot.
        stats: Box<CoreStats>,
    },
}

/// A stats gather in progress on this core: the answers so far and how many are missing.
struct PendingGather {
    stats: RefCell<Vec<CoreStats>>,
    missing: Cell<usize>,
    done: Signal,
}

/// This core's end of the mesh.
pub struct Mesh {
    senders: Senders<Message>,
    gathers: RefCell<HashMap<u64, Rc<PendingGather>>>,
    next_id: Cell<u64>,
}

impl Mesh {
    /// Wraps the joined senders.
    pub fn new(senders: Senders<Message>) -> Self {
        Mesh {
            senders,
            gathers: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        }
    }

    /// This core's index in the mesh.
    pub fn core(&self) -> usize {
        self.senders.peer_id()
    }

    /// Number of cores.
    pub fn cores(&self) -> usize {
        self.senders.nr_consumers()
    }

    /// Sends without waiting; a full channel drops the message (used for refresh requests,
    /// where a pending one already covers it).
    pub fn try_send(&self, core: usize, message: Message) -> bool {
        self.senders.try_send_to(core, message).is_ok()
    }

    /// Sends, waiting for room.
    pub async fn send(&self, core: usize, message: Message) -> bool {
        self.senders.send_to(core, message).await.is_ok()
    }

    /// Collects a stats snapshot from every core, starting with this core's own (`local`),
    /// asking the others to reset their latency histograms too if `reset`. Cores that do not
    /// answer in time are left out.
    pub async fn gather(&self, local: CoreStats, reset: bool) -> Vec<CoreStats> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let gathering = Rc::new(PendingGather {
            stats: RefCell::new(vec![local]),
            missing: Cell::new(self.cores() - 1),
            done: Signal::default(),
        });
        self.gathers.borrow_mut().insert(id, gathering.clone());
        let me = self.core();
        for core in (0..self.cores()).filter(|&c| c != me) {
            let request = Message::StatsRequest {
                from: me,
                id,
                reset,
            };
            if !self.send(core, request).await {
                gathering.missing.set(gathering.missing.get() - 1);
            }
        }
        if gathering.missing.get() > 0 {
            let _ = glommio::timer::timeout(GATHER_TIMEOUT, async {
                gathering.done.wait().await;
                Ok(())
            })
            .await;
        }
        self.gathers.borrow_mut().remove(&id);
        let mut stats = gathering.stats.take();
        stats.sort_by_key(|s| s.core);
        stats
    }

    /// Hands another core's answer to the gather it belongs to (a late answer is dropped).
    pub fn deliver_stats(&self, id: u64, stats: CoreStats) {
        let gathering = self.gathers.borrow().get(&id).cloned();
        if let Some(gathering) = gathering {
            gathering.stats.borrow_mut().push(stats);
            gathering
                .missing
                .set(gathering.missing.get().saturating_sub(1));
            if gathering.missing.get() == 0 {
                gathering.done.notify();
            }
        }
    }
}
