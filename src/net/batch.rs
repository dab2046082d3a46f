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
            gather(&self.frames[first..], offset, &mut self.iovecs);
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

/// Points `iovecs` at `frames`, the first from `offset` on. Frames that follow one another in
/// memory (a client's pipelined requests to one node, slices of its read buffer one after the
/// other; a node's replies to one client's run of requests; a split command's parts for one
/// node, written into one buffer) take one iovec between them, so the kernel walks fewer
/// segments, and a batch that is one run goes out as a plain send.
fn gather(frames: &[Bytes], offset: usize, iovecs: &mut Vec<libc::iovec>) {
    iovecs.clear();
    for (index, frame) in frames.iter().enumerate() {
        let bytes = if index == 0 {
            &frame[offset..]
        } else {
            &frame[..]
        };
        let start = bytes.as_ptr().cast::<libc::c_void>().cast_mut();
        if let Some(last) = iovecs.last_mut() {
            if last.iov_base.cast::<u8>().wrapping_add(last.iov_len) == start.cast::<u8>() {
                last.iov_len += bytes.len();
                continue;
            }
        }
        iovecs.push(libc::iovec {
            iov_base: start,
            iov_len: bytes.len(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_side_by_side_in_memory_share_an_iovec() {
        let mut buffer = Bytes::from_static(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n");
        let first = buffer.split_to(14);
        let second = buffer.clone();
        let elsewhere = Bytes::from(b"+OK\r\n".to_vec());
        let frames = [
            first.clone(),
            second.clone(),
            elsewhere.clone(),
            first.clone(),
        ];
        let mut iovecs = Vec::new();
        gather(&frames, 3, &mut iovecs);
        let lens: Vec<usize> = iovecs.iter().map(|v| v.iov_len).collect();
        assert_eq!(lens, [11 + 14, 5, 14]);
        assert_eq!(
            iovecs[0].iov_base.cast_const().cast::<u8>(),
            first[3..].as_ptr()
        );
        assert_eq!(iovecs[2].iov_base.cast_const().cast::<u8>(), first.as_ptr());
        // The first frame's remainder counts from the offset; an empty batch has no iovec.
        gather(&frames[..0], 0, &mut iovecs);
        assert!(iovecs.is_empty());
    }
}
