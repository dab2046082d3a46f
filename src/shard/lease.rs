//! The core's dedicated backend connections: leased to one client at a time for what needs a
//! connection of its own (WATCH until EXEC, a blocking command until it is served), and kept
//! per node, protocol and database between leases so the next one does not pay for a connect
//! and a handshake. A client of a one-server pool that selected another database than the
//! pool's leases connections that selected that one at their handshake (and again after each
//! RESET, which goes back to database 0).
//!
//! A dedicated connection is a [`Backend`] run by [`backend::run_dedicated`]: the same queue,
//! in-flight FIFO, handshake and watchdog as a shared one, but connected once, never remade,
//! and closed on purpose. Right after its handshake it asks the node for its own id
//! (`CLIENT ID`), which `CLIENT UNBLOCK` needs.
//!
//! A connection comes back clean or not at all. Clean is what a node leaves after a blocking
//! command was answered, or after EXEC; anything else (a WATCH given up, a client gone) is
//! cleaned with `RESET` and the connection's handshake again ([`reset`]), and kept only if the
//! node accepted both. A connection whose client left while the node held it blocked is
//! closed, which is what unblocks it on the node at once.
//!
//! Bounded per core by `--max-leased-conns`, leased and idle together: past it a lease takes
//! the room of an idle connection to another node, and with none idle it is refused at once
//! with an error that says why (never a wait). Idle connections close after [`IDLE_CLOSE`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::metrics::Counters;
use crate::resp::line::parse_int;
use crate::resp::Protocol;

use super::backend::{self, Backend, Outbound};
use super::reply_to::{ReplyTo, ReplyWaiter};
use super::Shard;

/// How long an idle dedicated connection is kept for the next lease. Long enough for a worker
/// looping on BLPOP, or retrying a WATCH, to find its connection again; short enough that a
/// burst of blocked clients does not hold node connections for long after it.
const IDLE_CLOSE: Duration = Duration::from_secs(30);
/// How often idle connections are looked at for closing (only while there are any).
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// `CLIENT ID`, asked on every new dedicated connection.
const CLIENT_ID: &[u8] = b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n";
/// `RESET`, which clears everything a connection holds on the node.
const RESET: &[u8] = b"*1\r\n$5\r\nRESET\r\n";
/// The node's reply to RESET.
const RESET_REPLY: &[u8] = b"+RESET\r\n";

/// One dedicated connection.
pub struct Dedicated {
    /// The connection.
    pub conn: Rc<Backend>,
    /// Its protocol: it serves only clients of this one.
    pub protocol: Protocol,
    /// Its database when not the pool's: it serves only clients on this one.
    pub db: Option<u16>,
    /// The node's id for this connection (its `CLIENT ID`), once the node has said it.
    node_id: Cell<Option<i64>>,
    /// When it was last given back, to close it after [`IDLE_CLOSE`].
    idle_since: Cell<Instant>,
    /// Leased to a client now.
    leased: Cell<bool>,
    /// Counted among the core's open dedicated connections (until [`discard`]).
    counted: Cell<bool>,
}

impl Dedicated {
    /// The node's `host:port`.
    pub fn addr(&self) -> &Rc<str> {
        &self.conn.addr
    }

    /// The node's id for this connection, if known.
    pub fn node_id(&self) -> Option<i64> {
        self.node_id.get()
    }

    /// Whether it serves a client speaking `protocol` on database `db`.
    pub fn serves(&self, protocol: Protocol, db: Option<u16>) -> bool {
        self.protocol == protocol && self.db == db
    }

    /// Where it waits between leases.
    fn key(&self) -> PoolKey {
        (self.addr().clone(), self.protocol.index(), self.db)
    }
}

/// Why no connection could be leased.
#[derive(Debug, Clone, Copy)]
pub struct LeaseRefused {
    /// `--max-leased-conns`.
    limit: usize,
}

impl LeaseRefused {
    /// The error reply the client gets.
    pub fn reply(&self) -> Bytes {
        super::dispatch::error_reply(&format!(
            "ERR percore: this core has all of its {} dedicated backend connections in use \
             (--max-leased-conns; WATCH and blocking commands take one each for their \
             duration); try again later, or raise the limit",
            self.limit
        ))
    }
}

/// Idle connections of one node, protocol and database are found by the node's address, the
/// protocol's index and the database (`None`: the pool's).
type PoolKey = (Rc<str>, usize, Option<u16>);

/// The core's idle dedicated connections, and how many there are in all.
#[derive(Default)]
pub struct Leases {
    /// Idle connections by node address and protocol index, most recently used last.
    idle: RefCell<HashMap<PoolKey, Vec<Rc<Dedicated>>>>,
    /// Dedicated connections open: leased, idle, or being reset.
    open: Cell<usize>,
    /// The idle sweeper runs.
    sweeping: Cell<bool>,
}

/// Leases a dedicated connection to `addr` speaking `protocol` on database `db` (`None`: the
/// pool's): an idle one if there is one, else a new one (its requests queue while it
/// connects).
pub fn lease(
    shard: &Rc<Shard>,
    addr: &str,
    protocol: Protocol,
    db: Option<u16>,
) -> Result<Rc<Dedicated>, LeaseRefused> {
    let leases = shard.leases();
    let counters = shard.counters();
    if let Some(dedicated) = take_idle(shard, addr, protocol, db) {
        dedicated.leased.set(true);
        counters.leased_conns.set(counters.leased_conns.get() + 1);
        return Ok(dedicated);
    }
    let limit = shard.config().max_leased_conns;
    if leases.open.get() >= limit && !close_one_idle(shard) {
        Counters::bump(&counters.lease_refusals);
        return Err(LeaseRefused { limit });
    }
    let dedicated = open(shard, addr, protocol, db);
    dedicated.leased.set(true);
    counters.leased_conns.set(counters.leased_conns.get() + 1);
    Ok(dedicated)
}

/// Takes back a connection the node has left clean (nothing blocked, nothing watched).
pub fn give_back(shard: &Rc<Shard>, dedicated: &Rc<Dedicated>) {
    end_lease(shard, dedicated);
    if !dedicated.conn.is_open() || !dedicated.counted.get() {
        return discard(shard, dedicated);
    }
    dedicated.idle_since.set(Instant::now());
    let key = dedicated.key();
    shard
        .leases()
        .idle
        .borrow_mut()
        .entry(key)
        .or_default()
        .push(dedicated.clone());
    let counters = shard.counters();
    counters.pooled_conns.set(counters.pooled_conns.get() + 1);
    start_sweeper(shard);
}

/// Cleans a connection whose state on the node is not known to be clean (RESET, then its
/// handshake again) and takes it back, or closes it if the node did not accept both. Returns
/// once it is done.
pub async fn reset(shard: &Rc<Shard>, dedicated: &Rc<Dedicated>) {
    end_lease(shard, dedicated);
    let conn = &dedicated.conn;
    // RESET logs the connection out: it logs in again with the credentials of now (a reload
    // may have changed the password the node takes).
    conn.authenticating(shard.config().backend_auth.as_ref());
    let reset = ask(conn, Bytes::from_static(RESET), dedicated.protocol);
    let greeting: Vec<_> = [conn.handshake(), conn.select()]
        .into_iter()
        .flatten()
        .map(|request| ask(conn, request, dedicated.protocol))
        .collect();
    let mut clean = reset.reply().await == RESET_REPLY;
    for reply in greeting {
        clean &= !reply.reply().await.starts_with(b"-");
    }
    match clean {
        true => give_back(shard, dedicated),
        false => discard(shard, dedicated),
    }
}

/// Closes a connection (a client left while the node held it blocked, or it failed).
pub fn discard(shard: &Rc<Shard>, dedicated: &Rc<Dedicated>) {
    end_lease(shard, dedicated);
    dedicated.conn.close();
    remove_idle(shard, dedicated);
    if dedicated.counted.replace(false) {
        let leases = shard.leases();
        leases.open.set(leases.open.get().saturating_sub(1));
    }
}

/// Marks a connection as no longer leased.
fn end_lease(shard: &Shard, dedicated: &Dedicated) {
    if dedicated.leased.replace(false) {
        let counters = shard.counters();
        counters
            .leased_conns
            .set(counters.leased_conns.get().saturating_sub(1));
    }
}

/// Sends `request` on `conn` and returns where its reply will be.
fn ask(conn: &Backend, request: Bytes, protocol: Protocol) -> Rc<ReplyWaiter> {
    let waiter = Rc::new(ReplyWaiter::default());
    let reply_to = ReplyTo::Waiter(waiter.clone());
    conn.send(Outbound::new(
        request,
        reply_to,
        None,
        protocol,
        Instant::now(),
    ));
    waiter
}

/// Opens a new dedicated connection and starts learning its node-side id.
fn open(shard: &Rc<Shard>, addr: &str, protocol: Protocol, db: Option<u16>) -> Rc<Dedicated> {
    let config = shard.config();
    let auth = config.backend_auth.as_ref();
    let counters = shard.pool.counters(addr);
    let selected = db.map_or(config.database(), u32::from);
    let conn = Backend::new(Rc::from(addr), protocol, auth, counters).selecting(selected);
    let conn = Rc::new(conn);
    let dedicated = Rc::new(Dedicated {
        conn: conn.clone(),
        protocol,
        db,
        node_id: Cell::new(None),
        idle_since: Cell::new(Instant::now()),
        leased: Cell::new(false),
        counted: Cell::new(true),
    });
    let leases = shard.leases();
    leases.open.set(leases.open.get() + 1);
    let (task_shard, task_dedicated) = (shard.clone(), dedicated.clone());
    glommio::spawn_local(async move {
        backend::run_dedicated(task_shard.clone(), task_dedicated.conn.clone()).await;
        discard(&task_shard, &task_dedicated);
    })
    .detach();
    // Queued first, so it is answered before anything a client sends on the connection.
    let id = ask(&conn, Bytes::from_static(CLIENT_ID), protocol);
    let learner = dedicated.clone();
    glommio::spawn_local(async move {
        let reply = id.reply().await;
        let id = reply
            .strip_prefix(b":")
            .and_then(|rest| rest.strip_suffix(b"\r\n"))
            .and_then(parse_int);
        learner.node_id.set(id);
    })
    .detach();
    dedicated
}

/// An idle connection to `addr` of `protocol` on `db` that is still open, taken out of the
/// pool.
fn take_idle(
    shard: &Shard,
    addr: &str,
    protocol: Protocol,
    db: Option<u16>,
) -> Option<Rc<Dedicated>> {
    let key = (Rc::from(addr), protocol.index(), db);
    let mut idle = shard.leases().idle.borrow_mut();
    let list = idle.get_mut(&key)?;
    let counters = shard.counters();
    let mut found = None;
    while let Some(dedicated) = list.pop() {
        counters
            .pooled_conns
            .set(counters.pooled_conns.get().saturating_sub(1));
        // A closed one is on its way out: its run task discards it.
        if dedicated.conn.is_open() {
            found = Some(dedicated);
            break;
        }
    }
    if list.is_empty() {
        idle.remove(&key);
    }
    found
}

/// Closes one idle connection, the longest idle of some node, to make room; false if none.
fn close_one_idle(shard: &Rc<Shard>) -> bool {
    let oldest = {
        let idle = shard.leases().idle.borrow();
        idle.values()
            .filter_map(|list| list.first())
            .min_by_key(|dedicated| dedicated.idle_since.get())
            .cloned()
    };
    match oldest {
        Some(dedicated) => {
            discard(shard, &dedicated);
            true
        }
        None => false,
    }
}

/// Closes every idle connection (the pool is removed).
pub fn close_idle(shard: &Rc<Shard>) {
    while close_one_idle(shard) {}
}

/// Takes `dedicated` out of the idle pool if it is there.
fn remove_idle(shard: &Shard, dedicated: &Rc<Dedicated>) {
    let key = dedicated.key();
    let mut idle = shard.leases().idle.borrow_mut();
    let Some(list) = idle.get_mut(&key) else {
        return;
    };
    if let Some(at) = list.iter().position(|d| Rc::ptr_eq(d, dedicated)) {
        list.remove(at);
        let counters = shard.counters();
        counters
            .pooled_conns
            .set(counters.pooled_conns.get().saturating_sub(1));
    }
    if list.is_empty() {
        idle.remove(&key);
    }
}

/// Starts closing idle connections after [`IDLE_CLOSE`], unless that already runs. It ends
/// when nothing is idle, so a core that never leases runs no timer for it.
fn start_sweeper(shard: &Rc<Shard>) {
    if shard.leases().sweeping.replace(true) {
        return;
    }
    let shard = shard.clone();
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(SWEEP_EVERY).await;
            let expired: Vec<Rc<Dedicated>> = {
                let idle = shard.leases().idle.borrow();
                idle.values()
                    .flatten()
                    .filter(|d| d.idle_since.get().elapsed() >= IDLE_CLOSE)
                    .cloned()
                    .collect()
            };
            for dedicated in &expired {
                discard(&shard, dedicated);
            }
            if shard.leases().idle.borrow().is_empty() {
                shard.leases().sweeping.set(false);
                return;
            }
        }
    })
    .detach();
}
