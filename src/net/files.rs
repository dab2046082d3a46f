//! The core's registered file table: connections' sockets entered once in the ring's own table,
//! so each receive and send names a slot of it instead of a descriptor.
//!
//! Why: for an operation on a plain descriptor the kernel looks the file up and takes a
//! reference to it (`fget`), then drops it (`fput`), every time; at `-P 1` a request costs two
//! to four socket operations, and perf showed those lookups at ~3% of the proxy's CPU. A
//! registered file is looked up in the ring's table without touching a reference count. The
//! price is two system calls per connection (enter it, clear it), paid once over a
//! connection's life rather than per request.
//!
//! The table is sparse and of fixed size, set up with the ring; a connection that finds it
//! full, or a kernel without sparse tables (before 5.19), uses its descriptor as before. A slot
//! is cleared before its socket is closed: the table holds a reference of its own, and would
//! otherwise keep the connection open. Operations in flight hold theirs, so clearing a slot
//! never pulls a file from under one.

use std::cell::{Cell, RefCell};

use io_uring::IoUring;

/// Slots per core at most: connections beyond it (clients and backends of one core) use their
/// descriptors. The kernel sizes the table by it (a few bytes a slot), not by what is used.
const MAX_SLOTS: u32 = 65_536;

/// Which slots of the table are in use.
#[derive(Debug)]
pub(super) struct FileTable {
    /// Slots in the kernel's table; 0 when there is none.
    size: u32,
    /// Slots never used yet start here.
    next: Cell<u32>,
    /// Slots given back, reused first.
    free: RefCell<Vec<u32>>,
}

impl FileTable {
    /// Sets up `ring`'s table: as many slots as the process may open files, up to
    /// [`MAX_SLOTS`]; none if the kernel has no sparse tables.
    pub(super) fn register(ring: &IoUring) -> FileTable {
        let size = open_files_limit().min(MAX_SLOTS);
        let size = match ring.submitter().register_files_sparse(size) {
            Ok(()) => size,
            Err(err) => {
                tracing::debug!(error = %err, "no registered file table; sockets use descriptors");
                0
            }
        };
        FileTable {
            size,
            next: Cell::new(0),
            free: RefCell::new(Vec::new()),
        }
    }

    /// Enters `fd` in a free slot and returns the slot; `None` when the table is full (or
    /// absent) or the kernel refused, and the descriptor is then used as it is.
    pub(super) fn enter(&self, ring: &IoUring, fd: i32) -> Option<u32> {
        let slot = self.free.borrow_mut().pop().or_else(|| {
            let next = self.next.get();
            (next < self.size).then(|| {
                self.next.set(next + 1);
                next
            })
        })?;
        match ring.submitter().register_files_update(slot, &[fd]) {
            Ok(1) => Some(slot),
            _ => {
                self.free.borrow_mut().push(slot);
                None
            }
        }
    }

    /// Clears `slot` (the table's reference to its socket goes) and frees it for reuse.
    pub(super) fn clear(&self, ring: &IoUring, slot: u32) {
        // Clearing a slot that was entered can only fail if the ring itself is gone; the slot
        // is then not reused, so a later connection never shares it.
        if let Ok(1) = ring.submitter().register_files_update(slot, &[-1]) {
            self.free.borrow_mut().push(slot);
        }
    }
}

/// The process's soft limit of open files (`RLIMIT_NOFILE`), which the kernel also holds a
/// registered table's size to.
fn open_files_limit() -> u32 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed to it.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    u32::try_from(limit.rlim_cur).unwrap_or(u32::MAX)
}
