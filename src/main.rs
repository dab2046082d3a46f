//! The `percore` binary: parse the command line, set up logging, run the proxy.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use percore::auth::Users;
use percore::config::{BackendAuth, OutputLimit};
use percore::config::{
    DEFAULT_BACKEND_TIMEOUT, DEFAULT_LISTEN, DEFAULT_MAX_CLIENTS, DEFAULT_MAX_LEASED_CONNS,
    DEFAULT_MAX_OUTPUT_BUFFER, DEFAULT_MAX_QUERY_BUFFER, DEFAULT_PUBSUB_HARD_LIMIT,
    DEFAULT_PUBSUB_SOFT_LIMIT, DEFAULT_PUBSUB_SOFT_SECONDS, DEFAULT_REFRESH_INTERVAL,
    DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_SLOWLOG_MAX_LEN, DEFAULT_SLOWLOG_SLOWER_THAN,
};
use percore::resp::parse::ParseLimits;
use percore::Config;
use tracing_subscriber::EnvFilter;

/// A thread-per-core Redis Cluster proxy: point any Redis client at it and get the whole
/// cluster behind one address.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Address to accept clients on (every core listens on it, with SO_REUSEPORT).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Cluster nodes to learn the topology from, as host:port[,host:port...].
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:7000")]
    cluster: Vec<String>,

    /// Cores to run on, one executor each [default: all cores available to the process].
    #[arg(long)]
    threads: Option<usize>,

    /// Do not pin executor threads to cores; let the kernel place them. For hosts shared with
    /// busy Redis servers or clients, where a pinned thread waits for its own core while
    /// another core is idle.
    #[arg(long)]
    no_pin: bool,

    /// Connections from each core to each master, shared by that core's clients.
    #[arg(long, default_value_t = 1)]
    backend_conns: usize,

    /// Period of the background topology refresh (e.g. 5s, 500ms). MOVED and backend
    /// failures also trigger a refresh at once.
    #[arg(long, default_value = DEFAULT_REFRESH_INTERVAL, value_parser = humantime::parse_duration)]
    refresh_interval: Duration,

    /// Longest wait for a backend: connecting, and any request's reply. Past it the clients
    /// waiting on that node get an error and the connection is remade.
    #[arg(long, default_value = DEFAULT_BACKEND_TIMEOUT, value_parser = humantime::parse_duration)]
    backend_timeout: Duration,

    /// Largest unparsed input held for one client, in bytes (Redis's client-query-buffer-limit);
    /// a client past it is disconnected.
    #[arg(long, default_value_t = DEFAULT_MAX_QUERY_BUFFER)]
    max_query_buffer: usize,

    /// Largest bulk argument accepted, in bytes (Redis's proto-max-bulk-len).
    #[arg(long, default_value_t = ParseLimits::default().max_bulk_len)]
    max_bulk_len: usize,

    /// Most client connections; past it new clients get "max number of clients reached"
    /// and are closed, like Redis's maxclients.
    #[arg(long, default_value_t = DEFAULT_MAX_CLIENTS)]
    max_clients: usize,

    /// Close clients idle for this long (e.g. 300s); 0 never closes them, like Redis's timeout.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,

    /// Most reply bytes waiting for one client that does not read them; past it the client
    /// is disconnected (0: no limit).
    #[arg(long, default_value_t = DEFAULT_MAX_OUTPUT_BUFFER)]
    max_output_buffer: usize,

    /// Most bytes of messages and replies waiting for a subscribed client; past it the client
    /// is cut off at once, like Redis's client-output-buffer-limit pubsub hard limit (0: none).
    #[arg(long, default_value_t = DEFAULT_PUBSUB_HARD_LIMIT)]
    pubsub_output_hard_limit: usize,

    /// Bytes waiting for a subscribed client that, if exceeded for --pubsub-output-soft-seconds
    /// without a break, cut it off (Redis's pubsub soft limit; 0: none).
    #[arg(long, default_value_t = DEFAULT_PUBSUB_SOFT_LIMIT)]
    pubsub_output_soft_limit: usize,

    /// How long a subscribed client may stay over --pubsub-output-soft-limit (e.g. 60s).
    #[arg(long, default_value = DEFAULT_PUBSUB_SOFT_SECONDS, value_parser = humantime::parse_duration)]
    pubsub_output_soft_seconds: Duration,

    /// On SIGTERM or SIGINT: stop accepting, let in-flight requests finish and replies flush
    /// for at most this long, then exit.
    #[arg(long, default_value = DEFAULT_SHUTDOWN_TIMEOUT, value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,

    /// Password clients must give (AUTH password, or HELLO ... AUTH default password) before
    /// anything else, like Redis's requirepass. Prefer the environment variable.
    #[arg(long, env = "PERCORE_REQUIREPASS", hide_env_values = true)]
    requirepass: Option<String>,

    /// A user clients may log in as, in Redis ACL words: "name on >password ~pattern +@all".
    /// Rules: on off >password nopass ~pattern allkeys resetkeys +@all -@all +@read -@read
    /// +@write -@write +@admin -@admin. Repeat for more users; "default" replaces the
    /// default user.
    #[arg(long = "user", value_name = "DEFINITION")]
    users: Vec<String>,

    /// ACL user percore authenticates as on every backend connection (default: the default
    /// user). Needs --backend-password.
    #[arg(long, requires = "backend_password")]
    backend_user: Option<String>,

    /// Password percore sends (AUTH, or HELLO 3 AUTH) first on every backend connection, for
    /// clusters with requirepass or ACL users. Prefer the environment variable, which keeps
    /// it out of `ps`.
    #[arg(long, env = "PERCORE_BACKEND_PASSWORD", hide_env_values = true)]
    backend_password: Option<String>,

    /// Most dedicated backend connections per core: WATCH (until EXEC) and every blocking
    /// command (until served) take one, and idle ones are kept for the next. Past it WATCH and
    /// blocking commands get an error at once.
    #[arg(long, default_value_t = DEFAULT_MAX_LEASED_CONNS)]
    max_leased_conns: usize,

    /// Address cluster-mode clients are told to connect to this percore at, as host:port, in
    /// CLUSTER SLOTS/SHARDS/NODES [default: the --listen address; required when that is
    /// 0.0.0.0 or ::].
    #[arg(long, value_name = "HOST:PORT")]
    announce: Option<String>,

    /// The other percore instances in front of the same cluster, by their --announce
    /// addresses, as host:port[,host:port...] (this one's own may be in the list). The live
    /// ones are advertised together, the 16384 slots split among them; each is PINGed every
    /// 500 ms and left out while it has not answered for 2 s.
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT,...")]
    proxy_peers: Vec<String>,

    /// Requests that spend at least this many microseconds in the proxy (from read to reply
    /// written) go to the slow log (SLOWLOG GET); 0 logs every request, a negative value none.
    /// Like Redis's slowlog-log-slower-than.
    #[arg(long, default_value_t = DEFAULT_SLOWLOG_SLOWER_THAN, allow_negative_numbers = true)]
    slowlog_slower_than: i64,

    /// Slow log entries kept per core (the oldest go first), like Redis's slowlog-max-len.
    #[arg(long, default_value_t = DEFAULT_SLOWLOG_MAX_LEN)]
    slowlog_max_len: usize,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive like percore=debug.
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match EnvFilter::try_new(&cli.log_level) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("percore: bad --log-level {:?}: {e}", cli.log_level);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // A panic on any core ends the whole process: a core that silently died would leave its
    // clients hanging while the others carry on.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));

    let threads = cli
        .threads
        .unwrap_or_else(|| core_affinity::get_core_ids().map_or(1, |ids| ids.len().max(1)));
    let users = match Users::new(cli.requirepass.as_deref(), &cli.users) {
        Ok(users) => users,
        Err(e) => {
            eprintln!("percore: --user: {e}");
            return ExitCode::from(2);
        }
    };
    let config = Config {
        listen: cli.listen,
        seeds: cli.cluster,
        threads,
        pin: !cli.no_pin,
        backend_conns: cli.backend_conns,
        refresh_interval: cli.refresh_interval,
        backend_timeout: cli.backend_timeout,
        max_query_buffer: cli.max_query_buffer,
        limits: ParseLimits {
            max_bulk_len: cli.max_bulk_len,
            ..ParseLimits::default()
        },
        max_clients: cli.max_clients,
        idle_timeout: (!cli.idle_timeout.is_zero()).then_some(cli.idle_timeout),
        max_output_buffer: cli.max_output_buffer,
        shutdown_timeout: cli.shutdown_timeout,
        pubsub_limit: OutputLimit {
            hard: cli.pubsub_output_hard_limit,
            soft: cli.pubsub_output_soft_limit,
            soft_for: cli.pubsub_output_soft_seconds,
        },
        backend_auth: cli.backend_password.map(|password| BackendAuth {
            user: cli.backend_user,
            password,
        }),
        max_leased_conns: cli.max_leased_conns,
        users,
        announce: cli.announce,
        peers: cli.proxy_peers,
        slowlog_slower_than: u64::try_from(cli.slowlog_slower_than)
            .ok()
            .map(Duration::from_micros),
        slowlog_max_len: cli.slowlog_max_len,
    };
    match config.validate().and_then(percore::run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("percore: {e}");
            ExitCode::FAILURE
        }
    }
}
