//! Per-core state: everything a connection task on one runtime shares with the
//! other tasks of that runtime, and nothing shared with other cores except the
//! metadata channel. Held in an `Rc`; interior mutability is `RefCell`/`Cell`
//! because a runtime is single-threaded.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth::SigningKeyCache;
use crate::clock;
use crate::config::Config;
use crate::error::S3Error;
use crate::limits;
use crate::meta::{CredentialRow, MetaClient, RowCache};
use crate::ops::lifecycle::Lifecycle;
use crate::ops::metrics::CoreMetrics;
use crate::reclaim::{CoreReads, ReadFence};
use crate::storage::{ByteCache, Storage};

pub(crate) struct CoreState {
    pub config: Arc<Config>,
    pub meta: MetaClient,
    pub storage: Storage,
    /// Readiness, drain and the per-core figures other threads read.
    pub lifecycle: Arc<Lifecycle>,
    /// This core's request metrics; a scrape merges every core's.
    pub metrics: RefCell<CoreMetrics>,
    /// This core's connections waiting idle for their next request (reaped first at the cap).
    pub idle: crate::http::IdleSet,
    /// This core's spare connection buffers, rented by its connections.
    pub buffers: Rc<crate::http::ConnectionBuffers>,
    /// The bucket and object rows this core read, served again while current.
    pub rows: RowCache,
    /// Small objects' bytes this core read, by data id.
    pub objects: ByteCache,
    /// This core's read leases, which hold released data files until reads have opened them.
    pub reads: CoreReads,
    /// SigV4 signing keys by (secret, date, region, service): one HMAC chain saved per request.
    pub signing_keys: RefCell<SigningKeyCache>,
    /// Credential lookups by access key, so an authenticated request does not
    /// cost a trip to the metadata thread.
    credentials: RefCell<HashMap<String, (Rc<CredentialRow>, Instant)>>,
    request_counter: Cell<u64>,
    core_id: usize,
    /// High bits of every request id of this core: the core number and a
    /// per-start nonce, so ids are unique across cores and restarts.
    request_id_base: u64,
    host_id: String,
    /// The `Date` header value, recomputed at most once a second.
    http_date: RefCell<(i64, String)>,
}

impl CoreState {
    pub(crate) fn new(
        config: Arc<Config>,
        meta: MetaClient,
        storage: Storage,
        lifecycle: Arc<Lifecycle>,
        fence: Arc<ReadFence>,
        core: usize,
        nonce: u64,
    ) -> CoreState {
        let request_id_base = (nonce << 8) ^ ((core as u64) << 56);
        let host_id = format!("bleepstore-{}-{core}", config.region);
        CoreState {
            config,
            meta,
            storage,
            lifecycle,
            metrics: RefCell::new(CoreMetrics::default()),
            idle: crate::http::IdleSet::default(),
            buffers: Rc::new(crate::http::ConnectionBuffers::default()),
            reads: CoreReads::new(fence, core),
            rows: RowCache::new(limits::ROW_CACHE_ENTRIES),
            objects: ByteCache::new(
                limits::BYTE_CACHE_OBJECT_BYTES_MAX,
                limits::BYTE_CACHE_BYTES,
            ),
            signing_keys: RefCell::new(SigningKeyCache::new(limits::AUTH_CACHE_ENTRIES_MAX)),
            credentials: RefCell::new(HashMap::new()),
            request_counter: Cell::new(0),
            core_id: core,
            request_id_base,
            host_id,
            http_date: RefCell::new((i64::MIN, String::new())),
        }
    }

    /// A new request id: 16 uppercase hex digits, as S3's.
    pub(crate) fn next_request_id(&self) -> String {
        let n = self.request_counter.get().wrapping_add(1);
        self.request_counter.set(n);
        let id = self.request_id_base.wrapping_add(n);
        (0..16)
            .rev()
            .map(|digit| char::from(b"0123456789ABCDEF"[(id >> (4 * digit)) as usize & 15]))
            .collect()
    }

    /// Which serving thread this state belongs to (0-based).
    pub(crate) fn core_id(&self) -> usize {
        self.core_id
    }

    pub(crate) fn host_id(&self) -> &str {
        &self.host_id
    }

    /// `f` of the current time as an HTTP date, which is formatted once a second.
    pub(crate) fn with_http_date<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        let now = clock::now_unix();
        let mut cached = self.http_date.borrow_mut();
        if cached.0 != now {
            *cached = (now, clock::format_http_date(now));
        }
        f(&cached.1)
    }

    /// The credential of `access_key`, from this core's cache (shared, not copied, by
    /// the requests that use it) or the metadata thread.
    pub(crate) async fn credential(
        &self,
        access_key: &str,
    ) -> Result<Option<Rc<CredentialRow>>, S3Error> {
        let ttl = Duration::from_secs(limits::CREDENTIAL_CACHE_TTL_SECS);
        if let Some((row, fetched)) = self.credentials.borrow().get(access_key) {
            if fetched.elapsed() < ttl {
                return Ok(Some(Rc::clone(row)));
            }
        }
        let row = self
            .meta
            .get_credential(access_key)
            .await
            .map_err(|e| crate::error::meta_error(e, "", None))?
            .map(Rc::new);
        if let Some(row) = &row {
            let mut cache = self.credentials.borrow_mut();
            if cache.len() >= limits::AUTH_CACHE_ENTRIES_MAX {
                cache.clear();
            }
            cache.insert(access_key.to_string(), (Rc::clone(row), Instant::now()));
        }
        Ok(row)
    }
}
