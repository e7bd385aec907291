//! The gateways' per-core values (an HTTP client, with its signer where it has one):
//! a connection belongs to the runtime that opened it, and monoio runtimes are one
//! per thread, so each thread makes its own on first use and keeps it in a
//! thread-local map, keyed by the backend instance (tests make several).

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells one instance's values from another's, whatever their type.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static VALUES: RefCell<HashMap<u64, Rc<dyn Any>>> = RefCell::new(HashMap::new());
}

/// One `T` per thread for one backend instance. Shared by every core (it holds only
/// the key): the values themselves never leave their thread.
pub(super) struct PerCore<T> {
    key: u64,
    _value: PhantomData<fn() -> T>,
}

impl<T: 'static> PerCore<T> {
    pub(super) fn new() -> PerCore<T> {
        PerCore {
            key: INSTANCES.fetch_add(1, Ordering::Relaxed),
            _value: PhantomData,
        }
    }

    /// This thread's value, made by `make` on first use.
    pub(super) fn get(&self, make: impl FnOnce() -> T) -> Rc<T> {
        let existing = VALUES.with(|values| values.borrow().get(&self.key).cloned());
        if let Some(value) = existing.and_then(|value| value.downcast::<T>().ok()) {
            return value;
        }
        let value = Rc::new(make());
        VALUES.with(|values| {
            values
                .borrow_mut()
                .insert(self.key, value.clone() as Rc<dyn Any>)
        });
        value
    }

    /// Drops this thread's value: call at the end of a short-lived runtime that used
    /// the backend (startup's), inside it, so that its connections go with it. The
    /// next use on this thread makes a new one.
    pub(super) fn leave(&self) {
        let value = VALUES.with(|values| values.borrow_mut().remove(&self.key));
        drop(value);
    }
}

impl<T> std::fmt::Debug for PerCore<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PerCore({})", self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_thread_and_instance() {
        let first = PerCore::<u32>::new();
        let second = PerCore::<String>::new();
        assert_eq!(*first.get(|| 1), 1);
        assert_eq!(*first.get(|| 2), 1, "made once on this thread");
        assert_eq!(*second.get(|| "other".to_string()), "other");
        let first = std::sync::Arc::new(first);
        let elsewhere = first.clone();
        std::thread::spawn(move || assert_eq!(*elsewhere.get(|| 3), 3))
            .join()
            .unwrap();
        assert_eq!(*first.get(|| 4), 1, "another thread's value is its own");
        first.leave();
        assert_eq!(*first.get(|| 5), 5, "made again after leaving");
    }
}
