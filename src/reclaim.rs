//! Deletion that never races a read. A commit that replaces or deletes an object
//! records the data files it released in the reclaim table, in the same
//! transaction; nothing is unlinked then. A read takes a lease before it asks for a
//! row and ends it once it has opened the files the row names (an open file keeps
//! its bytes, whatever happens to its name). The reclaimer removes a released file
//! only when every lease begun before the release's commit has ended: a read begun
//! after the commit sees the new rows, so no reader can be left holding an id whose
//! file is gone. Removed files leave the table in a later commit; a crash in
//! between only makes the next startup remove them again, which is harmless.
//!
//! Leases are per core (no lock shared between cores): each core publishes the start
//! of its oldest open lease in one atomic slot, and the reclaimer reads the minimum.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core_state::CoreState;
use crate::limits;
use crate::meta::Released;

/// No lease open on a core.
const NONE_OPEN: u64 = u64::MAX;

/// What every core publishes about its reads, and the clock they are measured on.
pub(crate) struct ReadFence {
    base: Instant,
    /// Per core: nanoseconds (since `base`) at which its oldest open lease began.
    oldest: Box<[AtomicU64]>,
    /// Released files the reclaimer removed since startup (for /metrics).
    removed: AtomicU64,
}

impl ReadFence {
    pub(crate) fn new(cores: usize) -> Arc<ReadFence> {
        Arc::new(ReadFence {
            base: Instant::now(),
            oldest: (0..cores).map(|_| AtomicU64::new(NONE_OPEN)).collect(),
            removed: AtomicU64::new(0),
        })
    }

    /// Released files the reclaimer removed since startup.
    pub(crate) fn reclaimed(&self) -> u64 {
        self.removed.load(Ordering::Relaxed)
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }

    /// The start of the oldest lease open on any core (`NONE_OPEN` when none is).
    fn oldest_open(&self) -> u64 {
        self.oldest
            .iter()
            .map(|slot| slot.load(Ordering::SeqCst))
            .min()
            .unwrap_or(NONE_OPEN)
    }

    /// Whether files released by a commit at `committed` may be removed now.
    pub(crate) fn released_before_every_read(&self, committed: Instant) -> bool {
        self.nanos(committed) < self.oldest_open()
    }
}

/// One core's open leases.
pub(crate) struct CoreReads {
    fence: Arc<ReadFence>,
    core: usize,
    /// Start time of open leases -> how many began at that nanosecond.
    open: RefCell<BTreeMap<u64, u32>>,
}

impl CoreReads {
    pub(crate) fn new(fence: Arc<ReadFence>, core: usize) -> CoreReads {
        CoreReads {
            fence,
            core,
            open: RefCell::new(BTreeMap::new()),
        }
    }

    pub(crate) fn fence(&self) -> &ReadFence {
        &self.fence
    }

    /// Begins a lease: call before reading the row whose files will be opened, keep it
    /// until they are open. The slot is published before this returns, so before the
    /// read can reach the metadata thread.
    pub(crate) fn begin(&self) -> ReadLease<'_> {
        let started = self.fence.nanos(Instant::now());
        *self.open.borrow_mut().entry(started).or_insert(0) += 1;
        self.publish();
        ReadLease {
            reads: self,
            started,
        }
    }

    fn end(&self, started: u64) {
        {
            let mut open = self.open.borrow_mut();
            if let Some(count) = open.get_mut(&started) {
                *count -= 1;
                if *count == 0 {
                    open.remove(&started);
                }
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let oldest = self
            .open
            .borrow()
            .keys()
            .next()
            .copied()
            .unwrap_or(NONE_OPEN);
        self.fence.oldest[self.core].store(oldest, Ordering::SeqCst);
    }
}

/// An open read lease; ends when dropped.
pub(crate) struct ReadLease<'a> {
    reads: &'a CoreReads,
    started: u64,
}

impl Drop for ReadLease<'_> {
    fn drop(&mut self) {
        self.reads.end(self.started);
    }
}

/// The reclaimer: a task on one core. It waits for released files, removes each
/// batch once no lease older than its commit is open, then forgets their rows.
pub(crate) async fn run_reclaimer(state: Rc<CoreState>, released: flume::Receiver<Released>) {
    let poll = Duration::from_millis(limits::RECLAIM_POLL_MILLIS);
    let fence = state.reads.fence();
    let mut waiting: VecDeque<Released> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match released.recv_async().await {
                Ok(batch) => waiting.push_back(batch),
                Err(_) => return,
            }
        }
        waiting.extend(released.drain());
        let mut ready = Vec::new();
        while let Some(batch) = waiting.front() {
            if !fence.released_before_every_read(batch.committed) {
                break;
            }
            ready.extend(waiting.pop_front().into_iter().flat_map(|b| b.data_ids));
        }
        if !ready.is_empty() {
            let removed = remove_files(&state, ready).await;
            fence.removed.fetch_add(removed, Ordering::Relaxed);
        }
        if !waiting.is_empty() {
            // A read begun before the oldest waiting release is still opening its files.
            monoio::time::sleep(poll).await;
        }
    }
}

/// Removes released files, then their reclaim rows; returns how many were removed. A
/// file that cannot be removed keeps its row, for the next startup to try again.
async fn remove_files(state: &CoreState, data_ids: Vec<String>) -> u64 {
    let mut removed = Vec::with_capacity(data_ids.len());
    for data_id in data_ids {
        let removal = state.storage.remove(&data_id);
        // The reclaimer runs beside the next request: its steps have their own count.
        #[cfg(feature = "fault-injection")]
        let removal = crate::fault::background(removal);
        match removal.await {
            Ok(()) => removed.push(data_id),
            Err(error) => log::warn!("could not remove released data file {data_id}: {error}"),
        }
    }
    let count = removed.len() as u64;
    if let Err(error) = state.meta.forget_reclaimed(removed).await {
        log::warn!("could not forget reclaimed data files: {error}");
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_waits_for_every_older_lease_on_every_core() {
        let fence = ReadFence::new(2);
        let (core0, core1) = (
            CoreReads::new(fence.clone(), 0),
            CoreReads::new(fence.clone(), 1),
        );
        let before = Instant::now();
        assert!(fence.released_before_every_read(before), "no lease open");
        let early = core0.begin();
        let also_early = core0.begin();
        let other_core = core1.begin();
        let committed = Instant::now();
        while Instant::now() == committed {}
        let late = core1.begin();
        assert!(!fence.released_before_every_read(committed));
        drop(early);
        assert!(!fence.released_before_every_read(committed));
        drop(also_early);
        assert!(
            !fence.released_before_every_read(committed),
            "core 1 still reads"
        );
        drop(other_core);
        assert!(
            fence.released_before_every_read(committed),
            "a lease begun after the commit does not hold it"
        );
        assert!(!fence.released_before_every_read(Instant::now()));
        drop(late);
        assert!(fence.released_before_every_read(Instant::now()));
    }
}
