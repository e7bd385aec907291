//! Checksums as S3 carries them: the x-amz-checksum-* algorithms (CRC32, CRC32C, CRC64/NVME,
//! SHA-1, SHA-256) computed chunk by chunk, Content-MD5 decoding, and the base64 and hex codecs
//! those headers use. Pure functions over bytes: this module knows nothing of HTTP or disks.

use base64::Engine as _;
use sha1::Digest as _;

/// One of the algorithms S3 accepts in `x-amz-checksum-algorithm` and `x-amz-checksum-*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// CRC-32/ISO-HDLC, the zlib and Ethernet CRC.
    Crc32,
    /// CRC-32C (Castagnoli, the iSCSI polynomial).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

/// Every algorithm, in the order AWS documents them; lets lookups stay one loop.
const ALL: [ChecksumAlgorithm; 5] = [
    ChecksumAlgorithm::Crc32,
    ChecksumAlgorithm::Crc32c,
    ChecksumAlgorithm::Crc64Nvme,
    ChecksumAlgorithm::Sha1,
    ChecksumAlgorithm::Sha256,
];

impl ChecksumAlgorithm {
    /// Parses the value of `x-amz-checksum-algorithm` or `x-amz-sdk-checksum-algorithm`.
    /// SDKs send upper case, but S3 accepts any case, so the match ignores it.
    pub fn from_name(s: &str) -> Option<Self> {
        ALL.into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
    }

    /// The name S3 uses in `x-amz-checksum-algorithm` and in XML `ChecksumAlgorithm` elements.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// The lower-case header that carries this algorithm's base64 value.
    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Recognises a checksum header by name; HTTP header names are case-insensitive.
    pub fn from_header_name(name: &str) -> Option<Self> {
        ALL.into_iter()
            .find(|alg| alg.header_name().eq_ignore_ascii_case(name))
    }

    /// Length in bytes of the raw digest, before base64.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
}

/// A running checksum fed chunk by chunk as the body streams past, so nothing is re-read.
#[derive(Clone, Debug)]
pub struct Checksummer {
    state: State,
}

/// The hasher behind a [`Checksummer`]; the CRCs share crc-fast's SIMD digest.
#[derive(Clone, Debug)]
enum State {
    Crc32(crc_fast::Digest),
    Crc32c(crc_fast::Digest),
    Crc64Nvme(crc_fast::Digest),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Checksummer {
    /// Starts an empty checksum of `alg`.
    pub fn new(alg: ChecksumAlgorithm) -> Self {
        use crc_fast::CrcAlgorithm as Crc;
        let state = match alg {
            ChecksumAlgorithm::Crc32 => State::Crc32(crc_fast::Digest::new(Crc::Crc32IsoHdlc)),
            ChecksumAlgorithm::Crc32c => State::Crc32c(crc_fast::Digest::new(Crc::Crc32Iscsi)),
            ChecksumAlgorithm::Crc64Nvme => State::Crc64Nvme(crc_fast::Digest::new(Crc::Crc64Nvme)),
            ChecksumAlgorithm::Sha1 => State::Sha1(sha1::Sha1::new()),
            ChecksumAlgorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
        };
        Self { state }
    }

    /// The algorithm this checksum computes.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self.state {
            State::Crc32(_) => ChecksumAlgorithm::Crc32,
            State::Crc32c(_) => ChecksumAlgorithm::Crc32c,
            State::Crc64Nvme(_) => ChecksumAlgorithm::Crc64Nvme,
            State::Sha1(_) => ChecksumAlgorithm::Sha1,
            State::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    /// Feeds the next bytes of the body.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.state {
            State::Crc32(d) | State::Crc32c(d) | State::Crc64Nvme(d) => d.update(bytes),
            State::Sha1(h) => h.update(bytes),
            State::Sha256(h) => h.update(bytes),
        }
    }

    /// The raw digest. CRCs come out big-endian because that is the byte order S3 base64-encodes
    /// (CRC32 of "123456789", 0xCBF43926, travels as the bytes CB F4 39 26).
    pub fn finalize(self) -> Vec<u8> {
        match self.state {
            // crc-fast returns every width in a u64; a 32-bit CRC sits in the low half.
            State::Crc32(d) | State::Crc32c(d) => (d.finalize() as u32).to_be_bytes().to_vec(),
            State::Crc64Nvme(d) => d.finalize().to_be_bytes().to_vec(),
            State::Sha1(h) => h.finalize().to_vec(),
            State::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// How a multipart object's checksum is made from its parts' (`x-amz-checksum-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumType {
    /// The checksum of the concatenated part checksums, shown with a `-<parts>` suffix.
    Composite,
    /// The checksum of the whole object's bytes, combined from the part CRCs.
    FullObject,
}

impl ChecksumType {
    pub fn from_name(s: &str) -> Option<Self> {
        [Self::Composite, Self::FullObject]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Composite => "COMPOSITE",
            Self::FullObject => "FULL_OBJECT",
        }
    }

    /// What S3 uses when CreateMultipartUpload names only the algorithm.
    pub fn default_for(alg: ChecksumAlgorithm) -> Self {
        match alg {
            ChecksumAlgorithm::Crc64Nvme => Self::FullObject,
            _ => Self::Composite,
        }
    }

    /// Whether S3 supports this pairing: CRCs combine into a full-object value and the
    /// SHAs do not; CRC64/NVME is full-object only.
    pub fn supports(self, alg: ChecksumAlgorithm) -> bool {
        match self {
            Self::Composite => alg != ChecksumAlgorithm::Crc64Nvme,
            Self::FullObject => matches!(
                alg,
                ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc64Nvme
            ),
        }
    }
}

/// The object checksum of a multipart upload, from its parts' base64 checksums and sizes in
/// object order. Composite: the algorithm over the concatenated raw part digests, then
/// `-<parts>`. Full object: the part CRCs combined as if computed over all the bytes.
/// `None` when a part value is not valid base64 of the algorithm's length, or when the
/// pairing is one S3 does not support.
pub fn multipart_checksum(
    alg: ChecksumAlgorithm,
    kind: ChecksumType,
    parts: &[(&str, u64)],
) -> Option<String> {
    if !kind.supports(alg) {
        return None;
    }
    let mut digests = Vec::with_capacity(parts.len());
    for (value, size) in parts {
        let raw = base64_decode(value).filter(|raw| raw.len() == alg.digest_len())?;
        digests.push((raw, *size));
    }
    match kind {
        ChecksumType::Composite => {
            let mut outer = Checksummer::new(alg);
            for (raw, _) in &digests {
                outer.update(raw);
            }
            Some(format!(
                "{}-{}",
                base64_encode(&outer.finalize()),
                digests.len()
            ))
        }
        ChecksumType::FullObject => {
            let crc_alg = match alg {
                ChecksumAlgorithm::Crc32 => crc_fast::CrcAlgorithm::Crc32IsoHdlc,
                ChecksumAlgorithm::Crc32c => crc_fast::CrcAlgorithm::Crc32Iscsi,
                _ => crc_fast::CrcAlgorithm::Crc64Nvme,
            };
            let as_u64 = |raw: &[u8]| raw.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
            let mut combined = Checksummer::new(alg).finalize();
            let mut value = as_u64(&combined);
            for (raw, size) in &digests {
                value = crc_fast::checksum_combine(crc_alg, value, as_u64(raw), *size);
            }
            let width = alg.digest_len();
            combined = value.to_be_bytes()[8 - width..].to_vec();
            Some(base64_encode(&combined))
        }
    }
}

/// Standard-alphabet base64 with padding, as every S3 checksum and Content-MD5 header uses.
pub fn base64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64 strictly: padding required, no whitespace, no stray trailing bits,
/// so a value that differs from what we would emit never compares equal by accident.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Decodes a Content-MD5 header: base64 of exactly the 16 bytes of an MD5 digest.
pub fn decode_content_md5(value: &str) -> Option<[u8; 16]> {
    base64_decode(value)?.try_into().ok()
}

/// Lower-case hex, the form of ETags and SigV4 payload hashes.
pub fn hex_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    hex_encode_into(bytes, &mut out);
    out
}

/// `hex_encode`, appended to `out`.
pub fn hex_encode_into(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Decodes exactly `2 * out.len()` hex digits of either case into `out`; false (and
/// `out` unspecified) on any other length or a non-hex character.
pub fn hex_decode_into(s: &str, out: &mut [u8]) -> bool {
    let digits = s.as_bytes();
    if digits.len() != 2 * out.len() {
        return false;
    }
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(high), Some(low)) => *byte = high << 4 | low,
            _ => return false,
        }
    }
    true
}

/// Decodes hex of either case; `None` on an odd length or any non-hex character.
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let digits = s.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| Some(hex_value(pair[0])? << 4 | hex_value(pair[1])?))
        .collect()
}

/// The value of one hex digit, or `None` when it is not one.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(alg: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut c = Checksummer::new(alg);
        c.update(data);
        c.finalize()
    }

    #[test]
    fn crc_check_values() {
        // The "check" values of the CRC catalogue, computed over the ASCII digits 1 to 9.
        let input = b"123456789";
        assert_eq!(
            digest(ChecksumAlgorithm::Crc32, input),
            0xCBF4_3926u32.to_be_bytes()
        );
        assert_eq!(
            digest(ChecksumAlgorithm::Crc32c, input),
            0xE306_9283u32.to_be_bytes()
        );
        assert_eq!(
            digest(ChecksumAlgorithm::Crc64Nvme, input),
            0xAE8B_1486_0A79_9888u64.to_be_bytes()
        );
    }

    #[test]
    fn s3_header_values_of_hello_world() {
        // What S3 and the AWS SDKs send in x-amz-checksum-* for the body "hello world".
        let input = b"hello world";
        let header = |alg| base64_encode(&digest(alg, input));
        assert_eq!(header(ChecksumAlgorithm::Crc32), "DUoRhQ==");
        assert_eq!(header(ChecksumAlgorithm::Crc32c), "yZRlqg==");
        assert_eq!(header(ChecksumAlgorithm::Crc64Nvme), "jSnVw/bqjr4=");
        assert_eq!(
            header(ChecksumAlgorithm::Sha1),
            "Kq5sNclPz7QV2+lfQIuc6R7oRu0="
        );
        assert_eq!(
            header(ChecksumAlgorithm::Sha256),
            "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
        );
    }

    #[test]
    fn sha_of_abc() {
        // FIPS 180 examples.
        assert_eq!(
            hex_encode(&digest(ChecksumAlgorithm::Sha1, b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex_encode(&digest(ChecksumAlgorithm::Sha256, b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn chunked_updates_equal_one_update() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for alg in ALL {
            let mut c = Checksummer::new(alg);
            for piece in data.chunks(777) {
                c.update(piece);
            }
            assert_eq!(c.algorithm(), alg);
            let out = c.finalize();
            assert_eq!(out.len(), alg.digest_len());
            assert_eq!(out, digest(alg, &data), "{alg:?}");
        }
    }

    #[test]
    fn names_round_trip() {
        for alg in ALL {
            assert_eq!(ChecksumAlgorithm::from_name(alg.as_str()), Some(alg));
            let lower = alg.as_str().to_ascii_lowercase();
            assert_eq!(ChecksumAlgorithm::from_name(&lower), Some(alg));
            assert_eq!(
                ChecksumAlgorithm::from_header_name(alg.header_name()),
                Some(alg)
            );
            let upper = alg.header_name().to_ascii_uppercase();
            assert_eq!(ChecksumAlgorithm::from_header_name(&upper), Some(alg));
        }
        assert_eq!(ChecksumAlgorithm::from_name("MD5"), None);
        assert_eq!(ChecksumAlgorithm::from_name("CRC"), None);
        assert_eq!(
            ChecksumAlgorithm::from_header_name("x-amz-checksum-md5"),
            None
        );
        assert_eq!(
            ChecksumAlgorithm::from_header_name("x-amz-checksum-algorithm"),
            None
        );
    }

    #[test]
    fn base64_is_strict() {
        assert_eq!(
            base64_decode("DUoRhQ=="),
            Some(vec![0x0d, 0x4a, 0x11, 0x85])
        );
        assert_eq!(base64_decode(""), Some(vec![]));
        assert_eq!(base64_decode("DUoRhQ"), None, "padding is required");
        assert_eq!(base64_decode("DUoRhR=="), None, "non-zero trailing bits");
        assert_eq!(base64_decode("DUoR hQ=="), None, "whitespace");
        assert_eq!(base64_decode("DUoR-Q=="), None, "url-safe alphabet");
    }

    #[test]
    fn content_md5() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e.
        let md5 = decode_content_md5("1B2M2Y8AsgTpgAmY7PhCfg==").unwrap();
        assert_eq!(hex_encode(&md5), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(decode_content_md5("DUoRhQ=="), None, "wrong length");
        assert_eq!(decode_content_md5("not base64"), None);
    }

    #[test]
    fn hex_round_trip() {
        let bytes = [0x00, 0x01, 0x7f, 0x80, 0xab, 0xff];
        assert_eq!(hex_encode(&bytes), "00017f80abff");
        assert_eq!(hex_decode("00017f80abff").unwrap(), bytes);
        assert_eq!(hex_decode("00017F80ABFF").unwrap(), bytes);
        assert_eq!(hex_decode("").unwrap(), Vec::<u8>::new());
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("0g"), None);
        assert_eq!(hex_decode("+1"), None);
    }

    #[test]
    fn multipart_checksums_combine_parts() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
        let cuts = [0usize, 100_000, 250_000, 250_000, 300_000];
        for alg in ALL {
            let parts: Vec<(String, u64)> = cuts
                .windows(2)
                .map(|w| {
                    let piece = &data[w[0]..w[1]];
                    (base64_encode(&digest(alg, piece)), piece.len() as u64)
                })
                .collect();
            let refs: Vec<(&str, u64)> = parts.iter().map(|(v, n)| (v.as_str(), *n)).collect();
            if ChecksumType::FullObject.supports(alg) {
                assert_eq!(
                    multipart_checksum(alg, ChecksumType::FullObject, &refs).unwrap(),
                    base64_encode(&digest(alg, &data)),
                    "{alg:?}"
                );
            } else {
                assert_eq!(
                    multipart_checksum(alg, ChecksumType::FullObject, &refs),
                    None
                );
            }
            if ChecksumType::Composite.supports(alg) {
                let mut concat = Vec::new();
                for (value, _) in &parts {
                    concat.extend(base64_decode(value).unwrap());
                }
                let expected = format!("{}-4", base64_encode(&digest(alg, &concat)));
                assert_eq!(
                    multipart_checksum(alg, ChecksumType::Composite, &refs).unwrap(),
                    expected
                );
            } else {
                assert_eq!(
                    multipart_checksum(alg, ChecksumType::Composite, &refs),
                    None
                );
            }
        }
        assert_eq!(
            multipart_checksum(
                ChecksumAlgorithm::Crc32,
                ChecksumType::Composite,
                &[("x", 1)]
            ),
            None
        );
    }
}
