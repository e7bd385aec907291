//! The storage conformance suite: what every backend must do, run through the
//! `Storage` API on each backend (`backends()`), on both monoio drivers (io_uring and
//! legacy, whose file paths differ). A new backend joins by adding a line to
//! `backends()`. Then the local backend's own guarantees: its layout and its startup
//! recovery.

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{is_valid_data_id, ByteStage, LocalStorage, Snapshot, Storage};

/// A data dir nobody else uses, removed when the test ends.
struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "bleepstore-storage-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TestDir(dir)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes a backend on a root directory.
type MakeBackend = fn(&Path) -> Storage;

/// The aws backend on the upstream `BLEEPSTORE_TEST_S3_UPSTREAM` names
/// (`endpoint bucket access-key secret-key`; scripts/test.sh starts s3s-fs for it),
/// under a prefix of its own for each root.
fn aws_on(root: &Path) -> Storage {
    let upstream = std::env::var("BLEEPSTORE_TEST_S3_UPSTREAM").unwrap();
    let fields: Vec<&str> = upstream.split_whitespace().collect();
    let [endpoint, bucket, access, secret] = fields[..] else {
        panic!("BLEEPSTORE_TEST_S3_UPSTREAM: expected endpoint bucket access-key secret-key");
    };
    let name = root.file_name().unwrap().to_string_lossy();
    Storage::open_aws(super::AwsSettings {
        bucket: bucket.to_string(),
        region: "us-east-1".to_string(),
        prefix: format!("conformance/{name}/"),
        endpoint_url: Some(endpoint.to_string()),
        use_path_style: Some(true),
        credentials: crate::upstream_auth::sigv4::AwsCredentials::new(access, secret, None),
        ca_file: None,
        // The sweep test lists what it has just written.
        orphan_grace: std::time::Duration::ZERO,
        client: Default::default(),
    })
    .unwrap()
}

/// The azure backend's settings on the upstream `BLEEPSTORE_TEST_AZURE_UPSTREAM`
/// names (`connection-string-or-endpoint container`: a Blob endpoint alone, such as
/// Azurite's `http://127.0.0.1:10000/devstoreaccount1`, stands for the emulator's
/// well-known account), under a prefix of its own for each root.
fn azure_settings(root: &Path) -> super::AzureSettings {
    use crate::upstream_auth::azure::{parse_connection_string, AzureAccount};
    let upstream = std::env::var("BLEEPSTORE_TEST_AZURE_UPSTREAM").unwrap();
    let fields: Vec<&str> = upstream.split_whitespace().collect();
    let [account, container] = fields[..] else {
        panic!("BLEEPSTORE_TEST_AZURE_UPSTREAM: expected connection-string-or-endpoint container");
    };
    let (account, url) = if account.contains('=') {
        let connection = parse_connection_string(account).unwrap();
        (connection.account, connection.blob_endpoint)
    } else {
        (AzureAccount::development(), account.to_string())
    };
    let name = root.file_name().unwrap().to_string_lossy();
    super::AzureSettings::new(
        container.to_string(),
        format!("conformance/{name}/"),
        url,
        account,
        None,
        // The sweep test lists what it has just written.
        std::time::Duration::ZERO,
    )
}

/// The azure backend with Put Blob's limit and the block size lowered to a few
/// hundred bytes and 64 KiB, so that every write past them takes the block path (Put Block,
/// Put Block List), with blocks that buffers straddle.
fn azure_blocks_on(root: &Path) -> Storage {
    let mut settings = azure_settings(root);
    settings.put_blob_bytes_max = 1000;
    settings.block_bytes = 64 * 1024 + 7;
    Storage::open_azure(settings).unwrap()
}

/// The gcp backend on the upstream `BLEEPSTORE_TEST_GCS_UPSTREAM` names (`endpoint
/// bucket`: fake-gcs-server, which takes anonymous requests), under a prefix of its
/// own for each root.
fn gcp_on(root: &Path) -> Storage {
    let upstream = std::env::var("BLEEPSTORE_TEST_GCS_UPSTREAM").unwrap();
    let fields: Vec<&str> = upstream.split_whitespace().collect();
    let [endpoint, bucket] = fields[..] else {
        panic!("BLEEPSTORE_TEST_GCS_UPSTREAM: expected endpoint bucket");
    };
    let name = root.file_name().unwrap().to_string_lossy();
    Storage::open_gcp(super::GcpSettings {
        bucket: bucket.to_string(),
        project: None,
        prefix: format!("conformance/{name}/"),
        credentials_file: None,
        endpoint_url: Some(endpoint.to_string()),
        ca_file: None,
        // The sweep test lists what it has just written.
        orphan_grace: std::time::Duration::ZERO,
        client: Default::default(),
    })
    .unwrap()
}

/// Every backend, by name, made fresh on a root directory. The aws gateway joins when
/// an upstream is named (scripts/test.sh always names one); so do the azure gateway,
/// twice (as configured, and with tiny blocks), and the gcp gateway.
fn backends() -> Vec<(&'static str, MakeBackend)> {
    let mut all = all_backends();
    if std::env::var_os("BLEEPSTORE_TEST_S3_UPSTREAM").is_some() {
        all.push(("aws", aws_on));
    }
    if std::env::var_os("BLEEPSTORE_TEST_AZURE_UPSTREAM").is_some() {
        all.push(("azure", |root| {
            Storage::open_azure(azure_settings(root)).unwrap()
        }));
        all.push(("azure-blocks", azure_blocks_on));
    }
    if std::env::var_os("BLEEPSTORE_TEST_GCS_UPSTREAM").is_some() {
        all.push(("gcp", gcp_on));
    }
    all
}

fn all_backends() -> Vec<(&'static str, MakeBackend)> {
    vec![
        ("local", |root| Storage::open_local(root).unwrap().0),
        ("memory", |root| {
            let snapshot = Snapshot {
                path: root.join("memory.snapshot"),
                interval: std::time::Duration::from_secs(3600),
            };
            Storage::open_memory(1 << 30, Some(snapshot)).unwrap().0
        }),
        ("sqlite", |root| {
            std::fs::create_dir_all(root).unwrap();
            let (released, _) = flume::unbounded();
            let (meta, _threads) =
                crate::meta::start(&root.join("metadata.db"), released, true).unwrap();
            // The threads serve for as long as the storage holds its client.
            Storage::open_sqlite(meta.blobs().unwrap()).unwrap()
        }),
    ]
}

/// Runs `test` on every backend, on the io_uring and on the legacy driver, each time
/// on a fresh root. The test gets the backend and a way to make another instance on
/// the same root (a restart).
fn conformance<F, Fut>(name: &str, test: F)
where
    F: Fn(Storage, Box<dyn Fn() -> Storage>) -> Fut,
    Fut: Future<Output = ()>,
{
    for (backend, make) in backends() {
        for uring in [true, false] {
            let dir = TestDir::new(&format!("{name}-{backend}-{uring}"));
            let root = dir.0.clone();
            let restart: Box<dyn Fn() -> Storage> = Box::new(move || make(&root));
            let storage = restart();
            let leave = storage.clone();
            let tested = test(storage, restart);
            let run = async move {
                tested.await;
                // The test's gateway connections belong to this runtime.
                leave.leave_runtime();
            };
            if uring {
                monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                    .enable_timer()
                    .build()
                    .unwrap()
                    .block_on(run);
            } else {
                monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                    .enable_timer()
                    .build()
                    .unwrap()
                    .block_on(run);
            }
        }
    }
}

/// Bytes that differ at every offset, so a misplaced piece cannot go unnoticed.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
        .collect()
}

/// Writes `data` in uneven pieces under a new id, commits it and returns the id.
async fn put(storage: &Storage, data: &[u8]) -> String {
    let id = storage.new_data_id();
    let mut upload = storage.create(&id, Some(data.len() as u64)).await.unwrap();
    let mut buf = Vec::new();
    for piece in data.chunks(data.len() / 5 + 1) {
        buf.clear();
        buf.extend_from_slice(piece);
        let (result, returned) = upload.write(buf).await;
        result.unwrap();
        buf = returned;
    }
    assert_eq!(upload.len(), data.len() as u64);
    let tail = upload.commit().await.unwrap();
    // The sqlite backend's tail seals on its own here (a PUT seals it with its row).
    storage.seal(tail).await.unwrap();
    id
}

/// Reads a whole object back through a small reused buffer.
async fn get(storage: &Storage, id: &str) -> Vec<u8> {
    let object = storage.open(id).await.unwrap();
    let mut out = Vec::new();
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        let (result, returned) = object.read_at(buf, out.len() as u64).await;
        let n = result.unwrap();
        assert_eq!(returned.len(), n);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&returned);
        buf = returned;
    }
    assert_eq!(object.len(), out.len() as u64);
    out
}

async fn missing(storage: &Storage, id: &str) -> bool {
    matches!(storage.open(id).await, Err(e) if e.kind() == io::ErrorKind::NotFound)
}

/// A stage that keeps every byte it sees.
#[derive(Debug)]
struct Collect(Vec<u8>);

impl ByteStage for Collect {
    fn update(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }
}

#[test]
fn write_in_pieces_commit_and_read_back() {
    conformance("roundtrip", |storage, _| async move {
        for size in [0, 1, 4096, 3 * 1024 * 1024] {
            let data = pattern(size);
            let id = put(&storage, &data).await;
            assert_eq!(get(&storage, &id).await, data, "size {size}");
        }
        // Reads at an offset see the bytes from there.
        let id = put(&storage, &pattern(10_000)).await;
        let object = storage.open(&id).await.unwrap();
        let (n, buf) = object.read_at(Vec::with_capacity(100), 9_950).await;
        assert_eq!((n.unwrap(), &buf[..]), (50, &pattern(10_000)[9_950..]));
    });
}

#[test]
fn nothing_is_visible_before_commit_or_after_abort() {
    conformance("visibility", |storage, _| async move {
        let id = storage.new_data_id();
        let mut upload = storage.create(&id, Some(10_000)).await.unwrap();
        let (result, _) = upload.write(pattern(10_000)).await;
        result.unwrap();
        assert!(
            missing(&storage, &id).await,
            "uncommitted bytes are invisible"
        );
        assert!(!storage.list_ids().await.unwrap().contains(&id));
        upload.abort().await;
        assert!(missing(&storage, &id).await);

        let dropped = storage.new_data_id();
        let mut upload = storage.create(&dropped, Some(10)).await.unwrap();
        let (result, _) = upload.write(pattern(10)).await;
        result.unwrap();
        drop(upload);
        assert!(
            missing(&storage, &dropped).await,
            "a dropped upload is aborted"
        );
        assert!(storage.list_ids().await.unwrap().is_empty());
    });
}

#[test]
fn remove_is_idempotent_and_missing_objects_are_not_found() {
    conformance("remove", |storage, _| async move {
        let id = put(&storage, b"short-lived").await;
        storage.remove(&id).await.unwrap();
        assert!(missing(&storage, &id).await);
        // A second removal, as a retried delete would do, is not an error.
        storage.remove(&id).await.unwrap();
        assert!(missing(&storage, &storage.new_data_id()).await);
    });
}

#[test]
fn an_open_object_keeps_its_bytes_through_a_removal() {
    conformance("pinned", |storage, _| async move {
        let data = pattern(3 * 1024 * 1024 + 3);
        let id = put(&storage, &data).await;
        let object = storage.open(&id).await.unwrap();
        // The reclaimer removes released objects once every read that can name them has
        // opened them: a reader may still be streaming.
        storage.remove(&id).await.unwrap();
        let mut read = Vec::new();
        let mut buf = Vec::with_capacity(256 * 1024);
        loop {
            let (n, returned) = object.read_at(buf, read.len() as u64).await;
            if n.unwrap() == 0 {
                break;
            }
            read.extend_from_slice(&returned);
            buf = returned;
        }
        assert!(read == data, "the reader saw every byte");
        drop(object);
        // Queued behind whatever the last reader left to do.
        storage.remove(&id).await.unwrap();
        assert!(missing(&storage, &id).await);
        assert!(!storage.list_ids().await.unwrap().contains(&id));
    });
}

#[test]
fn copies_and_scans_pass_every_byte_through_the_stage() {
    conformance("copy", |storage, _| async move {
        let a = pattern(3 * 1024 * 1024 + 5);
        let b: Vec<u8> = pattern(70_000).into_iter().rev().collect();
        let (id_a, id_b) = (put(&storage, &a).await, put(&storage, &b).await);
        let whole = storage.new_data_id();
        assert_eq!(storage.copy(&id_a, &whole).await.unwrap(), a.len() as u64);
        assert_eq!(get(&storage, &whole).await, a);
        let ranges = vec![
            (id_a.clone(), 1_000_000, 2_000_000),
            (id_b.clone(), 0, 70_000),
            (id_a.clone(), 0, 3),
        ];
        let mut expected = a[1_000_000..3_000_000].to_vec();
        expected.extend_from_slice(&b);
        expected.extend_from_slice(&a[..3]);
        let target = storage.new_data_id();
        let (n, seen) = storage
            .copy_ranges(ranges.clone(), &target, Collect(Vec::new()))
            .await
            .unwrap();
        assert_eq!(n, expected.len() as u64);
        assert!(seen.0 == expected, "the stage saw the bytes in order");
        assert!(get(&storage, &target).await == expected);
        let scanned = storage.scan(ranges, Collect(Vec::new())).await.unwrap();
        assert!(scanned.0 == expected);
        // A copy from a missing object publishes nothing.
        let failed = storage.new_data_id();
        let gone = storage.new_data_id();
        let error = storage.copy(&gone, &failed).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(missing(&storage, &failed).await);
        let error = storage
            .copy_ranges(
                vec![(id_b.clone(), 60_000, 20_000)],
                &failed,
                Collect(Vec::new()),
            )
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            io::ErrorKind::UnexpectedEof,
            "a range past the end"
        );
        assert!(missing(&storage, &failed).await);
    });
}

#[test]
fn list_ids_and_provenance_tell_a_restart_its_own_objects() {
    conformance("sweep", |storage, restart| async move {
        let kept = put(&storage, b"a").await;
        let removed = put(&storage, b"b").await;
        storage.remove(&removed).await.unwrap();
        let ids: HashSet<String> = storage.list_ids().await.unwrap().into_iter().collect();
        assert_eq!(ids, HashSet::from([kept.clone()]));
        assert!(storage.issued(&kept), "this instance wrote it");
        // Another instance on the same data (a restart, however quick) did not.
        storage.shutdown().unwrap();
        let next = restart();
        assert!(!next.issued(&kept));
        let own = put(&next, b"c").await;
        assert!(next.issued(&own) && !storage.issued(&own));
        let ids: HashSet<String> = next.list_ids().await.unwrap().into_iter().collect();
        assert_eq!(ids, HashSet::from([kept.clone(), own]));
        assert_eq!(get(&next, &kept).await, b"a");
        next.health().await.unwrap();
    });
}

#[test]
fn invalid_data_ids_are_rejected() {
    let bad = [
        "",
        "../../../../etc/passwd",
        "0123456789abcdef0123456789abcde",
        "0123456789abcdef0123456789abcdef0",
        "0123456789ABCDEF0123456789abcdef",
        "0123456789abcdef/123456789abcdef",
        "0123456789abcdef.123456789abcdef",
        "0123456789abcdef\u{0}123456789abcdef",
        "..23456789abcdef0123456789abcdef",
    ];
    assert!(is_valid_data_id("0123456789abcdef0123456789abcdef"));
    conformance("invalid", |storage, _| async move {
        for id in bad {
            assert!(!is_valid_data_id(id), "{id:?}");
            let invalid =
                |e: io::Error| assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{id:?}");
            invalid(storage.open(id).await.err().unwrap());
            invalid(storage.remove(id).await.err().unwrap());
            invalid(storage.create(id, Some(1)).await.err().unwrap());
            let target = storage.new_data_id();
            invalid(storage.copy(id, &target).await.err().unwrap());
            invalid(storage.copy(&target, id).await.err().unwrap());
        }
    });
}

#[test]
fn ids_are_unique_and_well_formed() {
    let dir = TestDir::new("ids");
    let (storage, _) = Storage::open_local(&dir.0).unwrap();
    let mut seen = HashSet::new();
    for _ in 0..100_000 {
        let id = storage.new_data_id();
        assert!(is_valid_data_id(&id), "{id}");
        assert!(seen.insert(id));
    }
    // Ids spread over the fan-out directories rather than piling into one.
    let fanout: HashSet<&str> = seen.iter().map(|id| &id[..2]).collect();
    assert_eq!(fanout.len(), 256);

    let threads: Vec<_> = (0..4)
        .map(|_| {
            let storage = storage.clone();
            std::thread::spawn(move || {
                (0..25_000)
                    .map(|_| storage.new_data_id())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for thread in threads {
        for id in thread.join().unwrap() {
            assert!(seen.insert(id));
        }
    }
    // A second handle stands for a restart: a fresh random seed.
    let (restarted, _) = Storage::open_local(&dir.0).unwrap();
    for _ in 0..100_000 {
        assert!(seen.insert(restarted.new_data_id()));
    }
    assert_eq!(seen.len(), 300_000);
}

// The local backend's own guarantees.

/// Files under `dir`, recursively (temp files live in a per-run subdirectory).
fn count_tmp(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                count_tmp(&entry.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn local_objects_are_fanned_out_and_temp_files_never_outlive_their_upload() {
    for uring in [true, false] {
        let dir = TestDir::new(&format!("layout-{uring}"));
        let (local, _) = LocalStorage::open(&dir.0).unwrap();
        let storage = Storage::Local(local);
        let root = dir.0.clone();
        let run = async move {
            let id = put(&storage, &pattern(5000)).await;
            assert!(root.join("objects").join(&id[..2]).join(&id).is_file());
            let mut upload = storage.create(&storage.new_data_id(), None).await.unwrap();
            let (result, _) = upload.write(pattern(100)).await;
            result.unwrap();
            assert_eq!(count_tmp(&root.join("tmp")), 1);
            upload.abort().await;
            let upload = storage.create(&storage.new_data_id(), None).await.unwrap();
            drop(upload);
            assert_eq!(count_tmp(&root.join("tmp")), 0);
            // A foreign file in the tree is neither listed nor touched.
            let foreign = root.join("objects").join("00").join("notes.txt");
            std::fs::write(&foreign, b"not ours").unwrap();
            assert_eq!(storage.list_ids().await.unwrap(), vec![id]);
            assert!(foreign.is_file());
        };
        if uring {
            monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build()
                .unwrap()
                .block_on(run);
        } else {
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .unwrap()
                .block_on(run);
        }
    }
}

#[test]
fn startup_removes_interrupted_writes() {
    let dir = TestDir::new("recovery");
    let (storage, report) = Storage::open_local(&dir.0).unwrap();
    assert_eq!(report.temp_files_removed, 0);
    assert_eq!(
        std::fs::read_dir(dir.0.join("objects")).unwrap().count(),
        256
    );
    let kept = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(async { put(&storage, b"survives a restart").await });
    // Three writes a crash interrupted, one named as `create` names its files.
    std::fs::write(dir.0.join("tmp").join(storage.new_data_id()), b"0123").unwrap();
    std::fs::write(dir.0.join("tmp").join("a"), b"partial").unwrap();
    std::fs::write(dir.0.join("tmp").join("b"), b"").unwrap();

    let (storage, report) = Storage::open_local(&dir.0).unwrap();
    assert_eq!(report.temp_files_removed, 3);
    assert_eq!(count_tmp(&dir.0.join("tmp")), 0);
    let data = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(async { get(&storage, &kept).await });
    assert_eq!(data, b"survives a restart");
}

/// The sqlite backend on `dir`'s database, with the metadata client it rides on.
fn sqlite_on(dir: &Path) -> (Storage, crate::meta::MetaClient) {
    std::fs::create_dir_all(dir).unwrap();
    let (released, _) = flume::unbounded();
    let (meta, _threads) = crate::meta::start(&dir.join("metadata.db"), released, true).unwrap();
    (Storage::open_sqlite(meta.blobs().unwrap()).unwrap(), meta)
}

#[test]
fn sqlite_chunks_stay_invisible_until_sealed_and_a_crash_leaves_none() {
    let dir = TestDir::new("sqlite-recovery");
    let (storage, _meta) = sqlite_on(&dir.0);
    let data = pattern(3 * 1024 * 1024 + 17);
    let (kept, interrupted) = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(async {
            // Three full chunks go to the database as they fill; the last stays behind.
            let id = storage.new_data_id();
            let mut upload = storage.create(&id, None).await.unwrap();
            for piece in data.chunks(100_000) {
                let (written, _) = upload.write(piece.to_vec()).await;
                written.unwrap();
            }
            assert!(missing(&storage, &id).await, "chunks without a seal");
            assert!(storage.list_ids().await.unwrap().is_empty());
            let tail = upload.commit().await.unwrap().unwrap();
            assert_eq!((tail.seq, tail.size), (3, data.len() as u64));
            assert_eq!(tail.bytes.len(), 17);
            assert!(missing(&storage, &id).await, "a tail not yet sealed");
            storage.seal(Some(tail)).await.unwrap();
            assert!(get(&storage, &id).await == data);
            // A second upload the process "crashes" in: its chunks are in, unsealed,
            // and nothing removes them before the restart.
            let interrupted = storage.new_data_id();
            let mut upload = storage.create(&interrupted, None).await.unwrap();
            let (written, _) = upload.write(pattern(2 * 1024 * 1024 + 1)).await;
            written.unwrap();
            std::mem::forget(upload);
            (id, interrupted)
        });
    drop(storage);
    let db = dir.0.join("metadata.db");
    assert_eq!(crate::meta::admin::remove_unsealed_blobs(&db).unwrap(), 1);
    assert_eq!(crate::meta::admin::remove_unsealed_blobs(&db).unwrap(), 0);
    let (storage, _meta) = sqlite_on(&dir.0);
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(async {
            assert!(missing(&storage, &interrupted).await);
            assert_eq!(
                storage.list_ids().await.unwrap(),
                std::slice::from_ref(&kept)
            );
            assert!(get(&storage, &kept).await == data);
        });
}

#[test]
fn sqlite_bytes_commit_with_the_row_or_not_at_all() {
    use crate::meta::{BucketRow, PutCondition};
    let dir = TestDir::new("sqlite-tail");
    let (storage, meta) = sqlite_on(&dir.0);
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(async {
            let bucket = BucketRow {
                name: "b".into(),
                owner_id: "o".into(),
                region: "us-east-1".into(),
                acl: "{}".into(),
                created_ms: 0,
                versioning: crate::meta::Versioning::Unversioned,
                object_lock: None,
                cors: None,
            };
            meta.create_bucket(bucket).await.unwrap();
            let stored = |body: &'static [u8]| {
                let storage = storage.clone();
                async move {
                    let id = storage.new_data_id();
                    let mut upload = storage.create(&id, Some(body.len() as u64)).await.unwrap();
                    let (written, _) = upload.write(body.to_vec()).await;
                    written.unwrap();
                    (id, upload.commit().await.unwrap())
                }
            };
            let row = |id: &str| crate::meta::ObjectRow {
                bucket: "b".into(),
                key: "k".into(),
                size: 0,
                etag: String::new(),
                content_type: "text/plain".into(),
                content_encoding: None,
                content_language: None,
                content_disposition: None,
                cache_control: None,
                expires: None,
                user_meta: Vec::new(),
                storage_class: "STANDARD".into(),
                acl: "{}".into(),
                last_modified_ms: 0,
                data_id: id.to_string(),
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
            };
            let (first, tail) = stored(b"first").await;
            meta.put_object(row(&first), PutCondition::IfNoneMatchStar, tail)
                .await
                .unwrap();
            assert_eq!(get(&storage, &first).await, b"first");
            // A write whose precondition fails takes its tail down with it.
            let (second, tail) = stored(b"second").await;
            let refused = meta
                .put_object(row(&second), PutCondition::IfNoneMatchStar, tail)
                .await;
            assert_eq!(refused, Err(crate::meta::MetaError::PreconditionFailed));
            assert!(missing(&storage, &second).await);
        });
}

/// The azure backend's three write paths with objects of real size: held (up to
/// 1 MiB), one streamed Put Blob (up to its limit, lowered here to 2 MiB), and blocks
/// past it (of 1 MiB and 3 bytes, so that the uploads' buffers straddle them), read
/// back whole and in ranges, copied on the server side and listed.
#[test]
fn azure_writes_held_streamed_and_as_blocks() {
    if std::env::var_os("BLEEPSTORE_TEST_AZURE_UPSTREAM").is_none() {
        return;
    }
    let dir = TestDir::new("azure-blocks-large");
    let mut settings = azure_settings(&dir.0);
    settings.put_blob_bytes_max = 2 << 20;
    settings.block_bytes = (1 << 20) + 3;
    let storage = Storage::open_azure(settings).unwrap();
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(async move {
            storage.health().await.unwrap();
            let mut ids = Vec::new();
            for len in [
                1 << 20,
                (3 << 19) + 5,
                (5 << 20) + 17,
                2 << 20,
                (2 << 20) + 1,
            ] {
                let data = pattern(len);
                let id = storage.new_data_id();
                let mut upload = storage.create(&id, Some(len as u64)).await.unwrap();
                let mut buf = Vec::new();
                for piece in data.chunks(64 * 1024 + 11) {
                    buf.clear();
                    buf.extend_from_slice(piece);
                    let (result, returned) = upload.write(buf).await;
                    result.unwrap();
                    buf = returned;
                }
                upload.commit().await.unwrap();
                assert!(get(&storage, &id).await == data, "object of {len} bytes");
                let (offset, length) = (len as u64 / 3, len as u64 / 2);
                let object = storage.open_range(&id, offset, length).await.unwrap();
                let mut at = offset;
                let mut back = Vec::new();
                while at < offset + length {
                    let (read, buf) = object.read_at(Vec::with_capacity(100_000), at).await;
                    let n = read.unwrap();
                    assert!(n > 0);
                    let n = n.min((offset + length - at) as usize);
                    back.extend_from_slice(&buf[..n]);
                    at += n as u64;
                }
                assert!(back[..] == data[offset as usize..(offset + length) as usize]);
                ids.push(id);
            }
            let copy = storage.new_data_id();
            assert_eq!(storage.copy(&ids[2], &copy).await.unwrap(), (5 << 20) + 17);
            assert!(get(&storage, &copy).await == pattern((5 << 20) + 17));
            ids.push(copy);
            let listed: HashSet<String> = storage.list_ids().await.unwrap().into_iter().collect();
            for id in &ids {
                assert!(listed.contains(id), "{id} listed");
                storage.remove(id).await.unwrap();
            }
            assert!(storage.list_ids().await.unwrap().is_empty());
            storage.leave_runtime();
        });
}
