//! Error types, one per side that can fail, so every error says who failed and why.
//!
//! - [`ProtocolError`]: a client sent bytes that are not RESP. Its `Display` is exactly the
//!   text Redis sends for the same input, because clients and tests compare against Redis.
//! - [`ReplyError`]: a backend sent bytes that are not RESP; the connection is dropped.
//! - [`BackendError`]: a backend node could not serve a request (down, timed out, broken);
//!   it names the node so the operator knows where to look.
//! - [`RingError`]: a core's socket ring could not be set up or broke; the core cannot go on.
//! - [`enum@Error`]: why the process could not start or had to stop (config, executors, a core's
//!   ring, mesh or listener). Only `main` turns one into an exit code.
//!
//! None of them allocate on the hot path except `BackendError`, which is built once per
//! connection failure and shared by the requests it fails.

use std::io;

use thiserror::Error;

/// A client request that is not valid RESP. The connection is closed after the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// `*` header with a count that is not an integer or is too large.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// `$` header with a length that is not an integer, negative or too large.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// Something other than `$` where a bulk argument must start.
    #[error("Protocol error: expected '$', got '{}'", *.0 as char)]
    ExpectedBulk(u8),
    /// An inline request longer than Redis allows.
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    /// A `*` header line longer than Redis allows.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `$` header line longer than Redis allows.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// An inline request with an unterminated quote.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
}

/// A backend reply that is not valid RESP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReplyError {
    /// Unknown type byte.
    #[error("unknown reply type byte {0:#04x}")]
    BadType(u8),
    /// A length or integer that does not parse.
    #[error("bad length or integer in reply")]
    BadLength,
    /// A bulk not followed by CRLF.
    #[error("bulk reply not terminated by CRLF")]
    MissingCrlf,
    /// Aggregates nested deeper than any real reply.
    #[error("reply nested too deeply")]
    TooDeep,
}

/// Why a backend node could not serve a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BackendError {
    /// The connection could not be made.
    #[error("backend {node} unreachable: {reason}")]
    Connect {
        /// The node's `host:port`.
        node: String,
        /// The OS error text.
        reason: String,
    },
    /// The node is in reconnect backoff after a failure.
    #[error("backend {node} is down, reconnecting (last error: {reason})")]
    Down {
        /// The node's `host:port`.
        node: String,
        /// The failure that took it down.
        reason: String,
    },
    /// The connection broke with requests in flight.
    #[error("backend {node} connection lost: {reason}")]
    Lost {
        /// The node's `host:port`.
        node: String,
        /// What broke it.
        reason: String,
    },
    /// The node refused the connection's handshake (AUTH, or HELLO 3).
    #[error("backend {node} refused percore's credentials or protocol: {reason}")]
    Rejected {
        /// The node's `host:port`.
        node: String,
        /// The node's error reply.
        reason: String,
    },
    /// A request waited longer than `--backend-timeout`.
    #[error("backend {node} timed out")]
    Timeout {
        /// The node's `host:port`.
        node: String,
    },
    /// A request was redirected more times than allowed.
    #[error("too many redirects for this request (last: {node})")]
    TooManyRedirects {
        /// The node that redirected last.
        node: String,
    },
}

impl BackendError {
    /// What went wrong, without the node's name (for messages that name it already).
    pub fn cause(&self) -> String {
        match self {
            BackendError::Connect { reason, .. } => format!("unreachable: {reason}"),
            BackendError::Down { reason, .. } => reason.clone(),
            BackendError::Lost { reason, .. } => format!("connection lost: {reason}"),
            BackendError::Rejected { reason, .. } => format!("refused the handshake: {reason}"),
            BackendError::Timeout { .. } => "timed out".into(),
            BackendError::TooManyRedirects { .. } => "too many redirects".into(),
        }
    }
}

/// Why a core's socket ring stopped working. The core cannot serve without its ring, so this
/// ends the core (and the process) with the reason.
#[derive(Debug, Error)]
pub enum RingError {
    /// The ring could not be set up (io_uring disabled, memlock limit too small).
    #[error("cannot set up the socket ring: {0}")]
    Setup(io::Error),
    /// `io_uring_enter` failed with something other than a cut-short wait.
    #[error("io_uring_enter failed: {0}")]
    Enter(io::Error),
    /// The driver could not be started or could not park.
    #[error("socket ring driver: {0}")]
    Driver(String),
}

/// Why the proxy could not start, or had to stop.
#[derive(Debug, Error)]
pub enum Error {
    /// Invalid configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// An executor could not start (io_uring setup, pinning) or ended abnormally.
    #[error("executor for core {core}: {reason}")]
    Executor {
        /// The core index.
        core: usize,
        /// What failed.
        reason: String,
    },
    /// A core could not join the cross-core channels.
    #[error("cross-core channels: {0}")]
    Mesh(String),
    /// A core's socket ring could not be set up or failed.
    #[error("core {core}: {source}")]
    Ring {
        /// The core index.
        core: usize,
        /// What failed.
        source: RingError,
    },
    /// A core could not listen.
    #[error("core {core} cannot listen on {addr}: {source}")]
    Listen {
        /// The core index.
        core: usize,
        /// The listen address.
        addr: String,
        /// The OS error.
        source: io::Error,
    },
    /// A pool's Unix socket could not be set up: another process listens on the path, the
    /// path is not a socket, or bind, chmod or listen failed.
    #[error("cannot listen on {path}: {reason}")]
    UnixListen {
        /// The socket's path.
        path: String,
        /// Why, in words.
        reason: String,
    },
    /// An upgrade could not take over from the running percore, or failed before it had.
    #[error("upgrade: {0}")]
    Upgrade(String),
    /// A second stop signal cut the drain short.
    #[error("stopped by a second signal before in-flight requests finished")]
    Interrupted,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_errors_read_like_redis() {
        assert_eq!(
            ProtocolError::ExpectedBulk(b'f').to_string(),
            "Protocol error: expected '$', got 'f'"
        );
        assert_eq!(
            ProtocolError::InvalidMultibulkLength.to_string(),
            "Protocol error: invalid multibulk length"
        );
    }

    #[test]
    fn backend_errors_name_the_node() {
        let err = BackendError::Timeout {
            node: "127.0.0.1:7000".into(),
        };
        assert!(err.to_string().contains("127.0.0.1:7000"));
    }
}
