//! Every limit of the daemon in one place, named noun first with `_MAX` last,
//! with their relations checked at compile time.

/// Bytes of one request head (request line plus headers). Larger answers 431.
pub const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Header lines in one request head; more answers 431.
pub const HEADERS_COUNT_MAX: usize = 100;
/// Bytes of the request target (path plus query); longer answers 414.
pub const URI_BYTES_MAX: usize = 16 * 1024;
/// Bytes of an object key, as S3 defines it.
pub const KEY_BYTES_MAX: usize = 1024;
/// Bytes of all `x-amz-meta-*` names and values of one object.
pub const USER_METADATA_BYTES_MAX: usize = 2 * 1024;
/// Keys one list request may return.
pub const LIST_KEYS_MAX: usize = 1000;
/// Bytes of an XML request body the daemon reads into memory (bucket configuration).
pub const XML_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Bytes of one chunk-size line of a chunked or aws-chunked body, extensions included.
pub const CHUNK_LINE_BYTES_MAX: usize = 4 * 1024;
/// Bytes of the trailer section of a chunked or aws-chunked body.
pub const TRAILER_BYTES_MAX: usize = 16 * 1024;
/// Bytes of a request body the daemon reads and throws away to keep a keep-alive
/// connection usable after answering an error early; past it the connection closes.
pub const DRAIN_BYTES_MAX: u64 = 4 * 1024 * 1024;
/// How long a connection we close keeps reading (and discarding) what the client
/// still sends, so that our last answer is not destroyed by a TCP reset.
pub const LINGER_MILLIS: u64 = 1000;

/// Size of the per-connection read buffer.
pub const READ_BUFFER_BYTES: usize = 256 * 1024;
/// Size of the buffer a GET streams file data through.
pub const SEND_BUFFER_BYTES: usize = 512 * 1024;

/// Seconds a keep-alive connection may wait for the next request head.
pub const IDLE_TIMEOUT_SECS: u64 = 60;
/// Seconds a body may go without delivering a byte before `RequestTimeout`.
pub const BODY_STALL_TIMEOUT_SECS: u64 = 30;
/// Seconds of clock skew tolerated between client and server for SigV4.
pub const CLOCK_SKEW_SECS_MAX: i64 = 15 * 60;
/// Seconds a presigned URL may live (`X-Amz-Expires`).
pub const PRESIGNED_EXPIRES_SECS_MAX: i64 = 604_800;

/// Metadata requests queued for the metadata thread before senders wait.
pub const META_QUEUE_DEPTH_MAX: usize = 4096;
/// Reader threads serving metadata reads, each on its own read-only connection.
pub const META_READERS: usize = 2;
/// Metadata write requests committed in one transaction at most.
pub const META_BATCH_MAX: usize = 1024;
/// Entries in each per-core signing-key cache and credential cache.
pub const AUTH_CACHE_ENTRIES_MAX: usize = 1024;
/// Seconds a cached credential lookup stays valid.
pub const CREDENTIAL_CACHE_TTL_SECS: u64 = 60;

/// Threads of the storage copy pool (server-side copies, hashing scans, walks).
pub const COPY_THREADS: usize = 4;
/// Copy jobs queued before the next one waits for room.
pub const COPY_QUEUE_MAX: usize = 64;

/// Milliseconds between the reclaimer's looks at the read leases while a released
/// file waits for a read begun before its release to open its files.
pub const RECLAIM_POLL_MILLIS: u64 = 10;

/// Default largest object accepted by a single PUT (5 GiB, as S3).
pub const OBJECT_BYTES_DEFAULT_MAX: u64 = 5 * 1024 * 1024 * 1024;

const _: () = assert!(URI_BYTES_MAX < HEAD_BYTES_MAX);
const _: () = assert!(HEAD_BYTES_MAX < READ_BUFFER_BYTES);
const _: () = assert!(CHUNK_LINE_BYTES_MAX < READ_BUFFER_BYTES);
const _: () = assert!(TRAILER_BYTES_MAX < READ_BUFFER_BYTES);
const _: () = assert!(META_BATCH_MAX <= META_QUEUE_DEPTH_MAX);

/// Default seconds after which an abandoned multipart upload is reaped (as S3
/// lifecycle rules commonly do, 7 days); `--multipart-ttl` changes it.
pub const MULTIPART_TTL_DEFAULT_SECS: u64 = 7 * 24 * 3600;
/// Longest wait between two sweeps for abandoned multipart uploads while serving;
/// a short TTL sweeps more often (a quarter of the TTL, at least every second).
pub const MULTIPART_REAP_INTERVAL_MAX_SECS: u64 = 3600;

/// How long a SIGTERM or SIGINT waits for in-flight requests before the process exits.
pub const SHUTDOWN_TIMEOUT_DEFAULT_SECS: u64 = 30;

/// Connections served at once across all threads, unless configured. Each costs a
/// descriptor, so the systemd unit raises LimitNOFILE well above this.
pub const CONNECTIONS_DEFAULT_MAX: usize = 10_000;
