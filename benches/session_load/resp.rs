//! The few RESP2 replies the load tool reads, parsed in place without allocating: simple
//! strings, errors, integers, bulk strings and flat arrays of those (subscribe confirmations,
//! `message` frames, EXEC's array of INCR results). A nested array or a RESP3 type is a
//! protocol error here: the tool speaks RESP2 and sends nothing that gets one back.

/// Longest flat array the tool expects: `message` frames have 3 elements, EXEC of two INCRs
/// has 2; 4 leaves room without making every parsed reply large.
pub const MAX_ITEMS: usize = 4;

/// One element of a reply, borrowed from the connection's buffer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Item<'a> {
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Int(i64),
    Bulk(&'a [u8]),
    Nil,
}

/// A whole reply: one item, or a flat array of at most `MAX_ITEMS` items.
#[derive(Debug, PartialEq)]
pub enum Reply<'a> {
    One(Item<'a>),
    Array {
        len: usize,
        items: [Item<'a>; MAX_ITEMS],
    },
}

impl<'a> Reply<'a> {
    /// The array's elements (empty for a single item).
    pub fn elements(&self) -> &[Item<'a>] {
        match self {
            Reply::One(_) => &[],
            Reply::Array { len, items } => &items[..*len],
        }
    }
}

/// What could not be read, with the bytes around it for the report.
#[derive(Debug)]
pub struct ProtocolError(pub String);

fn bad(buf: &[u8], what: &str) -> ProtocolError {
    let shown = &buf[..buf.len().min(60)];
    ProtocolError(format!("{what} in {:?}", String::from_utf8_lossy(shown)))
}

/// The line starting at `pos` (without CRLF) and the position after its CRLF, or None when
/// the CRLF has not arrived yet.
fn line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let cr = rest.iter().position(|&b| b == b'\r')?;
    if rest.len() < cr + 2 {
        return None;
    }
    Some((&rest[..cr], pos + cr + 2))
}

fn number(digits: &[u8], buf: &[u8]) -> Result<i64, ProtocolError> {
    std::str::from_utf8(digits)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| bad(buf, "bad number"))
}

/// One non-array item at `pos`: Ok(None) while incomplete.
fn item(buf: &[u8], pos: usize) -> Result<Option<(Item<'_>, usize)>, ProtocolError> {
    let Some((head, after)) = line(buf, pos) else {
        return Ok(None);
    };
    let Some((&kind, rest)) = head.split_first() else {
        return Err(bad(&buf[pos..], "empty line"));
    };
    let parsed = match kind {
        b'+' => (Item::Simple(rest), after),
        b'-' => (Item::Error(rest), after),
        b':' => (Item::Int(number(rest, &buf[pos..])?), after),
        b'$' => {
            let len = number(rest, &buf[pos..])?;
            if len < 0 {
                return Ok(Some((Item::Nil, after)));
            }
            let end = after + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            (Item::Bulk(&buf[after..end]), end + 2)
        }
        _ => return Err(bad(&buf[pos..], "unexpected reply type")),
    };
    Ok(Some(parsed))
}

/// The reply at the start of `buf` and its length in bytes, or Ok(None) while incomplete.
pub fn parse(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, ProtocolError> {
    if buf.first() != Some(&b'*') {
        return Ok(item(buf, 0)?.map(|(one, used)| (Reply::One(one), used)));
    }
    let Some((head, mut pos)) = line(buf, 0) else {
        return Ok(None);
    };
    let len = number(&head[1..], buf)?;
    if !(0..=MAX_ITEMS as i64).contains(&len) {
        return Err(bad(buf, "array of unexpected length"));
    }
    let mut items = [Item::Nil; MAX_ITEMS];
    for slot in items.iter_mut().take(len as usize) {
        let Some((one, next)) = item(buf, pos)? else {
            return Ok(None);
        };
        *slot = one;
        pos = next;
    }
    let len = len as usize;
    Ok(Some((Reply::Array { len, items }, pos)))
}

/// A connection's bytes received and not yet parsed.
pub struct InBuf {
    bytes: Vec<u8>,
    start: usize,
}

/// Read size per call: large enough that a subscriber behind by many messages is caught up in
/// a few reads, small enough for a thousand connections' buffers to stay in cache.
const READ_CHUNK: usize = 16 * 1024;

impl InBuf {
    pub fn new() -> Self {
        InBuf {
            bytes: Vec::with_capacity(READ_CHUNK),
            start: 0,
        }
    }

    /// Reads once from `source` (non-blocking or not); Ok(0) is end of stream.
    pub fn fill(&mut self, source: &mut impl std::io::Read) -> std::io::Result<usize> {
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        } else if self.start > READ_CHUNK {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        let old = self.bytes.len();
        self.bytes.resize(old + READ_CHUNK, 0);
        let got = source.read(&mut self.bytes[old..]);
        self.bytes.truncate(old + *got.as_ref().unwrap_or(&0));
        got
    }

    /// The next complete reply, handed to `use_it` (which may not keep it), or None.
    pub fn next<T>(
        &mut self,
        use_it: impl FnOnce(&Reply<'_>) -> T,
    ) -> Result<Option<T>, ProtocolError> {
        match parse(&self.bytes[self.start..])? {
            Some((reply, used)) => {
                let out = use_it(&reply);
                self.start += used;
                Ok(Some(out))
            }
            None => Ok(None),
        }
    }
}
