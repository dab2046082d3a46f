//! The network layer of a core: its own io_uring, the operations on it, TCP sockets, TLS over
//! them, gathered writes, reading frames, and connecting to a node by name.
//!
//! Nothing here knows about shards, clients or Redis: it moves bytes for whoever holds a
//! [`Stream`]. Each core makes one [`Uring`] and starts its driver; every socket of the core
//! then goes through that ring.

mod batch;
mod connect;
mod driver;
mod frames;
mod op;
mod ring;
mod socket;
mod tls;

pub use batch::{WriteBatch, MAX_FRAMES};
pub use connect::{connect, ConnectError};
pub use driver::spawn_driver;
pub use frames::FrameReader;
#[cfg(test)]
pub use ring::Mode;
pub use ring::{RingStats, Uring};
pub use socket::{Listener, Stream, READ_CHUNK};
pub use tls::{accept as tls_accept, connect_node};
