//! The gateways' reader: an upstream object read through ranged GETs, streamed. A
//! read continues the answer the previous one started when it asks for the next byte,
//! and starts a new GET where it asks otherwise, never past the reader's range. The
//! object is pinned while it is open (`pins`): a removal that comes meanwhile is left
//! in the pins for the backend's next removal to do once this reader lets go (a drop
//! cannot await a DELETE).
//! Each gateway says how to ask for a range (`RangedSource`); the rest is here once.

use std::cell::{Cell, RefCell};
use std::io;

use crate::limits;
use crate::storage::data_id::check_data_id;
use crate::storage::pins::{PinGuard, Pins};
use crate::upstream::{Response, UpstreamError};

/// What a gateway backend gives its readers. Its futures are not `Send`, as no monoio
/// future is: they run on the core that made them.
#[allow(async_fn_in_trait)]
pub trait RangedSource {
    /// Starts a GET of `data_id`'s bytes from `offset`, to `end` (exclusive) when
    /// given, with the Range header the upstream wants; returns its answer, whatever
    /// the status (`ranged_answer` reads it).
    async fn get_range(&self, data_id: &str, offset: u64, end: Option<u64>)
        -> io::Result<Response>;

    /// What the upstream calls a GET, for error messages (`Get Blob`, say).
    fn get_name(&self) -> &'static str;

    /// An error answer as the storage layer reports it (404 is NotFound).
    async fn answer_error(&self, what: &str, response: Response) -> io::Error;
}

/// The value of a Range header for bytes from `offset` to `end` (exclusive) or the end.
pub(super) fn range_header(offset: u64, end: Option<u64>) -> String {
    match end {
        Some(end) if end > offset => format!("bytes={offset}-{}", end - 1),
        _ => format!("bytes={offset}-"),
    }
}

/// An upstream object open for reading.
pub struct RangedObject<S: RangedSource> {
    source: S,
    data_id: String,
    /// Where the reader's range ends (the GET asks for no more), when known.
    range_end: Option<u64>,
    /// The object's size, once known.
    size: Cell<Option<u64>>,
    /// The GET under way and the offset its next byte is at.
    answer: RefCell<Option<(u64, Response)>>,
    pin: Option<PinGuard>,
}

impl<S: RangedSource> RangedObject<S> {
    /// A reader of bytes `offset..offset + length` of `data_id` (anywhere when `range`
    /// is `None`), pinned in `pins` now and fetched by the first read; `size` when the
    /// caller knows it.
    pub(super) fn open(
        source: S,
        pins: &Pins,
        data_id: &str,
        range: Option<(u64, u64)>,
        size: Option<u64>,
    ) -> io::Result<RangedObject<S>> {
        check_data_id(data_id)?;
        Ok(RangedObject {
            source,
            data_id: data_id.to_string(),
            range_end: range.map(|(offset, length)| offset + length),
            size: Cell::new(size),
            answer: RefCell::new(None),
            pin: Some(pins.pin(data_id)),
        })
    }

    /// The size, when known (0 before a read has learnt it).
    pub fn len(&self) -> u64 {
        self.size.get().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads up to `buf.capacity()` bytes at `offset` (0 at the end).
    pub async fn read_at(&self, mut buf: Vec<u8>, offset: u64) -> (io::Result<usize>, Vec<u8>) {
        buf.clear();
        if buf.capacity() == 0 || self.size.get().is_some_and(|size| offset >= size) {
            return (Ok(0), buf);
        }
        let current = self.answer.borrow_mut().take();
        let mut response = match current {
            Some((at, response)) if at == offset && !response.is_finished() => response,
            _ => match self.get_from(offset).await {
                Ok(Some(response)) => response,
                Ok(None) => return (Ok(0), buf),
                Err(error) => return (Err(error), buf),
            },
        };
        let (read, buf) = response.read(buf).await;
        match read {
            Ok(n) => {
                *self.answer.borrow_mut() = Some((offset + n as u64, response));
                (Ok(n), buf)
            }
            Err(error) => (Err(upstream_io(error)), buf),
        }
    }

    /// Starts a GET of the bytes from `offset` (to the reader's range end); `None` when
    /// `offset` is at or past the end of the object.
    async fn get_from(&self, offset: u64) -> io::Result<Option<Response>> {
        let response = self
            .source
            .get_range(&self.data_id, offset, self.range_end)
            .await?;
        match response.status() {
            206 | 200 => {
                if let Some(total) = response
                    .header("content-range")
                    .and_then(|r| r.rsplit('/').next())
                    .and_then(|t| t.parse().ok())
                {
                    self.size.set(Some(total));
                } else if response.status() == 200 && offset == 0 {
                    self.size.set(response.body_length());
                }
                Ok(Some(response))
            }
            416 => {
                response
                    .discard(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
                    .await;
                Ok(None)
            }
            _ => Err(self
                .source
                .answer_error(self.source.get_name(), response)
                .await),
        }
    }
}

impl<S: RangedSource> Drop for RangedObject<S> {
    fn drop(&mut self) {
        // A removal that waited for this reader is left to the backend's next one.
        if let Some(pin) = self.pin.take() {
            pin.release_deferring();
        }
    }
}

/// An upstream failure as the storage layer reports it.
pub(super) fn upstream_io(error: UpstreamError) -> io::Error {
    io::Error::other(error.to_string())
}
