//! Background writes (`async_writes: true`) across a Sentinel failover, over a real master,
//! its replica and three real Sentinels: while the server is held (its replica being
//! promoted) and when percore closes its connections to the demoted master, the background
//! writes waiting there are sent to the new master once Sentinel names it, ahead of their
//! clients' later requests. Asked for (SENTINEL FAILOVER), every acknowledged write is on the
//! new master, none is counted failed, and a client that reads each write back at once sees
//! it throughout; after a kill -9 of the master in the middle of a stream of writes (which
//! it had stopped running, so that what it ran had reached its replica), likewise.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::nutcracker::free_ports;
use common::sentinel::{wait_until_watching, Sentinel};
use common::sidecar::{background, wait_flushed, File};
use common::{try_cmd, wait_until, Conn, Proxy, RedisServer, Value};

/// The Sentinel name of the pool's one server.
const NAME: &str = "m-a";
/// Longest a failover may take, from asking for it to percore writing to the new master.
const FAILOVER_WAIT: Duration = Duration::from_secs(30);
/// Pause between two writes of the stream written across the failover.
const STEP: Duration = Duration::from_millis(1);
/// Writes acknowledged before the failover is asked for.
const BEFORE: usize = 300;
/// How long the stream goes on once the new master has a write.
const AFTER: Duration = Duration::from_millis(500);

/// Writes `load:<n>` = `n` through `port` one after the other, each read back at once when
/// `read`, until `stop`, the keys acknowledged going to `acked`: every reply that was not
/// `+OK` to a write or the value just written to a read.
fn write_stream(
    port: u16,
    read: bool,
    stop: &AtomicBool,
    acked: &Mutex<Vec<String>>,
) -> Vec<String> {
    let mut c = Conn::connect(port);
    let mut wrong = Vec::new();
    for n in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (key, value) = (format!("load:{n}"), n.to_string());
        let reply = c.cmd(&[b"SET", key.as_bytes(), value.as_bytes()]);
        if reply != Value::ok() {
            wrong.push(format!("SET {key}: {reply:?}"));
            continue;
        }
        acked.lock().unwrap().push(key.clone());
        if !read {
            continue;
        }
        let read = c.cmd(&[b"GET", key.as_bytes()]);
        if read != Value::bulk(&value) {
            wrong.push(format!("GET {key}: {read:?}"));
        }
        std::thread::sleep(STEP);
    }
    wrong
}

/// A master, its replica, three Sentinels watching them, and percore (two threads) over them
/// with background writes: a pool of one server, found through Sentinel.
struct Store {
    master: RedisServer,
    replica: RedisServer,
    sentinels: Vec<Sentinel>,
    proxy: Proxy,
    _file: File,
}

impl Store {
    fn start() -> Store {
        let master = RedisServer::start();
        let of = ["--replicaof", "127.0.0.1", &master.port.to_string()];
        let replica = RedisServer::start_with(&of);
        wait_until("the replica to sync", Duration::from_secs(20), || {
            let info = replica.conn().cmd_str("INFO replication").text();
            info.contains("master_link_status:up")
        });
        let sentinels: Vec<Sentinel> = (0..3)
            .map(|_| Sentinel::start(&[(NAME, master.port)], None))
            .collect();
        wait_until_watching(&sentinels, &[NAME]);
        let port = free_ports(1, &HashSet::from([master.port, replica.port]))[0];
        let addrs: Vec<String> = sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        // The file's address is nowhere: only Sentinel says where the master is.
        let file = File::new(&format!(
            "p:\n  listen: 127.0.0.1:{port}\n  redis: true\n  async_writes: true\n  \
             sentinels: {}\n  servers:\n   - 127.0.0.1:1:1 {NAME}\n",
            addrs.join(",")
        ));
        let args = ["-c", file.arg(), "--threads", "2", "--log-level", "debug"];
        let proxy = Proxy::start_with_args(port, &args);
        // A read, not a write: a background write is answered +OK before any master is known.
        wait_until("percore to find the master", FAILOVER_WAIT, || {
            common::try_cmd(port, "GET ready") == Some(Value::Bulk(None))
        });
        Store {
            master,
            replica,
            sentinels,
            proxy,
            _file: file,
        }
    }

    /// Starts a stream of writes (`read`: each read back at once) through percore, and
    /// waits until [`BEFORE`] are acknowledged.
    fn stream(&self, read: bool) -> Stream {
        let port = self.proxy.port;
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || write_stream(port, read, &stop, &acked))
        };
        wait_until("writes to flow", FAILOVER_WAIT, || {
            acked.lock().unwrap().len() >= BEFORE
        });
        Stream {
            stop,
            acked,
            thread,
        }
    }

    /// Waits until the replica is a master that has the stream's last acknowledged write,
    /// and percore held the server meanwhile; how long that took from `asked`.
    fn wait_promoted(&self, stream: &Stream, asked: Instant) {
        wait_until(
            "the promoted replica to have a write",
            FAILOVER_WAIT,
            || {
                // Fresh connections, and a reset one is "not yet": Sentinel kills the
                // replica's client connections (CLIENT KILL TYPE normal) when it promotes it,
                // which can land while this asks.
                let ask = |line: &str| try_cmd(self.replica.port, line);
                let last = stream.acked.lock().unwrap().last().cloned();
                ask("INFO replication").is_some_and(|info| info.text().contains("role:master"))
                    && ask(&format!("EXISTS {}", last.unwrap_or_default())) == Some(Value::Int(1))
                    && self
                        .proxy
                        .log()
                        .contains("holding the server while its replica is promoted")
            },
        );
        eprintln!(
            "writes reached the new master {:?} after the failover began",
            asked.elapsed()
        );
    }

    /// Ends `stream` [`AFTER`] from now, waits until its writes are answered, and checks
    /// that every one acknowledged is on the new master, none failed, and (for a stream that
    /// read) every read saw its write.
    fn check(&self, stream: Stream) {
        std::thread::sleep(AFTER);
        stream.stop.store(true, Ordering::Relaxed);
        let wrong = stream.thread.join().expect("the stream");
        let port = self.proxy.port;
        wait_flushed(port, FAILOVER_WAIT);
        let acked = stream.acked.lock().unwrap().clone();
        let commands: Vec<Vec<Vec<u8>>> = acked
            .iter()
            .map(|k| vec![b"EXISTS".to_vec(), k.clone().into_bytes()])
            .collect();
        let replies = self.replica.conn().pipeline(&commands);
        let missing: Vec<&String> = acked
            .iter()
            .zip(&replies)
            .filter(|(_, r)| **r != Value::Int(1))
            .map(|(k, _)| k)
            .collect();
        let failed = background(port, "failed");
        let log = self.proxy.log();
        let resent: Vec<&str> = log.lines().filter(|l| l.contains("new master")).collect();
        eprintln!(
            "{} writes acknowledged, {failed} failed, {} missing, {} refused; {resent:#?}",
            acked.len(),
            missing.len(),
            wrong.len()
        );
        assert!(wrong.is_empty(), "{wrong:#?}");
        assert_eq!(failed, 0, "{log}");
        assert!(missing.is_empty(), "acknowledged and lost: {missing:?}");
    }
}

/// A stream of writes through percore, running.
struct Stream {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

#[test]
fn background_writes_follow_a_sentinel_failover_to_the_promoted_replica() {
    let store = Store::start();
    let stream = store.stream(true);
    let failover = store.sentinels[0].cmd(&format!("SENTINEL FAILOVER {NAME}"));
    assert_eq!(failover, Value::ok());
    store.wait_promoted(&stream, Instant::now());
    store.check(stream);
}

#[test]
fn background_writes_for_a_killed_master_go_to_the_promoted_replica() {
    let mut store = Store::start();
    let stream = store.stream(false);
    // The master runs no more writes, and its replica has all it ran; then it dies with
    // writes sent and unanswered, and the stream goes on, waiting for a master.
    let pause = store.master.conn().cmd_str("CLIENT PAUSE 60000 WRITE");
    assert_eq!(pause, Value::ok());
    std::thread::sleep(Duration::from_millis(300));
    let keys = store.master.conn().cmd_str("DBSIZE");
    wait_until("the replica to have every key", FAILOVER_WAIT, || {
        store.replica.conn().cmd_str("DBSIZE") == keys
    });
    store.master.kill();
    store.wait_promoted(&stream, Instant::now());
    store.check(stream);
}
