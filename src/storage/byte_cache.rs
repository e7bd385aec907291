//! One core's copies of small objects' bytes, by data id. A data id names the same
//! bytes for as long as it exists, on every backend (objects are never written in
//! place: an overwrite gets a new id), so an entry never needs invalidating: a GET
//! that finds its row's id here sends these bytes without touching the backend. An
//! id whose object was removed is simply never asked for again, and ages out. Bounded
//! by bytes; the oldest entries make room first.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// Small objects' bytes by data id, on one core.
pub struct ByteCache {
    /// Objects larger than this are never kept.
    object_max: usize,
    /// Bytes kept at most.
    budget: usize,
    inner: RefCell<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Rc<str>, Rc<[u8]>>,
    /// Ids in the order they came in, the oldest first.
    order: VecDeque<Rc<str>>,
    bytes: usize,
}

impl ByteCache {
    /// A cache of objects up to `object_max` bytes, `budget` bytes in all.
    pub fn new(object_max: usize, budget: usize) -> ByteCache {
        ByteCache {
            object_max: object_max.min(budget),
            budget,
            inner: RefCell::new(Inner::default()),
        }
    }

    /// Whether an object of `size` bytes would be kept.
    pub fn admits(&self, size: u64) -> bool {
        size <= self.object_max as u64
    }

    /// The bytes of `data_id`, if kept.
    pub fn get(&self, data_id: &str) -> Option<Rc<[u8]>> {
        self.inner.borrow().entries.get(data_id).cloned()
    }

    /// Keeps the bytes of `data_id` (all of them), making room if needed.
    pub fn insert(&self, data_id: &str, bytes: Rc<[u8]>) {
        if !self.admits(bytes.len() as u64) {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        if inner.entries.contains_key(data_id) {
            return;
        }
        while inner.bytes + bytes.len() > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.len();
            }
        }
        let id: Rc<str> = Rc::from(data_id);
        inner.bytes += bytes.len();
        inner.order.push_back(id.clone());
        inner.entries.insert(id, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_small_objects_within_its_budget_oldest_out_first() {
        let cache = ByteCache::new(4, 10);
        assert!(cache.admits(4) && !cache.admits(5));
        cache.insert("big", Rc::from(&b"12345"[..]));
        assert!(cache.get("big").is_none());
        for id in ["a", "b", "c"] {
            cache.insert(id, Rc::from(&b"1234"[..]));
        }
        // 12 bytes over a budget of 10: "a" made room for "c".
        assert!(cache.get("a").is_none());
        assert_eq!(cache.get("b").as_deref(), Some(&b"1234"[..]));
        assert_eq!(cache.get("c").as_deref(), Some(&b"1234"[..]));
        cache.insert("c", Rc::from(&b"zzzz"[..]));
        assert_eq!(
            cache.get("c").as_deref(),
            Some(&b"1234"[..]),
            "an id's bytes never change"
        );
    }
}
