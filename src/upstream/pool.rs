//! One core's idle keep-alive connections, per endpoint origin. monoio futures are
//! not `Send`, so each runtime has its own pool (inside its `Client`'s `Rc`) and no
//! lock is taken. A connection is put back only once its answer was read to the end
//! with neither side asking to close; each carries its own expiry (the pool's idle
//! limit, or sooner when the server advertised a shorter keep-alive timeout), and
//! one past it is never handed out. The pool is generic over what it holds so that
//! its rules are tested with plain values.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Idle connections by origin, oldest first in each queue.
#[derive(Debug)]
pub(crate) struct Pool<C> {
    idle: RefCell<HashMap<String, VecDeque<Idle<C>>>>,
    per_endpoint_max: usize,
}

#[derive(Debug)]
struct Idle<C> {
    connection: C,
    expires: Instant,
}

impl<C> Pool<C> {
    /// A pool keeping at most `per_endpoint_max` idle connections per origin (0 keeps none).
    pub(crate) fn new(per_endpoint_max: usize) -> Pool<C> {
        Pool {
            idle: RefCell::new(HashMap::new()),
            per_endpoint_max,
        }
    }

    /// The connection of `origin` returned most recently that has not expired by
    /// `now` (the freshest is the least likely to have been closed by the server).
    /// Expired ones met on the way are dropped, which closes them.
    pub(crate) fn take(&self, origin: &str, now: Instant) -> Option<C> {
        let mut idle = self.idle.borrow_mut();
        let queue = idle.get_mut(origin)?;
        queue.retain(|entry| entry.expires > now);
        let taken = queue.pop_back().map(|entry| entry.connection);
        if queue.is_empty() {
            idle.remove(origin);
        }
        taken
    }

    /// Keeps `connection` for `origin` until `expires`. If the origin already holds
    /// its maximum, the connection idle longest is closed to make room. Expired
    /// connections of every origin are closed on the way.
    pub(crate) fn put(&self, origin: &str, connection: C, expires: Instant, now: Instant) {
        self.evict_expired(now);
        if self.per_endpoint_max == 0 || expires <= now {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let queue = idle.entry(origin.to_string()).or_default();
        if queue.len() >= self.per_endpoint_max {
            queue.pop_front();
        }
        queue.push_back(Idle {
            connection,
            expires,
        });
    }

    /// Closes every connection expired by `now`; returns how many.
    pub(crate) fn evict_expired(&self, now: Instant) -> usize {
        let mut idle = self.idle.borrow_mut();
        let mut expired = 0;
        for queue in idle.values_mut() {
            let before = queue.len();
            queue.retain(|entry| entry.expires > now);
            expired += before - queue.len();
        }
        idle.retain(|_, queue| !queue.is_empty());
        expired
    }

    /// Closes every idle connection of `origin` (after one was found closed by its
    /// server: the others, idle as long or longer, are likely closed too).
    pub(crate) fn clear(&self, origin: &str) {
        self.idle.borrow_mut().remove(origin);
    }

    /// Idle connections held for `origin`.
    pub(crate) fn idle_count(&self, origin: &str) -> usize {
        self.idle.borrow().get(origin).map_or(0, VecDeque::len)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(base: Instant, secs: u64) -> Instant {
        base + Duration::from_secs(secs)
    }

    #[test]
    fn hands_out_the_freshest_and_drops_expired() {
        let t0 = Instant::now();
        let pool = Pool::new(4);
        pool.put("a", 1, at(t0, 10), t0);
        pool.put("a", 2, at(t0, 3), at(t0, 1));
        pool.put("b", 9, at(t0, 10), t0);
        assert_eq!(pool.idle_count("a"), 2);
        assert_eq!(pool.take("a", at(t0, 2)), Some(2), "the newest first");
        pool.put("a", 2, at(t0, 3), at(t0, 2));
        assert_eq!(pool.take("a", at(t0, 4)), Some(1), "2 expired at 3 s");
        assert_eq!(pool.take("a", at(t0, 4)), None);
        assert_eq!(pool.idle_count("a"), 0);
        assert_eq!(pool.take("b", at(t0, 11)), None, "expired");
        assert_eq!(pool.take("c", t0), None);
    }

    #[test]
    fn keeps_at_most_the_maximum_per_origin() {
        let t0 = Instant::now();
        let pool = Pool::new(2);
        for n in 1..=3 {
            pool.put("a", n, at(t0, 10), t0);
        }
        pool.put("b", 7, at(t0, 10), t0);
        assert_eq!(pool.idle_count("a"), 2, "the oldest (1) was closed");
        assert_eq!(pool.take("a", t0), Some(3));
        assert_eq!(pool.take("a", t0), Some(2));
        assert_eq!(pool.idle_count("b"), 1);
        let none = Pool::new(0);
        none.put("a", 1, at(t0, 10), t0);
        assert_eq!(none.idle_count("a"), 0, "a pool of 0 keeps nothing");
        pool.put("b", 8, t0, t0);
        assert_eq!(pool.idle_count("b"), 1, "already expired: not kept");
    }

    #[test]
    fn evicts_and_clears() {
        let t0 = Instant::now();
        let pool = Pool::new(8);
        pool.put("a", 1, at(t0, 2), t0);
        pool.put("a", 2, at(t0, 5), t0);
        pool.put("b", 3, at(t0, 2), t0);
        assert_eq!(pool.evict_expired(at(t0, 3)), 2);
        assert_eq!((pool.idle_count("a"), pool.idle_count("b")), (1, 0));
        pool.put("a", 4, at(t0, 9), at(t0, 3));
        pool.clear("a");
        assert_eq!(pool.idle_count("a"), 0);
    }
}
