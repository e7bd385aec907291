//! The connection loop: read a head, hand it to the service with a reader for its
//! body, write the response the service returns, then make the connection ready for
//! the next request or close it. Everything about the connection lives here:
//! keep-alive and pipelining, `100 Continue`, draining an unread body, lingering on
//! close, and the figures of each exchange. The service knows none of it.

use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::S3Error;
use crate::http::body::Body as RequestBody;
use crate::http::buffer_pool::ConnectionBuffers;
use crate::http::connection::Connection;
use crate::http::head::RequestHead;
use crate::http::idle::IdleSet;
use crate::http::response::{Body, BodyStream, Labels, Response, ResponseHead};
use crate::http::tls::Transport;
use crate::limits;

/// What the connection loop serves requests with.
#[allow(async_fn_in_trait)] // monoio futures are !Send by design: one runtime per core.
pub(crate) trait Service {
    /// The streamed bodies of its responses.
    type Stream: BodyStream;
    /// Held while one request is in flight, from its head to its last response byte.
    type InFlight;

    /// Answers a request. The head may gain headers (a presigned URL's signed query
    /// parameters); the body is read, if at all, through `body`.
    async fn call(
        &self,
        head: &mut RequestHead,
        body: &mut BodyReader<'_>,
    ) -> Response<Self::Stream>;

    /// The answer to a request that cannot be served because its head or its body's
    /// framing is malformed; the connection closes after it.
    fn reject(&self, error: &S3Error) -> Response<Self::Stream>;

    /// Marks a request in flight until the returned value is dropped.
    fn in_flight(&self) -> Self::InFlight;

    /// Whether connections should close after their current request (a drain).
    fn draining(&self) -> bool;

    /// This core's idle connections, which the connection cap reaps first.
    fn idle(&self) -> &IdleSet;

    /// This core's spare connection buffers.
    fn buffers(&self) -> &Rc<ConnectionBuffers>;

    /// Called once for each answered request, after its last byte is written.
    fn finished(&self, exchange: &Exchange<'_>);
}

/// What happened in one request and its response.
pub(crate) struct Exchange<'a> {
    pub method: &'a str,
    pub status: u16,
    pub labels: &'a Labels,
    /// Decoded request body bytes received.
    pub bytes_in: u64,
    /// Response bytes written, head included.
    pub bytes_out: u64,
    pub duration: Duration,
}

/// A request's body, read on demand. The first read tells a client waiting on
/// `Expect: 100-continue` to send, so a service that refuses a request before
/// reading its body never invites it.
pub(crate) struct BodyReader<'a> {
    conn: &'a mut Connection,
    body: RequestBody,
    expects_continue: bool,
    continue_sent: bool,
}

impl BodyReader<'_> {
    /// Whether the framing announces a body (a length above 0, or chunked).
    pub(crate) fn has_body(&self) -> bool {
        !self.body.is_finished()
    }

    /// Tells a client waiting on `Expect: 100-continue` to send its body. A 100 goes
    /// out even for an empty body: botocore, having sent `Expect`, takes any other first
    /// answer as the final one and keeps that status for the rest of the connection.
    pub(crate) async fn accept(&mut self) -> Result<(), S3Error> {
        if self.expects_continue && !self.continue_sent {
            self.continue_sent = true;
            self.conn
                .send_continue()
                .await
                .map_err(|e| S3Error::internal(format!("write 100: {e}")))?;
        }
        Ok(())
    }

    /// Appends up to `max` decoded body bytes to `out`; `Ok(0)` once the body is complete.
    pub(crate) async fn read(&mut self, out: &mut Vec<u8>, max: usize) -> Result<usize, S3Error> {
        self.accept().await?;
        self.conn.read_body(&mut self.body, out, max).await
    }

    /// Decoded bytes received so far.
    pub(crate) fn received(&self) -> u64 {
        self.body.received()
    }

    /// Leaves the connection at the start of the next request: reads what is left of
    /// the body (up to a limit). False when that is not possible and the connection
    /// must close: the client still waits for a 100 (it may yet send the body, or, like
    /// botocore, mistake our answer's state for the next one's), or the rest is large.
    async fn settle(&mut self) -> bool {
        if self.expects_continue && !self.continue_sent {
            return false;
        }
        if self.body.is_finished() {
            return true;
        }
        // A read already failed (too slow, cut off): nothing more is waited for.
        if self.body.failed {
            return false;
        }
        matches!(
            self.conn
                .drain_body(&mut self.body, limits::DRAIN_BYTES_MAX)
                .await,
            Ok(true)
        )
    }
}

const LINGER_TIMEOUT: Duration = Duration::from_millis(limits::LINGER_MILLIS);

/// Serves one accepted connection until it closes, the client goes idle, or (while
/// the process drains) its current request is answered.
pub(crate) async fn serve<S: Service>(service: &S, stream: Transport) {
    let mut conn = Connection::new(stream, service.buffers().clone());
    loop {
        match conn.read_head(service.idle()).await {
            Ok(Some(head)) => {
                let _in_flight = service.in_flight();
                // Boxed: the exchange's future (the service's, the response's) is
                // large, and an idle connection's task should not carry its room.
                let keep = Box::pin(exchange(service, &mut conn, head)).await;
                if !keep || service.draining() {
                    break;
                }
            }
            Ok(None) => return,
            Err(error) => {
                // The head could not be parsed: answer, then close, since the stream
                // position of the next request is unknown.
                let response = service.reject(&error);
                let write = write_response(&mut conn, false, response.head, response.body, false);
                let _ = Box::pin(write).await;
                break;
            }
        }
    }
    // We end this connection, maybe with input unread (a refused body, a bad head).
    // Boxed, like every step an idle connection is not waiting in: the task of each
    // connection is as large as its largest step, and an idle one holds the task.
    Box::pin(conn.linger_close(limits::DRAIN_BYTES_MAX as usize, LINGER_TIMEOUT)).await;
}

/// Answers a connection with `response` without reading a request (over the
/// connection cap), then closes it.
pub(crate) async fn refuse<S: BodyStream>(
    stream: Transport,
    response: Response<S>,
    buffers: Rc<ConnectionBuffers>,
) {
    let mut conn = Connection::new(stream, buffers);
    let _ = write_response(&mut conn, false, response.head, response.body, false).await;
    conn.linger_close(limits::REFUSED_LINGER_BYTES_MAX, LINGER_TIMEOUT)
        .await;
}

/// Serves one request; returns whether the connection can carry another.
async fn exchange<S: Service>(service: &S, conn: &mut Connection, mut head: RequestHead) -> bool {
    let started = Instant::now();
    let written_before = conn.bytes_written();
    let mut keep_alive = head.keep_alive() && !service.draining();
    let (response, bytes_in) = match head.body_kind() {
        Ok(kind) => {
            let mut body = BodyReader {
                conn: &mut *conn,
                body: RequestBody::new(kind),
                expects_continue: head.expects_continue(),
                continue_sent: false,
            };
            let response = service.call(&mut head, &mut body).await;
            keep_alive &= body.settle().await;
            (response, body.received())
        }
        Err(error) => {
            // Unreadable framing leaves the position of the next request unknown.
            keep_alive = false;
            (service.reject(&error), 0)
        }
    };
    let Response {
        head: response_head,
        body,
        labels,
    } = response;
    let status = response_head.status();
    let head_only = head.method == "HEAD";
    let written = write_response(conn, head_only, response_head, body, keep_alive).await;
    keep_alive &= written;
    service.finished(&Exchange {
        method: &head.method,
        status,
        labels: &labels,
        bytes_in,
        bytes_out: conn.bytes_written() - written_before,
        duration: started.elapsed(),
    });
    keep_alive
}

/// Writes a response; false when the connection cannot carry another request (the
/// client went away, or a streamed body ended early and the framing is broken).
async fn write_response<S: BodyStream>(
    conn: &mut Connection,
    head_only: bool,
    head: ResponseHead,
    body: Body<S>,
    keep_alive: bool,
) -> bool {
    let no_length = matches!(head.status(), 204 | 304);
    let length = match &body {
        Body::Empty => 0,
        Body::Bytes(bytes) => bytes.len() as u64,
        Body::Static(bytes) => bytes.len() as u64,
        Body::Stream { length, .. } | Body::Length(length) => *length,
    };
    let mut out = head.finish((!no_length).then_some(length), keep_alive);
    if !head_only {
        out.reserve(length.min(limits::RESPONSE_SMALL_BYTES) as usize);
    }
    let source = match body {
        Body::Bytes(bytes) if !head_only => {
            out.extend_from_slice(&bytes);
            None
        }
        Body::Static(bytes) if !head_only => {
            out.extend_from_slice(bytes);
            None
        }
        Body::Stream { source, length } if !head_only && length > 0 => Some(source),
        _ => None,
    };
    let Some(mut source) = source else {
        return write(conn, out).await;
    };
    if length <= limits::RESPONSE_SMALL_BYTES {
        // The whole body behind the head, then one write: copied once when it is
        // already in memory (a cached small object).
        if let Some(bytes) = source.in_memory() {
            if (bytes.len() as u64) < length {
                return short_body(Ok(bytes.len()));
            }
            out.extend_from_slice(&bytes[..length as usize]);
            return write(conn, out).await;
        }
        let mut buf = Vec::with_capacity(length as usize);
        let mut remaining = length;
        while remaining > 0 {
            buf.clear();
            let (result, returned) = source.read(buf).await;
            buf = returned;
            match result {
                Ok(n) if n > 0 => {
                    let take = n.min(remaining as usize);
                    out.extend_from_slice(&buf[..take]);
                    remaining -= take as u64;
                }
                _ => return short_body(result),
            }
        }
        return write(conn, out).await;
    }
    if !write(conn, out).await {
        return false;
    }
    let buffers = conn.buffers().clone();
    let buf = buffers.send.rent();
    let (sent, buf) = stream_body(conn, &mut source, length, buf).await;
    buffers.send.give_back(buf);
    sent
}

/// Sends `length` bytes of `source` through `buf`, or, for the runs of files in a
/// large body on plain TCP, with sendfile(2); false when the body ended early or
/// the client went away. Hands the buffer back.
async fn stream_body<S: BodyStream>(
    conn: &mut Connection,
    source: &mut S,
    length: u64,
    mut buf: Vec<u8>,
) -> (bool, Vec<u8>) {
    let mut remaining = length;
    let send_files = length >= limits::SEND_FILE_MIN_BYTES && conn.can_send_file();
    while remaining > 0 {
        if send_files {
            if let Some(run) = source.file_run() {
                let want = run.len.min(remaining);
                let (sent, result) = conn.send_file(run.file, run.offset, want).await;
                source.skip(sent);
                remaining -= sent;
                if let Err(error) = result {
                    if error.kind() == std::io::ErrorKind::UnexpectedEof {
                        log::error!("sending a response body from its file: {error}");
                    } else {
                        log::debug!("a response body sent from its file stopped: {error}");
                    }
                    return (false, buf);
                }
                continue;
            }
        }
        buf.clear();
        let (result, returned) = source.read(buf).await;
        buf = returned;
        match result {
            Ok(n) if n > 0 => {
                buf.truncate(n.min(remaining as usize));
                remaining -= buf.len() as u64;
                let (written, returned) = conn.write_all(buf).await;
                buf = returned;
                if let Err(error) = written {
                    log::debug!("client went away during a response body: {error}");
                    return (false, buf);
                }
            }
            _ => return (short_body(result), buf),
        }
    }
    (true, buf)
}

async fn write(conn: &mut Connection, out: Vec<u8>) -> bool {
    match conn.write_all(out).await.0 {
        Ok(()) => true,
        Err(error) => {
            log::debug!("client went away while we answered: {error}");
            false
        }
    }
}

/// A streamed body ended before its announced length: the response is cut off, and
/// only closing the connection tells the client.
fn short_body(result: std::io::Result<usize>) -> bool {
    match result {
        Ok(_) => log::error!("a response body ended before its length"),
        Err(error) => log::error!("reading a response body failed: {error}"),
    }
    false
}
