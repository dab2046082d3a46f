//! The cluster percore presents to cluster-mode clients, as this core answers it:
//! `CLUSTER SLOTS | SHARDS | NODES | INFO | MYID` from the core's own copy of the
//! [`Presence`], so answering takes nothing from other cores or the network.
//!
//! The copy starts as this percore alone. With `--proxy-peers`, the refresher core runs the
//! fleet health check (`control::peers`) and tells every core each change of the live set with
//! a mesh notice; each core then rebuilds its copy (`adopt`).

use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use crate::cluster::presence::Presence;
use crate::command::keys::{Args, FrameArgs};
use crate::config::Config;
use crate::control::mesh::Notice;
use crate::control::peers::PeerWatch;
use crate::resp::Protocol;

use super::Shard;

/// The presence of this percore before any peer is known to be live.
pub(super) fn alone(config: &Config) -> Presence {
    Presence::new(&config.announce_addr(), &[])
}

/// Answers `CLUSTER SLOTS | SHARDS | NODES | INFO | MYID` (routing sends nothing else here).
pub(super) fn answer(shard: &Shard, protocol: Protocol, args: &FrameArgs) -> Bytes {
    let presence = shard.presence.borrow();
    let sub = args.get(1).to_ascii_lowercase();
    match sub.as_slice() {
        b"slots" => presence.slots_reply(protocol),
        b"shards" => presence.shards_reply(protocol),
        b"nodes" => presence.nodes_reply(protocol),
        b"info" => presence.info_reply(shard.slot_map.borrow().covered_slots(), protocol),
        _ => presence.myid_reply(),
    }
}

/// Takes `live` as the peers advertised with this percore, on this core.
pub(super) fn adopt(shard: &Shard, live: &[String]) {
    let presence = shard.presence.borrow().with_live(live);
    *shard.presence.borrow_mut() = presence;
}

/// Starts the fleet health check on this core, when there are peers to watch; each change of
/// the live set goes to every core.
pub(super) fn spawn_peer_watch(shard: &Rc<Shard>) {
    let peers = shard.config().other_peers();
    if peers.is_empty() {
        return;
    }
    let watch = PeerWatch {
        uring: shard.uring.clone(),
        peers,
    };
    let task = glommio::spawn_local({
        let shard = shard.clone();
        async move {
            watch
                .run(|live: Arc<[String]>| {
                    let shard = shard.clone();
                    async move { shard.tell_every_core(Notice::Peers(live)).await }
                })
                .await
        }
    });
    shard.keep(task);
}
