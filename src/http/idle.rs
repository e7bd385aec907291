//! The connections of one core that wait, idle, for their next request head: when
//! the connection cap is reached, the oldest of them is closed to make room for a
//! new client (an idle keep-alive connection costs its client only a reconnect).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use monoio::io::{CancelHandle, Canceller};

/// One core's idle connections, oldest first.
#[derive(Default)]
pub(crate) struct IdleSet {
    waiting: RefCell<BTreeMap<u64, Canceller>>,
    next: Cell<u64>,
}

/// An idle connection's place in its set; leaves it when dropped.
pub(super) struct IdleTicket<'a> {
    set: &'a IdleSet,
    id: u64,
}

impl IdleSet {
    /// Enters a connection about to wait for its next head: its read takes the handle,
    /// which reaping the connection cancels.
    pub(super) fn enter(&self) -> (IdleTicket<'_>, CancelHandle) {
        let id = self.next.get();
        self.next.set(id + 1);
        let canceller = Canceller::new();
        let handle = canceller.handle();
        self.waiting.borrow_mut().insert(id, canceller);
        (IdleTicket { set: self, id }, handle)
    }

    /// Closes the connection that has waited longest; false when none waits.
    pub(crate) fn reap_oldest(&self) -> bool {
        let oldest = self.waiting.borrow_mut().pop_first();
        match oldest {
            Some((_, canceller)) => {
                canceller.cancel();
                true
            }
            None => false,
        }
    }
}

impl IdleTicket<'_> {
    /// Cancels this connection's wait (its timeout came), unless it was reaped already.
    pub(super) fn cancel(self) {
        if let Some(canceller) = self.set.waiting.borrow_mut().remove(&self.id) {
            canceller.cancel();
        }
    }
}

impl Drop for IdleTicket<'_> {
    fn drop(&mut self) {
        self.set.waiting.borrow_mut().remove(&self.id);
    }
}
