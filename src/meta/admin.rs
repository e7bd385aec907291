//! Offline administration of the metadata database for the command line
//! (`bleepstore credentials ...`): plain synchronous SQL on its own connection.
//! Safe beside a running daemon: SQLite serialises the writers, and the daemon's
//! per-core credential caches pick a change up within their TTL.

use std::path::Path;

use crate::meta::thread::{credential_from_row, put_credential};
use crate::meta::{schema, CredentialRow, MetaError};

/// Adds or replaces a key pair.
pub fn add_credential(db_path: &Path, row: &CredentialRow) -> Result<(), MetaError> {
    put_credential(&schema::open(db_path)?, row)
}

/// Every key pair, by access key. Secrets are included: callers decide what to print.
pub fn list_credentials(db_path: &Path) -> Result<Vec<CredentialRow>, MetaError> {
    let conn = schema::open(db_path)?;
    let mut stmt = conn.prepare(
        "SELECT access_key, secret_key, owner_id, display_name, created_ms FROM credentials ORDER BY access_key",
    )?;
    let rows = stmt.query_map([], credential_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes a key pair; false when there was none.
pub fn remove_credential(db_path: &Path, access_key: &str) -> Result<bool, MetaError> {
    let conn = schema::open(db_path)?;
    Ok(conn.execute(
        "DELETE FROM credentials WHERE access_key = ?1",
        [access_key],
    )? > 0)
}
