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
    /// `again`: the place of a ticket this connection held a moment ago (its wait
    /// goes on), so that it stays as old as it is.
    pub(super) fn enter(&self, again: Option<u64>) -> (IdleTicket<'_>, CancelHandle) {
        let id = again.unwrap_or_else(|| {
            let id = self.next.get();
            self.next.set(id + 1);
            id
        });
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
    /// This ticket's place in the set.
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// Cancels this connection's wait (its timeout came), unless it was reaped already;
    /// false when it was.
    pub(super) fn cancel(self) -> bool {
        let waiting = self.set.waiting.borrow_mut().remove(&self.id);
        match waiting {
            Some(canceller) => {
                canceller.cancel();
                true
            }
            None => false,
        }
    }
}

impl Drop for IdleTicket<'_> {
    fn drop(&mut self) {
        self.set.waiting.borrow_mut().remove(&self.id);
    }
}
