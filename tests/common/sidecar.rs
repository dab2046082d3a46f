//! Helpers for background-write tests (`async_writes: true`): the figures of PROXY INFO's
//! `# Background writes` section, waiting until none waits, and a configuration file that a
//! test rewrites and reloads.

use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use super::{free_port, wait_until, Conn, Proxy, RedisCluster, Value};

/// `background_<name>` of PROXY INFO's `# Background writes` section of the pool at `port`.
pub fn background(port: u16, name: &str) -> u64 {
    let info = Conn::connect(port).cmd_str("PROXY INFO").text();
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("background_{name}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no background_{name} in PROXY INFO:\n{info}"))
}

/// Waits until no background write of the pool at `port` waits.
pub fn wait_flushed(port: u16, timeout: Duration) {
    wait_until("background writes to be answered", timeout, || {
        background(port, "pending") == 0
    });
}

/// A configuration file in a temp dir of its own, rewritten and reloaded by the test.
pub struct File {
    _dir: TempDir,
    path: PathBuf,
}

impl File {
    /// The file, holding `text`.
    pub fn new(text: &str) -> File {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("percore.yml");
        std::fs::write(&path, text).unwrap();
        File { _dir: dir, path }
    }

    /// Its path, as percore's `-c` takes it.
    pub fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Writes `text` to the file and has the process of the pool at `port` reload it
    /// (`PROXY CONFIG RELOAD`), which must say `+OK`.
    pub fn reload(&self, text: &str, port: u16) {
        std::fs::write(&self.path, text).unwrap();
        let reply = Conn::connect(port).cmd_str("PROXY CONFIG RELOAD");
        assert_eq!(reply, Value::ok(), "PROXY CONFIG RELOAD");
    }
}

/// percore on a free port with `threads` threads, serving `cluster` as one pool with
/// background writes and no periodic refresh (a slot that moves is learnt from the nodes'
/// redirects only), and its file: (the proxy, the file, its port).
pub fn async_cluster_proxy(cluster: &RedisCluster, threads: usize) -> (Proxy, File, u16) {
    let port = free_port();
    let file = File::new(&format!(
        "c:\n  listen: 127.0.0.1:{port}\n  cluster: {}\n  refresh_interval: 600s\n  \
         async_writes: true\n",
        cluster.seeds()
    ));
    let threads = threads.to_string();
    let proxy = Proxy::start_with_args(port, &["-c", file.arg(), "--threads", &threads]);
    (proxy, file, port)
}
