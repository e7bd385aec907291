//! The body of an object upload: undoes aws-chunked framing when present,
//! verifies chunk signatures as chunks complete, and feeds every decoded byte
//! once, while it is hot, to the hashes the request needs (MD5 for the ETag,
//! SHA-256 when the payload is signed, the declared x-amz-checksum algorithm).

use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::auth::{ChunkVerifier, PayloadCheck};
use crate::checksum::{base64_decode, base64_encode, ChecksumAlgorithm, ChecksumType, Checksummer};
use crate::error::{ErrorCode, S3Error};
use crate::hash_pool::{ChunkHasher, Lane};
use crate::http::aws_chunked::{AwsChunkedDecoder, ChunkSignatureCheck};
use crate::http::{BodyReader, RequestHead};
use crate::limits;

impl ChunkSignatureCheck for ChunkVerifier {
    fn check_chunk(&mut self, chunk_sha256: &[u8; 32], signature_hex: &str) -> bool {
        self.verify_chunk(chunk_sha256, signature_hex)
    }

    fn check_trailer(&mut self, trailer_block: &[u8], signature_hex: &str) -> bool {
        self.verify_trailer(trailer_block, signature_hex)
    }
}

/// Where the expected value of the object's checksum comes from.
enum ChecksumSource {
    None,
    /// `x-amz-checksum-<alg>` header: the expected digest bytes.
    Header(Vec<u8>),
    /// Named by `x-amz-trailer`: the value arrives after the data.
    Trailer,
    /// Only `x-amz-sdk-checksum-algorithm`: computed and stored, nothing to compare.
    ComputeOnly,
}

/// What an upload's headers promise about its body.
pub(crate) struct UploadExpectations {
    /// Decoded size the client announced (Content-Length or x-amz-decoded-content-length).
    pub declared_size: Option<u64>,
    content_md5: Option<[u8; 16]>,
    checksum: Option<ChecksumAlgorithm>,
    checksum_source: ChecksumSource,
    aws_chunked: bool,
}

impl UploadExpectations {
    /// Reads and validates the upload headers, before any body byte is read.
    pub(crate) fn from_head(
        head: &RequestHead,
        payload: &PayloadCheck,
        raw_length: Option<u64>,
    ) -> Result<UploadExpectations, S3Error> {
        let aws_chunked = matches!(
            payload,
            PayloadCheck::StreamingSigned { .. } | PayloadCheck::StreamingUnsignedTrailer
        );
        let declared_size = if aws_chunked {
            let value = head.header("x-amz-decoded-content-length").ok_or_else(|| {
                S3Error::with_message(
                    ErrorCode::MissingContentLength,
                    "You must provide the x-amz-decoded-content-length header.",
                )
            })?;
            Some(value.parse::<u64>().map_err(|_| {
                S3Error::with_message(
                    ErrorCode::InvalidArgument,
                    "x-amz-decoded-content-length is not a number",
                )
                .field("ArgumentName", "x-amz-decoded-content-length")
            })?)
        } else {
            raw_length
        };
        let content_md5 = match head.header("content-md5") {
            None => None,
            Some(value) => {
                let bytes =
                    base64_decode(value).ok_or_else(|| S3Error::new(ErrorCode::InvalidDigest))?;
                Some(
                    <[u8; 16]>::try_from(bytes.as_slice())
                        .map_err(|_| S3Error::new(ErrorCode::InvalidDigest))?,
                )
            }
        };
        let (checksum, checksum_source) = checksum_expectation(head)?;
        Ok(UploadExpectations {
            declared_size,
            content_md5,
            checksum,
            checksum_source,
            aws_chunked,
        })
    }

    /// Holds a part to its upload's checksum: a part of another algorithm is refused, as
    /// is a part without one when the object checksum is composite (S3 needs every part's
    /// value from the client then); a full-object CRC is computed here when none was sent.
    pub(crate) fn require_checksum(
        &mut self,
        alg: ChecksumAlgorithm,
        kind: ChecksumType,
    ) -> Result<(), S3Error> {
        match self.checksum {
            Some(sent) if sent == alg => Ok(()),
            None if kind == ChecksumType::FullObject => {
                self.checksum = Some(alg);
                self.checksum_source = ChecksumSource::ComputeOnly;
                Ok(())
            }
            sent => Err(S3Error::with_message(
                ErrorCode::InvalidRequest,
                format!(
                    "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                    alg.as_str().to_ascii_lowercase(),
                    sent.map_or("null".to_string(), |s| s.as_str().to_ascii_lowercase()),
                ),
            )),
        }
    }
}

fn checksum_expectation(
    head: &RequestHead,
) -> Result<(Option<ChecksumAlgorithm>, ChecksumSource), S3Error> {
    let mut found: Option<(ChecksumAlgorithm, &str)> = None;
    for (name, value) in &head.headers {
        if let Some(alg) = ChecksumAlgorithm::from_header_name(name) {
            if found.is_some() {
                return Err(S3Error::with_message(
                    ErrorCode::InvalidRequest,
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            found = Some((alg, value));
        }
    }
    if let Some((alg, value)) = found {
        let bytes = base64_decode(value)
            .filter(|b| b.len() == alg.digest_len())
            .ok_or_else(|| {
                S3Error::with_message(
                    ErrorCode::InvalidRequest,
                    format!("Value for {} header is invalid.", alg.header_name()),
                )
            })?;
        return Ok((Some(alg), ChecksumSource::Header(bytes)));
    }
    if let Some(trailer) = head.header("x-amz-trailer") {
        let alg = ChecksumAlgorithm::from_header_name(&trailer.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                S3Error::with_message(
                    ErrorCode::InvalidRequest,
                    "The value specified in the x-amz-trailer header is not supported",
                )
            })?;
        return Ok((Some(alg), ChecksumSource::Trailer));
    }
    let declared = head
        .header("x-amz-sdk-checksum-algorithm")
        .or_else(|| head.header("x-amz-checksum-algorithm"));
    if let Some(name) = declared {
        let alg = ChecksumAlgorithm::from_name(name).ok_or_else(|| {
            S3Error::with_message(
                ErrorCode::InvalidRequest,
                "Checksum algorithm provided is unsupported.",
            )
        })?;
        return Ok((Some(alg), ChecksumSource::ComputeOnly));
    }
    Ok((None, ChecksumSource::None))
}

/// The hashes a copy or a scan computes as its bytes pass (`storage::ByteStage`): the
/// MD5 of an ETag and a checksum, each only when asked for.
pub(crate) struct Hashes {
    md5: Option<Md5>,
    checksum: Option<Checksummer>,
}

impl Hashes {
    pub(crate) fn new(md5: bool, checksum: Option<ChecksumAlgorithm>) -> Hashes {
        Hashes {
            md5: md5.then(Md5::new),
            checksum: checksum.map(Checksummer::new),
        }
    }

    /// (MD5, raw checksum), each when it was asked for.
    pub(crate) fn finish(self) -> (Option<[u8; 16]>, Option<Vec<u8>>) {
        (
            self.md5.map(|m| m.finalize().into()),
            self.checksum.map(Checksummer::finalize),
        )
    }
}

impl crate::storage::ByteStage for Hashes {
    fn update(&mut self, bytes: &[u8]) {
        if let Some(md5) = &mut self.md5 {
            md5.update(bytes);
        }
        if let Some(checksum) = &mut self.checksum {
            checksum.update(bytes);
        }
    }
}

/// Facts about a body that was read and verified in full.
pub(crate) struct VerifiedUpload {
    pub size: u64,
    pub md5: [u8; 16],
    /// The verified (or computed) checksum, base64, with its algorithm.
    pub checksum: Option<(ChecksumAlgorithm, String)>,
}

/// Reads a request body in chunks of `UPLOAD_CHUNK_BYTES`, undoing aws-chunked framing,
/// and hands each chunk on once every digest the request needs has taken it. Bodies of
/// a chunk or more are hashed on the hash threads (`hash_pool`), a chunk behind the
/// reads; smaller ones in place.
pub(crate) struct UploadReader {
    decoder: Option<AwsChunkedDecoder<ChunkVerifier>>,
    raw: Vec<u8>,
    raw_pos: usize,
    hasher: ChunkHasher,
    size: u64,
    /// The whole body has been read (what is hashing may still be to come).
    ended: bool,
}

impl UploadReader {
    pub(crate) fn new(expect: &UploadExpectations, payload: &mut PayloadCheck) -> UploadReader {
        let decoder = if expect.aws_chunked {
            let trailer = matches!(
                payload,
                PayloadCheck::StreamingUnsignedTrailer
                    | PayloadCheck::StreamingSigned { trailer: true, .. }
            );
            let verifier = match std::mem::replace(payload, PayloadCheck::Unsigned) {
                PayloadCheck::StreamingSigned { verifier, .. } => Some(verifier),
                _ => None,
            };
            Some(AwsChunkedDecoder::new(verifier, trailer))
        } else {
            None
        };
        let digests = Lane {
            md5: Some(Md5::new()),
            sha256: matches!(payload, PayloadCheck::Sha256(_)).then(Sha256::new),
            checksum: expect.checksum.map(Checksummer::new),
        };
        let off_core = expect
            .declared_size
            .is_none_or(|size| size >= limits::HASH_OFF_CORE_BYTES_MIN);
        UploadReader {
            decoder,
            raw: Vec::new(),
            raw_pos: 0,
            hasher: ChunkHasher::new(digests, off_core),
            size: 0,
            ended: false,
        }
    }

    /// The next chunk of decoded bytes, hashed, for storage; `None` once the whole body
    /// was read and hashed. `spare` is a buffer to fill (the chunk storage gave back).
    pub(crate) async fn next(
        &mut self,
        body: &mut BodyReader<'_>,
        spare: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, S3Error> {
        let mut chunk = spare;
        loop {
            if self.ended {
                return Ok(self.hasher.settle().await);
            }
            self.fill(body, &mut chunk, limits::UPLOAD_CHUNK_BYTES)
                .await?;
            if chunk.is_empty() {
                continue;
            }
            self.size += chunk.len() as u64;
            if let Some(hashed) = self.hasher.push(chunk).await {
                return Ok(Some(hashed));
            }
            chunk = Vec::with_capacity(limits::UPLOAD_CHUNK_BYTES);
        }
    }

    /// Fills `out` (cleared first) with up to `max` decoded bytes: less only at the end
    /// of the body, which sets `ended`.
    async fn fill(
        &mut self,
        body: &mut BodyReader<'_>,
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), S3Error> {
        out.clear();
        if out.capacity() < max {
            out.reserve_exact(max);
        }
        let Some(decoder) = &mut self.decoder else {
            while out.len() < max {
                if body.read(out, max - out.len()).await? == 0 || !body.has_body() {
                    self.ended = true;
                    break;
                }
            }
            return Ok(());
        };
        while out.len() < max {
            if self.raw_pos == self.raw.len() {
                self.raw.clear();
                self.raw_pos = 0;
                if self.raw.capacity() < max {
                    self.raw.reserve_exact(max);
                }
                if body.read(&mut self.raw, max).await? == 0 {
                    if !decoder.is_done() {
                        return Err(S3Error::new(ErrorCode::IncompleteBody));
                    }
                    self.ended = true;
                    break;
                }
            }
            // No more framed input than `out` has room for, so decoding never outgrows it.
            let end = self.raw.len().min(self.raw_pos + (max - out.len()));
            let used = decoder.feed(&self.raw[self.raw_pos..end], out)?;
            self.raw_pos += used;
            if decoder.is_done() {
                // Consume whatever framing is left so the connection stays in step.
                self.raw.clear();
                self.raw_pos = 0;
                while body.read(&mut self.raw, max).await? != 0 {
                    self.raw.clear();
                }
                self.ended = true;
                break;
            }
        }
        Ok(())
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Checks every promise the headers made against what arrived.
    pub(crate) fn finish(
        self,
        expect: &UploadExpectations,
        payload: &PayloadCheck,
    ) -> Result<VerifiedUpload, S3Error> {
        if let Some(declared) = expect.declared_size {
            if declared != self.size {
                return Err(S3Error::new(ErrorCode::IncompleteBody));
            }
        }
        let digests = self
            .hasher
            .finish()
            .ok_or_else(|| S3Error::internal("an upload finished with its hashing unsettled"))?;
        let sha256: Option<[u8; 32]> = digests.sha256.map(|s| s.finalize().into());
        if let (PayloadCheck::Sha256(expected), Some(actual)) = (payload, sha256) {
            if *expected != actual {
                return Err(S3Error::new(ErrorCode::XAmzContentSHA256Mismatch)
                    .field(
                        "ClientComputedContentSHA256",
                        crate::checksum::hex_encode(expected),
                    )
                    .field(
                        "S3ComputedContentSHA256",
                        crate::checksum::hex_encode(&actual),
                    ));
            }
        }
        let md5: [u8; 16] = digests.md5.unwrap_or_default().finalize().into();
        if let Some(expected) = expect.content_md5 {
            if expected != md5 {
                return Err(S3Error::new(ErrorCode::BadDigest)
                    .field("ExpectedDigest", base64_encode(&expected))
                    .field("CalculatedDigest", base64_encode(&md5)));
            }
        }
        let checksum = match (expect.checksum, digests.checksum) {
            (Some(alg), Some(summer)) => {
                let actual = summer.finalize();
                let expected = match &expect.checksum_source {
                    ChecksumSource::Header(bytes) => Some(bytes.clone()),
                    ChecksumSource::Trailer => Some(trailer_value(self.decoder.as_ref(), alg)?),
                    ChecksumSource::ComputeOnly | ChecksumSource::None => None,
                };
                if let Some(expected) = expected {
                    if expected != actual {
                        return Err(S3Error::with_message(
                            ErrorCode::BadDigest,
                            format!(
                                "The {} you specified did not match the calculated checksum.",
                                alg.as_str()
                            ),
                        ));
                    }
                }
                Some((alg, base64_encode(&actual)))
            }
            _ => None,
        };
        Ok(VerifiedUpload {
            size: self.size,
            md5,
            checksum,
        })
    }
}

fn trailer_value(
    decoder: Option<&AwsChunkedDecoder<ChunkVerifier>>,
    alg: ChecksumAlgorithm,
) -> Result<Vec<u8>, S3Error> {
    let trailers = decoder.map(|d| d.trailers()).unwrap_or_default();
    let value = trailers
        .iter()
        .find(|(name, _)| name == alg.header_name())
        .map(|(_, value)| value.as_str())
        .ok_or_else(|| {
            S3Error::with_message(
                ErrorCode::InvalidRequest,
                format!(
                    "The trailer {} was declared but not sent.",
                    alg.header_name()
                ),
            )
        })?;
    base64_decode(value.trim())
        .filter(|b| b.len() == alg.digest_len())
        .ok_or_else(|| {
            S3Error::with_message(
                ErrorCode::InvalidRequest,
                format!("Value for {} trailer is invalid.", alg.header_name()),
            )
        })
}

/// Verifies a body read whole (the XML documents of bucket and batch operations)
/// against the signed payload hash, `Content-MD5` and, when `checksum_headers` says they
/// describe this body, any `x-amz-checksum-*` header. (On CompleteMultipartUpload
/// they describe the object being completed instead.)
pub(crate) fn verify_small_body(
    head: &RequestHead,
    payload: &PayloadCheck,
    body: &[u8],
    checksum_headers: bool,
) -> Result<(), S3Error> {
    let sha256: [u8; 32] = Sha256::digest(body).into();
    match payload {
        PayloadCheck::Sha256(expected) if *expected != sha256 => {
            return Err(S3Error::new(ErrorCode::XAmzContentSHA256Mismatch));
        }
        PayloadCheck::StreamingSigned { .. } | PayloadCheck::StreamingUnsignedTrailer => {
            return Err(S3Error::with_message(
                ErrorCode::InvalidRequest,
                "Streaming payloads are accepted only for object data.",
            ));
        }
        _ => {}
    }
    if let Some(value) = head.header("content-md5") {
        let expected = crate::checksum::decode_content_md5(value)
            .ok_or_else(|| S3Error::new(ErrorCode::InvalidDigest))?;
        let actual: [u8; 16] = Md5::digest(body).into();
        if expected != actual {
            return Err(S3Error::new(ErrorCode::BadDigest));
        }
    }
    if !checksum_headers {
        return Ok(());
    }
    if let (Some(alg), ChecksumSource::Header(expected)) = checksum_expectation(head)? {
        let mut summer = Checksummer::new(alg);
        summer.update(body);
        if summer.finalize() != expected {
            return Err(S3Error::with_message(
                ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    alg.as_str()
                ),
            ));
        }
    }
    Ok(())
}
