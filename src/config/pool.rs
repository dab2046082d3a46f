//! One pool of the configuration file: its keys (nutcracker's, then percore's), read into an
//! immutable [`PoolConfig`] with every default applied.
//!
//! Defaults follow the pool's kind. A pool with `servers:` is a twemproxy pool and takes
//! nutcracker 0.5.0's defaults, so a nutcracker file means here what it meant there: no
//! backend timeout and no client limit unless the file sets them. A pool with `cluster:` is
//! what percore's flags describe and takes the flags' defaults (a 2 s backend timeout, 10,000
//! clients). Every other default is the same for both.

use std::time::Duration;

use super::credentials::{read_backend_auth, read_client_auth, read_sentinel_auth, ClientAuth};
use super::error::Problem;
use super::read::{Fields, Reader};
use super::tls::{read_pool_tls, PoolTls};
use super::upstream::Upstream;
use super::values::{check_address, Listen};
use super::yaml::{Entry, Node};
use super::{BackendAuth, Config, OutputLimit, Sidecar};
use crate::auth::Users;

/// nutcracker's `backlog` default (`CONF_DEFAULT_LISTEN_BACKLOG`).
pub const DEFAULT_BACKLOG: u32 = 512;
/// nutcracker's `server_retry_timeout` default, in ms (`CONF_DEFAULT_SERVER_RETRY_TIMEOUT`).
pub const DEFAULT_SERVER_RETRY_TIMEOUT_MS: u64 = 30_000;
/// nutcracker's `server_failure_limit` default (`CONF_DEFAULT_SERVER_FAILURE_LIMIT`).
pub const DEFAULT_SERVER_FAILURE_LIMIT: u32 = 2;
/// Largest value of nutcracker's numeric keys: they are C `int`s.
pub(super) const NC_MAX: u64 = i32::MAX as u64;

/// nutcracker's keys, in its README's order; `reuseport` is twemproxy's after 0.5.0.
const NUTCRACKER_KEYS: &[&str] = &[
    "listen",
    "hash",
    "hash_tag",
    "distribution",
    "timeout",
    "backlog",
    "preconnect",
    "redis",
    "redis_auth",
    "redis_db",
    "server_connections",
    "auto_eject_hosts",
    "server_retry_timeout",
    "server_failure_limit",
    "client_connections",
    "tcpkeepalive",
    "servers",
    "reuseport",
];
/// percore's own keys.
const PERCORE_KEYS: &[&str] = &[
    "cluster",
    "refresh_interval",
    "sentinels",
    "sentinel_password",
    "sentinel_password_env",
    "requirepass",
    "requirepass_env",
    "users",
    "backend_user",
    "backend_password",
    "backend_password_env",
    "backend_timeout",
    "max_clients",
    "max_query_buffer",
    "max_bulk_len",
    "max_output_buffer",
    "idle_timeout",
    "max_leased_conns",
    "pubsub_output_hard_limit",
    "pubsub_output_soft_limit",
    "pubsub_output_soft_seconds",
    "slowlog_slower_than",
    "slowlog_max_len",
    "announce",
    "proxy_peers",
    "tls",
    "backend_tls",
];
/// Keys that only a pool of standalone servers has a use for.
const SERVERS_ONLY: &[&str] = &[
    "hash",
    "hash_tag",
    "distribution",
    "auto_eject_hosts",
    "server_retry_timeout",
    "server_failure_limit",
    "sentinels",
    "sentinel_password",
    "sentinel_password_env",
];
/// Keys that only a Redis Cluster pool has a use for.
const CLUSTER_ONLY: &[&str] = &["refresh_interval", "announce", "proxy_peers"];

/// Client-side limits and the slow log, as the flags of the same names set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest unparsed input of one client (`max_query_buffer`).
    pub max_query_buffer: usize,
    /// Largest bulk argument (`max_bulk_len`).
    pub max_bulk_len: usize,
    /// Most reply bytes waiting for one client; 0: no limit (`max_output_buffer`).
    pub max_output_buffer: usize,
    /// Close clients idle this long; `None`: never (`idle_timeout`, 0 in the file).
    pub idle_timeout: Option<Duration>,
    /// Most dedicated backend connections per core (`max_leased_conns`).
    pub max_leased_conns: usize,
    /// Requests this slow go to the slow log; `None`: none (`slowlog_slower_than`, in µs).
    pub slowlog_slower_than: Option<Duration>,
    /// Slow log entries per core (`slowlog_max_len`).
    pub slowlog_max_len: usize,
    /// Output limit of subscribed clients (`pubsub_output_hard_limit`,
    /// `pubsub_output_soft_limit`, `pubsub_output_soft_seconds`).
    pub pubsub_limit: OutputLimit,
}

/// One pool, valid, with its defaults applied. Immutable: built only by reading a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    name: String,
    line: usize,
    listen: Listen,
    upstream: Upstream,
    backlog: u32,
    tcpkeepalive: bool,
    sidecar: Sidecar,
    server_connections: usize,
    backend_timeout: Option<Duration>,
    max_clients: Option<usize>,
    backend_auth: Option<BackendAuth>,
    client_auth: ClientAuth,
    users: Users,
    limits: Limits,
    tls: PoolTls,
}

impl PoolConfig {
    /// The pool's name (its key in the file).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The line the pool starts at.
    pub fn line(&self) -> usize {
        self.line
    }
    /// Where the pool accepts clients (`listen`).
    pub fn listen(&self) -> &Listen {
        &self.listen
    }
    /// What the pool forwards to.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }
    /// The listen backlog (`backlog`, default 512).
    pub fn backlog(&self) -> u32 {
        self.backlog
    }
    /// TCP keepalive on client connections (`tcpkeepalive`, default false), as nutcracker
    /// sets it on the clients it accepts.
    pub fn tcpkeepalive(&self) -> bool {
        self.tcpkeepalive
    }
    /// The sidecar settings: `preconnect`, `databases`, `async_writes`.
    pub fn sidecar(&self) -> &Sidecar {
        &self.sidecar
    }
    /// Connections per core to each server (`server_connections`, `--backend-conns`).
    pub fn server_connections(&self) -> usize {
        self.server_connections
    }
    /// Bound on connecting and on every reply; `None`: wait as long as it takes (`timeout`,
    /// `backend_timeout`).
    pub fn backend_timeout(&self) -> Option<Duration> {
        self.backend_timeout
    }
    /// Most client connections; `None`: no limit (`client_connections`, `max_clients`).
    pub fn max_clients(&self) -> Option<usize> {
        self.max_clients
    }
    /// Credentials for the backends (`redis_auth`, `backend_user`, `backend_password`).
    pub fn backend_auth(&self) -> Option<&BackendAuth> {
        self.backend_auth.as_ref()
    }
    /// The client passwords as written (`requirepass`, `users`).
    pub fn client_auth(&self) -> &ClientAuth {
        &self.client_auth
    }
    /// The users clients log in as, built from `requirepass` and `users`.
    pub fn users(&self) -> &Users {
        &self.users
    }
    /// Client limits and the slow log.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    /// TLS to clients (`tls:`) and to the servers (`backend_tls:`).
    pub fn tls(&self) -> &PoolTls {
        &self.tls
    }
}

/// Reads the pool `name`, whose key is at `line`; `None` if it has errors (all recorded in
/// `reader`). `env` looks up the variables the `*_env` keys name.
pub(super) fn read_pool(
    reader: &mut Reader,
    (name, line): (&str, usize),
    node: &Node,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<PoolConfig> {
    let known: Vec<&str> = NUTCRACKER_KEYS
        .iter()
        .chain(PERCORE_KEYS)
        .chain(super::sidecar::SIDECAR_KEYS)
        .chain(super::replicas::KEYS)
        .copied()
        .collect();
    let fields = reader.fields(line, node, &known)?;
    let before = reader.errors.len();
    let listen = match fields.get("listen") {
        Some(entry) => reader.text(entry).and_then(|text| {
            Listen::parse(text)
                .map_err(|p| reader.error(entry.line, Some("listen"), p))
                .ok()
        }),
        None => {
            reader.error(fields.line, None, Problem::NoListen);
            None
        }
    };
    let mut upstream = read_upstream(reader, &fields);
    if let Some(Upstream::Servers(servers)) = &mut upstream {
        servers.sentinel_auth =
            read_sentinel_auth(reader, &fields, !servers.sentinels.is_empty(), env);
    }
    if let (Some(listen), Some(upstream)) = (&listen, &upstream) {
        super::upstream::check_announce(reader, &fields, listen, upstream);
    }
    check_redis(reader, &fields);
    let defaults = Config::default();
    let cluster = matches!(upstream, Some(Upstream::Cluster(_)));
    let number = |reader: &mut Reader, key, min, max| {
        fields.get(key).and_then(|e| reader.number(e, min, max))
    };
    let flag = |reader: &mut Reader, key| fields.get(key).and_then(|e| reader.boolean(e));
    let backlog = number(reader, "backlog", 0, NC_MAX).map_or(DEFAULT_BACKLOG, |n| n as u32);
    let tcpkeepalive = flag(reader, "tcpkeepalive").unwrap_or(false);
    let preconnect = flag(reader, "preconnect").unwrap_or(false);
    // Every core binds the listen address with SO_REUSEPORT whatever this says: it is read
    // (and checked) so files written for twemproxy after 0.5.0 run as they are.
    let _ = flag(reader, "reuseport");
    let server_connections = number(reader, "server_connections", 1, NC_MAX)
        .map_or(defaults.backend_conns, |n| n as usize);
    let backend_timeout =
        read_timeout(reader, &fields, cluster.then_some(defaults.backend_timeout));
    let max_clients = read_max_clients(reader, &fields, cluster.then_some(defaults.max_clients));
    let backend_auth = read_backend_auth(reader, &fields, env);
    // In a static pool, nutcracker's `redis_auth` is its clients' password too (it answers
    // their AUTH itself); percore's `backend_password`, and any cluster pool's, is the
    // backends' alone.
    let nutcracker_password = backend_auth
        .as_ref()
        .filter(|_| !cluster && fields.has("redis_auth"))
        .map(|auth| auth.password.as_str());
    let (client_auth, users) = read_client_auth(reader, &fields, env, nutcracker_password);
    let limits = read_limits(reader, &fields, &defaults);
    let tls = read_pool_tls(reader, &fields);
    let sidecar = super::sidecar::read_sidecar(reader, &fields, (preconnect, cluster));
    if cluster {
        check_bounded(reader, &fields, backend_timeout, max_clients);
    }
    if reader.errors.len() > before {
        return None;
    }
    Some(PoolConfig {
        name: name.into(),
        line,
        listen: listen?,
        upstream: upstream?,
        backlog,
        tcpkeepalive,
        sidecar,
        server_connections,
        backend_timeout,
        max_clients,
        backend_auth,
        client_auth,
        users,
        limits,
        tls,
    })
}

/// `cluster:` or `servers:`, one of them, and the keys of the other kind refused.
fn read_upstream(reader: &mut Reader, fields: &Fields) -> Option<Upstream> {
    let (servers, cluster) = (fields.get("servers"), fields.get("cluster"));
    let (own, others, kind) = match (servers, cluster) {
        (Some(_), Some(entry)) => {
            reader.error(entry.line, Some("cluster"), Problem::TwoUpstreams);
            return None;
        }
        (None, None) => {
            reader.error(fields.line, None, Problem::NoUpstream);
            return None;
        }
        (None, Some(_)) => ("cluster:", SERVERS_ONLY, "servers:"),
        (Some(_), None) => ("servers:", CLUSTER_ONLY, "cluster:"),
    };
    for key in others {
        if let Some(entry) = fields.get(key) {
            reader.error(entry.line, Some(key), Problem::OnlyFor(kind));
        }
    }
    if own == "cluster:" {
        super::upstream::read_cluster(reader, fields)
    } else {
        super::upstream::read_servers(reader, fields)
    }
}

/// `redis:` must be true, given or not: nutcracker's default is a memcached pool.
fn check_redis(reader: &mut Reader, fields: &Fields) {
    match fields.get("redis") {
        Some(entry) if reader.boolean(entry) == Some(false) => {
            reader.error(entry.line, Some("redis"), Problem::Memcached);
        }
        Some(_) => {}
        None if fields.has("servers") => reader.error(fields.line, None, Problem::Memcached),
        None => {}
    }
}

/// The first of `keys` given, reporting any second one as the same setting.
pub(super) fn one_of<'n>(
    reader: &mut Reader,
    fields: &Fields<'n>,
    keys: &[&'static str],
) -> Option<&'n Entry> {
    let mut given = keys
        .iter()
        .filter_map(|key| fields.get(key).map(|e| (*key, e)));
    let (first, entry) = given.next()?;
    for (_, other) in given {
        reader.error(other.line, Some(&other.key), Problem::SameSetting(first));
    }
    Some(entry)
}

/// `timeout` (ms, 0 or absent: none, nutcracker's) or `backend_timeout` (more than 0).
fn read_timeout(
    reader: &mut Reader,
    fields: &Fields,
    default: Option<Duration>,
) -> Option<Duration> {
    let Some(entry) = one_of(reader, fields, &["timeout", "backend_timeout"]) else {
        return default;
    };
    if entry.key == "timeout" {
        return match reader.number(entry, 0, NC_MAX) {
            Some(0) => None,
            Some(ms) => Some(Duration::from_millis(ms)),
            None => default,
        };
    }
    reader.positive_duration(entry)
}

/// A cluster pool bounds its backend waits and its clients, as percore always has: the `0`
/// that means "none" to nutcracker is refused there.
fn check_bounded(
    reader: &mut Reader,
    fields: &Fields,
    timeout: Option<Duration>,
    clients: Option<usize>,
) {
    for (unset, key) in [
        (timeout.is_none(), "timeout"),
        (clients.is_none(), "client_connections"),
    ] {
        if let (true, Some(entry)) = (unset, fields.get(key)) {
            reader.error(entry.line, Some(key), Problem::Unbounded);
        }
    }
}

/// `client_connections` (0: no limit, nutcracker's) or `max_clients` (at least 1).
fn read_max_clients(reader: &mut Reader, fields: &Fields, default: Option<usize>) -> Option<usize> {
    let Some(entry) = one_of(reader, fields, &["client_connections", "max_clients"]) else {
        return default;
    };
    let min = u64::from(entry.key == "max_clients");
    match reader.number(entry, min, NC_MAX)? {
        0 => None,
        n => Some(n as usize),
    }
}

/// The limits, each defaulting to its flag's default.
fn read_limits(reader: &mut Reader, fields: &Fields, defaults: &Config) -> Limits {
    let mut size = |key, default: usize| {
        fields
            .get(key)
            .and_then(|e| reader.number(e, 0, usize::MAX as u64))
            .map_or(default, |n| n as usize)
    };
    let max_query_buffer = size("max_query_buffer", defaults.max_query_buffer);
    let max_bulk_len = size("max_bulk_len", defaults.limits.max_bulk_len);
    let max_output_buffer = size("max_output_buffer", defaults.max_output_buffer);
    let max_leased_conns = size("max_leased_conns", defaults.max_leased_conns);
    let slowlog_max_len = size("slowlog_max_len", defaults.slowlog_max_len);
    let pubsub_hard = size("pubsub_output_hard_limit", defaults.pubsub_limit.hard);
    let pubsub_soft = size("pubsub_output_soft_limit", defaults.pubsub_limit.soft);
    let pubsub_soft_for = fields
        .get("pubsub_output_soft_seconds")
        .and_then(|e| reader.duration(e))
        .unwrap_or(defaults.pubsub_limit.soft_for);
    let idle_timeout = match fields.get("idle_timeout").and_then(|e| reader.duration(e)) {
        Some(d) if !d.is_zero() => Some(d),
        Some(_) => None,
        None => defaults.idle_timeout,
    };
    let slowlog_slower_than = match fields
        .get("slowlog_slower_than")
        .and_then(|e| reader.signed(e))
    {
        Some(us) => u64::try_from(us).ok().map(Duration::from_micros),
        None => defaults.slowlog_slower_than,
    };
    Limits {
        max_query_buffer,
        max_bulk_len,
        max_output_buffer,
        idle_timeout,
        max_leased_conns,
        slowlog_slower_than,
        slowlog_max_len,
        pubsub_limit: OutputLimit {
            hard: pubsub_hard,
            soft: pubsub_soft,
            soft_for: pubsub_soft_for,
        },
    }
}

/// Checks one `host:port` list entry, reporting it at its line.
pub(super) fn check_entry(reader: &mut Reader, key: &str, value: &str, line: usize) -> bool {
    match check_address(value) {
        Ok(()) => true,
        Err(problem) => {
            reader.error(line, Some(key), problem);
            false
        }
    }
}
