//! Replica reads: a cluster pool's read policy ([`ReadFrom`], `--read-from`, `read_from:`) and
//! its staleness bound (`--max-replica-lag`, `max_replica_lag:`).
//!
//! Both are a cluster pool's only: a static pool's servers have no replicas percore knows of,
//! so the file refuses the keys there (`refuse_keys`) and `check_static` the flags.

use std::time::Duration;

use super::error::Problem;
use super::read::{Fields, Reader};

/// The file's keys for replica reads, a `cluster:` pool's only.
pub(super) const KEYS: &[&str] = &["read_from", "max_replica_lag"];

/// Default `--max-replica-lag`. A healthy replica acknowledges its offset to its master once a
/// second, so under steady writes it reads as up to ~1.5 s behind (its last acknowledgement
/// plus percore's poll period); 5 s leaves room for that and a slow second, and still keeps a
/// replica that has stopped replicating (paused, its link down, resyncing) out within seconds.
pub const DEFAULT_MAX_REPLICA_LAG: &str = "5s";

/// Where a pool's read-only commands are read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadFrom {
    /// The slot's master, as without replica reads (the default).
    #[default]
    Master,
    /// A healthy replica of the slot's master, else the master.
    PreferReplica,
    /// Replicas only: an error naming the slots' master when none is healthy.
    Replica,
    /// The master and its healthy replicas in turn.
    Any,
}

impl ReadFrom {
    /// Every policy, in `--help` order.
    pub const ALL: [ReadFrom; 4] = [
        ReadFrom::Master,
        ReadFrom::PreferReplica,
        ReadFrom::Replica,
        ReadFrom::Any,
    ];

    /// The policy's name, as the flag and the file take it.
    pub fn name(self) -> &'static str {
        match self {
            ReadFrom::Master => "master",
            ReadFrom::PreferReplica => "prefer-replica",
            ReadFrom::Replica => "replica",
            ReadFrom::Any => "any",
        }
    }
}

impl std::fmt::Display for ReadFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ReadFrom {
    type Err = Problem;

    fn from_str(text: &str) -> Result<Self, Problem> {
        ReadFrom::ALL
            .into_iter()
            .find(|policy| policy.name() == text)
            .ok_or_else(|| Problem::ReadFrom(text.into()))
    }
}

/// A cluster pool's replica-read settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaReads {
    /// The read policy.
    pub read_from: ReadFrom,
    /// Replicas further behind their master than this are not read from; `None`: no bound.
    pub max_lag: Option<Duration>,
}

impl Default for ReplicaReads {
    fn default() -> Self {
        ReplicaReads {
            read_from: ReadFrom::Master,
            max_lag: Some(Duration::from_secs(5)),
        }
    }
}

/// `read_from:` and `max_replica_lag:` (a duration; 0: no bound) of a `cluster:` pool.
pub(super) fn read_replica_keys(reader: &mut Reader, fields: &Fields) -> ReplicaReads {
    let defaults = ReplicaReads::default();
    let read_from = fields.get("read_from").and_then(|entry| {
        let text = reader.text(entry)?;
        text.parse()
            .map_err(|problem| reader.error(entry.line, Some("read_from"), problem))
            .ok()
    });
    let max_lag = match fields.get("max_replica_lag").map(|e| reader.duration(e)) {
        Some(Some(lag)) => (!lag.is_zero()).then_some(lag),
        _ => defaults.max_lag,
    };
    ReplicaReads {
        read_from: read_from.unwrap_or(defaults.read_from),
        max_lag,
    }
}

/// Refuses the replica-read keys in a `servers:` pool, as every key of a cluster pool is.
pub(super) fn refuse_keys(reader: &mut Reader, fields: &Fields) {
    for key in KEYS {
        if let Some(entry) = fields.get(key) {
            reader.error(entry.line, Some(key), Problem::OnlyFor("cluster:"));
        }
    }
}

/// Refuses replica reads for a static pool (`--read-from` over a `servers:` pool's file).
pub(super) fn check_static(pool: &str, reads: &ReplicaReads) -> Result<(), String> {
    match reads.read_from {
        ReadFrom::Master => Ok(()),
        policy => Err(format!(
            "--read-from {policy}: pool '{pool}' has standalone servers (servers:), which have \
             no replicas percore knows of; replica reads need a Redis Cluster pool (cluster:)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_by_name() {
        for policy in ReadFrom::ALL {
            assert_eq!(policy.name().parse::<ReadFrom>(), Ok(policy));
        }
        assert_eq!(
            "replicas".parse::<ReadFrom>().unwrap_err().to_string(),
            "'replicas' is not a read policy: master, prefer-replica, replica or any"
        );
    }

    fn built(text: &str, flags: &crate::config::PoolFlags) -> Result<ReplicaReads, String> {
        let file = crate::config::ConfigFile::parse("p.yml", text, &|_| None)
            .map_err(|errors| errors.0[0].to_string())?;
        let configs = crate::config::runtime_configs(Some(&file), file.process(), flags, 1);
        configs
            .map(|configs| configs[0].replica_reads)
            .map_err(|e| e.to_string())
    }

    const CLUSTER: &str = "p:\n  listen: 127.0.0.1:7100\n  cluster: 127.0.0.1:7000\n";
    const SERVERS: &str = "p:\n  listen: 127.0.0.1:7100\n  redis: true\n  servers:\n   - h:1:1\n";

    #[test]
    fn a_cluster_pool_reads_where_the_file_or_the_flag_says() {
        let flags = crate::config::PoolFlags::default();
        assert_eq!(built(CLUSTER, &flags), Ok(ReplicaReads::default()));
        let text = format!("{CLUSTER}  read_from: any\n  max_replica_lag: 0\n");
        let reads = built(&text, &flags).unwrap();
        assert_eq!((reads.read_from, reads.max_lag), (ReadFrom::Any, None));
        let flags = crate::config::PoolFlags {
            read_from: Some(ReadFrom::Replica),
            max_replica_lag: Some(Duration::from_millis(1500)),
            ..Default::default()
        };
        let reads = built(&text, &flags).unwrap();
        let lag = Some(Duration::from_millis(1500));
        assert_eq!((reads.read_from, reads.max_lag), (ReadFrom::Replica, lag));
        let bad = format!("{CLUSTER}  read_from: slaves\n");
        assert_eq!(
            built(&bad, &Default::default()).unwrap_err(),
            "p.yml:4: pool 'p' key 'read_from': 'slaves' is not a read policy: master, \
             prefer-replica, replica or any"
        );
    }

    #[test]
    fn a_static_pool_refuses_replica_reads() {
        let text = format!("{SERVERS}  read_from: prefer-replica\n");
        assert_eq!(
            built(&text, &Default::default()).unwrap_err(),
            "p.yml:6: pool 'p' key 'read_from': applies only to a pool with cluster:"
        );
        let flags = crate::config::PoolFlags {
            read_from: Some(ReadFrom::Any),
            ..Default::default()
        };
        let error = built(SERVERS, &flags).unwrap_err();
        assert!(
            error.contains("--read-from any: pool 'p' has standalone servers"),
            "{error}"
        );
    }

    #[test]
    fn a_static_pool_reads_its_servers() {
        let mut reads = ReplicaReads::default();
        assert!(check_static("p", &reads).is_ok());
        reads.read_from = ReadFrom::PreferReplica;
        let error = check_static("p", &reads).unwrap_err();
        assert!(
            error.starts_with("--read-from prefer-replica: pool 'p'"),
            "{error}"
        );
    }
}
