//! The watcher's subscriptions: one to each Sentinel, since only the Sentinel that leads a
//! failover announces its steps, and any of them may lead. Each follows three events of the
//! pool's masters ([`wire::Event`]): a promotion starting (the server is held: see the
//! watcher), a failover given up, and a failover ended (`+switch-master`). Every event, and
//! every new subscription (one may have been missed while there was none), has the watcher ask
//! the Sentinels at once.

use std::rc::Rc;
use std::time::Instant;

use bytes::BytesMut;
use tracing::{debug, info};

use super::wire::{self, Event, SentinelConn, SentinelError};
use super::{Heard, Watcher};
use crate::resp::encode;

/// Holds a subscription at `sentinel`, remade after every failure, forever.
pub(super) async fn listen(watcher: Rc<Watcher>, sentinel: String) {
    let mut backoff = super::MIN_BACKOFF;
    let sentinel = sentinel.as_str();
    loop {
        let (subscribed, error) = subscribe(&watcher, sentinel).await;
        if subscribed {
            backoff = super::MIN_BACKOFF;
        }
        let pool = &watcher.config.pool;
        debug!(pool, sentinel, %error, "Sentinel subscription ended");
        glommio::timer::sleep(backoff).await;
        backoff = (backoff * 2).min(super::MAX_BACKOFF);
    }
}

/// Subscribes at `sentinel` and follows its events until the connection fails; whether it got
/// as far as subscribing, and why it ended.
async fn subscribe(watcher: &Watcher, sentinel: &str) -> (bool, SentinelError) {
    let auth = watcher.config.auth.as_ref();
    let timeout = watcher.timeout;
    let mut conn = match SentinelConn::open(&watcher.uring, sentinel, auth, timeout).await {
        Ok(conn) => conn,
        Err(error) => return (false, error),
    };
    let mut request = BytesMut::new();
    let confirmations = wire::subscribe(&mut request);
    if let Err(error) = conn.send(&request).await {
        return (false, error);
    }
    for _ in 0..confirmations {
        if let Err(error) = wire::within(timeout, conn.reply()).await {
            return (false, error);
        }
    }
    debug!(
        pool = watcher.config.pool,
        sentinel, "subscribed to failover events"
    );
    watcher.wanted.notify();
    (true, follow(watcher, sentinel, &mut conn).await)
}

/// Reads a subscription's messages until it fails. Quiet for an interval, it is asked for a
/// PING, which must be answered in time: a Sentinel gone without closing the connection is
/// let go, and subscribed to again later.
async fn follow(watcher: &Watcher, sentinel: &str, conn: &mut SentinelConn) -> SentinelError {
    let mut pinged = false;
    loop {
        let wait = if pinged {
            watcher.timeout
        } else {
            watcher.interval
        };
        let message = match wire::within(wait, conn.reply()).await {
            Ok(message) => message,
            Err(SentinelError::TimedOut) if !pinged => {
                let mut ping = BytesMut::new();
                encode::command(&mut ping, [&b"PING"[..]]);
                if let Err(error) = conn.send(&ping).await {
                    return error;
                }
                pinged = true;
                continue;
            }
            Err(error) => return error,
        };
        pinged = false;
        if let Some(event) = wire::read_event(&message) {
            heard(watcher, sentinel, event);
        }
    }
}

/// Hands an event about one of the pool's masters to the watcher.
fn heard(watcher: &Watcher, sentinel: &str, event: Event) {
    let pool = &watcher.config.pool;
    let masters = &watcher.config.masters;
    let server = |name: &str| masters.iter().position(|m| m == name);
    let note = match &event {
        Event::Switch(switch) => {
            let Some(_) = server(&switch.name) else {
                return;
            };
            let (old, new) = (&switch.from, &switch.to);
            info!(
                pool,
                server = switch.name,
                old,
                new,
                sentinel,
                "Sentinel announced a failover"
            );
            None
        }
        Event::Promoting(master) => {
            let Some(index) = server(&master.name) else {
                return;
            };
            let (name, old) = (&master.name, &master.addr);
            info!(
                pool,
                server = name,
                old,
                sentinel,
                "Sentinel promotes a replica"
            );
            Some(Heard::Promoting(index, master.addr.clone(), Instant::now()))
        }
        Event::Aborted(master) => {
            let name = &master.name;
            let Some(index) = server(name) else {
                return;
            };
            info!(pool, server = name, sentinel, "Sentinel gave up a failover");
            Some(Heard::Aborted(index))
        }
    };
    if let Some(note) = note {
        watcher.heard.borrow_mut().push(note);
    }
    watcher.wanted.notify();
}
