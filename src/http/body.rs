//! Request body framing: a known length, or HTTP chunked encoding decoded by a
//! small state machine that works on whatever bytes have arrived.

use crate::error::{ErrorCode, S3Error};
use crate::http::line::LineBuffer;
use crate::http::rate_window::RateWindow;
use crate::limits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    Empty,
    Length(u64),
    Chunked,
}

/// The decoding state of one request body.
#[derive(Debug)]
pub(super) struct Body {
    pub(crate) state: BodyState,
    received: u64,
    /// Set when a read failed (timeout, too slow, cut off, bad framing): the stream
    /// position is lost, so the rest can only be abandoned with the connection.
    pub(crate) failed: bool,
    /// The rate rule the client's sending is held to.
    pub(crate) window: RateWindow,
}

#[derive(Debug)]
pub(crate) enum BodyState {
    Length { remaining: u64 },
    Chunked(Chunked),
    Done,
}

impl Body {
    pub(super) fn new(kind: BodyKind) -> Body {
        let state = match kind {
            BodyKind::Empty | BodyKind::Length(0) => BodyState::Done,
            BodyKind::Length(n) => BodyState::Length { remaining: n },
            BodyKind::Chunked => BodyState::Chunked(Chunked::default()),
        };
        Body {
            state,
            received: 0,
            failed: false,
            window: RateWindow::for_body(),
        }
    }

    pub(super) fn is_finished(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    /// Decoded bytes delivered so far.
    pub(super) fn received(&self) -> u64 {
        self.received
    }

    pub(crate) fn count(&mut self, n: usize) {
        self.received += n as u64;
        self.window.count(n as u64);
        if let BodyState::Length { remaining } = &mut self.state {
            *remaining -= n as u64;
            if *remaining == 0 {
                self.state = BodyState::Done;
            }
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Chunked {
    phase: Phase,
    line: LineBuffer,
    trailer_bytes: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

impl Chunked {
    /// Consumes a prefix of `input`, appending at most `max` data bytes to `out`.
    /// Returns (bytes consumed, finished).
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(usize, bool), S3Error> {
        let mut used = 0;
        let start_len = out.len();
        while used < input.len() && self.phase != Phase::Done {
            match self.phase {
                Phase::Size => {
                    let Some(line) =
                        self.take_line(&input[used..], &mut used, limits::CHUNK_LINE_BYTES_MAX)?
                    else {
                        continue;
                    };
                    let size = crate::http::line::chunk_size(&line).ok_or_else(|| {
                        S3Error::with_message(ErrorCode::BadRequest, "Invalid chunk size.")
                    })?;
                    self.phase = if size == 0 {
                        Phase::Trailer
                    } else {
                        Phase::Data(size)
                    };
                }
                Phase::Data(remaining) => {
                    let room = max - (out.len() - start_len);
                    if room == 0 {
                        break;
                    }
                    let take = (input.len() - used).min(remaining as usize).min(room);
                    out.extend_from_slice(&input[used..used + take]);
                    used += take;
                    let left = remaining - take as u64;
                    self.phase = if left == 0 {
                        Phase::DataEnd
                    } else {
                        Phase::Data(left)
                    };
                }
                Phase::DataEnd => {
                    let Some(line) = self.take_line(&input[used..], &mut used, 2)? else {
                        continue;
                    };
                    if !line.is_empty() {
                        return Err(S3Error::with_message(
                            ErrorCode::BadRequest,
                            "Chunk data not followed by CRLF.",
                        ));
                    }
                    self.phase = Phase::Size;
                }
                Phase::Trailer => {
                    let Some(line) =
                        self.take_line(&input[used..], &mut used, limits::CHUNK_LINE_BYTES_MAX)?
                    else {
                        continue;
                    };
                    self.trailer_bytes += line.len();
                    if self.trailer_bytes > limits::TRAILER_BYTES_MAX {
                        return Err(S3Error::new(ErrorCode::RequestHeaderSectionTooLarge));
                    }
                    if line.is_empty() {
                        self.phase = Phase::Done;
                    }
                }
                Phase::Done => {}
            }
        }
        Ok((used, self.phase == Phase::Done))
    }

    /// Collects one CRLF- (or LF-) terminated line across calls; `None` until complete.
    fn take_line(
        &mut self,
        rest: &[u8],
        used: &mut usize,
        max: usize,
    ) -> Result<Option<Vec<u8>>, S3Error> {
        self.line
            .take(rest, used, max)
            .map_err(|_| S3Error::with_message(ErrorCode::BadRequest, "Chunk line too long."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], step: usize) -> Result<Vec<u8>, ErrorCode> {
        let mut chunked = Chunked::default();
        let mut out = Vec::new();
        let mut finished = false;
        for piece in input.chunks(step) {
            let mut offset = 0;
            while offset < piece.len() {
                let (used, done) = chunked
                    .decode(&piece[offset..], &mut out, 7)
                    .map_err(|e| e.code)?;
                offset += used;
                finished = done;
                if done {
                    break;
                }
            }
        }
        if finished {
            Ok(out)
        } else {
            Err(ErrorCode::IncompleteBody)
        }
    }

    #[test]
    fn decodes_at_every_split() {
        let body = b"5;ext=1\r\nhello\r\nB\r\n world, yes\r\n0\r\nx-trailer: v\r\n\r\n";
        for step in 1..body.len() {
            assert_eq!(
                decode_all(body, step).unwrap(),
                b"hello world, yes",
                "step {step}"
            );
        }
    }

    #[test]
    fn chunk_sizes_are_hex_digits_only() {
        for bad in ["+5", " 5", "-5", "0x5", "", "5 x", "1234567890123456"] {
            let body = format!("{bad}\r\nhello\r\n0\r\n\r\n");
            assert_eq!(
                decode_all(body.as_bytes(), 100),
                Err(ErrorCode::BadRequest),
                "{bad:?}"
            );
        }
        assert_eq!(
            decode_all(b"5 ;ext\r\nhello\r\n0\r\n\r\n", 100).unwrap(),
            b"hello"
        );
        assert_eq!(
            decode_all(b"00005\r\nhello\r\n0\r\n\r\n", 100).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn rejects_bad_framing() {
        assert_eq!(
            decode_all(b"zz\r\nab\r\n0\r\n\r\n", 100),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            decode_all(b"2\r\nabc\r\n0\r\n\r\n", 100),
            Err(ErrorCode::BadRequest)
        );
        let long = format!("{}\r\n", "1".repeat(limits::CHUNK_LINE_BYTES_MAX + 10));
        assert_eq!(decode_all(long.as_bytes(), 100), Err(ErrorCode::BadRequest));
        assert_eq!(decode_all(b"5\r\nhel", 100), Err(ErrorCode::IncompleteBody));
    }
}
