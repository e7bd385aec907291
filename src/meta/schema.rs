//! The schema and its migrations. `schema_version` records the version applied;
//! each migration runs once, in a transaction, on first start after an upgrade.

use rusqlite::Connection;

use crate::limits;
use crate::meta::MetaError;

pub(super) const MIGRATIONS: &[&str] = &[
    // Version 1: the tables of the S3 scope. Keys are TEXT with the default BINARY
    // collation, so ORDER BY key is UTF-8 byte order, which is S3's list order.
    "CREATE TABLE buckets (
        name TEXT PRIMARY KEY,
        owner_id TEXT NOT NULL,
        region TEXT NOT NULL,
        acl TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE objects (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        content_type TEXT NOT NULL,
        content_encoding TEXT,
        content_language TEXT,
        content_disposition TEXT,
        cache_control TEXT,
        expires TEXT,
        user_meta TEXT NOT NULL,
        storage_class TEXT NOT NULL,
        acl TEXT NOT NULL,
        last_modified_ms INTEGER NOT NULL,
        data_id TEXT NOT NULL,
        checksum_algorithm TEXT,
        checksum_value TEXT,
        owner_id TEXT NOT NULL,
        parts_count INTEGER,
        PRIMARY KEY (bucket, key)
    ) WITHOUT ROWID;
    CREATE TABLE multipart_uploads (
        upload_id TEXT PRIMARY KEY,
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        initiated_ms INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        content_encoding TEXT,
        content_language TEXT,
        content_disposition TEXT,
        cache_control TEXT,
        expires TEXT,
        user_meta TEXT NOT NULL,
        acl TEXT NOT NULL,
        storage_class TEXT NOT NULL,
        checksum_algorithm TEXT
    );
    CREATE INDEX multipart_uploads_by_key ON multipart_uploads (bucket, key, initiated_ms);
    CREATE TABLE multipart_parts (
        upload_id TEXT NOT NULL,
        part_number INTEGER NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        data_id TEXT NOT NULL,
        last_modified_ms INTEGER NOT NULL,
        checksum_value TEXT,
        PRIMARY KEY (upload_id, part_number)
    ) WITHOUT ROWID;
    CREATE TABLE credentials (
        access_key TEXT PRIMARY KEY,
        secret_key TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        display_name TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );",
    // Version 2: multipart objects are their ordered part files, by reference.
    "ALTER TABLE objects ADD COLUMN upload_id TEXT;
    CREATE INDEX objects_by_upload ON objects (upload_id) WHERE upload_id IS NOT NULL;
    CREATE TABLE object_parts (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        part_number INTEGER NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        data_id TEXT NOT NULL,
        PRIMARY KEY (bucket, key, part_number)
    ) WITHOUT ROWID;",
    // Version 3: multipart checksums (the type of an object's checksum, each part's value).
    "ALTER TABLE objects ADD COLUMN checksum_type TEXT;
    ALTER TABLE multipart_uploads ADD COLUMN checksum_type TEXT;
    ALTER TABLE object_parts ADD COLUMN checksum_value TEXT;",
    // Version 4: row counts kept by triggers, so /metrics reads three rows instead of
    // scanning the objects table (80 ms at a million objects, holding up every write).
    "CREATE TABLE row_counts (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO row_counts VALUES ('buckets', (SELECT COUNT(*) FROM buckets));
    INSERT INTO row_counts VALUES ('objects', (SELECT COUNT(*) FROM objects));
    INSERT INTO row_counts VALUES ('uploads', (SELECT COUNT(*) FROM multipart_uploads));
    CREATE TRIGGER buckets_added AFTER INSERT ON buckets
        BEGIN UPDATE row_counts SET value = value + 1 WHERE name = 'buckets'; END;
    CREATE TRIGGER buckets_removed AFTER DELETE ON buckets
        BEGIN UPDATE row_counts SET value = value - 1 WHERE name = 'buckets'; END;
    CREATE TRIGGER objects_added AFTER INSERT ON objects
        BEGIN UPDATE row_counts SET value = value + 1 WHERE name = 'objects'; END;
    CREATE TRIGGER objects_removed AFTER DELETE ON objects
        BEGIN UPDATE row_counts SET value = value - 1 WHERE name = 'objects'; END;
    CREATE TRIGGER uploads_added AFTER INSERT ON multipart_uploads
        BEGIN UPDATE row_counts SET value = value + 1 WHERE name = 'uploads'; END;
    CREATE TRIGGER uploads_removed AFTER DELETE ON multipart_uploads
        BEGIN UPDATE row_counts SET value = value - 1 WHERE name = 'uploads'; END;",
    // Version 5: data files released by a commit (replaced, deleted, aborted) wait here,
    // recorded in the same transaction, until no reader can still be about to open them.
    // The table stays small (files wait milliseconds), so it is counted directly.
    "CREATE TABLE reclaim (data_id TEXT PRIMARY KEY, released_ms INTEGER NOT NULL) WITHOUT ROWID;",
    // Version 6: the storage backend this database describes, claimed at first start,
    // so a database is never served against a backend that does not hold its bytes
    // (startup on the memory backend forgets rows whose bytes are gone). A database
    // that already holds objects was made by the only backend there was: local.
    "CREATE TABLE storage_identity (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    INSERT INTO storage_identity SELECT 'backend', 'local'
        WHERE EXISTS (SELECT 1 FROM objects) OR EXISTS (SELECT 1 FROM multipart_uploads);",
    // Version 7: object bytes of the sqlite backend (see `blobs`). Chunks keep their
    // rowid, which SQLite's incremental blob I/O reads them by; a seal is written only
    // once every chunk of its object is in.
    "CREATE TABLE blob_chunks (
        data_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        PRIMARY KEY (data_id, seq)
    );
    CREATE TABLE blobs (data_id TEXT PRIMARY KEY, size INTEGER NOT NULL) WITHOUT ROWID;",
    // Version 8: versioning. `objects` keeps each key's current version (so reads and
    // listings of current objects are as before) with its id (NULL: the `null`
    // version) and its place in the key's order; every other version, and every
    // delete marker, is a row of `object_versions`, newest first by key, with the
    // parts of multipart ones in `version_parts`. An object of an older database is
    // its key's `null` version, the oldest of any.
    "ALTER TABLE buckets ADD COLUMN versioning TEXT;
    ALTER TABLE objects ADD COLUMN version_id TEXT;
    ALTER TABLE objects ADD COLUMN version_seq INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE object_versions (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        content_type TEXT NOT NULL,
        content_encoding TEXT,
        content_language TEXT,
        content_disposition TEXT,
        cache_control TEXT,
        expires TEXT,
        user_meta TEXT NOT NULL,
        storage_class TEXT NOT NULL,
        acl TEXT NOT NULL,
        last_modified_ms INTEGER NOT NULL,
        data_id TEXT NOT NULL,
        checksum_algorithm TEXT,
        checksum_value TEXT,
        owner_id TEXT NOT NULL,
        parts_count INTEGER,
        upload_id TEXT,
        checksum_type TEXT,
        version_id TEXT,
        version_seq INTEGER NOT NULL,
        delete_marker INTEGER NOT NULL,
        PRIMARY KEY (bucket, key, version_seq DESC)
    ) WITHOUT ROWID;
    CREATE INDEX object_versions_null ON object_versions (bucket, key) WHERE version_id IS NULL;
    CREATE TABLE version_parts (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        version_seq INTEGER NOT NULL,
        part_number INTEGER NOT NULL,
        size INTEGER NOT NULL,
        etag TEXT NOT NULL,
        data_id TEXT NOT NULL,
        checksum_value TEXT,
        PRIMARY KEY (bucket, key, version_seq, part_number)
    ) WITHOUT ROWID;",
    // Version 9: object lock. A bucket's flag (on for good) and default retention; each
    // version's retention and legal hold (NULL: never set), and an upload's, for the
    // object its completion makes.
    "ALTER TABLE buckets ADD COLUMN object_lock INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE buckets ADD COLUMN lock_mode TEXT;
    ALTER TABLE buckets ADD COLUMN lock_days INTEGER;
    ALTER TABLE buckets ADD COLUMN lock_years INTEGER;
    ALTER TABLE objects ADD COLUMN retention_mode TEXT;
    ALTER TABLE objects ADD COLUMN retain_until_ms INTEGER;
    ALTER TABLE objects ADD COLUMN legal_hold INTEGER;
    ALTER TABLE object_versions ADD COLUMN retention_mode TEXT;
    ALTER TABLE object_versions ADD COLUMN retain_until_ms INTEGER;
    ALTER TABLE object_versions ADD COLUMN legal_hold INTEGER;
    ALTER TABLE multipart_uploads ADD COLUMN retention_mode TEXT;
    ALTER TABLE multipart_uploads ADD COLUMN retain_until_ms INTEGER;
    ALTER TABLE multipart_uploads ADD COLUMN legal_hold INTEGER;",
    // Version 10: a bucket's CORS rules (JSON text owned by the s3 layer).
    "ALTER TABLE buckets ADD COLUMN cors TEXT;",
];

/// Opens the database with the durability settings the daemon relies on.
pub(super) fn open(path: &std::path::Path) -> Result<Connection, MetaError> {
    let conn = Connection::open(path)?;
    // WAL lets readers proceed during a commit; synchronous=FULL makes every
    // commit durable before we answer (group commit keeps that cheap).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    conn.pragma_update(None, "cache_size", -limits::META_WRITER_CACHE_KIB)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(limits::META_STATEMENT_CACHE);
    migrate(&conn)?;
    Ok(conn)
}

/// Opens a read-only connection for a reader thread (after `open` has migrated).
pub(super) fn open_reader(path: &std::path::Path, cache_kib: i64) -> Result<Connection, MetaError> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.set_prepared_statement_cache_capacity(limits::META_STATEMENT_CACHE);
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), MetaError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = index as i64 + 1;
        if version <= current {
            continue;
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let applied = conn.execute_batch(sql).and_then(|()| {
            conn.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [version],
            )
        });
        match applied {
            Ok(_) => conn.execute_batch("COMMIT")?,
            Err(error) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(error.into());
            }
        }
        log::info!("metadata schema migrated to version {version}");
    }
    Ok(())
}
