//! Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts and ListMultipartUploads. Parts are stored like
//! objects (streamed, verified, published durably); completion validates the part
//! list and makes the object out of the part files by reference, so it costs the
//! same whatever the object's size.

use crate::checksum::{hex_encode, ChecksumAlgorithm, ChecksumType, Checksummer};
use crate::clock;
use crate::http::ResponseHead;
use crate::limits;
use crate::meta::{CompleteRequest, CompletedPart, ObjectRow, PartRow, UploadQuery, UploadRow};
use crate::s3::acl::Permission;
use crate::s3::bucket::{bucket_with, meta_error};
use crate::s3::error::{ErrorCode, S3Error};
use crate::s3::list::write_owner;
use crate::s3::object::{
    discard_unrecorded, object_row_from_headers, put_condition, storage_error, store_body,
};
use crate::s3::service::RequestContext;
use crate::s3::xml::{parse_document, XmlWriter};

/// Largest part number S3 accepts.
const PART_NUMBER_MAX: u32 = 10_000;
/// Largest single part, as S3 (5 GiB).
const PART_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;

async fn send_xml(ctx: &mut RequestContext<'_>, xml: XmlWriter) -> Result<(), S3Error> {
    let mut response = ctx.response(200);
    response.header("Content-Type", "application/xml".to_string());
    ctx.send(response, &xml.finish()).await
}

/// The upload named by `uploadId`, which must belong to the request's bucket and key.
async fn require_upload(ctx: &RequestContext<'_>) -> Result<UploadRow, S3Error> {
    let upload_id = ctx.query.get("uploadId").unwrap_or_default();
    let upload = ctx
        .state
        .meta
        .get_upload(upload_id)
        .await
        .map_err(|e| meta_error(e, ctx.bucket(), None))?;
    match upload {
        Some(upload) if upload.object.bucket == ctx.bucket() && upload.object.key == ctx.key() => {
            Ok(upload)
        }
        _ => Err(S3Error::new(ErrorCode::NoSuchUpload).field("UploadId", upload_id)),
    }
}

/// The checksum CreateMultipartUpload asks for: `x-amz-checksum-algorithm` and
/// `x-amz-checksum-type`, the type defaulting as S3 does and checked against the algorithm.
fn requested_checksum(
    ctx: &RequestContext<'_>,
) -> Result<Option<(ChecksumAlgorithm, ChecksumType)>, S3Error> {
    let invalid = |message: String| S3Error::with_message(ErrorCode::InvalidRequest, message);
    let alg =
        match ctx.head.header("x-amz-checksum-algorithm") {
            None => None,
            Some(name) => Some(ChecksumAlgorithm::from_name(name).ok_or_else(|| {
                invalid("Checksum algorithm provided is unsupported.".to_string())
            })?),
        };
    let kind = match ctx.head.header("x-amz-checksum-type") {
        None => None,
        Some(name) => Some(ChecksumType::from_name(name).ok_or_else(|| {
            invalid("Value for x-amz-checksum-type header is invalid.".to_string())
        })?),
    };
    match (alg, kind) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(invalid(
            "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
                .to_string(),
        )),
        (Some(alg), kind) => {
            let kind = kind.unwrap_or(ChecksumType::default_for(alg));
            if !kind.supports(alg) {
                return Err(invalid(format!(
                    "The {} checksum type cannot be used with the {} checksum algorithm.",
                    kind.as_str(),
                    alg.as_str().to_ascii_lowercase()
                )));
            }
            Ok(Some((alg, kind)))
        }
    }
}

/// The checksum an upload (or an object made from one) carries, if any.
pub(crate) fn recorded_checksum(row: &ObjectRow) -> Option<(ChecksumAlgorithm, ChecksumType)> {
    let alg = ChecksumAlgorithm::from_name(row.checksum_algorithm.as_deref()?)?;
    let kind = row
        .checksum_type
        .as_deref()
        .and_then(ChecksumType::from_name)
        .unwrap_or(ChecksumType::default_for(alg));
    Some((alg, kind))
}

/// Adds `x-amz-checksum-algorithm` and `x-amz-checksum-type` to an upload's answers.
fn checksum_headers(
    response: &mut ResponseHead,
    checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
) {
    if let Some((alg, kind)) = checksum {
        response.header("x-amz-checksum-algorithm", alg.as_str().to_string());
        response.header("x-amz-checksum-type", kind.as_str().to_string());
    }
}

pub async fn create_multipart_upload(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let bucket = bucket_with(ctx, Permission::Write).await?;
    let mut object = object_row_from_headers(ctx, &bucket)?;
    let checksum = requested_checksum(ctx)?;
    if let Some((alg, kind)) = checksum {
        object.checksum_algorithm = Some(alg.as_str().to_string());
        object.checksum_type = Some(kind.as_str().to_string());
    }
    let upload_id = ctx.state.storage.new_data_id();
    let upload = UploadRow {
        upload_id: upload_id.clone(),
        initiated_ms: clock::now_unix_millis(),
        object,
    };
    ctx.state
        .meta
        .create_upload(upload)
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    let mut xml = XmlWriter::new();
    xml.root("InitiateMultipartUploadResult");
    xml.element("Bucket", &bucket.name);
    xml.element("Key", ctx.key());
    xml.element("UploadId", &upload_id);
    xml.close("InitiateMultipartUploadResult");
    let mut response = ctx.response(200);
    response.header("Content-Type", "application/xml".to_string());
    checksum_headers(&mut response, checksum);
    ctx.send(response, &xml.finish()).await
}

fn part_number(ctx: &RequestContext<'_>) -> Result<u32, S3Error> {
    let raw = ctx.query.get("partNumber").unwrap_or_default();
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=PART_NUMBER_MAX).contains(n))
        .ok_or_else(|| {
            S3Error::with_message(
                ErrorCode::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            )
            .field("ArgumentName", "partNumber")
            .field("ArgumentValue", raw)
        })
}

pub async fn upload_part(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    bucket_with(ctx, Permission::Write).await?;
    let number = part_number(ctx)?;
    let upload = require_upload(ctx).await?;
    let max_size = PART_BYTES_MAX.min(ctx.state.config.max_object_size);
    let checksum = recorded_checksum(&upload.object);
    let (data_id, verified) = store_body(ctx, max_size, checksum).await?;
    let part = PartRow {
        upload_id: upload.upload_id.clone(),
        part_number: number,
        size: verified.size,
        etag: hex_encode(&verified.md5),
        data_id: data_id.clone(),
        last_modified_ms: clock::now_unix_millis(),
        checksum_value: verified.checksum.as_ref().map(|(_, v)| v.clone()),
    };
    if let Err(error) = ctx.state.meta.put_part(part).await {
        discard_unrecorded(ctx, &[data_id]).await;
        return Err(meta_error(error, ctx.bucket(), Some(ctx.key())));
    }
    let mut response = ctx.response(200);
    response.header("ETag", format!("\"{}\"", hex_encode(&verified.md5)));
    if let Some((alg, value)) = verified.checksum {
        response.header(alg.header_name(), value);
    }
    ctx.send(response, b"").await
}

/// The parts a CompleteMultipartUpload body lists: number, unquoted ETag and checksum.
fn completion_parts(body: &[u8]) -> Result<Vec<CompletedPart>, S3Error> {
    let root = parse_document(body)?;
    if root.name != "CompleteMultipartUpload" {
        return Err(S3Error::new(ErrorCode::MalformedXML));
    }
    let mut parts = Vec::new();
    for part in root.children_named("Part") {
        let number = part
            .child_text("PartNumber")
            .and_then(|n| n.parse::<u32>().ok());
        let etag = part.child_text("ETag");
        let checksum = part.children.iter().find_map(|c| {
            let alg = ChecksumAlgorithm::from_name(c.name.strip_prefix("Checksum")?)?;
            Some((alg.as_str().to_string(), c.text.trim().to_string()))
        });
        match (number, etag) {
            (Some(number), Some(etag)) => parts.push(CompletedPart {
                part_number: number,
                etag: etag.trim_matches('"').to_string(),
                checksum,
            }),
            _ => return Err(S3Error::new(ErrorCode::MalformedXML)),
        }
    }
    if parts.is_empty() {
        return Err(S3Error::with_message(
            ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        ));
    }
    Ok(parts)
}

pub async fn complete_multipart_upload(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let bucket = bucket_with(ctx, Permission::Write).await?;
    let condition = put_condition(ctx)?;
    let upload_id = ctx.query.get("uploadId").unwrap_or_default().to_string();
    let upload = ctx
        .state
        .meta
        .get_upload(&upload_id)
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    let mut template = match upload {
        Some(upload) if upload.object.bucket == bucket.name && upload.object.key == ctx.key() => {
            upload.object
        }
        Some(_) => return Err(S3Error::new(ErrorCode::NoSuchUpload).field("UploadId", upload_id)),
        // Possibly completed already: the metadata thread answers that idempotently.
        None => object_row_from_headers(ctx, &bucket)?,
    };
    let expected_checksum = completion_checksum(ctx, &template)?;
    let body = ctx.read_completion_body(limits::XML_BODY_BYTES_MAX).await?;
    let parts = completion_parts(&body)?;
    template.last_modified_ms = clock::now_unix_millis();
    let request = CompleteRequest {
        upload_id,
        template: Box::new(template),
        parts,
        expected_checksum,
        condition,
    };
    let done = ctx
        .state
        .meta
        .complete_upload(request)
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(ctx.key())))?;
    let mut xml = XmlWriter::new();
    xml.root("CompleteMultipartUploadResult");
    xml.element("Location", &format!("/{}/{}", bucket.name, ctx.key()));
    xml.element("Bucket", &bucket.name);
    xml.element("Key", ctx.key());
    xml.element("ETag", &format!("\"{}\"", done.etag));
    if let Some((alg, value, kind)) = &done.checksum {
        xml.element(&format!("Checksum{alg}"), value);
        xml.element("ChecksumType", kind);
    }
    xml.close("CompleteMultipartUploadResult");
    send_xml(ctx, xml).await
}

/// The object checksum sent with a completion (`x-amz-checksum-<alg>`), checked against
/// the upload's algorithm and type; the metadata step compares it with the computed one.
fn completion_checksum(
    ctx: &RequestContext<'_>,
    template: &ObjectRow,
) -> Result<Option<String>, S3Error> {
    let recorded = recorded_checksum(template);
    if let Some(name) = ctx.head.header("x-amz-checksum-type") {
        let sent = ChecksumType::from_name(name);
        if sent.is_none() || sent != recorded.map(|(_, kind)| kind) {
            return Err(S3Error::with_message(
                ErrorCode::InvalidRequest,
                format!(
                    "The upload was created using the {} checksum mode. The complete request must use the same checksum mode.",
                    recorded.map_or("null", |(_, kind)| kind.as_str())
                ),
            ));
        }
    }
    let mut found = None;
    for (name, value) in &ctx.head.headers {
        if let Some(alg) = ChecksumAlgorithm::from_header_name(name) {
            if recorded.map(|(a, _)| a) != Some(alg) {
                return Err(S3Error::with_message(
                    ErrorCode::InvalidRequest,
                    format!(
                        "The upload was created using {} checksum algorithm; {} was sent with the complete request.",
                        recorded.map_or("no", |(a, _)| a.as_str()),
                        alg.as_str()
                    ),
                ));
            }
            found = Some(value.trim().to_string());
        }
    }
    Ok(found)
}

pub async fn abort_multipart_upload(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    bucket_with(ctx, Permission::Write).await?;
    let upload = require_upload(ctx).await?;
    ctx.state
        .meta
        .abort_upload(&upload.upload_id)
        .await
        .map_err(|e| meta_error(e, ctx.bucket(), Some(ctx.key())))?;
    let response = ctx.response(204);
    ctx.send(response, b"").await
}

fn bounded_count(ctx: &RequestContext<'_>, name: &'static str) -> Result<usize, S3Error> {
    match ctx.query.get(name) {
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

pub async fn list_parts(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    bucket_with(ctx, Permission::Read).await?;
    let upload = require_upload(ctx).await?;
    let max = bounded_count(ctx, "max-parts")?;
    let marker_text = ctx.query.get("part-number-marker").unwrap_or("0");
    let marker: u32 = marker_text.parse().map_err(|_| {
        S3Error::with_message(
            ErrorCode::InvalidArgument,
            "Provided part-number-marker not an integer",
        )
        .field("ArgumentName", "part-number-marker")
    })?;
    let (parts, truncated) = ctx
        .state
        .meta
        .list_parts(&upload.upload_id, marker, max)
        .await
        .map_err(|e| meta_error(e, ctx.bucket(), Some(ctx.key())))?;
    let mut xml = XmlWriter::new();
    xml.root("ListPartsResult");
    xml.element("Bucket", ctx.bucket());
    xml.element("Key", ctx.key());
    xml.element("UploadId", &upload.upload_id);
    write_owner(ctx, &mut xml, "Initiator", &upload.object.owner_id);
    write_owner(ctx, &mut xml, "Owner", &upload.object.owner_id);
    xml.element("StorageClass", &upload.object.storage_class);
    xml.element("PartNumberMarker", &marker.to_string());
    if let Some(last) = parts.last() {
        xml.element("NextPartNumberMarker", &last.part_number.to_string());
    }
    xml.element("MaxParts", &max.to_string());
    xml.element("IsTruncated", if truncated { "true" } else { "false" });
    let checksum = recorded_checksum(&upload.object);
    if let Some((alg, kind)) = checksum {
        xml.element("ChecksumAlgorithm", alg.as_str());
        xml.element("ChecksumType", kind.as_str());
    }
    for part in &parts {
        xml.open("Part");
        xml.element("PartNumber", &part.part_number.to_string());
        xml.element(
            "LastModified",
            &clock::format_iso8601_millis(part.last_modified_ms),
        );
        xml.element("ETag", &format!("\"{}\"", part.etag));
        xml.element("Size", &part.size.to_string());
        if let (Some((alg, _)), Some(value)) = (checksum, &part.checksum_value) {
            xml.element(&format!("Checksum{}", alg.as_str()), value);
        }
        xml.close("Part");
    }
    xml.close("ListPartsResult");
    send_xml(ctx, xml).await
}

pub async fn list_multipart_uploads(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let bucket = bucket_with(ctx, Permission::Read).await?;
    let query = UploadQuery {
        bucket: bucket.name.clone(),
        prefix: ctx.query.get("prefix").unwrap_or_default().to_string(),
        delimiter: ctx
            .query
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        key_marker: ctx.query.get("key-marker").unwrap_or_default().to_string(),
        upload_id_marker: ctx
            .query
            .get("upload-id-marker")
            .unwrap_or_default()
            .to_string(),
        max_uploads: bounded_count(ctx, "max-uploads")?,
    };
    let page = ctx
        .state
        .meta
        .list_uploads(query.clone())
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    let mut xml = XmlWriter::new();
    xml.root("ListMultipartUploadsResult");
    xml.element("Bucket", &bucket.name);
    xml.element("KeyMarker", &query.key_marker);
    xml.element("UploadIdMarker", &query.upload_id_marker);
    if page.is_truncated {
        if let Some(last) = page.uploads.last() {
            xml.element("NextKeyMarker", &last.object.key);
            xml.element("NextUploadIdMarker", &last.upload_id);
        }
    }
    if let Some(d) = &query.delimiter {
        xml.element("Delimiter", d);
    }
    xml.element("Prefix", &query.prefix);
    xml.element("MaxUploads", &query.max_uploads.to_string());
    xml.element(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    for upload in &page.uploads {
        xml.open("Upload");
        xml.element("Key", &upload.object.key);
        xml.element("UploadId", &upload.upload_id);
        write_owner(ctx, &mut xml, "Initiator", &upload.object.owner_id);
        write_owner(ctx, &mut xml, "Owner", &upload.object.owner_id);
        xml.element("StorageClass", &upload.object.storage_class);
        xml.element(
            "Initiated",
            &clock::format_iso8601_millis(upload.initiated_ms),
        );
        xml.close("Upload");
    }
    for prefix in &page.common_prefixes {
        xml.open("CommonPrefixes");
        xml.element("Prefix", prefix);
        xml.close("CommonPrefixes");
    }
    xml.close("ListMultipartUploadsResult");
    send_xml(ctx, xml).await
}

/// The `x-amz-copy-source-range` of UploadPartCopy: `bytes=first-last`, inside the source.
fn copy_source_range(value: Option<&str>, size: u64) -> Result<(u64, u64), S3Error> {
    let Some(value) = value else {
        return Ok((0, size));
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
    if last >= size {
        return Err(S3Error::with_message(
            ErrorCode::InvalidArgument,
            format!("Range specified is not valid for source object of size: {size}"),
        )
        .field("ArgumentName", "x-amz-copy-source-range")
        .field("ArgumentValue", value));
    }
    Ok((first, last - first + 1))
}

/// UploadPartCopy: a part made of (a range of) another object. The bytes are read
/// and hashed once, off the runtime, for the part's ETag.
pub async fn upload_part_copy(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    bucket_with(ctx, Permission::Write).await?;
    let number = part_number(ctx)?;
    let upload = require_upload(ctx).await?;
    let lease = ctx.state.reads.begin();
    let source = crate::s3::copy::readable_source(ctx).await?;
    let (first, length) =
        copy_source_range(ctx.head.header("x-amz-copy-source-range"), source.size)?;
    if length > PART_BYTES_MAX {
        return Err(S3Error::new(ErrorCode::EntityTooLarge));
    }
    let ranges = crate::s3::copy::source_ranges(&source, first, length);
    let mut temp = ctx
        .state
        .storage
        .create_temp()
        .await
        .map_err(storage_error)?;
    let checksum = recorded_checksum(&upload.object);
    let summer = checksum.map(|(alg, _)| Checksummer::new(alg));
    let (md5, part_checksum) = match temp.append_ranges_hashed(ranges, summer).await {
        Ok(hashed) => hashed,
        Err(error) => {
            temp.abort().await;
            return Err(storage_error(error));
        }
    };
    drop(lease);
    let data_id = ctx.state.storage.new_data_id();
    temp.commit(&data_id).await.map_err(storage_error)?;
    let now = clock::now_unix_millis();
    let part = PartRow {
        upload_id: upload.upload_id.clone(),
        part_number: number,
        size: length,
        etag: hex_encode(&md5),
        data_id: data_id.clone(),
        last_modified_ms: now,
        checksum_value: part_checksum.as_deref().map(crate::checksum::base64_encode),
    };
    if let Err(error) = ctx.state.meta.put_part(part).await {
        discard_unrecorded(ctx, &[data_id]).await;
        return Err(meta_error(error, ctx.bucket(), Some(ctx.key())));
    }
    let mut xml = XmlWriter::new();
    xml.root("CopyPartResult");
    xml.element("LastModified", &clock::format_iso8601_millis(now));
    xml.element("ETag", &format!("\"{}\"", hex_encode(&md5)));
    if let (Some((alg, _)), Some(raw)) = (checksum, &part_checksum) {
        xml.element(
            &format!("Checksum{}", alg.as_str()),
            &crate::checksum::base64_encode(raw),
        );
    }
    xml.close("CopyPartResult");
    send_xml(ctx, xml).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_bodies() {
        let body = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"ab\"</ETag></Part>\
            <Part><ChecksumCRC32C>yZRlqg==</ChecksumCRC32C><ETag>cd</ETag><PartNumber>2</PartNumber></Part>\
            </CompleteMultipartUpload>";
        let part = |n: u32, etag: &str, checksum: Option<(&str, &str)>| CompletedPart {
            part_number: n,
            etag: etag.to_string(),
            checksum: checksum.map(|(a, v)| (a.to_string(), v.to_string())),
        };
        assert_eq!(
            completion_parts(body).unwrap(),
            vec![
                part(1, "ab", None),
                part(2, "cd", Some(("CRC32C", "yZRlqg==")))
            ]
        );
        for bad in [
            &b"<CompleteMultipartUpload/>"[..],
            b"<Other/>",
            b"<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>",
        ] {
            assert_eq!(
                completion_parts(bad).unwrap_err().code,
                ErrorCode::MalformedXML
            );
        }
    }

    #[test]
    fn copy_source_ranges() {
        assert_eq!(copy_source_range(None, 10).unwrap(), (0, 10));
        assert_eq!(copy_source_range(Some("bytes=2-5"), 10).unwrap(), (2, 4));
        for bad in ["bytes=5-2", "bytes=0-10", "bytes=-3", "2-5", "bytes=a-b"] {
            assert_eq!(
                copy_source_range(Some(bad), 10).unwrap_err().code,
                ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
    }
}
