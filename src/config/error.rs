//! What is wrong with a configuration file, where: every error names the file, the line, the
//! pool (or the `percore:` section) and the key, so an operator goes straight to it, and a
//! check reports every error of the file at once rather than one per run.

use std::fmt;

use thiserror::Error;

use crate::auth::UserError;

/// The part of the file an error is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A pool, by name.
    Pool(String),
    /// The `percore:` section of process-wide settings.
    Process,
}

/// One error in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as it was named to percore.
    pub file: String,
    /// 1-based line; 0 when the error is about the file as a whole (it cannot be read).
    pub line: usize,
    /// The pool or section, if the error is inside one.
    pub scope: Option<Scope>,
    /// The key, if the error is about one.
    pub key: Option<String>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for ConfigError {
    /// `percore.yml:12: pool 'alpha' key 'hash': unknown hash 'fnv2' (one of ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        f.write_str(":")?;
        match &self.scope {
            Some(Scope::Pool(name)) => write!(f, " pool '{name}'")?,
            Some(Scope::Process) => f.write_str(" section 'percore'")?,
            None => {}
        }
        if let Some(key) = &self.key {
            write!(f, " key '{key}'")?;
        }
        if self.scope.is_some() || self.key.is_some() {
            f.write_str(":")?;
        }
        write!(f, " {}", self.problem)
    }
}

/// Every error found in one file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// What is wrong with a key, a value or the file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Read(String),
    /// The text is not YAML percore reads.
    #[error("{0}")]
    Syntax(String),
    /// The value has the wrong shape (a list where one value goes, and so on).
    #[error("expected {0}")]
    Shape(&'static str),
    /// A key percore does not know.
    #[error("unknown key (known: {0})")]
    UnknownKey(String),
    /// The same key twice in one mapping.
    #[error("is given twice")]
    Duplicate,
    /// Two keys that are one setting, both given.
    #[error("is the same setting as '{0}': give one of them")]
    SameSetting(&'static str),
    /// A key with nothing after the colon.
    #[error("has no value")]
    Empty,
    /// Not a whole number without sign.
    #[error("'{0}' is not a number")]
    NotANumber(String),
    /// A number outside what the key accepts.
    #[error("{value} is out of range ({min} to {max})")]
    Range {
        /// The value given.
        value: String,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// Zero where it means nothing (a timeout, a period).
    #[error("must be more than 0")]
    Zero,
    /// Not exactly `true` or `false` (nutcracker's rule).
    #[error("'{0}' is not true or false")]
    NotABool(String),
    /// Not a duration.
    #[error("'{value}' is not a duration (a number of milliseconds, or e.g. 5s, 500ms): {reason}")]
    Duration {
        /// The value given.
        value: String,
        /// Why.
        reason: String,
    },
    /// A hash nutcracker does not have.
    #[error("unknown hash '{value}' (one of {known})")]
    Hash {
        /// The value given.
        value: String,
        /// The known names.
        known: String,
    },
    /// A distribution nutcracker does not have.
    #[error("unknown distribution '{value}' (one of {known})")]
    Distribution {
        /// The value given.
        value: String,
        /// The known names.
        known: String,
    },
    /// A hash tag that is not two characters.
    #[error("'{0}' is not a hash tag of two characters, like \"{{}}\"")]
    HashTag(String),
    /// A `listen:` value that does not parse.
    #[error("'{value}' {reason}")]
    Listen {
        /// The value given.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// A server entry that does not parse.
    #[error("'{value}' {reason}")]
    Server {
        /// The entry given.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// An address that is not `host:port`.
    #[error("'{0}' is not host:port")]
    Address(String),
    /// An address a client cannot connect to (`--announce`, `proxy_peers`).
    #[error("'{0}' is not an address a client can connect to")]
    Unconnectable(String),
    /// Two servers of one pool with the same name (nutcracker's rule: the ring name).
    #[error("two servers are named '{0}'")]
    DuplicateServer(String),
    /// Two pools on one address.
    #[error("listens on {listen}, as pool '{other}' does")]
    DuplicateListen {
        /// The address.
        listen: String,
        /// The pool that listens there first.
        other: String,
    },
    /// A file with no pools.
    #[error("has no pools")]
    NoPools,
    /// A pool without `listen:`.
    #[error("pool has no listen: address")]
    NoListen,
    /// A pool with neither `servers:` nor `cluster:`.
    #[error("pool has neither servers: (standalone servers) nor cluster: (Redis Cluster seeds)")]
    NoUpstream,
    /// A pool with both `servers:` and `cluster:`.
    #[error("pool has both servers: and cluster:; a pool has one upstream")]
    TwoUpstreams,
    /// An empty list where at least one entry is needed.
    #[error("needs at least one entry")]
    EmptyList,
    /// A memcached pool (`redis: false`, nutcracker's default).
    #[error("percore speaks only Redis: a pool without 'redis: true' is a memcached pool to nutcracker (its default); add 'redis: true'")]
    Memcached,
    /// A key for the other kind of pool.
    #[error("applies only to a pool with {0}")]
    OnlyFor(&'static str),
    /// A "no limit" 0 in a cluster pool.
    #[error("0 (no limit) is not taken by a cluster: pool, which bounds it as percore's flags do")]
    Unbounded,
    /// A Redis Cluster has only database 0.
    #[error("a Redis Cluster has only database 0")]
    ClusterDb,
    /// A key that means something only with another setting.
    #[error("applies only with {0}")]
    Needs(&'static str),
    /// A server of a Sentinel pool without its master name.
    #[error(
        "'{0}' has no name: a pool with sentinels: names each server by its Sentinel master name"
    )]
    SentinelName(String),
    /// `auto_eject_hosts: true` with `sentinels:`: cache mode and data-store mode at once.
    #[error(
        "a pool with sentinels: is in data-store mode, which never ejects a server (its keys \
         must not move): take auto_eject_hosts: true out, or the sentinels"
    )]
    SentinelEject,
    /// `backend_user` without a password.
    #[error("needs backend_password, backend_password_env or redis_auth too")]
    UserWithoutPassword,
    /// An environment variable named by a `*_env` key is not set.
    #[error("environment variable {0} is not set")]
    EnvUnset(String),
    /// A user definition percore cannot read.
    #[error("{0}")]
    User(UserError),
    /// A log filter tracing cannot read.
    #[error("'{value}' is not a log filter: {reason}")]
    LogLevel {
        /// The value given.
        value: String,
        /// Why.
        reason: String,
    },
    /// A log format percore does not write.
    #[error("'{0}' is not a log format: text or json")]
    LogFormat(String),
    /// A listen address that is every local address, with no `announce:`.
    #[error("'{0}' is every local address, not one cluster-mode clients can be told to connect to: give announce: host:port")]
    NeedsAnnounce(String),
    /// A reload that changes a setting only a restart changes (`config::reload`).
    #[error("cannot change on reload ({was} now, {wanted} in the file): {how}")]
    Fixed {
        /// The value the process runs with.
        was: String,
        /// The value the file has now.
        wanted: String,
        /// How it can change instead.
        how: &'static str,
    },
    /// A `tls:` or `backend_tls:` setting that cannot be used (say why).
    #[error("{0}")]
    Tls(String),
    /// A read policy percore does not have (`read_from:`).
    #[error("'{0}' is not a read policy: master, prefer-replica, replica or any")]
    ReadFrom(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_line_pool_and_key() {
        let error = ConfigError {
            file: "percore.yml".into(),
            line: 12,
            scope: Some(Scope::Pool("alpha".into())),
            key: Some("hash".into()),
            problem: Problem::Hash {
                value: "fnv2".into(),
                known: "md5, crc16".into(),
            },
        };
        assert_eq!(
            error.to_string(),
            "percore.yml:12: pool 'alpha' key 'hash': unknown hash 'fnv2' (one of md5, crc16)"
        );
        let whole = ConfigError {
            line: 0,
            scope: None,
            key: None,
            problem: Problem::NoPools,
            ..error.clone()
        };
        assert_eq!(whole.to_string(), "percore.yml: has no pools");
        let process = ConfigError {
            scope: Some(Scope::Process),
            key: Some("threads".into()),
            problem: Problem::NotANumber("x".into()),
            ..error
        };
        assert_eq!(
            process.to_string(),
            "percore.yml:12: section 'percore' key 'threads': 'x' is not a number"
        );
    }
}
