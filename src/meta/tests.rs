//! Tests of the metadata thread through its client, on a real SQLite file.

use std::path::PathBuf;

use super::*;

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bleepstore-meta-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("metadata.db")
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(future)
}

/// The metadata thread on a fresh database, with the channel its commits release files on.
fn start(path: &std::path::Path) -> Result<(MetaClient, MetaThread), MetaError> {
    let (tx, rx) = flume::unbounded();
    RELEASED.with(|cell| *cell.borrow_mut() = Some(rx));
    super::start(path, tx, false)
}

thread_local! {
    static RELEASED: std::cell::RefCell<Option<flume::Receiver<Released>>> =
        const { std::cell::RefCell::new(None) };
}

/// Data ids released by the commits since the last call, on this test's thread.
fn released() -> Vec<String> {
    RELEASED.with(|cell| {
        cell.borrow()
            .as_ref()
            .map(|rx| rx.drain().flat_map(|b| b.data_ids).collect())
            .unwrap_or_default()
    })
}

fn bucket(name: &str, owner: &str) -> BucketRow {
    BucketRow {
        name: name.into(),
        owner_id: owner.into(),
        region: "us-east-1".into(),
        acl: "{}".into(),
        created_ms: 1,
        versioning: Versioning::Unversioned,
        object_lock: None,
        cors: None,
    }
}

/// A DELETE of the current object of `key`, by owner `o`.
fn remove(key: &str) -> DeleteSpec {
    DeleteSpec {
        key: key.into(),
        version: None,
        if_match: None,
        owner_id: "o".into(),
        bypass_governance: false,
    }
}

fn object(bucket: &str, key: &str, data_id: &str) -> ObjectRow {
    ObjectRow {
        bucket: bucket.into(),
        key: key.into(),
        size: 3,
        etag: format!("etag-{data_id}"),
        content_type: "text/plain".into(),
        content_encoding: None,
        content_language: None,
        content_disposition: None,
        cache_control: None,
        expires: None,
        user_meta: vec![("quote".into(), "a \"b\" \\ c é\n".into())],
        storage_class: "STANDARD".into(),
        acl: "{}".into(),
        last_modified_ms: 5,
        data_id: data_id.into(),
        checksum_algorithm: None,
        checksum_value: None,
        checksum_type: None,
        owner_id: "o".into(),
        parts_count: None,
        upload_id: None,
        parts: Vec::new(),
        version_id: None,
        version_seq: 0,
        delete_marker: false,
        retention: None,
        legal_hold: None,
    }
}

#[test]
fn buckets_and_objects_round_trip() {
    let (meta, thread) = start(&temp_db("crud")).unwrap();
    block_on(async {
        assert_eq!(
            meta.create_bucket(bucket("b", "o")).await.unwrap(),
            CreateBucketOutcome::Created
        );
        assert_eq!(
            meta.create_bucket(bucket("b", "o")).await.unwrap(),
            CreateBucketOutcome::AlreadyOwnedByYou
        );
        assert_eq!(
            meta.create_bucket(bucket("b", "x")).await.unwrap(),
            CreateBucketOutcome::AlreadyExists
        );
        meta.put_object(object("b", "k", "d1"), PutCondition::None, None)
            .await
            .unwrap();
        assert!(released().is_empty());
        let got = meta.get_object("b", "k").await.unwrap().unwrap();
        assert!(got.version_seq > 0, "the writer places every version");
        assert_eq!(
            got,
            ObjectRow {
                version_seq: got.version_seq,
                ..object("b", "k", "d1")
            }
        );
        meta.put_object(object("b", "k", "d2"), PutCondition::None, None)
            .await
            .unwrap();
        assert_eq!(released(), ["d1"]);
        assert_eq!(
            meta.put_object(object("nob", "k", "d3"), PutCondition::None, None)
                .await,
            Err(MetaError::NoSuchBucket)
        );
        assert_eq!(
            meta.delete_bucket("b").await,
            Err(MetaError::BucketNotEmpty)
        );
        meta.delete_object("b", remove("k")).await.unwrap();
        assert_eq!(released(), ["d2"]);
        meta.delete_object("b", remove("k")).await.unwrap();
        assert!(released().is_empty());
        // Released files wait in the reclaim table, committed with the change, until
        // the reclaimer has removed them.
        assert_eq!(meta.reclaimable().await.unwrap(), ["d1", "d2"]);
        meta.forget_reclaimed(vec!["d1".into()]).await.unwrap();
        assert_eq!(meta.reclaimable().await.unwrap(), ["d2"]);
        assert_eq!(meta.delete_bucket("b").await, Ok(()));
        assert_eq!(meta.delete_bucket("b").await, Err(MetaError::NoSuchBucket));
    });
    drop(meta);
    thread.join();
}

#[test]
fn conditions_are_checked_with_the_write() {
    let (meta, _thread) = start(&temp_db("cond")).unwrap();
    block_on(async {
        meta.create_bucket(bucket("b", "o")).await.unwrap();
        meta.put_object(object("b", "k", "d1"), PutCondition::IfNoneMatchStar, None)
            .await
            .unwrap();
        assert_eq!(
            meta.put_object(object("b", "k", "d2"), PutCondition::IfNoneMatchStar, None)
                .await,
            Err(MetaError::PreconditionFailed)
        );
        assert_eq!(
            meta.put_object(
                object("b", "k", "d2"),
                PutCondition::IfMatch("nope".into()),
                None
            )
            .await,
            Err(MetaError::PreconditionFailed)
        );
        let replaced = meta
            .put_object(
                object("b", "k", "d2"),
                PutCondition::IfMatch("etag-d1".into()),
                None,
            )
            .await;
        assert_eq!(replaced, Ok(None));
        assert_eq!(released(), ["d1"]);
    });
}

#[test]
fn an_overwrite_replaces_every_column_and_releases_every_data_id() {
    let (meta, _thread) = start(&temp_db("overwrite")).unwrap();
    let part = |n: u32| PartRef {
        part_number: n,
        size: 5,
        etag: format!("pe{n}"),
        data_id: format!("p{n}"),
        checksum_value: Some(format!("pc{n}")),
    };
    let multipart = ObjectRow {
        size: 10,
        etag: "e-2".into(),
        content_encoding: Some("gzip".into()),
        content_language: Some("de".into()),
        content_disposition: Some("inline".into()),
        cache_control: Some("no-cache".into()),
        expires: Some("tomorrow".into()),
        checksum_algorithm: Some("CRC32".into()),
        checksum_value: Some("c-2".into()),
        checksum_type: Some("COMPOSITE".into()),
        parts_count: Some(2),
        upload_id: Some("u1".into()),
        parts: vec![part(1), part(2)],
        data_id: String::new(),
        ..object("b", "k", "unused")
    };
    let plain = ObjectRow {
        user_meta: Vec::new(),
        storage_class: "REDUCED_REDUNDANCY".into(),
        acl: "{\"x\":1}".into(),
        last_modified_ms: 9,
        owner_id: "o2".into(),
        content_type: "image/png".into(),
        ..object("b", "k", "d2")
    };
    block_on(async {
        meta.create_bucket(bucket("b", "o")).await.unwrap();
        meta.put_object(object("b", "k", "d1"), PutCondition::None, None)
            .await
            .unwrap();
        meta.put_object(multipart.clone(), PutCondition::None, None)
            .await
            .unwrap();
        assert_eq!(released(), ["d1"]);
        let stored = meta.get_object("b", "k").await.unwrap().unwrap();
        assert_eq!(
            stored,
            ObjectRow {
                parts: stored.parts.clone(),
                version_seq: stored.version_seq,
                ..multipart
            }
        );
        meta.put_object(plain.clone(), PutCondition::None, None)
            .await
            .unwrap();
        let mut gone = released();
        gone.sort();
        assert_eq!(gone, ["p1", "p2"], "the parts go with the object they made");
        let stored = meta.get_object("b", "k").await.unwrap().unwrap();
        assert_eq!(
            stored,
            ObjectRow {
                version_seq: stored.version_seq,
                ..plain
            }
        );
        assert_eq!(meta.counts().await.unwrap().objects, 1);
    });
}

#[test]
fn racing_creators_have_one_winner_and_batches_keep_other_writes() {
    let (tx, _released) = flume::unbounded();
    let (meta, _thread) = super::start(&temp_db("race"), tx, true).unwrap();
    let blobs = meta.blobs().unwrap();
    block_on(meta.create_bucket(bucket("b", "o"))).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let meta = meta.clone();
            std::thread::spawn(move || {
                block_on(async {
                    let own = meta.put_object(
                        object("b", &format!("own-{i}"), &format!("o{i}")),
                        PutCondition::None,
                        None,
                    );
                    // Each with its bytes: a refused PUT must leave none behind, and
                    // the winner's must commit (a PUT has no savepoint of its own).
                    let race = meta.put_object(
                        object("b", "contested", &format!("r{i}")),
                        PutCondition::IfNoneMatchStar,
                        Some(BlobTail {
                            data_id: format!("r{i}"),
                            seq: 0,
                            bytes: vec![i as u8; 3],
                            size: 3,
                        }),
                    );
                    (own.await.is_ok(), race.await.is_ok())
                })
            })
        })
        .collect();
    let results: Vec<(bool, bool)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(|(own, _)| *own));
    assert_eq!(results.iter().filter(|(_, won)| *won).count(), 1);
    let winner = block_on(meta.get_object("b", "contested"))
        .unwrap()
        .unwrap();
    for i in 0..8 {
        let id = format!("r{i}");
        let stored = block_on(blobs.open(&id, 1024)).unwrap();
        assert_eq!(stored.is_some(), id == winner.data_id, "bytes of {id}");
    }
    let page = block_on(meta.list_objects(ListQuery {
        bucket: "b".into(),
        prefix: "own-".into(),
        delimiter: None,
        after: None,
        max_keys: 1000,
    }))
    .unwrap();
    assert_eq!(page.objects.len(), 8);
}

fn list(
    meta: &MetaClient,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&str>,
    max_keys: usize,
) -> ListPage {
    block_on(meta.list_objects(ListQuery {
        bucket: "b".into(),
        prefix: prefix.into(),
        delimiter: delimiter.map(str::to_string),
        after: after.map(str::to_string),
        max_keys,
    }))
    .unwrap()
}

/// Entries of a page in order: keys and common prefixes (marked with a '#').
fn entries(page: &ListPage) -> Vec<String> {
    let mut all: Vec<String> = page.objects.iter().map(|o| o.key.clone()).collect();
    all.extend(page.common_prefixes.iter().map(|p| format!("#{p}")));
    all.sort_by(|a, b| a.trim_start_matches('#').cmp(b.trim_start_matches('#')));
    all
}

#[test]
fn listing_pages_through_prefixes_and_delimiters() {
    let (meta, _thread) = start(&temp_db("list")).unwrap();
    let keys = [
        "a", "a/b", "a/c/d", "a/c/e", "b/x", "b/y", "c", "d/", "z", "é/1",
    ];
    block_on(async {
        meta.create_bucket(bucket("b", "o")).await.unwrap();
        for (i, key) in keys.iter().enumerate() {
            meta.put_object(object("b", key, &format!("d{i}")), PutCondition::None, None)
                .await
                .unwrap();
        }
    });
    let all = list(&meta, "", None, None, 1000);
    assert_eq!(
        all.objects
            .iter()
            .map(|o| o.key.as_str())
            .collect::<Vec<_>>(),
        keys
    );
    assert!(!all.is_truncated);
    let rolled = list(&meta, "", Some("/"), None, 1000);
    assert_eq!(
        entries(&rolled),
        ["a", "#a/", "#b/", "c", "#d/", "z", "#é/"]
    );
    let under_a = list(&meta, "a/", Some("/"), None, 1000);
    assert_eq!(entries(&under_a), ["a/b", "#a/c/"]);
    for delimiter in [None, Some("/")] {
        let whole = entries(&list(&meta, "", delimiter, None, 1000));
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = list(&meta, "", delimiter, after.as_deref(), 1);
            paged.extend(entries(&page));
            if !page.is_truncated {
                break;
            }
            after = page.next_after.clone();
        }
        assert_eq!(paged, whole, "delimiter {delimiter:?}");
    }
    assert!(list(&meta, "", None, None, 0).objects.is_empty());
    assert_eq!(
        entries(&list(&meta, "", None, Some("b/x"), 2)),
        ["b/y", "c"]
    );
}

#[test]
fn json_pairs_round_trip() {
    let pairs = vec![
        ("a".to_string(), "\"q\" \\ \u{1} é ✓".to_string()),
        ("b".to_string(), String::new()),
    ];
    assert_eq!(json::decode_pairs(&json::encode_pairs(&pairs)), Some(pairs));
    assert_eq!(json::decode_pairs("{}"), Some(vec![]));
    assert_eq!(json::decode_pairs("nope"), None);
}

#[test]
fn row_counts_follow_inserts_overwrites_and_deletes() {
    let path = temp_db("counts");
    let (meta, thread) = start(&path).unwrap();
    block_on(async {
        assert_eq!(meta.counts().await.unwrap(), Default::default());
        meta.create_bucket(bucket("b", "o")).await.unwrap();
        meta.put_object(object("b", "k1", "d1"), PutCondition::None, None)
            .await
            .unwrap();
        meta.put_object(object("b", "k2", "d2"), PutCondition::None, None)
            .await
            .unwrap();
        // An overwrite replaces a row: still two objects.
        meta.put_object(object("b", "k1", "d3"), PutCondition::None, None)
            .await
            .unwrap();
        let counts = meta.counts().await.unwrap();
        assert_eq!((counts.buckets, counts.objects, counts.uploads), (1, 2, 0));
        meta.delete_object("b", remove("k2")).await.unwrap();
        assert_eq!(meta.counts().await.unwrap().objects, 1);
    });
    drop(meta);
    thread.join();
}

/// Holds the database's write lock from another connection, as a slow commit would.
fn hold_write_lock(path: &std::path::Path) -> rusqlite::Connection {
    let other = rusqlite::Connection::open(path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    other
}

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn queued_writes_commit_in_one_transaction_and_a_failure_rolls_back_only_itself() {
    use std::sync::atomic::Ordering;
    let path = temp_db("group");
    let (meta, _thread) = start(&path).unwrap();
    block_on(async {
        meta.create_bucket(bucket("b", "o")).await.unwrap();
        meta.put_object(object("b", "taken", "t0"), PutCondition::None, None)
            .await
            .unwrap();
    });
    let stats = meta.writer_stats();
    let (commits, writes) = (
        stats.commits.load(Ordering::SeqCst),
        stats.writes.load(Ordering::SeqCst),
    );
    // The writer takes a first write and waits for the lock we hold ...
    let lock = hold_write_lock(&path);
    let first = {
        let meta = meta.clone();
        std::thread::spawn(move || {
            block_on(meta.put_object(object("b", "first", "f0"), PutCondition::None, None))
        })
    };
    wait_until("the writer to take the first write", || {
        stats.writes.load(Ordering::SeqCst) == writes + 1
    });
    // ... while eight more queue behind it, one of them bound to fail.
    const N: usize = 8;
    let queued: Vec<_> = (0..N)
        .map(|i| {
            let meta = meta.clone();
            std::thread::spawn(move || {
                let (key, cond) = if i == 3 {
                    ("taken".to_string(), PutCondition::IfNoneMatchStar)
                } else {
                    (format!("q{i}"), PutCondition::None)
                };
                block_on(meta.put_object(object("b", &key, &format!("q{i}")), cond, None))
            })
        })
        .collect();
    wait_until("eight writes to queue", || meta.queued_writes() == N);
    drop(lock);
    assert_eq!(first.join().unwrap(), Ok(None));
    let outcomes: Vec<_> = queued.into_iter().map(|t| t.join().unwrap()).collect();
    for (i, outcome) in outcomes.iter().enumerate() {
        if i == 3 {
            assert_eq!(outcome, &Err(MetaError::PreconditionFailed));
        } else {
            assert_eq!(outcome, &Ok(None), "write {i}");
        }
    }
    assert_eq!(
        stats.commits.load(Ordering::SeqCst) - commits,
        2,
        "the first write alone, then the eight queued ones together (writes {}, before: {commits} commits {writes} writes)",
        stats.writes.load(Ordering::SeqCst) - writes
    );
    assert_eq!(stats.writes.load(Ordering::SeqCst) - writes, 1 + N as u64);
    let page = list(&meta, "q", None, None, 1000);
    assert_eq!(page.objects.len(), N - 1);
    let taken = block_on(meta.get_object("b", "taken")).unwrap().unwrap();
    assert_eq!(taken.data_id, "t0", "the failed write changed nothing");
}

#[test]
fn reads_never_wait_behind_a_commit() {
    let path = temp_db("readers");
    let (meta, _thread) = start(&path).unwrap();
    block_on(async {
        meta.create_bucket(bucket("b", "o")).await.unwrap();
        meta.put_object(object("b", "k", "d1"), PutCondition::None, None)
            .await
            .unwrap();
    });
    // A commit in progress (held by another connection) blocks the writer ...
    let lock = hold_write_lock(&path);
    let (done_tx, done_rx) = flume::bounded(1);
    let pending = {
        let meta = meta.clone();
        std::thread::spawn(move || {
            let result =
                block_on(meta.put_object(object("b", "k2", "d2"), PutCondition::None, None));
            let _ = done_tx.send(());
            result
        })
    };
    wait_until("the writer to take the write", || {
        meta.writer_stats()
            .writes
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 3
    });
    // ... but reads are answered meanwhile, from the last committed state.
    let row = block_on(meta.get_object("b", "k")).unwrap().unwrap();
    assert_eq!(row.data_id, "d1");
    assert!(block_on(meta.get_object("b", "k2")).unwrap().is_none());
    assert_eq!(list(&meta, "", None, None, 10).objects.len(), 1);
    assert!(
        done_rx.is_empty(),
        "the write is still waiting for the lock"
    );
    drop(lock);
    assert_eq!(pending.join().unwrap(), Ok(None));
    assert!(block_on(meta.get_object("b", "k2")).unwrap().is_some());
}

#[test]
fn a_write_that_loses_the_transaction_fails_its_whole_batch() {
    use std::sync::atomic::Ordering;
    let path = temp_db("lost-transaction");
    let (meta, _thread) = start(&path).unwrap();
    block_on(meta.create_bucket(bucket("b", "o"))).unwrap();
    // On IOERR, FULL, BUSY or NOMEM inside a statement SQLite may roll back the whole
    // transaction, not just the statement; RAISE(ROLLBACK) in a trigger does it at will.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER lose BEFORE INSERT ON objects WHEN NEW.key = 'doomed'
             BEGIN SELECT RAISE(ROLLBACK, 'the transaction is gone'); END;",
        )
        .unwrap();
    let writes = meta.writer_stats().writes.load(Ordering::SeqCst);
    let lock = hold_write_lock(&path);
    let first = {
        let meta = meta.clone();
        std::thread::spawn(move || {
            block_on(meta.put_object(object("b", "first", "f0"), PutCondition::None, None))
        })
    };
    wait_until("the writer to take the first write", || {
        meta.writer_stats().writes.load(Ordering::SeqCst) == writes + 1
    });
    // Five writes queue into one batch, in order; the third loses the transaction.
    let keys = ["q0", "q1", "doomed", "q3", "q4"];
    let queued: Vec<_> = keys
        .iter()
        .map(|key| {
            let client = meta.clone();
            let key = key.to_string();
            let queued = meta.queued_writes();
            let write = std::thread::spawn(move || {
                block_on(client.put_object(
                    object("b", &key, &format!("d-{key}")),
                    PutCondition::None,
                    None,
                ))
            });
            wait_until("the write to queue", || meta.queued_writes() == queued + 1);
            write
        })
        .collect();
    drop(lock);
    assert_eq!(first.join().unwrap(), Ok(None));
    for (key, write) in keys.iter().zip(queued) {
        assert!(write.join().unwrap().is_err(), "{key} was answered Ok");
    }
    for key in keys {
        assert_eq!(
            block_on(meta.get_object("b", key)).unwrap(),
            None,
            "{key} was answered with an error, yet stored"
        );
    }
    assert!(block_on(meta.get_object("b", "first")).unwrap().is_some());
}

#[test]
fn cached_rows_follow_every_commit_that_touches_them() {
    let (meta, thread) = start(&temp_db("row-cache")).unwrap();
    let cache = RowCache::new(2);
    let etag = |rows: Option<CachedRows>| rows.unwrap().1.map(|row| row.etag.clone());
    block_on(async {
        assert!(cache
            .bucket_object(&meta, "b", "k")
            .await
            .unwrap()
            .is_none());
        meta.create_bucket(bucket("b", "o")).await.unwrap();
        // An absent key is remembered, and forgotten by the PUT that makes it.
        assert_eq!(
            etag(cache.bucket_object(&meta, "b", "k").await.unwrap()),
            None
        );
        meta.put_object(object("b", "k", "d1"), PutCondition::None, None)
            .await
            .unwrap();
        assert_eq!(
            etag(cache.bucket_object(&meta, "b", "k").await.unwrap()),
            Some("etag-d1".into())
        );
        let reads = |meta: &MetaClient| meta.generations().stamp("b", "k");
        let before = reads(&meta);
        // A hit is served without a read (its stamp is unchanged), and is the same row.
        let (_, first) = cache.bucket_object(&meta, "b", "k").await.unwrap().unwrap();
        let (_, again) = cache.bucket_object(&meta, "b", "k").await.unwrap().unwrap();
        assert!(std::rc::Rc::ptr_eq(&first.unwrap(), &again.unwrap()));
        assert!(meta.generations().current(before));
        meta.set_object_acl("b", "k", None, "{\"x\":1}".into())
            .await
            .unwrap();
        assert!(!meta.generations().current(before));
        let (_, row) = cache.bucket_object(&meta, "b", "k").await.unwrap().unwrap();
        assert_eq!(row.unwrap().acl, "{\"x\":1}");
        meta.delete_object("b", remove("k")).await.unwrap();
        assert_eq!(
            etag(cache.bucket_object(&meta, "b", "k").await.unwrap()),
            None
        );
        // Bucket rows follow bucket changes; a full cache makes room.
        let owner = cache.bucket(&meta, "b").await.unwrap().unwrap().acl.clone();
        assert_eq!(owner, "{}");
        meta.set_bucket_acl("b", "{\"y\":2}".into()).await.unwrap();
        assert_eq!(
            cache.bucket(&meta, "b").await.unwrap().unwrap().acl,
            "{\"y\":2}"
        );
        for key in ["k1", "k2", "k3"] {
            cache.bucket_object(&meta, "b", key).await.unwrap();
        }
        meta.delete_bucket("b").await.unwrap();
        assert!(cache.bucket(&meta, "b").await.unwrap().is_none());
        assert!(cache
            .bucket_object(&meta, "b", "k")
            .await
            .unwrap()
            .is_none());
    });
    drop(meta);
    thread.join();
}

#[test]
fn a_lone_failed_write_rolls_back_its_bytes_and_leaves_the_next_write_clean() {
    let path = temp_db("lone");
    let (tx, _released) = flume::unbounded();
    let (meta, _thread) = super::start(&path, tx, true).unwrap();
    let blobs = meta.blobs().unwrap();
    let tail = |data_id: &str| BlobTail {
        data_id: data_id.to_string(),
        seq: 0,
        bytes: b"abcd".to_vec(),
        size: 4,
    };
    block_on(async {
        meta.create_bucket(bucket("b", "o")).await.unwrap();
        meta.put_object(object("b", "k", "d0"), PutCondition::None, Some(tail("d0")))
            .await
            .unwrap();
        // Alone in its batch (the writes are sequential), the conditional PUT is
        // refused before its bytes are written.
        let refused = meta
            .put_object(
                object("b", "k", "d1"),
                PutCondition::IfNoneMatchStar,
                Some(tail("d1")),
            )
            .await;
        assert_eq!(refused, Err(MetaError::PreconditionFailed));
        assert_eq!(blobs.open("d1", 1024).await.unwrap(), None);
        let kept = meta.get_object("b", "k").await.unwrap().unwrap();
        assert_eq!(kept.data_id, "d0", "the failed write changed nothing");
        // The next lone write starts a transaction of its own, and commits.
        meta.put_object(object("b", "k", "d2"), PutCondition::None, Some(tail("d2")))
            .await
            .unwrap();
        assert_eq!(blobs.open("d2", 1024).await.unwrap().unwrap().size, 4);
        let replaced = meta.get_object("b", "k").await.unwrap().unwrap();
        assert_eq!(replaced.data_id, "d2");
    });
}

/// A database made by the schema before versioning (version 7), with a single-PUT
/// object and a multipart one, in a bucket as that release wrote it.
fn database_before_versioning(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        .unwrap();
    for (index, sql) in schema::MIGRATIONS[..7].iter().enumerate() {
        conn.execute_batch(sql).unwrap();
        conn.execute("INSERT INTO schema_version VALUES (?1)", [index as i64 + 1])
            .unwrap();
    }
    conn.execute_batch(
        "INSERT INTO buckets VALUES ('b', 'o', 'us-east-1', '{}', 1);
         INSERT INTO objects (bucket, key, size, etag, content_type, user_meta, storage_class,
            acl, last_modified_ms, data_id, owner_id)
         VALUES ('b', 'single', 3, 'e1', 'text/plain', '{}', 'STANDARD', '{}', 5, 'd1', 'o');
         INSERT INTO objects (bucket, key, size, etag, content_type, user_meta, storage_class,
            acl, last_modified_ms, data_id, owner_id, parts_count, upload_id)
         VALUES ('b', 'multi', 10, 'e2-2', 'text/plain', '{}', 'STANDARD', '{}', 6, '', 'o', 2,
            'u1');
         INSERT INTO object_parts VALUES ('b', 'multi', 1, 5, 'pe1', 'p1', NULL);
         INSERT INTO object_parts VALUES ('b', 'multi', 2, 5, 'pe2', 'p2', NULL);",
    )
    .unwrap();
}

#[test]
fn an_older_database_opens_with_its_objects_as_null_versions() {
    let path = temp_db("upgrade");
    database_before_versioning(&path);
    let (meta, thread) = start(&path).unwrap();
    let query = |bucket: &str| VersionQuery {
        list: ListQuery {
            bucket: bucket.into(),
            prefix: String::new(),
            delimiter: None,
            after: None,
            max_keys: 1000,
        },
        version_after: None,
    };
    block_on(async {
        let bucket_row = meta.get_bucket("b").await.unwrap().unwrap();
        assert_eq!(bucket_row.versioning, Versioning::Unversioned);
        let page = meta.list_versions(query("b")).await.unwrap();
        let listed: Vec<_> = page
            .entries
            .iter()
            .map(|e| (e.row.key.as_str(), e.row.version_label(), e.is_latest))
            .collect();
        assert_eq!(listed, [("multi", "null", true), ("single", "null", true)]);
        // Versioning on: an overwrite keeps the old object as the null version, parts
        // and all, and releases nothing.
        meta.set_versioning("b", Versioning::Enabled).await.unwrap();
        let made = meta
            .put_object(object("b", "multi", "d3"), PutCondition::None, None)
            .await
            .unwrap()
            .expect("a version id");
        assert!(released().is_empty());
        let (_, old) = meta
            .get_bucket_object_version("b", "multi", VersionSel::Null)
            .await
            .unwrap();
        let old = old.unwrap();
        assert_eq!((old.etag.as_str(), old.parts.len()), ("e2-2", 2));
        let (_, new) = meta.get_bucket_object("b", "multi").await.unwrap();
        assert_eq!(new.unwrap().version_id.as_deref(), Some(made.as_str()));
        // Deleting the null version by id frees exactly its bytes.
        let spec = DeleteSpec {
            version: Some(VersionSel::Null),
            ..remove("multi")
        };
        let deleted = meta.delete_object("b", spec).await.unwrap();
        assert_eq!(deleted.version_id.as_deref(), Some("null"));
        let mut gone = released();
        gone.sort();
        assert_eq!(gone, ["p1", "p2"]);
    });
    drop(meta);
    thread.join();
}

#[test]
fn versions_keep_their_bytes_until_deleted_by_id() {
    let path = temp_db("versions");
    let (meta, thread) = start(&path).unwrap();
    let by_id = |key: &str, id: &str| DeleteSpec {
        version: Some(parse_version_id(id).unwrap()),
        ..remove(key)
    };
    block_on(async {
        meta.create_bucket(bucket("b", "o")).await.unwrap();
        meta.set_versioning("b", Versioning::Enabled).await.unwrap();
        let put = |data_id: &'static str| {
            let meta = meta.clone();
            async move {
                meta.put_object(object("b", "k", data_id), PutCondition::None, None)
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        let v1 = put("d1").await;
        let v2 = put("d2").await;
        assert!(v1 < v2, "ids order by time");
        let marker = meta.delete_object("b", remove("k")).await.unwrap();
        assert!(marker.delete_marker);
        assert!(released().is_empty(), "a marker frees nothing");
        let (_, hidden) = meta.get_bucket_object("b", "k").await.unwrap();
        assert!(hidden.unwrap().delete_marker);
        // Deleting the newest object version (under the marker) frees its bytes only.
        meta.delete_object("b", by_id("k", &v2)).await.unwrap();
        assert_eq!(released(), ["d2"]);
        // Removing the marker makes v1 current again.
        let removed = meta
            .delete_object("b", by_id("k", marker.version_id.as_deref().unwrap()))
            .await
            .unwrap();
        assert!(removed.delete_marker);
        let (_, current) = meta.get_bucket_object("b", "k").await.unwrap();
        let current = current.unwrap();
        assert_eq!(
            (current.data_id.as_str(), current.version_id),
            ("d1", Some(v1.clone()))
        );
        // Suspended: a write replaces the null version only, and keeps v1.
        meta.set_versioning("b", Versioning::Suspended)
            .await
            .unwrap();
        assert_eq!(put_suspended(&meta, "n1").await, None);
        assert!(released().is_empty());
        assert_eq!(put_suspended(&meta, "n2").await, None);
        assert_eq!(released(), ["n1"]);
        // The bucket is not empty while any version is left.
        meta.delete_object("b", by_id("k", "null")).await.unwrap();
        assert_eq!(released(), ["n2"]);
        assert_eq!(
            meta.delete_bucket("b").await,
            Err(MetaError::BucketNotEmpty)
        );
        meta.delete_object("b", by_id("k", &v1)).await.unwrap();
        assert_eq!(released(), ["d1"]);
        meta.delete_bucket("b").await.unwrap();
    });
    drop(meta);
    thread.join();
}

async fn put_suspended(meta: &MetaClient, data_id: &str) -> Option<String> {
    meta.put_object(object("b", "k", data_id), PutCondition::None, None)
        .await
        .unwrap()
}

#[test]
fn object_lock_holds_in_the_metadata_transaction() {
    let path = temp_db("lock");
    let (meta, thread) = start(&path).unwrap();
    let now = crate::clock::now_unix_millis();
    let day = 86_400_000;
    let retention = |mode, days: i64| Retention {
        mode,
        until_ms: now + days * day,
    };
    let by_id = |id: &str, bypass: bool| DeleteSpec {
        version: Some(parse_version_id(id).unwrap()),
        bypass_governance: bypass,
        ..remove("k")
    };
    // Versions written now, so that the default retention is still in force.
    let fresh = |data_id: &str| ObjectRow {
        last_modified_ms: now,
        ..object("b", "k", data_id)
    };
    let change = |retention: Option<Retention>, bypass: bool| LockChange::Retention {
        retention,
        bypass_governance: bypass,
    };
    block_on(async {
        meta.create_bucket(bucket("b", "o")).await.unwrap();
        // Without versioning there is no object lock, and no retention on a PUT.
        let config = LockConfig {
            default_retention: Some(DefaultRetention {
                mode: RetentionMode::Governance,
                days: Some(2),
                years: None,
            }),
        };
        assert!(matches!(
            meta.set_lock_config("b", config).await,
            Err(MetaError::InvalidBucketState(_))
        ));
        let held = ObjectRow {
            legal_hold: Some(true),
            ..object("b", "k", "d0")
        };
        assert_eq!(
            meta.put_object(held, PutCondition::None, None).await,
            Err(MetaError::NoObjectLock)
        );
        meta.set_versioning("b", Versioning::Enabled).await.unwrap();
        meta.set_lock_config("b", config).await.unwrap();
        assert!(matches!(
            meta.set_versioning("b", Versioning::Suspended).await,
            Err(MetaError::InvalidBucketState(_))
        ));
        // The default retention applies to a version without its own.
        let v1 = meta
            .put_object(fresh("d1"), PutCondition::None, None)
            .await
            .unwrap()
            .unwrap();
        let (_, row) = meta.get_bucket_object("b", "k").await.unwrap();
        let got = row.unwrap().retention.unwrap();
        assert_eq!(got.mode, RetentionMode::Governance);
        // Counted from the version's own time.
        assert_eq!(got.until_ms, now + 2 * day);
        // GOVERNANCE: no delete by id without the bypass; a marker is fine.
        assert_eq!(
            meta.delete_object("b", by_id(&v1, false)).await,
            Err(MetaError::ObjectLocked)
        );
        assert!(
            meta.delete_object("b", remove("k"))
                .await
                .unwrap()
                .delete_marker
        );
        // COMPLIANCE: lengthening only, never by bypass.
        let v1_sel = parse_version_id(&v1);
        let compliance = Some(retention(RetentionMode::Compliance, 5));
        meta.set_object_lock("b", "k", v1_sel, change(compliance, false))
            .await
            .unwrap();
        for weaker in [
            None,
            Some(retention(RetentionMode::Compliance, 4)),
            Some(retention(RetentionMode::Governance, 9)),
        ] {
            assert_eq!(
                meta.set_object_lock("b", "k", v1_sel, change(weaker, true))
                    .await,
                Err(MetaError::ObjectLocked),
                "{weaker:?}"
            );
        }
        assert_eq!(
            meta.delete_object("b", by_id(&v1, true)).await,
            Err(MetaError::ObjectLocked)
        );
        // A legal hold stops a delete that retention alone would allow.
        let v2 = meta
            .put_object(fresh("d2"), PutCondition::None, None)
            .await
            .unwrap()
            .unwrap();
        meta.set_object_lock("b", "k", None, LockChange::LegalHold(true))
            .await
            .unwrap();
        meta.set_object_lock("b", "k", None, change(None, true))
            .await
            .unwrap();
        assert_eq!(
            meta.delete_object("b", by_id(&v2, true)).await,
            Err(MetaError::ObjectLocked)
        );
        meta.set_object_lock("b", "k", None, LockChange::LegalHold(false))
            .await
            .unwrap();
        meta.delete_object("b", by_id(&v2, false)).await.unwrap();
        assert_eq!(released(), ["d2"]);
        // Missing versions are named as such.
        assert_eq!(
            meta.set_object_lock("b", "k", parse_version_id(&v2), LockChange::LegalHold(true))
                .await,
            Err(MetaError::NoSuchVersion)
        );
    });
    drop(meta);
    thread.join();
}
