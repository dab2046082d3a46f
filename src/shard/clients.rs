//! The proxy's clients as `CLIENT INFO` and `CLIENT LIST` show them: one line per client in
//! Redis's field format, so tools that parse Redis's (redis-cli, client libraries, operators'
//! scripts) read percore's too.
//!
//! Fields percore has no equivalent for (query buffer sizes, database other than 0, pub/sub)
//! are shown as a fresh Redis client would show them; the output fields are the client's own
//! reply queue.

use std::fmt::Write;
use std::time::Instant;

use super::client::ClientState;
use super::Shard;

/// One client's line, without the trailing newline Redis adds.
pub fn describe(shard: &Shard, client: &ClientState) -> String {
    let identity = &client.identity;
    let now = Instant::now();
    let addr = |a: Option<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
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
    let mut line = String::with_capacity(320);
    let _ =
        write!(
        line,
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 \
         multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll={} omem={} \
         tot-mem={} events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
        identity.id,
        addr(identity.peer),
        addr(identity.local),
        identity.fd,
        text(identity.name()),
        now.saturating_duration_since(identity.created).as_secs(),
        now.saturating_duration_since(identity.last_active())
            .as_secs(),
        // O: a monitor, as Redis marks it.
        if shard.is_monitor(identity.id) { "O" } else { "N" },
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
