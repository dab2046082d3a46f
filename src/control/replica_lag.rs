//! How far behind its master each replica is, judged from the masters' `INFO replication`
//! (pure: text and times in, verdicts out; the shard's watcher on core 0 asks the masters and
//! sends the verdicts to every core as `Notice::Replicas`).
//!
//! A master lists each replica with the replication offset the replica last acknowledged
//! (`slave0:ip=..,port=..,state=online,offset=N,lag=S`) beside its own `master_repl_offset`.
//! The judge keeps each master's offsets of the last few polls with their times, so a
//! replica's lag in time is how long ago the master had no more than the replica has now:
//! the replica holds every write the master had accepted up to `lag` ago. Polled every
//! [`POLL`], and replicas acknowledge once a second, so the figure is good to about a second
//! (a healthy replica under writes reads up to ~1.5 s); an idle master's replicas are 0 behind.
//!
//! A replica its master does not list as online (syncing, its link down) is out of rotation.
//! When the master does not answer (it died, or is being failed over) its replicas keep their
//! last verdict: nothing newer than what they hold can be read anywhere then, and reading
//! them is what keeps the master's slots readable until a replica is promoted.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How often the masters are asked. Replicas acknowledge their offset once a second, so
/// polling faster would not see them sooner; twice a second halves the delay the poll adds.
pub const POLL: Duration = Duration::from_millis(500);

/// A replica's state as the last lag check found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LagState {
    /// Within the bound.
    Ok,
    /// Further behind than the bound.
    Lagging,
    /// Its master does not list it as an online replica.
    NotReplicating,
    /// Its master did not answer; the last verdict is kept (in rotation if it had none).
    MasterUnreachable {
        /// Whether the kept verdict has it in rotation.
        in_rotation: bool,
    },
}

impl LagState {
    /// Whether reads may go to the replica.
    pub fn in_rotation(self) -> bool {
        match self {
            LagState::Ok => true,
            LagState::Lagging | LagState::NotReplicating => false,
            LagState::MasterUnreachable { in_rotation } => in_rotation,
        }
    }

    /// The state's name in `PROXY INFO` and `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            LagState::Ok => "ok",
            LagState::Lagging => "lagging",
            LagState::NotReplicating => "not-replicating",
            LagState::MasterUnreachable { .. } => "master-unreachable",
        }
    }
}

/// The verdict on one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLag {
    /// The replica's `host:port`, as the topology names it.
    pub addr: String,
    /// Its master's.
    pub master: String,
    /// What the check found.
    pub state: LagState,
    /// How far behind it is, when known.
    pub lag: Option<Duration>,
}

/// One master's `INFO replication`, the parts the judge reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// `master_repl_offset`.
    pub offset: u64,
    /// Its `slaveN:` lines.
    pub replicas: Vec<ReplicaOffset>,
}

/// One `slaveN:ip=..,port=..,state=..,offset=..,lag=..` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaOffset {
    /// `ip`.
    pub ip: String,
    /// `port`.
    pub port: u16,
    /// `state=online`: the replica has its data set and follows the stream.
    pub online: bool,
    /// The offset it last acknowledged.
    pub offset: u64,
}

/// Reads a master's `INFO replication` text; `None` if it is not a master's (no
/// `master_repl_offset`, or `role:slave`: a demoted master lists no replicas of its own).
pub fn parse_replication(text: &str) -> Option<Replication> {
    let mut offset = None;
    let mut replicas = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line == "role:slave" {
            return None;
        }
        if let Some(value) = line.strip_prefix("master_repl_offset:") {
            offset = value.parse().ok();
            continue;
        }
        let Some((name, fields)) = line.split_once(':') else {
            continue;
        };
        let numbered = name.strip_prefix("slave").map(str::parse::<u32>);
        if !matches!(numbered, Some(Ok(_))) {
            continue;
        }
        let field = |key: &str| {
            fields
                .split(',')
                .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
        };
        let (Some(ip), Some(port), Some(state), Some(at)) =
            (field("ip"), field("port"), field("state"), field("offset"))
        else {
            continue;
        };
        let (Ok(port), Ok(at)) = (port.parse(), at.parse()) else {
            continue;
        };
        replicas.push(ReplicaOffset {
            ip: ip.to_string(),
            port,
            online: state == "online",
            offset: at,
        });
    }
    Some(Replication {
        offset: offset?,
        replicas,
    })
}

/// One master's answer in one poll.
#[derive(Debug, Clone)]
pub struct MasterReport<'a> {
    /// The master's `host:port`.
    pub master: &'a str,
    /// Its replicas as the topology lists them.
    pub replicas: &'a [String],
    /// Its `INFO replication`, or `None` when it did not answer (or not as a master).
    pub replication: Option<Replication>,
}

/// Judges replicas' lag from poll to poll.
#[derive(Debug)]
pub struct LagJudge {
    /// `--max-replica-lag`.
    max_lag: Duration,
    /// Each master's offsets at the last polls, oldest first, with when they were read.
    history: HashMap<String, VecDeque<(Instant, u64)>>,
    /// The last verdict on each replica, by address, kept while its master does not answer.
    last: HashMap<String, ReplicaLag>,
}

impl LagJudge {
    /// A judge holding replicas to `max_lag`.
    pub fn new(max_lag: Duration) -> Self {
        LagJudge {
            max_lag,
            history: HashMap::new(),
            last: HashMap::new(),
        }
    }

    /// Offsets kept per master: enough polls to look back past `max_lag`, and two more.
    fn history_len(&self) -> usize {
        (self.max_lag.as_millis() / POLL.as_millis().max(1)) as usize + 2
    }

    /// The verdict on every replica of `reports`, polled at `now`.
    pub fn judge(&mut self, now: Instant, reports: &[MasterReport]) -> Vec<ReplicaLag> {
        let keep = self.history_len();
        let mut verdicts = Vec::new();
        for report in reports {
            let Some(replication) = &report.replication else {
                for addr in report.replicas {
                    let kept = self.last.get(addr).is_none_or(|v| v.state.in_rotation());
                    let lag = self.last.get(addr).and_then(|v| v.lag);
                    let state = LagState::MasterUnreachable { in_rotation: kept };
                    verdicts.push(verdict(addr, report.master, state, lag));
                }
                continue;
            };
            let history = self.history.entry(report.master.to_string()).or_default();
            history.push_back((now, replication.offset));
            while history.len() > keep {
                history.pop_front();
            }
            for addr in report.replicas {
                let found = find(&replication.replicas, addr).filter(|r| r.online);
                let (state, lag) = match found {
                    None => (LagState::NotReplicating, None),
                    Some(replica) => {
                        let lag = lag_of(history, now, replica.offset);
                        let state = match lag > self.max_lag {
                            true => LagState::Lagging,
                            false => LagState::Ok,
                        };
                        (state, Some(lag))
                    }
                };
                verdicts.push(verdict(addr, report.master, state, lag));
            }
        }
        self.history
            .retain(|master, _| reports.iter().any(|r| r.master == master));
        self.last = verdicts
            .iter()
            .map(|v| (v.addr.clone(), v.clone()))
            .collect();
        verdicts
    }
}

fn verdict(addr: &str, master: &str, state: LagState, lag: Option<Duration>) -> ReplicaLag {
    ReplicaLag {
        addr: addr.to_string(),
        master: master.to_string(),
        state,
        lag,
    }
}

/// The master's line for the replica at `addr`: by `ip:port`, else by port alone when one
/// line has it (a replica may reach its master from another address than it announces).
fn find<'r>(replicas: &'r [ReplicaOffset], addr: &str) -> Option<&'r ReplicaOffset> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let exact = replicas.iter().find(|r| r.ip == host && r.port == port);
    let mut same_port = replicas.iter().filter(|r| r.port == port);
    exact.or_else(|| match (same_port.next(), same_port.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    })
}

/// How long ago the master had no more than `offset`: zero if the replica has all the master
/// had at the latest poll, else the time since the newest poll whose offset it has reached
/// (or since the oldest kept, which is past the bound, if it has reached none).
fn lag_of(history: &VecDeque<(Instant, u64)>, now: Instant, offset: u64) -> Duration {
    let Some(&(_, latest)) = history.back() else {
        return Duration::ZERO;
    };
    if offset >= latest {
        return Duration::ZERO;
    }
    let since = history
        .iter()
        .rev()
        .find(|(_, at)| *at <= offset)
        .or(history.front())
        .map_or(now, |(when, _)| *when);
    now.saturating_duration_since(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
        slave0:ip=127.0.0.1,port=7003,state=online,offset=900,lag=0\r\n\
        slave1:ip=10.0.0.9,port=7004,state=wait_bgsave,offset=0,lag=1\r\n\
        master_failover_state:no-failover\r\nmaster_repl_offset:1000\r\n";

    fn replication(offset: u64, replica: u64) -> Option<Replication> {
        let text = INFO
            .replace("offset=900", &format!("offset={replica}"))
            .replace(
                "master_repl_offset:1000",
                &format!("master_repl_offset:{offset}"),
            );
        parse_replication(&text)
    }

    #[test]
    fn reads_a_masters_replication() {
        let found = parse_replication(INFO).unwrap();
        assert_eq!(found.offset, 1000);
        assert_eq!(found.replicas.len(), 2);
        assert_eq!(
            found.replicas[0],
            ReplicaOffset {
                ip: "127.0.0.1".into(),
                port: 7003,
                online: true,
                offset: 900
            }
        );
        assert!(!found.replicas[1].online);
        assert_eq!(
            parse_replication("role:slave\r\nmaster_repl_offset:5\r\n"),
            None
        );
        assert_eq!(parse_replication("-ERR no\r\n"), None);
    }

    #[test]
    fn lag_is_the_time_since_the_master_had_what_the_replica_has() {
        let replicas = ["127.0.0.1:7003".to_string(), "h:7004".to_string()];
        let mut judge = LagJudge::new(Duration::from_secs(2));
        let start = Instant::now();
        let poll = |judge: &mut LagJudge, secs: u64, offset, replica| {
            let report = MasterReport {
                master: "m:1",
                replicas: &replicas,
                replication: replication(offset, replica),
            };
            judge.judge(start + Duration::from_secs(secs), &[report])
        };
        // Caught up at the first poll; the second replica is syncing, by port alone.
        let first = poll(&mut judge, 0, 900, 900);
        assert_eq!(
            (first[0].state, first[0].lag),
            (LagState::Ok, Some(Duration::ZERO))
        );
        assert_eq!(first[1].state, LagState::NotReplicating);
        // The master moves on, the replica stops at 900: 1 s, 2 s, then 3 s behind.
        let lags: Vec<_> = (1..=3)
            .map(|s| poll(&mut judge, s, 900 + s * 100, 900)[0].clone())
            .collect();
        assert_eq!(lags[0].lag, Some(Duration::from_secs(1)));
        assert_eq!(lags[1].state, LagState::Ok);
        assert_eq!(
            (lags[2].state, lags[2].lag),
            (LagState::Lagging, Some(Duration::from_secs(3)))
        );
        // The master stops answering: the verdict is kept.
        let report = MasterReport {
            master: "m:1",
            replicas: &replicas,
            replication: None,
        };
        let kept = judge.judge(start + Duration::from_secs(4), &[report]);
        let state = LagState::MasterUnreachable { in_rotation: false };
        assert_eq!(kept[0].state, state);
        assert!(!kept[0].state.in_rotation());
        // Back, with what the master had at its last answer, 2 s ago: within the bound.
        let back = poll(&mut judge, 5, 1300, 1200);
        assert_eq!(
            (back[0].state, back[0].lag),
            (LagState::Ok, Some(Duration::from_secs(2)))
        );
    }

    #[test]
    fn a_replica_never_judged_whose_master_is_gone_is_read() {
        let replicas = ["r:2".to_string()];
        let report = MasterReport {
            master: "m:1",
            replicas: &replicas,
            replication: None,
        };
        let verdicts = LagJudge::new(POLL).judge(Instant::now(), &[report]);
        assert!(verdicts[0].state.in_rotation());
    }
}
