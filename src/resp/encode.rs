//! Writers for the RESP frames the proxy produces itself: its own replies (errors, PONG, admin
//! output, merged multi-key replies) and the commands it builds (sub-requests of a split
//! MGET/MSET, ASKING, CLUSTER SLOTS).
//!
//! Everything appends to a caller-owned `BytesMut`, so a reply assembled from many parts costs
//! one buffer, and numbers are formatted with `itoa`-style stack buffers, never `format!`.

use bytes::{BufMut, BytesMut};

use crate::resp::Protocol;

/// `+OK\r\n`, the most common reply the proxy makes itself.
pub const OK: &[u8] = b"+OK\r\n";
/// `+PONG\r\n`.
pub const PONG: &[u8] = b"+PONG\r\n";
/// The null bulk string.
pub const NULL_BULK: &[u8] = b"$-1\r\n";
/// The error Redis Cluster gives for keys in different slots.
pub const CROSSSLOT: &[u8] = b"-CROSSSLOT Keys in request don't hash to the same slot\r\n";
/// The ASKING command that must precede a request redirected by `-ASK`.
pub const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

/// Appends a decimal integer.
pub fn decimal(out: &mut BytesMut, value: i64) {
    if value < 0 {
        out.put_u8(b'-');
    }
    unsigned(out, value.unsigned_abs());
}

/// Appends an unsigned decimal integer (SCAN cursors use the whole 64 bits).
pub fn unsigned(out: &mut BytesMut, value: u64) {
    let mut digits = [0u8; 20];
    let start = digits_before(&mut digits, 20, value);
    out.put_slice(&digits[start..]);
}

/// Writes `value`'s decimal digits into `buf` ending just before `end`; returns where they
/// start. `buf` has room for 20 digits before `end` (`u64::MAX`).
fn digits_before(buf: &mut [u8], end: usize, value: u64) -> usize {
    let mut at = end;
    let mut rest = value;
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            return at;
        }
    }
}

/// Bytes of a `*n\r\n` or `$n\r\n` header, as [`header`] writes it.
pub fn header_len(n: usize) -> usize {
    1 + n.checked_ilog10().unwrap_or(0) as usize + 1 + 2
}

/// Bytes of `$len\r\n<len bytes>\r\n`, as [`bulk`] writes it.
pub fn bulk_len(len: usize) -> usize {
    header_len(len) + len + 2
}

/// Appends a header line such as `*3\r\n` or `$5\r\n`.
///
/// Formatted on the stack and appended in one copy: a split MGET writes two headers per key,
/// and four appends of a byte or two each were most of its cost.
pub fn header(out: &mut BytesMut, kind: u8, len: usize) {
    let mut line = [0u8; HEADER_MAX];
    let start = header_into(&mut line, kind, len);
    out.put_slice(&line[start..]);
}

/// Longest header line: a kind byte, 20 digits, CRLF.
const HEADER_MAX: usize = 23;

/// Writes the header line for `len` at the end of `line`; returns where it starts.
fn header_into(line: &mut [u8; HEADER_MAX], kind: u8, len: usize) -> usize {
    line[HEADER_MAX - 2..].copy_from_slice(b"\r\n");
    let at = digits_before(line, HEADER_MAX - 2, len as u64) - 1;
    line[at] = kind;
    at
}

/// Appends `:value\r\n`.
pub fn integer(out: &mut BytesMut, value: i64) {
    out.put_u8(b':');
    decimal(out, value);
    out.put_slice(b"\r\n");
}

/// Appends a bulk string.
pub fn bulk(out: &mut BytesMut, value: &[u8]) {
    header(out, b'$', value.len());
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// Appends a null: `$-1` in RESP2 (the null bulk string), `_` in RESP3.
pub fn null(out: &mut BytesMut, protocol: Protocol) {
    out.put_slice(match protocol {
        Protocol::Resp2 => NULL_BULK,
        Protocol::Resp3 => b"_\r\n",
    });
}

/// Appends the header of a map of `pairs` entries: `%n` in RESP3, a flat array of `2n` in
/// RESP2.
pub fn map_header(out: &mut BytesMut, protocol: Protocol, pairs: usize) {
    match protocol {
        Protocol::Resp2 => header(out, b'*', pairs * 2),
        Protocol::Resp3 => header(out, b'%', pairs),
    }
}

/// Appends the header of a pub/sub frame of `len` elements (a subscription confirmation, a
/// message): an array `*n` in RESP2, a push `>n` in RESP3.
pub fn push_header(out: &mut BytesMut, protocol: Protocol, len: usize) {
    match protocol {
        Protocol::Resp2 => header(out, b'*', len),
        Protocol::Resp3 => header(out, b'>', len),
    }
}

/// Appends text meant to be shown as it is (INFO, CLUSTER NODES): a verbatim string of
/// format `txt` in RESP3, a bulk string in RESP2.
pub fn verbatim(out: &mut BytesMut, protocol: Protocol, text: &[u8]) {
    match protocol {
        Protocol::Resp2 => bulk(out, text),
        Protocol::Resp3 => {
            header(out, b'=', text.len() + 4);
            out.put_slice(b"txt:");
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
    }
}

/// Appends an error `-text\r\n`; CR and LF inside `text` become spaces so the frame stays
/// one line whatever the message carries (addresses, client input echoed back).
pub fn error(out: &mut BytesMut, text: &str) {
    out.reserve(text.len() + 3);
    out.put_u8(b'-');
    for &b in text.as_bytes() {
        out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
    }
    out.put_slice(b"\r\n");
}

/// Appends what a backend connection sends before any request: `HELLO 3` (with `AUTH` when
/// there are credentials) for a RESP3 connection, `AUTH [user] password` for a RESP2 one with
/// credentials. Returns false when there is nothing to send (RESP2 without credentials).
pub fn handshake(
    out: &mut BytesMut,
    protocol: Protocol,
    auth: Option<(Option<&str>, &str)>,
) -> bool {
    match (protocol, auth) {
        (Protocol::Resp2, None) => return false,
        (Protocol::Resp2, Some((None, password))) => {
            command(out, [&b"AUTH"[..], password.as_bytes()])
        }
        (Protocol::Resp2, Some((Some(user), password))) => {
            command(out, [&b"AUTH"[..], user.as_bytes(), password.as_bytes()])
        }
        (Protocol::Resp3, None) => command(out, [&b"HELLO"[..], b"3"]),
        (Protocol::Resp3, Some((user, password))) => command(
            out,
            [
                &b"HELLO"[..],
                b"3",
                b"AUTH",
                user.unwrap_or("default").as_bytes(),
                password.as_bytes(),
            ],
        ),
    }
    true
}

/// Appends a command as a multibulk of bulk strings.
pub fn command<'a, I>(out: &mut BytesMut, args: I)
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: ExactSizeIterator,
{
    let args = args.into_iter();
    header(out, b'*', args.len());
    for arg in args {
        bulk(out, arg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut out = BytesMut::new();
        f(&mut out);
        out.to_vec()
    }

    #[test]
    fn frames() {
        assert_eq!(encoded(|o| integer(o, 0)), b":0\r\n");
        assert_eq!(encoded(|o| integer(o, -42)), b":-42\r\n");
        assert_eq!(
            encoded(|o| integer(o, i64::MIN)),
            b":-9223372036854775808\r\n"
        );
        assert_eq!(encoded(|o| bulk(o, b"a\r\nb")), b"$4\r\na\r\nb\r\n");
        assert_eq!(encoded(|o| error(o, "ERR x\r\ny")), b"-ERR x  y\r\n");
        assert_eq!(encoded(|o| unsigned(o, 0)), b"0");
        assert_eq!(encoded(|o| unsigned(o, u64::MAX)), b"18446744073709551615");
    }

    #[test]
    fn handshakes() {
        use Protocol::{Resp2, Resp3};
        let mut out = BytesMut::new();
        assert!(!handshake(&mut out, Resp2, None) && out.is_empty());
        assert_eq!(
            encoded(|o| assert!(handshake(o, Resp2, Some((None, "pw"))))),
            b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
        );
        assert_eq!(
            encoded(|o| assert!(handshake(o, Resp3, None))),
            b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"
        );
        assert_eq!(
            encoded(|o| assert!(handshake(o, Resp3, Some((None, "pw"))))),
            b"*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$2\r\npw\r\n"
        );
    }

    #[test]
    fn frames_in_each_protocol() {
        use Protocol::{Resp2, Resp3};
        assert_eq!(encoded(|o| null(o, Resp2)), b"$-1\r\n");
        assert_eq!(encoded(|o| null(o, Resp3)), b"_\r\n");
        assert_eq!(encoded(|o| map_header(o, Resp2, 2)), b"*4\r\n");
        assert_eq!(encoded(|o| map_header(o, Resp3, 2)), b"%2\r\n");
        assert_eq!(encoded(|o| push_header(o, Resp2, 3)), b"*3\r\n");
        assert_eq!(encoded(|o| push_header(o, Resp3, 3)), b">3\r\n");
        assert_eq!(encoded(|o| verbatim(o, Resp2, b"a:1")), b"$3\r\na:1\r\n");
        assert_eq!(
            encoded(|o| verbatim(o, Resp3, b"a:1")),
            b"=7\r\ntxt:a:1\r\n"
        );
        assert_eq!(
            encoded(|o| command(o, [&b"GET"[..], b"k"])),
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
    }
}
