//! Administration of the metadata database on its own connection, outside the
//! metadata thread: the command line (`bleepstore credentials ...`) and the
//! background orphan sweep's read of every referenced data id.
//! Safe beside a running daemon: SQLite serialises the writers, and the daemon's
//! per-core credential caches pick a change up within their TTL.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::OpenFlags;

use crate::meta::{blobs, credentials, versions};
use crate::meta::{schema, CredentialRow, MetaError};

/// Adds or replaces a key pair.
pub fn add_credential(db_path: &Path, row: &CredentialRow) -> Result<(), MetaError> {
    credentials::put_credential(&schema::open(db_path)?, row)
}

/// Every key pair, by access key. Secrets are included: callers decide what to print.
pub fn list_credentials(db_path: &Path) -> Result<Vec<CredentialRow>, MetaError> {
    credentials::list_credentials(&schema::open(db_path)?)
}

/// Removes a key pair; false when there was none.
pub fn remove_credential(db_path: &Path, access_key: &str) -> Result<bool, MetaError> {
    credentials::remove_credential(&schema::open(db_path)?, access_key)
}

/// Every data id a row references (objects and their versions, their parts, upload parts) or the reclaim
/// table holds (released, waiting for its readers), read in one statement on a
/// read-only connection: one snapshot, and WAL lets it run beside the metadata thread's
/// writes without holding them up, whatever the size of the tables.
pub fn referenced_data_ids(db_path: &Path) -> Result<HashSet<String>, MetaError> {
    let conn = rusqlite::Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare(
        "SELECT data_id FROM objects WHERE data_id != ''
         UNION ALL SELECT data_id FROM object_parts
         UNION ALL SELECT data_id FROM object_versions WHERE data_id != ''
         UNION ALL SELECT data_id FROM version_parts
         UNION ALL SELECT data_id FROM multipart_parts
         UNION ALL SELECT data_id FROM reclaim",
    )?;
    let ids = stmt.query_map([], |r| r.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Startup recovery of the sqlite backend: removes the chunks of uploads a crash
/// interrupted (never sealed, so nothing names them); returns how many uploads.
pub fn remove_unsealed_blobs(db_path: &Path) -> Result<u64, MetaError> {
    blobs::remove_unsealed(&schema::open(db_path)?)
}

/// Claims the database for the storage backend `identity` (`local`, `memory`, ...)
/// if none has it yet; returns the identity it is claimed for, which the caller
/// compares with its own.
pub fn claim_storage(db_path: &Path, identity: &str) -> Result<String, MetaError> {
    let conn = schema::open(db_path)?;
    conn.execute(
        "INSERT INTO storage_identity (name, value) VALUES ('backend', ?1)
         ON CONFLICT (name) DO NOTHING",
        [identity],
    )?;
    Ok(conn.query_row(
        "SELECT value FROM storage_identity WHERE name = 'backend'",
        [],
        |r| r.get(0),
    )?)
}

/// What `forget_missing_data` removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Forgotten {
    pub objects: usize,
    pub upload_parts: usize,
}

/// For a backend that can lose published bytes (memory after its last snapshot):
/// removes, in one transaction, every object whose data (or any of whose parts) is
/// not in `present`, and every upload part whose data is gone, so that a listing
/// never shows an object no GET can serve. Released data that is gone needs no
/// reclaiming either. Runs at startup, before the metadata thread.
pub fn forget_missing_data(
    db_path: &Path,
    present: &HashSet<String>,
) -> Result<Forgotten, MetaError> {
    let mut conn = schema::open(db_path)?;
    let tx = conn.transaction()?;
    tx.execute_batch("CREATE TEMP TABLE present (data_id TEXT PRIMARY KEY) WITHOUT ROWID")?;
    {
        let mut insert = tx.prepare("INSERT OR IGNORE INTO present VALUES (?1)")?;
        for id in present {
            insert.execute([id])?;
        }
    }
    let missing = "NOT IN (SELECT data_id FROM present)";
    let single = tx.execute(
        &format!("DELETE FROM objects WHERE data_id != '' AND data_id {missing}"),
        [],
    )?;
    let assembled = tx.execute(
        &format!(
            "DELETE FROM objects WHERE data_id = '' AND (bucket, key) IN
             (SELECT bucket, key FROM object_parts WHERE data_id {missing})"
        ),
        [],
    )?;
    tx.execute(
        "DELETE FROM object_parts WHERE NOT EXISTS (SELECT 1 FROM objects o
         WHERE o.bucket = object_parts.bucket AND o.key = object_parts.key AND o.data_id = '')",
        [],
    )?;
    let single_versions = tx.execute(
        &format!(
            "DELETE FROM object_versions WHERE delete_marker = 0 AND data_id != ''
             AND data_id {missing}"
        ),
        [],
    )?;
    let assembled_versions = tx.execute(
        &format!(
            "DELETE FROM object_versions WHERE delete_marker = 0 AND data_id = ''
             AND (bucket, key, version_seq) IN
             (SELECT bucket, key, version_seq FROM version_parts WHERE data_id {missing})"
        ),
        [],
    )?;
    tx.execute(
        "DELETE FROM version_parts WHERE NOT EXISTS (SELECT 1 FROM object_versions v
         WHERE v.bucket = version_parts.bucket AND v.key = version_parts.key
           AND v.version_seq = version_parts.version_seq AND v.data_id = '')",
        [],
    )?;
    versions::restore_invariant(&tx)?;
    let upload_parts = tx.execute(
        &format!("DELETE FROM multipart_parts WHERE data_id {missing}"),
        [],
    )?;
    tx.execute(&format!("DELETE FROM reclaim WHERE data_id {missing}"), [])?;
    tx.execute_batch("DROP TABLE present")?;
    tx.commit()?;
    Ok(Forgotten {
        objects: single + assembled + single_versions + assembled_versions,
        upload_parts,
    })
}
