//! The aws-chunked content encoding of S3 streaming uploads, inside the HTTP
//! body: `<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n` ... a final
//! zero-size chunk, optional trailing headers (checksums, and for signed
//! trailers `x-amz-trailer-signature`), and a closing blank line. A pure state
//! machine: it is fed whatever bytes arrived and verifies every chunk signature
//! through `ChunkSignatureCheck` as each chunk completes.

use sha2::{Digest, Sha256};

use crate::error::{ErrorCode, S3Error};
use crate::http::line::LineBuffer;
use crate::limits;

/// Verifies chunk and trailer signatures (SigV4's chained signatures).
pub(crate) trait ChunkSignatureCheck {
    fn check_chunk(&mut self, chunk_sha256: &[u8; 32], signature_hex: &str) -> bool;
    /// `trailer_block` is each trailing header but the signature as "name:value\n".
    fn check_trailer(&mut self, trailer_block: &[u8], signature_hex: &str) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

pub(crate) struct AwsChunkedDecoder<C: ChunkSignatureCheck> {
    check: Option<C>,
    expect_trailer: bool,
    phase: Phase,
    line: LineBuffer,
    chunk_hash: Sha256,
    chunk_signature: String,
    trailers: Vec<(String, String)>,
    trailer_signature: Option<String>,
    trailer_bytes: usize,
}

impl<C: ChunkSignatureCheck> AwsChunkedDecoder<C> {
    /// `check`: `None` for unsigned chunks.
    pub(crate) fn new(check: Option<C>, expect_trailer: bool) -> Self {
        AwsChunkedDecoder {
            check,
            expect_trailer,
            phase: Phase::Size,
            line: LineBuffer::default(),
            chunk_hash: Sha256::new(),
            chunk_signature: String::new(),
            trailers: Vec::new(),
            trailer_signature: None,
            trailer_bytes: 0,
        }
    }

    /// Whether the whole encoded body has been seen (the last CRLF may be missing
    /// when no trailer is expected; some clients end there).
    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Done
            || (self.phase == Phase::Trailer && !self.expect_trailer && self.line.is_empty())
    }

    pub(crate) fn trailers(&self) -> &[(String, String)] {
        &self.trailers
    }

    /// Consumes a prefix of `input` (all of it unless the encoding ended), appending
    /// decoded data to `out`. Returns the bytes consumed.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, S3Error> {
        let mut used = 0;
        while used < input.len() && self.phase != Phase::Done {
            match self.phase {
                Phase::Size => {
                    if let Some(line) =
                        self.take_line(input, &mut used, limits::CHUNK_LINE_BYTES_MAX)?
                    {
                        self.start_chunk(&line)?;
                    }
                }
                Phase::Data(remaining) => {
                    let take = (input.len() - used).min(remaining as usize);
                    let data = &input[used..used + take];
                    if self.check.is_some() {
                        self.chunk_hash.update(data);
                    }
                    out.extend_from_slice(data);
                    used += take;
                    let left = remaining - take as u64;
                    self.phase = if left == 0 {
                        Phase::DataEnd
                    } else {
                        Phase::Data(left)
                    };
                    if left == 0 {
                        self.finish_chunk()?;
                    }
                }
                Phase::DataEnd => {
                    if let Some(line) = self.take_line(input, &mut used, 2)? {
                        if !line.is_empty() {
                            return Err(malformed("chunk data not followed by CRLF"));
                        }
                        self.phase = Phase::Size;
                    }
                }
                Phase::Trailer => {
                    if let Some(line) =
                        self.take_line(input, &mut used, limits::CHUNK_LINE_BYTES_MAX)?
                    {
                        self.trailer_line(&line)?;
                    }
                }
                Phase::Done => {}
            }
        }
        Ok(used)
    }

    fn start_chunk(&mut self, line: &[u8]) -> Result<(), S3Error> {
        let text = std::str::from_utf8(line).map_err(|_| malformed("chunk header is not text"))?;
        let (size_text, extension) = match text.split_once(';') {
            Some((size, ext)) => (size, Some(ext)),
            None => (text, None),
        };
        let size = crate::http::line::chunk_size(size_text.as_bytes())
            .ok_or_else(|| malformed("invalid chunk size"))?;
        self.chunk_signature.clear();
        if self.check.is_some() {
            let signature = extension
                .and_then(|ext| ext.trim().strip_prefix("chunk-signature="))
                .ok_or_else(|| {
                    S3Error::with_message(
                        ErrorCode::SignatureDoesNotMatch,
                        "A chunk signature is missing.",
                    )
                })?;
            self.chunk_signature.push_str(signature.trim());
        }
        self.chunk_hash = Sha256::new();
        if size == 0 {
            self.finish_chunk()?;
            self.phase = Phase::Trailer;
        } else {
            self.phase = Phase::Data(size);
        }
        Ok(())
    }

    /// Verifies the signature of the chunk whose data just ended.
    fn finish_chunk(&mut self) -> Result<(), S3Error> {
        if let Some(check) = &mut self.check {
            let hash: [u8; 32] = std::mem::replace(&mut self.chunk_hash, Sha256::new())
                .finalize()
                .into();
            if !check.check_chunk(&hash, &self.chunk_signature) {
                return Err(S3Error::with_message(
                    ErrorCode::SignatureDoesNotMatch,
                    "The chunk signature we calculated does not match the signature you provided.",
                ));
            }
        }
        Ok(())
    }

    fn trailer_line(&mut self, line: &[u8]) -> Result<(), S3Error> {
        self.trailer_bytes += line.len();
        if self.trailer_bytes > limits::TRAILER_BYTES_MAX {
            return Err(malformed("trailer too large"));
        }
        if line.is_empty() {
            self.phase = Phase::Done;
            return self.verify_trailer();
        }
        let text = std::str::from_utf8(line).map_err(|_| malformed("trailer is not text"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| malformed("trailer line without ':'"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_string();
        if name == "x-amz-trailer-signature" {
            self.trailer_signature = Some(value);
        } else {
            self.trailers.push((name, value));
        }
        Ok(())
    }

    fn verify_trailer(&mut self) -> Result<(), S3Error> {
        let Some(check) = &mut self.check else {
            return Ok(());
        };
        if !self.expect_trailer {
            return Ok(());
        }
        let signature = self.trailer_signature.clone().ok_or_else(|| {
            S3Error::with_message(
                ErrorCode::SignatureDoesNotMatch,
                "The trailer signature is missing.",
            )
        })?;
        let mut block = Vec::new();
        for (name, value) in &self.trailers {
            block.extend_from_slice(name.as_bytes());
            block.push(b':');
            block.extend_from_slice(value.as_bytes());
            block.push(b'\n');
        }
        if !check.check_trailer(&block, &signature) {
            return Err(S3Error::with_message(
                ErrorCode::SignatureDoesNotMatch,
                "The trailer signature we calculated does not match the signature you provided.",
            ));
        }
        Ok(())
    }

    fn take_line(
        &mut self,
        input: &[u8],
        used: &mut usize,
        max: usize,
    ) -> Result<Option<Vec<u8>>, S3Error> {
        let rest = &input[*used..];
        self.line
            .take(rest, used, max)
            .map_err(|_| malformed("line too long"))
    }
}

fn malformed(why: &str) -> S3Error {
    S3Error::with_message(
        ErrorCode::IncompleteBody,
        format!("Malformed aws-chunked body: {why}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts signatures equal to the hex of the chunk hash; records trailer blocks.
    #[derive(Default)]
    struct FakeCheck {
        chunks: usize,
        trailer: Vec<u8>,
    }

    impl ChunkSignatureCheck for FakeCheck {
        fn check_chunk(&mut self, chunk_sha256: &[u8; 32], signature_hex: &str) -> bool {
            self.chunks += 1;
            crate::checksum::hex_encode(chunk_sha256) == signature_hex
        }
        fn check_trailer(&mut self, trailer_block: &[u8], signature_hex: &str) -> bool {
            self.trailer = trailer_block.to_vec();
            signature_hex == "good"
        }
    }

    fn sig(data: &[u8]) -> String {
        crate::checksum::hex_encode(&Sha256::digest(data))
    }

    fn signed_body(chunks: &[&[u8]], trailer: Option<&str>) -> Vec<u8> {
        let mut body = Vec::new();
        for chunk in chunks.iter().chain(std::iter::once(&&b""[..])) {
            body.extend_from_slice(
                format!("{:x};chunk-signature={}\r\n", chunk.len(), sig(chunk)).as_bytes(),
            );
            if !chunk.is_empty() {
                body.extend_from_slice(chunk);
                body.extend_from_slice(b"\r\n");
            }
        }
        if let Some(signature) = trailer {
            body.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n");
            body.extend_from_slice(format!("x-amz-trailer-signature:{signature}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body
    }

    fn decode(
        body: &[u8],
        step: usize,
        check: Option<FakeCheck>,
        trailer: bool,
    ) -> Result<(Vec<u8>, AwsChunkedDecoder<FakeCheck>), ErrorCode> {
        let mut decoder = AwsChunkedDecoder::new(check, trailer);
        let mut out = Vec::new();
        for piece in body.chunks(step) {
            let used = decoder.feed(piece, &mut out).map_err(|e| e.code)?;
            assert!(used == piece.len() || decoder.is_done());
        }
        Ok((out, decoder))
    }

    #[test]
    fn signed_chunks_at_every_split() {
        let body = signed_body(&[b"hello ", b"world"], None);
        for step in 1..body.len() {
            let (out, decoder) = decode(&body, step, Some(FakeCheck::default()), false).unwrap();
            assert_eq!(out, b"hello world");
            assert!(decoder.is_done());
            assert_eq!(decoder.check.as_ref().unwrap().chunks, 3);
        }
    }

    #[test]
    fn chunk_sizes_are_hex_digits_only() {
        for bad in ["+5", " 5", "-5", "0x5"] {
            let body = format!("{bad}\r\nhello\r\n0\r\n\r\n");
            assert!(
                decode(body.as_bytes(), body.len(), None, false).is_err(),
                "{bad:?}"
            );
        }
        let (out, _) = decode(b"5\r\nhello\r\n0\r\n\r\n", 64, None, false).unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn tampered_chunk_fails() {
        let mut body = signed_body(&[b"hello ", b"world"], None);
        let at = body.windows(5).position(|w| w == b"world").unwrap();
        body[at] = b'W';
        assert_eq!(
            decode(&body, 7, Some(FakeCheck::default()), false)
                .map(|_| ())
                .unwrap_err(),
            ErrorCode::SignatureDoesNotMatch
        );
    }

    #[test]
    fn signed_trailer_is_checked() {
        let body = signed_body(&[b"abc"], Some("good"));
        let (out, decoder) = decode(&body, 3, Some(FakeCheck::default()), true).unwrap();
        assert_eq!(out, b"abc");
        assert_eq!(
            decoder.trailers(),
            [("x-amz-checksum-crc32".to_string(), "AAAAAA==".to_string())]
        );
        assert_eq!(
            decoder.check.as_ref().unwrap().trailer,
            b"x-amz-checksum-crc32:AAAAAA==\n"
        );
        let bad = signed_body(&[b"abc"], Some("bad"));
        assert_eq!(
            decode(&bad, 3, Some(FakeCheck::default()), true)
                .map(|_| ())
                .unwrap_err(),
            ErrorCode::SignatureDoesNotMatch
        );
    }

    #[test]
    fn unsigned_with_trailer() {
        let body = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n";
        for step in 1..body.len() {
            let (out, decoder) = decode(body, step, None, true).unwrap();
            assert_eq!(out, b"abc");
            assert!(decoder.is_done());
            assert_eq!(decoder.trailers()[0].0, "x-amz-checksum-crc32c");
        }
    }

    #[test]
    fn truncated_and_garbage() {
        let (_, decoder) = decode(b"5\r\nab", 100, None, false).unwrap();
        assert!(!decoder.is_done());
        assert_eq!(
            decode(b"xyz\r\n", 100, None, false)
                .map(|_| ())
                .unwrap_err(),
            ErrorCode::IncompleteBody
        );
        assert_eq!(
            decode(
                b"3;chunk-signature=00\r\nabc\r\n",
                100,
                Some(FakeCheck::default()),
                false
            )
            .map(|_| ())
            .unwrap_err(),
            ErrorCode::SignatureDoesNotMatch
        );
    }
}
