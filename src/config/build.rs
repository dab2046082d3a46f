//! Building the [`Config`] the runtime serves from the configuration file and the flags: a
//! flag given on the command line goes over the file's value, and without a file the flags
//! and their defaults are the whole configuration, as before the file existed.
//!
//! The runtime serves one Redis Cluster pool per process so far. [`pool_config`] turns
//! one `cluster:` pool of a file into the runtime's per-pool [`Config`], so serving several
//! pools is one of these per pool; [`runtime_configs`] builds one per pool and refuses,
//! naming the pool, what is valid but not served yet.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::file::ConfigFile;
use super::pool::{PoolConfig, ServersUpstream, Upstream};
use super::process::ProcessConfig;
use super::tls::{with_tls, TlsFlags};
use super::values::Listen;
use super::{BackendAuth, Config, EjectPolicy, OutputLimit, StaticServers};
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
        let base = with_process(Config::default(), process, cores);
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
                if let Listen::Unix { .. } = pool.listen() {
                    return Err(Error::Config(format!(
                        "pool '{}': listen {} is a Unix socket, which this percore does not \
                         serve yet (it is valid for percore -t)",
                        pool.name(),
                        pool.listen()
                    )));
                }
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
        ..defaults
    };
    Ok(with_process(config, process, cores))
}

/// A `servers:` pool as the runtime serves it. What percore does not do yet for such a pool
/// (Sentinel, another database than 0) is refused here, by name, rather than ignored.
fn static_servers(pool: &str, upstream: &ServersUpstream) -> Result<StaticServers, Error> {
    let refuse = |what: &str| {
        Err(Error::Config(format!(
            "pool '{pool}': {what} is valid, but not served by this percore yet"
        )))
    };
    if !upstream.sentinels.is_empty() {
        return refuse("sentinels:");
    }
    if upstream.redis_db != 0 {
        return refuse("redis_db other than 0");
    }
    let mut specs = Vec::with_capacity(upstream.servers.len());
    let mut addrs = Vec::with_capacity(upstream.servers.len());
    for server in &upstream.servers {
        let Some(port) = server.port else {
            return refuse("a Unix socket server");
        };
        let addr = format!("{}:{port}", server.host);
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
    Ok(StaticServers {
        specs,
        addrs,
        scheme,
        pool: pool.to_string(),
        eject,
    })
}

/// `config` with the process-wide settings.
fn with_process(config: Config, process: &ProcessConfig, cores: usize) -> Config {
    Config {
        threads: process.threads().unwrap_or(cores),
        pin: process.pin(),
        shutdown_timeout: process.shutdown_timeout(),
        ..config
    }
}

/// The socket address of a TCP `listen:` (a name resolves to its first address).
fn resolve(pool: &str, listen: &Listen) -> Result<SocketAddr, Error> {
    let Listen::Tcp { .. } = listen else {
        return Err(Error::Config(format!(
            "pool '{pool}': listen {listen} is a Unix socket, which this percore does not serve \
             yet (it is valid for percore -t)"
        )));
    };
    let text = listen.to_string();
    let resolved = text.to_socket_addrs().map(|mut addrs| addrs.next());
    match resolved {
        Ok(Some(addr)) => Ok(addr),
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
        listen: flags.listen.unwrap_or(config.listen),
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
        ..config
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one pool's config.
    fn runtime_config(
        file: Option<&ConfigFile>,
        process: &ProcessConfig,
        flags: &PoolFlags,
        cores: usize,
    ) -> Result<Config, Error> {
        runtime_configs(file, process, flags, cores).map(|mut configs| configs.remove(0))
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse("p.yml", text, &|_| None).unwrap()
    }

    fn error(result: Result<Config, Error>) -> String {
        result.err().map(|e| e.to_string()).unwrap_or_default()
    }

    const CLUSTER: &str = "p:\n  listen: 127.0.0.1:7100\n  cluster: 127.0.0.1:7000,127.0.0.1:7001\n  backend_timeout: 3s\n  users:\n   - app on >pw +@all allkeys\n  backend_user: proxy\n  backend_password: bpw\n  max_clients: 50\n";

    #[test]
    fn without_a_file_the_flags_defaults_are_today_s() {
        let process = ProcessConfig::default();
        let config = runtime_config(None, &process, &PoolFlags::default(), 4).unwrap();
        let today = Config {
            threads: 4,
            ..Config::default()
        };
        assert_eq!(format!("{config:?}"), format!("{today:?}"));
    }

    #[test]
    fn a_cluster_pool_is_the_runtime_config() {
        let file = file(CLUSTER);
        let config = runtime_config(Some(&file), file.process(), &PoolFlags::default(), 2).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7100");
        assert_eq!(config.seeds, ["127.0.0.1:7000", "127.0.0.1:7001"]);
        assert_eq!((config.threads, config.max_clients), (2, 50));
        assert_eq!(config.backend_timeout, Duration::from_secs(3));
        assert!(config.users.exists("app"));
        let auth = config.backend_auth.unwrap();
        assert_eq!(
            (auth.user.as_deref(), auth.password.as_str()),
            (Some("proxy"), "bpw")
        );
    }

    #[test]
    fn flags_go_over_the_file() {
        let file = file(CLUSTER);
        let flags = PoolFlags {
            listen: Some("127.0.0.1:7200".parse().unwrap()),
            backend_timeout: Some(Duration::from_secs(9)),
            backend_password: Some("other".into()),
            requirepass: Some("rp".into()),
            idle_timeout: Some(Duration::ZERO),
            ..PoolFlags::default()
        };
        let config = runtime_config(Some(&file), file.process(), &flags, 2).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:7200");
        assert_eq!(config.backend_timeout, Duration::from_secs(9));
        assert_eq!(config.seeds.len(), 2);
        let auth = config.backend_auth.unwrap();
        assert_eq!(
            (auth.user.as_deref(), auth.password.as_str()),
            (Some("proxy"), "other")
        );
        // --requirepass keeps the file's users and gives the default user its password.
        assert!(config.users.exists("app") && config.users.initial().is_none());
        let replaced = PoolFlags {
            users: vec!["ops on >x +@all".into()],
            ..PoolFlags::default()
        };
        let config = runtime_config(Some(&file), file.process(), &replaced, 2).unwrap();
        assert!(config.users.exists("ops") && !config.users.exists("app"));
    }

    #[test]
    fn every_pool_is_served_and_what_is_not_yet_is_named() {
        let two = file(
            "a:\n  listen: 127.0.0.1:1\n  cluster: h:2\nb:\n  listen: 127.0.0.1:3\n  redis: true\n  servers:\n   - 127.0.0.1:2:1\n   - 127.0.0.1:4:2 b\n",
        );
        let configs = runtime_configs(Some(&two), two.process(), &PoolFlags::default(), 1).unwrap();
        assert_eq!(configs.len(), 2);
        assert!(configs[0].servers.is_none() && configs[0].seeds == ["h:2"]);
        let servers = configs[1].servers.as_ref().expect("a static pool");
        assert_eq!(servers.addrs, ["127.0.0.1:2", "127.0.0.1:4"]);
        let flags = PoolFlags {
            max_clients: Some(5),
            ..PoolFlags::default()
        };
        let refused = error(runtime_config(Some(&two), two.process(), &flags, 1));
        assert!(
            refused.contains("2 pools; pool settings given as flags"),
            "{refused}"
        );
        let ejecting = file(
            "s:\n  listen: 127.0.0.1:1\n  redis: true\n  auto_eject_hosts: true\n  servers:\n   - 127.0.0.1:2:1\n",
        );
        let served = runtime_config(
            Some(&ejecting),
            ejecting.process(),
            &PoolFlags::default(),
            1,
        )
        .unwrap();
        let servers = served.servers.expect("a static pool");
        // nutcracker's defaults: 2 failures, 30 s out.
        assert_eq!(
            servers.eject,
            Some(EjectPolicy {
                failure_limit: 2,
                retry_timeout: Duration::from_secs(30)
            })
        );
        assert_eq!(servers.pool, "s");
        let sentinel = file(
            "s:\n  listen: 127.0.0.1:1\n  redis: true\n  sentinels:\n   - 127.0.0.1:9\n  servers:\n   - 127.0.0.1:2:1 m\n",
        );
        let refused = error(runtime_config(
            Some(&sentinel),
            sentinel.process(),
            &PoolFlags::default(),
            1,
        ));
        assert!(
            refused.contains("sentinels: is valid, but not served"),
            "{refused}"
        );
        let unix = file("u:\n  listen: /tmp/u.sock\n  cluster: h:2\n");
        let refused = error(runtime_config(
            Some(&unix),
            unix.process(),
            &PoolFlags::default(),
            1,
        ));
        assert!(refused.contains("Unix socket"), "{refused}");
    }

    #[test]
    fn a_backend_user_needs_a_password_from_somewhere() {
        let flags = PoolFlags {
            backend_user: Some("u".into()),
            ..PoolFlags::default()
        };
        let refused = error(runtime_config(None, &ProcessConfig::default(), &flags, 1));
        assert!(
            refused.contains("--backend-user needs --backend-password"),
            "{refused}"
        );
    }
}
