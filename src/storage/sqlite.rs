//! The sqlite backend: object bytes in the metadata database itself, as chunk rows
//! (see `meta::blobs`). Nothing but one file to back up, and no file create, fsync
//! and rename per object: an upload's chunks go to the metadata writer as they fill
//! (committed without a sync of their own), and its last chunk and seal travel with
//! the row that records the object (`Upload::commit` hands them back as a
//! `BlobTail`), so a small PUT is one message and one group commit. Reads go to blob
//! reader threads on read-only connections, chunk by chunk; a small object comes back
//! whole with its open.

use std::io;
use std::sync::Arc;

use crate::limits;
use crate::meta::{BlobClient, BlobTail, MetaError};
use crate::storage::data_id::{check_blob_id, IdSeed};
use crate::storage::pins::{PinGuard, Pins};
use crate::storage::pool::Pool;

const CHUNK: u64 = limits::BLOB_CHUNK_BYTES as u64;

/// Object bytes in the metadata database. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct SqliteStorage {
    blobs: BlobClient,
    seed: IdSeed,
    /// Runs the stages of copies and scans (hashing) off the serving cores.
    pool: Arc<Pool>,
    /// Objects being read in chunks: their removal waits for the last reader.
    pins: Pins,
}

/// A metadata error as the storage layer reports it: a full disk stays ENOSPC (a 507
/// to the client), a missing object stays NotFound.
fn meta_io(error: MetaError) -> io::Error {
    match error {
        MetaError::DiskFull => io::Error::from_raw_os_error(libc::ENOSPC),
        other => io::Error::other(other.to_string()),
    }
}

impl SqliteStorage {
    /// The backend over the metadata threads' blob client.
    pub fn open(blobs: BlobClient) -> io::Result<SqliteStorage> {
        Ok(SqliteStorage {
            blobs,
            seed: IdSeed::from_urandom()?,
            pool: Arc::new(Pool::start(limits::COPY_THREADS, limits::COPY_QUEUE_MAX)?),
            pins: Pins::default(),
        })
    }

    pub fn new_data_id(&self) -> String {
        self.seed.next_id()
    }

    pub fn issued(&self, data_id: &str) -> bool {
        self.seed.issued(data_id)
    }

    pub fn create(&self, data_id: &str) -> io::Result<SqliteUpload> {
        check_blob_id(data_id)?;
        Ok(SqliteUpload {
            blobs: self.blobs.clone(),
            data_id: data_id.to_string(),
            pending: Vec::new(),
            chunks: 0,
            len: 0,
            done: false,
        })
    }

    pub async fn open_object(&self, data_id: &str) -> io::Result<SqliteObject> {
        check_blob_id(data_id)?;
        let info = self
            .blobs
            .open(data_id, limits::BLOB_INLINE_BYTES_MAX)
            .await
            .map_err(meta_io)?
            .ok_or(io::ErrorKind::NotFound)?;
        // An object read in chunks is pinned: the rows must outlive a removal that
        // comes while it streams (an inlined one already holds its bytes).
        let pin = match info.inline {
            Some(_) => None,
            None => Some(self.pins.pin(data_id)),
        };
        Ok(SqliteObject {
            blobs: self.blobs.clone(),
            data_id: data_id.to_string(),
            size: info.size,
            inline: info.inline.map(Arc::from),
            pin,
        })
    }

    /// Seals the tail of an upload on its own, durably (when no metadata write takes it).
    pub async fn seal(&self, tail: BlobTail) -> io::Result<()> {
        self.blobs.seal(tail).await.map_err(meta_io)
    }

    /// A whole-object copy, inside the database (no byte crosses to a core).
    pub async fn copy(&self, source: &str, target: &str) -> io::Result<u64> {
        check_blob_id(source)?;
        check_blob_id(target)?;
        self.blobs
            .copy(source, target)
            .await
            .map_err(meta_io)?
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    /// The pool copies and scans run their stage on (`streamed`).
    pub(super) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Removes an object; removing one already gone succeeds. While readers stream
    /// it, the removal is theirs to do when the last one finishes.
    pub async fn remove(&self, data_id: &str) -> io::Result<()> {
        check_blob_id(data_id)?;
        if !self.pins.remove_now(data_id) {
            return Ok(());
        }
        self.blobs.remove(data_id).await.map_err(meta_io)
    }

    /// Every sealed object's id (chunks of an interrupted upload are startup's to
    /// remove, `meta::admin::remove_unsealed_blobs`).
    pub async fn list_ids(&self) -> io::Result<Vec<String>> {
        self.blobs.list_ids().await.map_err(meta_io)
    }

    /// Whether a blob reader answers (the writer's health is the metadata check's).
    pub async fn health(&self) -> io::Result<()> {
        let probe = "0".repeat(super::data_id::DATA_ID_LEN);
        self.blobs.open(&probe, 0).await.map_err(meta_io).map(drop)
    }
}

/// An object being written to the database. Its bytes collect into a chunk, sent to
/// the writer whenever a full one is followed by more, so the last chunk (at least a
/// byte, unless the object is empty) stays here for `commit` to hand over with the
/// row. Dropping it unfinished removes the chunks already sent.
pub struct SqliteUpload {
    blobs: BlobClient,
    data_id: String,
    /// Bytes not yet sent: at most one chunk after each `write`.
    pending: Vec<u8>,
    /// Chunks sent so far.
    chunks: u64,
    len: u64,
    /// Committed or aborted: nothing left to remove on drop.
    done: bool,
}

impl SqliteUpload {
    /// Appends `buf`'s bytes, sending each chunk that fills; hands back `buf`, emptied.
    pub async fn write(&mut self, mut buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        self.pending.extend_from_slice(&buf);
        self.len += buf.len() as u64;
        buf.clear();
        while self.pending.len() > limits::BLOB_CHUNK_BYTES {
            let rest = self.pending.split_off(limits::BLOB_CHUNK_BYTES);
            let chunk = std::mem::replace(&mut self.pending, rest);
            let sent = self
                .blobs
                .write_chunk(&self.data_id, self.chunks, chunk)
                .await;
            if let Err(error) = sent {
                return (Err(meta_io(error)), buf);
            }
            self.chunks += 1;
        }
        (Ok(()), buf)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hands over the last chunk and the size, for the metadata write that records the
    /// object to seal in its own transaction (or `SqliteStorage::seal` on its own).
    pub fn commit(mut self) -> io::Result<BlobTail> {
        self.done = true;
        Ok(BlobTail {
            data_id: std::mem::take(&mut self.data_id),
            seq: self.chunks,
            bytes: std::mem::take(&mut self.pending),
            size: self.len,
        })
    }

    /// Removes the chunks already sent.
    pub async fn abort(mut self) {
        self.done = true;
        if self.chunks > 0 {
            if let Err(error) = self.blobs.remove(&self.data_id).await {
                log::warn!("could not remove the chunks of {}: {error}", self.data_id);
            }
        }
    }
}

impl Drop for SqliteUpload {
    fn drop(&mut self) {
        if !self.done && self.chunks > 0 {
            self.blobs.remove_soon(&self.data_id);
        }
    }
}

/// A sealed object in the database, open for reading.
pub struct SqliteObject {
    blobs: BlobClient,
    data_id: String,
    size: u64,
    /// The whole object, when it came with the open.
    inline: Option<Arc<[u8]>>,
    /// The hold on its rows while it is read in chunks.
    pin: Option<PinGuard>,
}

impl Drop for SqliteObject {
    fn drop(&mut self) {
        if self.pin.take().is_some_and(PinGuard::release) {
            // The removal waited for this reader. Queued, not awaited: when the queue
            // is full the rows stay, unreferenced, for the next startup's sweep.
            self.blobs.remove_soon(&self.data_id);
        }
    }
}

impl SqliteObject {
    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Reads up to `buf.capacity()` bytes at `offset`, never past the chunk it starts
    /// in (0 at the end).
    pub async fn read_at(&self, mut buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
        buf.clear();
        if offset >= self.size || buf.capacity() == 0 {
            return (Ok(0), buf);
        }
        if let Some(bytes) = &self.inline {
            let start = offset as usize;
            let end = bytes.len().min(start + buf.capacity());
            buf.extend_from_slice(&bytes[start..end]);
            return (Ok(end - start), buf);
        }
        let capacity = buf.capacity();
        match self
            .blobs
            .read_chunk(&self.data_id, offset / CHUNK, offset % CHUNK, buf)
            .await
        {
            Ok((0, buf)) => (
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "object shorter than its size",
                )),
                buf,
            ),
            Ok((n, buf)) => (Ok(n), buf),
            Err(error) => (Err(meta_io(error)), Vec::with_capacity(capacity)),
        }
    }
}
