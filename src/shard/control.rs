//! How a core takes part in the control plane: it answers the messages other cores send it
//! (a new topology, a refresh request, a stats request), and on the refresher core it runs
//! the refresher and publishes each of its updates to every core, itself included.
//!
//! The mesh and the refresher know nothing of shards; this is where a shard plugs into them.

use std::rc::Rc;
use std::sync::Arc;

use glommio::channels::channel_mesh::Receivers;
use tracing::{debug, warn};

use crate::control::mesh::{Answer, Message, Notice, Question};
use crate::control::refresh::{Refresher, Update};

use super::pause::Pause;
use super::{clients, Shard};

/// Spawns one task per peer that handles the messages it sends.
pub(super) fn spawn_receivers(shard: &Rc<Shard>, mut receivers: Receivers<Message>) {
    for (peer, receiver) in receivers.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(message) = receiver.recv().await {
                handle(&shard, message).await;
            }
            debug!(core = shard.id, peer, "mesh channel closed");
        })
        .detach();
    }
}

async fn handle(shard: &Rc<Shard>, message: Message) {
    match message {
        Message::Topology(topology) => shard.apply_topology(&topology),
        Message::NewerCommands(names) => *shard.newer_commands.borrow_mut() = names,
        Message::RefreshRequest => shard.refresh_wanted.notify(),
        Message::Ask { from, id, question } => {
            let answer = answer(shard, question);
            let core = shard.id;
            shard
                .mesh
                .send(from, Message::Answer { id, core, answer })
                .await;
        }
        Message::Answer { id, core, answer } => shard.mesh.deliver(id, core, answer),
    }
}

/// This core's answer to a gather's question.
pub(super) fn answer(shard: &Rc<Shard>, question: Question) -> Answer {
    match question {
        Question::Stats { reset } => Answer::Stats(Box::new(shard.stats(reset))),
        Question::ClientList(filter) => Answer::Text(clients::list(shard, &filter)),
        Question::ClientKill(filter) => Answer::Count(clients::kill(shard, &filter)),
        Question::BlockedOn(id) => {
            Answer::BlockedOn(shard.client(id).and_then(|c| c.session.blocked_on()))
        }
        Question::Heed(notice) => {
            heed(shard, notice);
            Answer::Done
        }
    }
}

/// Acts on a notice.
fn heed(shard: &Rc<Shard>, notice: Notice) {
    match notice {
        Notice::ResetStats => shard.metrics.reset(),
        Notice::Pause { until, all } => {
            let pause = Pause { until, all };
            let merged = shard.pause.get().map_or(pause, |old| old.merge(pause));
            shard.pause.set(Some(merged));
        }
        Notice::Unpause => shard.pause.set(None),
    }
}

/// Starts the topology refresher on this core.
pub(super) fn spawn_refresher(shard: &Rc<Shard>) {
    let refresher = Refresher {
        uring: shard.uring.clone(),
        seeds: &shard.config.seeds,
        timeout: shard.config.backend_timeout,
        interval: shard.config.refresh_interval,
        wanted: shard.refresh_wanted.clone(),
        auth: shard.config.backend_auth.as_ref(),
    };
    let shard = shard.clone();
    glommio::spawn_local(async move {
        refresher
            .run(|update| {
                let shard = shard.clone();
                async move { publish(&shard, update).await }
            })
            .await
    })
    .detach();
}

/// Sends the refresher's update to every core, this one included.
async fn publish(shard: &Rc<Shard>, update: Update) {
    for core in 0..shard.mesh.cores() {
        let message = match &update {
            Update::Topology(topology) => Message::Topology(Arc::clone(topology)),
            Update::NewerCommands(names) => Message::NewerCommands(Arc::clone(names)),
        };
        if core == shard.id {
            handle(shard, message).await;
        } else if !shard.mesh.send(core, message).await {
            warn!(core, "could not send the refresher's update to a core");
        }
    }
}
