//! The reader threads: each owns a read-only connection and serves reads, every one
//! in its own read transaction, so a read sees one consistent committed state and
//! never waits behind the writer's group commit (WAL lets readers run beside it).

use rusqlite::Connection;

use crate::meta::messages::{send, Read};
use crate::meta::{buckets, counts, credentials, objects, reclaim, uploads};

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
            send(reply, objects::get_bucket_object(conn, &bucket, &key))
        }
        Read::ListObjects(query, reply) => send(reply, objects::list_objects(conn, &query)),
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
