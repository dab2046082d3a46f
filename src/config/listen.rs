//! Where a pool's clients connect, as the runtime serves it: a TCP address every core binds
//! (SO_REUSEPORT), or a Unix socket path bound once for the process, with the permissions
//! nutcracker's `listen: /path 0666` gives it. The file's syntax is [`super::values::Listen`];
//! this is what it resolves to.

use std::fmt;
use std::net::{AddrParseError, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

/// A pool's listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address; every core binds its own listener on it with SO_REUSEPORT.
    Tcp(SocketAddr),
    /// A Unix socket, bound once at start and accepted from by every core.
    Unix {
        /// The socket file's path.
        path: PathBuf,
        /// Permission bits set on the file before it accepts connections (`None`: as the
        /// process's umask makes it).
        permissions: Option<u32>,
    },
}

impl ListenAddr {
    /// The TCP address, if this is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(addr) => Some(*addr),
            ListenAddr::Unix { .. } => None,
        }
    }

    /// The TCP port, 0 for a Unix socket (as Redis reports `tcp_port:0` when it has none).
    pub fn port(&self) -> u16 {
        self.tcp().map_or(0, |addr| addr.port())
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        ListenAddr::Tcp(addr)
    }
}

impl FromStr for ListenAddr {
    type Err = AddrParseError;

    /// A TCP `ip:port` (names and socket paths come from the file, through `build`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(ListenAddr::Tcp)
    }
}

impl fmt::Display for ListenAddr {
    /// `ip:port`, or the socket's path (permissions, when set, after a space, as written in
    /// nutcracker's files).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix {
                path,
                permissions: None,
            } => write!(f, "{}", path.display()),
            ListenAddr::Unix {
                path,
                permissions: Some(bits),
            } => write!(f, "{} {bits:04o}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_as_written_and_has_no_port_when_a_socket() {
        let tcp: ListenAddr = "127.0.0.1:6380".parse().unwrap();
        assert_eq!(
            (tcp.to_string(), tcp.port()),
            ("127.0.0.1:6380".into(), 6380)
        );
        let unix = ListenAddr::Unix {
            path: "/tmp/p.sock".into(),
            permissions: Some(0o666),
        };
        assert_eq!(
            (unix.to_string(), unix.port()),
            ("/tmp/p.sock 0666".into(), 0)
        );
        assert_eq!(unix.tcp(), None);
    }
}
