//! Installs the client libraries that tests/client_libraries.rs drives: redis-py (PyPI, into a
//! venv) and ioredis and node-redis (npm, into a directory of their own), all under the target
//! directory, so a fresh machine with Python 3 + pip and Node.js + npm needs nothing else.
//!
//! Each is installed once and reused while the interpreter it was installed for is the same
//! and the install is younger than [`REUSE_FOR`]; past that it is installed afresh, so the
//! tests follow the latest release without paying the install on every run. Nothing is
//! pinned: a new release that percore does not serve shows up as a failing test. Test
//! binaries running in parallel take turns through a lock file, and every step is bounded in
//! time; a failed install fails the tests that need it with the tool's own output.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// Longest one install command (venv creation, pip or npm install) may take: both take seconds
/// on a fresh machine; this only bounds a registry that stops answering.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for another test binary's install: both of its installs, with room to spare.
const LOCK_TIMEOUT: Duration = Duration::from_secs(700);
/// How long an install is reused before the latest releases are installed again: a developer
/// running the tests all day pays the install once, and still meets new releases.
const REUSE_FOR: Duration = Duration::from_secs(24 * 3600);
/// Pause between attempts to take the lock, and between checks whether an install step ended.
const POLL: Duration = Duration::from_millis(100);

/// redis-py's venv.
pub struct Python {
    /// The venv's interpreter.
    pub interpreter: PathBuf,
    /// redis-py's version.
    pub redis_py: String,
    /// The interpreter's version.
    pub version: String,
}

/// The npm directory with ioredis and node-redis.
pub struct Node {
    /// The directory whose node_modules has both (`CLIENT_LIBS_NODE_DIR` for the script).
    pub dir: PathBuf,
    /// ioredis's version.
    pub ioredis: String,
    /// node-redis's (the `redis` package's) version.
    pub node_redis: String,
    /// Node.js's version.
    pub version: String,
}

/// The directory everything is installed into.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("client-libs")
}

/// redis-py, installed on first use; panics with the installer's output if that failed.
pub fn python() -> &'static Python {
    static PYTHON: OnceLock<Result<Python, String>> = OnceLock::new();
    static ANNOUNCED: Once = Once::new();
    let python = PYTHON
        .get_or_init(|| locked(install_python))
        .as_ref()
        .unwrap_or_else(|e| panic!("installing redis-py failed: {e}"));
    announce(&ANNOUNCED, || {
        format!("redis-py {} (python {})", python.redis_py, python.version)
    });
    python
}

/// ioredis and node-redis, installed on first use; panics with npm's output if that failed.
pub fn node() -> &'static Node {
    static NODE: OnceLock<Result<Node, String>> = OnceLock::new();
    static ANNOUNCED: Once = Once::new();
    let node = NODE
        .get_or_init(|| locked(install_node))
        .as_ref()
        .unwrap_or_else(|e| panic!("installing ioredis and node-redis failed: {e}"));
    announce(&ANNOUNCED, || {
        format!(
            "ioredis {}, node-redis {} (node {})",
            node.ioredis, node.node_redis, node.version
        )
    });
    node
}

/// The redis crate's version, from Cargo.lock (the one this test binary was built with).
pub fn redis_rs_version() -> String {
    static ANNOUNCED: Once = Once::new();
    let version = version_in_cargo_lock();
    announce(&ANNOUNCED, || format!("redis-rs {version}"));
    version
}

fn version_in_cargo_lock() -> String {
    let lock = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .unwrap_or_default();
    lock.split("[[package]]")
        .find(|package| package.contains("\nname = \"redis\"\n"))
        .and_then(|package| quoted_after(package, "version = "))
        .unwrap_or_else(|| "unknown".into())
}

/// Writes what is under test once per test binary, straight to stderr so that libtest's
/// capture does not hide it when every test passes.
fn announce(once: &'static Once, what: impl FnOnce() -> String) {
    once.call_once(|| {
        let line = format!("client library under test: {}\n", what());
        let _ = std::io::stderr().write_all(line.as_bytes());
    });
}

/// Runs `install` holding the lock file, so parallel test binaries install one at a time and
/// the second finds the first one's work.
fn locked<T>(install: fn(&Path) -> Result<T, String>) -> Result<T, String> {
    let root = root();
    fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let lock_path = root.join("install.lock");
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(POLL)
            }
            Err(e) => return Err(format!("cannot lock {}: {e}", lock_path.display())),
        }
    }
    let result = install(&root);
    let _ = lock.unlock();
    result
}

fn install_python(root: &Path) -> Result<Python, String> {
    let version = output(Command::new("python3").arg("--version"))
        .map_err(|e| format!("python3 is needed ({e}); install Python 3 with pip and venv"))?;
    let version = version.trim().trim_start_matches("Python ").to_string();
    let venv = root.join("venv");
    let interpreter = venv.join("bin").join("python");
    let stamp = root.join("python.stamp");
    let installed = |interpreter: &Path| {
        output(Command::new(interpreter).args(["-c", "import redis; print(redis.__version__)"]))
            .map(|v| v.trim().to_string())
    };
    let want = format!("python {version}");
    if fresh(&stamp, &want) {
        if let Ok(redis_py) = installed(&interpreter) {
            return Ok(Python {
                interpreter,
                redis_py,
                version,
            });
        }
    }
    let _ = fs::remove_dir_all(&venv);
    run(
        "python3 -m venv",
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
    )
    .map_err(|e| format!("{e}\n(on Debian or Ubuntu: apt-get install python3-venv)"))?;
    run(
        "pip install redis",
        Command::new(&interpreter).args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            "redis",
        ]),
    )?;
    let redis_py = installed(&interpreter)?;
    write_stamp(
        &stamp,
        &want,
        &format!("redis-py {redis_py} (python {version})"),
    )?;
    Ok(Python {
        interpreter,
        redis_py,
        version,
    })
}

/// The package.json the npm directory gets: both libraries at their latest release.
const PACKAGE_JSON: &str = r#"{
  "name": "percore-client-tests",
  "private": true,
  "description": "Written by tests/clients/install.rs: the client libraries percore's tests drive",
  "dependencies": { "ioredis": "latest", "redis": "latest" }
}
"#;

fn install_node(root: &Path) -> Result<Node, String> {
    let version = output(Command::new("node").arg("--version"))
        .map_err(|e| format!("node is needed ({e}); install Node.js with npm"))?;
    let version = version.trim().to_string();
    let dir = root.join("node");
    let stamp = root.join("node.stamp");
    let want = format!("node {version}");
    let installed = |dir: &Path| -> Result<(String, String), String> {
        Ok((
            package_version(dir, "ioredis")?,
            package_version(dir, "redis")?,
        ))
    };
    if fresh(&stamp, &want) {
        if let Ok((ioredis, node_redis)) = installed(&dir) {
            return Ok(Node {
                dir,
                ioredis,
                node_redis,
                version,
            });
        }
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    fs::write(dir.join("package.json"), PACKAGE_JSON)
        .map_err(|e| format!("cannot write package.json: {e}"))?;
    run(
        "npm install",
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--no-update-notifier"])
            .current_dir(&dir),
    )?;
    let (ioredis, node_redis) = installed(&dir)?;
    let versions = format!("ioredis {ioredis}, node-redis {node_redis} (node {version})");
    write_stamp(&stamp, &want, &versions)?;
    Ok(Node {
        dir,
        ioredis,
        node_redis,
        version,
    })
}

/// The version in `node_modules/<package>/package.json`.
fn package_version(dir: &Path, package: &str) -> Result<String, String> {
    let path = dir.join("node_modules").join(package).join("package.json");
    let json = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    quoted_after(&json, "\"version\":").ok_or_else(|| format!("no version in {}", path.display()))
}

/// The first double-quoted string after `marker`.
fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let start = rest.find('"')? + 1;
    let len = rest[start..].find('"')?;
    Some(rest[start..start + len].to_string())
}

/// A stamp is two lines: what the install was made for (the interpreter), then what it holds.
fn write_stamp(path: &Path, made_for: &str, holds: &str) -> Result<(), String> {
    fs::write(path, format!("{made_for}\n{holds}\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// True when the stamp was made for `made_for` and is younger than [`REUSE_FOR`].
fn fresh(path: &Path, made_for: &str) -> bool {
    let Ok(text) = fs::read_to_string(path) else {
        return false;
    };
    let age = fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| SystemTime::now().duration_since(at).ok());
    text.lines().next() == Some(made_for) && age.is_some_and(|age| age < REUSE_FOR)
}

/// Runs an install step within [`INSTALL_TIMEOUT`]; its output is the error if it fails.
fn run(what: &str, command: &mut Command) -> Result<(), String> {
    let log_path = root().join("install.log");
    let log = File::create(&log_path).map_err(|e| format!("cannot create install.log: {e}"))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("did not finish within {INSTALL_TIMEOUT:?}"));
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{what} failed ({status}):\n{output}")),
        Err(e) => Err(format!("{what} {e}:\n{output}")),
    }
}

/// The standard output of a quick command (a version query), or why it failed.
fn output(command: &mut Command) -> Result<String, String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
