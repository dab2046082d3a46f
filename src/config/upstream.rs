//! The upstream half of a pool: a Redis Cluster's seeds and fleet settings (`cluster:`), or
//! twemproxy's servers with their hash, distribution, ejection and Sentinel keys
//! (`servers:`), each read and checked by nutcracker's rules where they are its keys.

use std::collections::HashMap;
use std::time::Duration;

use super::error::Problem;
use super::pool::{
    check_entry, DEFAULT_SERVER_FAILURE_LIMIT, DEFAULT_SERVER_RETRY_TIMEOUT_MS, NC_MAX,
};
use super::read::{Fields, Reader};
use super::values::{known_names, parse_hash_tag, Distribution, Hash, HashTag, Listen, Server};
use super::{BackendAuth, Config};

/// What a pool forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// A Redis Cluster, found from its seeds (`cluster:`): what percore has always served.
    Cluster(ClusterUpstream),
    /// Standalone servers placed by hash (`servers:`): a twemproxy pool.
    Servers(ServersUpstream),
}

/// A Redis Cluster upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUpstream {
    /// Nodes to ask for the first topology (`--cluster`).
    pub seeds: Vec<String>,
    /// Period of the background topology refresh (`--refresh-interval`).
    pub refresh_interval: Duration,
    /// The address cluster-mode clients are told to use (`--announce`).
    pub announce: Option<String>,
    /// The other percore instances of a fleet (`--proxy-peers`).
    pub proxy_peers: Vec<String>,
    /// Replica reads (`read_from`, `max_replica_lag`).
    pub replica_reads: super::ReplicaReads,
}

/// A twemproxy upstream: standalone servers and how keys are placed over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServersUpstream {
    /// The servers, in file order (nutcracker's order for modula and ketama).
    pub servers: Vec<Server>,
    /// The key hash.
    pub hash: Hash,
    /// The part of a key that is hashed, if not all of it.
    pub hash_tag: Option<HashTag>,
    /// How hashes map to servers.
    pub distribution: Distribution,
    /// Take a failing server out of the ring (cache mode) instead of failing its keys.
    pub auto_eject_hosts: bool,
    /// How long an ejected server stays out.
    pub server_retry_timeout: Duration,
    /// Consecutive failures that eject a server.
    pub server_failure_limit: u32,
    /// The database selected on every backend connection.
    pub redis_db: u32,
    /// Sentinels to ask for each server's master, by the server's name; empty: none.
    pub sentinels: Vec<String>,
    /// The password the Sentinels ask for (`sentinel_password`, `sentinel_password_env`).
    pub sentinel_auth: Option<BackendAuth>,
}

/// `cluster:` seeds, `refresh_interval`, `announce`, `proxy_peers`, and `redis_db` (only 0).
pub(super) fn read_cluster(reader: &mut Reader, fields: &Fields) -> Option<Upstream> {
    let defaults = Config::default();
    let seeds = fields
        .get("cluster")
        .and_then(|e| address_list(reader, "cluster", e));
    let refresh_interval = match fields.get("refresh_interval") {
        Some(entry) => reader.positive_duration(entry),
        None => Some(defaults.refresh_interval),
    };
    let announce = fields.get("announce").and_then(|entry| {
        let text = reader.text(entry)?;
        connectable(reader, "announce", text, entry.line).then(|| text.to_string())
    });
    let proxy_peers = match fields.get("proxy_peers") {
        Some(entry) => reader.addresses(entry).and_then(|peers| {
            let ok = peers.iter().fold(true, |ok, (peer, line)| {
                connectable(reader, "proxy_peers", peer, *line) && ok
            });
            ok.then(|| peers.iter().map(|(p, _)| p.to_string()).collect())
        }),
        None => Some(Vec::new()),
    };
    if let Some(entry) = fields.get("redis_db") {
        if reader.number(entry, 0, NC_MAX).is_some_and(|db| db != 0) {
            reader.error(entry.line, Some("redis_db"), Problem::ClusterDb);
        }
    }
    Some(Upstream::Cluster(ClusterUpstream {
        seeds: seeds?,
        refresh_interval: refresh_interval?,
        announce,
        proxy_peers: proxy_peers?,
        replica_reads: super::replicas::read_replica_keys(reader, fields),
    }))
}

/// Checks that a `cluster:` pool listening on every local address says where clients reach it.
pub(super) fn check_announce(
    reader: &mut Reader,
    fields: &Fields,
    listen: &Listen,
    upstream: &Upstream,
) {
    let Upstream::Cluster(cluster) = upstream else {
        return;
    };
    if let Listen::Tcp { host, .. } = listen {
        let every = matches!(host.as_str(), "0.0.0.0" | "[::]" | "::");
        if every && cluster.announce.is_none() {
            let line = fields.get("listen").map_or(fields.line, |e| e.line);
            reader.error(
                line,
                Some("listen"),
                Problem::NeedsAnnounce(listen.to_string()),
            );
        }
    }
}

/// `servers:` and the keys of placement, ejection and Sentinel, with nutcracker's defaults.
pub(super) fn read_servers(reader: &mut Reader, fields: &Fields) -> Option<Upstream> {
    super::replicas::refuse_keys(reader, fields);
    let servers = fields.get("servers").and_then(|entry| {
        let items = reader.list(entry)?;
        let mut servers = Vec::with_capacity(items.len());
        let mut names: HashMap<String, usize> = HashMap::new();
        for (text, line) in items {
            match Server::parse(text, line) {
                Ok(server) => {
                    let name = server.ring_name();
                    if names.insert(name.clone(), line).is_some() {
                        reader.error(line, Some("servers"), Problem::DuplicateServer(name));
                    }
                    servers.push(server);
                }
                Err(problem) => reader.error(line, Some("servers"), problem),
            }
        }
        Some(servers)
    });
    let hash = fields.get("hash").and_then(|entry| {
        let text = reader.text(entry)?;
        let hash = Hash::from_name(text);
        if hash.is_none() {
            let problem = Problem::Hash {
                value: text.into(),
                known: known_names(&Hash::ALL, Hash::name),
            };
            reader.error(entry.line, Some("hash"), problem);
        }
        hash
    });
    let distribution = fields.get("distribution").and_then(|entry| {
        let text = reader.text(entry)?;
        let distribution = Distribution::from_name(text);
        if distribution.is_none() {
            let problem = Problem::Distribution {
                value: text.into(),
                known: known_names(&Distribution::ALL, Distribution::name),
            };
            reader.error(entry.line, Some("distribution"), problem);
        }
        distribution
    });
    let hash_tag = fields.get("hash_tag").and_then(|entry| {
        let text = reader.text(entry)?;
        parse_hash_tag(text)
            .map_err(|problem| reader.error(entry.line, Some("hash_tag"), problem))
            .ok()
    });
    let number =
        |reader: &mut Reader, key| fields.get(key).and_then(|e| reader.number(e, 0, NC_MAX));
    let auto_eject_hosts = fields
        .get("auto_eject_hosts")
        .and_then(|e| reader.boolean(e));
    let retry_ms =
        number(reader, "server_retry_timeout").unwrap_or(DEFAULT_SERVER_RETRY_TIMEOUT_MS);
    let failure_limit =
        number(reader, "server_failure_limit").map_or(DEFAULT_SERVER_FAILURE_LIMIT, |n| n as u32);
    let redis_db = number(reader, "redis_db").map_or(0, |n| n as u32);
    let sentinels = match fields.get("sentinels") {
        Some(entry) => address_list(reader, "sentinels", entry),
        None => Some(Vec::new()),
    };
    let (servers, sentinels) = (servers?, sentinels?);
    if !sentinels.is_empty() {
        if let Some(entry) = fields
            .get("auto_eject_hosts")
            .filter(|_| auto_eject_hosts == Some(true))
        {
            reader.error(entry.line, Some("auto_eject_hosts"), Problem::SentinelEject);
        }
        for server in servers.iter().filter(|s| s.name.is_none()) {
            reader.error(
                server.line,
                Some("servers"),
                Problem::SentinelName(server.address()),
            );
        }
    }
    Some(Upstream::Servers(ServersUpstream {
        servers,
        hash: hash.unwrap_or(Hash::Fnv1a64),
        hash_tag,
        distribution: distribution.unwrap_or(Distribution::Ketama),
        auto_eject_hosts: auto_eject_hosts.unwrap_or(false),
        server_retry_timeout: Duration::from_millis(retry_ms),
        server_failure_limit: failure_limit,
        redis_db,
        sentinels,
        // Read with the pool's other secrets (`read_sentinel_auth`).
        sentinel_auth: None,
    }))
}

/// A list of `host:port`, each checked at its own line.
fn address_list(reader: &mut Reader, key: &str, entry: &super::yaml::Entry) -> Option<Vec<String>> {
    let items = reader.addresses(entry)?;
    let ok = items.iter().fold(true, |ok, (value, line)| {
        check_entry(reader, key, value, *line) && ok
    });
    ok.then(|| items.iter().map(|(v, _)| v.to_string()).collect())
}

/// `host:port` that a client can connect to: not 0.0.0.0 or `::`.
fn connectable(reader: &mut Reader, key: &str, value: &str, line: usize) -> bool {
    if !check_entry(reader, key, value, line) {
        return false;
    }
    let host = value.rsplit_once(':').map_or(value, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified())
    {
        reader.error(line, Some(key), Problem::Unconnectable(value.into()));
        return false;
    }
    true
}
