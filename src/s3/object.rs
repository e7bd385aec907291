//! Object operations: PutObject (streamed to a temp file, verified, published
//! durably, then recorded), GetObject and HeadObject (conditionals, ranges,
//! response overrides, streamed from disk), DeleteObject.

use crate::checksum::{hex_encode, ChecksumAlgorithm, ChecksumType};
use crate::clock;
use crate::http::{BodyKind, ResponseHead};
use crate::limits;
use crate::meta::{BucketRow, ObjectRow, PutCondition};
use crate::s3::acl::{acl_from_request, Acl, Permission};
use crate::s3::bucket::{bucket_with, meta_error, no_such_bucket};
use crate::s3::error::{ErrorCode, S3Error};
use crate::s3::payload::{UploadExpectations, UploadReader, VerifiedUpload};
use crate::s3::service::RequestContext;

/// Bytes moved per read from the socket and write to the temp file.
const UPLOAD_CHUNK_BYTES: usize = 1024 * 1024;
/// Objects up to this size are sent with their head in one write.
const SMALL_OBJECT_BYTES: u64 = 64 * 1024;

const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "OUTPOSTS",
    "SNOW",
    "EXPRESS_ONEZONE",
];

pub async fn put_object(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let bucket = bucket_with(ctx, Permission::Write).await?;
    let condition = put_condition(ctx)?;
    let mut row = object_row_from_headers(ctx, &bucket)?;
    let max_size = ctx.state.config.max_object_size;
    let (data_id, verified) = store_body(ctx, max_size, None).await?;
    row.size = verified.size;
    row.etag = hex_encode(&verified.md5);
    row.data_id = data_id.clone();
    if let Some((alg, value)) = &verified.checksum {
        row.checksum_algorithm = Some(alg.as_str().to_string());
        row.checksum_value = Some(value.clone());
        row.checksum_type = Some(ChecksumType::FullObject.as_str().to_string());
    }
    let key = row.key.clone();
    if let Err(error) = ctx.state.meta.put_object(row, condition).await {
        discard_unrecorded(ctx, &[data_id]).await;
        return Err(meta_error(error, &bucket.name, Some(&key)));
    }
    let mut response = ctx.response(200);
    response.header("ETag", format!("\"{}\"", hex_encode(&verified.md5)));
    if let Some((alg, value)) = verified.checksum {
        response.header(alg.header_name(), value);
        response.header(
            "x-amz-checksum-type",
            ChecksumType::FullObject.as_str().to_string(),
        );
    }
    ctx.send(response, b"").await
}

/// Receives a request body into a new data file: checks what the headers promise
/// (size limit before any byte is read), tells a waiting client to send, streams
/// and hashes every byte once, verifies digests and signatures, then publishes the
/// file durably. Returns its data id; on any failure nothing is left on disk.
/// `part_checksum` is the checksum a multipart upload holds its parts to.
pub(crate) async fn store_body(
    ctx: &mut RequestContext<'_>,
    max_size: u64,
    part_checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
) -> Result<(String, VerifiedUpload), S3Error> {
    let raw_length = match ctx.head.body_kind()? {
        BodyKind::Length(n) => Some(n),
        BodyKind::Empty => Some(0),
        BodyKind::Chunked => None,
    };
    let mut expect = UploadExpectations::from_head(ctx.head, &ctx.payload, raw_length)?;
    if let Some((alg, kind)) = part_checksum {
        expect.require_checksum(alg, kind)?;
    }
    if expect.declared_size.is_some_and(|size| size > max_size) {
        return Err(S3Error::new(ErrorCode::EntityTooLarge)
            .field(
                "ProposedSize",
                expect.declared_size.unwrap_or_default().to_string(),
            )
            .field("MaxSizeAllowed", max_size.to_string()));
    }
    ctx.accept_body().await?;
    let mut temp = ctx
        .state
        .storage
        .create_temp()
        .await
        .map_err(storage_error)?;
    let mut reader = UploadReader::new(&expect, &mut ctx.payload);
    let mut buf = Vec::with_capacity(UPLOAD_CHUNK_BYTES);
    let streamed: Result<(), S3Error> = async {
        loop {
            let n = reader
                .next(ctx.conn, &mut ctx.body, &mut buf, UPLOAD_CHUNK_BYTES)
                .await?;
            if n == 0 {
                return Ok(());
            }
            if reader.size() > max_size {
                return Err(S3Error::new(ErrorCode::EntityTooLarge));
            }
            let (result, returned) = temp.write(buf).await;
            buf = returned;
            result.map_err(storage_error)?;
        }
    }
    .await;
    let verified = match streamed.and_then(|()| reader.finish(&expect, &ctx.payload)) {
        Ok(verified) => verified,
        Err(error) => {
            temp.abort().await;
            return Err(error);
        }
    };
    assert_eq!(
        temp.len(),
        verified.size,
        "bytes written equal bytes verified"
    );
    let data_id = ctx.state.storage.new_data_id();
    temp.commit(&data_id).await.map_err(storage_error)?;
    Ok((data_id, verified))
}

/// Removes data files this request published but never recorded (its metadata write
/// failed): no row ever named them, so no reader can hold them, and they go at once.
/// Files a commit released go through the reclaimer instead. A failure only leaves an
/// orphan that the next startup's sweep removes, so it is logged, not returned.
pub(crate) async fn discard_unrecorded(ctx: &RequestContext<'_>, data_ids: &[String]) {
    for data_id in data_ids {
        if let Err(error) = ctx.state.storage.remove_object(data_id).await {
            log::warn!("could not remove data file {data_id}: {error}");
        }
    }
}

pub(crate) fn storage_error(error: std::io::Error) -> S3Error {
    if error.raw_os_error() == Some(libc::ENOSPC) {
        log::error!("disk full: {error}");
        return S3Error::new(ErrorCode::InsufficientStorage);
    }
    S3Error::internal(format!("storage: {error}"))
}

pub(crate) fn put_condition(ctx: &RequestContext<'_>) -> Result<PutCondition, S3Error> {
    match (
        ctx.head.header("if-none-match"),
        ctx.head.header("if-match"),
    ) {
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

/// The metadata row of a new object, from the request headers (size, ETag and
/// data id are filled in once the body is stored).
pub(crate) fn object_row_from_headers(
    ctx: &RequestContext<'_>,
    bucket: &crate::meta::BucketRow,
) -> Result<ObjectRow, S3Error> {
    let head = ctx.head;
    let owner = ctx.principal.owner_id().to_string();
    let mut user_meta = Vec::new();
    let mut meta_bytes = 0;
    for (name, value) in &head.headers {
        if let Some(suffix) = name.strip_prefix("x-amz-meta-") {
            meta_bytes += suffix.len() + value.len();
            user_meta.push((suffix.to_string(), value.clone()));
        }
    }
    if meta_bytes > limits::USER_METADATA_BYTES_MAX {
        return Err(S3Error::new(ErrorCode::MetadataTooLarge).field(
            "MaxSizeAllowed",
            limits::USER_METADATA_BYTES_MAX.to_string(),
        ));
    }
    let storage_class = head.header("x-amz-storage-class").unwrap_or("STANDARD");
    if !STORAGE_CLASSES.contains(&storage_class) {
        return Err(S3Error::new(ErrorCode::InvalidStorageClass)
            .field("StorageClassRequested", storage_class));
    }
    let text = |name: &str| head.header(name).map(str::to_string);
    Ok(ObjectRow {
        bucket: bucket.name.clone(),
        key: ctx.key().to_string(),
        size: 0,
        etag: String::new(),
        content_type: text("content-type")
            .unwrap_or_else(|| "application/octet-stream".to_string()),
        content_encoding: head.header("content-encoding").and_then(strip_aws_chunked),
        content_language: text("content-language"),
        content_disposition: text("content-disposition"),
        cache_control: text("cache-control"),
        expires: text("expires"),
        user_meta,
        storage_class: storage_class.to_string(),
        acl: acl_from_request(&head.headers, &owner, &bucket.owner_id)?.to_json(),
        last_modified_ms: clock::now_unix_millis(),
        data_id: String::new(),
        checksum_algorithm: None,
        checksum_value: None,
        checksum_type: None,
        owner_id: ctx.principal.owner_id().to_string(),
        parts_count: None,
        upload_id: None,
        parts: Vec::new(),
    })
}

/// Content-Encoding as stored: the `aws-chunked` transfer token removed.
fn strip_aws_chunked(value: &str) -> Option<String> {
    let kept: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty() && !token.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    if kept.is_empty() {
        None
    } else {
        Some(kept.join(","))
    }
}

fn unquote(etag: &str) -> &str {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

/// Whether an If-Match / If-None-Match list matches `etag`.
fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|candidate| {
        let candidate = candidate.trim();
        candidate == "*" || unquote(candidate) == etag
    })
}

/// Outcome of the RFC 7232 precondition evaluation for GET/HEAD.
#[derive(Debug, PartialEq, Eq)]
enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

/// RFC 7232 section 6 order: If-Match, else If-Unmodified-Since; then
/// If-None-Match, else If-Modified-Since. Unparseable dates are ignored.
fn evaluate_preconditions(
    ctx: &RequestContext<'_>,
    etag: &str,
    last_modified: i64,
) -> Precondition {
    let head = ctx.head;
    if let Some(list) = head.header("if-match") {
        if !etag_matches(list, etag) {
            return Precondition::Failed;
        }
    } else if let Some(since) = head
        .header("if-unmodified-since")
        .and_then(clock::parse_http_date)
    {
        if last_modified > since {
            return Precondition::Failed;
        }
    }
    if let Some(list) = head.header("if-none-match") {
        if etag_matches(list, etag) {
            return Precondition::NotModified;
        }
    } else if let Some(since) = head
        .header("if-modified-since")
        .and_then(clock::parse_http_date)
    {
        if last_modified <= since {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// A byte range to serve: first and last byte, inclusive.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct ByteRange {
    first: u64,
    last: u64,
}

/// Parses a Range header against an object of `size` bytes. `Ok(None)` means serve
/// the whole object (no header, or one S3 ignores because its syntax is bad or it
/// names several ranges); `Err` is 416 InvalidRange.
fn parse_range(value: Option<&str>, size: u64) -> Result<Option<ByteRange>, S3Error> {
    let Some(value) = value else { return Ok(None) };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let number = |s: &str| -> Option<u64> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let unsatisfiable = || {
        S3Error::new(ErrorCode::InvalidRange)
            .field("RangeRequested", value.to_string())
            .field("ActualObjectSize", size.to_string())
            .header("Content-Range", format!("bytes */{size}"))
    };
    let (start, end) = (start.trim(), end.trim());
    let range = match (start.is_empty(), end.is_empty()) {
        (true, false) => {
            let Some(suffix) = number(end) else {
                return Ok(None);
            };
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            ByteRange {
                first: size.saturating_sub(suffix),
                last: size - 1,
            }
        }
        (false, _) => {
            let Some(first) = number(start) else {
                return Ok(None);
            };
            let last = if end.is_empty() {
                u64::MAX
            } else {
                match number(end) {
                    Some(last) if last >= first => last,
                    _ => return Ok(None),
                }
            };
            if first >= size {
                return Err(unsatisfiable());
            }
            ByteRange {
                first,
                last: last.min(size - 1),
            }
        }
        (true, true) => return Ok(None),
    };
    Ok(Some(range))
}

/// Response-header overrides that GetObject accepts as query parameters.
const RESPONSE_OVERRIDES: &[(&str, &str)] = &[
    ("response-content-type", "Content-Type"),
    ("response-content-language", "Content-Language"),
    ("response-expires", "Expires"),
    ("response-cache-control", "Cache-Control"),
    ("response-content-disposition", "Content-Disposition"),
    ("response-content-encoding", "Content-Encoding"),
];

/// GetObject and HeadObject: the same checks and headers, HEAD without the bytes.
/// The object a read names (`versionId` may only be `null`), if the requester may read
/// it. A missing key is NoSuchKey only for those who may list the bucket, else AccessDenied.
pub(crate) async fn readable_object(
    ctx: &RequestContext<'_>,
) -> Result<(BucketRow, ObjectRow), S3Error> {
    let key = ctx.key().to_string();
    let name = ctx.bucket();
    let (bucket, row) = ctx
        .state
        .meta
        .get_bucket_object(name, &key)
        .await
        .map_err(|e| meta_error(e, name, Some(&key)))?;
    let bucket = bucket.ok_or_else(|| no_such_bucket(name))?;
    if let Some(version) = ctx.query.get("versionId") {
        if version != "null" {
            return Err(S3Error::with_message(
                ErrorCode::InvalidArgument,
                "Invalid version id specified",
            )
            .field("ArgumentName", "versionId")
            .field("ArgumentValue", version));
        }
    }
    let row = match row {
        Some(row) => row,
        // Only those who may list the bucket learn that a key is absent.
        None if Acl::from_json(&bucket.acl, &bucket.owner_id).allows(
            &bucket.owner_id,
            ctx.requester(),
            Permission::Read,
        ) =>
        {
            return Err(S3Error::new(ErrorCode::NoSuchKey).field("Key", key.clone()));
        }
        None => return Err(S3Error::new(ErrorCode::AccessDenied)),
    };
    if !Acl::from_json(&row.acl, &row.owner_id).allows(
        &row.owner_id,
        ctx.requester(),
        Permission::Read,
    ) {
        return Err(S3Error::new(ErrorCode::AccessDenied));
    }
    Ok((bucket, row))
}

pub async fn get_object(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    // Held from before the row is read until its files are open: the files a
    // concurrent overwrite releases stay until then, so every header below and every
    // byte sent belong to the one version this row describes.
    let lease = ctx.state.reads.begin();
    let (_, row) = readable_object(ctx).await?;
    let last_modified = row.last_modified_ms.div_euclid(1000);
    let validators = [
        ("ETag", format!("\"{}\"", row.etag)),
        ("Last-Modified", clock::format_http_date(last_modified)),
    ];
    match evaluate_preconditions(ctx, &row.etag, last_modified) {
        Precondition::Proceed => {}
        Precondition::Failed => {
            return Err(S3Error::new(ErrorCode::PreconditionFailed).field("Condition", "If-Match"));
        }
        Precondition::NotModified => {
            let mut response = ctx.response(304);
            for (name, value) in validators {
                response.header(name, value);
            }
            return ctx.send(response, b"").await;
        }
    }
    let size = row.size;
    let range = match ctx.query.get("partNumber") {
        Some(part) => {
            if ctx.head.header("range").is_some() {
                return Err(S3Error::with_message(
                    ErrorCode::InvalidRequest,
                    "Cannot specify both Range header and partNumber query parameter",
                ));
            }
            part_range(&row, part)?
        }
        None => parse_range(ctx.head.header("range"), size)?,
    };
    let (status, first, length) = match range {
        Some(r) => (206, r.first, r.last - r.first + 1),
        None => (200, 0, size),
    };
    let segments = if ctx.is_head() {
        Vec::new()
    } else {
        open_segments(ctx, &row, first, length)
            .await
            .map_err(storage_error)?
    };
    drop(lease);
    let mut response = ctx.response(status);
    for (name, value) in validators {
        response.header(name, value);
    }
    response.header("Accept-Ranges", "bytes".to_string());
    if let Some(r) = range {
        response.header(
            "Content-Range",
            format!("bytes {}-{}/{size}", r.first, r.last),
        );
    }
    if let Some(count) = row.parts_count {
        response.header("x-amz-mp-parts-count", count.to_string());
    }
    add_representation_headers(ctx, &row, &mut response);
    if ctx
        .head
        .header("x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"))
    {
        let whole = range.is_none() || length == size;
        add_checksum_headers(ctx, &row, whole, &mut response);
    }
    if ctx.is_head() {
        let mut out = Vec::with_capacity(1024);
        response.encode(Some(length), ctx.keep_alive, &mut out);
        return ctx.write(out).await;
    }
    send_segments(ctx, response, &segments, length).await
}

/// The checksum headers of a GET or HEAD in checksum mode: the object's checksum and
/// type for the whole object, the part's own checksum for `partNumber=N`, nothing
/// for a byte range (no stored checksum describes it).
fn add_checksum_headers(
    ctx: &RequestContext<'_>,
    row: &ObjectRow,
    whole: bool,
    response: &mut ResponseHead,
) {
    let Some(alg) = row
        .checksum_algorithm
        .as_deref()
        .and_then(ChecksumAlgorithm::from_name)
    else {
        return;
    };
    match ctx.query.get("partNumber") {
        Some(number) => {
            let part = number
                .parse::<usize>()
                .ok()
                .and_then(|n| row.parts.get(n.checked_sub(1)?));
            match (part, row.parts_count) {
                (Some(part), _) => {
                    if let Some(value) = &part.checksum_value {
                        response.header(alg.header_name(), value.clone());
                    }
                }
                // A single PUT is its own part 1.
                (None, None) => {
                    if let Some(value) = &row.checksum_value {
                        response.header(alg.header_name(), value.clone());
                    }
                }
                (None, Some(_)) => {}
            }
        }
        None if whole => {
            if let Some(value) = &row.checksum_value {
                response.header(alg.header_name(), value.clone());
                let kind = row
                    .checksum_type
                    .as_deref()
                    .unwrap_or(ChecksumType::FullObject.as_str());
                response.header("x-amz-checksum-type", kind.to_string());
            }
        }
        None => {}
    }
}

/// The byte range of part `part` of a multipart object (`partNumber=N`). A single
/// PUT object has one part, the whole object.
fn part_range(row: &ObjectRow, part: &str) -> Result<Option<ByteRange>, S3Error> {
    let count = row.parts_count.unwrap_or(1);
    let invalid = || {
        S3Error::new(ErrorCode::InvalidPartNumber)
            .field("PartNumberRequested", part.to_string())
            .field("ActualPartCount", count.to_string())
    };
    let number: u32 = part.parse().map_err(|_| {
        S3Error::with_message(
            ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )
        .field("ArgumentName", "partNumber")
    })?;
    if number == 0 || number > count {
        return Err(invalid());
    }
    if row.parts_count.is_none() {
        return Ok(None);
    }
    let mut offset = 0u64;
    for (index, p) in row.parts.iter().enumerate() {
        if index as u32 + 1 == number {
            if p.size == 0 {
                return Err(invalid());
            }
            return Ok(Some(ByteRange {
                first: offset,
                last: offset + p.size - 1,
            }));
        }
        offset += p.size;
    }
    Err(invalid())
}

/// A piece of the response body: `len` bytes from `offset` of one open file.
struct Segment {
    file: crate::storage::ObjectFile,
    offset: u64,
    len: u64,
}

/// Opens the files holding bytes `first..first + length` of the object, in order.
async fn open_segments(
    ctx: &RequestContext<'_>,
    row: &ObjectRow,
    first: u64,
    length: u64,
) -> std::io::Result<Vec<Segment>> {
    let mut segments = Vec::new();
    for (data_id, offset, len) in crate::s3::copy::source_ranges(row, first, length) {
        let file = ctx.state.storage.open_object(&data_id).await?;
        segments.push(Segment { file, offset, len });
    }
    Ok(segments)
}

fn add_representation_headers(
    ctx: &RequestContext<'_>,
    row: &ObjectRow,
    response: &mut crate::http::ResponseHead,
) {
    let stored: [(&str, Option<&String>); 6] = [
        ("Content-Type", Some(&row.content_type)),
        ("Content-Language", row.content_language.as_ref()),
        ("Expires", row.expires.as_ref()),
        ("Cache-Control", row.cache_control.as_ref()),
        ("Content-Disposition", row.content_disposition.as_ref()),
        ("Content-Encoding", row.content_encoding.as_ref()),
    ];
    for (name, value) in stored {
        let override_value = RESPONSE_OVERRIDES
            .iter()
            .find(|(_, header)| *header == name)
            .and_then(|(param, _)| ctx.query.get(param));
        if let Some(value) = override_value
            .map(str::to_string)
            .or_else(|| value.cloned())
        {
            response.header(name, value);
        }
    }
    for (name, value) in &row.user_meta {
        response.header(format!("x-amz-meta-{name}"), value.clone());
    }
    if row.storage_class != "STANDARD" {
        response.header("x-amz-storage-class", row.storage_class.clone());
    }
}

/// Streams the segments after the head through one reused buffer: memory stays
/// bounded whatever the object size. Small bodies go out with the head in one write.
async fn send_segments(
    ctx: &mut RequestContext<'_>,
    response: crate::http::ResponseHead,
    segments: &[Segment],
    length: u64,
) -> Result<(), S3Error> {
    let small = length <= SMALL_OBJECT_BYTES;
    let capacity = if small {
        1024 + length as usize
    } else {
        limits::SEND_BUFFER_BYTES
    };
    let mut out = Vec::with_capacity(capacity);
    ctx.start_response(response.status());
    response.encode(Some(length), ctx.keep_alive, &mut out);
    ctx.response_started = true;
    if !small {
        ctx.write(std::mem::take(&mut out)).await?;
        out = Vec::with_capacity(limits::SEND_BUFFER_BYTES);
    }
    let mut buf = Vec::with_capacity(if small {
        length as usize
    } else {
        limits::SEND_BUFFER_BYTES
    });
    for segment in segments {
        let mut offset = segment.offset;
        let end = segment.offset + segment.len;
        while offset < end {
            buf.clear();
            let (result, returned) = segment.file.read_at(buf, offset).await;
            buf = returned;
            let n = result.map_err(storage_error)?;
            if n == 0 {
                ctx.keep_alive = false;
                return Err(S3Error::internal("object file shorter than its metadata"));
            }
            let take = n.min((end - offset) as usize);
            offset += take as u64;
            if small {
                out.extend_from_slice(&buf[..take]);
                continue;
            }
            buf.truncate(take);
            let (result, returned) = ctx.conn.write_all(buf).await;
            buf = returned;
            if let Err(error) = result {
                ctx.keep_alive = false;
                log::debug!("client went away during GET: {error}");
                return Ok(());
            }
        }
    }
    if small {
        return ctx.write(out).await;
    }
    Ok(())
}

pub async fn delete_object(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let bucket = bucket_with(ctx, Permission::Write).await?;
    let key = ctx.key().to_string();
    let removed = match ctx.head.header("if-match") {
        Some(etag) => {
            ctx.state
                .meta
                .delete_object_if_match(&bucket.name, &key, unquote(etag))
                .await
        }
        None => ctx.state.meta.delete_object(&bucket.name, &key).await,
    };
    removed.map_err(|e| meta_error(e, &bucket.name, Some(&key)))?;
    let response = ctx.response(204);
    ctx.send(response, b"").await
}

/// Keys one DeleteObjects request may name, as S3.
const DELETE_OBJECTS_KEYS_MAX: usize = 1000;

/// DeleteObjects: up to 1000 keys removed in one metadata transaction, each
/// key's outcome reported (only errors in Quiet mode). Keys are taken exactly as
/// sent, whitespace included.
pub async fn delete_objects(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let bucket = bucket_with(ctx, Permission::Write).await?;
    let body = ctx.read_small_body(limits::XML_BODY_BYTES_MAX).await?;
    let root = crate::s3::xml::parse_document(&body)?;
    if root.name != "Delete" {
        return Err(S3Error::new(ErrorCode::MalformedXML));
    }
    let quiet = root
        .child_text("Quiet")
        .is_some_and(|q| q.eq_ignore_ascii_case("true"));
    let mut keys = Vec::new();
    for object in root.children_named("Object") {
        let key = object
            .child("Key")
            .map(|k| k.text.clone())
            .ok_or_else(|| S3Error::new(ErrorCode::MalformedXML))?;
        keys.push(key);
    }
    if keys.is_empty() || keys.len() > DELETE_OBJECTS_KEYS_MAX {
        return Err(S3Error::new(ErrorCode::MalformedXML));
    }
    let outcomes = ctx
        .state
        .meta
        .delete_objects(&bucket.name, keys.clone())
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    let mut xml = crate::s3::xml::XmlWriter::new();
    xml.root("DeleteResult");
    for (key, outcome) in keys.iter().zip(outcomes) {
        match outcome {
            Ok(()) => {
                if !quiet {
                    xml.open("Deleted");
                    xml.element("Key", key);
                    xml.close("Deleted");
                }
            }
            Err(error) => {
                let error = meta_error(error, &bucket.name, Some(key));
                xml.open("Error");
                xml.element("Key", key);
                xml.element("Code", error.code.as_str());
                xml.element("Message", &error.message);
                xml.close("Error");
            }
        }
    }
    xml.close("DeleteResult");
    let mut response = ctx.response(200);
    response.header("Content-Type", "application/xml".to_string());
    ctx.send(response, &xml.finish()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ErrorCode> {
        parse_range(Some(value), size)
            .map(|r| r.map(|r| (r.first, r.last)))
            .map_err(|e| e.code)
    }

    #[test]
    fn ranges_follow_s3() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-1000", 100), Ok(Some((0, 99))));
        assert_eq!(range("bytes=50-1000", 100), Ok(Some((50, 99))));
        assert_eq!(range("bytes=100-", 100), Err(ErrorCode::InvalidRange));
        assert_eq!(range("bytes=-0", 100), Err(ErrorCode::InvalidRange));
        assert_eq!(range("bytes=0-0", 0), Err(ErrorCode::InvalidRange));
        assert_eq!(range("bytes=9-1", 100), Ok(None));
        assert_eq!(range("bytes=a-b", 100), Ok(None));
        assert_eq!(range("items=0-1", 100), Ok(None));
        assert_eq!(range("bytes=0-1,3-4", 100), Ok(None));
    }

    #[test]
    fn etag_lists_and_quotes() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("\"x\", \"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(etag_matches("W/\"abc\"", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }

    #[test]
    fn content_encoding_loses_aws_chunked() {
        assert_eq!(strip_aws_chunked("aws-chunked"), None);
        assert_eq!(
            strip_aws_chunked("aws-chunked,gzip").as_deref(),
            Some("gzip")
        );
        assert_eq!(strip_aws_chunked("gzip").as_deref(), Some("gzip"));
    }
}
