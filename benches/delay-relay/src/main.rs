//! delay-relay: a TCP relay that holds everything sent towards a server for a fixed delay, for
//! bench-scripts/compare.sh's `NET_DELAY_US` mode on kernels without netem (this machine's
//! Firecracker kernel: `tc qdisc add ... netem` says "Specified qdisc kind is unknown").
//!
//! ```text
//! delay-relay LISTEN UPSTREAM DELAY_US
//! delay-relay 10.231.78.2:7000 10.231.78.2:8000 1000
//! ```
//!
//! It accepts on LISTEN, opens a connection to UPSTREAM for each client, and forwards:
//! - client to server: each chunk read is written on DELAY_US after it was read (never before
//!   an earlier chunk of the same connection), and a connection's first chunks not before
//!   2 × DELAY_US after the accept, as netem's delay of the SYN would make the connect itself
//!   slower by one delay. This is `tc netem delay` on the path towards the servers: one delay
//!   per round trip, replies undelayed.
//! - server to client: at once.
//!
//! One thread, level-triggered epoll, non-blocking sockets; the timeout of `epoll_pwait2` is in
//! nanoseconds and the thread's timer slack is set to 1 ns, so a 100 µs delay is kept to within
//! the scheduler's wake-up latency instead of epoll_wait's milliseconds or the default 50 µs of
//! slack. Its CPU is what compare.sh reports as the relay's, apart from the servers'.
//!
//! Back-pressure: a client whose delayed bytes exceed `MAX_QUEUED` is not read until they drain,
//! and a server is not read while its client has not taken the previous reply, so the relay
//! holds at most about `MAX_QUEUED` + `READ_CHUNK` per connection.
//!
//! The listener has SO_REUSEPORT: several copies of the relay may listen on one address and
//! the kernel spreads new connections over them. Each client takes two descriptors here (its
//! own and the server's), so 10,000 clients need 20,000: more than one process may open where
//! the open-file limit is 20,000 and cannot be raised (compare.sh starts copies then).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, ErrorKind, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

mod pair;
use pair::{flush, Pair};

/// Bytes taken from a socket per read: a Redis pipeline of 16 requests, or a large reply's
/// worth of a socket buffer, in one system call.
const READ_CHUNK: usize = 64 * 1024;

/// Delayed bytes one client may have waiting before the relay stops reading it: well above
/// what the benchmarks send in one delay (50 clients × 16 × 64 KiB values through one proxy
/// connection is 52 MB a round trip at most, spread over the delay), so it only bounds memory
/// for a client that sends far faster than the server takes.
const MAX_QUEUED: usize = 64 << 20;

/// listen(2) backlog: compare.sh connects up to 10,000 clients at once to the direct targets;
/// the kernel caps it at net.core.somaxconn.
const LISTEN_BACKLOG: i32 = 65535;

/// Readiness events taken per wait.
const EVENTS_PER_WAIT: usize = 1024;

/// The listener's epoll token; connections use `index << 1 | side`.
const LISTENER: u64 = u64::MAX;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let parsed = match args.as_slice() {
        [_, listen, upstream, delay] => (
            listen.parse::<SocketAddr>(),
            upstream.parse::<SocketAddr>(),
            delay.parse::<u64>(),
        ),
        _ => {
            eprintln!("usage: delay-relay LISTEN UPSTREAM DELAY_US");
            return ExitCode::from(2);
        }
    };
    let (Ok(listen), Ok(upstream), Ok(delay_us)) = parsed else {
        eprintln!("delay-relay: LISTEN and UPSTREAM are host:port, DELAY_US a whole number");
        return ExitCode::from(2);
    };
    match Relay::new(listen, upstream, Duration::from_micros(delay_us)).and_then(|mut r| r.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("delay-relay {listen} -> {upstream}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What handling an event did to its pair.
enum Outcome {
    Keep,
    Close,
}

struct Relay {
    listener: TcpListener,
    upstream: SocketAddr,
    delay: Duration,
    epoll: RawFd,
    pairs: Vec<Option<Pair>>,
    /// Each slot's generation, so a release scheduled for a closed pair is not applied to the
    /// pair that reuses its slot.
    generations: Vec<u64>,
    free: Vec<usize>,
    /// (time, slot, generation) of each pair's oldest delayed chunk: exactly one entry per pair
    /// with delayed chunks (a pair's release times never decrease, so its oldest is its next).
    releases: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    buffer: Vec<u8>,
}

impl Relay {
    fn new(listen: SocketAddr, upstream: SocketAddr, delay: Duration) -> io::Result<Relay> {
        let socket = Socket::new(
            Domain::for_address(listen),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&listen.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        socket.set_nonblocking(true)?;
        let listener: TcpListener = socket.into();
        // SAFETY: prctl with an integer argument; 1 ns of timer slack makes the sub-millisecond
        // waits below end on time (the default slack is 50 µs, half of a 100 µs delay).
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
        // SAFETY: no pointers; the fd is owned by the Relay for the life of the process.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        let relay = Relay {
            listener,
            upstream,
            delay,
            epoll,
            pairs: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            releases: BinaryHeap::new(),
            buffer: vec![0; READ_CHUNK],
        };
        relay.ctl(
            libc::EPOLL_CTL_ADD,
            relay.listener.as_raw_fd(),
            libc::EPOLLIN as u32,
            LISTENER,
        )?;
        Ok(relay)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: `event` lives for the call; `fd` is an open socket owned by the relay.
        if unsafe { libc::epoll_ctl(self.epoll, op, fd, &mut event) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT];
        loop {
            let timeout = self
                .releases
                .peek()
                .map(|Reverse((at, _, _))| at.saturating_duration_since(Instant::now()));
            let ready = wait(self.epoll, &mut events, timeout)?;
            for event in &events[..ready] {
                let (token, flags) = (event.u64, event.events);
                if token == LISTENER {
                    self.accept_all();
                    continue;
                }
                let slot = (token >> 1) as usize;
                if self.pairs.get(slot).is_none_or(|p| p.is_none()) {
                    continue; // closed by an earlier event of this batch
                }
                let outcome = if flags & (libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                    // Both directions of a socket are gone (or it failed): nothing more can pass.
                    Outcome::Close
                } else if token & 1 == 0 {
                    self.client_ready(slot, flags)
                } else {
                    self.upstream_ready(slot, flags)
                };
                self.settle(slot, outcome);
            }
            self.release_due();
        }
    }

    fn accept_all(&mut self) {
        loop {
            let client = match self.listener.accept() {
                Ok((client, _)) => client,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of fds, most likely: keep serving the connections there are.
                    eprintln!("delay-relay: accept: {e}");
                    return;
                }
            };
            if let Err(e) = self.open(client) {
                eprintln!("delay-relay: connecting to {}: {e}", self.upstream);
            }
        }
    }

    fn open(&mut self, client: TcpStream) -> io::Result<()> {
        let accepted = Instant::now();
        // A blocking connect: the server is on this host, so it takes microseconds.
        let upstream = TcpStream::connect(self.upstream)?;
        for socket in [&client, &upstream] {
            socket.set_nonblocking(true)?;
            socket.set_nodelay(true)?;
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.pairs.push(None);
            self.generations.push(0);
            self.pairs.len() - 1
        });
        self.generations[slot] += 1;
        let pair = Pair {
            client,
            upstream,
            not_before: accepted + 2 * self.delay,
            delayed: VecDeque::new(),
            delayed_bytes: 0,
            to_server: Vec::new(),
            to_server_at: 0,
            to_client: Vec::new(),
            to_client_at: 0,
            client_eof: false,
            upstream_eof: false,
            shut_upstream: false,
            client_events: 0,
            upstream_events: 0,
        };
        let (client_events, upstream_events) =
            (pair.wanted_client_events(), pair.wanted_upstream_events());
        let (client_fd, upstream_fd) = (pair.client.as_raw_fd(), pair.upstream.as_raw_fd());
        self.pairs[slot] = Some(pair);
        let token = (slot as u64) << 1;
        let registered = self
            .ctl(libc::EPOLL_CTL_ADD, client_fd, client_events, token)
            .and_then(|()| self.ctl(libc::EPOLL_CTL_ADD, upstream_fd, upstream_events, token | 1));
        if let Err(e) = registered {
            self.close(slot);
            return Err(e);
        }
        let pair = self.pairs[slot].as_mut().expect("just stored");
        pair.client_events = client_events;
        pair.upstream_events = upstream_events;
        Ok(())
    }

    /// The client is readable (a request to delay) or writable (a reply may go on).
    fn client_ready(&mut self, slot: usize, flags: u32) -> Outcome {
        let delay = self.delay;
        let generation = self.generations[slot];
        let Some(pair) = self.pairs[slot].as_mut() else {
            return Outcome::Close;
        };
        if flags & libc::EPOLLOUT as u32 != 0
            && flush(
                &mut pair.client,
                &mut pair.to_client,
                &mut pair.to_client_at,
            )
            .is_err()
        {
            return Outcome::Close;
        }
        if flags & libc::EPOLLIN as u32 != 0 && !pair.client_eof {
            match pair.client.read(&mut self.buffer) {
                Ok(0) => pair.client_eof = true,
                Ok(n) => {
                    let now = Instant::now();
                    let last = pair.delayed.back().map(|(at, _)| *at);
                    let at = (now + delay).max(pair.not_before).max(last.unwrap_or(now));
                    if pair.delayed.is_empty() {
                        self.releases.push(Reverse((at, slot, generation)));
                    }
                    pair.delayed.push_back((at, self.buffer[..n].to_vec()));
                    pair.delayed_bytes += n;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => return Outcome::Close,
            }
        }
        Outcome::Keep
    }

    /// The server is readable (a reply, passed on at once) or writable (delayed bytes may go on).
    fn upstream_ready(&mut self, slot: usize, flags: u32) -> Outcome {
        let Some(pair) = self.pairs[slot].as_mut() else {
            return Outcome::Close;
        };
        if flags & libc::EPOLLOUT as u32 != 0
            && flush(
                &mut pair.upstream,
                &mut pair.to_server,
                &mut pair.to_server_at,
            )
            .is_err()
        {
            return Outcome::Close;
        }
        if flags & libc::EPOLLIN as u32 != 0 && !pair.upstream_eof && !pair.to_client_pending() {
            match pair.upstream.read(&mut self.buffer) {
                Ok(0) => pair.upstream_eof = true,
                Ok(n) => {
                    pair.to_client.clear();
                    pair.to_client.extend_from_slice(&self.buffer[..n]);
                    pair.to_client_at = 0;
                    if flush(
                        &mut pair.client,
                        &mut pair.to_client,
                        &mut pair.to_client_at,
                    )
                    .is_err()
                    {
                        return Outcome::Close;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => return Outcome::Close,
            }
        }
        Outcome::Keep
    }

    /// Sends on every delayed chunk whose time has come.
    fn release_due(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((at, slot, generation))) = self.releases.peek() {
            if at > now {
                break;
            }
            self.releases.pop();
            if self.generations[slot] != generation || self.pairs[slot].is_none() {
                continue; // that pair is closed
            }
            let outcome = {
                let pair = self.pairs[slot].as_mut().expect("checked");
                while pair.delayed.front().is_some_and(|(at, _)| *at <= now) {
                    let (_, chunk) = pair.delayed.pop_front().expect("checked");
                    pair.delayed_bytes -= chunk.len();
                    if pair.to_server_pending() {
                        pair.to_server.extend_from_slice(&chunk);
                    } else {
                        pair.to_server = chunk;
                        pair.to_server_at = 0;
                    }
                }
                if let Some((next, _)) = pair.delayed.front() {
                    self.releases.push(Reverse((*next, slot, generation)));
                }
                match flush(
                    &mut pair.upstream,
                    &mut pair.to_server,
                    &mut pair.to_server_at,
                ) {
                    Ok(()) => Outcome::Keep,
                    Err(_) => Outcome::Close,
                }
            };
            self.settle(slot, outcome);
        }
    }

    /// After an event: passes end-of-input on, closes a finished pair, updates epoll interest.
    fn settle(&mut self, slot: usize, outcome: Outcome) {
        let Some(pair) = self.pairs[slot].as_mut() else {
            return;
        };
        let mut close = matches!(outcome, Outcome::Close);
        if pair.client_eof
            && pair.delayed.is_empty()
            && !pair.to_server_pending()
            && !pair.shut_upstream
        {
            // The client has sent everything and it has all reached the server: let the
            // server see the end, and keep relaying its last replies.
            pair.shut_upstream = true;
            close |= pair.upstream.shutdown(Shutdown::Write).is_err();
        }
        if pair.upstream_eof && !pair.to_client_pending() {
            close = true; // the server is done and the client has every reply
        }
        if close {
            self.close(slot);
            return;
        }
        let (client, upstream) = (pair.wanted_client_events(), pair.wanted_upstream_events());
        let token = (slot as u64) << 1;
        let mut failed = false;
        if client != pair.client_events {
            pair.client_events = client;
            failed |= self
                .ctl(
                    libc::EPOLL_CTL_MOD,
                    self.pairs[slot].as_ref().expect("open").client.as_raw_fd(),
                    client,
                    token,
                )
                .is_err();
        }
        let pair = self.pairs[slot].as_mut().expect("open");
        if upstream != pair.upstream_events {
            pair.upstream_events = upstream;
            failed |= self
                .ctl(
                    libc::EPOLL_CTL_MOD,
                    self.pairs[slot]
                        .as_ref()
                        .expect("open")
                        .upstream
                        .as_raw_fd(),
                    upstream,
                    token | 1,
                )
                .is_err();
        }
        if failed {
            self.close(slot);
        }
    }

    /// Drops a pair: closing its sockets takes them out of the epoll set.
    fn close(&mut self, slot: usize) {
        if self.pairs[slot].take().is_some() {
            self.free.push(slot);
        }
    }
}

/// epoll_pwait2: waits for readiness or until `timeout` (nanosecond resolution; `None`: no end).
fn wait(
    epoll: RawFd,
    events: &mut [libc::epoll_event],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let spec = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const libc::timespec);
    // SAFETY: `events` is a valid, writable array of its length; `spec_ptr` is null or points
    // at `spec`, alive for the call; no signal mask is passed.
    let n = unsafe {
        libc::epoll_pwait2(
            epoll,
            events.as_mut_ptr(),
            events.len() as libc::c_int,
            spec_ptr,
            std::ptr::null(),
        )
    };
    if n < 0 {
        let error = io::Error::last_os_error();
        return if error.kind() == ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(error)
        };
    }
    Ok(n as usize)
}
