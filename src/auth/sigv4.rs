//! The arithmetic of SigV4: URI encoding, canonical URI and query, the signing
//! key chain, and hashing helpers.

use std::borrow::Cow;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::error::{ErrorCode, S3Error};

/// Hex SHA-256 of the empty string, the hash of every empty payload.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// AWS URI encoding: unreserved characters (A-Z a-z 0-9 - . _ ~) kept, every
/// other byte as %XX with uppercase hex; '/' kept unless `encode_slash`.
pub fn uri_encode(input: &[u8], encode_slash: bool, out: &mut String) {
    let keep = |byte: u8| unreserved(byte) || (byte == b'/' && !encode_slash);
    let mut rest = input;
    while !rest.is_empty() {
        // Runs of bytes kept as they are go in at once.
        let run = rest.iter().position(|&b| !keep(b)).unwrap_or(rest.len());
        // The run is ASCII (unreserved bytes and '/'), so it is UTF-8.
        out.push_str(std::str::from_utf8(&rest[..run]).unwrap_or_default());
        if let Some(&byte) = rest.get(run) {
            out.push('%');
            out.push(HEX_UPPER[(byte >> 4) as usize] as char);
            out.push(HEX_UPPER[(byte & 15) as usize] as char);
            rest = &rest[run + 1..];
        } else {
            rest = &[];
        }
    }
}

/// The bytes SigV4 leaves unencoded.
fn unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// A query name or value as SigV4 canonicalises it (decoded, then `uri_encode`d with
/// '/' encoded): the raw text itself when it is in that form already, as SDKs send it.
fn canonical_component(raw: &str) -> Result<Cow<'_, str>, S3Error> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    let mut canonical = true;
    while i < bytes.len() && canonical {
        match bytes[i] {
            b'%' => match bytes.get(i + 1..i + 3) {
                Some(&[high, low])
                    if matches!(high, b'0'..=b'9' | b'A'..=b'F')
                        && matches!(low, b'0'..=b'9' | b'A'..=b'F')
                        && !unreserved((hex_value(high) << 4) | hex_value(low)) =>
                {
                    i += 3
                }
                _ => canonical = false,
            },
            byte if unreserved(byte) => i += 1,
            _ => canonical = false,
        }
    }
    if canonical {
        return Ok(Cow::Borrowed(raw));
    }
    let mut encoded = String::with_capacity(raw.len() + 8);
    uri_encode(
        &percent_decode(raw).ok_or_else(bad_uri)?,
        true,
        &mut encoded,
    );
    Ok(Cow::Owned(encoded))
}

/// `uri_encode` of `input` into a new string.
pub fn uri_encoded(input: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    uri_encode(input.as_bytes(), encode_slash, &mut out);
    out
}

/// Decodes %XX escapes only ('+' stays '+', as S3 paths and SigV4 want it).
pub fn percent_decode(input: &str) -> Option<Cow<'_, [u8]>> {
    let mut rest = input.as_bytes();
    let Some(first) = rest.iter().position(|&b| b == b'%') else {
        return Some(Cow::Borrowed(rest));
    };
    let mut out = Vec::with_capacity(rest.len());
    let mut at = first;
    loop {
        out.extend_from_slice(&rest[..at]);
        // Exactly two hex digits: `u8::from_str_radix` alone would take "+0".
        let hex = rest.get(at + 1..at + 3)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        out.push((hex_value(hex[0]) << 4) | hex_value(hex[1]));
        rest = &rest[at + 3..];
        match rest.iter().position(|&b| b == b'%') {
            Some(next) => at = next,
            None => break,
        }
    }
    out.extend_from_slice(rest);
    Some(Cow::Owned(out))
}

/// `percent_decode` to UTF-8: None for a bad escape or bytes that are not UTF-8.
/// Borrows `input` when it has nothing to decode.
pub fn percent_decode_str(input: &str) -> Option<Cow<'_, str>> {
    match percent_decode(input)? {
        Cow::Borrowed(_) => Some(Cow::Borrowed(input)),
        Cow::Owned(bytes) => String::from_utf8(bytes).ok().map(Cow::Owned),
    }
}

/// The value of one ASCII hex digit (checked by the caller).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

fn bad_uri() -> S3Error {
    S3Error::new(ErrorCode::InvalidURI)
}

/// S3's canonical URI: the decoded path encoded once, '/' kept, nothing
/// normalised (`//` and `..` are part of keys).
pub fn canonical_uri(raw_path: &str) -> Result<String, S3Error> {
    let mut out = String::with_capacity(raw_path.len() + 16);
    canonical_uri_into(raw_path, &mut out)?;
    Ok(out)
}

/// `canonical_uri`, appended to `out`.
pub(super) fn canonical_uri_into(raw_path: &str, out: &mut String) -> Result<(), S3Error> {
    if raw_path.is_empty() {
        out.push('/');
    } else if !raw_path.contains('%') {
        // Nothing to decode: the path's own bytes are encoded.
        uri_encode(raw_path.as_bytes(), false, out);
    } else {
        let decoded = percent_decode(raw_path).ok_or_else(bad_uri)?;
        if decoded.is_empty() {
            out.push('/');
        }
        uri_encode(&decoded, false, out);
    }
    Ok(())
}

/// The canonical query: names and values decoded then encoded, sorted by name
/// then value. `skip_signature` drops X-Amz-Signature (presigned URLs).
pub fn canonical_query(raw_query: &str, skip_signature: bool) -> Result<String, S3Error> {
    let mut out = String::with_capacity(raw_query.len() + 16);
    canonical_query_into(raw_query, skip_signature, &mut out)?;
    Ok(out)
}

/// `canonical_query`, appended to `out`.
pub(super) fn canonical_query_into(
    raw_query: &str,
    skip_signature: bool,
    out: &mut String,
) -> Result<(), S3Error> {
    if raw_query.is_empty() {
        return Ok(());
    }
    let mut pairs = Vec::new();
    for part in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let name = canonical_component(name)?;
        if skip_signature && name == "X-Amz-Signature" {
            continue;
        }
        pairs.push((name, canonical_component(value)?));
    }
    pairs.sort();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    Ok(())
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

pub fn sha256_hex(data: &[u8]) -> String {
    crate::checksum::hex_encode(&Sha256::digest(data))
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
pub fn derive_signing_key(
    secret: &str,
    date_yyyymmdd: &str,
    region: &str,
    service: &str,
) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date_yyyymmdd.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// Whether `signature_hex` is the HMAC of `data` under `key`, compared in constant time.
pub(super) fn signature_matches(key: &[u8; 32], data: &[u8], signature_hex: &str) -> bool {
    let Some(expected) = crate::checksum::hex_decode(signature_hex).filter(|s| s.len() == 32)
    else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return false;
    };
    mac.update(data);
    mac.verify_slice(&expected).is_ok()
}

/// Canonical header value: trimmed, inner runs of spaces folded to one.
pub(super) fn canonical_header_value(value: &str, out: &mut String) {
    let mut last_space = false;
    for c in value.trim().chars() {
        if c == ' ' || c == '\t' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_rules() {
        let mut out = String::new();
        uri_encode("a b/c~d+e*é".as_bytes(), false, &mut out);
        assert_eq!(out, "a%20b/c~d%2Be%2A%C3%A9");
        out.clear();
        uri_encode(b"a/b", true, &mut out);
        assert_eq!(out, "a%2Fb");
        assert_eq!(&*percent_decode("a%2fb+c").unwrap(), b"a/b+c");
        // Nothing to decode: the input itself, borrowed.
        assert!(matches!(
            percent_decode("a/b+c"),
            Some(Cow::Borrowed(b"a/b+c"))
        ));
        assert!(matches!(percent_decode_str("k"), Some(Cow::Borrowed("k"))));
        assert_eq!(percent_decode_str("%e2%82%ac").as_deref(), Some("\u{20ac}"));
        assert_eq!(percent_decode_str("%ff"), None);
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("a%zz"), None);
        // Two hex digits, exactly: no sign, no blank (u8::from_str_radix would take both).
        for bad in ["%+0", "%+f", "% 1", "%1 ", "%-1"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
        assert_eq!(&*percent_decode("%41%7e%7E").unwrap(), b"A~~");
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            canonical_uri("/test$file.text").unwrap(),
            "/test%24file.text"
        );
        assert_eq!(canonical_uri("/b//a/../x%20y").unwrap(), "/b//a/../x%20y");
        assert_eq!(canonical_uri("").unwrap(), "/");
        assert_eq!(canonical_uri("/a%2Fb%zz").ok(), None);
        assert_eq!(canonical_uri("/a b*").unwrap(), "/a%20b%2A");
        assert_eq!(canonical_uri("/a%20b%2a").unwrap(), "/a%20b%2A");
        assert_eq!(
            canonical_query("prefix=J&max-keys=2", false).unwrap(),
            "max-keys=2&prefix=J"
        );
        assert_eq!(canonical_query("lifecycle", false).unwrap(), "lifecycle=");
        assert_eq!(
            canonical_query("b=2&a=%2F&a=1", false).unwrap(),
            "a=%2F&a=1&b=2"
        );
        assert_eq!(
            canonical_query("X-Amz-Signature=x&a=1", true).unwrap(),
            "a=1"
        );
        let mut out = String::new();
        canonical_header_value("  a   b \t c ", &mut out);
        assert_eq!(out, "a b c");
    }

    #[test]
    fn query_components_already_canonical_are_borrowed() {
        use std::borrow::Cow;
        for raw in ["", "abc", "A-Z_a.z~09", "a%2Fb", "%C3%A9", "x%20y%2A"] {
            assert!(matches!(canonical_component(raw).unwrap(), Cow::Borrowed(r) if r == raw));
        }
        // Anything else is decoded and encoded again, as before.
        for (raw, canonical) in [
            ("a%2fb", "a%2Fb"),
            ("%41%7e", "A~"),
            ("a b", "a%20b"),
            ("a+b", "a%2Bb"),
            ("a/b", "a%2Fb"),
            ("é", "%C3%A9"),
            ("%2", ""),
        ] {
            match canonical_component(raw) {
                Ok(got) => {
                    assert!(matches!(got, Cow::Owned(_)), "{raw}");
                    assert_eq!(got, canonical, "{raw}");
                }
                Err(_) => assert_eq!(raw, "%2"),
            }
        }
        assert!(canonical_component("a%zz").is_err());
        assert!(canonical_component("%").is_err());
    }
}
