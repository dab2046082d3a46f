//! Process-wide settings: the file's `percore:` section and nutcracker's process options
//! (`-s`, `-a`, `-i`, `-v`, `-o`, `-p`), which are one process's, not one pool's.

use std::time::Duration;

use tracing_subscriber::EnvFilter;

use super::error::Problem;
use super::read::Reader;
use super::values::check_address;
use super::yaml::Node;
use super::Config;

/// nutcracker's stats address (`STATS_ADDR`, `-a`): every local address.
pub const DEFAULT_STATS_ADDR: &str = "0.0.0.0";
/// nutcracker's stats port (`STATS_PORT`, `-s`).
pub const DEFAULT_STATS_PORT: u16 = 22222;
/// nutcracker's stats aggregation interval, in ms (`STATS_INTERVAL`, `-i`).
pub const DEFAULT_STATS_INTERVAL_MS: u64 = 30_000;
/// The log filter when nothing sets one: nutcracker's default level (5, notice) maps here.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// The keys of the `percore:` section.
const KEYS: &[&str] = &[
    "threads",
    "no_pin",
    "shutdown_timeout",
    "log_level",
    "log_format",
    "log_file",
    "pid_file",
    "stats_listen",
    "stats_interval",
    "metrics_listen",
    "upgrade_socket",
];

/// Settings of the whole process, with their defaults applied. Immutable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessConfig {
    threads: Option<usize>,
    pin: bool,
    shutdown_timeout: Duration,
    log_level: Option<String>,
    log_format: LogFormat,
    log_file: Option<String>,
    pid_file: Option<String>,
    stats_listen: String,
    /// `stats_listen`, `-s` or `-a` was given.
    stats_given: bool,
    stats_interval: Duration,
    metrics_listen: Option<String>,
    upgrade_socket: Option<String>,
}

impl Default for ProcessConfig {
    /// Every default: all cores, pinned, nutcracker's stats address and interval.
    fn default() -> Self {
        ProcessConfig {
            threads: None,
            pin: true,
            shutdown_timeout: Config::default().shutdown_timeout,
            log_level: None,
            log_format: LogFormat::Text,
            log_file: None,
            pid_file: None,
            stats_listen: format!("{DEFAULT_STATS_ADDR}:{DEFAULT_STATS_PORT}"),
            stats_given: false,
            stats_interval: Duration::from_millis(DEFAULT_STATS_INTERVAL_MS),
            metrics_listen: None,
            upgrade_socket: None,
        }
    }
}

impl ProcessConfig {
    /// Cores to run on (`threads`); `None`: every core the process may use.
    pub fn threads(&self) -> Option<usize> {
        self.threads
    }
    /// Pin each core's thread to its core (`no_pin: true` turns it off).
    pub fn pin(&self) -> bool {
        self.pin
    }
    /// Bound on draining at SIGTERM/SIGINT (`shutdown_timeout`).
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }
    /// The log filter (`log_level`), if the file sets one.
    pub fn log_level(&self) -> Option<&str> {
        self.log_level.as_deref()
    }
    /// How log lines are written (`log_format`).
    pub fn log_format(&self) -> LogFormat {
        self.log_format
    }
    /// The file logs go to (`log_file`, nutcracker's `-o`); `None`: standard error.
    pub fn log_file(&self) -> Option<&str> {
        self.log_file.as_deref()
    }
    /// The file the process id is written to (`pid_file`, nutcracker's `-p`).
    pub fn pid_file(&self) -> Option<&str> {
        self.pid_file.as_deref()
    }
    /// Where nutcracker-style JSON stats are to be served (`stats_listen`, `-a`:`-s`).
    pub fn stats_listen(&self) -> &str {
        &self.stats_listen
    }
    /// Whether the stats address was given (`stats_listen`, `-s` or `-a`), not defaulted.
    pub fn stats_given(&self) -> bool {
        self.stats_given
    }
    /// The stats aggregation interval (`stats_interval`, `-i`).
    pub fn stats_interval(&self) -> Duration {
        self.stats_interval
    }
    /// Where `/metrics` and `/health` are served (`metrics_listen`, `--metrics-listen`);
    /// `None`: nowhere.
    pub fn metrics_listen(&self) -> Option<&str> {
        self.metrics_listen.as_deref()
    }
    /// The Unix socket a new percore takes this one's listening sockets over from
    /// (`upgrade_socket`, `--upgrade-socket`); `None`: no upgrades without downtime.
    pub fn upgrade_socket(&self) -> Option<&str> {
        self.upgrade_socket.as_deref()
    }
}

/// Reads the `percore:` section, whose key is at `line`; errors go to `reader` and leave the
/// default in place.
pub(super) fn read_process(reader: &mut Reader, line: usize, node: &Node) -> ProcessConfig {
    let mut process = ProcessConfig::default();
    let Some(fields) = reader.fields(line, node, KEYS) else {
        return process;
    };
    if let Some(entry) = fields.get("threads") {
        process.threads = reader
            .number(entry, 1, u64::from(u16::MAX))
            .map(|n| n as usize);
    }
    if let Some(no_pin) = fields.get("no_pin").and_then(|e| reader.boolean(e)) {
        process.pin = !no_pin;
    }
    if let Some(timeout) = fields
        .get("shutdown_timeout")
        .and_then(|e| reader.duration(e))
    {
        process.shutdown_timeout = timeout;
    }
    if let Some(entry) = fields.get("log_level") {
        if let Some(text) = reader.text(entry) {
            match check_log_level(text) {
                Ok(()) => process.log_level = Some(text.into()),
                Err(problem) => reader.error(entry.line, Some("log_level"), problem),
            }
        }
    }
    if let Some(entry) = fields.get("log_format") {
        if let Some(text) = reader.text(entry) {
            match text.parse() {
                Ok(format) => process.log_format = format,
                Err(problem) => reader.error(entry.line, Some("log_format"), problem),
            }
        }
    }
    process.log_file = fields
        .get("log_file")
        .and_then(|e| reader.text(e))
        .map(String::from);
    process.pid_file = fields
        .get("pid_file")
        .and_then(|e| reader.text(e))
        .map(String::from);
    if let Some(entry) = fields.get("stats_listen") {
        if let Some(text) = reader.text(entry) {
            match check_address(text) {
                Ok(()) => {
                    process.stats_listen = text.into();
                    process.stats_given = true;
                }
                Err(problem) => reader.error(entry.line, Some("stats_listen"), problem),
            }
        }
    }
    if let Some(entry) = fields.get("metrics_listen") {
        if let Some(text) = reader.text(entry) {
            match check_address(text) {
                Ok(()) => process.metrics_listen = Some(text.into()),
                Err(problem) => reader.error(entry.line, Some("metrics_listen"), problem),
            }
        }
    }
    process.upgrade_socket = fields
        .get("upgrade_socket")
        .and_then(|e| reader.text(e))
        .map(String::from);
    if let Some(interval) = fields
        .get("stats_interval")
        .and_then(|e| reader.positive_duration(e))
    {
        process.stats_interval = interval;
    }
    process
}

/// How log lines are written: for people (`text`, the default) or for a log pipeline (`json`,
/// one object per line with the time, level, message and every field, so the pool, node and
/// cause of a line can be queried without parsing prose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// tracing's human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = Problem;

    fn from_str(text: &str) -> Result<Self, Problem> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(Problem::LogFormat(other.into())),
        }
    }
}

/// Whether tracing reads `filter` (`info`, `percore=debug`, ...).
pub fn check_log_level(filter: &str) -> Result<(), Problem> {
    EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|e| Problem::LogLevel {
            value: filter.into(),
            reason: e.to_string(),
        })
}

/// The log filter for nutcracker's `-v N` levels (0 emerg .. 11 periodic verbose):
/// 0-3 (emerg, alert, crit, err) error, 4 warn, 5-6 (notice, the default, and info) info,
/// 7 debug, 8-11 (the verbose levels) trace.
pub fn nutcracker_verbosity(level: u8) -> &'static str {
    match level {
        0..=3 => "error",
        4 => "warn",
        5 | 6 => "info",
        7 => "debug",
        _ => "trace",
    }
}

impl ProcessConfig {
    /// This configuration with the process options given on the command line put over it.
    pub fn with_flags(mut self, flags: &ProcessFlags) -> ProcessConfig {
        if let Some(threads) = flags.threads {
            self.threads = Some(threads);
        }
        if flags.no_pin {
            self.pin = false;
        }
        if let Some(timeout) = flags.shutdown_timeout {
            self.shutdown_timeout = timeout;
        }
        if let Some(level) = &flags.log_level {
            self.log_level = Some(level.clone());
        }
        if let Some(format) = flags.log_format {
            self.log_format = format;
        }
        if let Some(file) = &flags.log_file {
            self.log_file = Some(file.clone());
        }
        if let Some(file) = &flags.pid_file {
            self.pid_file = Some(file.clone());
        }
        if flags.stats_addr.is_some() || flags.stats_port.is_some() {
            let (addr, port) = self.stats_listen.rsplit_once(':').unwrap_or_default();
            let addr = flags.stats_addr.as_deref().unwrap_or(addr);
            let port = flags.stats_port.map_or(port.to_string(), |p| p.to_string());
            self.stats_listen = format!("{addr}:{port}");
            self.stats_given = true;
        }
        if let Some(interval) = flags.stats_interval {
            self.stats_interval = interval;
        }
        if let Some(listen) = &flags.metrics_listen {
            self.metrics_listen = Some(listen.clone());
        }
        if let Some(path) = &flags.upgrade_socket {
            self.upgrade_socket = Some(path.clone());
        }
        self
    }
}

/// The process options given on the command line; `None` (or false) where not given.
#[derive(Debug, Clone, Default)]
pub struct ProcessFlags {
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--no-pin`.
    pub no_pin: bool,
    /// `--shutdown-timeout`.
    pub shutdown_timeout: Option<Duration>,
    /// `--log-level`, or `-v` mapped by [`nutcracker_verbosity`].
    pub log_level: Option<String>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `-o`.
    pub log_file: Option<String>,
    /// `-p`.
    pub pid_file: Option<String>,
    /// `-a`.
    pub stats_addr: Option<String>,
    /// `-s`.
    pub stats_port: Option<u16>,
    /// `-i`.
    pub stats_interval: Option<Duration>,
    /// `--metrics-listen`.
    pub metrics_listen: Option<String>,
    /// `--upgrade-socket`.
    pub upgrade_socket: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_levels() {
        let levels: Vec<&str> = (0..=11).map(nutcracker_verbosity).collect();
        assert_eq!(
            levels,
            [
                "error", "error", "error", "error", "warn", "info", "info", "debug", "trace",
                "trace", "trace", "trace"
            ]
        );
    }

    #[test]
    fn log_formats() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert_eq!(
            "xml".parse::<LogFormat>().map_err(|p| p.to_string()),
            Err("'xml' is not a log format: text or json".to_string())
        );
        let flags = ProcessFlags {
            log_format: Some(LogFormat::Json),
            ..ProcessFlags::default()
        };
        let process = ProcessConfig::default().with_flags(&flags);
        assert_eq!(process.log_format(), LogFormat::Json);
    }

    #[test]
    fn flags_go_over_the_file() {
        let flags = ProcessFlags {
            threads: Some(3),
            no_pin: true,
            stats_port: Some(2000),
            ..ProcessFlags::default()
        };
        let process = ProcessConfig::default().with_flags(&flags);
        assert_eq!((process.threads(), process.pin()), (Some(3), false));
        assert_eq!(process.stats_listen(), "0.0.0.0:2000");
        let flags = ProcessFlags {
            stats_addr: Some("127.0.0.1".into()),
            ..ProcessFlags::default()
        };
        let process = ProcessConfig::default().with_flags(&flags);
        assert_eq!(process.stats_listen(), "127.0.0.1:22222");
        assert_eq!(process.stats_interval(), Duration::from_secs(30));
        assert_eq!(process.shutdown_timeout(), Duration::from_secs(5));
    }

    #[test]
    fn log_levels() {
        assert!(check_log_level("info").is_ok());
        assert!(check_log_level("percore=debug").is_ok());
        assert!(check_log_level("percore=[").is_err());
    }
}
