//! Per-server counters of one core: what it sent to each backend server and got back, and how
//! its connections to the server ended, as nutcracker counts them per server (`requests`,
//! `request_bytes`, `responses`, `server_eof`, ...).
//!
//! Every connection of the core to a server (the shared ones and the dedicated ones leased
//! for WATCH and blocking commands) counts into the server's one [`ServerCounters`], held by
//! `Rc` and bumped with plain `Cell`s: a few instructions per request, nothing shared between
//! cores. A stats gather copies them into a [`ServerStats`], which can go to another core.

use std::cell::Cell;

/// How a backend connection ended, for the counter it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionEnd {
    /// The server closed it (nutcracker's `server_eof`).
    Eof,
    /// A request waited past `--backend-timeout`, or connecting did (`server_timedout`).
    TimedOut,
    /// Any other failure: refused, reset, a bad reply, a refused handshake (`server_err`).
    Error,
}

/// One core's counters for one server.
#[derive(Debug, Default)]
pub struct ServerCounters {
    /// Requests queued to the server.
    requests: Cell<u64>,
    /// Their bytes, as sent.
    request_bytes: Cell<u64>,
    /// Replies read from the server.
    responses: Cell<u64>,
    /// Their bytes, as read.
    response_bytes: Cell<u64>,
    /// Requests answered with an error because the server was down or its connection failed
    /// with them queued or in flight (nutcracker's pool-wide `forward_error`, per server).
    failed: Cell<u64>,
    /// Connections the server closed.
    eof: Cell<u64>,
    /// Connections that failed otherwise.
    errors: Cell<u64>,
    /// Connections that timed out.
    timed_out: Cell<u64>,
    /// Connections open now (connected, handshake done or under way).
    connections: Cell<u64>,
    /// Connections made since start.
    connects: Cell<u64>,
    /// Connections made again after a failure (a shared connection's reconnect).
    reconnects: Cell<u64>,
    /// Read-only requests a read policy sent to the server (`--read-from` other than
    /// master, or a READONLY client): replica reads, and those that fell back to the master.
    reads: Cell<u64>,
}

impl ServerCounters {
    /// One request of `len` bytes queued to the server.
    #[inline]
    pub fn request(&self, len: usize) {
        add(&self.requests, 1);
        add(&self.request_bytes, len as u64);
    }

    /// One reply of `len` bytes read from the server.
    #[inline]
    pub fn response(&self, len: usize) {
        add(&self.responses, 1);
        add(&self.response_bytes, len as u64);
    }

    /// One read a read policy sent to the server.
    #[inline]
    pub fn read(&self) {
        add(&self.reads, 1);
    }

    /// `n` requests failed: the server was down, or their connection failed.
    pub fn failed(&self, n: usize) {
        add(&self.failed, n as u64);
    }

    /// A connection to the server is open; `again` if it follows a failed one.
    pub fn connected(&self, again: bool) {
        add(&self.connections, 1);
        add(&self.connects, 1);
        if again {
            add(&self.reconnects, 1);
        }
    }

    /// An open connection to the server ended.
    pub fn disconnected(&self) {
        self.connections
            .set(self.connections.get().saturating_sub(1));
    }

    /// A connection (or an attempt at one) ended, for the reason `end`.
    pub fn ended(&self, end: ConnectionEnd) {
        let counter = match end {
            ConnectionEnd::Eof => &self.eof,
            ConnectionEnd::TimedOut => &self.timed_out,
            ConnectionEnd::Error => &self.errors,
        };
        add(counter, 1);
    }

    /// Clears the event counters (CONFIG RESETSTAT), keeping the open connections, a state.
    pub fn reset(&self) {
        for counter in [
            &self.requests,
            &self.request_bytes,
            &self.responses,
            &self.response_bytes,
            &self.failed,
            &self.eof,
            &self.errors,
            &self.timed_out,
            &self.connects,
            &self.reconnects,
            &self.reads,
        ] {
            counter.set(0);
        }
    }

    /// A copy for reporting, with the queues' figures (`queues`) measured by the caller.
    pub fn snapshot(&self, addr: &str, queues: Queues) -> ServerStats {
        ServerStats {
            addr: addr.to_string(),
            requests: self.requests.get(),
            request_bytes: self.request_bytes.get(),
            responses: self.responses.get(),
            response_bytes: self.response_bytes.get(),
            failed: self.failed.get(),
            eof: self.eof.get(),
            errors: self.errors.get(),
            timed_out: self.timed_out.get(),
            connections: self.connections.get(),
            connects: self.connects.get(),
            reconnects: self.reconnects.get(),
            reads: self.reads.get(),
            queues,
        }
    }
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().wrapping_add(n));
}

/// What waits on a server's connections now: nutcracker's `in_queue` (requests not written
/// yet) and `out_queue` (written, waiting for the reply), each with its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Queues {
    /// Requests queued, not written yet.
    pub in_queue: u64,
    /// Their bytes.
    pub in_queue_bytes: u64,
    /// Requests written, waiting for their reply.
    pub out_queue: u64,
    /// Their bytes.
    pub out_queue_bytes: u64,
}

impl Queues {
    /// These and `other` together.
    pub fn add(&mut self, other: Queues) {
        self.in_queue += other.in_queue;
        self.in_queue_bytes += other.in_queue_bytes;
        self.out_queue += other.out_queue;
        self.out_queue_bytes += other.out_queue_bytes;
    }
}

/// One core's figures for one server; sent between cores, so it owns its data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// The server's `host:port`.
    pub addr: String,
    /// Requests queued to it.
    pub requests: u64,
    /// Their bytes.
    pub request_bytes: u64,
    /// Replies read from it.
    pub responses: u64,
    /// Their bytes.
    pub response_bytes: u64,
    /// Requests failed because it was down or its connection failed.
    pub failed: u64,
    /// Connections it closed.
    pub eof: u64,
    /// Connections that failed otherwise.
    pub errors: u64,
    /// Connections that timed out.
    pub timed_out: u64,
    /// Connections open now.
    pub connections: u64,
    /// Connections made since start.
    pub connects: u64,
    /// Connections made again after a failure.
    pub reconnects: u64,
    /// Reads a read policy sent to it.
    pub reads: u64,
    /// What waits on its connections now.
    pub queues: Queues,
}

impl ServerStats {
    /// These and `other` (the same server on another core) together.
    pub fn add(&mut self, other: &ServerStats) {
        self.requests += other.requests;
        self.request_bytes += other.request_bytes;
        self.responses += other.responses;
        self.response_bytes += other.response_bytes;
        self.failed += other.failed;
        self.eof += other.eof;
        self.errors += other.errors;
        self.timed_out += other.timed_out;
        self.connections += other.connections;
        self.connects += other.connects;
        self.reconnects += other.reconnects;
        self.reads += other.reads;
        self.queues.add(other.queues);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resets_events_but_not_open_connections() {
        let counters = ServerCounters::default();
        counters.request(27);
        counters.request(20);
        counters.response(5);
        counters.connected(false);
        counters.connected(true);
        counters.disconnected();
        counters.ended(ConnectionEnd::Eof);
        counters.ended(ConnectionEnd::TimedOut);
        let stats = counters.snapshot("h:1", Queues::default());
        assert_eq!((stats.requests, stats.request_bytes), (2, 47));
        assert_eq!((stats.responses, stats.response_bytes), (1, 5));
        assert_eq!(
            (stats.connections, stats.connects, stats.reconnects),
            (1, 2, 1)
        );
        assert_eq!((stats.eof, stats.timed_out, stats.errors), (1, 1, 0));
        counters.reset();
        let after = counters.snapshot("h:1", Queues::default());
        assert_eq!((after.requests, after.connections), (0, 1));
        let mut sum = stats.clone();
        sum.add(&stats);
        assert_eq!((sum.requests, sum.connections), (4, 2));
    }
}
