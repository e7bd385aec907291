//! The multipart_uploads and multipart_parts tables in SQL: uploads in progress and
//! their parts, completion
//! (validated and recorded in one step, so a part replaced concurrently cannot
//! slip in between), abort, listings and the reaping of abandoned uploads.

use md5::{Digest, Md5};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::checksum::{multipart_checksum, ChecksumAlgorithm, ChecksumType};
use crate::meta::buckets::bucket_write_state;
use crate::meta::columns::col;
use crate::meta::json::{decode_pairs, encode_pairs};
use crate::meta::objects::{check_condition, current_etag, put_object, retention_from};
use crate::meta::{
    CompleteRequest, CompletedUpload, MetaError, ObjectRow, PartRef, PartRow, PutCondition,
    ReapedUploads, UploadPage, UploadRow,
};

pub use crate::limits::PART_BYTES_MIN;

/// The multipart_uploads table's columns, for `concat!` and `col!`.
macro_rules! upload_columns {
    () => {
        "upload_id, bucket, key, owner_id, initiated_ms, content_type, content_encoding, \
         content_language, content_disposition, cache_control, expires, user_meta, acl, \
         storage_class, checksum_algorithm, checksum_type, retention_mode, retain_until_ms, \
         legal_hold"
    };
}

/// The multipart_parts table's columns, for `concat!` and `col!`.
macro_rules! upload_part_columns {
    () => {
        "upload_id, part_number, size, etag, data_id, last_modified_ms, checksum_value"
    };
}

fn upload_from_row(row: &Row<'_>) -> rusqlite::Result<UploadRow> {
    let user_meta: String = row.get(col!(upload_columns!(), "user_meta"))?;
    Ok(UploadRow {
        upload_id: row.get(col!(upload_columns!(), "upload_id"))?,
        initiated_ms: row.get(col!(upload_columns!(), "initiated_ms"))?,
        object: ObjectRow {
            bucket: row.get(col!(upload_columns!(), "bucket"))?,
            key: row.get(col!(upload_columns!(), "key"))?,
            size: 0,
            etag: String::new(),
            content_type: row.get(col!(upload_columns!(), "content_type"))?,
            content_encoding: row.get(col!(upload_columns!(), "content_encoding"))?,
            content_language: row.get(col!(upload_columns!(), "content_language"))?,
            content_disposition: row.get(col!(upload_columns!(), "content_disposition"))?,
            cache_control: row.get(col!(upload_columns!(), "cache_control"))?,
            expires: row.get(col!(upload_columns!(), "expires"))?,
            user_meta: decode_pairs(&user_meta).unwrap_or_default(),
            storage_class: row.get(col!(upload_columns!(), "storage_class"))?,
            acl: row.get(col!(upload_columns!(), "acl"))?,
            last_modified_ms: 0,
            data_id: String::new(),
            checksum_algorithm: row.get(col!(upload_columns!(), "checksum_algorithm"))?,
            checksum_value: None,
            checksum_type: row.get(col!(upload_columns!(), "checksum_type"))?,
            owner_id: row.get(col!(upload_columns!(), "owner_id"))?,
            parts_count: None,
            upload_id: None,
            parts: Vec::new(),
            version_id: None,
            version_seq: 0,
            delete_marker: false,
            retention: retention_from(
                row.get(col!(upload_columns!(), "retention_mode"))?,
                row.get(col!(upload_columns!(), "retain_until_ms"))?,
            ),
            legal_hold: row.get(col!(upload_columns!(), "legal_hold"))?,
        },
    })
}

pub(crate) fn create_upload(conn: &Connection, upload: &UploadRow) -> Result<(), MetaError> {
    let o = &upload.object;
    let (_, lock) = bucket_write_state(conn, &o.bucket)?.ok_or(MetaError::NoSuchBucket)?;
    if lock.is_none() && (o.retention.is_some() || o.legal_hold.is_some()) {
        return Err(MetaError::NoObjectLock);
    }
    let sql = concat!(
        "INSERT INTO multipart_uploads (",
        upload_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
         ?17, ?18, ?19)"
    );
    conn.prepare_cached(sql)?.execute(params![
        upload.upload_id,
        o.bucket,
        o.key,
        o.owner_id,
        upload.initiated_ms,
        o.content_type,
        o.content_encoding,
        o.content_language,
        o.content_disposition,
        o.cache_control,
        o.expires,
        encode_pairs(&o.user_meta),
        o.acl,
        o.storage_class,
        o.checksum_algorithm,
        o.checksum_type,
        o.retention.map(|r| r.mode.as_str()),
        o.retention.map(|r| r.until_ms),
        o.legal_hold,
    ])?;
    Ok(())
}

pub(crate) fn get_upload(
    conn: &Connection,
    upload_id: &str,
) -> Result<Option<UploadRow>, MetaError> {
    let sql = concat!(
        "SELECT ",
        upload_columns!(),
        " FROM multipart_uploads WHERE upload_id = ?1"
    );
    Ok(conn
        .prepare_cached(sql)?
        .query_row([upload_id], upload_from_row)
        .optional()?)
}

/// Records a part, replacing a part with the same number; returns the replaced data id.
pub(crate) fn put_part(conn: &Connection, part: &PartRow) -> Result<Vec<String>, MetaError> {
    if get_upload(conn, &part.upload_id)?.is_none() {
        return Err(MetaError::NoSuchUpload);
    }
    let old: Option<String> = conn
        .prepare_cached(
            "SELECT data_id FROM multipart_parts WHERE upload_id = ?1 AND part_number = ?2",
        )?
        .query_row(params![part.upload_id, part.part_number], |r| r.get(0))
        .optional()?;
    let sql = concat!(
        "INSERT OR REPLACE INTO multipart_parts (",
        upload_part_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    );
    conn.prepare_cached(sql)?.execute(params![
        part.upload_id,
        part.part_number,
        part.size as i64,
        part.etag,
        part.data_id,
        part.last_modified_ms,
        part.checksum_value,
    ])?;
    Ok(old.into_iter().filter(|id| *id != part.data_id).collect())
}

fn part_from_row(row: &Row<'_>) -> rusqlite::Result<PartRow> {
    Ok(PartRow {
        upload_id: row.get(col!(upload_part_columns!(), "upload_id"))?,
        part_number: row.get::<_, i64>(col!(upload_part_columns!(), "part_number"))? as u32,
        size: row.get::<_, i64>(col!(upload_part_columns!(), "size"))? as u64,
        etag: row.get(col!(upload_part_columns!(), "etag"))?,
        data_id: row.get(col!(upload_part_columns!(), "data_id"))?,
        last_modified_ms: row.get(col!(upload_part_columns!(), "last_modified_ms"))?,
        checksum_value: row.get(col!(upload_part_columns!(), "checksum_value"))?,
    })
}

/// Parts numbered above `after`, at most `max`; the flag says whether more follow.
pub(crate) fn list_parts(
    conn: &Connection,
    upload_id: &str,
    after: u32,
    max: usize,
) -> Result<(Vec<PartRow>, bool), MetaError> {
    if get_upload(conn, upload_id)?.is_none() {
        return Err(MetaError::NoSuchUpload);
    }
    let sql = concat!(
        "SELECT ",
        upload_part_columns!(),
        " FROM multipart_parts WHERE upload_id = ?1 AND part_number > ?2 \
         ORDER BY part_number LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(sql)?;
    let mut parts: Vec<PartRow> = stmt
        .query_map(params![upload_id, after, max as i64 + 1], part_from_row)?
        .collect::<Result<_, _>>()?;
    let truncated = parts.len() > max;
    parts.truncate(max);
    Ok((parts, truncated))
}

/// Completes an upload: validates the requested parts against the recorded ones,
/// makes the object out of them by reference, and drops the upload. Completing
/// an upload that already completed answers its object again.
pub(crate) fn complete_upload(
    conn: &Connection,
    request: &CompleteRequest,
) -> Result<(CompletedUpload, Vec<String>), MetaError> {
    let upload_id = request.upload_id.as_str();
    let template = &request.template;
    let requested = &request.parts;
    if get_upload(conn, upload_id)?.is_none() {
        return Ok((completed_before(conn, upload_id)?, Vec::new()));
    }
    let (all, _) = list_parts(conn, upload_id, 0, 10_000)?;
    let checksum = template
        .checksum_algorithm
        .as_deref()
        .and_then(ChecksumAlgorithm::from_name)
        .map(|alg| {
            let kind = template
                .checksum_type
                .as_deref()
                .and_then(ChecksumType::from_name)
                .unwrap_or(ChecksumType::default_for(alg));
            (alg, kind)
        });
    // S3 checks the order of the whole list first, then each part, then sizes. With
    // composite checksums the parts must also run 1, 2, 3... without gaps.
    let gapless = !matches!(checksum, Some((_, ChecksumType::Composite)))
        || requested
            .iter()
            .enumerate()
            .all(|(i, p)| p.part_number == i as u32 + 1);
    if requested
        .windows(2)
        .any(|pair| pair[1].part_number <= pair[0].part_number)
        || !gapless
    {
        return Err(MetaError::InvalidPartOrder);
    }
    let mut chosen = Vec::with_capacity(requested.len());
    for want in requested {
        let part = all
            .iter()
            .find(|p| p.part_number == want.part_number && p.etag == want.etag)
            .ok_or(MetaError::InvalidPart(want.part_number))?;
        if let Some((alg, kind)) = checksum {
            match &want.checksum {
                Some((name, value)) => {
                    let same = ChecksumAlgorithm::from_name(name) == Some(alg)
                        && part.checksum_value.as_deref() == Some(value.as_str());
                    if !same {
                        return Err(MetaError::InvalidPart(want.part_number));
                    }
                }
                None if kind == ChecksumType::Composite => {
                    return Err(MetaError::MissingPartChecksum(want.part_number));
                }
                None => {}
            }
        }
        chosen.push(part);
    }
    if let Some(small) = chosen
        .iter()
        .rev()
        .skip(1)
        .find(|p| p.size < PART_BYTES_MIN)
    {
        return Err(MetaError::EntityTooSmall(small.part_number, small.size));
    }
    let object_checksum = match checksum {
        None => None,
        Some((alg, kind)) => {
            let values: Option<Vec<(&str, u64)>> = chosen
                .iter()
                .map(|p| Some((p.checksum_value.as_deref()?, p.size)))
                .collect();
            let value = values
                .and_then(|values| multipart_checksum(alg, kind, &values))
                .ok_or(MetaError::MissingPartChecksum(
                    chosen.first().map_or(1, |p| p.part_number),
                ))?;
            if let Some(expected) = &request.expected_checksum {
                if strip_part_count(expected) != strip_part_count(&value) {
                    return Err(MetaError::BadDigest);
                }
            }
            Some((alg, kind, value))
        }
    };
    check_condition(
        current_etag(conn, &template.bucket, &template.key)?.as_deref(),
        &request.condition,
    )?;
    let mut md5 = Md5::new();
    for part in &chosen {
        let digest = crate::checksum::hex_decode(&part.etag).unwrap_or_default();
        md5.update(&digest);
    }
    let etag = format!(
        "{}-{}",
        crate::checksum::hex_encode(&md5.finalize()),
        chosen.len()
    );
    let size: u64 = chosen.iter().map(|p| p.size).sum();
    let mut row = (**template).clone();
    row.size = size;
    row.etag = etag.clone();
    row.data_id = String::new();
    row.parts_count = Some(chosen.len() as u32);
    row.upload_id = Some(upload_id.to_string());
    row.checksum_algorithm = None;
    row.checksum_value = None;
    row.checksum_type = None;
    if let Some((alg, kind, value)) = &object_checksum {
        row.checksum_algorithm = Some(alg.as_str().to_string());
        row.checksum_value = Some(value.clone());
        row.checksum_type = Some(kind.as_str().to_string());
    }
    row.parts = chosen
        .iter()
        .map(|p| PartRef {
            part_number: p.part_number,
            size: p.size,
            etag: p.etag.clone(),
            data_id: p.data_id.clone(),
            checksum_value: checksum.and(p.checksum_value.clone()),
        })
        .collect();
    let (version_id, mut released) = put_object(conn, &row, &PutCondition::None)?;
    let used: Vec<&str> = chosen.iter().map(|p| p.data_id.as_str()).collect();
    released.extend(
        all.iter()
            .filter(|p| !used.contains(&p.data_id.as_str()))
            .map(|p| p.data_id.clone()),
    );
    drop_upload(conn, upload_id)?;
    let done = CompletedUpload {
        etag,
        size,
        checksum: object_checksum
            .map(|(alg, kind, value)| (alg.as_str().to_string(), value, kind.as_str().to_string())),
        version_id,
    };
    Ok((done, released))
}

/// A composite checksum without its `-<parts>` suffix; clients may send either form.
fn strip_part_count(value: &str) -> &str {
    match value.rsplit_once('-') {
        Some((head, count)) if count.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => value,
    }
}

/// The answer to completing an upload that no longer exists: its object, if this
/// upload made the current one, else NoSuchUpload.
fn completed_before(conn: &Connection, upload_id: &str) -> Result<CompletedUpload, MetaError> {
    type Done = (
        String,
        i64,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let done: Option<Done> = conn
        .prepare_cached(
            "SELECT etag, size, checksum_algorithm, checksum_value, checksum_type, version_id
             FROM objects WHERE upload_id = ?1",
        )?
        .query_row([upload_id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    match done {
        Some((etag, size, alg, value, kind, version_id)) => Ok(CompletedUpload {
            etag,
            size: size as u64,
            checksum: match (alg, value, kind) {
                (Some(alg), Some(value), Some(kind)) => Some((alg, value, kind)),
                _ => None,
            },
            version_id,
        }),
        None => Err(MetaError::NoSuchUpload),
    }
}

fn drop_upload(conn: &Connection, upload_id: &str) -> Result<(), MetaError> {
    conn.prepare_cached("DELETE FROM multipart_parts WHERE upload_id = ?1")?
        .execute([upload_id])?;
    conn.prepare_cached("DELETE FROM multipart_uploads WHERE upload_id = ?1")?
        .execute([upload_id])?;
    Ok(())
}

/// Drops an upload and returns its parts' data ids.
pub(crate) fn abort_upload(conn: &Connection, upload_id: &str) -> Result<Vec<String>, MetaError> {
    if get_upload(conn, upload_id)?.is_none() {
        return Err(MetaError::NoSuchUpload);
    }
    let mut stmt =
        conn.prepare_cached("SELECT data_id FROM multipart_parts WHERE upload_id = ?1")?;
    let ids: Vec<String> = stmt
        .query_map([upload_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    drop_upload(conn, upload_id)?;
    Ok(ids)
}

/// Aborts every upload initiated before `before_ms`; returns the parts' data ids too.
pub(crate) fn reap_uploads(
    conn: &Connection,
    before_ms: i64,
) -> Result<(ReapedUploads, Vec<String>), MetaError> {
    let mut stmt =
        conn.prepare_cached("SELECT upload_id FROM multipart_uploads WHERE initiated_ms < ?1")?;
    let ids: Vec<String> = stmt
        .query_map([before_ms], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut parts = Vec::new();
    for id in &ids {
        parts.extend(abort_upload(conn, id)?);
    }
    let reaped = ReapedUploads {
        uploads: ids.len(),
        parts: parts.len(),
    };
    Ok((reaped, parts))
}

/// Query of ListMultipartUploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadQuery {
    pub bucket: String,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: String,
    pub upload_id_marker: String,
    pub max_uploads: usize,
}

/// Uploads in (key, initiation) order after the markers, rolled up by delimiter.
pub(crate) fn list_uploads(conn: &Connection, q: &UploadQuery) -> Result<UploadPage, MetaError> {
    let sql = concat!(
        "SELECT ",
        upload_columns!(),
        " FROM multipart_uploads WHERE bucket = ?1 AND key >= ?2 \
         ORDER BY key, initiated_ms, upload_id"
    );
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![q.bucket, q.prefix], upload_from_row)?;
    let mut page = UploadPage::default();
    let mut count = 0usize;
    let mut passed_marker_upload = q.upload_id_marker.is_empty();
    for row in rows {
        let row = row?;
        let key = row.object.key.clone();
        if !key.starts_with(&q.prefix) {
            break;
        }
        if !q.key_marker.is_empty() {
            if key < q.key_marker {
                continue;
            }
            if key == q.key_marker {
                // With an upload-id marker, uploads of the marker key after it follow.
                if q.upload_id_marker.is_empty() {
                    continue;
                }
                if !passed_marker_upload {
                    passed_marker_upload = row.upload_id == q.upload_id_marker;
                    continue;
                }
            }
        }
        let rolled = q.delimiter.as_deref().and_then(|d| {
            let rest = &key[q.prefix.len()..];
            rest.find(d)
                .map(|at| key[..q.prefix.len() + at + d.len()].to_string())
        });
        if let Some(common) = rolled {
            if page.common_prefixes.last() == Some(&common) || common <= q.key_marker {
                continue;
            }
            if count == q.max_uploads {
                page.is_truncated = true;
                break;
            }
            page.common_prefixes.push(common);
        } else {
            if count == q.max_uploads {
                page.is_truncated = true;
                break;
            }
            page.uploads.push(row);
        }
        count += 1;
    }
    Ok(page)
}
