//! Writers for the RESP frames the proxy produces itself: its own replies (errors, PONG, admin
//! output, merged multi-key replies) and the commands it builds (sub-requests of a split
//! MGET/MSET, ASKING, CLUSTER SLOTS).
//!
//! Everything appends to a caller-owned `BytesMut`, so a reply assembled from many parts costs
//! one buffer, and numbers are formatted with `itoa`-style stack buffers, never `format!`.

use bytes::{BufMut, BytesMut};

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
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.put_u8(b'-');
    }
    out.put_slice(&digits[at..]);
}

/// Appends a header line such as `*3\r\n` or `$5\r\n`.
pub fn header(out: &mut BytesMut, kind: u8, len: usize) {
    out.put_u8(kind);
    decimal(out, len as i64);
    out.put_slice(b"\r\n");
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
        assert_eq!(
            encoded(|o| command(o, [&b"GET"[..], b"k"])),
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        );
    }
}
