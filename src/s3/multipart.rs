//! Multipart uploads: CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts and ListMultipartUploads. Parts are stored like
//! objects (streamed, verified, published durably); completion validates the part
//! list and makes the object out of the part files by reference, so it costs the
//! same whatever the object's size.

use crate::checksum::{hex_encode, ChecksumAlgorithm, ChecksumType};
use crate::clock;
use crate::error::meta_error;
use crate::error::storage_error;
use crate::error::{ErrorCode, S3Error};
use crate::http::ResponseHead;
use crate::limits;
use crate::meta::{
    BucketRow, CompleteRequest, CompletedPart, ObjectRow, PartRow, PutCondition, UploadQuery,
    UploadRow,
};
use crate::s3::authorize::Granted;
use crate::s3::context::{reply, xml_reply, RequestContext, S3Response};
use crate::s3::operation::{ListPartsInput, ObjectRef, PartRef, UploadPartCopyInput};
use crate::s3::payload::Hashes;
use crate::s3::store::{discard_unrecorded, object_row_from_headers, store_body, StoredBody};
use crate::s3::xml::{parse_document, XmlWriter};

/// The upload named by `upload_id`, which must belong to the object named.
async fn require_upload(
    ctx: &RequestContext<'_, '_>,
    object: &ObjectRef,
    upload_id: &str,
) -> Result<UploadRow, S3Error> {
    let upload = ctx
        .state
        .meta
        .get_upload(upload_id)
        .await
        .map_err(|e| meta_error(e, &object.bucket, None))?;
    match upload {
        Some(upload)
            if upload.object.bucket == object.bucket && upload.object.key == object.key =>
        {
            Ok(upload)
        }
        _ => Err(S3Error::new(ErrorCode::NoSuchUpload).field("UploadId", upload_id)),
    }
}

/// The checksum CreateMultipartUpload asks for: `x-amz-checksum-algorithm` and
/// `x-amz-checksum-type`, the type defaulting as S3 does and checked against the algorithm.
fn requested_checksum(
    ctx: &RequestContext<'_, '_>,
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

/// Adds `x-amz-checksum-algorithm` and `x-amz-checksum-type` to an upload's answers.
fn checksum_headers(
    response: &mut ResponseHead,
    checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
) {
    if let Some((alg, kind)) = checksum {
        response.header("x-amz-checksum-algorithm", alg.as_str());
        response.header("x-amz-checksum-type", kind.as_str());
    }
}

pub(crate) async fn create_multipart_upload(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
    target: ObjectRef,
) -> Result<S3Response, S3Error> {
    let mut object = object_row_from_headers(ctx, bucket, &target.key)?;
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
    xml.element("Key", &target.key);
    xml.element("UploadId", &upload_id);
    xml.close("InitiateMultipartUploadResult");
    let mut response = xml_reply(xml);
    checksum_headers(&mut response.head, checksum);
    Ok(response)
}

pub(crate) async fn upload_part(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
    part: PartRef,
) -> Result<S3Response, S3Error> {
    crate::s3::object_lock::require_integrity(ctx.head, bucket)?;
    let upload = require_upload(ctx, &part.object, &part.upload_id).await?;
    let max_size = limits::PART_BYTES_MAX.min(ctx.state.config.max_object_size);
    let checksum = upload.object.checksum_kind();
    let StoredBody {
        data_id,
        verified,
        tail,
    } = store_body(ctx, max_size, checksum).await?;
    let row = PartRow {
        upload_id: upload.upload_id.clone(),
        part_number: part.part_number,
        size: verified.size,
        etag: hex_encode(&verified.md5),
        data_id: data_id.clone(),
        last_modified_ms: clock::now_unix_millis(),
        checksum_value: verified.checksum.as_ref().map(|(_, v)| v.clone()),
    };
    if let Err(error) = ctx.state.meta.put_part(row, tail).await {
        discard_unrecorded(ctx, &[data_id]).await;
        return Err(meta_error(
            error,
            &part.object.bucket,
            Some(&part.object.key),
        ));
    }
    let mut head = ResponseHead::new(200);
    head.header("ETag", format!("\"{}\"", hex_encode(&verified.md5)));
    if let Some((alg, value)) = verified.checksum {
        head.header(alg.header_name(), value);
    }
    Ok(reply(head))
}

/// The parts a CompleteMultipartUpload body lists: number, unquoted ETag and checksum.
pub(crate) fn completion_parts(body: &[u8]) -> Result<Vec<CompletedPart>, S3Error> {
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

pub(crate) async fn complete_multipart_upload(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
    object: ObjectRef,
    upload_id: String,
    condition: PutCondition,
) -> Result<S3Response, S3Error> {
    let upload = ctx
        .state
        .meta
        .get_upload(&upload_id)
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    let mut template = match upload {
        Some(upload) if upload.object.bucket == bucket.name && upload.object.key == object.key => {
            upload.object
        }
        Some(_) => return Err(S3Error::new(ErrorCode::NoSuchUpload).field("UploadId", upload_id)),
        // Possibly completed already: the metadata thread answers that idempotently.
        None => object_row_from_headers(ctx, bucket, &object.key)?,
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
        .map_err(|e| meta_error(e, &bucket.name, Some(&object.key)))?;
    let mut xml = XmlWriter::new();
    xml.root("CompleteMultipartUploadResult");
    xml.element("Location", &format!("/{}/{}", bucket.name, object.key));
    xml.element("Bucket", &bucket.name);
    xml.element("Key", &object.key);
    xml.element("ETag", &format!("\"{}\"", done.etag));
    if let Some((alg, value, kind)) = &done.checksum {
        xml.element(&format!("Checksum{alg}"), value);
        xml.element("ChecksumType", kind);
    }
    xml.close("CompleteMultipartUploadResult");
    let mut response = xml_reply(xml);
    if let Some(version_id) = &done.version_id {
        response.head.header("x-amz-version-id", version_id);
    }
    Ok(response)
}

/// The object checksum sent with a completion (`x-amz-checksum-<alg>`), checked against
/// the upload's algorithm and type; the metadata step compares it with the computed one.
fn completion_checksum(
    ctx: &RequestContext<'_, '_>,
    template: &ObjectRow,
) -> Result<Option<String>, S3Error> {
    let recorded = template.checksum_kind();
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

pub(crate) async fn abort_multipart_upload(
    ctx: &mut RequestContext<'_, '_>,
    object: ObjectRef,
    upload_id: String,
) -> Result<S3Response, S3Error> {
    let upload = require_upload(ctx, &object, &upload_id).await?;
    ctx.state
        .meta
        .abort_upload(&upload.upload_id)
        .await
        .map_err(|e| meta_error(e, &object.bucket, Some(&object.key)))?;
    Ok(reply(ResponseHead::new(204)))
}

pub(crate) async fn list_parts(
    ctx: &mut RequestContext<'_, '_>,
    input: ListPartsInput,
) -> Result<S3Response, S3Error> {
    let ListPartsInput {
        object,
        upload_id,
        max_parts: max,
        marker,
    } = input;
    let upload = require_upload(ctx, &object, &upload_id).await?;
    let (parts, truncated) = ctx
        .state
        .meta
        .list_parts(&upload.upload_id, marker, max)
        .await
        .map_err(|e| meta_error(e, &object.bucket, Some(&object.key)))?;
    let mut xml = XmlWriter::new();
    xml.root("ListPartsResult");
    xml.element("Bucket", &object.bucket);
    xml.element("Key", &object.key);
    xml.element("UploadId", &upload.upload_id);
    ctx.write_owner(&mut xml, "Initiator", &upload.object.owner_id);
    ctx.write_owner(&mut xml, "Owner", &upload.object.owner_id);
    xml.element("StorageClass", &upload.object.storage_class);
    xml.element("PartNumberMarker", &marker.to_string());
    if let Some(last) = parts.last() {
        xml.element("NextPartNumberMarker", &last.part_number.to_string());
    }
    xml.element("MaxParts", &max.to_string());
    xml.element("IsTruncated", if truncated { "true" } else { "false" });
    let checksum = upload.object.checksum_kind();
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
    Ok(xml_reply(xml))
}

pub(crate) async fn list_multipart_uploads(
    ctx: &mut RequestContext<'_, '_>,
    query: UploadQuery,
) -> Result<S3Response, S3Error> {
    let page = ctx
        .state
        .meta
        .list_uploads(query.clone())
        .await
        .map_err(|e| meta_error(e, &query.bucket, None))?;
    let mut xml = XmlWriter::new();
    xml.root("ListMultipartUploadsResult");
    xml.element("Bucket", &query.bucket);
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
        ctx.write_owner(&mut xml, "Initiator", &upload.object.owner_id);
        ctx.write_owner(&mut xml, "Owner", &upload.object.owner_id);
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
    Ok(xml_reply(xml))
}

/// UploadPartCopy: a part made of (a range of) another object. The bytes are read
/// and hashed once, off the runtime, for the part's ETag.
pub(crate) async fn upload_part_copy(
    ctx: &mut RequestContext<'_, '_>,
    input: UploadPartCopyInput,
    granted: Granted<'_>,
) -> Result<S3Response, S3Error> {
    let part = &input.part;
    let upload = require_upload(ctx, &part.object, &part.upload_id).await?;
    // Read under a read lease by authorization, held until the bytes are copied.
    let source = granted.object()?;
    let source_version = source.version_id.clone();
    crate::s3::copy::check_source_conditions(ctx, source)?;
    let (first, length) = match &input.range {
        None => (0, source.size),
        Some((first, last, raw)) => {
            if *last >= source.size {
                return Err(S3Error::with_message(
                    ErrorCode::InvalidArgument,
                    format!(
                        "Range specified is not valid for source object of size: {}",
                        source.size
                    ),
                )
                .field("ArgumentName", "x-amz-copy-source-range")
                .field("ArgumentValue", raw.clone()));
            }
            (*first, last - first + 1)
        }
    };
    if length > limits::PART_BYTES_MAX {
        return Err(S3Error::new(ErrorCode::EntityTooLarge));
    }
    let ranges = source.ranges(first, length);
    let checksum = upload.object.checksum_kind();
    let data_id = ctx.state.storage.new_data_id();
    // The part's ETag (and checksum) are hashed from the bytes as they are copied.
    let (_, hashes) = ctx
        .state
        .storage
        .copy_ranges(
            ranges,
            &data_id,
            Hashes::new(true, checksum.map(|(alg, _)| alg)),
        )
        .await
        .map_err(storage_error)?;
    drop(granted);
    let (md5, part_checksum) = hashes.finish();
    let md5 = md5.unwrap_or_default();
    let now = clock::now_unix_millis();
    let row = PartRow {
        upload_id: upload.upload_id.clone(),
        part_number: part.part_number,
        size: length,
        etag: hex_encode(&md5),
        data_id: data_id.clone(),
        last_modified_ms: now,
        checksum_value: part_checksum.as_deref().map(crate::checksum::base64_encode),
    };
    if let Err(error) = ctx.state.meta.put_part(row, None).await {
        discard_unrecorded(ctx, &[data_id]).await;
        return Err(meta_error(
            error,
            &part.object.bucket,
            Some(&part.object.key),
        ));
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
    let mut response = xml_reply(xml);
    if let Some(version_id) = &source_version {
        response
            .head
            .header("x-amz-copy-source-version-id", version_id);
    }
    Ok(response)
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
}
