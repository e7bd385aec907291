//! Object bytes: the storage backends, behind one id-first API (`Storage`). An
//! object is named by its data id before a byte is written (`create`), its bytes
//! streamed in (`Upload::write`) and made durable (`Upload::commit`), read back by
//! offset (`open`, `Object::read_at`), copied on the server side (`copy`,
//! `copy_ranges`), scanned (`scan`), removed idempotently (`remove`) and listed for
//! the orphan sweep (`list_ids`). Hashing is not the backend's job: copies and scans
//! pass their bytes through a `ByteStage` the caller supplies. This layer knows
//! nothing of keys, buckets or HTTP; the metadata layer maps keys to data ids.
//!
//! A closed enum, not a trait object: monoio futures are not `Send`, and the backends
//! are known (local now; memory, sqlite and the gateways to come), each a variant.
//!
//! The local backend's layout under the data dir: `tmp/` holds files being written
//! (on the same filesystem as `objects/`, so publishing is an atomic rename), and
//! `objects/<xx>/<data_id>` holds published objects, fanned out over 256 directories
//! by the first two hex digits of the id.

mod data_id;
mod durable_write;
mod local;
mod pool;
#[cfg(test)]
mod tests;

use std::io;
use std::path::Path;

pub use data_id::is_valid_data_id;
pub use local::{LocalStorage, ObjectFile, RecoveryReport, TempObject};

/// What copies and scans pass every byte through, in order (a hasher, say). Runs on
/// the backend's copy pool, hence `Send`.
pub trait ByteStage: Send {
    fn update(&mut self, bytes: &[u8]);
}

/// A storage backend. Cloning is cheap; clones may live on any core.
#[derive(Clone, Debug)]
pub enum Storage {
    Local(LocalStorage),
}

impl Storage {
    /// The local backend on `root`, after its startup recovery.
    pub fn open_local(root: &Path) -> io::Result<(Storage, RecoveryReport)> {
        let (local, report) = LocalStorage::open(root)?;
        Ok((Storage::Local(local), report))
    }

    /// A new data id: 32 lower-case hex digits, never handed out twice (see `data_id`).
    pub fn new_data_id(&self) -> String {
        match self {
            Storage::Local(local) => local.new_data_id(),
        }
    }

    /// Whether this process handed out `data_id` (the sweep leaves such objects alone:
    /// one may be published and not yet recorded).
    pub fn issued(&self, data_id: &str) -> bool {
        match self {
            Storage::Local(local) => local.issued(data_id),
        }
    }

    /// Starts writing the object `data_id`.
    pub async fn create(&self, data_id: &str) -> io::Result<Upload> {
        match self {
            Storage::Local(local) => Ok(Upload::Local(local.create(data_id).await?)),
        }
    }

    /// Opens a published object for reading; `NotFound` when there is none.
    pub async fn open(&self, data_id: &str) -> io::Result<Object> {
        match self {
            Storage::Local(local) => Ok(Object::Local(local.open_object(data_id).await?)),
        }
    }

    /// Publishes a copy of the whole object `source` as `target`; returns its size.
    pub async fn copy(&self, source: &str, target: &str) -> io::Result<u64> {
        match self {
            Storage::Local(local) => local.copy(source, target).await,
        }
    }

    /// Publishes, as `target`, the `(data id, offset, length)` ranges in order, passing
    /// their bytes through `stage`; returns the size and the stage.
    pub async fn copy_ranges<S: ByteStage + 'static>(
        &self,
        ranges: Vec<(String, u64, u64)>,
        target: &str,
        stage: S,
    ) -> io::Result<(u64, S)> {
        match self {
            Storage::Local(local) => local.copy_ranges(ranges, target, stage).await,
        }
    }

    /// Passes the `(data id, offset, length)` ranges through `stage`, in order.
    pub async fn scan<S: ByteStage + 'static>(
        &self,
        ranges: Vec<(String, u64, u64)>,
        stage: S,
    ) -> io::Result<S> {
        match self {
            Storage::Local(local) => local.scan(ranges, stage).await,
        }
    }

    /// Removes an object; removing one that is gone succeeds.
    pub async fn remove(&self, data_id: &str) -> io::Result<()> {
        match self {
            Storage::Local(local) => local.remove(data_id).await,
        }
    }

    /// Every object's id, for the orphan sweep.
    pub async fn list_ids(&self) -> io::Result<Vec<String>> {
        match self {
            Storage::Local(local) => local.list_ids().await,
        }
    }

    /// Whether the backend can take a write now.
    pub async fn health(&self) -> io::Result<()> {
        match self {
            Storage::Local(local) => local.health().await,
        }
    }
}

/// An object being written; end it with `commit` or `abort` (dropping it aborts).
pub enum Upload {
    Local(TempObject),
}

impl Upload {
    /// Appends `buf`, handing the buffer back for reuse.
    pub async fn write(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match self {
            Upload::Local(temp) => temp.write(buf).await,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        match self {
            Upload::Local(temp) => temp.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the bytes durable under the object's id.
    pub async fn commit(self) -> io::Result<()> {
        match self {
            Upload::Local(temp) => temp.commit().await,
        }
    }

    /// Discards what was written.
    pub async fn abort(self) {
        match self {
            Upload::Local(temp) => temp.abort().await,
        }
    }
}

/// A published object, open for reading.
pub enum Object {
    Local(ObjectFile),
}

impl Object {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Object::Local(file) => file.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads up to `buf.capacity()` bytes at `offset` into `buf` from index 0 (0 at the end).
    pub async fn read_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Object::Local(file) => file.read_at(buf, offset).await,
        }
    }
}
