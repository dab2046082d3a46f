//! Who a client connection is, and what it chose for itself: its id and addresses, the user it
//! logged in as, its protocol, its database, the name and library it gave, and what it did
//! last. `HELLO`, `AUTH`, `SELECT`, `CLIENT SETNAME/SETINFO`, `READONLY/READWRITE` change it;
//! `CLIENT LIST/INFO/KILL` read it.
//!
//! Kept apart from the reply queue ([`super::client::ClientState`]), which is the request
//! path's; the request path only stamps the last command and its time here, two stores.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use bytes::Bytes;

use crate::auth::{UserId, Users};
use crate::command::route::Command;
use crate::net::{Endpoint, Stream};
use crate::resp::Protocol;

use super::backend::Lane;

/// A client connection's identity and settings.
pub struct Identity {
    /// Unique among the proxy's clients, on every core (`CLIENT ID`).
    pub id: u64,
    /// The client's address (a Unix socket client: the socket's path).
    pub peer: Option<Endpoint>,
    /// The proxy's address the client connected to.
    pub local: Option<Endpoint>,
    /// The socket's file descriptor, as CLIENT LIST shows it.
    pub fd: i32,
    /// When the connection was accepted.
    pub created: Instant,
    /// When the last request arrived.
    last_active: Cell<Instant>,
    /// The last command the table knew.
    last_command: Cell<Option<Command>>,
    /// `CLIENT SETNAME` / `HELLO ... SETNAME`.
    name: RefCell<Option<Bytes>>,
    /// `CLIENT SETINFO LIB-NAME` / `LIB-VER`.
    library: RefCell<(Option<Bytes>, Option<Bytes>)>,
    /// The logged-in user; `None` until AUTH when the default user needs a password.
    user: Cell<Option<UserId>>,
    /// The user may not run everything on every key, so requests are checked.
    restricted: Cell<bool>,
    /// The protocol chosen with HELLO.
    protocol: Cell<Protocol>,
    /// Which connections its requests take: its database when it selected another than the
    /// pool's (`SELECT`, one-server pools), its own connection when the pool writes in the
    /// background. The default for everyone else.
    lane: Cell<Lane>,
    /// READONLY (until READWRITE or RESET): the client's reads go to replicas, as a
    /// cluster's replica would serve them (`shard::replica`).
    read_replicas: Cell<bool>,
}

impl Identity {
    /// A new connection, logged in as the default user if that needs no password.
    pub fn new(id: u64, stream: &Stream, users: &Users) -> Self {
        let now = Instant::now();
        let (peer, local) = stream.endpoints();
        let identity = Identity {
            id,
            peer,
            local,
            fd: stream.fd(),
            created: now,
            last_active: Cell::new(now),
            last_command: Cell::new(None),
            name: RefCell::new(None),
            library: RefCell::new((None, None)),
            user: Cell::new(None),
            restricted: Cell::new(false),
            protocol: Cell::new(Protocol::Resp2),
            lane: Cell::new(Lane::default()),
            read_replicas: Cell::new(false),
        };
        if let Some(user) = users.initial() {
            identity.log_in(users, user);
        }
        identity
    }

    /// Whether the client sent READONLY (and no READWRITE or RESET since).
    #[inline]
    pub fn reads_replicas(&self) -> bool {
        self.read_replicas.get()
    }

    /// READONLY (`true`) or READWRITE.
    pub fn set_read_replicas(&self, on: bool) {
        self.read_replicas.set(on);
    }

    /// Records a request: when, and which command.
    pub fn stamp(&self, at: Instant, command: Option<Command>) {
        self.last_active.set(at);
        self.last_command.set(command);
    }

    /// When the last request arrived.
    pub fn last_active(&self) -> Instant {
        self.last_active.get()
    }

    /// The last command, as Redis names it in CLIENT LIST (`NULL` before any).
    pub fn last_command_name(&self) -> String {
        self.last_command
            .get()
            .map_or_else(|| "NULL".to_string(), |c| c.full_name())
    }

    /// The protocol the client speaks.
    pub fn protocol(&self) -> Protocol {
        self.protocol.get()
    }

    /// Switches the protocol (HELLO); replies to later requests are in the new one.
    pub fn set_protocol(&self, protocol: Protocol) {
        self.protocol.set(protocol);
    }

    /// Which connections the client's requests take.
    pub fn lane(&self) -> Lane {
        self.lane.get()
    }

    /// The database the client selected, when not the pool's.
    pub fn db(&self) -> Option<u16> {
        self.lane.get().db
    }

    /// Moves the client to database `db` (`None`: the pool's own).
    pub fn select(&self, db: Option<u16>) {
        self.lane.set(Lane {
            db,
            ..self.lane.get()
        });
    }

    /// Keeps the client's requests on connection `pin` (taken modulo the node's number of
    /// connections) of each node, instead of the next in turn.
    pub fn pin(&self, pin: u32) {
        self.lane.set(Lane {
            pin: Some(pin),
            ..self.lane.get()
        });
    }

    /// The logged-in user, if any.
    pub fn user(&self) -> Option<UserId> {
        self.user.get()
    }

    /// Whether requests must be checked against the user's rules.
    pub fn restricted(&self) -> bool {
        self.restricted.get()
    }

    /// Logs the connection in as `user`.
    pub fn log_in(&self, users: &Users, user: UserId) {
        self.user.set(Some(user));
        self.restricted.set(!users.get(user).unrestricted());
    }

    /// Logs the connection out (RESET, when the default user needs a password).
    pub fn log_out(&self) {
        self.user.set(None);
        self.restricted.set(false);
    }

    /// The connection's name.
    pub fn name(&self) -> Option<Bytes> {
        self.name.borrow().clone()
    }

    /// Sets (or with `None` clears) the connection's name.
    pub fn set_name(&self, name: Option<Bytes>) {
        *self.name.borrow_mut() = name;
    }

    /// The library name and version the client gave with CLIENT SETINFO.
    pub fn library(&self) -> (Option<Bytes>, Option<Bytes>) {
        self.library.borrow().clone()
    }

    /// Sets the library name (`version == false`) or version.
    pub fn set_library(&self, version: bool, value: Bytes) {
        let mut library = self.library.borrow_mut();
        if version {
            library.1 = Some(value);
        } else {
            library.0 = Some(value);
        }
    }
}
