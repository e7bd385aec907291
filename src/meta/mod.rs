//! Metadata in SQLite. Runtimes reach it through `MetaClient`, whose async methods
//! send a typed message (`messages`) over a bounded channel and await the reply.
//! One writer thread owns the read-write connection and commits every waiting
//! write in one transaction (group commit, `writer`), so N concurrent PUTs cost one
//! fsync; reader threads serve reads on read-only connections (`readers`), so reads
//! never wait behind a commit. The SQL lives by table: `buckets`, `objects`,
//! `uploads`, `credentials`, `reclaim`, `counts`, and `blobs` (the sqlite storage
//! backend's object bytes, which `BlobClient` reaches through the same writer and
//! readers of their own). Nothing here knows HTTP or S3 XML.

pub mod admin;
mod blobs;
mod buckets;
mod client;
mod columns;
mod counts;
mod credentials;
mod generations;
mod json;
mod messages;
mod objects;
mod readers;
mod reclaim;
mod row_cache;
mod schema;
mod uploads;
mod versions;
mod writer;

pub use blobs::{BlobInfo, BlobTail};
pub use client::{start, BlobClient, MetaClient, MetaThread};
pub use generations::{Generations, Stamp};
pub use row_cache::{CachedRows, RowCache};
pub use uploads::{UploadQuery, PART_BYTES_MIN};
pub use versions::{format_version_id, parse_version_id};
pub use writer::WriterStats;

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketRow {
    pub name: String,
    pub owner_id: String,
    pub region: String,
    /// Access control list as JSON text, owned by the s3 layer.
    pub acl: String,
    pub created_ms: i64,
    pub versioning: Versioning,
    /// Object lock: on for good once enabled (with versioning), and the retention
    /// new objects get when their PUT names none.
    pub object_lock: Option<LockConfig>,
    /// CORS rules as JSON text, owned by the s3 layer; none when not configured.
    pub cors: Option<String>,
}

/// A bucket's object lock configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockConfig {
    pub default_retention: Option<DefaultRetention>,
}

/// The retention a lock-enabled bucket gives new objects: a mode and a period, in days
/// or in years (as configured, so it reads back the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRetention {
    pub mode: RetentionMode,
    pub days: Option<u32>,
    pub years: Option<u32>,
}

impl DefaultRetention {
    /// When a version written at `now_ms` stops being protected.
    pub fn until_ms(&self, now_ms: i64) -> i64 {
        const DAY_MS: i64 = 86_400_000;
        let days = i64::from(self.days.unwrap_or(0)) + 365 * i64::from(self.years.unwrap_or(0));
        now_ms.saturating_add(days.saturating_mul(DAY_MS))
    }
}

/// S3's two retention modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionMode {
    /// Only a bypass by the bucket owner shortens or removes it.
    Governance,
    /// Nobody shortens or removes it before its date.
    Compliance,
}

impl RetentionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionMode::Governance => "GOVERNANCE",
            RetentionMode::Compliance => "COMPLIANCE",
        }
    }

    pub fn from_name(name: &str) -> Option<RetentionMode> {
        match name {
            "GOVERNANCE" => Some(RetentionMode::Governance),
            "COMPLIANCE" => Some(RetentionMode::Compliance),
            _ => None,
        }
    }
}

/// A version's retention: protected from deletion until `until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub mode: RetentionMode,
    pub until_ms: i64,
}

/// A bucket's versioning state. Once versioning is on, a bucket never returns to
/// `Unversioned`: it can only be suspended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

impl Versioning {
    /// The S3 name (`Status` of a VersioningConfiguration); none when never enabled.
    pub fn status(self) -> Option<&'static str> {
        match self {
            Versioning::Unversioned => None,
            Versioning::Enabled => Some("Enabled"),
            Versioning::Suspended => Some("Suspended"),
        }
    }

    pub fn from_status(status: Option<&str>) -> Option<Versioning> {
        match status {
            None => Some(Versioning::Unversioned),
            Some("Enabled") => Some(Versioning::Enabled),
            Some("Suspended") => Some(Versioning::Suspended),
            Some(_) => None,
        }
    }
}

/// A version of a key, as a request names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSel {
    /// The `null` version: the one written while versioning was off or suspended.
    Null,
    /// A version written while versioning was enabled, by its sequence number.
    Seq(i64),
}

/// What a DeleteObject did, as its response headers tell it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Deleted {
    /// `x-amz-version-id`: the marker made, or the version removed (`null` included).
    pub version_id: Option<String>,
    /// `x-amz-delete-marker: true`: a marker was made, or the version removed was one.
    pub delete_marker: bool,
}

/// One DELETE of a key: of a version, or (none named) of the current object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteSpec {
    pub key: String,
    pub version: Option<VersionSel>,
    /// `If-Match`: only when the current object has this ETag.
    pub if_match: Option<String>,
    /// Who deletes: the owner of a delete marker it makes.
    pub owner_id: String,
    /// `x-amz-bypass-governance-retention: true` from the bucket's owner: GOVERNANCE
    /// retention does not stop this delete.
    pub bypass_governance: bool,
}

/// A change of one version's object lock state (PutObjectRetention or
/// PutObjectLegalHold), checked against its current state in the write's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockChange {
    /// The new retention (none: remove it); `bypass_governance` as for a delete.
    Retention {
        retention: Option<Retention>,
        bypass_governance: bool,
    },
    LegalHold(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Hex MD5 (or `<hex>-<parts>`), without quotes.
    pub etag: String,
    pub content_type: String,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub content_disposition: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    /// `x-amz-meta-*` pairs, names without the prefix, lowercased.
    pub user_meta: Vec<(String, String)>,
    pub storage_class: String,
    pub acl: String,
    pub last_modified_ms: i64,
    /// Name of the data file in storage.
    pub data_id: String,
    pub checksum_algorithm: Option<String>,
    /// Base64 checksum; a composite multipart value ends in `-<parts>`.
    pub checksum_value: Option<String>,
    /// `COMPOSITE` or `FULL_OBJECT` when a checksum is present.
    pub checksum_type: Option<String>,
    pub owner_id: String,
    /// Number of parts for an object completed from a multipart upload.
    pub parts_count: Option<u32>,
    /// The multipart upload this object was completed from (makes completion idempotent).
    pub upload_id: Option<String>,
    /// The ordered part files of a multipart object (empty for a single PUT, whose
    /// bytes are in `data_id`). The object is its parts, by reference: completion copies nothing.
    pub parts: Vec<PartRef>,
    /// The version id; none for the `null` version (every object of a bucket that
    /// never had versioning on).
    pub version_id: Option<String>,
    /// The order of the key's versions (greater is newer); the metadata thread sets it.
    pub version_seq: i64,
    /// A delete marker: a version without bytes that hides the ones before it.
    pub delete_marker: bool,
    /// Object lock retention, if the version has one.
    pub retention: Option<Retention>,
    /// Object lock legal hold: none when never set, else whether it is on.
    pub legal_hold: Option<bool>,
}

impl ObjectRow {
    /// The version id as S3 shows it: `null` for the null version.
    pub fn version_label(&self) -> &str {
        self.version_id.as_deref().unwrap_or("null")
    }

    /// (data id, offset, length) pieces holding bytes `first..first + length`, in order:
    /// one piece of a single-PUT object, or the parts a range touches (never an empty one).
    pub fn ranges(&self, first: u64, length: u64) -> Vec<(String, u64, u64)> {
        let pieces: Vec<(&str, u64)> = if self.parts_count.is_some() {
            self.parts
                .iter()
                .map(|p| (p.data_id.as_str(), p.size))
                .collect()
        } else {
            vec![(self.data_id.as_str(), self.size)]
        };
        let end = first + length;
        let mut ranges = Vec::new();
        let mut start = 0u64;
        for (data_id, size) in pieces {
            let stop = start + size;
            if stop > first && start < end && size > 0 {
                let offset = first.max(start) - start;
                ranges.push((data_id.to_string(), offset, end.min(stop) - start - offset));
            }
            start = stop;
        }
        ranges
    }

    /// The checksum an object (or an upload, in its template row) carries, if any.
    pub fn checksum_kind(
        &self,
    ) -> Option<(
        crate::checksum::ChecksumAlgorithm,
        crate::checksum::ChecksumType,
    )> {
        use crate::checksum::{ChecksumAlgorithm, ChecksumType};
        let alg = ChecksumAlgorithm::from_name(self.checksum_algorithm.as_deref()?)?;
        let kind = self
            .checksum_type
            .as_deref()
            .and_then(ChecksumType::from_name)
            .unwrap_or(ChecksumType::default_for(alg));
        Some((alg, kind))
    }
}

/// One part of a multipart object, in object order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef {
    pub part_number: u32,
    pub size: u64,
    /// Hex MD5 of the part, unquoted.
    pub etag: String,
    pub data_id: String,
    /// Base64 checksum of the part in the upload's algorithm, if it had one.
    pub checksum_value: Option<String>,
}

/// A multipart upload in progress. `object` carries what CreateMultipartUpload
/// set (bucket, key, content headers, metadata, ACL, storage class, checksum algorithm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    pub upload_id: String,
    pub initiated_ms: i64,
    pub object: ObjectRow,
}

/// One uploaded part of an upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRow {
    pub upload_id: String,
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
    pub data_id: String,
    pub last_modified_ms: i64,
    pub checksum_value: Option<String>,
}

/// One `<Part>` of a CompleteMultipartUpload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    /// Unquoted ETag.
    pub etag: String,
    /// A `Checksum<ALG>` element: the algorithm's S3 name and the base64 value.
    pub checksum: Option<(String, String)>,
}

/// What CompleteMultipartUpload asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompleteRequest {
    pub upload_id: String,
    /// The object to create: the upload's headers, with the completion time.
    pub template: Box<ObjectRow>,
    pub parts: Vec<CompletedPart>,
    /// An object checksum the client sent (`x-amz-checksum-<alg>`), to verify.
    pub expected_checksum: Option<String>,
    pub condition: PutCondition,
}

/// Result of CompleteMultipartUpload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedUpload {
    /// `<hex md5 of the parts' binary md5s>-<count>`.
    pub etag: String,
    pub size: u64,
    /// (algorithm, value, type) of the object's checksum, when the upload had one.
    pub checksum: Option<(String, String, String)>,
    /// `x-amz-version-id` of the object made, in a bucket with versioning enabled.
    pub version_id: Option<String>,
}

/// Row counts, for the gauges of /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetaCounts {
    pub buckets: u64,
    pub objects: u64,
    pub uploads: u64,
    /// Released data files not yet removed (rows of the reclaim table).
    pub reclaim: u64,
}

/// A bucket and one object of it, as read together.
pub type BucketObject = (Option<BucketRow>, Option<ObjectRow>);

/// What a sweep for expired multipart uploads aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReapedUploads {
    pub uploads: usize,
    /// Part files released (for the reclaimer to remove).
    pub parts: usize,
}

/// Data files a commit released: no row references them any more, but a reader that
/// read a row before `committed` may still be about to open them, so they are removed
/// only once every read begun before that instant has opened its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub committed: std::time::Instant,
    pub data_ids: Vec<String>,
}

/// A page of ListMultipartUploads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadPage {
    pub uploads: Vec<UploadRow>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRow {
    pub access_key: String,
    pub secret_key: crate::auth::SecretKey,
    pub owner_id: String,
    pub display_name: String,
    pub created_ms: i64,
}

/// A condition checked against the current row in the same step as the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    None,
    /// `If-None-Match: *`: only when no object has the key.
    IfNoneMatchStar,
    /// `If-Match: "etag"`: only when the current object has this ETag (unquoted).
    IfMatch(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateBucketOutcome {
    Created,
    AlreadyOwnedByYou,
    AlreadyExists,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub bucket: String,
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Exclusive lower bound: the marker, start-after, or decoded continuation token.
    pub after: Option<String>,
    pub max_keys: usize,
}

/// Where ListObjectVersions starts: after `list.after` (the key marker), or within
/// it, after the version `version_after` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionQuery {
    pub list: ListQuery,
    pub version_after: Option<VersionSel>,
}

/// One entry of ListObjectVersions: a version or a delete marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub row: ObjectRow,
    pub is_latest: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionPage {
    pub entries: Vec<VersionEntry>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key (or common prefix) and version returned, when truncated.
    pub next_key: Option<String>,
    pub next_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectRow>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned, when the page is truncated.
    pub next_after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaError {
    NoSuchBucket,
    BucketNotEmpty,
    NoSuchKey,
    /// A version id names no version of the key.
    NoSuchVersion,
    /// Object lock protects the version from this delete or change.
    ObjectLocked,
    /// The bucket's state does not allow the change (its reason).
    InvalidBucketState(&'static str),
    /// An object lock request to a bucket without object lock.
    NoObjectLock,
    NoSuchUpload,
    PreconditionFailed,
    /// A part named in a completion is missing or its ETag differs (part number given).
    InvalidPart(u32),
    InvalidPartOrder,
    /// A part other than the last is below the 5 MiB minimum (part number, size).
    EntityTooSmall(u32, u64),
    /// A composite-checksum completion lacks the checksum of this part.
    MissingPartChecksum(u32),
    /// The object checksum given with a completion differs from the computed one.
    BadDigest,
    /// The metadata thread is gone (shutdown or a crash of the thread).
    Closed,
    /// The database's disk is full: the write was rolled back.
    DiskFull,
    /// The database stayed locked (by another process) past the busy timeout: nothing
    /// was done, and a retry may succeed.
    Busy,
    Sqlite(String),
}

impl fmt::Display for MetaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaError::NoSuchBucket => f.write_str("no such bucket"),
            MetaError::BucketNotEmpty => f.write_str("bucket not empty"),
            MetaError::NoSuchKey => f.write_str("no such key"),
            MetaError::NoSuchVersion => f.write_str("no such version"),
            MetaError::ObjectLocked => f.write_str("protected by object lock"),
            MetaError::InvalidBucketState(why) => write!(f, "invalid bucket state: {why}"),
            MetaError::NoObjectLock => f.write_str("bucket without object lock"),
            MetaError::NoSuchUpload => f.write_str("no such upload"),
            MetaError::InvalidPart(n) => write!(f, "invalid part {n}"),
            MetaError::InvalidPartOrder => f.write_str("parts not in ascending order"),
            MetaError::EntityTooSmall(n, size) => write!(f, "part {n} too small ({size} bytes)"),
            MetaError::MissingPartChecksum(n) => write!(f, "no checksum given for part {n}"),
            MetaError::BadDigest => f.write_str("object checksum does not match"),
            MetaError::PreconditionFailed => f.write_str("precondition failed"),
            MetaError::Closed => f.write_str("metadata thread closed"),
            MetaError::DiskFull => f.write_str("metadata disk full"),
            MetaError::Busy => f.write_str("metadata database busy"),
            MetaError::Sqlite(message) => write!(f, "sqlite: {message}"),
        }
    }
}

impl std::error::Error for MetaError {}

impl From<rusqlite::Error> for MetaError {
    fn from(error: rusqlite::Error) -> MetaError {
        if let rusqlite::Error::SqliteFailure(failure, _) = &error {
            match failure.code {
                rusqlite::ErrorCode::DiskFull => return MetaError::DiskFull,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                    return MetaError::Busy
                }
                _ => {}
            }
        }
        MetaError::Sqlite(error.to_string())
    }
}

#[cfg(test)]
mod tests;
