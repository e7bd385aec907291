//! Object bytes: the storage backends, behind one id-first API (`Storage`). An
//! object is named by its data id before a byte is written (`create`), its bytes
//! streamed in (`Upload::write`) and made durable (`Upload::commit`; on the sqlite
//! backend, by the metadata write that records the object), read back by
//! offset (`open`, `Object::read_at`), copied on the server side (`copy`,
//! `copy_ranges`), scanned (`scan`), removed idempotently (`remove`) and listed for
//! the orphan sweep (`list_ids`). Hashing is not the backend's job: copies and scans
//! pass their bytes through a `ByteStage` the caller supplies. This layer knows
//! nothing of keys, buckets or HTTP; the metadata layer maps keys to data ids.
//!
//! A closed enum, not a trait object: monoio futures are not `Send`, and the backends
//! are known (local, memory, sqlite, and the aws, azure and gcp gateways), each a variant.
//!
//! The local backend keeps objects of at most `limits::INLINE_OBJECT_BYTES_MAX` in
//! the metadata database, as the sqlite backend keeps all of its objects: their ids
//! are marked (`data_id::inline_id`), and every call on such an id goes there.
//!
//! The local backend's layout under the data dir: `tmp/` holds files being written
//! (on the same filesystem as `objects/`, so publishing is an atomic rename), and
//! `objects/<xx>/<data_id>` holds published objects, fanned out over 256 directories
//! by the first two hex digits of the id.

mod aws;
mod azure;
mod byte_cache;
mod data_id;
mod durable_write;
mod gateway_upload;
mod gcp;
mod local;
mod memory;
mod per_core;
mod pins;
mod pool;
mod ranged;
mod sqlite;
mod streamed;
#[cfg(test)]
mod tests;
mod upstream_xml;

use std::io;
use std::path::Path;

pub use aws::{AwsObject, AwsSettings, AwsStorage, AwsUpload};
pub use azure::{AzureObject, AzureSettings, AzureStorage, AzureUpload};
pub use byte_cache::ByteCache;
pub use data_id::is_valid_data_id;
pub use gateway_upload::{GatewayUpload, UploadTarget};
pub use gcp::{GcpObject, GcpSettings, GcpStorage, GcpUpload};
pub use local::{LocalStorage, ObjectFile, RecoveryReport, TempObject};
pub use memory::{MemoryObject, MemoryStorage, MemoryUpload, Snapshot};
pub use ranged::{RangedObject, RangedSource};
pub use sqlite::{SqliteObject, SqliteStorage, SqliteUpload};

use crate::limits;
use crate::meta::{BlobClient, BlobTail};
use data_id::{inline_id, is_inline_id, without_mark};

/// What copies and scans pass every byte through, in order (a hasher, say). Runs on
/// the backend's copy pool, hence `Send`.
pub trait ByteStage: Send {
    fn update(&mut self, bytes: &[u8]);
}

/// A storage backend. Cloning is cheap; clones may live on any core.
#[derive(Clone, Debug)]
pub enum Storage {
    Local(LocalStorage),
    Memory(MemoryStorage),
    Sqlite(SqliteStorage),
    Aws(AwsStorage),
    Azure(AzureStorage),
    Gcp(GcpStorage),
}

impl Storage {
    /// The local backend on `root`, after its startup recovery.
    pub fn open_local(root: &Path) -> io::Result<(Storage, RecoveryReport)> {
        let (local, report) = LocalStorage::open(root)?;
        Ok((Storage::Local(local), report))
    }

    /// The memory backend, holding at most `max_size` bytes, loaded from its snapshot
    /// if it has one; returns it and the number of objects loaded.
    pub fn open_memory(max_size: u64, snapshot: Option<Snapshot>) -> io::Result<(Storage, u64)> {
        let (memory, loaded) = MemoryStorage::open(max_size, snapshot)?;
        Ok((Storage::Memory(memory), loaded))
    }

    /// The sqlite backend, over the metadata threads' blob client.
    pub fn open_sqlite(blobs: BlobClient) -> io::Result<Storage> {
        Ok(Storage::Sqlite(SqliteStorage::open(blobs)?))
    }

    /// The aws backend on `settings` (startup then checks the bucket with `health`).
    pub fn open_aws(settings: AwsSettings) -> Result<Storage, String> {
        Ok(Storage::Aws(AwsStorage::open(settings)?))
    }

    /// The azure backend on `settings` (startup then checks the container with
    /// `health`).
    pub fn open_azure(settings: AzureSettings) -> Result<Storage, String> {
        Ok(Storage::Azure(AzureStorage::open(settings)?))
    }

    /// The gcp backend on `settings` (startup then checks the bucket with `health`).
    pub fn open_gcp(settings: GcpSettings) -> Result<Storage, String> {
        Ok(Storage::Gcp(GcpStorage::open(settings)?))
    }

    /// Whether a write must say its size before its first byte (`create`): a gateway
    /// announces the length of its upstream PUT. S3 answers a body of unknown length
    /// 411 MissingContentLength; so does the daemon on such a backend.
    pub fn needs_size(&self) -> bool {
        self.is_gateway()
    }

    /// Lets go of what this thread's runtime holds for the backend (a gateway's pooled
    /// connections): call inside a short-lived runtime before it ends.
    pub fn leave_runtime(&self) {
        match self {
            Storage::Aws(aws) => aws.leave_runtime(),
            Storage::Azure(azure) => azure.leave_runtime(),
            Storage::Gcp(gcp) => gcp.leave_runtime(),
            _ => {}
        }
    }

    /// Whether the bytes are in another server (whose health is the daemon's).
    pub fn is_gateway(&self) -> bool {
        matches!(self, Storage::Aws(_) | Storage::Azure(_) | Storage::Gcp(_))
    }

    /// Whether a crash or restart can lose published objects (the memory backend's
    /// bytes after its last snapshot): startup then forgets the rows that point at
    /// data the backend no longer has.
    pub fn may_forget(&self) -> bool {
        matches!(self, Storage::Memory(_))
    }

    /// What a clean shutdown owes the backend (the memory backend's last snapshot).
    pub fn shutdown(&self) -> io::Result<()> {
        match self {
            Storage::Local(_)
            | Storage::Sqlite(_)
            | Storage::Aws(_)
            | Storage::Azure(_)
            | Storage::Gcp(_) => Ok(()),
            Storage::Memory(memory) => memory.snapshot_if_changed(),
        }
    }

    /// The local backend's store of small objects, when `data_id` names one of them.
    fn inline_for(&self, data_id: &str) -> io::Result<Option<&SqliteStorage>> {
        match self {
            Storage::Local(local) if is_inline_id(data_id) => local
                .inline()
                .map(Some)
                .ok_or_else(|| io::Error::other("an inline object, and no database to hold it")),
            _ => Ok(None),
        }
    }

    /// The id for a new object of `size` bytes (when known): on the local backend an
    /// object of at most `limits::INLINE_OBJECT_BYTES_MAX` is kept in the metadata
    /// database, so that its PUT costs a share of one group commit rather than a file
    /// create, an fsync and a rename; elsewhere, `new_data_id`.
    pub fn new_data_id_for(&self, size: Option<u64>) -> String {
        match self {
            Storage::Local(local)
                if local.inline().is_some()
                    && size.is_some_and(|size| size <= limits::INLINE_OBJECT_BYTES_MAX) =>
            {
                inline_id(&local.new_data_id())
            }
            _ => self.new_data_id(),
        }
    }

    /// A new data id: 32 lower-case hex digits, never handed out twice (see `data_id`).
    pub fn new_data_id(&self) -> String {
        match self {
            Storage::Local(local) => local.new_data_id(),
            Storage::Memory(memory) => memory.new_data_id(),
            Storage::Sqlite(sqlite) => sqlite.new_data_id(),
            Storage::Aws(aws) => aws.new_data_id(),
            Storage::Azure(azure) => azure.new_data_id(),
            Storage::Gcp(gcp) => gcp.new_data_id(),
        }
    }

    /// Whether this process handed out `data_id` (the sweep leaves such objects alone:
    /// one may be published and not yet recorded).
    pub fn issued(&self, data_id: &str) -> bool {
        match self {
            Storage::Local(local) => local.issued(without_mark(data_id)),
            Storage::Memory(memory) => memory.issued(data_id),
            Storage::Sqlite(sqlite) => sqlite.issued(data_id),
            Storage::Aws(aws) => aws.issued(data_id),
            Storage::Azure(azure) => azure.issued(data_id),
            Storage::Gcp(gcp) => gcp.issued(data_id),
        }
    }

    /// Starts writing the object `data_id`, of `size` bytes when known (a backend that
    /// `needs_size` refuses `None`).
    pub async fn create(&self, data_id: &str, size: Option<u64>) -> io::Result<Upload> {
        if let Some(inline) = self.inline_for(data_id)? {
            return Ok(Upload::Sqlite(inline.create(data_id)?));
        }
        match self {
            Storage::Local(local) => Ok(Upload::Local(local.create(data_id, size).await?)),
            Storage::Memory(memory) => Ok(Upload::Memory(memory.create(data_id)?)),
            Storage::Sqlite(sqlite) => Ok(Upload::Sqlite(sqlite.create(data_id)?)),
            Storage::Aws(aws) => Ok(Upload::Aws(aws.create(data_id, size).await?)),
            Storage::Azure(azure) => Ok(Upload::Azure(azure.create(data_id, size).await?)),
            Storage::Gcp(gcp) => Ok(Upload::Gcp(gcp.create(data_id, size).await?)),
        }
    }

    /// Opens a published object for reading; `NotFound` when there is none.
    pub async fn open(&self, data_id: &str) -> io::Result<Object> {
        if let Some(inline) = self.inline_for(data_id)? {
            return Ok(Object::Sqlite(inline.open_object(data_id).await?));
        }
        match self {
            Storage::Local(local) => Ok(Object::Local(local.open_object(data_id).await?)),
            Storage::Memory(memory) => Ok(Object::Memory(memory.open_object(data_id)?)),
            Storage::Sqlite(sqlite) => Ok(Object::Sqlite(sqlite.open_object(data_id).await?)),
            Storage::Aws(aws) => {
                let size = aws.size_of(data_id).await?;
                Ok(Object::Aws(Box::new(
                    aws.open_object(data_id, Some((0, size)))?,
                )))
            }
            Storage::Azure(azure) => {
                let size = azure.size_of(data_id).await?;
                Ok(Object::Azure(Box::new(
                    azure.open_object(data_id, Some((0, size)))?,
                )))
            }
            Storage::Gcp(gcp) => {
                let size = gcp.size_of(data_id).await?;
                Ok(Object::Gcp(Box::new(gcp.open_object(
                    data_id,
                    Some((0, size)),
                    Some(size),
                )?)))
            }
        }
    }

    /// Opens a published object to read bytes `offset..offset + length` of it (what a
    /// GET streams). A gateway asks its upstream for just that range, at the first
    /// read: a missing object shows there, not here. Elsewhere this is `open`.
    pub async fn open_range(&self, data_id: &str, offset: u64, length: u64) -> io::Result<Object> {
        match self {
            Storage::Aws(aws) => Ok(Object::Aws(Box::new(
                aws.open_object(data_id, Some((offset, length)))?,
            ))),
            Storage::Azure(azure) => Ok(Object::Azure(Box::new(
                azure.open_object(data_id, Some((offset, length)))?,
            ))),
            Storage::Gcp(gcp) => Ok(Object::Gcp(Box::new(gcp.open_object(
                data_id,
                Some((offset, length)),
                None,
            )?))),
            _ => self.open(data_id).await,
        }
    }

    /// Publishes a copy of the whole object `source` as `target`; returns its size.
    pub async fn copy(&self, source: &str, target: &str) -> io::Result<u64> {
        match self {
            Storage::Local(local) => match (self.inline_for(source)?, self.inline_for(target)?) {
                (None, None) => local.copy(source, target).await,
                (Some(inline), Some(_)) => inline.copy(source, target).await,
                // Between a file and the database: through the daemon.
                (Some(inline), None) | (None, Some(inline)) => {
                    let size = self.open(source).await?.len();
                    let ranges = vec![(source.to_string(), 0, size)];
                    streamed::copy_ranges(self, inline.pool(), ranges, target, NoStage)
                        .await
                        .map(|(size, _)| size)
                }
            },
            Storage::Memory(memory) => memory.copy(source, target),
            Storage::Sqlite(sqlite) => sqlite.copy(source, target).await,
            Storage::Aws(aws) => aws.copy(source, target).await,
            Storage::Azure(azure) => azure.copy(source, target).await,
            Storage::Gcp(gcp) => gcp.copy(source, target).await,
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
            Storage::Local(local) => match self.inline_among(&ranges, Some(target))? {
                None => local.copy_ranges(ranges, target, stage).await,
                Some(inline) => {
                    streamed::copy_ranges(self, inline.pool(), ranges, target, stage).await
                }
            },
            Storage::Memory(memory) => memory.copy_ranges(ranges, target, stage).await,
            Storage::Sqlite(sqlite) => {
                streamed::copy_ranges(self, sqlite.pool(), ranges, target, stage).await
            }
            Storage::Aws(aws) => {
                streamed::copy_ranges(self, aws.pool(), ranges, target, stage).await
            }
            Storage::Azure(azure) => {
                streamed::copy_ranges(self, azure.pool(), ranges, target, stage).await
            }
            Storage::Gcp(gcp) => {
                streamed::copy_ranges(self, gcp.pool(), ranges, target, stage).await
            }
        }
    }

    /// Passes the `(data id, offset, length)` ranges through `stage`, in order.
    pub async fn scan<S: ByteStage + 'static>(
        &self,
        ranges: Vec<(String, u64, u64)>,
        stage: S,
    ) -> io::Result<S> {
        match self {
            Storage::Local(local) => match self.inline_among(&ranges, None)? {
                None => local.scan(ranges, stage).await,
                Some(inline) => streamed::scan(self, inline.pool(), ranges, stage).await,
            },
            Storage::Memory(memory) => memory.scan(ranges, stage).await,
            Storage::Sqlite(sqlite) => streamed::scan(self, sqlite.pool(), ranges, stage).await,
            Storage::Aws(aws) => streamed::scan(self, aws.pool(), ranges, stage).await,
            Storage::Azure(azure) => streamed::scan(self, azure.pool(), ranges, stage).await,
            Storage::Gcp(gcp) => streamed::scan(self, gcp.pool(), ranges, stage).await,
        }
    }

    /// The local backend's store of small objects, when the ranges or the target of a
    /// copy name one: the bytes then pass through the daemon.
    fn inline_among(
        &self,
        ranges: &[(String, u64, u64)],
        target: Option<&str>,
    ) -> io::Result<Option<&SqliteStorage>> {
        for data_id in ranges.iter().map(|(id, _, _)| id.as_str()).chain(target) {
            if let Some(inline) = self.inline_for(data_id)? {
                return Ok(Some(inline));
            }
        }
        Ok(None)
    }

    /// Removes an object; removing one that is gone succeeds.
    pub async fn remove(&self, data_id: &str) -> io::Result<()> {
        if let Some(inline) = self.inline_for(data_id)? {
            return inline.remove(data_id).await;
        }
        match self {
            Storage::Local(local) => local.remove(data_id).await,
            Storage::Memory(memory) => memory.remove(data_id),
            Storage::Sqlite(sqlite) => sqlite.remove(data_id).await,
            Storage::Aws(aws) => aws.remove(data_id).await,
            Storage::Azure(azure) => azure.remove(data_id).await,
            Storage::Gcp(gcp) => gcp.remove(data_id).await,
        }
    }

    /// Every object's id, for the orphan sweep.
    pub async fn list_ids(&self) -> io::Result<Vec<String>> {
        match self {
            Storage::Local(local) => {
                let mut ids = local.list_ids().await?;
                if let Some(inline) = local.inline() {
                    ids.extend(inline.list_ids().await?);
                }
                Ok(ids)
            }
            Storage::Memory(memory) => Ok(memory.list_ids()),
            Storage::Sqlite(sqlite) => sqlite.list_ids().await,
            Storage::Aws(aws) => aws.list_ids().await,
            Storage::Azure(azure) => azure.list_ids().await,
            Storage::Gcp(gcp) => gcp.list_ids().await,
        }
    }

    /// Whether the backend can take a write now.
    pub async fn health(&self) -> io::Result<()> {
        match self {
            Storage::Local(local) => {
                local.health().await?;
                match local.inline() {
                    Some(inline) => inline.health().await,
                    None => Ok(()),
                }
            }
            Storage::Memory(memory) => memory.health(),
            Storage::Sqlite(sqlite) => sqlite.health().await,
            Storage::Aws(aws) => aws.health().await,
            Storage::Azure(azure) => azure.health().await,
            Storage::Gcp(gcp) => gcp.health().await,
        }
    }

    /// Makes a committed upload's bytes durable on their own, for a caller whose
    /// metadata write does not take the tail `Upload::commit` handed back.
    pub async fn seal(&self, tail: Option<BlobTail>) -> io::Result<()> {
        match (self, tail) {
            (Storage::Sqlite(sqlite), Some(tail)) => sqlite.seal(tail).await,
            (Storage::Local(_), Some(tail)) => {
                self.inline_for(&tail.data_id)?
                    .ok_or_else(|| io::Error::other("a database tail for a file"))?
                    .seal(tail)
                    .await
            }
            (_, None) => Ok(()),
            (_, Some(_)) => Err(io::Error::other("a database tail for a file backend")),
        }
    }
}

/// A stage that does nothing with the bytes (a plain copy).
struct NoStage;

impl ByteStage for NoStage {
    fn update(&mut self, _bytes: &[u8]) {}
}

/// An object being written; end it with `commit` or `abort` (dropping it aborts).
pub enum Upload {
    Local(TempObject),
    Memory(MemoryUpload),
    Sqlite(SqliteUpload),
    Aws(AwsUpload),
    Azure(AzureUpload),
    Gcp(GcpUpload),
}

impl Upload {
    /// Appends `buf`, handing the buffer back for reuse.
    pub async fn write(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match self {
            Upload::Local(temp) => temp.write(buf).await,
            Upload::Memory(upload) => upload.write(buf),
            Upload::Sqlite(upload) => upload.write(buf).await,
            Upload::Aws(upload) => upload.write(buf).await,
            Upload::Azure(upload) => upload.write(buf).await,
            Upload::Gcp(upload) => upload.write(buf).await,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        match self {
            Upload::Local(temp) => temp.len(),
            Upload::Memory(upload) => upload.len(),
            Upload::Sqlite(upload) => upload.len(),
            Upload::Aws(upload) => upload.len(),
            Upload::Azure(upload) => upload.len(),
            Upload::Gcp(upload) => upload.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the bytes durable under the object's id, or, on the sqlite backend,
    /// hands back their tail: the last chunk and the seal, for the metadata write that
    /// records the object to commit in the same transaction (`MetaClient::put_object`),
    /// or for `Storage::seal`. Only then can the object be opened.
    pub async fn commit(self) -> io::Result<Option<BlobTail>> {
        match self {
            Upload::Local(temp) => temp.commit().await.map(|()| None),
            Upload::Memory(upload) => upload.commit().map(|()| None),
            Upload::Sqlite(upload) => upload.commit().map(Some),
            Upload::Aws(upload) => upload.commit().await.map(|()| None),
            Upload::Azure(upload) => upload.commit().await.map(|()| None),
            Upload::Gcp(upload) => upload.commit().await.map(|()| None),
        }
    }

    /// Discards what was written.
    pub async fn abort(self) {
        match self {
            Upload::Local(temp) => temp.abort().await,
            Upload::Memory(upload) => drop(upload),
            Upload::Sqlite(upload) => upload.abort().await,
            Upload::Aws(upload) => upload.abort().await,
            Upload::Azure(upload) => upload.abort().await,
            Upload::Gcp(upload) => upload.abort().await,
        }
    }
}

/// A published object, open for reading.
pub enum Object {
    Local(ObjectFile),
    Memory(MemoryObject),
    Sqlite(SqliteObject),
    /// Boxed: its GET in flight is large beside a file handle.
    Aws(Box<AwsObject>),
    Azure(Box<AzureObject>),
    Gcp(Box<GcpObject>),
}

impl Object {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Object::Local(file) => file.len(),
            Object::Memory(object) => object.len(),
            Object::Sqlite(object) => object.len(),
            Object::Aws(object) => object.len(),
            Object::Azure(object) => object.len(),
            Object::Gcp(object) => object.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The open file holding the bytes, when they are in one (a local object).
    pub fn as_fd(&self) -> Option<&dyn std::os::fd::AsRawFd> {
        match self {
            Object::Local(file) => file.as_fd(),
            _ => None,
        }
    }

    /// Reads up to `buf.capacity()` bytes at `offset` into `buf` from index 0 (0 at the end).
    pub async fn read_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Object::Local(file) => file.read_at(buf, offset).await,
            Object::Memory(object) => object.read_at(buf, offset),
            Object::Sqlite(object) => object.read_at(buf, offset).await,
            Object::Aws(object) => object.read_at(buf, offset).await,
            Object::Azure(object) => object.read_at(buf, offset).await,
            Object::Gcp(object) => object.read_at(buf, offset).await,
        }
    }
}
