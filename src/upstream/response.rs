//! An upstream server's answer: status, headers, and the body read at the caller's
//! pace into the caller's buffers, so memory stays bounded whatever the size. Once
//! the body has been read to its end, the connection goes back to the core's pool if
//! neither side asked to close it; a response dropped before that closes it.

use std::rc::Rc;
use std::time::Duration;

use crate::limits;
use crate::upstream::client::Shared;
use crate::upstream::connection::{Connection, Framing, ResponseHead};
use crate::upstream::error::{Phase, UpstreamError};

/// The answer to one request. Any status is an answer: a 404 or a 503 that outlived
/// the retries arrives here like a 200, for the caller to interpret.
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    /// The body's length when it is known before reading it (0 for no body).
    length: Option<u64>,
    framing: Framing,
    /// `None` once given back to the pool, or dropped after a failed read.
    connection: Option<Connection>,
    /// Whether the connection may carry another exchange once the body is read.
    reusable: bool,
    origin: String,
    shared: Rc<Shared>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("length", &self.length)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// Takes over `connection` after `head` was read. `no_body` is true for the answer
    /// to a HEAD request; `close` when the request said `Connection: close`.
    pub(crate) fn new(
        shared: Rc<Shared>,
        origin: &str,
        mut connection: Connection,
        head: ResponseHead,
        no_body: bool,
        close: bool,
    ) -> Result<Response, UpstreamError> {
        let (framing, framing_reusable) = head
            .framing(no_body)
            .map_err(|message| UpstreamError::protocol(origin, message))?;
        connection.set_server_idle(head.keep_alive_timeout());
        let length = match &framing {
            Framing::Done => Some(0),
            Framing::Length(n) => Some(*n),
            Framing::Chunked(_) | Framing::UntilClose => None,
        };
        let mut response = Response {
            status: head.status,
            reusable: framing_reusable && head.keeps_alive() && !close,
            headers: head.headers,
            length,
            framing,
            connection: Some(connection),
            origin: origin.to_string(),
            shared,
        };
        response.release_if_done();
        Ok(response)
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// Every header, names lowercased, values trimmed, in the order received.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of header `name`, which must be lowercase.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body's length when the answer gave one (Content-Length), 0 when it has no
    /// body (HEAD, 204, 304); `None` for a chunked body or one that ends at close.
    /// For a HEAD request the object's size is in `header("content-length")`.
    pub fn body_length(&self) -> Option<u64> {
        self.length
    }

    /// True once the body has been read to its end.
    pub fn is_finished(&self) -> bool {
        matches!(self.framing, Framing::Done)
    }

    /// Appends the next body bytes to `buf`, at most its spare capacity (a buffer
    /// with none is given room first), and hands it back with their count: `Ok(0)`
    /// at the end of the body, when the connection has gone back to the pool. After
    /// an error the body cannot be read further (its connection is closed).
    pub async fn read(&mut self, buf: Vec<u8>) -> (Result<usize, UpstreamError>, Vec<u8>) {
        if self.is_finished() {
            return (Ok(0), buf);
        }
        let Some(connection) = self.connection.as_mut() else {
            let error = std::io::Error::other("the body was abandoned after an earlier error");
            return (
                Err(UpstreamError::io(&self.origin, Phase::Receive, error)),
                buf,
            );
        };
        let stall = self.shared.config.stall_timeout;
        let (result, buf) = connection
            .read_body(&mut self.framing, buf, stall, &self.origin)
            .await;
        match result {
            Ok(n) => {
                self.release_if_done();
                (Ok(n), buf)
            }
            Err(error) => {
                self.connection = None;
                (Err(error), buf)
            }
        }
    }

    /// Reads the whole body, for small answers (XML, JSON): `TooLarge` if it is longer
    /// than `limit` bytes (known at once when the Content-Length says so).
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Vec<u8>, UpstreamError> {
        let origin = self.origin.clone();
        let too_large = || UpstreamError::TooLarge {
            endpoint: origin.clone(),
            limit,
        };
        if self.length.is_some_and(|n| n > limit as u64) {
            self.connection = None;
            return Err(too_large());
        }
        let first = self
            .length
            .map_or(limits::BODY_READ_CHUNK_BYTES, |n| n as usize)
            .min(limit.saturating_add(1))
            .max(1);
        let mut body = Vec::with_capacity(first);
        loop {
            if body.len() == body.capacity() {
                let room = limit.saturating_add(1).saturating_sub(body.len());
                body.reserve(room.clamp(1, limits::BODY_READ_CHUNK_BYTES));
            }
            let (result, returned) = self.read(body).await;
            body = returned;
            match result {
                Ok(0) => return Ok(body),
                Ok(_) if body.len() > limit => {
                    self.connection = None;
                    return Err(too_large());
                }
                Ok(_) => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// Reads and throws away the body if it is at most `limit` bytes, so that the
    /// connection can serve again; a longer or failing body closes it instead.
    pub async fn discard(mut self, limit: usize) {
        if self.length.is_some_and(|n| n > limit as u64) {
            return;
        }
        let mut scratch = Vec::with_capacity(limit.clamp(1, limits::BODY_READ_CHUNK_BYTES));
        let mut discarded = 0;
        while !self.is_finished() && discarded <= limit {
            scratch.clear();
            let (result, returned) = self.read(scratch).await;
            scratch = returned;
            match result {
                Ok(n) => discarded += n,
                Err(_) => return,
            }
        }
    }

    /// Gives the connection back to the pool once the body has ended, if it may serve
    /// again and holds no stray bytes.
    fn release_if_done(&mut self) {
        if !self.is_finished() {
            return;
        }
        let Some(connection) = self.connection.take() else {
            return;
        };
        if self.reusable && connection.buffered() == 0 {
            self.shared.release(&self.origin, connection);
        }
    }
}

/// How long a connection may stay idle in the pool: the pool's limit, or the server's
/// advertised keep-alive timeout less the margin if that is shorter (zero: not kept).
pub(crate) fn idle_allowance(
    pool_idle: Duration,
    server_idle: Option<Duration>,
    margin: Duration,
) -> Duration {
    match server_idle {
        Some(server) => pool_idle.min(server.saturating_sub(margin)),
        None => pool_idle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_allowance_respects_the_server() {
        let secs = Duration::from_secs;
        let margin = Duration::from_millis(1000);
        assert_eq!(idle_allowance(secs(30), None, margin), secs(30));
        assert_eq!(
            idle_allowance(secs(30), Some(secs(5)), margin),
            secs(4),
            "Azurite"
        );
        assert_eq!(idle_allowance(secs(3), Some(secs(60)), margin), secs(3));
        assert_eq!(
            idle_allowance(secs(30), Some(secs(1)), margin),
            Duration::ZERO
        );
        assert_eq!(
            idle_allowance(secs(30), Some(secs(0)), margin),
            Duration::ZERO
        );
    }
}
