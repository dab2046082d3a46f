//! Static pools' key placement: twemproxy's hashes, hash tags and distributions, pure.
//!
//! A static pool is a fixed list of standalone redis-servers, sharded as nutcracker
//! (twemproxy) shards them, so that percore can replace nutcracker over the same data: a key
//! must land on exactly the server nutcracker would pick, for every `hash`, `distribution`,
//! `hash_tag`, weight and server name a nutcracker YAML can hold, and after an ejection
//! (`auto_eject_hosts`) the ring must be rebuilt from the live servers exactly as nutcracker
//! rebuilds it. [`Ring`] is that decision; `tests/pool_placement.rs` checks it against a
//! running nutcracker.
//!
//! Nothing here does I/O or knows about cores: the request path will keep a [`Ring`] per
//! pool per core and rebuild it when a server leaves or comes back.

mod distribution;
mod hash;
mod hash_tag;
mod ring;

pub use distribution::Distribution;
pub use hash::Hash;
pub use hash_tag::HashTag;
pub use ring::{PlacementError, Ring};

/// nutcracker's port that is left out of a server's ketama name (`CONF_DEFAULT_KETAMA_PORT`):
/// libmemcached names a memcached on its default port by host alone, and nutcracker keeps
/// that so both place keys alike.
const KETAMA_DEFAULT_PORT: u32 = 11211;

/// One server of a static pool, as a `servers:` line gives it (`host:port:weight [name]` or
/// `/path/to/socket:weight [name]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    /// The address exactly as written before `:weight` (`127.0.0.1:6379`, `cache-1:6379`,
    /// `/var/run/redis.sock`): ketama names a server without a name by this text, not by
    /// what it resolves to.
    addr: String,
    /// The weight, at least 1 in a valid configuration.
    weight: u32,
    /// The optional name after the address; ketama places the server by it when present, so
    /// a server can move to another address and keep its keys.
    name: Option<String>,
}

impl ServerSpec {
    /// A server at `addr` (as written in the configuration) with `weight` and an optional name.
    pub fn new(addr: impl Into<String>, weight: u32, name: Option<String>) -> ServerSpec {
        ServerSpec {
            addr: addr.into(),
            weight,
            name,
        }
    }

    /// The address as written in the configuration.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The name, if the configuration gave one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The name nutcracker gives the server: its ketama name (below), which its stats show
    /// the server under too.
    pub fn nutcracker_name(&self) -> String {
        self.ketama_name()
    }

    /// The name ketama derives the server's points from, as nutcracker's `conf_add_server`
    /// sets it: the given name; else for a Unix socket the path and the `:` that follows it in
    /// the line (nutcracker counts one byte past the address, and a socket has no port); else
    /// `host` alone when the port is 11211; else `host:port` as written.
    fn ketama_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        if self.addr.starts_with('/') {
            return format!("{}:", self.addr);
        }
        match self.addr.rsplit_once(':') {
            Some((host, port)) if port_number(port) == Some(KETAMA_DEFAULT_PORT) => host.into(),
            _ => self.addr.clone(),
        }
    }
}

/// A port's digits as nutcracker's `nc_atoi` reads them (digits only, leading zeros allowed).
fn port_number(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// How a pool places keys: its YAML `hash`, `distribution` and `hash_tag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scheme {
    /// The key hash (unused by `random`).
    pub hash: Hash,
    /// How hashes map to servers.
    pub distribution: Distribution,
    /// The tag delimiters, if the pool sets `hash_tag`.
    pub hash_tag: Option<HashTag>,
}

impl Default for Scheme {
    /// nutcracker's defaults: fnv1a_64, ketama, no hash tag.
    fn default() -> Scheme {
        Scheme {
            hash: Hash::DEFAULT,
            distribution: Distribution::DEFAULT,
            hash_tag: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(addr: &str, name: Option<&str>) -> ServerSpec {
        ServerSpec::new(addr, 1, name.map(String::from))
    }

    #[test]
    fn ketama_names_follow_conf_add_server() {
        let cases = [
            (spec("127.0.0.1:6379", None), "127.0.0.1:6379"),
            (spec("127.0.0.1:6379", Some("alpha")), "alpha"),
            (spec("cache-1:11211", None), "cache-1"),
            (spec("cache-1:011211", None), "cache-1"),
            (spec("cache-1:11211", Some("beta")), "beta"),
            (spec("/var/run/redis.sock", None), "/var/run/redis.sock:"),
            (spec("/var/run/redis.sock", Some("gamma")), "gamma"),
        ];
        for (server, want) in cases {
            assert_eq!(server.ketama_name(), want, "{server:?}");
        }
    }

    #[test]
    fn defaults_are_nutcrackers() {
        let scheme = Scheme::default();
        assert_eq!(scheme.hash.name(), "fnv1a_64");
        assert_eq!(scheme.distribution.name(), "ketama");
        assert_eq!(scheme.hash_tag, None);
    }
}
