//! Each core's own io_uring for socket I/O: every client and backend receive, send, accept and
//! connect of that core goes through it, and one driver task ([`super::driver`]) submits and
//! reaps them in batches.
//!
//! Why not glommio's sockets: glommio's `TcpStream` waits for readiness with a one-shot io_uring
//! poll per read, on a ring set up without `COOP_TASKRUN`. Each poll completion is delivered as
//! task work with `TWA_SIGNAL`, which interrupts the proxy thread with an IPI while it is busy;
//! in a VM an IPI is a VM exit on both sides. Measured at `-P 1` with 50 clients, that made the
//! proxy spend ~1.5x nutcracker's CPU per request with the same syscall count.
//!
//! This ring is set up `SINGLE_ISSUER | DEFER_TASKRUN` (falling back to `COOP_TASKRUN`, then to
//! a plain ring, on older kernels): completions are run only when the driver asks for them, in
//! one `io_uring_enter` per batch that also submits every send and receive queued since the last
//! one. glommio stays the executor (tasks, timers, cross-core channels).
//!
//! Buffers: an operation's buffer is borrowed by its future. Dropping a future whose operation
//! is in flight cancels it and waits for its completion before the borrow ends
//! ([`super::op::Op`]'s `Drop`), so the kernel never writes into memory that has been given
//! back.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::files::FileTable;
use crate::error::RingError;
use crate::sync::{store_waker, Signal};
use io_uring::{opcode, squeue, types, IoUring};

/// Submission queue entries. Sends and receives are submitted once per driver round, so this
/// bounds one round's batch; a fuller queue is flushed early.
const SQ_ENTRIES: u32 = 1024;

/// Completion queue entries: one per operation in flight at most per round before the driver
/// reaps; the kernel keeps overflow (IORING_FEAT_NODROP), so this is a batch size, not a limit.
const CQ_ENTRIES: u32 = 8192;

/// `user_data` of cancel requests, whose own completions carry nothing to deliver.
const CANCEL_TAG: u64 = u64::MAX;

/// Where one operation stands, in the table indexed by its `user_data`.
enum OpState {
    /// Not in use.
    Free,
    /// Submitted (or queued), waiting for its completion; the waker of the future polling it.
    Waiting(Option<Waker>),
    /// Completed with this result (bytes, a new fd, 0, or a negated errno).
    Done(i32),
}

/// What a core's socket ring has done since start, for `PROXY INFO`: per request, these say how
/// well the core batches (operations and system calls) and how often it runs out of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingStats {
    /// How completions are delivered ([`Mode`]).
    pub mode: Mode,
    /// Operations started: receives, sends, accepts, connects.
    pub operations: u64,
    /// `io_uring_enter` calls: the ring's system calls.
    pub enters: u64,
    /// Times the core ran out of work and waited in the ring for a completion.
    pub naps: u64,
    /// Times a wait in the ring ran out and the core parked through glommio until woken.
    pub parks: u64,
}

impl Default for RingStats {
    /// A plain ring that has done nothing.
    fn default() -> Self {
        RingStats {
            mode: Mode::Plain,
            operations: 0,
            enters: 0,
            naps: 0,
            parks: 0,
        }
    }
}

/// One core's io_uring and its operations in flight.
pub struct Uring {
    ring: RefCell<IoUring>,
    mode: Mode,
    /// Counters behind [`RingStats`].
    operations: Cell<u64>,
    enters: Cell<u64>,
    naps: Cell<u64>,
    pub(super) parks: Cell<u64>,
    /// Operations, indexed by `user_data`. An entry is freed only after its completion has
    /// been seen, so an index is never reused while the kernel may still complete it.
    ops: RefCell<Vec<OpState>>,
    free: RefCell<Vec<u32>>,
    /// Set while the driver is between rounds and will submit again without being woken.
    pub(super) busy: Cell<bool>,
    /// Completions the driver's last round reaped: 0 means the core has caught up.
    last_round: Cell<usize>,
    /// Wakes a parked driver when an operation is queued.
    pub(super) kick: Signal,
    /// Tasks waiting for the driver's next round ([`Uring::next_round`]).
    round_waiters: RefCell<Vec<Waker>>,
    /// Signalled by the kernel when a completion arrives while the driver is parked.
    pub(super) eventfd: OwnedFd,
    /// Set when `io_uring_enter` failed for good; the driver then ends the core with it.
    failure: RefCell<Option<io::Error>>,
    /// The time of the current round ([`Uring::now`]); `None` while the driver is parked.
    clock: Cell<Option<Instant>>,
    /// The ring's registered sockets.
    files: FileTable,
}

impl Uring {
    /// Sets up the ring in the cheapest [`Mode`] the kernel supports. Fails when io_uring is
    /// unavailable or the memlock limit is too small.
    pub fn new() -> Result<Self, RingError> {
        let mut error = None;
        for mode in Mode::PREFERRED {
            match Uring::with_mode(mode) {
                Ok(uring) => {
                    tracing::debug!(?mode, "socket ring set up");
                    return Ok(uring);
                }
                Err(err) => error = Some(err),
            }
        }
        Err(RingError::Setup(
            error.unwrap_or_else(|| io::ErrorKind::Unsupported.into()),
        ))
    }

    /// Sets up the ring in `mode`.
    pub fn with_mode(mode: Mode) -> io::Result<Self> {
        let mut ring = mode.build()?;
        // SAFETY: eventfd returns a new descriptor or -1, checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor owned by nothing else.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        ring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        ring.completion().disable_eventfd();
        let files = FileTable::register(&ring);
        Ok(Uring {
            ring: RefCell::new(ring),
            mode,
            operations: Cell::new(0),
            enters: Cell::new(0),
            naps: Cell::new(0),
            parks: Cell::new(0),
            ops: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            busy: Cell::new(false),
            last_round: Cell::new(0),
            kick: Signal::default(),
            round_waiters: RefCell::new(Vec::new()),
            eventfd,
            failure: RefCell::new(None),
            clock: Cell::new(None),
            files,
        })
    }

    /// What the ring has done since start.
    pub fn stats(&self) -> RingStats {
        RingStats {
            mode: self.mode,
            operations: self.operations.get(),
            enters: self.enters.get(),
            naps: self.naps.get(),
            parks: self.parks.get(),
        }
    }

    /// Queues `entry` as a new operation; returns its index.
    pub(super) fn start(&self, entry: squeue::Entry) -> u32 {
        self.operations.set(self.operations.get() + 1);
        let id = match self.free.borrow_mut().pop() {
            Some(id) => {
                self.ops.borrow_mut()[id as usize] = OpState::Waiting(None);
                id
            }
            None => {
                let mut ops = self.ops.borrow_mut();
                ops.push(OpState::Waiting(None));
                (ops.len() - 1) as u32
            }
        };
        if !self.push(entry.user_data(u64::from(id))) {
            // Never reached the kernel: complete it at once with the error, so its future
            // returns instead of waiting for a completion that cannot come.
            self.ops.borrow_mut()[id as usize] = OpState::Done(-libc::EIO);
        }
        id
    }

    /// Puts an entry on the submission queue, flushing the queue first if it is full. Returns
    /// false if the ring has failed and the entry could not be queued.
    fn push(&self, entry: squeue::Entry) -> bool {
        let mut ring = self.ring.borrow_mut();
        // SAFETY (push): every buffer an entry points to is borrowed by the `Op` that owns the
        // entry's index, and that `Op` does not return (or drop) before the completion is seen.
        while unsafe { ring.submission().push(&entry) }.is_err() {
            if self.failure.borrow().is_some() {
                return false;
            }
            if let Err(err) = ring.submit() {
                if err.raw_os_error() != Some(libc::EBUSY) {
                    self.fail(err);
                    return false;
                }
                drop(ring);
                self.reap(true);
                ring = self.ring.borrow_mut();
            }
        }
        drop(ring);
        if !self.busy.get() {
            self.kick.notify();
        }
        true
    }

    /// Records that the ring failed for good and wakes the driver to end the core with it.
    fn fail(&self, err: io::Error) {
        tracing::error!(%err, "socket ring failed");
        self.failure.borrow_mut().get_or_insert(err);
        self.kick.notify();
    }

    /// The ring's failure, once it has failed for good.
    pub(super) fn take_failure(&self) -> Option<io::Error> {
        self.failure.borrow_mut().take()
    }

    /// The result of operation `id` if it has completed (freeing its entry), or `None` after
    /// storing `waker` to be woken when it does.
    pub(super) fn poll_result(&self, id: u32, waker: Option<&Waker>) -> Option<i32> {
        let mut ops = self.ops.borrow_mut();
        let op = &mut ops[id as usize];
        match op {
            OpState::Done(result) => {
                let result = *result;
                *op = OpState::Free;
                self.free.borrow_mut().push(id);
                Some(result)
            }
            OpState::Waiting(stored) => {
                if let Some(waker) = waker {
                    store_waker(stored, waker);
                }
                None
            }
            OpState::Free => Some(-libc::ECANCELED),
        }
    }

    /// Cancels operation `id` and waits until the kernel has completed it; returns its result.
    /// Blocks the core briefly: a socket operation's cancellation completes at once.
    ///
    /// # Panics
    /// If the ring fails while the operation is in flight. The kernel may then still write
    /// into the operation's buffer, and returning would let that memory be reused; ending the
    /// process (panics abort) is the only safe answer. It is the one place below `main` that
    /// ends the process, and it needs a broken kernel interface to get there.
    pub(super) fn cancel(&self, id: u32) -> i32 {
        if let Some(result) = self.poll_result(id, None) {
            return result;
        }
        let queued = self.push(
            opcode::AsyncCancel::new(u64::from(id))
                .build()
                .user_data(CANCEL_TAG),
        );
        loop {
            let broken = !queued || self.failure.borrow().is_some();
            assert!(
                !broken,
                "socket ring failed with an operation in flight; its buffer may still be written"
            );
            self.reap(true);
            if let Some(result) = self.poll_result(id, None) {
                return result;
            }
        }
    }

    /// Completes once the driver has done another round of submitting and reaping: what a
    /// writer that holds its write for more requests waits for.
    pub async fn next_round(&self) {
        let mut waiting = false;
        std::future::poll_fn(|cx| {
            if waiting {
                return std::task::Poll::Ready(());
            }
            waiting = true;
            self.round_waiters.borrow_mut().push(cx.waker().clone());
            std::task::Poll::Pending
        })
        .await
    }

    /// Ends a round: records how many completions it reaped and wakes the tasks waiting for
    /// it. Returns whether the round woke any task.
    pub(super) fn end_round(&self, reaped: usize) -> bool {
        self.last_round.set(reaped);
        self.clock.set(Some(Instant::now()));
        let mut waiters = self.round_waiters.borrow_mut();
        let woke = !waiters.is_empty();
        for waker in waiters.drain(..) {
            waker.wake();
        }
        woke || reaped > 0
    }

    /// The time of the driver's current round, read once as the round ends and before the
    /// tasks it woke run; the clock itself while the driver is parked (tasks woken by timers
    /// then). At `-P 1` each request read the clock three times (arrival, backend write,
    /// reply) for a few microseconds of its own work; within one round the time differs by no
    /// more than the round's own work, which is what a request's latency is measured in anyway.
    pub fn now(&self) -> Instant {
        self.clock.get().unwrap_or_else(Instant::now)
    }

    /// Enters a connection's socket in the ring's file table; its slot, or `None` when the
    /// socket is to be named by its descriptor ([`super::files`]).
    pub(super) fn enter_file(&self, fd: i32) -> Option<u32> {
        self.files.enter(&self.ring.borrow(), fd)
    }

    /// Clears a slot [`Uring::enter_file`] gave, before its socket is closed.
    pub(super) fn clear_file(&self, slot: u32) {
        self.files.clear(&self.ring.borrow(), slot);
    }

    /// Marks the driver parked: until its next round, [`Uring::now`] reads the clock.
    pub(super) fn stop_clock(&self) {
        self.clock.set(None);
    }

    /// Whether the driver's last round found nothing new: no request, reply or send is left
    /// to come in without waiting. Writers that batch hold their write until then.
    pub fn caught_up(&self) -> bool {
        self.last_round.get() == 0
    }

    /// Turns the kernel's eventfd signal on completion on or off.
    pub(super) fn set_eventfd(&self, enabled: bool) {
        let mut ring = self.ring.borrow_mut();
        if enabled {
            ring.completion().enable_eventfd();
        } else {
            ring.completion().disable_eventfd();
        }
    }

    /// Counts one `io_uring_enter` and checks its result. A wait cut short (timeout, signal,
    /// completion queue full) is normal: the completions are reaped next either way. Any
    /// other error means the ring itself is broken, and the core cannot go on without it.
    fn entered(&self, result: io::Result<usize>) {
        self.enters.set(self.enters.get() + 1);
        if let Err(err) = result {
            if !matches!(
                err.raw_os_error(),
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)
            ) {
                self.fail(err);
            }
        }
    }

    /// Waits up to `timeout` for a completion (submitting what is queued); returns how many
    /// operations completed. Without the kernel's timed wait (before 5.11), returns 0 at once.
    pub(super) fn nap(&self, timeout: Duration) -> usize {
        {
            let ring = self.ring.borrow();
            if !ring.params().is_feature_ext_arg() {
                return 0;
            }
            let spec = types::Timespec::from(timeout);
            let args = types::SubmitArgs::new().timespec(&spec);
            self.naps.set(self.naps.get() + 1);
            self.entered(ring.submitter().submit_with_args(1, &args));
        }
        self.reap(false)
    }

    /// Submits what is queued and delivers every completion that is ready, waiting for at
    /// least one if `wait`. Returns how many operations completed.
    pub(super) fn reap(&self, wait: bool) -> usize {
        let mut ring = self.ring.borrow_mut();
        // Nothing to submit, no task work pending and no completions held back by the kernel
        // after a full completion queue: then the queue can be read without a system call.
        let idle = ring.submission().is_empty()
            && !ring.submission().taskrun()
            && !ring.submission().cq_overflow();
        if wait || !idle {
            self.entered(ring.submit_and_wait(usize::from(wait)));
        }
        let mut done = 0;
        let mut ops = self.ops.borrow_mut();
        for cqe in ring.completion() {
            if cqe.user_data() == CANCEL_TAG {
                continue;
            }
            let Ok(id) = usize::try_from(cqe.user_data()) else {
                continue;
            };
            if let Some(op) = ops.get_mut(id) {
                if let OpState::Waiting(waker) = std::mem::replace(op, OpState::Done(cqe.result()))
                {
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                    done += 1;
                }
            }
        }
        done
    }
}

/// How the kernel delivers this ring's completions, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `SINGLE_ISSUER | DEFER_TASKRUN` (Linux 6.1+): completions run only when the driver
    /// asks for them, in its own `io_uring_enter`.
    DeferTaskrun,
    /// `COOP_TASKRUN` (5.19+): no IPI; completions run at the thread's next system call.
    CoopTaskrun,
    /// No flags: completions interrupt the thread, as glommio's own ring's do.
    Plain,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::DeferTaskrun => "defer_taskrun",
            Mode::CoopTaskrun => "coop_taskrun",
            Mode::Plain => "plain",
        })
    }
}

impl Mode {
    /// The modes in the order they are tried.
    pub const PREFERRED: [Mode; 3] = [Mode::DeferTaskrun, Mode::CoopTaskrun, Mode::Plain];

    fn build(self) -> io::Result<IoUring> {
        let mut builder = IoUring::builder();
        match self {
            Mode::DeferTaskrun => builder
                .setup_single_issuer()
                .setup_defer_taskrun()
                .setup_taskrun_flag(),
            Mode::CoopTaskrun => builder.setup_coop_taskrun().setup_taskrun_flag(),
            Mode::Plain => &mut builder,
        };
        builder.setup_cqsize(CQ_ENTRIES).build(SQ_ENTRIES)
    }
}
