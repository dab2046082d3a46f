//! Real Redis Sentinels for tests of data-store pools: each `redis-server sentinel.conf
//! --sentinel` from its own temp dir on a free loopback port, with failure detection made fast
//! (a master is down after [`DOWN_AFTER_MS`], a failover may take [`FAILOVER_TIMEOUT_MS`]) so
//! a failover finishes in a few seconds. Readiness is polled; `Drop` kills the process.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::{die_with_the_test, free_port, wait_until, Conn, Value};

/// A master answering no PING for this long is down (Sentinel's default is 30 s).
pub const DOWN_AFTER_MS: u64 = 1000;
/// Bound on one failover (Sentinel's default is 3 minutes); another may start after twice it.
pub const FAILOVER_TIMEOUT_MS: u64 = 5000;
/// How long Sentinels may take to find each other and every replica (hello messages go every
/// 2 s, INFO every 10 s until a replica is seen).
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(40);

/// One Sentinel process.
pub struct Sentinel {
    pub port: u16,
    password: Option<String>,
    dir: TempDir,
    child: Child,
}

impl Sentinel {
    /// Starts a Sentinel that monitors `masters` (name, port on 127.0.0.1), each with a quorum
    /// of 2, asking clients (and the other Sentinels) for `password` if one is given.
    pub fn start(masters: &[(&str, u16)], password: Option<&str>) -> Sentinel {
        let port = free_port();
        let dir = TempDir::new().unwrap();
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {}\nlogfile {}\n",
            dir.path().display(),
            dir.path().join("sentinel.log").display()
        );
        for (name, master) in masters {
            conf += &format!(
                "sentinel monitor {name} 127.0.0.1 {master} 2\n\
                 sentinel down-after-milliseconds {name} {DOWN_AFTER_MS}\n\
                 sentinel failover-timeout {name} {FAILOVER_TIMEOUT_MS}\n\
                 sentinel parallel-syncs {name} 1\n"
            );
        }
        if let Some(password) = password {
            conf += &format!("requirepass {password}\n");
        }
        let file = dir.path().join("sentinel.conf");
        std::fs::write(&file, conf).unwrap();
        let child = die_with_the_test(Command::new("redis-server"))
            .arg(&file)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server --sentinel");
        let sentinel = Sentinel {
            port,
            password: password.map(str::to_string),
            dir,
            child,
        };
        wait_until(&format!("sentinel on {port}"), DISCOVERY_TIMEOUT, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
                && sentinel.cmd("PING") == Value::Simple("PONG".into())
        });
        sentinel
    }

    /// Runs a command (after AUTH when the Sentinel has a password).
    pub fn cmd(&self, line: &str) -> Value {
        let mut conn = Conn::connect(self.port);
        if let Some(password) = &self.password {
            assert_eq!(conn.cmd(&[b"AUTH", password.as_bytes()]), Value::ok());
        }
        conn.cmd_str(line)
    }

    /// The Sentinel's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `name` in a flat array of names and values (`SENTINEL MASTER`'s reply).
pub fn field(reply: &Value, name: &str) -> Option<String> {
    let Value::Array(Some(items)) = reply else {
        return None;
    };
    items
        .chunks_exact(2)
        .find(|pair| pair[0] == Value::bulk(name))
        .map(|pair| pair[1].text())
}

/// Waits until every Sentinel knows the others and a healthy replica of every master in
/// `names`, so that a failover can be voted for and has a replica to promote.
pub fn wait_until_watching(sentinels: &[Sentinel], names: &[&str]) {
    let others = (sentinels.len() - 1).to_string();
    wait_until(
        "Sentinels to find each other and the replicas",
        DISCOVERY_TIMEOUT,
        || {
            sentinels.iter().all(|sentinel| {
                names.iter().all(|name| {
                    let master = sentinel.cmd(&format!("SENTINEL MASTER {name}"));
                    let Value::Array(Some(replicas)) =
                        sentinel.cmd(&format!("SENTINEL REPLICAS {name}"))
                    else {
                        return false;
                    };
                    field(&master, "num-other-sentinels").as_deref() == Some(others.as_str())
                        && field(&master, "flags").as_deref() == Some("master")
                        && replicas.len() == 1
                        && field(&replicas[0], "flags").as_deref() == Some("slave")
                        && field(&replicas[0], "master-link-status").as_deref() == Some("ok")
                })
            })
        },
    );
}
