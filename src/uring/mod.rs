//! Each core's own io_uring for socket I/O: every client and backend receive, send, accept and
//! connect of that core goes through it, and one driver task submits and reaps them in batches.
//!
//! Why not glommio's sockets: glommio's `TcpStream` waits for readiness with a one-shot io_uring
//! poll per read, on a ring set up without `COOP_TASKRUN`. Each poll completion is delivered as
//! task work with `TWA_SIGNAL`, which interrupts the proxy thread with an IPI while it is busy;
//! in a VM an IPI is a VM exit on both sides. Measured at `-P 1` with 50 clients, that made the
//! proxy spend ~1.5x nutcracker's CPU per request with the same syscall count.
//!
//! This ring is set up `SINGLE_ISSUER | DEFER_TASKRUN` (falling back to `COOP_TASKRUN`, then to
//! a plain ring, on older kernels): completions are run only when the driver asks for them, in one `io_uring_enter`
//! per batch that also submits every send and receive queued since the last one. glommio stays
//! the executor (tasks, timers, cross-core channels).
//!
//! Waiting: the driver runs in a task queue of its own, so it can tell when no other task of
//! the core can run. Then it waits in this ring for the next completion, for up to [`NAP`]; only
//! when that runs out does it park through glommio, by reading an eventfd registered with this
//! ring, so either side wakes the core. glommio's park allocates and makes system calls of its
//! own each time (timer sources, its three rings): at `-P 1` a core runs out of work between
//! most requests, and that cost was ~24 allocations per request with one client. The eventfd
//! is silenced except while parked, so it costs nothing otherwise.
//!
//! Buffers: an operation's buffer is borrowed by its future. Dropping a future whose operation
//! is in flight cancels it and waits for its completion before the borrow ends ([`Op`]'s
//! `Drop`), so the kernel never writes into memory that has been given back.

mod op;

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::task::Waker;
use std::time::Duration;

use futures_lite::future;
use glommio::io::BufferedFile;
use glommio::{Latency, Shares, TaskQueueHandle};
use io_uring::{opcode, squeue, types, IoUring};

use crate::sync::Signal;

pub use op::Op;

/// Submission queue entries. Sends and receives are submitted once per driver round, so this
/// bounds one round's batch; a fuller queue is flushed early.
const SQ_ENTRIES: u32 = 1024;

/// Completion queue entries: one per operation in flight at most per round before the driver
/// reaps; the kernel keeps overflow (IORING_FEAT_NODROP), so this is a batch size, not a limit.
const CQ_ENTRIES: u32 = 8192;

/// Longest the driver waits in the ring itself, when nothing else on the core can run, before
/// it parks through glommio. Under load the next completion comes well within it, so the core
/// never goes through glommio's park (several allocations and system calls each time); glommio's
/// timers and cross-core messages wait at most this long meanwhile.
const NAP: Duration = Duration::from_millis(1);

/// `user_data` of cancel requests, whose own completions carry nothing to deliver.
const CANCEL_TAG: u64 = u64::MAX;

/// The state of one operation slot.
enum Slot {
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
    parks: Cell<u64>,
    /// Operation slots, indexed by `user_data`. A slot is freed only after its completion has
    /// been seen, so an index is never reused while the kernel may still complete it.
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    /// Set while the driver is between rounds and will submit again without being woken.
    busy: Cell<bool>,
    /// Completions the driver's last round reaped: 0 means the core has caught up.
    last_round: Cell<usize>,
    /// Wakes a parked driver when an operation is queued.
    kick: Signal,
    /// Tasks waiting for the driver's next round ([`Uring::next_round`]).
    round_waiters: RefCell<Vec<Waker>>,
    /// Signalled by the kernel when a completion arrives while the driver is parked.
    eventfd: OwnedFd,
}

impl Uring {
    /// Sets up the ring in the cheapest [`Mode`] the kernel supports. Fails when io_uring is
    /// unavailable or the memlock limit is too small.
    pub fn new() -> io::Result<Self> {
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
        Err(error.unwrap_or_else(|| io::ErrorKind::Unsupported.into()))
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
        Ok(Uring {
            ring: RefCell::new(ring),
            mode,
            operations: Cell::new(0),
            enters: Cell::new(0),
            naps: Cell::new(0),
            parks: Cell::new(0),
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            busy: Cell::new(false),
            last_round: Cell::new(0),
            kick: Signal::default(),
            round_waiters: RefCell::new(Vec::new()),
            eventfd,
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

    /// Queues `entry` as a new operation; returns its slot.
    fn start(&self, entry: squeue::Entry) -> u32 {
        self.operations.set(self.operations.get() + 1);
        let id = match self.free.borrow_mut().pop() {
            Some(id) => {
                self.slots.borrow_mut()[id as usize] = Slot::Waiting(None);
                id
            }
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(Slot::Waiting(None));
                (slots.len() - 1) as u32
            }
        };
        self.push(entry.user_data(u64::from(id)));
        id
    }

    /// Puts an entry on the submission queue, flushing the queue first if it is full.
    fn push(&self, entry: squeue::Entry) {
        let mut ring = self.ring.borrow_mut();
        // SAFETY (push): every buffer an entry points to is borrowed by the `Op` that owns the
        // entry's slot, and that `Op` does not return (or drop) before the completion is seen.
        while unsafe { ring.submission().push(&entry) }.is_err() {
            if let Err(err) = ring.submit() {
                if err.raw_os_error() != Some(libc::EBUSY) {
                    tracing::error!(%err, "io_uring submit failed");
                    std::process::exit(1);
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
    }

    /// The result of operation `id` if it has completed (freeing the slot), or `None` after
    /// storing `waker` to be woken when it does.
    fn poll_result(&self, id: u32, waker: Option<&Waker>) -> Option<i32> {
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[id as usize];
        match slot {
            Slot::Done(result) => {
                let result = *result;
                *slot = Slot::Free;
                self.free.borrow_mut().push(id);
                Some(result)
            }
            Slot::Waiting(stored) => {
                if let Some(waker) = waker {
                    match stored {
                        Some(old) if old.will_wake(waker) => {}
                        _ => *stored = Some(waker.clone()),
                    }
                }
                None
            }
            Slot::Free => Some(-libc::ECANCELED),
        }
    }

    /// Cancels operation `id` and waits until the kernel has completed it; returns its result.
    /// Blocks the core briefly: a socket operation's cancellation completes at once.
    fn cancel(&self, id: u32) -> i32 {
        if let Some(result) = self.poll_result(id, None) {
            return result;
        }
        self.push(
            opcode::AsyncCancel::new(u64::from(id))
                .build()
                .user_data(CANCEL_TAG),
        );
        loop {
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
    fn end_round(&self, reaped: usize) -> bool {
        self.last_round.set(reaped);
        let mut waiters = self.round_waiters.borrow_mut();
        let woke = !waiters.is_empty();
        for waker in waiters.drain(..) {
            waker.wake();
        }
        woke || reaped > 0
    }

    /// Whether the driver's last round found nothing new: no request, reply or send is left
    /// to come in without waiting. Writers that batch hold their write until then.
    pub fn caught_up(&self) -> bool {
        self.last_round.get() == 0
    }

    /// Turns the kernel's eventfd signal on completion on or off.
    fn set_eventfd(&self, enabled: bool) {
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
                tracing::error!(%err, "io_uring enter failed");
                std::process::exit(1);
            }
        }
    }

    /// Waits up to `timeout` for a completion (submitting what is queued); returns how many
    /// operations completed. Without the kernel's timed wait (before 5.11), returns 0 at once.
    fn nap(&self, timeout: Duration) -> usize {
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
    fn reap(&self, wait: bool) -> usize {
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
        let mut slots = self.slots.borrow_mut();
        for cqe in ring.completion() {
            if cqe.user_data() == CANCEL_TAG {
                continue;
            }
            let Ok(id) = usize::try_from(cqe.user_data()) else {
                continue;
            };
            if let Some(slot) = slots.get_mut(id) {
                if let Slot::Waiting(waker) = std::mem::replace(slot, Slot::Done(cqe.result())) {
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

/// Starts the core's driver ([`drive`]) in a task queue of its own, so that it can tell when the
/// rest of the core (the calling task's queue) has nothing to run.
pub fn spawn_driver(uring: std::rc::Rc<Uring>) {
    let executor = glommio::executor();
    let others = executor.current_task_queue();
    // One share against the default queue's thousand: whenever the other queue has anything
    // to run, the scheduler picks it before the driver's next round.
    let queue = executor.create_task_queue(Shares::Static(1), Latency::NotImportant, "ring");
    match glommio::spawn_local_into(async move { drive(&uring, others).await }, queue) {
        Ok(task) => task.detach(),
        Err(err) => {
            tracing::error!(%err, "cannot start the socket ring's driver");
            std::process::exit(1);
        }
    };
}

/// Whether the tasks of queue `others` have run since the last call.
fn others_ran(others: TaskQueueHandle) -> bool {
    // The stats are taken (reset) by each read. Were the queue ever gone, answering "no" costs
    // at most a 1 ms wait before the park; "yes" would spin the driver.
    glommio::executor()
        .task_queue_stats(others)
        .is_ok_and(|stats| stats.queue_selected() > 0)
}

/// Runs the core's ring until the process ends: submits and reaps in rounds while there is
/// work. When there is none and no other task of the core can run, waits in the ring for up
/// to [`NAP`]; after that, parks on the eventfd (through glommio) until woken.
async fn drive(uring: &Uring, others: TaskQueueHandle) {
    // SAFETY: dup returns a new descriptor (or -1, checked) that the BufferedFile then owns.
    let dup = unsafe { libc::dup(uring.eventfd.as_raw_fd()) };
    if dup < 0 {
        tracing::error!(err = %io::Error::last_os_error(), "cannot duplicate the ring's eventfd");
        std::process::exit(1);
    }
    // SAFETY: `dup` is a fresh descriptor owned by nothing else.
    let bell = unsafe { BufferedFile::from_raw_fd(dup) };
    // The pending eventfd read, kept across kicks (dropping it would cancel it in glommio) and
    // pinned here rather than boxed, so a park allocates nothing of percore's own.
    let mut ringing = std::pin::pin!(None);
    loop {
        uring.busy.set(true);
        let reaped = uring.reap(false);
        if uring.end_round(reaped) || others_ran(others) {
            // Let the woken tasks run; what they queue goes out in the next round.
            glommio::executor().yield_task_queue_now().await;
            continue;
        }
        // Nothing came back and nothing else can run: wait in the ring.
        let reaped = uring.nap(NAP);
        if uring.end_round(reaped) {
            glommio::executor().yield_task_queue_now().await;
            continue;
        }
        // Nothing came back: arm the eventfd, then look once more, so a completion that
        // arrived in between is not left waiting for the next one.
        uring.set_eventfd(true);
        if uring.end_round(uring.reap(false)) {
            uring.set_eventfd(false);
            glommio::executor().yield_task_queue_now().await;
            continue;
        }
        uring.busy.set(false);
        uring.parks.set(uring.parks.get() + 1);
        if ringing.is_none() {
            ringing.set(Some(bell.read_at(0, 8)));
        }
        let read = ringing.as_mut();
        let rang = future::or(
            async {
                if let Some(read) = read.as_pin_mut() {
                    let _ = read.await;
                }
                true
            },
            async {
                uring.kick.wait().await;
                false
            },
        )
        .await;
        if rang {
            ringing.set(None);
        }
        uring.set_eventfd(false);
    }
}
