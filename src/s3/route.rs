//! Routing: (method, host, path, query) to one `OperationKind`, through one table
//! (`ROUTES`); `s3::operation` then parses the operation's inputs, so no handler
//! looks at the raw query again.

use std::ops::Range;

use crate::auth::{percent_decode, percent_decode_str};
use crate::error::{ErrorCode, S3Error};
use crate::limits;

/// The decoded query string: names and values percent-decoded, in request order. The
/// decoded text is kept in one string, each pair as two ranges of it, so parsing a
/// query costs two allocations however many parameters it has.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query {
    text: String,
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

impl Query {
    /// Parses a raw query string; a bad escape or non-UTF-8 is `InvalidArgument`.
    pub(crate) fn parse(raw: &str) -> Result<Query, S3Error> {
        let mut query = Query::default();
        if raw.is_empty() {
            return Ok(query);
        }
        // Decoding never lengthens a component.
        query.text.reserve(raw.len());
        query
            .pairs
            .reserve(raw.bytes().filter(|&b| b == b'&').count() + 1);
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = query.push_decoded(name)?;
            let value = query.push_decoded(value)?;
            query.pairs.push((name, value));
        }
        Ok(query)
    }

    /// Appends one decoded component to the text; returns where it lies.
    fn push_decoded(&mut self, raw: &str) -> Result<Range<usize>, S3Error> {
        let start = self.text.len();
        let decoded = percent_decode(raw).ok_or_else(|| {
            S3Error::with_message(
                ErrorCode::InvalidArgument,
                "Invalid percent-encoding in query",
            )
        })?;
        let decoded = std::str::from_utf8(&decoded)
            .map_err(|_| S3Error::with_message(ErrorCode::InvalidArgument, "Query is not UTF-8"))?;
        self.text.push_str(decoded);
        Ok(start..self.text.len())
    }

    /// The first value of `name`, if present.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| self.text[n.clone()] == *name)
            .map(|(_, v)| &self.text[v.clone()])
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.pairs
            .iter()
            .any(|(n, _)| self.text[n.clone()] == *name)
    }
}

/// Where a request points: an optional bucket and an optional key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The bucket came from the Host (`<bucket>.<domain>`), not the path.
    pub virtual_host: bool,
}

/// Splits the request into bucket and key, virtual-hosted style when the Host is
/// `<bucket>.<domain>`, path style otherwise. The key is percent-decoded and
/// never normalised: `a//b` and `../x` are keys like any other.
pub(crate) fn resolve_target(
    host: Option<&str>,
    raw_path: &str,
    domain: Option<&str>,
) -> Result<Target, S3Error> {
    let path = percent_decode_str(raw_path).ok_or_else(|| {
        S3Error::with_message(ErrorCode::InvalidURI, "Couldn't parse the specified URI.")
    })?;
    if path.contains('\0') {
        return Err(S3Error::with_message(
            ErrorCode::InvalidURI,
            "Couldn't parse the specified URI: it names a NUL byte.",
        ));
    }
    let path = path.strip_prefix('/').unwrap_or(&path);
    let host_bucket = host.and_then(|h| virtual_host_bucket(h, domain?));
    let virtual_host = host_bucket.is_some();
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
    Ok(Target {
        bucket,
        key,
        virtual_host,
    })
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

/// Every operation the router knows, by name; `s3::operation::Operation` is the same
/// with its parsed inputs. Operations that a later issue implements are routed to
/// `NotImplemented` with their AWS name so the log says what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OperationKind {
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
    PutBucketVersioning,
    GetObjectLockConfiguration,
    GetBucketCors,
    PutBucketCors,
    DeleteBucketCors,
    PutObjectLockConfiguration,
    GetObjectRetention,
    PutObjectRetention,
    GetObjectLegalHold,
    PutObjectLegalHold,
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

impl OperationKind {
    /// The AWS name of the operation, for logs and metrics.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OperationKind::ListBuckets => "ListBuckets",
            OperationKind::CreateBucket => "CreateBucket",
            OperationKind::DeleteBucket => "DeleteBucket",
            OperationKind::HeadBucket => "HeadBucket",
            OperationKind::GetBucketLocation => "GetBucketLocation",
            OperationKind::ListObjects => "ListObjects",
            OperationKind::ListObjectsV2 => "ListObjectsV2",
            OperationKind::PutObject => "PutObject",
            OperationKind::GetObject => "GetObject",
            OperationKind::HeadObject => "HeadObject",
            OperationKind::DeleteObject => "DeleteObject",
            OperationKind::DeleteObjects => "DeleteObjects",
            OperationKind::CopyObject => "CopyObject",
            OperationKind::ListObjectVersions => "ListObjectVersions",
            OperationKind::GetBucketVersioning => "GetBucketVersioning",
            OperationKind::PutBucketVersioning => "PutBucketVersioning",
            OperationKind::GetObjectLockConfiguration => "GetObjectLockConfiguration",
            OperationKind::GetBucketCors => "GetBucketCors",
            OperationKind::PutBucketCors => "PutBucketCors",
            OperationKind::DeleteBucketCors => "DeleteBucketCors",
            OperationKind::PutObjectLockConfiguration => "PutObjectLockConfiguration",
            OperationKind::GetObjectRetention => "GetObjectRetention",
            OperationKind::PutObjectRetention => "PutObjectRetention",
            OperationKind::GetObjectLegalHold => "GetObjectLegalHold",
            OperationKind::PutObjectLegalHold => "PutObjectLegalHold",
            OperationKind::GetBucketAcl => "GetBucketAcl",
            OperationKind::PutBucketAcl => "PutBucketAcl",
            OperationKind::GetObjectAcl => "GetObjectAcl",
            OperationKind::PutObjectAcl => "PutObjectAcl",
            OperationKind::CreateMultipartUpload => "CreateMultipartUpload",
            OperationKind::UploadPart => "UploadPart",
            OperationKind::UploadPartCopy => "UploadPartCopy",
            OperationKind::CompleteMultipartUpload => "CompleteMultipartUpload",
            OperationKind::AbortMultipartUpload => "AbortMultipartUpload",
            OperationKind::ListParts => "ListParts",
            OperationKind::ListMultipartUploads => "ListMultipartUploads",
            OperationKind::GetObjectAttributes => "GetObjectAttributes",
            OperationKind::NotImplemented(name) => name,
        }
    }
}

/// What part of the namespace a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `/`: the requester's buckets.
    Service,
    /// `/bucket`.
    Bucket,
    /// `/bucket/key`.
    Object,
}

/// The methods a route answers. `Read` is GET and HEAD alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Read,
    Get,
    Head,
    Put,
    Post,
    Delete,
}

impl Verb {
    fn matches(self, method: &str) -> bool {
        match self {
            Verb::Read => method == "GET" || method == "HEAD",
            Verb::Get => method == "GET",
            Verb::Head => method == "HEAD",
            Verb::Put => method == "PUT",
            Verb::Post => method == "POST",
            Verb::Delete => method == "DELETE",
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verb::Read => "GET|HEAD",
            Verb::Get => "GET",
            Verb::Head => "HEAD",
            Verb::Put => "PUT",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }
}

/// What else, beyond method and subresource, picks a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Always,
    /// An `x-amz-copy-source` header is present.
    CopySource,
    /// `list-type=2` is in the query.
    ListTypeTwo,
}

/// One row of the routing table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Route {
    pub scope: Scope,
    pub verb: Verb,
    /// The query parameter that names the subresource; empty for the resource itself.
    pub subresource: &'static str,
    pub when: When,
    pub operation: OperationKind,
}

const fn row(
    scope: Scope,
    verb: Verb,
    subresource: &'static str,
    when: When,
    operation: OperationKind,
) -> Route {
    Route {
        scope,
        verb,
        subresource,
        when,
        operation,
    }
}

/// Every request S3 defines, as (scope, method, subresource, condition) -> operation.
/// A request's subresource is the first of its scope's, in this order, that its query
/// names; the first row of that subresource whose method and condition match is the
/// operation; none matching is 405 MethodNotAllowed. Operations a later issue builds
/// route to `NotImplemented` with their AWS name. This table is the one list of
/// operations: `bleepstore routes` prints it, and the forged-request test matrix is
/// generated from that output.
#[rustfmt::skip]
pub(crate) const ROUTES: &[Route] = {
    use OperationKind::*;
    use Scope::{Bucket, Object, Service};
    use Verb::{Delete, Get, Head, Post, Put, Read};
    use When::{Always, CopySource, ListTypeTwo};
    &[
        row(Service, Read,   "",                    Always,      ListBuckets),
        row(Bucket,  Read,   "uploads",             Always,      ListMultipartUploads),
        row(Bucket,  Post,   "delete",              Always,      DeleteObjects),
        row(Bucket,  Read,   "acl",                 Always,      GetBucketAcl),
        row(Bucket,  Put,    "acl",                 Always,      PutBucketAcl),
        row(Bucket,  Read,   "versions",            Always,      ListObjectVersions),
        row(Bucket,  Read,   "versioning",          Always,      GetBucketVersioning),
        row(Bucket,  Put,    "versioning",          Always,      PutBucketVersioning),
        row(Bucket,  Get,    "location",            Always,      GetBucketLocation),
        row(Bucket,  Read,   "accelerate",          Always,      NotImplemented("GetBucketAccelerateConfiguration")),
        row(Bucket,  Put,    "accelerate",          Always,      NotImplemented("PutBucketAccelerateConfiguration")),
        row(Bucket,  Read,   "analytics",           Always,      NotImplemented("GetBucketAnalyticsConfiguration")),
        row(Bucket,  Put,    "analytics",           Always,      NotImplemented("PutBucketAnalyticsConfiguration")),
        row(Bucket,  Delete, "analytics",           Always,      NotImplemented("DeleteBucketAnalyticsConfiguration")),
        row(Bucket,  Read,   "cors",                Always,      GetBucketCors),
        row(Bucket,  Put,    "cors",                Always,      PutBucketCors),
        row(Bucket,  Delete, "cors",                Always,      DeleteBucketCors),
        row(Bucket,  Read,   "encryption",          Always,      NotImplemented("GetBucketEncryption")),
        row(Bucket,  Put,    "encryption",          Always,      NotImplemented("PutBucketEncryption")),
        row(Bucket,  Delete, "encryption",          Always,      NotImplemented("DeleteBucketEncryption")),
        row(Bucket,  Read,   "intelligent-tiering", Always,      NotImplemented("GetBucketIntelligentTieringConfiguration")),
        row(Bucket,  Put,    "intelligent-tiering", Always,      NotImplemented("PutBucketIntelligentTieringConfiguration")),
        row(Bucket,  Delete, "intelligent-tiering", Always,      NotImplemented("DeleteBucketIntelligentTieringConfiguration")),
        row(Bucket,  Read,   "inventory",           Always,      NotImplemented("GetBucketInventoryConfiguration")),
        row(Bucket,  Put,    "inventory",           Always,      NotImplemented("PutBucketInventoryConfiguration")),
        row(Bucket,  Delete, "inventory",           Always,      NotImplemented("DeleteBucketInventoryConfiguration")),
        row(Bucket,  Read,   "lifecycle",           Always,      NotImplemented("GetBucketLifecycleConfiguration")),
        row(Bucket,  Put,    "lifecycle",           Always,      NotImplemented("PutBucketLifecycleConfiguration")),
        row(Bucket,  Delete, "lifecycle",           Always,      NotImplemented("DeleteBucketLifecycle")),
        row(Bucket,  Read,   "logging",             Always,      NotImplemented("GetBucketLogging")),
        row(Bucket,  Put,    "logging",             Always,      NotImplemented("PutBucketLogging")),
        row(Bucket,  Read,   "metrics",             Always,      NotImplemented("GetBucketMetricsConfiguration")),
        row(Bucket,  Put,    "metrics",             Always,      NotImplemented("PutBucketMetricsConfiguration")),
        row(Bucket,  Delete, "metrics",             Always,      NotImplemented("DeleteBucketMetricsConfiguration")),
        row(Bucket,  Read,   "notification",        Always,      NotImplemented("GetBucketNotificationConfiguration")),
        row(Bucket,  Put,    "notification",        Always,      NotImplemented("PutBucketNotificationConfiguration")),
        row(Bucket,  Read,   "object-lock",         Always,      GetObjectLockConfiguration),
        row(Bucket,  Put,    "object-lock",         Always,      PutObjectLockConfiguration),
        row(Bucket,  Read,   "ownershipControls",   Always,      NotImplemented("GetBucketOwnershipControls")),
        row(Bucket,  Put,    "ownershipControls",   Always,      NotImplemented("PutBucketOwnershipControls")),
        row(Bucket,  Delete, "ownershipControls",   Always,      NotImplemented("DeleteBucketOwnershipControls")),
        row(Bucket,  Read,   "policy",              Always,      NotImplemented("GetBucketPolicy")),
        row(Bucket,  Put,    "policy",              Always,      NotImplemented("PutBucketPolicy")),
        row(Bucket,  Delete, "policy",              Always,      NotImplemented("DeleteBucketPolicy")),
        row(Bucket,  Read,   "policyStatus",        Always,      NotImplemented("GetBucketPolicyStatus")),
        row(Bucket,  Read,   "publicAccessBlock",   Always,      NotImplemented("GetPublicAccessBlock")),
        row(Bucket,  Put,    "publicAccessBlock",   Always,      NotImplemented("PutPublicAccessBlock")),
        row(Bucket,  Delete, "publicAccessBlock",   Always,      NotImplemented("DeletePublicAccessBlock")),
        row(Bucket,  Read,   "replication",         Always,      NotImplemented("GetBucketReplication")),
        row(Bucket,  Put,    "replication",         Always,      NotImplemented("PutBucketReplication")),
        row(Bucket,  Delete, "replication",         Always,      NotImplemented("DeleteBucketReplication")),
        row(Bucket,  Read,   "requestPayment",      Always,      NotImplemented("GetBucketRequestPayment")),
        row(Bucket,  Put,    "requestPayment",      Always,      NotImplemented("PutBucketRequestPayment")),
        row(Bucket,  Read,   "tagging",             Always,      NotImplemented("GetBucketTagging")),
        row(Bucket,  Put,    "tagging",             Always,      NotImplemented("PutBucketTagging")),
        row(Bucket,  Delete, "tagging",             Always,      NotImplemented("DeleteBucketTagging")),
        row(Bucket,  Read,   "website",             Always,      NotImplemented("GetBucketWebsite")),
        row(Bucket,  Put,    "website",             Always,      NotImplemented("PutBucketWebsite")),
        row(Bucket,  Delete, "website",             Always,      NotImplemented("DeleteBucketWebsite")),
        row(Bucket,  Head,   "",                    Always,      HeadBucket),
        row(Bucket,  Get,    "",                    ListTypeTwo, ListObjectsV2),
        row(Bucket,  Get,    "",                    Always,      ListObjects),
        row(Bucket,  Put,    "",                    Always,      CreateBucket),
        row(Bucket,  Delete, "",                    Always,      DeleteBucket),
        row(Bucket,  Post,   "",                    Always,      NotImplemented("PostObject")),
        row(Object,  Put,    "uploadId",            CopySource,  UploadPartCopy),
        row(Object,  Put,    "uploadId",            Always,      UploadPart),
        row(Object,  Post,   "uploadId",            Always,      CompleteMultipartUpload),
        row(Object,  Delete, "uploadId",            Always,      AbortMultipartUpload),
        row(Object,  Read,   "uploadId",            Always,      ListParts),
        row(Object,  Post,   "uploads",             Always,      CreateMultipartUpload),
        row(Object,  Read,   "acl",                 Always,      GetObjectAcl),
        row(Object,  Put,    "acl",                 Always,      PutObjectAcl),
        row(Object,  Get,    "attributes",          Always,      GetObjectAttributes),
        row(Object,  Read,   "legal-hold",          Always,      GetObjectLegalHold),
        row(Object,  Put,    "legal-hold",          Always,      PutObjectLegalHold),
        row(Object,  Post,   "restore",             Always,      NotImplemented("RestoreObject")),
        row(Object,  Read,   "retention",           Always,      GetObjectRetention),
        row(Object,  Put,    "retention",           Always,      PutObjectRetention),
        row(Object,  Post,   "select",              Always,      NotImplemented("SelectObjectContent")),
        row(Object,  Read,   "tagging",             Always,      NotImplemented("GetObjectTagging")),
        row(Object,  Put,    "tagging",             Always,      NotImplemented("PutObjectTagging")),
        row(Object,  Delete, "tagging",             Always,      NotImplemented("DeleteObjectTagging")),
        row(Object,  Read,   "torrent",             Always,      NotImplemented("GetObjectTorrent")),
        row(Object,  Head,   "",                    Always,      HeadObject),
        row(Object,  Get,    "",                    Always,      GetObject),
        row(Object,  Put,    "",                    CopySource,  CopyObject),
        row(Object,  Put,    "",                    Always,      PutObject),
        row(Object,  Delete, "",                    Always,      DeleteObject),
    ]
};

/// Maps a request to its operation through `ROUTES`.
pub(crate) fn route(
    method: &str,
    target: &Target,
    query: &Query,
    copy_source: bool,
) -> Result<OperationKind, S3Error> {
    let scope = match (&target.bucket, &target.key) {
        (None, _) => Scope::Service,
        (Some(_), None) => Scope::Bucket,
        (Some(_), Some(_)) => Scope::Object,
    };
    let in_scope = || ROUTES.iter().filter(move |r| r.scope == scope);
    let subresource = in_scope()
        .map(|r| r.subresource)
        .find(|name| !name.is_empty() && query.has(name))
        .unwrap_or("");
    in_scope()
        .filter(|r| r.subresource == subresource && r.verb.matches(method))
        .find(|r| match r.when {
            When::Always => true,
            When::CopySource => copy_source,
            When::ListTypeTwo => query.get("list-type") == Some("2"),
        })
        .map(|r| r.operation)
        .ok_or_else(|| S3Error::new(ErrorCode::MethodNotAllowed))
}

/// The routing table as JSON, one object per row, for `bleepstore routes`.
pub fn routes_json() -> String {
    let mut out = String::from("[\n");
    for (i, r) in ROUTES.iter().enumerate() {
        let when = match r.when {
            When::Always => "",
            When::CopySource => "x-amz-copy-source",
            When::ListTypeTwo => "list-type=2",
        };
        let scope = match r.scope {
            Scope::Service => "service",
            Scope::Bucket => "bucket",
            Scope::Object => "object",
        };
        out.push_str(&format!(
            "  {{\"operation\": \"{}\", \"implemented\": {}, \"scope\": \"{scope}\", \"method\": \"{}\", \"subresource\": \"{}\", \"when\": \"{when}\"}}{}\n",
            r.operation.name(),
            !matches!(r.operation, OperationKind::NotImplemented(_)),
            r.verb.as_str(),
            r.subresource,
            if i + 1 == ROUTES.len() { "" } else { "," },
        ));
    }
    out.push(']');
    out
}

/// S3's bucket naming rules; a violation is `InvalidBucketName`.
pub(crate) fn validate_bucket_name(name: &str) -> Result<(), S3Error> {
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

    fn op(method: &str, path: &str, query: &str) -> Result<OperationKind, S3Error> {
        let target = resolve_target(Some("127.0.0.1:9000"), path, None)?;
        route(method, &target, &Query::parse(query)?, false)
    }

    #[test]
    fn routes_follow_the_aws_request_lines() {
        assert_eq!(op("GET", "/", ""), Ok(OperationKind::ListBuckets));
        assert_eq!(
            op("PUT", "/examplebucket", ""),
            Ok(OperationKind::CreateBucket)
        );
        assert_eq!(
            op("HEAD", "/examplebucket", ""),
            Ok(OperationKind::HeadBucket)
        );
        assert_eq!(
            op("DELETE", "/examplebucket/", ""),
            Ok(OperationKind::DeleteBucket)
        );
        assert_eq!(
            op("GET", "/examplebucket", "location"),
            Ok(OperationKind::GetBucketLocation)
        );
        assert_eq!(
            op("GET", "/examplebucket", "list-type=2&prefix=a"),
            Ok(OperationKind::ListObjectsV2)
        );
        assert_eq!(
            op("GET", "/examplebucket", "marker=a"),
            Ok(OperationKind::ListObjects)
        );
        assert_eq!(
            op("PUT", "/examplebucket/my%20photo.jpg", ""),
            Ok(OperationKind::PutObject)
        );
        assert_eq!(
            op("GET", "/examplebucket/a/b", ""),
            Ok(OperationKind::GetObject)
        );
        assert_eq!(
            op("HEAD", "/examplebucket/a", ""),
            Ok(OperationKind::HeadObject)
        );
        assert_eq!(
            op("DELETE", "/examplebucket/a", ""),
            Ok(OperationKind::DeleteObject)
        );
        assert_eq!(
            op("GET", "/examplebucket", "lifecycle"),
            Ok(OperationKind::NotImplemented(
                "GetBucketLifecycleConfiguration"
            ))
        );
        assert_eq!(
            op("POST", "/examplebucket", "delete"),
            Ok(OperationKind::DeleteObjects)
        );
        assert_eq!(
            op("POST", "/examplebucket/k", "uploads"),
            Ok(OperationKind::CreateMultipartUpload)
        );
        assert_eq!(
            op("POST", "/examplebucket/k", "uploadId=x"),
            Ok(OperationKind::CompleteMultipartUpload)
        );
        assert_eq!(
            op("DELETE", "/examplebucket/k", "uploadId=x"),
            Ok(OperationKind::AbortMultipartUpload)
        );
        assert_eq!(
            op("GET", "/examplebucket/k", "uploadId=x"),
            Ok(OperationKind::ListParts)
        );
        assert_eq!(
            op("GET", "/examplebucket", "uploads"),
            Ok(OperationKind::ListMultipartUploads)
        );
        assert_eq!(
            op("PUT", "/examplebucket/k", "partNumber=1&uploadId=x"),
            Ok(OperationKind::UploadPart)
        );
        assert_eq!(
            op("PATCH", "/examplebucket/k", "").map_err(|e| e.code),
            Err(ErrorCode::MethodNotAllowed)
        );
    }

    #[test]
    fn every_row_of_the_table_is_reachable() {
        for row in ROUTES {
            let path = match row.scope {
                Scope::Service => "/",
                Scope::Bucket => "/b",
                Scope::Object => "/b/k",
            };
            let query = match row.when {
                When::ListTypeTwo => "list-type=2",
                _ => row.subresource,
            };
            let methods: &[&str] = match row.verb {
                Verb::Read => &["GET", "HEAD"],
                Verb::Get => &["GET"],
                Verb::Head => &["HEAD"],
                Verb::Put => &["PUT"],
                Verb::Post => &["POST"],
                Verb::Delete => &["DELETE"],
            };
            for method in methods {
                let target = resolve_target(None, path, None).unwrap();
                let got = route(
                    method,
                    &target,
                    &Query::parse(query).unwrap(),
                    row.when == When::CopySource,
                );
                assert_eq!(got, Ok(row.operation), "{method} {path}?{query}");
            }
        }
        let json = routes_json();
        assert_eq!(json.matches("\"operation\"").count(), ROUTES.len());
        assert!(json.contains(
            r#"{"operation": "UploadPartCopy", "implemented": true, "scope": "object", "method": "PUT", "subresource": "uploadId", "when": "x-amz-copy-source"}"#
        ));
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
