//! ListObjects (v1) and ListObjectsV2: parameters parsed and checked here, the
//! walk itself done by the metadata thread, the XML written here.

use crate::auth::uri_encode;
use crate::checksum::{base64_decode, base64_encode};
use crate::clock;
use crate::limits;
use crate::meta::{ListPage, ListQuery, ObjectRow};
use crate::s3::acl::Permission;
use crate::s3::bucket::{bucket_with, meta_error, require_bucket};
use crate::s3::error::{ErrorCode, S3Error};
use crate::s3::service::RequestContext;
use crate::s3::xml::XmlWriter;

/// The parameters both list versions share.
struct ListParams {
    prefix: String,
    delimiter: Option<String>,
    max_keys: usize,
    url_encoding: bool,
}

fn list_params(ctx: &RequestContext<'_>) -> Result<ListParams, S3Error> {
    let max_keys = match ctx.query.get("max-keys") {
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
    let url_encoding = match ctx.query.get("encoding-type") {
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
        prefix: ctx.query.get("prefix").unwrap_or_default().to_string(),
        delimiter: ctx
            .query
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        max_keys: max_keys.min(limits::LIST_KEYS_MAX),
        url_encoding,
    })
}

async fn fetch(
    ctx: &RequestContext<'_>,
    bucket: &str,
    params: &ListParams,
    after: Option<String>,
) -> Result<ListPage, S3Error> {
    let query = ListQuery {
        bucket: bucket.to_string(),
        prefix: params.prefix.clone(),
        delimiter: params.delimiter.clone(),
        after,
        max_keys: params.max_keys,
    };
    ctx.state
        .meta
        .list_objects(query)
        .await
        .map_err(|e| meta_error(e, bucket, None))
}

/// Writes a value as the list's encoding asks: raw, or URL-encoded with '/' kept.
fn encoded(params: &ListParams, value: &str) -> String {
    if params.url_encoding {
        let mut out = String::with_capacity(value.len() + 8);
        uri_encode(value.as_bytes(), false, &mut out);
        out
    } else {
        value.to_string()
    }
}

pub async fn list_objects(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let bucket = bucket_with(ctx, Permission::Read).await?;
    let params = list_params(ctx)?;
    let marker = ctx.query.get("marker").unwrap_or_default().to_string();
    let after = (!marker.is_empty()).then(|| marker.clone());
    let page = fetch(ctx, &bucket.name, &params, after).await?;
    let mut xml = XmlWriter::new();
    xml.root("ListBucketResult");
    xml.element("Name", &bucket.name);
    xml.element("Prefix", &encoded(&params, &params.prefix));
    xml.element("Marker", &encoded(&params, &marker));
    if page.is_truncated && params.delimiter.is_some() {
        if let Some(next) = &page.next_after {
            xml.element("NextMarker", &encoded(&params, next));
        }
    }
    xml.element("MaxKeys", &params.max_keys.to_string());
    if let Some(d) = &params.delimiter {
        xml.element("Delimiter", &encoded(&params, d));
    }
    if params.url_encoding {
        xml.element("EncodingType", "url");
    }
    xml.element("IsTruncated", bool_text(page.is_truncated));
    write_entries(ctx, &mut xml, &params, &page, true);
    xml.close("ListBucketResult");
    send_xml(ctx, xml).await
}

pub async fn list_objects_v2(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let bucket = bucket_with(ctx, Permission::Read).await?;
    let params = list_params(ctx)?;
    let token = ctx.query.get("continuation-token").map(str::to_string);
    let start_after = ctx
        .query
        .get("start-after")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let after = match &token {
        Some(token) => Some(decode_token(token)?),
        None => start_after.clone(),
    };
    let fetch_owner = ctx.query.get("fetch-owner") == Some("true");
    let page = fetch(ctx, &bucket.name, &params, after).await?;
    let mut xml = XmlWriter::new();
    xml.root("ListBucketResult");
    xml.element("Name", &bucket.name);
    xml.element("Prefix", &encoded(&params, &params.prefix));
    if let Some(d) = &params.delimiter {
        xml.element("Delimiter", &encoded(&params, d));
    }
    xml.element("MaxKeys", &params.max_keys.to_string());
    if params.url_encoding {
        xml.element("EncodingType", "url");
    }
    xml.element(
        "KeyCount",
        &(page.objects.len() + page.common_prefixes.len()).to_string(),
    );
    xml.element("IsTruncated", bool_text(page.is_truncated));
    if let Some(token) = &token {
        xml.element("ContinuationToken", token);
    }
    if page.is_truncated {
        if let Some(next) = &page.next_after {
            xml.element("NextContinuationToken", &base64_encode(next.as_bytes()));
        }
    }
    if let Some(start_after) = &start_after {
        xml.element("StartAfter", &encoded(&params, start_after));
    }
    write_entries(ctx, &mut xml, &params, &page, fetch_owner);
    xml.close("ListBucketResult");
    send_xml(ctx, xml).await
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

fn bool_text(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}

fn write_entries(
    ctx: &RequestContext<'_>,
    xml: &mut XmlWriter,
    params: &ListParams,
    page: &ListPage,
    owner: bool,
) {
    for row in &page.objects {
        write_object(ctx, xml, params, row, owner);
    }
    for prefix in &page.common_prefixes {
        xml.open("CommonPrefixes");
        xml.element("Prefix", &encoded(params, prefix));
        xml.close("CommonPrefixes");
    }
}

fn write_object(
    ctx: &RequestContext<'_>,
    xml: &mut XmlWriter,
    params: &ListParams,
    row: &ObjectRow,
    owner: bool,
) {
    xml.open("Contents");
    xml.element("Key", &encoded(params, &row.key));
    xml.element(
        "LastModified",
        &clock::format_iso8601_millis(row.last_modified_ms),
    );
    xml.element("ETag", &format!("\"{}\"", row.etag));
    if let Some(alg) = &row.checksum_algorithm {
        xml.element("ChecksumAlgorithm", alg);
    }
    xml.element("Size", &row.size.to_string());
    if owner {
        write_owner(ctx, xml, "Owner", &row.owner_id);
    }
    xml.element("StorageClass", &row.storage_class);
    xml.close("Contents");
}

async fn send_xml(ctx: &mut RequestContext<'_>, xml: XmlWriter) -> Result<(), S3Error> {
    let mut response = ctx.response(200);
    response.header("Content-Type", "application/xml".to_string());
    ctx.send(response, &xml.finish()).await
}

/// ListObjectVersions for a bucket that never had versioning: every object is
/// its own `null` version, the latest, so versioning-aware tools (cleaners,
/// sync tools) see exactly what is stored and can delete it.
pub async fn list_object_versions(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    let bucket = bucket_with(ctx, Permission::Read).await?;
    let params = list_params(ctx)?;
    let key_marker = ctx.query.get("key-marker").unwrap_or_default().to_string();
    let version_marker = ctx
        .query
        .get("version-id-marker")
        .unwrap_or_default()
        .to_string();
    if !version_marker.is_empty() && version_marker != "null" {
        return Err(S3Error::with_message(
            ErrorCode::InvalidArgument,
            "Invalid version id specified",
        )
        .field("ArgumentName", "version-id-marker")
        .field("ArgumentValue", version_marker));
    }
    let after = (!key_marker.is_empty()).then(|| key_marker.clone());
    let page = fetch(ctx, &bucket.name, &params, after).await?;
    let mut xml = XmlWriter::new();
    xml.root("ListVersionsResult");
    xml.element("Name", &bucket.name);
    xml.element("Prefix", &encoded(&params, &params.prefix));
    xml.element("KeyMarker", &encoded(&params, &key_marker));
    xml.element("VersionIdMarker", &version_marker);
    if page.is_truncated {
        if let Some(next) = &page.next_after {
            xml.element("NextKeyMarker", &encoded(&params, next));
            xml.element("NextVersionIdMarker", "null");
        }
    }
    xml.element("MaxKeys", &params.max_keys.to_string());
    if let Some(d) = &params.delimiter {
        xml.element("Delimiter", &encoded(&params, d));
    }
    if params.url_encoding {
        xml.element("EncodingType", "url");
    }
    xml.element("IsTruncated", bool_text(page.is_truncated));
    for row in &page.objects {
        xml.open("Version");
        xml.element("Key", &encoded(&params, &row.key));
        xml.element("VersionId", "null");
        xml.element("IsLatest", "true");
        xml.element(
            "LastModified",
            &clock::format_iso8601_millis(row.last_modified_ms),
        );
        xml.element("ETag", &format!("\"{}\"", row.etag));
        xml.element("Size", &row.size.to_string());
        write_owner(ctx, &mut xml, "Owner", &row.owner_id);
        xml.element("StorageClass", &row.storage_class);
        xml.close("Version");
    }
    for prefix in &page.common_prefixes {
        xml.open("CommonPrefixes");
        xml.element("Prefix", &encoded(&params, prefix));
        xml.close("CommonPrefixes");
    }
    xml.close("ListVersionsResult");
    send_xml(ctx, xml).await
}

/// GetBucketVersioning: versioning was never enabled, which S3 answers with an
/// empty configuration.
pub async fn get_bucket_versioning(ctx: &mut RequestContext<'_>) -> Result<(), S3Error> {
    require_bucket(ctx).await?;
    let mut xml = XmlWriter::new();
    xml.root("VersioningConfiguration");
    xml.close("VersioningConfiguration");
    send_xml(ctx, xml).await
}

/// `<element><ID/><DisplayName/></element>` for an owner; the display name is known
/// for the requester, and is the id itself for anyone else.
pub(crate) fn write_owner(
    ctx: &RequestContext<'_>,
    xml: &mut XmlWriter,
    element: &str,
    owner_id: &str,
) {
    xml.open(element);
    xml.element("ID", owner_id);
    let display = if owner_id == ctx.principal.owner_id() {
        ctx.principal.display_name()
    } else {
        owner_id
    };
    xml.element("DisplayName", display);
    xml.close(element);
}
