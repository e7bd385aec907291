//! Commit generations: how a core knows, without asking the metadata thread, that a
//! row it read earlier is still the committed one. Every key hashes to one of a fixed
//! number of counters; after each commit the writer increments the counter of every
//! key its writes touched (and one counter for all buckets when a bucket changed),
//! before anyone hears of the commit. A core notes the counter before it asks for a
//! row; the row stays current for as long as the counter holds that value.
//!
//! Why that is exact: the counter is read before the read transaction begins. If the
//! read saw the state before some commit touching the key, that commit ended after
//! the counter was read, and its increment (which follows the commit) changes it. Keys
//! sharing a counter only invalidate each other's rows more often. The increment also
//! comes before the commit's release of data files is timed (`writer`), so a read
//! lease begun before a row is found current also began before any release of the
//! files the row names (`reclaim`).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters the keys hash to: enough that unrelated writes rarely invalidate a hot row.
const SLOTS: usize = 4096;

/// The commit generations, shared by the writer and every core.
#[derive(Debug)]
pub struct Generations {
    keys: Box<[AtomicU64]>,
    buckets: AtomicU64,
    hasher: std::hash::RandomState,
}

impl Default for Generations {
    fn default() -> Generations {
        Generations {
            keys: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            buckets: AtomicU64::new(0),
            hasher: std::hash::RandomState::new(),
        }
    }
}

/// The generations a row was read at: it is current while both still hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    slot: u32,
    key: u64,
    buckets: u64,
}

impl Generations {
    /// The counter of `bucket`/`key`.
    pub(crate) fn slot(&self, bucket: &str, key: &str) -> usize {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(bucket.as_bytes());
        // Bucket names never hold '/', so the pair hashes unambiguously.
        hasher.write_u8(b'/');
        hasher.write(key.as_bytes());
        (hasher.finish() as usize) % SLOTS
    }

    /// The generations of `bucket`/`key` now: take it before asking for the rows.
    pub fn stamp(&self, bucket: &str, key: &str) -> Stamp {
        let slot = self.slot(bucket, key);
        Stamp {
            slot: slot as u32,
            key: self.keys[slot].load(Ordering::SeqCst),
            buckets: self.buckets.load(Ordering::SeqCst),
        }
    }

    /// The generation of every bucket row: take it before asking for one.
    pub fn buckets(&self) -> u64 {
        self.buckets.load(Ordering::SeqCst)
    }

    /// Whether nothing that could change the rows read at `stamp` has committed since.
    pub fn current(&self, stamp: Stamp) -> bool {
        self.keys[stamp.slot as usize].load(Ordering::SeqCst) == stamp.key
            && self.buckets.load(Ordering::SeqCst) == stamp.buckets
    }

    /// After a commit: the rows of the keys on counter `slot` may have changed.
    pub(crate) fn touch_slot(&self, slot: usize) {
        self.keys[slot].fetch_add(1, Ordering::SeqCst);
    }

    /// After a commit: a bucket row may have changed (created, deleted, its ACL).
    pub(crate) fn touch_buckets(&self) {
        self.buckets.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_touch_ends_the_stamps_taken_before_it_only() {
        let generations = Generations::default();
        let before = generations.stamp("bucket", "key");
        assert!(generations.current(before));
        generations.touch_slot(generations.slot("bucket", "key"));
        assert!(!generations.current(before));
        let after = generations.stamp("bucket", "key");
        assert!(generations.current(after));
        generations.touch_buckets();
        assert!(!generations.current(after));
    }

    #[test]
    fn keys_that_differ_mostly_keep_their_stamps() {
        let generations = Generations::default();
        let stamps: Vec<Stamp> = (0..100)
            .map(|i| generations.stamp("bucket", &format!("key{i}")))
            .collect();
        generations.touch_slot(generations.slot("bucket", "key0"));
        assert!(!generations.current(stamps[0]));
        let kept = stamps[1..]
            .iter()
            .filter(|s| generations.current(**s))
            .count();
        // 99 others over 4096 counters: a shared counter is possible, several are not.
        assert!(kept >= 97, "{kept} of 99 kept");
    }
}
