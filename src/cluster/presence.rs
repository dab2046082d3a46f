//! How percore presents itself to cluster-mode clients as the cluster: the members it
//! advertises (itself, and the live percore instances of its fleet), the 16384 slots split
//! among them, their node ids, and the exact `CLUSTER SLOTS | SHARDS | NODES | INFO | MYID`
//! replies Redis 7.0 would give for such a cluster, in RESP2 and RESP3.
//!
//! Every address here is a percore address, never a backend node, so a smart client keeps
//! sending through the proxies and spreads its load over them; any percore still serves any
//! key. This is pure (addresses in, bytes out) so every format is unit-tested without I/O.

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};

use crate::cluster::slot::SLOT_COUNT;
use crate::resp::{encode, Protocol};

/// The cluster bus port shown in `CLUSTER NODES` (`ip:port@cport`). percore has no cluster bus;
/// 0 says so, and clients that read the line only split it off.
const BUS_PORT: u16 = 0;

/// What Redis's `CLUSTER SHARDS` says of a reachable master.
const HEALTH_ONLINE: &[u8] = b"online";

/// One advertised percore instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `host:port` as announced (the key it is sorted and named by).
    addr: String,
    /// The host part, without IPv6 brackets.
    host: String,
    /// The port clients connect to.
    port: u16,
    /// 40 hex digits, from [`node_id`].
    id: String,
    /// First and last slot it is advertised to serve.
    slots: (u16, u16),
}

impl Member {
    /// The host if it is an IP address, else empty (a name has no known IP here).
    fn ip(&self) -> &str {
        match self.host.parse::<IpAddr>() {
            Ok(_) => &self.host,
            Err(_) => "",
        }
    }

    /// The host if it is a name rather than an IP address.
    fn hostname(&self) -> Option<&str> {
        self.ip().is_empty().then_some(self.host.as_str())
    }
}

/// The cluster percore advertises: its members in address order, each with a contiguous
/// share of the slots, and which member is this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Sorted by address, so every instance that sees the same live set splits alike.
    members: Vec<Member>,
    /// Index of this process in `members`.
    me: usize,
}

/// The node id of the percore at `addr`: the SHA-1 of `host:port` in hex. Every instance
/// derives the same id for an address, with no coordination, and it stays the same across
/// restarts.
pub fn node_id(addr: &str) -> String {
    sha1_smol::Sha1::from(addr).digest().to_string()
}

/// The slots of each of `members` members: contiguous ranges in order, as even as the
/// count allows (the same split `redis-cli --cluster create` makes).
pub fn split_slots(members: usize) -> Vec<(u16, u16)> {
    let total = SLOT_COUNT;
    let members = members.max(1);
    let mut ranges = Vec::with_capacity(members);
    let mut first = 0;
    for index in 1..=members {
        // round(index * total / members), in integers.
        let end = (2 * index * total + members) / (2 * members);
        ranges.push((first as u16, (end - 1) as u16));
        first = end;
    }
    ranges
}

/// Host and port of a `host:port` address (`[v6]:port` too).
pub fn host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

impl Presence {
    /// The cluster made of `me` and the `live` peers (which may include `me`; repeats and
    /// addresses that are not `host:port` are ignored).
    pub fn new(me: &str, live: &[String]) -> Presence {
        let mut addrs: Vec<&str> = live.iter().map(String::as_str).collect();
        addrs.push(me);
        addrs.retain(|addr| host_port(addr).is_some() || *addr == me);
        addrs.sort_unstable();
        addrs.dedup();
        let ranges = split_slots(addrs.len());
        let members = addrs
            .iter()
            .zip(ranges)
            .map(|(addr, slots)| {
                let (host, port) = host_port(addr).unwrap_or((addr, 0));
                Member {
                    addr: addr.to_string(),
                    host: host.to_string(),
                    port,
                    id: node_id(addr),
                    slots,
                }
            })
            .collect();
        let me = addrs.iter().position(|addr| *addr == me).unwrap_or(0);
        Presence { members, me }
    }

    /// The same process, with `live` as its peers.
    pub fn with_live(&self, live: &[String]) -> Presence {
        Presence::new(&self.members[self.me].addr, live)
    }

    /// The advertised addresses, in order.
    #[cfg(test)]
    pub fn addrs(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.addr.as_str())
    }

    /// This process's node id.
    pub fn my_id(&self) -> &str {
        &self.members[self.me].id
    }

    /// `CLUSTER MYID`.
    pub fn myid_reply(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(48);
        encode::bulk(&mut out, self.my_id().as_bytes());
        out.freeze()
    }

    /// `CLUSTER SLOTS`: per member `[first, last, [endpoint, port, id, {}]]`.
    pub fn slots_reply(&self, protocol: Protocol) -> Bytes {
        let mut out = BytesMut::with_capacity(96 * self.members.len());
        encode::header(&mut out, b'*', self.members.len());
        for member in &self.members {
            encode::header(&mut out, b'*', 3);
            encode::integer(&mut out, i64::from(member.slots.0));
            encode::integer(&mut out, i64::from(member.slots.1));
            encode::header(&mut out, b'*', 4);
            encode::bulk(&mut out, member.host.as_bytes());
            encode::integer(&mut out, i64::from(member.port));
            encode::bulk(&mut out, member.id.as_bytes());
            // The other networking metadata: none beyond the endpoint.
            encode::map_header(&mut out, protocol, 0);
        }
        out.freeze()
    }

    /// `CLUSTER SHARDS`: per member a shard `{slots: [first, last], nodes: [{...}]}`.
    pub fn shards_reply(&self, protocol: Protocol) -> Bytes {
        let mut out = BytesMut::with_capacity(256 * self.members.len());
        encode::header(&mut out, b'*', self.members.len());
        for member in &self.members {
            encode::map_header(&mut out, protocol, 2);
            encode::bulk(&mut out, b"slots");
            encode::header(&mut out, b'*', 2);
            encode::integer(&mut out, i64::from(member.slots.0));
            encode::integer(&mut out, i64::from(member.slots.1));
            encode::bulk(&mut out, b"nodes");
            encode::header(&mut out, b'*', 1);
            let hostname = member.hostname();
            encode::map_header(&mut out, protocol, 7 + usize::from(hostname.is_some()));
            encode::bulk(&mut out, b"id");
            encode::bulk(&mut out, member.id.as_bytes());
            encode::bulk(&mut out, b"port");
            encode::integer(&mut out, i64::from(member.port));
            encode::bulk(&mut out, b"ip");
            encode::bulk(&mut out, member.ip().as_bytes());
            encode::bulk(&mut out, b"endpoint");
            encode::bulk(&mut out, member.host.as_bytes());
            if let Some(hostname) = hostname {
                encode::bulk(&mut out, b"hostname");
                encode::bulk(&mut out, hostname.as_bytes());
            }
            encode::bulk(&mut out, b"role");
            encode::bulk(&mut out, b"master");
            encode::bulk(&mut out, b"replication-offset");
            encode::integer(&mut out, 0);
            encode::bulk(&mut out, b"health");
            encode::bulk(&mut out, HEALTH_ONLINE);
        }
        out.freeze()
    }

    /// The text of `CLUSTER NODES`: one line per member, Redis's format
    /// `id ip:port@cport[,hostname] flags master ping-sent pong-recv config-epoch link slots`.
    pub fn nodes_text(&self) -> String {
        let mut text = String::with_capacity(128 * self.members.len());
        for (index, member) in self.members.iter().enumerate() {
            let flags = if index == self.me {
                "myself,master"
            } else {
                "master"
            };
            let hostname = member.hostname().map(|h| format!(",{h}"));
            let (first, last) = member.slots;
            let slots = if first == last {
                first.to_string()
            } else {
                format!("{first}-{last}")
            };
            text.push_str(&format!(
                "{} {}:{}@{BUS_PORT}{} {flags} - 0 0 0 connected {slots}\n",
                member.id,
                member.ip(),
                member.port,
                hostname.unwrap_or_default(),
            ));
        }
        text
    }

    /// `CLUSTER NODES`: the text as a verbatim string (a bulk string in RESP2).
    pub fn nodes_reply(&self, protocol: Protocol) -> Bytes {
        let text = self.nodes_text();
        let mut out = BytesMut::with_capacity(text.len() + 16);
        encode::verbatim(&mut out, protocol, text.as_bytes());
        out.freeze()
    }

    /// The text of `CLUSTER INFO`, when the backends serve `covered` slots: the state is ok
    /// only while they serve all of them (the slots they do not serve are counted as failed,
    /// since percore advertises every slot).
    pub fn info_text(&self, covered: usize) -> String {
        let covered = covered.min(SLOT_COUNT);
        let state = if covered == SLOT_COUNT { "ok" } else { "fail" };
        let nodes = self.members.len();
        let lines = [
            format!("cluster_state:{state}"),
            format!("cluster_slots_assigned:{SLOT_COUNT}"),
            format!("cluster_slots_ok:{covered}"),
            "cluster_slots_pfail:0".to_string(),
            format!("cluster_slots_fail:{}", SLOT_COUNT - covered),
            format!("cluster_known_nodes:{nodes}"),
            format!("cluster_size:{nodes}"),
            "cluster_current_epoch:0".to_string(),
            "cluster_my_epoch:0".to_string(),
            "cluster_stats_messages_sent:0".to_string(),
            "cluster_stats_messages_received:0".to_string(),
            "total_cluster_links_buffer_limit_exceeded:0".to_string(),
        ];
        let mut text = lines.join("\r\n");
        text.push_str("\r\n");
        text
    }

    /// `CLUSTER INFO` as a verbatim string (a bulk string in RESP2).
    pub fn info_reply(&self, covered: usize, protocol: Protocol) -> Bytes {
        let text = self.info_text(covered);
        let mut out = BytesMut::with_capacity(text.len() + 16);
        encode::verbatim(&mut out, protocol, text.as_bytes());
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Protocol::{Resp2, Resp3};

    const ME: &str = "127.0.0.1:7990";

    fn live(addrs: &[&str]) -> Vec<String> {
        addrs.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn node_ids_are_sha1_of_the_address() {
        // `printf %s 127.0.0.1:7990 | sha1sum`
        assert_eq!(node_id(ME), "1c316ab8f2fb90a13595cfa9e3cbbd8b7b1a379d");
        assert_eq!(node_id(ME).len(), 40);
        assert_ne!(node_id(ME), node_id("127.0.0.1:7991"));
    }

    #[test]
    fn slots_split_evenly_in_contiguous_ranges() {
        assert_eq!(split_slots(1), [(0, 16383)]);
        assert_eq!(split_slots(2), [(0, 8191), (8192, 16383)]);
        // As `redis-cli --cluster create` splits three masters.
        assert_eq!(split_slots(3), [(0, 5460), (5461, 10922), (10923, 16383)]);
        for n in 1..200 {
            let ranges = split_slots(n);
            assert_eq!(ranges.len(), n);
            assert_eq!(ranges[0].0, 0);
            assert_eq!(ranges[n - 1].1, 16383);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1 + 1, pair[1].0);
            }
            let sizes: Vec<u16> = ranges.iter().map(|r| r.1 - r.0 + 1).collect();
            let (min, max) = (sizes.iter().min(), sizes.iter().max());
            assert!(max.zip(min).is_some_and(|(a, b)| a - b <= 1), "{n}");
        }
    }

    #[test]
    fn addresses() {
        assert_eq!(host_port("127.0.0.1:7000"), Some(("127.0.0.1", 7000)));
        assert_eq!(host_port("[::1]:7000"), Some(("::1", 7000)));
        assert_eq!(host_port("proxy-1:6380"), Some(("proxy-1", 6380)));
        assert_eq!(host_port("nohost"), None);
        assert_eq!(host_port(":1"), None);
        assert_eq!(host_port("h:99999"), None);
    }

    #[test]
    fn members_are_sorted_deduplicated_and_include_me() {
        let one = Presence::new(ME, &[]);
        assert_eq!(one.addrs().collect::<Vec<_>>(), [ME]);
        let peers = live(&["127.0.0.1:7992", ME, "127.0.0.1:7991", "127.0.0.1:7992"]);
        let three = Presence::new(ME, &peers);
        let addrs: Vec<_> = three.addrs().collect();
        assert_eq!(
            addrs,
            ["127.0.0.1:7990", "127.0.0.1:7991", "127.0.0.1:7992"]
        );
        assert_eq!(three.my_id(), node_id(ME));
        assert_eq!(three.with_live(&[]), one);
        // Seen from another member, the same split.
        let other = Presence::new("127.0.0.1:7992", &live(&[ME, "127.0.0.1:7991"]));
        assert_eq!(other.slots_reply(Resp2), three.slots_reply(Resp2));
        assert_ne!(other.nodes_text(), three.nodes_text());
    }

    /// The replies of a single percore, byte for byte what a Redis 7.0 node alone in its
    /// cluster (and announcing 127.0.0.1) sends, but for the id.
    #[test]
    fn replies_of_one_member() {
        let presence = Presence::new(ME, &[]);
        let id = node_id(ME);
        let slots = format!(
            "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:7990\r\n$40\r\n{id}\r\n"
        );
        assert_eq!(
            presence.slots_reply(Resp2),
            format!("{slots}*0\r\n").as_bytes()
        );
        assert_eq!(
            presence.slots_reply(Resp3),
            format!("{slots}%0\r\n").as_bytes()
        );
        let node = format!(
            "$2\r\nid\r\n$40\r\n{id}\r\n$4\r\nport\r\n:7990\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n\
             $8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
             $18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
        );
        let shard = |map2: &str, map7: &str| {
            format!("*1\r\n{map2}$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n{map7}{node}")
        };
        assert_eq!(
            presence.shards_reply(Resp2),
            shard("*4\r\n", "*14\r\n").as_bytes()
        );
        assert_eq!(
            presence.shards_reply(Resp3),
            shard("%2\r\n", "%7\r\n").as_bytes()
        );
        let line = format!("{id} 127.0.0.1:7990@0 myself,master - 0 0 0 connected 0-16383\n");
        assert_eq!(presence.nodes_text(), line);
        let verbatim = format!("={}\r\ntxt:{line}\r\n", line.len() + 4);
        assert_eq!(presence.nodes_reply(Resp3), verbatim.as_bytes());
        assert_eq!(presence.myid_reply(), format!("$40\r\n{id}\r\n").as_bytes());
    }

    #[test]
    fn info_says_fail_unless_every_slot_is_served() {
        let presence = Presence::new(ME, &live(&["127.0.0.1:7991"]));
        let ok = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n\
                  cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:2\r\n\
                  cluster_size:2\r\ncluster_current_epoch:0\r\ncluster_my_epoch:0\r\n\
                  cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
                  total_cluster_links_buffer_limit_exceeded:0\r\n";
        assert_eq!(presence.info_text(16384), ok);
        let fail = presence.info_text(16000);
        assert!(fail.starts_with("cluster_state:fail\r\n"), "{fail}");
        assert!(fail.contains(
            "\r\ncluster_slots_ok:16000\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:384\r\n"
        ));
        let bulk = format!("${}\r\n{ok}\r\n", ok.len());
        assert_eq!(presence.info_reply(16384, Resp2), bulk.as_bytes());
    }

    #[test]
    fn names_are_endpoints_and_hostnames() {
        let presence = Presence::new("proxy-b:6380", &live(&["proxy-a:6380"]));
        let text = presence.nodes_text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with(" :6380@0,proxy-a master - 0 0 0 connected 0-8191"));
        assert!(lines[1].contains(" :6380@0,proxy-b myself,master - 0 0 0 connected 8192-16383"));
        let shards = presence.shards_reply(Resp3);
        let shards = String::from_utf8_lossy(&shards);
        assert!(shards.contains("%8\r\n"), "{shards}");
        assert!(shards.contains("$2\r\nip\r\n$0\r\n\r\n$8\r\nendpoint\r\n$7\r\nproxy-a\r\n$8\r\nhostname\r\n$7\r\nproxy-a\r\n"));
        let slots = presence.slots_reply(Resp2);
        assert!(slots.starts_with(b"*2\r\n*3\r\n:0\r\n:8191\r\n*4\r\n$7\r\nproxy-a\r\n:6380\r\n"));
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets() {
        let presence = Presence::new("[::1]:6380", &[]);
        assert!(presence.nodes_text().contains(" ::1:6380@0 myself,master "));
        assert!(presence
            .slots_reply(Resp2)
            .starts_with(b"*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$3\r\n::1\r\n"));
    }
}
