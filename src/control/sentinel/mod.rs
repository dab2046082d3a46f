//! The Sentinel watcher of a data-store pool (`sentinels:`): one task, on the pool's first
//! core, that owns the truth about where each server's master is, as the topology refresher
//! does for a cluster.
//!
//! Each server of the pool is a Sentinel master, named by the server's name. The watcher asks
//! every Sentinel `SENTINEL MASTER <name>` for every server, at start (every
//! [`STARTUP_RETRY`] until each is found), every refresh interval, whenever a core asks (after
//! a backend failure) and whenever a subscription says so ([`listen`]); of the answers it
//! takes, per server, the one with the highest configuration epoch, and never one older than
//! what it already follows, so a Sentinel that has not heard of a failover yet cannot send a
//! server back to its demoted master.
//!
//! A failover's steps are followed as they are announced. When the leading Sentinel is about
//! to promote a replica, the server is *held*: served by nobody (its requests fail at once),
//! so no write goes to the old master while the replica stops taking its stream (such a write
//! would be acknowledged, then discarded when Sentinel makes the old master a replica). The
//! hold ends when a Sentinel names the new master (a higher epoch), when the failover is given
//! up, or after [`FAILOVER_HOLD`].
//!
//! Placement never changes: server `i` keeps token `i` whatever its address, so no key moves
//! and no server is ever ejected. A changed layout gets the next epoch
//! ([`Topology::of_found_servers`]) and is handed to `publish`, which sends it to every core;
//! the watcher itself knows nothing of shards.

mod listen;
mod wire;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tracing::{debug, info, warn};

use crate::cluster::topology::Topology;
use crate::config::{BackendAuth, SentinelConfig};
use crate::net::Uring;
use crate::sync::Signal;

use super::refresh::Update;
use wire::{MasterAt, SentinelConn, SentinelError};

/// Delay between rounds while some server's master is not found yet.
const STARTUP_RETRY: Duration = Duration::from_millis(250);
/// Least time between two rounds of questions: a burst of backend failures (every connection
/// of every core to a master that died) becomes one round, not hundreds.
const MIN_ASK_GAP: Duration = Duration::from_millis(100);
/// First wait before subscribing again after a failure; doubled each time it fails again.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait before subscribing again: a Sentinel that comes back is listened to within it.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// While the rounds fail, one in this many is logged at warn level.
const FAILURE_LOG_EVERY: u32 = 20;
/// Longest a server is held while a replica is promoted. A promotion takes Sentinel about a
/// second (it sees the replica's new role in its INFO, polled every second meanwhile); one
/// that takes longer is stuck (Sentinel gives it up only after its failover timeout, 3 minutes
/// by default), and the old master is served again rather than nobody for that long.
const FAILOVER_HOLD: Duration = Duration::from_secs(5);

/// The watcher: the pool's Sentinels and masters, when to ask again, and what its
/// subscriptions heard.
pub struct Watcher {
    /// The core's socket ring.
    uring: Rc<Uring>,
    /// The pool's Sentinels, master names and password.
    config: Rc<SentinelConfig>,
    /// Bound on one Sentinel's answer (connect included).
    timeout: Duration,
    /// Period of the background round of questions.
    interval: Duration,
    /// Notified by the cores that want the masters asked for now, and by the subscriptions.
    wanted: Rc<Signal>,
    /// Failover steps the subscriptions heard since the last round, oldest first.
    heard: RefCell<Vec<Heard>>,
}

/// A failover step of server `.0`, as a subscription heard it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Heard {
    /// The promotion of a replica of the master at `.1` starts (heard at `.2`).
    Promoting(usize, String, Instant),
    /// The failover was given up.
    Aborted(usize),
}

/// What the watcher follows for one server.
#[derive(Debug, Clone, Default)]
struct Known {
    /// Where its master is; `None` until a Sentinel has said.
    addr: Option<String>,
    /// The configuration epoch that address is from.
    epoch: u64,
    /// Held since then, for a promotion from that epoch on.
    held: Option<(Instant, u64)>,
}

/// One Sentinel's answers: per master, where it is or why that Sentinel does not say.
type Answers = Result<Vec<Result<MasterAt, String>>, SentinelError>;

impl Watcher {
    /// A watcher of `config`'s masters; `wanted` is notified by the cores that want the
    /// masters asked for now.
    pub fn new(
        uring: Rc<Uring>,
        config: Rc<SentinelConfig>,
        timeout: Duration,
        interval: Duration,
        wanted: Rc<Signal>,
    ) -> Watcher {
        Watcher {
            uring,
            config,
            timeout,
            interval,
            wanted,
            heard: RefCell::new(Vec::new()),
        }
    }

    /// Runs forever, handing every changed layout to `publish`. Dropped (its pool removed by
    /// a reload), it ends its subscriptions too: they are tasks it holds, not detached ones.
    pub async fn run<F, Fut>(self, publish: F)
    where
        F: FnMut(Update) -> Fut,
        Fut: Future<Output = ()>,
    {
        let watcher = Rc::new(self);
        let _subscriptions: Vec<_> = watcher
            .config
            .sentinels
            .iter()
            .map(|sentinel| glommio::spawn_local(listen::listen(watcher.clone(), sentinel.clone())))
            .collect();
        watcher.rounds(publish).await
    }

    /// The rounds of questions, forever; between two, what the subscriptions heard.
    async fn rounds<F, Fut>(&self, mut publish: F)
    where
        F: FnMut(Update) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut known = vec![Known::default(); self.config.masters.len()];
        let mut published: Vec<Option<String>> = vec![None; known.len()];
        let mut epoch = 0;
        let mut failures = 0u32;
        let mut last_error: Option<String> = None;
        let mut last_round = Instant::now() - MIN_ASK_GAP;
        loop {
            let since = last_round.elapsed();
            if since < MIN_ASK_GAP {
                glommio::timer::sleep(MIN_ASK_GAP - since).await;
            }
            last_round = Instant::now();
            let answers = self.ask_all().await;
            merge(&self.config, &mut known, &answers);
            release_holds(&self.config, &mut known);
            self.publish_if_changed(&known, &mut published, &mut epoch, &mut publish)
                .await;
            if answers.iter().all(|(_, a)| a.is_err()) {
                failures += 1;
                let text = failure_text(&answers);
                if failures == 1 || failures.is_multiple_of(FAILURE_LOG_EVERY) {
                    let pool = &self.config.pool;
                    warn!(pool, failures, error = text, "no Sentinel answered");
                }
                // Told to the cores while they have no layout, so clients read why.
                if epoch == 0 && last_error.as_deref() != Some(text.as_str()) {
                    publish(Update::Unreachable(Arc::from(text.as_str()))).await;
                    last_error = Some(text);
                }
            } else {
                failures = 0;
            }
            let _ = glommio::timer::timeout(self.next_wait(&known), async {
                self.wanted.wait().await;
                Ok(())
            })
            .await;
            // A promotion is held at once, without waiting for the round's gap.
            self.take_heard(&mut known);
            self.publish_if_changed(&known, &mut published, &mut epoch, &mut publish)
                .await;
        }
    }

    /// Until the next round: a quarter second while a master is not found, the interval
    /// otherwise, and no later than the end of a hold.
    fn next_wait(&self, known: &[Known]) -> Duration {
        let base = if known.iter().any(|k| k.addr.is_none()) {
            STARTUP_RETRY
        } else {
            self.interval
        };
        let holds = known.iter().filter_map(|k| k.held);
        let hold_ends = holds.map(|(since, _)| FAILOVER_HOLD.saturating_sub(since.elapsed()));
        hold_ends.fold(base, Duration::min)
    }

    /// Applies what the subscriptions heard: a promotion holds its server (if it is of the
    /// master the server is at: not one heard of late, after the server moved on), a failover
    /// given up releases it.
    fn take_heard(&self, known: &mut [Known]) {
        let pool = &self.config.pool;
        for heard in self.heard.take() {
            match heard {
                Heard::Promoting(index, old, since) => {
                    let Some(known) = known.get_mut(index) else {
                        continue;
                    };
                    if known.addr.as_deref() == Some(old.as_str()) && known.held.is_none() {
                        let server = &self.config.masters[index];
                        info!(
                            pool,
                            server, old, "holding the server while its replica is promoted"
                        );
                        known.held = Some((since, known.epoch));
                    }
                }
                Heard::Aborted(index) => {
                    if let Some(known) = known.get_mut(index) {
                        known.held = None;
                    }
                }
            }
        }
    }

    /// Hands the layout to `publish` if it differs from the last one published.
    async fn publish_if_changed<F, Fut>(
        &self,
        known: &[Known],
        published: &mut Vec<Option<String>>,
        epoch: &mut u64,
        publish: &mut F,
    ) where
        F: FnMut(Update) -> Fut,
        Fut: Future<Output = ()>,
    {
        let layout: Vec<Option<String>> = known
            .iter()
            .map(|k| k.addr.clone().filter(|_| k.held.is_none()))
            .collect();
        if layout == *published || layout.iter().all(Option::is_none) && *epoch == 0 {
            return;
        }
        *epoch += 1;
        let topology = Topology::of_found_servers(&layout, *epoch);
        *published = layout;
        publish(Update::Topology(Arc::new(topology))).await;
    }

    /// Every Sentinel's answers for every master, asked of all at once, in Sentinel order.
    async fn ask_all(&self) -> Vec<(&str, Answers)> {
        let config = &self.config;
        let tasks: Vec<_> = (0..config.sentinels.len())
            .map(|index| {
                let (uring, config) = (self.uring.clone(), config.clone());
                let timeout = self.timeout;
                glommio::spawn_local(async move {
                    let (sentinel, auth) = (&config.sentinels[index], config.auth.as_ref());
                    ask_one(&uring, sentinel, &config.masters, auth, timeout).await
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(tasks.len());
        for (sentinel, task) in config.sentinels.iter().zip(tasks) {
            answers.push((sentinel.as_str(), task.await));
        }
        answers
    }
}

/// Ends the holds whose failover is over: a Sentinel named a master of a newer epoch (the
/// promoted replica), or the hold lasted [`FAILOVER_HOLD`].
fn release_holds(config: &SentinelConfig, known: &mut [Known]) {
    for (known, name) in known.iter_mut().zip(&config.masters) {
        let Some((since, epoch)) = known.held else {
            continue;
        };
        if known.epoch > epoch {
            known.held = None;
        } else if since.elapsed() >= FAILOVER_HOLD {
            let pool = &config.pool;
            warn!(
                pool,
                server = name,
                "promotion not over in time: serving the old master again"
            );
            known.held = None;
        }
    }
}

/// Takes in one round's answers; true if some server's address changed. Per server, the
/// answer with the highest epoch wins (the first Sentinel's on a tie), unless it is older
/// than what is followed already.
fn merge(config: &SentinelConfig, known: &mut [Known], answers: &[(&str, Answers)]) -> bool {
    let pool = &config.pool;
    let mut changed = false;
    for (index, (known, name)) in known.iter_mut().zip(&config.masters).enumerate() {
        let mut best: Option<(&str, &MasterAt)> = None;
        for (sentinel, answer) in answers {
            match answer.as_ref().map(|masters| masters.get(index)) {
                Ok(Some(Ok(at))) if best.is_none_or(|(_, b)| at.epoch > b.epoch) => {
                    best = Some((sentinel, at));
                }
                Ok(Some(Err(error))) => debug!(pool, sentinel, master = name, error),
                Err(error) => debug!(pool, sentinel, %error, "Sentinel did not answer"),
                _ => {}
            }
        }
        let Some((sentinel, at)) = best else {
            if known.addr.is_none() {
                debug!(pool, master = name, "no Sentinel knows this master yet");
            }
            continue;
        };
        if known.addr.is_some() && at.epoch < known.epoch {
            let (answered, followed) = (at.epoch, known.epoch);
            debug!(
                pool,
                master = name,
                sentinel,
                answered,
                followed,
                "stale answer"
            );
            continue;
        }
        known.epoch = at.epoch;
        if known.addr.as_deref() == Some(at.addr.as_str()) {
            continue;
        }
        changed = true;
        let new = at.addr.as_str();
        match known.addr.replace(at.addr.clone()) {
            None => info!(
                pool,
                server = name,
                new,
                sentinel,
                "Sentinel names the master"
            ),
            Some(old) => info!(
                pool,
                server = name,
                old,
                new,
                config_epoch = at.epoch,
                sentinel,
                "failover: the server's master moved"
            ),
        }
    }
    changed
}

/// Asks `sentinel` for every master in `names`, on one connection, pipelined.
async fn ask_one(
    uring: &Rc<Uring>,
    sentinel: &str,
    names: &[String],
    auth: Option<&BackendAuth>,
    timeout: Duration,
) -> Answers {
    let mut conn = SentinelConn::open(uring, sentinel, auth, timeout).await?;
    let mut wire = BytesMut::new();
    for name in names {
        wire::ask_master(&mut wire, name);
    }
    let work = async {
        conn.send(&wire).await?;
        let mut masters = Vec::with_capacity(names.len());
        for _ in names {
            masters.push(wire::read_master(&conn.reply().await?));
        }
        Ok(masters)
    };
    wire::within(timeout, work).await
}

/// Why every Sentinel failed, one after the other.
fn failure_text(answers: &[(&str, Answers)]) -> String {
    let failures: Vec<String> = answers
        .iter()
        .filter_map(|(sentinel, answer)| {
            let error = answer.as_ref().err()?;
            Some(format!("Sentinel {sentinel}: {error}"))
        })
        .collect();
    failures.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(addr: &str, epoch: u64) -> Result<MasterAt, String> {
        Ok(MasterAt {
            addr: addr.into(),
            epoch,
        })
    }

    fn config() -> SentinelConfig {
        SentinelConfig {
            pool: "p".into(),
            sentinels: vec!["s1".into(), "s2".into()],
            masters: vec!["a".into(), "b".into()],
            auth: None,
        }
    }

    #[test]
    fn a_hold_ends_with_a_newer_master_or_in_time() {
        let config = config();
        let mut known = vec![Known::default(); 2];
        let answers = [("s1", Ok(vec![at("h:1", 0), at("h:2", 0)]))];
        merge(&config, &mut known, &answers);
        let now = Instant::now();
        known[0].held = Some((now, 0));
        known[1].held = Some((now - FAILOVER_HOLD, 0));
        // The promotion is not over: a is still held; b's hold has lasted long enough.
        merge(&config, &mut known, &answers);
        release_holds(&config, &mut known);
        assert_eq!((known[0].held, known[1].held), (Some((now, 0)), None));
        // A Sentinel names a's promoted replica: its hold ends.
        let answers = [("s1", Ok(vec![at("h:3", 1), at("h:2", 0)]))];
        merge(&config, &mut known, &answers);
        release_holds(&config, &mut known);
        assert_eq!(
            (known[0].addr.as_deref(), known[0].held),
            (Some("h:3"), None)
        );
    }

    #[test]
    fn the_newest_answer_wins_and_an_older_one_never_does() {
        let config = config();
        let mut known = vec![Known::default(); 2];
        let unknown = Err("ERR No such master with that name".to_string());
        // At start: what the Sentinels know; one that does not answer changes nothing.
        let answers = [
            ("s1", Ok(vec![at("h:1", 0), unknown.clone()])),
            ("s2", Err(SentinelError::Closed)),
        ];
        assert!(merge(&config, &mut known, &answers));
        assert_eq!(known[0].addr.as_deref(), Some("h:1"));
        assert_eq!(known[1].addr, None);
        assert!(!merge(&config, &mut known, &answers));
        // A failover: the Sentinel that saw it has the higher epoch, whatever its place.
        let answers = [
            ("s1", Ok(vec![at("h:1", 0), at("h:2", 0)])),
            ("s2", Ok(vec![at("h:3", 1), at("h:2", 0)])),
        ];
        assert!(merge(&config, &mut known, &answers));
        assert_eq!(known[0].addr.as_deref(), Some("h:3"));
        assert_eq!(known[1].addr.as_deref(), Some("h:2"));
        // Only the Sentinel that has not heard of it answers: the server stays where it is.
        let answers = [("s1", Ok(vec![at("h:1", 0), at("h:2", 0)]))];
        assert!(!merge(&config, &mut known, &answers));
        assert_eq!((known[0].addr.as_deref(), known[0].epoch), (Some("h:3"), 1));
        // Nobody answers: nothing is forgotten.
        assert!(!merge(
            &config,
            &mut known,
            &[("s1", Err(SentinelError::TimedOut))]
        ));
        assert_eq!(known[1].addr.as_deref(), Some("h:2"));
    }
}
