//! CopyObject: the source's bytes are copied in the kernel (copy_file_range)
//! into new data files, never through our buffers; a multipart source keeps its
//! parts (and so its ETag) part for part. Metadata is copied or replaced as
//! `x-amz-metadata-directive` says, and `x-amz-copy-source-if-*` are checked first.

use crate::auth::percent_decode;
use crate::checksum::{base64_encode, ChecksumAlgorithm, ChecksumType, Checksummer};
use crate::clock;
use crate::meta::{ObjectRow, PartRef};
use crate::s3::acl::{Acl, Permission};
use crate::s3::bucket::{meta_error, no_such_bucket};
use crate::s3::error::{ErrorCode, S3Error};
use crate::s3::object::{
    discard_unrecorded, object_row_from_headers, put_condition, storage_error,
};
use crate::s3::service::RequestContext;
use crate::s3::xml::XmlWriter;

/// Largest source one CopyObject may copy, as S3 (5 GiB).
const COPY_SOURCE_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;

/// (bucket, key) of an `x-amz-copy-source` value: `[/]bucket/key[?versionId=...]`, URL-encoded.
fn parse_copy_source(value: &str) -> Result<(String, String), S3Error> {
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
    if version.is_some_and(|v| v != "null") {
        return Err(S3Error::with_message(
            ErrorCode::InvalidArgument,
            "Invalid version id specified",
        )
        .field("ArgumentName", "versionId"));
    }
    let decoded = percent_decode(path)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(invalid)?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (bucket, key) = decoded.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok((bucket.to_string(), key.to_string()))
}

/// The `x-amz-copy-source-if-*` conditions against the source object.
fn check_source_conditions(ctx: &RequestContext<'_>, source: &ObjectRow) -> Result<(), S3Error> {
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

/// The object `x-amz-copy-source` names, if the requester may read it and the
/// `x-amz-copy-source-if-*` conditions hold.
pub(crate) async fn readable_source(ctx: &RequestContext<'_>) -> Result<ObjectRow, S3Error> {
    let (source_bucket, source_key) =
        parse_copy_source(ctx.head.header("x-amz-copy-source").unwrap_or_default())?;
    ctx.state
        .meta
        .get_bucket(&source_bucket)
        .await
        .map_err(|e| meta_error(e, &source_bucket, None))?
        .ok_or_else(|| no_such_bucket(&source_bucket))?;
    let source = ctx
        .state
        .meta
        .get_object(&source_bucket, &source_key)
        .await
        .map_err(|e| meta_error(e, &source_bucket, Some(&source_key)))?
        .ok_or_else(|| S3Error::new(ErrorCode::NoSuchKey).field("Key", source_key.clone()))?;
    if !Acl::from_json(&source.acl, &source.owner_id).allows(
        &source.owner_id,
        ctx.requester(),
        Permission::Read,
    ) {
        return Err(S3Error::new(ErrorCode::AccessDenied));
    }
    check_source_conditions(ctx, &source)?;
    Ok(source)
}

/// (data id, offset, length) pieces holding bytes `first..first + length` of an object,
/// in order: one piece of a single-PUT object, or the parts a range touches.
pub(crate) fn source_ranges(
    source: &ObjectRow,
    first: u64,
    length: u64,
) -> Vec<(String, u64, u64)> {
    let pieces: Vec<(&str, u64)> = if source.parts_count.is_some() {
        source
            .parts
            .iter()
            .map(|p| (p.data_id.as_str(), p.size))
            .collect()
    } else {
        vec![(source.data_id.as_str(), source.size)]
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

pub async fn copy_object(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let bucket = crate::s3::bucket::bucket_with(ctx, Permission::Write).await?;
    // Held until the source's bytes are copied: files a concurrent overwrite of the
    // source releases stay until then.
    let lease = ctx.state.reads.begin();
    let source = readable_source(ctx).await?;
    let (source_bucket, source_key) = (source.bucket.clone(), source.key.clone());
    if source.size > COPY_SOURCE_BYTES_MAX {
        return Err(S3Error::with_message(
            ErrorCode::InvalidRequest,
            "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120",
        ));
    }
    let replace = match ctx
        .head
        .header("x-amz-metadata-directive")
        .unwrap_or("COPY")
    {
        "COPY" => false,
        "REPLACE" => true,
        other => {
            return Err(S3Error::with_message(
                ErrorCode::InvalidArgument,
                "Unknown metadata directive.",
            )
            .field("ArgumentName", "x-amz-metadata-directive")
            .field("ArgumentValue", other))
        }
    };
    let same_object = source_bucket == bucket.name && source_key == ctx.key();
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
    let condition = put_condition(ctx)?;
    let headers_row = object_row_from_headers(ctx, &bucket)?;
    let mut row = if replace {
        headers_row
    } else {
        ObjectRow {
            bucket: bucket.name.clone(),
            key: ctx.key().to_string(),
            owner_id: ctx.principal.owner_id().to_string(),
            acl: headers_row.acl,
            storage_class: ctx
                .head
                .header("x-amz-storage-class")
                .map_or(source.storage_class.clone(), str::to_string),
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
    let copied = copy_data(ctx, &source).await?;
    drop(lease);
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
    if let Err(error) = ctx.state.meta.put_object(row, condition).await {
        discard_unrecorded(ctx, &new_ids).await;
        return Err(meta_error(error, &bucket.name, Some(ctx.key())));
    }
    let mut xml = XmlWriter::new();
    xml.root("CopyObjectResult");
    xml.element("LastModified", &clock::format_iso8601_millis(last_modified));
    xml.element("ETag", &format!("\"{}\"", source.etag));
    if let Some((alg, value)) = &checksum {
        xml.element(&format!("Checksum{alg}"), value);
        xml.optional("ChecksumType", checksum_type.as_deref());
    }
    xml.close("CopyObjectResult");
    let mut response = ctx.response(200);
    response.header("Content-Type", "application/xml".to_string());
    if source.bucket != bucket.name || source.key != ctx.key() {
        response.header("x-amz-copy-source-version-id", "null".to_string());
    }
    ctx.send(response, &xml.finish()).await
}

/// `x-amz-checksum-algorithm` on a copy: unless the object already carries a
/// full-object checksum of that algorithm, it is computed over the new copy's bytes.
async fn recompute_checksum(ctx: &RequestContext<'_>, row: &mut ObjectRow) -> Result<(), S3Error> {
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
    let ranges = source_ranges(row, 0, row.size);
    let raw = ctx
        .state
        .storage
        .checksum_ranges(ranges, Checksummer::new(alg))
        .await
        .map_err(storage_error)?;
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
async fn copy_data(ctx: &RequestContext<'_>, source: &ObjectRow) -> Result<Copied, S3Error> {
    if source.parts_count.is_none() {
        return Ok(Copied::Single(copy_file(ctx, &source.data_id).await?));
    }
    let mut parts = Vec::with_capacity(source.parts.len());
    for part in &source.parts {
        match copy_file(ctx, &part.data_id).await {
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

async fn copy_file(ctx: &RequestContext<'_>, source_id: &str) -> Result<String, S3Error> {
    let mut temp = ctx
        .state
        .storage
        .create_temp()
        .await
        .map_err(storage_error)?;
    if let Err(error) = temp.append_object(source_id).await {
        temp.abort().await;
        return Err(storage_error(error));
    }
    let data_id = ctx.state.storage.new_data_id();
    temp.commit(&data_id).await.map_err(storage_error)?;
    Ok(data_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_forms() {
        assert_eq!(
            parse_copy_source("/b/k%20x").unwrap(),
            ("b".into(), "k x".into())
        );
        assert_eq!(
            parse_copy_source("b/dir/k?versionId=null").unwrap(),
            ("b".into(), "dir/k".into())
        );
        assert_eq!(
            parse_copy_source("b/a%2Fb").unwrap(),
            ("b".into(), "a/b".into())
        );
        for bad in ["", "/b", "b/", "/b/k?versionId=3", "%zz/k"] {
            assert!(parse_copy_source(bad).is_err(), "{bad}");
        }
    }
}
