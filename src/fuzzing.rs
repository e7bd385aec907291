//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz), compiled only with the
//! `fuzzing` feature. Each takes the fuzzer's bytes and drives the daemon's real
//! parsers with them, as the request path does; nothing here parses by itself. Where
//! the same input can be fed in two ways (whole, or in pieces as reads deliver it;
//! signed by the client, then verified by the server), the two results are compared,
//! so a wrong answer fails like a panic does.

use crate::auth::client::{aws_chunked_signed_body, aws_chunked_unsigned_body, ClientCredentials};
use crate::auth::{
    derive_signing_key, parse_auth, verify, ChunkVerifier, ParsedAuth, RequestParts, SecretKey,
    SigningKeyCache, EMPTY_SHA256,
};
use crate::clock;
use crate::http::aws_chunked::AwsChunkedDecoder;
use crate::http::{BodyKind, Chunked, Parsed, RequestHead};
use crate::s3::operation::{parse_range_spec, Operation};
use crate::s3::route::{resolve_target, route, OperationKind, Query};

/// The secret and scope of the fixed test user every auth target signs with (the AWS
/// documentation's example key).
const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
/// 2013-05-24T00:00:00Z, the SigV4 examples' date: the clock when a request names none.
const EXAMPLE_UNIX: i64 = 1_369_353_600;
/// The domain virtual-hosted requests are resolved against.
const DOMAIN: &str = "s3.example.com";

/// Piece lengths for feeding a body the way reads deliver it, drawn from `seed` (one
/// byte picks the scale, from one byte per read up to whole kilobytes).
struct Pieces {
    state: u32,
    scale: usize,
}

impl Pieces {
    fn new(seed: u8) -> Pieces {
        let scale = match seed & 7 {
            0 => 1,
            1 => 2,
            2 => 3,
            3 => 7,
            4 => 16,
            5 => 64,
            6 => 512,
            _ => 4096,
        };
        Pieces {
            state: u32::from(seed) | 0x9e37_7900,
            scale,
        }
    }

    fn next(&mut self) -> usize {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        1 + (self.state as usize) % self.scale
    }

    /// `data` cut into consecutive pieces.
    fn split<'d>(&mut self, data: &'d [u8]) -> Vec<&'d [u8]> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < data.len() {
            let end = (at + self.next()).min(data.len());
            out.push(&data[at..end]);
            at = end;
        }
        out
    }
}

fn parse_head(data: &[u8]) -> Option<(RequestHead, usize)> {
    match RequestHead::parse(data) {
        Ok(Parsed::Complete(head, used)) => Some((head, used)),
        _ => None,
    }
}

/// Target `http_head`: a request head and everything the request path reads from it
/// before authentication and routing (framing, persistence, the bucket and key the
/// path decodes to, the query), then the routing table and the operation's inputs.
pub fn http_head(data: &[u8]) {
    let head = match RequestHead::parse(data) {
        Ok(Parsed::Complete(head, used)) => {
            assert!(used > 0 && used <= data.len());
            // The connection loop parses again as bytes arrive: every shorter prefix of
            // a complete head must be Partial (not an error, not another head), and the
            // head alone parses the same.
            for cut in [used - 1, used / 2, used.saturating_sub(2)] {
                assert!(
                    matches!(RequestHead::parse(&data[..cut]), Ok(Parsed::Partial)),
                    "prefix of {cut} bytes of a {used}-byte head"
                );
            }
            let (again, used_again) = parse_head(&data[..used]).expect("the head alone");
            assert_eq!(used_again, used);
            assert_eq!(again.headers, head.headers);
            head
        }
        Ok(Parsed::Partial) | Err(_) => return,
    };
    let _ = (head.body_kind(), head.keep_alive(), head.expects_continue());
    for name in [
        "host",
        "content-length",
        "x-amz-content-sha256",
        "x-amz-date",
    ] {
        let _ = head.header(name);
    }
    for domain in [None, Some(DOMAIN)] {
        let Ok(target) = resolve_target(head.header("host"), &head.path, domain) else {
            continue;
        };
        let Ok(query) = Query::parse(&head.query) else {
            continue;
        };
        let copy_source = head.header("x-amz-copy-source").is_some();
        let Ok(operation_kind) = route(&head.method, &target, &query, copy_source) else {
            continue;
        };
        let _ = operation_kind.name();
        if let Ok(operation) = Operation::parse(operation_kind, &target, &query, &head) {
            let _ = operation.access();
        }
    }
}

/// Decodes a chunked body fed in `pieces`, giving the decoder at most `max` output
/// bytes per call, as `BodyReader` does. Returns the data, whether the body ended,
/// and the bytes consumed; `Err` for a framing error.
fn chunked_decode(pieces: &[&[u8]], max: usize) -> Result<(Vec<u8>, bool, usize), ()> {
    let mut chunked = Chunked::default();
    let mut out = Vec::new();
    let mut consumed = 0;
    for piece in pieces {
        let mut offset = 0;
        while offset < piece.len() {
            let before = out.len();
            let (used, done) = chunked
                .decode(&piece[offset..], &mut out, max)
                .map_err(|_| ())?;
            assert!(used <= piece.len() - offset);
            assert!(out.len() - before <= max, "more than the room given");
            offset += used;
            consumed += used;
            if done {
                return Ok((out, true, consumed));
            }
            assert!(used > 0, "no progress on {} bytes", piece.len() - offset);
        }
    }
    Ok((out, false, consumed))
}

/// Target `chunked_body`: HTTP chunked decoding (`http::body`, `http::line`). Byte 0
/// picks the output room per call, byte 1 the read sizes; the body is decoded whole
/// and in pieces, which must agree.
pub fn chunked_body(data: &[u8]) {
    let [room, seed, body @ ..] = data else {
        return;
    };
    let max = 1 + usize::from(*room) * 37;
    let whole = chunked_decode(&[body], usize::MAX);
    let pieces = Pieces::new(*seed).split(body);
    let split = chunked_decode(&pieces, max);
    assert_eq!(whole, split, "whole and in pieces differ");
}

/// The verifier of the fixed test user's aws-chunked bodies, seeded like the request's.
fn chunk_verifier(seed_signature: &str) -> ChunkVerifier {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let amz_date = clock::format_amz_date(EXAMPLE_UNIX);
    let key = KEY.get_or_init(|| derive_signing_key(SECRET_KEY, &amz_date[..8], REGION, "s3"));
    let scope = format!("{}/{REGION}/s3/aws4_request", &amz_date[..8]);
    ChunkVerifier::new(*key, &amz_date, &scope, seed_signature)
}

/// The outcome of decoding an aws-chunked body: data, trailers and whether it ended,
/// or the error code.
type AwsOutcome = Result<(Vec<u8>, Vec<(String, String)>, bool), crate::error::ErrorCode>;

fn aws_decode(pieces: &[&[u8]], signed: Option<&str>, trailer: bool) -> AwsOutcome {
    let verifier = signed.map(chunk_verifier);
    let mut decoder = AwsChunkedDecoder::new(verifier, trailer);
    let mut out = Vec::new();
    for piece in pieces {
        let used = decoder.feed(piece, &mut out).map_err(|e| e.code)?;
        assert!(used <= piece.len());
        if used < piece.len() {
            assert!(decoder.is_done(), "stopped early without ending");
            break;
        }
    }
    Ok((out, decoder.trailers().to_vec(), decoder.is_done()))
}

/// A 64-hex-digit signature to seed chunk verification with.
const SEED_SIGNATURE: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

/// Target `aws_chunked_body`: the aws-chunked decoder (`http::aws_chunked`) with the
/// real `ChunkVerifier`. Byte 0 picks the mode, byte 1 the read sizes:
/// - modes 0-3 decode the bytes as they are (signed, signed with a trailer, unsigned
///   with a trailer as STREAMING-UNSIGNED-PAYLOAD-TRAILER, unsigned), whole and in
///   pieces, which must agree;
/// - modes 4-7 take the bytes as object data, encode them with the client signer
///   (signed, signed with a signed trailer, unsigned with a trailer), optionally flip
///   one byte (byte 2 says where), and decode in pieces: an untouched body must
///   decode to the data.
pub fn aws_chunked_body(data: &[u8]) {
    let [mode, seed, rest @ ..] = data else {
        return;
    };
    let mut pieces = Pieces::new(*seed);
    match mode % 8 {
        raw @ 0..=3 => {
            let signed = (raw < 2).then_some(SEED_SIGNATURE);
            let trailer = raw == 1 || raw == 2;
            let whole = aws_decode(&[rest], signed, trailer);
            let split = aws_decode(&pieces.split(rest), signed, trailer);
            assert_eq!(whole, split, "whole and in pieces differ");
        }
        encoded => {
            let [flip, chunk, payload @ ..] = rest else {
                return;
            };
            // 1, 17, 33 ... bytes, and at most 8 chunks: an HMAC per chunk on each side
            // is the cost of this mode.
            let chunk_size = (1 + usize::from(*chunk) * 16).max(payload.len() / 8);
            let trailer = ("x-amz-checksum-crc32", "AAAAAA==");
            let creds = ClientCredentials {
                access_key: ACCESS_KEY.to_string(),
                secret_key: SECRET_KEY.to_string(),
                region: REGION.to_string(),
            };
            let (mut body, signed, with_trailer) = match encoded {
                4 | 5 => (
                    aws_chunked_signed_body(
                        &creds,
                        EXAMPLE_UNIX,
                        SEED_SIGNATURE,
                        payload,
                        chunk_size,
                        None,
                    ),
                    Some(SEED_SIGNATURE),
                    false,
                ),
                6 => (
                    aws_chunked_signed_body(
                        &creds,
                        EXAMPLE_UNIX,
                        SEED_SIGNATURE,
                        payload,
                        chunk_size,
                        Some(trailer),
                    ),
                    Some(SEED_SIGNATURE),
                    true,
                ),
                _ => (
                    aws_chunked_unsigned_body(payload, chunk_size, trailer),
                    None,
                    true,
                ),
            };
            let flipped = *flip & 1 == 1 && !body.is_empty();
            if flipped {
                let at = usize::from(*flip >> 1) * body.len() / 128;
                body[at] ^= 0x20;
            }
            let outcome = aws_decode(&pieces.split(&body), signed, with_trailer);
            if !flipped {
                let (out, trailers, done) = outcome.expect("a body the client encoded");
                assert!(done);
                assert_eq!(out, payload);
                if with_trailer {
                    assert_eq!(trailers, [(trailer.0.to_string(), trailer.1.to_string())]);
                }
            }
        }
    }
}

/// The instant a request says it was made (its x-amz-date or Date, a presigned URL's
/// X-Amz-Date or Expires), so that fuzzed requests get past the clock checks.
fn request_time(head: &RequestHead) -> i64 {
    let query_value = |name: &str| {
        head.query
            .split('&')
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
    };
    head.header("x-amz-date")
        .and_then(clock::parse_amz_date)
        .or_else(|| head.header("date").and_then(clock::parse_http_date))
        .or_else(|| query_value("X-Amz-Date").and_then(clock::parse_amz_date))
        .or_else(|| query_value("Expires").and_then(|e| e.parse::<i64>().ok()?.checked_sub(1)))
        .unwrap_or(EXAMPLE_UNIX)
        // A server's clock reads 1970 to 9999, whatever a request claims.
        .clamp(0, 253_402_300_799)
}

fn parts_of<'h>(head: &'h RequestHead, host_bucket: Option<&'h str>) -> RequestParts<'h> {
    RequestParts {
        method: &head.method,
        raw_path: &head.path,
        raw_query: &head.query,
        headers: &head.headers,
        has_body: !matches!(head.body_kind(), Ok(BodyKind::Empty)),
        host_bucket,
    }
}

/// Target `auth`: a request head through authentication as `s3::authenticate` runs
/// it: SigV4 and SigV2, header and presigned, recognised by `parse_auth`, then
/// `verify` (the canonical request, string to sign, signature, skew and expiry checks)
/// for the fixed test user, at the time the request names (or byte 0's offset from it).
pub fn auth(data: &[u8]) {
    let Some((head, _)) = parse_head(data) else {
        return;
    };
    let target = resolve_target(head.header("host"), &head.path, Some(DOMAIN)).ok();
    let host_bucket = target
        .as_ref()
        .filter(|t| t.virtual_host)
        .and_then(|t| t.bucket.as_deref());
    let parts = parts_of(&head, host_bucket);
    let Ok(parsed) = parse_auth(&parts) else {
        return;
    };
    if parsed.access_key().is_none() {
        return;
    }
    let skew = i64::from(data[0] % 4) * 600 - 900;
    let secret = SecretKey::new(SECRET_KEY.to_string());
    let mut cache = SigningKeyCache::new(4);
    for now in [
        request_time(&head),
        request_time(&head).saturating_add(skew),
    ] {
        if verify(&parsed, &parts, &secret, REGION, now, &mut cache).is_ok() {
            if let ParsedAuth::Presigned(_) = &parsed {
                let _ = parsed.clone().into_query_headers();
            }
        }
    }
}

/// Query parameters that make a request presigned (or a second auth form).
fn names_auth_parameter(query: &str) -> bool {
    query.split('&').any(|part| {
        let name = part.split_once('=').map_or(part, |(n, _)| n);
        let name = crate::auth::percent_decode(name)
            .map(|n| String::from_utf8_lossy(&n).to_ascii_lowercase())
            .unwrap_or_default();
        name.starts_with("x-amz-") || name == "awsaccesskeyid" || name == "signature"
    })
}

/// Target `canonical_request`: the canonical request and string to sign, built by the
/// client signer (`auth::client`) for a fuzzed request head and checked by the server
/// (`verify`): what one side signs, the other must accept. The SigV2 string to sign is
/// built for the same request.
pub fn canonical_request(data: &[u8]) {
    let Some((head, _)) = parse_head(data) else {
        return;
    };
    let Some(host) = head.header("host") else {
        return;
    };
    let _ = crate::auth::sigv2_string_to_sign(&parts_of(&head, None), "");
    let _ = crate::auth::sigv2_string_to_sign(&parts_of(&head, Some("bucket")), "date");
    let creds = ClientCredentials {
        access_key: ACCESS_KEY.to_string(),
        secret_key: SECRET_KEY.to_string(),
        region: REGION.to_string(),
    };
    let secret = SecretKey::new(SECRET_KEY.to_string());
    let mut cache = SigningKeyCache::new(4);
    // The headers the signer adds are its own; the request keeps every other one.
    let mut headers: Vec<(String, String)> = head
        .headers
        .iter()
        .filter(|(n, _)| {
            !matches!(
                n.as_str(),
                "x-amz-date" | "x-amz-content-sha256" | "authorization"
            )
        })
        .cloned()
        .collect();
    let payload = if data[0] & 1 == 0 {
        "UNSIGNED-PAYLOAD"
    } else {
        EMPTY_SHA256
    };
    let signed = crate::auth::client::sign_request(
        &creds,
        &head.method,
        &head.path,
        &head.query,
        &headers,
        payload,
        EXAMPLE_UNIX,
    );
    headers.extend(signed);
    let signed_head = RequestHead {
        headers,
        ..head.clone()
    };
    let valid_target = crate::auth::canonical_uri(&head.path).is_ok()
        && crate::auth::canonical_query(&head.query, false).is_ok();
    let plain_query = !names_auth_parameter(&head.query);
    let parts = parts_of(&signed_head, None);
    let outcome = parse_auth(&parts)
        .and_then(|auth| verify(&auth, &parts, &secret, REGION, EXAMPLE_UNIX, &mut cache));
    if valid_target && plain_query {
        if let Err(error) = outcome {
            panic!("a request the client signed was refused: {error:?}");
        }
    }
    // A presigned URL for the same target, with only the Host signed.
    let query = crate::auth::client::presign(
        &creds,
        &head.method,
        host,
        &head.path,
        &head.query,
        600,
        EXAMPLE_UNIX,
    );
    let presigned_head = RequestHead {
        query,
        headers: vec![("host".to_string(), host.to_string())],
        ..head.clone()
    };
    let parts = parts_of(&presigned_head, None);
    let outcome = parse_auth(&parts)
        .and_then(|auth| verify(&auth, &parts, &secret, REGION, EXAMPLE_UNIX, &mut cache));
    if valid_target && plain_query {
        if let Err(error) = outcome {
            panic!("a URL the client presigned was refused: {error:?}");
        }
    }
}

/// Target `xml_bodies`: the request documents S3 clients send, each through the parser
/// its handler uses (DeleteObjects, CompleteMultipartUpload, AccessControlPolicy,
/// CreateBucketConfiguration, VersioningConfiguration), and the element trees beneath
/// them (the hand-written one, and quick-xml's for configurations).
pub fn xml_bodies(data: &[u8]) {
    let _ = crate::s3::versioning::requested_versioning(data);
    let _ = crate::s3::xml::parse_document(data);
    let _ = crate::s3::object::delete_request(data);
    let _ = crate::s3::multipart::completion_parts(data);
    let _ = crate::s3::acl::acl_from_xml(data);
    let _ = crate::s3::xml::parse_create_bucket_configuration(data);
}

/// Target `range_conditions`: a GetObject's Range and conditional headers as the
/// operation parser reads them (`parse_range_spec`, HTTP dates), then resolved against
/// an object: the range against a size, the conditions against an ETag and a
/// modification time. The input is lines: Range, If-Match, If-None-Match,
/// If-Modified-Since, If-Unmodified-Since, the object's size, its modification time.
pub fn range_conditions(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut headers = vec![("host".to_string(), "h".to_string())];
    for name in [
        "range",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
    ] {
        match lines.next() {
            Some(value) if !value.is_empty() => headers.push((name.to_string(), value.to_string())),
            _ => {}
        }
    }
    let number = |line: Option<&str>| line.and_then(|l| l.trim().parse::<i64>().ok());
    let size = number(lines.next()).map_or(0, |n| n as u64);
    let last_modified = number(lines.next()).unwrap_or(EXAMPLE_UNIX);
    // Every date form, and each round trip of what the parsers accept.
    for (_, value) in &headers {
        if let Some(unix) = clock::parse_http_date(value) {
            assert_eq!(
                clock::parse_http_date(&clock::format_http_date(unix)),
                Some(unix)
            );
        }
        if let Some(unix) = clock::parse_amz_date(value) {
            assert_eq!(
                clock::parse_amz_date(&clock::format_amz_date(unix)),
                Some(unix)
            );
        }
        if let Some(millis) = clock::parse_iso8601_millis(value) {
            assert_eq!(
                clock::parse_iso8601_millis(&clock::format_iso8601_millis(millis)),
                Some(millis)
            );
        }
    }
    let head = RequestHead {
        method: "GET".to_string(),
        path: "/bucket/key".to_string(),
        query: String::new(),
        minor_version: 1,
        headers,
    };
    let target = resolve_target(Some("h"), &head.path, None).expect("a plain path");
    let Ok(Operation::GetObject(input)) =
        Operation::parse(OperationKind::GetObject, &target, &Query::default(), &head)
    else {
        return;
    };
    assert_eq!(
        input.range,
        head.header("range").and_then(parse_range_spec),
        "the operation reads Range as parse_range_spec does"
    );
    let etag = "d41d8cd98f00b204e9800998ecf8427e";
    let _ = crate::s3::object::evaluate_preconditions(&input.conditions, etag, last_modified);
    if let Some(range) = &input.range {
        for size in [size, size % 1024, 0, 1, u64::MAX] {
            if let Ok(resolved) = crate::s3::object::resolve_range(range, size) {
                assert!(resolved.first <= resolved.last, "{range:?} of {size}");
                assert!(resolved.last < size, "{range:?} of {size}");
            }
        }
    }
}

/// Target `config_file`: the `--config` YAML parser (`config::file::parse`), and the
/// size and duration forms it reads.
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::config::file::parse(text);
    let _ = crate::config::file::parse_size(text);
    let _ = crate::config::file::parse_duration(text);
}
