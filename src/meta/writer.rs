//! The writer thread, the single owner of the read-write connection: it blocks for
//! a write, takes whatever else is queued (up to a batch), runs every write in one
//! transaction with a savepoint each (so one failed precondition rolls back only its
//! own request), commits once, and only then replies: a write is never acknowledged
//! before its commit is durable, and N concurrent writes cost one fsync.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rusqlite::Connection;

use crate::limits;
use crate::meta::blobs::BlobTail;
use crate::meta::generations::Generations;
use crate::meta::messages::{send, Reply, Write};
use crate::meta::{
    blobs, buckets, credentials, objects, reclaim, uploads, versions, MetaError, ObjectRow,
    PutCondition, Released,
};

/// What the writer has done, for tests and the curious.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Writes those transactions carried (failed writes included).
    pub writes: AtomicU64,
}

/// A reply held back until the batch's commit: called with the commit's outcome.
type Deferred = Box<dyn FnOnce(Result<(), MetaError>)>;

/// What one transaction's writes leave to do once it commits.
#[derive(Default)]
struct Batch {
    deferred: Vec<Deferred>,
    /// Data ids the writes released, handed to the reclaimer after the commit.
    released: Vec<String>,
    /// Set when a failed write took the whole transaction with it: on IOERR, FULL,
    /// BUSY or NOMEM inside a statement SQLite may roll back the transaction, not only
    /// the statement. The writes before it are then undone, and the ones after it must
    /// not run: outside a transaction each would commit on its own, and be answered
    /// with the batch's failure all the same.
    lost: Option<MetaError>,
    /// Whether each write runs in a savepoint of its own, so that a failed one rolls
    /// back alone. A batch of one write needs none: its failure rolls back the whole
    /// transaction, which holds nothing else (and a savepoint costs a statement at each
    /// end plus a copy of every page the write changes, a fifth of a lone small PUT).
    savepoints: bool,
    /// Whether the write running now has a savepoint: `savepoints`, but for a PUT.
    in_savepoint: bool,
}

/// Group-commits writes until every sender is gone.
pub(crate) fn run(
    conn: Connection,
    rx: flume::Receiver<Write>,
    released: flume::Sender<Released>,
    stats: Arc<WriterStats>,
    generations: Arc<Generations>,
) {
    let mut writes = Vec::with_capacity(limits::META_BATCH_MAX);
    while let Ok(first) = rx.recv() {
        writes.push(first);
        while writes.len() < limits::META_BATCH_MAX {
            match rx.try_recv() {
                Ok(write) => writes.push(write),
                Err(_) => break,
            }
        }
        stats
            .writes
            .fetch_add(writes.len() as u64, Ordering::SeqCst);
        // A batch with no request's write in it is the reclaimer's (or the sweep's): its
        // steps are counted on the fault plan's lane for it.
        #[cfg(feature = "fault-injection")]
        crate::fault::on_lane(batch_lane(&writes), || {
            commit(&conn, writes.drain(..), &released, &stats, &generations)
        });
        #[cfg(not(feature = "fault-injection"))]
        commit(&conn, writes.drain(..), &released, &stats, &generations);
    }
    log::debug!("metadata writer: all clients gone, exiting");
}

/// Runs one batch in one transaction.
fn commit(
    conn: &Connection,
    writes: impl Iterator<Item = Write>,
    released: &flume::Sender<Released>,
    stats: &WriterStats,
    generations: &Generations,
) {
    let writes: Vec<Write> = writes.collect();
    let sync = Durability::for_batch(&writes);
    let touched = Touched::of(&writes, generations);
    if sync != Durability::Full {
        let _ = fixed(conn, sync.pragma());
    }
    let mut batch = Batch {
        savepoints: writes.len() > 1,
        ..Batch::default()
    };
    batch.deferred.reserve(writes.len());
    #[cfg(feature = "fault-injection")]
    let begun = crate::fault::sqlite(crate::fault::Step::Begin)
        .and_then(|()| fixed(conn, "BEGIN IMMEDIATE"));
    #[cfg(not(feature = "fault-injection"))]
    let begun = fixed(conn, "BEGIN IMMEDIATE");
    if let Err(error) = begun {
        if sync != Durability::Full {
            let _ = fixed(conn, Durability::Full.pragma());
        }
        let error = MetaError::from(error);
        for write in writes {
            write.fail(error.clone());
        }
        return;
    }
    for write in writes {
        match &batch.lost {
            Some(error) => write.fail(error.clone()),
            None => run_write(conn, write, &mut batch),
        }
    }
    let outcome = match batch.lost.clone() {
        Some(error) => Err(error),
        None => {
            #[cfg(feature = "fault-injection")]
            let committed = crate::fault::commit(conn);
            #[cfg(not(feature = "fault-injection"))]
            let committed = fixed(conn, "COMMIT");
            // Either outcome of a batch that only forgets reclaim rows or writes unsealed
            // chunks is harmless (rows left behind make startup remove gone files again;
            // chunks that come back unsealed are orphans the sweep removes): no need to
            // end for it.
            if let Err(error) = &committed {
                if sync == Durability::Full && outcome_unknown(error) {
                    abort_unanswered(error);
                }
            }
            committed.map_err(MetaError::from)
        }
    };
    if sync != Durability::Full {
        let _ = fixed(conn, Durability::Full.pragma());
    }
    if outcome.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    // Before the release below is timed and before any reply (see `generations`); on
    // every outcome, since an increment too many only costs a cached row.
    touched.apply(generations);
    if outcome.is_ok() && !batch.released.is_empty() {
        // Taken after the commit: a read begun later sees the new rows, so only reads
        // begun before this instant can hold one of these ids.
        let batch_released = Released {
            committed: std::time::Instant::now(),
            data_ids: std::mem::take(&mut batch.released),
        };
        // Without a reclaimer (it stopped), the rows wait for the next startup.
        let _ = released.send(batch_released);
    }
    if outcome.is_ok() {
        // A crash point: committed, nobody answered yet.
        #[cfg(feature = "fault-injection")]
        crate::fault::pass(crate::fault::Step::Committed);
        // Counted before anyone hears of the commit.
        stats.commits.fetch_add(1, Ordering::SeqCst);
    }
    for reply in batch.deferred {
        reply(outcome.clone());
    }
}

/// The rows a batch's writes may change, as commit-generation counters to increment.
#[derive(Default)]
struct Touched {
    slots: Vec<usize>,
    buckets: bool,
}

impl Touched {
    fn of(writes: &[Write], generations: &Generations) -> Touched {
        let mut touched = Touched::default();
        let mut key = |bucket: &str, key: &str| touched.slots.push(generations.slot(bucket, key));
        let mut buckets = false;
        for write in writes {
            match write {
                Write::CreateBucket(..)
                | Write::DeleteBucket(..)
                | Write::SetBucketAcl(..)
                | Write::SetBucketVersioning(..)
                | Write::SetLockConfig(..)
                | Write::SetBucketCors(..) => buckets = true,
                Write::PutObject(row, ..) => key(&row.bucket, &row.key),
                Write::DeleteObject(bucket, spec, _) => key(bucket, &spec.key),
                Write::SetObjectAcl(bucket, name, ..) | Write::SetObjectLock(bucket, name, ..) => {
                    key(bucket, name)
                }
                Write::DeleteObjects(bucket, specs, _) => {
                    specs.iter().for_each(|spec| key(bucket, &spec.key))
                }
                Write::CompleteUpload(request, _) => {
                    key(&request.template.bucket, &request.template.key)
                }
                Write::PutCredential(..)
                | Write::CreateUpload(..)
                | Write::PutPart(..)
                | Write::AbortUpload(..)
                | Write::ReapUploads(..)
                | Write::ForgetReclaimed(..)
                | Write::BlobChunk(..)
                | Write::BlobSeal(..)
                | Write::BlobCopy(..)
                | Write::BlobRemove(..) => {}
            }
        }
        touched.buckets = buckets;
        touched
    }

    fn apply(&self, generations: &Generations) {
        for slot in &self.slots {
            generations.touch_slot(*slot);
        }
        if self.buckets {
            generations.touch_buckets();
        }
    }
}

/// Runs one of the writer's fixed statements, prepared once (parsing them anew for
/// every write was a fifth of a small PUT's instructions).
fn fixed(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute().map(drop)
}

/// How much of the disk sync a batch's commit needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Every commit that acknowledges something is durable before its reply.
    Full,
    /// Chunks of objects still being written (with, perhaps, reclaim forgets) need no
    /// sync of their own: nothing is acknowledged until the object's seal commits with
    /// a full sync, and that sync of the WAL covers every frame before it. Nor do the
    /// removals of released objects' bytes: one a crash loses comes back with its
    /// reclaim row (the WAL keeps a prefix of its commits, and the forget of the row
    /// comes after the removal), so startup removes it again. In WAL mode
    /// `NORMAL` still syncs the WAL before a checkpoint copies it into the database and
    /// the database before the WAL is reused, so an unsynced chunk cannot be lost to
    /// a checkpoint either (which `OFF` would allow).
    Deferred,
    /// Forgetting reclaim rows needs no durability at all: a forget a crash loses only
    /// makes startup remove an already removed file again.
    Off,
}

impl Durability {
    fn for_batch(writes: &[Write]) -> Durability {
        let forget = |w: &Write| matches!(w, Write::ForgetReclaimed(..));
        let deferrable = |w: &Write| matches!(w, Write::BlobChunk(..) | Write::BlobRemove(..));
        if writes.iter().all(forget) {
            Durability::Off
        } else if writes.iter().all(|w| forget(w) || deferrable(w)) {
            Durability::Deferred
        } else {
            Durability::Full
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "PRAGMA synchronous = FULL",
            Durability::Deferred => "PRAGMA synchronous = NORMAL",
            Durability::Off => "PRAGMA synchronous = OFF",
        }
    }
}

/// Whether a failed COMMIT may have reached the disk all the same. An I/O error may
/// have: in WAL mode the commit's frames are written before the WAL is fsynced, so a
/// failed fsync leaves a whole transaction in the WAL file, rolled back for this
/// process but replayed by the WAL recovery of the next start. BUSY and FULL fail
/// before a commit frame is complete, so nothing of the batch can come back.
fn outcome_unknown(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(failure, _)
        if failure.code == rusqlite::ErrorCode::SystemIoFailure)
}

/// Ends the process, answering nobody, after a commit whose outcome is unknown. An
/// error answer would be false if a restart brings the batch back (and the handler,
/// taking the error at its word, would already have removed the new data file, so
/// the row would name a missing file); a success answer would be false if it does
/// not. Crash-only: restart recovery (SQLite's WAL replay, then the orphan sweep)
/// settles one outcome, and the unanswered clients retry.
fn abort_unanswered(error: &rusqlite::Error) -> ! {
    log::error!(
        "metadata commit failed with an I/O error ({error}): its outcome is unknown, so \
         the process aborts unanswered and restart recovery settles it"
    );
    crate::ops::logging::flush(std::time::Duration::from_secs(1));
    std::process::abort()
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
            if batch.in_savepoint {
                let _ = fixed(conn, "RELEASE request");
            }
            batch.released.extend(ids);
            batch
                .deferred
                .push(Box::new(move |commit| send(reply, commit.map(|()| value))));
        }
        Err(error) => {
            undo_write(conn, &error, batch);
            send(reply, Err(error));
        }
    }
}

/// Rolls back a failed write's savepoint, and notes when the failure took the whole
/// transaction with it (SQLite is then in autocommit mode). A write without a
/// savepoint (a lone one, or a PUT) takes its transaction with it: rolled back, and
/// counted as lost.
fn undo_write(conn: &Connection, error: &MetaError, batch: &mut Batch) {
    if !batch.in_savepoint {
        let _ = conn.execute_batch("ROLLBACK");
        batch.lost.get_or_insert_with(|| error.clone());
        return;
    }
    let _ = conn.execute_batch("ROLLBACK TO request; RELEASE request");
    if conn.is_autocommit() && batch.lost.is_none() {
        batch.lost = Some(error.clone());
    }
}

/// The fault plan's lane a write's steps count on.
#[cfg(feature = "fault-injection")]
fn lane_of(write: &Write) -> crate::fault::Lane {
    match write {
        Write::ForgetReclaimed(..) => crate::fault::Lane::Background,
        Write::BlobRemove(_, origin, _) => origin.lane,
        _ => crate::fault::Lane::Request,
    }
}

/// The lane of a batch: a request's if it holds one, else the reclaimer's if it holds
/// one of its writes, else none.
#[cfg(feature = "fault-injection")]
fn batch_lane(writes: &[Write]) -> crate::fault::Lane {
    use crate::fault::Lane;
    let has = |lane: Lane| writes.iter().any(|w| lane_of(w) == lane);
    if has(Lane::Request) {
        Lane::Request
    } else if has(Lane::Background) {
        Lane::Background
    } else {
        Lane::Exempt
    }
}

/// Runs one write inside its savepoint (when the batch has more than one); a PUT of
/// an object needs none (`put_object`).
fn run_write(conn: &Connection, write: Write, batch: &mut Batch) {
    batch.in_savepoint = batch.savepoints && !matches!(write, Write::PutObject(..));
    if batch.in_savepoint {
        if let Err(error) = fixed(conn, "SAVEPOINT request") {
            write.fail(error.into());
            return;
        }
    }
    // The reclaimer's writes count on its lane even in a request's batch, so that
    // joining one does not move the request lane's count.
    #[cfg(feature = "fault-injection")]
    let injected = crate::fault::on_lane(lane_of(&write), || crate::fault::statement(conn));
    #[cfg(feature = "fault-injection")]
    if let Err(error) = injected {
        let error = MetaError::from(error);
        undo_write(conn, &error, batch);
        write.fail(error);
        return;
    }
    let no_release = |ids: Vec<String>| ((), ids);
    match write {
        Write::CreateBucket(row, reply) => {
            settle(conn, reply, buckets::create_bucket(conn, &row), batch)
        }
        Write::DeleteBucket(name, reply) => {
            settle(conn, reply, buckets::delete_bucket(conn, &name), batch)
        }
        Write::PutObject(row, cond, tail, reply) => {
            put_object(conn, &row, &cond, tail.as_ref(), reply, batch)
        }
        Write::DeleteObject(bucket, spec, reply) => {
            let result = objects::delete_object(conn, &bucket, &spec);
            settle_releasing(conn, reply, result, batch)
        }
        Write::DeleteObjects(bucket, specs, reply) => {
            let result = objects::delete_objects(conn, &bucket, &specs).map(|outcomes| {
                let mut all = Vec::new();
                let each = outcomes
                    .into_iter()
                    .map(|outcome| {
                        outcome.map(|(deleted, ids)| {
                            all.extend(ids);
                            deleted
                        })
                    })
                    .collect();
                (each, all)
            });
            settle_releasing(conn, reply, result, batch)
        }
        Write::PutCredential(row, reply) => {
            settle(conn, reply, credentials::put_credential(conn, &row), batch)
        }
        Write::CreateUpload(row, reply) => {
            settle(conn, reply, uploads::create_upload(conn, &row), batch)
        }
        Write::SetBucketAcl(name, acl, reply) => settle(
            conn,
            reply,
            buckets::set_bucket_acl(conn, &name, &acl),
            batch,
        ),
        Write::SetObjectAcl(bucket, key, version, acl, reply) => {
            let result = match version {
                None => objects::set_object_acl(conn, &bucket, &key, &acl),
                Some(sel) => versions::set_version_acl(conn, &bucket, &key, sel, &acl),
            };
            settle(conn, reply, result, batch)
        }
        Write::SetBucketVersioning(name, versioning, reply) => {
            let result = buckets::set_versioning(conn, &name, versioning);
            settle(conn, reply, result, batch)
        }
        Write::SetBucketCors(name, cors, reply) => {
            let result = buckets::set_cors(conn, &name, cors.as_deref());
            settle(conn, reply, result, batch)
        }
        Write::SetLockConfig(name, config, reply) => {
            let result = buckets::set_lock_config(conn, &name, &config);
            settle(conn, reply, result, batch)
        }
        Write::SetObjectLock(bucket, key, version, change, reply) => {
            let result = versions::set_lock(conn, &bucket, &key, version, &change);
            settle(conn, reply, result, batch)
        }
        Write::PutPart(part, tail, reply) => {
            let result = seal_tail(conn, tail.as_ref())
                .and_then(|()| uploads::put_part(conn, &part))
                .map(no_release);
            settle_releasing(conn, reply, result, batch)
        }
        Write::CompleteUpload(request, reply) => {
            let result = uploads::complete_upload(conn, &request);
            settle_releasing(conn, reply, result, batch)
        }
        Write::AbortUpload(id, reply) => {
            let result = uploads::abort_upload(conn, &id).map(no_release);
            settle_releasing(conn, reply, result, batch)
        }
        Write::ReapUploads(before, reply) => {
            settle_releasing(conn, reply, uploads::reap_uploads(conn, before), batch)
        }
        Write::ForgetReclaimed(ids, reply) => {
            settle(conn, reply, reclaim::forget(conn, &ids), batch)
        }
        Write::BlobChunk(data_id, seq, bytes, reply) => {
            let result = blobs::write_chunk(conn, &data_id, seq, &bytes);
            settle(conn, reply, result, batch)
        }
        Write::BlobSeal(tail, reply) => settle(conn, reply, blobs::seal(conn, &tail), batch),
        Write::BlobCopy(source, target, reply) => {
            settle(conn, reply, blobs::copy(conn, &source, &target), batch)
        }
        Write::BlobRemove(data_id, _, reply) => {
            settle(conn, reply, blobs::remove(conn, &data_id), batch)
        }
    }
}

/// A PUT of an object, without the savepoint of other writes (the most frequent write
/// saves its two statements and the copy of every page it changes): everything that
/// can refuse it is checked before it changes anything, so a refusal has nothing to
/// undo. An error after its first change is SQLite's own (I/O, a full disk): it takes
/// the whole batch, as a lone write's failure does (`undo_write`).
fn put_object(
    conn: &Connection,
    row: &ObjectRow,
    cond: &PutCondition,
    tail: Option<&BlobTail>,
    reply: Reply<Option<String>>,
    batch: &mut Batch,
) {
    let plan = match objects::check_put(conn, row, cond) {
        Ok(plan) => plan,
        Err(error) => {
            // Nothing to undo, unless SQLite rolled the transaction back on its own.
            if conn.is_autocommit() && batch.lost.is_none() {
                batch.lost = Some(error.clone());
            }
            return send(reply, Err(error));
        }
    };
    let result = seal_tail(conn, tail).and_then(|()| objects::apply_put(conn, row, plan));
    settle_releasing(conn, reply, result, batch)
}

/// Seals the object whose last bytes came with its row, in the row's transaction: the
/// row and the bytes it names commit together or not at all.
fn seal_tail(conn: &Connection, tail: Option<&BlobTail>) -> Result<(), MetaError> {
    tail.map_or(Ok(()), |tail| blobs::seal(conn, tail))
}
