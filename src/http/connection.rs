//! One client connection: the socket and its read buffer. Request heads and
//! bodies are read from the buffer first (pipelined bytes are never lost); a
//! Content-Length body with nothing buffered is read straight into the
//! caller's buffer. Every wait on the client is bounded: the idle wait for the
//! next head, the total time of a head once it has begun, the rate of a body
//! over a window, the time a response write may take. Reads and writes that wait
//! are cancelable, so a timeout cancels the kernel operation before the
//! connection is dropped.

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::io::{CancelHandle, Canceller};

use crate::error::{ErrorCode, S3Error};
use crate::http::body::{Body, BodyState};
use crate::http::buffer_pool::ConnectionBuffers;
use crate::http::head::{Parsed, RequestHead};
use crate::http::idle::IdleSet;
use crate::http::rate_window::RateWindow;
use crate::http::send_file::{self, short_file};
use crate::http::tls::{read_appending, read_with_timeout, ReadEnd, Transport};
use crate::limits;

pub(super) struct Connection {
    stream: Transport,
    /// Bytes received and not consumed yet are `buf[start..]`. Rented from `buffers`
    /// by the first read of a request; given back when the connection idles or ends.
    buf: Vec<u8>,
    start: usize,
    buffers: Rc<ConnectionBuffers>,
    /// Bytes written to the client so far (for metrics and the access log).
    written: u64,
}

fn too_slow_reader() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the client did not read the response in time",
    )
}

fn write_zero() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::WriteZero,
        "the connection accepts no more bytes",
    )
}

fn head_too_slow() -> S3Error {
    S3Error::with_message(
        ErrorCode::RequestTimeout,
        "The request head was not received in time.",
    )
}

impl Connection {
    pub(super) fn new(stream: Transport, buffers: Rc<ConnectionBuffers>) -> Connection {
        Connection {
            stream,
            buf: Vec::new(),
            start: 0,
            buffers,
            written: 0,
        }
    }

    /// The core's spare buffers this connection rents from.
    pub(super) fn buffers(&self) -> &Rc<ConnectionBuffers> {
        &self.buffers
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

    /// Reads more bytes into the buffer, making room first, for at most `timeout`.
    async fn fill(&mut self, timeout: Duration) -> Result<usize, ReadEnd> {
        self.make_room();
        let cap = self.buf.capacity();
        read_appending(&mut self.stream, &mut self.buf, cap, timeout).await
    }

    /// Makes room at the end of the buffer: moves unconsumed bytes to its front when
    /// that frees space, rents a full buffer in place of none (or the idle probe), and
    /// grows a full one.
    fn make_room(&mut self) {
        if self.start > 0 && (self.buf.len() == self.buf.capacity() || self.start == self.buf.len())
        {
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
            self.start = 0;
        }
        if self.buf.capacity() < self.buffers.read.size() {
            let mut rented = self.buffers.read.rent();
            rented.extend_from_slice(&self.buf[self.start..]);
            self.buf = rented;
            self.start = 0;
        } else if self.buf.len() == self.buf.capacity() {
            self.buf.reserve(limits::READ_BUFFER_BYTES);
        }
    }

    /// Waits for and parses the next request head. `Ok(None)`: the client closed, or
    /// stayed idle past the timeout, or the connection was reaped from `idle` for a
    /// new client, before a new request began. A head must be complete
    /// `HEAD_DEADLINE_SECS` after its first byte, whatever pace it trickles in at:
    /// else `RequestTimeout`.
    pub(super) async fn read_head(
        &mut self,
        idle: &IdleSet,
    ) -> Result<Option<RequestHead>, S3Error> {
        let head_time = Duration::from_secs(limits::HEAD_DEADLINE_SECS);
        let mut deadline = (self.buffered() > 0).then(|| Instant::now() + head_time);
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
            let filled = match deadline {
                None => self.wait_idle(idle).await,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(head_too_slow());
                    }
                    // Boxed: a timed read is large, and an idle connection's task
                    // should not carry its room.
                    Box::pin(self.fill(left)).await
                }
            };
            match filled {
                Ok(_) => {
                    deadline.get_or_insert_with(|| Instant::now() + head_time);
                }
                Err(ReadEnd::TimedOut) if deadline.is_some() => return Err(head_too_slow()),
                Err(ReadEnd::Eof) | Err(ReadEnd::TimedOut) => return Ok(None),
                Err(ReadEnd::Failed(error)) => {
                    log::debug!("read ended: {error}");
                    return Ok(None);
                }
            }
        }
    }

    /// Waits, idle, for the first bytes of the next head, for at most
    /// `IDLE_TIMEOUT_SECS`. The read buffer is kept for `IDLE_BUFFER_HOLD_MILLIS` (the
    /// next request of a busy keep-alive client comes sooner); then it goes back to
    /// the core's spares, a TLS session lets go of its record buffers, and the wait
    /// goes on in a read of `IDLE_PROBE_BYTES`, so an idle connection holds no buffer
    /// of request size. The reads have no timer: `idle`'s sweep cancels them when
    /// their time is up. Its place among the idle (oldest reaped first) stays.
    async fn wait_idle(&mut self, idle: &IdleSet) -> Result<usize, ReadEnd> {
        self.make_room();
        let (ticket, handle) = idle.hold();
        match self.read_untimed(handle).await {
            Err(ReadEnd::Failed(_)) if ticket.is_over() => {}
            other => return other,
        }
        debug_assert_eq!(
            self.buffered(),
            0,
            "an idle wait begins with nothing buffered"
        );
        let buf = std::mem::replace(&mut self.buf, Vec::with_capacity(limits::IDLE_PROBE_BYTES));
        self.buffers.read.give_back(buf);
        self.start = 0;
        self.stream.release_buffers();
        let (ticket, handle) = idle.wait(ticket);
        match self.read_untimed(handle).await {
            Err(ReadEnd::Failed(_)) if ticket.is_over() => Err(ReadEnd::TimedOut),
            other => other,
        }
    }

    /// Reads into the buffer's spare capacity as it is, until `handle` is cancelled.
    async fn read_untimed(&mut self, handle: CancelHandle) -> Result<usize, ReadEnd> {
        let buf = std::mem::take(&mut self.buf);
        let end = buf.capacity();
        let (result, buf) = self.stream.read(buf, end, handle).await;
        self.buf = buf;
        match result {
            Ok(0) => Err(ReadEnd::Eof),
            Ok(n) => Ok(n),
            Err(error) => Err(ReadEnd::Failed(error)),
        }
    }

    /// Appends up to `max` decoded body bytes to `out`; Ok(0) when the body is complete.
    /// The body must keep up `BODY_RATE_MIN_BYTES_PER_SEC` over every window of
    /// `BODY_RATE_WINDOW_SECS` (a stall is a window with nothing): else `RequestTimeout`.
    /// After any failure the body is marked failed and cannot be read further.
    pub(super) async fn read_body(
        &mut self,
        body: &mut Body,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<usize, S3Error> {
        if body.failed {
            return Err(S3Error::new(ErrorCode::IncompleteBody));
        }
        let result = self.read_body_once(body, out, max).await;
        if result.is_err() {
            body.failed = true;
        }
        result
    }

    async fn read_body_once(
        &mut self,
        body: &mut Body,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<usize, S3Error> {
        loop {
            let window = window_left(body)?;
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
                    let end = out.len() + want;
                    match read_appending(&mut self.stream, out, end, window).await {
                        Ok(n) => {
                            body.count(n);
                            return Ok(n);
                        }
                        // The window ended without a byte: it is judged at the top.
                        Err(ReadEnd::TimedOut) => {}
                        Err(end) => return Err(body_read_error(end)),
                    }
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
                    match self.fill(window).await {
                        Ok(_) | Err(ReadEnd::TimedOut) => {}
                        Err(end) => return Err(body_read_error(end)),
                    }
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

    /// Writes all of `buf`. The client must read at least `SEND_RATE_MIN_BYTES_PER_SEC`
    /// over every window of `SEND_RATE_WINDOW_SECS` meanwhile: one that stops reading,
    /// or reads slower, gets a `TimedOut` error, the write cancelled in the kernel
    /// before this returns.
    pub(super) async fn write_all(&mut self, mut buf: Vec<u8>) -> (std::io::Result<()>, Vec<u8>) {
        let len = buf.len();
        let mut sent = 0;
        let mut pace = RateWindow::for_send();
        while sent < len {
            let Some(left) = pace.time_left() else {
                return (Err(too_slow_reader()), buf);
            };
            let canceller = Canceller::new();
            let write = self.stream.write(buf, sent, canceller.handle());
            let mut write = std::pin::pin!(write);
            let (result, returned) = match monoio::time::timeout(left, &mut write).await {
                Ok(done) => done,
                Err(_) => {
                    let _canceller = canceller.cancel();
                    write.await
                }
            };
            buf = returned;
            match result {
                Ok(n) if n > 0 => {
                    sent += n;
                    self.written += n as u64;
                    pace.count(n as u64);
                }
                // Cancelled at the window's end: judged by the next `time_left`.
                _ if pace.window_over() => {}
                Ok(_) => return (Err(write_zero()), buf),
                Err(error) => return (Err(error), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Whether `send_file` can send on this connection (plain TCP: TLS encrypts in
    /// the daemon, so its bytes pass through memory whatever the source).
    pub(super) fn can_send_file(&self) -> bool {
        matches!(self.stream, Transport::Plain(_))
    }

    /// Sends `len` bytes of `file` from `offset` with sendfile(2) (`http::send_file`);
    /// returns how many were sent, and the error that stopped it short. Paced as
    /// `write_all`: the waits for room in the socket are bounded by the rate windows.
    pub(super) async fn send_file(
        &mut self,
        file: &dyn AsRawFd,
        mut offset: u64,
        len: u64,
    ) -> (u64, std::io::Result<()>) {
        let Transport::Plain(tcp) = &mut self.stream else {
            let error = std::io::Error::new(std::io::ErrorKind::Unsupported, "sendfile over TLS");
            return (0, Err(error));
        };
        let (socket, file) = (tcp.as_raw_fd(), file.as_raw_fd());
        let mut pace = RateWindow::for_send();
        let mut sent = 0u64;
        while sent < len {
            let count = (len - sent).min(limits::SEND_FILE_CALL_BYTES) as usize;
            match send_file::send_some(socket, file, &mut offset, count) {
                Ok(Some(0)) => return (sent, Err(short_file())),
                Ok(Some(n)) => {
                    sent += n as u64;
                    self.written += n as u64;
                    pace.count(n as u64);
                    continue;
                }
                Ok(None) => {}
                Err(error) => return (sent, Err(error)),
            }
            let Some(left) = pace.time_left() else {
                return (sent, Err(too_slow_reader()));
            };
            // A poll moves nothing: a timed-out one is dropped (cancelled) safely. The
            // window it ended is judged before the next call, which could find room the
            // poll did not report (a socket is writable again only once a third of its
            // buffer is free): a client that stopped reading is cut when the window ends.
            match monoio::time::timeout(left, tcp.writable(false)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return (sent, Err(error)),
                Err(_) => {
                    if pace.time_left().is_none() {
                        return (sent, Err(too_slow_reader()));
                    }
                }
            }
        }
        (sent, Ok(()))
    }

    /// Closes after an answer given without reading the request: ends our side, then
    /// reads and discards what the client still sends (up to `max`, for at most
    /// `timeout`). Closing with unread input would send a reset, which can destroy
    /// the answer before the client reads it.
    pub(super) async fn linger_close(mut self, max: usize, timeout: Duration) {
        self.stream.shutdown().await;
        let deadline = Instant::now() + timeout;
        let mut discarded = 0;
        let mut buf = Vec::with_capacity(16 * 1024);
        while discarded < max {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            buf.clear();
            let cap = buf.capacity();
            let canceller = Canceller::new();
            let handle = canceller.handle();
            let (result, returned) =
                read_with_timeout(&mut self.stream, buf, 0, cap, left, handle, move || {
                    canceller.cancel();
                })
                .await;
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
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec())
            .await;
        result
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.buffers.read.give_back(std::mem::take(&mut self.buf));
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

/// How long the body's current rate window has left; a window that ended short of
/// its bytes is `RequestTimeout`.
fn window_left(body: &mut Body) -> Result<Duration, S3Error> {
    body.window.time_left().ok_or_else(|| {
        S3Error::with_message(
            ErrorCode::RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period.",
        )
    })
}
