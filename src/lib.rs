//! BleepStore: an S3-compatible object storage daemon.
//!
//! The layer map, from the socket inwards:
//! - [`server`]: one-time setup, one monoio runtime and SO_REUSEPORT listener per core.
//! - [`http`]: connection loop, request heads, body readers, response writer. Knows no S3.
//! - [`s3`]: the request pipeline and its stages, one handler per operation, XML.
//! - [`error`]: the one error type of the request path, and its conversions.
//! - [`reclaim`]: read leases, and the removal of released data once no read needs it.
//! - [`auth`]: SigV4 as pure functions plus the per-core caches.
//! - [`meta`]: the single SQLite thread (group commit) and its typed message protocol.
//! - [`storage`]: object bytes on local disk, written durably and streamed back.
//! - [`upstream`]: the HTTP/1.1 client (keep-alive pool, TLS, retries) through which
//!   the gateway backends will reach an upstream S3, GCS or Azure server.
//! - [`upstream_auth`]: signing and credentials for the upstream stores a gateway
//!   backend calls (SigV4 for S3, Shared Key for Azure Blob, OAuth2 for GCS).
//! - [`ops`]: logging and other operational surfaces.
//! - [`limits`]: every bound in one file; [`config`]: the settings the daemon runs with.
//! - `fault` (only with the `fault-injection` feature): injected failures and crashes
//!   at every storage and metadata step, for the fault simulation.
//!
//! A request passes its stages in one order. The http layer reads and parses the
//! head, then hands it to the service (`s3::service`), which resolves bucket and key,
//! authenticates (`s3::authenticate`: the signature is settled before anything else
//! is interpreted), routes through the one routing table (`s3::route::ROUTES`),
//! parses the operation's inputs (`s3::operation`), authorizes (`s3::authorize`,
//! which reads the rows the decision rests on and hands them on) and runs the
//! handler, which returns a response. The http layer writes it and owns the
//! connection: keep-alive, `100 Continue`, draining, lingering, the access log and
//! metrics of the exchange. Nothing acts before authorization; the body is read only
//! by the handler, held to the hash or chunk signatures the verified head declared.
//! Replaced and deleted data is released through the metadata thread and removed by
//! the reclaimer (`reclaim`) only once no read that could still see it is pending.
//!
//! Failure is crash-only. Nothing is acknowledged before it is durable, and startup is
//! the recovery (interrupted temp files, released data in the reclaim table, orphans,
//! expired uploads), so the release build aborts on any panic (`panic = "abort"`):
//! a panicking core or metadata thread takes the whole process down at once, for
//! systemd to restart, instead of leaving a silent dead core behind a healthy
//! `/readyz`.

pub mod allocator;
pub mod auth;
pub mod checksum;
pub mod clock;
pub mod config;
pub(crate) mod core_state;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
// The plan's arithmetic is unit-tested in every test build; the fault points that use
// it exist only with the feature.
#[cfg(any(test, feature = "fault-injection"))]
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
pub(crate) mod fault;
pub(crate) mod hash_pool;
pub(crate) mod http;
pub(crate) mod limits;
pub mod meta;
pub(crate) mod ops;
pub(crate) mod reclaim;
pub(crate) mod s3;
pub mod server;
pub mod storage;
pub mod upstream;
pub mod upstream_auth;

pub use ops::logging::init as init_logging;
pub use s3::route::routes_json;
