//! Runtime configuration: what the command line decided, validated once at startup and then
//! shared read-only by every core (leaked to `&'static`, as it lives as long as the process).

use std::net::SocketAddr;
use std::time::Duration;

use crate::auth::Users;
use crate::error::Error;
use crate::resp::parse::ParseLimits;

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
/// Default time given to in-flight requests at shutdown before the process exits anyway.
pub const DEFAULT_SHUTDOWN_TIMEOUT: &str = "5s";
/// Default most dedicated backend connections per core (leased to clients for WATCH and
/// blocking commands, and idle between leases). Each is a client on a node, whose
/// `maxclients` is 10,000 by default: 1,024 per core keeps even an 8-core proxy whose leases all
/// go to one master under that.
pub const DEFAULT_MAX_LEASED_CONNS: usize = 1024;
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

/// Everything the proxy needs to know to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address every core's listener binds (with SO_REUSEPORT).
    pub listen: SocketAddr,
    /// Cluster nodes to ask for the first topology.
    pub seeds: Vec<String>,
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
    /// Close a client idle this long (`None`: never), like Redis's `timeout`.
    pub idle_timeout: Option<Duration>,
    /// Most reply bytes waiting for one client before it is disconnected (0: no limit).
    pub max_output_buffer: usize,
    /// Bound on finishing in-flight requests after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
    /// Credentials for the backends, if they require them.
    pub backend_auth: Option<BackendAuth>,
    /// Most dedicated backend connections per core (WATCH, blocking commands), leased and
    /// idle together; past it a lease is refused with an error.
    pub max_leased_conns: usize,
    /// percore's own users (`--requirepass`, `--user`), whom clients authenticate as.
    pub users: Users,
}

impl Default for Config {
    /// The documented defaults: one thread, a cluster seed on 127.0.0.1:7000.
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 6380)),
            seeds: vec!["127.0.0.1:7000".into()],
            threads: 1,
            pin: true,
            backend_conns: 1,
            refresh_interval: Duration::from_secs(5),
            backend_timeout: Duration::from_secs(2),
            max_query_buffer: DEFAULT_MAX_QUERY_BUFFER,
            limits: ParseLimits::default(),
            max_clients: DEFAULT_MAX_CLIENTS,
            idle_timeout: None,
            max_output_buffer: DEFAULT_MAX_OUTPUT_BUFFER,
            shutdown_timeout: Duration::from_secs(5),
            backend_auth: None,
            max_leased_conns: DEFAULT_MAX_LEASED_CONNS,
            users: Users::default(),
        }
    }
}

impl Config {
    /// The client connections one core accepts.
    pub fn max_clients_per_core(&self) -> usize {
        self.max_clients.div_ceil(self.threads).max(1)
    }
}

impl Config {
    /// Checks values that clap cannot.
    pub fn validate(self) -> Result<Config, Error> {
        if self.seeds.is_empty() {
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
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::default()
    }

    #[test]
    fn defaults_match_the_documented_constants() {
        let config = config();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(
            humantime::format_duration(config.refresh_interval).to_string(),
            DEFAULT_REFRESH_INTERVAL
        );
        assert_eq!(
            humantime::format_duration(config.backend_timeout).to_string(),
            DEFAULT_BACKEND_TIMEOUT
        );
        assert_eq!(
            humantime::format_duration(config.shutdown_timeout).to_string(),
            DEFAULT_SHUTDOWN_TIMEOUT
        );
    }

    #[test]
    fn passwords_are_not_printed() {
        let auth = BackendAuth {
            user: Some("app".into()),
            password: "s3cret".into(),
        };
        let printed = format!(
            "{:?}",
            Config {
                backend_auth: Some(auth),
                ..config()
            }
        );
        assert!(
            printed.contains("app") && !printed.contains("s3cret"),
            "{printed}"
        );
    }

    #[test]
    fn validation() {
        assert!(config().validate().is_ok());
        assert!(Config {
            seeds: vec![],
            ..config()
        }
        .validate()
        .is_err());
        assert!(Config {
            seeds: vec!["nohost".into()],
            ..config()
        }
        .validate()
        .is_err());
        assert!(Config {
            threads: 0,
            ..config()
        }
        .validate()
        .is_err());
    }
}
