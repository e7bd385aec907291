//! The aws backend: object bytes in one bucket of AWS S3 or any S3-compatible store
//! (Ceph RGW, MinIO, GCS through its XML API with HMAC keys), each object under
//! `{prefix}{data id}`: never a client's key, so no upstream naming rule applies and
//! no two writes ever share a name. The daemon keeps the metadata, the ETags (its own
//! MD5s) and the listings; upstream objects are immutable once written.
//!
//! - Writes of known size stream to the upstream as they arrive (flat memory); small
//!   ones are held and sent whole, with their MD5 and SHA-256, so they can be retried.
//!   A write of unknown size is refused before its body is read (`needs_size`), as S3
//!   itself refuses one: the upstream PUT must announce its length.
//! - Reads are ranged GETs, streamed: a reader's next `read_at` continues the same
//!   answer. An object being read is pinned (`pins`): its upstream DELETE waits for the
//!   last reader, as an open file keeps its bytes on the local backend.
//! - Whole-object copies are server-side (CopyObject); range copies and scans stream
//!   through the daemon, whose stage (the hasher) runs on the copy pool.
//! - The orphan sweep lists the prefix and leaves alone anything that is not a data
//!   id, and anything younger than a grace period.
//!
//! Each core talks to the upstream through its own HTTP client and signer
//! (`crate::upstream`, `crate::upstream_auth`), made on first use on that thread
//! (`per_core`).

use std::cell::RefCell;
use std::convert::Infallible;
use std::io;
use std::rc::Rc;
use std::sync::Arc;

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
use crate::storage::upstream_xml;
use crate::upstream::{Client, Endpoint, Request, Response, TlsConfig};
use crate::upstream_auth::sigv4::{AwsCredentials, PayloadHash, SigV4Signer, SignerConfig};
use crate::upstream_auth::OutgoingRequest;

/// Where the aws backend keeps its bytes, as configured (`storage.aws.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    pub bucket: String,
    pub region: String,
    /// Prepended to every data id (`bleepstore/`, say); may be empty.
    pub prefix: String,
    /// The S3 endpoint (`https://s3.{region}.amazonaws.com` when not given).
    pub endpoint_url: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) rather than virtual-hosted
    /// (`bucket.endpoint/key`); the default is path style for a given endpoint (the
    /// usual S3-compatible server), virtual-hosted for AWS itself.
    pub use_path_style: Option<bool>,
    pub credentials: AwsCredentials,
    /// Extra trusted CA certificates (PEM) for an upstream behind a private CA.
    pub ca_file: Option<std::path::PathBuf>,
    /// Upstream objects younger than this are left alone by the orphan sweep.
    pub orphan_grace: std::time::Duration,
    /// The upstream client's timeouts and retries (`storage.upstream.*`).
    pub client: crate::upstream::ClientConfig,
}

impl AwsSettings {
    /// The endpoint URL in use.
    pub fn endpoint(&self) -> String {
        self.endpoint_url
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.region))
    }

    fn path_style(&self) -> bool {
        self.use_path_style.unwrap_or(self.endpoint_url.is_some())
    }

    /// What a metadata database records of this backend: the bucket and prefix behind
    /// its rows, so that it never starts against another.
    pub fn identity(&self) -> String {
        format!(
            "aws {}/{}/{}",
            self.endpoint().trim_end_matches('/'),
            self.bucket,
            self.prefix
        )
    }
}

/// Object bytes in an S3 bucket. Cloning is cheap; clones may live on any core.
#[derive(Clone, Debug)]
pub struct AwsStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: AwsSettings,
    /// The endpoint requests go to (with the bucket in the host when virtual-hosted).
    endpoint: Endpoint,
    /// The path of the bucket under the endpoint: `/bucket` (path style) or empty.
    bucket_path: String,
    /// The prefix, percent-encoded for request paths.
    prefix_path: String,
    tls: TlsConfig,
    seed: IdSeed,
    pins: Pins,
    pool: Pool,
    cores: PerCore<Core>,
}

/// One core's way to the upstream.
struct Core {
    client: Client,
    signer: RefCell<SigV4Signer>,
}

/// A non-success answer: 404 is NotFound; the rest name the status and S3 error code.
async fn answer_error(what: &str, mut response: Response) -> io::Error {
    let status = response.status();
    let body = response
        .read_to_end(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
        .await
        .unwrap_or_default();
    let detail = upstream_xml::error_code(&body)
        .map(|(code, message)| format!(" {code}: {message}"))
        .unwrap_or_default();
    let message = format!("upstream {what} answered {status}{detail}");
    if status == 404 {
        io::Error::new(io::ErrorKind::NotFound, message)
    } else {
        io::Error::other(message)
    }
}

impl AwsStorage {
    /// The backend on `settings`; nothing is sent until the first request (startup
    /// checks the bucket with `health`).
    pub fn open(settings: AwsSettings) -> Result<AwsStorage, String> {
        let path_style = settings.path_style();
        let url = settings.endpoint();
        let base =
            Endpoint::parse(&url).map_err(|e| format!("storage.aws.endpoint_url {url:?}: {e}"))?;
        let (endpoint, bucket_path) = if path_style {
            (base, format!("/{}", uri_encoded(&settings.bucket, true)))
        } else {
            let host = format!("{}.{}", settings.bucket, base.host());
            let virtual_url = format!(
                "{}://{}:{}{}",
                match base.scheme() {
                    crate::upstream::Scheme::Http => "http",
                    crate::upstream::Scheme::Https => "https",
                },
                host,
                base.port(),
                base.base_path()
            );
            let endpoint = Endpoint::parse(&virtual_url).map_err(|e| {
                format!(
                    "storage.aws.bucket {:?} as a host name: {e}",
                    settings.bucket
                )
            })?;
            (endpoint, String::new())
        };
        let tls = TlsConfig::new(settings.ca_file.as_deref())?;
        Ok(AwsStorage {
            inner: Arc::new(Inner {
                prefix_path: uri_encoded(&settings.prefix, false),
                settings,
                endpoint,
                bucket_path,
                tls,
                seed: IdSeed::from_urandom().map_err(|e| format!("cannot seed data ids: {e}"))?,
                pins: Pins::default(),
                pool: Pool::start(limits::COPY_THREADS, limits::COPY_QUEUE_MAX)
                    .map_err(|e| format!("cannot start the copy pool: {e}"))?,
                cores: PerCore::new(),
            }),
        })
    }

    pub fn settings(&self) -> &AwsSettings {
        &self.inner.settings
    }

    fn core(&self) -> Rc<Core> {
        self.inner.cores.get(|| Core {
            client: Client::new(self.inner.settings.client.clone(), self.inner.tls.clone()),
            signer: RefCell::new(SigV4Signer::new(
                self.inner.settings.credentials.clone(),
                SignerConfig::s3(&self.inner.settings.region),
            )),
        })
    }

    /// Drops this thread's client and its pooled connections: call at the end of a
    /// short-lived runtime that used the backend (startup's), inside it, since a
    /// connection belongs to the runtime that opened it.
    pub fn leave_runtime(&self) {
        self.inner.cores.leave();
    }

    /// The path of an object under the endpoint's base path.
    fn object_path(&self, data_id: &str) -> String {
        format!(
            "{}/{}{}",
            self.inner.bucket_path, self.inner.prefix_path, data_id
        )
    }

    /// The path of the bucket itself (`/bucket`, or `/` when virtual-hosted).
    fn bucket_root(&self) -> String {
        if self.inner.bucket_path.is_empty() {
            "/".to_string()
        } else {
            self.inner.bucket_path.clone()
        }
    }

    /// A signed request for `path` (under the endpoint's base) and `query`.
    fn request(
        &self,
        core: &Core,
        method: &str,
        path: &str,
        query: &str,
        mut headers: Vec<(String, String)>,
        payload: PayloadHash,
    ) -> io::Result<Request> {
        let full_path = self.inner.endpoint.target(path);
        headers.insert(0, ("host".to_string(), self.inner.endpoint.host_header()));
        let signed = core
            .signer
            .borrow_mut()
            .sign(
                &OutgoingRequest {
                    method,
                    path: &full_path,
                    query,
                    headers: &headers,
                },
                payload,
                clock::now_unix(),
            )
            .map_err(|e| io::Error::other(e.to_string()))?;
        let target = if query.is_empty() {
            full_path
        } else {
            format!("{full_path}?{query}")
        };
        let mut request = Request::new(method, target);
        request.headers = headers;
        request.headers.extend(signed);
        Ok(request)
    }

    /// Sends a request with an in-memory body (retried where safe).
    async fn send(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> io::Result<Response> {
        let core = self.core();
        let payload = PayloadHash::of(&body);
        let request = self
            .request(&core, method, path, query, headers, payload)?
            .with_body(body);
        core.client
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
    pub async fn create(&self, data_id: &str, size: Option<u64>) -> io::Result<AwsUpload> {
        check_data_id(data_id)?;
        let size = announced_size(size, "aws")?;
        let mode = if size <= limits::UPSTREAM_SMALL_PUT_BYTES_MAX {
            Mode::Held(Vec::with_capacity(size as usize))
        } else {
            let core = self.core();
            let headers = vec![(
                "content-type".to_string(),
                "application/octet-stream".to_string(),
            )];
            let path = self.object_path(data_id);
            let request = self.request(&core, "PUT", &path, "", headers, PayloadHash::Unsigned)?;
            let upload = core
                .client
                .upload(&self.inner.endpoint, request, size)
                .await
                .map_err(upstream_io)?;
            Mode::Streamed(upload)
        };
        Ok(GatewayUpload::new(self.clone(), data_id, size, mode))
    }

    /// An object for reading bytes `offset..offset + length` (the whole object when
    /// `length` is `None`): pinned now, fetched by the first read.
    pub fn open_object(&self, data_id: &str, range: Option<(u64, u64)>) -> io::Result<AwsObject> {
        RangedObject::open(self.clone(), &self.inner.pins, data_id, range, None)
    }

    /// The size of an object, by HEAD; NotFound when there is none.
    pub async fn size_of(&self, data_id: &str) -> io::Result<u64> {
        check_data_id(data_id)?;
        let response = self
            .send(
                "HEAD",
                &self.object_path(data_id),
                "",
                Vec::new(),
                Vec::new(),
            )
            .await?;
        if response.status() != 200 {
            return Err(answer_error("HEAD", response).await);
        }
        response
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other("upstream HEAD answered without a Content-Length"))
    }

    /// A whole-object copy on the upstream (CopyObject); returns the size.
    pub async fn copy(&self, source: &str, target: &str) -> io::Result<u64> {
        check_data_id(source)?;
        check_data_id(target)?;
        let size = self.size_of(source).await?;
        let copy_source = format!(
            "/{}/{}",
            uri_encoded(&self.inner.settings.bucket, true),
            uri_encoded(&format!("{}{source}", self.inner.settings.prefix), false)
        );
        let headers = vec![("x-amz-copy-source".to_string(), copy_source)];
        let mut response = self
            .send("PUT", &self.object_path(target), "", headers, Vec::new())
            .await?;
        if response.status() != 200 {
            return Err(answer_error("CopyObject", response).await);
        }
        // S3 may answer a copy 200 and put its failure in the body.
        let body = response
            .read_to_end(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
            .await
            .map_err(upstream_io)?;
        if let Some((code, message)) = upstream_xml::error_code(&body) {
            return Err(io::Error::other(format!(
                "upstream CopyObject failed: {code}: {message}"
            )));
        }
        Ok(size)
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

    /// The data ids under the prefix older than the sweep's grace period (a write of
    /// this daemon, or of one a moment ago on the same prefix, may be younger). Names under the prefix
    /// that are not data ids are never listed: they are not ours to remove.
    pub async fn list_ids(&self) -> io::Result<Vec<String>> {
        let now_ms = clock::now_unix_millis();
        let grace_ms = self.inner.settings.orphan_grace.as_millis() as i64;
        let prefix = &self.inner.settings.prefix;
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("list-type".to_string(), "2".to_string()),
                ("prefix".to_string(), prefix.clone()),
            ];
            if let Some(token) = &token {
                query.push(("continuation-token".to_string(), token.clone()));
            }
            query.sort();
            let query = query
                .iter()
                .map(|(k, v)| format!("{}={}", uri_encoded(k, true), uri_encoded(v, true)))
                .collect::<Vec<_>>()
                .join("&");
            let mut response = self
                .send("GET", &self.bucket_root(), &query, Vec::new(), Vec::new())
                .await?;
            if response.status() != 200 {
                return Err(answer_error("ListObjectsV2", response).await);
            }
            let body = response
                .read_to_end(limits::UPSTREAM_LIST_BODY_BYTES_MAX)
                .await
                .map_err(upstream_io)?;
            let (records, tops) = upstream_xml::records(
                &body,
                "Contents",
                &["Key", "LastModified"],
                &["NextContinuationToken", "IsTruncated"],
            )
            .map_err(|e| io::Error::other(format!("upstream listing: {e}")))?;
            for record in records {
                let mut fields = record.into_iter();
                let (Some(Some(key)), modified) = (fields.next(), fields.next().flatten()) else {
                    continue;
                };
                let Some(id) = key.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                let old_enough = modified
                    .as_deref()
                    .and_then(clock::parse_iso8601_millis)
                    .is_some_and(|at| now_ms - at >= grace_ms);
                if is_valid_data_id(id) && old_enough {
                    ids.push(id.to_string());
                }
            }
            let mut tops = tops.into_iter();
            let next = tops.next().flatten();
            let truncated = tops.next().flatten().as_deref() == Some("true");
            match next {
                Some(next) if truncated => token = Some(next),
                _ => break,
            }
        }
        Ok(ids)
    }

    /// Whether the bucket answers (HEAD bucket).
    pub async fn health(&self) -> io::Result<()> {
        let response = self
            .send("HEAD", &self.bucket_root(), "", Vec::new(), Vec::new())
            .await?;
        if response.status() == 200 {
            return Ok(());
        }
        let status = response.status();
        response.discard(0).await;
        Err(io::Error::other(match status {
            404 => format!(
                "bucket {:?} does not exist at {}",
                self.inner.settings.bucket,
                self.inner.settings.endpoint()
            ),
            403 => format!(
                "access to bucket {:?} at {} is denied (check the credentials)",
                self.inner.settings.bucket,
                self.inner.settings.endpoint()
            ),
            other => format!(
                "bucket {:?} at {} answered HEAD with {other}",
                self.inner.settings.bucket,
                self.inner.settings.endpoint()
            ),
        }))
    }
}

/// An object being written upstream (see `gateway_upload`).
pub type AwsUpload = GatewayUpload<AwsStorage>;

impl UploadTarget for AwsStorage {
    type Own = Infallible;

    const NOUN: &'static str = "object";

    async fn put_held(&self, data_id: &str, body: Vec<u8>) -> io::Result<()> {
        let md5 = crate::checksum::base64_encode(&Md5::digest(&body));
        let headers = vec![
            ("content-md5".to_string(), md5),
            (
                "content-type".to_string(),
                "application/octet-stream".to_string(),
            ),
        ];
        let path = self.object_path(data_id);
        let response = self.send("PUT", &path, "", headers, body).await?;
        self.check_stored(response).await
    }

    async fn check_stored(&self, response: Response) -> io::Result<()> {
        expect_status(self, "PUT", response, &[200]).await
    }

    async fn delete(&self, data_id: &str) -> io::Result<()> {
        let response = self
            .send(
                "DELETE",
                &self.object_path(data_id),
                "",
                Vec::new(),
                Vec::new(),
            )
            .await?;
        expect_status(self, "DELETE", response, &[200, 204, 404]).await
    }

    // Every write is held or one streamed PUT.
    async fn write_own(
        &self,
        _: &str,
        own: &mut Infallible,
        _: &mut u64,
        _: u64,
        _: Vec<u8>,
    ) -> (io::Result<()>, Vec<u8>) {
        match *own {}
    }

    async fn commit_own(&self, _: &str, own: Infallible, _: u64) -> io::Result<()> {
        match own {}
    }

    async fn abort_own(&self, _: &str, own: Infallible) {
        match own {}
    }
}

/// An object upstream, open for reading (see `ranged`).
pub type AwsObject = RangedObject<AwsStorage>;

impl RangedSource for AwsStorage {
    async fn get_range(
        &self,
        data_id: &str,
        offset: u64,
        end: Option<u64>,
    ) -> io::Result<Response> {
        let headers = vec![("range".to_string(), range_header(offset, end))];
        self.send("GET", &self.object_path(data_id), "", headers, Vec::new())
            .await
    }

    fn get_name(&self) -> &'static str {
        "GET"
    }

    async fn answer_error(&self, what: &str, response: Response) -> io::Error {
        answer_error(what, response).await
    }
}
