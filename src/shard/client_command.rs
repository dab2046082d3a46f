//! `CLIENT`, answered by the proxy for its own clients on every core (a client library's
//! `CLIENT LIST` or an operator's `CLIENT KILL` is about the connections to percore, not
//! percore's to the nodes): ID, INFO, LIST, KILL, SETNAME, GETNAME, SETINFO, REPLY, PAUSE,
//! UNPAUSE, UNBLOCK. LIST and KILL gather over the mesh; PAUSE and UNPAUSE are sent to every
//! core; UNBLOCK finds the client's blocked connection over the mesh and has its node unblock
//! it.
//! Redis's replies and error texts; anything else gets an error naming it.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::command::keys::{Args, FrameArgs};
use crate::control::mesh::{Answer, KillFilter, ListFilter, Notice, Question};
use crate::resp::encode;
use crate::resp::line::parse_int;

use super::blocked;
use super::client::{ClientState, ReplyMode};
use super::clients::describe;
use super::connection::{bulk, integer, null, printable_without_spaces, set_name};
use super::dispatch::error_reply;
use super::reply_to::ReplyTo;
use super::Shard;

/// Redis's reply to a malformed CLIENT request.
const SYNTAX: &str = "ERR syntax error";

/// Answers `CLIENT <subcommand> ...`, now or from a task.
pub fn answer(shard: &Rc<Shard>, client: &Rc<ClientState>, args: &FrameArgs, reply_to: ReplyTo) {
    let sub = args.get(1).to_ascii_lowercase();
    let identity = &client.identity;
    let protocol = identity.protocol();
    let reply = match sub.as_slice() {
        b"setname" if args.count() == 3 => set_name(client, args.get(2)).unwrap_or_else(|e| e),
        b"getname" => match identity.name() {
            Some(name) => bulk(&name),
            None => null(protocol),
        },
        b"id" => integer(identity.id as i64),
        b"setinfo" => set_info(client, args),
        b"info" => text(protocol, &describe(shard, client)),
        b"list" => return list(shard, client, args, reply_to),
        b"kill" => return kill(shard, client, args, reply_to),
        b"reply" => return reply_mode(client, args, reply_to),
        b"pause" => return pause(shard, args, reply_to),
        b"unpause" => return tell(shard, Notice::Unpause, reply_to),
        b"unblock" => return unblock(shard, client, args, reply_to),
        _ => {
            let sub = String::from_utf8_lossy(args.get(1)).to_lowercase();
            error_reply(&format!(
                "ERR percore: 'client|{sub}' is not supported (percore answers CLIENT for its \
                 own clients: ID, INFO, LIST, KILL, SETNAME, GETNAME, SETINFO, REPLY, PAUSE, \
                 UNPAUSE, UNBLOCK)"
            ))
        }
    };
    reply_to.deliver(reply);
}

/// `CLIENT LIST [TYPE type] [ID id ...]`: every core's clients, by id.
fn list(shard: &Rc<Shard>, client: &ClientState, args: &FrameArgs, reply_to: ReplyTo) {
    let mut filter = ListFilter::default();
    let mut at = 2;
    while at < args.count() {
        let option = args.get(at).to_ascii_lowercase();
        if option == b"type" && at + 1 < args.count() {
            match client_type(args.get(at + 1)) {
                Ok(Some(subscribed)) => filter.subscribed = Some(subscribed),
                Ok(None) => filter.none = true,
                Err(reply) => return reply_to.deliver(reply),
            }
            at += 2;
        } else if option == b"id" && at + 1 < args.count() {
            let mut ids = Vec::new();
            for index in at + 1..args.count() {
                match parse_int(args.get(index)).filter(|&id| id > 0) {
                    Some(id) => ids.push(id as u64),
                    None => return reply_to.deliver(error_reply("ERR Invalid client ID")),
                }
            }
            filter.ids = Some(ids);
            at = args.count();
        } else {
            return reply_to.deliver(error_reply(SYNTAX));
        }
    }
    let protocol = client.identity.protocol();
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let mut lines = String::new();
        for answer in shard.gather(Question::ClientList(filter)).await {
            if let Answer::Text(text) = answer {
                lines.push_str(&text);
            }
        }
        reply_to.deliver(text(protocol, &lines));
    })
    .detach();
}

/// `CLIENT KILL addr` or `CLIENT KILL <filter> <value> ...`, on every core.
fn kill(shard: &Rc<Shard>, client: &ClientState, args: &FrameArgs, reply_to: ReplyTo) {
    let me = client.identity.id;
    let old_style = args.count() == 3;
    let filter = match kill_filter(shard, me, args) {
        Ok(filter) => filter,
        Err(reply) => return reply_to.deliver(reply),
    };
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let mut killed = 0;
        for answer in shard.gather(Question::ClientKill(filter)).await {
            if let Answer::Count(count) = answer {
                killed += count;
            }
        }
        reply_to.deliver(match (old_style, killed) {
            (true, 0) => error_reply("ERR No such client"),
            (true, _) => Bytes::from_static(encode::OK),
            (false, count) => integer(count as i64),
        });
    })
    .detach();
}

/// The filter of a CLIENT KILL request from client `me`.
fn kill_filter(shard: &Shard, me: u64, args: &FrameArgs) -> Result<KillFilter, Bytes> {
    let mut filter = KillFilter {
        asker: me,
        ..KillFilter::default()
    };
    let text = |index: usize| String::from_utf8_lossy(args.get(index)).into_owned();
    if args.count() == 3 {
        // The old form: one address, and the asking client may be the one.
        filter.addr = Some(text(2));
        return Ok(filter);
    }
    if !args.count().is_multiple_of(2) {
        return Err(error_reply(SYNTAX));
    }
    let mut skip_me = true;
    for at in (2..args.count()).step_by(2) {
        let value = args.get(at + 1);
        match args.get(at).to_ascii_lowercase().as_slice() {
            b"id" => match parse_int(value).filter(|&id| id > 0) {
                Some(id) => filter.id = Some(id as u64),
                None => return Err(error_reply("ERR client-id should be greater than 0")),
            },
            b"type" => match client_type(value)? {
                Some(subscribed) => filter.subscribed = Some(subscribed),
                None => filter.none = true,
            },
            b"addr" => filter.addr = Some(text(at + 1)),
            b"laddr" => filter.laddr = Some(text(at + 1)),
            b"user" => {
                let name = text(at + 1);
                if !shard.config().users.exists(&name) {
                    return Err(error_reply(&format!("ERR No such user '{name}'")));
                }
                filter.user = Some(name);
            }
            b"skipme" if value.eq_ignore_ascii_case(b"yes") => skip_me = true,
            b"skipme" if value.eq_ignore_ascii_case(b"no") => skip_me = false,
            b"maxage" => match parse_int(value).filter(|&age| age >= 0) {
                Some(age) => filter.max_age = Some(age as u64),
                None => return Err(error_reply(SYNTAX)),
            },
            _ => return Err(error_reply(SYNTAX)),
        }
    }
    filter.skip = skip_me.then_some(me);
    Ok(filter)
}

/// `TYPE normal|master|replica|slave|pubsub`: for the kinds percore has, whether they are
/// subscribers (pubsub) or not (normal); `None` for the replication kinds it has none of.
fn client_type(value: &[u8]) -> Result<Option<bool>, Bytes> {
    match value.to_ascii_lowercase().as_slice() {
        b"normal" => Ok(Some(false)),
        b"pubsub" => Ok(Some(true)),
        b"master" | b"replica" | b"slave" => Ok(None),
        _ => Err(error_reply(&format!(
            "ERR Unknown client type '{}'",
            String::from_utf8_lossy(value)
        ))),
    }
}

/// `CLIENT REPLY ON|OFF|SKIP`: only ON is answered (OK).
fn reply_mode(client: &ClientState, args: &FrameArgs, reply_to: ReplyTo) {
    let mode = match args.get(2).to_ascii_lowercase().as_slice() {
        _ if args.count() != 3 => return reply_to.deliver(error_reply(SYNTAX)),
        b"on" => ReplyMode::On,
        b"off" => ReplyMode::Off,
        b"skip" => ReplyMode::SkipNext,
        _ => return reply_to.deliver(error_reply(SYNTAX)),
    };
    if let ReplyTo::Client { seq, .. } = &reply_to {
        client.set_reply_mode(*seq, mode);
    }
    reply_to.deliver(Bytes::from_static(encode::OK));
}

/// `CLIENT PAUSE timeout [WRITE|ALL]`, on every core.
fn pause(shard: &Rc<Shard>, args: &FrameArgs, reply_to: ReplyTo) {
    let Some(millis) = parse_int(args.get(2)).filter(|&ms| ms >= 0) else {
        return reply_to.deliver(error_reply("ERR timeout is not an integer or out of range"));
    };
    let all = match args.count() {
        3 => true,
        4 if args.get(3).eq_ignore_ascii_case(b"all") => true,
        4 if args.get(3).eq_ignore_ascii_case(b"write") => false,
        4 => return reply_to.deliver(error_reply("ERR CLIENT PAUSE mode must be WRITE or ALL")),
        _ => return reply_to.deliver(error_reply(SYNTAX)),
    };
    let until = Instant::now() + Duration::from_millis(millis as u64);
    tell(shard, Notice::Pause { until, all }, reply_to);
}

/// `CLIENT UNBLOCK id [TIMEOUT|ERROR]`: the node the client is blocked on unblocks the
/// connection it waits on, by that connection's node-side id; the blocked command then
/// answers the client as Redis would (its timeout reply, or `-UNBLOCKED`), and this the
/// node's `:1` (or `:0` when the client was not blocked).
fn unblock(shard: &Rc<Shard>, client: &ClientState, args: &FrameArgs, reply_to: ReplyTo) {
    let Some(id) = parse_int(args.get(2)) else {
        return reply_to.deliver(error_reply("ERR value is not an integer or out of range"));
    };
    let how: &[u8] = match args.count() {
        3 => b"TIMEOUT",
        4 if args.get(3).eq_ignore_ascii_case(b"timeout") => b"TIMEOUT",
        4 if args.get(3).eq_ignore_ascii_case(b"error") => b"ERROR",
        4 => {
            let error = "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR";
            return reply_to.deliver(error_reply(error));
        }
        _ => {
            return reply_to.deliver(error_reply(
                "ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try \
                 CLIENT HELP.",
            ))
        }
    };
    if id <= 0 {
        return reply_to.deliver(integer(0));
    }
    let protocol = client.identity.protocol();
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let answers = shard.gather(Question::BlockedOn(id as u64)).await;
        let blocked = answers.into_iter().find_map(|answer| match answer {
            Answer::BlockedOn(found) => found,
            _ => None,
        });
        let Some((addr, node_id)) = blocked else {
            return reply_to.deliver(integer(0));
        };
        let reply = blocked::unblock_on_node(&shard, &addr, node_id, how, protocol).await;
        reply_to.deliver(reply);
    })
    .detach();
}

/// Sends `notice` to every core, then answers OK.
fn tell(shard: &Rc<Shard>, notice: Notice, reply_to: ReplyTo) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        shard.tell_every_core(notice).await;
        reply_to.deliver(Bytes::from_static(encode::OK));
    })
    .detach();
}

/// Text as Redis sends CLIENT INFO and LIST: bulk in RESP2, verbatim in RESP3.
fn text(protocol: crate::resp::Protocol, text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 20);
    encode::verbatim(&mut out, protocol, text.as_bytes());
    out.freeze()
}

/// `CLIENT SETINFO LIB-NAME|LIB-VER value` (Redis 7.2), as `redis-py` and others send it.
fn set_info(client: &ClientState, args: &FrameArgs) -> Bytes {
    if args.count() != 4 {
        return error_reply("ERR wrong number of arguments for 'client|setinfo' command");
    }
    let attribute = args.get(2);
    let version = if attribute.eq_ignore_ascii_case(b"lib-ver") {
        true
    } else if attribute.eq_ignore_ascii_case(b"lib-name") {
        false
    } else {
        let attribute = String::from_utf8_lossy(attribute);
        return error_reply(&format!("ERR Unrecognized option '{attribute}'"));
    };
    let value = args.get(3);
    if !printable_without_spaces(value) {
        let attribute = String::from_utf8_lossy(attribute).to_lowercase();
        return error_reply(&format!(
            "ERR {attribute} cannot contain spaces, newlines or special characters."
        ));
    }
    client
        .identity
        .set_library(version, Bytes::copy_from_slice(value));
    Bytes::from_static(encode::OK)
}
