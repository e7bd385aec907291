//! The reader threads: each owns a read-only connection and serves reads, every one
//! in its own read transaction, so a read sees one consistent committed state and
//! never waits behind the writer's group commit (WAL lets readers run beside it).

use rusqlite::Connection;

use crate::meta::messages::{send, BlobRead, Read};
use crate::meta::{blobs, buckets, counts, credentials, objects, reclaim, uploads, versions};

/// Serves reads until every sender is gone.
pub(crate) fn run(conn: Connection, rx: flume::Receiver<Read>) {
    while let Ok(read) = rx.recv() {
        if let Err(error) = conn.execute_batch("BEGIN") {
            read.fail(error.into());
            continue;
        }
        // The probes' reads (/health, /metrics) are never failed nor counted: the
        // fault simulation polls them.
        #[cfg(feature = "fault-injection")]
        if !matches!(read, Read::Ping(_) | Read::Counts(_)) {
            if let Err(error) = crate::fault::sqlite(crate::fault::Step::MetaRead) {
                read.fail(error.into());
                let _ = conn.execute_batch("COMMIT");
                continue;
            }
        }
        serve(&conn, read);
        // A read-only transaction has nothing to lose: ending it only lets the next
        // read see newer commits.
        let _ = conn.execute_batch("COMMIT");
    }
}

fn serve(conn: &Connection, read: Read) {
    match read {
        Read::GetBucket(name, reply) => send(reply, buckets::get_bucket(conn, &name)),
        Read::ListBuckets(reply) => send(reply, buckets::list_buckets(conn)),
        Read::GetObject(bucket, key, reply) => {
            send(reply, objects::get_object(conn, &bucket, &key))
        }
        Read::GetBucketObject(bucket, key, reply) => {
            send(reply, versions::get_bucket_object(conn, &bucket, &key))
        }
        Read::GetBucketObjectVersion(bucket, key, sel, reply) => send(
            reply,
            versions::get_bucket_object_version(conn, &bucket, &key, sel),
        ),
        Read::ListObjects(query, reply) => send(reply, objects::list_objects(conn, &query)),
        Read::ListVersions(query, reply) => send(reply, versions::list_versions(conn, &query)),
        Read::GetCredential(key, reply) => send(reply, credentials::get_credential(conn, &key)),
        Read::Ping(reply) => send(reply, counts::ping(conn)),
        Read::Counts(reply) => send(reply, counts::counts(conn)),
        Read::GetUpload(id, reply) => send(reply, uploads::get_upload(conn, &id)),
        Read::ListParts(id, after, max, reply) => {
            send(reply, uploads::list_parts(conn, &id, after, max))
        }
        Read::ListUploads(query, reply) => send(reply, uploads::list_uploads(conn, &query)),
        Read::Reclaimable(reply) => send(reply, reclaim::all(conn)),
    }
}

/// Serves reads of object bytes (the sqlite backend's) until every sender is gone.
/// Each is one or two statements on immutable rows (an object's chunks never change
/// once written, and are removed only after its last reader is done), so none needs a
/// transaction of its own.
pub(crate) fn run_blobs(conn: Connection, rx: flume::Receiver<BlobRead>) {
    while let Ok(read) = rx.recv() {
        match read {
            BlobRead::Open(data_id, inline_max, reply) => {
                send(reply, blobs::open(&conn, &data_id, inline_max))
            }
            BlobRead::Chunk(data_id, seq, within, mut buf, reply) => {
                let read = blobs::read_chunk(&conn, &data_id, seq, within, &mut buf);
                send(reply, read.map(|n| (n, buf)))
            }
            BlobRead::ListIds(reply) => send(reply, blobs::list_ids(&conn)),
        }
    }
}
