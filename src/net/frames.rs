//! Reading a stream as a sequence of frames: fill a buffer from the socket until the caller's
//! framing function says a complete frame is at its front, then hand that frame out as a slice
//! of the buffer (no copy), and go on from the rest.
//!
//! The framing is the caller's (a RESP reply scanner, for every reader of a Redis node), so
//! this stays free of any protocol. One loop for every connection that reads frames: the
//! shared backend connections, their handshakes, and the pub/sub links.

use std::fmt;
use std::io;

use bytes::{Bytes, BytesMut};

use super::socket::Stream;

/// How [`ReadError::Closed`] reads: the text a connection's failure carries when the other
/// side closed it, which its counters tell apart from other failures.
pub const CLOSED_BY_PEER: &str = "closed by the node";

/// Why no next frame could be read.
#[derive(Debug)]
pub enum ReadError<E> {
    /// The other side closed the connection.
    Closed,
    /// The connection broke.
    Io(io::Error),
    /// The bytes are not a frame of the protocol.
    Frame(E),
}

impl<E: fmt::Display> fmt::Display for ReadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Closed => f.write_str(CLOSED_BY_PEER),
            ReadError::Io(err) => err.fmt(f),
            ReadError::Frame(err) => write!(f, "bad reply: {err}"),
        }
    }
}

/// A connection's read buffer and where the next frame starts.
pub struct FrameReader {
    buf: BytesMut,
    /// Bytes a read asks room for at least.
    grow: usize,
}

impl FrameReader {
    /// A reader whose buffer starts with `capacity` bytes and grows by at least `grow`.
    pub fn new(capacity: usize, grow: usize) -> Self {
        FrameReader {
            buf: BytesMut::with_capacity(capacity),
            grow,
        }
    }

    /// The next complete frame, reading from `stream` as needed. `frame_len` gives the length
    /// of the complete frame at the front of the bytes it is shown, or `None` while it is
    /// incomplete; it is shown the same, only ever longer, bytes until it answers, so a
    /// resumable scanner keeps its place.
    pub async fn next<E>(
        &mut self,
        stream: &Stream,
        mut frame_len: impl FnMut(&[u8]) -> Result<Option<usize>, E>,
    ) -> Result<Bytes, ReadError<E>> {
        loop {
            if !self.buf.is_empty() {
                match frame_len(&self.buf) {
                    Ok(Some(len)) => return Ok(self.buf.split_to(len).freeze()),
                    Ok(None) => {}
                    Err(err) => return Err(ReadError::Frame(err)),
                }
            }
            let grow = self.buf.len().max(self.grow);
            match stream.read_into(&mut self.buf, 0, grow).await {
                Ok(0) => return Err(ReadError::Closed),
                Ok(_) => {}
                Err(err) => return Err(ReadError::Io(err)),
            }
        }
    }

    /// Whether nothing read is left over: every frame received has been handed out.
    pub fn is_drained(&self) -> bool {
        self.buf.is_empty()
    }
}
