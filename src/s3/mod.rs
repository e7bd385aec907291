//! S3 protocol layer: the request pipeline (`service`), its stages (`authenticate`,
//! `route`, `operation`, `authorize`), one handler module per family of operations,
//! and XML. Knows nothing of SQLite or files: it reaches them through
//! `meta::MetaClient` and `storage::Storage`.

pub(crate) mod acl;
pub(crate) mod attributes;
pub(crate) mod authenticate;
pub(crate) mod authorize;
pub(crate) mod bucket;
pub(crate) mod config_xml;
pub(crate) mod context;
pub(crate) mod copy;
pub(crate) mod cors;
pub(crate) mod list;
pub(crate) mod multipart;
pub(crate) mod object;
pub(crate) mod object_lock;
pub(crate) mod object_stream;
pub(crate) mod operation;
pub(crate) mod payload;
pub(crate) mod route;
pub(crate) mod service;
pub(crate) mod store;
pub(crate) mod versioning;
pub(crate) mod xml;
