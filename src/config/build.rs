//! Building the [`Config`] the runtime serves from the configuration file and the flags: a
//! flag given on the command line goes over the file's value, and without a file the flags
//! and their defaults are the whole configuration, as before the file existed.
//!
//! [`pool_config`] turns one pool of a file (`cluster:` or `servers:`) into the runtime's
//! per-pool [`Config`]; [`runtime_configs`] builds one per pool.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::file::ConfigFile;
use super::pool::PoolConfig;
use super::process::ProcessConfig;
use super::tls::{with_tls, TlsFlags};
use super::upstream::{ServersUpstream, Upstream};
use super::values::Listen;
use super::{
    BackendAuth, Config, EjectPolicy, ListenAddr, OutputLimit, ReadFrom, ReplicaReads,
    SentinelConfig, StaticServers,
};
use crate::auth::Users;
use crate::error::Error;
use crate::resp::parse::ParseLimits;
use crate::upstream::{Ring, Scheme, ServerSpec};

/// The pool settings given on the command line; `None` (or empty) where not given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolFlags {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--cluster`.
    pub seeds: Option<Vec<String>>,
    /// `--backend-conns`.
    pub backend_conns: Option<usize>,
    /// `--refresh-interval`.
    pub refresh_interval: Option<Duration>,
    /// `--backend-timeout`.
    pub backend_timeout: Option<Duration>,
    /// `--max-query-buffer`.
    pub max_query_buffer: Option<usize>,
    /// `--max-bulk-len`.
    pub max_bulk_len: Option<usize>,
    /// `--max-clients`.
    pub max_clients: Option<usize>,
    /// `--idle-timeout` (zero: never).
    pub idle_timeout: Option<Duration>,
    /// `--max-output-buffer`.
    pub max_output_buffer: Option<usize>,
    /// `--requirepass` (or `PERCORE_REQUIREPASS`).
    pub requirepass: Option<String>,
    /// `--user`, every one given; they replace the file's `users:`.
    pub users: Vec<String>,
    /// `--backend-user`.
    pub backend_user: Option<String>,
    /// `--backend-password` (or `PERCORE_BACKEND_PASSWORD`).
    pub backend_password: Option<String>,
    /// `--max-leased-conns`.
    pub max_leased_conns: Option<usize>,
    /// `--pubsub-output-hard-limit`.
    pub pubsub_output_hard_limit: Option<usize>,
    /// `--pubsub-output-soft-limit`.
    pub pubsub_output_soft_limit: Option<usize>,
    /// `--pubsub-output-soft-seconds`.
    pub pubsub_output_soft_seconds: Option<Duration>,
    /// `--announce`.
    pub announce: Option<String>,
    /// `--proxy-peers`.
    pub proxy_peers: Option<Vec<String>>,
    /// `--slowlog-slower-than`, in µs (negative: none).
    pub slowlog_slower_than: Option<i64>,
    /// `--slowlog-max-len`.
    pub slowlog_max_len: Option<usize>,
    /// `--tls-*` and `--backend-tls-*`.
    pub tls: TlsFlags,
    /// `--read-from`.
    pub read_from: Option<ReadFrom>,
    /// `--max-replica-lag` (zero: no bound).
    pub max_replica_lag: Option<Duration>,
}

/// The runtime's [`Config`]s: one per pool of the file (flags over the file's values when it
/// has exactly one pool), or the flags alone without a file. With several pools, pool
/// settings given as flags would be ambiguous and are refused.
pub fn runtime_configs(
    file: Option<&ConfigFile>,
    process: &ProcessConfig,
    flags: &PoolFlags,
    cores: usize,
) -> Result<Vec<Config>, Error> {
    let Some(file) = file else {
        let mut base = with_process(Config::default(), process, cores);
        // Flags alone are percore's own way to run, whose ports default to loopback: no stats
        // port on every address unless asked for.
        if !process.stats_given() {
            base.stats_listen = None;
        }
        let config = with_tls(apply(base, None, flags)?, None, &flags.tls)?;
        return Ok(vec![config.validate()?]);
    };
    match file.pools() {
        [pool] => {
            let base = pool_config(pool, process, cores)?;
            let config = with_tls(apply(base, Some(pool), flags)?, Some(pool), &flags.tls)?;
            Ok(vec![config.validate()?])
        }
        pools => {
            if flags.any_given() {
                return Err(Error::Config(format!(
                    "{}: {} pools; pool settings given as flags would apply to which? Set \
                     them in the file, per pool",
                    file.name(),
                    pools.len()
                )));
            }
            let mut configs = Vec::with_capacity(pools.len());
            for pool in pools {
                let config = pool_config(pool, process, cores)?;
                let config = with_tls(config, Some(pool), &TlsFlags::default())?;
                configs.push(config.validate()?);
            }
            Ok(configs)
        }
    }
}

impl PoolFlags {
    /// Whether any pool setting was given on the command line.
    pub fn any_given(&self) -> bool {
        *self != PoolFlags::default()
    }
}

/// The runtime's [`Config`] for one pool of a file, with the process settings.
pub fn pool_config(
    pool: &PoolConfig,
    process: &ProcessConfig,
    cores: usize,
) -> Result<Config, Error> {
    let defaults = Config::default();
    let (seeds, servers, refresh_interval, announce, peers) = match pool.upstream() {
        Upstream::Cluster(cluster) => (
            cluster.seeds.clone(),
            None,
            cluster.refresh_interval,
            cluster.announce.clone(),
            cluster.proxy_peers.clone(),
        ),
        Upstream::Servers(servers) => (
            Vec::new(),
            Some(static_servers(pool.name(), servers)?),
            defaults.refresh_interval,
            None,
            Vec::new(),
        ),
    };
    let replica_reads = match pool.upstream() {
        Upstream::Cluster(cluster) => cluster.replica_reads,
        Upstream::Servers(_) => defaults.replica_reads,
    };
    let limits = pool.limits();
    let config = Config {
        name: pool.name().into(),
        listen: resolve(pool.name(), pool.listen())?,
        seeds,
        servers,
        backend_conns: pool.server_connections(),
        refresh_interval,
        backend_timeout: pool.backend_timeout().unwrap_or(defaults.backend_timeout),
        max_query_buffer: limits.max_query_buffer,
        limits: ParseLimits {
            max_bulk_len: limits.max_bulk_len,
            ..ParseLimits::default()
        },
        max_clients: pool.max_clients().unwrap_or(defaults.max_clients),
        tcp_keepalive: pool.tcpkeepalive(),
        listen_backlog: i32::try_from(pool.backlog()).unwrap_or(i32::MAX),
        idle_timeout: limits.idle_timeout,
        max_output_buffer: limits.max_output_buffer,
        backend_auth: pool.backend_auth().cloned(),
        max_leased_conns: limits.max_leased_conns,
        pubsub_limit: limits.pubsub_limit,
        users: pool.users().clone(),
        announce,
        peers,
        slowlog_slower_than: limits.slowlog_slower_than,
        slowlog_max_len: limits.slowlog_max_len,
        sidecar: *pool.sidecar(),
        replica_reads,
        ..defaults
    };
    Ok(with_process(config, process, cores))
}

/// A `servers:` pool as the runtime serves it. With `sentinels:`, each server's name is its
/// Sentinel master name (the file reader makes sure every server has one) and its `host:port`
/// is not connected to: Sentinel says where the master is.
fn static_servers(pool: &str, upstream: &ServersUpstream) -> Result<StaticServers, Error> {
    let mut specs = Vec::with_capacity(upstream.servers.len());
    let mut addrs = Vec::with_capacity(upstream.servers.len());
    for server in &upstream.servers {
        // A Unix socket server is reached by its path (`net::connect` tells it by the leading
        // `/`), which is also the address ketama names it by.
        let addr = server.address();
        specs.push(ServerSpec::new(
            addr.clone(),
            server.weight,
            server.name.clone(),
        ));
        addrs.push(addr);
    }
    let scheme = Scheme {
        hash: upstream.hash,
        distribution: upstream.distribution,
        hash_tag: upstream.hash_tag,
    };
    // The ring checks what nutcracker checks (weights, duplicate names) once more.
    Ring::build(&specs, scheme).map_err(|e| Error::Config(format!("pool '{pool}': {e}")))?;
    let eject = upstream.auto_eject_hosts.then_some(EjectPolicy {
        failure_limit: upstream.server_failure_limit,
        retry_timeout: upstream.server_retry_timeout,
    });
    let sentinel = (!upstream.sentinels.is_empty()).then(|| SentinelConfig {
        pool: pool.to_string(),
        sentinels: upstream.sentinels.clone(),
        // The file reader refused a server without a name in a Sentinel pool.
        masters: upstream.servers.iter().map(|s| s.ring_name()).collect(),
        auth: upstream.sentinel_auth.clone(),
    });
    Ok(StaticServers {
        specs,
        addrs,
        scheme,
        pool: pool.to_string(),
        eject,
        db: upstream.redis_db,
        sentinel,
    })
}

/// `config` with the process-wide settings.
fn with_process(config: Config, process: &ProcessConfig, cores: usize) -> Config {
    Config {
        threads: process.threads().unwrap_or(cores),
        pin: process.pin(),
        shutdown_timeout: process.shutdown_timeout(),
        stats_listen: Some(process.stats_listen().to_string()),
        stats_interval: process.stats_interval(),
        metrics_listen: process.metrics_listen().map(String::from),
        upgrade_socket: process.upgrade_socket().map(Into::into),
        ..config
    }
}

/// Where a pool listens: a TCP `listen:`'s socket address (a name resolves to its first
/// address), or the Unix socket's path and permissions as written.
fn resolve(pool: &str, listen: &Listen) -> Result<ListenAddr, Error> {
    if let Listen::Unix { path, permissions } = listen {
        return Ok(ListenAddr::Unix {
            path: path.into(),
            permissions: *permissions,
        });
    }
    let text = listen.to_string();
    let resolved = text.to_socket_addrs().map(|mut addrs| addrs.next());
    match resolved {
        Ok(Some(addr)) => Ok(ListenAddr::Tcp(addr)),
        Ok(None) => Err(Error::Config(format!(
            "pool '{pool}': listen {text} has no address"
        ))),
        Err(e) => Err(Error::Config(format!("pool '{pool}': listen {text}: {e}"))),
    }
}

/// `config` with every flag given put over it. `pool` is the file's pool it came from, whose
/// passwords and user definitions a flag may replace one by one.
fn apply(config: Config, pool: Option<&PoolConfig>, flags: &PoolFlags) -> Result<Config, Error> {
    let users = if flags.requirepass.is_some() || !flags.users.is_empty() {
        let file = pool.map(|p| p.client_auth().clone()).unwrap_or_default();
        let requirepass = flags.requirepass.clone().or(file.requirepass);
        let definitions = if flags.users.is_empty() {
            file.definitions
        } else {
            flags.users.clone()
        };
        Users::new(requirepass.as_deref(), &definitions)
            .map_err(|e| Error::Config(format!("--user: {e}")))?
    } else {
        config.users.clone()
    };
    let file_auth = config.backend_auth.clone();
    let backend_user = flags
        .backend_user
        .clone()
        .or_else(|| file_auth.as_ref().and_then(|a| a.user.clone()));
    let backend_password = flags
        .backend_password
        .clone()
        .or_else(|| file_auth.map(|a| a.password));
    let backend_auth = match (backend_user, backend_password) {
        (user, Some(password)) => Some(BackendAuth { user, password }),
        (Some(_), None) => {
            return Err(Error::Config(
                "--backend-user needs --backend-password (or PERCORE_BACKEND_PASSWORD, or \
                 backend_password in the file)"
                    .into(),
            ))
        }
        (None, None) => None,
    };
    Ok(Config {
        name: config.name,
        listen: flags.listen.map_or(config.listen, ListenAddr::Tcp),
        seeds: flags.seeds.clone().unwrap_or(config.seeds),
        backend_conns: flags.backend_conns.unwrap_or(config.backend_conns),
        refresh_interval: flags.refresh_interval.unwrap_or(config.refresh_interval),
        backend_timeout: flags.backend_timeout.unwrap_or(config.backend_timeout),
        max_query_buffer: flags.max_query_buffer.unwrap_or(config.max_query_buffer),
        limits: ParseLimits {
            max_bulk_len: flags.max_bulk_len.unwrap_or(config.limits.max_bulk_len),
            ..config.limits
        },
        max_clients: flags.max_clients.unwrap_or(config.max_clients),
        idle_timeout: match flags.idle_timeout {
            Some(timeout) => (!timeout.is_zero()).then_some(timeout),
            None => config.idle_timeout,
        },
        max_output_buffer: flags.max_output_buffer.unwrap_or(config.max_output_buffer),
        backend_auth,
        max_leased_conns: flags.max_leased_conns.unwrap_or(config.max_leased_conns),
        pubsub_limit: OutputLimit {
            hard: flags
                .pubsub_output_hard_limit
                .unwrap_or(config.pubsub_limit.hard),
            soft: flags
                .pubsub_output_soft_limit
                .unwrap_or(config.pubsub_limit.soft),
            soft_for: flags
                .pubsub_output_soft_seconds
                .unwrap_or(config.pubsub_limit.soft_for),
        },
        users,
        announce: flags.announce.clone().or(config.announce),
        peers: flags.proxy_peers.clone().unwrap_or(config.peers),
        slowlog_slower_than: match flags.slowlog_slower_than {
            Some(us) => u64::try_from(us).ok().map(Duration::from_micros),
            None => config.slowlog_slower_than,
        },
        slowlog_max_len: flags.slowlog_max_len.unwrap_or(config.slowlog_max_len),
        replica_reads: ReplicaReads {
            read_from: flags.read_from.unwrap_or(config.replica_reads.read_from),
            max_lag: match flags.max_replica_lag {
                Some(lag) => (!lag.is_zero()).then_some(lag),
                None => config.replica_reads.max_lag,
            },
        },
        ..config
    })
}

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
