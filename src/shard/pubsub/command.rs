//! The pub/sub commands a client sends, answered as a node answers them: (P|S)SUBSCRIBE and
//! (P|S)UNSUBSCRIBE with one confirmation frame per name (an array in RESP2, a push in
//! RESP3), RESP2's subscribe mode with its error text, and PUBLISH / SPUBLISH with their count
//! of receivers.
//!
//! Through percore a node sees one subscriber per core link, not percore's clients, so the
//! count a node returns for PUBLISH is corrected: the core asks every core how many of its
//! clients receive the message and how many of the node's receivers are its own links.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::cluster::slot::Slot;
use crate::command::keys::{Args, FrameArgs};
use crate::command::pubsub::Kind;
use crate::command::route::{Command, Rejection, Route};
use crate::control::mesh::{Answer, PubsubQuestion, Question};
use crate::resp::line::parse_int;
use crate::resp::{encode, Protocol};

use super::super::client::ClientState;
use super::super::dispatch::error_reply;
use super::super::reply_to::ReplyTo;
use super::super::Shard;
use super::Confirm;

/// The reply Redis Cluster gives when no master serves the slot.
const CLUSTERDOWN: &[u8] = b"-CLUSTERDOWN Hash slot not served\r\n";

/// Commands RESP2's subscribe mode allows (besides PING, answered there).
const SUBSCRIBE_MODE: [&str; 8] = [
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "quit",
    "reset",
];

/// `(P|S)SUBSCRIBE name [name ...]`: the client's reply place `seq` gets one confirmation per
/// name, once every link that must hold a new name has confirmed it.
pub fn subscribe(
    shard: &Rc<Shard>,
    client: &Rc<ClientState>,
    kind: Kind,
    args: &FrameArgs,
    reply_to: ReplyTo,
) {
    let ReplyTo::Client { seq, .. } = reply_to else {
        return reply_to.deliver(error_reply("ERR percore: subscription outside a client"));
    };
    let protocol = client.identity.protocol();
    let was_active = client.pubsub.is_active();
    let confirm = Confirm::new(client.clone(), seq);
    let mut out = BytesMut::with_capacity(32 * args.count());
    for index in 1..args.count() {
        let name = Bytes::copy_from_slice(args.get(index));
        let (added, count) = client.pubsub.add(kind, &name);
        confirmation(
            &mut out,
            protocol,
            kind.subscribed_word(),
            Some(&name),
            count,
        );
        if added {
            shard.pubsub.join(shard, client, kind, &name, &confirm);
        }
    }
    if !was_active {
        let subscribers = &shard.counters().subscribers;
        subscribers.set(subscribers.get() + 1);
    }
    *confirm.reply.borrow_mut() = out.freeze();
    confirm.release();
}

/// `(P|S)UNSUBSCRIBE [name ...]`: without names, every name of the kind; answered at once.
pub fn unsubscribe(
    shard: &Rc<Shard>,
    client: &Rc<ClientState>,
    kind: Kind,
    args: &FrameArgs,
    reply_to: ReplyTo,
) {
    let protocol = client.identity.protocol();
    let was_active = client.pubsub.is_active();
    let names: Vec<Bytes> = match args.count() {
        1 => client.pubsub.names(kind),
        n => (1..n)
            .map(|i| Bytes::copy_from_slice(args.get(i)))
            .collect(),
    };
    let mut out = BytesMut::with_capacity(32 * names.len().max(1));
    if names.is_empty() {
        let count = client.pubsub.count(kind);
        confirmation(&mut out, protocol, kind.unsubscribed_word(), None, count);
    }
    for name in &names {
        let (removed, count) = client.pubsub.remove(kind, name);
        confirmation(
            &mut out,
            protocol,
            kind.unsubscribed_word(),
            Some(name),
            count,
        );
        if removed {
            shard.pubsub.leave(client, kind, name);
        }
    }
    if was_active && !client.pubsub.is_active() {
        let subscribers = &shard.counters().subscribers;
        subscribers.set(subscribers.get().saturating_sub(1));
    }
    match reply_to {
        ReplyTo::Client { client, seq } => client.complete_pushing(seq, out.freeze()),
        other => other.deliver(out.freeze()),
    }
}

/// One confirmation frame: `[p|s][un]subscribe`, the name (null for an UNSUBSCRIBE of
/// nothing) and the client's count after it.
fn confirmation(
    out: &mut BytesMut,
    protocol: Protocol,
    word: &[u8],
    name: Option<&[u8]>,
    count: usize,
) {
    encode::push_header(out, protocol, 3);
    encode::bulk(out, word);
    match name {
        Some(name) => encode::bulk(out, name),
        None => encode::null(out, protocol),
    }
    encode::integer(out, count as i64);
}

/// For a RESP2 client in subscribe mode: the answer to a request that mode does not pass on
/// (PING's `pong` array, or Redis's error for a command not allowed there); `None` to serve
/// it as usual. Unknown commands and wrong arities keep their own errors, as in Redis.
pub fn gate_resp2(route: &Route, command: Option<Command>, args: &FrameArgs) -> Option<Bytes> {
    if let Route::Reject(
        Rejection::UnknownCommand
        | Rejection::UnknownSubcommand(_)
        | Rejection::WrongArity(..)
        | Rejection::CrossSlot,
    ) = route
    {
        return None;
    }
    let top = command.filter(|c| c.parent.is_none()).map(|c| c.spec.name);
    match top {
        Some("ping") => Some(pong(args)),
        Some(name) if SUBSCRIBE_MODE.contains(&name) => None,
        _ => {
            let name = command.map_or_else(|| "proxy".to_string(), |c| c.full_name());
            Some(error_reply(&format!(
                "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / \
                 QUIT / RESET are allowed in this context"
            )))
        }
    }
}

/// PING in RESP2's subscribe mode: `pong` and the message (empty without one).
fn pong(args: &FrameArgs) -> Bytes {
    if args.count() > 2 {
        return error_reply("ERR wrong number of arguments for 'ping' command");
    }
    let message = if args.count() == 2 { args.get(1) } else { b"" };
    let mut out = BytesMut::with_capacity(24 + message.len());
    encode::header(&mut out, b'*', 2);
    encode::bulk(&mut out, b"pong");
    encode::bulk(&mut out, message);
    out.freeze()
}

/// `PUBLISH channel message` (any master: the cluster delivers it on every node) or, when
/// `sharded`, `SPUBLISH` (the channel's slot master). The node's count of receivers has the
/// cores' links taken out and percore's receiving clients put in.
pub fn publish(
    shard: &Rc<Shard>,
    sharded: bool,
    args: &FrameArgs,
    protocol: Protocol,
    reply_to: ReplyTo,
) {
    let channel = args.get(1).to_vec();
    let slot = sharded.then(|| Slot::for_key(&channel));
    let Some(node) = shard.node_for(slot) else {
        return reply_to.deliver(Bytes::from_static(CLUSTERDOWN));
    };
    let waiter = shard.send_for_reply(&node, Bytes::copy_from_slice(args.frame), protocol);
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let question = Question::Pubsub(PubsubQuestion::Receivers {
            shard: sharded,
            channel,
            node: node.addr.to_string(),
        });
        let answers = shard.gather(question).await;
        let reply = waiter.reply().await;
        reply_to.deliver(corrected(reply, &answers));
    })
    .detach();
}

/// The node's count of receivers with the cores' links taken out and their clients put in;
/// any other reply (an error) as it is.
fn corrected(reply: Bytes, answers: &[Answer]) -> Bytes {
    let count = reply
        .strip_prefix(b":")
        .and_then(|rest| rest.strip_suffix(b"\r\n"))
        .and_then(parse_int);
    let Some(count) = count else {
        return reply;
    };
    let (mut clients, mut links) = (0i64, 0i64);
    for answer in answers {
        if let Answer::Receivers {
            clients: c,
            links: l,
        } = answer
        {
            clients += *c as i64;
            links += *l as i64;
        }
    }
    let mut out = BytesMut::with_capacity(24);
    encode::integer(&mut out, (count - links).max(0) + clients);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(protocol: Protocol, word: &[u8], name: Option<&[u8]>, count: usize) -> Vec<u8> {
        let mut out = BytesMut::new();
        confirmation(&mut out, protocol, word, name, count);
        out.to_vec()
    }

    #[test]
    fn confirmations_as_redis_sends_them() {
        assert_eq!(
            frame(Protocol::Resp2, b"subscribe", Some(b"a"), 1),
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            frame(Protocol::Resp2, b"unsubscribe", None, 0),
            b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
        );
        assert_eq!(
            frame(Protocol::Resp3, b"unsubscribe", None, 0),
            b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n"
        );
    }

    #[test]
    fn publish_counts_percore_clients_not_links() {
        let answers = [
            Answer::Receivers {
                clients: 3,
                links: 1,
            },
            Answer::Receivers {
                clients: 2,
                links: 0,
            },
        ];
        // The node counted one direct subscriber and core 0's link.
        assert_eq!(
            &corrected(Bytes::from_static(b":2\r\n"), &answers)[..],
            b":6\r\n"
        );
        let error = Bytes::from_static(b"-ERR x\r\n");
        assert_eq!(corrected(error.clone(), &answers), error);
    }
}
