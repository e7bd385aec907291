//! Google OAuth2 for a service account, for the Cloud Storage JSON API.
//!
//! The flow: the service-account JSON file gives an email, an RSA private key and
//! the token endpoint; a JWT asserting the email and the storage scope, signed
//! RS256 with that key, is exchanged at the endpoint (a form-encoded POST the HTTP
//! client sends) for an access token that lives about an hour; requests carry it as
//! `Authorization: Bearer <token>`. This module builds the assertion and the token
//! request, reads the answer, and keeps the token with the time it is due for
//! renewal. With no credentials file configured (the fake-gcs-server emulator)
//! requests carry no Authorization header at all.

use std::path::Path;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde::{Deserialize, Serialize};

use crate::auth::{uri_encode, SecretKey};
use crate::limits;
use crate::upstream_auth::AuthError;

/// The OAuth2 scope of reading and writing Cloud Storage objects and buckets.
pub const DEVSTORAGE_READ_WRITE_SCOPE: &str =
    "https://www.googleapis.com/auth/devstorage.read_write";
/// Google's token endpoint, used when a service-account file names none.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The grant type of exchanging a signed JWT for an access token (RFC 7523).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The content type of the token request body.
pub const TOKEN_REQUEST_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";
/// Seconds a JWT assertion is valid: the most Google accepts.
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// The `type` of a service-account credentials file.
const SERVICE_ACCOUNT_TYPE: &str = "service_account";
/// The JOSE header of every assertion: RS256, a JWT.
const JWT_HEADER: &str = r#"{"alg":"RS256","typ":"JWT"}"#;
/// The PEM armour around a PKCS#8 private key.
const PKCS8_PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PKCS8_PEM_END: &str = "-----END PRIVATE KEY-----";

/// The fields of a service-account file that we read; the others are ignored.
/// Each is optional here so that a missing one is reported by name.
#[derive(Deserialize)]
struct ServiceAccountFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    private_key: Option<String>,
    token_uri: Option<String>,
    project_id: Option<String>,
}

/// The claims of the JWT assertion, in the order they are written.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// The fields of a token endpoint's answer, success or error.
#[derive(Deserialize)]
struct TokenResponseFile {
    access_token: Option<String>,
    expires_in: Option<u64>,
    token_type: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A Google service account: its email, token endpoint, project and RSA key.
/// `Debug` leaves the key out.
pub struct ServiceAccount {
    client_email: String,
    token_uri: String,
    project_id: Option<String>,
    key: RsaKeyPair,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .field("key", &"RsaKeyPair(***)")
            .finish()
    }
}

fn missing(field: &str) -> AuthError {
    AuthError::Credentials(format!("the service-account JSON has no \"{field}\" field"))
}

impl ServiceAccount {
    /// Parses a service-account JSON file: `type` must be `service_account`, and
    /// `client_email` and `private_key` (a PKCS#8 RSA key in PEM) must be present;
    /// `token_uri` defaults to Google's endpoint, `project_id` is optional.
    pub fn from_json(text: &str) -> Result<ServiceAccount, AuthError> {
        let file: ServiceAccountFile = serde_json::from_str(text).map_err(|e| {
            AuthError::Credentials(format!("the service-account JSON does not parse: {e}"))
        })?;
        let kind = file.kind.ok_or_else(|| missing("type"))?;
        if kind != SERVICE_ACCOUNT_TYPE {
            return Err(AuthError::Credentials(format!(
                "the credentials JSON has \"type\": {kind:?}; only \"{SERVICE_ACCOUNT_TYPE}\" is supported"
            )));
        }
        let client_email = file
            .client_email
            .filter(|e| !e.is_empty())
            .ok_or_else(|| missing("client_email"))?;
        let pem = file
            .private_key
            .filter(|k| !k.is_empty())
            .ok_or_else(|| missing("private_key"))?;
        let key = rsa_key_from_pem(&SecretKey::new(pem))?;
        Ok(ServiceAccount {
            client_email,
            token_uri: file
                .token_uri
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_string()),
            project_id: file.project_id.filter(|p| !p.is_empty()),
            key,
        })
    }

    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// The signed JWT assertion for `scope`, issued at `iat` (Unix seconds) and
    /// valid for an hour: base64url (unpadded) header, claims and RS256 signature,
    /// joined by dots.
    pub fn jwt_assertion(&self, scope: &str, iat: i64) -> Result<String, AuthError> {
        let claims = Claims {
            iss: &self.client_email,
            scope,
            aud: &self.token_uri,
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        let claims = serde_json::to_vec(&claims)
            .map_err(|e| AuthError::Credentials(format!("the JWT claims do not encode: {e}")))?;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut token = engine.encode(JWT_HEADER);
        token.push('.');
        token.push_str(&engine.encode(claims));
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| AuthError::Credentials("RS256 signing of the JWT failed".into()))?;
        token.push('.');
        token.push_str(&engine.encode(signature));
        Ok(token)
    }

    /// The token request to send at `now`: a POST of the form-encoded JWT-bearer
    /// grant to the account's token endpoint.
    pub fn token_request(&self, scope: &str, now: i64) -> Result<TokenRequest, AuthError> {
        let assertion = self.jwt_assertion(scope, now)?;
        let mut body = String::with_capacity(assertion.len() + 96);
        body.push_str("grant_type=");
        uri_encode(JWT_BEARER_GRANT_TYPE.as_bytes(), true, &mut body);
        body.push_str("&assertion=");
        uri_encode(assertion.as_bytes(), true, &mut body);
        Ok(TokenRequest {
            url: self.token_uri.clone(),
            content_type: TOKEN_REQUEST_CONTENT_TYPE,
            body,
        })
    }
}

/// The RSA key pair of a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
fn rsa_key_from_pem(pem: &SecretKey) -> Result<RsaKeyPair, AuthError> {
    let text = pem.expose();
    if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
        return Err(AuthError::Credentials(
            "private_key is a PKCS#1 RSA key; a PKCS#8 key (BEGIN PRIVATE KEY) is required".into(),
        ));
    }
    let body = text
        .split_once(PKCS8_PEM_BEGIN)
        .and_then(|(_, rest)| rest.split_once(PKCS8_PEM_END))
        .map(|(body, _)| body)
        .ok_or_else(|| {
            AuthError::Credentials(
                "private_key is not a PEM private key (BEGIN PRIVATE KEY ... END PRIVATE KEY)"
                    .into(),
            )
        })?;
    let base64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = crate::checksum::base64_decode(&base64).ok_or_else(|| {
        AuthError::Credentials("private_key's PEM body is not valid base64".into())
    })?;
    RsaKeyPair::from_pkcs8(&der).map_err(|e| {
        AuthError::Credentials(format!("private_key is not a usable PKCS#8 RSA key ({e})"))
    })
}

/// A request for an access token, for the HTTP client to POST. `Debug` leaves the
/// body out: the assertion in it is a credential for an hour.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub url: String,
    pub content_type: &'static str,
    pub body: String,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("url", &self.url)
            .field("content_type", &self.content_type)
            .field("body", &"***")
            .finish()
    }
}

/// An access token and the Unix second it expires at. `Debug` leaves the token out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    token: SecretKey,
    expires_at: i64,
}

impl AccessToken {
    /// A token that expires at `expires_at` (Unix seconds).
    pub fn new(token: &str, expires_at: i64) -> AccessToken {
        AccessToken {
            token: SecretKey::new(token.to_string()),
            expires_at,
        }
    }

    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The value of the Authorization header that carries this token.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.token.expose())
    }
}

/// Reads a token endpoint's answer received at `received_at` (Unix seconds): the
/// `access_token`, its `token_type` (which must be Bearer) and its `expires_in`
/// seconds. An OAuth2 error answer is reported with its error and description.
pub fn parse_token_response(body: &[u8], received_at: i64) -> Result<AccessToken, AuthError> {
    let answer: TokenResponseFile = serde_json::from_slice(body).map_err(|e| {
        AuthError::TokenResponse(format!("the token response JSON does not parse: {e}"))
    })?;
    if let Some(error) = answer.error {
        return Err(AuthError::TokenResponse(match answer.error_description {
            Some(description) => format!("the token endpoint refused: {error}: {description}"),
            None => format!("the token endpoint refused: {error}"),
        }));
    }
    let field = |name: &str| {
        AuthError::TokenResponse(format!("the token response has no \"{name}\" field"))
    };
    let token = answer
        .access_token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| field("access_token"))?;
    let token_type = answer.token_type.ok_or_else(|| field("token_type"))?;
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::TokenResponse(format!(
            "the token type is {token_type:?}, not Bearer"
        )));
    }
    let expires_in = answer.expires_in.ok_or_else(|| field("expires_in"))?;
    let expires_in = i64::try_from(expires_in).unwrap_or(i64::MAX);
    Ok(AccessToken::new(
        &token,
        received_at.saturating_add(expires_in),
    ))
}

/// The current access token, and when it is due for renewal: a margin before it
/// expires, so that no request leaves with a token that lapses on the way. The
/// caller supplies the clock (Unix seconds) to every question.
#[derive(Debug, Clone)]
pub struct TokenCache {
    token: Option<AccessToken>,
    margin_secs: i64,
}

impl Default for TokenCache {
    fn default() -> TokenCache {
        TokenCache::new()
    }
}

impl TokenCache {
    /// An empty cache that renews five minutes before expiry.
    pub fn new() -> TokenCache {
        TokenCache::with_margin(limits::UPSTREAM_TOKEN_REFRESH_MARGIN_SECS)
    }

    /// An empty cache that renews `margin_secs` before expiry.
    pub fn with_margin(margin_secs: i64) -> TokenCache {
        TokenCache {
            token: None,
            margin_secs: margin_secs.max(0),
        }
    }

    pub fn store(&mut self, token: AccessToken) {
        self.token = Some(token);
    }

    /// Forgets the token (the store answered 401 to it).
    pub fn clear(&mut self) {
        self.token = None;
    }

    /// The Unix second from which a renewal is due, if a token is held.
    pub fn refresh_at(&self) -> Option<i64> {
        self.token
            .as_ref()
            .map(|t| t.expires_at.saturating_sub(self.margin_secs))
    }

    /// Whether a new token should be fetched at `now`: none is held, or the one held
    /// is within the margin of its expiry.
    pub fn refresh_due(&self, now: i64) -> bool {
        self.refresh_at().is_none_or(|at| now >= at)
    }

    /// The token held, if it has not expired at `now` (it may be due for renewal).
    pub fn current(&self, now: i64) -> Option<&AccessToken> {
        self.token.as_ref().filter(|t| now < t.expires_at)
    }
}

/// How requests to a Cloud Storage endpoint are authorized.
#[derive(Debug)]
pub enum GcsCredentials {
    /// No credentials file configured: requests carry no Authorization header (the
    /// fake-gcs-server emulator, or public buckets).
    Anonymous,
    /// OAuth2 access tokens obtained for a service account.
    ServiceAccount(Box<ServiceAccount>),
}

impl GcsCredentials {
    /// The credentials of a configured service-account file, or `Anonymous` when
    /// none is configured. The file is read here, once, at startup.
    pub fn from_file(path: Option<&Path>) -> Result<GcsCredentials, AuthError> {
        let Some(path) = path else {
            return Ok(GcsCredentials::Anonymous);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            AuthError::Credentials(format!(
                "cannot read the service-account file {}: {e}",
                path.display()
            ))
        })?;
        GcsCredentials::from_json(Some(&text)).map_err(|e| match e {
            AuthError::Credentials(m) => AuthError::Credentials(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// The credentials of a service-account JSON text, or `Anonymous` for none.
    pub fn from_json(text: Option<&str>) -> Result<GcsCredentials, AuthError> {
        match text {
            None => Ok(GcsCredentials::Anonymous),
            Some(text) => Ok(GcsCredentials::ServiceAccount(Box::new(
                ServiceAccount::from_json(text)?,
            ))),
        }
    }
}

/// The authorization state of one Cloud Storage backend: its credentials, the
/// scope it asks for and its current token.
#[derive(Debug)]
pub struct GcsAuth {
    credentials: GcsCredentials,
    scope: String,
    cache: TokenCache,
}

impl GcsAuth {
    /// Authorization with `credentials` for the read-write storage scope.
    pub fn new(credentials: GcsCredentials) -> GcsAuth {
        GcsAuth {
            credentials,
            scope: DEVSTORAGE_READ_WRITE_SCOPE.to_string(),
            cache: TokenCache::new(),
        }
    }

    pub fn credentials(&self) -> &GcsCredentials {
        &self.credentials
    }

    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The token request to send at `now`, when one is due: never for anonymous
    /// credentials, else when no token is held or the held one nears expiry.
    pub fn token_request(&self, now: i64) -> Result<Option<TokenRequest>, AuthError> {
        match &self.credentials {
            GcsCredentials::Anonymous => Ok(None),
            GcsCredentials::ServiceAccount(_) if !self.cache.refresh_due(now) => Ok(None),
            GcsCredentials::ServiceAccount(account) => {
                account.token_request(&self.scope, now).map(Some)
            }
        }
    }

    /// Reads the token endpoint's answer, received at `received_at`, and keeps the
    /// token it gives.
    pub fn accept_token_response(
        &mut self,
        body: &[u8],
        received_at: i64,
    ) -> Result<(), AuthError> {
        let token = parse_token_response(body, received_at)?;
        self.cache.store(token);
        Ok(())
    }

    /// Forgets the current token, so that the next `token_request` asks anew.
    pub fn invalidate(&mut self) {
        self.cache.clear();
    }

    /// The Authorization header value for a request sent at `now`: `None` for
    /// anonymous credentials (send no header), the bearer token otherwise. A
    /// service account without an unexpired token is `TokenMissing`: fetch one first.
    pub fn authorization(&self, now: i64) -> Result<Option<String>, AuthError> {
        match &self.credentials {
            GcsCredentials::Anonymous => Ok(None),
            GcsCredentials::ServiceAccount(account) => match self.cache.current(now) {
                Some(token) => Ok(Some(token.authorization())),
                None => Err(AuthError::TokenMissing(format!(
                    "no unexpired access token for {}; a token request is due",
                    account.client_email
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};
    use std::sync::OnceLock;

    use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

    use super::*;

    /// 2024-01-01T00:00:00Z.
    const IAT: i64 = 1_704_067_200;

    /// Runs openssl with `args`, returning its standard output.
    fn openssl(args: &[&str]) -> Vec<u8> {
        let output = Command::new("openssl")
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .expect("the openssl CLI runs (Debian's openssl package)");
        assert!(output.status.success(), "openssl {args:?} failed");
        output.stdout
    }

    /// A fresh 2048-bit RSA key in PKCS#8 PEM, made once per test run by openssl:
    /// a throwaway with no use beyond these tests.
    fn test_key_pem() -> &'static str {
        static PEM: OnceLock<String> = OnceLock::new();
        PEM.get_or_init(|| {
            let pem = openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ]);
            String::from_utf8(pem).unwrap()
        })
    }

    /// A scratch directory of this test process, for files openssl reads.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bleepstore-gcs-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn account_json(pem: &str) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "bleepstore-test",
            "private_key_id": "0123abcd",
            "private_key": pem,
            "client_email": "gateway@bleepstore-test.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string()
    }

    fn account() -> ServiceAccount {
        ServiceAccount::from_json(&account_json(test_key_pem())).unwrap()
    }

    fn b64url(text: &str) -> Vec<u8> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .unwrap()
    }

    #[test]
    fn service_account_file_is_read() {
        let account = account();
        assert_eq!(
            account.client_email(),
            "gateway@bleepstore-test.iam.gserviceaccount.com"
        );
        assert_eq!(account.token_uri(), GOOGLE_TOKEN_URI);
        assert_eq!(account.project_id(), Some("bleepstore-test"));
        let text = format!("{account:?}");
        assert!(!text.contains("PRIVATE") && text.contains("***"), "{text}");
        // The token endpoint is optional (Google's then), and so is the project.
        let minimal = serde_json::json!({
            "type": "service_account",
            "private_key": test_key_pem(),
            "client_email": "a@b",
            "token_uri": "http://127.0.0.1:4443/token",
        });
        let minimal = ServiceAccount::from_json(&minimal.to_string()).unwrap();
        assert_eq!(minimal.token_uri(), "http://127.0.0.1:4443/token");
        assert_eq!(minimal.project_id(), None);
    }

    fn refused(json: &str) -> String {
        match ServiceAccount::from_json(json) {
            Err(AuthError::Credentials(message)) => message,
            other => panic!("accepted: {other:?}"),
        }
    }

    #[test]
    fn service_account_faults_name_the_field() {
        let full: serde_json::Value = serde_json::from_str(&account_json(test_key_pem())).unwrap();
        for field in ["type", "client_email", "private_key"] {
            let mut without = full.clone();
            without.as_object_mut().unwrap().remove(field);
            assert_eq!(
                refused(&without.to_string()),
                format!("the service-account JSON has no \"{field}\" field")
            );
        }
        let mut user = full.clone();
        user["type"] = "authorized_user".into();
        assert!(
            refused(&user.to_string()).contains("\"authorized_user\"; only \"service_account\"")
        );
        let mut number = full.clone();
        number["client_email"] = 7.into();
        assert!(refused(&number.to_string()).contains("does not parse"));
        assert!(refused("{not json").contains("does not parse"));
        assert!(refused("[]").contains("does not parse"));
        let key_fault = |pem: &str| {
            let mut with = full.clone();
            with["private_key"] = pem.into();
            refused(&with.to_string())
        };
        assert!(key_fault("MIIEv...").contains("not a PEM private key"));
        assert!(key_fault(
            "-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----\n"
        )
        .contains("PKCS#1"));
        assert!(
            key_fault("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n")
                .contains("not valid base64")
        );
        assert!(
            key_fault("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .contains("not a usable PKCS#8 RSA key")
        );
        // An elliptic-curve key is PKCS#8 but not RSA.
        let ec = openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ]);
        assert!(
            key_fault(std::str::from_utf8(&ec).unwrap()).contains("not a usable PKCS#8 RSA key")
        );
    }

    #[test]
    fn jwt_assertion_has_the_claims_and_a_valid_rs256_signature() {
        let account = account();
        let jwt = account
            .jwt_assertion(DEVSTORAGE_READ_WRITE_SCOPE, IAT)
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(!jwt.contains('=') && !jwt.contains('+') && !jwt.contains('/'));
        assert_eq!(b64url(parts[0]), br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims: serde_json::Value = serde_json::from_slice(&b64url(parts[1])).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({
                "iss": "gateway@bleepstore-test.iam.gserviceaccount.com",
                "scope": "https://www.googleapis.com/auth/devstorage.read_write",
                "aud": "https://oauth2.googleapis.com/token",
                "iat": IAT,
                "exp": IAT + 3600,
            })
        );
        // ring's verifier, with the public half of the key.
        let signed = format!("{}.{}", parts[0], parts[1]);
        let signature = b64url(parts[2]);
        assert_eq!(signature.len(), 256);
        let public =
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, account.key.public().as_ref());
        assert!(public.verify(signed.as_bytes(), &signature).is_ok());
        assert!(public.verify(b"other message", &signature).is_err());
        // openssl, independently: PKCS#1 v1.5 signatures are deterministic, so it
        // makes the same bytes from the same key and message, and verifies ours.
        let dir = scratch("jwt");
        let (key, data, sig, public_pem) = (
            dir.join("key.pem"),
            dir.join("data"),
            dir.join("sig"),
            dir.join("public.pem"),
        );
        std::fs::write(&key, test_key_pem()).unwrap();
        std::fs::write(&data, &signed).unwrap();
        std::fs::write(&sig, &signature).unwrap();
        let path = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
        let by_openssl = openssl(&["dgst", "-sha256", "-sign", &path(&key), &path(&data)]);
        assert_eq!(by_openssl, signature);
        openssl(&[
            "pkey",
            "-in",
            &path(&key),
            "-pubout",
            "-out",
            &path(&public_pem),
        ]);
        let verified = openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            &path(&public_pem),
            "-signature",
            &path(&sig),
            &path(&data),
        ]);
        assert_eq!(String::from_utf8_lossy(&verified).trim(), "Verified OK");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn token_request_is_a_form_encoded_jwt_bearer_grant() {
        let account = account();
        let request = account
            .token_request(DEVSTORAGE_READ_WRITE_SCOPE, IAT)
            .unwrap();
        assert_eq!(request.url, "https://oauth2.googleapis.com/token");
        assert_eq!(request.content_type, "application/x-www-form-urlencoded");
        let jwt = account
            .jwt_assertion(DEVSTORAGE_READ_WRITE_SCOPE, IAT)
            .unwrap();
        assert_eq!(
            request.body,
            format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"
            )
        );
        assert!(!format!("{request:?}").contains(&jwt));
    }

    #[test]
    fn token_responses() {
        let ok = br#"{"access_token":"ya29.c.token","expires_in":3599,"token_type":"Bearer"}"#;
        let token = parse_token_response(ok, IAT).unwrap();
        assert_eq!(token.expires_at(), IAT + 3599);
        assert_eq!(token.authorization(), "Bearer ya29.c.token");
        assert!(!format!("{token:?}").contains("ya29"));
        let fault = |body: &[u8]| match parse_token_response(body, IAT) {
            Err(AuthError::TokenResponse(message)) => message,
            other => panic!("accepted: {other:?}"),
        };
        assert_eq!(
            fault(br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#),
            "the token endpoint refused: invalid_grant: Invalid JWT Signature."
        );
        assert_eq!(
            fault(br#"{"error":"unauthorized_client"}"#),
            "the token endpoint refused: unauthorized_client"
        );
        assert_eq!(
            fault(br#"{"expires_in":3599,"token_type":"Bearer"}"#),
            "the token response has no \"access_token\" field"
        );
        assert_eq!(
            fault(br#"{"access_token":"t","token_type":"Bearer"}"#),
            "the token response has no \"expires_in\" field"
        );
        assert_eq!(
            fault(br#"{"access_token":"t","expires_in":1}"#),
            "the token response has no \"token_type\" field"
        );
        assert!(
            fault(br#"{"access_token":"t","expires_in":1,"token_type":"MAC"}"#)
                .contains("not Bearer")
        );
        assert!(fault(b"<html>").contains("does not parse"));
        assert!(
            fault(br#"{"access_token":"t","expires_in":-5,"token_type":"Bearer"}"#)
                .contains("does not parse")
        );
    }

    #[test]
    fn token_cache_renews_five_minutes_before_expiry() {
        let mut cache = TokenCache::new();
        assert!(cache.refresh_due(IAT));
        assert!(cache.current(IAT).is_none());
        cache.store(AccessToken::new("t", IAT + 3600));
        assert_eq!(cache.refresh_at(), Some(IAT + 3300));
        assert!(!cache.refresh_due(IAT));
        assert!(!cache.refresh_due(IAT + 3299));
        assert!(cache.refresh_due(IAT + 3300));
        // Due for renewal, but still good until it expires.
        assert!(cache.current(IAT + 3599).is_some());
        assert!(cache.current(IAT + 3600).is_none());
        cache.clear();
        assert!(cache.refresh_due(IAT));
        let mut tight = TokenCache::with_margin(0);
        tight.store(AccessToken::new("t", IAT + 10));
        assert!(!tight.refresh_due(IAT + 9));
        assert!(tight.refresh_due(IAT + 10));
    }

    #[test]
    fn anonymous_credentials_send_no_authorization() {
        let auth = GcsAuth::new(GcsCredentials::from_file(None).unwrap());
        assert!(matches!(auth.credentials(), GcsCredentials::Anonymous));
        assert_eq!(auth.token_request(IAT).unwrap(), None);
        assert_eq!(auth.authorization(IAT).unwrap(), None);
        assert!(matches!(
            GcsCredentials::from_json(None).unwrap(),
            GcsCredentials::Anonymous
        ));
    }

    #[test]
    fn service_account_flow_from_a_file() {
        let dir = scratch("flow");
        let file = dir.join("service-account.json");
        std::fs::write(&file, account_json(test_key_pem())).unwrap();
        let mut auth = GcsAuth::new(GcsCredentials::from_file(Some(&file)).unwrap());
        // No token yet: one must be fetched before any request.
        let request = auth
            .token_request(IAT)
            .unwrap()
            .expect("a token request is due");
        assert!(request.body.starts_with("grant_type="));
        assert!(
            matches!(auth.authorization(IAT), Err(AuthError::TokenMissing(m)) if m.contains("gateway@"))
        );
        auth.accept_token_response(
            br#"{"access_token":"ya29.x","expires_in":3600,"token_type":"Bearer"}"#,
            IAT,
        )
        .unwrap();
        assert_eq!(
            auth.authorization(IAT + 1).unwrap().as_deref(),
            Some("Bearer ya29.x")
        );
        assert_eq!(auth.token_request(IAT + 1).unwrap(), None);
        assert!(auth.token_request(IAT + 3300).unwrap().is_some());
        auth.invalidate();
        assert!(auth.authorization(IAT + 1).is_err());
        // A missing or broken file is named in the error.
        let gone = dir.join("gone.json");
        assert!(
            matches!(GcsCredentials::from_file(Some(&gone)), Err(AuthError::Credentials(m)) if m.contains("gone.json"))
        );
        std::fs::write(&file, "{}").unwrap();
        assert!(matches!(
            GcsCredentials::from_file(Some(&file)),
            Err(AuthError::Credentials(m)) if m.contains("service-account.json") && m.contains("\"type\"")
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
