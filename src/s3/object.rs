//! Object operations: PutObject (streamed to a temp file, verified, published
//! durably, then recorded), GetObject and HeadObject (conditionals, ranges,
//! response overrides, streamed from disk), DeleteObject and DeleteObjects.

use crate::checksum::{hex_encode, ChecksumAlgorithm, ChecksumType};
use crate::clock;
use crate::error::{meta_error, ErrorCode, S3Error};
use crate::http::{Body, Response, ResponseHead};
use crate::limits;
use crate::meta::{
    parse_version_id, BucketRow, DeleteSpec, ObjectRow, PutCondition, VersionSel, Versioning,
};
use crate::s3::authorize::Granted;
use crate::s3::context::{reply, xml_reply, RequestContext, S3Response};
use crate::s3::object_stream::ObjectStream;
use crate::s3::operation::{GetObjectInput, ObjectRef, RangeRequest, RangeSpec, ReadConditions};
use crate::s3::store::{discard_unrecorded, object_row_from_headers, store_body, StoredBody};

pub(crate) async fn put_object(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
    object: ObjectRef,
    condition: PutCondition,
) -> Result<S3Response, S3Error> {
    let mut row = object_row_from_headers(ctx, bucket, &object.key)?;
    crate::s3::object_lock::require_integrity(ctx.head, bucket)?;
    let max_size = ctx.state.config.max_object_size;
    let StoredBody {
        data_id,
        verified,
        tail,
    } = store_body(ctx, max_size, None).await?;
    row.size = verified.size;
    row.etag = hex_encode(&verified.md5);
    row.data_id = data_id.clone();
    if let Some((alg, value)) = &verified.checksum {
        row.checksum_algorithm = Some(alg.as_str().to_string());
        row.checksum_value = Some(value.clone());
        row.checksum_type = Some(ChecksumType::FullObject.as_str().to_string());
    }
    let version_id = match ctx.state.meta.put_object(row, condition, tail).await {
        Ok(version_id) => version_id,
        Err(error) => {
            discard_unrecorded(ctx, &[data_id]).await;
            return Err(meta_error(error, &bucket.name, Some(&object.key)));
        }
    };
    let mut head = ResponseHead::new(200);
    if let Some(version_id) = &version_id {
        head.header("x-amz-version-id", version_id);
    }
    head.header_quoted("ETag", &hex_encode(&verified.md5));
    if let Some((alg, value)) = verified.checksum {
        head.header(alg.header_name(), value);
        head.header("x-amz-checksum-type", ChecksumType::FullObject.as_str());
    }
    Ok(reply(head))
}

/// Whether an If-Match / If-None-Match list matches `etag`.
fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|candidate| {
        let candidate = candidate.trim();
        candidate == "*" || crate::s3::operation::unquote(candidate) == etag
    })
}

/// Outcome of the RFC 7232 precondition evaluation for GET/HEAD.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

/// RFC 7232 section 6 order: If-Match, else If-Unmodified-Since; then
/// If-None-Match, else If-Modified-Since. Unparseable dates are ignored.
pub(crate) fn evaluate_preconditions(
    conditions: &ReadConditions,
    etag: &str,
    last_modified: i64,
) -> Precondition {
    if let Some(list) = &conditions.if_match {
        if !etag_matches(list, etag) {
            return Precondition::Failed;
        }
    } else if let Some(since) = conditions.if_unmodified_since {
        if last_modified > since {
            return Precondition::Failed;
        }
    }
    if let Some(list) = &conditions.if_none_match {
        if etag_matches(list, etag) {
            return Precondition::NotModified;
        }
    } else if let Some(since) = conditions.if_modified_since {
        if last_modified <= since {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// A byte range to serve: first and last byte, inclusive.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(crate) struct ByteRange {
    pub first: u64,
    pub last: u64,
}

/// The range a `Range` header names in an object of `size` bytes; `Err` is 416
/// InvalidRange.
pub(crate) fn resolve_range(range: &RangeRequest, size: u64) -> Result<ByteRange, S3Error> {
    let unsatisfiable = || {
        S3Error::new(ErrorCode::InvalidRange)
            .field("RangeRequested", range.raw.clone())
            .field("ActualObjectSize", size.to_string())
            .header("Content-Range", format!("bytes */{size}"))
    };
    match range.spec {
        RangeSpec::Suffix(suffix) => {
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            Ok(ByteRange {
                first: size.saturating_sub(suffix),
                last: size - 1,
            })
        }
        RangeSpec::From { first, last } => {
            if first >= size {
                return Err(unsatisfiable());
            }
            Ok(ByteRange {
                first,
                last: last.unwrap_or(u64::MAX).min(size - 1),
            })
        }
    }
}

/// What GET and HEAD answer about an object before any byte.
enum ObjectHead {
    /// The head, and the byte range to send.
    Send(ResponseHead, ByteRange),
    /// A 304: the preconditions say the client's copy is current.
    NotModified(ResponseHead),
}

/// The status, headers and byte range of a GET or HEAD (or the 304 / 412 its
/// preconditions call for).
fn object_head(
    input: &GetObjectInput,
    bucket: &BucketRow,
    row: &ObjectRow,
) -> Result<ObjectHead, S3Error> {
    let last_modified = row.last_modified_ms.div_euclid(1000);
    let modified = clock::format_http_date(last_modified);
    match evaluate_preconditions(&input.conditions, &row.etag, last_modified) {
        Precondition::Proceed => {}
        Precondition::Failed => {
            return Err(S3Error::new(ErrorCode::PreconditionFailed).field("Condition", "If-Match"));
        }
        Precondition::NotModified => {
            let mut head = ResponseHead::new(304);
            head.header_quoted("ETag", &row.etag);
            head.header("Last-Modified", modified);
            return Ok(ObjectHead::NotModified(head));
        }
    }
    let size = row.size;
    let range = match (&input.part_number, &input.range) {
        (Some((number, raw)), _) => part_range(row, *number, raw)?,
        (None, Some(range)) => Some(resolve_range(range, size)?),
        (None, None) => None,
    };
    let (status, whole) = match range {
        Some(r) => (206, r),
        None => (
            200,
            ByteRange {
                first: 0,
                last: size.wrapping_sub(1),
            },
        ),
    };
    let mut head = ResponseHead::new(status);
    head.header_quoted("ETag", &row.etag);
    head.header("Last-Modified", modified);
    head.header("Accept-Ranges", "bytes");
    // A bucket that ever had versioning on names every version, `null` included.
    if row.version_id.is_some() || bucket.versioning != Versioning::Unversioned {
        head.header("x-amz-version-id", row.version_label());
    }
    if let Some(r) = range {
        head.header(
            "Content-Range",
            format!("bytes {}-{}/{size}", r.first, r.last),
        );
    }
    if let Some(count) = row.parts_count {
        head.header_decimal("x-amz-mp-parts-count", u64::from(count));
    }
    add_representation_headers(input, row, &mut head);
    if input.checksum_mode {
        let length = range.map_or(size, |r| r.last - r.first + 1);
        add_checksum_headers(input, row, range.is_none() || length == size, &mut head);
    }
    Ok(ObjectHead::Send(head, whole))
}

fn range_length(range: ByteRange, size: u64) -> u64 {
    if size == 0 {
        0
    } else {
        range.last - range.first + 1
    }
}

pub(crate) async fn get_object(
    ctx: &mut RequestContext<'_, '_>,
    input: GetObjectInput,
    granted: Granted<'_>,
) -> Result<S3Response, S3Error> {
    // Authorization read the row under a read lease: the files a concurrent overwrite
    // releases stay until they are open here, so every header and every byte sent
    // belong to the one version this row describes.
    let row = granted.object()?;
    let (head, range) = match object_head(&input, granted.bucket()?, row)? {
        ObjectHead::Send(head, range) => (head, range),
        ObjectHead::NotModified(head) => return Ok(reply(head)),
    };
    let length = range_length(range, row.size);
    let state = ctx.state;
    let source =
        ObjectStream::open(&state.storage, &state.objects, row, range.first, length).await?;
    drop(granted);
    Ok(Response::new(head, Body::Stream { length, source }))
}

/// HeadObject: GetObject's answer without the bytes (and without opening a file).
pub(crate) fn head_object(
    input: GetObjectInput,
    granted: &Granted<'_>,
) -> Result<S3Response, S3Error> {
    let row = granted.object()?;
    Ok(match object_head(&input, granted.bucket()?, row)? {
        ObjectHead::Send(head, range) => {
            Response::new(head, Body::Length(range_length(range, row.size)))
        }
        ObjectHead::NotModified(head) => reply(head),
    })
}

/// The checksum headers of a GET or HEAD in checksum mode: the object's checksum and
/// type for the whole object, the part's own checksum for `partNumber=N`, nothing
/// for a byte range (no stored checksum describes it).
fn add_checksum_headers(
    input: &GetObjectInput,
    row: &ObjectRow,
    whole: bool,
    head: &mut ResponseHead,
) {
    let Some(alg) = row
        .checksum_algorithm
        .as_deref()
        .and_then(ChecksumAlgorithm::from_name)
    else {
        return;
    };
    match &input.part_number {
        Some((number, _)) => {
            let part = (*number as usize)
                .checked_sub(1)
                .and_then(|i| row.parts.get(i));
            match (part, row.parts_count) {
                (Some(part), _) => {
                    if let Some(value) = &part.checksum_value {
                        head.header(alg.header_name(), value);
                    }
                }
                // A single PUT is its own part 1.
                (None, None) => {
                    if let Some(value) = &row.checksum_value {
                        head.header(alg.header_name(), value);
                    }
                }
                (None, Some(_)) => {}
            }
        }
        None if whole => {
            if let Some(value) = &row.checksum_value {
                head.header(alg.header_name(), value);
                let kind = row
                    .checksum_type
                    .as_deref()
                    .unwrap_or(ChecksumType::FullObject.as_str());
                head.header("x-amz-checksum-type", kind);
            }
        }
        None => {}
    }
}

/// The byte range of part `number` of a multipart object (`partNumber=N`). A single
/// PUT object has one part, the whole object.
fn part_range(row: &ObjectRow, number: u32, raw: &str) -> Result<Option<ByteRange>, S3Error> {
    let count = row.parts_count.unwrap_or(1);
    let invalid = || {
        S3Error::new(ErrorCode::InvalidPartNumber)
            .field("PartNumberRequested", raw.to_string())
            .field("ActualPartCount", count.to_string())
    };
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

fn add_representation_headers(input: &GetObjectInput, row: &ObjectRow, head: &mut ResponseHead) {
    let stored: [(&str, Option<&String>); 6] = [
        ("Content-Type", Some(&row.content_type)),
        ("Content-Language", row.content_language.as_ref()),
        ("Expires", row.expires.as_ref()),
        ("Cache-Control", row.cache_control.as_ref()),
        ("Content-Disposition", row.content_disposition.as_ref()),
        ("Content-Encoding", row.content_encoding.as_ref()),
    ];
    for (name, value) in stored {
        let override_value = input
            .overrides
            .iter()
            .find(|(header, _)| *header == name)
            .map(|(_, v)| v);
        if let Some(value) = override_value.or(value) {
            head.header(name, value);
        }
    }
    for (name, value) in &row.user_meta {
        head.header(format!("x-amz-meta-{name}"), value);
    }
    if row.storage_class != "STANDARD" {
        head.header("x-amz-storage-class", &row.storage_class);
    }
    crate::s3::object_lock::add_lock_headers(row, head);
}

pub(crate) async fn delete_object(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
    object: ObjectRef,
    version: Option<VersionSel>,
    if_match: Option<String>,
) -> Result<S3Response, S3Error> {
    let spec = DeleteSpec {
        key: object.key.clone(),
        version,
        if_match,
        owner_id: deleter(ctx, bucket),
        bypass_governance: crate::s3::object_lock::bypass_governance(ctx, bucket),
    };
    let deleted = ctx
        .state
        .meta
        .delete_object(&object.bucket, spec)
        .await
        .map_err(|e| meta_error(e, &object.bucket, Some(&object.key)))?;
    let mut head = ResponseHead::new(204);
    if deleted.delete_marker {
        head.header("x-amz-delete-marker", "true");
    }
    if let Some(version_id) = &deleted.version_id {
        head.header("x-amz-version-id", version_id);
    }
    Ok(reply(head))
}

/// The owner of a delete marker a DELETE makes: the requester, or for an anonymous
/// one (where an ACL lets anyone write) the bucket's owner.
fn deleter(ctx: &RequestContext<'_, '_>, bucket: &BucketRow) -> String {
    ctx.principal
        .requester()
        .unwrap_or(&bucket.owner_id)
        .to_string()
}

/// One `<Object>` of a DeleteObjects body: the key exactly as sent, and its
/// `VersionId` as sent (checked when the entry is run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeleteEntry {
    pub key: String,
    pub version_id: Option<String>,
}

/// The Quiet flag and the entries of a DeleteObjects body (`<Delete>`).
pub(crate) fn delete_request(body: &[u8]) -> Result<(bool, Vec<DeleteEntry>), S3Error> {
    let root = crate::s3::xml::parse_document(body)?;
    if root.name != "Delete" {
        return Err(S3Error::new(ErrorCode::MalformedXML));
    }
    let quiet = root
        .child_text("Quiet")
        .is_some_and(|q| q.eq_ignore_ascii_case("true"));
    let mut entries = Vec::new();
    for object in root.children_named("Object") {
        let key = object
            .child("Key")
            .map(|k| k.text.clone())
            .ok_or_else(|| S3Error::new(ErrorCode::MalformedXML))?;
        let version_id = object.child_text("VersionId").map(str::to_string);
        entries.push(DeleteEntry { key, version_id });
    }
    if entries.is_empty() || entries.len() > limits::DELETE_OBJECTS_KEYS_MAX {
        return Err(S3Error::new(ErrorCode::MalformedXML));
    }
    Ok((quiet, entries))
}

/// DeleteObjects: up to 1000 keys (or versions) removed in one metadata transaction,
/// each one's outcome reported (only errors in Quiet mode), with the version and
/// delete-marker fields S3 gives. Keys are taken exactly as sent, whitespace included.
pub(crate) async fn delete_objects(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
) -> Result<S3Response, S3Error> {
    let body = ctx.read_small_body(limits::XML_BODY_BYTES_MAX).await?;
    let (quiet, entries) = delete_request(&body)?;
    let owner_id = deleter(ctx, bucket);
    let bypass_governance = crate::s3::object_lock::bypass_governance(ctx, bucket);
    // A malformed version id fails its own entry only.
    let mut specs = Vec::with_capacity(entries.len());
    let mut refused = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let version = match entry.version_id.as_deref().map(parse_version_id) {
            None => None,
            Some(Some(sel)) => Some(sel),
            Some(None) => {
                refused.push(index);
                continue;
            }
        };
        specs.push(DeleteSpec {
            key: entry.key.clone(),
            version,
            if_match: None,
            owner_id: owner_id.clone(),
            bypass_governance,
        });
    }
    let outcomes = ctx
        .state
        .meta
        .delete_objects(&bucket.name, specs)
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    let mut outcomes = outcomes.into_iter();
    let mut xml = crate::s3::xml::XmlWriter::new();
    xml.root("DeleteResult");
    for (index, entry) in entries.iter().enumerate() {
        let outcome = if refused.contains(&index) {
            Err(crate::s3::operation::invalid_version(
                "versionId",
                entry.version_id.as_deref().unwrap_or_default(),
            ))
        } else {
            outcomes
                .next()
                .ok_or_else(|| S3Error::internal("a delete went unanswered"))?
                .map_err(|error| meta_error(error, &bucket.name, Some(&entry.key)))
        };
        match outcome {
            Ok(deleted) => {
                if quiet {
                    continue;
                }
                xml.open("Deleted");
                xml.element("Key", &entry.key);
                xml.optional("VersionId", entry.version_id.as_deref());
                if deleted.delete_marker {
                    xml.element("DeleteMarker", "true");
                    xml.optional("DeleteMarkerVersionId", deleted.version_id.as_deref());
                }
                xml.close("Deleted");
            }
            Err(error) => {
                xml.open("Error");
                xml.element("Key", &entry.key);
                xml.optional("VersionId", entry.version_id.as_deref());
                xml.element("Code", error.code.as_str());
                xml.element("Message", &error.message);
                xml.close("Error");
            }
        }
    }
    xml.close("DeleteResult");
    Ok(xml_reply(xml))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ErrorCode> {
        let Some(request) = crate::s3::operation::parse_range_spec(value) else {
            return Ok(None);
        };
        resolve_range(&request, size)
            .map(|r| Some((r.first, r.last)))
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
    fn delete_request_documents() {
        let doc = b"<Delete><Quiet>True</Quiet><Object><Key> a&amp;b </Key></Object>\
                    <Object><Key>c</Key><VersionId>null</VersionId></Object></Delete>";
        let entry = |key: &str, version: Option<&str>| DeleteEntry {
            key: key.to_string(),
            version_id: version.map(str::to_string),
        };
        assert_eq!(
            delete_request(doc).unwrap(),
            (true, vec![entry(" a&b ", None), entry("c", Some("null"))])
        );
        let many: String = (0..=limits::DELETE_OBJECTS_KEYS_MAX)
            .map(|i| format!("<Object><Key>{i}</Key></Object>"))
            .collect();
        for bad in [
            "<Delete></Delete>".to_string(),
            "<Other><Object><Key>a</Key></Object></Other>".to_string(),
            "<Delete><Object></Object></Delete>".to_string(),
            format!("<Delete>{many}</Delete>"),
        ] {
            let error = delete_request(bad.as_bytes()).unwrap_err();
            assert_eq!(error.code, ErrorCode::MalformedXML, "{bad:.60}");
        }
    }
}
