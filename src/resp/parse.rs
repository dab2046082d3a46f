//! Client request parser: finds one complete request at the front of the client's buffer and
//! records where each argument lies, without copying or allocating.
//!
//! The parser is pure (bytes in, frame out) so it can be tested byte by byte and fuzzed. It
//! accepts what Redis accepts and rejects what Redis rejects, with Redis's own error texts, so a
//! client sees the same behaviour through percore as against one Redis server:
//! - multibulk requests (`*N\r\n$len\r\narg\r\n...`), forwarded later as the client's own bytes;
//! - inline requests (`GET key\r\n`, as typed into telnet), which are re-encoded as a multibulk
//!   because the shared backend connections must carry one well-formed frame per request.
//!
//! An incomplete request is `Ok(None)`, never an error. For a large bulk the parser remembers how
//! many bytes the request needs in all (`bytes_needed`), so the reader neither re-parses on every
//! small read nor grows its buffer by small steps.

use std::ops::Range;

use bytes::BytesMut;

use crate::error::ProtocolError;
use crate::resp::encode;
use crate::resp::inline::split_args;
use crate::resp::line::{find_crlf, parse_int, short_header};

/// Longest inline request and longest `*N` / `$N` header line Redis accepts
/// (`PROTO_INLINE_MAX_SIZE`); beyond that Redis closes the connection, and so do we.
pub const MAX_INLINE_LEN: usize = 64 * 1024;

/// Limits a client cannot exceed; each one bounds the memory a single client can make the
/// proxy hold.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Largest bulk argument, like Redis's `proto-max-bulk-len` (512 MiB by default).
    pub max_bulk_len: usize,
    /// Most arguments in one multibulk request.
    pub max_multibulk_len: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
        }
    }
}

/// What sits at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A multibulk request of `len` bytes; its arguments are in [`RequestParser::args`].
    /// `args` may be empty (`*0\r\n` and `*-1\r\n` are accepted and ignored, as Redis does).
    Multibulk {
        /// Bytes the request takes in the buffer.
        len: usize,
    },
    /// An inline request of `len` bytes, re-encoded as a multibulk in `encoded`. Empty lines
    /// give an empty `encoded`.
    Inline {
        /// Bytes the request line takes in the buffer.
        len: usize,
        /// The same request as a multibulk.
        encoded: BytesMut,
    },
}

/// Resumable parser state for one client connection. The argument vector is reused across
/// requests, so parsing allocates only when a request has more arguments than any before it.
#[derive(Debug, Default)]
pub struct RequestParser {
    limits: ParseLimits,
    /// Byte ranges of the last complete multibulk's arguments, relative to the buffer start.
    args: Vec<Range<usize>>,
    /// Total bytes the request at the front needs, when known from a bulk header; 0 otherwise.
    needed: usize,
    /// Progress through an incomplete multibulk: arguments still to come and where the next
    /// one starts. Lets a request trickling in parse in time linear in its size.
    resume: Option<(u64, usize)>,
    /// Where the search for the end of the current line goes on (bytes before it hold no line
    /// end), so a long line arriving in small pieces is scanned once, not once per piece.
    line_from: usize,
}

impl RequestParser {
    /// A parser enforcing `limits`.
    pub fn new(limits: ParseLimits) -> Self {
        RequestParser {
            limits,
            args: Vec::new(),
            needed: 0,
            resume: None,
            line_from: 0,
        }
    }

    /// Argument ranges of the last multibulk frame returned by [`parse`](Self::parse).
    pub fn args(&self) -> &[Range<usize>] {
        &self.args
    }

    /// The buffer length below which parsing again cannot succeed (0 when unknown).
    pub fn bytes_needed(&self) -> usize {
        self.needed
    }

    /// Parses the request at the front of `buf`. Between an `Ok(None)` and the next call the
    /// caller may only append to `buf`; after a frame or an error, `buf` starts anew.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<Frame>, ProtocolError> {
        self.needed = 0;
        let result = match (self.resume, buf.first()) {
            (Some(_), _) | (None, Some(b'*')) => self.parse_multibulk(buf),
            (None, None) => Ok(None),
            (None, Some(_)) => self.parse_inline(buf),
        };
        if !matches!(result, Ok(None)) {
            self.resume = None;
            self.line_from = 0;
        }
        result
    }

    /// The end of the line starting at `start`, or `None` after noting how far it was searched.
    fn line_end(&mut self, buf: &[u8], start: usize) -> Option<usize> {
        let found = find_crlf(buf, start.max(self.line_from));
        if found.is_none() {
            // Keep the last byte: it may be the CR of a CRLF split across reads.
            self.line_from = buf.len().saturating_sub(1).max(start);
        }
        found
    }

    fn parse_multibulk(&mut self, buf: &[u8]) -> Result<Option<Frame>, ProtocolError> {
        let (mut left, mut pos) = match self.resume {
            Some(progress) => progress,
            None => {
                self.args.clear();
                let (count, line_end) = match short_header(buf, 1) {
                    Some((count, line_end)) => (count as i64, line_end),
                    None => {
                        let Some(line_end) = self.line_end(buf, 1) else {
                            return if buf.len() > MAX_INLINE_LEN {
                                Err(ProtocolError::TooBigMultibulkCount)
                            } else {
                                Ok(None)
                            };
                        };
                        let count = parse_int(&buf[1..line_end])
                            .ok_or(ProtocolError::InvalidMultibulkLength)?;
                        (count, line_end)
                    }
                };
                self.line_from = 0;
                if count > self.limits.max_multibulk_len as i64 {
                    return Err(ProtocolError::InvalidMultibulkLength);
                }
                if count <= 0 {
                    return Ok(Some(Frame::Multibulk { len: line_end + 2 }));
                }
                (count as u64, line_end + 2)
            }
        };
        while left > 0 {
            let Some(&first) = buf.get(pos) else {
                self.resume = Some((left, pos));
                return Ok(None);
            };
            if first != b'$' {
                return Err(ProtocolError::ExpectedBulk(first));
            }
            let (len, line_end) = match short_header(buf, pos + 1) {
                Some(found) => found,
                None => match self.bulk_header(buf, pos)? {
                    Some(found) => found,
                    None => {
                        self.resume = Some((left, pos));
                        return Ok(None);
                    }
                },
            };
            if len > self.limits.max_bulk_len {
                return Err(ProtocolError::InvalidBulkLength);
            }
            self.line_from = 0;
            let start = line_end + 2;
            // Like Redis, the two bytes after the payload are skipped, not checked: the
            // backend parses the same bytes the same way.
            let end = start + len + 2;
            if end > buf.len() {
                self.needed = end;
                self.resume = Some((left, pos));
                return Ok(None);
            }
            self.args.push(start..start + len);
            pos = end;
            left -= 1;
        }
        Ok(Some(Frame::Multibulk { len: pos }))
    }

    /// The `$len` header at `pos` the fast path left alone: its length and line end, `None`
    /// while the line is incomplete, or Redis's error for a bad one.
    fn bulk_header(
        &mut self,
        buf: &[u8],
        pos: usize,
    ) -> Result<Option<(usize, usize)>, ProtocolError> {
        let Some(line_end) = self.line_end(buf, pos + 1) else {
            return if buf.len() - pos > MAX_INLINE_LEN {
                Err(ProtocolError::TooBigBulkCount)
            } else {
                Ok(None)
            };
        };
        let len = parse_int(&buf[pos + 1..line_end])
            .filter(|len| (0..=self.limits.max_bulk_len as i64).contains(len))
            .ok_or(ProtocolError::InvalidBulkLength)? as usize;
        Ok(Some((len, line_end)))
    }

    /// Parses an inline request: one line, arguments split on white space, with Redis's
    /// quoting rules (`"..."` with backslash escapes, `'...'`).
    fn parse_inline(&mut self, buf: &[u8]) -> Result<Option<Frame>, ProtocolError> {
        let from = self.line_from;
        let Some(newline) = buf[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|at| from + at)
        else {
            self.line_from = buf.len();
            return if buf.len() > MAX_INLINE_LEN {
                Err(ProtocolError::TooBigInline)
            } else {
                Ok(None)
            };
        };
        inline_frame(buf, newline)
    }
}

/// The inline request ending at `newline`, re-encoded as a multibulk.
fn inline_frame(buf: &[u8], newline: usize) -> Result<Option<Frame>, ProtocolError> {
    let mut line = &buf[..newline];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    let args = split_args(line).ok_or(ProtocolError::UnbalancedQuotes)?;
    let mut encoded = BytesMut::new();
    if !args.is_empty() {
        encode::command(&mut encoded, args.iter().map(Vec::as_slice));
    }
    Ok(Some(Frame::Inline {
        len: newline + 1,
        encoded,
    }))
}

/// Appends a request in multibulk form; used by tests and by the inline path.
pub fn encode_request(out: &mut BytesMut, args: &[&[u8]]) {
    encode::command(out, args.iter().copied());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A parsed request: its length and its arguments.
    type Parsed = (usize, Vec<Vec<u8>>);

    fn parse_all(input: &[u8]) -> Result<Option<Parsed>, ProtocolError> {
        let mut parser = RequestParser::new(ParseLimits::default());
        Ok(parser.parse(input)?.map(|frame| match frame {
            Frame::Multibulk { len } => (
                len,
                parser
                    .args()
                    .iter()
                    .map(|r| input[r.clone()].to_vec())
                    .collect(),
            ),
            Frame::Inline { len, encoded } => {
                let mut inner = RequestParser::new(ParseLimits::default());
                let args = match inner.parse(&encoded) {
                    Ok(Some(_)) => inner
                        .args()
                        .iter()
                        .map(|r| encoded[r.clone()].to_vec())
                        .collect(),
                    _ => Vec::new(),
                };
                (len, args)
            }
        }))
    }

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn complete_requests() {
        let cases: &[(&[u8], usize, &[&str])] = &[
            (b"*1\r\n$4\r\nPING\r\n", 14, &["PING"]),
            (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", 20, &["GET", "k"]),
            (b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n", 19, &["GET", ""]),
            (b"*0\r\n", 4, &[]),
            (b"*-10\r\n", 6, &[]),
            (b"PING\r\n", 6, &["PING"]),
            (b"PING\n", 5, &["PING"]),
            (b"set  k   v\r\n", 12, &["set", "k", "v"]),
            (b"set k \"a b\"\r\n", 13, &["set", "k", "a b"]),
            (b"set k \"\\x41\\n\"\r\n", 16, &["set", "k", "A\n"]),
            (b"set k 'it\\'s'\r\n", 15, &["set", "k", "it's"]),
            (b"\r\n", 2, &[]),
        ];
        for (input, len, expected) in cases {
            let got = parse_all(input).unwrap().unwrap();
            assert_eq!(got, (*len, args(expected)), "input {:?}", input);
        }
    }

    #[test]
    fn incomplete_requests() {
        let cases: &[&[u8]] = &[
            b"",
            b"*",
            b"*2",
            b"*2\r",
            b"*2\r\n",
            b"*2\r\n$3\r\nGET\r\n",
            b"*2\r\n$3\r\nGET\r\n$1\r\nk",
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r",
            b"PING",
            b"PING\r",
        ];
        for input in cases {
            assert_eq!(parse_all(input), Ok(None), "input {:?}", input);
        }
    }

    #[test]
    fn protocol_errors_match_redis() {
        use ProtocolError::*;
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"*abc\r\n", InvalidMultibulkLength),
            (b"*20000000\r\n", InvalidMultibulkLength),
            (b"*3000000000\r\n", InvalidMultibulkLength),
            (b"*+1\r\n", InvalidMultibulkLength),
            (b"*01\r\n", InvalidMultibulkLength),
            (b"*1\r\nfoo\r\n", ExpectedBulk(b'f')),
            (b"*1\r\n$-10\r\n", InvalidBulkLength),
            (b"*1\r\n$blabla\r\n", InvalidBulkLength),
            (b"*1\r\n$2000000000\r\n", InvalidBulkLength),
            (b"set k \"abc\r\n", UnbalancedQuotes),
            (b"set k \"abc\"x\r\n", UnbalancedQuotes),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_all(input), Err(*expected), "input {:?}", input);
        }
        assert_eq!(
            parse_all(&vec![b'a'; MAX_INLINE_LEN + 1]),
            Err(TooBigInline)
        );
        let mut header = b"*".to_vec();
        header.extend(vec![b'1'; MAX_INLINE_LEN + 1]);
        assert_eq!(parse_all(&header), Err(TooBigMultibulkCount));
        let mut bulk = b"*1\r\n$".to_vec();
        bulk.extend(vec![b'1'; MAX_INLINE_LEN + 1]);
        assert_eq!(parse_all(&bulk), Err(TooBigBulkCount));
    }

    #[test]
    fn big_bulk_reports_bytes_needed() {
        let mut parser = RequestParser::new(ParseLimits::default());
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\nxx";
        assert_eq!(parser.parse(input), Ok(None));
        assert_eq!(parser.bytes_needed(), input.len() - 2 + 100_000 + 2);
    }

    #[test]
    fn split_at_every_byte() {
        let input: &[u8] = b"*3\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n$5\r\nv\r\nal\r\n";
        let whole = parse_all(input).unwrap().unwrap();
        for cut in 0..input.len() {
            assert_eq!(parse_all(&input[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            whole.1,
            vec![b"SET".to_vec(), b"k\0y".to_vec(), b"v\r\nal".to_vec()]
        );

        // One parser fed a byte at a time resumes where it stopped and ends the same.
        for input in [input, &b"set  k 'v w'\r\n"[..]] {
            let mut parser = RequestParser::new(ParseLimits::default());
            for cut in 1..input.len() {
                assert_eq!(parser.parse(&input[..cut]), Ok(None), "cut at {cut}");
            }
            let frame = parser.parse(input).unwrap().unwrap();
            let len = match frame {
                Frame::Multibulk { len } | Frame::Inline { len, .. } => len,
            };
            assert_eq!(len, input.len());
            if input[0] == b'*' {
                assert_eq!(parser.args().len(), 3);
            }
        }
    }

    fn arg_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..40)
    }

    proptest! {
        /// A pipeline of random requests, fed in random pieces, parses into exactly the
        /// requests that were encoded, in order.
        #[test]
        fn random_pipelines_parse_back(
            requests in prop::collection::vec(prop::collection::vec(arg_strategy(), 1..6), 1..8),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let mut wire = BytesMut::new();
            for request in &requests {
                let refs: Vec<&[u8]> = request.iter().map(Vec::as_slice).collect();
                encode_request(&mut wire, &refs);
            }
            let mut cut_points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
            cut_points.push(wire.len());
            cut_points.sort_unstable();

            let mut parser = RequestParser::new(ParseLimits::default());
            let mut buf = BytesMut::new();
            let mut fed = 0;
            let mut parsed = Vec::new();
            for cut in cut_points {
                buf.extend_from_slice(&wire[fed..cut]);
                fed = cut;
                while let Some(frame) = parser.parse(&buf).unwrap() {
                    let Frame::Multibulk { len } = frame else { panic!("inline from multibulk") };
                    let args: Vec<Vec<u8>> =
                        parser.args().iter().map(|r| buf[r.clone()].to_vec()).collect();
                    parsed.push(args);
                    let _ = buf.split_to(len);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(parsed, requests);
        }
    }
}
