//! Configuration: each pool's runtime [`Config`], validated whole before a core sees it and
//! immutable after (a reload builds new ones), and the file it is built from.
//! - [`file`](mod@file): the YAML file (twemproxy's format, with percore's keys): [`ConfigFile`] of
//!   [`PoolConfig`]s and a [`ProcessConfig`], every error with its file, line and key.
//! - [`build`]: the runtime [`Config`] from the file and the flags, flags over the file.
//! - [`reload`]: the file read again, and what a reload may not change.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::Users;
use crate::cluster::presence::host_port;
use crate::error::Error;
use crate::resp::parse::ParseLimits;
use crate::upstream::{Scheme, ServerSpec};

pub mod build;
mod credentials;
pub mod error;
pub mod file;
mod listen;
pub mod pool;
pub mod process;
mod read;
pub mod reload;
pub mod replicas;
mod sidecar;
pub mod tls;
mod tls_flags;
mod tls_reload;
mod upstream;
pub mod values;
mod yaml;

pub use build::{pool_config, runtime_configs, PoolFlags};
pub use credentials::ClientAuth;
pub use error::{ConfigError, ConfigErrors, Problem, Scope};
pub use file::ConfigFile;
pub use listen::ListenAddr;
pub use pool::{Limits, PoolConfig};
pub use process::{LogFormat, ProcessConfig, ProcessFlags};
pub use reload::{Loaded, ReloadSource};
pub use replicas::{ReadFrom, ReplicaReads, DEFAULT_MAX_REPLICA_LAG};
pub use sidecar::{AsyncWrites, Sidecar};
pub use tls::{BackendTls, ClientTls, PoolTls, TlsFlags, TlsSettings};
pub use tls_reload::{hangups, reload_certificates, watch_hangup};
pub use upstream::{ClusterUpstream, ServersUpstream, Upstream};

/// The name of the one pool served without a configuration file (the flags' pool): log
/// lines and the stats name a pool, and this one has no key to be named by.
pub const DEFAULT_POOL_NAME: &str = "default";
/// Default listen address: next to Redis's own 6379, on loopback so a fresh start exposes
/// nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:6380";
/// Default interval between periodic topology refreshes. Redirects and connection failures
/// trigger refreshes at once, so this only bounds how stale an idle proxy's map can get.
pub const DEFAULT_REFRESH_INTERVAL: &str = "5s";
/// Default bound on every backend wait. Redis answers in microseconds; a node that has not
/// answered in 2 s is stuck or gone, and clients are better served by an error.
pub const DEFAULT_BACKEND_TIMEOUT: &str = "2s";
/// Default largest client query buffer, Redis's `client-query-buffer-limit`.
pub const DEFAULT_MAX_QUERY_BUFFER: usize = 1 << 30;
/// Default most client connections, like Redis's `maxclients`.
pub const DEFAULT_MAX_CLIENTS: usize = 10_000;
/// Default bound on replies waiting to be written to one client, in bytes. Redis leaves
/// normal clients unbounded; a proxy shared by many applications must not let one client
/// that stops reading hold memory without end, so past this the client is disconnected
/// (as Redis's client-output-buffer-limit does).
pub const DEFAULT_MAX_OUTPUT_BUFFER: usize = 512 * 1024 * 1024;
/// Default hard limit on what waits to be written to a subscriber (replies and messages), in
/// bytes: past it the subscriber is cut off at once. Redis's `client-output-buffer-limit pubsub
/// 32mb 8mb 60`, so applications see the same behaviour as on a node.
pub const DEFAULT_PUBSUB_HARD_LIMIT: usize = 32 * 1024 * 1024;
/// Default soft limit on what waits for a subscriber: past it for
/// [`DEFAULT_PUBSUB_SOFT_SECONDS`] without a break, the subscriber is cut off (Redis's default).
pub const DEFAULT_PUBSUB_SOFT_LIMIT: usize = 8 * 1024 * 1024;
/// Default time a subscriber may stay over the soft limit (Redis's default).
pub const DEFAULT_PUBSUB_SOFT_SECONDS: &str = "60s";
/// Default time given to in-flight requests at shutdown before the process exits anyway.
pub const DEFAULT_SHUTDOWN_TIMEOUT: &str = "5s";
/// Default most dedicated backend connections per core (leased to clients for WATCH and
/// blocking commands, and idle between leases). Each is a client on a node, whose
/// `maxclients` is 10,000 by default: 1,024 per core keeps even an 8-core proxy whose leases all
/// go to one master under that.
pub const DEFAULT_MAX_LEASED_CONNS: usize = 1024;
/// Pending connections the kernel queues per core before accepting, for a pool of the flags
/// (Redis's `tcp-backlog` is 511 for one thread; each core accepts its own share). A file's
/// pool takes its `backlog` (nutcracker's default 512).
pub const DEFAULT_LISTEN_BACKLOG: i32 = 1024;
/// Default `--slowlog-slower-than`, in microseconds: Redis's `slowlog-log-slower-than`.
pub const DEFAULT_SLOWLOG_SLOWER_THAN: i64 = 10_000;
/// Default `--slowlog-max-len`, entries kept per core: Redis's `slowlog-max-len`.
pub const DEFAULT_SLOWLOG_MAX_LEN: usize = 128;
/// Requests of one client the proxy holds at once (sent or waiting for their reply). Past it
/// the proxy stops reading that client, so a client pipelining without end is served in
/// windows and TCP pushes back, instead of the proxy buffering without bound.
pub const MAX_CLIENT_INFLIGHT: usize = 4096;

/// Credentials percore presents to every backend connection (and the refresher's), from
/// `--backend-user` / `--backend-password` (or the `PERCORE_BACKEND_PASSWORD` environment
/// variable, which keeps the password out of `ps`).
#[derive(Clone, PartialEq, Eq)]
pub struct BackendAuth {
    /// The ACL user; `None` authenticates as the default user (`AUTH password`).
    pub user: Option<String>,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for BackendAuth {
    /// Never prints the password: configurations are logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendAuth")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Output limits of a subscriber, like Redis's `client-output-buffer-limit pubsub`: the bytes
/// of replies and messages waiting to be written to it. A subscriber that reads too slowly is
/// cut off instead of making the proxy hold messages for it without end. 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    /// Past this the client is cut off at once.
    pub hard: usize,
    /// Past this for `soft_for` without a break, the client is cut off.
    pub soft: usize,
    /// How long a client may stay over `soft`.
    pub soft_for: Duration,
}

impl Default for OutputLimit {
    fn default() -> Self {
        OutputLimit {
            hard: DEFAULT_PUBSUB_HARD_LIMIT,
            soft: DEFAULT_PUBSUB_SOFT_LIMIT,
            soft_for: Duration::from_secs(60),
        }
    }
}

/// A static (twemproxy) pool's servers and how keys are placed over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticServers {
    /// The servers, as the ring takes them (the address as written, weight, name), in the
    /// configured order; a key's token is its server's position here.
    pub specs: Vec<ServerSpec>,
    /// Where each server is reached, `host:port`, in the same order.
    pub addrs: Vec<String>,
    /// How keys are placed (hash, distribution, hash tag).
    pub scheme: Scheme,
    /// The pool's name in the file, for logs and reports.
    pub pool: String,
    /// Cache mode (`auto_eject_hosts: true`): when a failing server leaves the ring and for
    /// how long. `None`: a dead server's keys get errors until it is back.
    pub eject: Option<EjectPolicy>,
    /// The database every server connection selects (`redis_db`; 0, the servers' default,
    /// selects nothing).
    pub db: u32,
    /// Where the servers' masters are found, when Sentinel names them (`sentinels:`): then
    /// `addrs` are only what the file says, and the masters are served where Sentinel says.
    pub sentinel: Option<SentinelConfig>,
}

/// nutcracker's cache mode: a server that fails `failure_limit` times in a row leaves the
/// ring for `retry_timeout`, then is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EjectPolicy {
    /// `server_failure_limit`: consecutive failures that eject a server.
    pub failure_limit: u32,
    /// `server_retry_timeout`: how long an ejected server stays out of the ring.
    pub retry_timeout: Duration,
}

/// A static pool whose servers are Sentinel masters, found by name (`sentinels:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelConfig {
    /// The pool's name, for the logs of a failover.
    pub pool: String,
    /// The Sentinels, `host:port`, asked in this order.
    pub sentinels: Vec<String>,
    /// Each server's master name at Sentinel, in the servers' order: server `i` (a key's
    /// token) is master `masters[i]`.
    pub masters: Vec<String>,
    /// The password the Sentinels ask for (`sentinel_password`), if they ask for one.
    pub auth: Option<BackendAuth>,
}

/// Everything the proxy needs to know to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The pool's name: its key in the file, or [`DEFAULT_POOL_NAME`] for the pool the flags
    /// describe. Log lines and the stats name the pool with it.
    pub name: String,
    /// Where clients connect: a TCP address every core's listener binds (with SO_REUSEPORT),
    /// or a Unix socket bound once and accepted from by every core.
    pub listen: ListenAddr,
    /// Cluster nodes to ask for the first topology.
    pub seeds: Vec<String>,
    /// A static pool's servers, when the pool is one (`servers:`): then `seeds` is unused.
    pub servers: Option<StaticServers>,
    /// Cores to run on, each with its own executor.
    pub threads: usize,
    /// Pin each executor thread to its core (the default). Off, the kernel schedules them:
    /// better on a host whose cores are busy with other work too, where a pinned thread
    /// waits for its own core while another is free.
    pub pin: bool,
    /// Connections per core to each master.
    pub backend_conns: usize,
    /// Period of the background topology refresh.
    pub refresh_interval: Duration,
    /// Bound on connecting to a backend and on waiting for any of its replies.
    pub backend_timeout: Duration,
    /// Largest unparsed input held for one client before it is disconnected.
    pub max_query_buffer: usize,
    /// Request size limits.
    pub limits: ParseLimits,
    /// Most client connections for the process; each core takes an equal share, since cores
    /// share nothing (the kernel spreads connections evenly across them).
    pub max_clients: usize,
    /// SO_KEEPALIVE on accepted client connections (`tcpkeepalive`, as nutcracker sets it on
    /// its clients), so that a client host that vanished without a FIN is found out by the
    /// kernel and its connection freed.
    pub tcp_keepalive: bool,
    /// The listen(2) backlog of each core's listening socket (a Unix socket's one queue):
    /// `backlog` in the file, [`DEFAULT_LISTEN_BACKLOG`] for a pool of the flags.
    pub listen_backlog: i32,
    /// Close a client idle this long (`None`: never), like Redis's `timeout`.
    pub idle_timeout: Option<Duration>,
    /// Most reply bytes waiting for one client before it is disconnected (0: no limit).
    pub max_output_buffer: usize,
    /// Bound on finishing in-flight requests after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    /// Output limits of clients subscribed to channels (`--pubsub-output-*`).
    pub pubsub_limit: OutputLimit,
    /// Credentials for the backends, if they require them.
    pub backend_auth: Option<BackendAuth>,
    /// Most dedicated backend connections per core (WATCH, blocking commands), leased and
    /// idle together; past it a lease is refused with an error.
    pub max_leased_conns: usize,
    /// percore's own users (`--requirepass`, `--user`), whom clients authenticate as.
    pub users: Users,
    /// The `host:port` cluster-mode clients are told to reach this percore at (`--announce`;
    /// `None`: the listen address, which must then be a specific one).
    pub announce: Option<String>,
    /// The other percore instances of a fleet (`--proxy-peers`), by their announce addresses;
    /// the live ones are advertised with this one, the slots split among them.
    pub peers: Vec<String>,
    /// Requests at least this long in the proxy go to the slow log (`None`: none do).
    pub slowlog_slower_than: Option<Duration>,
    /// Slow log entries each core keeps.
    pub slowlog_max_len: usize,
    /// TLS on the listener (`tls:`, `--tls-cert`); `None`: plain TCP.
    pub tls: Option<ClientTls>,
    /// TLS to the backends (`backend_tls:`, `--backend-tls-ca`); `None`: plain TCP.
    pub backend_tls: Option<BackendTls>,
    /// Where nutcracker's JSON stats are served, `host:port` (process-wide, as `threads`):
    /// nutcracker's default with a configuration file (a nutcracker drop-in serves them as
    /// nutcracker does), `None` (not served) without one unless `-s`/`-a` ask for them.
    pub stats_listen: Option<String>,
    /// How often those stats are gathered anew (nutcracker's `-i`).
    pub stats_interval: Duration,
    /// Where `/metrics` and `/health` are served over HTTP, if anywhere (process-wide).
    pub metrics_listen: Option<String>,
    /// The Unix socket upgrades hand the listening sockets over on (process-wide,
    /// `--upgrade-socket`); `None`: no handover.
    pub upgrade_socket: Option<PathBuf>,
    /// Sidecar settings: `preconnect`, `databases`, `async_writes`.
    pub sidecar: Sidecar,
    /// Where read-only commands are read from, and how stale a replica may be (`--read-from`,
    /// `--max-replica-lag`); a cluster pool's only.
    pub replica_reads: ReplicaReads,
}

impl Default for Config {
    /// The documented defaults: one thread, a cluster seed on 127.0.0.1:7000.
    fn default() -> Self {
        Config {
            name: DEFAULT_POOL_NAME.into(),
            listen: ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 6380))),
            seeds: vec!["127.0.0.1:7000".into()],
            servers: None,
            threads: 1,
            pin: true,
            backend_conns: 1,
            refresh_interval: Duration::from_secs(5),
            backend_timeout: Duration::from_secs(2),
            max_query_buffer: DEFAULT_MAX_QUERY_BUFFER,
            limits: ParseLimits::default(),
            max_clients: DEFAULT_MAX_CLIENTS,
            tcp_keepalive: false,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            idle_timeout: None,
            max_output_buffer: DEFAULT_MAX_OUTPUT_BUFFER,
            shutdown_timeout: Duration::from_secs(5),
            pubsub_limit: OutputLimit::default(),
            backend_auth: None,
            max_leased_conns: DEFAULT_MAX_LEASED_CONNS,
            users: Users::default(),
            announce: None,
            peers: Vec::new(),
            slowlog_slower_than: Some(Duration::from_micros(DEFAULT_SLOWLOG_SLOWER_THAN as u64)),
            slowlog_max_len: DEFAULT_SLOWLOG_MAX_LEN,
            tls: None,
            backend_tls: None,
            stats_listen: None,
            stats_interval: Duration::from_millis(process::DEFAULT_STATS_INTERVAL_MS),
            metrics_listen: None,
            upgrade_socket: None,
            sidecar: Sidecar::default(),
            replica_reads: ReplicaReads::default(),
        }
    }
}

impl Config {
    /// The client connections one core accepts.
    pub fn max_clients_per_core(&self) -> usize {
        self.max_clients.div_ceil(self.threads).max(1)
    }

    /// The address this percore advertises in CLUSTER SLOTS/SHARDS/NODES.
    pub fn announce_addr(&self) -> String {
        match &self.announce {
            Some(announce) => announce.clone(),
            // A Unix socket has no host:port; its path is the only name it has.
            None => match &self.listen {
                ListenAddr::Tcp(addr) => addr.to_string(),
                ListenAddr::Unix { path, .. } => path.display().to_string(),
            },
        }
    }

    /// The peers other than this percore itself (the list may name it too).
    pub fn other_peers(&self) -> Vec<String> {
        let me = self.announce_addr();
        let mut peers: Vec<String> = self.peers.iter().filter(|p| **p != me).cloned().collect();
        peers.sort_unstable();
        peers.dedup();
        peers
    }

    /// Checks `--announce` and `--proxy-peers`: every address one a client can connect to.
    /// A static pool presents no cluster, so it may listen on every local address without
    /// one (nutcracker's configurations often do: `listen: 0.0.0.0:22121`).
    fn validate_presence(&self) -> Result<(), Error> {
        let presents_a_cluster = self.servers.is_none();
        let every_address = self.listen.tcp().is_some_and(|a| a.ip().is_unspecified());
        if presents_a_cluster && self.announce.is_none() && every_address {
            return Err(Error::Config(format!(
                "--listen {} is every local address, not one cluster-mode clients can be told \
                 to connect to: give --announce host:port (the address clients reach this \
                 percore at)",
                self.listen
            )));
        }
        let announce = self.announce.iter().map(|a| ("--announce", a));
        for (flag, addr) in announce.chain(self.peers.iter().map(|p| ("--proxy-peers", p))) {
            let Some((host, _)) = host_port(addr) else {
                return Err(Error::Config(format!("{flag} {addr:?} is not host:port")));
            };
            if host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_unspecified())
            {
                return Err(Error::Config(format!(
                    "{flag} {addr:?} is not an address a client can connect to"
                )));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Checks values that clap cannot.
    pub fn validate(self) -> Result<Config, Error> {
        if self.seeds.is_empty() && self.servers.is_none() {
            return Err(Error::Config(
                "--cluster needs at least one host:port".into(),
            ));
        }
        for seed in &self.seeds {
            if seed
                .rsplit_once(':')
                .is_none_or(|(_, port)| port.parse::<u16>().is_err())
            {
                return Err(Error::Config(format!("seed {seed:?} is not host:port")));
            }
        }
        if self.threads == 0 || self.backend_conns == 0 {
            return Err(Error::Config(
                "--threads and --backend-conns must be at least 1".into(),
            ));
        }
        if self.max_clients == 0 {
            return Err(Error::Config("--max-clients must be at least 1".into()));
        }
        if self.backend_timeout.is_zero() || self.refresh_interval.is_zero() {
            return Err(Error::Config("durations must be greater than zero".into()));
        }
        self.validate_presence()?;
        if let Some(servers) = &self.servers {
            replicas::check_static(&servers.pool, &self.replica_reads).map_err(Error::Config)?;
        }
        Ok(self)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
