//! The network layer of a core: its own io_uring, the operations on it, TCP and Unix sockets
//! (a pool's Unix socket is shared by the cores, see `unix`), TLS over them, gathered writes,
//! reading frames, and connecting to a node by name or path.
//!
//! Nothing here knows about shards, clients or Redis: it moves bytes for whoever holds a
//! [`Stream`]. Each core makes one [`Uring`] and starts its driver; every socket of the core
//! then goes through that ring.

mod batch;
mod connect;
mod driver;
mod files;
mod frames;
mod op;
mod ring;
mod socket;
mod tls;
#[cfg(test)]
mod tls_tests;
mod unix;

pub use batch::{WriteBatch, MAX_FRAMES};
pub use connect::{connect, ConnectError};
pub use driver::spawn_driver;
pub use frames::{FrameReader, CLOSED_BY_PEER};
#[cfg(test)]
pub use ring::Mode;
pub use ring::{RingStats, Uring};
pub use socket::{Accepted, Endpoint, Listener, Stream, READ_CHUNK};
pub use tls::{accept as tls_accept, connect_node};
pub use unix::{claim_adopted_files, hand_over_files, SharedListener, UnixSocketFile};
