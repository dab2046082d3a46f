//! What percore says to a Sentinel and how it reads the answers: a connection that has
//! authenticated (`sentinel_password`), `SENTINEL MASTER <name>` read as an address with its
//! configuration epoch, and the failover events of a subscription ([`Event`]).
//!
//! The readers are pure (a [`Value`] in, a fact out), so they are tested here without a
//! Sentinel; the connection is a plain request/reply exchange on the core's ring.

use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use thiserror::Error;

use crate::config::BackendAuth;
use crate::error::ReplyError;
use crate::net::{connect, ConnectError, Stream, Uring};
use crate::resp::value::{parse_value, Value};
use crate::resp::{encode, Protocol};

/// Largest reply accepted from a Sentinel: `SENTINEL MASTER` is about 1 KiB per master.
const MAX_REPLY: usize = 1024 * 1024;
/// Bytes a read of a reply asks for at least.
const READ_SIZE: usize = 4 * 1024;
/// The channel Sentinel announces a finished failover on.
pub const SWITCH_MASTER: &str = "+switch-master";
/// The channel the leading Sentinel announces, just before it sends `REPLICAOF NO ONE` to the
/// replica it chose, that a master's promotion starts.
pub const PROMOTING: &str = "+failover-state-send-slaveof-noone";
/// The channel a failover that started a promotion is given up on (the replica was not
/// promoted in the failover timeout): the old master stays.
pub const ABORTED: &str = "-failover-abort-slave-timeout";
/// Every channel the watcher subscribes to.
const CHANNELS: [&str; 3] = [SWITCH_MASTER, PROMOTING, ABORTED];

/// Why a Sentinel could not answer.
#[derive(Debug, Error)]
pub enum SentinelError {
    /// No connection.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The connection broke.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The Sentinel closed the connection.
    #[error("connection closed")]
    Closed,
    /// The reply is not RESP, or too large.
    #[error("bad reply: {0}")]
    BadReply(String),
    /// The Sentinel refused `sentinel_password` (or wants one).
    #[error("refused percore's sentinel_password: {0}")]
    Rejected(String),
    /// No answer in time.
    #[error("timed out")]
    TimedOut,
}

impl From<ReplyError> for SentinelError {
    fn from(error: ReplyError) -> Self {
        SentinelError::BadReply(error.to_string())
    }
}

/// One connection to a Sentinel, authenticated if the pool has a `sentinel_password`.
pub struct SentinelConn {
    stream: Stream,
    /// Bytes read and not parsed yet.
    buf: BytesMut,
}

impl SentinelConn {
    /// Connects to `addr` and authenticates, bounded by `timeout`.
    pub async fn open(
        uring: &Rc<Uring>,
        addr: &str,
        auth: Option<&BackendAuth>,
        timeout: Duration,
    ) -> Result<SentinelConn, SentinelError> {
        let work = async {
            let stream = connect(uring, addr, timeout).await?;
            let mut conn = SentinelConn {
                stream,
                buf: BytesMut::new(),
            };
            let mut wire = BytesMut::new();
            let credentials = auth.map(|a| (a.user.as_deref(), a.password.as_str()));
            if encode::handshake(&mut wire, Protocol::Resp2, credentials) {
                conn.stream.write_all(&wire).await?;
                if let Value::Error(text) = conn.reply().await? {
                    let text = String::from_utf8_lossy(&text).into_owned();
                    return Err(SentinelError::Rejected(text));
                }
            }
            Ok(conn)
        };
        within(timeout, work).await
    }

    /// Sends `wire` (one or more commands).
    pub async fn send(&self, wire: &[u8]) -> Result<(), SentinelError> {
        Ok(self.stream.write_all(wire).await?)
    }

    /// Reads the next reply (or pushed message), waiting as long as it takes.
    pub async fn reply(&mut self) -> Result<Value, SentinelError> {
        loop {
            if let Some((value, len)) = parse_value(&self.buf)? {
                let _ = self.buf.split_to(len);
                return Ok(value);
            }
            if self.buf.len() > MAX_REPLY {
                return Err(SentinelError::BadReply("reply too large".into()));
            }
            let grow = self.buf.len().max(READ_SIZE);
            if self.stream.read_into(&mut self.buf, 0, grow).await? == 0 {
                return Err(SentinelError::Closed);
            }
        }
    }
}

/// `work`, or [`SentinelError::TimedOut`] after `timeout`.
pub async fn within<T>(
    timeout: Duration,
    work: impl std::future::Future<Output = Result<T, SentinelError>>,
) -> Result<T, SentinelError> {
    glommio::timer::timeout(timeout, async { Ok(work.await) })
        .await
        .unwrap_or(Err(SentinelError::TimedOut))
}

/// Appends `SENTINEL MASTER <name>`.
pub fn ask_master(out: &mut BytesMut, name: &str) {
    encode::command(out, [&b"SENTINEL"[..], b"MASTER", name.as_bytes()]);
}

/// Appends `SUBSCRIBE` to the failover events; each channel's confirmation is a reply.
pub fn subscribe(out: &mut BytesMut) -> usize {
    let channels = CHANNELS.iter().map(|c| c.as_bytes());
    encode::command(
        out,
        std::iter::once(&b"SUBSCRIBE"[..])
            .chain(channels)
            .collect::<Vec<_>>(),
    );
    CHANNELS.len()
}

/// Where one Sentinel says a master is, and in which configuration epoch: the epoch grows
/// with every failover, so of two Sentinels' answers the one with the higher epoch is newer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterAt {
    /// `ip:port`.
    pub addr: String,
    /// Sentinel's `config-epoch` for the master.
    pub epoch: u64,
}

/// Reads a `SENTINEL MASTER` reply (a flat array of field names and values); the error text
/// of a refusal (`-ERR No such master with that name`) or of a reply that is not one.
pub fn read_master(reply: &Value) -> Result<MasterAt, String> {
    if let Value::Error(text) = reply {
        return Err(String::from_utf8_lossy(text).into_owned());
    }
    let fields = reply.as_array().ok_or("not an array")?;
    let field = |name: &str| {
        fields
            .chunks_exact(2)
            .find(|pair| pair[0].as_bytes() == Some(name.as_bytes()))
            .and_then(|pair| pair[1].as_bytes())
            .and_then(|value| std::str::from_utf8(value).ok())
    };
    let (Some(ip), Some(port)) = (field("ip"), field("port")) else {
        return Err("no ip or port".into());
    };
    let port: u16 = port.parse().map_err(|_| format!("bad port {port:?}"))?;
    let epoch = field("config-epoch")
        .and_then(|e| e.parse().ok())
        .ok_or("no config-epoch")?;
    Ok(MasterAt {
        addr: join(ip, port),
        epoch,
    })
}

/// A failover Sentinel announced: master `name` moved from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// The master's name.
    pub name: String,
    /// Its old `ip:port`.
    pub from: String,
    /// Its new `ip:port`.
    pub to: String,
}

/// What a Sentinel announced about a master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A failover ended: the master moved (`+switch-master`).
    Switch(Switch),
    /// The promotion of a replica of a master starts (`+failover-state-send-slaveof-noone`).
    Promoting(Master),
    /// A master's failover was given up (`-failover-abort-slave-timeout`).
    Aborted(Master),
}

/// The master an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    /// Its name.
    pub name: String,
    /// Where it is (the master being failed over, not the replica promoted).
    pub addr: String,
}

/// Reads a message of the subscription (`message`, channel, text); `None` for anything else
/// (a confirmation, a PING's answer).
pub fn read_event(message: &Value) -> Option<Event> {
    let [kind, channel, text] = message.as_array()? else {
        return None;
    };
    if kind.as_bytes()? != b"message" {
        return None;
    }
    let text = std::str::from_utf8(text.as_bytes()?).ok()?;
    let words: Vec<&str> = text.split(' ').collect();
    match std::str::from_utf8(channel.as_bytes()?).ok()? {
        SWITCH_MASTER => read_switch(&words).map(Event::Switch),
        PROMOTING => master_of(&words).map(Event::Promoting),
        ABORTED => master_of(&words).map(Event::Aborted),
        _ => None,
    }
}

/// `<name> <old-ip> <old-port> <new-ip> <new-port>`.
fn read_switch(words: &[&str]) -> Option<Switch> {
    let [name, old_ip, old_port, new_ip, new_port] = words[..] else {
        return None;
    };
    let (old_port, new_port) = (old_port.parse().ok()?, new_port.parse().ok()?);
    Some(Switch {
        name: name.to_string(),
        from: join(old_ip, old_port),
        to: join(new_ip, new_port),
    })
}

/// The master an event is about, from Sentinel's instance details: `master <name> <ip>
/// <port>`, or `<type> <name> <ip> <port> @ <master> <ip> <port>` for a replica.
fn master_of(words: &[&str]) -> Option<Master> {
    let (name, ip, port) = match words {
        ["master", name, ip, port, ..] => (name, ip, port),
        [_, _, _, _, "@", name, ip, port, ..] => (name, ip, port),
        _ => return None,
    };
    Some(Master {
        name: name.to_string(),
        addr: join(ip, port.parse().ok()?),
    })
}

/// `ip:port`, with an IPv6 address in brackets so it splits again at the last colon.
fn join(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Some(s.as_bytes().to_vec()))
    }

    fn array(items: &[&str]) -> Value {
        Value::Array(Some(items.iter().map(|s| bulk(s)).collect()))
    }

    #[test]
    fn reads_a_master_with_its_epoch() {
        let reply = array(&[
            "name",
            "m",
            "ip",
            "127.0.0.1",
            "port",
            "6380",
            "runid",
            "x",
            "config-epoch",
            "3",
        ]);
        let at = read_master(&reply).unwrap();
        let expected = MasterAt {
            addr: "127.0.0.1:6380".into(),
            epoch: 3,
        };
        assert_eq!(at, expected);
        let v6 = array(&["ip", "::1", "port", "7", "config-epoch", "0"]);
        assert_eq!(read_master(&v6).unwrap().addr, "[::1]:7");
        let unknown = Value::Error(b"ERR No such master with that name".to_vec());
        assert_eq!(
            read_master(&unknown).unwrap_err(),
            "ERR No such master with that name"
        );
        let bad_port = array(&["ip", "h", "port", "x", "config-epoch", "1"]);
        assert!(read_master(&bad_port).is_err());
        assert!(read_master(&array(&["ip", "h", "port", "1"])).is_err());
    }

    #[test]
    fn reads_failover_events_only() {
        let message = array(&["message", SWITCH_MASTER, "m 127.0.0.1 6379 127.0.0.1 6380"]);
        let switch = Switch {
            name: "m".into(),
            from: "127.0.0.1:6379".into(),
            to: "127.0.0.1:6380".into(),
        };
        assert_eq!(read_event(&message), Some(Event::Switch(switch)));
        let promoting = "slave 127.0.0.1:6380 127.0.0.1 6380 @ m 127.0.0.1 6379";
        let message = array(&["message", PROMOTING, promoting]);
        let master = Master {
            name: "m".into(),
            addr: "127.0.0.1:6379".into(),
        };
        assert_eq!(read_event(&message), Some(Event::Promoting(master.clone())));
        let message = array(&["message", ABORTED, "master m 127.0.0.1 6379"]);
        assert_eq!(read_event(&message), Some(Event::Aborted(master)));
        let confirmation = Value::Array(Some(vec![
            bulk("subscribe"),
            bulk(SWITCH_MASTER),
            Value::Integer(1),
        ]));
        assert_eq!(read_event(&confirmation), None);
        assert_eq!(
            read_event(&array(&["message", SWITCH_MASTER, "m 1 2"])),
            None
        );
        assert_eq!(
            read_event(&array(&["message", "+sdown", "master m a 1"])),
            None
        );
        assert_eq!(read_event(&array(&["message", PROMOTING, "slave x"])), None);
    }

    #[test]
    fn requests_are_resp() {
        let mut out = BytesMut::new();
        ask_master(&mut out, "m");
        assert_eq!(
            &out[..],
            b"*3\r\n$8\r\nSENTINEL\r\n$6\r\nMASTER\r\n$1\r\nm\r\n"
        );
        out.clear();
        assert_eq!(subscribe(&mut out), 3);
        let start = b"*4\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n$34\r\n";
        assert!(out.starts_with(start), "{out:?}");
    }
}
