//! The gcp backend: object bytes in one Google Cloud Storage bucket, through the JSON
//! API, each object under `{prefix}{data id}`, as the aws backend keeps them in S3:
//! never a client's key, so no upstream naming rule applies and no two writes share a
//! name. The daemon keeps the metadata, the ETags (its own MD5s) and the listings;
//! upstream objects are immutable once written, and GCS's ETags and hashes are never
//! shown to clients.
//!
//! - Writes of known size: small ones are held and sent whole as a multipart upload
//!   whose metadata part carries their MD5 (`md5Hash`), which GCS checks, so they can
//!   be retried; larger ones go as a resumable upload, in chunks of a few MiB, each
//!   one whole PUT (retried where safe), the last with the total size. A media upload
//!   streamed over one open request would need less memory, but fake-gcs-server
//!   answers no other request while one is open, so a streamed copy (which reads the
//!   same server while it writes) would wait forever. Every upload asks
//!   `ifGenerationMatch=0`: an existing object is never overwritten. A write of unknown size is refused
//!   before its body is read (`needs_size`).
//! - Reads are ranged media GETs, streamed: a reader's next `read_at` continues the
//!   same answer. An object being read is pinned (`pins`): its DELETE waits for the
//!   last reader.
//! - Whole-object copies are server-side (`rewriteTo`, repeated with its
//!   `rewriteToken` until done); range copies and scans stream through the daemon.
//! - The orphan sweep lists the prefix and leaves alone anything that is not a data
//!   id, and anything younger than a grace period.
//!
//! Requests carry an OAuth2 bearer token of the configured service account (none for
//! anonymous access, as the fake-gcs-server emulator takes). The token is fetched from
//! the account's token endpoint through the core's own client, kept in one cache that
//! every core shares, renewed before it expires, and dropped once when the store
//! answers 401 to it. Each core talks to the upstream through its own HTTP client
//! (`per_core`).

use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use md5::{Digest, Md5};

use crate::auth::uri_encoded;
use crate::clock;
use crate::limits;
use crate::storage::data_id::{check_data_id, is_valid_data_id, IdSeed};
use crate::storage::gateway_upload::{
    announced_size, expect_status, GatewayUpload, Mode, UploadTarget,
};
use crate::storage::per_core::PerCore;
use crate::storage::pins::Pins;
use crate::storage::pool::Pool;
use crate::storage::ranged::{range_header, upstream_io, RangedObject, RangedSource};
use crate::upstream::{Client, Endpoint, Request, Response, TlsConfig};
use crate::upstream_auth::gcs::{GcsAuth, GcsCredentials};
use crate::upstream_auth::AuthError;

/// Where the gcp backend keeps its bytes, as configured (`storage.gcp.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpSettings {
    pub bucket: String,
    /// The project the bucket belongs to, when given (or the service account's): only
    /// logged, since object requests name the bucket alone.
    pub project: Option<String>,
    /// Prepended to every data id (`bleepstore/`, say); may be empty.
    pub prefix: String,
    /// The service-account JSON file; none sends requests without an Authorization
    /// header (the emulator, or a public bucket).
    pub credentials_file: Option<std::path::PathBuf>,
    /// The JSON API endpoint (`https://storage.googleapis.com` when not given).
    pub endpoint_url: Option<String>,
    /// Extra trusted CA certificates (PEM) for an upstream behind a private CA.
    pub ca_file: Option<std::path::PathBuf>,
    /// Upstream objects younger than this are left alone by the orphan sweep.
    pub orphan_grace: std::time::Duration,
    /// The upstream client's timeouts and retries (`storage.upstream.*`).
    pub client: crate::upstream::ClientConfig,
}

impl GcpSettings {
    /// The endpoint URL in use.
    pub fn endpoint(&self) -> String {
        self.endpoint_url
            .clone()
            .unwrap_or_else(|| limits::GCS_DEFAULT_ENDPOINT.to_string())
    }

    /// What a metadata database records of this backend: the endpoint, bucket and
    /// prefix behind its rows, so that it never starts against another.
    pub fn identity(&self) -> String {
        format!(
            "gcp {}/{}/{}",
            self.endpoint().trim_end_matches('/'),
            self.bucket,
            self.prefix
        )
    }
}

/// Object bytes in a GCS bucket. Cloning is cheap; clones may live on any core.
#[derive(Clone, Debug)]
pub struct GcpStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: GcpSettings,
    endpoint: Endpoint,
    /// `/storage/v1/b/{bucket}`, the bucket percent-encoded.
    bucket_path: String,
    /// `/upload/storage/v1/b/{bucket}/o`, where uploads go.
    upload_path: String,
    tls: TlsConfig,
    /// The credentials and the token every core uses.
    auth: Mutex<GcsAuth>,
    /// The token endpoint (origin) and request target, for a service account.
    token_endpoint: Option<(Endpoint, String)>,
    /// Whether some core is fetching a token now: the others keep using the current
    /// one while it has not expired, rather than each fetching its own.
    fetching: AtomicBool,
    seed: IdSeed,
    pins: Pins,
    pool: Pool,
    clients: PerCore<Client>,
}

fn auth_io(error: AuthError) -> io::Error {
    io::Error::other(format!("gcs authorization: {error}"))
}

/// A non-success answer: 404 is NotFound; the rest name the status and GCS's message.
async fn answer_error(what: &str, mut response: Response) -> io::Error {
    let status = response.status();
    let body = response
        .read_to_end(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
        .await
        .unwrap_or_default();
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .and_then(|e| e.get("message"))
                .and_then(|m| m.as_str())
                .map(|m| format!(": {m}"))
        })
        .unwrap_or_default();
    let message = format!("upstream {what} answered {status}{detail}");
    if status == 404 {
        io::Error::new(io::ErrorKind::NotFound, message)
    } else {
        io::Error::other(message)
    }
}

/// Reads a JSON answer whole.
async fn json_body(
    what: &str,
    response: &mut Response,
    limit: usize,
) -> io::Result<serde_json::Value> {
    let body = response.read_to_end(limit).await.map_err(upstream_io)?;
    serde_json::from_slice(&body)
        .map_err(|e| io::Error::other(format!("upstream {what} answered unreadable JSON: {e}")))
}

/// A decimal number GCS writes as a JSON string (`"size": "11"`), or as a number.
fn json_u64(value: Option<&serde_json::Value>) -> Option<u64> {
    match value? {
        serde_json::Value::String(text) => text.parse().ok(),
        serde_json::Value::Number(number) => number.as_u64(),
        _ => None,
    }
}

/// Percent-encodes one path segment or query value (a `/` becomes `%2F`).
fn encode(text: &str) -> String {
    uri_encoded(text, true)
}

/// Clears the `fetching` flag when the fetch ends, however it ends.
struct Fetching<'a>(&'a AtomicBool);

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl GcpStorage {
    /// The backend on `settings`: the credentials file is read here; nothing is sent
    /// until the first request (startup checks the bucket with `health`).
    pub fn open(settings: GcpSettings) -> Result<GcpStorage, String> {
        let url = settings.endpoint();
        let endpoint =
            Endpoint::parse(&url).map_err(|e| format!("storage.gcp.endpoint_url {url:?}: {e}"))?;
        let credentials = GcsCredentials::from_file(settings.credentials_file.as_deref())
            .map_err(|e| format!("storage.gcp.credentials_file: {e}"))?;
        let mut settings = settings;
        let token_endpoint = match &credentials {
            GcsCredentials::Anonymous => None,
            GcsCredentials::ServiceAccount(account) => {
                if settings.project.is_none() {
                    settings.project = account.project_id().map(str::to_string);
                }
                Some(token_endpoint(account.token_uri())?)
            }
        };
        let bucket = encode(&settings.bucket);
        let tls = TlsConfig::new(settings.ca_file.as_deref())?;
        Ok(GcpStorage {
            inner: Arc::new(Inner {
                bucket_path: format!("/storage/v1/b/{bucket}"),
                upload_path: format!("/upload/storage/v1/b/{bucket}/o"),
                settings,
                endpoint,
                tls,
                auth: Mutex::new(GcsAuth::new(credentials)),
                token_endpoint,
                fetching: AtomicBool::new(false),
                seed: IdSeed::from_urandom().map_err(|e| format!("cannot seed data ids: {e}"))?,
                pins: Pins::default(),
                pool: Pool::start(limits::COPY_THREADS, limits::COPY_QUEUE_MAX)
                    .map_err(|e| format!("cannot start the copy pool: {e}"))?,
                clients: PerCore::new(),
            }),
        })
    }

    pub fn settings(&self) -> &GcpSettings {
        &self.inner.settings
    }

    fn client(&self) -> Rc<Client> {
        self.inner
            .clients
            .get(|| Client::new(self.inner.settings.client.clone(), self.inner.tls.clone()))
    }

    /// Drops this thread's client, whose connections belong to the runtime that is
    /// ending (`Storage::leave_runtime`); the next request here makes a new one.
    pub fn leave_runtime(&self) {
        self.inner.clients.leave();
    }

    fn auth(&self) -> std::sync::MutexGuard<'_, GcsAuth> {
        self.inner.auth.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The upstream name of a data id.
    fn name(&self, data_id: &str) -> String {
        format!("{}{data_id}", self.inner.settings.prefix)
    }

    /// The JSON API path of an object's metadata.
    fn object_path(&self, data_id: &str) -> String {
        format!(
            "{}/o/{}",
            self.inner.bucket_path,
            encode(&self.name(data_id))
        )
    }

    /// The Authorization header for a request sent now, fetching a token first when
    /// one is due; `None` for anonymous credentials.
    async fn authorization(&self, client: &Client) -> io::Result<Option<String>> {
        let now = clock::now_unix();
        let token_request = {
            let auth = self.auth();
            match auth.token_request(now).map_err(auth_io)? {
                None => return auth.authorization(now).map_err(auth_io),
                Some(request) => {
                    let leader = !self.inner.fetching.swap(true, Ordering::AcqRel);
                    if !leader && auth.cache().current(now).is_some() {
                        // Another core is renewing it; this one still serves.
                        return auth.authorization(now).map_err(auth_io);
                    }
                    (request, leader)
                }
            }
        };
        let (request, leader) = token_request;
        let _flag = leader.then(|| Fetching(&self.inner.fetching));
        let Some((endpoint, target)) = &self.inner.token_endpoint else {
            return Err(io::Error::other("a token is due with no token endpoint"));
        };
        let mut post = Request::new("POST", target.clone())
            .header("content-type", request.content_type)
            .with_body(request.body.into_bytes());
        // Asking for a token twice has no effect beyond getting two.
        post.idempotent = true;
        let mut response = client.send(endpoint, post).await.map_err(upstream_io)?;
        let status = response.status();
        let body = response
            .read_to_end(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
            .await
            .map_err(upstream_io)?;
        let mut auth = self.auth();
        match auth.accept_token_response(&body, clock::now_unix()) {
            Ok(()) if status == 200 => {}
            Ok(()) => {
                auth.invalidate();
                return Err(io::Error::other(format!(
                    "the token endpoint {} answered {status}",
                    endpoint.origin()
                )));
            }
            Err(error) => {
                return Err(io::Error::other(format!(
                    "the token endpoint {} answered {status}: {error}",
                    endpoint.origin()
                )))
            }
        }
        auth.authorization(clock::now_unix()).map_err(auth_io)
    }

    /// A request for `path_and_query` (under the endpoint's base), authorized.
    async fn request(
        &self,
        client: &Client,
        method: &str,
        path_and_query: &str,
        headers: Vec<(String, String)>,
    ) -> io::Result<Request> {
        let mut request = Request::new(method, self.inner.endpoint.target(path_and_query));
        request.headers = headers;
        if let Some(authorization) = self.authorization(client).await? {
            request
                .headers
                .push(("authorization".to_string(), authorization));
        }
        Ok(request)
    }

    /// Sends a request with an in-memory body (retried by the client where safe;
    /// `idempotent` marks a POST that is). A 401 drops the token and the request is
    /// sent once more with a new one.
    async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        idempotent: bool,
    ) -> io::Result<Response> {
        let client = self.client();
        if self.inner.token_endpoint.is_some() {
            let response = self
                .send_once(
                    &client,
                    method,
                    path_and_query,
                    headers.clone(),
                    body.clone(),
                    idempotent,
                )
                .await?;
            if response.status() != 401 {
                return Ok(response);
            }
            response
                .discard(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
                .await;
            self.auth().invalidate();
        }
        self.send_once(&client, method, path_and_query, headers, body, idempotent)
            .await
    }

    /// One authorized send, with no retry on 401.
    async fn send_once(
        &self,
        client: &Client,
        method: &str,
        path_and_query: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        idempotent: bool,
    ) -> io::Result<Response> {
        let mut request = self
            .request(client, method, path_and_query, headers)
            .await?
            .with_body(body);
        request.idempotent |= idempotent;
        client
            .send(&self.inner.endpoint, request)
            .await
            .map_err(upstream_io)
    }

    pub fn new_data_id(&self) -> String {
        self.inner.seed.next_id()
    }

    pub fn issued(&self, data_id: &str) -> bool {
        self.inner.seed.issued(data_id)
    }

    /// Starts writing `data_id`, of `size` bytes: streamed upstream from here when it
    /// is large, held and sent whole at commit when it is small.
    pub async fn create(&self, data_id: &str, size: Option<u64>) -> io::Result<GcpUpload> {
        check_data_id(data_id)?;
        let size = announced_size(size, "gcp")?;
        let mode = if size <= limits::UPSTREAM_SMALL_PUT_BYTES_MAX {
            Mode::Held(Vec::with_capacity(size as usize))
        } else {
            Mode::Own(Chunked {
                session: self.start_resumable(data_id, size).await?,
                chunk: Vec::with_capacity(limits::GCS_UPLOAD_CHUNK_BYTES),
                sent: 0,
            })
        };
        Ok(GatewayUpload::new(self.clone(), data_id, size, mode))
    }

    /// The target of a media upload of `data_id`, never over an existing object.
    fn media_target(&self, data_id: &str) -> String {
        format!(
            "{}?uploadType=media&name={}&ifGenerationMatch=0",
            self.inner.upload_path,
            encode(&self.name(data_id))
        )
    }

    /// Starts a resumable upload of `size` bytes, never over an existing object;
    /// returns the session's request target.
    async fn start_resumable(&self, data_id: &str, size: u64) -> io::Result<String> {
        let target = format!(
            "{}?uploadType=resumable&name={}&ifGenerationMatch=0",
            self.inner.upload_path,
            encode(&self.name(data_id))
        );
        let headers = vec![
            (
                "content-type".to_string(),
                "application/json; charset=UTF-8".to_string(),
            ),
            ("x-upload-content-length".to_string(), size.to_string()),
            (
                "x-upload-content-type".to_string(),
                "application/octet-stream".to_string(),
            ),
        ];
        let metadata = serde_json::json!({
            "name": self.name(data_id),
            "contentType": "application/octet-stream",
        });
        // Starting a session twice leaves an unused one, which GCS expires.
        let response = self
            .send(
                "POST",
                &target,
                headers,
                metadata.to_string().into_bytes(),
                true,
            )
            .await?;
        if response.status() != 200 {
            return Err(answer_error("resumable upload start", response).await);
        }
        let location = response
            .header("location")
            .map(str::to_string)
            .ok_or_else(|| {
                io::Error::other("upstream resumable upload start without a Location")
            })?;
        response
            .discard(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
            .await;
        let target = session_target(&location)?;
        // Requests go under the endpoint's base path, which the URI already holds.
        let base = self.inner.endpoint.base_path();
        Ok(match target.strip_prefix(base) {
            Some(rest) if !base.is_empty() && rest.starts_with('/') => rest.to_string(),
            _ => target,
        })
    }

    /// Sends one chunk of a resumable upload at `offset`; `total` on the last one.
    /// A chunk is a whole PUT, held in memory: retried where safe, and no request
    /// stays open between two writes of the caller.
    async fn put_chunk(
        &self,
        session: &str,
        offset: u64,
        chunk: Vec<u8>,
        total: Option<u64>,
    ) -> io::Result<Response> {
        let length = chunk.len() as u64;
        let range = match (length, total) {
            (0, Some(total)) => format!("bytes */{total}"),
            (_, Some(total)) => format!("bytes {offset}-{}/{total}", offset + length - 1),
            (_, None) => format!("bytes {offset}-{}/*", offset + length - 1),
        };
        let headers = vec![("content-range".to_string(), range)];
        let response = self.send("PUT", session, headers, chunk, false).await?;
        match (response.status(), total) {
            (308, None) => {
                // The persisted range, when told, must end where this chunk does.
                let persisted = response
                    .header("range")
                    .and_then(|r| r.rsplit('-').next())
                    .and_then(|end| end.parse::<u64>().ok());
                if persisted.is_some_and(|end| end + 1 != offset + length) {
                    response.discard(0).await;
                    return Err(io::Error::other(
                        "upstream resumable upload persisted another range than was sent",
                    ));
                }
                Ok(response)
            }
            (200 | 201, Some(_)) => Ok(response),
            _ => Err(answer_error("resumable upload", response).await),
        }
    }

    /// Sends a held object whole: a multipart upload whose metadata names the MD5 GCS
    /// must find, so a corrupted body is refused. Should the body contain the
    /// boundary (it cannot hold the data id, which nobody outside knows, but bytes are
    /// bytes), it goes as a media upload without the MD5 instead.
    async fn put_whole(&self, data_id: &str, body: Vec<u8>) -> io::Result<()> {
        let md5 = crate::checksum::base64_encode(&Md5::digest(&body));
        let boundary = format!("bleepstore-{data_id}");
        let response = if contains(&body, boundary.as_bytes()) {
            let headers = vec![(
                "content-type".to_string(),
                "application/octet-stream".to_string(),
            )];
            self.send("POST", &self.media_target(data_id), headers, body, true)
                .await?
        } else {
            let metadata = serde_json::json!({
                "name": self.name(data_id),
                "md5Hash": md5,
                "contentType": "application/octet-stream",
            });
            let mut multipart = Vec::with_capacity(body.len() + 512);
            multipart.extend_from_slice(
                format!(
                    "--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n--{boundary}\r\ncontent-type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            multipart.extend_from_slice(&body);
            multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            drop(body);
            let headers = vec![(
                "content-type".to_string(),
                format!("multipart/related; boundary={boundary}"),
            )];
            let target = format!(
                "{}?uploadType=multipart&ifGenerationMatch=0",
                self.inner.upload_path
            );
            // Safe to repeat: a second attempt can only meet the first one's object.
            self.send("POST", &target, headers, multipart, true).await?
        };
        match response.status() {
            200 => {
                response
                    .discard(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
                    .await;
                Ok(())
            }
            412 => {
                // The name exists: a retried upload whose first attempt was stored
                // (no one else writes this data id), unless its bytes differ.
                response
                    .discard(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
                    .await;
                let stored = self.metadata(data_id).await?;
                if stored.get("md5Hash").and_then(|v| v.as_str()) == Some(md5.as_str()) {
                    Ok(())
                } else {
                    Err(io::Error::other(format!(
                        "upstream object {} already exists with other bytes",
                        self.name(data_id)
                    )))
                }
            }
            _ => Err(answer_error("upload", response).await),
        }
    }

    /// An object for reading bytes `offset..offset + length` (the whole object when
    /// `range` is `None`), of `size` bytes when known: pinned now, fetched by the
    /// first read.
    pub fn open_object(
        &self,
        data_id: &str,
        range: Option<(u64, u64)>,
        size: Option<u64>,
    ) -> io::Result<GcpObject> {
        RangedObject::open(self.clone(), &self.inner.pins, data_id, range, size)
    }

    /// An object's metadata resource; NotFound when there is none.
    async fn metadata(&self, data_id: &str) -> io::Result<serde_json::Value> {
        let mut response = self
            .send(
                "GET",
                &self.object_path(data_id),
                Vec::new(),
                Vec::new(),
                false,
            )
            .await?;
        if response.status() != 200 {
            return Err(answer_error("object metadata", response).await);
        }
        json_body(
            "object metadata",
            &mut response,
            limits::UPSTREAM_ERROR_BODY_BYTES_MAX,
        )
        .await
    }

    /// The size of an object, from its metadata; NotFound when there is none.
    pub async fn size_of(&self, data_id: &str) -> io::Result<u64> {
        check_data_id(data_id)?;
        let metadata = self.metadata(data_id).await?;
        json_u64(metadata.get("size"))
            .ok_or_else(|| io::Error::other("upstream object metadata without a size"))
    }

    /// A whole-object copy on the upstream (`rewriteTo`, continued with its token
    /// until done); returns the size.
    pub async fn copy(&self, source: &str, target: &str) -> io::Result<u64> {
        check_data_id(source)?;
        check_data_id(target)?;
        let base = format!(
            "{}/rewriteTo/b/{}/o/{}?ifGenerationMatch=0",
            self.object_path(source),
            encode(&self.inner.settings.bucket),
            encode(&self.name(target))
        );
        let mut token: Option<String> = None;
        for _ in 0..limits::GCS_REWRITE_CALLS_MAX {
            let path = match &token {
                Some(token) => format!("{base}&rewriteToken={}", encode(token)),
                None => base.clone(),
            };
            let headers = vec![("content-type".to_string(), "application/json".to_string())];
            // Repeating a rewrite call resumes or redoes the same copy.
            let mut response = self
                .send("POST", &path, headers, b"{}".to_vec(), true)
                .await?;
            if response.status() != 200 {
                return Err(answer_error("rewrite", response).await);
            }
            let answer = json_body(
                "rewrite",
                &mut response,
                limits::UPSTREAM_ERROR_BODY_BYTES_MAX,
            )
            .await?;
            if answer.get("done").and_then(|d| d.as_bool()) == Some(true) {
                return json_u64(answer.get("objectSize"))
                    .or_else(|| json_u64(answer.get("resource").and_then(|r| r.get("size"))))
                    .ok_or_else(|| io::Error::other("upstream rewrite answered without a size"));
            }
            token = answer
                .get("rewriteToken")
                .and_then(|t| t.as_str())
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Err(io::Error::other(
                    "upstream rewrite is not done and gave no rewriteToken",
                ));
            }
        }
        Err(io::Error::other(format!(
            "upstream rewrite of {source} not done after {} calls",
            limits::GCS_REWRITE_CALLS_MAX
        )))
    }

    /// The pool copies and scans run their stage on (`streamed`).
    pub(super) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Deletes an object upstream; deleting one already gone succeeds. While readers
    /// stream it, the deletion is the last one's to do.
    pub async fn remove(&self, data_id: &str) -> io::Result<()> {
        check_data_id(data_id)?;
        let delete = |id: String| async move { self.delete(&id).await };
        self.inner.pins.remove(data_id, "object", delete).await
    }

    /// The data ids under the prefix older than the sweep's grace period. Names under
    /// the prefix that are not data ids are never listed: they are not ours to remove.
    pub async fn list_ids(&self) -> io::Result<Vec<String>> {
        let now_ms = clock::now_unix_millis();
        let grace_ms = self.inner.settings.orphan_grace.as_millis() as i64;
        let prefix = &self.inner.settings.prefix;
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!(
                "{}/o?prefix={}&fields={}",
                self.inner.bucket_path,
                encode(prefix),
                encode("items(name,timeCreated,updated),nextPageToken")
            );
            if let Some(token) = &token {
                path.push_str("&pageToken=");
                path.push_str(&encode(token));
            }
            let mut response = self
                .send("GET", &path, Vec::new(), Vec::new(), false)
                .await?;
            if response.status() != 200 {
                return Err(answer_error("list objects", response).await);
            }
            let page = json_body(
                "list objects",
                &mut response,
                limits::UPSTREAM_LIST_BODY_BYTES_MAX,
            )
            .await?;
            let items = page.get("items").and_then(|i| i.as_array());
            for item in items.into_iter().flatten() {
                let Some(name) = item.get("name").and_then(|n| n.as_str()) else {
                    continue;
                };
                let Some(id) = name.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                let old_enough = item
                    .get("timeCreated")
                    .or_else(|| item.get("updated"))
                    .and_then(|t| t.as_str())
                    .and_then(clock::parse_iso8601_millis)
                    .is_some_and(|at| now_ms - at >= grace_ms);
                if is_valid_data_id(id) && old_enough {
                    ids.push(id.to_string());
                }
            }
            match page.get("nextPageToken").and_then(|t| t.as_str()) {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(ids)
    }

    /// Whether the bucket answers (`GET /storage/v1/b/{bucket}`).
    pub async fn health(&self) -> io::Result<()> {
        let path = format!("{}?fields=name", self.inner.bucket_path);
        let response = self
            .send("GET", &path, Vec::new(), Vec::new(), false)
            .await?;
        if response.status() == 200 {
            response
                .discard(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
                .await;
            return Ok(());
        }
        let status = response.status();
        let settings = &self.inner.settings;
        let why = answer_error("bucket GET", response).await;
        Err(io::Error::other(match status {
            404 => format!(
                "bucket {:?} does not exist at {}",
                settings.bucket,
                settings.endpoint()
            ),
            401 | 403 => format!(
                "access to bucket {:?} at {} is denied (check the credentials): {why}",
                settings.bucket,
                settings.endpoint()
            ),
            _ => format!(
                "bucket {:?} at {}: {why}",
                settings.bucket,
                settings.endpoint()
            ),
        }))
    }
}

/// The endpoint and request target of a token URI (`https://host/path`).
fn token_endpoint(uri: &str) -> Result<(Endpoint, String), String> {
    let after_scheme = uri.find("://").map(|at| at + 3).unwrap_or(0);
    let (origin, target) = match uri[after_scheme..].find('/') {
        Some(at) => uri.split_at(after_scheme + at),
        None => (uri, "/"),
    };
    let endpoint =
        Endpoint::parse(origin).map_err(|e| format!("the service account's token_uri: {e}"))?;
    Ok((endpoint, target.to_string()))
}

/// The request target of a resumable session's URI (an absolute URL on the
/// endpoint, as GCS and the emulator give it; a bare path is taken as it is).
fn session_target(location: &str) -> io::Result<String> {
    let target = match location.find("://") {
        Some(at) => {
            let rest = &location[at + 3..];
            rest.find('/').map(|slash| &rest[slash..]).unwrap_or("/")
        }
        None => location,
    };
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(io::Error::other(format!(
            "upstream resumable upload Location {location:?} is not a URL"
        )));
    }
    Ok(target.to_string())
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A write in a resumable upload: the chunk being filled, and the bytes already sent.
pub struct Chunked {
    session: String,
    chunk: Vec<u8>,
    sent: u64,
}

/// An object being written upstream (see `gateway_upload`).
pub type GcpUpload = GatewayUpload<GcpStorage>;

impl UploadTarget for GcpStorage {
    type Own = Chunked;

    const NOUN: &'static str = "object";

    async fn put_held(&self, data_id: &str, body: Vec<u8>) -> io::Result<()> {
        self.put_whole(data_id, body).await
    }

    /// No write here is one streamed request (see the module's notes): no such
    /// answer comes.
    async fn check_stored(&self, response: Response) -> io::Result<()> {
        response.discard(0).await;
        Err(io::Error::other(
            "the gcp backend streams no upload in one request",
        ))
    }

    async fn delete(&self, data_id: &str) -> io::Result<()> {
        let response = self
            .send(
                "DELETE",
                &self.object_path(data_id),
                Vec::new(),
                Vec::new(),
                false,
            )
            .await?;
        expect_status(self, "DELETE", response, &[200, 204, 404]).await
    }

    /// Adds `buf` to the chunk, sending each full one that is not the object's last.
    async fn write_own(
        &self,
        _: &str,
        chunked: &mut Chunked,
        written: &mut u64,
        size: u64,
        buf: Vec<u8>,
    ) -> (io::Result<()>, Vec<u8>) {
        *written += buf.len() as u64;
        let Chunked {
            session,
            chunk,
            sent,
        } = chunked;
        let mut rest = &buf[..];
        while !rest.is_empty() {
            let room = limits::GCS_UPLOAD_CHUNK_BYTES - chunk.len();
            let take = room.min(rest.len());
            chunk.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            // A full chunk that is not the object's last goes now; the last one goes
            // at commit, with the total.
            if chunk.len() == limits::GCS_UPLOAD_CHUNK_BYTES && *sent + (chunk.len() as u64) < size
            {
                let full =
                    std::mem::replace(chunk, Vec::with_capacity(limits::GCS_UPLOAD_CHUNK_BYTES));
                let length = full.len() as u64;
                match self.put_chunk(session, *sent, full, None).await {
                    Ok(response) => {
                        response
                            .discard(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
                            .await
                    }
                    Err(error) => {
                        let mut buf = buf;
                        buf.clear();
                        return (Err(error), buf);
                    }
                }
                *sent += length;
            }
        }
        let mut buf = buf;
        buf.clear();
        (Ok(()), buf)
    }

    /// Sends the last chunk with the total, and checks the object has its size.
    async fn commit_own(&self, data_id: &str, chunked: Chunked, size: u64) -> io::Result<()> {
        let Chunked {
            session,
            chunk,
            sent,
        } = chunked;
        let mut response = self.put_chunk(&session, sent, chunk, Some(size)).await?;
        let stored = json_body(
            "upload",
            &mut response,
            limits::UPSTREAM_ERROR_BODY_BYTES_MAX,
        )
        .await?;
        match json_u64(stored.get("size")) {
            Some(stored) if stored != size => {
                let _ = self.delete(data_id).await;
                Err(io::Error::other(format!(
                    "upstream stored {stored} bytes of {size}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Cancels the resumable upload (nothing was stored, since its last chunk was
    /// never sent).
    async fn abort_own(&self, data_id: &str, chunked: Chunked) {
        match self
            .send("DELETE", &chunked.session, Vec::new(), Vec::new(), false)
            .await
        {
            Ok(response) => {
                response
                    .discard(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
                    .await
            }
            Err(error) => {
                log::debug!("could not cancel the upload of {data_id}: {error}")
            }
        }
    }
}

/// An object upstream, open for reading (see `ranged`).
pub type GcpObject = RangedObject<GcpStorage>;

impl RangedSource for GcpStorage {
    async fn get_range(
        &self,
        data_id: &str,
        offset: u64,
        end: Option<u64>,
    ) -> io::Result<Response> {
        // Identity: the bytes as stored, never a transcoded rendition.
        let headers = vec![
            ("range".to_string(), range_header(offset, end)),
            ("accept-encoding".to_string(), "identity".to_string()),
        ];
        let path = format!("{}?alt=media", self.object_path(data_id));
        self.send("GET", &path, headers, Vec::new(), false).await
    }

    fn get_name(&self) -> &'static str {
        "GET"
    }

    async fn answer_error(&self, what: &str, response: Response) -> io::Error {
        answer_error(what, response).await
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::process::{Command, Stdio};
    use std::sync::mpsc;

    use super::*;

    /// One request the scripted server saw: method, target, Authorization header.
    type Seen = (String, String, Option<String>);

    /// A server on loopback that answers `answers.len()` requests in order, one per
    /// connection, with the status and body given for each, and tells what it saw.
    fn scripted(answers: Vec<(u16, String)>) -> (u16, mpsc::Receiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tell, seen) = mpsc::channel();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let (method, target) = (
                    parts.next().unwrap().to_string(),
                    parts.next().unwrap().to_string(),
                );
                let (mut length, mut authorization) = (0usize, None);
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap();
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap(),
                        "authorization" => authorization = Some(value.trim().to_string()),
                        _ => {}
                    }
                }
                let mut request_body = vec![0; length];
                reader.read_exact(&mut request_body).unwrap();
                if method == "POST" {
                    let form = String::from_utf8(request_body).unwrap();
                    assert!(
                        form.contains("grant_type=urn"),
                        "a JWT-bearer grant: {form}"
                    );
                    assert!(form.contains("assertion="), "with its assertion");
                }
                tell.send((method, target, authorization)).unwrap();
                let mut stream = stream;
                write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        (port, seen)
    }

    /// A service-account file whose token endpoint is on `port`, with a throwaway
    /// RSA key made by openssl.
    fn account_file(port: u16) -> std::path::PathBuf {
        let key = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .stderr(Stdio::null())
            .output()
            .expect("the openssl CLI runs");
        assert!(key.status.success());
        let json = serde_json::json!({
            "type": "service_account",
            "project_id": "from-the-account",
            "client_email": "daemon@bleepstore-test.iam.gserviceaccount.com",
            "private_key": String::from_utf8(key.stdout).unwrap(),
            "token_uri": format!("http://127.0.0.1:{port}/token"),
        });
        let path = std::env::temp_dir().join(format!(
            "bleepstore-gcp-account-{}-{port}.json",
            std::process::id()
        ));
        std::fs::write(&path, json.to_string()).unwrap();
        path
    }

    fn token(value: &str) -> (u16, String) {
        (
            200,
            format!(r#"{{"access_token":"{value}","token_type":"Bearer","expires_in":3600}}"#),
        )
    }

    fn settings(port: u16, credentials_file: Option<std::path::PathBuf>) -> GcpSettings {
        GcpSettings {
            bucket: "bkt".to_string(),
            project: None,
            prefix: "p/".to_string(),
            credentials_file,
            endpoint_url: Some(format!("http://127.0.0.1:{port}")),
            ca_file: None,
            orphan_grace: std::time::Duration::ZERO,
            client: Default::default(),
        }
    }

    fn run<F: std::future::Future>(future: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_token_is_fetched_cached_shared_and_renewed_after_a_401() {
        let bucket = r#"{"name":"bkt"}"#.to_string();
        let (port, seen) = scripted(vec![
            token("first"),
            (
                401,
                r#"{"error":{"code":401,"message":"expired"}}"#.to_string(),
            ),
            token("second"),
            (200, bucket.clone()),
            (200, bucket.clone()),
            (200, bucket),
        ]);
        let file = account_file(port);
        let storage = GcpStorage::open(settings(port, Some(file.clone()))).unwrap();
        assert_eq!(
            storage.settings().project.as_deref(),
            Some("from-the-account"),
            "the project comes from the account when not configured"
        );
        run(storage.health()).unwrap();
        // Another core (thread) uses the token the first one fetched.
        let other = storage.clone();
        std::thread::spawn(move || run(other.health()).unwrap())
            .join()
            .unwrap();
        run(storage.health()).unwrap();
        let seen: Vec<Seen> = seen.try_iter().collect();
        let bucket_get = "/storage/v1/b/bkt?fields=name";
        let expected: Vec<Seen> = vec![
            ("POST".into(), "/token".into(), None),
            ("GET".into(), bucket_get.into(), Some("Bearer first".into())),
            ("POST".into(), "/token".into(), None),
            (
                "GET".into(),
                bucket_get.into(),
                Some("Bearer second".into()),
            ),
            (
                "GET".into(),
                bucket_get.into(),
                Some("Bearer second".into()),
            ),
            (
                "GET".into(),
                bucket_get.into(),
                Some("Bearer second".into()),
            ),
        ];
        assert_eq!(seen, expected);
        let _ = std::fs::remove_file(file);
    }

    #[test]
    fn anonymous_requests_carry_no_authorization_and_errors_are_clear() {
        let (port, seen) = scripted(vec![
            (
                404,
                r#"{"error":{"code":404,"message":"Not Found"}}"#.to_string(),
            ),
            (
                403,
                r#"{"error":{"code":403,"message":"no access"}}"#.to_string(),
            ),
        ]);
        let storage = GcpStorage::open(settings(port, None)).unwrap();
        let missing = run(storage.health()).unwrap_err().to_string();
        assert!(missing.contains("does not exist"), "{missing}");
        let denied = run(storage.health()).unwrap_err().to_string();
        assert!(
            denied.contains("denied") && denied.contains("no access"),
            "{denied}"
        );
        for (_, _, authorization) in seen.try_iter() {
            assert_eq!(authorization, None);
        }
    }

    #[test]
    fn a_refused_token_request_is_reported() {
        let (port, _seen) = scripted(vec![(
            400,
            r#"{"error":"invalid_grant","error_description":"bad signature"}"#.to_string(),
        )]);
        let file = account_file(port);
        let storage = GcpStorage::open(settings(port, Some(file.clone()))).unwrap();
        let error = run(storage.health()).unwrap_err().to_string();
        assert!(
            error.contains("token endpoint") && error.contains("invalid_grant"),
            "{error}"
        );
        let _ = std::fs::remove_file(file);
    }

    #[test]
    fn names_and_session_uris() {
        assert_eq!(encode("p/a b"), "p%2Fa%20b");
        assert_eq!(
            session_target("http://127.0.0.1:9/upload/storage/v1/b/x/o?upload_id=1").unwrap(),
            "/upload/storage/v1/b/x/o?upload_id=1"
        );
        assert!(session_target("no url").is_err());
        let (endpoint, target) = token_endpoint("https://oauth2.googleapis.com/token").unwrap();
        assert_eq!(
            (endpoint.origin(), target.as_str()),
            ("https://oauth2.googleapis.com:443", "/token")
        );
        assert_eq!(
            clock::parse_iso8601_millis("2026-12-02T06:07:26.10958Z"),
            Some(1_796_191_646_109),
            "GCS's RFC 3339 times, to the millisecond"
        );
    }
}
