//! Gathered writes: many requests (to a backend) or replies (to a client) sent in one
//! `sendmsg`, each straight from the buffer it was read into.
//!
//! A frame is a `Bytes` slice of the connection's read buffer; the writer keeps a reference to
//! each frame of the batch and points one iovec at each, so the only copy of a payload is the
//! kernel's into the socket. The frame list and the iovec array are reused from batch to batch,
//! so a warm writer allocates nothing.

use std::io;

use bytes::Bytes;

use super::socket::Stream;

/// Most frames in one `sendmsg` (the kernel takes up to IOV_MAX = 1024 iovecs).
pub const MAX_FRAMES: usize = 512;

/// Most bytes in one batch, so one write never pins a huge amount of read buffers.
const MAX_BYTES: usize = 256 * 1024;

/// The frames of one write.
pub struct WriteBatch {
    frames: Vec<Bytes>,
    /// Scratch for the iovecs of one `sendmsg`, pointing into `frames`.
    iovecs: Vec<libc::iovec>,
    bytes: usize,
    /// Frame capacity kept between batches; more is released after a burst.
    keep: usize,
}

impl WriteBatch {
    /// A writer's batch that keeps room for `keep` frames between writes. A backend's writer
    /// keeps [`MAX_FRAMES`] (it is one of a few and always busy); a client's keeps little, so
    /// thousands of mostly idle clients do not each hold a burst's worth.
    pub fn new(keep: usize) -> Self {
        WriteBatch {
            frames: Vec::new(),
            iovecs: Vec::new(),
            bytes: 0,
            keep,
        }
    }

    /// Adds a frame to the batch.
    pub fn push(&mut self, frame: Bytes) {
        self.bytes += frame.len();
        self.frames.push(frame);
    }

    /// Whether the batch should be written before more is added.
    pub fn is_full(&self) -> bool {
        self.frames.len() >= MAX_FRAMES || self.bytes >= MAX_BYTES
    }

    /// Bytes in the batch.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Writes every frame, in order, then empties the batch.
    pub async fn write(&mut self, stream: &Stream) -> io::Result<()> {
        let mut first = 0;
        let mut offset = 0;
        while first < self.frames.len() {
            self.iovecs.clear();
            for (index, frame) in self.frames[first..].iter().enumerate() {
                let skip = if index == 0 { offset } else { 0 };
                self.iovecs.push(libc::iovec {
                    iov_base: frame[skip..].as_ptr() as *mut libc::c_void,
                    iov_len: frame.len() - skip,
                });
            }
            let mut written = stream.send_iovecs(&self.iovecs).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            // Skip what went out: whole frames, then part of the next.
            while first < self.frames.len() && written >= self.frames[first].len() - offset {
                written -= self.frames[first].len() - offset;
                offset = 0;
                first += 1;
            }
            offset += written;
        }
        self.frames.clear();
        self.bytes = 0;
        if self.frames.capacity() > self.keep {
            self.frames.shrink_to(self.keep);
            self.iovecs.shrink_to(self.keep);
        }
        Ok(())
    }
}
