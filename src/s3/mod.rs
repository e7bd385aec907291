//! S3 protocol layer: routing, one handler per operation, XML, and the error
//! type every failure becomes. Knows nothing of SQLite or files: it reaches them
//! through `meta::MetaClient` and `storage::LocalStorage`.

pub mod acl;
pub mod attributes;
pub mod authenticate;
pub mod bucket;
pub mod copy;
pub mod error;
pub mod list;
pub mod multipart;
pub mod object;
pub mod payload;
pub mod route;
pub mod service;
pub mod xml;

pub use error::{ErrorCode, OrS3Error, S3Error};
