//! The request head: parsed once with httparse, names lowercased, values trimmed.

use crate::error::{ErrorCode, S3Error};
use crate::http::body::BodyKind;
use crate::limits;

#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    pub method: String,
    /// The raw path (before '?').
    pub path: String,
    /// The raw query (after '?'), empty when there is none.
    pub query: String,
    pub minor_version: u8,
    /// Header names lowercased, values with outer whitespace trimmed, in order.
    pub headers: Vec<(String, String)>,
}

/// Outcome of trying to parse a head from the bytes buffered so far.
pub(crate) enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A complete head, and how many bytes it took.
    Complete(RequestHead, usize),
}

impl RequestHead {
    /// Parses a head from the start of `bytes` (check, then parse: a partial head
    /// is a state, not an error).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, S3Error> {
        let mut headers = [httparse::EMPTY_HEADER; limits::HEADERS_COUNT_MAX];
        let mut request = httparse::Request::new(&mut headers);
        let consumed = match request.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if bytes.len() > limits::HEAD_BYTES_MAX {
                    return Err(S3Error::new(ErrorCode::RequestHeaderSectionTooLarge));
                }
                return Ok(Parsed::Partial);
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(S3Error::new(ErrorCode::RequestHeaderSectionTooLarge))
            }
            Err(error) => {
                return Err(S3Error::with_message(
                    ErrorCode::BadRequest,
                    format!("Malformed HTTP request: {error}"),
                ))
            }
        };
        if consumed > limits::HEAD_BYTES_MAX {
            return Err(S3Error::new(ErrorCode::RequestHeaderSectionTooLarge));
        }
        let target = request.path.unwrap_or("/");
        if target.len() > limits::URI_BYTES_MAX {
            return Err(S3Error::new(ErrorCode::UriTooLong));
        }
        let mut parsed = Vec::with_capacity(request.headers.len());
        for header in request.headers.iter() {
            let value = std::str::from_utf8(header.value).map_err(|_| {
                S3Error::with_message(ErrorCode::BadRequest, "Header values must be UTF-8.")
            })?;
            parsed.push((header.name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let minor_version = request.version.unwrap_or(1);
        let hosts = parsed.iter().filter(|(n, _)| n == "host").count();
        // RFC 9112 3.2: an HTTP/1.1 request has exactly one Host; none is ambiguous,
        // two are an attack on whoever reads the other one.
        if hosts > 1 || (hosts == 0 && minor_version >= 1) {
            return Err(S3Error::with_message(
                ErrorCode::BadRequest,
                "A request must carry exactly one Host header.",
            ));
        }
        let target = origin_form(target, &mut parsed)?;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let head = RequestHead {
            method: request.method.unwrap_or("GET").to_string(),
            path: path.to_string(),
            query: query.to_string(),
            minor_version,
            headers: parsed,
        };
        Ok(Parsed::Complete(head, consumed))
    }

    /// The first value of a header; `name` must be lowercase.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// HTTP/1.1 keeps the connection unless told `close`; HTTP/1.0 only with `keep-alive`.
    pub(crate) fn keep_alive(&self) -> bool {
        if self.minor_version == 0 {
            self.header_has_token("connection", "keep-alive")
        } else {
            !self.header_has_token("connection", "close")
        }
    }

    pub(crate) fn expects_continue(&self) -> bool {
        self.header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// How the body is framed. Conflicting or malformed framing is a 400, since
    /// guessing would desynchronise the connection.
    pub(crate) fn body_kind(&self) -> Result<BodyKind, S3Error> {
        let mut length: Option<u64> = None;
        for (_, value) in self.headers.iter().filter(|(n, _)| n == "content-length") {
            let parsed = parse_content_length(value)?;
            if length.is_some_and(|l| l != parsed) {
                return Err(S3Error::with_message(
                    ErrorCode::BadRequest,
                    "Conflicting Content-Length headers.",
                ));
            }
            length = Some(parsed);
        }
        let encodings: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n == "transfer-encoding")
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        match (encodings.as_slice(), length) {
            ([], Some(0)) | ([], None) => Ok(BodyKind::Empty),
            ([], Some(n)) => Ok(BodyKind::Length(n)),
            ([only], None) if only.eq_ignore_ascii_case("chunked") => Ok(BodyKind::Chunked),
            ([_, ..], Some(_)) => Err(S3Error::with_message(
                ErrorCode::BadRequest,
                "Transfer-Encoding and Content-Length together are not allowed.",
            )),
            _ => Err(S3Error::with_message(
                ErrorCode::NotImplemented,
                "A header you provided implies functionality that is not implemented.",
            )
            .field("Header", "Transfer-Encoding")),
        }
    }
}

/// The origin-form (`/path?query`) of a request target. An absolute-form target
/// (`http://host/path`, RFC 9112 3.2.2) gives its path, and its host must be the Host
/// header's (which the signature covers); an HTTP/1.0 request without a Host takes
/// the target's. Any other form (`*`, `host:port`) is refused.
fn origin_form<'t>(
    target: &'t str,
    headers: &mut Vec<(String, String)>,
) -> Result<&'t str, S3Error> {
    if target.starts_with('/') {
        return Ok(target);
    }
    let unsupported = || {
        S3Error::with_message(
            ErrorCode::BadRequest,
            "The request target must be a path or an absolute http(s) URI.",
        )
    };
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &target[7..]
    } else if lower.starts_with("https://") {
        &target[8..]
    } else {
        return Err(unsupported());
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || path.starts_with('?') {
        return Err(unsupported());
    }
    match headers.iter().find(|(n, _)| n == "host") {
        Some((_, host)) if !host.eq_ignore_ascii_case(authority) => Err(S3Error::with_message(
            ErrorCode::BadRequest,
            "The Host header differs from the host of the request target.",
        )),
        Some(_) => Ok(path),
        None => {
            headers.push(("host".to_string(), authority.to_string()));
            Ok(path)
        }
    }
}

fn parse_content_length(value: &str) -> Result<u64, S3Error> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(S3Error::with_message(
            ErrorCode::BadRequest,
            "Invalid Content-Length.",
        ));
    }
    value
        .parse::<u64>()
        .map_err(|_| S3Error::with_message(ErrorCode::BadRequest, "Invalid Content-Length."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Option<(RequestHead, usize)>, ErrorCode> {
        match RequestHead::parse(bytes) {
            Ok(Parsed::Complete(head, n)) => Ok(Some((head, n))),
            Ok(Parsed::Partial) => Ok(None),
            Err(e) => Err(e.code),
        }
    }

    #[test]
    fn parses_pipelined_heads_one_at_a_time() {
        let bytes = b"GET /b/k?list-type=2 HTTP/1.1\r\nHost: x\r\nX-Amz-Date: 1 \r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let (head, used) = parse(bytes).unwrap().unwrap();
        assert_eq!(
            (head.path.as_str(), head.query.as_str()),
            ("/b/k", "list-type=2")
        );
        assert_eq!(head.header("x-amz-date"), Some("1"));
        assert!(head.keep_alive());
        let (second, _) = parse(&bytes[used..]).unwrap().unwrap();
        assert_eq!(second.path, "/");
        assert!(parse(b"GET / HTTP/1.1\r\nHost:").unwrap().is_none());
    }

    #[test]
    fn rejects_bad_heads() {
        assert_eq!(
            parse(b"\x01\x02 garbage\r\n\r\n").unwrap_err(),
            ErrorCode::BadRequest
        );
        let many: String = (0..200).map(|i| format!("h{i}: v\r\n")).collect();
        let request = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(
            parse(request.as_bytes()).unwrap_err(),
            ErrorCode::RequestHeaderSectionTooLarge
        );
        let big = format!(
            "GET / HTTP/1.1\r\nx: {}\r\n",
            "a".repeat(limits::HEAD_BYTES_MAX)
        );
        assert_eq!(
            parse(big.as_bytes()).unwrap_err(),
            ErrorCode::RequestHeaderSectionTooLarge
        );
        let long = format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(limits::URI_BYTES_MAX)
        );
        assert_eq!(parse(long.as_bytes()).unwrap_err(), ErrorCode::UriTooLong);
    }

    #[test]
    fn body_framing() {
        let kind = |headers: &str| {
            let request = format!("PUT /b/k HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
            let (head, _) = parse(request.as_bytes()).unwrap().unwrap();
            head.body_kind().map_err(|e| e.code)
        };
        assert_eq!(kind(""), Ok(BodyKind::Empty));
        assert_eq!(kind("Content-Length: 10\r\n"), Ok(BodyKind::Length(10)));
        assert_eq!(
            kind("Content-Length: 10\r\nContent-Length: 10\r\n"),
            Ok(BodyKind::Length(10))
        );
        assert_eq!(
            kind("Transfer-Encoding: chunked\r\n"),
            Ok(BodyKind::Chunked)
        );
        for bad in [
            "Content-Length: -1\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: 1x\r\n",
            "Content-Length: 99999999999999999999999\r\n",
            "Content-Length: 1\r\nContent-Length: 2\r\n",
            "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n",
        ] {
            assert_eq!(kind(bad), Err(ErrorCode::BadRequest), "{bad}");
        }
        assert_eq!(
            kind("Transfer-Encoding: gzip\r\n"),
            Err(ErrorCode::NotImplemented)
        );
    }

    #[test]
    fn connection_persistence() {
        let head = |text: &str| parse(text.as_bytes()).unwrap().unwrap().0;
        assert!(!head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keep_alive());
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
        assert!(
            head("PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n\r\n").expects_continue()
        );
    }

    #[test]
    fn host_and_target_forms() {
        let bad = |text: &str| parse(text.as_bytes()).err();
        assert_eq!(
            bad("GET / HTTP/1.1\r\n\r\n"),
            Some(ErrorCode::BadRequest),
            "no Host"
        );
        assert_eq!(
            bad("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Some(ErrorCode::BadRequest),
            "two Hosts"
        );
        assert_eq!(
            bad("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(ErrorCode::BadRequest)
        );
        assert_eq!(
            bad("CONNECT a:80 HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(ErrorCode::BadRequest)
        );
        assert_eq!(
            bad("GET http://other:9000/b/k HTTP/1.1\r\nHost: a:9000\r\n\r\n"),
            Some(ErrorCode::BadRequest),
            "the target's host must be the signed Host"
        );
        let head = |text: &str| parse(text.as_bytes()).unwrap().unwrap().0;
        let absolute = head("GET HTTP://A:9000/b/k?acl HTTP/1.1\r\nHost: a:9000\r\n\r\n");
        assert_eq!(
            (absolute.path.as_str(), absolute.query.as_str()),
            ("/b/k", "acl")
        );
        let bare = head("GET http://a:9000 HTTP/1.0\r\n\r\n");
        assert_eq!(
            (bare.path.as_str(), bare.header("host")),
            ("/", Some("a:9000"))
        );
    }
}
