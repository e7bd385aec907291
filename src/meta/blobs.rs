//! Object bytes held in the metadata database, for the sqlite storage backend. An
//! object is its chunk rows (`blob_chunks`, numbered from 0, each but the last of the
//! backend's chunk size) and, once whole, its seal (`blobs`: the id and the size). Only
//! a sealed object can be opened; chunks without a seal are an upload in progress, or
//! one a crash interrupted, which the orphan sweep removes. The last chunk and the
//! seal travel with the metadata write that records the object (`BlobTail`), so the
//! bytes and the row that names them commit in one transaction. Chunks a crash left
//! unsealed are removed at startup (`admin::remove_unsealed_blobs`).

use rusqlite::{Connection, OptionalExtension, MAIN_DB};

use crate::meta::MetaError;

/// The end of an object stored in the database: its last chunk and its size. Written
/// in the same transaction as the row that names the object, or on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobTail {
    pub data_id: String,
    /// The number of the last chunk (the count of chunks written before it).
    pub seq: u64,
    /// The last chunk's bytes; empty only for an empty object.
    pub bytes: Vec<u8>,
    /// The object's size.
    pub size: u64,
}

/// A sealed object, as opened: its size, and its bytes when it is one small chunk
/// (a small GET then needs no second round trip).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
    pub inline: Option<Vec<u8>>,
}

/// Stores one chunk of an object being written.
pub(crate) fn write_chunk(
    conn: &Connection,
    data_id: &str,
    seq: u64,
    bytes: &[u8],
) -> Result<(), MetaError> {
    conn.prepare_cached("INSERT INTO blob_chunks (data_id, seq, bytes) VALUES (?1, ?2, ?3)")?
        .execute(rusqlite::params![data_id, seq as i64, bytes])?;
    Ok(())
}

/// Stores an object's last chunk and seals it. Sealing an id twice fails: ids are
/// never reused, so that would be a bug upstream.
pub(crate) fn seal(conn: &Connection, tail: &BlobTail) -> Result<(), MetaError> {
    write_chunk(conn, &tail.data_id, tail.seq, &tail.bytes)?;
    conn.prepare_cached("INSERT INTO blobs (data_id, size) VALUES (?1, ?2)")?
        .execute(rusqlite::params![tail.data_id, tail.size as i64])?;
    Ok(())
}

/// Seals `target` as a copy of the whole sealed object `source`, chunk rows and all;
/// returns the size, or `None` when there is no such object.
pub(crate) fn copy(
    conn: &Connection,
    source: &str,
    target: &str,
) -> Result<Option<u64>, MetaError> {
    let Some(size) = sealed_size(conn, source)? else {
        return Ok(None);
    };
    conn.prepare_cached(
        "INSERT INTO blob_chunks (data_id, seq, bytes)
         SELECT ?2, seq, bytes FROM blob_chunks WHERE data_id = ?1",
    )?
    .execute([source, target])?;
    conn.prepare_cached("INSERT INTO blobs (data_id, size) VALUES (?1, ?2)")?
        .execute(rusqlite::params![target, size as i64])?;
    Ok(Some(size))
}

/// Removes an object's seal and chunks; removing one that is gone does nothing.
pub(crate) fn remove(conn: &Connection, data_id: &str) -> Result<(), MetaError> {
    conn.prepare_cached("DELETE FROM blobs WHERE data_id = ?1")?
        .execute([data_id])?;
    conn.prepare_cached("DELETE FROM blob_chunks WHERE data_id = ?1")?
        .execute([data_id])?;
    Ok(())
}

fn sealed_size(conn: &Connection, data_id: &str) -> Result<Option<u64>, MetaError> {
    let size: Option<i64> = conn
        .prepare_cached("SELECT size FROM blobs WHERE data_id = ?1")?
        .query_row([data_id], |r| r.get(0))
        .optional()?;
    Ok(size.map(|s| s as u64))
}

/// A sealed object's size, with its bytes inlined when it is at most `inline_max`
/// bytes (one chunk); `None` when there is no sealed object of that id. One statement.
pub(crate) fn open(
    conn: &Connection,
    data_id: &str,
    inline_max: u64,
) -> Result<Option<BlobInfo>, MetaError> {
    let found: Option<(i64, Option<Vec<u8>>)> = conn
        .prepare_cached(
            "SELECT b.size, c.bytes FROM blobs b LEFT JOIN blob_chunks c
             ON c.data_id = b.data_id AND c.seq = 0 AND b.size <= ?2
             WHERE b.data_id = ?1",
        )?
        .query_row(rusqlite::params![data_id, inline_max as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((size, inline)) = found else {
        return Ok(None);
    };
    let size = size as u64;
    match inline {
        Some(bytes) if bytes.len() as u64 != size => Err(MetaError::Sqlite(format!(
            "object {data_id} lacks its bytes"
        ))),
        None if size <= inline_max => Err(MetaError::Sqlite(format!(
            "object {data_id} lacks its bytes"
        ))),
        inline => Ok(Some(BlobInfo { size, inline })),
    }
}

/// Reads bytes of chunk `seq` from offset `within` into `buf` (from index 0, up to its
/// capacity); returns how many (0 past the chunk's end). The chunk is read in place,
/// through SQLite's incremental blob I/O, not loaded whole.
pub(crate) fn read_chunk(
    conn: &Connection,
    data_id: &str,
    seq: u64,
    within: u64,
    buf: &mut Vec<u8>,
) -> Result<usize, MetaError> {
    let rowid: Option<i64> = conn
        .prepare_cached("SELECT rowid FROM blob_chunks WHERE data_id = ?1 AND seq = ?2")?
        .query_row(rusqlite::params![data_id, seq as i64], |r| r.get(0))
        .optional()?;
    let Some(rowid) = rowid else {
        return Err(MetaError::Sqlite(format!(
            "object {data_id} lacks its chunk {seq}"
        )));
    };
    let blob = conn.blob_open(MAIN_DB, c"blob_chunks", c"bytes", rowid, true)?;
    let len = blob.len() as u64;
    let n = len.saturating_sub(within).min(buf.capacity() as u64) as usize;
    buf.clear();
    buf.resize(n, 0);
    blob.read_at_exact(&mut buf[..], within as usize)?;
    Ok(n)
}

/// Every sealed object's id (for the orphan sweep).
pub(crate) fn list_ids(conn: &Connection) -> Result<Vec<String>, MetaError> {
    let mut stmt = conn.prepare_cached("SELECT data_id FROM blobs")?;
    let ids = stmt.query_map([], |r| r.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

/// Removes the chunks of every object never sealed: uploads a crash or a kill
/// interrupted (startup's recovery, while no upload runs). Returns how many objects.
pub(crate) fn remove_unsealed(conn: &Connection) -> Result<u64, MetaError> {
    let objects: i64 = conn.query_row(
        "SELECT COUNT(DISTINCT data_id) FROM blob_chunks
         WHERE data_id NOT IN (SELECT data_id FROM blobs)",
        [],
        |r| r.get(0),
    )?;
    conn.execute(
        "DELETE FROM blob_chunks WHERE data_id NOT IN (SELECT data_id FROM blobs)",
        [],
    )?;
    Ok(objects as u64)
}
