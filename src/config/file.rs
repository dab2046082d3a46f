//! The configuration file: twemproxy's YAML, unchanged, with percore's keys beside
//! nutcracker's. Top-level keys are pool names, each a mapping of its settings; the top-level
//! key `percore` is the section of process-wide settings instead.
//!
//! Reading is pure but for the environment variables `*_env` keys name (looked up through a
//! function the caller passes, so tests give their own). It reads every key of every pool
//! and reports every error with its file, line, pool and key, then checks the file as a
//! whole as nutcracker does: at least one pool, no two pools on one address.

use std::path::Path;

use super::error::{ConfigError, ConfigErrors, Problem, Scope};
use super::pool::{read_pool, PoolConfig};
use super::process::{read_process, ProcessConfig};
use super::read::Reader;
use super::yaml::{self, Kind};

/// The top-level key of the process-wide section (so no pool can be named `percore`).
pub const PROCESS_SECTION: &str = "percore";

/// A whole configuration file, valid: the process settings and the pools in file order.
/// Immutable: built only by reading a file; the runtime is given values built from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    name: String,
    process: ProcessConfig,
    pools: Vec<PoolConfig>,
}

impl ConfigFile {
    /// Reads and checks the file at `path`, with the process's environment.
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigErrors> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: name.clone(),
                line: 0,
                scope: None,
                key: None,
                problem: Problem::Read(e.to_string()),
            }])
        })?;
        ConfigFile::parse(&name, &text, &|var| std::env::var(var).ok())
    }

    /// Reads and checks `text`, named `name` in errors; `env` gives environment variables.
    pub fn parse(
        name: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConfigFile, ConfigErrors> {
        let mut errors = Vec::new();
        let file = read(name, text, env, &mut errors);
        // In file order, whatever order the keys were checked in.
        errors.sort_by_key(|e| e.line);
        match file {
            Some(file) if errors.is_empty() => Ok(file),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// The file's name, as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process-wide settings (`percore:`).
    pub fn process(&self) -> &ProcessConfig {
        &self.process
    }

    /// The pools, in file order.
    pub fn pools(&self) -> &[PoolConfig] {
        &self.pools
    }
}

/// Reads the whole file, recording every error; `None` if it cannot even be read as YAML.
fn read(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) -> Option<ConfigFile> {
    let mut reader = Reader {
        file: name,
        scope: None,
        errors,
    };
    let root = match yaml::parse(text) {
        Ok(Some(root)) => root,
        Ok(None) => {
            reader.error(0, None, Problem::NoPools);
            return None;
        }
        Err(e) => {
            reader.error(e.line, None, Problem::Syntax(e.message));
            return None;
        }
    };
    let Kind::Map(entries) = &root.kind else {
        let problem = Problem::Shape("pools: a mapping of pool names to their settings");
        reader.error(root.line, None, problem);
        return None;
    };
    let mut process = ProcessConfig::default();
    let mut pools: Vec<PoolConfig> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for entry in entries {
        if seen.contains(&entry.key.as_str()) {
            reader.scope = Some(Scope::Pool(entry.key.clone()));
            reader.error(entry.line, None, Problem::Duplicate);
            continue;
        }
        seen.push(&entry.key);
        if entry.key == PROCESS_SECTION {
            reader.scope = Some(Scope::Process);
            process = read_process(&mut reader, entry.line, &entry.value);
            continue;
        }
        reader.scope = Some(Scope::Pool(entry.key.clone()));
        if let Some(pool) = read_pool(&mut reader, (&entry.key, entry.line), &entry.value, env) {
            if let Some(other) = pools.iter().find(|p| p.listen().overlaps(pool.listen())) {
                let problem = Problem::DuplicateListen {
                    listen: pool.listen().to_string(),
                    other: other.name().into(),
                };
                reader.error(
                    listen_line(&entry.value).unwrap_or(entry.line),
                    Some("listen"),
                    problem,
                );
            }
            pools.push(pool);
        }
    }
    reader.scope = None;
    if seen.iter().all(|key| *key == PROCESS_SECTION) {
        reader.error(root.line, None, Problem::NoPools);
    }
    Some(ConfigFile {
        name: name.into(),
        process,
        pools,
    })
}

/// The line of a pool's `listen:` key.
fn listen_line(pool: &yaml::Node) -> Option<usize> {
    let Kind::Map(entries) = &pool.kind else {
        return None;
    };
    entries.iter().find(|e| e.key == "listen").map(|e| e.line)
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
