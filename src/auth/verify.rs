//! Server-side SigV4: recognise the form a request is signed in (header,
//! presigned URL, or none), then check it against the secret of its access key.
//! The result says what remains to be checked on the body as it streams.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::auth::sigv4::{
    canonical_header_value, canonical_query_into, canonical_uri_into, hmac_sha256, sha256_hex,
    signature_matches, EMPTY_SHA256,
};
use crate::auth::{SecretKey, SigningKeyCache};
use crate::checksum::hex_encode;
use crate::clock;
use crate::error::{ErrorCode, S3Error};
use crate::limits;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// The parts of a request that SigV4 covers. Header names are lowercase.
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a [(String, String)],
    /// Whether a body follows the head (a Content-Length above 0, or chunked framing).
    pub has_body: bool,
    /// The bucket a virtual-hosted request names in its Host (SigV2 signs it).
    pub host_bucket: Option<&'a str>,
}

impl RequestParts<'_> {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The credential scope: `<date>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Credential {
    access_key: String,
    date: String,
    region: String,
    service: String,
}

impl Credential {
    fn parse(text: &str) -> Option<Credential> {
        let mut parts = text.rsplitn(5, '/');
        let terminal = parts.next()?;
        let service = parts.next()?;
        let region = parts.next()?;
        let date = parts.next()?;
        let access_key = parts.next()?;
        if terminal != "aws4_request" || access_key.is_empty() || date.len() != 8 {
            return None;
        }
        Some(Credential {
            access_key: access_key.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        })
    }

    fn scope(&self) -> String {
        [
            self.date.as_str(),
            "/",
            &self.region,
            "/",
            &self.service,
            "/aws4_request",
        ]
        .concat()
    }
}

#[derive(Debug, Clone)]
pub struct HeaderAuth {
    credential: Credential,
    signed_headers: Vec<String>,
    signature: String,
}

#[derive(Debug, Clone)]
pub struct PresignedAuth {
    credential: Credential,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    expires: i64,
    /// `X-Amz-Content-Sha256` from the query, when the signer put the payload hash there.
    content_sha256: Option<String>,
    /// Every other `x-amz-*` query parameter (name lowercased, value decoded): signed with
    /// the query, so they stand for request headers of the same name, as S3 treats them.
    query_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub enum ParsedAuth {
    Anonymous,
    Header(HeaderAuth),
    Presigned(PresignedAuth),
    /// Signature Version 2, header or presigned.
    V2(crate::auth::sigv2::V2Auth),
}

impl ParsedAuth {
    pub fn access_key(&self) -> Option<&str> {
        match self {
            ParsedAuth::Anonymous => None,
            ParsedAuth::Header(h) => Some(&h.credential.access_key),
            ParsedAuth::Presigned(p) => Some(&p.credential.access_key),
            ParsedAuth::V2(v2) => Some(&v2.access_key),
        }
    }

    /// The `x-amz-*` headers a verified presigned URL carries in its query (its
    /// authentication parameters aside). They are signed, and a request obeys them as
    /// if they were headers; headers of the same name that were sent win.
    pub fn into_query_headers(self) -> Vec<(String, String)> {
        match self {
            ParsedAuth::Presigned(p) => p
                .query_headers
                .into_iter()
                .filter(|(name, _)| !PRESIGN_PARAMETERS.contains(&name.as_str()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The query parameters of a presigned URL that authenticate it (lowercased).
const PRESIGN_PARAMETERS: &[&str] = &[
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-signedheaders",
    "x-amz-content-sha256",
];

fn malformed(message: &str) -> S3Error {
    S3Error::with_message(ErrorCode::AuthorizationHeaderMalformed, message)
}

fn query_error(message: &str) -> S3Error {
    S3Error::with_message(ErrorCode::AuthorizationQueryParametersError, message)
}

/// Recognises the authentication form of a request: SigV4 or SigV2, in the
/// Authorization header or a presigned query; more than one is refused.
pub fn parse_auth(parts: &RequestParts) -> Result<ParsedAuth, S3Error> {
    let header = parts.header("authorization");
    let pairs = query_pairs(parts.raw_query);
    let presigned = raw_query_value(&pairs, "X-Amz-Algorithm").is_some()
        || raw_query_value(&pairs, "X-Amz-Credential").is_some();
    let presigned_v2 = raw_query_value(&pairs, "AWSAccessKeyId");
    let forms = usize::from(header.is_some())
        + usize::from(presigned)
        + usize::from(presigned_v2.is_some());
    if forms > 1 {
        return Err(S3Error::with_message(
            ErrorCode::InvalidArgument,
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
        )
        .field("ArgumentName", "Authorization"));
    }
    if let Some(value) = header {
        if value.trim_start().starts_with("AWS ") {
            return crate::auth::sigv2::parse_header(value).map(ParsedAuth::V2);
        }
        return parse_header(value).map(ParsedAuth::Header);
    }
    if presigned {
        return parse_presigned(&pairs).map(ParsedAuth::Presigned);
    }
    if let Some(access_key) = presigned_v2 {
        return crate::auth::sigv2::parse_query(
            access_key.into_owned(),
            raw_query_value(&pairs, "Signature").map(Cow::into_owned),
            raw_query_value(&pairs, "Expires").map(Cow::into_owned),
        )
        .map(ParsedAuth::V2);
    }
    Ok(ParsedAuth::Anonymous)
}

fn parse_header(value: &str) -> Result<HeaderAuth, S3Error> {
    let (algorithm, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if algorithm != ALGORITHM {
        return Err(S3Error::with_message(
            ErrorCode::InvalidRequest,
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
        ));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for component in rest.split(',') {
        let component = component.trim();
        let (name, value) = component
            .split_once('=')
            .ok_or_else(|| malformed("The authorization header is malformed."))?;
        match name.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            _ => return Err(malformed("The authorization header is malformed.")),
        }
    }
    let credential = credential
        .ok_or_else(|| malformed("The authorization header is malformed; missing Credential."))?;
    let credential = Credential::parse(credential).ok_or_else(|| {
        malformed("The authorization header is malformed; the Credential is mal-formed.")
    })?;
    let signed = signed.ok_or_else(|| {
        malformed("The authorization header is malformed; missing SignedHeaders.")
    })?;
    let signature = signature
        .ok_or_else(|| malformed("The authorization header is malformed; missing Signature."))?;
    Ok(HeaderAuth {
        credential,
        signed_headers: split_signed_headers(signed),
        signature: signature.to_string(),
    })
}

fn split_signed_headers(value: &str) -> Vec<String> {
    value
        .split(';')
        .filter(|h| !h.is_empty())
        .map(|h| h.to_ascii_lowercase())
        .collect()
}

/// The decoded value of a query parameter, straight from the raw query.
/// The (raw name, raw value) pairs of a raw query, in order.
fn query_pairs(raw_query: &str) -> Vec<(&str, &str)> {
    if raw_query.is_empty() {
        return Vec::new();
    }
    raw_query
        .split('&')
        .map(|part| part.split_once('=').unwrap_or((part, "")))
        .collect()
}

/// The decoded value of the first parameter whose raw name is `name`, among the
/// (raw name, raw value) `pairs` of a query.
fn raw_query_value<'a>(pairs: &[(&'a str, &'a str)], name: &str) -> Option<Cow<'a, str>> {
    let (_, value) = pairs.iter().find(|(n, _)| *n == name)?;
    crate::auth::percent_decode_str(value)
}

fn parse_presigned(pairs: &[(&str, &str)]) -> Result<PresignedAuth, S3Error> {
    let get = |name: &str| raw_query_value(pairs, name);
    let algorithm =
        get("X-Amz-Algorithm").ok_or_else(|| query_error("X-Amz-Algorithm is missing."))?;
    if algorithm != ALGORITHM {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let credential =
        get("X-Amz-Credential").ok_or_else(|| query_error("X-Amz-Credential is missing."))?;
    let credential = Credential::parse(&credential)
        .ok_or_else(|| query_error("Error parsing the X-Amz-Credential parameter."))?;
    let amz_date = get("X-Amz-Date").ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    let expires = get("X-Amz-Expires").ok_or_else(|| query_error("X-Amz-Expires is missing."))?;
    let expires: i64 = expires
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if expires < 1 {
        return Err(query_error("X-Amz-Expires must be non-negative"));
    }
    if expires > limits::PRESIGNED_EXPIRES_SECS_MAX {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    let signed =
        get("X-Amz-SignedHeaders").ok_or_else(|| query_error("X-Amz-SignedHeaders is missing."))?;
    let signature =
        get("X-Amz-Signature").ok_or_else(|| query_error("X-Amz-Signature is missing."))?;
    let mut query_headers = Vec::new();
    for &(name, value) in pairs {
        let Some(name) = crate::auth::percent_decode_str(name) else {
            continue;
        };
        let amz = name
            .get(..6)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("x-amz-"));
        if amz && !name.eq_ignore_ascii_case("x-amz-signature") {
            let value = crate::auth::percent_decode_str(value)
                .ok_or_else(|| query_error("A query parameter is not valid UTF-8."))?;
            query_headers.push((name.to_ascii_lowercase(), value.into_owned()));
        }
    }
    Ok(PresignedAuth {
        credential,
        signed_headers: split_signed_headers(&signed),
        signature: signature.into_owned(),
        amz_date: amz_date.into_owned(),
        expires,
        content_sha256: get("X-Amz-Content-Sha256").map(Cow::into_owned),
        query_headers,
    })
}

/// What remains to be verified on the body once the head's signature is good. The
/// signature itself is always settled before a `PayloadCheck` exists: these only hold
/// the body to what the verified head declared.
pub enum PayloadCheck {
    /// UNSIGNED-PAYLOAD, presigned URLs, anonymous requests.
    Unsigned,
    /// The body's SHA-256 must equal this (else XAmzContentSHA256Mismatch).
    Sha256([u8; 32]),
    /// aws-chunked with chained chunk signatures; `trailer` when a signed trailer follows.
    StreamingSigned {
        verifier: ChunkVerifier,
        trailer: bool,
    },
    /// aws-chunked, unsigned chunks, with a trailing checksum.
    StreamingUnsignedTrailer,
}

/// Verifies the chained signatures of an aws-chunked body.
pub struct ChunkVerifier {
    signing_key: [u8; 32],
    amz_date: String,
    scope: String,
    previous: String,
}

impl ChunkVerifier {
    pub fn new(
        signing_key: [u8; 32],
        amz_date: &str,
        scope: &str,
        seed_signature: &str,
    ) -> ChunkVerifier {
        ChunkVerifier {
            signing_key,
            amz_date: amz_date.to_string(),
            scope: scope.to_string(),
            previous: seed_signature.to_ascii_lowercase(),
        }
    }

    /// The string to sign of a chunk whose data hashes to `chunk_sha256`.
    pub fn chunk_string_to_sign(&self, chunk_sha256: &[u8; 32]) -> String {
        [
            "AWS4-HMAC-SHA256-PAYLOAD\n",
            &self.amz_date,
            "\n",
            &self.scope,
            "\n",
            &self.previous,
            "\n",
            EMPTY_SHA256,
            "\n",
            &hex_encode(chunk_sha256),
        ]
        .concat()
    }

    pub fn verify_chunk(&mut self, chunk_sha256: &[u8; 32], signature_hex: &str) -> bool {
        let string_to_sign = self.chunk_string_to_sign(chunk_sha256);
        self.advance(&string_to_sign, signature_hex)
    }

    pub fn verify_trailer(&mut self, trailer_block: &[u8], signature_hex: &str) -> bool {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            self.previous,
            sha256_hex(trailer_block)
        );
        self.advance(&string_to_sign, signature_hex)
    }

    fn advance(&mut self, string_to_sign: &str, signature_hex: &str) -> bool {
        if signature_matches(&self.signing_key, string_to_sign.as_bytes(), signature_hex) {
            self.previous = signature_hex.to_ascii_lowercase();
            true
        } else {
            false
        }
    }
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let mut out = String::with_capacity(ALGORITHM.len() + amz_date.len() + scope.len() + 67);
    for part in [ALGORITHM, "\n", amz_date, "\n", scope, "\n"] {
        out.push_str(part);
    }
    crate::checksum::hex_encode_into(&sha256(canonical_request.as_bytes()), &mut out);
    out
}

fn signature_mismatch(string_to_sign: &str, canonical_request: &str) -> S3Error {
    log::debug!("signature mismatch; canonical request:\n{canonical_request}\nstring to sign:\n{string_to_sign}");
    S3Error::new(ErrorCode::SignatureDoesNotMatch)
        .field("StringToSign", string_to_sign)
        .field("CanonicalRequest", canonical_request)
}

/// Everything of the canonical request before the payload hash.
fn canonical_prefix(
    parts: &RequestParts,
    signed_headers: &[String],
    presigned: bool,
) -> Result<String, S3Error> {
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(S3Error::with_message(
            ErrorCode::AuthorizationHeaderMalformed,
            "The host header must be signed.",
        ));
    }
    let mut out = String::with_capacity(512);
    out.push_str(parts.method);
    out.push('\n');
    canonical_uri_into(parts.raw_path, &mut out)?;
    out.push('\n');
    canonical_query_into(parts.raw_query, presigned, &mut out)?;
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for (_, value) in parts.headers.iter().filter(|(n, _)| n == name) {
            if !first {
                out.push(',');
            }
            canonical_header_value(value, &mut out);
            first = false;
        }
        out.push('\n');
    }
    out.push('\n');
    for (index, name) in signed_headers.iter().enumerate() {
        if index > 0 {
            out.push(';');
        }
        out.push_str(name);
    }
    out.push('\n');
    Ok(out)
}

fn check_scope(credential: &Credential, amz_date: &str, region: &str) -> Result<(), S3Error> {
    if credential.region != region {
        return Err(malformed(&format!(
            "The authorization header is malformed; the region '{}' is wrong; expecting '{region}'",
            credential.region
        ))
        .field("Region", region));
    }
    if credential.service != "s3" {
        return Err(malformed("The authorization header is malformed; incorrect service. This endpoint belongs to \"s3\"."));
    }
    if !amz_date.starts_with(&credential.date) {
        return Err(S3Error::new(ErrorCode::SignatureDoesNotMatch));
    }
    Ok(())
}

/// Verifies a header or presigned signature; returns what to check on the body.
pub fn verify(
    auth: &ParsedAuth,
    parts: &RequestParts,
    secret: &SecretKey,
    region: &str,
    now_unix: i64,
    cache: &mut SigningKeyCache,
) -> Result<PayloadCheck, S3Error> {
    match auth {
        ParsedAuth::Anonymous => Ok(PayloadCheck::Unsigned),
        ParsedAuth::Header(header) => verify_header(header, parts, secret, region, now_unix, cache),
        ParsedAuth::Presigned(presigned) => {
            verify_presigned(presigned, parts, secret, region, now_unix, cache)
        }
        ParsedAuth::V2(v2) => {
            crate::auth::sigv2::verify(v2, parts, secret, now_unix)?;
            v2_payload_check(parts)
        }
    }
}

fn verify_header(
    auth: &HeaderAuth,
    parts: &RequestParts,
    secret: &SecretKey,
    region: &str,
    now_unix: i64,
    cache: &mut SigningKeyCache,
) -> Result<PayloadCheck, S3Error> {
    let (amz_date, request_time) = match parts.header("x-amz-date") {
        Some(date) => (date.to_string(), clock::parse_amz_date(date)),
        None => match parts.header("date") {
            Some(date) => {
                let time = clock::parse_http_date(date);
                (time.map(clock::format_amz_date).unwrap_or_default(), time)
            }
            None => (String::new(), None),
        },
    };
    let request_time = request_time.ok_or_else(|| {
        S3Error::with_message(
            ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    })?;
    if (now_unix - request_time).abs() > limits::CLOCK_SKEW_SECS_MAX {
        return Err(S3Error::new(ErrorCode::RequestTimeTooSkewed)
            .field("RequestTime", amz_date.clone())
            .field("ServerTime", clock::format_iso8601_millis(now_unix * 1000))
            .field(
                "MaxAllowedSkewMilliseconds",
                (limits::CLOCK_SKEW_SECS_MAX * 1000).to_string(),
            ));
    }
    check_scope(&auth.credential, &amz_date, region)?;
    // x-amz-content-sha256 needs no SignedHeaders entry: its value is the last line of
    // the canonical request. Without it a body would go unsigned, so only a request
    // without one may omit it (AWS refuses even those; we sign them as empty).
    let payload = match parts.header("x-amz-content-sha256") {
        Some(value) => value,
        None if parts.has_body => {
            return Err(S3Error::with_message(
                ErrorCode::InvalidRequest,
                "Missing required header for this request: x-amz-content-sha256",
            ))
        }
        None => EMPTY_SHA256,
    };
    require_signed(parts, &auth.signed_headers, payload, &[])?;
    let prefix = canonical_prefix(parts, &auth.signed_headers, false)?;
    let scope = auth.credential.scope();
    let key = cache.key(
        secret,
        &auth.credential.date,
        &auth.credential.region,
        &auth.credential.service,
    );
    let check = match payload {
        UNSIGNED_PAYLOAD => PayloadCheck::Unsigned,
        STREAMING_UNSIGNED_TRAILER => PayloadCheck::StreamingUnsignedTrailer,
        STREAMING_SIGNED | STREAMING_SIGNED_TRAILER => PayloadCheck::StreamingSigned {
            verifier: ChunkVerifier::new(key.bytes, &amz_date, &scope, &auth.signature),
            trailer: payload == STREAMING_SIGNED_TRAILER,
        },
        hex => PayloadCheck::Sha256(payload_digest(hex)?),
    };
    let mut canonical = prefix;
    canonical.push_str(payload);
    let string_to_sign = string_to_sign(&amz_date, &scope, &canonical);
    if !key.signs(string_to_sign.as_bytes(), &auth.signature) {
        return Err(signature_mismatch(&string_to_sign, &canonical));
    }
    Ok(check)
}

fn verify_presigned(
    auth: &PresignedAuth,
    parts: &RequestParts,
    secret: &SecretKey,
    region: &str,
    now_unix: i64,
    cache: &mut SigningKeyCache,
) -> Result<PayloadCheck, S3Error> {
    let signed_at = clock::parse_amz_date(&auth.amz_date).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    if now_unix > signed_at + auth.expires {
        return Err(
            S3Error::with_message(ErrorCode::AccessDenied, "Request has expired")
                .field("X-Amz-Expires", auth.expires.to_string())
                .field(
                    "Expires",
                    clock::format_iso8601_millis((signed_at + auth.expires) * 1000),
                )
                .field("ServerTime", clock::format_iso8601_millis(now_unix * 1000)),
        );
    }
    if signed_at > now_unix + limits::CLOCK_SKEW_SECS_MAX {
        return Err(S3Error::with_message(
            ErrorCode::AccessDenied,
            "Request is not valid yet",
        ));
    }
    if auth.credential.region != region {
        return Err(query_error(&format!(
            "Error parsing the X-Amz-Credential parameter; the region '{}' is wrong; expecting '{region}'",
            auth.credential.region
        )));
    }
    check_scope(&auth.credential, &auth.amz_date, region)?;
    // The payload hash: from the query, else a signed header, else UNSIGNED-PAYLOAD.
    let signed_header_sha = auth
        .signed_headers
        .iter()
        .any(|h| h == "x-amz-content-sha256")
        .then(|| parts.header("x-amz-content-sha256"))
        .flatten();
    let payload = auth
        .content_sha256
        .as_deref()
        .or(signed_header_sha)
        .unwrap_or(UNSIGNED_PAYLOAD);
    let check = match payload {
        UNSIGNED_PAYLOAD => PayloadCheck::Unsigned,
        hex => PayloadCheck::Sha256(payload_digest(hex)?),
    };
    require_signed(parts, &auth.signed_headers, payload, &auth.query_headers)?;
    let prefix = canonical_prefix(parts, &auth.signed_headers, true)?;
    let mut canonical = prefix;
    canonical.push_str(payload);
    let scope = auth.credential.scope();
    let string_to_sign = string_to_sign(&auth.amz_date, &scope, &canonical);
    let key = cache.key(
        secret,
        &auth.credential.date,
        &auth.credential.region,
        &auth.credential.service,
    );
    if !key.signs(string_to_sign.as_bytes(), &auth.signature) {
        return Err(signature_mismatch(&string_to_sign, &canonical));
    }
    Ok(check)
}

/// SigV2 covers no payload hash, so the body is held to its Content-MD5 and, when
/// the client sent one, to the SHA-256 in its (signed, as every `x-amz-*` header is
/// under SigV2) `x-amz-content-sha256`. The aws-chunked modes belong to SigV4: a
/// SigV2 request declaring one is refused rather than stored with its framing.
fn v2_payload_check(parts: &RequestParts) -> Result<PayloadCheck, S3Error> {
    match parts.header("x-amz-content-sha256") {
        None | Some(UNSIGNED_PAYLOAD) => Ok(PayloadCheck::Unsigned),
        Some(mode) if mode.starts_with("STREAMING-") => Err(S3Error::with_message(
            ErrorCode::InvalidRequest,
            "aws-chunked uploads require Signature Version 4.",
        )),
        Some(hex) => payload_digest(hex).map(PayloadCheck::Sha256),
    }
}

/// The digest of a hex payload hash, or the error S3 gives for any other value.
fn payload_digest(hex: &str) -> Result<[u8; 32], S3Error> {
    let mut digest = [0u8; 32];
    crate::checksum::hex_decode_into(hex, &mut digest)
        .then_some(digest)
        .ok_or_else(|| {
            S3Error::with_message(
                ErrorCode::InvalidArgument,
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
            )
            .field("ArgumentName", "x-amz-content-sha256")
            .field("ArgumentValue", hex)
        })
}

/// Refuses a request carrying an `x-amz-*` header the signature does not cover: one
/// neither in SignedHeaders nor, for a presigned URL, in its (signed) query with the
/// same value. `x-amz-content-sha256` is covered when it equals the payload hash the
/// canonical request ends with.
fn require_signed(
    parts: &RequestParts,
    signed_headers: &[String],
    payload: &str,
    query_headers: &[(String, String)],
) -> Result<(), S3Error> {
    let mut unsigned: Vec<&str> = Vec::new();
    for (name, value) in parts.headers {
        let covered = !name.starts_with("x-amz-")
            || signed_headers.iter().any(|h| h == name)
            || (name == "x-amz-content-sha256" && value == payload)
            || query_headers.iter().any(|(n, v)| n == name && v == value);
        if !covered && !unsigned.contains(&name.as_str()) {
            unsigned.push(name);
        }
    }
    if unsigned.is_empty() {
        return Ok(());
    }
    Err(S3Error::with_message(
        ErrorCode::AccessDenied,
        "There were headers present in the request which were not signed",
    )
    .field("HeadersNotSigned", unsigned.join(", ")))
}

/// The signature (hex) of `string_to_sign` under `key`: used by the client signer.
pub(crate) fn sign_hex(key: &[u8; 32], string_to_sign: &str) -> String {
    hex_encode(&hmac_sha256(key, string_to_sign.as_bytes()))
}

/// The canonical request and string to sign of a request, for the client signer.
pub(crate) fn client_string_to_sign(
    parts: &RequestParts,
    signed_headers: &[String],
    payload: &str,
    amz_date: &str,
    scope: &str,
    presigned: bool,
) -> Result<String, S3Error> {
    let canonical = format!(
        "{}{payload}",
        canonical_prefix(parts, signed_headers, presigned)?
    );
    Ok(string_to_sign(amz_date, scope, &canonical))
}

/// SHA-256 of data as an array, for chunk signing.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}
