//! The memory backend: object bytes in this process's memory, bounded by a byte
//! budget (`storage.memory.max_size_bytes`; a write past it fails with ENOSPC, which
//! clients see as 507 InsufficientStorage). Objects are immutable once published, so
//! an object is a list of shared chunks: reads clone an `Arc` and never hold a lock
//! while copying, and a whole-object copy shares the chunks instead of copying them.
//!
//! With `persistence: snapshot` every object is written to one snapshot file on an
//! interval and at shutdown (temp file, fsync, rename, directory fsync), and loaded at
//! startup. Bytes published after the last snapshot are lost by a crash: startup then
//! drops the metadata rows that point at them (see `server::startup_with_metadata`).

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::data_id::{check_data_id, is_valid_data_id, IdSeed};
use super::pool::Pool;
use super::ByteStage;
use crate::limits;

/// First bytes of a snapshot file, with its format version.
const SNAPSHOT_MAGIC: &[u8] = b"BLEEPSTORE-MEMORY-SNAPSHOT 1\n";
/// Last bytes: a marker, then the object count and a CRC-64 of all that precedes.
const SNAPSHOT_END: &[u8] = b"END\n";

/// Where and how often the memory backend snapshots itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub path: PathBuf,
    pub interval: Duration,
}

/// An immutable object: its bytes in chunks as they arrived.
#[derive(Debug, Default)]
struct Chunks {
    chunks: Vec<Arc<[u8]>>,
    /// Offset of each chunk's first byte.
    starts: Vec<u64>,
    len: u64,
}

impl Chunks {
    fn push(&mut self, chunk: Arc<[u8]>) {
        if chunk.is_empty() {
            return;
        }
        self.starts.push(self.len);
        self.len += chunk.len() as u64;
        self.chunks.push(chunk);
    }

    /// Copies bytes at `offset` into `out` (up to its spare capacity); returns how many.
    fn read_into(&self, offset: u64, out: &mut Vec<u8>) -> usize {
        let want = out.capacity() - out.len();
        let mut copied = 0;
        let mut at = offset;
        // The chunk holding `at`: the last one starting at or before it.
        let mut index = self.starts.partition_point(|&start| start <= at);
        while copied < want && at < self.len && index > 0 {
            let chunk = &self.chunks[index - 1];
            let within = (at - self.starts[index - 1]) as usize;
            let n = (chunk.len() - within).min(want - copied);
            out.extend_from_slice(&chunk[within..within + n]);
            copied += n;
            at += n as u64;
            index += 1;
        }
        copied
    }

    /// Passes the bytes `offset..offset + length` to `each`, chunk by chunk.
    fn each_range(&self, offset: u64, length: u64, mut each: impl FnMut(&[u8])) -> io::Result<()> {
        let end = offset.checked_add(length).filter(|&end| end <= self.len);
        let end = end.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "range past the object's end")
        })?;
        let mut index = self.starts.partition_point(|&start| start <= offset);
        let mut at = offset;
        while at < end {
            let chunk = &self.chunks[index - 1];
            let start = self.starts[index - 1];
            let from = (at - start) as usize;
            let to = ((end - start) as usize).min(chunk.len());
            each(&chunk[from..to]);
            at = start + to as u64;
            index += 1;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Inner {
    seed: IdSeed,
    objects: Mutex<HashMap<String, Arc<Chunks>>>,
    /// Bytes held by published objects and uploads in progress.
    used: AtomicU64,
    max_size: u64,
    snapshot: Option<Snapshot>,
    /// Set by every change since the last snapshot began.
    changed: AtomicBool,
    pool: Pool,
}

/// A handle on the memory backend. Cloning is cheap; clones may live on any core.
#[derive(Clone, Debug)]
pub struct MemoryStorage {
    inner: Arc<Inner>,
}

fn full() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

impl MemoryStorage {
    /// A memory backend holding at most `max_size` bytes, loaded from its snapshot
    /// (when it has one and the file exists). Returns the objects loaded.
    pub fn open(max_size: u64, snapshot: Option<Snapshot>) -> io::Result<(MemoryStorage, u64)> {
        let mut objects = HashMap::new();
        let mut used = 0;
        if let Some(snapshot) = &snapshot {
            match fs::File::open(&snapshot.path) {
                Ok(file) => {
                    objects = read_snapshot(file).map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("snapshot {}: {e}", snapshot.path.display()),
                        )
                    })?;
                    used = objects.values().map(|c: &Arc<Chunks>| c.len).sum();
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let loaded = objects.len() as u64;
        if used > max_size {
            return Err(io::Error::other(format!(
                "the snapshot holds {used} bytes, more than max_size_bytes ({max_size})"
            )));
        }
        let storage = MemoryStorage {
            inner: Arc::new(Inner {
                seed: IdSeed::from_urandom()?,
                objects: Mutex::new(objects),
                used: AtomicU64::new(used),
                max_size,
                snapshot,
                changed: AtomicBool::new(false),
                pool: Pool::start(limits::COPY_THREADS, limits::COPY_QUEUE_MAX)?,
            }),
        };
        if let Some(snapshot) = &storage.inner.snapshot {
            let interval = snapshot.interval;
            // Weak, so the thread ends with the last handle on the backend.
            let weak = Arc::downgrade(&storage.inner);
            std::thread::Builder::new()
                .name("bleepstore-snapshot".into())
                .spawn(move || loop {
                    std::thread::sleep(interval);
                    let Some(inner) = weak.upgrade() else { break };
                    if let Err(error) = (MemoryStorage { inner }).snapshot_if_changed() {
                        log::error!("memory snapshot failed: {error}");
                    }
                })?;
        }
        Ok((storage, loaded))
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Chunks>>> {
        self.inner.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn new_data_id(&self) -> String {
        self.inner.seed.next_id()
    }

    pub fn issued(&self, data_id: &str) -> bool {
        self.inner.seed.issued(data_id)
    }

    /// Takes `n` bytes of the budget, or fails with ENOSPC when they are not there.
    fn reserve(&self, n: u64) -> io::Result<()> {
        let max = self.inner.max_size;
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= max)
            })
            .map(drop)
            .map_err(|_| full())
    }

    fn release(&self, n: u64) {
        self.inner.used.fetch_sub(n, Ordering::AcqRel);
    }

    /// Objects published.
    pub fn object_count(&self) -> u64 {
        self.objects().len() as u64
    }

    /// The byte budget.
    pub fn max_size(&self) -> u64 {
        self.inner.max_size
    }

    /// Bytes in use (published objects and uploads in progress).
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Acquire)
    }

    pub fn create(&self, data_id: &str) -> io::Result<MemoryUpload> {
        check_data_id(data_id)?;
        Ok(MemoryUpload {
            storage: self.clone(),
            data_id: data_id.to_string(),
            chunks: Chunks::default(),
            reserved: 0,
        })
    }

    pub fn open_object(&self, data_id: &str) -> io::Result<MemoryObject> {
        check_data_id(data_id)?;
        let chunks = self.objects().get(data_id).cloned();
        chunks
            .map(|chunks| MemoryObject { chunks })
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn publish(&self, data_id: String, chunks: Chunks) -> io::Result<()> {
        let mut objects = self.objects();
        if objects.contains_key(&data_id) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "data id already published",
            ));
        }
        objects.insert(data_id, Arc::new(chunks));
        self.inner.changed.store(true, Ordering::Release);
        Ok(())
    }

    /// A whole-object copy shares the source's chunks (the budget counts it again,
    /// since either may be removed first).
    pub fn copy(&self, source: &str, target: &str) -> io::Result<u64> {
        check_data_id(target)?;
        let from = self.open_object(source)?.chunks;
        self.reserve(from.len)?;
        let copy = Chunks {
            chunks: from.chunks.clone(),
            starts: from.starts.clone(),
            len: from.len,
        };
        self.publish(target.to_string(), copy).inspect_err(|_| {
            self.release(from.len);
        })?;
        Ok(from.len)
    }

    fn sources(&self, ranges: &[(String, u64, u64)]) -> io::Result<Vec<Arc<Chunks>>> {
        ranges
            .iter()
            .map(|(id, _, _)| self.open_object(id).map(|object| object.chunks))
            .collect()
    }

    /// Publishes the ranges, in order, as `target`, passing their bytes through `stage`
    /// on the pool (hashing gigabytes must not hold a serving core).
    pub async fn copy_ranges<S: ByteStage + 'static>(
        &self,
        ranges: Vec<(String, u64, u64)>,
        target: &str,
        stage: S,
    ) -> io::Result<(u64, S)> {
        check_data_id(target)?;
        let sources = self.sources(&ranges)?;
        let total: u64 = ranges.iter().map(|(_, _, length)| length).sum();
        self.reserve(total)?;
        let built = self
            .inner
            .pool
            .run(move || {
                let mut stage = stage;
                let mut copy = Chunks::default();
                for (source, (_, offset, length)) in sources.iter().zip(&ranges) {
                    let mut bytes = Vec::with_capacity(*length as usize);
                    source.each_range(*offset, *length, |part| {
                        stage.update(part);
                        bytes.extend_from_slice(part);
                    })?;
                    copy.push(bytes.into());
                }
                Ok((copy, stage))
            })
            .await;
        let published = built.and_then(|(copy, stage)| {
            self.publish(target.to_string(), copy)?;
            Ok(stage)
        });
        match published {
            Ok(stage) => Ok((total, stage)),
            Err(error) => {
                self.release(total);
                Err(error)
            }
        }
    }

    /// Passes the ranges' bytes through `stage`, in order, on the pool.
    pub async fn scan<S: ByteStage + 'static>(
        &self,
        ranges: Vec<(String, u64, u64)>,
        stage: S,
    ) -> io::Result<S> {
        let sources = self.sources(&ranges)?;
        self.inner
            .pool
            .run(move || {
                let mut stage = stage;
                for (source, (_, offset, length)) in sources.iter().zip(&ranges) {
                    source.each_range(*offset, *length, |part| stage.update(part))?;
                }
                Ok(stage)
            })
            .await
    }

    /// Removes an object; removing one already gone succeeds.
    pub fn remove(&self, data_id: &str) -> io::Result<()> {
        check_data_id(data_id)?;
        let removed = self.objects().remove(data_id);
        if let Some(chunks) = removed {
            self.release(chunks.len);
            self.inner.changed.store(true, Ordering::Release);
        }
        Ok(())
    }

    pub fn list_ids(&self) -> Vec<String> {
        self.objects().keys().cloned().collect()
    }

    /// Whether a write could start: the budget is not spent.
    pub fn health(&self) -> io::Result<()> {
        if self.used() >= self.inner.max_size {
            return Err(full());
        }
        Ok(())
    }

    /// Writes a snapshot when anything changed since the last one began.
    pub fn snapshot_if_changed(&self) -> io::Result<()> {
        let Some(snapshot) = &self.inner.snapshot else {
            return Ok(());
        };
        if !self.inner.changed.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        // The objects are immutable: the map's `Arc`s are a consistent view, taken
        // under the lock in a moment and written out without it.
        let view: Vec<(String, Arc<Chunks>)> = self
            .objects()
            .iter()
            .map(|(id, chunks)| (id.clone(), chunks.clone()))
            .collect();
        let written = write_snapshot(&snapshot.path, &view);
        if written.is_err() {
            self.inner.changed.store(true, Ordering::Release);
        }
        written
    }
}

/// An object being written to memory; `commit` publishes it, dropping it aborts.
pub struct MemoryUpload {
    storage: MemoryStorage,
    data_id: String,
    chunks: Chunks,
    reserved: u64,
}

impl MemoryUpload {
    /// Keeps `buf`'s bytes as the next chunk; hands back an empty buffer of the same
    /// capacity for the next read.
    pub fn write(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let capacity = buf.capacity();
        if let Err(error) = self.storage.reserve(buf.len() as u64) {
            return (Err(error), buf);
        }
        self.reserved += buf.len() as u64;
        self.chunks.push(Arc::from(buf));
        (Ok(()), Vec::with_capacity(capacity))
    }

    pub fn len(&self) -> u64 {
        self.chunks.len
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.len == 0
    }

    pub fn commit(mut self) -> io::Result<()> {
        let chunks = std::mem::take(&mut self.chunks);
        let data_id = std::mem::take(&mut self.data_id);
        self.storage.publish(data_id, chunks)?;
        self.reserved = 0;
        Ok(())
    }
}

impl Drop for MemoryUpload {
    fn drop(&mut self) {
        self.storage.release(self.reserved);
    }
}

/// A published object in memory.
pub struct MemoryObject {
    chunks: Arc<Chunks>,
}

impl MemoryObject {
    pub fn len(&self) -> u64 {
        self.chunks.len
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.len == 0
    }

    /// Copies up to `buf.capacity()` bytes at `offset` into `buf` from index 0.
    pub fn read_at(&self, mut buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
        buf.clear();
        let n = self.chunks.read_into(offset, &mut buf);
        (Ok(n), buf)
    }
}

/// A writer that keeps a CRC-64 of everything written through it.
struct Summed<W> {
    inner: W,
    crc: crc_fast::Digest,
}

impl<W: Write> Write for Summed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn new_crc() -> crc_fast::Digest {
    crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme)
}

/// Writes `objects` to `path` durably: a temp file beside it, fsynced, renamed over
/// it, and the directory fsynced. Format: the magic line; per object its 32-digit id,
/// its length (u64, little-endian) and its bytes; then `END\n`, the count and the
/// CRC-64/NVME of everything before the CRC.
fn write_snapshot(path: &Path, objects: &[(String, Arc<Chunks>)]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let temp = path.with_extension("snapshot-tmp");
    let file = fs::File::create(&temp)?;
    let mut out = Summed {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: new_crc(),
    };
    let written = (|| {
        out.write_all(SNAPSHOT_MAGIC)?;
        for (id, chunks) in objects {
            out.write_all(id.as_bytes())?;
            out.write_all(&chunks.len.to_le_bytes())?;
            for chunk in &chunks.chunks {
                out.write_all(chunk)?;
            }
        }
        out.write_all(SNAPSHOT_END)?;
        out.write_all(&(objects.len() as u64).to_le_bytes())?;
        let crc = out.crc.finalize();
        out.inner.write_all(&crc.to_le_bytes())?;
        let file = out.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// Reads a snapshot back, checking its framing and CRC.
fn read_snapshot(file: fs::File) -> io::Result<HashMap<String, Arc<Chunks>>> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let mut input = BufReader::with_capacity(1 << 20, file);
    let mut crc = new_crc();
    let mut read = |buf: &mut [u8], crc: &mut crc_fast::Digest| -> io::Result<()> {
        input.read_exact(buf)?;
        crc.update(buf);
        Ok(())
    };
    let mut magic = vec![0; SNAPSHOT_MAGIC.len()];
    read(&mut magic, &mut crc)?;
    if magic != SNAPSHOT_MAGIC {
        return Err(bad("not a memory snapshot (or another version)"));
    }
    let mut objects = HashMap::new();
    loop {
        let mut id = [0u8; 32];
        read(&mut id[..SNAPSHOT_END.len()], &mut crc)?;
        if &id[..SNAPSHOT_END.len()] == SNAPSHOT_END {
            break;
        }
        read(&mut id[SNAPSHOT_END.len()..], &mut crc)?;
        let id = std::str::from_utf8(&id)
            .ok()
            .filter(|id| is_valid_data_id(id))
            .ok_or_else(|| bad("an entry without a valid data id"))?
            .to_string();
        let mut len = [0u8; 8];
        read(&mut len, &mut crc)?;
        let len = u64::from_le_bytes(len);
        let mut chunks = Chunks::default();
        let mut left = len;
        while left > 0 {
            let n = left.min(limits::MEMORY_SNAPSHOT_CHUNK_BYTES as u64) as usize;
            let mut chunk = vec![0u8; n];
            read(&mut chunk, &mut crc)?;
            chunks.push(chunk.into());
            left -= n as u64;
        }
        objects.insert(id, Arc::new(chunks));
    }
    let mut count = [0u8; 8];
    read(&mut count, &mut crc)?;
    let expected = crc.finalize();
    let mut stored = [0u8; 8];
    input.read_exact(&mut stored)?;
    if u64::from_le_bytes(stored) != expected {
        return Err(bad("CRC mismatch: the snapshot is damaged"));
    }
    if u64::from_le_bytes(count) != objects.len() as u64 {
        return Err(bad("object count mismatch"));
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cross_chunk_boundaries() {
        let mut chunks = Chunks::default();
        for part in [&b"hello "[..], b"", b"chunked ", b"world"] {
            chunks.push(Arc::from(part));
        }
        let object = MemoryObject {
            chunks: Arc::new(chunks),
        };
        assert_eq!(object.len(), 19);
        let (n, buf) = object.read_at(Vec::with_capacity(9), 3);
        assert_eq!((n.unwrap(), &buf[..]), (9, &b"lo chunke"[..]));
        let (n, buf) = object.read_at(Vec::with_capacity(100), 14);
        assert_eq!((n.unwrap(), &buf[..]), (5, &b"world"[..]));
        let (n, _) = object.read_at(Vec::with_capacity(100), 19);
        assert_eq!(n.unwrap(), 0);
        let mut seen = Vec::new();
        object
            .chunks
            .each_range(4, 10, |part| seen.extend_from_slice(part))
            .unwrap();
        assert_eq!(seen, b"o chunked ");
        assert!(object.chunks.each_range(10, 10, |_| {}).is_err());
    }

    #[test]
    fn the_budget_is_enforced_and_released() {
        let (storage, _) = MemoryStorage::open(10, None).unwrap();
        let id = storage.new_data_id();
        let mut upload = storage.create(&id).unwrap();
        assert!(upload.write(b"123456".to_vec()).0.is_ok());
        let (refused, _) = upload.write(b"123456".to_vec());
        assert_eq!(refused.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        drop(upload);
        assert_eq!(storage.used(), 0);
        let mut upload = storage.create(&id).unwrap();
        assert!(upload.write(b"1234567890".to_vec()).0.is_ok());
        upload.commit().unwrap();
        assert_eq!(storage.used(), 10);
        assert!(storage.health().is_err());
        storage.remove(&id).unwrap();
        assert_eq!(storage.used(), 0);
    }

    #[test]
    fn a_snapshot_round_trips_and_damage_is_refused() {
        let dir = std::env::temp_dir().join(format!("bleepstore-snap-{}", std::process::id()));
        let path = dir.join("memory.snapshot");
        let snapshot = Snapshot {
            path: path.clone(),
            interval: Duration::from_secs(3600),
        };
        let (storage, loaded) = MemoryStorage::open(1 << 20, Some(snapshot.clone())).unwrap();
        assert_eq!(loaded, 0);
        let mut ids = Vec::new();
        for size in [0usize, 1, 70_000] {
            let id = storage.new_data_id();
            let mut upload = storage.create(&id).unwrap();
            let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            assert!(upload.write(bytes.clone()).0.is_ok());
            upload.commit().unwrap();
            ids.push((id, bytes));
        }
        storage.snapshot_if_changed().unwrap();
        let (reloaded, loaded) = MemoryStorage::open(1 << 20, Some(snapshot.clone())).unwrap();
        assert_eq!(loaded, 3);
        for (id, bytes) in &ids {
            let object = reloaded.open_object(id).unwrap();
            let (n, buf) = object.read_at(Vec::with_capacity(100_000), 0);
            assert_eq!(n.unwrap(), bytes.len());
            assert_eq!(&buf, bytes);
        }
        assert_eq!(reloaded.used(), 70_001);
        let mut damaged = fs::read(&path).unwrap();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 1;
        fs::write(&path, damaged).unwrap();
        assert!(MemoryStorage::open(1 << 20, Some(snapshot)).is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
