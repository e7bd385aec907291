//! The local disk backend: startup (directory layout, crash recovery, orphan sweep) on the
//! blocking startup path with std::fs, and the request path (temp files, publish, open, read,
//! remove) through monoio so it never blocks a runtime thread.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use monoio::fs::{File, OpenOptions};

use super::data_id::{check_data_id, is_valid_data_id, IdSeed};
use super::durable_write;

/// Name of the directory holding files still being written.
const TMP_DIR: &str = "tmp";
/// Name of the directory holding published objects, one level of fan-out below it.
const OBJECTS_DIR: &str = "objects";
/// Fan-out directories under `objects/`: one per value of the id's first byte, so that no
/// directory grows past a few thousand entries per million objects.
const FANOUT_DIRS: u32 = 256;

/// A handle on one data dir. Cloning is cheap (one `Arc`); clones may live on any core.
#[derive(Clone, Debug)]
pub struct LocalStorage {
    inner: Arc<Inner>,
}

/// The paths and id seed every clone shares.
#[derive(Debug)]
struct Inner {
    root: PathBuf,
    tmp_dir: PathBuf,
    objects_dir: PathBuf,
    seed: IdSeed,
}

/// What startup found and repaired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Files in `tmp/` left by writes that a crash interrupted; all were removed.
    pub temp_files_removed: u64,
}

impl LocalStorage {
    /// Prepares the data dir at `root` before any runtime serves: creates `root`, `tmp/` and
    /// `objects/00`..`objects/ff` as needed (fsyncing each parent that gained an entry),
    /// removes everything in `tmp/`, and makes `tmp/<session>/` for this run's writes.
    ///
    /// Temp files live in a directory per run because a process killed with writes in
    /// flight on io_uring can still have operations completing in the kernel after it is
    /// reaped: a late create or rename into its own, now removed, directory fails instead
    /// of leaving a file behind this run's cleanup.
    pub fn open(root: &Path) -> io::Result<(LocalStorage, RecoveryReport)> {
        let seed = IdSeed::from_urandom()?;
        let session = seed.next_id();
        let mut inner = Inner {
            root: root.to_path_buf(),
            tmp_dir: root.join(TMP_DIR),
            objects_dir: root.join(OBJECTS_DIR),
            seed,
        };
        create_layout(&inner)?;
        let temp_files_removed = remove_temp_files(&inner.tmp_dir)?;
        inner.tmp_dir = inner.tmp_dir.join(session);
        fs::create_dir(&inner.tmp_dir)?;
        if temp_files_removed > 0 {
            log::info!("removed {temp_files_removed} interrupted writes from tmp/");
        }
        let storage = LocalStorage {
            inner: Arc::new(inner),
        };
        Ok((storage, RecoveryReport { temp_files_removed }))
    }

    /// The data dir this handle serves, for free-space and health checks.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// A new data id: 32 lower-case hex digits, never handed out twice (see `data_id`).
    pub fn new_data_id(&self) -> String {
        self.inner.seed.next_id()
    }

    /// Creates an empty temp file to stream a body into. O_EXCL guarantees the file is new, so
    /// two writers can never share one even if ids were to repeat.
    pub async fn create_temp(&self) -> io::Result<TempObject> {
        let path = self.inner.tmp_dir.join(self.new_data_id());
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        Ok(TempObject {
            file,
            len: 0,
            write_failed: false,
            guard: RemoveOnDrop { path, armed: true },
            storage: self.clone(),
        })
    }

    /// Opens a published object for reading; `NotFound` when no file has that id.
    pub async fn open_object(&self, data_id: &str) -> io::Result<ObjectFile> {
        check_data_id(data_id)?;
        let file = File::open(self.object_path(data_id)).await?;
        let len = file.metadata().await?.len();
        Ok(ObjectFile { file, len })
    }

    /// Reads `(data_id, offset, len)` ranges of published objects in order, off the
    /// runtime, and returns their checksum (for a copy asked to carry a new algorithm).
    pub async fn checksum_ranges(
        &self,
        ranges: Vec<(String, u64, u64)>,
        mut checksum: crate::checksum::Checksummer,
    ) -> io::Result<Vec<u8>> {
        let mut sources = Vec::with_capacity(ranges.len());
        for (data_id, offset, len) in ranges {
            check_data_id(&data_id)?;
            sources.push((self.object_path(&data_id), offset, len));
        }
        off_runtime(move || {
            use std::io::{Read, Seek, SeekFrom};
            let mut buf = vec![0u8; 1024 * 1024];
            for (path, offset, len) in sources {
                let mut from = std::fs::File::open(&path)?;
                from.seek(SeekFrom::Start(offset))?;
                let mut from = from.take(len);
                loop {
                    let n = from.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    checksum.update(&buf[..n]);
                }
            }
            Ok(checksum.finalize())
        })
        .await
    }

    /// `remove_object` for the startup path, before any runtime runs.
    pub fn remove_object_now(&self, data_id: &str) -> io::Result<()> {
        check_data_id(data_id)?;
        match fs::remove_file(self.object_path(data_id)) {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Removes a published object; removing one already gone succeeds, so a retried delete is
    /// harmless. The directory is not fsynced: if a crash forgets the removal, the file is an
    /// orphan that `sweep_orphans` removes at the next startup.
    pub async fn remove_object(&self, data_id: &str) -> io::Result<()> {
        check_data_id(data_id)?;
        match monoio::fs::remove_file(self.object_path(data_id)).await {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Removes object files whose id is not in `referenced` and that this process did
    /// not write. A crash between publishing a file and committing its metadata leaves
    /// such orphans. Files this run wrote are never touched, so the sweep can run while
    /// writes are served: a file published but not yet recorded is always this run's,
    /// and the ids tell (not the file times, which a quick restart leaves ambiguous).
    /// Files whose names are not data ids are not ours and are left.
    /// Returns (files examined, files removed).
    pub fn sweep_orphans(&self, referenced: &HashSet<String>) -> io::Result<(u64, u64)> {
        let (mut examined, mut removed) = (0, 0);
        for index in 0..FANOUT_DIRS {
            let dir = self.inner.objects_dir.join(fanout_name(index));
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(id) = name.to_str().filter(|id| is_valid_data_id(id)) else {
                    log::warn!("leaving unexpected entry {}", entry.path().display());
                    continue;
                };
                examined += 1;
                if referenced.contains(id) || self.inner.seed.issued(id) {
                    continue;
                }
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok((examined, removed))
    }

    /// `objects/<xx>`, the fan-out directory of a (validated) id.
    fn fanout_dir(&self, data_id: &str) -> PathBuf {
        self.inner.objects_dir.join(&data_id[..2])
    }

    /// `objects/<xx>/<data_id>` for a (validated) id.
    fn object_path(&self, data_id: &str) -> PathBuf {
        self.fanout_dir(data_id).join(data_id)
    }
}

/// Creates every directory of the layout that is missing. A new directory entry is durable only
/// once its parent is fsynced, so each parent that gained an entry is synced, deepest first.
fn create_layout(inner: &Inner) -> io::Result<()> {
    let root_created = ensure_dir(&inner.root)?;
    let objects_created = ensure_dir(&inner.objects_dir)?;
    let tmp_created = ensure_dir(&inner.tmp_dir)?;
    let mut fanout_created = false;
    for index in 0..FANOUT_DIRS {
        fanout_created |= ensure_dir(&inner.objects_dir.join(fanout_name(index)))?;
    }
    if fanout_created {
        fsync_dir(&inner.objects_dir)?;
    }
    if objects_created || tmp_created {
        fsync_dir(&inner.root)?;
    }
    if root_created {
        // Only the last level is synced into its parent; ancestors created along with it are
        // an operator's setup, not data, and a lost one shows up as a startup error.
        if let Some(parent) = inner.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent)?;
        }
    }
    Ok(())
}

/// Creates `dir` (and missing parents); true when `dir` itself did not exist before.
fn ensure_dir(dir: &Path) -> io::Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    fs::create_dir_all(dir)?;
    Ok(true)
}

/// Blocking directory fsync for the startup path.
fn fsync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Two lower-case hex digits naming fan-out directory `index`.
fn fanout_name(index: u32) -> String {
    format!("{index:02x}")
}

/// Removes everything in `tmp/`: files of writes a crash interrupted and the
/// directories of earlier runs. Unlinks are not fsynced: one a crash forgets is redone
/// at the next startup. A directory that refills while being removed (a dead
/// process's last operations still completing) is tried again.
fn remove_temp_files(tmp_dir: &Path) -> io::Result<u64> {
    let mut removed = 0;
    for entry in fs::read_dir(tmp_dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            fs::remove_file(entry.path())?;
            removed += 1;
            continue;
        }
        let mut attempt = 0;
        loop {
            for file in fs::read_dir(entry.path())? {
                let file = file?;
                match fs::remove_file(file.path()) {
                    Ok(()) => removed += 1,
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                    Err(error) => return Err(error),
                }
            }
            match fs::remove_dir(entry.path()) {
                Ok(()) => break,
                Err(error) if attempt < 50 && error.raw_os_error() == Some(libc::ENOTEMPTY) => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(error) => return Err(error),
            }
        }
    }
    Ok(removed)
}

/// A file in `tmp/` receiving a body. End it with [`TempObject::commit`] or
/// [`TempObject::abort`]; dropped without either (a task cancelled mid-body), it removes its
/// file with a blocking unlink in `Drop`. That is a rare error path and one short syscall, and
/// a crash before it runs is covered by the `tmp/` cleanup in [`LocalStorage::open`].
pub struct TempObject {
    file: File,
    len: u64,
    /// Set when a write failed part-way: the bytes on disk are then unknown, so the only
    /// sound end is `abort`, and `commit` refuses.
    write_failed: bool,
    guard: RemoveOnDrop,
    storage: LocalStorage,
}

impl TempObject {
    /// Appends `buf` at the current end, continuing partial writes, and hands the buffer back
    /// for reuse. After an error the object can only be aborted.
    pub async fn write(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        if self.write_failed {
            return (Err(earlier_write_failed()), buf);
        }
        let written = buf.len() as u64;
        let (result, buf) = self.file.write_all_at(buf, self.len).await;
        match result {
            Ok(()) => self.len += written,
            Err(_) => self.write_failed = true,
        }
        (result, buf)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Appends byte ranges of stored objects, in order, and returns the MD5 of what
    /// was appended: UploadPartCopy needs the part's ETag, so these bytes are read and
    /// hashed once on a short-lived thread (never on the runtime) while they are written.
    pub async fn append_ranges_hashed(
        &mut self,
        ranges: Vec<(String, u64, u64)>,
        checksum: Option<crate::checksum::Checksummer>,
    ) -> io::Result<([u8; 16], Option<Vec<u8>>)> {
        if self.write_failed {
            return Err(earlier_write_failed());
        }
        let mut sources = Vec::with_capacity(ranges.len());
        for (data_id, offset, len) in ranges {
            check_data_id(&data_id)?;
            sources.push((self.storage.object_path(&data_id), offset, len));
        }
        let target = self.guard.path.clone();
        let start = self.len;
        type Hashed = (u64, [u8; 16], Option<Vec<u8>>);
        let copied = off_runtime(move || -> io::Result<Hashed> {
            let mut checksum = checksum;
            use md5::{Digest, Md5};
            use std::io::{Read, Seek, SeekFrom, Write};
            let mut to = std::fs::OpenOptions::new().write(true).open(&target)?;
            to.seek(SeekFrom::Start(start))?;
            let mut md5 = Md5::new();
            let mut buf = vec![0u8; 1024 * 1024];
            let mut total = 0u64;
            for (path, offset, len) in sources {
                let mut from = std::fs::File::open(&path)?;
                from.seek(SeekFrom::Start(offset))?;
                let mut from = from.take(len);
                loop {
                    let n = from.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    md5.update(&buf[..n]);
                    if let Some(summer) = &mut checksum {
                        summer.update(&buf[..n]);
                    }
                    to.write_all(&buf[..n])?;
                    total += n as u64;
                }
            }
            Ok((total, md5.finalize().into(), checksum.map(|c| c.finalize())))
        })
        .await;
        match copied {
            Ok((n, md5, checksum)) => {
                self.len += n;
                Ok((md5, checksum))
            }
            Err(error) => {
                self.write_failed = true;
                Err(error)
            }
        }
    }

    /// Appends a whole stored object in the kernel (`copy_file_range`, which std's
    /// `io::copy` uses between files), on a short-lived thread so the runtime never
    /// blocks: the bytes never pass through user space. Returns the bytes copied.
    pub async fn append_object(&mut self, source_data_id: &str) -> io::Result<u64> {
        if self.write_failed {
            return Err(earlier_write_failed());
        }
        check_data_id(source_data_id)?;
        let source = self.storage.object_path(source_data_id);
        let target = self.guard.path.clone();
        let offset = self.len;
        let copied = off_runtime(move || -> io::Result<u64> {
            use std::io::{Seek, SeekFrom};
            let mut from = std::fs::File::open(&source)?;
            let mut to = std::fs::OpenOptions::new().write(true).open(&target)?;
            to.seek(SeekFrom::Start(offset))?;
            std::io::copy(&mut from, &mut to)
        })
        .await;
        match copied {
            Ok(n) => self.len += n,
            Err(_) => self.write_failed = true,
        }
        copied
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the written bytes durable under `data_id` (see `durable_write::publish` for the
    /// sequence). On error the temp file is removed and nothing is published.
    pub async fn commit(mut self, data_id: &str) -> io::Result<()> {
        let published = match self.check_committable(data_id) {
            Ok(()) => {
                let target_dir = self.storage.fanout_dir(data_id);
                let target_path = target_dir.join(data_id);
                let temp_path = &self.guard.path;
                durable_write::publish(self.file, temp_path, &target_path, &target_dir).await
            }
            Err(err) => Err(err),
        };
        match published {
            Ok(()) => self.guard.armed = false,
            Err(_) => self.guard.remove().await,
        }
        published
    }

    /// Refuses to publish under a malformed id or after a failed write.
    fn check_committable(&self, data_id: &str) -> io::Result<()> {
        check_data_id(data_id)?;
        if self.write_failed {
            return Err(earlier_write_failed());
        }
        Ok(())
    }

    /// Discards the temp file (client went away, digest mismatch, ...).
    pub async fn abort(mut self) {
        drop(self.file);
        self.guard.remove().await;
    }
}

/// Runs blocking file work on a short-lived thread and awaits its result, so a
/// runtime thread never blocks on it.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (reply_tx, reply_rx) = flume::bounded(1);
    std::thread::Builder::new()
        .name("bleepstore-copy".into())
        .spawn(move || {
            let _ = reply_tx.send(work());
        })?;
    reply_rx
        .recv_async()
        .await
        .unwrap_or_else(|_| Err(io::Error::other("copy thread ended without a reply")))
}

/// The error `write` and `commit` return once a write has failed part-way.
fn earlier_write_failed() -> io::Error {
    io::Error::other("an earlier write to this temp object failed")
}

/// Removes a temp file unless disarmed: the drop guard behind [`TempObject`].
struct RemoveOnDrop {
    path: PathBuf,
    armed: bool,
}

impl RemoveOnDrop {
    /// Removes the file through the ring and disarms. A failure is only logged: the caller has
    /// already lost the object, and the next startup clears `tmp/` anyway.
    async fn remove(&mut self) {
        self.armed = false;
        match monoio::fs::remove_file(&self.path).await {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                log::warn!("removing temp file {}: {err}", self.path.display());
            }
            _ => {}
        }
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Err(err) = fs::remove_file(&self.path) {
            if err.kind() != io::ErrorKind::NotFound {
                log::warn!(
                    "removing abandoned temp file {}: {err}",
                    self.path.display()
                );
            }
        }
    }
}

/// A published object opened for reading.
pub struct ObjectFile {
    file: File,
    len: u64,
}

impl ObjectFile {
    /// Size in bytes, read once at open; published files never change.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an empty object.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads up to `buf.capacity()` bytes at `offset` into `buf` from index 0, setting its
    /// length to the count read (0 at the end of the file).
    pub async fn read_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
        self.file.read_at(buf, offset).await
    }

    /// The open file, for callers that splice it to a socket.
    pub fn as_file(&self) -> &File {
        &self.file
    }
}
