//! The reclaim table in SQL: data files a commit released, recorded in the same
//! transaction as the change that released them, so a crash can never forget one.
//! The reclaimer removes the files once no reader can still open them, then forgets
//! the rows; startup removes whatever a crash left here.

use rusqlite::Connection;

use crate::meta::MetaError;

/// Records released data ids (an id already waiting is left as it is).
pub(crate) fn record(conn: &Connection, data_ids: &[String], now_ms: i64) -> Result<(), MetaError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO reclaim (data_id, released_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for id in data_ids {
        insert.execute(rusqlite::params![id, now_ms])?;
    }
    Ok(())
}

/// Every id waiting, oldest release first.
pub(crate) fn all(conn: &Connection) -> Result<Vec<String>, MetaError> {
    let mut stmt = conn.prepare_cached("SELECT data_id FROM reclaim ORDER BY released_ms")?;
    let ids = stmt.query_map([], |r| r.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Drops the rows of files that were removed.
pub(crate) fn forget(conn: &Connection, data_ids: &[String]) -> Result<(), MetaError> {
    let mut delete = conn.prepare_cached("DELETE FROM reclaim WHERE data_id = ?1")?;
    for id in data_ids {
        delete.execute([id])?;
    }
    Ok(())
}
