//! The one error type of the request path. Every failure, from a malformed head in
//! `http` to a missing key in `s3`, becomes an `S3Error`; `ErrorCode::as_str` and
//! `ErrorCode::status` are exhaustive tables so a new code cannot compile without its
//! HTTP status. An internal cause travels with the error, is logged once with the
//! request id where the error is answered, and is never put in the message sent to
//! clients.

use std::fmt;

use crate::meta::MetaError;

/// An S3 error code, named exactly as AWS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    BadRequest,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    EntityTooLarge,
    EntityTooSmall,
    IncompleteBody,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidLocationConstraint,
    InvalidObjectState,
    InvalidPart,
    InvalidPartNumber,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    InvalidStorageClass,
    InvalidURI,
    InsufficientStorage,
    KeyTooLongError,
    MalformedACLError,
    MalformedXML,
    MetadataTooLarge,
    MethodNotAllowed,
    MissingContentLength,
    MissingSecurityHeader,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    NoSuchVersion,
    IllegalVersioningConfigurationException,
    InvalidBucketState,
    AccessForbidden,
    NoSuchCORSConfiguration,
    ObjectLockConfigurationNotFoundError,
    NoSuchObjectLockConfiguration,
    NotImplemented,
    NotModified,
    PreconditionFailed,
    RequestHeaderSectionTooLarge,
    RequestTimeTooSkewed,
    RequestTimeout,
    ServiceUnavailable,
    SignatureDoesNotMatch,
    SlowDown,
    UriTooLong,
    XAmzContentSHA256Mismatch,
}

impl ErrorCode {
    /// The code string S3 puts in `<Code>`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AccessDenied => "AccessDenied",
            ErrorCode::AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            ErrorCode::AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            ErrorCode::BadDigest => "BadDigest",
            ErrorCode::BadRequest => "BadRequest",
            ErrorCode::BucketAlreadyExists => "BucketAlreadyExists",
            ErrorCode::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            ErrorCode::BucketNotEmpty => "BucketNotEmpty",
            ErrorCode::EntityTooLarge => "EntityTooLarge",
            ErrorCode::EntityTooSmall => "EntityTooSmall",
            ErrorCode::IncompleteBody => "IncompleteBody",
            ErrorCode::InternalError => "InternalError",
            ErrorCode::InvalidAccessKeyId => "InvalidAccessKeyId",
            ErrorCode::InvalidArgument => "InvalidArgument",
            ErrorCode::InvalidBucketName => "InvalidBucketName",
            ErrorCode::InvalidDigest => "InvalidDigest",
            ErrorCode::InvalidLocationConstraint => "InvalidLocationConstraint",
            ErrorCode::InvalidObjectState => "InvalidObjectState",
            ErrorCode::InvalidPart => "InvalidPart",
            ErrorCode::InvalidPartNumber => "InvalidPartNumber",
            ErrorCode::InvalidPartOrder => "InvalidPartOrder",
            ErrorCode::InvalidRange => "InvalidRange",
            ErrorCode::InvalidRequest => "InvalidRequest",
            ErrorCode::InvalidStorageClass => "InvalidStorageClass",
            ErrorCode::InvalidURI => "InvalidURI",
            ErrorCode::InsufficientStorage => "InsufficientStorage",
            ErrorCode::KeyTooLongError => "KeyTooLongError",
            ErrorCode::MalformedACLError => "MalformedACLError",
            ErrorCode::MalformedXML => "MalformedXML",
            ErrorCode::MetadataTooLarge => "MetadataTooLarge",
            ErrorCode::MethodNotAllowed => "MethodNotAllowed",
            ErrorCode::MissingContentLength => "MissingContentLength",
            ErrorCode::MissingSecurityHeader => "MissingSecurityHeader",
            ErrorCode::NoSuchBucket => "NoSuchBucket",
            ErrorCode::NoSuchKey => "NoSuchKey",
            ErrorCode::NoSuchUpload => "NoSuchUpload",
            ErrorCode::NoSuchVersion => "NoSuchVersion",
            ErrorCode::InvalidBucketState => "InvalidBucketState",
            ErrorCode::AccessForbidden => "AccessForbidden",
            ErrorCode::NoSuchCORSConfiguration => "NoSuchCORSConfiguration",
            ErrorCode::ObjectLockConfigurationNotFoundError => {
                "ObjectLockConfigurationNotFoundError"
            }
            ErrorCode::NoSuchObjectLockConfiguration => "NoSuchObjectLockConfiguration",
            ErrorCode::IllegalVersioningConfigurationException => {
                "IllegalVersioningConfigurationException"
            }
            ErrorCode::NotImplemented => "NotImplemented",
            ErrorCode::NotModified => "NotModified",
            ErrorCode::PreconditionFailed => "PreconditionFailed",
            ErrorCode::RequestHeaderSectionTooLarge => "RequestHeaderSectionTooLarge",
            ErrorCode::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            ErrorCode::RequestTimeout => "RequestTimeout",
            ErrorCode::ServiceUnavailable => "ServiceUnavailable",
            ErrorCode::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            ErrorCode::SlowDown => "SlowDown",
            ErrorCode::UriTooLong => "UriTooLong",
            ErrorCode::XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
        }
    }

    /// The HTTP status S3 answers with for this code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::AccessDenied => 403,
            ErrorCode::AuthorizationHeaderMalformed => 400,
            ErrorCode::AuthorizationQueryParametersError => 400,
            ErrorCode::BadDigest => 400,
            ErrorCode::BadRequest => 400,
            ErrorCode::BucketAlreadyExists => 409,
            ErrorCode::BucketAlreadyOwnedByYou => 409,
            ErrorCode::BucketNotEmpty => 409,
            ErrorCode::EntityTooLarge => 400,
            ErrorCode::EntityTooSmall => 400,
            ErrorCode::IncompleteBody => 400,
            ErrorCode::InternalError => 500,
            ErrorCode::InvalidAccessKeyId => 403,
            ErrorCode::InvalidArgument => 400,
            ErrorCode::InvalidBucketName => 400,
            ErrorCode::InvalidDigest => 400,
            ErrorCode::InvalidLocationConstraint => 400,
            ErrorCode::InvalidObjectState => 403,
            ErrorCode::InvalidPart => 400,
            ErrorCode::InvalidPartNumber => 416,
            ErrorCode::InvalidPartOrder => 400,
            ErrorCode::InvalidRange => 416,
            ErrorCode::InvalidRequest => 400,
            ErrorCode::InvalidStorageClass => 400,
            ErrorCode::InvalidURI => 400,
            ErrorCode::InsufficientStorage => 507,
            ErrorCode::KeyTooLongError => 400,
            ErrorCode::MalformedACLError => 400,
            ErrorCode::MalformedXML => 400,
            ErrorCode::MetadataTooLarge => 400,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::MissingContentLength => 411,
            ErrorCode::MissingSecurityHeader => 400,
            ErrorCode::NoSuchBucket => 404,
            ErrorCode::NoSuchKey => 404,
            ErrorCode::NoSuchUpload => 404,
            ErrorCode::NoSuchVersion => 404,
            ErrorCode::InvalidBucketState => 409,
            ErrorCode::AccessForbidden => 403,
            ErrorCode::NoSuchCORSConfiguration => 404,
            ErrorCode::ObjectLockConfigurationNotFoundError => 404,
            ErrorCode::NoSuchObjectLockConfiguration => 404,
            ErrorCode::IllegalVersioningConfigurationException => 400,
            ErrorCode::NotImplemented => 501,
            ErrorCode::NotModified => 304,
            ErrorCode::PreconditionFailed => 412,
            ErrorCode::RequestHeaderSectionTooLarge => 431,
            ErrorCode::RequestTimeTooSkewed => 403,
            ErrorCode::RequestTimeout => 400,
            ErrorCode::ServiceUnavailable => 503,
            ErrorCode::SignatureDoesNotMatch => 403,
            ErrorCode::SlowDown => 503,
            ErrorCode::UriTooLong => 414,
            ErrorCode::XAmzContentSHA256Mismatch => 400,
        }
    }

    /// The message S3 gives when the caller has nothing more precise to say.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorCode::AccessDenied => "Access Denied",
            ErrorCode::AuthorizationHeaderMalformed => "The authorization header is malformed.",
            ErrorCode::AuthorizationQueryParametersError => {
                "Error parsing the X-Amz-Credential parameter."
            }
            ErrorCode::BadDigest => "The Content-MD5 you specified did not match what we received.",
            ErrorCode::BadRequest => "Bad Request",
            ErrorCode::BucketAlreadyExists => {
                "The requested bucket name is not available. Please select a different name."
            }
            ErrorCode::BucketAlreadyOwnedByYou => {
                "Your previous request to create the named bucket succeeded and you already own it."
            }
            ErrorCode::BucketNotEmpty => "The bucket you tried to delete is not empty.",
            ErrorCode::EntityTooLarge => "Your proposed upload exceeds the maximum allowed size.",
            ErrorCode::EntityTooSmall => {
                "Your proposed upload is smaller than the minimum allowed object size."
            }
            ErrorCode::IncompleteBody => {
                "You did not provide the number of bytes specified by the Content-Length HTTP header."
            }
            ErrorCode::InternalError => "We encountered an internal error. Please try again.",
            ErrorCode::InvalidAccessKeyId => {
                "The AWS Access Key Id you provided does not exist in our records."
            }
            ErrorCode::InvalidArgument => "Invalid Argument",
            ErrorCode::InvalidBucketName => "The specified bucket is not valid.",
            ErrorCode::InvalidDigest => "The Content-MD5 you specified was invalid.",
            ErrorCode::InvalidLocationConstraint => "The specified location constraint is not valid.",
            ErrorCode::InvalidObjectState => {
                "The operation is not valid for the current state of the object."
            }
            ErrorCode::InvalidPart => "One or more of the specified parts could not be found.",
            ErrorCode::InvalidPartNumber => "The requested partnumber is not satisfiable",
            ErrorCode::InvalidPartOrder => "The list of parts was not in ascending order.",
            ErrorCode::InvalidRange => "The requested range is not satisfiable",
            ErrorCode::InvalidRequest => "Invalid Request",
            ErrorCode::InvalidStorageClass => "The storage class you specified is not valid.",
            ErrorCode::InvalidURI => "Couldn't parse the specified URI.",
            ErrorCode::InsufficientStorage => {
                "There is not enough space left on the device to store the object."
            }
            ErrorCode::KeyTooLongError => "Your key is too long.",
            ErrorCode::MalformedACLError => {
                "The XML you provided was not well-formed or did not validate against our published schema."
            }
            ErrorCode::MalformedXML => {
                "The XML you provided was not well-formed or did not validate against our published schema."
            }
            ErrorCode::MetadataTooLarge => {
                "Your metadata headers exceed the maximum allowed metadata size."
            }
            ErrorCode::MethodNotAllowed => {
                "The specified method is not allowed against this resource."
            }
            ErrorCode::MissingContentLength => "You must provide the Content-Length HTTP header.",
            ErrorCode::MissingSecurityHeader => "Your request is missing a required header.",
            ErrorCode::NoSuchBucket => "The specified bucket does not exist.",
            ErrorCode::NoSuchKey => "The specified key does not exist.",
            ErrorCode::NoSuchUpload => "The specified multipart upload does not exist.",
            ErrorCode::NoSuchVersion => "The specified version does not exist.",
            ErrorCode::InvalidBucketState => "The request is not valid with the current state of the bucket.",
            ErrorCode::AccessForbidden => "CORSResponse: This CORS request is not allowed.",
            ErrorCode::NoSuchCORSConfiguration => "The CORS configuration does not exist",
            ErrorCode::ObjectLockConfigurationNotFoundError => {
                "Object Lock configuration does not exist for this bucket"
            }
            ErrorCode::NoSuchObjectLockConfiguration => {
                "The specified object does not have a ObjectLock configuration"
            }
            ErrorCode::IllegalVersioningConfigurationException => {
                "The versioning configuration specified in the request is invalid."
            }
            ErrorCode::NotImplemented => {
                "A header or query you provided implies functionality that is not implemented."
            }
            ErrorCode::NotModified => "Not Modified",
            ErrorCode::PreconditionFailed => {
                "At least one of the preconditions you specified did not hold."
            }
            ErrorCode::RequestHeaderSectionTooLarge => {
                "Your request header section exceeds the maximum allowed size."
            }
            ErrorCode::RequestTimeTooSkewed => {
                "The difference between the request time and the current time is too large."
            }
            ErrorCode::RequestTimeout => {
                "Your socket connection to the server was not read from or written to within the timeout period."
            }
            ErrorCode::ServiceUnavailable => "Please reduce your request rate.",
            ErrorCode::SignatureDoesNotMatch => {
                "The request signature we calculated does not match the signature you provided. Check your key and signing method."
            }
            ErrorCode::SlowDown => "Please reduce your request rate.",
            ErrorCode::UriTooLong => "The request URI is too long.",
            ErrorCode::XAmzContentSHA256Mismatch => {
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            }
        }
    }
}

/// A failure to report to the client: the code, a message, and the extra
/// elements S3 adds to some errors (`BucketName`, `Key`, `ArgumentName`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub code: ErrorCode,
    pub message: String,
    /// Extra `<Name>value</Name>` elements, in order.
    pub fields: Vec<(&'static str, String)>,
    /// Extra response headers (for example `Content-Range: bytes */size` on 416).
    pub headers: Vec<(&'static str, String)>,
    /// What went wrong inside, for the log line of an `InternalError` (never sent).
    pub cause: Option<String>,
}

impl S3Error {
    pub fn new(code: ErrorCode) -> S3Error {
        S3Error {
            code,
            message: code.default_message().to_string(),
            fields: Vec::new(),
            headers: Vec::new(),
            cause: None,
        }
    }

    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> S3Error {
        S3Error {
            code,
            message: message.into(),
            fields: Vec::new(),
            headers: Vec::new(),
            cause: None,
        }
    }

    /// Adds an extra XML element such as `BucketName`.
    pub fn field(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.fields.push((name, value.into()));
        self
    }

    /// Adds an extra response header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.headers.push((name, value.into()));
        self
    }

    /// An internal failure: the client sees only `InternalError`; the cause is logged,
    /// with the request id, where the error is answered.
    pub fn internal(cause: impl fmt::Display) -> S3Error {
        let mut error = S3Error::new(ErrorCode::InternalError);
        error.cause = Some(cause.to_string());
        error
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

impl From<ErrorCode> for S3Error {
    fn from(code: ErrorCode) -> S3Error {
        S3Error::new(code)
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for S3Error {}

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
        MetaError::NoSuchVersion => S3Error::new(ErrorCode::NoSuchVersion)
            .field("Key", key.unwrap_or_default()),
        MetaError::ObjectLocked => S3Error::with_message(
            ErrorCode::AccessDenied,
            "Access Denied because object protected by object lock.",
        ),
        MetaError::InvalidBucketState(why) => {
            S3Error::with_message(ErrorCode::InvalidBucketState, why)
        }
        MetaError::NoObjectLock => S3Error::with_message(
            ErrorCode::InvalidRequest,
            "Bucket is missing Object Lock Configuration",
        ),
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
        MetaError::Busy => {
            log::warn!("metadata database busy past its timeout");
            S3Error::new(ErrorCode::ServiceUnavailable)
        }
        MetaError::BadDigest => S3Error::with_message(
            ErrorCode::BadDigest,
            "The checksum you specified did not match the calculated checksum of the object.",
        ),
        other => S3Error::internal(format!("metadata: {other}")),
    }
}

/// Maps a storage failure: a full disk is `InsufficientStorage`, anything else internal.
pub fn storage_error(error: std::io::Error) -> S3Error {
    if error.raw_os_error() == Some(libc::ENOSPC) {
        log::error!("disk full: {error}");
        return S3Error::new(ErrorCode::InsufficientStorage);
    }
    S3Error::internal(format!("storage: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_database_is_a_retryable_503() {
        let locked = |code| {
            MetaError::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        assert_eq!(locked(rusqlite::ffi::SQLITE_BUSY), MetaError::Busy);
        assert_eq!(locked(rusqlite::ffi::SQLITE_LOCKED), MetaError::Busy);
        assert_eq!(locked(rusqlite::ffi::SQLITE_FULL), MetaError::DiskFull);
        assert_eq!(meta_error(MetaError::Busy, "b", None).status(), 503);
        let io = meta_error(locked(rusqlite::ffi::SQLITE_IOERR), "b", None);
        assert_eq!(io.code, ErrorCode::InternalError);
    }
}
