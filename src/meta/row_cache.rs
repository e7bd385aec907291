//! One core's copies of the bucket and object rows it read, each kept with the commit
//! generations it was read at (`generations`) and served again only while they hold:
//! a GET or HEAD of a hot key then costs no trip to a metadata thread, and never sees
//! a row older than the last commit that touched its key. An absent key is remembered
//! too (HEAD of a missing key is common); an absent bucket is not. Bounded by a count
//! of entries; when full, an arbitrary entry makes room.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::meta::generations::Stamp;
use crate::meta::{BucketRow, MetaClient, MetaError, ObjectRow};

/// A bucket row with, perhaps, one of its objects; the object is `None` when absent.
pub type CachedRows = (Rc<BucketRow>, Option<Rc<ObjectRow>>);

/// A bucket row with the bucket generation it was read at.
type BucketEntry = (Rc<BucketRow>, u64);

struct ObjectEntry {
    bucket: Rc<BucketRow>,
    row: Option<Rc<ObjectRow>>,
    stamp: Stamp,
}

/// The rows one core remembers.
pub struct RowCache {
    capacity: usize,
    /// By `bucket/key` (bucket names never hold '/').
    objects: RefCell<HashMap<Box<str>, ObjectEntry>>,
    /// By name, with the bucket generation each was read at.
    buckets: RefCell<HashMap<Box<str>, BucketEntry>>,
    /// Where lookups build their `bucket/key`, so a hit allocates nothing.
    scratch: RefCell<String>,
}

fn make_room<V>(map: &mut HashMap<Box<str>, V>, capacity: usize) {
    if map.len() >= capacity {
        if let Some(victim) = map.keys().next().cloned() {
            map.remove(&victim);
        }
    }
}

impl RowCache {
    /// A cache of at most `capacity` object rows (and as many bucket rows).
    pub fn new(capacity: usize) -> RowCache {
        RowCache {
            capacity: capacity.max(1),
            objects: RefCell::new(HashMap::new()),
            buckets: RefCell::new(HashMap::new()),
            scratch: RefCell::new(String::new()),
        }
    }

    /// The bucket `name`, or `None` when there is none.
    pub async fn bucket(
        &self,
        meta: &MetaClient,
        name: &str,
    ) -> Result<Option<Rc<BucketRow>>, MetaError> {
        let generation = meta.generations().buckets();
        if let Some((row, at)) = self.buckets.borrow().get(name) {
            if *at == generation {
                return Ok(Some(row.clone()));
            }
        }
        let Some(row) = meta.get_bucket(name).await? else {
            return Ok(None);
        };
        let row = Rc::new(row);
        let mut buckets = self.buckets.borrow_mut();
        make_room(&mut buckets, self.capacity);
        buckets.insert(name.into(), (row.clone(), generation));
        Ok(Some(row))
    }

    /// The bucket and one of its objects, as one snapshot; `None` when the bucket is
    /// absent.
    pub async fn bucket_object(
        &self,
        meta: &MetaClient,
        bucket: &str,
        key: &str,
    ) -> Result<Option<CachedRows>, MetaError> {
        let generations = meta.generations();
        {
            let mut scratch = self.scratch.borrow_mut();
            scratch.clear();
            scratch.push_str(bucket);
            scratch.push('/');
            scratch.push_str(key);
            if let Some(entry) = self.objects.borrow().get(scratch.as_str()) {
                if generations.current(entry.stamp) {
                    return Ok(Some((entry.bucket.clone(), entry.row.clone())));
                }
            }
        }
        // Taken before the read is asked for: see `generations`.
        let stamp = generations.stamp(bucket, key);
        let (bucket_row, row) = meta.get_bucket_object(bucket, key).await?;
        let Some(bucket_row) = bucket_row else {
            return Ok(None);
        };
        let entry = ObjectEntry {
            bucket: Rc::new(bucket_row),
            row: row.map(Rc::new),
            stamp,
        };
        let rows = (entry.bucket.clone(), entry.row.clone());
        let mut objects = self.objects.borrow_mut();
        make_room(&mut objects, self.capacity);
        objects.insert(format!("{bucket}/{key}").into_boxed_str(), entry);
        Ok(Some(rows))
    }
}
