//! S3 protocol layer: the request pipeline (`service`), its stages (`authenticate`,
//! `route`, `operation`, `authorize`), one handler module per family of operations,
//! and XML. Knows nothing of SQLite or files: it reaches them through
//! `meta::MetaClient` and `storage::Storage`.

pub mod acl;
pub mod attributes;
pub mod authenticate;
pub mod authorize;
pub mod bucket;
pub mod context;
pub mod copy;
pub mod list;
pub mod multipart;
pub mod object;
pub mod object_stream;
pub mod operation;
pub mod payload;
pub mod route;
pub mod service;
pub mod store;
pub mod xml;
