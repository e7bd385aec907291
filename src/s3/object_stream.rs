//! The bytes of a GET, streamed: the pieces of the data files a range touches, all
//! opened before the answer begins (an open file keeps its bytes whatever happens to
//! its name; the other backends pin what is open), read in order as the http layer
//! sends them. The first bytes are read before the answer begins too, so a storage
//! failure (a gateway's upstream down, a file gone bad) is a clean error response
//! rather than a body cut short.

use std::rc::Rc;

use crate::error::{storage_error, S3Error};
use crate::http::{short_file, BodyStream, FileRun};
use crate::limits;
use crate::meta::ObjectRow;
use crate::storage::{ByteCache, Object, Storage};

/// A piece of an object's bytes: `len` bytes from `offset` of one open file.
struct Segment {
    file: Object,
    offset: u64,
    len: u64,
}

/// The bytes of a GET: the segments of the files a range touches, all opened before
/// the answer begins (an open file keeps its bytes), read in order as they are sent.
pub(crate) struct ObjectStream {
    segments: std::vec::IntoIter<Segment>,
    current: Option<Segment>,
    /// The first bytes, read by `open`.
    prefetched: Option<Vec<u8>>,
    /// A cached small object and the part of it still to send: copied straight into
    /// the http layer's buffer, with no copy of its own.
    cached: Option<(Rc<[u8]>, std::ops::Range<usize>)>,
}

impl ObjectStream {
    /// Opens the files holding bytes `first..first + length` of the object, in order.
    /// A small object of one piece comes from this core's cache, or is read whole and
    /// kept there.
    pub(crate) async fn open(
        storage: &Storage,
        cache: &ByteCache,
        row: &ObjectRow,
        first: u64,
        length: u64,
    ) -> Result<ObjectStream, S3Error> {
        if row.parts.is_empty() && cache.admits(row.size) {
            let bytes = match cache.get(&row.data_id) {
                Some(bytes) => bytes,
                None => {
                    // Boxed, as below: a storage read's future is large (the gateway
                    // backends'), and every GET's future would carry its room.
                    let bytes = Box::pin(read_whole(storage, &row.data_id, row.size))
                        .await
                        .map_err(storage_error)?;
                    cache.insert(&row.data_id, bytes.clone());
                    bytes
                }
            };
            return Ok(ObjectStream {
                segments: Vec::new().into_iter(),
                current: None,
                prefetched: None,
                cached: Some((bytes, first as usize..(first + length) as usize)),
            });
        }
        Box::pin(ObjectStream::open_files(storage, row, first, length)).await
    }

    /// `open` of an object read from its files.
    async fn open_files(
        storage: &Storage,
        row: &ObjectRow,
        first: u64,
        length: u64,
    ) -> Result<ObjectStream, S3Error> {
        let mut segments = Vec::new();
        for (data_id, offset, len) in row.ranges(first, length) {
            let file = storage
                .open_range(&data_id, offset, len)
                .await
                .map_err(storage_error)?;
            segments.push(Segment { file, offset, len });
        }
        let mut stream = ObjectStream {
            segments: segments.into_iter(),
            current: None,
            prefetched: None,
            cached: None,
        };
        if length > 0 {
            let capacity = (length as usize).min(limits::GET_PREFETCH_BYTES);
            let (read, first) = stream.read(Vec::with_capacity(capacity)).await;
            read.map_err(storage_error)?;
            stream.prefetched = Some(first);
        }
        Ok(stream)
    }

    /// The segment the next bytes come from (None at the end). Segments are never
    /// empty (`ObjectRow::ranges` skips empty parts).
    fn current_segment(&mut self) -> Option<&mut Segment> {
        match &mut self.current {
            Some(segment) if segment.len > 0 => self.current.as_mut(),
            _ => {
                let next = self.segments.next()?;
                Some(self.current.insert(next))
            }
        }
    }
}

/// The `size` bytes of a one-piece object.
async fn read_whole(storage: &Storage, data_id: &str, size: u64) -> std::io::Result<Rc<[u8]>> {
    let file = storage.open_range(data_id, 0, size).await?;
    let mut bytes = Vec::with_capacity(size as usize);
    while (bytes.len() as u64) < size {
        let mut buf = Vec::with_capacity(size as usize - bytes.len());
        let result;
        (result, buf) = file.read_at(buf, bytes.len() as u64).await;
        match result? {
            0 => return Err(short_file()),
            n => bytes.extend_from_slice(&buf[..n.min(size as usize - bytes.len())]),
        }
    }
    Ok(Rc::from(bytes))
}

impl BodyStream for ObjectStream {
    fn in_memory(&self) -> Option<&[u8]> {
        let (bytes, rest) = self.cached.as_ref()?;
        bytes.get(rest.clone())
    }

    fn file_run(&mut self) -> Option<FileRun<'_>> {
        if self.prefetched.is_some() || self.cached.is_some() {
            return None;
        }
        let segment = self.current_segment()?;
        Some(FileRun {
            file: segment.file.as_fd()?,
            offset: segment.offset,
            len: segment.len,
        })
    }

    fn skip(&mut self, n: u64) {
        if let Some(segment) = &mut self.current {
            let n = n.min(segment.len);
            segment.offset += n;
            segment.len -= n;
        }
    }

    async fn read(&mut self, mut buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        if let Some(first) = self.prefetched.take() {
            return (Ok(first.len()), first);
        }
        if let Some((bytes, rest)) = &mut self.cached {
            let n = rest.len().min(buf.capacity().max(1));
            buf.clear();
            buf.extend_from_slice(&bytes[rest.start..rest.start + n]);
            rest.start += n;
            return (Ok(n), buf);
        }
        let Some(segment) = self.current_segment() else {
            return (Ok(0), buf);
        };
        let want = (buf.capacity() as u64).min(segment.len) as usize;
        buf.clear();
        buf.reserve(want);
        let (result, mut buf) = segment.file.read_at(buf, segment.offset).await;
        match result {
            Ok(0) => (Err(short_file()), buf),
            Ok(n) => {
                let n = n.min(want);
                buf.truncate(n);
                segment.offset += n as u64;
                segment.len -= n as u64;
                (Ok(n), buf)
            }
            Err(error) => (Err(error), buf),
        }
    }
}
