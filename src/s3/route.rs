//! Routing: (method, host, path, query) to one `Operation`. Handlers never look at
//! the raw query again; everything they need is parsed here. Written as plain
//! matches so that `grep` finds every route.

use crate::auth::percent_decode;
use crate::limits;
use crate::s3::error::{ErrorCode, S3Error};

/// The decoded query string: names and values percent-decoded, in request order.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string; a bad escape or non-UTF-8 is `InvalidArgument`.
    pub fn parse(raw: &str) -> Result<Query, S3Error> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode_component(name)?, decode_component(value)?));
        }
        Ok(Query { pairs })
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

fn decode_component(raw: &str) -> Result<String, S3Error> {
    let bytes = percent_decode(raw).ok_or_else(|| {
        S3Error::with_message(
            ErrorCode::InvalidArgument,
            "Invalid percent-encoding in query",
        )
    })?;
    String::from_utf8(bytes)
        .map_err(|_| S3Error::with_message(ErrorCode::InvalidArgument, "Query is not UTF-8"))
}

/// Where a request points: an optional bucket and an optional key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: Option<String>,
    pub key: Option<String>,
}

/// Splits the request into bucket and key, virtual-hosted style when the Host is
/// `<bucket>.<domain>`, path style otherwise. The key is percent-decoded and
/// never normalised: `a//b` and `../x` are keys like any other.
pub fn resolve_target(
    host: Option<&str>,
    raw_path: &str,
    domain: Option<&str>,
) -> Result<Target, S3Error> {
    let path = percent_decode(raw_path)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            S3Error::with_message(ErrorCode::InvalidURI, "Couldn't parse the specified URI.")
        })?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let host_bucket = host.and_then(|h| virtual_host_bucket(h, domain?));
    let (bucket, key) = match host_bucket {
        Some(bucket) => (Some(bucket), path),
        None => match path.split_once('/') {
            Some((bucket, key)) => (Some(bucket.to_string()), key),
            None if path.is_empty() => (None, ""),
            None => (Some(path.to_string()), ""),
        },
    };
    let key = if key.is_empty() {
        None
    } else {
        Some(key.to_string())
    };
    if let Some(k) = &key {
        if k.len() > limits::KEY_BYTES_MAX {
            return Err(S3Error::new(ErrorCode::KeyTooLongError)
                .field("Size", k.len().to_string())
                .field("MaxSizeAllowed", limits::KEY_BYTES_MAX.to_string()));
        }
    }
    Ok(Target { bucket, key })
}

/// The bucket named by a `<bucket>.<domain>[:port]` Host header, if it is one.
fn virtual_host_bucket(host: &str, domain: &str) -> Option<String> {
    let name = strip_port(host).to_ascii_lowercase();
    let bucket = name.strip_suffix(domain)?.strip_suffix('.')?;
    if bucket.is_empty() {
        None
    } else {
        Some(bucket.to_string())
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: "[::1]:9000".
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

/// Every operation the router knows. Operations that a later issue implements
/// are routed to `NotImplemented` with their AWS name so the log says what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    GetBucketLocation,
    ListObjects,
    ListObjectsV2,
    PutObject,
    GetObject,
    HeadObject,
    DeleteObject,
    DeleteObjects,
    CopyObject,
    ListObjectVersions,
    GetBucketVersioning,
    GetBucketAcl,
    PutBucketAcl,
    GetObjectAcl,
    PutObjectAcl,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    ListMultipartUploads,
    GetObjectAttributes,
    /// Known to S3, not served yet: answers 501 NotImplemented.
    NotImplemented(&'static str),
}

impl Operation {
    /// The AWS name of the operation, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Operation::ListBuckets => "ListBuckets",
            Operation::CreateBucket => "CreateBucket",
            Operation::DeleteBucket => "DeleteBucket",
            Operation::HeadBucket => "HeadBucket",
            Operation::GetBucketLocation => "GetBucketLocation",
            Operation::ListObjects => "ListObjects",
            Operation::ListObjectsV2 => "ListObjectsV2",
            Operation::PutObject => "PutObject",
            Operation::GetObject => "GetObject",
            Operation::HeadObject => "HeadObject",
            Operation::DeleteObject => "DeleteObject",
            Operation::DeleteObjects => "DeleteObjects",
            Operation::CopyObject => "CopyObject",
            Operation::ListObjectVersions => "ListObjectVersions",
            Operation::GetBucketVersioning => "GetBucketVersioning",
            Operation::GetBucketAcl => "GetBucketAcl",
            Operation::PutBucketAcl => "PutBucketAcl",
            Operation::GetObjectAcl => "GetObjectAcl",
            Operation::PutObjectAcl => "PutObjectAcl",
            Operation::CreateMultipartUpload => "CreateMultipartUpload",
            Operation::UploadPart => "UploadPart",
            Operation::UploadPartCopy => "UploadPartCopy",
            Operation::CompleteMultipartUpload => "CompleteMultipartUpload",
            Operation::AbortMultipartUpload => "AbortMultipartUpload",
            Operation::ListParts => "ListParts",
            Operation::ListMultipartUploads => "ListMultipartUploads",
            Operation::GetObjectAttributes => "GetObjectAttributes",
            Operation::NotImplemented(name) => name,
        }
    }
}

/// Bucket subresources and what S3 calls the operation for each method.
/// Order matters only for readability; a request names at most one in practice.
const BUCKET_SUBRESOURCES: &[(&str, &str, &str, &str, &str)] = &[
    // (query name, GET, PUT, DELETE, POST)
    ("acl", "GetBucketAcl", "PutBucketAcl", "", ""),
    (
        "accelerate",
        "GetBucketAccelerateConfiguration",
        "PutBucketAccelerateConfiguration",
        "",
        "",
    ),
    (
        "analytics",
        "GetBucketAnalyticsConfiguration",
        "PutBucketAnalyticsConfiguration",
        "DeleteBucketAnalyticsConfiguration",
        "",
    ),
    (
        "cors",
        "GetBucketCors",
        "PutBucketCors",
        "DeleteBucketCors",
        "",
    ),
    ("delete", "", "", "", "DeleteObjects"),
    (
        "encryption",
        "GetBucketEncryption",
        "PutBucketEncryption",
        "DeleteBucketEncryption",
        "",
    ),
    (
        "intelligent-tiering",
        "GetBucketIntelligentTieringConfiguration",
        "PutBucketIntelligentTieringConfiguration",
        "DeleteBucketIntelligentTieringConfiguration",
        "",
    ),
    (
        "inventory",
        "GetBucketInventoryConfiguration",
        "PutBucketInventoryConfiguration",
        "DeleteBucketInventoryConfiguration",
        "",
    ),
    (
        "lifecycle",
        "GetBucketLifecycleConfiguration",
        "PutBucketLifecycleConfiguration",
        "DeleteBucketLifecycle",
        "",
    ),
    ("logging", "GetBucketLogging", "PutBucketLogging", "", ""),
    (
        "metrics",
        "GetBucketMetricsConfiguration",
        "PutBucketMetricsConfiguration",
        "DeleteBucketMetricsConfiguration",
        "",
    ),
    (
        "notification",
        "GetBucketNotificationConfiguration",
        "PutBucketNotificationConfiguration",
        "",
        "",
    ),
    (
        "object-lock",
        "GetObjectLockConfiguration",
        "PutObjectLockConfiguration",
        "",
        "",
    ),
    (
        "ownershipControls",
        "GetBucketOwnershipControls",
        "PutBucketOwnershipControls",
        "DeleteBucketOwnershipControls",
        "",
    ),
    (
        "policy",
        "GetBucketPolicy",
        "PutBucketPolicy",
        "DeleteBucketPolicy",
        "",
    ),
    ("policyStatus", "GetBucketPolicyStatus", "", "", ""),
    (
        "publicAccessBlock",
        "GetPublicAccessBlock",
        "PutPublicAccessBlock",
        "DeletePublicAccessBlock",
        "",
    ),
    (
        "replication",
        "GetBucketReplication",
        "PutBucketReplication",
        "DeleteBucketReplication",
        "",
    ),
    (
        "requestPayment",
        "GetBucketRequestPayment",
        "PutBucketRequestPayment",
        "",
        "",
    ),
    (
        "tagging",
        "GetBucketTagging",
        "PutBucketTagging",
        "DeleteBucketTagging",
        "",
    ),
    ("uploads", "ListMultipartUploads", "", "", ""),
    (
        "versioning",
        "GetBucketVersioning",
        "PutBucketVersioning",
        "",
        "",
    ),
    ("versions", "ListObjectVersions", "", "", ""),
    (
        "website",
        "GetBucketWebsite",
        "PutBucketWebsite",
        "DeleteBucketWebsite",
        "",
    ),
];

/// Object subresources, as above.
const OBJECT_SUBRESOURCES: &[(&str, &str, &str, &str, &str)] = &[
    ("acl", "GetObjectAcl", "PutObjectAcl", "", ""),
    (
        "legal-hold",
        "GetObjectLegalHold",
        "PutObjectLegalHold",
        "",
        "",
    ),
    ("restore", "", "", "", "RestoreObject"),
    (
        "retention",
        "GetObjectRetention",
        "PutObjectRetention",
        "",
        "",
    ),
    ("select", "", "", "", "SelectObjectContent"),
    (
        "tagging",
        "GetObjectTagging",
        "PutObjectTagging",
        "DeleteObjectTagging",
        "",
    ),
    ("torrent", "GetObjectTorrent", "", "", ""),
    (
        "uploadId",
        "ListParts",
        "UploadPart",
        "AbortMultipartUpload",
        "CompleteMultipartUpload",
    ),
    ("uploads", "", "", "", "CreateMultipartUpload"),
];

fn subresource(
    table: &[(&str, &'static str, &'static str, &'static str, &'static str)],
    method: &str,
    query: &Query,
) -> Option<Result<Operation, S3Error>> {
    let row = table.iter().find(|row| query.has(row.0))?;
    let name = match method {
        "GET" | "HEAD" => row.1,
        "PUT" => row.2,
        "DELETE" => row.3,
        "POST" => row.4,
        _ => "",
    };
    Some(if name.is_empty() {
        Err(S3Error::new(ErrorCode::MethodNotAllowed))
    } else {
        Ok(Operation::NotImplemented(name))
    })
}

/// Maps a request to its operation.
pub fn route(
    method: &str,
    target: &Target,
    query: &Query,
    copy_source: bool,
) -> Result<Operation, S3Error> {
    match (&target.bucket, &target.key) {
        (None, _) => match method {
            "GET" | "HEAD" => Ok(Operation::ListBuckets),
            _ => Err(S3Error::new(ErrorCode::MethodNotAllowed)),
        },
        (Some(_), None) => route_bucket(method, query),
        (Some(_), Some(_)) => route_object(method, query, copy_source),
    }
}

fn route_bucket(method: &str, query: &Query) -> Result<Operation, S3Error> {
    if query.has("uploads") && matches!(method, "GET" | "HEAD") {
        return Ok(Operation::ListMultipartUploads);
    }
    if query.has("delete") && method == "POST" {
        return Ok(Operation::DeleteObjects);
    }
    if query.has("acl") {
        return match method {
            "GET" | "HEAD" => Ok(Operation::GetBucketAcl),
            "PUT" => Ok(Operation::PutBucketAcl),
            _ => Err(S3Error::new(ErrorCode::MethodNotAllowed)),
        };
    }
    if query.has("versions") && matches!(method, "GET" | "HEAD") {
        return Ok(Operation::ListObjectVersions);
    }
    if query.has("versioning") && matches!(method, "GET" | "HEAD") {
        return Ok(Operation::GetBucketVersioning);
    }
    if query.has("location") {
        return match method {
            "GET" => Ok(Operation::GetBucketLocation),
            _ => Err(S3Error::new(ErrorCode::MethodNotAllowed)),
        };
    }
    if let Some(op) = subresource(BUCKET_SUBRESOURCES, method, query) {
        return op;
    }
    match method {
        "GET" if query.get("list-type") == Some("2") => Ok(Operation::ListObjectsV2),
        "GET" => Ok(Operation::ListObjects),
        "PUT" => Ok(Operation::CreateBucket),
        "DELETE" => Ok(Operation::DeleteBucket),
        "HEAD" => Ok(Operation::HeadBucket),
        "POST" => Ok(Operation::NotImplemented("PostObject")),
        _ => Err(S3Error::new(ErrorCode::MethodNotAllowed)),
    }
}

fn route_object(method: &str, query: &Query, copy_source: bool) -> Result<Operation, S3Error> {
    if query.has("uploadId") {
        return match method {
            "PUT" if copy_source => Ok(Operation::UploadPartCopy),
            "PUT" => Ok(Operation::UploadPart),
            "POST" => Ok(Operation::CompleteMultipartUpload),
            "DELETE" => Ok(Operation::AbortMultipartUpload),
            "GET" | "HEAD" => Ok(Operation::ListParts),
            _ => Err(S3Error::new(ErrorCode::MethodNotAllowed)),
        };
    }
    if query.has("uploads") && method == "POST" {
        return Ok(Operation::CreateMultipartUpload);
    }
    if query.has("acl") {
        return match method {
            "GET" | "HEAD" => Ok(Operation::GetObjectAcl),
            "PUT" => Ok(Operation::PutObjectAcl),
            _ => Err(S3Error::new(ErrorCode::MethodNotAllowed)),
        };
    }
    if query.has("attributes") {
        return match method {
            "GET" => Ok(Operation::GetObjectAttributes),
            _ => Err(S3Error::new(ErrorCode::MethodNotAllowed)),
        };
    }
    if let Some(op) = subresource(OBJECT_SUBRESOURCES, method, query) {
        return op;
    }
    match method {
        "GET" => Ok(Operation::GetObject),
        "HEAD" => Ok(Operation::HeadObject),
        "PUT" if copy_source => Ok(Operation::CopyObject),
        "PUT" => Ok(Operation::PutObject),
        "DELETE" => Ok(Operation::DeleteObject),
        _ => Err(S3Error::new(ErrorCode::MethodNotAllowed)),
    }
}

/// S3's bucket naming rules; a violation is `InvalidBucketName`.
pub fn validate_bucket_name(name: &str) -> Result<(), S3Error> {
    let bytes = name.as_bytes();
    let valid_chars = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.');
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let looks_like_ip = name.split('.').count() == 4
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let ok = (3..=63).contains(&bytes.len())
        && valid_chars
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && !looks_like_ip
        && !name.starts_with("xn--")
        && !name.starts_with("sthree-")
        && !name.ends_with("-s3alias")
        && !name.ends_with("--ol-s3");
    if ok {
        Ok(())
    } else {
        Err(S3Error::new(ErrorCode::InvalidBucketName).field("BucketName", name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: &str, path: &str, query: &str) -> Result<Operation, S3Error> {
        let target = resolve_target(Some("127.0.0.1:9000"), path, None)?;
        route(method, &target, &Query::parse(query)?, false)
    }

    #[test]
    fn routes_follow_the_aws_request_lines() {
        assert_eq!(op("GET", "/", ""), Ok(Operation::ListBuckets));
        assert_eq!(op("PUT", "/examplebucket", ""), Ok(Operation::CreateBucket));
        assert_eq!(op("HEAD", "/examplebucket", ""), Ok(Operation::HeadBucket));
        assert_eq!(
            op("DELETE", "/examplebucket/", ""),
            Ok(Operation::DeleteBucket)
        );
        assert_eq!(
            op("GET", "/examplebucket", "location"),
            Ok(Operation::GetBucketLocation)
        );
        assert_eq!(
            op("GET", "/examplebucket", "list-type=2&prefix=a"),
            Ok(Operation::ListObjectsV2)
        );
        assert_eq!(
            op("GET", "/examplebucket", "marker=a"),
            Ok(Operation::ListObjects)
        );
        assert_eq!(
            op("PUT", "/examplebucket/my%20photo.jpg", ""),
            Ok(Operation::PutObject)
        );
        assert_eq!(
            op("GET", "/examplebucket/a/b", ""),
            Ok(Operation::GetObject)
        );
        assert_eq!(
            op("HEAD", "/examplebucket/a", ""),
            Ok(Operation::HeadObject)
        );
        assert_eq!(
            op("DELETE", "/examplebucket/a", ""),
            Ok(Operation::DeleteObject)
        );
        assert_eq!(
            op("GET", "/examplebucket", "lifecycle"),
            Ok(Operation::NotImplemented("GetBucketLifecycleConfiguration"))
        );
        assert_eq!(
            op("POST", "/examplebucket", "delete"),
            Ok(Operation::DeleteObjects)
        );
        assert_eq!(
            op("POST", "/examplebucket/k", "uploads"),
            Ok(Operation::CreateMultipartUpload)
        );
        assert_eq!(
            op("POST", "/examplebucket/k", "uploadId=x"),
            Ok(Operation::CompleteMultipartUpload)
        );
        assert_eq!(
            op("DELETE", "/examplebucket/k", "uploadId=x"),
            Ok(Operation::AbortMultipartUpload)
        );
        assert_eq!(
            op("GET", "/examplebucket/k", "uploadId=x"),
            Ok(Operation::ListParts)
        );
        assert_eq!(
            op("GET", "/examplebucket", "uploads"),
            Ok(Operation::ListMultipartUploads)
        );
        assert_eq!(
            op("PUT", "/examplebucket/k", "partNumber=1&uploadId=x"),
            Ok(Operation::UploadPart)
        );
        assert_eq!(
            op("PATCH", "/examplebucket/k", "").map_err(|e| e.code),
            Err(ErrorCode::MethodNotAllowed)
        );
    }

    #[test]
    fn keys_are_data_not_paths() {
        let t = resolve_target(None, "/b/..%2F..%2Fetc/passwd", None).unwrap();
        assert_eq!(t.key.as_deref(), Some("../../etc/passwd"));
        let t = resolve_target(None, "/b//a//", None).unwrap();
        assert_eq!(t.key.as_deref(), Some("/a//"));
        let t = resolve_target(None, "/b/a+b%2Bc", None).unwrap();
        assert_eq!(t.key.as_deref(), Some("a+b+c"));
        let long = format!("/b/{}", "k".repeat(1025));
        assert_eq!(
            resolve_target(None, &long, None).unwrap_err().code,
            ErrorCode::KeyTooLongError
        );
    }

    #[test]
    fn virtual_hosted_style_uses_the_domain() {
        let t = resolve_target(Some("photos.s3.local:9000"), "/a/b", Some("s3.local")).unwrap();
        assert_eq!(
            (t.bucket.as_deref(), t.key.as_deref()),
            (Some("photos"), Some("a/b"))
        );
        let t = resolve_target(Some("s3.local:9000"), "/photos/a", Some("s3.local")).unwrap();
        assert_eq!(
            (t.bucket.as_deref(), t.key.as_deref()),
            (Some("photos"), Some("a"))
        );
        let t = resolve_target(Some("127.0.0.1:9000"), "/photos", Some("s3.local")).unwrap();
        assert_eq!((t.bucket.as_deref(), t.key), (Some("photos"), None));
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "my.bucket-1", "a1b", &"a".repeat(63)] {
            assert!(validate_bucket_name(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "Abc",
            "foo..bar",
            "foo-.bar",
            "foo.-bar",
            "-abc",
            "abc-",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "a_b",
            &"a".repeat(64),
        ] {
            assert!(validate_bucket_name(bad).is_err(), "{bad}");
        }
    }
}
