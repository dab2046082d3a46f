//! Connecting to a Redis node by its `host:port` name (or a Unix socket's path, which starts
//! with `/` as in nutcracker's `servers:`): resolve, connect on the core's ring, give up after
//! a timeout. One helper for every outgoing connection (backends, the topology
//! refresher), so all of them fail the same way and say why in the same words.

use std::io;
use std::net::ToSocketAddrs;
use std::rc::Rc;
use std::time::Duration;

use socket2::SockAddr;
use thiserror::Error;

use super::ring::Uring;
use super::socket::Stream;

/// Why a connection to a node could not be made.
#[derive(Debug, Error)]
pub enum ConnectError {
    /// The name did not resolve.
    #[error("{0}")]
    Resolve(io::Error),
    /// The name resolved to no address.
    #[error("address resolves to nothing")]
    NoAddress,
    /// The connection was refused, reset, or timed out.
    #[error("{0}")]
    Connect(io::Error),
    /// The TLS handshake failed (`backend_tls:`): a certificate not trusted or not for the
    /// node, a server without TLS on that port, a timeout.
    #[error("TLS: {0}")]
    Tls(io::Error),
}

/// Connects to `node` (`host:port`, or `/path/to/socket`), giving up after `timeout`.
///
/// Names are resolved with the system resolver, which blocks the core while it runs; the
/// nodes of a cluster are named by IP address in `CLUSTER SLOTS`, so that only happens for
/// seeds given by name.
pub async fn connect(
    uring: &Rc<Uring>,
    node: &str,
    timeout: Duration,
) -> Result<Stream, ConnectError> {
    let target = if node.starts_with('/') {
        SockAddr::unix(node).map_err(ConnectError::Resolve)?
    } else {
        node.to_socket_addrs()
            .map_err(ConnectError::Resolve)?
            .next()
            .ok_or(ConnectError::NoAddress)?
            .into()
    };
    Stream::connect(uring, target, timeout)
        .await
        .map_err(ConnectError::Connect)
}
