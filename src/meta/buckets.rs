//! The buckets table in SQL.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::meta::columns::col;
use crate::meta::{BucketRow, CreateBucketOutcome, MetaError, Versioning};

/// The buckets table's columns, for `concat!` and `col!`.
macro_rules! bucket_columns {
    () => {
        "name, owner_id, region, acl, created_ms, versioning"
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
    })
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
    let mut stmt = conn.prepare_cached("SELECT versioning FROM buckets WHERE name = ?1")?;
    Ok(stmt
        .query_row([name], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .map(versioning_from))
}

/// Turns versioning on or suspends it (never off: the s3 layer refuses that).
pub(crate) fn set_versioning(
    conn: &Connection,
    name: &str,
    versioning: Versioning,
) -> Result<(), MetaError> {
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

/// Whether bucket `name` exists: the check of every object write, which needs no
/// more of the row.
pub(crate) fn bucket_exists(conn: &Connection, name: &str) -> Result<bool, MetaError> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM buckets WHERE name = ?1")?;
    Ok(stmt.exists([name])?)
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
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    );
    conn.prepare_cached(sql)?.execute(params![
        row.name,
        row.owner_id,
        row.region,
        row.acl,
        row.created_ms,
        row.versioning.status()
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

pub(crate) fn set_bucket_acl(conn: &Connection, name: &str, acl: &str) -> Result<(), MetaError> {
    let changed = conn
        .prepare_cached("UPDATE buckets SET acl = ?2 WHERE name = ?1")?
        .execute([name, acl])?;
    if changed == 0 {
        return Err(MetaError::NoSuchBucket);
    }
    Ok(())
}
