//! Reply boundary scanner: tells how long the reply at the front of a backend's buffer is,
//! without building a tree of it.
//!
//! Replies are forwarded to clients as the backend's own bytes, so the proxy only needs to know
//! where each one ends. The scanner is resumable: when a large array arrives in pieces it keeps
//! its place (offset and the element counts still open) instead of starting over on every read,
//! and a large bulk is skipped by its declared length, so scanning cost stays linear in the
//! reply size however it is split across reads.

use crate::error::ReplyError;
use crate::resp::parse::{find_crlf, parse_int};

/// Deepest nesting of aggregates accepted from a backend. Redis's deepest replies (COMMAND,
/// CLUSTER SLOTS, XINFO FULL) nest a handful of levels; anything far deeper is garbage.
pub const MAX_DEPTH: usize = 128;

/// Largest bulk accepted in a reply. Redis's own `proto-max-bulk-len` can be raised well above
/// its 512 MiB default, so this only rejects lengths no real server sends.
pub const MAX_REPLY_BULK: i64 = 1 << 40;

/// Resumable scanner for one backend connection. Feed it the same buffer (only ever appended
/// to) until it returns the reply's length, then drop those bytes from the buffer front.
#[derive(Debug, Default)]
pub struct ReplyScanner {
    /// Bytes of the current reply already scanned.
    pos: usize,
    /// Elements still missing in each open aggregate, innermost last.
    open: Vec<u64>,
}

impl ReplyScanner {
    /// A scanner at the start of a reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Length of the complete reply at the front of `buf`, or `None` if more bytes are needed.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ReplyError> {
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
                b'*' | b'~' | b'>' | b'%' => {
                    let len = parse_int(line).ok_or(ReplyError::BadLength)?;
                    if len > 0 {
                        let factor = if kind == b'%' { 2 } else { 1 };
                        children = len as u64 * factor;
                    }
                }
                other => return Err(ReplyError::BadType(other)),
            }
            self.pos = next;
            if children > 0 {
                if self.open.len() >= MAX_DEPTH {
                    return Err(ReplyError::TooDeep);
                }
                self.open.push(children);
                continue;
            }
            // A complete value: close every aggregate it completes.
            loop {
                match self.open.last_mut() {
                    None => {
                        let len = self.pos;
                        self.pos = 0;
                        return Ok(Some(len));
                    }
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }
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
        ];
        for reply in cases {
            let mut with_tail = reply.to_vec();
            with_tail.extend_from_slice(b"+NEXT\r\n");
            assert_eq!(reply_len(&with_tail), Ok(Some(reply.len())), "{:?}", reply);
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
    fn garbage_is_rejected() {
        assert_eq!(reply_len(b"?what\r\n"), Err(ReplyError::BadType(b'?')));
        assert_eq!(reply_len(b"$x\r\n"), Err(ReplyError::BadLength));
        assert_eq!(reply_len(b"$1\r\nabc\r\n"), Err(ReplyError::MissingCrlf));
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1);
        assert_eq!(reply_len(deep.as_bytes()), Err(ReplyError::TooDeep));
    }
}
