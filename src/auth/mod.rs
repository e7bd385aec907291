//! AWS Signature Version 4 for S3, as pure functions over request parts and a
//! secret: the canonical forms, the header and presigned-URL checks, the
//! chained chunk and trailer signatures of streaming uploads, a per-core cache
//! of signing keys, and a client-side signer for tests and benchmarks.

pub mod client;
mod signing_key_cache;
mod sigv2;
mod sigv4;
mod verify;

pub use signing_key_cache::SigningKeyCache;
#[cfg(feature = "fuzzing")]
pub(crate) use sigv2::string_to_sign as sigv2_string_to_sign;
pub use sigv4::{
    canonical_query, canonical_uri, derive_signing_key, hmac_sha256, percent_decode,
    percent_decode_str, sha256_hex, uri_encode, uri_encoded, EMPTY_SHA256,
};
pub(crate) use verify::{client_string_to_sign, sign_hex};
pub use verify::{
    parse_auth, verify, ChunkVerifier, HeaderAuth, ParsedAuth, PayloadCheck, PresignedAuth,
    RequestParts,
};

/// A secret access key: never printed (its `Debug` is redacted), and compared with a
/// request only through HMACs. Equality exists for configuration, not for auth.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl std::str::FromStr for SecretKey {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<SecretKey, Self::Err> {
        Ok(SecretKey(text.to_string()))
    }
}

impl SecretKey {
    pub fn new(secret: String) -> SecretKey {
        SecretKey(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}
