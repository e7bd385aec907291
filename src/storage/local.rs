//! The local disk backend: startup (directory layout, crash recovery) on the blocking
//! startup path with std::fs, and the request path (create, write, publish, open,
//! read, remove) through monoio so it never blocks a runtime thread. Blocking work
//! monoio has no call for (copies, directory walks) runs on the bounded pool.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use monoio::buf::IoBuf;
use monoio::fs::{File, OpenOptions};

use super::data_id::{check_data_id, is_valid_data_id, IdSeed};
use super::durable_write;
use super::pool::Pool;
use super::ByteStage;
use crate::limits;

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
    /// Where small objects go instead of files, once attached (`with_inline`): chunk
    /// rows in the metadata database, made durable by the group commit of their row.
    inline: Option<super::SqliteStorage>,
}

/// The paths, id seed and copy pool every clone shares.
#[derive(Debug)]
struct Inner {
    root: PathBuf,
    tmp_dir: PathBuf,
    objects_dir: PathBuf,
    seed: IdSeed,
    pool: Pool,
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
            pool: Pool::start(limits::COPY_THREADS, limits::COPY_QUEUE_MAX)?,
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
            inline: None,
        };
        Ok((storage, RecoveryReport { temp_files_removed }))
    }

    /// This backend with small objects kept in the metadata database (`inline`).
    pub fn with_inline(self, inline: super::SqliteStorage) -> LocalStorage {
        LocalStorage {
            inline: Some(inline),
            ..self
        }
    }

    /// The store of small objects, once attached.
    pub fn inline(&self) -> Option<&super::SqliteStorage> {
        self.inline.as_ref()
    }

    /// The data dir this handle serves.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    pub fn new_data_id(&self) -> String {
        self.inner.seed.next_id()
    }

    pub fn issued(&self, data_id: &str) -> bool {
        self.inner.seed.issued(data_id)
    }

    /// Starts the object `data_id` as a temp file to stream its bytes into. O_EXCL
    /// guarantees the file is new, so two writers can never share one.
    /// `size`, when the upload declared it, decides how the bytes are written: an object
    /// of at least `limits::DIRECT_WRITE_MIN_BYTES` goes around the page cache.
    pub async fn create(&self, data_id: &str, size: Option<u64>) -> io::Result<TempObject> {
        check_data_id(data_id)?;
        #[cfg(feature = "fault-injection")]
        crate::fault::io(crate::fault::Step::Create)?;
        let path = self.inner.tmp_dir.join(data_id);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await?;
        let direct = match size {
            Some(size) if size >= limits::DIRECT_WRITE_MIN_BYTES => DirectStage::begin(&file),
            _ => None,
        };
        Ok(TempObject {
            file: Rc::new(file),
            data_id: data_id.to_string(),
            len: 0,
            kicked: 0,
            write_failed: false,
            direct,
            #[cfg(feature = "fault-injection")]
            write_fault: crate::fault::plan_writes(),
            guard: RemoveOnDrop { path, armed: true },
            storage: self.clone(),
        })
    }

    /// Opens a published object for reading; `NotFound` when no file has that id.
    pub async fn open_object(&self, data_id: &str) -> io::Result<ObjectFile> {
        check_data_id(data_id)?;
        #[cfg(feature = "fault-injection")]
        crate::fault::io(crate::fault::Step::Open)?;
        let file = File::open(self.object_path(data_id)).await?;
        let len = file.metadata().await?.len();
        Ok(ObjectFile { file, len })
    }

    /// Publishes a copy of the whole object `source` as `target`, copied in the kernel
    /// (`copy_file_range`, which std's `io::copy` uses between files) on the pool: the
    /// bytes never pass through user space. Returns the bytes copied.
    pub async fn copy(&self, source: &str, target: &str) -> io::Result<u64> {
        check_data_id(source)?;
        let from = self.object_path(source);
        let mut temp = self.create(target, None).await?;
        let to = temp.guard.path.clone();
        #[cfg(feature = "fault-injection")]
        if let Err(error) = crate::fault::io(crate::fault::Step::Copy) {
            temp.abort().await;
            return Err(error);
        }
        let copied = self
            .inner
            .pool
            .run(move || {
                let mut from = fs::File::open(&from)?;
                let mut to = fs::OpenOptions::new().write(true).open(&to)?;
                io::copy(&mut from, &mut to)
            })
            .await;
        match copied {
            Ok(n) => {
                temp.len = n;
                temp.commit().await?;
                Ok(n)
            }
            Err(error) => {
                temp.abort().await;
                Err(error)
            }
        }
    }

    /// Publishes, as `target`, byte ranges `(data id, offset, length)` of stored objects
    /// in order, passing every byte through `stage` (a hasher, say) on the way; returns
    /// the bytes copied and the stage.
    pub async fn copy_ranges<S: ByteStage + 'static>(
        &self,
        ranges: Vec<(String, u64, u64)>,
        target: &str,
        stage: S,
    ) -> io::Result<(u64, S)> {
        let sources = self.range_paths(ranges)?;
        let mut temp = self.create(target, None).await?;
        let to = temp.guard.path.clone();
        #[cfg(feature = "fault-injection")]
        if let Err(error) = crate::fault::io(crate::fault::Step::Copy) {
            temp.abort().await;
            return Err(error);
        }
        let copied = self
            .inner
            .pool
            .run(move || {
                let mut to = fs::OpenOptions::new().write(true).open(&to)?;
                let mut stage = stage;
                let mut total = 0u64;
                read_ranges(&sources, |bytes| {
                    stage.update(bytes);
                    total += bytes.len() as u64;
                    io::Write::write_all(&mut to, bytes)
                })?;
                Ok((total, stage))
            })
            .await;
        match copied {
            Ok((n, stage)) => {
                temp.len = n;
                temp.commit().await?;
                Ok((n, stage))
            }
            Err(error) => {
                temp.abort().await;
                Err(error)
            }
        }
    }

    /// Passes byte ranges of stored objects through `stage`, in order, on the pool.
    pub async fn scan<S: ByteStage + 'static>(
        &self,
        ranges: Vec<(String, u64, u64)>,
        stage: S,
    ) -> io::Result<S> {
        let sources = self.range_paths(ranges)?;
        #[cfg(feature = "fault-injection")]
        crate::fault::io(crate::fault::Step::Scan)?;
        self.inner
            .pool
            .run(move || {
                let mut stage = stage;
                read_ranges(&sources, |bytes| {
                    stage.update(bytes);
                    Ok(())
                })?;
                Ok(stage)
            })
            .await
    }

    fn range_paths(&self, ranges: Vec<(String, u64, u64)>) -> io::Result<Vec<(PathBuf, u64, u64)>> {
        ranges
            .into_iter()
            .map(|(data_id, offset, len)| {
                check_data_id(&data_id)?;
                Ok((self.object_path(&data_id), offset, len))
            })
            .collect()
    }

    /// Removes a published object; removing one already gone succeeds, so a retried
    /// delete is harmless. The directory is not fsynced: a removal a crash forgets
    /// leaves a file the reclaim table or the sweep removes again.
    pub async fn remove(&self, data_id: &str) -> io::Result<()> {
        check_data_id(data_id)?;
        #[cfg(feature = "fault-injection")]
        crate::fault::io(crate::fault::Step::Remove)?;
        match monoio::fs::remove_file(self.object_path(data_id)).await {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// Every published object's id, walked on the pool. Entries whose names are not
    /// data ids are not ours: they are logged and left.
    pub async fn list_ids(&self) -> io::Result<Vec<String>> {
        #[cfg(feature = "fault-injection")]
        crate::fault::io(crate::fault::Step::List)?;
        let objects_dir = self.inner.objects_dir.clone();
        self.inner
            .pool
            .run(move || {
                let mut ids = Vec::new();
                for index in 0..FANOUT_DIRS {
                    let dir = objects_dir.join(fanout_name(index));
                    for entry in fs::read_dir(&dir)? {
                        let entry = entry?;
                        match entry.file_name().to_str().filter(|id| is_valid_data_id(id)) {
                            Some(id) => ids.push(id.to_string()),
                            None => {
                                log::warn!("leaving unexpected entry {}", entry.path().display())
                            }
                        }
                    }
                }
                Ok(ids)
            })
            .await
    }

    /// The write path's first step, tried: a temp file created in the data dir, then
    /// removed.
    pub async fn health(&self) -> io::Result<()> {
        self.create(&self.new_data_id(), None).await?.abort().await;
        Ok(())
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

/// Reads `(path, offset, length)` ranges in order, handing each buffer to `each`.
fn read_ranges(
    sources: &[(PathBuf, u64, u64)],
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut buf = vec![0u8; limits::COPY_BUFFER_BYTES];
    for (path, offset, len) in sources {
        let mut from = fs::File::open(path)?;
        from.seek(SeekFrom::Start(*offset))?;
        let mut from = from.take(*len);
        let mut read = 0u64;
        loop {
            let n = from.read(&mut buf)?;
            if n == 0 {
                break;
            }
            read += n as u64;
            each(&buf[..n])?;
        }
        if read != *len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a stored object is shorter than the range asked of it",
            ));
        }
    }
    Ok(())
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

/// An object being written: a file in `tmp/` receiving its bytes. End it with
/// [`TempObject::commit`] or [`TempObject::abort`]; dropped without either (a task
/// cancelled mid-body), it removes its file with a blocking unlink in `Drop`. That is a
/// rare error path and one short syscall, and a crash before it runs is covered by the
/// `tmp/` cleanup in [`LocalStorage::open`].
pub struct TempObject {
    /// Shared with the direct write in flight, if any.
    file: Rc<File>,
    data_id: String,
    len: u64,
    /// Where the writeback was last kicked (`limits::WRITEBACK_KICK_BYTES`).
    kicked: u64,
    /// Set when a write failed part-way: the bytes on disk are then unknown, so the only
    /// sound end is `abort`, and `commit` refuses.
    write_failed: bool,
    /// A large upload's bytes go around the page cache (`O_DIRECT`) through this.
    direct: Option<DirectStage>,
    /// The injected fault this object's writes are to suffer.
    #[cfg(feature = "fault-injection")]
    write_fault: Option<crate::fault::WriteFault>,
    guard: RemoveOnDrop,
    storage: LocalStorage,
}

/// `TempObject::write` of an upload written around the page cache: `bytes` are
/// staged, and each full stage is written around the page cache; `len` counts them.
async fn write_direct(
    stage: &mut DirectStage,
    file: &Rc<File>,
    len: &mut u64,
    mut bytes: &[u8],
) -> io::Result<()> {
    while !bytes.is_empty() {
        let taken = stage.take(bytes);
        bytes = &bytes[taken..];
        *len += taken as u64;
        if stage.is_full() {
            stage.flush(file).await?;
        }
    }
    Ok(())
}

impl TempObject {
    /// Appends `buf` at the current end, continuing partial writes, and hands the buffer back
    /// for reuse. After an error the object can only be aborted.
    pub async fn write(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        if self.write_failed {
            return (Err(earlier_write_failed()), buf);
        }
        if let Some(stage) = &mut self.direct {
            let result = write_direct(stage, &self.file, &mut self.len, &buf).await;
            if result.is_err() {
                self.write_failed = true;
            }
            return (result, buf);
        }
        let written = buf.len() as u64;
        #[cfg(feature = "fault-injection")]
        let (result, buf) =
            crate::fault::write_all_at(&self.file, buf, self.len, &mut self.write_fault).await;
        #[cfg(not(feature = "fault-injection"))]
        let (result, buf) = self.file.write_all_at(buf, self.len).await;
        match result {
            Ok(()) => {
                self.len += written;
                if self.len - self.kicked >= limits::WRITEBACK_KICK_BYTES {
                    self.kick_writeback();
                }
            }
            Err(_) => self.write_failed = true,
        }
        (result, buf)
    }

    /// Starts the writeback of what was written since the last kick, without waiting
    /// for it: the kernel would otherwise hold a large upload's pages dirty until the
    /// publishing fsync, which would then write them all while the client waits. Only a
    /// hint: the fsync still makes the bytes durable.
    fn kick_writeback(&mut self) {
        use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
        use std::os::fd::AsRawFd;
        let (from, len) = (self.kicked, self.len - self.kicked);
        self.kicked = self.len;
        // DONTNEED starts the writeback of the range's dirty pages (and drops none of
        // them: they are not clean yet).
        if let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) {
            let _ = posix_fadvise(
                self.file.as_raw_fd(),
                from,
                len,
                PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            );
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes the written bytes durable under the object's id (see `durable_write::publish`
    /// for the sequence). On error the temp file is removed and nothing is published.
    pub async fn commit(mut self) -> io::Result<()> {
        if !self.write_failed {
            if let Some(stage) = self.direct.take() {
                if let Err(error) = stage.finish(&self.file).await {
                    log::warn!("writing the end of an upload: {error}");
                    self.write_failed = true;
                }
            }
        }
        let published = if self.write_failed {
            Err(earlier_write_failed())
        } else {
            let target_dir = self.storage.fanout_dir(&self.data_id);
            let target_path = target_dir.join(&self.data_id);
            match Rc::try_unwrap(self.file) {
                Ok(file) => {
                    durable_write::publish(file, &self.guard.path, &target_path, &target_dir).await
                }
                Err(_) => Err(io::Error::other("a direct write is still in flight")),
            }
        };
        match published {
            Ok(()) => self.guard.armed = false,
            Err(_) => self.guard.remove().await,
        }
        published
    }

    /// Discards the temp file (client went away, digest mismatch, ...).
    pub async fn abort(mut self) {
        drop(self.file);
        self.guard.remove().await;
    }
}

/// The staging buffers of direct writes: `O_DIRECT` wants the memory, the file offset
/// and the length of each write aligned to the device's blocks, which the body's chunks
/// are not. A large upload's bytes then cost one copy into a stage (hot in the cache)
/// instead of the kernel's copy into the page cache and its writeback. A full stage is
/// written by a task of its own while the next ones fill (a direct write waits for the
/// device). Up to `DIRECT_WRITES_IN_FLIGHT` writes are in flight, so that a slow write
/// stalls the upload only once the device is that many stages behind.
struct DirectStage {
    current: AlignedBuf,
    /// Bytes staged in `current`.
    filled: usize,
    /// Where in the file the staged bytes go.
    offset: u64,
    /// The writes in flight, oldest first.
    in_flight: VecDeque<monoio::task::JoinHandle<(io::Result<()>, AlignedBuf)>>,
}

/// A buffer and where its aligned region of `DIRECT_WRITE_STAGE_BYTES` begins.
struct AlignedBuf {
    buf: Vec<u8>,
    start: usize,
}

impl AlignedBuf {
    fn new() -> AlignedBuf {
        let buf = vec![0u8; limits::DIRECT_WRITE_STAGE_BYTES + limits::DIRECT_WRITE_ALIGN];
        let start = buf.as_ptr().align_offset(limits::DIRECT_WRITE_ALIGN);
        AlignedBuf { buf, start }
    }
}

impl DirectStage {
    /// Turns `O_DIRECT` on for an empty `file`; None (the writes stay buffered) when
    /// the file system refuses, and in the fault-injection build, whose write faults
    /// are injected in the buffered writes.
    fn begin(file: &File) -> Option<DirectStage> {
        if cfg!(feature = "fault-injection") {
            return None;
        }
        set_direct(file, true).ok()?;
        Some(DirectStage {
            current: AlignedBuf::new(),
            filled: 0,
            offset: 0,
            in_flight: VecDeque::with_capacity(limits::DIRECT_WRITES_IN_FLIGHT),
        })
    }

    /// Copies what fits of `bytes`; returns how many.
    fn take(&mut self, bytes: &[u8]) -> usize {
        let n = bytes
            .len()
            .min(limits::DIRECT_WRITE_STAGE_BYTES - self.filled);
        let at = self.current.start + self.filled;
        self.current.buf[at..at + n].copy_from_slice(&bytes[..n]);
        self.filled += n;
        n
    }

    fn is_full(&self) -> bool {
        self.filled == limits::DIRECT_WRITE_STAGE_BYTES
    }

    /// Starts writing the staged bytes, once fewer than `DIRECT_WRITES_IN_FLIGHT` writes
    /// are in flight (the oldest one's buffer is then the next stage).
    async fn flush(&mut self, file: &Rc<File>) -> io::Result<()> {
        let oldest = if self.in_flight.len() >= limits::DIRECT_WRITES_IN_FLIGHT {
            self.in_flight.pop_front()
        } else {
            None
        };
        let next = match oldest {
            Some(write) => settled(write).await?,
            None => AlignedBuf::new(),
        };
        let full = std::mem::replace(&mut self.current, next);
        let (file, offset, len) = (file.clone(), self.offset, self.filled);
        self.in_flight.push_back(monoio::spawn(async move {
            let AlignedBuf { buf, start } = full;
            let (result, region) = file
                .write_all_at(buf.slice(start..start + len), offset)
                .await;
            let buf = AlignedBuf {
                buf: region.into_inner(),
                start,
            };
            (result, buf)
        }));
        self.offset += len as u64;
        self.filled = 0;
        Ok(())
    }

    /// Waits for the writes in flight, then writes what is staged at the end (of any
    /// length) through the page cache, where `O_DIRECT`'s alignment does not hold; the
    /// publishing fsync makes both durable.
    async fn finish(mut self, file: &Rc<File>) -> io::Result<()> {
        while let Some(write) = self.in_flight.pop_front() {
            settled(write).await?;
        }
        if self.filled == 0 {
            return Ok(());
        }
        set_direct(file, false)?;
        let AlignedBuf { buf, start } = self.current;
        let (result, _) = file
            .write_all_at(buf.slice(start..start + self.filled), self.offset)
            .await;
        result
    }
}

/// Waits for a direct write and gives back its buffer.
async fn settled(
    write: monoio::task::JoinHandle<(io::Result<()>, AlignedBuf)>,
) -> io::Result<AlignedBuf> {
    let (result, buf) = write.await;
    result.map(|()| buf)
}

/// Turns `O_DIRECT` on or off for an open file.
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    let flags = if on {
        flags | OFlag::O_DIRECT
    } else {
        flags - OFlag::O_DIRECT
    };
    fcntl(fd, FcntlArg::F_SETFL(flags))?;
    Ok(())
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
        #[cfg(feature = "fault-injection")]
        let removed = match crate::fault::io(crate::fault::Step::RemoveTemp) {
            Ok(()) => monoio::fs::remove_file(&self.path).await,
            Err(error) => Err(error),
        };
        #[cfg(not(feature = "fault-injection"))]
        let removed = monoio::fs::remove_file(&self.path).await;
        match removed {
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

    /// The open file, for the http layer to splice from. None in the fault-injection
    /// build, whose faults are injected in `read_at`.
    pub fn as_fd(&self) -> Option<&dyn std::os::fd::AsRawFd> {
        if cfg!(feature = "fault-injection") {
            return None;
        }
        Some(&self.file)
    }

    /// Reads up to `buf.capacity()` bytes at `offset` into `buf` from index 0, setting its
    /// length to the count read (0 at the end of the file).
    pub async fn read_at(&self, buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
        #[cfg(feature = "fault-injection")]
        return crate::fault::read_at(&self.file, buf, offset).await;
        #[cfg(not(feature = "fault-injection"))]
        self.file.read_at(buf, offset).await
    }
}
