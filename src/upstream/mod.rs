//! The HTTP/1.1 client the gateway storage backends use to talk to their upstream
//! server (AWS S3 or an S3-compatible store, the Google Cloud Storage JSON API, Azure
//! Blob). It knows HTTP, not those APIs: the caller builds and signs each request.
//!
//! One `Client` per core (monoio futures are not `Send`), sharing one `TlsConfig`:
//! - [`Endpoint`] (`endpoint.rs`): a server's URL: scheme, host, port, base path.
//! - [`Request`] (`request.rs`): method, target, headers, in-memory body; the client
//!   adds `Host` and `Content-Length` (never a chunked request body).
//! - [`Client::send`] (`client.rs`): one exchange, retried where safe ([`RetryPolicy`],
//!   `retry.rs`: backoff with jitter, `Retry-After`); [`Client::upload`]
//!   (`upload.rs`): a body of known length streamed by the caller in owned buffers.
//! - [`Response`] (`response.rs`): status, lowercased headers, and the body read into
//!   the caller's buffers (Content-Length or chunked), or whole up to a limit.
//! - `connection.rs`: one plain or TLS connection (`tls.rs`, over the daemon's own
//!   rustls adapter in `crate::http`): connect, write, response heads, body framing.
//! - `pool.rs`: the core's idle keep-alive connections per origin, each dropped before
//!   the pool's idle limit or the server's advertised `Keep-Alive: timeout`; one its
//!   server closed while it was idle (a restart) is found by a peek and never used.
//! - [`UpstreamError`] (`error.rs`): typed failures naming the endpoint; an HTTP
//!   status is never one.
//!
//! Every wait is bounded with monoio timers and cancelable IO: the connect timeout,
//! the first byte of the answer after the request was sent, and a stall timeout on
//! every other read and write (`ClientConfig`, defaults in `limits.rs`).

mod client;
mod connection;
mod endpoint;
mod error;
mod pool;
mod request;
mod response;
mod retry;
mod tls;
mod upload;

#[cfg(test)]
mod tests;

pub use client::{Client, ClientConfig, Counters};
pub use endpoint::{Endpoint, Scheme};
pub use error::{Phase, UpstreamError};
pub use request::Request;
pub use response::Response;
pub use retry::{is_retryable_status, parse_retry_after, RetryPolicy};
pub use tls::TlsConfig;
pub use upload::Upload;
