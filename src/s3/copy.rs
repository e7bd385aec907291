//! CopyObject: the source's bytes are copied in the kernel (copy_file_range)
//! into new data files, never through our buffers; a multipart source keeps its
//! parts (and so its ETag) part for part. Metadata is copied or replaced as
//! `x-amz-metadata-directive` says, and `x-amz-copy-source-if-*` are checked first.

use crate::checksum::{base64_encode, ChecksumAlgorithm, ChecksumType};
use crate::clock;
use crate::error::meta_error;
use crate::error::storage_error;
use crate::error::{ErrorCode, S3Error};
use crate::meta::{ObjectRow, PartRef};
use crate::s3::authorize::Granted;
use crate::s3::context::{xml_reply, RequestContext, S3Response};
use crate::s3::operation::{CopyObjectInput, MetadataDirective};
use crate::s3::payload::Hashes;
use crate::s3::store::{discard_unrecorded, object_row_from_headers};
use crate::s3::xml::XmlWriter;

/// The `x-amz-copy-source-if-*` conditions against the source object.
pub(crate) fn check_source_conditions(
    ctx: &RequestContext<'_, '_>,
    source: &ObjectRow,
) -> Result<(), S3Error> {
    let head = ctx.head;
    let modified = source.last_modified_ms.div_euclid(1000);
    let matches = |list: &str| {
        list.split(',')
            .map(|c| c.trim().trim_matches('"'))
            .any(|c| c == "*" || c == source.etag)
    };
    let failed = || S3Error::new(ErrorCode::PreconditionFailed);
    let if_match = head.header("x-amz-copy-source-if-match");
    if let Some(list) = if_match {
        if !matches(list) {
            return Err(failed().field("Condition", "x-amz-copy-source-If-Match"));
        }
    } else if let Some(since) = head
        .header("x-amz-copy-source-if-unmodified-since")
        .and_then(clock::parse_http_date)
    {
        if modified > since {
            return Err(failed().field("Condition", "x-amz-copy-source-If-Unmodified-Since"));
        }
    }
    let if_none_match = head.header("x-amz-copy-source-if-none-match");
    if let Some(list) = if_none_match {
        if matches(list) {
            return Err(failed().field("Condition", "x-amz-copy-source-If-None-Match"));
        }
    } else if let Some(since) = head
        .header("x-amz-copy-source-if-modified-since")
        .and_then(clock::parse_http_date)
    {
        if modified <= since {
            return Err(failed().field("Condition", "x-amz-copy-source-If-Modified-Since"));
        }
    }
    Ok(())
}

pub(crate) async fn copy_object(
    ctx: &mut RequestContext<'_, '_>,
    input: CopyObjectInput,
    granted: Granted<'_>,
) -> Result<S3Response, S3Error> {
    // Authorization read the source under a read lease, held until its bytes are
    // copied: files a concurrent overwrite of the source releases stay until then.
    let bucket = granted.bucket()?;
    let source = granted.object()?;
    check_source_conditions(ctx, source)?;
    if source.size > crate::limits::COPY_SOURCE_BYTES_MAX {
        return Err(S3Error::with_message(
            ErrorCode::InvalidRequest,
            "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120",
        ));
    }
    let replace = input.directive == MetadataDirective::Replace;
    let key = input.object.key.as_str();
    let same_object = source.bucket == bucket.name && source.key == key;
    let new_storage_class = ctx
        .head
        .header("x-amz-storage-class")
        .is_some_and(|c| c != source.storage_class);
    if same_object && !replace && !new_storage_class {
        return Err(S3Error::with_message(
            ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    let headers_row = object_row_from_headers(ctx, bucket, key)?;
    let mut row = if replace {
        headers_row
    } else {
        ObjectRow {
            bucket: bucket.name.clone(),
            key: key.to_string(),
            owner_id: ctx.principal.owner_id().to_string(),
            acl: headers_row.acl,
            storage_class: ctx
                .head
                .header("x-amz-storage-class")
                .map_or(source.storage_class.clone(), str::to_string),
            // A copy's lock state is the request's (or the bucket's default), never the
            // source's.
            retention: headers_row.retention,
            legal_hold: headers_row.legal_hold,
            ..source.clone()
        }
    };
    row.size = source.size;
    row.etag = source.etag.clone();
    row.checksum_algorithm = source.checksum_algorithm.clone();
    row.checksum_value = source.checksum_value.clone();
    row.checksum_type = source.checksum_type.clone();
    row.parts_count = source.parts_count;
    row.upload_id = None;
    row.last_modified_ms = clock::now_unix_millis();
    let copied = copy_data(ctx, source).await?;
    let source_etag = source.etag.clone();
    let source_version = source.version_label().to_string();
    let other_object = !same_object;
    let bucket_name = bucket.name.clone();
    drop(granted);
    let new_ids: Vec<String> = match &copied {
        Copied::Single(id) => vec![id.clone()],
        Copied::Parts(parts) => parts.iter().map(|p| p.data_id.clone()).collect(),
    };
    match copied {
        Copied::Single(id) => {
            row.data_id = id;
            row.parts = Vec::new();
        }
        Copied::Parts(parts) => {
            row.data_id = String::new();
            row.parts = parts;
        }
    }
    if let Err(error) = recompute_checksum(ctx, &mut row).await {
        discard_unrecorded(ctx, &new_ids).await;
        return Err(error);
    }
    let last_modified = row.last_modified_ms;
    let checksum = row
        .checksum_algorithm
        .clone()
        .zip(row.checksum_value.clone());
    let checksum_type = row.checksum_type.clone();
    let version_id = match ctx.state.meta.put_object(row, input.condition, None).await {
        Ok(version_id) => version_id,
        Err(error) => {
            discard_unrecorded(ctx, &new_ids).await;
            return Err(meta_error(error, &bucket_name, Some(key)));
        }
    };
    let mut xml = XmlWriter::new();
    xml.root("CopyObjectResult");
    xml.element("LastModified", &clock::format_iso8601_millis(last_modified));
    xml.element("ETag", &format!("\"{source_etag}\""));
    if let Some((alg, value)) = &checksum {
        xml.element(&format!("Checksum{alg}"), value);
        xml.optional("ChecksumType", checksum_type.as_deref());
    }
    xml.close("CopyObjectResult");
    let mut response = xml_reply(xml);
    if other_object {
        response
            .head
            .header("x-amz-copy-source-version-id", &source_version);
    }
    if let Some(version_id) = &version_id {
        response.head.header("x-amz-version-id", version_id);
    }
    Ok(response)
}

/// `x-amz-checksum-algorithm` on a copy: unless the object already carries a
/// full-object checksum of that algorithm, it is computed over the new copy's bytes.
async fn recompute_checksum(
    ctx: &RequestContext<'_, '_>,
    row: &mut ObjectRow,
) -> Result<(), S3Error> {
    let Some(name) = ctx.head.header("x-amz-checksum-algorithm") else {
        return Ok(());
    };
    let alg = ChecksumAlgorithm::from_name(name).ok_or_else(|| {
        S3Error::with_message(
            ErrorCode::InvalidRequest,
            "Checksum algorithm provided is unsupported.",
        )
    })?;
    let full = ChecksumType::FullObject.as_str();
    if row.checksum_algorithm.as_deref() == Some(alg.as_str())
        && row.checksum_type.as_deref().is_none_or(|t| t == full)
    {
        return Ok(());
    }
    let ranges = row.ranges(0, row.size);
    let hashes = ctx
        .state
        .storage
        .scan(ranges, Hashes::new(false, Some(alg)))
        .await
        .map_err(storage_error)?;
    let (_, raw) = hashes.finish();
    let raw = raw.unwrap_or_default();
    row.checksum_algorithm = Some(alg.as_str().to_string());
    row.checksum_value = Some(base64_encode(&raw));
    row.checksum_type = Some(full.to_string());
    for part in &mut row.parts {
        part.checksum_value = None;
    }
    Ok(())
}

enum Copied {
    Single(String),
    Parts(Vec<PartRef>),
}

/// Copies the source's data files into new ones, durably.
async fn copy_data(ctx: &RequestContext<'_, '_>, source: &ObjectRow) -> Result<Copied, S3Error> {
    if source.parts_count.is_none() {
        return Ok(Copied::Single(
            copy_file(ctx, &source.data_id, source.size).await?,
        ));
    }
    let mut parts = Vec::with_capacity(source.parts.len());
    for part in &source.parts {
        match copy_file(ctx, &part.data_id, part.size).await {
            Ok(data_id) => parts.push(PartRef {
                data_id,
                ..part.clone()
            }),
            Err(error) => {
                let made: Vec<String> = parts.iter().map(|p: &PartRef| p.data_id.clone()).collect();
                discard_unrecorded(ctx, &made).await;
                return Err(error);
            }
        }
    }
    Ok(Copied::Parts(parts))
}

async fn copy_file(
    ctx: &RequestContext<'_, '_>,
    source_id: &str,
    size: u64,
) -> Result<String, S3Error> {
    let data_id = ctx.state.storage.new_data_id_for(Some(size));
    ctx.state
        .storage
        .copy(source_id, &data_id)
        .await
        .map_err(storage_error)?;
    Ok(data_id)
}
