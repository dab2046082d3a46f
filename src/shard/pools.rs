//! The pools one core serves, which a reload changes: [`Core`] is the core's share of the
//! process, above its pools' shards. It holds the core's end of the process's control mesh
//! (which outlives every pool), the pools in the configuration's order, each one's task, and
//! which configuration the core serves now.
//!
//! A reload reaches every core as one [`Notice::Config`] on the control mesh, and
//! [`Core::apply`] acts on it between requests, at once: a pool that stays gets its new
//! configuration (`Shard::reconfigure`), a pool that is gone is told to stop (it stops
//! listening and drains its clients as the process does at shutdown, then frees what it had),
//! and a pool that is new is started with its end of the mesh the notice brought.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers};
use glommio::Task;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::control::mesh::{Answer, Mesh, Message, Notice, Question};
use crate::control::reload::{ConfigEpoch, ConfigUpdate};
use crate::error::Error;
use crate::net::{SharedListener, Uring};
use crate::sync::Signal;

use super::reload::Reloader;
use super::run::run_pool;
use super::Shard;

/// How long a core asking core 0 for a reload waits for it: a reload reads a file and asks
/// every core once, a few milliseconds; past this core 0 is stuck beyond reason.
const RELOAD_WAIT: Duration = Duration::from_secs(10);

/// One core's share of the process: its pools and its end of the control mesh.
pub struct Core {
    /// This core's index, its place in every mesh of the process.
    pub(super) id: usize,
    /// The core's socket ring, shared by its pools.
    pub(super) uring: Rc<Uring>,
    /// When the core started (for uptime).
    pub(super) started: Instant,
    /// The core's end of the control mesh.
    control: Mesh,
    /// The pools, in the configuration's order (a pool being removed is no longer here).
    pools: RefCell<Vec<Rc<Served>>>,
    /// Every pool's task, started at start or by a reload; awaited when the process stops.
    tasks: RefCell<Vec<Task<Result<(), Error>>>>,
    /// The configuration the core serves now.
    epoch: RefCell<ConfigEpoch>,
    /// On core 0, which owns reloads: where they read from and what runs now.
    pub(super) reloader: Option<Reloader>,
}

/// One pool on this core.
pub(super) struct Served {
    /// The pool's name: a pool is its name across reloads.
    pub(super) name: Rc<str>,
    /// Its configuration now, for the shard to start with (a reload may come before it is
    /// made) and for the reports until it is.
    config: RefCell<Rc<Config>>,
    /// The pool's shard on this core, once it has joined the pool's mesh.
    shard: RefCell<Option<Rc<Shard>>>,
    /// Notified when a reload removes the pool: it stops listening and drains.
    pub(super) removed: Signal,
    /// Set with `removed`, for a pool that is not listening yet (it then never does).
    gone: Cell<bool>,
}

impl Served {
    fn new(config: Rc<Config>) -> Rc<Served> {
        Rc::new(Served {
            name: Rc::from(config.name.as_str()),
            config: RefCell::new(config),
            shard: RefCell::new(None),
            removed: Signal::default(),
            gone: Cell::new(false),
        })
    }

    /// Whether a reload removed the pool.
    pub(super) fn is_removed(&self) -> bool {
        self.gone.get()
    }

    /// Its configuration now.
    pub(super) fn config(&self) -> Rc<Config> {
        self.config.borrow().clone()
    }

    /// The pool's shard, once it has one.
    pub(super) fn shard(&self) -> Option<Rc<Shard>> {
        self.shard.borrow().clone()
    }

    /// Seats the pool's shard (after the mesh join), or, with `None`, frees it (removed).
    pub(super) fn seat(&self, shard: Option<Rc<Shard>>) {
        *self.shard.borrow_mut() = shard;
    }
}

impl Core {
    /// The core's share of the process, on the joined control mesh; `reloader` on core 0.
    pub(super) fn new(
        uring: Rc<Uring>,
        control: Mesh,
        epoch: ConfigEpoch,
        reloader: Option<Reloader>,
    ) -> Rc<Core> {
        Rc::new(Core {
            id: control.core(),
            uring,
            started: Instant::now(),
            control,
            pools: RefCell::new(Vec::new()),
            tasks: RefCell::new(Vec::new()),
            epoch: RefCell::new(epoch),
            reloader,
        })
    }

    /// Cores in the process.
    pub(super) fn cores(&self) -> usize {
        self.control.cores()
    }

    /// Starts serving `config` on this core (`at_start`: a pool of the start, whose failure
    /// stops the process; a reload's only logs it).
    pub(super) fn start_pool(
        self: &Rc<Self>,
        config: Rc<Config>,
        mesh: MeshBuilder<Message, Full>,
        share: Option<SharedListener>,
        at_start: bool,
    ) {
        let served = self.spawn_pool(config, mesh, share, at_start);
        self.pools.borrow_mut().push(served);
    }

    /// Starts the task that serves `config` here; the pool is the caller's to list.
    fn spawn_pool(
        self: &Rc<Self>,
        config: Rc<Config>,
        mesh: MeshBuilder<Message, Full>,
        share: Option<SharedListener>,
        at_start: bool,
    ) -> Rc<Served> {
        let served = Served::new(config);
        let serving = run_pool(self.clone(), served.clone(), mesh, share, at_start);
        self.tasks.borrow_mut().push(glommio::spawn_local(serving));
        served
    }

    /// Every pool's shard here and its configuration, in the configuration's order (a pool
    /// not joined yet has no shard).
    pub(super) fn pools(&self) -> Vec<(Rc<Config>, Option<Rc<Shard>>)> {
        let pools = self.pools.borrow();
        pools.iter().map(|p| (p.config(), p.shard())).collect()
    }

    /// Which configuration the core serves.
    pub(super) fn epoch(&self) -> ConfigEpoch {
        self.epoch.borrow().clone()
    }

    /// Waits for every pool's task (once the process stops); the first failure is the core's.
    pub(super) async fn finish(&self) -> Result<(), Error> {
        let mut result = Ok(());
        loop {
            let task = self.tasks.borrow_mut().pop();
            match task {
                Some(task) => result = task.await.and(result),
                None => return result,
            }
        }
    }

    /// Applies a reload's configuration on this core, between requests (see the module).
    pub(super) fn apply(self: &Rc<Self>, update: &ConfigUpdate) {
        if update.epoch <= self.epoch.borrow().epoch {
            return;
        }
        let before = self.pools.take();
        for gone in before
            .iter()
            .filter(|p| !update.pools.iter().any(|c| *c.name == *p.name))
        {
            info!(
                core = self.id,
                pool = &*gone.name,
                "pool removed by a reload: draining it"
            );
            gone.gone.set(true);
            gone.removed.notify();
        }
        let mut after = Vec::with_capacity(update.pools.len());
        for config in &update.pools {
            let config = Rc::new(Config::clone(config));
            if let Some(served) = before.iter().find(|p| *p.name == config.name) {
                *served.config.borrow_mut() = config.clone();
                if let Some(shard) = served.shard() {
                    shard.reconfigure(config);
                }
                after.push(served.clone());
                continue;
            }
            let end = update.added.iter().find(|p| p.name == config.name);
            let Some(end) = end.and_then(|pool| pool.take(self.id)) else {
                let pool = &config.name;
                warn!(
                    core = self.id,
                    pool, "a reload's new pool came without its mesh"
                );
                continue;
            };
            info!(core = self.id, pool = %config.name, "pool added by a reload: starting it");
            after.push(self.spawn_pool(config, end.mesh, end.share, false));
        }
        *self.pools.borrow_mut() = after;
        let file = self.epoch.borrow().file.clone();
        *self.epoch.borrow_mut() = ConfigEpoch {
            epoch: update.epoch,
            loaded_at: update.loaded_at,
            file,
        };
        debug!(
            core = self.id,
            epoch = update.epoch,
            "configuration applied"
        );
    }

    /// Asks for a reload (PROXY CONFIG RELOAD): core 0 runs it, this core waits for its
    /// outcome; the epoch applied, or every reason the file was refused.
    pub(super) async fn request_reload(self: &Rc<Self>) -> Result<u64, Arc<[String]>> {
        if self.reloader.is_some() {
            return self.reload("PROXY CONFIG RELOAD").await;
        }
        let reloader = crate::control::mesh::REFRESHER_CORE;
        match self
            .control
            .ask(reloader, Question::Reload, RELOAD_WAIT)
            .await
        {
            Some(Answer::Reloaded(result)) => result,
            _ => Err(Arc::from([
                "core 0 did not answer the reload request in time".to_string(),
            ])),
        }
    }

    /// Has every core (this one first) apply `update`; returns how many did in time.
    pub(super) async fn tell_every_core(self: &Rc<Self>, update: Arc<ConfigUpdate>) -> usize {
        self.apply(&update);
        let question = Question::Heed(Notice::Config(update));
        self.control.gather(Answer::Done, question).await.len()
    }

    /// Handles the control mesh's messages from every other core, for as long as the core
    /// runs.
    pub(super) fn spawn_receivers(self: &Rc<Self>, mut receivers: Receivers<Message>) {
        for (peer, receiver) in receivers.streams() {
            let core = self.clone();
            glommio::spawn_local(async move {
                while let Some(message) = receiver.recv().await {
                    core.handle(message).await;
                }
                debug!(core = core.id, peer, "control mesh channel closed");
            })
            .detach();
        }
    }

    async fn handle(self: &Rc<Self>, message: Message) {
        match message {
            Message::Ask { from, id, question } => {
                let answer = match question {
                    Question::Heed(Notice::Config(update)) => {
                        self.apply(&update);
                        Answer::Done
                    }
                    // A reload asks every core, this one too: it runs in a task of its own, so
                    // this channel is free for that answer meanwhile.
                    Question::Reload => {
                        let core = self.clone();
                        glommio::spawn_local(async move {
                            let result = core.reload("PROXY CONFIG RELOAD").await;
                            let answer = Answer::Reloaded(result);
                            let core_id = core.id;
                            core.control
                                .send(
                                    from,
                                    Message::Answer {
                                        id,
                                        core: core_id,
                                        answer,
                                    },
                                )
                                .await;
                        })
                        .detach();
                        return;
                    }
                    _ => Answer::Done,
                };
                let core = self.id;
                self.control
                    .send(from, Message::Answer { id, core, answer })
                    .await;
            }
            Message::Answer { id, core, answer } => self.control.deliver(id, core, answer),
            _ => {}
        }
    }

    /// The time a configuration was loaded, as the reports show it: seconds since the Unix
    /// epoch.
    pub(super) fn loaded_at_secs(&self) -> u64 {
        let loaded = self.epoch.borrow().loaded_at;
        loaded
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
