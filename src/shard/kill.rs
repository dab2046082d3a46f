//! `SCRIPT KILL` and `FUNCTION KILL`, as the cluster as a whole would answer: sent to every
//! master, OK if any of them killed a script, else the masters' own NOTBUSY.
//!
//! Each master is asked on a connection of its own, opened for the kill and closed after it,
//! not on the shared pipelined ones: a node that runs a busy script stops reading the
//! connection the script came from, and that may well be this core's shared connection, where
//! a kill queued behind the script would only be read once the script had ended by itself.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::net::connect_node;
use crate::resp::scan::reply_len;
use crate::resp::{encode, Protocol};

use super::dispatch::error_reply;
use super::reply_to::ReplyTo;
use super::Shard;

/// The reply Redis Cluster gives when no master is known.
const CLUSTERDOWN: &[u8] = b"-CLUSTERDOWN Hash slot not served\r\n";

/// Bytes a read of the reply asks for at least; kill replies are one short line.
const READ_SIZE: usize = 512;

/// Largest reply read on a kill connection; anything longer is not a kill's reply.
const MAX_REPLY: usize = 64 * 1024;

/// Sends `request` (SCRIPT KILL or FUNCTION KILL) to every master, each on a fresh
/// connection, and delivers the merged reply.
pub fn kill(shard: &Rc<Shard>, request: Bytes, reply_to: ReplyTo) {
    let shard = shard.clone();
    glommio::spawn_local(async move {
        let masters = shard.masters();
        if masters.is_empty() {
            return reply_to.deliver(Bytes::from_static(CLUSTERDOWN));
        }
        // All at once: a cluster's masters are killed in the time of the slowest.
        let asks: Vec<_> = masters
            .iter()
            .map(|node| {
                let (shard, addr, request) = (shard.clone(), node.addr.clone(), request.clone());
                glommio::spawn_local(async move { ask_alone(&shard, &addr, &request).await })
            })
            .collect();
        let mut replies = Vec::with_capacity(asks.len());
        for ask in asks {
            replies.push(ask.await);
        }
        reply_to.deliver(merge_kill(&replies));
    })
    .detach();
}

/// OK if any master killed a script; else the first error other than NOTBUSY (UNKILLABLE, a
/// master that could not be asked); else NOTBUSY, as every master said.
fn merge_kill(replies: &[Bytes]) -> Bytes {
    if replies.iter().any(|r| r.as_ref() == encode::OK) {
        return Bytes::from_static(encode::OK);
    }
    replies
        .iter()
        .find(|r| !r.starts_with(b"-NOTBUSY"))
        .or(replies.first())
        .cloned()
        .unwrap_or_else(|| Bytes::from_static(CLUSTERDOWN))
}

/// Sends `request` to the node at `addr` on a connection of its own (after the handshake
/// `--backend-password` needs) and returns its reply, or an error reply naming the node;
/// bounded by `--backend-timeout`.
async fn ask_alone(shard: &Shard, addr: &str, request: &[u8]) -> Bytes {
    let config = shard.config();
    let work = async {
        let tls = config.backend_tls.as_ref();
        let stream = connect_node(shard.uring(), addr, config.backend_timeout, tls)
            .await
            .map_err(|e| e.to_string())?;
        let mut wire = BytesMut::new();
        let auth = config.backend_auth.as_ref();
        let credentials = auth.map(|a| (a.user.as_deref(), a.password.as_str()));
        let mut handshakes =
            usize::from(encode::handshake(&mut wire, Protocol::Resp2, credentials));
        wire.extend_from_slice(request);
        stream.write_all(&wire).await.map_err(|e| e.to_string())?;
        let mut buf = BytesMut::new();
        loop {
            while let Some(len) = reply_len(&buf).map_err(|e| e.to_string())? {
                let reply = buf.split_to(len).freeze();
                if handshakes == 0 {
                    return Ok(reply);
                }
                if reply.first() == Some(&b'-') {
                    let text = String::from_utf8_lossy(&reply);
                    return Err(format!(
                        "refused percore's credentials: {}",
                        text.trim_end()
                    ));
                }
                handshakes -= 1;
            }
            if buf.len() > MAX_REPLY {
                return Err("reply too large".to_string());
            }
            let read = stream.read_into(&mut buf, 0, READ_SIZE).await;
            if read.map_err(|e| e.to_string())? == 0 {
                return Err("connection closed".to_string());
            }
        }
    };
    let result = glommio::timer::timeout(config.backend_timeout, async { Ok(work.await) })
        .await
        .unwrap_or_else(|_| Err("timed out".to_string()));
    result.unwrap_or_else(|why| error_reply(&format!("ERR percore: node {addr}: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    #[test]
    fn ok_if_any_killed_else_the_worst_error() {
        let notbusy = b("-NOTBUSY No scripts in execution right now.\r\n");
        let unkillable = b("-UNKILLABLE Sorry the script already executed write commands\r\n");
        let cases: &[(&[Bytes], Bytes)] = &[
            (
                &[notbusy.clone(), b("+OK\r\n"), notbusy.clone()],
                b("+OK\r\n"),
            ),
            (&[notbusy.clone(), notbusy.clone()], notbusy.clone()),
            (&[notbusy.clone(), unkillable.clone()], unkillable.clone()),
            (&[unkillable.clone(), b("+OK\r\n")], b("+OK\r\n")),
        ];
        for (replies, expected) in cases {
            assert_eq!(merge_kill(replies), *expected, "{replies:?}");
        }
    }
}
