//! Static pools place every key on the server the real nutcracker puts it on.
//!
//! Four standalone redis-servers and one nutcracker per test, with a pool per combination:
//! every hash × ketama and modula × equal or unequal weights × servers with and without
//! names; every hash × ketama and modula with a `{}` hash tag, and `$$`; random; and, after a
//! server is killed and ejected (`auto_eject_hosts`), the rings nutcracker rebuilds from the
//! other three. Each pool writes to its own database of the servers (`redis_db`), so after
//! SETting 2,000 keys through each pool (pipelined), asking every server's databases for their
//! keys (KEYS) tells exactly where nutcracker put each one; every key must be on the server
//! [`Ring::server_for`] names, and nowhere else. The keys mix ASCII, bytes of 0x80 and more
//! (nutcracker's signed `char`), the empty key (hashed as 0) and lengths up to 40; for the tag
//! pools, short keys heavy in delimiters, so tags missing, empty, unterminated and repeated all
//! come up. The whole file runs in a few seconds.

mod common;

use std::collections::{HashMap, HashSet};

use common::nutcracker::{free_ports, Nutcracker};
use common::{Conn, RedisServer, Value};
use percore::upstream::{Distribution, Hash, HashTag, Ring, Scheme, ServerSpec};

/// Servers per pool: enough for weights to matter, few enough to start quickly.
const SERVERS: usize = 4;
/// Keys written through each pool: thousands, so every ring region and modula entry is hit.
const KEYS_PER_POOL: usize = 2000;
/// SETs per pipelined batch: large enough to be fast, small enough that nutcracker's replies
/// always fit in the socket buffers while the test is still writing.
const BATCH: usize = 500;
/// Databases each redis-server has: one per pool of the largest test.
const DATABASES: usize = 128;
/// Starts of nutcracker tried with fresh ports: a port found free can be taken by another
/// test before nutcracker binds it, and then nutcracker exits.
const START_ATTEMPTS: usize = 3;

/// Weights and names of the four servers of a pool.
struct Variant {
    /// What the failure messages call it.
    label: &'static str,
    /// The servers' weights.
    weights: [u32; SERVERS],
    /// Whether the servers have names (ketama then places them by name).
    named: bool,
}

const EQUAL: [u32; SERVERS] = [1, 1, 1, 1];
/// Unequal and far apart, so ketama's float point counts and modula's repeats both show.
const UNEQUAL: [u32; SERVERS] = [10, 3, 47, 1];

const VARIANTS: [Variant; 4] = [
    Variant {
        label: "equal weights",
        weights: EQUAL,
        named: false,
    },
    Variant {
        label: "equal weights, named",
        weights: EQUAL,
        named: true,
    },
    Variant {
        label: "unequal weights",
        weights: UNEQUAL,
        named: false,
    },
    Variant {
        label: "unequal weights, named",
        weights: UNEQUAL,
        named: true,
    },
];

/// Names of the servers when a variant has them.
const NAMES: [&str; SERVERS] = ["alpha", "bravo", "charlie", "delta"];

/// One pool of the nutcracker configuration.
struct Pool {
    scheme: Scheme,
    /// The hash_tag as written in the YAML, if any.
    tag: Option<&'static str>,
    variant: &'static Variant,
    /// Its database on every server, and its index.
    db: usize,
    /// Its listen port.
    port: u16,
    /// Whether the pool ejects failing servers (`auto_eject_hosts`), at the first failure and
    /// for longer than the test runs.
    eject: bool,
}

impl Pool {
    fn label(&self) -> String {
        let tag = self
            .tag
            .map(|t| format!(", hash_tag {t}"))
            .unwrap_or_default();
        format!(
            "{}/{} ({}{tag})",
            self.scheme.distribution.name(),
            self.scheme.hash.name(),
            self.variant.label
        )
    }

    fn specs(&self, servers: &[RedisServer]) -> Vec<ServerSpec> {
        servers
            .iter()
            .enumerate()
            .map(|(i, server)| {
                let name = self.variant.named.then(|| NAMES[i].to_string());
                let addr = format!("127.0.0.1:{}", server.port);
                ServerSpec::new(addr, self.variant.weights[i], name)
            })
            .collect()
    }

    fn yaml(&self, servers: &[RedisServer]) -> String {
        let mut out = format!("p{}:\n  listen: 127.0.0.1:{}\n", self.db, self.port);
        out += &format!("  hash: {}\n", self.scheme.hash.name());
        out += &format!("  distribution: {}\n", self.scheme.distribution.name());
        if let Some(tag) = self.tag {
            out += &format!("  hash_tag: \"{tag}\"\n");
        }
        if self.eject {
            out += "  auto_eject_hosts: true\n  server_failure_limit: 1\n";
            out += "  server_retry_timeout: 600000\n  timeout: 5000\n";
        }
        out += &format!("  redis: true\n  redis_db: {}\n  servers:\n", self.db);
        for (i, spec) in self.specs(servers).iter().enumerate() {
            out += &format!("   - {}:{}", spec.addr(), self.variant.weights[i]);
            match spec.name() {
                Some(name) => out += &format!(" {name}\n"),
                None => out += "\n",
            }
        }
        out
    }
}

/// `KEYS_PER_POOL` distinct keys, seeded by `seed`: the empty key (hashed as 0 by nutcracker),
/// a third `key:<number>`, the rest random bytes (0 to 40 of them) or, with an `alphabet`,
/// 0 to 13 bytes drawn from it.
fn keys(seed: u64, alphabet: &[u8]) -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut seen = HashSet::new();
    let mut out = vec![Vec::new()];
    seen.insert(Vec::new());
    while out.len() < KEYS_PER_POOL {
        let len = rng.usize(0..=40);
        let key: Vec<u8> = match out.len() % 3 {
            0 => format!("key:{}", rng.u32(..)).into_bytes(),
            _ if alphabet.is_empty() => (0..len).map(|_| rng.u8(..)).collect(),
            _ => (0..len / 3)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect(),
        };
        if seen.insert(key.clone()) {
            out.push(key);
        }
    }
    out
}

/// Writes every key through the pool's port, pipelined, asserting each SET succeeded.
fn write_through(pool: &Pool, keys: &[Vec<u8>]) {
    let mut conn = Conn::connect(pool.port);
    for batch in keys.chunks(BATCH) {
        let commands: Vec<Vec<Vec<u8>>> = batch
            .iter()
            .map(|key| vec![b"SET".to_vec(), key.clone(), b"v".to_vec()])
            .collect();
        for (reply, key) in conn.pipeline(&commands).into_iter().zip(batch) {
            assert_eq!(reply, Value::ok(), "SET {key:?} through {}", pool.label());
        }
    }
}

/// Which server holds each key of database `db`, by asking all the `live` ones.
fn holders(servers: &[RedisServer], live: &[bool], db: usize) -> HashMap<Vec<u8>, Vec<usize>> {
    let mut found: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    for (index, server) in servers.iter().enumerate() {
        if !live[index] {
            continue;
        }
        let mut conn = server.conn();
        assert_eq!(
            conn.cmd(&[b"SELECT", db.to_string().as_bytes()]),
            Value::ok()
        );
        let Value::Array(Some(keys)) = conn.cmd(&[b"KEYS", b"*"]) else {
            panic!("KEYS on {}: {}", server.port, server.log());
        };
        for key in keys {
            let key = key.as_bulk().expect("a key").to_vec();
            found.entry(key).or_default().push(index);
        }
    }
    found
}

/// For each pool, every key on exactly the server percore's ring over the `live` servers
/// names; the failing pools with an example, or nothing.
fn misplaced(
    servers: &[RedisServer],
    live: &[bool],
    pools: &[Pool],
    keys_of: &dyn Fn(&Pool) -> Vec<Vec<u8>>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for pool in pools {
        let keys = keys_of(pool);
        write_through(pool, &keys);
        let ring = Ring::build_live(&pool.specs(servers), pool.scheme, live).expect("valid pool");
        let found = holders(servers, live, pool.db);
        assert_eq!(found.len(), keys.len(), "keys stored by {}", pool.label());
        let wrong: Vec<String> = keys
            .iter()
            .filter_map(|key| {
                let want = ring.server_for(key).expect("a live server");
                let got = found.get(key).map(Vec::as_slice).unwrap_or_default();
                (got != [want]).then(|| format!("{key:?}: nutcracker {got:?}, percore {want}"))
            })
            .collect();
        if let Some(example) = wrong.first() {
            failures.push(format!(
                "{}: {} of {} keys, e.g. {example}",
                pool.label(),
                wrong.len(),
                keys.len()
            ));
        }
    }
    failures
}

/// Four standalone servers with a database per pool.
fn servers() -> Vec<RedisServer> {
    let databases = DATABASES.to_string();
    (0..SERVERS)
        .map(|_| RedisServer::start_with(&["--databases", &databases]))
        .collect()
}

/// Pools for `schemes`, one database and port each, started in one nutcracker.
fn pools(
    servers: &[RedisServer],
    schemes: Vec<(Scheme, Option<&'static str>, &'static Variant)>,
    eject: bool,
) -> (Vec<Pool>, Nutcracker) {
    assert!(schemes.len() <= DATABASES);
    let taken: HashSet<u16> = servers.iter().map(|s| s.port).collect();
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        let ports = free_ports(schemes.len(), &taken);
        let pools: Vec<Pool> = schemes
            .iter()
            .zip(ports.iter())
            .enumerate()
            .map(|(db, (&(scheme, tag, variant), &port))| Pool {
                scheme,
                tag,
                variant,
                db,
                port,
                eject,
            })
            .collect();
        let yaml: String = pools.iter().map(|pool| pool.yaml(servers)).collect();
        match Nutcracker::start(&yaml, &ports) {
            Ok(nutcracker) => return (pools, nutcracker),
            Err(why) => failures.push(why),
        }
    }
    panic!("nutcracker did not start:\n{}", failures.join("\n"));
}

#[test]
fn ketama_and_modula_place_every_key_where_nutcracker_does() {
    let servers = servers();
    let mut schemes = Vec::new();
    for distribution in [Distribution::Ketama, Distribution::Modula] {
        for hash in Hash::ALL {
            for variant in &VARIANTS {
                let scheme = Scheme {
                    hash,
                    distribution,
                    hash_tag: None,
                };
                schemes.push((scheme, None, variant));
            }
        }
    }
    let (pools, nutcracker) = pools(&servers, schemes, false);
    let failures = misplaced(&servers, &[true; SERVERS], &pools, &|pool| {
        keys(pool.db as u64, &[])
    });
    assert!(
        failures.is_empty(),
        "{} pools place keys unlike nutcracker:\n{}\nnutcracker log:\n{}",
        failures.len(),
        failures.join("\n"),
        nutcracker.log()
    );
}

#[test]
fn hash_tags_place_every_key_where_nutcracker_does() {
    let servers = servers();
    let variant = &VARIANTS[3];
    let mut schemes = Vec::new();
    for distribution in [Distribution::Ketama, Distribution::Modula] {
        for hash in Hash::ALL {
            let scheme = Scheme {
                hash,
                distribution,
                hash_tag: HashTag::new(b"{}"),
            };
            schemes.push((scheme, Some("{}"), variant));
        }
        // Two equal delimiters: the close is searched for after the open.
        let scheme = Scheme {
            hash: Hash::Fnv1a64,
            distribution,
            hash_tag: HashTag::new(b"$$"),
        };
        schemes.push((scheme, Some("$$"), variant));
    }
    let (pools, nutcracker) = pools(&servers, schemes, false);
    // Short keys from an alphabet heavy in delimiters: tags missing, empty ("{}"),
    // unterminated ("{ab"), reversed ("}{"), nested ("{{a}}") and repeated all come up.
    let alphabet = b"{{}}$$ab\xffz";
    let failures = misplaced(&servers, &[true; SERVERS], &pools, &|pool| {
        keys(1000 + pool.db as u64, alphabet)
    });
    assert!(
        failures.is_empty(),
        "{} pools place keys unlike nutcracker:\n{}\nnutcracker log:\n{}",
        failures.len(),
        failures.join("\n"),
        nutcracker.log()
    );
}

#[test]
fn random_puts_every_key_on_one_server_and_spreads() {
    let servers = servers();
    let schemes = VARIANTS
        .iter()
        .map(|variant| {
            let scheme = Scheme {
                distribution: Distribution::Random,
                ..Scheme::default()
            };
            (scheme, None, variant)
        })
        .collect();
    let (pools, _nutcracker) = pools(&servers, schemes, false);
    for pool in &pools {
        let keys = keys(2000 + pool.db as u64, &[]);
        write_through(pool, &keys);
        let found = holders(&servers, &[true; SERVERS], pool.db);
        assert_eq!(found.len(), keys.len(), "keys stored by {}", pool.label());
        let mut per_server = [0usize; SERVERS];
        for key in &keys {
            let on = &found[key];
            assert_eq!(on.len(), 1, "{key:?} on servers {on:?} in {}", pool.label());
            per_server[on[0]] += 1;
        }
        // Uniform over 4 servers, whatever the weights: about 500 each.
        let fair = KEYS_PER_POOL / SERVERS;
        assert!(
            per_server.iter().all(|&n| n > fair / 2),
            "{}: {per_server:?}",
            pool.label()
        );
        // percore's random ring spreads the same way over the same servers.
        let ring = Ring::build(&pool.specs(&servers), pool.scheme).unwrap();
        let mut ours = [0usize; SERVERS];
        for key in &keys {
            ours[ring.server_for(key).unwrap()] += 1;
        }
        assert!(
            ours.iter().all(|&n| n > fair / 2),
            "percore's random: {ours:?}"
        );
    }
}

#[test]
fn ejected_servers_leave_the_ring_as_in_nutcracker() {
    let mut servers = servers();
    let mut schemes = Vec::new();
    for distribution in [Distribution::Ketama, Distribution::Modula] {
        for hash in [Hash::Fnv1a64, Hash::Crc16] {
            for variant in &VARIANTS {
                let scheme = Scheme {
                    hash,
                    distribution,
                    hash_tag: None,
                };
                schemes.push((scheme, None, variant));
            }
        }
    }
    let (pools, nutcracker) = pools(&servers, schemes, true);
    // The heaviest server of the unequal variants goes down: its weight leaves the totals.
    const DOWN: usize = 2;
    servers[DOWN].kill();
    for pool in &pools {
        // A key of the dead server fails once, and with server_failure_limit 1 nutcracker
        // ejects the server and rebuilds the pool's ring from the other three.
        let ring = Ring::build(&pool.specs(&servers), pool.scheme).unwrap();
        let doomed = (0u32..)
            .map(|i| format!("doomed:{i}").into_bytes())
            .find(|key| ring.server_for(key) == Some(DOWN))
            .unwrap();
        let reply = Conn::connect(pool.port).cmd(&[b"SET", &doomed, b"v"]);
        assert!(
            reply.is_error(),
            "SET to the dead server through {}: {reply:?}",
            pool.label()
        );
    }
    let mut live = [true; SERVERS];
    live[DOWN] = false;
    let failures = misplaced(&servers, &live, &pools, &|pool| {
        keys(3000 + pool.db as u64, &[])
    });
    assert!(
        failures.is_empty(),
        "{} pools rebuild unlike nutcracker:\n{}\nnutcracker log:\n{}",
        failures.len(),
        failures.join("\n"),
        nutcracker.log()
    );
}
