//! The gateways' writer: an object of announced size written upstream. A small one is
//! held and sent whole at commit, with its MD5, so the send can be retried; a larger
//! one streams as it arrives, in one PUT or the backend's own way (Azure's blocks, a
//! GCS resumable upload), so memory stays flat. A write past the size, or a commit
//! short of it, is refused. Each gateway says how to send a held body, check a
//! streamed PUT's answer, delete, and write its own way (`UploadTarget`); the rest is
//! here once.

use std::io;

use crate::limits;
use crate::storage::ranged::{upstream_io, RangedSource};
use crate::upstream::{Response, Upload};

/// What a gateway backend gives its uploads. Its futures are not `Send`, as no monoio
/// future is: they run on the core that made them.
#[allow(async_fn_in_trait)]
pub trait UploadTarget: Sized {
    /// The state of a write done the backend's own way (`Infallible` where it has
    /// none).
    type Own;

    /// What the upstream calls an object, for log lines (`blob`, say).
    const NOUN: &'static str;

    /// Sends a held object whole (retried where safe), with its MD5 for the upstream
    /// to check, and checks it was stored.
    async fn put_held(&self, data_id: &str, body: Vec<u8>) -> io::Result<()>;

    /// Checks the answer of a streamed PUT that sent all its bytes, and drains it.
    async fn check_stored(&self, response: Response) -> io::Result<()>;

    /// Deletes an object upstream; deleting one already gone succeeds.
    async fn delete(&self, data_id: &str) -> io::Result<()>;

    /// Writes `buf` (within the size) the backend's own way, adding to `written` the
    /// bytes that went out, and hands the buffer back cleared.
    async fn write_own(
        &self,
        data_id: &str,
        own: &mut Self::Own,
        written: &mut u64,
        size: u64,
        buf: Vec<u8>,
    ) -> (io::Result<()>, Vec<u8>);

    /// Ends a write done the backend's own way, all `size` bytes of it written, and
    /// checks the upstream stored the object.
    async fn commit_own(&self, data_id: &str, own: Self::Own, size: u64) -> io::Result<()>;

    /// Discards a write done the backend's own way.
    async fn abort_own(&self, data_id: &str, own: Self::Own);
}

/// How an upload's bytes go upstream.
pub(super) enum Mode<O> {
    /// A small object, sent whole at commit.
    Held(Vec<u8>),
    /// A larger one, whose one streamed PUT is under way.
    Streamed(Upload),
    /// One the backend writes its own way.
    Own(O),
}

/// An object being written upstream.
pub struct GatewayUpload<T: UploadTarget> {
    target: T,
    data_id: String,
    size: u64,
    written: u64,
    /// `None` once committed or aborted.
    mode: Option<Mode<T::Own>>,
}

/// The size a write announced: the upstream request must announce its length, so a
/// write of unknown size is refused before its first byte (`Storage::needs_size`).
pub(super) fn announced_size(size: Option<u64>, backend: &str) -> io::Result<u64> {
    size.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the {backend} backend needs an object's size before its bytes"),
        )
    })
}

/// Drains an answer whose status is one of `expected` and succeeds; any other is the
/// error `source` makes of it (for a deletion, 404 is among the expected: deleting
/// what is gone succeeds).
pub(super) async fn expect_status<S: RangedSource>(
    source: &S,
    what: &str,
    response: Response,
    expected: &[u16],
) -> io::Result<()> {
    if !expected.contains(&response.status()) {
        return Err(source.answer_error(what, response).await);
    }
    response
        .discard(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
        .await;
    Ok(())
}

fn ended() -> io::Error {
    io::Error::other("upload already ended")
}

impl<T: UploadTarget> GatewayUpload<T> {
    /// An upload of `size` bytes of `data_id` to `target`, going as `mode` says.
    pub(super) fn new(target: T, data_id: &str, size: u64, mode: Mode<T::Own>) -> Self {
        GatewayUpload {
            target,
            data_id: data_id.to_string(),
            size,
            written: 0,
            mode: Some(mode),
        }
    }

    /// Appends `buf`, handing the buffer back for reuse.
    pub async fn write(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        if self.written + buf.len() as u64 > self.size {
            return (
                Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "more bytes than the object's size",
                )),
                buf,
            );
        }
        match self.mode.as_mut() {
            Some(Mode::Held(held)) => {
                held.extend_from_slice(&buf);
                self.written += buf.len() as u64;
                let mut buf = buf;
                buf.clear();
                (Ok(()), buf)
            }
            Some(Mode::Streamed(upload)) => {
                let length = buf.len() as u64;
                let (result, mut buf) = upload.write(buf).await;
                if result.is_ok() {
                    self.written += length;
                }
                buf.clear();
                (result.map_err(upstream_io), buf)
            }
            Some(Mode::Own(own)) => {
                self.target
                    .write_own(&self.data_id, own, &mut self.written, self.size, buf)
                    .await
            }
            None => (Err(ended()), buf),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Ends the write and checks the upstream stored the object.
    pub async fn commit(mut self) -> io::Result<()> {
        if self.written != self.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "fewer bytes than the object's size",
            ));
        }
        match self.mode.take() {
            Some(Mode::Held(body)) => self.target.put_held(&self.data_id, body).await,
            Some(Mode::Streamed(upload)) => {
                let response = upload.finish().await.map_err(upstream_io)?;
                self.target.check_stored(response).await
            }
            Some(Mode::Own(own)) => self.target.commit_own(&self.data_id, own, self.size).await,
            None => Err(ended()),
        }
    }

    /// Discards what was written: a streamed PUT that got all its bytes may have
    /// stored the object, which is then deleted.
    pub async fn abort(mut self) {
        match self.mode.take() {
            Some(Mode::Streamed(upload)) => {
                if self.written == self.size {
                    if let Ok(response) = upload.finish().await {
                        response
                            .discard(limits::UPSTREAM_ERROR_BODY_BYTES_MAX)
                            .await;
                    }
                    if let Err(error) = self.target.delete(&self.data_id).await {
                        log::warn!(
                            "could not delete aborted upstream {} {}: {error}",
                            T::NOUN,
                            self.data_id
                        );
                    }
                }
                // Otherwise dropping the PUT short of its length closes the connection,
                // and the upstream stores nothing.
            }
            Some(Mode::Own(own)) => self.target.abort_own(&self.data_id, own).await,
            Some(Mode::Held(_)) | None => {}
        }
    }
}
