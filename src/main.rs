//! The `percore` binary: parse the command line, read the configuration file if one is
//! given, set up logging, run the proxy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use percore::config::process::{
    nutcracker_verbosity, DEFAULT_LOG_LEVEL, DEFAULT_STATS_ADDR, DEFAULT_STATS_INTERVAL_MS,
    DEFAULT_STATS_PORT,
};
use percore::config::{
    pool_config, runtime_configs, ConfigFile, LogFormat, PoolFlags, Problem, ProcessConfig,
    ProcessFlags, ReadFrom, ReloadSource, TlsFlags, Upstream, DEFAULT_BACKEND_TIMEOUT,
    DEFAULT_LISTEN, DEFAULT_MAX_CLIENTS, DEFAULT_MAX_LEASED_CONNS, DEFAULT_MAX_OUTPUT_BUFFER,
    DEFAULT_MAX_QUERY_BUFFER, DEFAULT_MAX_REPLICA_LAG, DEFAULT_PUBSUB_HARD_LIMIT,
    DEFAULT_PUBSUB_SOFT_LIMIT, DEFAULT_PUBSUB_SOFT_SECONDS, DEFAULT_REFRESH_INTERVAL,
    DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_SLOWLOG_MAX_LEN, DEFAULT_SLOWLOG_SLOWER_THAN,
};
use percore::daemon::{self, PidFile};
use percore::resp::parse::ParseLimits;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

/// What `-D` prints after nutcracker's stat descriptions: where percore's other figures are.
const MORE_STATS: &str = "\
percore's own figures:
  --metrics-listen  GET /metrics (Prometheus text) and GET /health
  PROXY INFO        on each pool's port: counters per core (PROXY LATENCY: percentiles)
  INFO, SLOWLOG     Redis's sections with percore's own; the slowest requests";

/// A thread-per-core Redis Cluster proxy: point any Redis client at it and get the whole
/// cluster behind one address.
///
/// Settings come from flags, or from a configuration file (-c, twemproxy's YAML with percore's
/// keys) with the flags given going over it. nutcracker's options are taken too, so a script
/// that runs nutcracker can run percore.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Configuration file: twemproxy's YAML, with percore's keys (see the README). Flags given
    /// as well go over its values.
    #[arg(short = 'c', long, visible_alias = "conf-file", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Check the configuration file (-c) and exit: 0 if it is valid, else 1 with every error
    /// and its line and key. nutcracker's -t.
    #[arg(short = 't', long = "test-conf", visible_alias = "check-config")]
    test_conf: bool,

    /// Port for nutcracker's JSON stats (nutcracker's -s): each connection gets the stats
    /// as one JSON object, then is closed. Served by default with a configuration file;
    /// without one, only if -s or -a is given.
    #[arg(short = 's', long, default_value_t = DEFAULT_STATS_PORT, value_parser = clap::value_parser!(u16).range(1..))]
    stats_port: u16,

    /// Address for nutcracker's JSON stats (nutcracker's -a).
    #[arg(short = 'a', long, default_value = DEFAULT_STATS_ADDR)]
    stats_addr: String,

    /// Stats aggregation interval in milliseconds (nutcracker's -i): the JSON stats are
    /// gathered from the cores at most this often.
    #[arg(short = 'i', long, default_value_t = DEFAULT_STATS_INTERVAL_MS, value_parser = clap::value_parser!(u64).range(1..))]
    stats_interval: u64,

    /// nutcracker's log level, 0 to 11: 0-3 log errors, 4 warnings, 5 (its default) and 6
    /// info, 7 debug, 8-11 trace. Or use --log-level.
    #[arg(short = 'v', long, value_name = "N", conflicts_with = "log_level")]
    verbose: Option<u8>,

    /// Write logs to this file, appending (nutcracker's -o) [default: standard error].
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Write the process id to this file, and remove it at exit (nutcracker's -p).
    #[arg(short = 'p', long, value_name = "FILE")]
    pid_file: Option<PathBuf>,

    /// Run in the background (nutcracker's -d): the command returns once the configuration is
    /// checked, and standard output and error go to /dev/null (use -o for the logs).
    #[arg(short = 'd', long)]
    daemonize: bool,

    /// nutcracker's buffer chunk size in bytes (-m, 512 to 16777216): accepted so its command
    /// lines work; percore sizes its buffers itself, so it has no effect.
    #[arg(short = 'm', long, value_name = "N", value_parser = clap::value_parser!(u32).range(512..=16_777_216))]
    mbuf_size: Option<u32>,

    /// Say what percore's stats are and where to read them, and exit (nutcracker's -D).
    #[arg(short = 'D', long)]
    describe_stats: bool,

    /// Serve GET /metrics (Prometheus text format) and GET /health over HTTP on this
    /// host:port [default: not served].
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    metrics_listen: Option<String>,

    /// Unix socket for upgrades without downtime: a new percore started with the same path
    /// takes this one's listening sockets over, and this one drains and exits (see the
    /// README's Upgrades) [default: none].
    #[arg(long, value_name = "PATH")]
    upgrade_socket: Option<PathBuf>,

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
    /// user). Needs --backend-password (or a password in the file).
    #[arg(long)]
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

    /// Where read-only commands (GET, MGET's parts, ...) are read from: master,
    /// prefer-replica (a healthy replica of the slot's master, else the master), replica
    /// (replicas only; an error when none is healthy) or any (master and replicas in turn).
    /// Everything else goes to the master. A cluster pool's only.
    #[arg(long, value_name = "POLICY", value_parser = parse_read_from)]
    read_from: Option<ReadFrom>,

    /// Replicas further behind their master than this (e.g. 5s, 1500ms) are not read from
    /// until they catch up, as measured from the masters' INFO replication twice a second
    /// (replicas report their offset once a second, so values under 2s also take healthy
    /// replicas out under writes); 0: no bound.
    #[arg(long, default_value = DEFAULT_MAX_REPLICA_LAG, value_parser = humantime::parse_duration)]
    max_replica_lag: Duration,

    #[command(flatten)]
    tls: TlsFlags,

    /// Log filter: error, warn, info, debug, trace, or a tracing directive like percore=debug.
    #[arg(long, default_value = "info")]
    log_level: String,

    /// Log line format: text (for people) or json (one object per line, for log pipelines)
    /// [default: text].
    #[arg(long, value_name = "text|json", value_parser = parse_log_format)]
    log_format: Option<LogFormat>,
}

/// clap's reading of `--read-from`, with the config file's words and message.
fn parse_read_from(text: &str) -> Result<ReadFrom, String> {
    text.parse().map_err(|problem: Problem| problem.to_string())
}

/// clap's reading of `--log-format`, with the config file's words and message.
fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    text.parse().map_err(|problem: Problem| problem.to_string())
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if cli.describe_stats {
        println!("{}\n{MORE_STATS}", percore::describe_stats());
        return ExitCode::SUCCESS;
    }
    let file = match &cli.config {
        Some(path) => match ConfigFile::load(path) {
            Ok(file) => Some(file),
            Err(errors) => {
                for error in &errors.0 {
                    eprintln!("percore: {error}");
                }
                let count = match errors.0.len() {
                    1 => "1 error".to_string(),
                    n => format!("{n} errors"),
                };
                eprintln!(
                    "percore: configuration file '{}' is invalid ({count})",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    if cli.test_conf {
        return match &file {
            Some(file) => test_conf(file),
            None => {
                eprintln!("percore: -t checks a configuration file: give it with -c FILE");
                ExitCode::from(2)
            }
        };
    }
    let (process_flags, pool_flags) = (process_flags(&cli, &matches), pool_flags(&cli, &matches));
    let process = file
        .as_ref()
        .map_or_else(ProcessConfig::default, |f| f.process().clone())
        .with_flags(&process_flags);
    let cores = core_affinity::get_core_ids().map_or(1, |ids| ids.len().max(1));
    let configs = match runtime_configs(file.as_ref(), &process, &pool_flags, cores) {
        Ok(configs) => configs,
        Err(e) => {
            eprintln!("percore: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = init_logging(&process) {
        eprintln!("percore: {e}");
        return ExitCode::from(2);
    }
    // A panic on any core ends the whole process: a core that silently died would leave its
    // clients hanging while the others carry on.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));
    if cli.daemonize {
        if let Err(e) = daemon::daemonize() {
            eprintln!("percore: -d: {e}");
            return ExitCode::FAILURE;
        }
    }
    let pid_file = match process
        .pid_file()
        .map(|path| PidFile::create(path.as_ref()))
    {
        Some(Err(e)) => {
            tracing::error!("cannot write the pid file: {e}");
            eprintln!("percore: cannot write the pid file: {e}");
            return ExitCode::FAILURE;
        }
        pid_file => pid_file.and_then(Result::ok),
    };
    // SIGHUP and PROXY CONFIG RELOAD read the file again, the same flags over it.
    let reload = (cli.config.clone())
        .map(|path| ReloadSource::new(path, process_flags, pool_flags, cores, process.clone()));
    let served = match reload {
        Some(source) => percore::run_reloadable(configs, source),
        None => percore::run_pools(configs),
    };
    if let Some(pid_file) = pid_file.filter(|_| percore::upgrade_failed()) {
        // The old process serves on: the pid file names it again.
        pid_file.restore();
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("percore: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `-t`: the file is valid (it was read); say so, and for each pool that it is served, or why
/// it cannot be here (a listen address that does not resolve, say): then the exit code is 1,
/// as percore would not start with it.
fn test_conf(file: &ConfigFile) -> ExitCode {
    eprintln!("percore: configuration file '{}' is valid", file.name());
    let mut servable = true;
    for pool in file.pools() {
        let kind = match pool.upstream() {
            Upstream::Cluster(_) => "cluster",
            Upstream::Servers(_) => "servers",
        };
        // The certificates are files of their own, read as the start reads them.
        let tls = (pool.tls().clients.as_ref(), pool.tls().backends.as_ref());
        let served = pool_config(pool, file.process(), 1)
            .and_then(|_| percore::config::tls::settle(pool.name(), tls, &TlsFlags::default()));
        let note = match served {
            Ok(_) => "served".to_string(),
            Err(e) => {
                servable = false;
                format!("valid, but cannot be served here: {e}")
            }
        };
        eprintln!(
            "percore:   pool '{}' ({kind}, listen {}): {note}",
            pool.name(),
            pool.listen()
        );
    }
    match servable {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    }
}

/// Logs to standard error or the log file, filtered by the level the flags or the file set.
fn init_logging(process: &ProcessConfig) -> Result<(), String> {
    let level = process.log_level().unwrap_or(DEFAULT_LOG_LEVEL);
    let filter = EnvFilter::try_new(level).map_err(|e| format!("bad log level {level:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let writer = match process.log_file() {
        Some(path) => {
            let file =
                daemon::open_log(path.as_ref()).map_err(|e| format!("log file {path}: {e}"))?;
            BoxMakeWriter::new(std::sync::Arc::new(file))
        }
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let ansi = process.log_file().is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    match process.log_format() {
        LogFormat::Text => builder.with_writer(writer).with_ansi(ansi).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(writer)
            .init(),
    }
    Ok(())
}

/// A `host:port` flag's value, checked as the file's addresses are.
fn host_port(value: &str) -> Result<String, String> {
    percore::config::values::check_address(value)
        .map(|()| value.to_string())
        .map_err(|problem| problem.to_string())
}

/// Whether the flag `id` was given, on the command line or by its environment variable.
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// The process options given.
fn process_flags(cli: &Cli, m: &ArgMatches) -> ProcessFlags {
    let level = cli.verbose.map(|v| nutcracker_verbosity(v).to_string());
    ProcessFlags {
        threads: cli.threads,
        no_pin: cli.no_pin,
        shutdown_timeout: given(m, "shutdown_timeout").then_some(cli.shutdown_timeout),
        log_level: level.or_else(|| given(m, "log_level").then(|| cli.log_level.clone())),
        log_format: cli.log_format,
        log_file: cli.output.as_ref().map(|p| p.display().to_string()),
        pid_file: cli.pid_file.as_ref().map(|p| p.display().to_string()),
        stats_addr: given(m, "stats_addr").then(|| cli.stats_addr.clone()),
        stats_port: given(m, "stats_port").then_some(cli.stats_port),
        stats_interval: given(m, "stats_interval")
            .then(|| Duration::from_millis(cli.stats_interval)),
        metrics_listen: cli.metrics_listen.clone(),
        upgrade_socket: cli.upgrade_socket.as_ref().map(|p| p.display().to_string()),
    }
}

/// The pool settings given; each goes over the file's value for the pool.
fn pool_flags(cli: &Cli, m: &ArgMatches) -> PoolFlags {
    let some = |id: &str| given(m, id);
    PoolFlags {
        listen: some("listen").then_some(cli.listen),
        seeds: some("cluster").then(|| cli.cluster.clone()),
        backend_conns: some("backend_conns").then_some(cli.backend_conns),
        refresh_interval: some("refresh_interval").then_some(cli.refresh_interval),
        backend_timeout: some("backend_timeout").then_some(cli.backend_timeout),
        max_query_buffer: some("max_query_buffer").then_some(cli.max_query_buffer),
        max_bulk_len: some("max_bulk_len").then_some(cli.max_bulk_len),
        max_clients: some("max_clients").then_some(cli.max_clients),
        idle_timeout: some("idle_timeout").then_some(cli.idle_timeout),
        max_output_buffer: some("max_output_buffer").then_some(cli.max_output_buffer),
        requirepass: cli.requirepass.clone(),
        users: cli.users.clone(),
        backend_user: cli.backend_user.clone(),
        backend_password: cli.backend_password.clone(),
        max_leased_conns: some("max_leased_conns").then_some(cli.max_leased_conns),
        pubsub_output_hard_limit: some("pubsub_output_hard_limit")
            .then_some(cli.pubsub_output_hard_limit),
        pubsub_output_soft_limit: some("pubsub_output_soft_limit")
            .then_some(cli.pubsub_output_soft_limit),
        pubsub_output_soft_seconds: some("pubsub_output_soft_seconds")
            .then_some(cli.pubsub_output_soft_seconds),
        announce: cli.announce.clone(),
        proxy_peers: some("proxy_peers").then(|| cli.proxy_peers.clone()),
        slowlog_slower_than: some("slowlog_slower_than").then_some(cli.slowlog_slower_than),
        slowlog_max_len: some("slowlog_max_len").then_some(cli.slowlog_max_len),
        tls: cli.tls.clone(),
        read_from: cli.read_from,
        max_replica_lag: some("max_replica_lag").then_some(cli.max_replica_lag),
    }
}
