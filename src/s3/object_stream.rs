//! The bytes of a GET, streamed: the pieces of the data files a range touches, all
//! opened before the answer begins (an open file keeps its bytes whatever happens to
//! its name), read in order as the http layer sends them.

use crate::error::{storage_error, S3Error};
use crate::http::BodyStream;
use crate::meta::ObjectRow;
use crate::storage::{Object, Storage};

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
}

impl ObjectStream {
    /// Opens the files holding bytes `first..first + length` of the object, in order.
    pub(crate) async fn open(
        storage: &Storage,
        row: &ObjectRow,
        first: u64,
        length: u64,
    ) -> Result<ObjectStream, S3Error> {
        let mut segments = Vec::new();
        for (data_id, offset, len) in row.ranges(first, length) {
            let file = storage.open(&data_id).await.map_err(storage_error)?;
            segments.push(Segment { file, offset, len });
        }
        Ok(ObjectStream {
            segments: segments.into_iter(),
            current: None,
        })
    }
}

impl BodyStream for ObjectStream {
    async fn read(&mut self, mut buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        // Segments are never empty (`ObjectRow::ranges` skips empty parts).
        let segment = match &mut self.current {
            Some(segment) if segment.len > 0 => segment,
            _ => match self.segments.next() {
                Some(next) => self.current.insert(next),
                None => return (Ok(0), buf),
            },
        };
        let want = (buf.capacity() as u64).min(segment.len) as usize;
        buf.clear();
        buf.reserve(want);
        let (result, mut buf) = segment.file.read_at(buf, segment.offset).await;
        match result {
            Ok(0) => (
                Err(std::io::Error::other(
                    "object file shorter than its metadata",
                )),
                buf,
            ),
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
