//! Commands about the client's own connection, answered by the proxy: HELLO (protocol, login,
//! name), AUTH, ACL WHOAMI. Redis's own replies and error texts, encoded in the protocol the
//! client speaks. CLIENT is in [`super::client_command`].

use bytes::{Bytes, BytesMut};

use crate::auth::AuthError;
use crate::command::keys::{Args, FrameArgs};
use crate::metrics::Counters;
use crate::resp::encode;
use crate::resp::line::parse_int;
use crate::resp::Protocol;

use super::client::ClientState;
use super::dispatch::error_reply;
use super::Shard;

/// Redis's reply to HELLO without AUTH before authentication.
const NOAUTH_HELLO: &str = "NOAUTH HELLO must be called with the client already authenticated, \
     otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and \
     select the RESP protocol version at the same time";

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`, checked in Redis's
/// order: version, options, protocol, login, name.
pub fn hello(shard: &Shard, client: &ClientState, args: &FrameArgs) -> Bytes {
    let identity = &client.identity;
    let mut protocol = identity.protocol();
    if args.count() >= 2 {
        match parse_int(args.get(1)) {
            Some(2) => protocol = Protocol::Resp2,
            Some(3) => protocol = Protocol::Resp3,
            Some(_) => {}
            None => return error_reply("ERR Protocol version is not an integer or out of range"),
        }
    }
    let (mut auth, mut name) = (None, None);
    let mut at = 2;
    while at < args.count() {
        let option = args.get(at);
        let left = args.count() - at - 1;
        if option.eq_ignore_ascii_case(b"auth") && left >= 2 {
            auth = Some((args.get(at + 1), args.get(at + 2)));
            at += 3;
        } else if option.eq_ignore_ascii_case(b"setname") && left >= 1 {
            name = Some(args.get(at + 1));
            at += 2;
        } else {
            let option = String::from_utf8_lossy(option);
            return error_reply(&format!("ERR Syntax error in HELLO option '{option}'"));
        }
    }
    if args.count() >= 2 && !matches!(parse_int(args.get(1)), Some(2 | 3)) {
        return error_reply("NOPROTO unsupported protocol version");
    }
    if let Some((user, password)) = auth {
        if let Err(error) = log_in(shard, client, Some(user), password) {
            return error_reply(&error.to_string());
        }
    }
    if identity.user().is_none() {
        return error_reply(NOAUTH_HELLO);
    }
    if let Some(name) = name {
        if let Err(reply) = set_name(client, name) {
            return reply;
        }
    }
    identity.set_protocol(protocol);
    // A static pool's servers are standalone, and so is what it presents.
    let mode = match shard.config().servers {
        Some(_) => "standalone",
        None => "cluster",
    };
    hello_reply(identity.id, protocol, mode)
}

/// The map HELLO answers with, as Redis 7 sends it (`mode` is "cluster" or "standalone").
fn hello_reply(id: u64, protocol: Protocol, mode: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(160);
    encode::map_header(&mut out, protocol, 7);
    for (key, value) in [("server", "redis"), ("version", "7.0.15")] {
        encode::bulk(&mut out, key.as_bytes());
        encode::bulk(&mut out, value.as_bytes());
    }
    encode::bulk(&mut out, b"proto");
    encode::integer(&mut out, protocol.version());
    encode::bulk(&mut out, b"id");
    encode::integer(&mut out, id as i64);
    for (key, value) in [("mode", mode), ("role", "master")] {
        encode::bulk(&mut out, key.as_bytes());
        encode::bulk(&mut out, value.as_bytes());
    }
    encode::bulk(&mut out, b"modules");
    encode::header(&mut out, b'*', 0);
    out.freeze()
}

/// `AUTH [username] password`.
pub fn auth(shard: &Shard, client: &ClientState, args: &FrameArgs) -> Bytes {
    let result = match args.count() {
        2 => log_in(shard, client, None, args.get(1)),
        3 => log_in(shard, client, Some(args.get(1)), args.get(2)),
        _ => return error_reply("ERR syntax error"),
    };
    match result {
        Ok(()) => Bytes::from_static(encode::OK),
        Err(error) => error_reply(&error.to_string()),
    }
}

/// Logs the connection in, counting failures for PROXY INFO.
fn log_in(
    shard: &Shard,
    client: &ClientState,
    user: Option<&[u8]>,
    password: &[u8],
) -> Result<(), AuthError> {
    let users = &shard.config().users;
    match users.authenticate(user, password) {
        Ok(user) => {
            client.identity.log_in(users, user);
            Ok(())
        }
        Err(error) => {
            Counters::bump(&shard.counters().auth_failures);
            Err(error)
        }
    }
}

/// `ACL WHOAMI`.
pub fn whoami(shard: &Shard, client: &ClientState) -> Bytes {
    let users = &shard.config().users;
    match client.identity.user() {
        Some(user) => bulk(users.get(user).name.as_bytes()),
        None => error_reply("NOAUTH Authentication required."),
    }
}

/// `CLIENT SETNAME` (and HELLO's SETNAME): an empty name clears it.
pub(super) fn set_name(client: &ClientState, name: &[u8]) -> Result<Bytes, Bytes> {
    if !printable_without_spaces(name) {
        return Err(error_reply(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    let name = (!name.is_empty()).then(|| Bytes::copy_from_slice(name));
    client.identity.set_name(name);
    Ok(Bytes::from_static(encode::OK))
}

/// Redis's rule for names: printable ASCII, no spaces.
pub(super) fn printable_without_spaces(value: &[u8]) -> bool {
    value.iter().all(|&b| b > b' ' && b <= b'~')
}

pub(super) fn bulk(value: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(value.len() + 16);
    encode::bulk(&mut out, value);
    out.freeze()
}

pub(super) fn integer(value: i64) -> Bytes {
    let mut out = BytesMut::with_capacity(24);
    encode::integer(&mut out, value);
    out.freeze()
}

pub(super) fn null(protocol: Protocol) -> Bytes {
    let mut out = BytesMut::with_capacity(5);
    encode::null(&mut out, protocol);
    out.freeze()
}
