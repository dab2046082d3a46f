//! `PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB` through percore, and the
//! counts INFO shows: percore's clients (gathered from every core) together with the clients
//! subscribed on the nodes directly (asked of every master).
//!
//! A node counts each core's link as one subscriber of every name it holds, so what the
//! nodes report is corrected by what the cores say their links hold there: a node's channel
//! is listed only if it is not just a link's, and counts lose the links and gain percore's
//! clients. NUMPAT counts distinct patterns: percore's, plus each node's own beyond those its
//! links hold (a pattern subscribed directly on several nodes counts once per node).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::command::keys::{Args, FrameArgs};
use crate::command::pubsub::Kind;
use crate::control::mesh::{Answer, HeldName, NameFilter, PubsubQuestion, Question};
use crate::resp::value::{parse_value, Value};
use crate::resp::{encode, Protocol};

use super::super::dispatch::error_reply;
use super::super::reply_to::ReplyTo;
use super::super::Shard;

/// The reply Redis Cluster gives when no master is known.
const CLUSTERDOWN: &[u8] = b"-CLUSTERDOWN Hash slot not served\r\n";

/// Distinct channels, patterns and sharded channels with subscribers, through percore and on
/// the nodes directly, as INFO's `pubsub_*` fields count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PubsubCounts {
    /// `pubsub_channels`.
    pub channels: u64,
    /// `pubsub_patterns`.
    pub patterns: u64,
    /// `pubsubshard_channels`.
    pub shard_channels: u64,
}

/// What a PUBSUB request asks.
enum Query {
    /// CHANNELS / SHARDCHANNELS \[pattern\].
    Channels(Kind, Option<Vec<u8>>),
    /// NUMSUB / SHARDNUMSUB \[name ...\].
    NumSub(Kind, Vec<Vec<u8>>),
    /// NUMPAT.
    NumPat,
}

/// Answers a PUBSUB subcommand (HELP goes to a node). The replies are the same in RESP2 and
/// RESP3, as Redis sends them.
pub fn pubsub_command(shard: &Rc<Shard>, args: &FrameArgs, reply_to: ReplyTo) {
    let sub = args.get(1).to_ascii_lowercase();
    let argc = args.count();
    let pattern = (argc == 3).then(|| args.get(2).to_vec());
    let names = || (2..argc).map(|i| args.get(i).to_vec()).collect();
    let query = match (sub.as_slice(), argc) {
        (b"channels", 2 | 3) => Query::Channels(Kind::Channel, pattern),
        (b"shardchannels", 2 | 3) => Query::Channels(Kind::Shard, pattern),
        (b"numsub", _) => Query::NumSub(Kind::Channel, names()),
        (b"shardnumsub", _) => Query::NumSub(Kind::Shard, names()),
        (b"numpat", 2) => Query::NumPat,
        _ => {
            let sub = String::from_utf8_lossy(args.get(1));
            return reply_to.deliver(error_reply(&format!(
                "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP."
            )));
        }
    };
    let request = Bytes::copy_from_slice(args.frame);
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let reply = match query {
            Query::Channels(kind, pattern) => channels(&shard, kind, pattern, request)
                .await
                .map(|names| name_list(&names)),
            Query::NumSub(kind, names) => numsub(&shard, kind, &names, request)
                .await
                .map(|counts| count_list(&counts)),
            Query::NumPat => numpat(&shard, request).await.map(integer),
        };
        reply_to.deliver(reply.unwrap_or_else(|error| error));
    })
    .detach();
}

/// The counts of INFO's `pubsub_channels`, `pubsub_patterns` and `pubsubshard_channels`, for
/// the whole of percore and the cluster behind it. A figure a node cannot give is 0.
pub async fn counts(shard: &Rc<Shard>) -> PubsubCounts {
    let request = |args: &[&[u8]]| {
        let mut out = BytesMut::new();
        encode::command(&mut out, args.iter().copied());
        out.freeze()
    };
    let count = |names: Result<Vec<Vec<u8>>, Bytes>| names.map_or(0, |n| n.len() as u64);
    let classic = channels(
        shard,
        Kind::Channel,
        None,
        request(&[b"PUBSUB", b"CHANNELS"]),
    );
    let classic = count(classic.await);
    let sharded = channels(
        shard,
        Kind::Shard,
        None,
        request(&[b"PUBSUB", b"SHARDCHANNELS"]),
    );
    let sharded = count(sharded.await);
    let patterns = numpat(shard, request(&[b"PUBSUB", b"NUMPAT"])).await;
    PubsubCounts {
        channels: classic,
        patterns: patterns.map_or(0, |n| n.max(0) as u64),
        shard_channels: sharded,
    }
}

/// Every core's names of `kind` that `filter` selects.
async fn held(shard: &Rc<Shard>, kind: Kind, filter: NameFilter) -> Vec<Vec<HeldName>> {
    let question = Question::Pubsub(PubsubQuestion::Held { kind, filter });
    shard
        .gather(question)
        .await
        .into_iter()
        .filter_map(|answer| match answer {
            Answer::Held(names) => Some(names),
            _ => None,
        })
        .collect()
}

/// Every master's reply to `request`, parsed; the first error or unreadable reply is the
/// result instead.
async fn ask(shard: &Rc<Shard>, request: Bytes) -> Result<Vec<(String, Value)>, Bytes> {
    let replies = shard.ask_masters(request, Protocol::Resp2).await;
    if replies.is_empty() {
        return Err(Bytes::from_static(CLUSTERDOWN));
    }
    let mut parsed = Vec::with_capacity(replies.len());
    for (node, reply) in replies {
        match parse_value(&reply) {
            Ok(Some((Value::Error(_), _))) | Err(_) | Ok(None) => return Err(reply),
            Ok(Some((value, _))) => parsed.push((node.to_string(), value)),
        }
    }
    Ok(parsed)
}

/// CHANNELS / SHARDCHANNELS: percore's names with clients, then the nodes' names that are
/// not only a link's.
async fn channels(
    shard: &Rc<Shard>,
    kind: Kind,
    pattern: Option<Vec<u8>>,
    request: Bytes,
) -> Result<Vec<Vec<u8>>, Bytes> {
    let filter = pattern.map_or(NameFilter::All, NameFilter::Matching);
    let cores = held(shard, kind, filter).await;
    let nodes = ask(shard, request).await?;
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    let mut links_hold = HashSet::new();
    for name in cores.into_iter().flatten() {
        for node in &name.nodes {
            links_hold.insert((node.clone(), name.name.clone()));
        }
        if name.clients > 0 && seen.insert(name.name.clone()) {
            names.push(name.name);
        }
    }
    for (node, value) in nodes {
        for item in value.as_array().unwrap_or_default() {
            let Some(name) = item.as_bytes() else {
                continue;
            };
            if !links_hold.contains(&(node.clone(), name.to_vec())) && seen.insert(name.to_vec()) {
                names.push(name.to_vec());
            }
        }
    }
    Ok(names)
}

/// NUMSUB / SHARDNUMSUB: for each name, the nodes' subscribers without the links, plus
/// percore's clients.
async fn numsub(
    shard: &Rc<Shard>,
    kind: Kind,
    names: &[Vec<u8>],
    request: Bytes,
) -> Result<Vec<(Vec<u8>, i64)>, Bytes> {
    let cores = held(shard, kind, NameFilter::Named(names.to_vec())).await;
    let nodes = ask(shard, request).await?;
    let mut totals = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let mut clients = 0i64;
        let mut links = 0i64;
        for core in &cores {
            if let Some(held) = core.get(index) {
                clients += held.clients as i64;
                links += held.nodes.len() as i64;
            }
        }
        let direct: i64 = nodes
            .iter()
            .filter_map(|(_, value)| value.as_array()?.get(index * 2 + 1)?.as_int())
            .sum();
        totals.push((name.clone(), (direct - links).max(0) + clients));
    }
    Ok(totals)
}

/// NUMPAT: percore's distinct patterns, plus each node's beyond those its links hold.
async fn numpat(shard: &Rc<Shard>, request: Bytes) -> Result<i64, Bytes> {
    let cores = held(shard, Kind::Pattern, NameFilter::All).await;
    let nodes = ask(shard, request).await?;
    let mut percore = HashSet::new();
    let mut at_node: HashMap<String, HashSet<Vec<u8>>> = HashMap::new();
    for pattern in cores.into_iter().flatten() {
        for node in pattern.nodes {
            at_node
                .entry(node)
                .or_default()
                .insert(pattern.name.clone());
        }
        if pattern.clients > 0 {
            percore.insert(pattern.name);
        }
    }
    let direct: i64 = nodes
        .iter()
        .map(|(node, value)| {
            let links = at_node.get(node).map_or(0, HashSet::len) as i64;
            (value.as_int().unwrap_or(0) - links).max(0)
        })
        .sum();
    Ok(percore.len() as i64 + direct)
}

/// An array of bulk strings (the same in RESP2 and RESP3, as Redis sends it).
fn name_list(names: &[Vec<u8>]) -> Bytes {
    let mut out = BytesMut::new();
    encode::header(&mut out, b'*', names.len());
    for name in names {
        encode::bulk(&mut out, name);
    }
    out.freeze()
}

/// A flat array of name, count pairs (an array in RESP3 too, as Redis sends it).
fn count_list(counts: &[(Vec<u8>, i64)]) -> Bytes {
    let mut out = BytesMut::new();
    encode::header(&mut out, b'*', counts.len() * 2);
    for (name, count) in counts {
        encode::bulk(&mut out, name);
        encode::integer(&mut out, *count);
    }
    out.freeze()
}

fn integer(value: i64) -> Bytes {
    let mut out = BytesMut::with_capacity(24);
    encode::integer(&mut out, value);
    out.freeze()
}
