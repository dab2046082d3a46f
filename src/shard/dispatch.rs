//! Carries out the routing decision for one request on this core: reserve its reply place,
//! then forward it to a backend, split it, broadcast it, answer it locally or refuse it.
//!
//! Also home of redirect handling: a backend reader hands every MOVED/ASK/TRYAGAIN/CLUSTERDOWN
//! back here to be sent again.

use std::ops::Range;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::cluster::redirect::{resolve_node, Redirect};
use crate::command::keys::{Args, FrameArgs};
use crate::command::route::{Dedicated, Local, Merge, Rejection, Route, SplitKind};
use crate::command::static_pool;
use crate::command::table::GENERATED_FROM;
use crate::config::ReadFrom;
use crate::error::BackendError;
use crate::metrics::Counters;
use crate::resp::{encode, Protocol};

use super::backend::Outbound;
use super::blocked;
use super::client::ClientState;
use super::gate;
use super::local;
use super::monitor;
use super::pubsub;
use super::replica;
use super::reply_to::{MergeKind, ReplyTo, SplitReply};
use super::session;
use super::sidecar::{background, moves};
use super::transaction;
use super::Shard;

/// Redirects (MOVED, ASK, TRYAGAIN) one request may follow before it fails. A slot moves at
/// most once or twice during a resharding; more hops mean the cluster disagrees with itself.
pub const MAX_REDIRECTS: u8 = 16;

/// Pause before resending a request that got TRYAGAIN (a multi-key request that hit a slot
/// halfway through migration); the migration of a key batch takes milliseconds.
const TRYAGAIN_DELAY: Duration = Duration::from_millis(20);

/// Pause before resending a request that got CLUSTERDOWN: the cluster is promoting a replica
/// or settling its slot map. With [`MAX_REDIRECTS`] a request waits at most 1.6 s this way
/// before the client sees the error.
const CLUSTERDOWN_DELAY: Duration = Duration::from_millis(100);

/// What the connection should do after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep reading.
    Continue,
    /// Stop reading; close after the queued replies (QUIT).
    Close,
}

/// Routes and starts one request. `frame` is the client's request, `args` its argument ranges.
pub fn dispatch(
    shard: &Rc<Shard>,
    client: &Rc<ClientState>,
    frame: Bytes,
    args: &[Range<usize>],
) -> Control {
    let started = shard.now();
    let seq = client.reserve(started);
    Counters::bump(&shard.counters().requests);
    let reply_to = ReplyTo::Client {
        client: client.clone(),
        seq,
    };
    let (control, unsent) = start(shard, client, frame, args, reply_to, started);
    // The slow log names each entry's request: one forwarded as it is brings its frame back
    // with its reply (`Outbound::answer`), every other leaves it with its reply place here.
    if let Some(frame) = unsent {
        client.keep_request(seq, frame);
    }
    control
}

/// Starts the request `frame` whose reply goes to `reply_to`; gives the frame back unless it
/// went to a backend that brings it back with the reply.
fn start(
    shard: &Rc<Shard>,
    client: &Rc<ClientState>,
    frame: Bytes,
    args: &[Range<usize>],
    reply_to: ReplyTo,
    started: Instant,
) -> (Control, Option<Bytes>) {
    let identity = &client.identity;
    let protocol = identity.protocol();
    let view = FrameArgs {
        frame: &frame,
        args,
    };
    let (route, command) = shard.placer.borrow().route(&view);
    identity.stamp(started, command);
    let refusal = gate::refusal(&shard.users(), identity, &route, command, &view);
    if let Some(refusal) = refusal {
        reply_to.deliver(refusal);
        return (Control::Continue, Some(frame));
    }
    // RESP2's subscribe mode allows only a few commands; one flag read for everyone else.
    if client.pubsub.is_active() && protocol == Protocol::Resp2 {
        if let Some(reply) = pubsub::gate_resp2(&route, command, &view) {
            reply_to.deliver(reply);
            return (Control::Continue, Some(frame));
        }
    }
    // Someone monitors: the one check the request path makes for MONITOR.
    if shard.monitoring() {
        if let Some(refusal) = monitor::observe(shard, client, &route, command, &view) {
            reply_to.deliver(refusal);
            return (Control::Continue, Some(frame));
        }
    }
    if client.in_transaction() && route != Route::Local(Local::Reset) {
        transaction::queue(
            shard,
            client,
            route,
            command,
            frame.clone(),
            &view,
            reply_to,
        );
        return (Control::Continue, Some(frame));
    }
    // A client that watches keys sends what their master serves over its own connection.
    let reply_to = match client.session.watching() {
        false => reply_to,
        true => match session::forward(shard, client, &route, &frame, reply_to, started) {
            Some(reply_to) => reply_to,
            None => return (Control::Continue, Some(frame)),
        },
    };
    // Background writes: one flag read for a pool without them.
    let reply_to = match &shard.background_writes {
        None => reply_to,
        Some(writes) => background::acknowledge(writes, client, (&route, command), &view, reply_to),
    };
    let lane = identity.lane();
    let reads = replica::policy(shard, identity, &route, command);
    let outbound = |frame, reply_to, slot| {
        Outbound::new(frame, reply_to, slot, protocol, started)
            .on(lane)
            .reading(reads)
    };
    match route {
        Route::Keyed(_) | Route::AnyMaster => {
            let slot = match route {
                Route::Keyed(slot) => Some(slot),
                _ => None,
            };
            let send = |frame, reply_to| forward(shard, outbound(frame, reply_to, slot));
            return (Control::Continue, forward_as_is(frame, reply_to, send));
        }
        Route::Split(kind) => split(shard, kind, &view, outbound(Bytes::new(), reply_to, None)),
        Route::AllMasters(merge) => {
            broadcast(shard, merge, outbound(frame.clone(), reply_to, None))
        }
        Route::Dedicated(Dedicated::Watch, slot) => {
            session::watch(shard, client, slot, frame.clone(), reply_to, started)
        }
        Route::Dedicated(Dedicated::Blocking, slot) => blocked::start(
            shard,
            client,
            slot,
            command,
            frame.clone(),
            &view,
            reply_to,
            started,
        ),
        Route::Local(command) => {
            let control = local::answer(shard, client, command, &view, reply_to);
            return (control, Some(frame));
        }
        Route::Reject(rejection) => reply_to.deliver(rejection_reply(shard, rejection, &view)),
    }
    (Control::Continue, Some(frame))
}

/// Sends `frame` on with `send` as the request itself, its reply going to `reply_to`; gives the
/// frame back when the reply place will not get it with the reply (only a client's own does).
fn forward_as_is(
    frame: Bytes,
    reply_to: ReplyTo,
    send: impl FnOnce(Bytes, ReplyTo),
) -> Option<Bytes> {
    match reply_to {
        ReplyTo::Client { .. } => {
            send(frame, reply_to);
            None
        }
        _ => {
            send(frame.clone(), reply_to);
            Some(frame)
        }
    }
}

/// Sends a request to the master of its slot (or any master when it has none); a read that
/// follows a read policy, to the node the policy chooses.
pub fn forward(shard: &Rc<Shard>, out: Outbound) {
    if out.read_from != ReadFrom::Master {
        return replica::forward(shard, out);
    }
    match shard.node_for(out.slot) {
        Some(node) => node.send(shard, out),
        // A background write waits for a master (a failover); the rest is answered now.
        None => moves::park(shard, out),
    }
}

/// Splits a multi-key request by slot; `whole` is the request as a whole (its frame unused),
/// whose reply is the merge of the parts'.
fn split(shard: &Rc<Shard>, kind: SplitKind, args: &FrameArgs, whole: Outbound) {
    let plan = shard.placer.borrow().split(kind, args);
    if plan.parts.len() > 1 {
        Counters::add(&shard.counters().fragments, plan.parts.len() as u64);
    }
    let merged = SplitReply::new(
        whole.reply_to,
        MergeKind::Split(kind, plan.order),
        plan.parts.len(),
    );
    for (index, (slot, request)) in plan.parts.into_iter().enumerate() {
        let part = ReplyTo::Part {
            whole: merged.clone(),
            index,
        };
        let out = Outbound::new(request, part, Some(slot), whole.protocol, whole.sent);
        forward(shard, out.on(whole.lane).reading(whole.read_from));
    }
}

/// Sends `whole` to every master and merges their replies.
fn broadcast(shard: &Rc<Shard>, merge: Merge, whole: Outbound) {
    let nodes = shard.masters();
    if nodes.is_empty() {
        return whole.reply_to.deliver(shard.unserved());
    }
    let merged = SplitReply::new(whole.reply_to, MergeKind::All(merge), nodes.len());
    for (index, node) in nodes.into_iter().enumerate() {
        let part = ReplyTo::Part {
            whole: merged.clone(),
            index,
        };
        let out = Outbound::new(
            whole.request.clone(),
            part,
            None,
            whole.protocol,
            whole.sent,
        );
        node.send(shard, out.on(whole.lane));
    }
}

/// Acts on a redirect the backend at `from` answered to `out` with `reply`.
pub fn redirect(
    shard: &Rc<Shard>,
    from: &str,
    mut out: Outbound,
    redirect: Redirect<'_>,
    reply: &Bytes,
) {
    if out.redirects >= MAX_REDIRECTS {
        if redirect == Redirect::ClusterDown {
            // Still down after every retry: the client gets Redis's own words.
            return out.answer(reply.clone(), None);
        }
        let error = BackendError::TooManyRedirects {
            node: from.to_string(),
        };
        return out.fail(&error);
    }
    out.redirects += 1;
    match redirect {
        Redirect::Moved { slot, node } => {
            Counters::bump(&shard.counters().moved);
            let node = shard.slot_moved(slot, &resolve_node(node, from));
            out.asking = false;
            node.send(shard, out);
        }
        Redirect::Ask { node, .. } => {
            Counters::bump(&shard.counters().asked);
            let node = shard.node(&resolve_node(node, from));
            out.asking = true;
            node.send(shard, out);
        }
        Redirect::TryAgain => resend_later(shard, out, TRYAGAIN_DELAY),
        Redirect::ClusterDown => {
            shard.request_refresh();
            resend_later(shard, out, CLUSTERDOWN_DELAY);
        }
    }
}

/// Routes `out` again after `delay`. A background write's later requests could overtake it
/// meanwhile, so they wait for it ([`background::scatter`]); one that a reload's new server
/// list came before is failed instead ([`moves::unless_placed_before`]).
pub(super) fn resend_later(shard: &Rc<Shard>, mut out: Outbound, delay: Duration) {
    background::scatter(&out.reply_to);
    let shard = shard.clone();
    out.asking = false;
    glommio::spawn_local(async move {
        glommio::timer::sleep(delay).await;
        if let Some(out) = moves::unless_placed_before(&shard, out) {
            forward(&shard, out);
        }
    })
    .detach();
}

/// The error reply for a refused request, worded as Redis words it.
pub fn rejection_reply(shard: &Shard, rejection: Rejection, args: &FrameArgs) -> Bytes {
    let name = String::from_utf8_lossy(args.get(0));
    // Unknown to the table, but maybe known to a server newer than the table.
    let unknown = match rejection {
        Rejection::UnknownCommand => Some(name.to_string()),
        Rejection::UnknownSubcommand(command) => Some(format!(
            "{command}|{}",
            String::from_utf8_lossy(args.get(1))
        )),
        _ => None,
    };
    if let Some(newer) = unknown.filter(|name| shard.is_newer_command(name)) {
        return error_reply(&newer_command(&newer));
    }
    let text = match rejection {
        Rejection::UnknownCommand => {
            let mut shown = String::new();
            for i in 1..args.count() {
                if shown.len() >= 128 {
                    break;
                }
                let arg = String::from_utf8_lossy(args.get(i));
                let room = 128 - shown.len();
                let arg: String = arg.chars().take(room).collect();
                shown.push_str(&format!("'{arg}' "));
            }
            let name: String = name.chars().take(128).collect();
            format!("ERR unknown command '{name}', with args beginning with: {shown}")
        }
        Rejection::UnknownSubcommand(command) => {
            let sub: String = String::from_utf8_lossy(args.get(1))
                .chars()
                .take(128)
                .collect();
            let command = command.to_uppercase();
            format!("ERR unknown subcommand '{sub}'. Try {command} HELP.")
        }
        Rejection::WrongArity(command, None) => {
            format!("ERR wrong number of arguments for '{command}' command")
        }
        Rejection::WrongArity(command, Some(sub)) => {
            format!("ERR wrong number of arguments for '{command}|{sub}' command")
        }
        Rejection::CrossSlot => return Bytes::from_static(encode::CROSSSLOT),
        Rejection::CrossServer => static_pool::CROSS_SERVER.to_string(),
        Rejection::BadArgument(text) => text.to_string(),
        Rejection::Unsupported(reason) => {
            let name = name.to_lowercase();
            format!("ERR percore: '{name}' is not supported ({reason})")
        }
    };
    error_reply(&text)
}

/// The refusal of a command the cluster's server knows and percore's table does not.
fn newer_command(name: &str) -> String {
    format!(
        "ERR percore: '{}' is newer than percore's command table (generated from redis-server \
         {GENERATED_FROM}), so percore cannot tell where its keys are; regenerate the table \
         from this server with bench-scripts/gen-command-table.py",
        name.to_lowercase()
    )
}

/// An error reply with the given text (without the leading `-`).
pub fn error_reply(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 3);
    encode::error(&mut out, text);
    out.freeze()
}
