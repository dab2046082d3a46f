//! Keeping a backend connection's request queues from pinning the memory a burst grew.

use std::cell::RefCell;
use std::collections::VecDeque;

use super::Outbound;

/// Request queue capacity kept when idle; more is released (see [`shrink_if_idle`]).
const QUEUE_KEEP: usize = 1024;

/// Gives back the memory of a request queue that a burst grew, once it is empty again, so
/// a past burst does not pin memory for the life of the connection.
pub(super) fn shrink_if_idle(queue: &RefCell<VecDeque<Outbound>>) {
    let mut queue = queue.borrow_mut();
    if queue.is_empty() && queue.capacity() > QUEUE_KEEP {
        queue.shrink_to(QUEUE_KEEP);
    }
}
