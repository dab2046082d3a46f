//! The proxy's clients as `CLIENT INFO` and `CLIENT LIST` show them: one line per client in
//! Redis's field format, so tools that parse Redis's (redis-cli, client libraries, operators'
//! scripts) read percore's too.
//!
//! Fields percore has no equivalent for (query buffer sizes, database other than 0) are shown
//! as a fresh Redis client would show them; the output fields are the client's own reply
//! queue, `flags=P`, `sub`, `psub`, `ssub` its subscriptions, and `flags=r` a READONLY client.

use std::fmt::Write;
use std::time::Instant;

use crate::control::mesh::{KillFilter, ListFilter};
use crate::net::Endpoint;

use super::client::ClientState;
use super::Shard;

/// One client's line, without the trailing newline Redis adds.
pub fn describe(shard: &Shard, client: &ClientState) -> String {
    let identity = &client.identity;
    let now = Instant::now();
    let addr = |a: &Option<Endpoint>| a.as_ref().map(Endpoint::to_string).unwrap_or_default();
    let text = |b: Option<bytes::Bytes>| {
        b.map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let (lib_name, lib_ver) = identity.library();
    let users = &shard.config().users;
    let user = identity
        .user()
        .map_or("default", |user| users.get(user).name.as_str());
    let (queued, unwritten) = client.output();
    let subs = client.pubsub.counts();
    let mut line = String::with_capacity(320);
    let _ = write!(
        line,
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} \
         multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll={} omem={} \
         tot-mem={} events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
        identity.id,
        addr(&identity.peer),
        addr(&identity.local),
        identity.fd,
        text(identity.name()),
        now.saturating_duration_since(identity.created).as_secs(),
        now.saturating_duration_since(identity.last_active())
            .as_secs(),
        flags(shard, client),
        super::sidecar::select::db_of(shard, client),
        subs[0],
        subs[1],
        subs[2],
        queued,
        unwritten,
        unwritten,
        identity.last_command_name(),
        user,
        identity.protocol().version(),
        text(lib_name),
        text(lib_ver),
    );
    line.push('\n');
    line
}

/// CLIENT LIST's flags, in Redis's order: O a monitor, P a subscriber, U over a Unix
/// socket, r READONLY; N none of them.
fn flags(shard: &Shard, client: &ClientState) -> String {
    let identity = &client.identity;
    let mut flags = String::with_capacity(4);
    let unix = matches!(identity.local, Some(Endpoint::Unix(_)));
    match (shard.is_monitor(identity.id), client.pubsub.is_active()) {
        (true, _) => flags.push('O'),
        (false, true) => flags.push('P'),
        (false, false) => {}
    }
    if unix {
        flags.push('U');
    }
    if identity.reads_replicas() {
        flags.push('r');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    flags
}

/// Whether `client` is one the filter names.
fn matches(filter: &KillFilter, shard: &Shard, client: &ClientState) -> bool {
    let identity = &client.identity;
    let addr = |a: &Option<Endpoint>| a.as_ref().map(Endpoint::to_string);
    let users = &shard.config().users;
    let user = identity.user().map(|u| users.get(u).name.as_str());
    !filter.none
        && filter
            .subscribed
            .is_none_or(|s| s == client.pubsub.is_active())
        && filter.skip != Some(identity.id)
        && filter.id.is_none_or(|id| id == identity.id)
        && filter
            .addr
            .as_ref()
            .is_none_or(|a| addr(&identity.peer).as_ref() == Some(a))
        && filter
            .laddr
            .as_ref()
            .is_none_or(|a| addr(&identity.local).as_ref() == Some(a))
        && filter.user.as_deref().is_none_or(|u| user == Some(u))
        && filter.max_age.is_none_or(|age| {
            Instant::now()
                .saturating_duration_since(identity.created)
                .as_secs()
                > age
        })
}

/// This core's clients as `CLIENT LIST` shows them.
pub fn list(shard: &Shard, filter: &ListFilter) -> String {
    if filter.none {
        return String::new();
    }
    let mut clients: Vec<_> = shard.open_clients();
    clients.sort_by_key(|c| c.identity.id);
    let mut text = String::new();
    for client in clients {
        if filter
            .ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&client.identity.id))
            && filter
                .subscribed
                .is_none_or(|s| s == client.pubsub.is_active())
        {
            text.push_str(&describe(shard, &client));
        }
    }
    text
}

/// Closes this core's clients that `filter` matches; returns how many.
pub fn kill(shard: &Shard, filter: &KillFilter) -> u64 {
    let mut killed = 0;
    for client in shard.open_clients() {
        if matches(filter, shard, &client) {
            killed += 1;
            if client.identity.id == filter.asker {
                // As Redis does for itself: the reply to CLIENT KILL goes out first.
                client.close_after_replies();
            } else {
                client.kill();
            }
        }
    }
    killed
}
