//! A client-side SigV4 signer, for the test suite and the load generator: the
//! same canonical forms as the server, used from the other side.

use crate::auth::sigv4::derive_signing_key;
use crate::auth::verify::{client_string_to_sign, sha256, sign_hex, ChunkVerifier, RequestParts};
use crate::checksum::hex_encode;
use crate::clock;

#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl ClientCredentials {
    fn scope(&self, unix: i64) -> (String, String) {
        let amz_date = clock::format_amz_date(unix);
        let scope = format!("{}/{}/s3/aws4_request", &amz_date[..8], self.region);
        (amz_date, scope)
    }

    fn key(&self, amz_date: &str) -> [u8; 32] {
        derive_signing_key(&self.secret_key, &amz_date[..8], &self.region, "s3")
    }
}

/// Signs a request with the Authorization header. `headers` must include host;
/// returns the headers to add: x-amz-date, x-amz-content-sha256, authorization.
/// Every given header and the added ones are signed.
pub fn sign_request(
    creds: &ClientCredentials,
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &[(String, String)],
    payload: &str,
    unix: i64,
) -> Vec<(String, String)> {
    let (amz_date, scope) = creds.scope(unix);
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    all.push(("x-amz-date".into(), amz_date.clone()));
    all.push(("x-amz-content-sha256".into(), payload.to_string()));
    let mut names: Vec<String> = all.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    names.dedup();
    let parts = RequestParts {
        method,
        raw_path,
        raw_query,
        headers: &all,
        has_body: false,
        host_bucket: None,
    };
    let string_to_sign = client_string_to_sign(&parts, &names, payload, &amz_date, &scope, false)
        .unwrap_or_default();
    let signature = sign_hex(&creds.key(&amz_date), &string_to_sign);
    vec![
        ("x-amz-date".into(), amz_date),
        ("x-amz-content-sha256".into(), payload.to_string()),
        (
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
                creds.access_key,
                names.join(";")
            ),
        ),
    ]
}

/// The signature `sign_request` put in an Authorization header value.
pub fn signature_of(authorization: &str) -> &str {
    authorization
        .rsplit("Signature=")
        .next()
        .unwrap_or_default()
}

/// The query string of a presigned URL: `raw_query` plus the X-Amz-* parameters.
pub fn presign(
    creds: &ClientCredentials,
    method: &str,
    host: &str,
    raw_path: &str,
    raw_query: &str,
    expires_secs: u64,
    unix: i64,
) -> String {
    let (amz_date, scope) = creds.scope(unix);
    let mut credential = String::new();
    crate::auth::uri_encode(
        format!("{}/{scope}", creds.access_key).as_bytes(),
        true,
        &mut credential,
    );
    let mut query = String::from(raw_query);
    for (name, value) in [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential", credential),
        ("X-Amz-Date", amz_date.clone()),
        ("X-Amz-Expires", expires_secs.to_string()),
        ("X-Amz-SignedHeaders", "host".to_string()),
    ] {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.push_str(&value);
    }
    let headers = vec![("host".to_string(), host.to_string())];
    let parts = RequestParts {
        method,
        raw_path,
        raw_query: &query,
        headers: &headers,
        has_body: false,
        host_bucket: None,
    };
    // A payload hash the caller put in the query is what the signature covers.
    let payload = raw_query
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-Content-Sha256="))
        .unwrap_or("UNSIGNED-PAYLOAD");
    let string_to_sign = client_string_to_sign(
        &parts,
        &["host".to_string()],
        payload,
        &amz_date,
        &scope,
        true,
    )
    .unwrap_or_default();
    let signature = sign_hex(&creds.key(&amz_date), &string_to_sign);
    format!("{query}&X-Amz-Signature={signature}")
}

/// An aws-chunked body with chained chunk signatures seeded by the request's
/// signature; with `trailer`, the final chunk is followed by that header and a
/// trailer signature (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER).
pub fn aws_chunked_signed_body(
    creds: &ClientCredentials,
    unix: i64,
    seed_signature: &str,
    data: &[u8],
    chunk_size: usize,
    trailer: Option<(&str, &str)>,
) -> Vec<u8> {
    let (amz_date, scope) = creds.scope(unix);
    let key = creds.key(&amz_date);
    let mut previous = seed_signature.to_string();
    let mut body = Vec::with_capacity(data.len() + 256);
    let chunks = data
        .chunks(chunk_size.max(1))
        .chain(std::iter::once(&[][..]));
    for chunk in chunks {
        let string_to_sign = ChunkVerifier::new(key, &amz_date, &scope, &previous)
            .chunk_string_to_sign(&sha256(chunk));
        let signature = sign_hex(&key, &string_to_sign);
        body.extend_from_slice(
            format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes(),
        );
        if !chunk.is_empty() {
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
        previous = signature;
    }
    if let Some((name, value)) = trailer {
        let block = format!("{name}:{value}\n");
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous}\n{}",
            hex_encode(&sha256(block.as_bytes()))
        );
        let signature = sign_hex(&key, &string_to_sign);
        body.extend_from_slice(
            format!("{name}:{value}\r\nx-amz-trailer-signature:{signature}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(b"\r\n");
    body
}

/// An aws-chunked body with unsigned chunks and a trailing header
/// (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
pub fn aws_chunked_unsigned_body(data: &[u8], chunk_size: usize, trailer: (&str, &str)) -> Vec<u8> {
    let mut body = Vec::with_capacity(data.len() + 128);
    for chunk in data.chunks(chunk_size.max(1)) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("0\r\n{}:{}\r\n\r\n", trailer.0, trailer.1).as_bytes());
    body
}
