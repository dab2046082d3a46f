//! Socket reads and writes on a glommio `TcpStream` shared by the read and write halves of one
//! connection task.
//!
//! A connection's reader and writer are two futures polled by the same task, so the stream sits
//! in a `RefCell` and each poll borrows it only for the duration of that poll, never across an
//! await. glommio keeps separate read and write sources per stream, so a pending read and a
//! pending write do not disturb each other.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;

use bytes::BytesMut;
use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

/// Most bytes read in one call. Reading into a `BytesMut` needs its spare room zeroed first,
/// so a bounded read keeps that cost proportional to what one read can bring.
pub const READ_CHUNK: usize = 64 * 1024;

/// Free room below which the read buffer is grown before reading.
const MIN_READ_ROOM: usize = 4 * 1024;

/// One TCP connection, used by one task's reader and writer.
pub struct Stream {
    inner: RefCell<TcpStream>,
}

impl Stream {
    /// Wraps a connected stream, with Nagle off: requests and replies are batched by the
    /// proxy itself and must not wait for the kernel.
    pub fn new(stream: TcpStream) -> Self {
        // Failure only means a slower socket; not worth dropping the connection.
        let _ = stream.set_nodelay(true);
        Stream {
            inner: RefCell::new(stream),
        }
    }

    /// Reads what is available into `buf`'s spare room, growing it to at least `want` bytes of
    /// room when short. Returns the number of bytes read; 0 means end of stream.
    pub async fn read_into(&self, buf: &mut BytesMut, want: usize) -> io::Result<usize> {
        if buf.capacity() - buf.len() < MIN_READ_ROOM {
            buf.reserve(want.max(MIN_READ_ROOM));
        }
        let start = buf.len();
        let end = buf.capacity().min(start + READ_CHUNK);
        // The buffer is grown and cut back within each poll, so a read abandoned while pending
        // (an idle timeout) leaves the buffer exactly as it was.
        poll_fn(|cx| {
            buf.resize(end, 0);
            let mut stream = self.inner.borrow_mut();
            let result = Pin::new(&mut *stream).poll_read(cx, &mut buf[start..end]);
            let read = match &result {
                Poll::Ready(Ok(n)) => *n,
                _ => 0,
            };
            buf.truncate(start + read);
            result
        })
        .await
    }

    /// Writes all of `data`.
    pub async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let written = poll_fn(|cx| {
                let mut stream = self.inner.borrow_mut();
                Pin::new(&mut *stream).poll_write(cx, data)
            })
            .await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            data = &data[written..];
        }
        Ok(())
    }
}
