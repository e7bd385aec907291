//! Object lock, as S3 defines it: a bucket's configuration (on for good, with an
//! optional default retention), each version's retention (GOVERNANCE or COMPLIANCE,
//! until a date) and legal hold, set by PUT headers or by their own operations. The
//! rules that protect a version (no delete by version id while it is locked, no
//! shortening a retention in force) are checked by the metadata thread in the write's
//! own transaction, so they hold under concurrency; this module reads and writes the
//! documents and headers.

use crate::clock;
use crate::error::{meta_error, ErrorCode, S3Error};
use crate::http::{RequestHead, ResponseHead};
use crate::limits;
use crate::meta::{
    BucketRow, DefaultRetention, LockChange, LockConfig, MetaError, ObjectRow, Retention,
    RetentionMode, VersionSel,
};
use crate::s3::config_xml::parse_config;
use crate::s3::context::{reply, xml_reply, RequestContext, S3Response};
use crate::s3::xml::XmlWriter;

/// The retention and legal hold a PUT (or CreateMultipartUpload) asks for in its
/// `x-amz-object-lock-*` headers. A bucket without object lock refuses them.
pub(crate) fn requested_lock(
    head: &RequestHead,
    bucket: &BucketRow,
) -> Result<(Option<Retention>, Option<bool>), S3Error> {
    let mode = head.header("x-amz-object-lock-mode");
    let until = head.header("x-amz-object-lock-retain-until-date");
    let hold = head.header("x-amz-object-lock-legal-hold");
    if mode.is_none() && until.is_none() && hold.is_none() {
        return Ok((None, None));
    }
    missing_lock_configuration(bucket)?;
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(mode), Some(until)) => Some(Retention {
            mode: RetentionMode::from_name(mode).ok_or_else(|| {
                S3Error::with_message(ErrorCode::InvalidArgument, "Unknown wormMode directive.")
                    .field("ArgumentName", "x-amz-object-lock-mode")
                    .field("ArgumentValue", mode)
            })?,
            until_ms: future_date(until, "x-amz-object-lock-retain-until-date")?,
        }),
        _ => {
            return Err(S3Error::with_message(
                ErrorCode::InvalidArgument,
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be \
                 supplied",
            ))
        }
    };
    let legal_hold = hold.map(legal_hold_status).transpose()?;
    Ok((retention, legal_hold))
}

/// A retain-until date: ISO 8601, and in the future.
fn future_date(text: &str, name: &'static str) -> Result<i64, S3Error> {
    let until = clock::parse_iso8601_millis(text.trim()).ok_or_else(|| {
        S3Error::with_message(
            ErrorCode::InvalidArgument,
            "The retain until date must be provided in ISO 8601 format",
        )
        .field("ArgumentName", name)
        .field("ArgumentValue", text)
    })?;
    if until <= clock::now_unix_millis() {
        return Err(S3Error::with_message(
            ErrorCode::InvalidArgument,
            "The retain until date must be in the future!",
        )
        .field("ArgumentName", name)
        .field("ArgumentValue", text));
    }
    Ok(until)
}

fn legal_hold_status(text: &str) -> Result<bool, S3Error> {
    match text {
        "ON" => Ok(true),
        "OFF" => Ok(false),
        _ => Err(S3Error::with_message(
            ErrorCode::InvalidArgument,
            "Legal Hold must be either of 'ON' or 'OFF'",
        )
        .field("ArgumentName", "x-amz-object-lock-legal-hold")
        .field("ArgumentValue", text)),
    }
}

/// An upload to a bucket with object lock must carry an integrity check of its body
/// (Content-MD5 or an `x-amz-checksum-*` value, in a header or a trailer), as S3
/// requires.
pub(crate) fn require_integrity(head: &RequestHead, bucket: &BucketRow) -> Result<(), S3Error> {
    if bucket.object_lock.is_none() {
        return Ok(());
    }
    let checksum_name = |name: &str| {
        name.strip_prefix("x-amz-checksum-")
            .is_some_and(|alg| !matches!(alg, "mode" | "type" | "algorithm"))
    };
    let checked = head.header("content-md5").is_some()
        || head.headers.iter().any(|(name, _)| checksum_name(name))
        || head
            .header("x-amz-trailer")
            .is_some_and(|t| t.split(',').any(|n| checksum_name(n.trim())));
    if checked {
        return Ok(());
    }
    Err(S3Error::with_message(
        ErrorCode::InvalidRequest,
        "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with \
         Object Lock parameters",
    ))
}

/// `x-amz-bypass-governance-retention: true`, honoured for the bucket's owner only.
pub(crate) fn bypass_governance(ctx: &RequestContext<'_, '_>, bucket: &BucketRow) -> bool {
    ctx.head
        .header("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        && ctx.principal.requester() == Some(bucket.owner_id.as_str())
}

/// The object lock headers of a GET or HEAD.
pub(crate) fn add_lock_headers(row: &ObjectRow, head: &mut ResponseHead) {
    if let Some(retention) = row.retention {
        head.header("x-amz-object-lock-mode", retention.mode.as_str());
        head.header(
            "x-amz-object-lock-retain-until-date",
            clock::format_iso8601_millis(retention.until_ms),
        );
    }
    if let Some(on) = row.legal_hold {
        head.header(
            "x-amz-object-lock-legal-hold",
            if on { "ON" } else { "OFF" },
        );
    }
}

/// GetObjectLockConfiguration.
pub(crate) fn get_object_lock_configuration(bucket: &BucketRow) -> Result<S3Response, S3Error> {
    let lock = bucket.object_lock.ok_or_else(|| {
        S3Error::new(ErrorCode::ObjectLockConfigurationNotFoundError)
            .field("BucketName", bucket.name.clone())
    })?;
    let mut xml = XmlWriter::new();
    xml.root("ObjectLockConfiguration");
    xml.element("ObjectLockEnabled", "Enabled");
    if let Some(default) = lock.default_retention {
        xml.open("Rule");
        xml.open("DefaultRetention");
        xml.element("Mode", default.mode.as_str());
        if let Some(days) = default.days {
            xml.element("Days", &days.to_string());
        }
        if let Some(years) = default.years {
            xml.element("Years", &years.to_string());
        }
        xml.close("DefaultRetention");
        xml.close("Rule");
    }
    xml.close("ObjectLockConfiguration");
    Ok(xml_reply(xml))
}

/// The configuration an ObjectLockConfiguration document asks for.
pub(crate) fn requested_lock_config(body: &[u8]) -> Result<LockConfig, S3Error> {
    let root = parse_config(body, "ObjectLockConfiguration")?;
    let malformed = || S3Error::new(ErrorCode::MalformedXML);
    if root.child_text("ObjectLockEnabled") != Some("Enabled") {
        return Err(malformed());
    }
    let Some(rule) = root.child("Rule") else {
        return Ok(LockConfig::default());
    };
    let default = rule.child("DefaultRetention").ok_or_else(malformed)?;
    let mode = default
        .child_text("Mode")
        .and_then(RetentionMode::from_name)
        .ok_or_else(malformed)?;
    let period = |name: &str, max: u32| -> Result<Option<u32>, S3Error> {
        let Some(text) = default.child_text(name) else {
            return Ok(None);
        };
        match text.parse::<i64>() {
            Ok(n) if n > 0 && n <= i64::from(max) => Ok(Some(n as u32)),
            Ok(_) => Err(S3Error::with_message(
                ErrorCode::InvalidArgument,
                "Default retention period must be a positive integer value.",
            )),
            Err(_) => Err(malformed()),
        }
    };
    let days = period("Days", limits::LOCK_RETENTION_DAYS_MAX)?;
    let years = period("Years", limits::LOCK_RETENTION_YEARS_MAX)?;
    if days.is_some() == years.is_some() {
        return Err(malformed());
    }
    Ok(LockConfig {
        default_retention: Some(DefaultRetention { mode, days, years }),
    })
}

/// PutObjectLockConfiguration: by the bucket's owner, on a bucket with versioning
/// enabled (which object lock then keeps enabled).
pub(crate) async fn put_object_lock_configuration(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
) -> Result<S3Response, S3Error> {
    let body = ctx.read_small_body(limits::XML_BODY_BYTES_MAX).await?;
    let config = requested_lock_config(&body)?;
    ctx.state
        .meta
        .set_lock_config(&bucket.name, config)
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    Ok(reply(ResponseHead::new(200)))
}

/// InvalidRequest for an object lock request to a bucket without object lock (the
/// metadata thread's answer too, should the bucket's row have changed meanwhile).
fn missing_lock_configuration(bucket: &BucketRow) -> Result<(), S3Error> {
    match bucket.object_lock {
        Some(_) => Ok(()),
        None => Err(meta_error(MetaError::NoObjectLock, &bucket.name, None)),
    }
}

/// GetObjectRetention.
pub(crate) fn get_object_retention(
    bucket: &BucketRow,
    row: &ObjectRow,
) -> Result<S3Response, S3Error> {
    missing_lock_configuration(bucket)?;
    let retention = row
        .retention
        .ok_or_else(|| S3Error::new(ErrorCode::NoSuchObjectLockConfiguration))?;
    let mut xml = XmlWriter::new();
    xml.root("Retention");
    xml.element("Mode", retention.mode.as_str());
    xml.element(
        "RetainUntilDate",
        &clock::format_iso8601_millis(retention.until_ms),
    );
    xml.close("Retention");
    Ok(version_reply(xml, row))
}

/// GetObjectLegalHold.
pub(crate) fn get_object_legal_hold(
    bucket: &BucketRow,
    row: &ObjectRow,
) -> Result<S3Response, S3Error> {
    missing_lock_configuration(bucket)?;
    let on = row
        .legal_hold
        .ok_or_else(|| S3Error::new(ErrorCode::NoSuchObjectLockConfiguration))?;
    let mut xml = XmlWriter::new();
    xml.root("LegalHold");
    xml.element("Status", if on { "ON" } else { "OFF" });
    xml.close("LegalHold");
    Ok(version_reply(xml, row))
}

fn version_reply(xml: XmlWriter, row: &ObjectRow) -> S3Response {
    let mut response = xml_reply(xml);
    if let Some(version_id) = &row.version_id {
        response.head.header("x-amz-version-id", version_id);
    }
    response
}

/// The retention a Retention document asks for (none: remove it).
pub(crate) fn requested_retention(body: &[u8]) -> Result<Option<Retention>, S3Error> {
    let root = parse_config(body, "Retention")?;
    let malformed = || S3Error::new(ErrorCode::MalformedXML);
    match (root.child_text("Mode"), root.child_text("RetainUntilDate")) {
        (None, None) => Ok(None),
        (Some(mode), Some(until)) => Ok(Some(Retention {
            mode: RetentionMode::from_name(mode).ok_or_else(malformed)?,
            until_ms: future_date(until, "RetainUntilDate")?,
        })),
        _ => Err(malformed()),
    }
}

/// PutObjectRetention.
pub(crate) async fn put_object_retention(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
    row: &ObjectRow,
    version: Option<VersionSel>,
) -> Result<S3Response, S3Error> {
    missing_lock_configuration(bucket)?;
    let body = ctx.read_small_body(limits::XML_BODY_BYTES_MAX).await?;
    let change = LockChange::Retention {
        retention: requested_retention(&body)?,
        bypass_governance: bypass_governance(ctx, bucket),
    };
    set_lock(ctx, bucket, row, version, change).await
}

/// PutObjectLegalHold.
pub(crate) async fn put_object_legal_hold(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
    row: &ObjectRow,
    version: Option<VersionSel>,
) -> Result<S3Response, S3Error> {
    missing_lock_configuration(bucket)?;
    let body = ctx.read_small_body(limits::XML_BODY_BYTES_MAX).await?;
    let root = parse_config(&body, "LegalHold")?;
    let status = root
        .child_text("Status")
        .ok_or_else(|| S3Error::new(ErrorCode::MalformedXML))?;
    let on = legal_hold_status(status).map_err(|_| S3Error::new(ErrorCode::MalformedXML))?;
    set_lock(ctx, bucket, row, version, LockChange::LegalHold(on)).await
}

async fn set_lock(
    ctx: &RequestContext<'_, '_>,
    bucket: &BucketRow,
    row: &ObjectRow,
    version: Option<VersionSel>,
    change: LockChange,
) -> Result<S3Response, S3Error> {
    ctx.state
        .meta
        .set_object_lock(&bucket.name, &row.key, version, change)
        .await
        .map_err(|e| meta_error(e, &bucket.name, Some(&row.key)))?;
    let mut head = ResponseHead::new(200);
    if let Some(version_id) = &row.version_id {
        head.header("x-amz-version-id", version_id);
    }
    Ok(reply(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_configurations_follow_s3() {
        let doc = |inner: &str| {
            format!("<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>{inner}</ObjectLockConfiguration>")
        };
        assert_eq!(
            requested_lock_config(doc("").as_bytes()).unwrap(),
            LockConfig::default()
        );
        let rule = |inner: &str| {
            doc(&format!(
                "<Rule><DefaultRetention>{inner}</DefaultRetention></Rule>"
            ))
        };
        assert_eq!(
            requested_lock_config(rule("<Mode>GOVERNANCE</Mode><Days>3</Days>").as_bytes())
                .unwrap(),
            LockConfig {
                default_retention: Some(DefaultRetention {
                    mode: RetentionMode::Governance,
                    days: Some(3),
                    years: None
                })
            }
        );
        let code = |text: String| requested_lock_config(text.as_bytes()).unwrap_err().code;
        assert_eq!(
            code(rule("<Mode>COMPLIANCE</Mode><Days>0</Days>")),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(rule(
                "<Mode>COMPLIANCE</Mode><Days>1</Days><Years>1</Years>"
            )),
            ErrorCode::MalformedXML
        );
        assert_eq!(
            code(rule("<Mode>OTHER</Mode><Days>1</Days>")),
            ErrorCode::MalformedXML
        );
        assert_eq!(
            code(rule("<Mode>COMPLIANCE</Mode>")),
            ErrorCode::MalformedXML
        );
        assert_eq!(
            code("<ObjectLockConfiguration/>".to_string()),
            ErrorCode::MalformedXML
        );
    }

    #[test]
    fn retention_documents() {
        assert_eq!(requested_retention(b"<Retention/>").unwrap(), None);
        let future = clock::format_iso8601_millis(clock::now_unix_millis() + 86_400_000);
        let doc = format!("<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>{future}</RetainUntilDate></Retention>");
        let retention = requested_retention(doc.as_bytes()).unwrap().unwrap();
        assert_eq!(retention.mode, RetentionMode::Compliance);
        let past = "<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>2001-01-01T00:00:00Z</RetainUntilDate></Retention>";
        assert_eq!(
            requested_retention(past.as_bytes()).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
}
