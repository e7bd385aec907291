//! The connections of one core that wait, idle, for their next request head, and
//! the clock of their waits. A waiting connection's read has no timer of its own
//! (a timer is a large part of a small task, and 10,000 of them cost the timer
//! wheel too): the core sweeps the set every `IDLE_SWEEP_MILLIS` and cancels the
//! reads whose time is up; first the hold (the read buffer kept for a busy
//! client's next request), then the idle timeout. When the connection cap is
//! reached, the oldest idle connection is closed to make room for a new client (an
//! idle keep-alive connection costs its client only a reconnect).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use monoio::io::{CancelHandle, Canceller};

use crate::limits;

/// One core's idle connections, oldest first, in their hold and past it.
#[derive(Default)]
pub(crate) struct IdleSet {
    holding: RefCell<BTreeMap<u64, Waiter>>,
    waiting: RefCell<BTreeMap<u64, Waiter>>,
    next: Cell<u64>,
}

/// A connection's wait: when it began, and the canceller of its read until the sweep
/// (or a reap) has used it.
struct Waiter {
    since: Instant,
    canceller: Option<Canceller>,
}

/// An idle connection's place in its set; leaves it when dropped.
pub(super) struct IdleTicket<'a> {
    set: &'a IdleSet,
    id: u64,
    holding: bool,
}

impl IdleSet {
    /// Enters a connection about to wait for its next head, keeping its buffer: its
    /// read takes the handle, which the end of the hold (or a reap) cancels.
    pub(super) fn hold(&self) -> (IdleTicket<'_>, CancelHandle) {
        let id = self.next.get();
        self.next.set(id + 1);
        self.enter(id, Instant::now(), true)
    }

    /// Moves a connection whose hold `ticket` ended on to the rest of its wait, as old
    /// as it was; its read takes the handle, which the idle timeout (or a reap)
    /// cancels.
    pub(super) fn wait(&self, ticket: IdleTicket<'_>) -> (IdleTicket<'_>, CancelHandle) {
        let id = ticket.id;
        let since = self
            .holding
            .borrow()
            .get(&id)
            .map_or_else(Instant::now, |waiter| waiter.since);
        drop(ticket);
        self.enter(id, since, false)
    }

    fn enter(&self, id: u64, since: Instant, holding: bool) -> (IdleTicket<'_>, CancelHandle) {
        let canceller = Canceller::new();
        let handle = canceller.handle();
        let waiter = Waiter {
            since,
            canceller: Some(canceller),
        };
        let set = if holding {
            &self.holding
        } else {
            &self.waiting
        };
        set.borrow_mut().insert(id, waiter);
        (
            IdleTicket {
                set: self,
                id,
                holding,
            },
            handle,
        )
    }

    /// Cancels the reads whose hold or whose idle wait is over at `now`.
    pub(crate) fn sweep(&self, now: Instant) {
        let hold = Duration::from_millis(limits::IDLE_BUFFER_HOLD_MILLIS);
        let timeout = Duration::from_secs(limits::IDLE_TIMEOUT_SECS);
        sweep_past(&mut self.holding.borrow_mut(), now, hold);
        sweep_past(&mut self.waiting.borrow_mut(), now, timeout);
    }

    /// Closes the connection that has waited longest; false when none waits.
    pub(crate) fn reap_oldest(&self) -> bool {
        let mut holding = self.holding.borrow_mut();
        let mut waiting = self.waiting.borrow_mut();
        let oldest = match (holding.first_key_value(), waiting.first_key_value()) {
            (Some((held, _)), Some((waited, _))) if held < waited => holding.pop_first(),
            (_, Some(_)) => waiting.pop_first(),
            (Some(_), None) => holding.pop_first(),
            (None, None) => None,
        };
        match oldest {
            Some((_, waiter)) => {
                if let Some(canceller) = waiter.canceller {
                    canceller.cancel();
                }
                true
            }
            None => false,
        }
    }
}

/// Cancels, oldest first, the waits that began at least `limit` before `now`.
fn sweep_past(waiters: &mut BTreeMap<u64, Waiter>, now: Instant, limit: Duration) {
    for waiter in waiters.values_mut() {
        if now.saturating_duration_since(waiter.since) < limit {
            break;
        }
        if let Some(canceller) = waiter.canceller.take() {
            canceller.cancel();
        }
    }
}

impl IdleTicket<'_> {
    /// Whether the sweep cancelled this connection's read: its time is up. False
    /// while it waits, and when it was reaped instead.
    pub(super) fn is_over(&self) -> bool {
        let set = if self.holding {
            &self.set.holding
        } else {
            &self.set.waiting
        };
        set.borrow()
            .get(&self.id)
            .is_some_and(|waiter| waiter.canceller.is_none())
    }
}

impl Drop for IdleTicket<'_> {
    fn drop(&mut self) {
        let set = if self.holding {
            &self.set.holding
        } else {
            &self.set.waiting
        };
        set.borrow_mut().remove(&self.id);
    }
}
