//! Tests of the local backend on a fresh temp dir each, on both monoio drivers (io_uring and
//! legacy), since directory fsync and statx go through different code in each.

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{is_valid_data_id, LocalStorage};

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

/// Runs `test` once on the io_uring driver and once on the legacy driver, each on its own
/// fresh data dir.
fn on_both_drivers<F, Fut>(name: &str, test: F)
where
    F: Fn(LocalStorage, PathBuf) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = TestDir::new(&format!("{name}-uring"));
    let (storage, _) = LocalStorage::open(&dir.0).unwrap();
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(test(storage, dir.0.clone()));

    let dir = TestDir::new(&format!("{name}-legacy"));
    let (storage, _) = LocalStorage::open(&dir.0).unwrap();
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(test(storage, dir.0.clone()));
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

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

/// Bytes that differ at every offset, so a misplaced piece cannot go unnoticed.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
        .collect()
}

/// Writes `data` in uneven pieces, commits it and returns its new id.
async fn put(storage: &LocalStorage, data: &[u8]) -> String {
    let mut temp = storage.create_temp().await.unwrap();
    let mut buf = Vec::new();
    for piece in data.chunks(data.len() / 5 + 1) {
        buf.clear();
        buf.extend_from_slice(piece);
        let (result, returned) = temp.write(buf).await;
        result.unwrap();
        buf = returned;
    }
    assert_eq!(temp.len(), data.len() as u64);
    let id = storage.new_data_id();
    temp.commit(&id).await.unwrap();
    id
}

/// Reads a whole object back through a small reused buffer.
async fn get(storage: &LocalStorage, id: &str) -> Vec<u8> {
    let object = storage.open_object(id).await.unwrap();
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

#[test]
fn write_in_pieces_commit_and_read_back() {
    on_both_drivers("roundtrip", |storage, root| async move {
        for size in [0, 1, 4096, 3 * 1024 * 1024] {
            let data = pattern(size);
            let id = put(&storage, &data).await;
            assert!(root.join("objects").join(&id[..2]).join(&id).is_file());
            assert_eq!(get(&storage, &id).await, data, "size {size}");
        }
        assert_eq!(count_tmp(&root.join("tmp")), 0);
    });
}

#[test]
fn abort_leaves_nothing_in_tmp() {
    on_both_drivers("abort", |storage, root| async move {
        let mut temp = storage.create_temp().await.unwrap();
        let (result, _) = temp.write(pattern(10_000)).await;
        result.unwrap();
        assert_eq!(count_tmp(&root.join("tmp")), 1);
        temp.abort().await;
        assert_eq!(count_tmp(&root.join("tmp")), 0);
    });
}

#[test]
fn drop_without_commit_leaves_nothing() {
    on_both_drivers("drop", |storage, root| async move {
        let mut temp = storage.create_temp().await.unwrap();
        let (result, _) = temp.write(pattern(10_000)).await;
        result.unwrap();
        drop(temp);
        assert_eq!(count_tmp(&root.join("tmp")), 0);
    });
}

#[test]
fn startup_removes_interrupted_writes() {
    let dir = TestDir::new("recovery");
    let (storage, report) = LocalStorage::open(&dir.0).unwrap();
    assert_eq!(report.temp_files_removed, 0);
    assert_eq!(count_files(&dir.0.join("objects")), 256);
    let kept = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .build()
        .unwrap()
        .block_on(async { put(&storage, b"survives a restart").await });
    // Three writes a crash interrupted, one named as create_temp names its files.
    std::fs::write(dir.0.join("tmp").join(storage.new_data_id()), b"0123").unwrap();
    std::fs::write(dir.0.join("tmp").join("a"), b"partial").unwrap();
    std::fs::write(dir.0.join("tmp").join("b"), b"").unwrap();

    let (storage, report) = LocalStorage::open(&dir.0).unwrap();
    assert_eq!(report.temp_files_removed, 3);
    assert_eq!(count_tmp(&dir.0.join("tmp")), 0);
    let data = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .build()
        .unwrap()
        .block_on(async { get(&storage, &kept).await });
    assert_eq!(data, b"survives a restart");
}

#[test]
fn sweep_removes_only_orphans() {
    on_both_drivers("sweep", |storage, root| async move {
        let kept_a = put(&storage, b"a").await;
        let kept_b = put(&storage, b"b").await;
        let orphan = put(&storage, b"orphan").await;
        let foreign = root.join("objects").join("00").join("notes.txt");
        std::fs::write(&foreign, b"not ours").unwrap();
        let referenced: HashSet<String> = [kept_a.clone(), kept_b.clone()].into();
        // This run's files are never swept: one may be published and not yet recorded.
        assert_eq!(storage.sweep_orphans(&referenced).unwrap(), (3, 0));

        // The next run (a restart, however quick) sweeps what the last one left unrecorded,
        // and none of its own files, however old their times.
        let (next_run, _) = LocalStorage::open(&root).unwrap();
        let own = put(&next_run, b"published, not yet recorded").await;
        let old_time = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(root.join("objects").join(&own[..2]).join(&own))
            .unwrap()
            .set_modified(old_time)
            .unwrap();
        assert_eq!(next_run.sweep_orphans(&referenced).unwrap(), (4, 1));
        assert_eq!(get(&next_run, &kept_a).await, b"a");
        assert_eq!(get(&next_run, &kept_b).await, b"b");
        assert_eq!(get(&next_run, &own).await, b"published, not yet recorded");
        let missing = next_run.open_object(&orphan).await.err().unwrap();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(foreign.is_file());
        assert_eq!(next_run.sweep_orphans(&referenced).unwrap(), (3, 0));
    });
}

#[test]
fn remove_object_and_missing_objects() {
    on_both_drivers("remove", |storage, _root| async move {
        let id = put(&storage, b"short-lived").await;
        storage.remove_object(&id).await.unwrap();
        let missing = storage.open_object(&id).await.err().unwrap();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        // A second removal, as a retried delete would do, is not an error.
        storage.remove_object(&id).await.unwrap();
    });
}

#[test]
fn ids_are_unique_and_well_formed() {
    let dir = TestDir::new("ids");
    let (storage, _) = LocalStorage::open(&dir.0).unwrap();
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
    let (restarted, _) = LocalStorage::open(&dir.0).unwrap();
    for _ in 0..100_000 {
        assert!(seen.insert(restarted.new_data_id()));
    }
    assert_eq!(seen.len(), 300_000);
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
    on_both_drivers("invalid", |storage, root| async move {
        for id in bad {
            assert!(!is_valid_data_id(id), "{id:?}");
            let err = storage.open_object(id).await.err().unwrap();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{id:?}");
            let err = storage.remove_object(id).await.err().unwrap();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{id:?}");
            let temp = storage.create_temp().await.unwrap();
            let err = temp.commit(id).await.err().unwrap();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{id:?}");
        }
        assert_eq!(count_tmp(&root.join("tmp")), 0);
    });
}
