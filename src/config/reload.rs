//! Reading the configuration file again, for a reload (SIGHUP, `PROXY CONFIG RELOAD`): the
//! same file read the same way as at start, the command line's flags over it again, and the
//! settings a running process cannot take refused, each named by its line and key.
//!
//! A reload is all or nothing: [`ReloadSource::load`] gives every pool's [`Config`] only when
//! the whole file is valid, and [`ReloadSource::fixed_changes`] lists what it would change
//! that only a restart can (the cores and their pinning, the process's ports and logs, a
//! pool's listen address and kind). Either list not empty, nothing changes. Applying what is left, on every
//! core, is the runtime's business (`shard::reload`); this is pure but for reading the file.

use std::path::{Path, PathBuf};

use super::build::{runtime_configs, PoolFlags};
use super::error::{ConfigError, Problem, Scope};
use super::file::ConfigFile;
use super::process::{ProcessConfig, ProcessFlags};
use super::{Config, ListenAddr};

/// How a process setting changes instead of by a reload.
const PROCESS_HOW: &str = "restart percore to change it";
/// How a pool's fixed setting changes instead: a pool is its name, so a pool under a new name
/// (and the old one taken out) is a pool added and one removed, which a reload does.
const POOL_HOW: &str = "restart percore, or replace the pool with one under a new name";

/// Where a reload reads from: the `-c` file, with the flags the process was started with,
/// which go over the file's values on every reload as they did at start.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    path: PathBuf,
    process_flags: ProcessFlags,
    pool_flags: PoolFlags,
    /// The cores the process may run on (a pool's default `threads`).
    cores: usize,
    /// The process settings the process started with: no reload changes them.
    started: ProcessConfig,
}

/// A configuration read from the file and the flags, valid as a whole.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file, as it was named to percore.
    pub file: String,
    /// The process settings (`percore:` and the process flags).
    pub process: ProcessConfig,
    /// Every pool, in the file's order.
    pub pools: Vec<Config>,
    /// The line each pool starts at, by name, for the errors about it.
    lines: Vec<(String, usize)>,
}

impl ReloadSource {
    /// The file at `path`, with the flags given; `started` is what the process runs with.
    pub fn new(
        path: PathBuf,
        process_flags: ProcessFlags,
        pool_flags: PoolFlags,
        cores: usize,
        started: ProcessConfig,
    ) -> ReloadSource {
        ReloadSource {
            path,
            process_flags,
            pool_flags,
            cores,
            started,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file and builds every pool's configuration as the start does, or gives every
    /// error, one line each (`file:line: pool 'p' key 'k': ...` where the file says).
    pub fn load(&self) -> Result<Loaded, Vec<String>> {
        let file = ConfigFile::load(&self.path)
            .map_err(|errors| errors.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        self.build(&file)
    }

    /// [`ReloadSource::load`] of a file already read.
    fn build(&self, file: &ConfigFile) -> Result<Loaded, Vec<String>> {
        let process = file.process().clone().with_flags(&self.process_flags);
        let pools = runtime_configs(Some(file), &process, &self.pool_flags, self.cores)
            .map_err(|e| vec![format!("{}: {e}", file.name())])?;
        let lines = file
            .pools()
            .iter()
            .map(|pool| (pool.name().to_string(), pool.line()))
            .collect();
        Ok(Loaded {
            file: file.name().to_string(),
            process,
            pools,
            lines,
        })
    }

    /// What `new` changes that a running process cannot, given the pools it serves now
    /// (`running`): one error per setting, naming the line and key. Pools added or removed
    /// are no such change; a pool that stays keeps its address and kind.
    pub fn fixed_changes<'a>(
        &self,
        running: impl IntoIterator<Item = &'a Config>,
        new: &Loaded,
    ) -> Vec<ConfigError> {
        let mut errors = process_changes(&self.started, new);
        for old in running {
            let Some(pool) = new.pools.iter().find(|pool| pool.name == old.name) else {
                continue;
            };
            let line = new.line_of(&pool.name);
            for (key, was, wanted) in pool_changes(old, pool) {
                errors.push(ConfigError {
                    file: new.file.clone(),
                    line,
                    scope: Some(Scope::Pool(pool.name.clone())),
                    key: Some(key.into()),
                    problem: Problem::Fixed {
                        was,
                        wanted,
                        how: POOL_HOW,
                    },
                });
            }
        }
        errors.sort_by_key(|e| e.line);
        errors
    }
}

impl Loaded {
    /// The line pool `name` starts at (0 if the file has no such pool).
    fn line_of(&self, name: &str) -> usize {
        let found = self.lines.iter().find(|(pool, _)| pool == name);
        found.map_or(0, |(_, line)| *line)
    }
}

/// The process settings `new` changes, each an error of the `percore:` section.
fn process_changes(started: &ProcessConfig, new: &Loaded) -> Vec<ConfigError> {
    let now = &new.process;
    let text = |value: Option<&str>| value.unwrap_or("none").to_string();
    let threads = |p: &ProcessConfig| p.threads().map_or("every core".into(), |t| t.to_string());
    let interval = |p: &ProcessConfig| humantime::format_duration(p.stats_interval()).to_string();
    let format = |p: &ProcessConfig| format!("{:?}", p.log_format()).to_lowercase();
    let settings = [
        ("threads", threads(started), threads(now)),
        (
            "no_pin",
            (!started.pin()).to_string(),
            (!now.pin()).to_string(),
        ),
        (
            "log_level",
            text(started.log_level()),
            text(now.log_level()),
        ),
        ("log_format", format(started), format(now)),
        ("log_file", text(started.log_file()), text(now.log_file())),
        ("pid_file", text(started.pid_file()), text(now.pid_file())),
        (
            "stats_listen",
            started.stats_listen().into(),
            now.stats_listen().into(),
        ),
        ("stats_interval", interval(started), interval(now)),
        (
            "metrics_listen",
            text(started.metrics_listen()),
            text(now.metrics_listen()),
        ),
    ];
    settings
        .into_iter()
        .filter(|(_, was, wanted)| was != wanted)
        .map(|(key, was, wanted)| ConfigError {
            file: new.file.clone(),
            line: 0,
            scope: Some(Scope::Process),
            key: Some(key.into()),
            problem: Problem::Fixed {
                was,
                wanted,
                how: PROCESS_HOW,
            },
        })
        .collect()
}

/// What kind of upstream a pool has, as its keys name it.
fn kind(config: &Config) -> &'static str {
    match &config.servers {
        None => "cluster",
        Some(servers) if servers.sentinel.is_some() => "servers with sentinels",
        Some(_) => "servers",
    }
}

/// The settings of a pool that stays that `new` changes and a reload cannot: `(key, now,
/// in the file)`.
fn pool_changes(old: &Config, new: &Config) -> Vec<(&'static str, String, String)> {
    let mut fixed = Vec::new();
    let mut differ = |key, was: String, wanted: String| {
        if was != wanted {
            fixed.push((key, was, wanted));
        }
    };
    // Every core's listener is bound to it; a new address is a new pool.
    differ("listen", listen_text(&old.listen), listen_text(&new.listen));
    // Given to listen(2) when the listeners were made.
    differ(
        "backlog",
        old.listen_backlog.to_string(),
        new.listen_backlog.to_string(),
    );
    // Cluster, static and Sentinel pools place keys and follow their servers differently.
    differ("servers", kind(old).into(), kind(new).into());
    if kind(old) != kind(new) {
        return fixed;
    }
    // Sidecar settings: each core's background-write queue and per-database connections are
    // set up with the pool.
    let writes = |c: &Config| format!("{:?}", c.sidecar.async_writes);
    differ("async_writes", writes(old), writes(new));
    differ(
        "databases",
        old.sidecar.databases.to_string(),
        new.sidecar.databases.to_string(),
    );
    match (&old.servers, &new.servers) {
        (Some(old), Some(new)) => {
            // Connections select it once, when made: two databases at once otherwise.
            differ("redis_db", old.db.to_string(), new.db.to_string());
            // The Sentinel watcher follows the masters it was started with.
            if let (Some(was), Some(wanted)) = (&old.sentinel, &new.sentinel) {
                differ(
                    "sentinels",
                    was.sentinels.join(","),
                    wanted.sentinels.join(","),
                );
                differ("servers", was.masters.join(","), wanted.masters.join(","));
                let password =
                    |s: &super::SentinelConfig| s.auth.as_ref().map(|a| a.password.clone());
                if password(was) != password(wanted) {
                    fixed.push(("sentinel_password", "one".into(), "another".into()));
                }
            }
        }
        _ => {
            // What cluster-mode clients are told, and the fleet the core 0 watch follows.
            let announce = |c: &Config| c.announce.clone().unwrap_or_else(|| "none".into());
            differ("announce", announce(old), announce(new));
            differ("proxy_peers", old.peers.join(","), new.peers.join(","));
        }
    }
    fixed
}

/// A listen address as the file writes it, with a Unix socket's permissions.
fn listen_text(listen: &ListenAddr) -> String {
    match listen {
        ListenAddr::Unix {
            permissions: Some(mode),
            ..
        } => format!("{listen} {mode:o}"),
        _ => listen.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: &str = "p:\n  listen: 127.0.0.1:22121\n  redis: true\n";

    fn source() -> ReloadSource {
        ReloadSource::new(
            "r.yml".into(),
            ProcessFlags::default(),
            PoolFlags::default(),
            2,
            ProcessConfig::default(),
        )
    }

    fn loaded(text: &str) -> Loaded {
        let file = ConfigFile::parse("r.yml", text, &|_| None).expect("a valid file");
        source().build(&file).expect("servable")
    }

    fn refusals(before: &str, after: &str) -> Vec<String> {
        let running = loaded(before).pools;
        let errors = source().fixed_changes(&running, &loaded(after));
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn servers_limits_users_and_pools_may_change() {
        let before = format!("{POOL}  servers:\n   - 127.0.0.1:6379:1\n");
        let after = format!(
            "{POOL}  timeout: 400\n  client_connections: 10\n  redis_auth: pw\n  servers:\n   \
             - 127.0.0.1:6379:1\n   - 127.0.0.1:6380:2\nq:\n  listen: 127.0.0.1:22122\n  \
             redis: true\n  servers:\n   - 127.0.0.1:6381:1\n"
        );
        assert_eq!(refusals(&before, &after), Vec::<String>::new());
        // A pool removed is no refusal either.
        assert_eq!(refusals(&after, &before), Vec::<String>::new());
    }

    #[test]
    fn a_pool_keeps_its_address_kind_and_database() {
        let servers = "  servers:\n   - 127.0.0.1:6379:1\n";
        let before = format!("{POOL}{servers}");
        let moved = format!("p:\n  listen: 127.0.0.1:22199\n  redis: true\n{servers}");
        assert_eq!(
            refusals(&before, &moved),
            [
                "r.yml:1: pool 'p' key 'listen': cannot change on reload (127.0.0.1:22121 now, \
              127.0.0.1:22199 in the file): restart percore, or replace the pool with one \
              under a new name"
            ]
        );
        let cluster = format!("{POOL}  cluster:\n   - 127.0.0.1:7000\n");
        let said = refusals(&before, &cluster);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].contains(
                "key 'servers': cannot change on reload (servers now, cluster in the file)"
            ),
            "{said:?}"
        );
        let backlog = format!("{POOL}  backlog: 100\n{servers}");
        let said = refusals(&before, &backlog);
        assert!(
            said.len() == 1 && said[0].contains("key 'backlog': cannot change on reload (512 now"),
            "{said:?}"
        );
        let db = format!("{POOL}  redis_db: 2\n{servers}");
        let said = refusals(&before, &db);
        assert!(
            said.len() == 1 && said[0].contains("key 'redis_db'"),
            "{said:?}"
        );
    }

    #[test]
    fn the_flags_go_over_the_file_again() {
        let flags = PoolFlags {
            max_clients: Some(7),
            ..PoolFlags::default()
        };
        let source = ReloadSource::new(
            "r.yml".into(),
            ProcessFlags::default(),
            flags,
            2,
            ProcessConfig::default(),
        );
        let text = format!("{POOL}  client_connections: 10\n  servers:\n   - 127.0.0.1:6379:1\n");
        let file = ConfigFile::parse("r.yml", &text, &|_| None).expect("a valid file");
        let loaded = source.build(&file).expect("servable");
        assert_eq!(loaded.pools[0].max_clients, 7);
    }

    #[test]
    fn the_process_settings_are_the_starts() {
        let before = format!("{POOL}  servers:\n   - 127.0.0.1:6379:1\n");
        let after = format!("percore:\n  threads: 3\n  shutdown_timeout: 9s\n{before}");
        let said = refusals(&before, &after);
        assert_eq!(said.len(), 1, "shutdown_timeout may change: {said:?}");
        assert!(
            said[0].starts_with("r.yml: section 'percore' key 'threads': cannot change on reload (every core now, 3 in"),
            "{said:?}"
        );
    }
}
