//! The greeting of a backend connection: what it sends before any request (AUTH or HELLO 3,
//! then a static pool's SELECT), one request at a time, each reply checked before the next
//! is sent, so a refusal is seen for what it is and nothing of a client's ever runs on a
//! connection the node did not accept.

use std::time::Duration;

use bytes::Bytes;

use crate::error::BackendError;
use crate::net::{FrameReader, Stream};
use crate::resp::scan::ReplyScanner;

/// First read of a handshake reply: HELLO 3's map is a few hundred bytes.
const HANDSHAKE_READ: usize = 1024;

/// Sends the connection's handshake and then its SELECT, those it has, each waiting for the
/// node to accept it. Nothing else is written before: a request sent behind a refused AUTH
/// could still run on a node that has no password, while its client is told it failed, and
/// one sent behind a refused SELECT would run in another database.
pub(super) async fn greet<'a>(
    node: &str,
    requests: impl Iterator<Item = &'a Bytes>,
    stream: &Stream,
    timeout: Duration,
) -> Result<(), BackendError> {
    for request in requests {
        exchange(node, stream, request, timeout).await?;
    }
    Ok(())
}

/// Sends one request of the greeting and checks that the node accepted it.
async fn exchange(
    node: &str,
    stream: &Stream,
    handshake: &Bytes,
    timeout: Duration,
) -> Result<(), BackendError> {
    let node = || node.to_string();
    let lost = |reason: String| BackendError::Lost {
        node: node(),
        reason,
    };
    let exchange = async {
        stream
            .write_all(handshake)
            .await
            .map_err(|e| lost(e.to_string()))?;
        let mut reader = FrameReader::new(HANDSHAKE_READ, HANDSHAKE_READ);
        let mut scanner = ReplyScanner::new();
        let reply = reader
            .next(stream, |buf| scanner.scan(buf))
            .await
            .map_err(|e| lost(e.to_string()))?;
        if !reader.is_drained() {
            return Err(lost("more than one reply to the handshake".into()));
        }
        if reply.first() == Some(&b'-') {
            let reason = String::from_utf8_lossy(&reply[1..reply.len() - 2]).into_owned();
            return Err(BackendError::Rejected {
                node: node(),
                reason,
            });
        }
        Ok(())
    };
    glommio::timer::timeout(timeout, async { Ok(exchange.await) })
        .await
        .unwrap_or_else(|_| Err(BackendError::Timeout { node: node() }))
}
