//! `SELECT` through percore. In a pool of one standalone server a client may select any of the
//! server's databases (`databases`, Redis's 16 by default): percore answers `+OK` itself, after
//! Redis's own checks, and only records the client's database in its identity; the client's
//! requests then take that database's connections (opened on first use, each selected once,
//! at its handshake), so a SELECT costs the server nothing and no connection is ever sent one
//! it does not need. Selecting the pool's own database (`redis_db`) puts the client back on
//! the pool's shared connections.
//!
//! A pool of several servers keeps no connections per database and refuses any other than its
//! `redis_db`; a cluster has only database 0 ([`static_pool::select`]).

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;

use crate::command::keys::{Args, FrameArgs};
use crate::command::static_pool;
use crate::resp::{encode, Protocol};

use crate::shard::backend::{Lane, Outbound};
use crate::shard::client::ClientState;
use crate::shard::dispatch::error_reply;
use crate::shard::pool::Node;
use crate::shard::reply_to::{ReplyTo, ReplyWaiter};
use crate::shard::Shard;

/// The reply to `SELECT index`, the client moved to that database if it may go there.
pub fn answer(shard: &Shard, client: &ClientState, args: &FrameArgs) -> Bytes {
    let config = shard.config();
    let requested = args.get(1);
    match (config.selectable_databases(), &config.servers) {
        (Some(databases), _) => match static_pool::select_one_server(requested, databases) {
            Ok(db) => {
                let own = u32::from(db) == config.database();
                client.identity.select((!own).then_some(db));
                Bytes::from_static(encode::OK)
            }
            Err(refusal) => error_reply(refusal),
        },
        (None, Some(pool)) => match static_pool::select(requested, pool.db) {
            Ok(()) => Bytes::from_static(encode::OK),
            Err(refusal) => error_reply(&refusal),
        },
        (None, None) if requested == b"0" => Bytes::from_static(encode::OK),
        (None, None) => error_reply("ERR SELECT is not allowed in cluster mode"),
    }
}

/// The database a client is on, as CLIENT LIST and MONITOR show it.
pub fn db_of(shard: &Shard, client: &ClientState) -> u32 {
    client
        .identity
        .db()
        .map_or(shard.config().database(), u32::from)
}

/// Sends `request` to `node` for a client on `lane` (its database's connection, say: SCAN and
/// RANDOMKEY see the client's database) and waits for the reply, which always comes (an
/// error if the node fails; bounded by `--backend-timeout`).
pub async fn ask_on(
    shard: &Rc<Shard>,
    node: &Node,
    request: Bytes,
    protocol: Protocol,
    lane: Lane,
) -> Bytes {
    let waiter = Rc::new(ReplyWaiter::default());
    let reply_to = ReplyTo::Waiter(waiter.clone());
    let out = Outbound::new(request, reply_to, None, protocol, Instant::now());
    node.send(shard, out.on(lane));
    waiter.reply().await
}
