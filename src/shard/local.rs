//! Commands the proxy answers itself, without a backend: PING, ECHO, QUIT, SELECT, HELLO,
//! CLIENT SETNAME/GETNAME, CLUSTER KEYSLOT, CLUSTER SLOTS/SHARDS/NODES/INFO/MYID, SLOWLOG,
//! MONITOR, UNWATCH and RESET (which end a client's WATCH session), and the `PROXY` admin
//! commands (`PROXY CONFIG RELOAD` asks core 0 to reload: `shard::reload`); and those it
//! composes from several masters' answers in a task (INFO, SCRIPT/FUNCTION KILL, RANDOMKEY,
//! CONFIG SET). Pub/sub commands are handed to the core's
//! hub ([`super::pubsub`]).
//!
//! Most answers are immediate. `PROXY INFO` and `PROXY LATENCY` need every core's numbers,
//! so they run as a small task that gathers over the mesh and then fills the reply place;
//! the client's later replies wait behind it like behind any backend reply.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::cluster::slot::Slot;
use crate::command::keys::{Args, FrameArgs};
use crate::command::route::Local;
use crate::control::admin;
use crate::control::info::Sections;
use crate::resp::encode;

use super::client::ClientState;
use super::client_command;
use super::cluster_scan;
use super::cluster_view;
use super::composed;
use super::connection;
use super::dispatch::{error_reply, Control};
use super::info;
use super::kill;
use super::monitor;
use super::pubsub;
use super::reload;
use super::replica;
use super::reply_to::ReplyTo;
use super::session;
use super::sidecar;
use super::slow_requests;
use super::transaction;
use super::Shard;

/// Answers a locally served command.
pub fn answer(
    shard: &Rc<Shard>,
    client: &Rc<ClientState>,
    command: Local,
    args: &FrameArgs,
    reply_to: ReplyTo,
) -> Control {
    let argc = args.count();
    let reply = match command {
        Local::Ping if argc == 1 => Bytes::from_static(encode::PONG),
        Local::Ping if argc == 2 => bulk(args.get(1)),
        Local::Ping => arity_error("ping"),
        Local::Echo => bulk(args.get(1)),
        Local::Quit => {
            reply_to.deliver(Bytes::from_static(encode::OK));
            return Control::Close;
        }
        Local::Select => sidecar::select::answer(shard, client, args),
        Local::Hello => connection::hello(shard, client, args),
        Local::Auth => connection::auth(shard, client, args),
        Local::AclWhoami => connection::whoami(shard, client),
        Local::Client => {
            client_command::answer(shard, client, args, reply_to);
            return Control::Continue;
        }
        Local::ReadMode => replica::read_mode(shard, &client.identity, args),
        Local::KeySlot => {
            let mut out = BytesMut::with_capacity(8);
            encode::integer(&mut out, i64::from(Slot::for_key(args.get(2)).get()));
            out.freeze()
        }
        Local::Cluster => cluster_view::answer(shard, client.identity.protocol(), args),
        Local::Info => {
            let sections = Sections::parse((1..argc).map(|i| args.get(i)));
            info::info(shard, sections, client.identity.protocol(), reply_to);
            return Control::Continue;
        }
        Local::Kill => {
            kill::kill(shard, Bytes::copy_from_slice(args.frame), reply_to);
            return Control::Continue;
        }
        Local::Proxy => return proxy(shard, client, args, reply_to),
        Local::Multi => transaction::begin(client),
        Local::Exec => error_reply("ERR EXEC without MULTI"),
        Local::Discard => error_reply("ERR DISCARD without MULTI"),
        Local::Unwatch => {
            let ok = Bytes::from_static(encode::OK);
            session::end_watch(shard, client, Some(reply_to), ok);
            return Control::Continue;
        }
        Local::Reset => {
            session::reset(shard, client, reply_to);
            return Control::Continue;
        }
        Local::RandomKey => {
            let request = Bytes::copy_from_slice(args.frame);
            let lane = (client.identity.protocol(), client.identity.lane());
            composed::random_key(shard, request, lane, reply_to);
            return Control::Continue;
        }
        Local::Subscribe(kind) => {
            pubsub::subscribe(shard, client, kind, args, reply_to);
            return Control::Continue;
        }
        Local::Unsubscribe(kind) => {
            pubsub::unsubscribe(shard, client, kind, args, reply_to);
            return Control::Continue;
        }
        Local::Publish | Local::SPublish => {
            let sharded = command == Local::SPublish;
            pubsub::publish(shard, sharded, args, client.identity.protocol(), reply_to);
            return Control::Continue;
        }
        Local::Pubsub => {
            pubsub::pubsub_command(shard, args, reply_to);
            return Control::Continue;
        }
        Local::Slowlog => {
            slow_requests::command(shard, args, reply_to);
            return Control::Continue;
        }
        Local::Monitor => {
            monitor::start(shard, client, reply_to);
            return Control::Continue;
        }
        Local::Scan => {
            let (protocol, lane) = (client.identity.protocol(), client.identity.lane());
            cluster_scan::scan(shard, args, protocol, lane, reply_to);
            return Control::Continue;
        }
        Local::ConfigAll => {
            let request = Bytes::copy_from_slice(args.frame);
            let protocol = client.identity.protocol();
            composed::config_all(shard, args, request, protocol, reply_to);
            return Control::Continue;
        }
    };
    reply_to.deliver(reply);
    Control::Continue
}

/// `PROXY INFO | LATENCY [RESET] | SLOWLOG [count] | CONFIG RELOAD`.
fn proxy(shard: &Rc<Shard>, client: &ClientState, args: &FrameArgs, reply_to: ReplyTo) -> Control {
    let sub = args.get(1).to_ascii_lowercase();
    if sub == b"config" && args.count() == 3 && args.get(2).eq_ignore_ascii_case(b"reload") {
        reload::command(shard, reply_to);
        return Control::Continue;
    }
    if sub == b"slowlog" && args.count() <= 3 {
        let count = (args.count() == 3).then(|| args.get(2));
        slow_requests::with_nodes(shard, count, reply_to);
        return Control::Continue;
    }
    let reset = args.count() == 3 && args.get(2).eq_ignore_ascii_case(b"reset");
    let report = match (sub.as_slice(), args.count()) {
        (b"info", 2) => admin::Report::Info,
        (b"latency", 2) => admin::Report::Latency,
        (b"latency", 3) if reset => admin::Report::LatencyReset,
        _ => {
            reply_to.deliver(error_reply(
                "ERR usage: PROXY INFO | PROXY LATENCY | PROXY LATENCY RESET | PROXY SLOWLOG [count] | PROXY CONFIG RELOAD",
            ));
            return Control::Continue;
        }
    };
    let shard = shard.clone();
    let protocol = client.identity.protocol();
    glommio::spawn_local(async move {
        let stats = shard.gather_stats(reset).await;
        reply_to.deliver(admin::report(&shard.admin_view(), report, &stats, protocol));
    })
    .detach();
    Control::Continue
}

fn bulk(value: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(value.len() + 16);
    encode::bulk(&mut out, value);
    out.freeze()
}

fn arity_error(command: &str) -> Bytes {
    error_reply(&format!(
        "ERR wrong number of arguments for '{command}' command"
    ))
}
