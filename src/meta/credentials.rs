//! The credentials table in SQL: one row per key pair (each its own user).

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::auth::SecretKey;
use crate::meta::columns::col;
use crate::meta::{CredentialRow, MetaError};

/// The credentials table's columns, for `concat!` and `col!`.
macro_rules! credential_columns {
    () => {
        "access_key, secret_key, owner_id, display_name, created_ms"
    };
}

fn credential_from_row(r: &Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok(CredentialRow {
        access_key: r.get(col!(credential_columns!(), "access_key"))?,
        secret_key: SecretKey::new(r.get(col!(credential_columns!(), "secret_key"))?),
        owner_id: r.get(col!(credential_columns!(), "owner_id"))?,
        display_name: r.get(col!(credential_columns!(), "display_name"))?,
        created_ms: r.get(col!(credential_columns!(), "created_ms"))?,
    })
}

pub(crate) fn get_credential(
    conn: &Connection,
    access_key: &str,
) -> Result<Option<CredentialRow>, MetaError> {
    let sql = concat!(
        "SELECT ",
        credential_columns!(),
        " FROM credentials WHERE access_key = ?1"
    );
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt
        .query_row([access_key], credential_from_row)
        .optional()?)
}

pub(crate) fn put_credential(conn: &Connection, row: &CredentialRow) -> Result<(), MetaError> {
    let sql = concat!(
        "INSERT INTO credentials (",
        credential_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (access_key) DO UPDATE SET secret_key = excluded.secret_key,
             owner_id = excluded.owner_id, display_name = excluded.display_name"
    );
    conn.prepare_cached(sql)?.execute(params![
        row.access_key,
        row.secret_key.expose(),
        row.owner_id,
        row.display_name,
        row.created_ms
    ])?;
    Ok(())
}

/// Every key pair, by access key (for `bleepstore credentials list`).
pub(crate) fn list_credentials(conn: &Connection) -> Result<Vec<CredentialRow>, MetaError> {
    let sql = concat!(
        "SELECT ",
        credential_columns!(),
        " FROM credentials ORDER BY access_key"
    );
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], credential_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes a key pair; false when there was none.
pub(crate) fn remove_credential(conn: &Connection, access_key: &str) -> Result<bool, MetaError> {
    Ok(conn.execute(
        "DELETE FROM credentials WHERE access_key = ?1",
        [access_key],
    )? > 0)
}
