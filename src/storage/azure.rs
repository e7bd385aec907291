//! The azure backend: object bytes in one container of Azure Blob Storage (or the
//! Azurite emulator), each object a block blob named `{prefix}{data id}`: never a
//! client's key, so no upstream naming rule applies and no two writes ever share a
//! name. The daemon keeps the metadata, the ETags (its own MD5s) and the listings;
//! upstream blobs are immutable once written, and their ETags are never used.
//!
//! - Writes of known size stream to the upstream as they arrive (flat memory); small
//!   ones are held and sent whole with their Content-MD5, so they can be retried. Up
//!   to Put Blob's size limit a write is one streamed Put Blob; past it, a Put Block
//!   per block of the blob's own name, streamed in turn, and a Put Block List that
//!   commits them (block ids of one length, as the service requires). A write of
//!   unknown size is refused before its body is read (`needs_size`).
//! - Reads are ranged Get Blobs (`x-ms-range`), streamed: a reader's next `read_at`
//!   continues the same answer. A blob being read is pinned (`pins`): its deletion
//!   waits for the last reader, as an open file keeps its bytes on the local backend.
//! - Whole-object copies are server-side (Copy Blob within the account, waited for
//!   when the service answers `pending`); range copies and scans stream through the
//!   daemon, whose stage (the hasher) runs on the copy pool.
//! - The orphan sweep lists the prefix and leaves alone anything that is not a data
//!   id, and anything younger than a grace period.
//!
//! Each core talks to the upstream through its own HTTP client (`crate::upstream`),
//! made on first use on that thread (`per_core`); requests are signed with the
//! account's Shared Key (`crate::upstream_auth::azure`).

use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

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
use crate::upstream_auth::azure::AzureAccount;
use crate::upstream_auth::OutgoingRequest;

/// Where the azure backend keeps its bytes, as configured (`storage.azure.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureSettings {
    pub container: String,
    /// Prepended to every data id (`bleepstore/`, say); may be empty.
    pub prefix: String,
    /// The account's Blob endpoint, without a trailing slash:
    /// `https://{account}.blob.core.windows.net`, or an emulator's path-style
    /// `http://127.0.0.1:10000/devstoreaccount1`.
    pub account_url: String,
    /// The account name and its Shared Key.
    pub account: AzureAccount,
    /// Extra trusted CA certificates (PEM) for an upstream behind a private CA.
    pub ca_file: Option<std::path::PathBuf>,
    /// Upstream blobs younger than this are left alone by the orphan sweep.
    pub orphan_grace: Duration,
    /// The largest object written with one Put Blob (`AZURE_PUT_BLOB_BYTES_MAX`;
    /// tests lower it to reach the block path with small objects).
    pub put_blob_bytes_max: u64,
    /// The size of each block past that (`AZURE_BLOCK_BYTES`; tests lower it too).
    pub block_bytes: u64,
    /// The upstream client's timeouts and retries (`storage.upstream.*`).
    pub client: crate::upstream::ClientConfig,
}

impl AzureSettings {
    /// Settings with the service's own size limits.
    pub fn new(
        container: String,
        prefix: String,
        account_url: String,
        account: AzureAccount,
        ca_file: Option<std::path::PathBuf>,
        orphan_grace: Duration,
    ) -> AzureSettings {
        AzureSettings {
            container,
            prefix,
            account_url: account_url.trim_end_matches('/').to_string(),
            account,
            ca_file,
            orphan_grace,
            put_blob_bytes_max: limits::AZURE_PUT_BLOB_BYTES_MAX,
            block_bytes: limits::AZURE_BLOCK_BYTES,
            client: Default::default(),
        }
    }

    /// What a metadata database records of this backend: the account, container and
    /// prefix behind its rows, so that it never starts against another.
    pub fn identity(&self) -> String {
        format!(
            "azure {}/{}/{}",
            self.account_url.trim_end_matches('/'),
            self.container,
            self.prefix
        )
    }
}

/// Object bytes in an Azure Blob container. Cloning is cheap; clones may live on
/// any core.
#[derive(Clone, Debug)]
pub struct AzureStorage {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: AzureSettings,
    /// The account's endpoint (with the account in the base path on an emulator).
    endpoint: Endpoint,
    /// The path of the container under the endpoint: `/container`.
    container_path: String,
    /// The prefix, percent-encoded for request paths.
    prefix_path: String,
    tls: TlsConfig,
    seed: IdSeed,
    pins: Pins,
    pool: Pool,
    clients: PerCore<Client>,
}

/// A non-success answer: 404 is NotFound; the rest name the status and Azure's
/// error code (from the body, or the `x-ms-error-code` header of a bodiless answer).
async fn answer_error(what: &str, mut response: Response) -> io::Error {
    let status = response.status();
    let header_code = response.header("x-ms-error-code").map(str::to_string);
    let body = response
        .read_to_end(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
        .await
        .unwrap_or_default();
    let detail = match (upstream_xml::error_code(&body), header_code) {
        (Some((code, message)), _) => format!(" {code}: {}", message.lines().next().unwrap_or("")),
        (None, Some(code)) => format!(" {code}"),
        (None, None) => String::new(),
    };
    let message = format!("upstream {what} answered {status}{detail}");
    if status == 404 {
        io::Error::new(io::ErrorKind::NotFound, message)
    } else {
        io::Error::other(message)
    }
}

/// The id of block `index`: base64 of a fixed number of digits, so that every id of
/// a blob has the same length, as the service requires.
fn block_id(index: u64) -> String {
    crate::checksum::base64_encode(format!("{index:06}").as_bytes())
}

impl AzureStorage {
    /// The backend on `settings`; nothing is sent until the first request (startup
    /// checks the container with `health`).
    pub fn open(settings: AzureSettings) -> Result<AzureStorage, String> {
        let url = &settings.account_url;
        let endpoint =
            Endpoint::parse(url).map_err(|e| format!("storage.azure.account_url {url:?}: {e}"))?;
        if settings.block_bytes == 0 || settings.put_blob_bytes_max == 0 {
            return Err("the azure backend's block and Put Blob sizes must not be 0".into());
        }
        let tls = TlsConfig::new(settings.ca_file.as_deref())?;
        Ok(AzureStorage {
            inner: Arc::new(Inner {
                container_path: format!("/{}", uri_encoded(&settings.container, true)),
                prefix_path: uri_encoded(&settings.prefix, false),
                settings,
                endpoint,
                tls,
                seed: IdSeed::from_urandom().map_err(|e| format!("cannot seed data ids: {e}"))?,
                pins: Pins::default(),
                pool: Pool::start(limits::COPY_THREADS, limits::COPY_QUEUE_MAX)
                    .map_err(|e| format!("cannot start the copy pool: {e}"))?,
                clients: PerCore::new(),
            }),
        })
    }

    pub fn settings(&self) -> &AzureSettings {
        &self.inner.settings
    }

    fn client(&self) -> Rc<Client> {
        self.inner
            .clients
            .get(|| Client::new(self.inner.settings.client.clone(), self.inner.tls.clone()))
    }

    /// Drops this thread's client and its pooled connections: call at the end of a
    /// short-lived runtime that used the backend (startup's), inside it, since a
    /// connection belongs to the runtime that opened it.
    pub fn leave_runtime(&self) {
        self.inner.clients.leave();
    }

    /// The path of a blob under the endpoint's base path.
    fn blob_path(&self, data_id: &str) -> String {
        format!(
            "{}/{}{}",
            self.inner.container_path, self.inner.prefix_path, data_id
        )
    }

    /// A request for `path` (under the endpoint's base) and `query`, with a body of
    /// `length` bytes, signed with the account's Shared Key.
    fn request(
        &self,
        method: &str,
        path: &str,
        query: &str,
        mut headers: Vec<(String, String)>,
        length: u64,
    ) -> io::Result<Request> {
        let full_path = self.inner.endpoint.target(path);
        headers.push(("content-length".to_string(), length.to_string()));
        let signed = self
            .inner
            .settings
            .account
            .sign_request(
                &OutgoingRequest {
                    method,
                    path: &full_path,
                    query,
                    headers: &headers,
                },
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
        let request = self
            .request(method, path, query, headers, body.len() as u64)?
            .with_body(body);
        self.client()
            .send(&self.inner.endpoint, request)
            .await
            .map_err(upstream_io)
    }

    /// Starts a request whose body of `length` bytes the caller streams.
    async fn start_upload(
        &self,
        path: &str,
        query: &str,
        headers: Vec<(String, String)>,
        length: u64,
    ) -> io::Result<crate::upstream::Upload> {
        let request = self.request("PUT", path, query, headers, length)?;
        self.client()
            .upload(&self.inner.endpoint, request, length)
            .await
            .map_err(upstream_io)
    }

    /// Starts the Put Block of block `index` of `data_id`, `length` bytes long.
    async fn start_block(
        &self,
        data_id: &str,
        index: u64,
        length: u64,
    ) -> io::Result<crate::upstream::Upload> {
        let query = format!("comp=block&blockid={}", uri_encoded(&block_id(index), true));
        self.start_upload(&self.blob_path(data_id), &query, Vec::new(), length)
            .await
    }

    pub fn new_data_id(&self) -> String {
        self.inner.seed.next_id()
    }

    pub fn issued(&self, data_id: &str) -> bool {
        self.inner.seed.issued(data_id)
    }

    /// Starts writing `data_id`, of `size` bytes: streamed upstream from here when it
    /// is large, held and sent whole at commit when it is small.
    pub async fn create(&self, data_id: &str, size: Option<u64>) -> io::Result<AzureUpload> {
        check_data_id(data_id)?;
        let size = announced_size(size, "azure")?;
        let settings = &self.inner.settings;
        let mode = if size <= limits::UPSTREAM_SMALL_PUT_BYTES_MAX.min(settings.put_blob_bytes_max)
        {
            Mode::Held(Vec::with_capacity(size as usize))
        } else if size <= settings.put_blob_bytes_max {
            let upload = self
                .start_upload(&self.blob_path(data_id), "", blob_headers(), size)
                .await?;
            Mode::Streamed(upload)
        } else {
            let first = size.min(settings.block_bytes);
            Mode::Own(Blocks {
                current: Some(self.start_block(data_id, 0, first).await?),
                index: 0,
            })
        };
        Ok(GatewayUpload::new(self.clone(), data_id, size, mode))
    }

    /// An object for reading bytes `offset..offset + length` (the whole object when
    /// `range` is `None`): pinned now, fetched by the first read.
    pub fn open_object(&self, data_id: &str, range: Option<(u64, u64)>) -> io::Result<AzureObject> {
        RangedObject::open(self.clone(), &self.inner.pins, data_id, range, None)
    }

    /// The size of a blob, by Get Blob Properties; NotFound when there is none.
    pub async fn size_of(&self, data_id: &str) -> io::Result<u64> {
        check_data_id(data_id)?;
        let response = self.properties(data_id).await?;
        response
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other("upstream HEAD answered without a Content-Length"))
    }

    /// Get Blob Properties of `data_id`: the 200 answer, or its failure.
    async fn properties(&self, data_id: &str) -> io::Result<Response> {
        let response = self
            .send("HEAD", &self.blob_path(data_id), "", Vec::new(), Vec::new())
            .await?;
        if response.status() != 200 {
            return Err(answer_error("Get Blob Properties", response).await);
        }
        Ok(response)
    }

    /// A whole-object copy on the upstream (Copy Blob within the account, waited for
    /// until it has finished); returns the size.
    pub async fn copy(&self, source: &str, target: &str) -> io::Result<u64> {
        check_data_id(source)?;
        check_data_id(target)?;
        let size = self.size_of(source).await?;
        let source_url = format!(
            "{}{}",
            self.inner.settings.account_url.trim_end_matches('/'),
            self.blob_path(source)
        );
        let headers = vec![("x-ms-copy-source".to_string(), source_url)];
        let response = self
            .send("PUT", &self.blob_path(target), "", headers, Vec::new())
            .await?;
        if response.status() != 202 && response.status() != 201 {
            return Err(answer_error("Copy Blob", response).await);
        }
        let mut status = response
            .header("x-ms-copy-status")
            .unwrap_or("success")
            .to_ascii_lowercase();
        response
            .discard(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
            .await;
        let started = std::time::Instant::now();
        let wait = Duration::from_millis(limits::AZURE_COPY_WAIT_MILLIS_MAX);
        while status == "pending" {
            if started.elapsed() >= wait {
                self.delete(target).await.ok();
                return Err(io::Error::other(format!(
                    "upstream Copy Blob of {source} was still pending after {} s",
                    wait.as_secs()
                )));
            }
            monoio::time::sleep(Duration::from_millis(limits::AZURE_COPY_POLL_MILLIS)).await;
            let response = self.properties(target).await?;
            status = response
                .header("x-ms-copy-status")
                .unwrap_or("success")
                .to_ascii_lowercase();
            response.discard(0).await;
        }
        if status != "success" {
            self.delete(target).await.ok();
            return Err(io::Error::other(format!(
                "upstream Copy Blob of {source} ended {status}"
            )));
        }
        Ok(size)
    }

    /// The pool copies and scans run their stage on (`streamed`).
    pub(super) fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// Deletes a blob upstream; deleting one already gone succeeds. While readers
    /// stream it, the deletion is the last one's to do.
    pub async fn remove(&self, data_id: &str) -> io::Result<()> {
        check_data_id(data_id)?;
        let delete = |id: String| async move { self.delete(&id).await };
        self.inner.pins.remove(data_id, "blob", delete).await
    }

    /// The data ids under the prefix older than the sweep's grace period (a write of
    /// this daemon, or of one a moment ago on the same prefix, may be younger). Names
    /// under the prefix that are not data ids are never listed: they are not ours to
    /// remove. Uncommitted blocks are no blob, and not listed.
    pub async fn list_ids(&self) -> io::Result<Vec<String>> {
        let now = clock::now_unix();
        let grace = self.inner.settings.orphan_grace.as_secs() as i64;
        let prefix = &self.inner.settings.prefix;
        let mut ids = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut query = format!(
                "restype=container&comp=list&prefix={}",
                uri_encoded(prefix, true)
            );
            if let Some(marker) = &marker {
                query.push_str("&marker=");
                query.push_str(&uri_encoded(marker, true));
            }
            let mut response = self
                .send(
                    "GET",
                    &self.inner.container_path,
                    &query,
                    Vec::new(),
                    Vec::new(),
                )
                .await?;
            if response.status() != 200 {
                return Err(answer_error("List Blobs", response).await);
            }
            let body = response
                .read_to_end(limits::UPSTREAM_LIST_BODY_BYTES_MAX)
                .await
                .map_err(upstream_io)?;
            let (records, tops) = upstream_xml::records(
                &body,
                "Blob",
                &["Name", "Properties/Last-Modified"],
                &["NextMarker"],
            )
            .map_err(|e| io::Error::other(format!("upstream listing: {e}")))?;
            for record in records {
                let mut fields = record.into_iter();
                let (Some(Some(name)), modified) = (fields.next(), fields.next().flatten()) else {
                    continue;
                };
                let Some(id) = name.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                let old_enough = modified
                    .as_deref()
                    .and_then(clock::parse_http_date)
                    .is_some_and(|at| now - at >= grace);
                if is_valid_data_id(id) && old_enough {
                    ids.push(id.to_string());
                }
            }
            match tops.into_iter().next().flatten() {
                Some(next) if !next.is_empty() => marker = Some(next),
                _ => break,
            }
        }
        Ok(ids)
    }

    /// Whether the container answers (Get Container Properties).
    pub async fn health(&self) -> io::Result<()> {
        let response = self
            .send(
                "HEAD",
                &self.inner.container_path,
                "restype=container",
                Vec::new(),
                Vec::new(),
            )
            .await?;
        if response.status() == 200 {
            return Ok(());
        }
        let status = response.status();
        let code = response
            .header("x-ms-error-code")
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        response.discard(0).await;
        let settings = &self.inner.settings;
        Err(io::Error::other(match status {
            404 => format!(
                "container {:?} does not exist at {}{code}",
                settings.container, settings.account_url
            ),
            403 => format!(
                "access to container {:?} at {} is denied (check the account name and key){code}",
                settings.container, settings.account_url
            ),
            other => format!(
                "container {:?} at {} answered Get Container Properties with {other}{code}",
                settings.container, settings.account_url
            ),
        }))
    }
}

/// The headers of a Put Blob of a block blob.
fn blob_headers() -> Vec<(String, String)> {
    vec![
        ("x-ms-blob-type".to_string(), "BlockBlob".to_string()),
        (
            "content-type".to_string(),
            "application/octet-stream".to_string(),
        ),
    ]
}

/// A write past Put Blob's limit: the Put Block of block `index` is under way (its
/// predecessors are staged), and Put Block List commits them all. `current` is `None`
/// once a block failed.
pub struct Blocks {
    current: Option<crate::upstream::Upload>,
    index: u64,
}

/// An object being written upstream (see `gateway_upload`).
pub type AzureUpload = GatewayUpload<AzureStorage>;

impl UploadTarget for AzureStorage {
    type Own = Blocks;

    const NOUN: &'static str = "blob";

    async fn put_held(&self, data_id: &str, body: Vec<u8>) -> io::Result<()> {
        let md5 = crate::checksum::base64_encode(&Md5::digest(&body));
        let mut headers = blob_headers();
        headers.push(("content-md5".to_string(), md5));
        let path = self.blob_path(data_id);
        let response = self.send("PUT", &path, "", headers, body).await?;
        self.check_stored(response).await
    }

    async fn check_stored(&self, response: Response) -> io::Result<()> {
        self.expect_created("Put Blob", response).await
    }

    async fn delete(&self, data_id: &str) -> io::Result<()> {
        let response = self
            .send(
                "DELETE",
                &self.blob_path(data_id),
                "",
                Vec::new(),
                Vec::new(),
            )
            .await?;
        expect_status(self, "Delete Blob", response, &[200, 202, 204, 404]).await
    }

    /// Writes `buf` through the blocks: what fits the current block goes to its Put
    /// Block; when a block is full and bytes remain, its answer is checked and the
    /// next block started.
    async fn write_own(
        &self,
        data_id: &str,
        blocks: &mut Blocks,
        written: &mut u64,
        size: u64,
        buf: Vec<u8>,
    ) -> (io::Result<()>, Vec<u8>) {
        let mut buf = buf;
        let mut start = 0;
        // A buffer for the part of `buf` that falls in one block, when it straddles two.
        let mut piece = Vec::new();
        while start < buf.len() {
            if let Err(error) = self
                .next_block_if_full(data_id, blocks, *written, size)
                .await
            {
                return (Err(error), buf);
            }
            let Some(current) = blocks.current.as_mut() else {
                return (Err(io::Error::other("upload already ended")), buf);
            };
            let fits = (current.remaining() as usize).min(buf.len() - start);
            if start == 0 && fits == buf.len() {
                let (result, mut returned) = current.write(buf).await;
                returned.clear();
                if result.is_ok() {
                    *written += fits as u64;
                }
                return (result.map_err(upstream_io), returned);
            }
            piece.clear();
            piece.extend_from_slice(&buf[start..start + fits]);
            let (result, returned) = current.write(piece).await;
            piece = returned;
            if let Err(error) = result {
                return (Err(upstream_io(error)), buf);
            }
            *written += fits as u64;
            start += fits;
        }
        buf.clear();
        (Ok(()), buf)
    }

    async fn commit_own(&self, data_id: &str, blocks: Blocks, _: u64) -> io::Result<()> {
        let Blocks { current, index } = blocks;
        let current = current.ok_or_else(|| io::Error::other("upload already ended"))?;
        let response = current.finish().await.map_err(upstream_io)?;
        self.expect_created("Put Block", response).await?;
        let mut list = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for i in 0..=index {
            list.push_str("<Latest>");
            list.push_str(&block_id(i));
            list.push_str("</Latest>");
        }
        list.push_str("</BlockList>");
        let body = list.into_bytes();
        let md5 = crate::checksum::base64_encode(&Md5::digest(&body));
        let headers = vec![
            ("content-md5".to_string(), md5),
            (
                "x-ms-blob-content-type".to_string(),
                "application/octet-stream".to_string(),
            ),
        ];
        let response = self
            .send(
                "PUT",
                &self.blob_path(data_id),
                "comp=blocklist",
                headers,
                body,
            )
            .await?;
        self.expect_created("Put Block List", response).await
    }

    /// Staged blocks that no Put Block List committed are no blob; the service
    /// discards them on its own.
    async fn abort_own(&self, _: &str, _: Blocks) {}
}

impl AzureStorage {
    /// Checks a write's answer (201 Created) and drains it.
    async fn expect_created(&self, what: &str, response: Response) -> io::Result<()> {
        expect_status(self, what, response, &[201]).await
    }

    /// When the current block has all its bytes and more follow, checks its Put
    /// Block's answer and starts the next block's.
    async fn next_block_if_full(
        &self,
        data_id: &str,
        blocks: &mut Blocks,
        written: u64,
        size: u64,
    ) -> io::Result<()> {
        let full = matches!(&blocks.current, Some(current) if current.remaining() == 0);
        if !full || written >= size {
            return Ok(());
        }
        let Some(current) = blocks.current.take() else {
            return Err(io::Error::other("upload already ended"));
        };
        let response = current.finish().await.map_err(upstream_io)?;
        self.expect_created("Put Block", response).await?;
        let length = (size - written).min(self.settings().block_bytes);
        blocks.current = Some(self.start_block(data_id, blocks.index + 1, length).await?);
        blocks.index += 1;
        Ok(())
    }
}

/// A blob upstream, open for reading (see `ranged`).
pub type AzureObject = RangedObject<AzureStorage>;

impl RangedSource for AzureStorage {
    async fn get_range(
        &self,
        data_id: &str,
        offset: u64,
        end: Option<u64>,
    ) -> io::Result<Response> {
        let headers = vec![("x-ms-range".to_string(), range_header(offset, end))];
        self.send("GET", &self.blob_path(data_id), "", headers, Vec::new())
            .await
    }

    fn get_name(&self) -> &'static str {
        "Get Blob"
    }

    async fn answer_error(&self, what: &str, response: Response) -> io::Error {
        answer_error(what, response).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_all_have_one_length() {
        let first = block_id(0);
        assert_eq!(first, "MDAwMDAw");
        for index in [1, 9, 10, 999, 49_999, 999_999] {
            assert_eq!(block_id(index).len(), first.len(), "block {index}");
        }
        assert_ne!(block_id(1), block_id(10));
    }

    #[test]
    fn identity_and_limits() {
        let settings = AzureSettings::new(
            "c".to_string(),
            "p/".to_string(),
            "http://127.0.0.1:10000/devstoreaccount1/".to_string(),
            AzureAccount::development(),
            None,
            Duration::ZERO,
        );
        assert_eq!(
            settings.identity(),
            "azure http://127.0.0.1:10000/devstoreaccount1/c/p/"
        );
        // The largest object fits the blocks a blob may have.
        assert!(limits::OBJECT_BYTES_DEFAULT_MAX.div_ceil(settings.block_bytes) <= 50_000);
        let storage = AzureStorage::open(settings).unwrap();
        assert_eq!(
            storage.blob_path("0123456789abcdef0123456789abcdef"),
            "/c/p/0123456789abcdef0123456789abcdef"
        );
    }
}
