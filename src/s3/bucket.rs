//! Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
//! GetBucketLocation.

use crate::clock;
use crate::error::{meta_error, ErrorCode, S3Error};
use crate::http::ResponseHead;
use crate::limits;
use crate::meta::{BucketRow, CreateBucketOutcome, LockConfig, Versioning};
use crate::s3::context::{reply, xml_reply, RequestContext, S3Response};
use crate::s3::xml::XmlWriter;

pub(crate) async fn list_buckets(ctx: &mut RequestContext<'_, '_>) -> Result<S3Response, S3Error> {
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
    Ok(xml_reply(xml))
}

pub(crate) async fn create_bucket(
    ctx: &mut RequestContext<'_, '_>,
    name: String,
) -> Result<S3Response, S3Error> {
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
        owner_id: owner,
        region: region.clone(),
        acl: acl.to_json(),
        created_ms: clock::now_unix_millis(),
        versioning: Versioning::Unversioned,
        object_lock: None,
        cors: None,
    };
    // Object lock at creation turns versioning on with it, for good.
    let locked = match ctx.head.header("x-amz-bucket-object-lock-enabled") {
        None => false,
        Some(value) if value.eq_ignore_ascii_case("true") => true,
        Some(value) if value.eq_ignore_ascii_case("false") => false,
        Some(value) => {
            return Err(S3Error::with_message(
                ErrorCode::InvalidArgument,
                "x-amz-bucket-object-lock-enabled must be true or false",
            )
            .field("ArgumentName", "x-amz-bucket-object-lock-enabled")
            .field("ArgumentValue", value))
        }
    };
    let row = if locked {
        BucketRow {
            versioning: Versioning::Enabled,
            object_lock: Some(LockConfig::default()),
            ..row
        }
    } else {
        row
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
    let mut head = ResponseHead::new(200);
    head.header("Location", format!("/{name}"));
    Ok(reply(head))
}

pub(crate) async fn delete_bucket(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
) -> Result<S3Response, S3Error> {
    ctx.state
        .meta
        .delete_bucket(&bucket.name)
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    Ok(reply(ResponseHead::new(204)))
}

pub(crate) fn head_bucket(bucket: &BucketRow) -> S3Response {
    let mut head = ResponseHead::new(200);
    head.header("x-amz-bucket-region", bucket.region.clone());
    reply(head)
}

pub(crate) fn get_bucket_location(bucket: &BucketRow) -> S3Response {
    let mut xml = XmlWriter::new();
    xml.root("LocationConstraint");
    // us-east-1 is the empty constraint, as S3 answers it.
    if bucket.region != "us-east-1" {
        xml.text(&bucket.region);
    }
    xml.close("LocationConstraint");
    xml_reply(xml)
}
