//! One client connection: the socket and its read buffer. Request heads and
//! bodies are read from the buffer first (pipelined bytes are never lost); a
//! Content-Length body with nothing buffered is read straight into the
//! caller's buffer. Reads that wait on the client are cancelable, so a timeout
//! cancels the kernel operation before the connection is dropped.

use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncWriteRent, AsyncWriteRentExt, CancelableAsyncReadRent, Canceller};
use monoio::net::TcpStream;

use crate::error::{ErrorCode, S3Error};
use crate::http::body::{Body, BodyState};
use crate::http::head::{Parsed, RequestHead};
use crate::limits;

pub(super) struct Connection {
    stream: TcpStream,
    /// Bytes received and not consumed yet are `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// Bytes written to the client so far (for metrics and the access log).
    written: u64,
}

/// Why a read returned no data.
enum ReadEnd {
    Eof,
    TimedOut,
    Failed(std::io::Error),
}

impl Connection {
    pub(super) fn new(stream: TcpStream) -> Connection {
        Connection {
            stream,
            buf: Vec::with_capacity(limits::READ_BUFFER_BYTES),
            start: 0,
            written: 0,
        }
    }

    fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes into the buffer, making room first. Ok(n > 0) or why not.
    async fn fill(&mut self, timeout: Duration) -> Result<usize, ReadEnd> {
        if self.start > 0 && (self.buf.len() == self.buf.capacity() || self.start == self.buf.len())
        {
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
            self.start = 0;
        }
        if self.buf.len() == self.buf.capacity() {
            self.buf.reserve(limits::READ_BUFFER_BYTES);
        }
        let buf = std::mem::take(&mut self.buf);
        let len = buf.len();
        let cap = buf.capacity();
        let (result, buf) = read_with_timeout(&mut self.stream, buf, len, cap, timeout).await;
        self.buf = buf;
        result
    }

    /// Waits for and parses the next request head. `Ok(None)`: the client closed
    /// or stayed idle past the timeout before sending a new request.
    pub(super) async fn read_head(&mut self) -> Result<Option<RequestHead>, S3Error> {
        loop {
            if self.buffered() > 0 {
                match RequestHead::parse(&self.buf[self.start..])? {
                    Parsed::Complete(head, used) => {
                        self.consume(used);
                        return Ok(Some(head));
                    }
                    Parsed::Partial => {}
                }
            }
            let timeout = if self.buffered() == 0 {
                Duration::from_secs(limits::IDLE_TIMEOUT_SECS)
            } else {
                Duration::from_secs(limits::BODY_STALL_TIMEOUT_SECS)
            };
            match self.fill(timeout).await {
                Ok(_) => {}
                Err(ReadEnd::Eof) | Err(ReadEnd::TimedOut) => return Ok(None),
                Err(ReadEnd::Failed(error)) => {
                    log::debug!("read failed: {error}");
                    return Ok(None);
                }
            }
        }
    }

    /// Appends up to `max` decoded body bytes to `out`; Ok(0) when the body is complete.
    pub(super) async fn read_body(
        &mut self,
        body: &mut Body,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<usize, S3Error> {
        let stall = Duration::from_secs(limits::BODY_STALL_TIMEOUT_SECS);
        loop {
            match &mut body.state {
                BodyState::Done => return Ok(0),
                BodyState::Length { remaining } => {
                    let want = (*remaining).min(max as u64) as usize;
                    if self.buffered() > 0 {
                        let take = want.min(self.buffered());
                        out.extend_from_slice(&self.buf[self.start..self.start + take]);
                        self.consume(take);
                        body.count(take);
                        return Ok(take);
                    }
                    // Nothing buffered: read straight into the caller's buffer.
                    out.reserve(want);
                    let start = out.len();
                    let taken = std::mem::take(out);
                    let (result, returned) =
                        read_with_timeout(&mut self.stream, taken, start, start + want, stall)
                            .await;
                    *out = returned;
                    let n = result.map_err(body_read_error)?;
                    body.count(n);
                    return Ok(n);
                }
                BodyState::Chunked(chunked) => {
                    if self.buffered() > 0 {
                        let before = out.len();
                        let (used, finished) = chunked.decode(&self.buf[self.start..], out, max)?;
                        self.consume(used);
                        let produced = out.len() - before;
                        if finished {
                            body.state = BodyState::Done;
                        }
                        body.count(produced);
                        if produced > 0 || finished {
                            return Ok(produced);
                        }
                    }
                    self.fill(stall).await.map_err(body_read_error)?;
                }
            }
        }
    }

    /// Reads and discards the rest of a body, at most `limit` bytes. Ok(true) when
    /// the body was consumed in full and the connection can carry another request.
    pub(super) async fn drain_body(
        &mut self,
        body: &mut Body,
        limit: u64,
    ) -> Result<bool, S3Error> {
        let mut scratch = Vec::with_capacity(limits::BODY_READ_CHUNK_BYTES);
        let mut drained = 0u64;
        while !body.is_finished() {
            if drained > limit {
                return Ok(false);
            }
            scratch.clear();
            let n = self
                .read_body(body, &mut scratch, limits::BODY_READ_CHUNK_BYTES)
                .await?;
            if n == 0 && !body.is_finished() {
                return Ok(false);
            }
            drained += n as u64;
        }
        Ok(true)
    }

    pub(super) async fn write_all(&mut self, buf: Vec<u8>) -> (std::io::Result<()>, Vec<u8>) {
        let (result, buf) = self.stream.write_all(buf).await;
        if let Ok(n) = &result {
            self.written += *n as u64;
        }
        (result.map(|_| ()), buf)
    }

    /// Closes after an answer given without reading the request: ends our side, then
    /// reads and discards what the client still sends (up to `max`, for at most
    /// `timeout`). Closing with unread input would send a reset, which can destroy
    /// the answer before the client reads it.
    pub(super) async fn linger_close(mut self, max: usize, timeout: Duration) {
        let _ = self.stream.shutdown().await;
        let deadline = std::time::Instant::now() + timeout;
        let mut discarded = 0;
        let mut buf = Vec::with_capacity(16 * 1024);
        while discarded < max {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            buf.clear();
            let cap = buf.capacity();
            let (result, returned) = read_with_timeout(&mut self.stream, buf, 0, cap, left).await;
            buf = returned;
            match result {
                Ok(n) => discarded += n,
                Err(_) => break,
            }
        }
    }

    /// Bytes written to the client over the connection's life.
    pub(super) fn bytes_written(&self) -> u64 {
        self.written
    }

    pub(super) async fn send_continue(&mut self) -> std::io::Result<()> {
        let (result, _) = self
            .stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
            .await;
        result.map(|_| ())
    }
}

fn body_read_error(end: ReadEnd) -> S3Error {
    match end {
        ReadEnd::Eof => S3Error::new(ErrorCode::IncompleteBody),
        ReadEnd::TimedOut => S3Error::new(ErrorCode::RequestTimeout),
        ReadEnd::Failed(error) => {
            log::debug!("body read failed: {error}");
            S3Error::new(ErrorCode::IncompleteBody)
        }
    }
}

/// Reads into `buf[begin..end]` (spare capacity), waiting at most `timeout`. On
/// timeout the read is canceled and awaited, so the kernel no longer holds the
/// buffer or the socket when this returns.
async fn read_with_timeout(
    stream: &mut TcpStream,
    buf: Vec<u8>,
    begin: usize,
    end: usize,
    timeout: Duration,
) -> (Result<usize, ReadEnd>, Vec<u8>) {
    let canceller = Canceller::new();
    let read = stream.cancelable_read(buf.slice_mut(begin..end), canceller.handle());
    let mut read = std::pin::pin!(read);
    let (result, slice) = match monoio::time::timeout(timeout, &mut read).await {
        Ok(done) => done,
        Err(_) => {
            let _canceller = canceller.cancel();
            let (result, slice) = read.await;
            return match result {
                Ok(n) if n > 0 => (Ok(n), slice.into_inner()),
                _ => (Err(ReadEnd::TimedOut), slice.into_inner()),
            };
        }
    };
    let result = match result {
        Ok(0) => Err(ReadEnd::Eof),
        Ok(n) => Ok(n),
        Err(error) => Err(ReadEnd::Failed(error)),
    };
    (result, slice.into_inner())
}
