//! The SigV4 signer for requests to an upstream S3 (AWS or an S3-compatible server).
//!
//! It is built on the daemon's own SigV4 code: the canonical request and string to
//! sign come from `auth::client_string_to_sign`, the key chain from
//! `auth::derive_signing_key` through a [`SigningKeyCache`], so the upstream side
//! signs exactly what our verifier checks. On top of that it adds what talking to a
//! real store needs: session tokens (`x-amz-security-token`, signed), a choice of
//! payload hash, a configurable region and service, and credentials taken from the
//! configuration or, failing that, the standard AWS environment variables.

use sha2::{Digest, Sha256};

use crate::auth::{client_string_to_sign, sign_hex, RequestParts, SecretKey, SigningKeyCache};
use crate::checksum::{hex_decode, hex_encode};
use crate::clock;
use crate::limits;
use crate::upstream_auth::{AuthError, OutgoingRequest};

/// The algorithm name that opens the Authorization header and the string to sign.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The service name S3 signs with.
pub const S3_SERVICE: &str = "s3";
/// The environment variable holding the access key id, as the AWS tools read it.
pub const ENV_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// The environment variable holding the secret access key.
pub const ENV_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// The environment variable holding the session token of temporary credentials.
pub const ENV_SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
/// The header that carries a session token; it is signed with the others.
pub const SECURITY_TOKEN_HEADER: &str = "x-amz-security-token";

/// Headers the signer writes itself: a value of these the caller passes is dropped,
/// so the request carries exactly one, the signed one.
const SIGNER_HEADERS: &[&str] = &[
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    SECURITY_TOKEN_HEADER,
];

/// Headers sent but never signed: proxies and HTTP stacks may change or drop them on
/// the way, which would break a signature that covered them.
const UNSIGNED_HEADERS: &[&str] = &[
    "user-agent",
    "expect",
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "x-amzn-trace-id",
];

/// AWS credentials: an access key id, its secret, and the session token of
/// temporary credentials. `Debug` shows the access key id; the secrets are redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: SecretKey,
    pub session_token: Option<SecretKey>,
}

impl AwsCredentials {
    /// Credentials from their parts; an empty session token counts as none.
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> Self {
        AwsCredentials {
            access_key_id: access_key_id.to_string(),
            secret_access_key: SecretKey::new(secret_access_key.to_string()),
            session_token: session_token
                .filter(|t| !t.is_empty())
                .map(|t| SecretKey::new(t.to_string())),
        }
    }

    /// The credentials a backend uses: the configured access key id and secret when
    /// both are given (with the configured session token, if any), else those of the
    /// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// looked up through `env`). The two sources are never mixed: a session token
    /// from the environment does not join configured keys, nor a configured token
    /// the environment's keys. Empty values count as unset; one key without the
    /// other is an error, as is a token without keys, and finding nothing.
    pub fn resolve(
        access_key_id: Option<&str>,
        secret_access_key: Option<&str>,
        session_token: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<AwsCredentials, AuthError> {
        let given = |value: Option<&str>| value.filter(|v| !v.is_empty()).map(str::to_string);
        match (given(access_key_id), given(secret_access_key)) {
            (Some(id), Some(secret)) => {
                return Ok(AwsCredentials::new(&id, &secret, session_token))
            }
            (Some(_), None) => {
                return Err(AuthError::Credentials(
                    "an access key id is configured without its secret access key".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(AuthError::Credentials(
                    "a secret access key is configured without its access key id".into(),
                ))
            }
            (None, None) if given(session_token).is_some() => {
                return Err(AuthError::Credentials(
                    "a session token is configured without an access key id and secret".into(),
                ))
            }
            (None, None) => {}
        }
        let from_env = |name: &str| env(name).filter(|v| !v.is_empty());
        match (
            from_env(ENV_ACCESS_KEY_ID),
            from_env(ENV_SECRET_ACCESS_KEY),
        ) {
            (Some(id), Some(secret)) => Ok(AwsCredentials::new(
                &id,
                &secret,
                from_env(ENV_SESSION_TOKEN).as_deref(),
            )),
            (Some(_), None) => Err(AuthError::Credentials(format!(
                "{ENV_ACCESS_KEY_ID} is set but {ENV_SECRET_ACCESS_KEY} is not"
            ))),
            (None, Some(_)) => Err(AuthError::Credentials(format!(
                "{ENV_SECRET_ACCESS_KEY} is set but {ENV_ACCESS_KEY_ID} is not"
            ))),
            (None, None) => Err(AuthError::Credentials(format!(
                "no access key configured and neither {ENV_ACCESS_KEY_ID} nor {ENV_SECRET_ACCESS_KEY} is set"
            ))),
        }
    }
}

/// What the signature says of the body: the last line of the canonical request and
/// the value of `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadHash {
    /// The body is not covered (`UNSIGNED-PAYLOAD`); over TLS, S3 accepts this for
    /// bodies streamed without hashing them first.
    Unsigned,
    /// The SHA-256 of the body, which the store checks.
    Sha256([u8; 32]),
    /// There is no body: the SHA-256 of the empty string.
    Empty,
}

impl PayloadHash {
    /// The hash of a body held in memory (`Empty` for an empty one).
    pub fn of(body: &[u8]) -> PayloadHash {
        if body.is_empty() {
            PayloadHash::Empty
        } else {
            PayloadHash::Sha256(Sha256::digest(body).into())
        }
    }

    /// A SHA-256 computed elsewhere, given as 64 hex digits of either case.
    pub fn from_hex(hex: &str) -> Result<PayloadHash, AuthError> {
        hex_decode(hex)
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
            .map(PayloadHash::Sha256)
            .ok_or_else(|| {
                AuthError::Request(format!(
                    "payload hash {hex:?} is not 64 hex digits of a SHA-256"
                ))
            })
    }

    /// The value as SigV4 writes it: `UNSIGNED-PAYLOAD` or lowercase hex.
    pub fn header_value(&self) -> String {
        match self {
            PayloadHash::Unsigned => UNSIGNED_PAYLOAD.to_string(),
            PayloadHash::Sha256(digest) => hex_encode(digest),
            PayloadHash::Empty => crate::auth::EMPTY_SHA256.to_string(),
        }
    }
}

/// Where and how the signer signs: the region and service of the credential scope,
/// and whether the payload hash also goes out as `x-amz-content-sha256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerConfig {
    pub region: String,
    pub service: String,
    /// S3 requires the header; other SigV4 services know nothing of it.
    pub content_sha256_header: bool,
}

impl SignerConfig {
    /// The configuration for S3 in `region` (S3-compatible servers mostly accept
    /// `us-east-1`).
    pub fn s3(region: &str) -> SignerConfig {
        SignerConfig {
            region: region.to_string(),
            service: S3_SERVICE.to_string(),
            content_sha256_header: true,
        }
    }
}

/// Signs outgoing requests with one set of credentials. It keeps the signing keys
/// it derived, one per (date, region), so the four-HMAC chain runs once a day per
/// region rather than on every request; a new date derives a new key.
pub struct SigV4Signer {
    credentials: AwsCredentials,
    config: SignerConfig,
    keys: SigningKeyCache,
}

impl std::fmt::Debug for SigV4Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4Signer")
            .field("credentials", &self.credentials)
            .field("config", &self.config)
            .field("cached_keys", &self.keys.len())
            .finish()
    }
}

impl SigV4Signer {
    pub fn new(credentials: AwsCredentials, config: SignerConfig) -> SigV4Signer {
        SigV4Signer {
            credentials,
            config,
            keys: SigningKeyCache::new(limits::UPSTREAM_SIGNING_KEYS_MAX),
        }
    }

    pub fn credentials(&self) -> &AwsCredentials {
        &self.credentials
    }

    pub fn config(&self) -> &SignerConfig {
        &self.config
    }

    /// Replaces the credentials (temporary ones renewed); keys of the old secret
    /// are never used again, since the cache is keyed by the secret too.
    pub fn set_credentials(&mut self, credentials: AwsCredentials) {
        self.credentials = credentials;
    }

    /// Signs `request` at `unix` in the configured region; see [`Self::sign_in_region`].
    pub fn sign(
        &mut self,
        request: &OutgoingRequest,
        payload: PayloadHash,
        unix: i64,
    ) -> Result<Vec<(String, String)>, AuthError> {
        let region = self.config.region.clone();
        self.sign_in_region(request, payload, &region, unix)
    }

    /// Signs `request` at `unix` for `region` (a bucket that lives elsewhere than the
    /// configured region). The request's headers must include `host`. Returns the
    /// headers to add, lowercase: `x-amz-date`, `x-amz-content-sha256` (when
    /// configured), `x-amz-security-token` (with a session token) and
    /// `authorization`. Every header of the request is signed except the few that
    /// travel unsigned (`user-agent`, `expect`, hop-by-hop ones); any of the added
    /// ones the request already has is replaced, not duplicated, and the caller
    /// must send the request without them.
    pub fn sign_in_region(
        &mut self,
        request: &OutgoingRequest,
        payload: PayloadHash,
        region: &str,
        unix: i64,
    ) -> Result<Vec<(String, String)>, AuthError> {
        if request.header("host").is_none() {
            return Err(AuthError::Request(
                "the request has no host header, which SigV4 signs".into(),
            ));
        }
        let amz_date = clock::format_amz_date(unix);
        let date = &amz_date[..8];
        let scope = format!("{date}/{region}/{}/aws4_request", self.config.service);
        let payload_value = payload.header_value();
        let mut added = vec![("x-amz-date".to_string(), amz_date.clone())];
        if self.config.content_sha256_header {
            added.push(("x-amz-content-sha256".to_string(), payload_value.clone()));
        }
        if let Some(token) = &self.credentials.session_token {
            added.push((
                SECURITY_TOKEN_HEADER.to_string(),
                token.expose().to_string(),
            ));
        }
        let mut all: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .filter(|(n, _)| !SIGNER_HEADERS.contains(&n.as_str()))
            .collect();
        all.extend(added.iter().cloned());
        let mut signed: Vec<String> = all
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !UNSIGNED_HEADERS.contains(&n.as_str()))
            .collect();
        signed.sort();
        signed.dedup();
        let parts = RequestParts {
            method: request.method,
            raw_path: request.path,
            raw_query: request.query,
            headers: &all,
            has_body: false,
            host_bucket: None,
        };
        let string_to_sign =
            client_string_to_sign(&parts, &signed, &payload_value, &amz_date, &scope, false)
                .map_err(|e| {
                    AuthError::Request(format!(
                        "path {:?} or query {:?} is not validly percent-encoded ({})",
                        request.path,
                        request.query,
                        e.code.as_str()
                    ))
                })?;
        let key = self.keys.get(
            &self.credentials.secret_access_key,
            date,
            region,
            &self.config.service,
        );
        let signature = sign_hex(&key, &string_to_sign);
        added.push((
            "authorization".to_string(),
            format!(
                "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
                self.credentials.access_key_id,
                signed.join(";")
            ),
        ));
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::auth::{self, PayloadCheck};

    /// The credentials of the S3 API reference's signature examples.
    const S3_DOC_ACCESS: &str = "AKIAIOSFODNN7EXAMPLE";
    const S3_DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    /// 20130524T000000Z, the time of those examples.
    const S3_DOC_TIME: i64 = 1_369_353_600;
    /// The credentials of AWS's generic SigV4 test suite (service "service").
    const SUITE_ACCESS: &str = "AKIDEXAMPLE";
    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    /// 20150830T123600Z, the time of the suite.
    const SUITE_TIME: i64 = 1_440_938_160;
    /// The session token of the suite's post-sts-token cases.
    const SUITE_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn s3_doc_signer() -> SigV4Signer {
        SigV4Signer::new(
            AwsCredentials::new(S3_DOC_ACCESS, S3_DOC_SECRET, None),
            SignerConfig::s3("us-east-1"),
        )
    }

    /// The value of one added header.
    fn added<'a>(list: &'a [(String, String)], name: &str) -> Option<&'a str> {
        list.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn sign(
        signer: &mut SigV4Signer,
        method: &str,
        path: &str,
        query: &str,
        list: &[(&str, &str)],
        payload: PayloadHash,
        unix: i64,
    ) -> Vec<(String, String)> {
        let headers = headers(list);
        let request = OutgoingRequest {
            method,
            path,
            query,
            headers: &headers,
        };
        signer.sign(&request, payload, unix).unwrap()
    }

    fn s3_doc_authorization(signed: &str, signature: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential={S3_DOC_ACCESS}/20130524/us-east-1/s3/aws4_request, SignedHeaders={signed}, Signature={signature}")
    }

    #[test]
    fn s3_reference_get_object_with_range() {
        let out = sign(
            &mut s3_doc_signer(),
            "GET",
            "/test.txt",
            "",
            &[
                ("Host", "examplebucket.s3.amazonaws.com"),
                ("Range", "bytes=0-9"),
            ],
            PayloadHash::Empty,
            S3_DOC_TIME,
        );
        assert_eq!(added(&out, "x-amz-date"), Some("20130524T000000Z"));
        assert_eq!(
            added(&out, "x-amz-content-sha256"),
            Some(auth::EMPTY_SHA256)
        );
        assert_eq!(added(&out, SECURITY_TOKEN_HEADER), None);
        assert_eq!(
            added(&out, "authorization").unwrap(),
            s3_doc_authorization(
                "host;range;x-amz-content-sha256;x-amz-date",
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            )
        );
    }

    #[test]
    fn s3_reference_put_object_with_date_and_storage_class() {
        let out = sign(
            &mut s3_doc_signer(),
            "PUT",
            "/test%24file.text",
            "",
            &[
                ("Host", "examplebucket.s3.amazonaws.com"),
                ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ],
            PayloadHash::of(b"Welcome to Amazon S3."),
            S3_DOC_TIME,
        );
        assert_eq!(
            added(&out, "x-amz-content-sha256"),
            Some("44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        );
        assert_eq!(
            added(&out, "authorization").unwrap(),
            s3_doc_authorization(
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            )
        );
    }

    #[test]
    fn s3_reference_bucket_lifecycle_and_list_objects() {
        let mut signer = s3_doc_signer();
        let host = [("Host", "examplebucket.s3.amazonaws.com")];
        let lifecycle = sign(
            &mut signer,
            "GET",
            "/",
            "lifecycle",
            &host,
            PayloadHash::Empty,
            S3_DOC_TIME,
        );
        assert_eq!(
            added(&lifecycle, "authorization").unwrap(),
            s3_doc_authorization(
                "host;x-amz-content-sha256;x-amz-date",
                "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
            )
        );
        // The query as sent in either order: the canonical query sorts it.
        for query in ["max-keys=2&prefix=J", "prefix=J&max-keys=2"] {
            let list = sign(
                &mut signer,
                "GET",
                "/",
                query,
                &host,
                PayloadHash::Empty,
                S3_DOC_TIME,
            );
            assert_eq!(
                added(&list, "authorization").unwrap(),
                s3_doc_authorization(
                    "host;x-amz-content-sha256;x-amz-date",
                    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
                )
            );
        }
        // One key served all four requests of the day.
        assert_eq!(signer.keys.len(), 1);
    }

    fn suite_config() -> SignerConfig {
        SignerConfig {
            region: "us-east-1".into(),
            service: "service".into(),
            content_sha256_header: false,
        }
    }

    #[test]
    fn generic_suite_get_vanilla_with_another_service() {
        let mut signer = SigV4Signer::new(
            AwsCredentials::new(SUITE_ACCESS, SUITE_SECRET, None),
            suite_config(),
        );
        let out = sign(
            &mut signer,
            "GET",
            "/",
            "",
            &[("Host", "example.amazonaws.com")],
            PayloadHash::Empty,
            SUITE_TIME,
        );
        assert_eq!(
            out,
            headers(&[
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
            ])
        );
    }

    #[test]
    fn generic_suite_session_token_is_signed() {
        // post-sts-header-before: the token is part of the canonical request.
        let mut signer = SigV4Signer::new(
            AwsCredentials::new(SUITE_ACCESS, SUITE_SECRET, Some(SUITE_TOKEN)),
            suite_config(),
        );
        let out = sign(
            &mut signer,
            "POST",
            "/",
            "",
            &[("Host", "example.amazonaws.com")],
            PayloadHash::Empty,
            SUITE_TIME,
        );
        assert_eq!(added(&out, SECURITY_TOKEN_HEADER), Some(SUITE_TOKEN));
        assert_eq!(
            added(&out, "authorization").unwrap(),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        );
    }

    /// Known answers computed independently with python3's hmac and hashlib from the
    /// canonical request written out by hand:
    ///
    /// ```text
    /// PUT
    /// /my-bucket/photos/a%20b%2Bc.jpg
    /// acl=&versionId=3
    /// content-type:image/jpeg
    /// host:s3.eu-west-2.amazonaws.com
    /// x-amz-content-sha256:UNSIGNED-PAYLOAD
    /// x-amz-date:<amz date>
    /// x-amz-meta-note:two spaces
    /// x-amz-security-token:FwoGZXIvYXdzEXAMPLEtoken+/=
    ///
    /// content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-note;x-amz-security-token
    /// UNSIGNED-PAYLOAD
    /// ```
    ///
    /// signed as `hmac.new(k, sts, sha256)` with k the chain of
    /// `hmac("AWS4" + secret, date)`, region "eu-west-2", service "s3", "aws4_request".
    #[test]
    fn known_answers_across_a_date_change() {
        let mut signer = SigV4Signer::new(
            AwsCredentials::new(
                "AKIDUPSTREAM",
                "SECRETexample/key+1",
                Some("FwoGZXIvYXdzEXAMPLEtoken+/="),
            ),
            SignerConfig::s3("eu-west-2"),
        );
        let request = [
            ("Host", "s3.eu-west-2.amazonaws.com"),
            ("Content-Type", "image/jpeg"),
            ("X-Amz-Meta-Note", "  two   spaces "),
            // Sent but not signed; and a stale date the signer replaces.
            ("User-Agent", "bleepstore"),
            ("X-Amz-Date", "19990101T000000Z"),
        ];
        let cases = [
            (
                1_709_251_199, // 2024-02-29T23:59:59Z
                "20240229",
                "f7de54755319e25f22101e8385bb33e737d346d2a1117244be866d66752c3190",
            ),
            (
                1_709_251_201, // 2024-03-01T00:00:01Z: a new day, a new key
                "20240301",
                "44db4adf2cc9e7e26c57e5255ad2e588110ca4ed78a4f3295f65c8f287cb9cbf",
            ),
        ];
        for (count, (unix, date, signature)) in cases.into_iter().enumerate() {
            let out = sign(
                &mut signer,
                "PUT",
                "/my-bucket/photos/a%20b%2Bc.jpg",
                "versionId=3&acl",
                &request,
                PayloadHash::Unsigned,
                unix,
            );
            assert_eq!(added(&out, "x-amz-content-sha256"), Some(UNSIGNED_PAYLOAD));
            assert_eq!(
                added(&out, "authorization").unwrap(),
                format!("AWS4-HMAC-SHA256 Credential=AKIDUPSTREAM/{date}/eu-west-2/s3/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-note;x-amz-security-token, Signature={signature}")
            );
            assert_eq!(out.iter().filter(|(n, _)| n == "x-amz-date").count(), 1);
            assert_eq!(signer.keys.len(), count + 1, "a key per date");
        }
        // The key the signer holds for the new date is the chain derive_signing_key
        // computes; asking for it again is a hit, not a third entry.
        assert_eq!(
            signer.keys.get(
                &SecretKey::new("SECRETexample/key+1".into()),
                "20240301",
                "eu-west-2",
                "s3"
            ),
            auth::derive_signing_key("SECRETexample/key+1", "20240301", "eu-west-2", "s3")
        );
        assert_eq!(signer.keys.len(), 2);
    }

    #[test]
    fn a_region_per_request_keys_its_own_signing_key() {
        let mut signer = s3_doc_signer();
        let headers = headers(&[("host", "b.s3.eu-central-1.amazonaws.com")]);
        let request = OutgoingRequest {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
        };
        let home = signer
            .sign(&request, PayloadHash::Empty, S3_DOC_TIME)
            .unwrap();
        let away = signer
            .sign_in_region(&request, PayloadHash::Empty, "eu-central-1", S3_DOC_TIME)
            .unwrap();
        assert!(added(&home, "authorization")
            .unwrap()
            .contains("/us-east-1/s3/"));
        assert!(added(&away, "authorization")
            .unwrap()
            .contains("/eu-central-1/s3/"));
        assert_eq!(signer.keys.len(), 2);
    }

    /// The daemon's own verifier accepts what the upstream signer signs, in every
    /// payload mode, with and without a session token.
    #[test]
    fn our_verifier_accepts_every_payload_mode() {
        let body = b"upstream body";
        let modes = [
            (PayloadHash::Unsigned, "unsigned"),
            (PayloadHash::of(body), "sha256"),
            (PayloadHash::Empty, "empty"),
            (
                PayloadHash::from_hex(&auth::sha256_hex(body).to_ascii_uppercase()).unwrap(),
                "sha256",
            ),
        ];
        for token in [None, Some("session/token+=")] {
            let mut signer = SigV4Signer::new(
                AwsCredentials::new(S3_DOC_ACCESS, S3_DOC_SECRET, token),
                SignerConfig::s3("us-east-1"),
            );
            for (payload, kind) in modes {
                let mut all = headers(&[
                    ("Host", "127.0.0.1:9000"),
                    ("X-Amz-Meta-Colour", "blue"),
                    ("user-agent", "test"),
                ]);
                let request = OutgoingRequest {
                    method: "PUT",
                    path: "/bucket/a%20key",
                    query: "partNumber=1&uploadId=x%2By",
                    headers: &all,
                };
                let extra = signer.sign(&request, payload, S3_DOC_TIME).unwrap();
                all.extend(extra);
                let lower: Vec<(String, String)> = all
                    .iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                    .collect();
                let parts = RequestParts {
                    method: "PUT",
                    raw_path: "/bucket/a%20key",
                    raw_query: "partNumber=1&uploadId=x%2By",
                    headers: &lower,
                    has_body: true,
                    host_bucket: None,
                };
                let parsed = auth::parse_auth(&parts).unwrap();
                let check = auth::verify(
                    &parsed,
                    &parts,
                    &SecretKey::new(S3_DOC_SECRET.into()),
                    "us-east-1",
                    S3_DOC_TIME,
                    &mut SigningKeyCache::new(4),
                )
                .unwrap_or_else(|e| panic!("{kind} with {token:?}: {e:?}"));
                match (kind, check) {
                    ("unsigned", PayloadCheck::Unsigned) => {}
                    ("sha256", PayloadCheck::Sha256(d)) => {
                        assert_eq!(hex_encode(&d), auth::sha256_hex(body))
                    }
                    ("empty", PayloadCheck::Sha256(d)) => {
                        assert_eq!(hex_encode(&d), auth::EMPTY_SHA256)
                    }
                    _ => panic!("{kind}: unexpected payload check"),
                }
            }
        }
    }

    #[test]
    fn requests_that_cannot_be_signed() {
        let mut signer = s3_doc_signer();
        let no_host = headers(&[("range", "bytes=0-1")]);
        let request = OutgoingRequest {
            method: "GET",
            path: "/b/k",
            query: "",
            headers: &no_host,
        };
        assert!(matches!(
            signer.sign(&request, PayloadHash::Empty, S3_DOC_TIME),
            Err(AuthError::Request(m)) if m.contains("host")
        ));
        let host = headers(&[("host", "h")]);
        for (path, query) in [("/b/%zz", ""), ("/b/k", "a=%4")] {
            let request = OutgoingRequest {
                method: "GET",
                path,
                query,
                headers: &host,
            };
            assert!(matches!(
                signer.sign(&request, PayloadHash::Empty, S3_DOC_TIME),
                Err(AuthError::Request(m)) if m.contains("percent-encoded")
            ));
        }
        for bad in ["", "abc", &"0".repeat(63), &"g".repeat(64), &"0".repeat(66)] {
            assert!(PayloadHash::from_hex(bad).is_err(), "{bad}");
        }
        assert_eq!(PayloadHash::of(b""), PayloadHash::Empty);
        assert_eq!(PayloadHash::Unsigned.header_value(), "UNSIGNED-PAYLOAD");
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn credentials_come_from_config_else_the_environment() {
        let env = env_of(&[
            (ENV_ACCESS_KEY_ID, "ENVID"),
            (ENV_SECRET_ACCESS_KEY, "envsecret"),
            (ENV_SESSION_TOKEN, "envtoken"),
        ]);
        // Configured keys win, and the environment's token does not join them.
        let configured =
            AwsCredentials::resolve(Some("CFGID"), Some("cfgsecret"), None, &env).unwrap();
        assert_eq!(configured, AwsCredentials::new("CFGID", "cfgsecret", None));
        let with_token =
            AwsCredentials::resolve(Some("CFGID"), Some("cfgsecret"), Some("cfgtoken"), &env)
                .unwrap();
        assert_eq!(with_token.session_token.unwrap().expose(), "cfgtoken");
        // Nothing configured (or only empty strings): the environment, token included.
        for (id, secret) in [(None, None), (Some(""), Some(""))] {
            let from_env = AwsCredentials::resolve(id, secret, None, &env).unwrap();
            assert_eq!(
                from_env,
                AwsCredentials::new("ENVID", "envsecret", Some("envtoken"))
            );
        }
        let no_token = env_of(&[
            (ENV_ACCESS_KEY_ID, "ENVID"),
            (ENV_SECRET_ACCESS_KEY, "envsecret"),
            (ENV_SESSION_TOKEN, ""),
        ]);
        assert_eq!(
            AwsCredentials::resolve(None, None, None, no_token)
                .unwrap()
                .session_token,
            None
        );
    }

    #[test]
    fn incomplete_credentials_are_refused_with_the_reason() {
        let empty = env_of(&[]);
        let message = |result: Result<AwsCredentials, AuthError>| match result {
            Err(AuthError::Credentials(m)) => m,
            other => panic!("not refused: {other:?}"),
        };
        assert!(
            message(AwsCredentials::resolve(Some("ID"), None, None, &empty))
                .contains("without its secret access key")
        );
        assert!(
            message(AwsCredentials::resolve(None, Some("s"), None, &empty))
                .contains("without its access key id")
        );
        assert!(message(AwsCredentials::resolve(None, None, None, &empty))
            .contains("neither AWS_ACCESS_KEY_ID nor AWS_SECRET_ACCESS_KEY"));
        let full_env = env_of(&[(ENV_ACCESS_KEY_ID, "ENVID"), (ENV_SECRET_ACCESS_KEY, "s")]);
        assert!(
            message(AwsCredentials::resolve(None, None, Some("tok"), full_env))
                .contains("session token is configured without")
        );
        let half = env_of(&[(ENV_ACCESS_KEY_ID, "ENVID")]);
        assert_eq!(
            message(AwsCredentials::resolve(None, None, None, half)),
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
        );
        let half = env_of(&[(ENV_SECRET_ACCESS_KEY, "s")]);
        assert_eq!(
            message(AwsCredentials::resolve(None, None, None, half)),
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let signer = SigV4Signer::new(
            AwsCredentials::new("AKIDVISIBLE", "very-secret-key", Some("very-secret-token")),
            SignerConfig::s3("us-east-1"),
        );
        let text = format!("{signer:?}");
        assert!(text.contains("AKIDVISIBLE"));
        assert!(!text.contains("very-secret"), "{text}");
    }
}
