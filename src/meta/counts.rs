//! What the database holds, in numbers (the row counts the schema's triggers keep,
//! for /metrics), and the read a health check makes.

use rusqlite::Connection;

use crate::meta::{MetaCounts, MetaError};

/// A read that proves the database answers (for /health).
pub(crate) fn ping(conn: &Connection) -> Result<(), MetaError> {
    conn.prepare_cached("SELECT COUNT(*) FROM schema_version")?
        .query_row([], |r| r.get::<_, i64>(0))?;
    Ok(())
}

/// The row counts the schema's triggers keep (see migration 4).
pub(crate) fn counts(conn: &Connection) -> Result<MetaCounts, MetaError> {
    let count = |name: &str| -> Result<u64, MetaError> {
        let value: i64 = conn
            .prepare_cached("SELECT value FROM row_counts WHERE name = ?1")?
            .query_row([name], |r| r.get(0))?;
        Ok(value.max(0) as u64)
    };
    Ok(MetaCounts {
        buckets: count("buckets")?,
        objects: count("objects")?,
        uploads: count("uploads")?,
        reclaim: conn
            .prepare_cached("SELECT COUNT(*) FROM reclaim")?
            .query_row([], |r| r.get::<_, i64>(0))?
            .max(0) as u64,
    })
}
