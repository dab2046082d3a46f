//! The frames a node sends on a subscribed RESP2 connection, read without copying: messages
//! (`message`, `pmessage`, `smessage`), subscription confirmations, and PING's `pong`.
//!
//! Each is a short array of bulk strings, a null (an `UNSUBSCRIBE` of nothing) and at most one
//! integer (a confirmation's count). [`elements`] returns its elements as slices of the frame,
//! so a message is recognised and routed without allocating, and the frame itself is what
//! percore forwards to each subscriber. [`as_push`] makes the RESP3 form of a frame: the same
//! bytes with the array header `*` turned into the push header `>`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::resp::line::{find_crlf, parse_int};

/// Most elements in a pub/sub frame (`pmessage pattern channel payload`).
pub const MAX_ELEMENTS: usize = 4;

/// One element of a pub/sub frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element<'a> {
    /// A bulk string.
    Bulk(&'a [u8]),
    /// A null bulk string.
    Null,
    /// An integer.
    Integer(i64),
}

impl<'a> Element<'a> {
    /// The bytes of a bulk string.
    pub fn bulk(self) -> Option<&'a [u8]> {
        match self {
            Element::Bulk(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// The elements of one frame, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elements<'a> {
    items: [Element<'a>; MAX_ELEMENTS],
    len: usize,
}

impl<'a> Elements<'a> {
    /// The elements.
    pub fn get(&self) -> &[Element<'a>] {
        &self.items[..self.len]
    }
}

/// The elements of a complete frame that is an array of at most [`MAX_ELEMENTS`] bulk
/// strings, nulls and integers; `None` for anything else (an error, a simple string, a longer
/// or nested array).
pub fn elements(frame: &[u8]) -> Option<Elements<'_>> {
    let (count, mut at) = line(frame, 0, b'*')?;
    let count = usize::try_from(count).ok().filter(|&n| n <= MAX_ELEMENTS)?;
    let mut items = [Element::Null; MAX_ELEMENTS];
    for item in items.iter_mut().take(count) {
        match frame.get(at)? {
            b':' => {
                let (value, next) = line(frame, at, b':')?;
                *item = Element::Integer(value);
                at = next;
            }
            b'$' => {
                let (len, next) = line(frame, at, b'$')?;
                if len < 0 {
                    *item = Element::Null;
                    at = next;
                    continue;
                }
                let end = next.checked_add(usize::try_from(len).ok()?)?;
                if frame.get(end..end + 2)? != b"\r\n" {
                    return None;
                }
                *item = Element::Bulk(&frame[next..end]);
                at = end + 2;
            }
            _ => return None,
        }
    }
    Some(Elements { items, len: count })
}

/// Reads the header line at `at` of type `kind`: its integer and where the next line starts.
fn line(frame: &[u8], at: usize, kind: u8) -> Option<(i64, usize)> {
    if frame.get(at) != Some(&kind) {
        return None;
    }
    let end = find_crlf(frame, at + 1)?;
    Some((parse_int(&frame[at + 1..end])?, end + 2))
}

/// The RESP3 push form of a RESP2 array frame: `>` instead of `*`, the rest the same bytes.
pub fn as_push(frame: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(frame.len());
    out.put_u8(b'>');
    out.put_slice(frame.get(1..).unwrap_or_default());
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Element::*;

    fn parsed(frame: &[u8]) -> Option<Vec<Element<'_>>> {
        elements(frame).map(|e| e.get().to_vec())
    }

    #[test]
    fn frames() {
        assert_eq!(
            parsed(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"),
            Some(vec![Bulk(b"message"), Bulk(b"ch"), Bulk(b"hello")])
        );
        assert_eq!(
            parsed(b"*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nc\r\n$0\r\n\r\n"),
            Some(vec![Bulk(b"pmessage"), Bulk(b"*"), Bulk(b"c"), Bulk(b"")])
        );
        assert_eq!(
            parsed(b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"),
            Some(vec![Bulk(b"unsubscribe"), Null, Integer(0)])
        );
        assert_eq!(
            parsed(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
            Some(vec![Bulk(b"pong"), Bulk(b"")])
        );
        // A payload holding CRLF is read by its length.
        assert_eq!(
            parsed(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$4\r\na\r\nb\r\n"),
            Some(vec![Bulk(b"message"), Bulk(b"c"), Bulk(b"a\r\nb")])
        );
        for other in [
            &b"+PONG\r\n"[..],
            b"-MOVED 1 127.0.0.1:7001\r\n",
            b"*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n",
            b"*1\r\n*0\r\n",
            b"*1\r\n$5\r\nab\r\n",
        ] {
            assert_eq!(parsed(other), None, "{:?}", String::from_utf8_lossy(other));
        }
    }

    #[test]
    fn push_form() {
        assert_eq!(
            &as_push(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n")[..],
            b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"
        );
    }
}
