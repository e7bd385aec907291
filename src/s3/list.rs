//! ListObjects (v1) and ListObjectsV2: parameters parsed and checked here, the
//! walk itself done by the metadata thread, the XML written here.

use crate::auth::uri_encode;
use crate::checksum::base64_encode;
use crate::clock;
use crate::error::meta_error;
use crate::error::S3Error;
use crate::meta::{BucketRow, ListPage, ListQuery, ObjectRow, VersionQuery, VersionSel};
use crate::s3::context::{xml_reply, RequestContext, S3Response};
use crate::s3::operation::{ListParams, ListV2Start};
use crate::s3::xml::XmlWriter;

async fn fetch(
    ctx: &RequestContext<'_, '_>,
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

pub(crate) async fn list_objects(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
    params: ListParams,
    marker: String,
) -> Result<S3Response, S3Error> {
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
    Ok(xml_reply(xml))
}

pub(crate) async fn list_objects_v2(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
    params: ListParams,
    start: ListV2Start,
) -> Result<S3Response, S3Error> {
    let ListV2Start {
        token,
        start_after,
        fetch_owner,
    } = start;
    let after = match &token {
        Some((_, key)) => Some(key.clone()),
        None => start_after.clone(),
    };
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
    if let Some((token, _)) = &token {
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
    Ok(xml_reply(xml))
}

fn bool_text(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}

fn write_entries(
    ctx: &RequestContext<'_, '_>,
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
    ctx: &RequestContext<'_, '_>,
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
        ctx.write_owner(xml, "Owner", &row.owner_id);
    }
    xml.element("StorageClass", &row.storage_class);
    xml.close("Contents");
}

/// ListObjectVersions: every version and delete marker, newest first within a key,
/// paged by key and version id markers. In a bucket that never had versioning on
/// every object is its own `null` version, the latest.
pub(crate) async fn list_object_versions(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
    params: ListParams,
    key_marker: String,
    version_marker: String,
    version_after: Option<VersionSel>,
) -> Result<S3Response, S3Error> {
    let query = VersionQuery {
        list: ListQuery {
            bucket: bucket.name.clone(),
            prefix: params.prefix.clone(),
            delimiter: params.delimiter.clone(),
            after: (!key_marker.is_empty()).then(|| key_marker.clone()),
            max_keys: params.max_keys,
        },
        version_after,
    };
    let page = ctx
        .state
        .meta
        .list_versions(query)
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    let mut xml = XmlWriter::new();
    xml.root("ListVersionsResult");
    xml.element("Name", &bucket.name);
    xml.element("Prefix", &encoded(&params, &params.prefix));
    xml.element("KeyMarker", &encoded(&params, &key_marker));
    xml.element("VersionIdMarker", &version_marker);
    if page.is_truncated {
        if let Some(next) = &page.next_key {
            xml.element("NextKeyMarker", &encoded(&params, next));
        }
        if let Some(next) = &page.next_version {
            xml.element("NextVersionIdMarker", next);
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
    for entry in &page.entries {
        let row = &entry.row;
        let element = if row.delete_marker {
            "DeleteMarker"
        } else {
            "Version"
        };
        xml.open(element);
        xml.element("Key", &encoded(&params, &row.key));
        xml.element("VersionId", row.version_label());
        xml.element("IsLatest", bool_text(entry.is_latest));
        xml.element(
            "LastModified",
            &clock::format_iso8601_millis(row.last_modified_ms),
        );
        if !row.delete_marker {
            xml.element("ETag", &format!("\"{}\"", row.etag));
            if let Some(alg) = &row.checksum_algorithm {
                xml.element("ChecksumAlgorithm", alg);
            }
            xml.element("Size", &row.size.to_string());
        }
        ctx.write_owner(&mut xml, "Owner", &row.owner_id);
        if !row.delete_marker {
            xml.element("StorageClass", &row.storage_class);
        }
        xml.close(element);
    }
    for prefix in &page.common_prefixes {
        xml.open("CommonPrefixes");
        xml.element("Prefix", &encoded(&params, prefix));
        xml.close("CommonPrefixes");
    }
    xml.close("ListVersionsResult");
    Ok(xml_reply(xml))
}
