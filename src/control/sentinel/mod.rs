//! The Sentinel watcher of a data-store pool (`sentinels:`): one task, on the pool's first
//! core, that owns the truth about where each server's master is, as the topology refresher
//! does for a cluster.
//!
//! Each server of the pool is a Sentinel master, named by the server's name. The watcher asks
//! every Sentinel `SENTINEL MASTER <name>` for every server, at start (every
//! [`STARTUP_RETRY`] until each is found), every refresh interval, whenever a core asks (after
//! a backend failure) and whenever its subscription says so; of the answers it takes, per
//! server, the one with the highest configuration epoch, and never one older than what it
//! already follows, so a Sentinel that has not heard of a failover yet cannot send a server
//! back to its demoted master. It also holds a subscription to `+switch-master` on one
//! Sentinel at a time (the next one when that fails), and each announcement of a failover of
//! one of its masters, and each new subscription (it may have missed some), makes it ask
//! again at once: a failover is followed a few milliseconds after Sentinel announces it.
//!
//! Placement never changes: server `i` keeps token `i` whatever its address, so no key moves
//! and no server is ever ejected. A changed address gives the next layout epoch
//! ([`Topology::of_found_servers`]), handed to `publish`, which sends it to every core; the
//! watcher itself knows nothing of shards.

mod wire;

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

/// What the watcher needs: the pool's Sentinels and masters, and when to ask again.
pub struct Watcher {
    /// The core's socket ring.
    pub uring: Rc<Uring>,
    /// The pool's Sentinels, master names and password.
    pub config: &'static SentinelConfig,
    /// Bound on one Sentinel's answer (connect included).
    pub timeout: Duration,
    /// Period of the background round of questions.
    pub interval: Duration,
    /// Notified by the cores that want the masters asked for now.
    pub wanted: Rc<Signal>,
}

/// What the watcher follows for one server.
#[derive(Debug, Clone, Default)]
struct Known {
    /// Where its master is; `None` until a Sentinel has said.
    addr: Option<String>,
    /// The configuration epoch that address is from.
    epoch: u64,
}

/// One Sentinel's answers: per master, where it is or why that Sentinel does not say.
type Answers = Result<Vec<Result<MasterAt, String>>, SentinelError>;

impl Watcher {
    /// Runs forever, handing every changed layout to `publish`.
    pub async fn run<F, Fut>(self, publish: F)
    where
        F: FnMut(Update) -> Fut,
        Fut: Future<Output = ()>,
    {
        futures_lite::future::or(self.ask_rounds(publish), self.listen()).await
    }

    /// The rounds of questions, forever.
    async fn ask_rounds<F, Fut>(&self, mut publish: F)
    where
        F: FnMut(Update) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut known = vec![Known::default(); self.config.masters.len()];
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
            if merge(self.config, &mut known, &answers) {
                epoch += 1;
                let addrs: Vec<Option<String>> = known.iter().map(|k| k.addr.clone()).collect();
                let topology = Topology::of_found_servers(&addrs, epoch);
                publish(Update::Topology(Arc::new(topology))).await;
            }
            if answers.iter().all(|(_, a)| a.is_err()) {
                failures += 1;
                let text = failure_text(&answers);
                if failures == 1 || failures.is_multiple_of(FAILURE_LOG_EVERY) {
                    warn!(
                        pool = self.config.pool,
                        failures,
                        error = text,
                        "no Sentinel answered"
                    );
                }
                // Told to the cores while they have no layout, so clients read why.
                if epoch == 0 && last_error.as_deref() != Some(text.as_str()) {
                    publish(Update::Unreachable(Arc::from(text.as_str()))).await;
                    last_error = Some(text);
                }
            } else {
                failures = 0;
            }
            let wait = if known.iter().any(|k| k.addr.is_none()) {
                STARTUP_RETRY
            } else {
                self.interval
            };
            let _ = glommio::timer::timeout(wait, async {
                self.wanted.wait().await;
                Ok(())
            })
            .await;
        }
    }

    /// Every Sentinel's answers for every master, asked of all at once, in Sentinel order.
    async fn ask_all(&self) -> Vec<(&'static str, Answers)> {
        let config = self.config;
        let tasks: Vec<_> = config
            .sentinels
            .iter()
            .map(|sentinel| {
                let uring = self.uring.clone();
                let (timeout, auth) = (self.timeout, config.auth.as_ref());
                glommio::spawn_local(async move {
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

    /// Holds a `+switch-master` subscription, on one Sentinel after another, forever.
    async fn listen(&self) {
        let sentinels = &self.config.sentinels;
        let mut backoff = MIN_BACKOFF;
        for sentinel in sentinels.iter().cycle() {
            let (subscribed, error) = self.subscribe(sentinel).await;
            if subscribed {
                backoff = MIN_BACKOFF;
            }
            debug!(pool = self.config.pool, sentinel, %error, "Sentinel subscription ended");
            glommio::timer::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        // No Sentinel at all (the configuration refuses that): nothing to listen to.
        std::future::pending::<()>().await;
    }

    /// Subscribes at `sentinel` and follows its announcements until the connection fails;
    /// whether it got as far as subscribing, and why it ended.
    async fn subscribe(&self, sentinel: &str) -> (bool, SentinelError) {
        let auth = self.config.auth.as_ref();
        let mut conn = match SentinelConn::open(&self.uring, sentinel, auth, self.timeout).await {
            Ok(conn) => conn,
            Err(error) => return (false, error),
        };
        let mut wire = BytesMut::new();
        wire::subscribe(&mut wire);
        if let Err(error) = conn.send(&wire).await {
            return (false, error);
        }
        if let Err(error) = wire::within(self.timeout, conn.reply()).await {
            return (false, error);
        }
        debug!(
            pool = self.config.pool,
            sentinel, "subscribed to +switch-master"
        );
        // Whatever was announced while no subscription was held is asked for now.
        self.wanted.notify();
        (true, self.follow(sentinel, &mut conn).await)
    }

    /// Reads a subscription's messages until it fails. Quiet for an interval, it is asked for
    /// a PING, which must be answered in time: a Sentinel gone without closing the connection
    /// is left for the next one.
    async fn follow(&self, sentinel: &str, conn: &mut SentinelConn) -> SentinelError {
        let mut pinged = false;
        loop {
            let wait = if pinged { self.timeout } else { self.interval };
            let message = match wire::within(wait, conn.reply()).await {
                Ok(message) => message,
                Err(SentinelError::TimedOut) if !pinged => {
                    let mut wire = BytesMut::new();
                    crate::resp::encode::command(&mut wire, [&b"PING"[..]]);
                    if let Err(error) = conn.send(&wire).await {
                        return error;
                    }
                    pinged = true;
                    continue;
                }
                Err(error) => return error,
            };
            pinged = false;
            let Some(switch) = wire::read_switch(&message) else {
                continue;
            };
            if self.config.masters.contains(&switch.name) {
                info!(
                    pool = self.config.pool,
                    server = switch.name,
                    old = switch.from,
                    new = switch.to,
                    sentinel,
                    "Sentinel announced a failover"
                );
                self.wanted.notify();
            }
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

    #[test]
    fn the_newest_answer_wins_and_an_older_one_never_does() {
        let config = SentinelConfig {
            pool: "p".into(),
            sentinels: vec!["s1".into(), "s2".into()],
            masters: vec!["a".into(), "b".into()],
            auth: None,
        };
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
