//! `preconnect: true`: the core listens for the pool's clients only once its shared
//! connections to every server are up (connected, authenticated, their database selected),
//! so the first request of the first client is not the one that waits for a connect and a
//! handshake. Every pool opens those connections at start and keeps them either way (remade
//! with backoff when they fail); this only orders the listen after them.
//!
//! The wait is bounded: a server that cannot be reached does not keep the pool from serving
//! the others (or from answering errors that say why).

use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::shard::Shard;

/// Longest a core waits for its connections before it listens anyway: as long as it waits
/// for a first topology, and for the same reason (a client served late beats one refused).
const PRECONNECT_WAIT: Duration = Duration::from_secs(2);
/// How often the wait looks at the connections: a connect on loopback takes well under this.
const POLL: Duration = Duration::from_millis(5);

/// Waits until every shared connection of this core is up, or [`PRECONNECT_WAIT`].
pub async fn wait(shard: &Shard) {
    let started = Instant::now();
    loop {
        let (up, all) = shard.pool.connections_up();
        if all > 0 && up == all {
            info!(
                core = shard.id(),
                pool = shard.pool_name(),
                connections = all,
                waited_ms = started.elapsed().as_millis() as u64,
                "preconnected"
            );
            return;
        }
        if started.elapsed() >= PRECONNECT_WAIT {
            warn!(
                core = shard.id(),
                pool = shard.pool_name(),
                up,
                connections = all,
                "not every server connection is up; listening anyway"
            );
            return;
        }
        glommio::timer::sleep(POLL).await;
    }
}
