//! The values of nutcracker's keys, each read by nutcracker's own rule (nc_conf.c in
//! twemproxy 0.5.0), so a file nutcracker accepts reads the same here: the listen address
//! with a Unix socket's permissions, a server entry `host:port:weight [name]`, and the names
//! of the hashes and distributions.

use std::fmt;

use super::error::Problem;
pub use crate::upstream::{Distribution, Hash, HashTag};

/// Port nutcracker leaves out of a server's ring name when no name is given, for
/// compatibility with libmemcached's ketama (`CONF_DEFAULT_KETAMA_PORT`).
pub const KETAMA_DEFAULT_PORT: u16 = 11211;

/// Largest Unix socket permission bits (`rwxrwxrwx`).
const MAX_PERMISSIONS: u32 = 0o777;

/// Where a pool accepts clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A TCP address: `host:port`, the host a name, an IPv4 address or `[IPv6]`.
    Tcp {
        /// The host as written.
        host: String,
        /// The port.
        port: u16,
    },
    /// A Unix socket: an absolute path, and the permissions to give it (`None`: as created).
    Unix {
        /// The socket's path.
        path: String,
        /// Permission bits (`/tmp/p.sock 0666`).
        permissions: Option<u32>,
    },
}

impl Listen {
    /// Reads `listen:` as nutcracker does: a value starting with `/` is a socket path with
    /// optional octal permissions after a space; anything else is `host:port`, split at the
    /// last colon.
    pub fn parse(value: &str) -> Result<Listen, Problem> {
        let bad = |reason| Problem::Listen {
            value: value.into(),
            reason,
        };
        if value.starts_with('/') {
            let Some((path, mode)) = value.rsplit_once(' ') else {
                return Ok(Listen::Unix {
                    path: value.into(),
                    permissions: None,
                });
            };
            let permissions = u32::from_str_radix(mode, 8)
                .ok()
                .filter(|bits| *bits <= MAX_PERMISSIONS)
                .ok_or(bad(
                    "has invalid permissions (octal, at most 0777) after the path",
                ))?;
            return Ok(Listen::Unix {
                path: path.into(),
                permissions: Some(permissions),
            });
        }
        let (host, port) = value
            .rsplit_once(':')
            .ok_or(bad("is not host:port or a socket path"))?;
        let port = parse_port(port).ok_or(bad("has an invalid port (1 to 65535)"))?;
        if host.is_empty() {
            return Err(bad("has no host (0.0.0.0 for every address)"));
        }
        Ok(Listen::Tcp {
            host: host.into(),
            port,
        })
    }

    /// Whether two pools listening here would take each other's clients: the same address,
    /// or the same port where one of them is every local address.
    pub fn overlaps(&self, other: &Listen) -> bool {
        match (self, other) {
            (Listen::Unix { path: a, .. }, Listen::Unix { path: b, .. }) => a == b,
            (Listen::Tcp { host: a, port: p }, Listen::Tcp { host: b, port: q }) => {
                let any = |h: &str| matches!(h, "0.0.0.0" | "[::]" | "::");
                p == q && (a == b || any(a) || any(b))
            }
            _ => false,
        }
    }
}

impl fmt::Display for Listen {
    /// As written in the file (permissions included).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp { host, port } => write!(f, "{host}:{port}"),
            Listen::Unix {
                path,
                permissions: None,
            } => f.write_str(path),
            Listen::Unix {
                path,
                permissions: Some(bits),
            } => write!(f, "{path} {bits:04o}"),
        }
    }
}

/// One entry of a pool's `servers:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The host, or a Unix socket's path.
    pub host: String,
    /// The port; `None` for a Unix socket.
    pub port: Option<u16>,
    /// The weight: its share of the ring's points (ketama) relative to the others.
    pub weight: u32,
    /// The name given after the address: the ring name, and in a Sentinel pool the master's
    /// name at Sentinel.
    pub name: Option<String>,
    /// The entry's line in the file.
    pub line: usize,
}

impl Server {
    /// Reads `host:port:weight [name]` or `/path/unix_socket:weight [name]` as nutcracker
    /// does: the name after the last space, then weight and port from the last colons.
    pub fn parse(value: &str, line: usize) -> Result<Server, Problem> {
        let bad = |reason| Problem::Server {
            value: value.into(),
            reason,
        };
        let (address, name) = match value.rsplit_once(' ') {
            Some((address, name)) if !name.is_empty() => (address, Some(name.to_string())),
            _ => (value, None),
        };
        let format = "is not \"host:port:weight [name]\" or \"/path/unix_socket:weight [name]\"";
        let (rest, weight) = address.rsplit_once(':').ok_or(bad(format))?;
        let weight = parse_digits(weight)
            .and_then(|w| u32::try_from(w).ok())
            .filter(|w| i32::try_from(*w).is_ok())
            .ok_or(bad("has an invalid weight"))?;
        if weight == 0 {
            return Err(bad("has a zero weight"));
        }
        let (host, port) = if rest.starts_with('/') {
            if rest.contains(':') {
                return Err(bad(format));
            }
            (rest, None)
        } else {
            let (host, port) = rest.rsplit_once(':').ok_or(bad(format))?;
            let port = parse_port(port).ok_or(bad("has an invalid port (1 to 65535)"))?;
            (host, Some(port))
        };
        if host.is_empty() || host.contains(' ') {
            return Err(bad(format));
        }
        Ok(Server {
            host: host.into(),
            port,
            weight,
            name,
            line,
        })
    }

    /// The name nutcracker places the server on the ring by, and tells duplicates by: the
    /// given name, else `host:port`, else just `host` when the port is 11211 (libmemcached's
    /// ketama leaves its default port out), else the socket path.
    pub fn ring_name(&self) -> String {
        match (&self.name, self.port) {
            (Some(name), _) => name.clone(),
            (None, Some(KETAMA_DEFAULT_PORT)) | (None, None) => self.host.clone(),
            (None, Some(port)) => format!("{}:{port}", self.host),
        }
    }

    /// The address to connect to: `host:port`, or the socket path.
    pub fn address(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// The names of `hash:` and `distribution:` values, comma separated, for error messages.
pub fn known_names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> String {
    all.iter().map(|&v| name(v)).collect::<Vec<_>>().join(", ")
}

/// A `hash_tag:` value: exactly two bytes, as nutcracker requires.
pub fn parse_hash_tag(value: &str) -> Result<HashTag, Problem> {
    HashTag::new(value.as_bytes()).ok_or_else(|| Problem::HashTag(value.into()))
}

/// Digits only, as nutcracker's `nc_atoi` reads numbers (no sign, no spaces).
pub fn parse_digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A TCP port: 1 to 65535.
pub fn parse_port(text: &str) -> Option<u16> {
    parse_digits(text)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
}

/// Checks `host:port` (a cluster seed, a Sentinel, a peer): a host and a valid port.
pub fn check_address(value: &str) -> Result<(), Problem> {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && parse_port(port).is_some() => Ok(()),
        _ => Err(Problem::Address(value.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_and_sockets() {
        let tcp = |host: &str, port| Listen::Tcp {
            host: host.into(),
            port,
        };
        assert_eq!(
            Listen::parse("127.0.0.1:22121"),
            Ok(tcp("127.0.0.1", 22121))
        );
        assert_eq!(Listen::parse("localhost:1"), Ok(tcp("localhost", 1)));
        assert_eq!(Listen::parse("[::1]:6380"), Ok(tcp("[::1]", 6380)));
        assert_eq!(
            Listen::parse("/tmp/gamma 0666"),
            Ok(Listen::Unix {
                path: "/tmp/gamma".into(),
                permissions: Some(0o666)
            })
        );
        assert_eq!(
            Listen::parse("/var/run/nutcracker.sock"),
            Ok(Listen::Unix {
                path: "/var/run/nutcracker.sock".into(),
                permissions: None
            })
        );
        for bad in [
            "127.0.0.1",
            "h:0",
            "h:65536",
            "h:x",
            ":6380",
            "/tmp/s 0999",
            "/tmp/s 1777",
        ] {
            assert!(Listen::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Listen::parse("/tmp/gamma 0666").unwrap().to_string(),
            "/tmp/gamma 0666"
        );
    }

    #[test]
    fn listen_overlaps() {
        let l = |s| Listen::parse(s).unwrap();
        assert!(l("127.0.0.1:1").overlaps(&l("127.0.0.1:1")));
        assert!(l("0.0.0.0:1").overlaps(&l("127.0.0.1:1")));
        assert!(!l("127.0.0.1:1").overlaps(&l("127.0.0.2:1")));
        assert!(!l("127.0.0.1:1").overlaps(&l("127.0.0.1:2")));
        assert!(l("/tmp/a").overlaps(&l("/tmp/a 0600")));
    }

    #[test]
    fn servers_like_nutcracker() {
        let s = Server::parse("127.0.0.1:6380:1 server1", 7).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.weight, s.name.as_deref(), s.line),
            ("127.0.0.1", Some(6380), 1, Some("server1"), 7)
        );
        assert_eq!(s.ring_name(), "server1");
        assert_eq!(s.address(), "127.0.0.1:6380");
        let plain = Server::parse("10.0.0.1:6379:100000", 1).unwrap();
        assert_eq!(
            (plain.weight, plain.ring_name()),
            (100000, "10.0.0.1:6379".into())
        );
        let memcached_port = Server::parse("10.0.0.1:11211:1", 1).unwrap();
        assert_eq!(memcached_port.ring_name(), "10.0.0.1");
        let unix = Server::parse("/tmp/redis.sock:2 s", 1).unwrap();
        assert_eq!(
            (unix.port, unix.weight, unix.address()),
            (None, 2, "/tmp/redis.sock".into())
        );
        let errors = [
            ("127.0.0.1:6379", "is not"),
            ("127.0.0.1:6379:0", "zero weight"),
            ("127.0.0.1:6379:-1", "invalid weight"),
            ("127.0.0.1:6379:x", "invalid weight"),
            ("127.0.0.1:0:1", "invalid port"),
            ("127.0.0.1:70000:1", "invalid port"),
            ("127.0.0.1:6379:1 a b", "invalid weight"),
            ("/tmp/a:b:1", "is not"),
            (":6379:1", "is not"),
        ];
        for (bad, why) in errors {
            let problem = Server::parse(bad, 1).unwrap_err().to_string();
            assert!(problem.contains(why), "{bad}: {problem}");
        }
    }

    #[test]
    fn names_and_tags() {
        assert_eq!(Hash::ALL.len(), 12);
        for hash in Hash::ALL {
            assert_eq!(Hash::from_name(hash.name()), Some(hash));
        }
        assert_eq!(Hash::from_name("fnv1a_64"), Some(Hash::Fnv1a64));
        assert_eq!(Hash::from_name("FNV1A_64"), None);
        assert!(known_names(&Hash::ALL, Hash::name).starts_with("one_at_a_time, md5, crc16"));
        assert_eq!(
            Distribution::from_name("modula"),
            Some(Distribution::Modula)
        );
        assert_eq!(
            known_names(&Distribution::ALL, Distribution::name),
            "ketama, modula, random"
        );
        assert_eq!(parse_hash_tag("{}"), Ok(HashTag::new(b"{}").unwrap()));
        assert!(parse_hash_tag("{").is_err() && parse_hash_tag("{}}").is_err());
    }

    #[test]
    fn numbers_ports_and_addresses() {
        assert_eq!(parse_digits("400"), Some(400));
        for bad in ["", "-1", "+1", " 1", "1.5", "0x10"] {
            assert_eq!(parse_digits(bad), None, "{bad}");
        }
        assert_eq!(parse_port("65535"), Some(65535));
        assert_eq!(parse_port("0"), None);
        assert!(check_address("h:1").is_ok());
        assert!(check_address("h").is_err() && check_address(":1").is_err());
    }
}
