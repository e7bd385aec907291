//! Typed operations: what the router named, with every input parsed from the path,
//! the query and the headers that select or parameterise it (upload ids, part
//! numbers, list parameters, copy sources, ranges, conditions). A malformed input is
//! refused here, before authorization and before any handler. Each operation names
//! the access it needs (`Operation::access`), which `s3::authorize` checks.

use crate::auth::percent_decode_str;
use crate::checksum::base64_decode;
use crate::clock;
use crate::error::{ErrorCode, S3Error};
use crate::http::RequestHead;
use crate::limits;
use crate::meta::{parse_version_id, PutCondition, UploadQuery, VersionSel};
use crate::s3::acl::Permission;
use crate::s3::route::{validate_bucket_name, OperationKind, Query, Target};

/// A key in a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

/// The parameters every object listing shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListParams {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_keys: usize,
    /// `encoding-type=url`: keys in the answer are percent-encoded.
    pub url_encoding: bool,
}

/// Where ListObjectsV2 starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListV2Start {
    /// The continuation token as sent, and the key it stands for.
    pub token: Option<(String, String)>,
    pub start_after: Option<String>,
    pub fetch_owner: bool,
}

/// A byte range as the `Range` header wrote it, before the object's size is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// `bytes=first-` or `bytes=first-last`.
    From { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// A `Range` header S3 honours (the raw text, for the error that names it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeRequest {
    pub raw: String,
    pub spec: RangeSpec,
}

/// The RFC 7232 preconditions of a read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReadConditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<i64>,
    pub if_unmodified_since: Option<i64>,
}

/// GetObject and HeadObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GetObjectInput {
    pub object: ObjectRef,
    /// `versionId`: the version to read (the current one when none).
    pub version: Option<VersionArg>,
    /// `partNumber=N` (the raw text too, for the error that names it).
    pub part_number: Option<(u32, String)>,
    pub range: Option<RangeRequest>,
    pub conditions: ReadConditions,
    /// `response-*` overrides: (response header, value).
    pub overrides: Vec<(&'static str, String)>,
    /// `x-amz-checksum-mode: ENABLED`.
    pub checksum_mode: bool,
}

/// The object named by `x-amz-copy-source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopySource {
    pub bucket: String,
    pub key: String,
    /// `?versionId=`: the version to copy (the current one when none).
    pub version: Option<VersionSel>,
}

/// What `x-amz-metadata-directive` asks of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetadataDirective {
    Copy,
    Replace,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyObjectInput {
    pub object: ObjectRef,
    pub source: CopySource,
    pub directive: MetadataDirective,
    pub condition: PutCondition,
}

/// A part of an upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartRef {
    pub object: ObjectRef,
    pub upload_id: String,
    pub part_number: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UploadPartCopyInput {
    pub part: PartRef,
    pub source: CopySource,
    /// `x-amz-copy-source-range`: (first, last) byte, checked against the source's size later.
    pub range: Option<(u64, u64, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListPartsInput {
    pub object: ObjectRef,
    pub upload_id: String,
    pub max_parts: usize,
    pub marker: u32,
}

/// The attributes GetObjectAttributes may return, in the order S3 answers them.
pub(crate) const ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttributesInput {
    pub object: ObjectRef,
    pub version: Option<VersionArg>,
    /// Names from `ATTRIBUTES`, in answer order.
    pub wanted: Vec<&'static str>,
    pub max_parts: u32,
    pub marker: u32,
}

/// An operation with its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operation {
    ListBuckets,
    CreateBucket(String),
    DeleteBucket(String),
    HeadBucket(String),
    GetBucketLocation(String),
    GetBucketVersioning(String),
    PutBucketVersioning(String),
    GetObjectLockConfiguration(String),
    GetBucketCors(String),
    PutBucketCors(String),
    DeleteBucketCors(String),
    PutObjectLockConfiguration(String),
    GetBucketAcl(String),
    PutBucketAcl(String),
    ListObjects {
        bucket: String,
        params: ListParams,
        marker: String,
    },
    ListObjectsV2 {
        bucket: String,
        params: ListParams,
        start: ListV2Start,
    },
    ListObjectVersions {
        bucket: String,
        params: ListParams,
        key_marker: String,
        /// `version-id-marker` as sent, and the version it names.
        version_marker: String,
        version_after: Option<VersionSel>,
    },
    ListMultipartUploads(UploadQuery),
    DeleteObjects(String),
    PutObject {
        object: ObjectRef,
        condition: PutCondition,
    },
    GetObject(GetObjectInput),
    HeadObject(GetObjectInput),
    DeleteObject {
        object: ObjectRef,
        version: Option<VersionArg>,
        if_match: Option<String>,
    },
    CopyObject(CopyObjectInput),
    GetObjectAcl(ObjectRef, Option<VersionArg>),
    PutObjectAcl(ObjectRef, Option<VersionArg>),
    GetObjectRetention(ObjectRef, Option<VersionArg>),
    PutObjectRetention(ObjectRef, Option<VersionArg>),
    GetObjectLegalHold(ObjectRef, Option<VersionArg>),
    PutObjectLegalHold(ObjectRef, Option<VersionArg>),
    GetObjectAttributes(AttributesInput),
    CreateMultipartUpload(ObjectRef),
    UploadPart(PartRef),
    UploadPartCopy(UploadPartCopyInput),
    CompleteMultipartUpload {
        object: ObjectRef,
        upload_id: String,
        condition: PutCondition,
    },
    AbortMultipartUpload {
        object: ObjectRef,
        upload_id: String,
    },
    ListParts(ListPartsInput),
    /// Known to S3, not served yet: answers 501 NotImplemented.
    NotImplemented(&'static str),
}

/// The access an operation needs, for `s3::authorize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access<'a> {
    /// Any authenticated user.
    Authenticated,
    /// The bucket's owner.
    BucketOwner(&'a str),
    /// An ACL permission on the bucket.
    Bucket(&'a str, Permission),
    /// An ACL permission on the object (the version `version` names). `data`: the
    /// object's bytes will be read, so the row is read under a read lease (see `reclaim`).
    Object {
        object: &'a ObjectRef,
        version: Option<&'a VersionArg>,
        permission: Permission,
        data: bool,
    },
    /// Write to the bucket, and read of the copy source's bytes.
    Copy {
        bucket: &'a str,
        source: &'a CopySource,
    },
}

impl Operation {
    /// Parses the inputs of the operation `kind` names.
    pub(crate) fn parse(
        kind: OperationKind,
        target: &Target,
        query: &Query,
        head: &RequestHead,
    ) -> Result<Operation, S3Error> {
        use OperationKind as K;
        let bucket = || target.bucket.clone().unwrap_or_default();
        let object = || ObjectRef {
            bucket: bucket(),
            key: target.key.clone().unwrap_or_default(),
        };
        let upload_id = || query.get("uploadId").unwrap_or_default().to_string();
        Ok(match kind {
            K::ListBuckets => Operation::ListBuckets,
            K::CreateBucket => {
                validate_bucket_name(&bucket())?;
                Operation::CreateBucket(bucket())
            }
            K::DeleteBucket => Operation::DeleteBucket(bucket()),
            K::HeadBucket => Operation::HeadBucket(bucket()),
            K::GetBucketLocation => Operation::GetBucketLocation(bucket()),
            K::GetBucketVersioning => Operation::GetBucketVersioning(bucket()),
            K::PutBucketVersioning => Operation::PutBucketVersioning(bucket()),
            K::GetObjectLockConfiguration => Operation::GetObjectLockConfiguration(bucket()),
            K::GetBucketCors => Operation::GetBucketCors(bucket()),
            K::PutBucketCors => Operation::PutBucketCors(bucket()),
            K::DeleteBucketCors => Operation::DeleteBucketCors(bucket()),
            K::PutObjectLockConfiguration => Operation::PutObjectLockConfiguration(bucket()),
            K::GetObjectRetention => Operation::GetObjectRetention(object(), version_param(query)),
            K::PutObjectRetention => Operation::PutObjectRetention(object(), version_param(query)),
            K::GetObjectLegalHold => Operation::GetObjectLegalHold(object(), version_param(query)),
            K::PutObjectLegalHold => Operation::PutObjectLegalHold(object(), version_param(query)),
            K::GetBucketAcl => Operation::GetBucketAcl(bucket()),
            K::PutBucketAcl => Operation::PutBucketAcl(bucket()),
            K::ListObjects => Operation::ListObjects {
                bucket: bucket(),
                params: list_params(query)?,
                marker: query.get("marker").unwrap_or_default().to_string(),
            },
            K::ListObjectsV2 => Operation::ListObjectsV2 {
                bucket: bucket(),
                params: list_params(query)?,
                start: ListV2Start {
                    token: match query.get("continuation-token") {
                        Some(token) => Some((token.to_string(), decode_token(token)?)),
                        None => None,
                    },
                    start_after: query
                        .get("start-after")
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                    fetch_owner: query.get("fetch-owner") == Some("true"),
                },
            },
            K::ListObjectVersions => {
                let key_marker = query.get("key-marker").unwrap_or_default();
                let version_marker = query.get("version-id-marker").unwrap_or_default();
                let version_after = match version_marker {
                    "" => None,
                    _ if key_marker.is_empty() => {
                        return Err(S3Error::with_message(
                            ErrorCode::InvalidArgument,
                            "A version-id marker cannot be specified without a key marker.",
                        )
                        .field("ArgumentName", "version-id-marker")
                        .field("ArgumentValue", version_marker))
                    }
                    marker => Some(
                        parse_version_id(marker)
                            .ok_or_else(|| invalid_version("version-id-marker", marker))?,
                    ),
                };
                Operation::ListObjectVersions {
                    bucket: bucket(),
                    params: list_params(query)?,
                    key_marker: key_marker.to_string(),
                    version_marker: version_marker.to_string(),
                    version_after,
                }
            }
            K::ListMultipartUploads => Operation::ListMultipartUploads(UploadQuery {
                bucket: bucket(),
                prefix: query.get("prefix").unwrap_or_default().to_string(),
                delimiter: query
                    .get("delimiter")
                    .filter(|d| !d.is_empty())
                    .map(str::to_string),
                key_marker: query.get("key-marker").unwrap_or_default().to_string(),
                upload_id_marker: query
                    .get("upload-id-marker")
                    .unwrap_or_default()
                    .to_string(),
                max_uploads: bounded_count(query, "max-uploads")?,
            }),
            K::DeleteObjects => Operation::DeleteObjects(bucket()),
            K::PutObject => Operation::PutObject {
                object: object(),
                condition: put_condition(head)?,
            },
            K::GetObject => Operation::GetObject(get_object_input(object(), query, head)?),
            K::HeadObject => Operation::HeadObject(get_object_input(object(), query, head)?),
            K::DeleteObject => Operation::DeleteObject {
                object: object(),
                version: version_param(query),
                if_match: head.header("if-match").map(|e| unquote(e).to_string()),
            },
            K::CopyObject => {
                let directive = match head.header("x-amz-metadata-directive").unwrap_or("COPY") {
                    "COPY" => MetadataDirective::Copy,
                    "REPLACE" => MetadataDirective::Replace,
                    other => {
                        return Err(S3Error::with_message(
                            ErrorCode::InvalidArgument,
                            "Unknown metadata directive.",
                        )
                        .field("ArgumentName", "x-amz-metadata-directive")
                        .field("ArgumentValue", other))
                    }
                };
                Operation::CopyObject(CopyObjectInput {
                    object: object(),
                    source: copy_source(head)?,
                    directive,
                    condition: put_condition(head)?,
                })
            }
            K::GetObjectAcl => Operation::GetObjectAcl(object(), version_param(query)),
            K::PutObjectAcl => Operation::PutObjectAcl(object(), version_param(query)),
            K::GetObjectAttributes => Operation::GetObjectAttributes(AttributesInput {
                object: object(),
                version: version_param(query),
                wanted: requested_attributes(head)?,
                max_parts: count_header(head, "x-amz-max-parts", limits::LIST_KEYS_MAX as u32)?
                    .min(limits::LIST_KEYS_MAX as u32),
                marker: count_header(head, "x-amz-part-number-marker", 0)?,
            }),
            K::CreateMultipartUpload => Operation::CreateMultipartUpload(object()),
            K::UploadPart => Operation::UploadPart(PartRef {
                object: object(),
                upload_id: upload_id(),
                part_number: part_number(query)?,
            }),
            K::UploadPartCopy => Operation::UploadPartCopy(UploadPartCopyInput {
                part: PartRef {
                    object: object(),
                    upload_id: upload_id(),
                    part_number: part_number(query)?,
                },
                source: copy_source(head)?,
                range: copy_source_range(head.header("x-amz-copy-source-range"))?,
            }),
            K::CompleteMultipartUpload => Operation::CompleteMultipartUpload {
                object: object(),
                upload_id: upload_id(),
                condition: put_condition(head)?,
            },
            K::AbortMultipartUpload => Operation::AbortMultipartUpload {
                object: object(),
                upload_id: upload_id(),
            },
            K::ListParts => {
                let marker = query.get("part-number-marker").unwrap_or("0");
                Operation::ListParts(ListPartsInput {
                    object: object(),
                    upload_id: upload_id(),
                    max_parts: bounded_count(query, "max-parts")?,
                    marker: marker.parse().map_err(|_| {
                        S3Error::with_message(
                            ErrorCode::InvalidArgument,
                            "Provided part-number-marker not an integer",
                        )
                        .field("ArgumentName", "part-number-marker")
                    })?,
                })
            }
            K::NotImplemented(name) => Operation::NotImplemented(name),
        })
    }

    /// The access this operation needs.
    pub(crate) fn access(&self) -> Access<'_> {
        use Permission::{Read, ReadAcp, Write, WriteAcp};
        match self {
            Operation::ListBuckets | Operation::CreateBucket(_) | Operation::NotImplemented(_) => {
                Access::Authenticated
            }
            Operation::DeleteBucket(b)
            | Operation::GetBucketLocation(b)
            | Operation::GetBucketVersioning(b)
            | Operation::PutBucketVersioning(b)
            | Operation::GetObjectLockConfiguration(b)
            | Operation::GetBucketCors(b)
            | Operation::PutBucketCors(b)
            | Operation::DeleteBucketCors(b)
            | Operation::PutObjectLockConfiguration(b) => Access::BucketOwner(b),
            Operation::HeadBucket(b) => Access::Bucket(b, Read),
            Operation::GetBucketAcl(b) => Access::Bucket(b, ReadAcp),
            Operation::PutBucketAcl(b) => Access::Bucket(b, WriteAcp),
            Operation::ListObjects { bucket, .. }
            | Operation::ListObjectsV2 { bucket, .. }
            | Operation::ListObjectVersions { bucket, .. } => Access::Bucket(bucket, Read),
            Operation::ListMultipartUploads(query) => Access::Bucket(&query.bucket, Read),
            Operation::ListParts(input) => Access::Bucket(&input.object.bucket, Read),
            Operation::DeleteObjects(b) => Access::Bucket(b, Write),
            Operation::PutObject { object, .. }
            | Operation::DeleteObject { object, .. }
            | Operation::CreateMultipartUpload(object)
            | Operation::CompleteMultipartUpload { object, .. }
            | Operation::AbortMultipartUpload { object, .. }
            | Operation::UploadPart(PartRef { object, .. }) => {
                Access::Bucket(&object.bucket, Write)
            }
            Operation::GetObject(input) => Access::Object {
                object: &input.object,
                version: input.version.as_ref(),
                permission: Read,
                data: true,
            },
            Operation::HeadObject(input) => Access::Object {
                object: &input.object,
                version: input.version.as_ref(),
                permission: Read,
                data: false,
            },
            Operation::GetObjectAttributes(input) => Access::Object {
                object: &input.object,
                version: input.version.as_ref(),
                permission: Read,
                data: false,
            },
            Operation::GetObjectAcl(object, version) => Access::Object {
                object,
                version: version.as_ref(),
                permission: ReadAcp,
                data: false,
            },
            Operation::PutObjectAcl(object, version) => Access::Object {
                object,
                version: version.as_ref(),
                permission: WriteAcp,
                data: false,
            },
            // Reading lock state is a read of the object; changing it, like its ACL,
            // is for its owner (or whom its ACL grants WRITE_ACP).
            Operation::GetObjectRetention(object, version)
            | Operation::GetObjectLegalHold(object, version) => Access::Object {
                object,
                version: version.as_ref(),
                permission: Read,
                data: false,
            },
            Operation::PutObjectRetention(object, version)
            | Operation::PutObjectLegalHold(object, version) => Access::Object {
                object,
                version: version.as_ref(),
                permission: WriteAcp,
                data: false,
            },
            Operation::CopyObject(input) => Access::Copy {
                bucket: &input.object.bucket,
                source: &input.source,
            },
            Operation::UploadPartCopy(input) => Access::Copy {
                bucket: &input.part.object.bucket,
                source: &input.source,
            },
        }
    }
}

/// A `versionId` as sent: the version it names, or the text of one this server never
/// makes, refused with InvalidArgument (`version_sel`) only once the bucket is known to
/// exist, as S3 orders its errors.
pub(crate) type VersionArg = Result<VersionSel, String>;

/// The `versionId` query parameter, when there is one.
fn version_param(query: &Query) -> Option<VersionArg> {
    query
        .get("versionId")
        .map(|text| parse_version_id(text).ok_or_else(|| text.to_string()))
}

/// The version a `versionId` names, or InvalidArgument for one no version can have.
pub(crate) fn version_sel(arg: Option<&VersionArg>) -> Result<Option<VersionSel>, S3Error> {
    match arg {
        None => Ok(None),
        Some(Ok(sel)) => Ok(Some(*sel)),
        Some(Err(text)) => Err(invalid_version("versionId", text)),
    }
}

pub(crate) fn invalid_version(name: &'static str, value: &str) -> S3Error {
    S3Error::with_message(ErrorCode::InvalidArgument, "Invalid version id specified")
        .field("ArgumentName", name)
        .field("ArgumentValue", value)
}

fn list_params(query: &Query) -> Result<ListParams, S3Error> {
    let max_keys = match query.get("max-keys") {
        None => limits::LIST_KEYS_MAX,
        Some(value) => value
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                S3Error::with_message(
                    ErrorCode::InvalidArgument,
                    "Provided max-keys not an integer or within integer range",
                )
                .field("ArgumentName", "max-keys")
                .field("ArgumentValue", value)
            })? as usize,
    };
    let url_encoding = match query.get("encoding-type") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("url") => true,
        Some(v) => {
            return Err(S3Error::with_message(
                ErrorCode::InvalidArgument,
                "Invalid Encoding Method specified in Request",
            )
            .field("ArgumentName", "encoding-type")
            .field("ArgumentValue", v))
        }
    };
    Ok(ListParams {
        prefix: query.get("prefix").unwrap_or_default().to_string(),
        delimiter: query
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        max_keys: max_keys.min(limits::LIST_KEYS_MAX),
        url_encoding,
    })
}

/// Continuation tokens are the base64 of the last key returned: opaque to clients.
fn decode_token(token: &str) -> Result<String, S3Error> {
    base64_decode(token)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            S3Error::with_message(
                ErrorCode::InvalidArgument,
                "The continuation token provided is incorrect",
            )
            .field("ArgumentName", "continuation-token")
        })
}

/// A non-negative count query parameter, capped at the listing maximum.
fn bounded_count(query: &Query, name: &'static str) -> Result<usize, S3Error> {
    match query.get(name) {
        None => Ok(limits::LIST_KEYS_MAX),
        Some(value) => value
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| (n as usize).min(limits::LIST_KEYS_MAX))
            .ok_or_else(|| {
                S3Error::with_message(
                    ErrorCode::InvalidArgument,
                    format!("Provided {name} not an integer or within integer range"),
                )
                .field("ArgumentName", name)
                .field("ArgumentValue", value)
            }),
    }
}

fn part_number_error(raw: &str) -> S3Error {
    S3Error::with_message(
        ErrorCode::InvalidArgument,
        "Part number must be an integer between 1 and 10000, inclusive",
    )
    .field("ArgumentName", "partNumber")
    .field("ArgumentValue", raw)
}

/// `partNumber` of UploadPart: 1 to 10000.
fn part_number(query: &Query) -> Result<u32, S3Error> {
    let raw = query.get("partNumber").unwrap_or_default();
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=limits::PART_NUMBER_MAX).contains(n))
        .ok_or_else(|| part_number_error(raw))
}

/// The conditions of a write: `If-None-Match: *` (create only) or `If-Match`.
pub(crate) fn put_condition(head: &RequestHead) -> Result<PutCondition, S3Error> {
    match (head.header("if-none-match"), head.header("if-match")) {
        (Some(_), Some(_)) => Err(S3Error::with_message(
            ErrorCode::NotImplemented,
            "If-Match and If-None-Match together are not supported on PUT.",
        )),
        (Some("*"), None) => Ok(PutCondition::IfNoneMatchStar),
        (Some(_), None) => Err(S3Error::with_message(
            ErrorCode::NotImplemented,
            "If-None-Match on PUT supports only '*'.",
        )),
        (None, Some(etag)) => Ok(PutCondition::IfMatch(unquote(etag).to_string())),
        (None, None) => Ok(PutCondition::None),
    }
}

/// An ETag without its quotes (and without a weak `W/` marker).
pub(crate) fn unquote(etag: &str) -> &str {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

fn get_object_input(
    object: ObjectRef,
    query: &Query,
    head: &RequestHead,
) -> Result<GetObjectInput, S3Error> {
    let part_number = match query.get("partNumber") {
        None => None,
        Some(raw) => {
            if head.header("range").is_some() {
                return Err(S3Error::with_message(
                    ErrorCode::InvalidRequest,
                    "Cannot specify both Range header and partNumber query parameter",
                ));
            }
            let number = raw.parse::<u32>().map_err(|_| part_number_error(raw))?;
            Some((number, raw.to_string()))
        }
    };
    let date = |name: &str| head.header(name).and_then(clock::parse_http_date);
    Ok(GetObjectInput {
        object,
        version: version_param(query),
        part_number,
        range: head.header("range").and_then(parse_range_spec),
        conditions: ReadConditions {
            if_match: head.header("if-match").map(str::to_string),
            if_none_match: head.header("if-none-match").map(str::to_string),
            if_modified_since: date("if-modified-since"),
            if_unmodified_since: date("if-unmodified-since"),
        },
        overrides: RESPONSE_OVERRIDES
            .iter()
            .filter_map(|(param, header)| query.get(param).map(|v| (*header, v.to_string())))
            .collect(),
        checksum_mode: head
            .header("x-amz-checksum-mode")
            .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED")),
    })
}

/// Response-header overrides GetObject accepts as query parameters.
const RESPONSE_OVERRIDES: &[(&str, &str)] = &[
    ("response-content-type", "Content-Type"),
    ("response-content-language", "Content-Language"),
    ("response-expires", "Expires"),
    ("response-cache-control", "Cache-Control"),
    ("response-content-disposition", "Content-Disposition"),
    ("response-content-encoding", "Content-Encoding"),
];

/// A `Range` header S3 honours; `None` for one it ignores (bad syntax, several ranges).
pub(crate) fn parse_range_spec(value: &str) -> Option<RangeRequest> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.trim().split_once('-')?;
    let number = |s: &str| -> Option<u64> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (start, end) = (start.trim(), end.trim());
    let spec = match (start.is_empty(), end.is_empty()) {
        (true, false) => RangeSpec::Suffix(number(end)?),
        (false, true) => RangeSpec::From {
            first: number(start)?,
            last: None,
        },
        (false, false) => {
            let (first, last) = (number(start)?, number(end)?);
            if last < first {
                return None;
            }
            RangeSpec::From {
                first,
                last: Some(last),
            }
        }
        (true, true) => return None,
    };
    Some(RangeRequest {
        raw: value.to_string(),
        spec,
    })
}

/// (bucket, key) of an `x-amz-copy-source` value: `[/]bucket/key[?versionId=...]`, URL-encoded.
fn copy_source(head: &RequestHead) -> Result<CopySource, S3Error> {
    parse_copy_source(head.header("x-amz-copy-source").unwrap_or_default())
}

fn parse_copy_source(value: &str) -> Result<CopySource, S3Error> {
    let invalid = || {
        S3Error::with_message(
            ErrorCode::InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
        .field("ArgumentName", "x-amz-copy-source")
        .field("ArgumentValue", value)
    };
    let (path, version) = match value.split_once("?versionId=") {
        Some((path, version)) => (path, Some(version)),
        None => (value, None),
    };
    let version = version
        .map(|text| parse_version_id(text).ok_or_else(|| invalid_version("versionId", text)))
        .transpose()?;
    let decoded = percent_decode_str(path).ok_or_else(invalid)?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (bucket, key) = decoded.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok(CopySource {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version,
    })
}

/// The `x-amz-copy-source-range` of UploadPartCopy: `bytes=first-last`.
fn copy_source_range(value: Option<&str>) -> Result<Option<(u64, u64, String)>, S3Error> {
    let Some(value) = value else {
        return Ok(None);
    };
    let malformed = || {
        S3Error::with_message(
            ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
        .field("ArgumentName", "x-amz-copy-source-range")
        .field("ArgumentValue", value)
    };
    let spec = value.trim().strip_prefix("bytes=").ok_or_else(malformed)?;
    let (first, last) = spec.split_once('-').ok_or_else(malformed)?;
    let first: u64 = first.trim().parse().map_err(|_| malformed())?;
    let last: u64 = last.trim().parse().map_err(|_| malformed())?;
    if first > last {
        return Err(malformed());
    }
    Ok(Some((first, last, value.to_string())))
}

/// The attributes named by every `x-amz-object-attributes` header (comma-separated,
/// possibly repeated), in answer order; at least one is required and each must be known.
fn requested_attributes(head: &RequestHead) -> Result<Vec<&'static str>, S3Error> {
    let mut wanted = Vec::new();
    for (_, value) in head
        .headers
        .iter()
        .filter(|(n, _)| n == "x-amz-object-attributes")
    {
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match ATTRIBUTES.iter().find(|a| a.eq_ignore_ascii_case(item)) {
                Some(attribute) if !wanted.contains(attribute) => wanted.push(*attribute),
                Some(_) => {}
                None => {
                    return Err(S3Error::with_message(
                        ErrorCode::InvalidArgument,
                        "Invalid attribute name specified.",
                    )
                    .field("ArgumentName", "x-amz-object-attributes")
                    .field("ArgumentValue", item))
                }
            }
        }
    }
    if wanted.is_empty() {
        return Err(S3Error::with_message(
            ErrorCode::InvalidArgument,
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        )
        .field("ArgumentName", "x-amz-object-attributes"));
    }
    Ok(ATTRIBUTES
        .into_iter()
        .filter(|a| wanted.contains(a))
        .collect())
}

/// A non-negative integer header, `default` when absent.
fn count_header(head: &RequestHead, name: &'static str, default: u32) -> Result<u32, S3Error> {
    match head.header(name) {
        None => Ok(default),
        Some(value) => value.trim().parse::<u32>().map_err(|_| {
            S3Error::with_message(
                ErrorCode::InvalidArgument,
                format!("Provided {name} not an integer or within integer range"),
            )
            .field("ArgumentName", name)
            .field("ArgumentValue", value)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers() {
        let spec = |v: &str| parse_range_spec(v).map(|r| r.spec);
        assert_eq!(
            spec("bytes=0-9"),
            Some(RangeSpec::From {
                first: 0,
                last: Some(9)
            })
        );
        assert_eq!(
            spec("bytes=90-"),
            Some(RangeSpec::From {
                first: 90,
                last: None
            })
        );
        assert_eq!(spec("bytes=-10"), Some(RangeSpec::Suffix(10)));
        for ignored in [
            "bytes=9-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
        ] {
            assert_eq!(spec(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn copy_source_forms() {
        let source = |b: &str, k: &str| CopySource {
            bucket: b.into(),
            key: k.into(),
            version: None,
        };
        assert_eq!(parse_copy_source("/b/k%20x").unwrap(), source("b", "k x"));
        assert_eq!(
            parse_copy_source("b/dir/k?versionId=null").unwrap(),
            CopySource {
                version: Some(VersionSel::Null),
                ..source("b", "dir/k")
            }
        );
        let id = crate::meta::format_version_id(42);
        assert_eq!(
            parse_copy_source(&format!("b/k?versionId={id}")).unwrap(),
            CopySource {
                version: Some(VersionSel::Seq(42)),
                ..source("b", "k")
            }
        );
        assert_eq!(parse_copy_source("b/a%2Fb").unwrap(), source("b", "a/b"));
        for bad in ["", "/b", "b/", "/b/k?versionId=3", "%zz/k"] {
            assert!(parse_copy_source(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn copy_source_ranges() {
        assert_eq!(copy_source_range(None).unwrap(), None);
        assert_eq!(
            copy_source_range(Some("bytes=2-5")).unwrap(),
            Some((2, 5, "bytes=2-5".into()))
        );
        for bad in ["bytes=5-2", "bytes=-3", "2-5", "bytes=a-b"] {
            assert_eq!(
                copy_source_range(Some(bad)).unwrap_err().code,
                ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn etags_lose_quotes() {
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(unquote("W/\"abc\""), "abc");
        assert_eq!(unquote(" abc "), "abc");
    }
}
