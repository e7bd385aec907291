//! Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
//! GetBucketLocation.

use crate::clock;
use crate::limits;
use crate::meta::{BucketRow, CreateBucketOutcome, MetaError};
use crate::s3::acl::{Acl, Permission};
use crate::s3::error::{ErrorCode, S3Error};
use crate::s3::route::validate_bucket_name;
use crate::s3::service::RequestContext;
use crate::s3::xml::XmlWriter;

/// NoSuchBucket naming the bucket.
pub fn no_such_bucket(bucket: &str) -> S3Error {
    S3Error::new(ErrorCode::NoSuchBucket).field("BucketName", bucket)
}

/// Maps a metadata failure to the S3 error a client sees, naming the bucket.
pub fn meta_error(error: MetaError, bucket: &str, key: Option<&str>) -> S3Error {
    match error {
        MetaError::NoSuchBucket => no_such_bucket(bucket),
        MetaError::BucketNotEmpty => {
            S3Error::new(ErrorCode::BucketNotEmpty).field("BucketName", bucket)
        }
        MetaError::NoSuchKey => {
            S3Error::new(ErrorCode::NoSuchKey).field("Key", key.unwrap_or_default())
        }
        MetaError::PreconditionFailed => {
            S3Error::new(ErrorCode::PreconditionFailed).field("Condition", "If-Match")
        }
        MetaError::NoSuchUpload => S3Error::new(ErrorCode::NoSuchUpload),
        MetaError::InvalidPart(number) => {
            S3Error::new(ErrorCode::InvalidPart).field("PartNumber", number.to_string())
        }
        MetaError::InvalidPartOrder => S3Error::new(ErrorCode::InvalidPartOrder),
        MetaError::EntityTooSmall(number, size) => S3Error::new(ErrorCode::EntityTooSmall)
            .field("PartNumber", number.to_string())
            .field("ProposedSize", size.to_string())
            .field("MinSizeAllowed", crate::meta::PART_BYTES_MIN.to_string()),
        MetaError::MissingPartChecksum(number) => S3Error::with_message(
            ErrorCode::InvalidRequest,
            format!(
                "The upload was created using a checksum algorithm. The complete request must \
                 include the checksum for each part. It was missing for part {number} in the request."
            ),
        ),
        MetaError::DiskFull => {
            log::error!("metadata disk full");
            S3Error::new(ErrorCode::InsufficientStorage)
        }
        MetaError::BadDigest => S3Error::with_message(
            ErrorCode::BadDigest,
            "The checksum you specified did not match the calculated checksum of the object.",
        ),
        other => S3Error::internal(format!("metadata: {other}")),
    }
}

/// The bucket the request names, if it exists and only its owner may do this.
pub async fn require_bucket(ctx: &RequestContext<'_>) -> Result<BucketRow, S3Error> {
    let row = existing_bucket(ctx).await?;
    if ctx.requester() != Some(row.owner_id.as_str()) {
        return Err(S3Error::new(ErrorCode::AccessDenied));
    }
    Ok(row)
}

/// The bucket the request names, if it exists and its ACL grants the requester `permission`.
pub async fn bucket_with(
    ctx: &RequestContext<'_>,
    permission: Permission,
) -> Result<BucketRow, S3Error> {
    let row = existing_bucket(ctx).await?;
    let acl = Acl::from_json(&row.acl, &row.owner_id);
    if !acl.allows(&row.owner_id, ctx.requester(), permission) {
        return Err(S3Error::new(ErrorCode::AccessDenied));
    }
    Ok(row)
}

/// The bucket the request names, whoever asks (NoSuchBucket when absent).
pub async fn existing_bucket(ctx: &RequestContext<'_>) -> Result<BucketRow, S3Error> {
    let name = ctx.bucket();
    let row = ctx
        .state
        .meta
        .get_bucket(name)
        .await
        .map_err(|e| meta_error(e, name, None))?;
    row.ok_or_else(|| no_such_bucket(name))
}

pub async fn list_buckets(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    if ctx.requester().is_none() {
        return Err(S3Error::new(ErrorCode::AccessDenied));
    }
    let rows = ctx
        .state
        .meta
        .list_buckets()
        .await
        .map_err(|e| meta_error(e, "", None))?;
    let mut xml = XmlWriter::new();
    xml.root("ListAllMyBucketsResult");
    xml.open("Owner");
    xml.element("ID", ctx.principal.owner_id());
    xml.element("DisplayName", ctx.principal.display_name());
    xml.close("Owner");
    xml.open("Buckets");
    for row in rows
        .iter()
        .filter(|row| row.owner_id == ctx.principal.owner_id())
    {
        xml.open("Bucket");
        xml.element("Name", &row.name);
        xml.element(
            "CreationDate",
            &clock::format_iso8601_millis(row.created_ms),
        );
        xml.close("Bucket");
    }
    xml.close("Buckets");
    xml.close("ListAllMyBucketsResult");
    let mut response = ctx.response(200);
    response.header("Content-Type", "application/xml".to_string());
    ctx.send(response, &xml.finish()).await
}

pub async fn create_bucket(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let name = ctx.bucket().to_string();
    validate_bucket_name(&name)?;
    if ctx.requester().is_none() {
        return Err(S3Error::new(ErrorCode::AccessDenied));
    }
    let owner = ctx.principal.owner_id().to_string();
    let acl = crate::s3::acl::acl_from_request(&ctx.head.headers, &owner, &owner)?;
    let body = ctx.read_small_body(limits::XML_BODY_BYTES_MAX).await?;
    let region = ctx.state.config.region.clone();
    if let Some(constraint) = crate::s3::xml::parse_create_bucket_configuration(&body)? {
        // S3 rejects an explicit us-east-1 constraint and any region other than the endpoint's.
        if constraint != region || constraint == "us-east-1" {
            return Err(S3Error::with_message(
                ErrorCode::InvalidLocationConstraint,
                "The specified location-constraint is not valid",
            )
            .field("LocationConstraint", constraint));
        }
    }
    let row = BucketRow {
        name: name.clone(),
        owner_id: ctx.principal.owner_id().to_string(),
        region: region.clone(),
        acl: acl.to_json(),
        created_ms: clock::now_unix_millis(),
    };
    let outcome = ctx
        .state
        .meta
        .create_bucket(row)
        .await
        .map_err(|e| meta_error(e, &name, None))?;
    match outcome {
        CreateBucketOutcome::Created => {}
        // us-east-1 answers 200 to re-creating your own bucket, for legacy reasons.
        CreateBucketOutcome::AlreadyOwnedByYou if region == "us-east-1" => {}
        CreateBucketOutcome::AlreadyOwnedByYou => {
            return Err(S3Error::new(ErrorCode::BucketAlreadyOwnedByYou).field("BucketName", name))
        }
        CreateBucketOutcome::AlreadyExists => {
            return Err(S3Error::new(ErrorCode::BucketAlreadyExists).field("BucketName", name))
        }
    }
    let mut response = ctx.response(200);
    response.header("Location", format!("/{name}"));
    ctx.send(response, b"").await
}

pub async fn delete_bucket(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    require_bucket(ctx).await?;
    let name = ctx.bucket().to_string();
    ctx.state
        .meta
        .delete_bucket(&name)
        .await
        .map_err(|e| meta_error(e, &name, None))?;
    let response = ctx.response(204);
    ctx.send(response, b"").await
}

pub async fn head_bucket(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let row = bucket_with(ctx, Permission::Read).await?;
    let mut response = ctx.response(200);
    response.header("x-amz-bucket-region", row.region);
    ctx.send(response, b"").await
}

pub async fn get_bucket_location(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let row = require_bucket(ctx).await?;
    let mut xml = XmlWriter::new();
    xml.root("LocationConstraint");
    // us-east-1 is the empty constraint, as S3 answers it.
    if row.region != "us-east-1" {
        xml.text(&row.region);
    }
    xml.close("LocationConstraint");
    let mut response = ctx.response(200);
    response.header("Content-Type", "application/xml".to_string());
    ctx.send(response, &xml.finish()).await
}
