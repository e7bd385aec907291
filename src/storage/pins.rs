//! Open objects keep their bytes, on backends where an open handle holds nothing by
//! itself (rows in a database, objects upstream). The reclaimer removes a released
//! object only once every read that could name it has opened it (`reclaim`), so a
//! removal can still meet a reader streaming the object: it is then deferred, and
//! done when the last such reader lets go. Shared by every core: one lock, held for a
//! map operation.
//!
//! A gateway's reader cannot await a DELETE when it lets go (a drop is not async):
//! the removal it owes waits in the pins' deferred list, for the backend's next
//! `remove` to do first.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Pin {
    readers: u32,
    /// A removal came while readers held the object: done by the last one.
    removed: bool,
}

/// The objects open for reading, shared by every clone of a backend.
#[derive(Debug, Default, Clone)]
pub(super) struct Pins {
    open: Arc<Mutex<HashMap<String, Pin>>>,
    /// Removals that waited for their last reader, done by the next `remove`.
    deferred: Arc<Mutex<Vec<String>>>,
}

impl Pins {
    /// Notes one more reader of `data_id`; the returned guard lets go when dropped.
    pub(super) fn pin(&self, data_id: &str) -> PinGuard {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.entry(data_id.to_string()).or_default().readers += 1;
        PinGuard {
            pins: self.clone(),
            data_id: data_id.to_string(),
            released: false,
        }
    }

    /// Whether `data_id` may be removed now; if readers hold it, the removal is noted
    /// for the last of them (whose guard then says so) and this answers false.
    pub(super) fn remove_now(&self, data_id: &str) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.get_mut(data_id) {
            Some(pin) => {
                pin.removed = true;
                false
            }
            None => true,
        }
    }

    /// Removes `data_id` with `delete` (which succeeds on an object already gone),
    /// after the removals that waited for their last reader; while readers hold it,
    /// its removal is theirs to leave here. A deferred removal that fails is logged
    /// (the orphan sweep finds the object later), as `what` (`object`, `blob`).
    pub(super) async fn remove<F, Fut>(
        &self,
        data_id: &str,
        what: &str,
        delete: F,
    ) -> io::Result<()>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = io::Result<()>>,
    {
        let deferred =
            std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|e| e.into_inner()));
        for waited in deferred {
            let name = waited.clone();
            if let Err(error) = delete(waited).await {
                log::warn!("could not delete released upstream {what} {name}: {error}");
            }
        }
        if !self.remove_now(data_id) {
            return Ok(());
        }
        delete(data_id.to_string()).await
    }

    /// Lets go of one reader; true when it was the last and a removal waits for it.
    fn unpin(&self, data_id: &str) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let Some(pin) = open.get_mut(data_id) else {
            return false;
        };
        pin.readers -= 1;
        if pin.readers > 0 {
            return false;
        }
        open.remove(data_id).is_some_and(|pin| pin.removed)
    }
}

/// One reader's hold on an object.
#[derive(Debug)]
pub(super) struct PinGuard {
    pins: Pins,
    data_id: String,
    /// Set by a release: the drop that follows has nothing left to let go of.
    released: bool,
}

impl PinGuard {
    /// Lets go; true when the caller must now do a removal that waited for it.
    pub(super) fn release(mut self) -> bool {
        self.released = true;
        self.pins.unpin(&self.data_id)
    }

    /// Lets go, leaving a removal that waited for this reader to the next `remove`
    /// (until then, or after a crash, the object is an orphan the sweep would find).
    pub(super) fn release_deferring(mut self) {
        self.released = true;
        if self.pins.unpin(&self.data_id) {
            let data_id = std::mem::take(&mut self.data_id);
            self.pins
                .deferred
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(data_id);
        }
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        // A guard dropped without a release has no one to do a waiting removal: the
        // object stays, unreferenced, for the next startup's orphan sweep.
        if !self.released && self.pins.unpin(&self.data_id) {
            log::warn!(
                "object {} left for the orphan sweep: its removal waited for a reader",
                self.data_id
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removal_waits_for_the_last_reader() {
        let pins = Pins::default();
        assert!(pins.remove_now("free"), "nobody holds it");
        let first = pins.pin("held");
        let second = pins.pin("held");
        assert!(!pins.remove_now("held"));
        assert!(!first.release(), "another reader still holds it");
        assert!(second.release(), "the last reader does the removal");
        assert!(pins.remove_now("held"), "and then nothing is held");
        let unremoved = pins.pin("kept");
        assert!(!unremoved.release(), "no removal waited");
    }

    #[test]
    fn a_reader_leaves_its_removal_to_the_next_one() {
        let pins = Pins::default();
        let reader = pins.pin("held");
        let deleted = std::cell::RefCell::new(Vec::new());
        let delete = |id: String| {
            deleted.borrow_mut().push(id);
            async { Ok::<(), io::Error>(()) }
        };
        let run = |future| {
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .build()
                .unwrap()
                .block_on(future)
        };
        run(pins.remove("held", "object", delete)).unwrap();
        assert!(deleted.borrow().is_empty(), "a reader holds it");
        reader.release_deferring();
        run(pins.remove("other", "object", delete)).unwrap();
        assert_eq!(
            *deleted.borrow(),
            ["held", "other"],
            "the waiting one first"
        );
        let released = pins.pin("kept");
        drop(released);
        assert!(pins.remove_now("kept"), "a dropped guard lets go too");
    }
}
