//! BleepStore: an S3-compatible object storage daemon.
//!
//! The layer map, from the socket inwards:
//! - [`server`]: one-time setup, one monoio runtime and SO_REUSEPORT listener per core.
//! - [`http`]: connection loop, request heads, body readers, response writer. Knows no S3.
//! - [`s3`]: routing to an operation, one handler per operation, XML, the S3 error type.
//! - [`auth`]: SigV4 as pure functions plus the per-core caches.
//! - [`meta`]: the single SQLite thread (group commit) and its typed message protocol.
//! - [`storage`]: object bytes on local disk, written durably and streamed back.
//! - [`ops`]: logging and other operational surfaces.
//! - [`limits`]: every bound in one file; [`config`]: the settings the daemon runs with.
//!
//! A request passes its stages in one order (`s3::service`): read and parse the head
//! (`http`), resolve bucket and key, authenticate (`s3::authenticate`: the signature is
//! settled before anything else is interpreted), route to an operation through the one
//! routing table (`s3::route::ROUTES`), run its handler, answer. Nothing acts before
//! authentication; the body is read only by the handler, held to the hash or chunk
//! signatures the verified head declared.
//!
//! Failure is crash-only. Nothing is acknowledged before it is durable, and startup is
//! the recovery (interrupted temp files, released data in the reclaim table, orphans,
//! expired uploads), so the release build aborts on any panic (`panic = "abort"`):
//! a panicking core or metadata thread takes the whole process down at once, for
//! systemd to restart, instead of leaving a silent dead core behind a healthy
//! `/readyz`.

pub mod auth;
pub mod checksum;
pub mod clock;
pub mod config;
pub mod core_state;
pub mod http;
pub mod limits;
pub mod meta;
pub mod ops;
pub mod reclaim;
pub mod s3;
pub mod server;
pub mod storage;
