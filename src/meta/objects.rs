//! The objects table (and the part list of multipart objects) in SQL: reads, the
//! conditional writes, the releases of data ids that replacing or deleting an
//! object makes, and the listing walk.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::limits;
use crate::meta::buckets::{bucket_versioning, bucket_write_state};
use crate::meta::columns::col;
use crate::meta::json::{decode_pairs, encode_pairs};
use crate::meta::versions;
use crate::meta::{
    DeleteSpec, Deleted, ListPage, ListQuery, LockConfig, MetaError, ObjectRow, PartRef,
    PutCondition, Retention, RetentionMode, Versioning,
};

/// The objects table's columns, for `concat!` and `col!`: statements are built at
/// compile time, not formatted for every query.
macro_rules! object_columns {
    () => {
        "bucket, key, size, etag, content_type, content_encoding, content_language, \
         content_disposition, cache_control, expires, user_meta, storage_class, acl, \
         last_modified_ms, data_id, checksum_algorithm, checksum_value, owner_id, parts_count, \
         upload_id, checksum_type, version_id, version_seq, retention_mode, retain_until_ms, \
         legal_hold"
    };
}

pub(crate) use object_columns;

pub(crate) fn object_from_row(row: &Row<'_>) -> rusqlite::Result<ObjectRow> {
    let user_meta: String = row.get(col!(object_columns!(), "user_meta"))?;
    Ok(ObjectRow {
        bucket: row.get(col!(object_columns!(), "bucket"))?,
        key: row.get(col!(object_columns!(), "key"))?,
        size: row.get::<_, i64>(col!(object_columns!(), "size"))? as u64,
        etag: row.get(col!(object_columns!(), "etag"))?,
        content_type: row.get(col!(object_columns!(), "content_type"))?,
        content_encoding: row.get(col!(object_columns!(), "content_encoding"))?,
        content_language: row.get(col!(object_columns!(), "content_language"))?,
        content_disposition: row.get(col!(object_columns!(), "content_disposition"))?,
        cache_control: row.get(col!(object_columns!(), "cache_control"))?,
        expires: row.get(col!(object_columns!(), "expires"))?,
        user_meta: decode_pairs(&user_meta).unwrap_or_default(),
        storage_class: row.get(col!(object_columns!(), "storage_class"))?,
        acl: row.get(col!(object_columns!(), "acl"))?,
        last_modified_ms: row.get(col!(object_columns!(), "last_modified_ms"))?,
        data_id: row.get(col!(object_columns!(), "data_id"))?,
        checksum_algorithm: row.get(col!(object_columns!(), "checksum_algorithm"))?,
        checksum_value: row.get(col!(object_columns!(), "checksum_value"))?,
        owner_id: row.get(col!(object_columns!(), "owner_id"))?,
        parts_count: row
            .get::<_, Option<i64>>(col!(object_columns!(), "parts_count"))?
            .map(|n| n as u32),
        upload_id: row.get(col!(object_columns!(), "upload_id"))?,
        checksum_type: row.get(col!(object_columns!(), "checksum_type"))?,
        parts: Vec::new(),
        version_id: row.get(col!(object_columns!(), "version_id"))?,
        version_seq: row.get(col!(object_columns!(), "version_seq"))?,
        delete_marker: false,
        retention: retention_from(
            row.get(col!(object_columns!(), "retention_mode"))?,
            row.get(col!(object_columns!(), "retain_until_ms"))?,
        ),
        legal_hold: row.get(col!(object_columns!(), "legal_hold"))?,
    })
}

/// A retention as stored: a mode and a date, both or neither.
pub(crate) fn retention_from(mode: Option<String>, until_ms: Option<i64>) -> Option<Retention> {
    Some(Retention {
        mode: RetentionMode::from_name(mode.as_deref()?)?,
        until_ms: until_ms?,
    })
}

pub(crate) fn get_object(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRow>, MetaError> {
    let sql = concat!(
        "SELECT ",
        object_columns!(),
        " FROM objects WHERE bucket = ?1 AND key = ?2"
    );
    let row = conn
        .prepare_cached(sql)?
        .query_row([bucket, key], object_from_row)
        .optional()?;
    let Some(mut row) = row else { return Ok(None) };
    if row.parts_count.is_some() {
        row.parts = object_parts(conn, bucket, key)?;
    }
    Ok(Some(row))
}

/// The columns of object_parts that a part of an object is read from.
macro_rules! part_columns {
    () => {
        "part_number, size, etag, data_id, checksum_value"
    };
}

pub(crate) use part_columns;

/// A part of a multipart object (current or not), read in `part_columns!` order.
pub(crate) fn part_from_row(r: &Row<'_>) -> rusqlite::Result<PartRef> {
    Ok(PartRef {
        part_number: r.get::<_, i64>(col!(part_columns!(), "part_number"))? as u32,
        size: r.get::<_, i64>(col!(part_columns!(), "size"))? as u64,
        etag: r.get(col!(part_columns!(), "etag"))?,
        data_id: r.get(col!(part_columns!(), "data_id"))?,
        checksum_value: r.get(col!(part_columns!(), "checksum_value"))?,
    })
}

fn object_parts(conn: &Connection, bucket: &str, key: &str) -> Result<Vec<PartRef>, MetaError> {
    let sql = concat!(
        "SELECT ",
        part_columns!(),
        " FROM object_parts WHERE bucket = ?1 AND key = ?2 ORDER BY part_number"
    );
    let mut stmt = conn.prepare_cached(sql)?;
    let parts = stmt.query_map([bucket, key], part_from_row)?;
    Ok(parts.collect::<Result<_, _>>()?)
}

/// Removes an object's row and part rows; returns every data id it used.
pub(crate) fn release_object(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Vec<String>, MetaError> {
    let current: Option<(String, Option<i64>)> = conn
        .prepare_cached(
            "DELETE FROM objects WHERE bucket = ?1 AND key = ?2 RETURNING data_id, parts_count",
        )?
        .query_row([bucket, key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((data_id, parts_count)) = current else {
        return Ok(Vec::new());
    };
    let mut released = Vec::new();
    if !data_id.is_empty() {
        released.push(data_id);
    }
    if parts_count.is_some() {
        let mut stmt = conn.prepare_cached(
            "DELETE FROM object_parts WHERE bucket = ?1 AND key = ?2 RETURNING data_id",
        )?;
        let ids = stmt.query_map([bucket, key], |r| r.get::<_, String>(0))?;
        for id in ids {
            released.push(id?);
        }
    }
    Ok(released)
}

pub(crate) fn current_etag(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<Option<String>, MetaError> {
    Ok(conn
        .prepare_cached("SELECT etag FROM objects WHERE bucket = ?1 AND key = ?2")?
        .query_row([bucket, key], |r| r.get(0))
        .optional()?)
}

/// Checks a write condition against the current object's ETag.
pub(crate) fn check_condition(current: Option<&str>, cond: &PutCondition) -> Result<(), MetaError> {
    match (cond, current) {
        (PutCondition::IfNoneMatchStar, Some(_)) => Err(MetaError::PreconditionFailed),
        (PutCondition::IfMatch(_), None) => Err(MetaError::NoSuchKey),
        (PutCondition::IfMatch(etag), Some(current)) if etag != current => {
            Err(MetaError::PreconditionFailed)
        }
        _ => Ok(()),
    }
}

/// Inserts or replaces an object (and its part rows), as a new version when the
/// bucket has versioning on; returns the version id to report and the data ids the
/// replaced object used, for the caller to delete after the commit.
pub(crate) fn put_object(
    conn: &Connection,
    row: &ObjectRow,
    cond: &PutCondition,
) -> Result<(Option<String>, Vec<String>), MetaError> {
    let plan = check_put(conn, row, cond)?;
    apply_put(conn, row, plan)
}

/// The current object a PUT replaces, as much of it as the PUT needs.
pub(crate) struct Replaced {
    etag: String,
    data_id: String,
    has_parts: bool,
    version_id: Option<String>,
    version_seq: i64,
}

/// What `check_put` found: the bucket's versioning, the current object, and the
/// place of the key's newest version.
pub(crate) struct PutPlan {
    versioning: Versioning,
    lock: Option<LockConfig>,
    current: Option<Replaced>,
    latest_seq: i64,
}

/// Every reason `put_object` may refuse a row, checked without changing anything.
pub(crate) fn check_put(
    conn: &Connection,
    row: &ObjectRow,
    cond: &PutCondition,
) -> Result<PutPlan, MetaError> {
    let (versioning, lock) =
        bucket_write_state(conn, &row.bucket)?.ok_or(MetaError::NoSuchBucket)?;
    if lock.is_none() && (row.retention.is_some() || row.legal_hold.is_some()) {
        return Err(MetaError::NoObjectLock);
    }
    let current = conn
        .prepare_cached(
            "SELECT etag, data_id, parts_count IS NOT NULL, version_id, version_seq FROM objects
             WHERE bucket = ?1 AND key = ?2",
        )?
        .query_row([&row.bucket, &row.key], |r| {
            Ok(Replaced {
                etag: r.get(0)?,
                data_id: r.get(1)?,
                has_parts: r.get(2)?,
                version_id: r.get(3)?,
                version_seq: r.get(4)?,
            })
        })
        .optional()?;
    check_condition(current.as_ref().map(|c| c.etag.as_str()), cond)?;
    let latest_seq = match (&current, versioning) {
        (Some(current), _) => current.version_seq,
        // A bucket that never had versioning on has no other versions.
        (None, Versioning::Unversioned) => 0,
        (None, _) => versions::latest_seq(conn, &row.bucket, &row.key)?,
    };
    Ok(PutPlan {
        versioning,
        lock,
        current,
        latest_seq,
    })
}

/// `put_object` once `check_put` has passed: refuses nothing, so an error here is
/// SQLite's own. The current object's row is updated in place, which costs one
/// statement where a delete and an insert cost two (and a row-count trigger each);
/// with versioning on it is first copied into the versions table, unless it is the
/// `null` version a suspended bucket's write replaces.
pub(crate) fn apply_put(
    conn: &Connection,
    row: &ObjectRow,
    plan: PutPlan,
) -> Result<(Option<String>, Vec<String>), MetaError> {
    let seq = versions::next_seq(plan.latest_seq);
    let version_id =
        (plan.versioning == Versioning::Enabled).then(|| versions::format_version_id(seq));
    // A version without a retention of its own gets the bucket's default, if any.
    let retention = row.retention.or_else(|| {
        let default = plan.lock?.default_retention?;
        Some(Retention {
            mode: default.mode,
            until_ms: default.until_ms(row.last_modified_ms),
        })
    });
    let placed = Placed {
        version_id: version_id.as_deref(),
        seq,
        retention,
    };
    let mut released = Vec::new();
    if plan.versioning == Versioning::Suspended {
        released.extend(versions::remove_null_version(conn, &row.bucket, &row.key)?);
    }
    match plan.current {
        None => write_object(conn, INSERT_OBJECT, row, &placed)?,
        Some(old) => {
            let keep = match plan.versioning {
                Versioning::Unversioned => false,
                Versioning::Enabled => true,
                Versioning::Suspended => old.version_id.is_some(),
            };
            if keep {
                versions::archive_current(conn, &row.bucket, &row.key)?;
            }
            write_object(conn, UPDATE_OBJECT, row, &placed)?;
            if !keep {
                if !old.data_id.is_empty() {
                    released.push(old.data_id);
                }
                if old.has_parts {
                    let mut stmt = conn.prepare_cached(
                        "DELETE FROM object_parts WHERE bucket = ?1 AND key = ?2 RETURNING data_id",
                    )?;
                    let ids = stmt.query_map([&row.bucket, &row.key], |r| r.get::<_, String>(0))?;
                    for id in ids {
                        released.push(id?);
                    }
                }
            }
        }
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO object_parts (bucket, key, part_number, size, etag, data_id, checksum_value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for part in &row.parts {
        insert.execute(params![
            row.bucket,
            row.key,
            part.part_number,
            part.size as i64,
            part.etag,
            part.data_id,
            part.checksum_value
        ])?;
    }
    let released = released
        .into_iter()
        .filter(|old| *old != row.data_id)
        .collect();
    Ok((version_id, released))
}

/// The parameters of both statements are the columns in `object_columns!` order.
const INSERT_OBJECT: &str = concat!(
    "INSERT INTO objects (",
    object_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
     ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)"
);
const UPDATE_OBJECT: &str = "UPDATE objects SET size = ?3, etag = ?4, content_type = ?5, \
     content_encoding = ?6, content_language = ?7, content_disposition = ?8, \
     cache_control = ?9, expires = ?10, user_meta = ?11, storage_class = ?12, acl = ?13, \
     last_modified_ms = ?14, data_id = ?15, checksum_algorithm = ?16, checksum_value = ?17, \
     owner_id = ?18, parts_count = ?19, upload_id = ?20, checksum_type = ?21, \
     version_id = ?22, version_seq = ?23, retention_mode = ?24, retain_until_ms = ?25, \
     legal_hold = ?26 WHERE bucket = ?1 AND key = ?2";

/// What the writer decides of a version it writes: its id, place and retention.
struct Placed<'a> {
    version_id: Option<&'a str>,
    seq: i64,
    retention: Option<Retention>,
}

fn write_object(
    conn: &Connection,
    sql: &str,
    row: &ObjectRow,
    placed: &Placed<'_>,
) -> Result<(), MetaError> {
    conn.prepare_cached(sql)?.execute(params![
        row.bucket,
        row.key,
        row.size as i64,
        row.etag,
        row.content_type,
        row.content_encoding,
        row.content_language,
        row.content_disposition,
        row.cache_control,
        row.expires,
        encode_pairs(&row.user_meta),
        row.storage_class,
        row.acl,
        row.last_modified_ms,
        row.data_id,
        row.checksum_algorithm,
        row.checksum_value,
        row.owner_id,
        row.parts_count.map(i64::from),
        row.upload_id,
        row.checksum_type,
        placed.version_id,
        placed.seq,
        placed.retention.map(|r| r.mode.as_str()),
        placed.retention.map(|r| r.until_ms),
        row.legal_hold,
    ])?;
    Ok(())
}

/// A DELETE: of the current object (leaving a delete marker when the bucket has
/// versioning on) or of the version the spec names. Returns what it did and the data
/// ids it released.
pub(crate) fn delete_object(
    conn: &Connection,
    bucket: &str,
    spec: &DeleteSpec,
) -> Result<(Deleted, Vec<String>), MetaError> {
    let versioning = bucket_versioning(conn, bucket)?.ok_or(MetaError::NoSuchBucket)?;
    if let Some(etag) = &spec.if_match {
        check_condition(
            current_etag(conn, bucket, &spec.key)?.as_deref(),
            &PutCondition::IfMatch(etag.clone()),
        )?;
    }
    delete_in(conn, bucket, versioning, spec)
}

fn delete_in(
    conn: &Connection,
    bucket: &str,
    versioning: Versioning,
    spec: &DeleteSpec,
) -> Result<(Deleted, Vec<String>), MetaError> {
    match (spec.version, versioning) {
        (None, Versioning::Unversioned) => {
            Ok((Deleted::default(), release_object(conn, bucket, &spec.key)?))
        }
        (None, _) => {
            versions::delete_with_marker(conn, bucket, &spec.key, versioning, &spec.owner_id)
        }
        (Some(sel), _) => {
            versions::delete_version(conn, bucket, &spec.key, sel, spec.bypass_governance)
        }
    }
}

/// What one delete did, and the data ids it released.
pub(crate) type DeleteOutcome = Result<(Deleted, Vec<String>), MetaError>;

/// Deletes up to a thousand keys (or versions) in one step; each one's outcome
/// separately.
pub(crate) fn delete_objects(
    conn: &Connection,
    bucket: &str,
    specs: &[DeleteSpec],
) -> Result<Vec<DeleteOutcome>, MetaError> {
    let versioning = bucket_versioning(conn, bucket)?.ok_or(MetaError::NoSuchBucket)?;
    Ok(specs
        .iter()
        .map(|spec| delete_in(conn, bucket, versioning, spec))
        .collect())
}

pub(crate) fn set_object_acl(
    conn: &Connection,
    bucket: &str,
    key: &str,
    acl: &str,
) -> Result<(), MetaError> {
    let changed = conn
        .prepare_cached("UPDATE objects SET acl = ?3 WHERE bucket = ?1 AND key = ?2")?
        .execute([bucket, key, acl])?;
    if changed == 0 {
        return Err(MetaError::NoSuchKey);
    }
    Ok(())
}

/// The smallest string greater than every string that starts with `prefix`:
/// the last character moved to the next code point. UTF-8 keeps code point
/// order in byte order, which is the order SQLite compares TEXT in.
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Lists in key order, rolling keys up into common prefixes and seeking past a
/// common prefix's keys instead of reading them.
pub(crate) fn list_objects(conn: &Connection, query: &ListQuery) -> Result<ListPage, MetaError> {
    let mut page = ListPage::default();
    if query.max_keys == 0 {
        return Ok(page);
    }
    let sql = concat!(
        "SELECT ",
        object_columns!(),
        " FROM objects WHERE bucket = ?1 AND key >= ?2 AND key > ?3 ORDER BY key LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(sql)?;
    let after = query.after.clone().unwrap_or_default();
    let mut lower = query.prefix.clone();
    let mut exclusive = after.clone();
    let mut count = 0usize;
    loop {
        let limit = (query.max_keys - count + 1).clamp(2, limits::LIST_KEYS_MAX + 1);
        let rows: Vec<ObjectRow> = stmt
            .query_map(
                params![query.bucket, lower, exclusive, limit as i64],
                object_from_row,
            )?
            .collect::<Result<_, _>>()?;
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
            match rolled {
                Some(common) => {
                    if common.as_str() > after.as_str() || query.after.is_none() {
                        if count == query.max_keys {
                            page.is_truncated = true;
                            return Ok(page);
                        }
                        page.common_prefixes.push(common.clone());
                        page.next_after = Some(common.clone());
                        count += 1;
                    }
                    seek = Some(common);
                    break;
                }
                None => {
                    if count == query.max_keys {
                        page.is_truncated = true;
                        return Ok(page);
                    }
                    exclusive = row.key.clone();
                    page.next_after = Some(row.key.clone());
                    page.objects.push(row);
                    count += 1;
                }
            }
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
