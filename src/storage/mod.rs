//! Object bytes on local disk: written to a temp file while the body streams in, published
//! durably under a generated data id, and read back by offset. This layer knows nothing of keys,
//! buckets or HTTP; the metadata layer maps keys to data ids.
//!
//! Layout under the data dir: `tmp/` holds files being written (on the same filesystem as
//! `objects/`, so publishing is an atomic rename), and `objects/<xx>/<data_id>` holds published
//! objects, fanned out over 256 directories by the first two hex digits of the id.

mod data_id;
mod durable_write;
mod local;
#[cfg(test)]
mod tests;

pub use data_id::is_valid_data_id;
pub use local::{LocalStorage, ObjectFile, RecoveryReport, TempObject};
