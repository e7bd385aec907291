//! The metadata thread: the single owner of the SQLite connection. It blocks for
//! a request, drains whatever else is queued, answers reads at once, runs every
//! write in one transaction with a savepoint each (so one failed precondition
//! rolls back only its own request), commits once, and only then replies to the
//! writers: a write is never acknowledged before its commit is durable.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::limits;
use crate::meta::client::Reply;
use crate::meta::json::{decode_pairs, encode_pairs};
use crate::meta::multipart::{self, UploadQuery};
use crate::meta::{
    reclaim, BucketObject, BucketRow, CompleteRequest, CompletedUpload, CreateBucketOutcome,
    CredentialRow, ListPage, ListQuery, MetaCounts, MetaError, ObjectRow, PartRef, PartRow,
    PutCondition, ReapedUploads, Released, UploadPage, UploadRow,
};

/// One request per metadata operation, each with its reply channel.
pub(crate) enum Request {
    CreateBucket(BucketRow, Reply<CreateBucketOutcome>),
    DeleteBucket(String, Reply<()>),
    GetBucket(String, Reply<Option<BucketRow>>),
    ListBuckets(Reply<Vec<BucketRow>>),
    PutObject(Box<ObjectRow>, PutCondition, Reply<()>),
    GetObject(String, String, Reply<Option<ObjectRow>>),
    /// A bucket and one of its objects in one trip (the object is absent without the bucket).
    GetBucketObject(String, String, Reply<BucketObject>),
    DeleteObject(String, String, Option<String>, Reply<()>),
    DeleteObjects(String, Vec<String>, Reply<Vec<Result<(), MetaError>>>),
    ListObjects(ListQuery, Reply<ListPage>),
    GetCredential(String, Reply<Option<CredentialRow>>),
    PutCredential(CredentialRow, Reply<()>),
    Ping(Reply<()>),
    Counts(Reply<MetaCounts>),
    CreateUpload(Box<UploadRow>, Reply<()>),
    SetBucketAcl(String, String, Reply<()>),
    SetObjectAcl(String, String, String, Reply<()>),
    GetUpload(String, Reply<Option<UploadRow>>),
    PutPart(PartRow, Reply<()>),
    ListParts(String, u32, usize, Reply<(Vec<PartRow>, bool)>),
    CompleteUpload(CompleteRequest, Reply<CompletedUpload>),
    AbortUpload(String, Reply<()>),
    ReapUploads(i64, Reply<ReapedUploads>),
    ListUploads(UploadQuery, Reply<UploadPage>),
    /// Every data id waiting in the reclaim table (startup removes them all).
    Reclaimable(Reply<Vec<String>>),
    /// Drops the reclaim rows of files that were removed.
    ForgetReclaimed(Vec<String>, Reply<()>),
}

/// A reply held back until the batch's commit: called with the commit's outcome.
type Deferred = Box<dyn FnOnce(Result<(), MetaError>)>;

/// What one transaction's writes leave to do once it commits.
#[derive(Default)]
struct Batch {
    deferred: Vec<Deferred>,
    /// Data ids the writes released, handed to the reclaimer after the commit.
    released: Vec<String>,
}

pub(crate) fn run(
    conn: Connection,
    rx: flume::Receiver<Request>,
    released: flume::Sender<Released>,
) {
    let mut batch = Vec::with_capacity(limits::META_BATCH_MAX);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < limits::META_BATCH_MAX {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let mut writes = Vec::new();
        for request in batch.drain(..) {
            // Reads see the last committed state: the writes queued beside them
            // are not acknowledged yet, so nobody can have observed them.
            if let Some(write) = serve_read(&conn, request) {
                writes.push(write);
            }
        }
        if !writes.is_empty() {
            commit_writes(&conn, writes, &released);
        }
    }
    log::debug!("metadata thread: all clients gone, exiting");
}

/// Answers a read request; hands a write back to be batched.
fn serve_read(conn: &Connection, request: Request) -> Option<Request> {
    match request {
        Request::GetBucket(name, reply) => send(reply, get_bucket(conn, &name)),
        Request::ListBuckets(reply) => send(reply, list_buckets(conn)),
        Request::GetObject(bucket, key, reply) => send(reply, get_object(conn, &bucket, &key)),
        Request::GetBucketObject(bucket, key, reply) => {
            send(reply, get_bucket_object(conn, &bucket, &key))
        }
        Request::ListObjects(query, reply) => send(reply, list_objects(conn, &query)),
        Request::GetCredential(key, reply) => send(reply, get_credential(conn, &key)),
        Request::Ping(reply) => send(reply, ping(conn)),
        Request::Counts(reply) => send(reply, counts(conn)),
        Request::GetUpload(id, reply) => send(reply, multipart::get_upload(conn, &id)),
        Request::ListParts(id, after, max, reply) => {
            send(reply, multipart::list_parts(conn, &id, after, max))
        }
        Request::ListUploads(query, reply) => send(reply, multipart::list_uploads(conn, &query)),
        Request::Reclaimable(reply) => send(reply, reclaim::all(conn)),
        write => return Some(write),
    }
    None
}

fn send<T>(reply: Reply<T>, result: Result<T, MetaError>) {
    // The caller may have gone away (its connection closed); that is fine.
    let _ = reply.send(result);
}

fn commit_writes(conn: &Connection, writes: Vec<Request>, released: &flume::Sender<Released>) {
    let mut batch = Batch::default();
    batch.deferred.reserve(writes.len());
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        let error = MetaError::from(error);
        for write in writes {
            fail(write, error.clone());
        }
        return;
    }
    for write in writes {
        run_write(conn, write, &mut batch);
    }
    let outcome = conn.execute_batch("COMMIT").map_err(MetaError::from);
    if outcome.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    } else if !batch.released.is_empty() {
        // Taken after the commit: a read begun later sees the new rows, so only reads
        // begun before this instant can hold one of these ids.
        let batch_released = Released {
            committed: std::time::Instant::now(),
            data_ids: std::mem::take(&mut batch.released),
        };
        // Without a reclaimer (it stopped), the rows wait for the next startup.
        let _ = released.send(batch_released);
    }
    for reply in batch.deferred {
        reply(outcome.clone());
    }
}

/// Settles one write inside its savepoint. Success defers the reply to the commit;
/// failure rolls back the savepoint and replies at once.
fn settle<T: 'static>(
    conn: &Connection,
    reply: Reply<T>,
    result: Result<T, MetaError>,
    batch: &mut Batch,
) {
    settle_releasing(conn, reply, result.map(|value| (value, Vec::new())), batch)
}

/// As `settle`, for a write that released data ids: they enter the reclaim table in
/// the same savepoint, and the reclaimer's list once the batch commits.
fn settle_releasing<T: 'static>(
    conn: &Connection,
    reply: Reply<T>,
    result: Result<(T, Vec<String>), MetaError>,
    batch: &mut Batch,
) {
    let recorded = result.and_then(|(value, ids)| {
        if !ids.is_empty() {
            reclaim::record(conn, &ids, crate::clock::now_unix_millis())?;
        }
        Ok((value, ids))
    });
    match recorded {
        Ok((value, ids)) => {
            let _ = conn.execute_batch("RELEASE request");
            batch.released.extend(ids);
            batch
                .deferred
                .push(Box::new(move |commit| send(reply, commit.map(|()| value))));
        }
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK TO request; RELEASE request");
            send(reply, Err(error));
        }
    }
}

/// Runs one write inside its savepoint.
fn run_write(conn: &Connection, write: Request, batch: &mut Batch) {
    if let Err(error) = conn.execute_batch("SAVEPOINT request") {
        fail(write, error.into());
        return;
    }
    match write {
        Request::CreateBucket(row, reply) => settle(conn, reply, create_bucket(conn, &row), batch),
        Request::DeleteBucket(name, reply) => {
            settle(conn, reply, delete_bucket(conn, &name), batch)
        }
        Request::PutObject(row, cond, reply) => {
            let result = put_object(conn, &row, &cond).map(|ids| ((), ids));
            settle_releasing(conn, reply, result, batch)
        }
        Request::DeleteObject(bucket, key, if_match, reply) => {
            let result = delete_object(conn, &bucket, &key, if_match.as_deref());
            settle_releasing(conn, reply, result.map(|ids| ((), ids)), batch)
        }
        Request::DeleteObjects(bucket, keys, reply) => {
            let result = delete_objects(conn, &bucket, &keys).map(|outcomes| {
                let mut all = Vec::new();
                let each = outcomes
                    .into_iter()
                    .map(|outcome| outcome.map(|ids| all.extend(ids)))
                    .collect();
                (each, all)
            });
            settle_releasing(conn, reply, result, batch)
        }
        Request::PutCredential(row, reply) => {
            settle(conn, reply, put_credential(conn, &row), batch)
        }
        Request::CreateUpload(row, reply) => {
            settle(conn, reply, multipart::create_upload(conn, &row), batch)
        }
        Request::SetBucketAcl(name, acl, reply) => {
            settle(conn, reply, set_bucket_acl(conn, &name, &acl), batch)
        }
        Request::SetObjectAcl(bucket, key, acl, reply) => settle(
            conn,
            reply,
            set_object_acl(conn, &bucket, &key, &acl),
            batch,
        ),
        Request::PutPart(part, reply) => {
            let result = multipart::put_part(conn, &part).map(|ids| ((), ids));
            settle_releasing(conn, reply, result, batch)
        }
        Request::CompleteUpload(c, reply) => {
            settle_releasing(conn, reply, multipart::complete_upload(conn, &c), batch)
        }
        Request::AbortUpload(id, reply) => {
            let result = multipart::abort_upload(conn, &id).map(|ids| ((), ids));
            settle_releasing(conn, reply, result, batch)
        }
        Request::ReapUploads(before, reply) => {
            settle_releasing(conn, reply, multipart::reap_uploads(conn, before), batch)
        }
        Request::ForgetReclaimed(ids, reply) => {
            settle(conn, reply, reclaim::forget(conn, &ids), batch)
        }
        read => {
            let _ = conn.execute_batch("RELEASE request");
            let _ = serve_read(conn, read);
        }
    }
}

fn fail(write: Request, error: MetaError) {
    match write {
        Request::CreateBucket(_, reply) => send(reply, Err(error)),
        Request::DeleteBucket(_, reply) => send(reply, Err(error)),
        Request::PutObject(_, _, reply) => send(reply, Err(error)),
        Request::DeleteObject(_, _, _, reply) => send(reply, Err(error)),
        Request::DeleteObjects(_, _, reply) => send(reply, Err(error)),
        Request::PutCredential(_, reply) => send(reply, Err(error)),
        Request::GetBucket(_, reply) => send(reply, Err(error)),
        Request::ListBuckets(reply) => send(reply, Err(error)),
        Request::GetObject(_, _, reply) => send(reply, Err(error)),
        Request::GetBucketObject(_, _, reply) => send(reply, Err(error)),
        Request::ListObjects(_, reply) => send(reply, Err(error)),
        Request::GetCredential(_, reply) => send(reply, Err(error)),
        Request::Ping(reply) => send(reply, Err(error)),
        Request::Counts(reply) => send(reply, Err(error)),
        Request::CreateUpload(_, reply) => send(reply, Err(error)),
        Request::SetBucketAcl(_, _, reply) => send(reply, Err(error)),
        Request::SetObjectAcl(_, _, _, reply) => send(reply, Err(error)),
        Request::GetUpload(_, reply) => send(reply, Err(error)),
        Request::PutPart(_, reply) => send(reply, Err(error)),
        Request::ListParts(_, _, _, reply) => send(reply, Err(error)),
        Request::CompleteUpload(_, reply) => send(reply, Err(error)),
        Request::AbortUpload(_, reply) => send(reply, Err(error)),
        Request::ReapUploads(_, reply) => send(reply, Err(error)),
        Request::ListUploads(_, reply) => send(reply, Err(error)),
        Request::Reclaimable(reply) => send(reply, Err(error)),
        Request::ForgetReclaimed(_, reply) => send(reply, Err(error)),
    }
}

fn bucket_from_row(row: &Row<'_>) -> rusqlite::Result<BucketRow> {
    Ok(BucketRow {
        name: row.get(0)?,
        owner_id: row.get(1)?,
        region: row.get(2)?,
        acl: row.get(3)?,
        created_ms: row.get(4)?,
    })
}

pub(crate) fn get_bucket(conn: &Connection, name: &str) -> Result<Option<BucketRow>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, owner_id, region, acl, created_ms FROM buckets WHERE name = ?1",
    )?;
    Ok(stmt.query_row([name], bucket_from_row).optional()?)
}

fn list_buckets(conn: &Connection) -> Result<Vec<BucketRow>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, owner_id, region, acl, created_ms FROM buckets ORDER BY name",
    )?;
    let rows = stmt.query_map([], bucket_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn create_bucket(conn: &Connection, row: &BucketRow) -> Result<CreateBucketOutcome, MetaError> {
    if let Some(existing) = get_bucket(conn, &row.name)? {
        return Ok(if existing.owner_id == row.owner_id {
            CreateBucketOutcome::AlreadyOwnedByYou
        } else {
            CreateBucketOutcome::AlreadyExists
        });
    }
    conn.prepare_cached(
        "INSERT INTO buckets (name, owner_id, region, acl, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        row.name,
        row.owner_id,
        row.region,
        row.acl,
        row.created_ms
    ])?;
    Ok(CreateBucketOutcome::Created)
}

fn delete_bucket(conn: &Connection, name: &str) -> Result<(), MetaError> {
    if get_bucket(conn, name)?.is_none() {
        return Err(MetaError::NoSuchBucket);
    }
    let busy: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM objects WHERE bucket = ?1)
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

/// The objects table's columns in `object_from_row` order; a macro so statements are
/// built by `concat!` at compile time, not formatted for every query.
macro_rules! object_columns {
    () => {
        "bucket, key, size, etag, content_type, content_encoding, content_language, \
         content_disposition, cache_control, expires, user_meta, storage_class, acl, \
         last_modified_ms, data_id, checksum_algorithm, checksum_value, owner_id, parts_count, \
         upload_id, checksum_type"
    };
}

fn object_from_row(row: &Row<'_>) -> rusqlite::Result<ObjectRow> {
    let user_meta: String = row.get(10)?;
    Ok(ObjectRow {
        bucket: row.get(0)?,
        key: row.get(1)?,
        size: row.get::<_, i64>(2)? as u64,
        etag: row.get(3)?,
        content_type: row.get(4)?,
        content_encoding: row.get(5)?,
        content_language: row.get(6)?,
        content_disposition: row.get(7)?,
        cache_control: row.get(8)?,
        expires: row.get(9)?,
        user_meta: decode_pairs(&user_meta).unwrap_or_default(),
        storage_class: row.get(11)?,
        acl: row.get(12)?,
        last_modified_ms: row.get(13)?,
        data_id: row.get(14)?,
        checksum_algorithm: row.get(15)?,
        checksum_value: row.get(16)?,
        owner_id: row.get(17)?,
        parts_count: row.get::<_, Option<i64>>(18)?.map(|n| n as u32),
        upload_id: row.get(19)?,
        checksum_type: row.get(20)?,
        parts: Vec::new(),
    })
}

/// Both reads run on this thread, which also runs every write, so nothing can
/// change between them.
fn get_bucket_object(
    conn: &Connection,
    bucket: &str,
    key: &str,
) -> Result<BucketObject, MetaError> {
    let Some(bucket_row) = get_bucket(conn, bucket)? else {
        return Ok((None, None));
    };
    Ok((Some(bucket_row), get_object(conn, bucket, key)?))
}

fn get_object(conn: &Connection, bucket: &str, key: &str) -> Result<Option<ObjectRow>, MetaError> {
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

fn object_parts(conn: &Connection, bucket: &str, key: &str) -> Result<Vec<PartRef>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT part_number, size, etag, data_id, checksum_value FROM object_parts
         WHERE bucket = ?1 AND key = ?2 ORDER BY part_number",
    )?;
    let parts = stmt.query_map([bucket, key], |r| {
        Ok(PartRef {
            part_number: r.get::<_, i64>(0)? as u32,
            size: r.get::<_, i64>(1)? as u64,
            etag: r.get(2)?,
            data_id: r.get(3)?,
            checksum_value: r.get(4)?,
        })
    })?;
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

/// Inserts or replaces an object (and its part rows); returns the data ids the
/// replaced object used, for the caller to delete after the commit.
pub(crate) fn put_object(
    conn: &Connection,
    row: &ObjectRow,
    cond: &PutCondition,
) -> Result<Vec<String>, MetaError> {
    if get_bucket(conn, &row.bucket)?.is_none() {
        return Err(MetaError::NoSuchBucket);
    }
    check_condition(current_etag(conn, &row.bucket, &row.key)?.as_deref(), cond)?;
    let released = release_object(conn, &row.bucket, &row.key)?;
    let sql = concat!(
        "INSERT INTO objects (",
        object_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21)"
    );
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
    ])?;
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
    Ok(released
        .into_iter()
        .filter(|old| *old != row.data_id)
        .collect())
}

fn delete_object(
    conn: &Connection,
    bucket: &str,
    key: &str,
    if_match: Option<&str>,
) -> Result<Vec<String>, MetaError> {
    if get_bucket(conn, bucket)?.is_none() {
        return Err(MetaError::NoSuchBucket);
    }
    if let Some(etag) = if_match {
        check_condition(
            current_etag(conn, bucket, key)?.as_deref(),
            &PutCondition::IfMatch(etag.to_string()),
        )?;
    }
    release_object(conn, bucket, key)
}

/// Deletes up to a thousand keys in one step; each key's outcome separately.
fn delete_objects(
    conn: &Connection,
    bucket: &str,
    keys: &[String],
) -> Result<Vec<Result<Vec<String>, MetaError>>, MetaError> {
    if get_bucket(conn, bucket)?.is_none() {
        return Err(MetaError::NoSuchBucket);
    }
    Ok(keys
        .iter()
        .map(|key| release_object(conn, bucket, key))
        .collect())
}

fn set_bucket_acl(conn: &Connection, name: &str, acl: &str) -> Result<(), MetaError> {
    let changed = conn
        .prepare_cached("UPDATE buckets SET acl = ?2 WHERE name = ?1")?
        .execute([name, acl])?;
    if changed == 0 {
        return Err(MetaError::NoSuchBucket);
    }
    Ok(())
}

fn set_object_acl(conn: &Connection, bucket: &str, key: &str, acl: &str) -> Result<(), MetaError> {
    let changed = conn
        .prepare_cached("UPDATE objects SET acl = ?3 WHERE bucket = ?1 AND key = ?2")?
        .execute([bucket, key, acl])?;
    if changed == 0 {
        return Err(MetaError::NoSuchKey);
    }
    Ok(())
}

pub(crate) fn credential_from_row(r: &Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok(CredentialRow {
        access_key: r.get(0)?,
        secret_key: r.get(1)?,
        owner_id: r.get(2)?,
        display_name: r.get(3)?,
        created_ms: r.get(4)?,
    })
}

fn get_credential(conn: &Connection, access_key: &str) -> Result<Option<CredentialRow>, MetaError> {
    let mut stmt = conn.prepare_cached(
        "SELECT access_key, secret_key, owner_id, display_name, created_ms FROM credentials WHERE access_key = ?1",
    )?;
    Ok(stmt
        .query_row([access_key], credential_from_row)
        .optional()?)
}

pub(crate) fn put_credential(conn: &Connection, row: &CredentialRow) -> Result<(), MetaError> {
    conn.prepare_cached(
        "INSERT INTO credentials (access_key, secret_key, owner_id, display_name, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (access_key) DO UPDATE SET secret_key = excluded.secret_key,
             owner_id = excluded.owner_id, display_name = excluded.display_name",
    )?
    .execute(params![
        row.access_key,
        row.secret_key,
        row.owner_id,
        row.display_name,
        row.created_ms
    ])?;
    Ok(())
}

/// A read that proves the database answers (for /health).
fn ping(conn: &Connection) -> Result<(), MetaError> {
    conn.prepare_cached("SELECT COUNT(*) FROM schema_version")?
        .query_row([], |r| r.get::<_, i64>(0))?;
    Ok(())
}

/// The row counts the schema's triggers keep (see migration 4).
fn counts(conn: &Connection) -> Result<MetaCounts, MetaError> {
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

/// The smallest string greater than every string that starts with `prefix`:
/// the last character moved to the next code point. UTF-8 keeps code point
/// order in byte order, which is the order SQLite compares TEXT in.
fn prefix_successor(prefix: &str) -> Option<String> {
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
fn list_objects(conn: &Connection, query: &ListQuery) -> Result<ListPage, MetaError> {
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
