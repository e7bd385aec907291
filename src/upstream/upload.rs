//! A request whose body the caller streams, for bodies too large to hold in memory
//! (multi-GiB objects): `Client::upload` sends the head with the declared
//! Content-Length, the caller passes the body in buffers of its choosing to `write`
//! (owned, and handed back for reuse, as monoio's IO does), and `finish` reads the
//! answer once exactly that many bytes went out. Such a body cannot be replayed, so
//! nothing is retried once part of it was sent.

use std::rc::Rc;

use crate::upstream::client::Shared;
use crate::upstream::connection::Connection;
use crate::upstream::error::{Phase, UpstreamError};
use crate::upstream::response::Response;

/// A streamed request in progress. Dropping it unfinished closes its connection.
pub struct Upload {
    shared: Rc<Shared>,
    origin: String,
    /// `None` once a write failed: the stream position is lost.
    connection: Option<Connection>,
    /// The connection came from the pool (a failure before the answer is `Stale`).
    reused: bool,
    length: u64,
    remaining: u64,
    close: bool,
}

impl Upload {
    pub(crate) fn new(
        shared: Rc<Shared>,
        origin: &str,
        connection: Connection,
        reused: bool,
        length: u64,
        close: bool,
    ) -> Upload {
        Upload {
            shared,
            origin: origin.to_string(),
            connection: Some(connection),
            reused,
            length,
            remaining: length,
            close,
        }
    }

    /// Body bytes still to be written.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Writes all of `buf` as the next part of the body and hands it back. More bytes
    /// than remain is refused (`InvalidRequest`, nothing written). After any other
    /// error the upload is over: the caller may start it again only if the error is
    /// `Stale` (the server never saw the request) or, for an idempotent request, if
    /// `is_retryable()` holds.
    pub async fn write(&mut self, buf: Vec<u8>) -> (Result<(), UpstreamError>, Vec<u8>) {
        let Some(connection) = self.connection.as_mut() else {
            return (Err(self.abandoned()), buf);
        };
        let len = buf.len() as u64;
        if len > self.remaining {
            let message = format!(
                "{len} more bytes than the {} left of the declared Content-Length {}",
                self.remaining, self.length
            );
            return (
                Err(UpstreamError::invalid_request(&self.origin, message)),
                buf,
            );
        }
        if len == 0 {
            return (Ok(()), buf);
        }
        let stall = self.shared.config.stall_timeout;
        let (result, buf) = connection.write_all(buf, stall, &self.origin).await;
        match result {
            Ok(()) => {
                self.remaining -= len;
                (Ok(()), buf)
            }
            Err(error) => {
                self.connection = None;
                (Err(self.shared.classify(error, self.reused)), buf)
            }
        }
    }

    /// Reads the answer's head once the whole body was written; the body of the answer
    /// is read from the `Response`. Finishing short of the declared length is refused
    /// (`InvalidRequest`) and closes the connection.
    pub async fn finish(mut self) -> Result<Response, UpstreamError> {
        let Some(mut connection) = self.connection.take() else {
            return Err(self.abandoned());
        };
        if self.remaining > 0 {
            let message = format!(
                "finished with {} of the declared {} body bytes unwritten",
                self.remaining, self.length
            );
            return Err(UpstreamError::invalid_request(&self.origin, message));
        }
        let config = &self.shared.config;
        let head = connection
            .read_head(
                config.first_byte_timeout,
                config.stall_timeout,
                &self.origin,
            )
            .await
            .map_err(|error| self.shared.classify(error, self.reused))?;
        Response::new(
            self.shared.clone(),
            &self.origin,
            connection,
            head,
            false,
            self.close,
        )
    }

    fn abandoned(&self) -> UpstreamError {
        let error = std::io::Error::other("the upload was abandoned after an earlier error");
        UpstreamError::io(&self.origin, Phase::Send, error)
    }
}
