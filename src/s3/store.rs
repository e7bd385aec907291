//! What a request brings, stored: its body streamed into a new data file (decoded,
//! hashed once, verified, published durably) and its headers made into the new
//! object's row. PutObject, UploadPart and CopyObject share these.

use crate::checksum::{ChecksumAlgorithm, ChecksumType};
use crate::clock;
use crate::error::{storage_error, ErrorCode, S3Error};
use crate::http::BodyKind;
use crate::limits;
use crate::meta::{BlobTail, BucketRow, ObjectRow};
use crate::s3::acl::acl_from_request;
use crate::s3::context::RequestContext;
use crate::s3::payload::{UploadExpectations, UploadReader, VerifiedUpload};

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

/// A request body, stored and verified.
pub(crate) struct StoredBody {
    pub(crate) data_id: String,
    pub(crate) verified: VerifiedUpload,
    /// What the metadata write recording the object must seal with its row (the
    /// sqlite backend's last chunk); `None` when the bytes are already durable.
    pub(crate) tail: Option<BlobTail>,
}

/// Receives a request body into a new data file: checks what the headers promise
/// (size limit before any byte is read), tells a waiting client to send, streams
/// and hashes every byte once, verifies digests and signatures, then publishes the
/// file durably (or hands its tail to the row's write). On any failure nothing is
/// left in storage. `part_checksum` is the checksum a multipart upload holds its
/// parts to.
pub(crate) async fn store_body(
    ctx: &mut RequestContext<'_, '_>,
    max_size: u64,
    part_checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
) -> Result<StoredBody, S3Error> {
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
    // A gateway announces the length of its upstream PUT: a body of unknown length is
    // refused before it is read, as S3 itself refuses one.
    if expect.declared_size.is_none() && ctx.state.storage.needs_size() {
        return Err(S3Error::new(ErrorCode::MissingContentLength));
    }
    ctx.body.accept().await?;
    let data_id = ctx.state.storage.new_data_id_for(expect.declared_size);
    let mut temp = ctx
        .state
        .storage
        .create(&data_id, expect.declared_size)
        .await
        .map_err(storage_error)?;
    let mut reader = UploadReader::new(&expect, &mut ctx.payload);
    let streamed: Result<(), S3Error> = async {
        let mut spare = Vec::new();
        while let Some(chunk) = reader.next(ctx.body, spare).await? {
            if reader.size() > max_size {
                return Err(S3Error::new(ErrorCode::EntityTooLarge));
            }
            let (result, returned) = temp.write(chunk).await;
            spare = returned;
            result.map_err(storage_error)?;
        }
        Ok(())
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
    let tail = temp.commit().await.map_err(storage_error)?;
    Ok(StoredBody {
        data_id,
        verified,
        tail,
    })
}

/// Removes data files this request published but never recorded (its metadata write
/// failed): no row ever named them, so no reader can hold them, and they go at once.
/// Files a commit released go through the reclaimer instead. A failure only leaves an
/// orphan that the next startup's sweep removes, so it is logged, not returned.
pub(crate) async fn discard_unrecorded(ctx: &RequestContext<'_, '_>, data_ids: &[String]) {
    for data_id in data_ids {
        if let Err(error) = ctx.state.storage.remove(data_id).await {
            log::warn!("could not remove data file {data_id}: {error}");
        }
    }
}

/// The metadata row of a new object, from the request headers (size, ETag and
/// data id are filled in once the body is stored).
pub(crate) fn object_row_from_headers(
    ctx: &RequestContext<'_, '_>,
    bucket: &BucketRow,
    key: &str,
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
    let (retention, legal_hold) = crate::s3::object_lock::requested_lock(head, bucket)?;
    Ok(ObjectRow {
        bucket: bucket.name.clone(),
        key: key.to_string(),
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
        owner_id: owner,
        parts_count: None,
        upload_id: None,
        parts: Vec::new(),
        version_id: None,
        version_seq: 0,
        delete_marker: false,
        retention,
        legal_hold,
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

#[cfg(test)]
mod tests {
    use super::*;

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
