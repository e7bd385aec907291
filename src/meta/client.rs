//! The runtimes' side of the metadata thread: a cheap-to-clone client whose async
//! methods send one typed request each and await its reply on a oneshot channel.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::limits;
use crate::meta::blobs::{BlobInfo, BlobTail};
use crate::meta::generations::Generations;
use crate::meta::messages::{origin, BlobRead, Read, Reply, Write};
use crate::meta::uploads::UploadQuery;
use crate::meta::writer::WriterStats;
use crate::meta::{
    readers, schema, writer, BucketObject, BucketRow, CompleteRequest, CompletedUpload,
    CreateBucketOutcome, CredentialRow, DeleteSpec, Deleted, ListPage, ListQuery, LockChange,
    LockConfig, MetaCounts, MetaError, ObjectRow, PartRow, PutCondition, ReapedUploads, Released,
    UploadPage, UploadRow, VersionPage, VersionQuery, VersionSel, Versioning,
};

/// Sends requests to the metadata threads: reads to the readers, writes to the
/// writer. Clone one per runtime.
#[derive(Clone)]
pub struct MetaClient {
    writes: flume::Sender<Write>,
    reads: flume::Sender<Read>,
    stats: Arc<WriterStats>,
    generations: Arc<Generations>,
    blobs: Option<BlobClient>,
}

/// Reaches object bytes held in the database (the sqlite backend): writes go to the
/// one writer, in its group commits; reads to blob readers of their own, so a large
/// GET never holds up a metadata read. Clones may live on any thread.
#[derive(Clone, Debug)]
pub struct BlobClient {
    writes: flume::Sender<Write>,
    reads: flume::Sender<BlobRead>,
}

/// The metadata threads. They end after every `MetaClient` is dropped and their
/// queues are drained.
pub struct MetaThread {
    handles: Vec<JoinHandle<()>>,
}

impl MetaThread {
    /// Waits for the threads to finish: call after dropping every client.
    pub fn join(self) {
        for handle in self.handles {
            let _ = handle.join();
        }
    }
}

/// Opens (creating and migrating) the database, then starts the writer and the
/// readers (and, with `blobs`, the readers of object bytes kept in the database).
/// Every commit that releases data files sends them on `released`, for the reclaimer.
pub fn start(
    db_path: &Path,
    released: flume::Sender<Released>,
    blobs: bool,
) -> Result<(MetaClient, MetaThread), MetaError> {
    let conn = schema::open(db_path)?;
    if blobs {
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            limits::BLOB_WAL_CHECKPOINT_PAGES,
        )?;
    }
    let (writes, write_rx) = flume::bounded(limits::META_QUEUE_DEPTH_MAX);
    let (reads, read_rx) = flume::bounded(limits::META_QUEUE_DEPTH_MAX);
    let stats = Arc::new(WriterStats::default());
    let spawn_error =
        |e: std::io::Error| MetaError::Sqlite(format!("cannot start a metadata thread: {e}"));
    let mut handles = Vec::with_capacity(1 + limits::META_READERS);
    let writer_stats = stats.clone();
    let generations = Arc::new(Generations::default());
    let writer_generations = generations.clone();
    handles.push(
        std::thread::Builder::new()
            .name("bleepstore-meta".into())
            .spawn(move || writer::run(conn, write_rx, released, writer_stats, writer_generations))
            .map_err(spawn_error)?,
    );
    for index in 0..limits::META_READERS {
        let conn = schema::open_reader(db_path, limits::META_READER_CACHE_KIB)?;
        let rx = read_rx.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("bleepstore-read-{index}"))
                .spawn(move || readers::run(conn, rx))
                .map_err(spawn_error)?,
        );
    }
    let blobs = if blobs {
        let (blob_reads, blob_read_rx) = flume::bounded(limits::META_QUEUE_DEPTH_MAX);
        for index in 0..limits::BLOB_READERS {
            let conn = schema::open_reader(db_path, limits::BLOB_READER_CACHE_KIB)?;
            let rx = blob_read_rx.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("bleepstore-blob-{index}"))
                    .spawn(move || readers::run_blobs(conn, rx))
                    .map_err(spawn_error)?,
            );
        }
        Some(BlobClient {
            writes: writes.clone(),
            reads: blob_reads,
        })
    } else {
        None
    };
    Ok((
        MetaClient {
            writes,
            reads,
            stats,
            generations,
            blobs,
        },
        MetaThread { handles },
    ))
}

/// Sends one request to a metadata thread and awaits its reply.
async fn ask<M, T>(
    queue: &flume::Sender<M>,
    make: impl FnOnce(Reply<T>) -> M,
) -> Result<T, MetaError> {
    let (reply_tx, reply_rx) = flume::bounded(1);
    queue
        .send_async(make(reply_tx))
        .await
        .map_err(|_| MetaError::Closed)?;
    reply_rx.recv_async().await.map_err(|_| MetaError::Closed)?
}

impl MetaClient {
    async fn write<T>(&self, make: impl FnOnce(Reply<T>) -> Write) -> Result<T, MetaError> {
        ask(&self.writes, make).await
    }

    async fn read<T>(&self, make: impl FnOnce(Reply<T>) -> Read) -> Result<T, MetaError> {
        ask(&self.reads, make).await
    }

    /// The way to object bytes in the database, when started with them.
    pub fn blobs(&self) -> Option<BlobClient> {
        self.blobs.clone()
    }

    /// The commit generations, by which a core knows a row it read is still current.
    pub fn generations(&self) -> &Generations {
        &self.generations
    }

    /// The writer's figures (commits, writes).
    pub fn writer_stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Writes waiting for the writer to take them.
    pub fn queued_writes(&self) -> usize {
        self.writes.len()
    }

    pub async fn create_bucket(&self, row: BucketRow) -> Result<CreateBucketOutcome, MetaError> {
        self.write(|reply| Write::CreateBucket(row, reply)).await
    }

    /// Fails with `NoSuchBucket`, or `BucketNotEmpty` while objects or uploads remain.
    pub async fn delete_bucket(&self, name: &str) -> Result<(), MetaError> {
        self.write(|reply| Write::DeleteBucket(name.to_string(), reply))
            .await
    }

    pub async fn get_bucket(&self, name: &str) -> Result<Option<BucketRow>, MetaError> {
        self.read(|reply| Read::GetBucket(name.to_string(), reply))
            .await
    }

    /// Every bucket, sorted by name.
    pub async fn list_buckets(&self) -> Result<Vec<BucketRow>, MetaError> {
        self.read(Read::ListBuckets).await
    }

    /// Inserts or replaces an object row. The condition is checked against the
    /// current row in the same transaction step as the write, so two racing
    /// creators cannot both win. The replaced object's data files are released
    /// to the reclaimer. A `tail` (the sqlite backend's) seals the object's bytes in
    /// the same step: row and bytes commit together or not at all. In a bucket with
    /// versioning enabled the row is a new version, whose id is returned.
    pub async fn put_object(
        &self,
        row: ObjectRow,
        cond: PutCondition,
        tail: Option<BlobTail>,
    ) -> Result<Option<String>, MetaError> {
        self.write(|reply| Write::PutObject(Box::new(row), cond, tail, reply))
            .await
    }

    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<ObjectRow>, MetaError> {
        self.read(|reply| Read::GetObject(bucket.to_string(), key.to_string(), reply))
            .await
    }

    /// A bucket and one of its objects, in one trip to the metadata thread (what
    /// every GET and HEAD needs). The object is `None` when the bucket is.
    pub async fn get_bucket_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<BucketObject, MetaError> {
        self.read(|reply| Read::GetBucketObject(bucket.to_string(), key.to_string(), reply))
            .await
    }

    /// A bucket and one version of one of its objects (a delete marker included).
    pub async fn get_bucket_object_version(
        &self,
        bucket: &str,
        key: &str,
        version: VersionSel,
    ) -> Result<BucketObject, MetaError> {
        let request = |reply| {
            Read::GetBucketObjectVersion(bucket.to_string(), key.to_string(), version, reply)
        };
        self.read(request).await
    }

    /// Removes an object or one version of it, or (a bucket with versioning on, no
    /// version named) hides it behind a new delete marker; releases the data files of
    /// what it removed.
    pub async fn delete_object(
        &self,
        bucket: &str,
        spec: DeleteSpec,
    ) -> Result<Deleted, MetaError> {
        self.write(|reply| Write::DeleteObject(bucket.to_string(), spec, reply))
            .await
    }

    /// Deletes many keys (or versions) in one transaction; returns each one's outcome.
    pub async fn delete_objects(
        &self,
        bucket: &str,
        specs: Vec<DeleteSpec>,
    ) -> Result<Vec<Result<Deleted, MetaError>>, MetaError> {
        self.write(|reply| Write::DeleteObjects(bucket.to_string(), specs, reply))
            .await
    }

    /// ListObjectVersions: versions and delete markers, newest first by key.
    pub async fn list_versions(&self, query: VersionQuery) -> Result<VersionPage, MetaError> {
        self.read(|reply| Read::ListVersions(query, reply)).await
    }

    /// Sets (or, with none, removes) a bucket's CORS rules (JSON text).
    pub async fn set_bucket_cors(
        &self,
        bucket: &str,
        cors: Option<String>,
    ) -> Result<(), MetaError> {
        self.write(|reply| Write::SetBucketCors(bucket.to_string(), cors, reply))
            .await
    }

    /// Sets a bucket's object lock configuration (turning object lock on for good).
    pub async fn set_lock_config(&self, bucket: &str, config: LockConfig) -> Result<(), MetaError> {
        self.write(|reply| Write::SetLockConfig(bucket.to_string(), config, reply))
            .await
    }

    /// Changes the retention or legal hold of a version (the current one: none).
    pub async fn set_object_lock(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionSel>,
        change: LockChange,
    ) -> Result<(), MetaError> {
        let request = |reply| {
            Write::SetObjectLock(bucket.to_string(), key.to_string(), version, change, reply)
        };
        self.write(request).await
    }

    /// Turns a bucket's versioning on or suspends it.
    pub async fn set_versioning(
        &self,
        bucket: &str,
        versioning: Versioning,
    ) -> Result<(), MetaError> {
        self.write(|reply| Write::SetBucketVersioning(bucket.to_string(), versioning, reply))
            .await
    }

    pub async fn list_objects(&self, query: ListQuery) -> Result<ListPage, MetaError> {
        self.read(|reply| Read::ListObjects(query, reply)).await
    }

    pub async fn get_credential(
        &self,
        access_key: &str,
    ) -> Result<Option<CredentialRow>, MetaError> {
        self.read(|reply| Read::GetCredential(access_key.to_string(), reply))
            .await
    }

    /// Inserts or replaces a key pair.
    pub async fn put_credential(&self, row: CredentialRow) -> Result<(), MetaError> {
        self.write(|reply| Write::PutCredential(row, reply)).await
    }

    /// Answers once the metadata thread has read the database (a health check).
    pub async fn ping(&self) -> Result<(), MetaError> {
        self.read(Read::Ping).await
    }

    /// How many buckets, objects and multipart uploads exist (for /metrics).
    pub async fn counts(&self) -> Result<MetaCounts, MetaError> {
        self.read(Read::Counts).await
    }

    /// Records a new multipart upload (NoSuchBucket when the bucket is gone).
    pub async fn create_upload(&self, upload: UploadRow) -> Result<(), MetaError> {
        self.write(|reply| Write::CreateUpload(Box::new(upload), reply))
            .await
    }

    pub async fn get_upload(&self, upload_id: &str) -> Result<Option<UploadRow>, MetaError> {
        self.read(|reply| Read::GetUpload(upload_id.to_string(), reply))
            .await
    }

    /// Records a part, releasing the data file of a part it replaced; a `tail` seals
    /// its bytes in the same step, as for `put_object`.
    pub async fn put_part(&self, part: PartRow, tail: Option<BlobTail>) -> Result<(), MetaError> {
        self.write(|reply| Write::PutPart(part, tail, reply)).await
    }

    /// Parts numbered above `after`, at most `max`, and whether more follow.
    pub async fn list_parts(
        &self,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<PartRow>, bool), MetaError> {
        self.read(|reply| Read::ListParts(upload_id.to_string(), after, max, reply))
            .await
    }

    /// Validates the requested (part number, etag) list and makes the object from
    /// those parts by reference, in one transaction step.
    pub async fn complete_upload(
        &self,
        request: CompleteRequest,
    ) -> Result<CompletedUpload, MetaError> {
        self.write(|reply| Write::CompleteUpload(request, reply))
            .await
    }

    /// Drops an upload, releasing its parts' data files.
    pub async fn abort_upload(&self, upload_id: &str) -> Result<(), MetaError> {
        self.write(|reply| Write::AbortUpload(upload_id.to_string(), reply))
            .await
    }

    /// Aborts uploads initiated before `before_ms`.
    pub async fn reap_uploads(&self, before_ms: i64) -> Result<ReapedUploads, MetaError> {
        self.write(|reply| Write::ReapUploads(before_ms, reply))
            .await
    }

    pub async fn list_uploads(&self, query: UploadQuery) -> Result<UploadPage, MetaError> {
        self.read(|reply| Read::ListUploads(query, reply)).await
    }

    /// Every data id in the reclaim table: what a crash left released but not removed.
    pub async fn reclaimable(&self) -> Result<Vec<String>, MetaError> {
        self.read(Read::Reclaimable).await
    }

    /// Forgets reclaim rows whose files are removed.
    pub async fn forget_reclaimed(&self, data_ids: Vec<String>) -> Result<(), MetaError> {
        self.write(|reply| Write::ForgetReclaimed(data_ids, reply))
            .await
    }

    /// Replaces a bucket's ACL (JSON text).
    pub async fn set_bucket_acl(&self, name: &str, acl: String) -> Result<(), MetaError> {
        self.write(|reply| Write::SetBucketAcl(name.to_string(), acl, reply))
            .await
    }

    /// Replaces the ACL (JSON text) of an object or one version of it; NoSuchKey (or
    /// NoSuchVersion) when it is gone.
    pub async fn set_object_acl(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionSel>,
        acl: String,
    ) -> Result<(), MetaError> {
        let request =
            |reply| Write::SetObjectAcl(bucket.to_string(), key.to_string(), version, acl, reply);
        self.write(request).await
    }
}

impl BlobClient {
    /// Stores one chunk of an object being written; answered once it is committed
    /// (without a sync of its own: the seal's commit makes it durable).
    pub async fn write_chunk(
        &self,
        data_id: &str,
        seq: u64,
        bytes: Vec<u8>,
    ) -> Result<(), MetaError> {
        ask(&self.writes, |reply| {
            Write::BlobChunk(data_id.to_string(), seq, bytes, reply)
        })
        .await
    }

    /// Seals an object on its own, durably.
    pub async fn seal(&self, tail: BlobTail) -> Result<(), MetaError> {
        ask(&self.writes, |reply| Write::BlobSeal(tail, reply)).await
    }

    /// Seals `target` as a copy of the whole object `source`, durably; its size, or
    /// `None` when `source` does not exist.
    pub async fn copy(&self, source: &str, target: &str) -> Result<Option<u64>, MetaError> {
        ask(&self.writes, |reply| {
            Write::BlobCopy(source.to_string(), target.to_string(), reply)
        })
        .await
    }

    /// Removes an object's bytes (nothing when they are gone).
    pub async fn remove(&self, data_id: &str) -> Result<(), MetaError> {
        ask(&self.writes, |reply| {
            Write::BlobRemove(data_id.to_string(), origin(), reply)
        })
        .await
    }

    /// Removes an object's bytes without waiting (an upload dropped unfinished). When
    /// the queue is full they stay, for the next startup's sweep.
    pub fn remove_soon(&self, data_id: &str) {
        let (reply, _) = flume::bounded(1);
        let _ = self
            .writes
            .try_send(Write::BlobRemove(data_id.to_string(), origin(), reply));
    }

    /// A sealed object's size, with its bytes when it is a single chunk of at most
    /// `inline_max` bytes; `None` when there is no such object.
    pub async fn open(
        &self,
        data_id: &str,
        inline_max: u64,
    ) -> Result<Option<BlobInfo>, MetaError> {
        ask(&self.reads, |reply| {
            BlobRead::Open(data_id.to_string(), inline_max, reply)
        })
        .await
    }

    /// Reads from chunk `seq` at `within` into `buf` (up to its capacity); returns the
    /// count and the buffer.
    pub async fn read_chunk(
        &self,
        data_id: &str,
        seq: u64,
        within: u64,
        buf: Vec<u8>,
    ) -> Result<(usize, Vec<u8>), MetaError> {
        ask(&self.reads, |reply| {
            BlobRead::Chunk(data_id.to_string(), seq, within, buf, reply)
        })
        .await
    }

    /// Every sealed object's id.
    pub async fn list_ids(&self) -> Result<Vec<String>, MetaError> {
        ask(&self.reads, BlobRead::ListIds).await
    }
}
