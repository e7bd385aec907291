//! Object versions in SQL. A key's current version is its row of `objects` (when the
//! newest version is not a delete marker); every older version and every delete
//! marker is a row of `object_versions`, newest first, whose multipart parts are in
//! `version_parts`. The invariant every write keeps: a key has a row in `objects`
//! exactly when its newest version is an object, and that row is the newest version.
//! So reads and listings of current objects never look at the versions table.
//!
//! A version's place in its key's order is `version_seq`, a number the writer draws
//! from the clock, greater than any other of the key's; a version id is that number
//! in hex, so a request's version id finds its row by primary key.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::limits;
use crate::meta::buckets::{bucket_write_state, get_bucket};
use crate::meta::columns::col;
use crate::meta::objects::{
    get_object, object_columns, object_from_row, part_columns, part_from_row, prefix_successor,
    release_object, retention_from,
};
use crate::meta::{
    BucketObject, Deleted, LockChange, MetaError, ObjectRow, PartRef, Retention, RetentionMode,
    VersionEntry, VersionPage, VersionQuery, VersionSel, Versioning,
};

/// The columns of `object_versions`: those of `objects` (same names, same order) and
/// the marker flag.
macro_rules! version_columns {
    () => {
        concat!(object_columns!(), ", delete_marker")
    };
}

/// Length of a version id: a `version_seq` as 16 hex digits.
const VERSION_ID_LEN: usize = 16;

/// The version id of the version at `seq`.
pub fn format_version_id(seq: i64) -> String {
    format!("{seq:016x}")
}

/// The version a request's `versionId` names; `None` when it is not one this server
/// makes (S3's answer is then 400 InvalidArgument).
pub fn parse_version_id(text: &str) -> Option<VersionSel> {
    if text == "null" {
        return Some(VersionSel::Null);
    }
    let well_formed = text.len() == VERSION_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return None;
    }
    i64::from_str_radix(text, 16).ok().map(VersionSel::Seq)
}

/// The place of a new version of a key whose newest version is at `latest`: the
/// clock in microseconds (so ids order by time across keys too), and always after
/// `latest` (so a clock step back never reorders a key's versions).
pub(crate) fn next_seq(latest: i64) -> i64 {
    (crate::clock::now_unix_millis() * 1000).max(latest + 1)
}

fn version_from_row(row: &Row<'_>) -> rusqlite::Result<ObjectRow> {
    let mut object = object_from_row(row)?;
    object.delete_marker = row.get(col!(version_columns!(), "delete_marker"))?;
    Ok(object)
}

/// The `version_seq` of the newest version of a key (0 when it has none).
pub(crate) fn latest_seq(conn: &Connection, bucket: &str, key: &str) -> Result<i64, MetaError> {
    Ok(conn
        .prepare_cached(
            "SELECT MAX(version_seq) FROM (
                SELECT version_seq FROM objects WHERE bucket = ?1 AND key = ?2
                UNION ALL
                SELECT MAX(version_seq) FROM object_versions WHERE bucket = ?1 AND key = ?2)",
        )?
        .query_row([bucket, key], |r| r.get::<_, Option<i64>>(0))?
        .unwrap_or(0))
}

/// The current version's id and place, when the key has a current object.
pub(crate) fn current_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<(Option<String>, i64)>, MetaError> {
    Ok(conn
        .prepare_cached(
            "SELECT version_id, version_seq FROM objects WHERE bucket = ?1 AND key = ?2",
        )?
        .query_row([bucket, key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Whether object lock keeps a version with this retention and legal hold from being
/// removed now: a legal hold always, a retention until its date (a GOVERNANCE one not
/// against a bypass by the bucket's owner).
fn locked(retention: Option<Retention>, legal_hold: Option<bool>, bypass: bool) -> bool {
    if legal_hold == Some(true) {
        return true;
    }
    match retention {
        Some(r) if r.until_ms > crate::clock::now_unix_millis() => {
            r.mode == RetentionMode::Compliance || !bypass
        }
        _ => false,
    }
}

/// The object lock state of one version.
struct LockState {
    retention: Option<Retention>,
    legal_hold: Option<bool>,
    /// Whether it is the key's current version (its row is in `objects`).
    current: bool,
    seq: i64,
}

/// The object lock state of one version (the current one: none), or `None` when the
/// key has no such version (or it is a delete marker, which has no lock state).
fn lock_state(
    conn: &Connection,
    bucket: &str,
    key: &str,
    sel: Option<VersionSel>,
) -> Result<Option<LockState>, MetaError> {
    type Columns = (
        Option<String>,
        Option<i64>,
        Option<bool>,
        Option<String>,
        i64,
    );
    let read = |r: &Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?));
    let state = |(mode, until, hold, _, seq): Columns, current: bool| LockState {
        retention: retention_from(mode, until),
        legal_hold: hold,
        current,
        seq,
    };
    let current: Option<Columns> = conn
        .prepare_cached(
            "SELECT retention_mode, retain_until_ms, legal_hold, version_id, version_seq
             FROM objects WHERE bucket = ?1 AND key = ?2",
        )?
        .query_row([bucket, key], read)
        .optional()?;
    if let Some(columns) = current {
        if sel.is_none_or(|sel| names(sel, columns.3.as_deref(), columns.4)) {
            return Ok(Some(state(columns, true)));
        }
    }
    let Some(sel) = sel else { return Ok(None) };
    let older: Option<Columns> = match sel {
        VersionSel::Null => conn
            .prepare_cached(
                "SELECT retention_mode, retain_until_ms, legal_hold, version_id, version_seq
                 FROM object_versions WHERE bucket = ?1 AND key = ?2 AND version_id IS NULL
                   AND delete_marker = 0",
            )?
            .query_row([bucket, key], read)
            .optional()?,
        VersionSel::Seq(seq) => conn
            .prepare_cached(
                "SELECT retention_mode, retain_until_ms, legal_hold, version_id, version_seq
                 FROM object_versions WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3
                   AND version_id IS NOT NULL AND delete_marker = 0",
            )?
            .query_row(params![bucket, key, seq], read)
            .optional()?,
    };
    Ok(older.map(|columns| state(columns, false)))
}

/// Whether a change of retention from `old` to `new` weakens one still in force:
/// removing it, moving its date earlier, or COMPLIANCE to GOVERNANCE.
fn weakens(old: Option<Retention>, new: Option<Retention>) -> Option<RetentionMode> {
    let old = old.filter(|o| o.until_ms > crate::clock::now_unix_millis())?;
    let weaker = match new {
        None => true,
        Some(new) => {
            new.until_ms < old.until_ms
                || (old.mode == RetentionMode::Compliance && new.mode == RetentionMode::Governance)
        }
    };
    weaker.then_some(old.mode)
}

/// PutObjectRetention and PutObjectLegalHold: changes one version's lock state, in the
/// write's transaction. A retention may always be lengthened (or turned from GOVERNANCE
/// to COMPLIANCE); weakening one still in force is refused, for GOVERNANCE unless the
/// bucket's owner bypasses it.
pub(crate) fn set_lock(
    conn: &Connection,
    bucket: &str,
    key: &str,
    sel: Option<VersionSel>,
    change: &LockChange,
) -> Result<(), MetaError> {
    let (_, lock) = bucket_write_state(conn, bucket)?.ok_or(MetaError::NoSuchBucket)?;
    if lock.is_none() {
        return Err(MetaError::NoObjectLock);
    }
    let missing = if sel.is_some() {
        MetaError::NoSuchVersion
    } else {
        MetaError::NoSuchKey
    };
    let state = lock_state(conn, bucket, key, sel)?.ok_or(missing)?;
    match change {
        LockChange::LegalHold(on) => {
            let sql = if state.current {
                "UPDATE objects SET legal_hold = ?4 WHERE bucket = ?1 AND key = ?2 \
                 AND version_seq = ?3"
            } else {
                "UPDATE object_versions SET legal_hold = ?4 WHERE bucket = ?1 AND key = ?2 \
                 AND version_seq = ?3"
            };
            conn.prepare_cached(sql)?
                .execute(params![bucket, key, state.seq, on])?;
        }
        LockChange::Retention {
            retention,
            bypass_governance,
        } => {
            match weakens(state.retention, *retention) {
                Some(RetentionMode::Compliance) => return Err(MetaError::ObjectLocked),
                Some(RetentionMode::Governance) if !bypass_governance => {
                    return Err(MetaError::ObjectLocked)
                }
                _ => {}
            }
            let sql = if state.current {
                "UPDATE objects SET retention_mode = ?4, retain_until_ms = ?5 \
                 WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3"
            } else {
                "UPDATE object_versions SET retention_mode = ?4, retain_until_ms = ?5 \
                 WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3"
            };
            conn.prepare_cached(sql)?.execute(params![
                bucket,
                key,
                state.seq,
                retention.map(|r| r.mode.as_str()),
                retention.map(|r| r.until_ms)
            ])?;
        }
    }
    Ok(())
}

/// Whether a version with this id and place is the one `sel` names.
fn names(sel: VersionSel, version_id: Option<&str>, seq: i64) -> bool {
    match sel {
        VersionSel::Null => version_id.is_none(),
        VersionSel::Seq(wanted) => version_id.is_some() && seq == wanted,
    }
}

/// Moves the current object of a key into the versions table (its parts with it),
/// leaving its `objects` row for the caller to overwrite or delete.
pub(crate) fn archive_current(conn: &Connection, bucket: &str, key: &str) -> Result<(), MetaError> {
    let archive = concat!(
        "INSERT INTO object_versions (",
        version_columns!(),
        ") SELECT ",
        object_columns!(),
        ", 0 FROM objects WHERE bucket = ?1 AND key = ?2"
    );
    conn.prepare_cached(archive)?.execute([bucket, key])?;
    let moved = conn
        .prepare_cached(
            "INSERT INTO version_parts
                (bucket, key, version_seq, part_number, size, etag, data_id, checksum_value)
             SELECT p.bucket, p.key, o.version_seq, p.part_number, p.size, p.etag, p.data_id,
                    p.checksum_value
             FROM object_parts p JOIN objects o ON o.bucket = p.bucket AND o.key = p.key
             WHERE p.bucket = ?1 AND p.key = ?2",
        )?
        .execute([bucket, key])?;
    if moved > 0 {
        conn.prepare_cached("DELETE FROM object_parts WHERE bucket = ?1 AND key = ?2")?
            .execute([bucket, key])?;
    }
    Ok(())
}

/// Makes the newest remaining version of a key without a current object its current
/// one, unless that version is a delete marker (which then goes on hiding the key).
fn promote(conn: &Connection, bucket: &str, key: &str) -> Result<(), MetaError> {
    let newest: Option<(i64, bool)> = conn
        .prepare_cached(
            "SELECT version_seq, delete_marker FROM object_versions
             WHERE bucket = ?1 AND key = ?2 ORDER BY version_seq DESC LIMIT 1",
        )?
        .query_row([bucket, key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((seq, false)) = newest else {
        return Ok(());
    };
    let restore = concat!(
        "INSERT INTO objects (",
        object_columns!(),
        ") SELECT ",
        object_columns!(),
        " FROM object_versions WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3"
    );
    conn.prepare_cached(restore)?
        .execute(params![bucket, key, seq])?;
    let moved = conn
        .prepare_cached(
            "INSERT INTO object_parts
                (bucket, key, part_number, size, etag, data_id, checksum_value)
             SELECT bucket, key, part_number, size, etag, data_id, checksum_value
             FROM version_parts WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3",
        )?
        .execute(params![bucket, key, seq])?;
    if moved > 0 {
        conn.prepare_cached(
            "DELETE FROM version_parts WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3",
        )?
        .execute(params![bucket, key, seq])?;
    }
    conn.prepare_cached(
        "DELETE FROM object_versions WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3",
    )?
    .execute(params![bucket, key, seq])?;
    Ok(())
}

/// Removes a noncurrent version's row (and parts); returns the data ids it used and
/// whether it was a delete marker, or `None` when no such version is stored.
fn remove_noncurrent(
    conn: &Connection,
    bucket: &str,
    key: &str,
    sel: VersionSel,
) -> Result<Option<(Vec<String>, bool)>, MetaError> {
    type Removed = (String, Option<i64>, bool, i64);
    let read = |r: &Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
    let removed: Option<Removed> = match sel {
        VersionSel::Null => conn
            .prepare_cached(
                "DELETE FROM object_versions
                 WHERE bucket = ?1 AND key = ?2 AND version_id IS NULL
                 RETURNING data_id, parts_count, delete_marker, version_seq",
            )?
            .query_row([bucket, key], read)
            .optional()?,
        VersionSel::Seq(seq) => conn
            .prepare_cached(
                "DELETE FROM object_versions
                 WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3 AND version_id IS NOT NULL
                 RETURNING data_id, parts_count, delete_marker, version_seq",
            )?
            .query_row(params![bucket, key, seq], read)
            .optional()?,
    };
    let Some((data_id, parts_count, marker, seq)) = removed else {
        return Ok(None);
    };
    let mut released = Vec::new();
    if !data_id.is_empty() {
        released.push(data_id);
    }
    if parts_count.is_some() {
        let mut stmt = conn.prepare_cached(
            "DELETE FROM version_parts WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3
             RETURNING data_id",
        )?;
        let ids = stmt.query_map(params![bucket, key, seq], |r| r.get::<_, String>(0))?;
        for id in ids {
            released.push(id?);
        }
    }
    Ok(Some((released, marker)))
}

/// Removes the key's noncurrent `null` version, if it has one (a write under
/// suspended versioning replaces it); returns the data ids it used.
pub(crate) fn remove_null_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Vec<String>, MetaError> {
    Ok(remove_noncurrent(conn, bucket, key, VersionSel::Null)?
        .map(|(ids, _)| ids)
        .unwrap_or_default())
}

/// Adds a delete marker as the key's newest version.
fn insert_marker(
    conn: &Connection,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    seq: i64,
    owner_id: &str,
) -> Result<(), MetaError> {
    conn.prepare_cached(
        "INSERT INTO object_versions (bucket, key, size, etag, content_type, user_meta,
            storage_class, acl, last_modified_ms, data_id, owner_id, version_id, version_seq,
            delete_marker)
         VALUES (?1, ?2, 0, '', '', '{}', 'STANDARD', '', ?3, '', ?4, ?5, ?6, 1)",
    )?
    .execute(params![
        bucket,
        key,
        crate::clock::now_unix_millis(),
        owner_id,
        version_id,
        seq
    ])?;
    Ok(())
}

/// A DELETE without a version id in a bucket with versioning on: the current object
/// becomes noncurrent (or, under suspension, the `null` version goes) and a delete
/// marker becomes the newest version.
pub(crate) fn delete_with_marker(
    conn: &Connection,
    bucket: &str,
    key: &str,
    versioning: Versioning,
    owner_id: &str,
) -> Result<(Deleted, Vec<String>), MetaError> {
    let current = current_version(conn, bucket, key)?;
    let latest = match &current {
        Some((_, seq)) => *seq,
        None => latest_seq(conn, bucket, key)?,
    };
    let suspended = versioning == Versioning::Suspended;
    let mut released = Vec::new();
    if suspended {
        released.extend(remove_null_version(conn, bucket, key)?);
    }
    match current {
        Some((None, _)) if suspended => released.extend(release_object(conn, bucket, key)?),
        Some(_) => {
            archive_current(conn, bucket, key)?;
            conn.prepare_cached("DELETE FROM objects WHERE bucket = ?1 AND key = ?2")?
                .execute([bucket, key])?;
        }
        None => {}
    }
    let seq = next_seq(latest);
    let version_id = (!suspended).then(|| format_version_id(seq));
    insert_marker(conn, bucket, key, version_id.as_deref(), seq, owner_id)?;
    let deleted = Deleted {
        version_id: Some(version_id.unwrap_or_else(|| "null".to_string())),
        delete_marker: true,
    };
    Ok((deleted, released))
}

/// A DELETE of one version (or marker) by id: it goes for good, and when it was the
/// newest, the next newest takes its place. A version that is not there is no error
/// (S3 answers the same).
pub(crate) fn delete_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
    sel: VersionSel,
    bypass_governance: bool,
) -> Result<(Deleted, Vec<String>), MetaError> {
    // Checked in the delete's own transaction step: a retention or hold set by an
    // earlier write of the same batch is seen.
    if let Some(state) = lock_state(conn, bucket, key, Some(sel))? {
        if locked(state.retention, state.legal_hold, bypass_governance) {
            return Err(MetaError::ObjectLocked);
        }
    }
    let label = match sel {
        VersionSel::Null => "null".to_string(),
        VersionSel::Seq(seq) => format_version_id(seq),
    };
    let mut deleted = Deleted {
        version_id: Some(label),
        delete_marker: false,
    };
    let current = current_version(conn, bucket, key)?;
    if let Some((version_id, seq)) = &current {
        if names(sel, version_id.as_deref(), *seq) {
            let released = release_object(conn, bucket, key)?;
            promote(conn, bucket, key)?;
            return Ok((deleted, released));
        }
    }
    let Some((released, marker)) = remove_noncurrent(conn, bucket, key, sel)? else {
        return Ok((deleted, Vec::new()));
    };
    deleted.delete_marker = marker;
    if current.is_none() {
        promote(conn, bucket, key)?;
    }
    Ok((deleted, released))
}

/// The newest version of a key without a current object, when it is a delete marker
/// (what a GET without a version id answers 404 with).
fn latest_marker(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRow>, MetaError> {
    let sql = concat!(
        "SELECT ",
        version_columns!(),
        " FROM object_versions WHERE bucket = ?1 AND key = ?2 ORDER BY version_seq DESC LIMIT 1"
    );
    let row = conn
        .prepare_cached(sql)?
        .query_row([bucket, key], version_from_row)
        .optional()?;
    Ok(row.filter(|r| r.delete_marker))
}

/// A bucket and the current version of one of its objects, as one snapshot: the
/// object row, or, in a bucket with versioning on, the delete marker that hides the
/// key (a row with `delete_marker` set), or none.
pub(crate) fn get_bucket_object(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<BucketObject, MetaError> {
    let Some(bucket_row) = get_bucket(conn, bucket)? else {
        return Ok((None, None));
    };
    let mut row = get_object(conn, bucket, key)?;
    if row.is_none() && bucket_row.versioning != Versioning::Unversioned {
        row = latest_marker(conn, bucket, key)?;
    }
    Ok((Some(bucket_row), row))
}

/// A bucket and one version of one of its objects (a delete marker included), as one
/// snapshot.
pub(crate) fn get_bucket_object_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
    sel: VersionSel,
) -> Result<BucketObject, MetaError> {
    let Some(bucket_row) = get_bucket(conn, bucket)? else {
        return Ok((None, None));
    };
    Ok((Some(bucket_row), get_version(conn, bucket, key, sel)?))
}

/// One version of a key, current or not.
pub(crate) fn get_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
    sel: VersionSel,
) -> Result<Option<ObjectRow>, MetaError> {
    if let Some(current) = get_object(conn, bucket, key)? {
        if names(sel, current.version_id.as_deref(), current.version_seq) {
            return Ok(Some(current));
        }
    }
    let row = match sel {
        VersionSel::Null => {
            let sql = concat!(
                "SELECT ",
                version_columns!(),
                " FROM object_versions WHERE bucket = ?1 AND key = ?2 AND version_id IS NULL"
            );
            conn.prepare_cached(sql)?
                .query_row([bucket, key], version_from_row)
                .optional()?
        }
        VersionSel::Seq(seq) => {
            let sql = concat!(
                "SELECT ",
                version_columns!(),
                " FROM object_versions WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3 \
                 AND version_id IS NOT NULL"
            );
            conn.prepare_cached(sql)?
                .query_row(params![bucket, key, seq], version_from_row)
                .optional()?
        }
    };
    let Some(mut row) = row else { return Ok(None) };
    if row.parts_count.is_some() {
        row.parts = version_parts(conn, bucket, key, row.version_seq)?;
    }
    Ok(Some(row))
}

fn version_parts(
    conn: &Connection,
    bucket: &str,
    key: &str,
    seq: i64,
) -> Result<Vec<PartRef>, MetaError> {
    let sql = concat!(
        "SELECT ",
        part_columns!(),
        " FROM version_parts WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3 \
         ORDER BY part_number"
    );
    let mut stmt = conn.prepare_cached(sql)?;
    let parts = stmt.query_map(params![bucket, key, seq], part_from_row)?;
    Ok(parts.collect::<Result<_, _>>()?)
}

/// Changes the ACL of one version of a key (a delete marker has none).
pub(crate) fn set_version_acl(
    conn: &Connection,
    bucket: &str,
    key: &str,
    sel: VersionSel,
    acl: &str,
) -> Result<(), MetaError> {
    if let Some((version_id, seq)) = current_version(conn, bucket, key)? {
        if names(sel, version_id.as_deref(), seq) {
            return crate::meta::objects::set_object_acl(conn, bucket, key, acl);
        }
    }
    let changed = match sel {
        VersionSel::Null => conn
            .prepare_cached(
                "UPDATE object_versions SET acl = ?3
                 WHERE bucket = ?1 AND key = ?2 AND version_id IS NULL AND delete_marker = 0",
            )?
            .execute(params![bucket, key, acl])?,
        VersionSel::Seq(seq) => conn
            .prepare_cached(
                "UPDATE object_versions SET acl = ?4
                 WHERE bucket = ?1 AND key = ?2 AND version_seq = ?3 AND version_id IS NOT NULL
                   AND delete_marker = 0",
            )?
            .execute(params![bucket, key, seq, acl])?,
    };
    if changed == 0 {
        return Err(MetaError::NoSuchVersion);
    }
    Ok(())
}

/// Up to `limit` versions in listing order (key, then newest first) with a key of at
/// least `lower`, after the position (`key`, `seq`): later keys, or older versions of
/// `key`. The current rows and the versions table are each read in that order and
/// merged.
fn version_batch(
    conn: &Connection,
    bucket: &str,
    lower: &str,
    after: (&str, i64),
    limit: usize,
) -> Result<Vec<ObjectRow>, MetaError> {
    let current_sql = concat!(
        "SELECT ",
        object_columns!(),
        " FROM objects WHERE bucket = ?1 AND key >= ?2 AND key >= ?3 \
         AND (key > ?3 OR version_seq < ?4) ORDER BY key LIMIT ?5"
    );
    let older_sql = concat!(
        "SELECT ",
        version_columns!(),
        " FROM object_versions WHERE bucket = ?1 AND key >= ?2 AND key >= ?3 \
         AND (key > ?3 OR version_seq < ?4) ORDER BY key, version_seq DESC LIMIT ?5"
    );
    let args = params![bucket, lower, after.0, after.1, limit as i64];
    let current: Vec<ObjectRow> = conn
        .prepare_cached(current_sql)?
        .query_map(args, object_from_row)?
        .collect::<Result<_, _>>()?;
    let older: Vec<ObjectRow> = conn
        .prepare_cached(older_sql)?
        .query_map(args, version_from_row)?
        .collect::<Result<_, _>>()?;
    let mut merged = Vec::with_capacity(limit.min(current.len() + older.len()));
    let mut current = current.into_iter().peekable();
    let mut older = older.into_iter().peekable();
    while merged.len() < limit {
        let take_current = match (current.peek(), older.peek()) {
            (Some(c), Some(o)) => {
                (c.key.as_str(), -c.version_seq) <= (o.key.as_str(), -o.version_seq)
            }
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_current {
            current.next()
        } else {
            older.next()
        };
        merged.extend(next);
    }
    Ok(merged)
}

/// The place of the version a `version-id-marker` names, for the walk to resume after
/// (the `null` version's is looked up; one that is gone resumes after the whole key).
fn marker_seq(
    conn: &Connection,
    bucket: &str,
    key: &str,
    sel: Option<VersionSel>,
) -> Result<i64, MetaError> {
    Ok(match sel {
        None => i64::MIN,
        Some(VersionSel::Seq(seq)) => seq,
        Some(VersionSel::Null) => get_version(conn, bucket, key, VersionSel::Null)?
            .map_or(i64::MIN, |row| row.version_seq),
    })
}

/// ListObjectVersions: every version and delete marker in (key, newest first) order
/// after the markers, rolled up into common prefixes by the delimiter as ListObjects
/// does, seeking past a common prefix's keys instead of reading them.
pub(crate) fn list_versions(conn: &Connection, q: &VersionQuery) -> Result<VersionPage, MetaError> {
    let query = &q.list;
    let mut page = VersionPage::default();
    if query.max_keys == 0 {
        return Ok(page);
    }
    let key_marker = query.after.clone().unwrap_or_default();
    let mut after_key = key_marker.clone();
    let mut after_seq = marker_seq(conn, &query.bucket, &key_marker, q.version_after)?;
    // Within the marker's key, the walk resumes past its newest version.
    let mut previous_key = q.version_after.map(|_| key_marker.clone());
    let mut lower = query.prefix.clone();
    let mut count = 0usize;
    loop {
        let limit = (query.max_keys - count + 1).clamp(2, limits::LIST_KEYS_MAX + 1);
        let rows = version_batch(conn, &query.bucket, &lower, (&after_key, after_seq), limit)?;
        let exhausted = rows.len() < limit;
        let mut seek: Option<String> = None;
        for row in rows {
            if !row.key.starts_with(&query.prefix) {
                return Ok(page);
            }
            let rolled = query.delimiter.as_deref().and_then(|delimiter| {
                let rest = &row.key[query.prefix.len()..];
                rest.find(delimiter)
                    .map(|at| row.key[..query.prefix.len() + at + delimiter.len()].to_string())
            });
            if let Some(common) = rolled {
                if query.after.is_none() || common.as_str() > key_marker.as_str() {
                    if count == query.max_keys {
                        page.is_truncated = true;
                        return Ok(page);
                    }
                    page.common_prefixes.push(common.clone());
                    page.next_key = Some(common.clone());
                    page.next_version = None;
                    count += 1;
                }
                seek = Some(common);
                break;
            }
            if count == query.max_keys {
                page.is_truncated = true;
                return Ok(page);
            }
            let is_latest = previous_key.as_deref() != Some(row.key.as_str());
            previous_key = Some(row.key.clone());
            after_key = row.key.clone();
            after_seq = row.version_seq;
            page.next_key = Some(row.key.clone());
            page.next_version = Some(row.version_label().to_string());
            page.entries.push(VersionEntry { row, is_latest });
            count += 1;
        }
        match seek {
            Some(common) => match prefix_successor(&common) {
                Some(next) => lower = next,
                None => return Ok(page),
            },
            None if exhausted => return Ok(page),
            None => {}
        }
    }
}

/// After a backend lost bytes (`admin::forget_missing_data` removed rows): every key
/// left without a current object whose newest version is an object gets it back as
/// current, so the invariant holds again.
pub(crate) fn restore_invariant(conn: &Connection) -> Result<(), MetaError> {
    let keys: Vec<(String, String)> = conn
        .prepare(
            "SELECT DISTINCT bucket, key FROM object_versions v WHERE NOT EXISTS
             (SELECT 1 FROM objects o WHERE o.bucket = v.bucket AND o.key = v.key)",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (bucket, key) in keys {
        promote(conn, &bucket, &key)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_round_trip() {
        for seq in [0, 1, 1_764_870_000_000_000, i64::MAX] {
            let id = format_version_id(seq);
            assert_eq!(id.len(), VERSION_ID_LEN);
            assert_eq!(parse_version_id(&id), Some(VersionSel::Seq(seq)));
        }
        assert_eq!(parse_version_id("null"), Some(VersionSel::Null));
        for bad in [
            "",
            "Null",
            "not-a-version",
            "00000000000000zz",
            "0000000000000000a",
            "000000000000000A",
        ] {
            assert_eq!(parse_version_id(bad), None, "{bad}");
        }
        assert!(next_seq(i64::MAX - 1) == i64::MAX);
        assert!(next_seq(0) > 0);
    }
}
