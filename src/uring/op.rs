//! One io_uring operation as a future: queued on first poll, ready when its completion has
//! been reaped, cancelled and waited for if dropped before that.
//!
//! The future does not own the memory the operation reads or writes; the code that builds the
//! entry borrows it for as long as the `Op` lives, and `Drop` makes sure the kernel is done
//! with it before the borrow can end.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use io_uring::squeue;

use super::Uring;

/// An operation on `uring`.
pub struct Op<'a> {
    uring: &'a Uring,
    /// The entry, until the first poll queues it.
    entry: Option<squeue::Entry>,
    /// The operation's slot once queued, until its result has been taken.
    id: Option<u32>,
}

impl<'a> Op<'a> {
    /// An operation that will submit `entry`.
    ///
    /// # Safety
    /// Every buffer or address `entry` points to must stay valid, and not be used otherwise,
    /// for as long as the returned `Op` lives.
    pub unsafe fn new(uring: &'a Uring, entry: squeue::Entry) -> Self {
        Op {
            uring,
            entry: Some(entry),
            id: None,
        }
    }

    /// Cancels the operation if it is in flight and waits for the kernel to finish with it.
    /// Returns its result if it had been queued: a cancelled receive may still have received.
    pub fn cancel(&mut self) -> Option<io::Result<usize>> {
        self.entry = None;
        self.id.take().map(|id| to_result(self.uring.cancel(id)))
    }
}

impl Future for Op<'_> {
    type Output = io::Result<usize>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = match (self.id, self.entry.take()) {
            (Some(id), _) => id,
            (None, Some(entry)) => {
                let id = self.uring.start(entry);
                self.id = Some(id);
                id
            }
            (None, None) => return Poll::Ready(Err(io::ErrorKind::Other.into())),
        };
        match self.uring.poll_result(id, Some(cx.waker())) {
            Some(result) => {
                self.id = None;
                Poll::Ready(to_result(result))
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Op<'_> {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// A completion's result as an `io::Result`.
fn to_result(result: i32) -> io::Result<usize> {
    usize::try_from(result).map_err(|_| io::Error::from_raw_os_error(-result))
}
