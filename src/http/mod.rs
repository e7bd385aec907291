//! HTTP/1.1 for the daemon: request heads parsed with httparse into a fixed
//! header array, request bodies (Content-Length, chunked, and the aws-chunked
//! content encoding inside them), and the response head writer. Knows nothing
//! of S3 operations; protocol failures are returned as `S3Error`s so the caller
//! renders them like any other error.

pub mod aws_chunked;
mod body;
mod connection;
mod head;
mod line;
mod response;

pub use body::{Body, BodyKind};
pub use connection::Connection;
pub use head::RequestHead;
pub use response::{reason_phrase, ResponseHead};
