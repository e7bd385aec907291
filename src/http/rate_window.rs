//! The rate rule for bytes that move between the daemon and a slow peer: at least
//! a minimum number of bytes over every window of time. Request bodies (the client
//! sending) and responses (the client reading) each keep one.

use std::time::{Duration, Instant};

use crate::limits;

#[derive(Debug)]
pub(crate) struct RateWindow {
    began: Instant,
    /// Bytes moved since the current window began.
    in_window: u64,
    window: Duration,
    /// Bytes a window must move.
    needed: u64,
}

impl RateWindow {
    pub(crate) fn new(window: Duration, needed: u64) -> RateWindow {
        RateWindow {
            began: Instant::now(),
            in_window: 0,
            window,
            needed,
        }
    }

    /// The rule for a request body (`BODY_RATE_*`).
    pub(crate) fn for_body() -> RateWindow {
        let secs = limits::BODY_RATE_WINDOW_SECS;
        RateWindow::new(
            Duration::from_secs(secs),
            limits::BODY_RATE_MIN_BYTES_PER_SEC * secs,
        )
    }

    /// The rule for a response (`SEND_RATE_*`).
    pub(crate) fn for_send() -> RateWindow {
        let secs = limits::SEND_RATE_WINDOW_SECS;
        RateWindow::new(
            Duration::from_secs(secs),
            limits::SEND_RATE_MIN_BYTES_PER_SEC * secs,
        )
    }

    /// How long the next wait may last; `None` when the window has ended short of its
    /// bytes (the peer is too slow). An ended window that moved enough begins a new one.
    pub(crate) fn time_left(&mut self) -> Option<Duration> {
        let left = self.window.saturating_sub(self.began.elapsed());
        if !left.is_zero() {
            return Some(left);
        }
        if self.in_window < self.needed {
            return None;
        }
        self.restart();
        Some(self.window)
    }

    pub(crate) fn count(&mut self, n: u64) {
        self.in_window += n;
        // A window's worth moved: the next window starts now, so a stall is caught one
        // window after it begins, however fast the start.
        if self.in_window >= self.needed {
            self.restart();
        }
    }

    pub(crate) fn window_over(&self) -> bool {
        self.began.elapsed() >= self.window
    }

    fn restart(&mut self) {
        self.began = Instant::now();
        self.in_window = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_window_short_of_its_bytes_is_too_slow() {
        let mut rate = RateWindow::new(Duration::ZERO, 10);
        rate.count(9);
        assert!(rate.window_over());
        assert_eq!(rate.time_left(), None);
    }

    #[test]
    fn a_window_that_moved_enough_begins_a_new_one() {
        let mut rate = RateWindow::new(Duration::from_secs(20), 10);
        let first = rate.began;
        rate.count(4);
        assert_eq!(rate.in_window, 4);
        rate.count(6);
        assert_eq!(rate.in_window, 0, "a window's worth starts the next window");
        assert!(rate.began >= first);
        assert!(rate.time_left().is_some());
    }
}
