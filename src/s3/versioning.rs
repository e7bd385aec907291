//! Put/GetBucketVersioning: the bucket's versioning state, which the metadata thread
//! reads in the same transaction as every write it shapes.

use crate::error::{meta_error, ErrorCode, S3Error};
use crate::http::ResponseHead;
use crate::limits;
use crate::meta::{BucketRow, Versioning};
use crate::s3::config_xml::parse_config;
use crate::s3::context::{reply, xml_reply, RequestContext, S3Response};
use crate::s3::xml::XmlWriter;

/// GetBucketVersioning: `Status` once versioning was ever on; an empty configuration
/// before.
pub(crate) fn get_bucket_versioning(bucket: &BucketRow) -> S3Response {
    let mut xml = XmlWriter::new();
    xml.root("VersioningConfiguration");
    if let Some(status) = bucket.versioning.status() {
        xml.element("Status", status);
    }
    xml.close("VersioningConfiguration");
    xml_reply(xml)
}

/// The state a VersioningConfiguration asks for. `Status` must be `Enabled` or
/// `Suspended` (there is no way back to unversioned); MFA delete is not served.
pub(crate) fn requested_versioning(body: &[u8]) -> Result<Versioning, S3Error> {
    let root = parse_config(body, "VersioningConfiguration")?;
    let illegal = || S3Error::new(ErrorCode::IllegalVersioningConfigurationException);
    if root.child_text("MfaDelete") == Some("Enabled") {
        return Err(S3Error::with_message(
            ErrorCode::NotImplemented,
            "MFA delete is not implemented by this server.",
        ));
    }
    match root.child_text("MfaDelete") {
        None | Some("Disabled") => {}
        Some(_) => return Err(illegal()),
    }
    match Versioning::from_status(root.child_text("Status")) {
        Some(Versioning::Unversioned) | None => Err(illegal()),
        Some(versioning) => Ok(versioning),
    }
}

/// PutBucketVersioning: by the bucket's owner.
pub(crate) async fn put_bucket_versioning(
    ctx: &mut RequestContext<'_, '_>,
    bucket: &BucketRow,
) -> Result<S3Response, S3Error> {
    let body = ctx.read_small_body(limits::XML_BODY_BYTES_MAX).await?;
    let versioning = requested_versioning(&body)?;
    ctx.state
        .meta
        .set_versioning(&bucket.name, versioning)
        .await
        .map_err(|e| meta_error(e, &bucket.name, None))?;
    Ok(reply(ResponseHead::new(200)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(inner: &str) -> Vec<u8> {
        format!("<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{inner}</VersioningConfiguration>").into_bytes()
    }

    #[test]
    fn configurations_follow_s3() {
        let ok = |inner: &str| requested_versioning(&doc(inner)).unwrap();
        assert_eq!(ok("<Status>Enabled</Status>"), Versioning::Enabled);
        assert_eq!(ok("<Status>Suspended</Status>"), Versioning::Suspended);
        assert_eq!(
            ok("<Status>Enabled</Status><MfaDelete>Disabled</MfaDelete>"),
            Versioning::Enabled
        );
        let code = |inner: &str| requested_versioning(&doc(inner)).unwrap_err().code;
        assert_eq!(code(""), ErrorCode::IllegalVersioningConfigurationException);
        assert_eq!(
            code("<Status>Off</Status>"),
            ErrorCode::IllegalVersioningConfigurationException
        );
        assert_eq!(
            code("<Status>Enabled</Status><MfaDelete>Enabled</MfaDelete>"),
            ErrorCode::NotImplemented
        );
        assert_eq!(
            requested_versioning(b"<Versioning/>").unwrap_err().code,
            ErrorCode::MalformedXML
        );
    }
}
