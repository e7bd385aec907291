//! AWS's published SigV4 examples for S3 (the "Signature Calculations" pages of
//! the S3 API reference), reproduced digit for digit by the server-side
//! verifier, plus round trips of every payload mode through our client signer.

use bleepstore::auth::{
    self, client, derive_signing_key, ParsedAuth, PayloadCheck, RequestParts, SecretKey,
    SigningKeyCache,
};
use bleepstore::error::ErrorCode;

const ACCESS: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EXAMPLE_TIME: i64 = 1_369_353_600; // 20130524T000000Z
const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect()
}

fn check(
    method: &str,
    path: &str,
    query: &str,
    list: &[(&str, &str)],
) -> Result<PayloadCheck, ErrorCode> {
    check_full(method, path, query, list, false).map_err(|e| e.code)
}

/// Verifies a request whose head says a body follows (or not), returning the whole error.
fn check_full(
    method: &str,
    path: &str,
    query: &str,
    list: &[(&str, &str)],
    has_body: bool,
) -> Result<PayloadCheck, bleepstore::error::S3Error> {
    let headers = headers(list);
    let parts = RequestParts {
        method,
        raw_path: path,
        raw_query: query,
        headers: &headers,
        has_body,
        host_bucket: None,
    };
    let parsed = auth::parse_auth(&parts)?;
    let mut cache = SigningKeyCache::new(8);
    auth::verify(
        &parsed,
        &parts,
        &SecretKey::new(SECRET.into()),
        "us-east-1",
        EXAMPLE_TIME,
        &mut cache,
    )
}

fn authorization(signed: &str, signature: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential={ACCESS}/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed},Signature={signature}")
}

#[test]
fn aws_example_get_object() {
    let auth = authorization(
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    let request = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY),
        ("x-amz-date", "20130524T000000Z"),
        ("Authorization", auth.as_str()),
    ];
    assert!(matches!(
        check("GET", "/test.txt", "", &request),
        Ok(PayloadCheck::Sha256(_))
    ));
    let mut tampered = request;
    tampered[1] = ("Range", "bytes=0-10");
    assert_eq!(
        check("GET", "/test.txt", "", &tampered).err(),
        Some(ErrorCode::SignatureDoesNotMatch)
    );
}

#[test]
fn aws_example_put_object() {
    let auth = authorization(
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    );
    let request = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        (
            "x-amz-content-sha256",
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        ),
        ("Authorization", auth.as_str()),
    ];
    assert!(matches!(
        check("PUT", "/test%24file.text", "", &request),
        Ok(PayloadCheck::Sha256(_))
    ));
}

#[test]
fn aws_example_get_bucket_lifecycle() {
    let auth = authorization(
        "host;x-amz-content-sha256;x-amz-date",
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    );
    let request = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-content-sha256", EMPTY),
        ("Authorization", auth.as_str()),
    ];
    assert!(check("GET", "/", "lifecycle", &request).is_ok());
}

#[test]
fn aws_example_list_objects() {
    let auth = authorization(
        "host;x-amz-content-sha256;x-amz-date",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    );
    let request = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-content-sha256", EMPTY),
        ("Authorization", auth.as_str()),
    ];
    assert!(check("GET", "/", "max-keys=2&prefix=J", &request).is_ok());
    assert!(
        check("GET", "/", "prefix=J&max-keys=2", &request).is_ok(),
        "query order does not matter"
    );
}

#[test]
fn aws_example_presigned_url() {
    let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
    let request = [("Host", "examplebucket.s3.amazonaws.com")];
    assert!(matches!(
        check("GET", "/test.txt", query, &request),
        Ok(PayloadCheck::Unsigned)
    ));
    // The same URL a day and a second later has expired.
    let headers = headers(&request);
    let parts = RequestParts {
        method: "GET",
        raw_path: "/test.txt",
        raw_query: query,
        headers: &headers,
        has_body: false,
        host_bucket: None,
    };
    let parsed = auth::parse_auth(&parts).unwrap();
    let mut cache = SigningKeyCache::new(8);
    let late = auth::verify(
        &parsed,
        &parts,
        &SecretKey::new(SECRET.into()),
        "us-east-1",
        EXAMPLE_TIME + 86_401,
        &mut cache,
    );
    let error = late.err().unwrap();
    assert_eq!(
        (error.code, error.message.as_str()),
        (ErrorCode::AccessDenied, "Request has expired")
    );
}

#[test]
fn aws_example_chunked_upload() {
    // PUT /examplefile.txt with 65536 + 1024 bytes of 'a' in 64 KiB chunks.
    let auth = authorization(
        "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    );
    let request = [
        ("Host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("Authorization", auth.as_str()),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("Content-Length", "66824"),
    ];
    let Ok(PayloadCheck::StreamingSigned {
        mut verifier,
        trailer: false,
    }) = check("PUT", "/examplebucket/chunkObject.txt", "", &request)
    else {
        panic!("seed signature rejected");
    };
    use sha2::{Digest, Sha256};
    let first: [u8; 32] = Sha256::digest(vec![b'a'; 65536]).into();
    let second: [u8; 32] = Sha256::digest(vec![b'a'; 1024]).into();
    let last: [u8; 32] = Sha256::digest(b"").into();
    assert!(!verifier.verify_chunk(
        &second,
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    ));
    assert!(verifier.verify_chunk(
        &first,
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    ));
    assert!(verifier.verify_chunk(
        &second,
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
    ));
    assert!(verifier.verify_chunk(
        &last,
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
    ));
}

#[test]
fn aws_example_signing_key() {
    // The signing key of the examples, as the documentation prints it.
    let key = derive_signing_key(SECRET, "20130524", "us-east-1", "s3");
    assert_eq!(key.len(), 32);
    assert_ne!(
        key,
        derive_signing_key(SECRET, "20130525", "us-east-1", "s3")
    );
}

fn creds() -> client::ClientCredentials {
    client::ClientCredentials {
        access_key: ACCESS.into(),
        secret_key: SECRET.into(),
        region: "us-east-1".into(),
    }
}

fn signed(
    method: &str,
    path: &str,
    query: &str,
    payload: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut base = headers(&[("host", "127.0.0.1:9000")]);
    base.extend(headers(extra));
    let added = client::sign_request(&creds(), method, path, query, &base, payload, EXAMPLE_TIME);
    base.extend(added);
    base
}

fn verify_headers(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
) -> Result<PayloadCheck, ErrorCode> {
    let list: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    check(method, path, query, &list)
}

#[test]
fn client_signer_round_trips_every_payload_mode() {
    let body_hash = auth::sha256_hex(b"hello");
    let h = signed("PUT", "/b/a%20key", "x=1", &body_hash, &[]);
    assert!(matches!(
        verify_headers("PUT", "/b/a%20key", "x=1", &h),
        Ok(PayloadCheck::Sha256(_))
    ));
    let h = signed("PUT", "/b/k", "", "UNSIGNED-PAYLOAD", &[]);
    assert!(matches!(
        verify_headers("PUT", "/b/k", "", &h),
        Ok(PayloadCheck::Unsigned)
    ));
    let h = signed(
        "PUT",
        "/b/k",
        "",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        &[("x-amz-trailer", "x-amz-checksum-crc32")],
    );
    assert!(matches!(
        verify_headers("PUT", "/b/k", "", &h),
        Ok(PayloadCheck::StreamingUnsignedTrailer)
    ));
    let h = signed(
        "PUT",
        "/b/k",
        "",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        &[],
    );
    assert!(matches!(
        verify_headers("PUT", "/b/k", "", &h),
        Ok(PayloadCheck::StreamingSigned { trailer: true, .. })
    ));
    let h = signed("PUT", "/b/k", "", "not-a-hash", &[]);
    assert_eq!(
        verify_headers("PUT", "/b/k", "", &h).err(),
        Some(ErrorCode::InvalidArgument)
    );
}

/// A signature over `host;x-amz-date` only, made by hand: what a signer that sends no
/// x-amz-content-sha256 produces, with `payload` as the canonical request's last line.
fn signed_without_content_sha(method: &str, path: &str, payload: &str) -> Vec<(String, String)> {
    let amz = "20130524T000000Z";
    let canonical = format!(
        "{method}\n{path}\n\nhost:127.0.0.1:9000\nx-amz-date:{amz}\n\nhost;x-amz-date\n{payload}"
    );
    let scope = "20130524/us-east-1/s3/aws4_request";
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
        auth::sha256_hex(canonical.as_bytes())
    );
    let key = derive_signing_key(SECRET, "20130524", "us-east-1", "s3");
    let signature = bleepstore::checksum::hex_encode(&auth::hmac_sha256(&key, sts.as_bytes()));
    headers(&[
        ("host", "127.0.0.1:9000"),
        ("x-amz-date", amz),
        ("authorization", &format!("AWS4-HMAC-SHA256 Credential={ACCESS}/{scope}, SignedHeaders=host;x-amz-date, Signature={signature}")),
    ])
}

fn as_list(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

#[test]
fn without_content_sha256_a_bodiless_request_is_verified_at_once() {
    // Signed as an empty payload: verified from the head, nothing left pending.
    let h = signed_without_content_sha("GET", "/b/k", EMPTY);
    let Ok(PayloadCheck::Sha256(digest)) = check("GET", "/b/k", "", &as_list(&h)) else {
        panic!("not verified at once")
    };
    assert_eq!(bleepstore::checksum::hex_encode(&digest), EMPTY);
    // A made-up signature (the attack of issue 8) fails at once, as does one over a body hash.
    let mut forged = h.clone();
    let auth_value = forged
        .iter_mut()
        .find(|(n, _)| n == "authorization")
        .unwrap();
    let head = auth_value
        .1
        .rsplit_once("Signature=")
        .unwrap()
        .0
        .to_string();
    auth_value.1 = format!("{head}Signature={}", "0".repeat(64));
    assert_eq!(
        check("GET", "/b/k", "", &as_list(&forged)).err(),
        Some(ErrorCode::SignatureDoesNotMatch)
    );
    let h = signed_without_content_sha("DELETE", "/b/k", &auth::sha256_hex(b"x"));
    assert_eq!(
        check("DELETE", "/b/k", "", &as_list(&h)).err(),
        Some(ErrorCode::SignatureDoesNotMatch)
    );
}

#[test]
fn without_content_sha256_a_body_is_refused_as_aws_does() {
    let h = signed_without_content_sha("PUT", "/b/k", &auth::sha256_hex(b"payload"));
    let error = check_full("PUT", "/b/k", "", &as_list(&h), true)
        .err()
        .unwrap();
    assert_eq!(
        (error.code, error.message.as_str()),
        (
            ErrorCode::InvalidRequest,
            "Missing required header for this request: x-amz-content-sha256"
        )
    );
}

#[test]
fn unsigned_amz_headers_are_refused() {
    let mut h = signed(
        "PUT",
        "/b/k",
        "",
        "UNSIGNED-PAYLOAD",
        &[("x-amz-meta-a", "1")],
    );
    assert!(check_full("PUT", "/b/k", "", &as_list(&h), true).is_ok());
    for (name, value) in [
        ("x-amz-acl", "public-read"),
        ("x-amz-copy-source", "other/secret"),
        (
            "X-Amz-Grant-Read",
            "uri=http://acs.amazonaws.com/groups/global/AllUsers",
        ),
        ("x-amz-meta-b", "2"),
    ] {
        let mut forged = h.clone();
        forged.push((name.to_ascii_lowercase(), value.into()));
        let error = check_full("PUT", "/b/k", "", &as_list(&forged), true)
            .err()
            .unwrap();
        assert_eq!(error.code, ErrorCode::AccessDenied, "{name}");
        assert_eq!(
            error.message,
            "There were headers present in the request which were not signed"
        );
        assert!(error
            .fields
            .iter()
            .any(|(f, v)| *f == "HeadersNotSigned" && *v == name.to_ascii_lowercase()));
    }
    // A second value of a signed header changes the canonical request.
    let mut doubled = h.clone();
    doubled.push(("x-amz-meta-a".into(), "2".into()));
    assert_eq!(
        check_full("PUT", "/b/k", "", &as_list(&doubled), true)
            .err()
            .map(|e| e.code),
        Some(ErrorCode::SignatureDoesNotMatch)
    );
    // x-amz-content-sha256 is bound as the canonical request's last line, signed or not,
    // but only with the value that line holds.
    let names_at = h.iter().position(|(n, _)| n == "authorization").unwrap();
    h[names_at].1 = h[names_at].1.replace(";x-amz-content-sha256", "");
    assert_eq!(
        check_full("PUT", "/b/k", "", &as_list(&h), true)
            .err()
            .map(|e| e.code),
        Some(ErrorCode::SignatureDoesNotMatch),
        "SignedHeaders is itself signed"
    );
    let unsigned_sha = signed_without_content_sha("PUT", "/b/k", "UNSIGNED-PAYLOAD");
    let mut with_sha = unsigned_sha.clone();
    with_sha.push(("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
    assert!(matches!(
        check_full("PUT", "/b/k", "", &as_list(&with_sha), true),
        Ok(PayloadCheck::Unsigned)
    ));
    with_sha.push(("x-amz-content-sha256".into(), EMPTY.into()));
    assert_eq!(
        check_full("PUT", "/b/k", "", &as_list(&with_sha), true)
            .err()
            .map(|e| e.code),
        Some(ErrorCode::AccessDenied)
    );
}

#[test]
fn presigned_urls_obey_only_what_they_sign() {
    let host = "127.0.0.1:9000";
    let query = client::presign(&creds(), "PUT", host, "/b/k", "", 300, EXAMPLE_TIME);
    let plain = [("host", host)];
    assert!(matches!(
        check_full("PUT", "/b/k", &query, &plain, true),
        Ok(PayloadCheck::Unsigned)
    ));
    for name in ["x-amz-acl", "x-amz-copy-source", "x-amz-metadata-directive"] {
        let forged = [("host", host), (name, "public-read")];
        let error = check_full("PUT", "/b/k", &query, &forged, true)
            .err()
            .unwrap();
        assert_eq!(error.code, ErrorCode::AccessDenied, "{name}");
    }
    // An x-amz-* parameter in the signed query stands for the header: the same value may
    // also be sent as one, another value may not, and the verified URL hands it over.
    let query = client::presign(
        &creds(),
        "PUT",
        host,
        "/b/k",
        "x-amz-acl=public-read",
        300,
        EXAMPLE_TIME,
    );
    let same = [("host", host), ("x-amz-acl", "public-read")];
    assert!(check_full("PUT", "/b/k", &query, &same, true).is_ok());
    let other = [("host", host), ("x-amz-acl", "public-read-write")];
    assert_eq!(
        check_full("PUT", "/b/k", &query, &other, true)
            .err()
            .map(|e| e.code),
        Some(ErrorCode::AccessDenied)
    );
    let headers = headers(&plain);
    let parts = RequestParts {
        method: "PUT",
        raw_path: "/b/k",
        raw_query: &query,
        headers: &headers,
        has_body: true,
        host_bucket: None,
    };
    let parsed = auth::parse_auth(&parts).unwrap();
    assert_eq!(
        parsed.into_query_headers(),
        vec![("x-amz-acl".to_string(), "public-read".to_string())]
    );
    // Changing any signed part of the URL breaks it.
    let tampered = query.replace("public-read", "public-read-write");
    assert_eq!(
        check("PUT", "/b/k", &tampered, &plain).err(),
        Some(ErrorCode::SignatureDoesNotMatch)
    );
    // A payload hash carried in the query is signed, and the body is held to it.
    let digest = auth::sha256_hex(b"body");
    let query = client::presign(
        &creds(),
        "PUT",
        host,
        "/b/k",
        &format!("X-Amz-Content-Sha256={digest}"),
        300,
        EXAMPLE_TIME,
    );
    let Ok(PayloadCheck::Sha256(held)) = check_full("PUT", "/b/k", &query, &plain, true) else {
        panic!("payload hash in the query not honoured")
    };
    assert_eq!(bleepstore::checksum::hex_encode(&held), digest);
}

#[test]
fn rejects_malformed_and_mismatched_auth() {
    let mut h = signed("GET", "/b", "", EMPTY, &[]);
    assert!(verify_headers("GET", "/b", "", &h).is_ok());
    // Wrong secret.
    let headers_list: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let hv = headers(&headers_list);
    let parts = RequestParts {
        method: "GET",
        raw_path: "/b",
        raw_query: "",
        headers: &hv,
        has_body: false,
        host_bucket: None,
    };
    let parsed = auth::parse_auth(&parts).unwrap();
    assert_eq!(parsed.access_key(), Some(ACCESS));
    let mut cache = SigningKeyCache::new(4);
    let wrong = auth::verify(
        &parsed,
        &parts,
        &SecretKey::new("nope".into()),
        "us-east-1",
        EXAMPLE_TIME,
        &mut cache,
    );
    assert_eq!(
        wrong.err().map(|e| e.code),
        Some(ErrorCode::SignatureDoesNotMatch)
    );
    // Clock skew.
    let skewed = auth::verify(
        &parsed,
        &parts,
        &SecretKey::new(SECRET.into()),
        "us-east-1",
        EXAMPLE_TIME + 3600,
        &mut cache,
    );
    assert_eq!(
        skewed.err().map(|e| e.code),
        Some(ErrorCode::RequestTimeTooSkewed)
    );
    // Wrong region.
    let region = auth::verify(
        &parsed,
        &parts,
        &SecretKey::new(SECRET.into()),
        "eu-west-1",
        EXAMPLE_TIME,
        &mut cache,
    );
    assert_eq!(
        region.err().map(|e| e.code),
        Some(ErrorCode::AuthorizationHeaderMalformed)
    );
    // Both forms at once.
    assert_eq!(
        verify_headers("GET", "/b", "X-Amz-Algorithm=AWS4-HMAC-SHA256", &h).err(),
        Some(ErrorCode::InvalidArgument)
    );
    // Garbage headers.
    for bad in [
        "AWS4-HMAC-SHA256 Credential=x",
        "AWS4-HMAC-SHA256 Foo=bar",
        "AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=00",
    ] {
        h.retain(|(n, _)| n != "authorization");
        h.push(("authorization".into(), bad.into()));
        let code = verify_headers("GET", "/b", "", &h).err();
        assert!(
            matches!(
                code,
                Some(ErrorCode::AuthorizationHeaderMalformed | ErrorCode::InvalidRequest)
            ),
            "{bad}: {code:?}"
        );
    }
    // SigV2 headers without the key:signature shape.
    for bad in ["AWS AKID", "AWS :sig", "AWS AKID:"] {
        h.retain(|(n, _)| n != "authorization");
        h.push(("authorization".into(), bad.into()));
        let code = verify_headers("GET", "/b", "", &h).err();
        assert_eq!(code, Some(ErrorCode::InvalidArgument), "{bad}");
    }
    assert!(matches!(
        check("GET", "/b", "", &[("host", "x")]),
        Ok(PayloadCheck::Unsigned)
    ));
    let anonymous = headers(&[("host", "x")]);
    let parts = RequestParts {
        method: "GET",
        raw_path: "/b",
        raw_query: "",
        headers: &anonymous,
        has_body: false,
        host_bucket: None,
    };
    assert!(matches!(
        auth::parse_auth(&parts),
        Ok(ParsedAuth::Anonymous)
    ));
}

#[test]
fn client_chunked_bodies_verify() {
    let h = signed("PUT", "/b/k", "", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &[]);
    let seed =
        client::signature_of(&h.iter().find(|(n, _)| n == "authorization").unwrap().1).to_string();
    let Ok(PayloadCheck::StreamingSigned { mut verifier, .. }) =
        verify_headers("PUT", "/b/k", "", &h)
    else {
        panic!()
    };
    let data = vec![7u8; 10_000];
    let body = client::aws_chunked_signed_body(&creds(), EXAMPLE_TIME, &seed, &data, 4096, None);
    use sha2::{Digest, Sha256};
    let mut offset = 0;
    for chunk in data.chunks(4096).chain(std::iter::once(&[][..])) {
        let line_end = body[offset..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap()
            + offset;
        let line = std::str::from_utf8(&body[offset..line_end]).unwrap();
        let signature = line.split("chunk-signature=").nth(1).unwrap();
        let hash: [u8; 32] = Sha256::digest(chunk).into();
        assert!(verifier.verify_chunk(&hash, signature));
        offset = line_end + 2 + if chunk.is_empty() { 0 } else { chunk.len() + 2 };
    }
}
