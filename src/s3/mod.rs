//! S3 protocol layer: routing, handlers, XML, and the error type every failure becomes.

pub mod error;

pub use error::{ErrorCode, OrS3Error, S3Error};
