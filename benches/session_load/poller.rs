//! A minimal level-triggered epoll over a thread's sockets, so a few threads serve a thousand
//! connections: a thread per subscriber would put a thousand threads on two cores and make
//! the load tool's own scheduling the figure. libc is already a dependency of percore.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

/// Readiness events taken per `epoll_wait`: enough that one call serves a busy round of a
/// thread's connections.
const EVENTS_PER_WAIT: usize = 256;

/// How long a thread waits for input before it looks at its stop flag and its timeout again.
pub const POLL_MS: i32 = 100;

/// One epoll instance and its event array.
pub struct Poller {
    epoll: RawFd,
    events: Vec<libc::epoll_event>,
}

impl Poller {
    pub fn new() -> io::Result<Poller> {
        // SAFETY: epoll_create1 takes no pointers; the fd it returns is owned by this Poller.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        let events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT];
        Ok(Poller { epoll, events })
    }

    /// Watches `socket` for input (and hang-ups), reported as `token`.
    pub fn add(&self, socket: &impl AsRawFd, token: usize) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
            u64: token as u64,
        };
        // SAFETY: `event` is a valid epoll_event for the duration of the call; the socket fd
        // is open (borrowed from its owner, which outlives this thread's polling).
        let rc = unsafe {
            libc::epoll_ctl(
                self.epoll,
                libc::EPOLL_CTL_ADD,
                socket.as_raw_fd(),
                &mut event,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stops watching `socket` (closed by its peer: it would be reported ready forever).
    pub fn remove(&self, socket: &impl AsRawFd) -> io::Result<()> {
        // SAFETY: EPOLL_CTL_DEL ignores the event pointer (null is allowed since Linux 2.6.9).
        let rc = unsafe {
            libc::epoll_ctl(
                self.epoll,
                libc::EPOLL_CTL_DEL,
                socket.as_raw_fd(),
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` and puts the tokens of the ready sockets in `ready`.
    pub fn wait(&mut self, timeout_ms: i32, ready: &mut Vec<usize>) -> io::Result<()> {
        ready.clear();
        // SAFETY: the pointer and length describe `self.events`, which lives across the call.
        let count = unsafe {
            libc::epoll_wait(
                self.epoll,
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                timeout_ms,
            )
        };
        if count < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(error)
            };
        }
        ready.extend(
            self.events[..count as usize]
                .iter()
                .map(|event| event.u64 as usize),
        );
        Ok(())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        // SAFETY: the fd is this Poller's own and closed once, here.
        unsafe { libc::close(self.epoll) };
    }
}
