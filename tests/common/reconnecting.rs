//! Load from clients that reconnect when the proxy closes them, as production clients do:
//! threads that loop sending GET/SET (one at a time, and pipelined), open a new connection
//! every few batches (so connections keep arriving at the listeners), and, when a connection
//! ends (EOF or reset), reconnect and send again the requests that got no reply. Every reply
//! is checked against what it must be; [`Tally`] says what happened.
//!
//! A request "fails" when it gets a wrong reply (an error, another value) or none at all
//! within [`super::READ_TIMEOUT`]; a connection closed with requests unanswered is not a
//! failure of those requests (they are sent again), only counted.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{encode, Conn, Value};

/// Batches sent on one connection before the client opens a new one ([`Load::start`]).
const BATCHES_PER_CONNECTION: u64 = 5;
/// Requests in a pipelined batch (every other batch is a single request).
const PIPELINE: usize = 8;
/// Keys each thread cycles through (each thread has its own, so every GET's value is known).
const KEYS_PER_THREAD: u64 = 64;
/// How long a client keeps trying to connect before the attempt counts as a failure.
const CONNECT_GIVE_UP: Duration = Duration::from_secs(10);
/// Pause between connect attempts.
const CONNECT_RETRY: Duration = Duration::from_millis(1);
/// Failures kept word for word in the tally.
const KEPT_FAILURES: usize = 10;

/// Where a client connects.
#[derive(Debug, Clone)]
pub enum Target {
    /// 127.0.0.1 and this port.
    Tcp(u16),
    /// A Unix socket's path.
    Unix(PathBuf),
}

impl Target {
    fn connect(&self) -> std::io::Result<Conn> {
        match self {
            Target::Tcp(port) => Conn::try_connect(*port),
            Target::Unix(path) => Conn::try_connect_unix(path),
        }
    }
}

/// What the clients saw.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Requests answered with the right reply.
    pub answered: u64,
    /// Requests that failed: a wrong reply, or none in time.
    pub failed: u64,
    /// The first few failures, in words.
    pub failures: Vec<String>,
    /// Connections opened.
    pub connections: u64,
    /// Connect attempts refused (or the socket file missing).
    pub refused: u64,
    /// Connections the proxy closed (EOF) with requests unanswered.
    pub closed: u64,
    /// Connections reset with requests unanswered.
    pub reset: u64,
    /// Of the closed or reset ones: those closed before any reply at all (what a connection
    /// dropped from a listener's queue looks like, and one closed by a drain as it arrived).
    pub ended_before_any_reply: u64,
    /// Requests sent again on a new connection.
    pub resent: u64,
    /// The client's port of every TCP connection opened, to find in the proxy's log the
    /// connections it accepted.
    pub ports: Vec<u16>,
}

impl Tally {
    /// Every count, in one line (not the ports).
    pub fn summary(&self) -> String {
        format!(
            "answered {}, failed {} {:?}, connections {}, refused {}, closed {}, reset {}, \
             ended before any reply {}, resent {}",
            self.answered,
            self.failed,
            self.failures,
            self.connections,
            self.refused,
            self.closed,
            self.reset,
            self.ended_before_any_reply,
            self.resent
        )
    }

    fn add(&mut self, other: &Tally) {
        self.answered += other.answered;
        self.failed += other.failed;
        let room = KEPT_FAILURES.saturating_sub(self.failures.len());
        self.failures
            .extend(other.failures.iter().take(room).cloned());
        self.connections += other.connections;
        self.refused += other.refused;
        self.closed += other.closed;
        self.reset += other.reset;
        self.ended_before_any_reply += other.ended_before_any_reply;
        self.resent += other.resent;
        self.ports.extend(&other.ports);
    }

    fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.failures.len() < KEPT_FAILURES {
            self.failures.push(what);
        }
    }
}

/// Client threads running until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    threads: Vec<JoinHandle<Tally>>,
}

impl Load {
    /// Starts `per_target` client threads on each target.
    pub fn start(targets: &[Target], per_target: usize) -> Load {
        Load::start_churning(targets, per_target, BATCHES_PER_CONNECTION)
    }

    /// [`Load::start`], each client opening a new connection every `batches` batches.
    pub fn start_churning(targets: &[Target], per_target: usize, batches: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for (t, target) in targets.iter().enumerate() {
            for n in 0..per_target {
                let client = Client {
                    target: target.clone(),
                    prefix: format!("reconnecting:{t}:{n}"),
                    batches_per_connection: batches.max(1),
                    stop: stop.clone(),
                    answered: answered.clone(),
                    tally: Tally::default(),
                };
                threads.push(std::thread::spawn(move || client.run()));
            }
        }
        Load {
            stop,
            answered,
            threads,
        }
    }

    /// Requests answered so far, by every client.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Waits until `more` requests beyond those answered now are answered too.
    pub fn wait_for_more(&self, more: u64, timeout: Duration) {
        let target = self.answered() + more;
        super::wait_until(&format!("{more} more answered requests"), timeout, || {
            self.answered() >= target
        });
    }

    /// Stops every client (each finishes its batch) and adds up what they saw.
    pub fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for thread in self.threads {
            total.add(&thread.join().expect("a client thread panicked"));
        }
        total
    }
}

/// One client thread.
struct Client {
    target: Target,
    prefix: String,
    /// Batches sent on one connection before a new one.
    batches_per_connection: u64,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    tally: Tally,
}

impl Client {
    fn run(mut self) -> Tally {
        let mut conn: Option<(Conn, u64)> = None;
        let mut batch = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            if conn.as_ref().is_some_and(|(_, replies)| *replies > 0)
                && batch.is_multiple_of(self.batches_per_connection)
            {
                conn = None;
            }
            let mut pending = self.batch(batch);
            while !pending.is_empty() {
                if conn.is_none() {
                    conn = self.connect().map(|c| (c, 0));
                }
                let Some((c, replies)) = conn.as_mut() else {
                    for (command, _) in pending.drain(..) {
                        self.tally
                            .fail(format!("cannot connect to send {command:?}"));
                    }
                    break;
                };
                if self.exchange(c, replies, &mut pending).is_err() {
                    conn = None;
                }
            }
            batch += 1;
        }
        self.tally
    }

    /// The requests of batch `n` and their replies: a SET and a GET of one key, or
    /// [`PIPELINE`] of them pipelined.
    fn batch(&self, n: u64) -> VecDeque<(Vec<Vec<u8>>, Value)> {
        let pairs = if n.is_multiple_of(2) { 1 } else { PIPELINE / 2 };
        let mut requests = VecDeque::new();
        for i in 0..pairs as u64 {
            let key = format!(
                "{}:{}",
                self.prefix,
                (n * PIPELINE as u64 + i) % KEYS_PER_THREAD
            );
            let value = format!("v{n}.{i}");
            let set = [
                b"SET".to_vec(),
                key.clone().into_bytes(),
                value.clone().into(),
            ];
            requests.push_back((set.to_vec(), Value::ok()));
            requests.push_back((vec![b"GET".to_vec(), key.into_bytes()], Value::bulk(&value)));
        }
        requests
    }

    /// A new connection, retried until [`CONNECT_GIVE_UP`]; `None` if it never came.
    fn connect(&mut self) -> Option<Conn> {
        let deadline = Instant::now() + CONNECT_GIVE_UP;
        loop {
            match self.target.connect() {
                Ok(conn) => {
                    self.tally.connections += 1;
                    self.tally.ports.extend(conn.local_port());
                    return Some(conn);
                }
                Err(_) if Instant::now() < deadline => {
                    self.tally.refused += 1;
                    std::thread::sleep(CONNECT_RETRY);
                }
                Err(_) => return None,
            }
        }
    }

    /// Sends every pending request on `conn` and takes replies off the front; `Err` when
    /// the connection ended (what is left is to be sent again on a new one).
    fn exchange(
        &mut self,
        conn: &mut Conn,
        replies: &mut u64,
        pending: &mut VecDeque<(Vec<Vec<u8>>, Value)>,
    ) -> Result<(), ()> {
        let mut wire = Vec::new();
        for (command, _) in pending.iter() {
            let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
            wire.extend(encode(&args));
        }
        let mut ended = conn.try_send_raw(&wire).err();
        while ended.is_none() && !pending.is_empty() {
            match conn.try_read_value() {
                Ok(reply) => {
                    let (command, expected) = pending.pop_front().expect("pending");
                    *replies += 1;
                    if reply == expected {
                        self.tally.answered += 1;
                        self.answered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.tally
                            .fail(format!("{command:?}: {reply:?}, not {expected:?}"));
                    }
                }
                Err(err) => ended = Some(err),
            }
        }
        let Some(err) = ended else { return Ok(()) };
        match err.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                for (command, _) in pending.drain(..) {
                    self.tally.fail(format!("no reply to {command:?} in time"));
                }
            }
            ErrorKind::UnexpectedEof => self.tally.closed += 1,
            _ => self.tally.reset += 1,
        }
        if *replies == 0 {
            self.tally.ended_before_any_reply += 1;
        }
        self.tally.resent += pending.len() as u64;
        Err(())
    }
}
