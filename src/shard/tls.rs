//! Client connections of a pool with `tls:`: the handshake runs first, on the connection's
//! own task, then the client is served exactly as a plain one (`client::serve`), its stream
//! now decrypting on read and encrypting on send ([`crate::net`]'s TLS).
//!
//! A failed handshake (a plaintext client, an untrusted or missing client certificate, a
//! protocol or cipher the pool does not allow, a client that stalls) closes that connection
//! alone, with one log line naming the peer and the cause; nothing else of the core waits for
//! a handshake. Pools without TLS never come here: the accept loop checks `tls` once per
//! connection.

use std::io;
use std::rc::Rc;

use tracing::warn;

use crate::config::tls::TLS_HANDSHAKE_TIMEOUT;
use crate::net::{tls_accept, Stream};
use crate::shutdown;

use super::{client, Shard};

/// Runs the handshake on a client of a TLS pool, then serves it, or, with `refusal` (the pool
/// is full), sends that over TLS and closes.
pub async fn serve(shard: Rc<Shard>, stream: Stream, refusal: Option<&'static [u8]>) {
    // The pool's TLS when the client connected (a reload changes the next clients'): the
    // configuration itself is not held for the connection's life.
    let Some(tls) = shard.config().tls.as_ref().map(|tls| tls.config.clone()) else {
        return client::serve(shard, stream).await;
    };
    let peer = stream.peer_addr();
    // A client in its handshake holds a socket and the session's buffers: it counts towards
    // max_clients as a served one does (client::serve counts it again once it is served).
    let clients = &shard.counters().clients;
    clients.set(clients.get() + 1);
    // A handshake still running when the process stops is dropped, not waited for by drain.
    let stopping = async {
        shutdown::wait().await;
        Err(io::Error::other("percore is stopping"))
    };
    let accepting = tls_accept(stream, &tls, TLS_HANDSHAKE_TIMEOUT);
    let handshake = futures_lite::future::or(accepting, stopping).await;
    clients.set(clients.get() - 1);
    match handshake {
        Ok(stream) => match refusal {
            Some(reply) => client::refuse(stream, reply).await,
            None => client::serve(shard, stream).await,
        },
        Err(error) => warn!(
            core = shard.id,
            pool = shard.pool_name(),
            peer = ?peer,
            %error,
            "TLS handshake failed, closing the client"
        ),
    }
}
