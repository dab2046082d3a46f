//! [`Ring`]: which configured server of a static pool owns a key, as nutcracker 0.5.0's
//! `server_pool_idx` decides it, over the servers that are live.
//!
//! nutcracker does not keep the servers in the order the YAML lists them: `conf_validate_server`
//! sorts each pool's servers by their ketama name (shorter names first, then bytewise, its
//! `string_compare`) and rejects two with the same name. That order is what modula's entries
//! and ketama's equal points follow, so the ring sorts the same way; the indices it returns
//! are still those of the configured list.
//!
//! The steps of a lookup, in nutcracker's order: no live server, no owner (its `server_pool_update`
//! fails the request); a pool of one configured server sends every key to it without
//! hashing; the hash tag, if the pool has one, picks the part of the key that is hashed; an
//! empty hashed part gets the hash 0 without calling the hash (`server_pool_hash`); the
//! distribution's table maps the hash to a server. After an ejection (`auto_eject_hosts`) or
//! a return, the caller builds a new ring with [`Ring::build_live`], as nutcracker reruns its
//! `*_update` from the servers that are live then.
//!
//! A lookup allocates nothing: a hash of the key and a binary search over a few hundred u32s.

use std::cmp::Ordering;
use std::fmt;

use super::distribution::Table;
use super::{Scheme, ServerSpec};
use crate::cluster::slot::{Placement, Slot, SLOT_COUNT};

/// Why a ring cannot be built from a server list (the configuration check rejects these
/// first; the ring refuses them too rather than place keys unlike nutcracker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementError {
    /// A server has weight 0 (nutcracker: "has a zero weight").
    ZeroWeight {
        /// Its index in the configured list.
        server: usize,
    },
    /// The live servers' weights add up past u32, where nutcracker's sum would wrap.
    TotalWeightTooLarge,
    /// More servers than the proxy's routing tokens can name (16383).
    TooManyServers,
    /// Two servers with the same ketama name (nutcracker: "has servers with same name").
    DuplicateName {
        /// The first of them in the configured list.
        first: usize,
        /// The other.
        second: usize,
    },
    /// The live mask does not have one entry per configured server.
    LiveMask {
        /// Configured servers.
        servers: usize,
        /// Entries in the mask.
        mask: usize,
    },
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementError::ZeroWeight { server } => {
                write!(f, "server {server} has a zero weight")
            }
            PlacementError::TotalWeightTooLarge => {
                write!(f, "the servers' weights add up to more than {}", u32::MAX)
            }
            PlacementError::TooManyServers => {
                write!(f, "more than {MAX_SERVERS} servers in one pool")
            }
            PlacementError::DuplicateName { first, second } => {
                write!(f, "servers {first} and {second} have the same name")
            }
            PlacementError::LiveMask { servers, mask } => {
                write!(f, "live mask of {mask} entries for {servers} servers")
            }
        }
    }
}

impl std::error::Error for PlacementError {}

/// A static pool's key placement over its live servers: which configured server owns a key.
#[derive(Clone, Debug)]
pub struct Ring {
    /// Hash, distribution and hash tag of the pool.
    scheme: Scheme,
    /// Servers configured, live or not: a pool of one skips hashing, as nutcracker does.
    configured: usize,
    /// Servers in the ring (not ejected); 0 means no key has a server.
    live: usize,
    /// The distribution's table, over live servers only.
    table: Table,
}

/// Most servers in one pool: the proxy routes a static pool's keys by the server's position,
/// as a token of the same kind as a hash slot, and keeps the last token for "no live server".
pub const MAX_SERVERS: usize = SLOT_COUNT - 1;

/// The token of "no server is live": no server sits at it, so a request for it fails with
/// the pool's own error instead of going anywhere.
pub const NO_SERVER: Slot = Slot::LAST;

impl Placement for Ring {
    /// The position of the key's server, as the token the request path routes by.
    #[inline]
    fn place(&self, key: &[u8]) -> Slot {
        // A position is below MAX_SERVERS, so it is a slot; none is NO_SERVER.
        self.server_for(key)
            .and_then(|i| Slot::new(i as u16))
            .unwrap_or(NO_SERVER)
    }
}

impl Ring {
    /// The ring over all of `servers` (none ejected).
    pub fn build(servers: &[ServerSpec], scheme: Scheme) -> Result<Ring, PlacementError> {
        Ring::build_live(servers, scheme, &vec![true; servers.len()])
    }

    /// The ring over the servers whose `live` entry is true, as nutcracker rebuilds it after an
    /// ejection or a return: the others get no points and their weight does not count.
    pub fn build_live(
        servers: &[ServerSpec],
        scheme: Scheme,
        live: &[bool],
    ) -> Result<Ring, PlacementError> {
        if live.len() != servers.len() {
            return Err(PlacementError::LiveMask {
                servers: servers.len(),
                mask: live.len(),
            });
        }
        if servers.len() > MAX_SERVERS {
            return Err(PlacementError::TooManyServers);
        }
        let count = u32::try_from(servers.len()).map_err(|_| PlacementError::TooManyServers)?;
        if let Some(server) = servers.iter().position(|s| s.weight() == 0) {
            return Err(PlacementError::ZeroWeight { server });
        }
        let order = nutcracker_order(servers, count)?;
        let live: Vec<u32> = order.into_iter().filter(|&i| live[i as usize]).collect();
        let total = live
            .iter()
            .try_fold(0u32, |sum, &i| {
                sum.checked_add(servers[i as usize].weight())
            })
            .ok_or(PlacementError::TotalWeightTooLarge)?;
        Ok(Ring {
            scheme,
            configured: servers.len(),
            live: live.len(),
            table: Table::build(scheme.distribution, servers, &live, total),
        })
    }

    /// The index (into the configured servers) of the server that owns `key`; `None` when no
    /// server is live. For `random`, a live server drawn at random.
    pub fn server_for(&self, key: &[u8]) -> Option<usize> {
        if self.live == 0 {
            return None;
        }
        if self.configured == 1 {
            return Some(0);
        }
        let hashed = match self.scheme.hash_tag {
            Some(tag) => tag.hashed(key),
            None => key,
        };
        let hash = if hashed.is_empty() {
            0
        } else {
            self.scheme.hash.of(hashed)
        };
        self.table.server(hash).map(|index| index as usize)
    }

    /// How the ring places keys.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// How many servers are in the ring.
    pub fn live_servers(&self) -> usize {
        self.live
    }
}

/// The configured indices in nutcracker's server order: sorted by ketama name as its
/// `string_compare` sorts (length, then bytes as `strncmp` compares them); names must differ.
fn nutcracker_order(servers: &[ServerSpec], count: u32) -> Result<Vec<u32>, PlacementError> {
    let names: Vec<String> = servers.iter().map(ServerSpec::ketama_name).collect();
    let mut order: Vec<u32> = (0..count).collect();
    order.sort_by(|&a, &b| string_compare(&names[a as usize], &names[b as usize]));
    if let Some(pair) = order
        .windows(2)
        .find(|pair| string_compare(&names[pair[0] as usize], &names[pair[1] as usize]).is_eq())
    {
        let (a, b) = (pair[0] as usize, pair[1] as usize);
        return Err(PlacementError::DuplicateName {
            first: a.min(b),
            second: a.max(b),
        });
    }
    Ok(order)
}

/// nutcracker's `string_compare`: the shorter string first, else `strncmp` over the length
/// (unsigned bytes, stopping at a NUL).
fn string_compare(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| {
        for (x, y) in a.bytes().zip(b.bytes()) {
            if x != y {
                return x.cmp(&y);
            }
            if x == 0 {
                break;
            }
        }
        Ordering::Equal
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{Distribution, Hash, HashTag};
    use proptest::prelude::*;

    fn servers(weights: &[u32], named: bool) -> Vec<ServerSpec> {
        let names = [
            "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
        ];
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                let name = named.then(|| names[i].to_string());
                ServerSpec::new(format!("127.0.0.1:{}", 6379 + i), w, name)
            })
            .collect()
    }

    fn scheme(hash: Hash, distribution: Distribution) -> Scheme {
        Scheme {
            hash,
            distribution,
            hash_tag: None,
        }
    }

    fn tagged(tag: &[u8]) -> Scheme {
        Scheme {
            hash_tag: HashTag::new(tag),
            ..Scheme::default()
        }
    }

    #[test]
    fn a_key_goes_where_its_hash_goes_in_the_table() {
        let all = servers(&[1, 2, 3], true);
        for distribution in [Distribution::Ketama, Distribution::Modula] {
            let ring = Ring::build(&all, scheme(Hash::Murmur, distribution)).unwrap();
            for i in 0..2000 {
                let key = format!("key:{i}");
                let hash = Hash::Murmur.of(key.as_bytes());
                let want = ring.table.server(hash).map(|s| s as usize);
                assert_eq!(ring.server_for(key.as_bytes()), want);
            }
        }
    }

    #[test]
    fn an_empty_key_hashes_to_zero() {
        let all = servers(&[2, 1, 1], false);
        for distribution in [Distribution::Ketama, Distribution::Modula] {
            let ring = Ring::build(&all, scheme(Hash::Fnv1a32, distribution)).unwrap();
            let want = ring.table.server(0).map(|s| s as usize);
            assert_eq!(ring.server_for(b""), want);
        }
        // With a tag, the hashed part is never empty: an empty tag hashes the whole key.
        let plain = Ring::build(&all, Scheme::default()).unwrap();
        let braces = Ring::build(&all, tagged(b"{}")).unwrap();
        assert_eq!(braces.server_for(b"{}"), plain.server_for(b"{}"));
    }

    #[test]
    fn ejecting_an_equal_weight_server_moves_only_its_keys() {
        let all = servers(&[1, 1, 1, 1], true);
        let full = Ring::build(&all, Scheme::default()).unwrap();
        let mask = [true, true, false, true];
        let without_2 = Ring::build_live(&all, Scheme::default(), &mask).unwrap();
        assert_eq!(without_2.live_servers(), 3);
        for i in 0..5000 {
            let key = format!("user:{i}");
            let before = full.server_for(key.as_bytes()).unwrap();
            let after = without_2.server_for(key.as_bytes()).unwrap();
            assert_ne!(after, 2);
            if before != 2 {
                assert_eq!(before, after, "{key} moved though its server stayed");
            }
        }
    }

    #[test]
    fn one_server_takes_every_key_while_live() {
        let one = servers(&[5], false);
        for distribution in Distribution::ALL {
            let ring = Ring::build(&one, scheme(Hash::Md5, distribution)).unwrap();
            assert_eq!(ring.server_for(b"anything"), Some(0));
            assert_eq!(ring.server_for(b""), Some(0));
            let down = Ring::build_live(&one, scheme(Hash::Md5, distribution), &[false]).unwrap();
            assert_eq!(down.server_for(b"anything"), None);
        }
    }

    #[test]
    fn no_live_server_no_owner() {
        let all = servers(&[1, 1, 1], false);
        for distribution in Distribution::ALL {
            let scheme = scheme(Hash::Md5, distribution);
            let ring = Ring::build_live(&all, scheme, &[false; 3]).unwrap();
            assert_eq!(ring.server_for(b"k"), None);
            assert_eq!(ring.live_servers(), 0);
        }
        let empty = Ring::build(&[], Scheme::default()).unwrap();
        assert_eq!(empty.server_for(b"k"), None);
    }

    #[test]
    fn random_spreads_over_live_servers_only() {
        let all = servers(&[1, 9, 1, 1], false);
        let mask = [true, true, false, true];
        let ring = Ring::build_live(&all, scheme(Hash::Md5, Distribution::Random), &mask).unwrap();
        let mut seen = [0u32; 4];
        for _ in 0..3000 {
            seen[ring.server_for(b"same key").unwrap()] += 1;
        }
        assert_eq!(seen[2], 0);
        assert!(
            seen.iter().enumerate().all(|(i, &n)| i == 2 || n > 700),
            "{seen:?}"
        );
    }

    #[test]
    fn servers_are_in_nutcrackers_name_order() {
        // Lengths first: alpha, bravo, delta (5 bytes), then charlie (7).
        let named = servers(&[1, 1, 1, 1], false)
            .into_iter()
            .zip(["alpha", "bravo", "charlie", "delta"])
            .map(|(s, name)| ServerSpec::new(s.addr(), 1, Some(name.into())))
            .collect::<Vec<_>>();
        assert_eq!(nutcracker_order(&named, 4).unwrap(), [0, 1, 3, 2]);
        // Modula's entries follow that order: hash % 4 = 2 is delta's (configured 3).
        let ring = Ring::build(&named, scheme(Hash::Crc32a, Distribution::Modula)).unwrap();
        let owners: Vec<Option<u32>> = (0..4).map(|hash| ring.table.server(hash)).collect();
        assert_eq!(owners, [0, 1, 3, 2].map(Some));
        // Addresses compare as text, shorter first: port 10000 after 6379 and 6380.
        let by_addr = [
            ServerSpec::new("127.0.0.1:10000", 1, None),
            ServerSpec::new("127.0.0.1:6380", 1, None),
            ServerSpec::new("127.0.0.1:6379", 1, None),
        ];
        assert_eq!(nutcracker_order(&by_addr, 3).unwrap(), [2, 1, 0]);
        assert_eq!(string_compare("a\0x", "a\0y"), Ordering::Equal);
        assert_eq!(string_compare("b", "ab"), Ordering::Less);
    }

    #[test]
    fn bad_server_lists_are_refused() {
        let twins = [
            ServerSpec::new("127.0.0.1:1", 1, Some("same".into())),
            ServerSpec::new("127.0.0.1:2", 1, None),
            ServerSpec::new("127.0.0.1:3", 1, Some("same".into())),
        ];
        assert_eq!(
            Ring::build(&twins, Scheme::default()).unwrap_err(),
            PlacementError::DuplicateName {
                first: 0,
                second: 2
            }
        );
        let zero = servers(&[1, 0], false);
        assert_eq!(
            Ring::build(&zero, Scheme::default()).unwrap_err(),
            PlacementError::ZeroWeight { server: 1 }
        );
        let huge = servers(&[u32::MAX, 1], false);
        assert_eq!(
            Ring::build(&huge, Scheme::default()).unwrap_err(),
            PlacementError::TotalWeightTooLarge
        );
        assert!(Ring::build_live(&huge, Scheme::default(), &[true, false]).is_ok());
        assert_eq!(
            Ring::build_live(&servers(&[1], false), Scheme::default(), &[]).unwrap_err(),
            PlacementError::LiveMask {
                servers: 1,
                mask: 0
            }
        );
    }

    #[test]
    fn names_and_hash_tags_steer_placement() {
        let named = servers(&[1, 1, 1], true);
        let moved: Vec<ServerSpec> = named
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let name = s.name().map(String::from);
                ServerSpec::new(format!("10.0.0.9:{}", 7000 + i), 1, name)
            })
            .collect();
        let ring = Ring::build(&named, Scheme::default()).unwrap();
        let moved = Ring::build(&moved, Scheme::default()).unwrap();
        let braces = Ring::build(&named, tagged(b"{}")).unwrap();
        for i in 0..2000 {
            let key = format!("{{user{i}}}:profile");
            // A named server keeps its keys at another address.
            assert_eq!(
                ring.server_for(key.as_bytes()),
                moved.server_for(key.as_bytes())
            );
            let tag = format!("user{i}");
            assert_eq!(
                braces.server_for(key.as_bytes()),
                ring.server_for(tag.as_bytes())
            );
        }
    }

    proptest! {
        #[test]
        fn every_key_lands_on_a_live_server(
            weights in proptest::collection::vec(1u32..50, 1..8),
            mask in proptest::collection::vec(any::<bool>(), 8),
            hash in 0..Hash::ALL.len(),
            modula in any::<bool>(),
            keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 1..40),
        ) {
            let all = servers(&weights, modula);
            let live = &mask[..all.len()];
            let distribution = if modula { Distribution::Modula } else { Distribution::Ketama };
            let ring = Ring::build_live(&all, scheme(Hash::ALL[hash], distribution), live).unwrap();
            for key in keys {
                match ring.server_for(&key) {
                    Some(server) => prop_assert!(live[server]),
                    None => prop_assert!(live.iter().all(|&l| !l)),
                }
            }
        }
    }
}
