//! Signing and credentials for the upstream stores a gateway backend calls: SigV4
//! for AWS S3 and S3-compatible servers ([`sigv4`]), Shared Key for Azure Blob
//! ([`azure`]), and OAuth2 service-account tokens for the Google Cloud Storage JSON
//! API ([`gcs`]).
//!
//! Everything here is pure and synchronous: a signer takes the parts of a request
//! and the time, and returns the headers to add. The HTTP client that sends the
//! request, and fetches tokens, lives elsewhere. Secret material (keys, session
//! tokens, access tokens) is held in [`SecretKey`](crate::auth::SecretKey) or types
//! whose `Debug` is redacted, so a log line never carries it.

pub mod azure;
pub mod gcs;
pub mod sigv4;

/// The parts of an outgoing request that the signers cover.
///
/// `path` and `query` are exactly as they go on the wire: percent-encoded, the
/// query without its `?`. Header names may be in any case; the signers compare them
/// case-insensitively.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(String, String)],
}

impl<'a> OutgoingRequest<'a> {
    /// The value of the first header of that name (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why credentials could not be loaded or a request not be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The credentials are missing or malformed: a configuration error.
    Credentials(String),
    /// The request cannot be signed as given (no Host header, a bad percent-escape).
    Request(String),
    /// The OAuth2 token endpoint answered with something other than a token.
    TokenResponse(String),
    /// A request needs an access token and none is held unexpired: send the token
    /// request first.
    TokenMissing(String),
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthError::Credentials(message) => write!(f, "upstream credentials: {message}"),
            AuthError::Request(message) => write!(f, "upstream request not signable: {message}"),
            AuthError::TokenResponse(message) => write!(f, "upstream token response: {message}"),
            AuthError::TokenMissing(message) => write!(f, "upstream access token: {message}"),
        }
    }
}

impl std::error::Error for AuthError {}

/// Looks a variable up in the process environment: the `env` argument the
/// credential loaders take in production (tests pass a map instead). An unset
/// variable and one that is not UTF-8 are both `None`.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
