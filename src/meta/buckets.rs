//! The buckets table in SQL.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::meta::columns::col;
use crate::meta::{
    BucketRow, CreateBucketOutcome, DefaultRetention, LockConfig, MetaError, RetentionMode,
    Versioning,
};

/// The buckets table's columns, for `concat!` and `col!`.
macro_rules! bucket_columns {
    () => {
        "name, owner_id, region, acl, created_ms, versioning, object_lock, lock_mode, lock_days, \
         lock_years, cors"
    };
}

fn bucket_from_row(row: &Row<'_>) -> rusqlite::Result<BucketRow> {
    Ok(BucketRow {
        name: row.get(col!(bucket_columns!(), "name"))?,
        owner_id: row.get(col!(bucket_columns!(), "owner_id"))?,
        region: row.get(col!(bucket_columns!(), "region"))?,
        acl: row.get(col!(bucket_columns!(), "acl"))?,
        created_ms: row.get(col!(bucket_columns!(), "created_ms"))?,
        versioning: versioning_from(row.get(col!(bucket_columns!(), "versioning"))?),
        object_lock: lock_from(
            row.get(col!(bucket_columns!(), "object_lock"))?,
            row.get(col!(bucket_columns!(), "lock_mode"))?,
            row.get(col!(bucket_columns!(), "lock_days"))?,
            row.get(col!(bucket_columns!(), "lock_years"))?,
        ),
        cors: row.get(col!(bucket_columns!(), "cors"))?,
    })
}

fn lock_from(
    enabled: bool,
    mode: Option<String>,
    days: Option<u32>,
    years: Option<u32>,
) -> Option<LockConfig> {
    enabled.then(|| LockConfig {
        default_retention: mode
            .as_deref()
            .and_then(RetentionMode::from_name)
            .map(|mode| DefaultRetention { mode, days, years }),
    })
}

/// What every object write reads of its bucket: the versioning state and the
/// object lock configuration; `None` when there is no such bucket.
pub(crate) fn bucket_write_state(
    conn: &Connection,
    name: &str,
) -> Result<Option<(Versioning, Option<LockConfig>)>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT versioning, object_lock, lock_mode, lock_days, lock_years FROM buckets
         WHERE name = ?1",
    )?;
    Ok(stmt
        .query_row([name], |r| {
            Ok((
                versioning_from(r.get(0)?),
                lock_from(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
            ))
        })
        .optional()?)
}

/// Sets a bucket's object lock configuration. A bucket without object lock gets it
/// only when versioning is enabled (and keeps both for good).
pub(crate) fn set_lock_config(
    conn: &Connection,
    name: &str,
    config: &LockConfig,
) -> Result<(), MetaError> {
    let (versioning, lock) = bucket_write_state(conn, name)?.ok_or(MetaError::NoSuchBucket)?;
    if lock.is_none() && versioning != Versioning::Enabled {
        return Err(MetaError::InvalidBucketState(
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
        ));
    }
    let default = config.default_retention;
    conn.prepare_cached(
        "UPDATE buckets SET object_lock = 1, lock_mode = ?2, lock_days = ?3, lock_years = ?4
         WHERE name = ?1",
    )?
    .execute(params![
        name,
        default.map(|d| d.mode.as_str()),
        default.and_then(|d| d.days),
        default.and_then(|d| d.years)
    ])?;
    Ok(())
}

fn versioning_from(status: Option<String>) -> Versioning {
    Versioning::from_status(status.as_deref()).unwrap_or_default()
}

/// A bucket's versioning state; `None` when there is no such bucket. The check of
/// every object write, which needs no more of the row.
pub(crate) fn bucket_versioning(
    conn: &Connection,
    name: &str,
) -> Result<Option<Versioning>, MetaError> {
    Ok(bucket_write_state(conn, name)?.map(|(versioning, _)| versioning))
}

/// Turns versioning on or suspends it (never off: the s3 layer refuses that); a
/// bucket with object lock cannot be suspended.
pub(crate) fn set_versioning(
    conn: &Connection,
    name: &str,
    versioning: Versioning,
) -> Result<(), MetaError> {
    let (_, lock) = bucket_write_state(conn, name)?.ok_or(MetaError::NoSuchBucket)?;
    if lock.is_some() && versioning != Versioning::Enabled {
        return Err(MetaError::InvalidBucketState(
            "An Object Lock configuration is present on this bucket, so the versioning state \
             cannot be changed.",
        ));
    }
    let changed = conn
        .prepare_cached("UPDATE buckets SET versioning = ?2 WHERE name = ?1")?
        .execute(params![name, versioning.status()])?;
    if changed == 0 {
        return Err(MetaError::NoSuchBucket);
    }
    Ok(())
}

pub(crate) fn get_bucket(conn: &Connection, name: &str) -> Result<Option<BucketRow>, MetaError> {
    let sql = concat!(
        "SELECT ",
        bucket_columns!(),
        " FROM buckets WHERE name = ?1"
    );
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt.query_row([name], bucket_from_row).optional()?)
}

pub(crate) fn list_buckets(conn: &Connection) -> Result<Vec<BucketRow>, MetaError> {
    let sql = concat!("SELECT ", bucket_columns!(), " FROM buckets ORDER BY name");
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], bucket_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn create_bucket(
    conn: &Connection,
    row: &BucketRow,
) -> Result<CreateBucketOutcome, MetaError> {
    if let Some(existing) = get_bucket(conn, &row.name)? {
        return Ok(if existing.owner_id == row.owner_id {
            CreateBucketOutcome::AlreadyOwnedByYou
        } else {
            CreateBucketOutcome::AlreadyExists
        });
    }
    let sql = concat!(
        "INSERT INTO buckets (",
        bucket_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    );
    let default = row.object_lock.and_then(|lock| lock.default_retention);
    conn.prepare_cached(sql)?.execute(params![
        row.name,
        row.owner_id,
        row.region,
        row.acl,
        row.created_ms,
        row.versioning.status(),
        row.object_lock.is_some(),
        default.map(|d| d.mode.as_str()),
        default.and_then(|d| d.days),
        default.and_then(|d| d.years),
        row.cors
    ])?;
    Ok(CreateBucketOutcome::Created)
}

pub(crate) fn delete_bucket(conn: &Connection, name: &str) -> Result<(), MetaError> {
    if get_bucket(conn, name)?.is_none() {
        return Err(MetaError::NoSuchBucket);
    }
    let busy: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1)
                 OR EXISTS (SELECT 1 FROM object_versions WHERE bucket = ?1)
                 OR EXISTS (SELECT 1 FROM multipart_uploads WHERE bucket = ?1)",
        )?
        .query_row([name], |r| r.get(0))?;
    if busy {
        return Err(MetaError::BucketNotEmpty);
    }
    conn.prepare_cached("DELETE FROM buckets WHERE name = ?1")?
        .execute([name])?;
    Ok(())
}

/// Sets (or, with none, removes) a bucket's CORS rules.
pub(crate) fn set_cors(conn: &Connection, name: &str, cors: Option<&str>) -> Result<(), MetaError> {
    let changed = conn
        .prepare_cached("UPDATE buckets SET cors = ?2 WHERE name = ?1")?
        .execute(params![name, cors])?;
    if changed == 0 {
        return Err(MetaError::NoSuchBucket);
    }
    Ok(())
}

pub(crate) fn set_bucket_acl(conn: &Connection, name: &str, acl: &str) -> Result<(), MetaError> {
    let changed = conn
        .prepare_cached("UPDATE buckets SET acl = ?2 WHERE name = ?1")?
        .execute([name, acl])?;
    if changed == 0 {
        return Err(MetaError::NoSuchBucket);
    }
    Ok(())
}
