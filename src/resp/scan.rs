//! Reply boundary scanner: tells how long the reply at the front of a backend's buffer is,
//! without building a tree of it.
//!
//! Replies are forwarded to clients as the backend's own bytes, so the proxy only needs to know
//! where each one ends. The scanner is resumable: when a large array arrives in pieces it keeps
//! its place (offset and the element counts still open) instead of starting over on every read,
//! and a large bulk is skipped by its declared length, so scanning cost stays linear in the
//! reply size however it is split across reads.
//!
//! It knows every RESP2 and RESP3 type, and takes any nesting depth without recursion: each
//! open aggregate costs one `u64` on a stack, and since every level takes at least four bytes
//! of input, the stack never outgrows the reply it scans (a Lua script can return a table
//! nested thousands deep). RESP3 attributes (`|`) are metadata before a value, not a value:
//! the reply they precede ends where that value ends.

use crate::error::ReplyError;
use crate::resp::line::{find_crlf, parse_int, short_header};

/// Largest bulk accepted in a reply. Redis's own `proto-max-bulk-len` can be raised well above
/// its 512 MiB default, so this only rejects lengths no real server sends.
pub const MAX_REPLY_BULK: i64 = 1 << 40;

/// Marks an open aggregate that is an attribute: when it completes, it does not count as an
/// element of its parent (the value after it does).
const ATTRIBUTE: u64 = 1 << 63;

/// Open-aggregate stack capacity kept after a deep reply; more is released.
const KEEP_DEPTH: usize = 64;

/// Resumable scanner for one backend connection. Feed it the same buffer (only ever appended
/// to) until it returns the reply's length, then drop those bytes from the buffer front.
#[derive(Debug, Default)]
pub struct ReplyScanner {
    /// Bytes of the current reply already scanned.
    pos: usize,
    /// Elements still missing in each open aggregate, innermost last; [`ATTRIBUTE`] marks
    /// attributes.
    open: Vec<u64>,
}

impl ReplyScanner {
    /// A scanner at the start of a reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Length of the complete reply at the front of `buf`, or `None` if more bytes are needed.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ReplyError> {
        if self.pos == 0 && self.open.is_empty() {
            if let Some(len) = plain_reply_len(buf) {
                return Ok(Some(len));
            }
        }
        self.scan_any(buf)
    }

    /// [`scan`](Self::scan) for any reply, from where the last call stopped.
    fn scan_any(&mut self, buf: &[u8]) -> Result<Option<usize>, ReplyError> {
        loop {
            let Some(&kind) = buf.get(self.pos) else {
                return Ok(None);
            };
            let Some(line_end) = find_crlf(buf, self.pos + 1) else {
                return Ok(None);
            };
            let line = &buf[self.pos + 1..line_end];
            let mut next = line_end + 2;
            let mut children = 0u64;
            match kind {
                b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
                b'$' | b'=' | b'!' => {
                    let len = parse_int(line).ok_or(ReplyError::BadLength)?;
                    if len > MAX_REPLY_BULK {
                        return Err(ReplyError::BadLength);
                    }
                    if len >= 0 {
                        next += len as usize + 2;
                        if next > buf.len() {
                            return Ok(None);
                        }
                        if &buf[next - 2..next] != b"\r\n" {
                            return Err(ReplyError::MissingCrlf);
                        }
                    }
                }
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    let len = parse_int(line).ok_or(ReplyError::BadLength)?;
                    if len > 0 {
                        let pairs = matches!(kind, b'%' | b'|');
                        children = (len as u64)
                            .checked_mul(if pairs { 2 } else { 1 })
                            .filter(|&n| n < ATTRIBUTE)
                            .ok_or(ReplyError::BadLength)?;
                    }
                }
                other => return Err(ReplyError::BadType(other)),
            }
            self.pos = next;
            if kind == b'|' {
                // Metadata before the value: scan on to the value, which is what counts.
                if children > 0 {
                    self.open.push(children | ATTRIBUTE);
                }
                continue;
            }
            if children > 0 {
                self.open.push(children);
                continue;
            }
            if let Some(len) = self.close_value() {
                return Ok(Some(len));
            }
        }
    }

    /// Counts one complete value into the aggregates it completes; returns the reply's length
    /// if it completed the whole reply.
    fn close_value(&mut self) -> Option<usize> {
        loop {
            let Some(left) = self.open.last_mut() else {
                let len = self.pos;
                self.pos = 0;
                if self.open.capacity() > KEEP_DEPTH {
                    self.open.shrink_to(KEEP_DEPTH);
                }
                return Some(len);
            };
            *left -= 1;
            if *left & !ATTRIBUTE > 0 {
                return None;
            }
            let attribute = *left & ATTRIBUTE != 0;
            self.open.pop();
            if attribute {
                // A finished attribute is not a value of its parent: the next value is.
                return None;
            }
        }
    }
}

/// The length of the reply at the front of `buf` when it is complete and of a shape most
/// replies have: a bulk string or null, a simple string, error or integer, or a flat array of
/// those bulks (an MGET's or LRANGE's). `None` for anything else, incomplete or malformed, which
/// the general scanner then reads (and refuses) from the start: this path reads each byte
/// once, with no stack of open aggregates, and nothing it accepts would scan otherwise there.
#[inline]
fn plain_reply_len(buf: &[u8]) -> Option<usize> {
    match *buf.first()? {
        b'$' => bulk_reply_len(buf, 0),
        b'+' | b'-' | b':' => {
            let cr = 1 + memchr::memchr(b'\r', buf.get(1..)?)?;
            (buf.get(cr + 1) == Some(&b'\n')).then_some(cr + 2)
        }
        b'*' => {
            let (count, line_end) = short_header(buf, 1)?;
            let mut at = line_end + 2;
            for _ in 0..count {
                if buf.get(at) != Some(&b'$') {
                    return None;
                }
                at += bulk_reply_len(buf, at)?;
            }
            Some(at)
        }
        _ => None,
    }
}

/// Bytes of the bulk string (or null bulk) at `at`, when complete and plainly formed.
#[inline(always)]
fn bulk_reply_len(buf: &[u8], at: usize) -> Option<usize> {
    if buf.get(at + 1..at + 5) == Some(b"-1\r\n") {
        return Some(5);
    }
    let (len, line_end) = short_header(buf, at + 1)?;
    let end = line_end + 2 + len + 2;
    (buf.get(end - 2..end)? == b"\r\n").then_some(end - at)
}

/// Length of the complete reply at the front of `buf`, for one-off use.
pub fn reply_len(buf: &[u8]) -> Result<Option<usize>, ReplyError> {
    ReplyScanner::new().scan(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_replies() {
        let cases: &[&[u8]] = &[
            b"+OK\r\n",
            b"-ERR x\r\n",
            b":12\r\n",
            b"$3\r\nfoo\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*2\r\n$1\r\na\r\n$-1\r\n",
            b"*2\r\n*1\r\n:1\r\n*2\r\n+a\r\n*0\r\n",
            b"%1\r\n+k\r\n:1\r\n",
            b"$4\r\na\r\nb\r\n",
            // RESP3: null, double, boolean, big number, blob error, verbatim, set, push, map.
            b"_\r\n",
            b",3.14\r\n",
            b",inf\r\n",
            b"#t\r\n",
            b"(3492890328409238509324850943850943825024385\r\n",
            b"!21\r\nSYNTAX invalid syntax\r\n",
            b"=15\r\ntxt:Some string\r\n",
            b"~2\r\n+a\r\n#f\r\n",
            b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
            b"%2\r\n+a\r\n*1\r\n_\r\n+b\r\n%0\r\n",
            b"~0\r\n",
            // Attributes come before the value they describe and are part of its reply.
            b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2039\r\n:9543\r\n",
            b"*2\r\n|1\r\n+a\r\n+b\r\n:1\r\n:2\r\n",
            b"|0\r\n:1\r\n",
        ];
        for reply in cases {
            let mut with_tail = reply.to_vec();
            with_tail.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(reply_len(&with_tail), Ok(Some(reply.len())), "{:?}", reply);
        }
    }

    proptest::proptest! {
        /// Where the fast path answers, the general scanner gives the same length: on random
        /// bytes drawn from RESP's alphabet, and on pieces of real replies.
        #[test]
        fn the_fast_path_agrees_with_the_general_scanner(
            bytes in proptest::collection::vec(
                proptest::sample::select(&b"$*+-:%_01235\r\nab"[..]), 0..40),
        ) {
            if let Some(len) = plain_reply_len(&bytes) {
                proptest::prop_assert_eq!(ReplyScanner::new().scan_any(&bytes), Ok(Some(len)));
            }
        }

        #[test]
        fn the_fast_path_takes_flat_arrays_whole(
            values in proptest::collection::vec(
                proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..20)), 0..8),
            cut in proptest::num::usize::ANY,
        ) {
            let mut reply = format!("*{}\r\n", values.len()).into_bytes();
            for value in &values {
                match value {
                    Some(bytes) => {
                        reply.extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
                        reply.extend_from_slice(bytes);
                        reply.extend_from_slice(b"\r\n");
                    }
                    None => reply.extend_from_slice(b"$-1\r\n"),
                }
            }
            proptest::prop_assert_eq!(plain_reply_len(&reply), Some(reply.len()));
            let cut = cut % reply.len();
            proptest::prop_assert_eq!(plain_reply_len(&reply[..cut]), None);
            let mut scanner = ReplyScanner::new();
            proptest::prop_assert_eq!(scanner.scan(&reply[..cut]), Ok(None));
            proptest::prop_assert_eq!(scanner.scan(&reply), Ok(Some(reply.len())));
        }
    }

    #[test]
    fn every_prefix_is_incomplete_and_resumes() {
        let reply: &[u8] = b"*3\r\n$5\r\nhello\r\n*2\r\n:1\r\n$-1\r\n+OK\r\n";
        for cut in 0..reply.len() {
            assert_eq!(reply_len(&reply[..cut]), Ok(None), "cut {cut}");
            let mut scanner = ReplyScanner::new();
            assert_eq!(scanner.scan(&reply[..cut]), Ok(None));
            assert_eq!(
                scanner.scan(reply),
                Ok(Some(reply.len())),
                "resume at {cut}"
            );
        }
    }

    #[test]
    fn resp3_prefixes_are_incomplete_and_resume() {
        let reply: &[u8] =
            b"|1\r\n+ttl\r\n:3\r\n%2\r\n=7\r\ntxt:a\r\n\r\n~1\r\n_\r\n#t\r\n*1\r\n,1.5\r\n";
        for cut in 0..reply.len() {
            let mut scanner = ReplyScanner::new();
            assert_eq!(scanner.scan(&reply[..cut]), Ok(None), "cut {cut}");
            assert_eq!(scanner.scan(reply), Ok(Some(reply.len())), "resume {cut}");
        }
    }

    #[test]
    fn any_depth_without_recursion() {
        // Deeper than any recursive parser's stack would take, as a Lua script can return.
        let depth = 100_000;
        let mut reply = "*1\r\n".repeat(depth).into_bytes();
        reply.extend_from_slice(b":1\r\n");
        assert_eq!(reply_len(&reply), Ok(Some(reply.len())));
        let mut scanner = ReplyScanner::new();
        assert_eq!(scanner.scan(&reply[..reply.len() - 1]), Ok(None));
        assert_eq!(scanner.scan(&reply), Ok(Some(reply.len())));
        assert!(scanner.open.capacity() <= KEEP_DEPTH, "memory given back");
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(reply_len(b"?what\r\n"), Err(ReplyError::BadType(b'?')));
        assert_eq!(reply_len(b"$x\r\n"), Err(ReplyError::BadLength));
        assert_eq!(reply_len(b"$1\r\nabc\r\n"), Err(ReplyError::MissingCrlf));
        assert_eq!(reply_len(b"*9223372036854775807\r\n"), Ok(None));
        assert_eq!(
            reply_len(b"%9223372036854775807\r\n"),
            Err(ReplyError::BadLength)
        );
    }
}
