//! Cross-core messages: the only way cores affect each other.
//!
//! Each pool's cores are joined in a glommio channel mesh of their own (one bounded
//! single-producer channel per ordered pair of cores), and every core of the process in one
//! more, the control mesh, which outlives the pools: a reload's configuration
//! ([`Notice::Config`]) and the reload requests to core 0 ([`Question::Reload`]) travel there,
//! since a pool's mesh may be the one a reload removes. What travels, none of it per request:
//! - topology: the refresher on core 0 sends each new layout to every core;
//! - refresh requests: a core that saw MOVED or a backend failure asks core 0 to refresh (or,
//!   in a Sentinel pool, to ask the Sentinels);
//! - gathers: the core serving an admin command (`PROXY INFO`, `CLIENT LIST`, ...) asks every
//!   core a [`Question`] and merges their [`Answer`]s;
//! - notices: something every core acts on ([`Notice`]), sent as a gather
//!   ([`Question::Heed`]) so the sender knows when every core has.
//! - MONITOR lines: while some client monitors, each core sends the lines for its requests to
//!   the monitors' cores in batches (at most one batch per core pair per flush period, so they
//!   never crowd out the rest).
//!
//! This module is the transport: it sends and keeps track of gathers. What a core answers,
//! and what it does with a notice, is the shard's business (`shard::control`), so nothing here
//! reaches back into a shard.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::channels::channel_mesh::Senders;

use super::reload::ConfigUpdate;
use crate::cluster::topology::Topology;
use crate::command::pubsub::Kind;
use crate::control::replica_lag::ReplicaLag;
use crate::metrics::CoreStats;
use crate::slowlog::SlowEntry;
use crate::sync::Signal;

/// Messages in each channel before a sender waits. Messages are rare (topology changes,
/// refresh requests, admin commands), so a small bound is plenty.
pub const CHANNEL_CAPACITY: usize = 64;

/// How long a gather waits for the other cores. A core that does not answer in this time is
/// busy beyond reason; the report says so instead of hanging the admin client.
const GATHER_TIMEOUT: Duration = Duration::from_secs(2);

/// The core that runs the topology refresher.
pub const REFRESHER_CORE: usize = 0;

/// Which clients `CLIENT LIST` shows.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only these ids (`ID id ...`).
    pub ids: Option<Vec<u64>>,
    /// `TYPE master|replica`: percore has none of those clients, so nothing matches.
    pub none: bool,
    /// `TYPE pubsub` (`Some(true)`) or `TYPE normal` (`Some(false)`).
    pub subscribed: Option<bool>,
}

/// Which clients `CLIENT KILL` closes: all the given conditions must hold.
#[derive(Debug, Clone, Default)]
pub struct KillFilter {
    /// `ID id`.
    pub id: Option<u64>,
    /// `ADDR ip:port` (also the old one-argument form).
    pub addr: Option<String>,
    /// `LADDR ip:port`.
    pub laddr: Option<String>,
    /// `USER name`.
    pub user: Option<String>,
    /// `MAXAGE seconds`: connections older than this.
    pub max_age: Option<u64>,
    /// `TYPE master|replica`: percore has none of those clients.
    pub none: bool,
    /// `TYPE pubsub` (`Some(true)`) or `TYPE normal` (`Some(false)`).
    pub subscribed: Option<bool>,
    /// The client that asked, left alone unless `SKIPME no`.
    pub skip: Option<u64>,
    /// The client that asked, which is closed after its reply if it matches.
    pub asker: u64,
}

/// Which of a core's subscriptions a [`PubsubQuestion::Held`] is about.
#[derive(Debug, Clone)]
pub enum NameFilter {
    /// All of them (PUBSUB NUMPAT).
    All,
    /// Those whose name matches this glob pattern (PUBSUB CHANNELS pattern).
    Matching(Vec<u8>),
    /// These names, whether subscribed or not (PUBSUB NUMSUB a b).
    Named(Vec<Vec<u8>>),
}

/// One subscription name as a core holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldName {
    /// The channel or pattern.
    pub name: Vec<u8>,
    /// The core's clients subscribed to it.
    pub clients: u64,
    /// The nodes where the core's subscription connections hold it (each counts it as one
    /// subscriber of its own).
    pub nodes: Vec<String>,
}

/// What a pub/sub gather asks every core.
#[derive(Debug, Clone)]
pub enum PubsubQuestion {
    /// The core's subscriptions of `kind` that `filter` selects.
    Held {
        /// Channels, patterns or sharded channels.
        kind: Kind,
        /// Which of them.
        filter: NameFilter,
    },
    /// For a message published on `channel` at `node`: how many of the core's clients receive
    /// it, and how many receivers the node counts among the core's own subscriptions there.
    Receivers {
        /// SPUBLISH rather than PUBLISH.
        shard: bool,
        /// The channel.
        channel: Vec<u8>,
        /// The node that ran the publish.
        node: String,
    },
}

/// What a gather asks every core.
#[derive(Debug, Clone)]
pub enum Question {
    /// A stats snapshot; reset the latency histogram after it if asked.
    Stats {
        /// Reset the latency histogram after the snapshot.
        reset: bool,
    },
    /// The core's clients as CLIENT LIST lines.
    ClientList(ListFilter),
    /// Close the core's clients that match; answer how many.
    ClientKill(KillFilter),
    /// Where the client with this id waits for a blocking command, if it does (CLIENT
    /// UNBLOCK).
    BlockedOn(u64),
    /// Act on the notice, then answer: the asker knows every core has.
    Heed(Notice),
    /// About the core's pub/sub subscriptions.
    Pubsub(PubsubQuestion),
    /// The newest `count` entries of the slow log.
    Slowlog {
        /// Most entries wanted.
        count: usize,
    },
    /// The length of the slow log.
    SlowlogLen,
    /// Clear the slow log.
    SlowlogReset,
    /// A core's monitors changed; answered once applied, so MONITOR's `+OK` means every core
    /// feeds the new monitor.
    Monitors(MonitorCount),
    /// Read the configuration file again and apply it (asked of core 0, which owns reloads).
    Reload,
}

/// One core's answer to a [`Question`].
#[derive(Debug)]
pub enum Answer {
    /// To [`Question::Stats`].
    Stats(Box<CoreStats>),
    /// Text (CLIENT LIST lines).
    Text(String),
    /// A count (clients killed, slow log length).
    Count(u64),
    /// To [`Question::BlockedOn`]: the node and the node's id for the connection the client
    /// is blocked on.
    BlockedOn(Option<(String, i64)>),
    /// To [`Question::Slowlog`]: newest first.
    Slowlog(Vec<SlowEntry>),
    /// Done (to questions that ask for an action, [`Question::Heed`]).
    Done,
    /// To [`PubsubQuestion::Held`].
    Held(Vec<HeldName>),
    /// To [`Question::Reload`]: the epoch applied, or every reason the file was refused.
    Reloaded(Result<u64, Arc<[String]>>),
    /// To [`PubsubQuestion::Receivers`].
    Receivers {
        /// The core's clients that receive the message.
        clients: u64,
        /// Receivers the node counts that are the core's own subscriptions.
        links: u64,
    },
}

/// What one core tells every other, with no answer expected.
#[derive(Debug, Clone)]
pub enum Notice {
    /// Clear the event counters and latency histogram (CONFIG RESETSTAT).
    ResetStats,
    /// CLIENT PAUSE: hold requests until `until` (every request if `all`, else writes).
    Pause {
        /// When the pause ends by itself.
        until: Instant,
        /// ALL rather than WRITE.
        all: bool,
    },
    /// CLIENT UNPAUSE.
    Unpause,
    /// The live percore peers changed (from `control::peers`): advertise these with this one.
    Peers(Arc<[String]>),
    /// A core's monitors changed (one disconnected).
    Monitors(MonitorCount),
    /// A static pool's server left the ring (cache mode, `auto_eject_hosts: true`): every
    /// core places keys without it until `until`, then puts it back by itself, so all cores
    /// place every key alike without a second message.
    Eject {
        /// The server's position in the pool's configured list.
        server: usize,
        /// When every core puts it back in the ring.
        until: Instant,
    },
    /// A Sentinel pool's servers moved (from `control::sentinel`): its layout with their new
    /// addresses. Connections to a master that left it are closed, so what waits there fails
    /// at once and nothing more goes to a demoted master.
    Servers(Arc<Topology>),
    /// A reloaded configuration (from core 0, over the process's control mesh): every core
    /// applies it between requests, starting and stopping pools and reconfiguring those that
    /// stay, then answers.
    Config(Arc<ConfigUpdate>),
    /// CONFIG SET of the slow log's settings, which every core's log follows.
    Slowlog {
        /// `slowlog-log-slower-than`, if set (`Some(None)`: negative, off).
        slower_than: Option<Option<Duration>>,
        /// `slowlog-max-len`, if set.
        max_len: Option<usize>,
    },
    /// The lag watcher's verdicts on every replica (`control::replica_lag`): which ones
    /// reads may go to.
    Replicas(Arc<[ReplicaLag]>),
}

/// How many MONITOR clients a core has. Versioned, because a core's updates can travel by
/// gather and by notice and must not be applied out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorCount {
    /// The core the monitors are on.
    pub core: usize,
    /// Increases with every update from that core.
    pub version: u64,
    /// Its monitors now.
    pub monitors: usize,
}

/// A message between cores.
pub enum Message {
    /// A new topology for every core.
    Topology(Arc<Topology>),
    /// Commands the cluster's server has and the command table lacks.
    NewerCommands(Arc<[String]>),
    /// No topology yet: why the refresher could not get one.
    Unreachable(Arc<str>),
    /// Please refresh the topology (sent to the refresher core).
    RefreshRequest,
    /// Please answer `question` to core `from`, tagged `id`.
    Ask {
        /// The asking core.
        from: usize,
        /// The gather this belongs to.
        id: u64,
        /// What is asked.
        question: Question,
    },
    /// A core's answer to gather `id`.
    Answer {
        /// The gather this answers.
        id: u64,
        /// The answering core.
        core: usize,
        /// The answer.
        answer: Answer,
    },
    /// MONITOR lines for the monitors on the receiving core.
    MonitorLines {
        /// The lines, each a RESP simple string.
        lines: Bytes,
        /// How many lines (to count them if they are dropped).
        count: usize,
    },
}

/// A gather in progress on this core: the answers so far (with the core that gave each) and
/// how many are missing.
struct PendingGather {
    answers: RefCell<Vec<(usize, Answer)>>,
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

    /// Asks core `core` (another one) `question` alone, and waits for its answer up to
    /// `timeout` (`None`: no answer in time, or the core is gone).
    pub async fn ask(&self, core: usize, question: Question, timeout: Duration) -> Option<Answer> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let asking = Rc::new(PendingGather {
            answers: RefCell::new(Vec::new()),
            missing: Cell::new(1),
            done: Signal::default(),
        });
        self.gathers.borrow_mut().insert(id, asking.clone());
        let from = self.core();
        if self.send(core, Message::Ask { from, id, question }).await {
            let _ = glommio::timer::timeout(timeout, async {
                asking.done.wait().await;
                Ok(())
            })
            .await;
        }
        self.gathers.borrow_mut().remove(&id);
        let answer = asking.answers.take().pop();
        answer.map(|(_, answer)| answer)
    }

    /// Asks every other core `question` and returns the answers in core order, starting with
    /// this core's own (`local`). Cores that do not answer in time are left out.
    pub async fn gather(&self, local: Answer, question: Question) -> Vec<Answer> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let me = self.core();
        let gathering = Rc::new(PendingGather {
            answers: RefCell::new(vec![(me, local)]),
            missing: Cell::new(self.cores() - 1),
            done: Signal::default(),
        });
        self.gathers.borrow_mut().insert(id, gathering.clone());
        for core in (0..self.cores()).filter(|&c| c != me) {
            let ask = Message::Ask {
                from: me,
                id,
                question: question.clone(),
            };
            if !self.send(core, ask).await {
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
        let mut answers = gathering.answers.take();
        answers.sort_by_key(|(core, _)| *core);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }

    /// Hands another core's answer to the gather it belongs to (a late answer is dropped).
    pub fn deliver(&self, id: u64, core: usize, answer: Answer) {
        let gathering = self.gathers.borrow().get(&id).cloned();
        if let Some(gathering) = gathering {
            gathering.answers.borrow_mut().push((core, answer));
            gathering
                .missing
                .set(gathering.missing.get().saturating_sub(1));
            if gathering.missing.get() == 0 {
                gathering.done.notify();
            }
        }
    }
}
