//! HTTP/1.1 for the daemon: the connection loop (`serve`), request heads parsed
//! with httparse into a fixed header array, request bodies (Content-Length,
//! chunked, and the aws-chunked content encoding inside them), and responses.
//! Knows nothing of S3: a `Service` answers each request; protocol failures are
//! `crate::error::S3Error`s the service renders like any other error. The chunked
//! decoder, the TLS session adapter and the timed read are shared with the upstream
//! client (`crate::upstream`), which reads answers the way this layer reads requests.

pub(crate) mod aws_chunked;
mod body;
mod buffer_pool;
mod connection;
mod head;
mod idle;
mod line;
mod rate_window;
mod response;
mod send_file;
mod serve;
mod tls;

pub(crate) use body::BodyKind;
pub(crate) use body::Chunked;
pub(crate) use buffer_pool::ConnectionBuffers;
#[cfg(feature = "fuzzing")]
pub(crate) use head::Parsed;
pub(crate) use head::RequestHead;
pub(crate) use idle::IdleSet;
pub(crate) use response::{Body, BodyStream, Labels, Response, ResponseHead};
pub(crate) use send_file::{short_file, FileRun};
pub(crate) use serve::{refuse, serve, BodyReader, Exchange, Service};
pub(crate) use tls::{
    read_appending, read_with_timeout, server_config, Certificate, ReadEnd, TlsStream, Transport,
};
