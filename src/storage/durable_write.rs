//! The durable publish of an object file: the one place that decides the order of fsyncs and
//! renames, so that after a crash or power loss a name under `objects/` always points at
//! complete bytes. Callers write the temp file; this module only makes it durable and visible.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use monoio::fs::{File, OpenOptions};

/// Publishes `file`, whose bytes are all written and which lives at `temp_path`, as
/// `target_path` inside `target_dir`. When this returns `Ok` the bytes are durable under the
/// new name. On `Err` nothing is left under `target_path`; the temp file may remain and is the
/// caller's to remove.
pub(super) async fn publish(
    file: File,
    temp_path: &Path,
    target_path: &Path,
    target_dir: &Path,
) -> io::Result<()> {
    // Step 1: flush the data to disk before any name points at it. Without this the rename
    // could reach the disk first (filesystems reorder metadata and data), and a crash would
    // leave a committed name over a zero-length or partly written file. fdatasync suffices
    // rather than fsync: it also persists the file size, which reading the data back needs,
    // and skips only timestamps we never use.
    #[cfg(feature = "fault-injection")]
    crate::fault::io(crate::fault::Step::Sync)?;
    file.sync_data().await?;
    // The descriptor is no longer needed; dropping it lets monoio close it in the background
    // rather than adding a round trip to every publish.
    drop(file);

    // Step 2: give the bytes their final name. rename(2) within one filesystem is atomic, so
    // a reader sees either no object or the complete one, never a growing file. `tmp/` and
    // `objects/` live under the same data dir for exactly this reason.
    #[cfg(feature = "fault-injection")]
    crate::fault::io(crate::fault::Step::Rename)?;
    monoio::fs::rename(temp_path, target_path).await?;

    // Step 3: fsync the directory that received the name. The rename changed that directory,
    // not the file, and the change is not durable until the directory itself is synced: after
    // a power loss the object would otherwise vanish although we reported it stored.
    if let Err(err) = sync_dir(target_dir).await {
        // The caller will not record an object we could not make durable, so take the name
        // down again rather than leave an unreferenced file for the startup sweep.
        if let Err(remove_err) = monoio::fs::remove_file(target_path).await {
            log::warn!(
                "removing {} after a failed fsync: {remove_err}",
                target_path.display()
            );
        }
        return Err(err);
    }
    #[cfg(feature = "fault-injection")]
    crate::fault::pass(crate::fault::Step::Published);
    Ok(())
}

/// Fsyncs a directory so that the names created, renamed or removed in it survive power loss.
/// Linux allows fsync on a descriptor opened read-only, and O_DIRECTORY makes the open fail
/// rather than sync something else if the path is not a directory. Both the io_uring and the
/// legacy driver open and fsync directories this way (the storage tests run on both).
pub(super) async fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    crate::fault::io(crate::fault::Step::SyncDir)?;
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .await?;
    handle.sync_all().await
}
