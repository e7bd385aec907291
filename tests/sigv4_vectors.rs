//! AWS's published SigV4 examples for S3 (the "Signature Calculations" pages of
//! the S3 API reference), reproduced digit for digit by the server-side
//! verifier, plus round trips of every payload mode through our client signer.

use bleepstore::auth::{
    self, client, derive_signing_key, ParsedAuth, PayloadCheck, RequestParts, SecretKey,
    SigningKeyCache,
};
use bleepstore::s3::ErrorCode;

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
    let headers = headers(list);
    let parts = RequestParts {
        method,
        raw_path: path,
        raw_query: query,
        headers: &headers,
    };
    let parsed = auth::parse_auth(&parts).map_err(|e| e.code)?;
    let mut cache = SigningKeyCache::new(8);
    auth::verify(
        &parsed,
        &parts,
        &SecretKey::new(SECRET.into()),
        "us-east-1",
        EXAMPLE_TIME,
        &mut cache,
    )
    .map_err(|e| e.code)
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

#[test]
fn deferred_signature_covers_the_body() {
    // A signer that sends no x-amz-content-sha256 signs the body hash itself.
    let body_hash = auth::sha256_hex(b"payload");
    // sign_request always signs x-amz-content-sha256, so build the deferred case by hand.
    let mut base = headers(&[("host", "127.0.0.1:9000")]);
    let added = client::sign_request(&creds(), "PUT", "/b/k", "", &base, &body_hash, EXAMPLE_TIME);
    let amz = added
        .iter()
        .find(|(n, _)| n == "x-amz-date")
        .unwrap()
        .1
        .clone();
    base.push(("x-amz-date".into(), amz.clone()));
    let canonical = format!(
        "PUT\n/b/k\n\nhost:127.0.0.1:9000\nx-amz-date:{amz}\n\nhost;x-amz-date\n{body_hash}"
    );
    let scope = "20130524/us-east-1/s3/aws4_request";
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
        auth::sha256_hex(canonical.as_bytes())
    );
    let key = derive_signing_key(SECRET, "20130524", "us-east-1", "s3");
    let signature = bleepstore::checksum::hex_encode(&auth::hmac_sha256(&key, sts.as_bytes()));
    base.push(("authorization".into(), format!("AWS4-HMAC-SHA256 Credential={ACCESS}/{scope}, SignedHeaders=host;x-amz-date, Signature={signature}")));
    let Ok(PayloadCheck::Deferred(pending)) = verify_headers("PUT", "/b/k", "", &base) else {
        panic!("not deferred")
    };
    use sha2::{Digest, Sha256};
    let good: [u8; 32] = Sha256::digest(b"payload").into();
    let bad: [u8; 32] = Sha256::digest(b"payloaX").into();
    assert!(pending.verify(&good).is_ok());
    assert_eq!(
        pending.verify(&bad).err().map(|e| e.code),
        Some(ErrorCode::SignatureDoesNotMatch)
    );
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
        "AWS AKID:sig",
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
