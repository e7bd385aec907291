//! Measures the durable write path of the local backend: small files (create + write +
//! commit, each with its fdatasync, rename and directory fsync) one at a time and with many
//! concurrent tasks on one runtime, and one large streamed object. The small-file rates decide
//! the size below which objects should live inline in their metadata row instead.
//!
//! Run: `cargo bench --bench storage_write` (BLEEPSTORE_BENCH_DIR picks the data dir's parent;
//! it must be on the disk under test, by default the system temp dir).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bleepstore::storage::Storage;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn main() {
    let parent = std::env::var_os("BLEEPSTORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let root = parent.join(format!("bleepstore-bench-{}", std::process::id()));
    let (storage, _) = Storage::open_local(&root).expect("open data dir");
    println!("data dir: {}", root.display());

    println!("-- io_uring driver");
    let mut uring = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .with_entries(1024)
        .enable_timer()
        .build()
        .expect("io_uring runtime");
    uring.block_on(run_all(&storage));

    println!("-- legacy driver");
    let mut legacy = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("legacy runtime");
    legacy.block_on(small_files(&storage, 4 * KIB, 1, 1000));
    legacy.block_on(small_files(&storage, 4 * KIB, 64, 4000));

    std::fs::remove_dir_all(&root).expect("remove bench dir");
}

async fn run_all(storage: &Storage) {
    small_files(storage, 4 * KIB, 1, 2000).await;
    small_files(storage, 4 * KIB, 64, 10_000).await;
    small_files(storage, 64 * KIB, 64, 4000).await;
    small_files(storage, 128 * KIB, 64, 2000).await;
    large_file(storage, 256 * MIB, MIB).await;
}

/// `files` objects of `size` bytes, spread over `tasks` concurrent tasks each writing one
/// object at a time; removes them afterwards.
async fn small_files(storage: &Storage, size: usize, tasks: usize, files: usize) {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let storage = storage.clone();
            let count = files / tasks + usize::from(task < files % tasks);
            monoio::spawn(async move {
                let mut ids = Vec::with_capacity(count);
                let mut buf = vec![0xA5u8; size];
                for _ in 0..count {
                    let id = storage.new_data_id();
                    let mut upload = storage
                        .create(&id, Some(size as u64))
                        .await
                        .expect("create");
                    let (result, returned) = upload.write(buf).await;
                    result.expect("write");
                    buf = returned;
                    upload.commit().await.expect("commit");
                    ids.push(id);
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(files);
    for handle in handles {
        ids.extend(handle.await);
    }
    let elapsed = start.elapsed();
    report_files(size, tasks, ids.len(), elapsed);
    for id in ids {
        storage.remove(&id).await.expect("remove");
    }
}

fn report_files(size: usize, tasks: usize, files: usize, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{:>4} KiB x {files:>6} files, {tasks:>2} tasks: {:>8.0} files/s  {:>7.1} MiB/s  \
         ({:.3} ms/file/task)",
        size / KIB,
        files as f64 / secs,
        (files * size) as f64 / MIB as f64 / secs,
        secs * 1000.0 * tasks as f64 / files as f64,
    );
}

/// One object of `total` bytes written in `piece`-sized writes, then committed.
async fn large_file(storage: &Storage, total: usize, piece: usize) {
    let mut buf: Vec<u8> = (0..piece).map(|i| i as u8).collect();
    let start = Instant::now();
    let id = storage.new_data_id();
    let mut upload = storage
        .create(&id, Some(total as u64))
        .await
        .expect("create");
    for _ in 0..total / piece {
        let (result, returned) = upload.write(buf).await;
        result.expect("write");
        buf = returned;
    }
    let written = start.elapsed();
    upload.commit().await.expect("commit");
    let elapsed = start.elapsed();
    let mib = total as f64 / MIB as f64;
    println!(
        "{mib:.0} MiB in {} KiB pieces: {:.0} MiB/s with commit ({:.0} MiB/s to page cache, \
         commit {:.0} ms)",
        piece / KIB,
        mib / elapsed.as_secs_f64(),
        mib / written.as_secs_f64(),
        (elapsed - written).as_secs_f64() * 1000.0,
    );
    storage.remove(&id).await.expect("remove");
}
