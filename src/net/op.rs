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

use super::ring::Uring;

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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::rc::Rc;
    use std::time::Duration;

    use glommio::LocalExecutorBuilder;
    use io_uring::{opcode, types::Fd};

    use super::Op;
    use crate::net::{spawn_driver, Mode, Uring};

    /// A receive of up to `buf.len()` bytes from `fd`.
    fn recv<'a>(uring: &'a Uring, fd: &UnixStream, buf: &mut [u8]) -> Op<'a> {
        let entry = opcode::Recv::new(Fd(fd.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32);
        // SAFETY: every caller keeps `buf` alive and untouched while the Op lives.
        unsafe { Op::new(uring, entry.build()) }
    }

    /// In every mode: a send and a receive complete; a receive dropped while pending is
    /// cancelled without disturbing the socket; and a core with nothing to do, which waits in
    /// the ring and then parks, is woken by data that arrives from another thread, through the
    /// eventfd.
    #[test]
    fn send_receive_cancel_and_wake_in_every_mode() {
        for mode in Mode::PREFERRED {
            let result = LocalExecutorBuilder::default()
                .spawn(move || async move {
                    let uring = Rc::new(Uring::with_mode(mode).expect("ring"));
                    spawn_driver(uring.clone()).expect("driver").detach();
                    let (a, b) = UnixStream::pair().expect("socket pair");

                    let data = b"hello";
                    let send = opcode::Send::new(Fd(a.as_raw_fd()), data.as_ptr(), 5).build();
                    // SAFETY: `data` is static.
                    assert_eq!(unsafe { Op::new(&uring, send) }.await.unwrap(), 5);
                    let mut buf = [0u8; 16];
                    let got = recv(&uring, &b, &mut buf).await.unwrap();
                    assert_eq!(&buf[..got], b"hello", "{mode:?}");

                    {
                        let mut pending = recv(&uring, &b, &mut buf);
                        let polled = futures_lite::future::poll_once(&mut pending).await;
                        assert!(polled.is_none(), "{mode:?}: nothing to receive yet");
                        glommio::timer::sleep(Duration::from_millis(5)).await;
                    }

                    let mut writer = a.try_clone().expect("clone");
                    let sender = std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(50));
                        writer.write_all(b"late").expect("write");
                    });
                    let late = async { Ok(recv(&uring, &b, &mut buf).await) };
                    let got = glommio::timer::timeout(Duration::from_secs(5), late)
                        .await
                        .unwrap_or_else(|_| panic!("{mode:?}: a parked core was not woken"))
                        .unwrap();
                    assert_eq!(&buf[..got], b"late", "{mode:?}");
                    sender.join().expect("sender");
                    // The 50 ms without work: first a wait in the ring, then a park.
                    let stats = uring.stats();
                    assert!(stats.naps > 0 && stats.parks > 0, "{mode:?}: {stats:?}");
                })
                .expect("executor")
                .join();
            result.expect("executor ran");
        }
    }
}
