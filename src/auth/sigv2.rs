//! AWS Signature Version 2 for S3 (the legacy "HMAC-SHA1" scheme the aws CLI v1's
//! `s3 presign`, older SDKs and many backup tools still use): the header form
//! (`Authorization: AWS <key>:<signature>`) and the presigned query form
//! (`AWSAccessKeyId`, `Expires`, `Signature`).
//!
//! The string to sign is the method, Content-MD5, Content-Type, the date (or, for a
//! presigned URL, its expiry), every `x-amz-*` header canonicalised, and the
//! resource: so every `x-amz-*` header a request carries is signed by construction,
//! and a header added afterwards breaks the signature.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::auth::verify::RequestParts;
use crate::auth::SecretKey;
use crate::clock;
use crate::error::{ErrorCode, S3Error};
use crate::limits;

/// Query parameters that are part of the resource signed (S3's sub-resources and the
/// response overrides), as clients (botocore's list) sign them.
const SIGNED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// A SigV2 signature, as the request carries it.
#[derive(Debug, Clone)]
pub struct V2Auth {
    pub(crate) access_key: String,
    signature: String,
    /// The presigned form: the `Expires` Unix time, which stands for the date.
    expires: Option<i64>,
}

/// `Authorization: AWS <access key>:<base64 signature>`.
pub(crate) fn parse_header(value: &str) -> Result<V2Auth, S3Error> {
    let malformed = || {
        S3Error::with_message(
            ErrorCode::InvalidArgument,
            "AWS authorization header is invalid. Expected AwsAccessKeyId:signature",
        )
        .field("ArgumentName", "Authorization")
    };
    let rest = value.trim().strip_prefix("AWS ").ok_or_else(malformed)?;
    let (access_key, signature) = rest.trim().rsplit_once(':').ok_or_else(malformed)?;
    if access_key.is_empty() || signature.is_empty() {
        return Err(malformed());
    }
    Ok(V2Auth {
        access_key: access_key.to_string(),
        signature: signature.to_string(),
        expires: None,
    })
}

/// `?AWSAccessKeyId=...&Expires=...&Signature=...`.
pub(crate) fn parse_query(
    access_key: String,
    signature: Option<String>,
    expires: Option<String>,
) -> Result<V2Auth, S3Error> {
    let error = |message: &str| S3Error::with_message(ErrorCode::AccessDenied, message);
    let signature = signature.ok_or_else(|| error("Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"))?;
    let expires = expires
        .ok_or_else(|| error("Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"))?
        .parse::<i64>()
        .map_err(|_| error("Invalid date (should be seconds since epoch)"))?;
    Ok(V2Auth {
        access_key,
        signature,
        expires: Some(expires),
    })
}

/// Verifies a SigV2 signature: the date within the allowed skew (or the presigned
/// URL not expired, and not good for more than a week), then the HMAC-SHA1, compared
/// in constant time.
pub(crate) fn verify(
    auth: &V2Auth,
    parts: &RequestParts,
    secret: &SecretKey,
    now_unix: i64,
) -> Result<(), S3Error> {
    let date_line = match auth.expires {
        Some(expires) => {
            if now_unix > expires {
                return Err(
                    S3Error::with_message(ErrorCode::AccessDenied, "Request has expired")
                        // Saturating: any i64 is a valid Expires, so `* 1000` could overflow.
                        .field(
                            "Expires",
                            clock::format_iso8601_millis(expires.saturating_mul(1000)),
                        )
                        .field("ServerTime", clock::format_iso8601_millis(now_unix * 1000)),
                );
            }
            if expires > now_unix + limits::PRESIGNED_EXPIRES_SECS_MAX {
                return Err(S3Error::with_message(
                    ErrorCode::AccessDenied,
                    "A presigned URL may be valid for a week at most.",
                ));
            }
            expires.to_string()
        }
        None => {
            let stamp = parts
                .header("x-amz-date")
                .or_else(|| parts.header("date"))
                .and_then(parse_date)
                .ok_or_else(|| {
                    S3Error::with_message(
                        ErrorCode::AccessDenied,
                        "AWS authentication requires a valid Date or x-amz-date header",
                    )
                })?;
            if (now_unix - stamp).abs() > limits::CLOCK_SKEW_SECS_MAX {
                return Err(S3Error::new(ErrorCode::RequestTimeTooSkewed)
                    .field("ServerTime", clock::format_iso8601_millis(now_unix * 1000))
                    .field(
                        "MaxAllowedSkewMilliseconds",
                        (limits::CLOCK_SKEW_SECS_MAX * 1000).to_string(),
                    ));
            }
            // With x-amz-date present, the Date line is empty: the date is signed
            // among the x-amz-* headers.
            if parts.header("x-amz-date").is_some() {
                String::new()
            } else {
                parts.header("date").unwrap_or_default().to_string()
            }
        }
    };
    let string_to_sign = string_to_sign(parts, &date_line)?;
    let expected = base64::engine::general_purpose::STANDARD
        .decode(auth.signature.trim())
        .map_err(|_| signature_mismatch(&string_to_sign))?;
    let matches = |text: &str| {
        <Hmac<Sha1> as KeyInit>::new_from_slice(secret.expose().as_bytes())
            .map(|mut mac| {
                mac.update(text.as_bytes());
                mac.verify_slice(&expected).is_ok()
            })
            .unwrap_or(false)
    };
    if matches(&string_to_sign) {
        return Ok(());
    }
    // A path-style bucket request (`/bucket`) is signed as `/bucket/` by most clients
    // (the bucket's resource, as a virtual-hosted `/` is); accept that form too.
    // The slashed form is the string to sign of the same request with the path
    // `/bucket/`: built, not patched into the first one, whose last line need not be
    // the resource (a sub-resource value may decode to a newline).
    let bucket_only = parts.host_bucket.is_none()
        && parts
            .raw_path
            .strip_prefix('/')
            .is_some_and(|bucket| !bucket.is_empty() && !bucket.contains('/'));
    if bucket_only {
        let slashed_path = format!("{}/", parts.raw_path);
        let slashed = RequestParts {
            raw_path: &slashed_path,
            ..*parts
        };
        if matches(&self::string_to_sign(&slashed, &date_line)?) {
            return Ok(());
        }
    }
    Err(signature_mismatch(&string_to_sign))
}

/// An HTTP date; SigV2 clients also write the zone as `+0000` (the S3 examples do).
fn parse_date(text: &str) -> Option<i64> {
    match text.trim().strip_suffix("+0000") {
        Some(head) => clock::parse_http_date(&format!("{}GMT", head)),
        None => clock::parse_http_date(text),
    }
}

fn signature_mismatch(string_to_sign: &str) -> S3Error {
    log::debug!("SigV2 signature mismatch; string to sign:\n{string_to_sign}");
    S3Error::new(ErrorCode::SignatureDoesNotMatch).field("StringToSign", string_to_sign)
}

/// The string a SigV2 signature covers.
pub(crate) fn string_to_sign(parts: &RequestParts, date_line: &str) -> Result<String, S3Error> {
    let mut out = String::with_capacity(256);
    out.push_str(parts.method);
    out.push('\n');
    out.push_str(parts.header("content-md5").unwrap_or_default());
    out.push('\n');
    out.push_str(parts.header("content-type").unwrap_or_default());
    out.push('\n');
    out.push_str(date_line);
    out.push('\n');
    // Every x-amz-* header, lowercased, sorted, values of repeats joined by commas.
    let mut amz: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("x-amz-"))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    amz.sort_by(|a, b| a.0.cmp(b.0));
    let mut previous: Option<&str> = None;
    for (name, value) in amz {
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        if previous == Some(name) {
            out.pop();
            out.push(',');
        } else {
            out.push_str(name);
            out.push(':');
        }
        out.push_str(&value);
        out.push('\n');
        previous = Some(name);
    }
    if let Some(bucket) = parts.host_bucket {
        out.push('/');
        out.push_str(bucket);
    }
    out.push_str(if parts.raw_path.is_empty() {
        "/"
    } else {
        parts.raw_path
    });
    let mut subresources: Vec<(String, Option<String>)> = Vec::new();
    for part in parts.raw_query.split('&').filter(|p| !p.is_empty()) {
        // `uploads=` and `uploads` name the same sub-resource; both sign as the bare name.
        let (name, value) = match part.split_once('=') {
            Some((n, v)) if !v.is_empty() => (n, Some(v)),
            Some((n, _)) => (n, None),
            None => (part, None),
        };
        if SIGNED_SUBRESOURCES.contains(&name) {
            let value = match value {
                Some(v) => Some(
                    crate::auth::percent_decode_str(v)
                        .map(std::borrow::Cow::into_owned)
                        .ok_or_else(|| S3Error::new(ErrorCode::InvalidURI))?,
                ),
                None => None,
            };
            subresources.push((name.to_string(), value));
        }
    }
    subresources.sort();
    for (index, (name, value)) in subresources.iter().enumerate() {
        out.push(if index == 0 { '?' } else { '&' });
        out.push_str(name);
        if let Some(value) = value {
            out.push('=');
            out.push_str(value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(
        method: &'a str,
        path: &'a str,
        query: &'a str,
        headers: &'a [(String, String)],
        host_bucket: Option<&'a str>,
    ) -> RequestParts<'a> {
        RequestParts {
            method,
            raw_path: path,
            raw_query: query,
            headers,
            has_body: false,
            host_bucket,
        }
    }

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
            .collect()
    }

    /// The examples of the S3 developer guide ("Signing and authenticating REST
    /// requests"), with their published signatures.
    #[test]
    fn the_documentation_examples() {
        let secret = SecretKey::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into());
        let now = parse_date("Tue, 27 Mar 2007 19:36:42 +0000").unwrap();
        let get = headers(&[
            ("Host", "awsexamplebucket1.us-west-1.s3.amazonaws.com"),
            ("Date", "Tue, 27 Mar 2007 19:36:42 +0000"),
        ]);
        let p = parts(
            "GET",
            "/photos/puppy.jpg",
            "",
            &get,
            Some("awsexamplebucket1"),
        );
        assert_eq!(
            string_to_sign(&p, "Tue, 27 Mar 2007 19:36:42 +0000").unwrap(),
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
        let auth = parse_header("AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=").unwrap();
        assert!(verify(&auth, &p, &secret, now).is_ok());
        let wrong = SecretKey::new("nope".into());
        assert_eq!(
            verify(&auth, &p, &wrong, now).unwrap_err().code,
            ErrorCode::SignatureDoesNotMatch
        );
        // Query-string authentication: the expiry stands for the date.
        let q = headers(&[("Host", "johnsmith.s3.amazonaws.com")]);
        let p = parts(
            "GET",
            "/photos/puppy.jpg",
            "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620",
            &q,
            Some("johnsmith"),
        );
        let auth = parse_query(
            "AKIAIOSFODNN7EXAMPLE".into(),
            Some("NpgCjnDzrM+WFzoENXmpNDUsSn8=".into()),
            Some("1175139620".into()),
        )
        .unwrap();
        assert!(verify(&auth, &p, &secret, 1175139620 - 60).is_ok());
        assert_eq!(
            verify(&auth, &p, &secret, 1175139621).unwrap_err().message,
            "Request has expired"
        );
    }

    #[test]
    fn amz_headers_and_subresources_are_signed() {
        let list = headers(&[
            ("X-Amz-Meta-B", "two"),
            ("x-amz-acl", "public-read"),
            ("X-Amz-Meta-B", "  spaced   out "),
            ("Content-Type", "text/plain"),
        ]);
        let p = parts(
            "PUT",
            "/b/k",
            "uploadId=u%20x&partNumber=2&other=1",
            &list,
            None,
        );
        assert_eq!(
            string_to_sign(&p, "D").unwrap(),
            "PUT\n\ntext/plain\nD\nx-amz-acl:public-read\nx-amz-meta-b:two,spaced out\n/b/k?partNumber=2&uploadId=u x"
        );
    }

    #[test]
    fn a_newline_in_a_subresource_value_is_no_resource_boundary() {
        // The `/bucket/` retry inserted its '/' after the last newline of the string to
        // sign: past its end (a panic, so an abort) when `acl=%0A...` put one there.
        let secret = SecretKey::new("secret".into());
        let date = headers(&[("Date", "Tue, 27 Mar 2007 19:36:42 +0000")]);
        let now = parse_date("Tue, 27 Mar 2007 19:36:42 +0000").unwrap();
        let auth = parse_header("AWS ak:c2lnbmF0dXJl").unwrap();
        for query in ["acl=%0Ax", "acl=%0A", "acl=x%0A%0Ay&uploadId=%0A"] {
            let p = parts("GET", "/bucket", query, &date, None);
            let error = verify(&auth, &p, &secret, now).unwrap_err();
            assert_eq!(error.code, ErrorCode::SignatureDoesNotMatch, "{query}");
        }
        // A path that does not start with '/' is no bucket path (and no slicing panic).
        let p = parts("GET", "\u{e9}t\u{e9}", "", &date, None);
        assert!(verify(&auth, &p, &secret, now).is_err());
        // A bucket request signed as `/bucket/`, sub-resource and all, still verifies.
        let date_line = "Tue, 27 Mar 2007 19:36:42 +0000";
        for query in ["acl", "acl=%0Ax"] {
            let signed = string_to_sign(&parts("GET", "/bucket/", query, &date, None), date_line);
            let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(b"secret").unwrap();
            mac.update(signed.unwrap().as_bytes());
            let signature =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            let auth = parse_header(&format!("AWS ak:{signature}")).unwrap();
            let p = parts("GET", "/bucket", query, &date, None);
            assert!(verify(&auth, &p, &secret, now).is_ok(), "{query}");
        }
    }

    #[test]
    fn an_expiry_far_in_the_past_is_expired() {
        // Found by fuzzing: the error's Expires field multiplied it by 1000 unchecked.
        let secret = SecretKey::new("secret".into());
        let none = headers(&[]);
        let p = parts("GET", "/b/k", "", &none, None);
        for expires in ["-9223372036854775808", "-9999999999999999"] {
            let auth = parse_query("ak".into(), Some("c2ln".into()), Some(expires.into())).unwrap();
            let error = verify(&auth, &p, &secret, 1_369_353_600).unwrap_err();
            assert_eq!(error.code, ErrorCode::AccessDenied, "{expires}");
        }
    }

    #[test]
    fn an_empty_subresource_value_signs_as_the_bare_name() {
        let none = headers(&[]);
        for query in ["uploads", "uploads="] {
            let p = parts("POST", "/b/k", query, &none, None);
            assert_eq!(
                string_to_sign(&p, "D").unwrap(),
                "POST\n\n\nD\n/b/k?uploads"
            );
        }
    }
}
