//! The typed messages the runtimes send the metadata threads: reads, which any
//! reader serves on its read-only connection, and writes, which the one writer
//! group-commits. Each carries the channel its reply goes back on.

use crate::meta::blobs::{BlobInfo, BlobTail};
use crate::meta::uploads::UploadQuery;
use crate::meta::{
    BucketObject, BucketRow, CompleteRequest, CompletedUpload, CreateBucketOutcome, CredentialRow,
    DeleteSpec, Deleted, ListPage, ListQuery, LockChange, LockConfig, MetaCounts, MetaError,
    ObjectRow, PartRow, PutCondition, ReapedUploads, UploadPage, UploadRow, VersionPage,
    VersionQuery, VersionSel, Versioning,
};

pub(crate) type Reply<T> = flume::Sender<Result<T, MetaError>>;

/// Where a write that anyone may send came from: in a fault-injection build, the
/// fault plan's lane of the sending thread, so that the reclaimer's and the sweep's
/// writes are not counted as a request's steps; nothing otherwise.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Origin {
    #[cfg(feature = "fault-injection")]
    pub(crate) lane: crate::fault::Lane,
}

/// The `Origin` of a write sent from this thread now.
pub(crate) fn origin() -> Origin {
    Origin {
        #[cfg(feature = "fault-injection")]
        lane: crate::fault::current_lane(),
    }
}

/// A read: it sees the last committed state, in one read transaction.
pub(crate) enum Read {
    GetBucket(String, Reply<Option<BucketRow>>),
    ListBuckets(Reply<Vec<BucketRow>>),
    GetObject(String, String, Reply<Option<ObjectRow>>),
    /// A bucket and one of its objects in one snapshot (the object is absent without the bucket).
    GetBucketObject(String, String, Reply<BucketObject>),
    /// A bucket and one version of one of its objects (a delete marker included).
    GetBucketObjectVersion(String, String, VersionSel, Reply<BucketObject>),
    ListObjects(ListQuery, Reply<ListPage>),
    ListVersions(VersionQuery, Reply<VersionPage>),
    GetCredential(String, Reply<Option<CredentialRow>>),
    Ping(Reply<()>),
    Counts(Reply<MetaCounts>),
    GetUpload(String, Reply<Option<UploadRow>>),
    ListParts(String, u32, usize, Reply<(Vec<PartRow>, bool)>),
    ListUploads(UploadQuery, Reply<UploadPage>),
    /// Every data id waiting in the reclaim table (startup removes them all).
    Reclaimable(Reply<Vec<String>>),
}

/// A write: answered only once the transaction holding it is durable.
pub(crate) enum Write {
    CreateBucket(BucketRow, Reply<CreateBucketOutcome>),
    DeleteBucket(String, Reply<()>),
    /// An object's row, with the end of its bytes when the database holds them; the
    /// reply is the version id made, in a bucket with versioning enabled.
    PutObject(
        Box<ObjectRow>,
        PutCondition,
        Option<BlobTail>,
        Reply<Option<String>>,
    ),
    DeleteObject(String, DeleteSpec, Reply<Deleted>),
    DeleteObjects(
        String,
        Vec<DeleteSpec>,
        Reply<Vec<Result<Deleted, MetaError>>>,
    ),
    PutCredential(CredentialRow, Reply<()>),
    CreateUpload(Box<UploadRow>, Reply<()>),
    SetBucketAcl(String, String, Reply<()>),
    SetObjectAcl(String, String, Option<VersionSel>, String, Reply<()>),
    SetBucketVersioning(String, Versioning, Reply<()>),
    SetLockConfig(String, LockConfig, Reply<()>),
    /// A bucket's CORS rules (JSON), or none to remove them.
    SetBucketCors(String, Option<String>, Reply<()>),
    /// PutObjectRetention or PutObjectLegalHold on a version (the current one: none).
    SetObjectLock(String, String, Option<VersionSel>, LockChange, Reply<()>),
    PutPart(PartRow, Option<BlobTail>, Reply<()>),
    CompleteUpload(CompleteRequest, Reply<CompletedUpload>),
    AbortUpload(String, Reply<()>),
    ReapUploads(i64, Reply<ReapedUploads>),
    /// Drops the reclaim rows of files that were removed.
    ForgetReclaimed(Vec<String>, Reply<()>),
    /// One chunk of an object being written to the database (data id, number, bytes).
    BlobChunk(String, u64, Vec<u8>, Reply<()>),
    /// Seals an object on its own (a copy's, say), without a row naming it yet.
    BlobSeal(BlobTail, Reply<()>),
    /// Seals a copy of a whole sealed object (source, target); its size, if it exists.
    BlobCopy(String, String, Reply<Option<u64>>),
    /// Removes an object's bytes from the database (the reclaimer's, a request's or
    /// the sweep's).
    BlobRemove(String, Origin, Reply<()>),
}

/// A read of object bytes in the database, served by the blob readers.
pub(crate) enum BlobRead {
    /// A sealed object's size (and bytes, when at most the given size).
    Open(String, u64, Reply<Option<BlobInfo>>),
    /// Bytes of one chunk (data id, chunk number, offset in it) into the buffer.
    Chunk(String, u64, u64, Vec<u8>, Reply<(usize, Vec<u8>)>),
    /// Every sealed object's id.
    ListIds(Reply<Vec<String>>),
}

pub(crate) fn send<T>(reply: Reply<T>, result: Result<T, MetaError>) {
    // The caller may have gone away (its connection closed); that is fine.
    let _ = reply.send(result);
}

impl Write {
    /// Answers the write with `error` (its transaction could not begin).
    pub(crate) fn fail(self, error: MetaError) {
        match self {
            Write::CreateBucket(_, reply) => send(reply, Err(error)),
            Write::DeleteBucket(_, reply) => send(reply, Err(error)),
            Write::PutObject(_, _, _, reply) => send(reply, Err(error)),
            Write::DeleteObject(_, _, reply) => send(reply, Err(error)),
            Write::DeleteObjects(_, _, reply) => send(reply, Err(error)),
            Write::PutCredential(_, reply) => send(reply, Err(error)),
            Write::CreateUpload(_, reply) => send(reply, Err(error)),
            Write::SetBucketAcl(_, _, reply) => send(reply, Err(error)),
            Write::SetObjectAcl(_, _, _, _, reply) => send(reply, Err(error)),
            Write::SetBucketVersioning(_, _, reply) => send(reply, Err(error)),
            Write::SetLockConfig(_, _, reply) => send(reply, Err(error)),
            Write::SetBucketCors(_, _, reply) => send(reply, Err(error)),
            Write::SetObjectLock(_, _, _, _, reply) => send(reply, Err(error)),
            Write::PutPart(_, _, reply) => send(reply, Err(error)),
            Write::CompleteUpload(_, reply) => send(reply, Err(error)),
            Write::AbortUpload(_, reply) => send(reply, Err(error)),
            Write::ReapUploads(_, reply) => send(reply, Err(error)),
            Write::ForgetReclaimed(_, reply) => send(reply, Err(error)),
            Write::BlobChunk(_, _, _, reply) => send(reply, Err(error)),
            Write::BlobSeal(_, reply) => send(reply, Err(error)),
            Write::BlobCopy(_, _, reply) => send(reply, Err(error)),
            Write::BlobRemove(_, _, reply) => send(reply, Err(error)),
        }
    }
}

impl Read {
    /// Answers the read with `error` (its transaction could not begin).
    pub(crate) fn fail(self, error: MetaError) {
        match self {
            Read::GetBucket(_, reply) => send(reply, Err(error)),
            Read::ListBuckets(reply) => send(reply, Err(error)),
            Read::GetObject(_, _, reply) => send(reply, Err(error)),
            Read::GetBucketObject(_, _, reply) => send(reply, Err(error)),
            Read::GetBucketObjectVersion(_, _, _, reply) => send(reply, Err(error)),
            Read::ListObjects(_, reply) => send(reply, Err(error)),
            Read::ListVersions(_, reply) => send(reply, Err(error)),
            Read::GetCredential(_, reply) => send(reply, Err(error)),
            Read::Ping(reply) => send(reply, Err(error)),
            Read::Counts(reply) => send(reply, Err(error)),
            Read::GetUpload(_, reply) => send(reply, Err(error)),
            Read::ListParts(_, _, _, reply) => send(reply, Err(error)),
            Read::ListUploads(_, reply) => send(reply, Err(error)),
            Read::Reclaimable(reply) => send(reply, Err(error)),
        }
    }
}
