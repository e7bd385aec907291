//! Every limit of the daemon in one place, named noun first with `_MAX` last,
//! with their relations checked at compile time.

/// Bytes of one request head (request line plus headers). Larger answers 431. An
/// upstream server's response head is held to the same bound (past it, a protocol error).
pub(crate) const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Header lines in one request head; more answers 431. Also the most header lines of
/// an upstream response head.
pub(crate) const HEADERS_COUNT_MAX: usize = 100;
/// Bytes of the request target (path plus query); longer answers 414.
pub(crate) const URI_BYTES_MAX: usize = 16 * 1024;
/// Bytes of an object key, as S3 defines it.
pub(crate) const KEY_BYTES_MAX: usize = 1024;
/// Bytes of all `x-amz-meta-*` names and values of one object.
pub(crate) const USER_METADATA_BYTES_MAX: usize = 2 * 1024;
/// Keys one list request may return.
pub(crate) const LIST_KEYS_MAX: usize = 1000;
/// Bytes of an XML request body the daemon reads into memory (bucket configuration).
pub(crate) const XML_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Bytes of one chunk-size line of a chunked or aws-chunked body, extensions included.
pub(crate) const CHUNK_LINE_BYTES_MAX: usize = 4 * 1024;
/// Bytes of the trailer section of a chunked or aws-chunked body.
pub(crate) const TRAILER_BYTES_MAX: usize = 16 * 1024;
/// Bytes of a request body the daemon reads and throws away to keep a keep-alive
/// connection usable after answering an error early; past it the connection closes.
pub(crate) const DRAIN_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// How long a connection we close keeps reading (and discarding) what the client
/// still sends, so that our last answer is not destroyed by a TCP reset.
pub(crate) const LINGER_MILLIS: u64 = 1000;

/// Size of the per-connection read buffer.
pub(crate) const READ_BUFFER_BYTES: usize = 256 * 1024;
/// How long a keep-alive connection keeps its read buffer while waiting for the next
/// head; past it the buffer is freed and the wait goes on with `IDLE_PROBE_BYTES`, so
/// an idle connection costs almost no memory.
pub(crate) const IDLE_BUFFER_HOLD_MILLIS: u64 = 200;
/// The read an idle connection waits on: room for the first bytes of the next head.
pub(crate) const IDLE_PROBE_BYTES: usize = 64;
/// Milliseconds between the sweeps of a core's idle connections (`http::idle`), which
/// end their holds and their idle waits: a hold lasts up to this much longer than
/// `IDLE_BUFFER_HOLD_MILLIS`, an idle wait than `IDLE_TIMEOUT_SECS`.
pub(crate) const IDLE_SWEEP_MILLIS: u64 = 50;
/// Size of the buffer a GET streams file data through.
pub(crate) const SEND_BUFFER_BYTES: usize = 512 * 1024;
/// Bodies of at least this many bytes read from files go to plain-TCP sockets with
/// sendfile(2) (`http::send_file`) instead of passing through a send buffer.
pub(crate) const SEND_FILE_MIN_BYTES: u64 = 1024 * 1024;
/// The most one sendfile call is asked to move: a call reads the pages not yet read
/// ahead on the runtime thread, so its length bounds that thread's stall.
pub(crate) const SEND_FILE_CALL_BYTES: u64 = 1024 * 1024;
/// Spare read buffers one core keeps for its next requests (`http::buffer_pool`);
/// more given back are freed. A keep-alive connection keeps its own buffer while
/// it is busy, so spares pass between connections that come and go.
pub(crate) const READ_BUFFERS_SPARE_MAX: usize = 16;
/// Spare send buffers one core keeps for its next large responses.
pub(crate) const SEND_BUFFERS_SPARE_MAX: usize = 4;
/// Milliseconds between trims of a core's spare buffers: each frees the spares that
/// no request needed since the one before, so a core gone quiet holds none.
pub(crate) const BUFFER_POOL_TRIM_MILLIS: u64 = 1000;

/// Seconds a keep-alive connection may wait for the next request head.
pub(crate) const IDLE_TIMEOUT_SECS: u64 = 60;
/// Seconds a request head may take from its first byte to its last: a head trickled
/// byte by byte (slow-loris) is cut after this, whatever the pace.
pub(crate) const HEAD_DEADLINE_SECS: u64 = 10;
/// A request body must deliver at least `BODY_RATE_MIN_BYTES_PER_SEC` over every window
/// of this many seconds (a stall is a window with nothing), else `RequestTimeout`.
pub(crate) const BODY_RATE_WINDOW_SECS: u64 = 20;
/// The slowest body accepted, averaged over a window (1 KiB/s).
pub(crate) const BODY_RATE_MIN_BYTES_PER_SEC: u64 = 1024;
/// A response must be read at least `SEND_RATE_MIN_BYTES_PER_SEC` over every window of
/// this many seconds while it is written (a client that stops reading, or trickle-reads,
/// is cut off).
pub(crate) const SEND_RATE_WINDOW_SECS: u64 = 20;
/// The slowest reader of a response kept (1 KiB/s).
pub(crate) const SEND_RATE_MIN_BYTES_PER_SEC: u64 = 1024;
/// Seconds of clock skew tolerated between client and server for SigV4.
pub(crate) const CLOCK_SKEW_SECS_MAX: i64 = 15 * 60;
/// Seconds a presigned URL may live (`X-Amz-Expires`).
pub(crate) const PRESIGNED_EXPIRES_SECS_MAX: i64 = 604_800;

/// Metadata requests queued for the metadata thread before senders wait.
pub(crate) const META_QUEUE_DEPTH_MAX: usize = 4096;
/// Reader threads serving metadata reads, each on its own read-only connection.
pub(crate) const META_READERS: usize = 2;
/// Reader threads serving reads of object bytes kept in the database (the sqlite
/// backend), apart from the metadata readers so a large GET never delays a listing.
pub(crate) const BLOB_READERS: usize = 2;
/// The sqlite backend's chunk rows: every chunk of an object but the last holds this
/// many bytes, so a read finds its chunk by division. One upload's bytes in flight to
/// the writer are at most two chunks.
pub(crate) const BLOB_CHUNK_BYTES: usize = 1024 * 1024;
/// Objects of the sqlite backend at most this large come back with their open, so a
/// small GET costs one trip to a blob reader.
pub(crate) const BLOB_INLINE_BYTES_MAX: u64 = 256 * 1024;
/// WAL pages after which a commit of the sqlite backend checkpoints (SQLite's default
/// is 1000, 4 MiB): object bytes fill the WAL fast, and each checkpoint syncs the
/// database file inside the writer's commit.
pub(crate) const BLOB_WAL_CHECKPOINT_PAGES: i64 = 16384;
/// Metadata write requests committed in one transaction at most.
pub(crate) const META_BATCH_MAX: usize = 1024;
/// Entries in each per-core signing-key cache and credential cache.
pub(crate) const AUTH_CACHE_ENTRIES_MAX: usize = 1024;
/// Seconds a cached credential lookup stays valid.
pub(crate) const CREDENTIAL_CACHE_TTL_SECS: u64 = 60;
/// Signing keys one upstream SigV4 signer keeps: one per (date, region) it signs for,
/// so a day boundary and a few regions fit; past it the cache starts over.
pub(crate) const UPSTREAM_SIGNING_KEYS_MAX: usize = 8;
/// Seconds before an OAuth2 access token expires at which a refresh is due, so no
/// request goes out with a token that lapses on its way.
pub(crate) const UPSTREAM_TOKEN_REFRESH_MARGIN_SECS: i64 = 300;

/// Threads of the storage copy pool (server-side copies, hashing scans, walks).
pub(crate) const COPY_THREADS: usize = 4;
/// Copy jobs queued before the next one waits for room.
pub(crate) const COPY_QUEUE_MAX: usize = 64;

/// Milliseconds between the reclaimer's looks at the read leases while a released
/// file waits for a read begun before its release to open its files.
pub(crate) const RECLAIM_POLL_MILLIS: u64 = 10;

/// Keys one DeleteObjects request may name, as S3.
pub(crate) const DELETE_OBJECTS_KEYS_MAX: usize = 1000;
/// Largest part number of a multipart upload, as S3.
pub(crate) const PART_NUMBER_MAX: u32 = 10_000;
/// Largest single part, as S3 (5 GiB).
pub(crate) const PART_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest size of every part but the last, as S3 enforces at completion (5 MiB).
pub const PART_BYTES_MIN: u64 = 5 * 1024 * 1024;
/// Largest source one CopyObject may copy, as S3 (5 GiB).
pub(crate) const COPY_SOURCE_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;

/// Bytes moved per read from the socket and write to storage while a body uploads.
pub(crate) const UPLOAD_CHUNK_BYTES: usize = 1024 * 1024;
/// Uploads of at least this size (or of unknown size) are hashed on the hash threads
/// (`hash_pool`), a chunk behind the reads; smaller ones on the serving core, where a
/// thread hop would cost more than their hashing.
pub(crate) const HASH_OFF_CORE_BYTES_MIN: u64 = UPLOAD_CHUNK_BYTES as u64;
/// Bytes of a new data file written between kicks of its writeback
/// (`POSIX_FADV_DONTNEED` on what was written since the last), so the fsync that
/// publishes a large object finds little left to write.
pub(crate) const WRITEBACK_KICK_BYTES: u64 = 8 * 1024 * 1024;
/// An upload that declares at least this many bytes writes them around the page cache
/// (`O_DIRECT`, `storage::local`): its pages would be dropped after their writeback
/// anyway (see `WRITEBACK_KICK_BYTES`), and copying them in costs the kernel a third of
/// what the ETag's MD5 costs. Smaller objects stay in the page cache for the GETs that
/// follow.
pub(crate) const DIRECT_WRITE_MIN_BYTES: u64 = WRITEBACK_KICK_BYTES;
/// The alignment of direct writes (memory, offset and length): a page, which covers
/// devices of 512-byte and 4 KiB blocks.
pub(crate) const DIRECT_WRITE_ALIGN: usize = 4096;
/// Bytes per direct write.
pub(crate) const DIRECT_WRITE_STAGE_BYTES: usize = 256 * 1024;
/// Direct writes one upload keeps in flight; it holds one stage more than this.
pub(crate) const DIRECT_WRITES_IN_FLIGHT: usize = 3;
/// Blocks at least this large get an mmap of their own from glibc, given back whole
/// when freed (`allocator`): glibc's own starting value, kept fixed.
pub(crate) const MALLOC_MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;
/// Free memory at the top of a glibc heap beyond this is given back (`allocator`):
/// glibc's own starting value, kept fixed.
pub(crate) const MALLOC_TRIM_THRESHOLD_BYTES: i32 = 128 * 1024;
/// Bytes moved per read and write by the storage copies that pass through user space.
pub(crate) const COPY_BUFFER_BYTES: usize = 1024 * 1024;
/// Bytes read per call while a small body is gathered or an unread one drained.
pub(crate) const BODY_READ_CHUNK_BYTES: usize = 64 * 1024;
/// Responses up to this size go out with their head in one write.
pub(crate) const RESPONSE_SMALL_BYTES: u64 = 64 * 1024;
/// Room a response head is built in: S3's heads are a few hundred bytes (a GET's
/// carries about ten headers), so most never grow their buffer.
pub(crate) const RESPONSE_HEAD_BYTES: usize = 512;
/// Bytes a refused connection (over the cap) may still send before it is closed.
pub(crate) const REFUSED_LINGER_BYTES_MAX: usize = 64 * 1024;

/// Log lines queued for the writer thread before new ones are dropped (and counted).
pub(crate) const LOG_QUEUE_LINES_MAX: usize = 65_536;
/// Seconds a /metrics or /health answer waits for each core and the metadata thread.
pub(crate) const SCRAPE_WAIT_SECS: u64 = 2;
/// Seconds startup waits for a busy port to be released by a process just killed.
pub(crate) const PORT_WAIT_SECS_MAX: u64 = 3;

/// Default largest object accepted by a single PUT (5 GiB, as S3).
pub(crate) const OBJECT_BYTES_DEFAULT_MAX: u64 = 5 * 1024 * 1024 * 1024;

const _: () = assert!(URI_BYTES_MAX < HEAD_BYTES_MAX);
const _: () = assert!(HEAD_BYTES_MAX < READ_BUFFER_BYTES);
const _: () = assert!(CHUNK_LINE_BYTES_MAX < READ_BUFFER_BYTES);
const _: () = assert!(TRAILER_BYTES_MAX < READ_BUFFER_BYTES);
const _: () = assert!(META_BATCH_MAX <= META_QUEUE_DEPTH_MAX);
const _: () = assert!(IDLE_SWEEP_MILLIS < IDLE_BUFFER_HOLD_MILLIS);

/// Default seconds after which an abandoned multipart upload is reaped (as S3
/// lifecycle rules commonly do, 7 days); `--multipart-ttl` changes it.
pub(crate) const MULTIPART_TTL_DEFAULT_SECS: u64 = 7 * 24 * 3600;
/// Longest wait between two sweeps for abandoned multipart uploads while serving;
/// a short TTL sweeps more often (a quarter of the TTL, at least every second).
pub(crate) const MULTIPART_REAP_INTERVAL_MAX_SECS: u64 = 3600;

/// How long a SIGTERM or SIGINT waits for in-flight requests before the process exits.
pub(crate) const SHUTDOWN_TIMEOUT_DEFAULT_SECS: u64 = 30;

/// Connections served at once across all threads, unless configured. Each costs a
/// descriptor, so the systemd unit raises LimitNOFILE well above this.
pub(crate) const CONNECTIONS_DEFAULT_MAX: usize = 10_000;

/// Seconds a TLS handshake (and the close_notify at the end) may take.
pub(crate) const TLS_HANDSHAKE_SECS: u64 = 10;
/// Ciphertext read from a TLS socket at once: a few full records.
pub(crate) const TLS_RECORD_BUFFER_BYTES: usize = 64 * 1024;
/// Plaintext a TLS session encrypts ahead of the socket.
pub(crate) const TLS_SEND_BUFFER_BYTES: usize = 256 * 1024;

/// Bytes per chunk when a memory snapshot is loaded back.
pub(crate) const MEMORY_SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;
/// The memory backend's byte budget unless `storage.memory.max_size_bytes` sets one.
pub(crate) const MEMORY_BYTES_DEFAULT_MAX: u64 = 1 << 30;
/// Seconds between memory snapshots unless `snapshot_interval_seconds` sets it.
pub(crate) const MEMORY_SNAPSHOT_INTERVAL_DEFAULT_SECS: u64 = 300;

/// Milliseconds the upstream client may take to reach a server (name resolution, TCP
/// connect and TLS handshake together), unless its configuration says otherwise.
pub(crate) const UPSTREAM_CONNECT_TIMEOUT_DEFAULT_MILLIS: u64 = 10_000;
/// Milliseconds from the end of a request to the first byte of the upstream answer,
/// unless configured. Generous: a server may answer only once it has stored the body
/// (or composed the parts) it was sent.
pub(crate) const UPSTREAM_FIRST_BYTE_TIMEOUT_DEFAULT_MILLIS: u64 = 60_000;
/// Milliseconds one upstream read or write may make no progress before the exchange is
/// abandoned (a stall), unless configured.
pub(crate) const UPSTREAM_STALL_TIMEOUT_DEFAULT_MILLIS: u64 = 30_000;
/// Idle keep-alive connections each core keeps per upstream endpoint, unless configured;
/// one returned beyond this closes the one idle longest.
pub(crate) const UPSTREAM_IDLE_PER_ENDPOINT_DEFAULT_MAX: usize = 16;
/// Seconds an idle upstream connection stays in the pool, unless configured (or the
/// server advertises a shorter `Keep-Alive: timeout`).
pub(crate) const UPSTREAM_IDLE_TIMEOUT_DEFAULT_SECS: u64 = 30;
/// Milliseconds before a server's advertised `Keep-Alive: timeout` at which the pool
/// already drops the connection, so that a request is never sent as the server closes.
pub(crate) const UPSTREAM_KEEP_ALIVE_MARGIN_MILLIS: u64 = 1000;
/// Attempts at one retryable upstream request, the first one included, unless configured.
pub(crate) const UPSTREAM_ATTEMPTS_DEFAULT_MAX: u32 = 4;
/// Milliseconds of the first backoff between upstream attempts; each further one doubles.
pub(crate) const UPSTREAM_RETRY_BASE_DELAY_DEFAULT_MILLIS: u64 = 100;
/// Milliseconds of the longest wait between upstream attempts, also the cap on a
/// server's `Retry-After`, unless configured.
pub(crate) const UPSTREAM_RETRY_DELAY_MAX_DEFAULT_MILLIS: u64 = 5_000;
/// Bytes of the read buffer of one upstream connection (response heads, chunked bodies).
pub(crate) const UPSTREAM_READ_BUFFER_BYTES: usize = 64 * 1024;
/// Bytes of an error answer the client reads and discards before a retry, to keep its
/// connection; a longer one closes the connection instead.
pub(crate) const UPSTREAM_DRAIN_BYTES_MAX: usize = 64 * 1024;
/// SQLite's page cache of the writer's connection, of each metadata reader's and of
/// each blob reader's, in KiB. Pages of the small objects kept in the database pass
/// through the writer and the blob readers: with larger caches they made most of the
/// daemon's memory under load (a mixed load peaked at 70 MiB with 16/8/8 MiB). Blob
/// pages are read once, then a core keeps the object (`storage::byte_cache`); the OS
/// page cache still holds the whole file.
pub(crate) const META_WRITER_CACHE_KIB: i64 = 8 * 1024;
pub(crate) const META_READER_CACHE_KIB: i64 = 4 * 1024;
pub(crate) const BLOB_READER_CACHE_KIB: i64 = 1024;
/// Prepared statements each metadata connection keeps: more than the SQL it runs, so
/// no statement is parsed twice (rusqlite's default keeps 16).
pub(crate) const META_STATEMENT_CACHE: usize = 128;
/// Objects up to this size are kept by the local backend in the metadata database
/// (`Storage::new_data_id_for`): their bytes commit with their row.
pub(crate) const INLINE_OBJECT_BYTES_MAX: u64 = 32 * 1024;
/// Bucket and object rows one core keeps (`meta::row_cache`): at a few hundred bytes
/// each, a few MiB per core.
pub(crate) const ROW_CACHE_ENTRIES: usize = 8192;
/// Objects up to this size are kept in memory by the core that read them
/// (`storage::byte_cache`), up to this many bytes per core.
pub(crate) const BYTE_CACHE_OBJECT_BYTES_MAX: usize = 64 * 1024;
pub(crate) const BYTE_CACHE_BYTES: usize = 4 * 1024 * 1024;
/// The first bytes of a GET, read before its answer begins (so that a storage failure
/// is an error answer, not a body cut short).
pub(crate) const GET_PREFETCH_BYTES: usize = 64 * 1024;
/// Objects a gateway backend holds in memory and sends whole at commit, with their
/// MD5 and SHA-256 for the upstream to check, and retries when a send fails; larger
/// ones stream upstream as they arrive (flat memory, no retry once bytes are sent).
pub(crate) const UPSTREAM_SMALL_PUT_BYTES_MAX: u64 = 1024 * 1024;
/// The most of an upstream's error answer (or copy result) read, for its code.
pub(crate) const UPSTREAM_ERROR_BODY_BYTES_MAX: usize = 64 * 1024;
/// The most of one upstream listing page read (1000 keys are about 300 KB).
pub(crate) const UPSTREAM_LIST_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Upstream objects younger than this are left alone by the orphan sweep, whatever
/// else it finds: a write of this daemon may have published one a moment ago (the
/// default of `storage.{aws,azure,gcp}.orphan_grace_seconds`).
pub(crate) const UPSTREAM_SWEEP_GRACE_DEFAULT_SECS: u64 = 600;
/// The largest blob the azure backend writes with one Put Blob: the service's own
/// limit for versions 2019-12-12 and later (5000 MiB), which the signer's version is.
/// A larger object goes up as blocks (Put Block, then Put Block List).
pub(crate) const AZURE_PUT_BLOB_BYTES_MAX: u64 = 5000 * 1024 * 1024;
/// The size of each block of an object the azure backend writes as blocks: 5 GiB
/// takes 20 of them, far from the 50,000 a blob may have, and each is one streamed
/// Put Block well under the 4000 MiB a block may be.
pub(crate) const AZURE_BLOCK_BYTES: u64 = 256 * 1024 * 1024;
/// How long the azure backend waits for a server-side Copy Blob the service answered
/// `pending` to finish, before it gives up and removes the copy.
pub(crate) const AZURE_COPY_WAIT_MILLIS_MAX: u64 = 120_000;
/// How often the azure backend asks whether a pending Copy Blob has finished.
pub(crate) const AZURE_COPY_POLL_MILLIS: u64 = 250;
/// Google's Cloud Storage JSON API endpoint: the gcp backend's when
/// `storage.gcp.endpoint_url` is not given.
pub(crate) const GCS_DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";
/// Bytes of one chunk of a GCS resumable upload (the gcp backend's writes past
/// `UPSTREAM_SMALL_PUT_BYTES_MAX`): held in memory, sent as one PUT and retried where
/// safe. GCS wants a multiple of 256 KiB.
pub(crate) const GCS_UPLOAD_CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Calls of one GCS rewrite (a server-side copy) before the copy is given up: each
/// call copies a share of the object (GCS answers one a few seconds apart for large
/// objects across locations or storage classes) and hands back a token to continue.
pub(crate) const GCS_REWRITE_CALLS_MAX: u32 = 1000;

const _: () =
    assert!(UPSTREAM_RETRY_BASE_DELAY_DEFAULT_MILLIS <= UPSTREAM_RETRY_DELAY_MAX_DEFAULT_MILLIS);
const _: () =
    assert!(UPSTREAM_KEEP_ALIVE_MARGIN_MILLIS < UPSTREAM_IDLE_TIMEOUT_DEFAULT_SECS * 1000);
const _: () = assert!(UPSTREAM_ATTEMPTS_DEFAULT_MAX >= 1);
const _: () = assert!(GCS_UPLOAD_CHUNK_BYTES.is_multiple_of(256 * 1024));
const _: () = assert!(DIRECT_WRITE_STAGE_BYTES.is_multiple_of(DIRECT_WRITE_ALIGN));
const _: () = assert!(UPSTREAM_DRAIN_BYTES_MAX <= UPSTREAM_READ_BUFFER_BYTES);

/// The longest default retention an object lock configuration may give, in days and
/// in years (a century either way).
pub(crate) const LOCK_RETENTION_DAYS_MAX: u32 = 36_500;
pub(crate) const LOCK_RETENTION_YEARS_MAX: u32 = 100;

/// The most CORS rules a bucket may have (S3's limit).
pub(crate) const CORS_RULES_MAX: usize = 100;
