//! What the caller asks the upstream server: method, target, headers (the signing
//! headers among them, computed by the caller) and an in-memory body; and the request
//! head as it goes on the wire. The client adds `Host` and `Content-Length` itself, so
//! a signature must cover `Endpoint::host_header()` and the body's length; a caller may
//! list those two headers too (for its signer), but then with exactly those values.

use std::fmt::Write;

use crate::upstream::endpoint::Endpoint;

/// One request to an upstream server. The fields are public so that a signer can read
/// them and add its headers before the request is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `PUT`, ...; sent as given.
    pub method: String,
    /// The request target, path and query already percent-encoded, sent exactly as
    /// given (see `Endpoint::target` to put it under the endpoint's base path).
    pub target: String,
    /// Header names and values in order, beside the `Host` and `Content-Length` the
    /// client writes.
    pub headers: Vec<(String, String)>,
    /// The body; empty sends `Content-Length: 0`. Held in memory, so the request can be
    /// sent again on a fresh connection or after a retryable failure. Large bodies go
    /// through `Client::upload` instead.
    pub body: Vec<u8>,
    /// Whether sending the request twice has the effect of sending it once. Only an
    /// idempotent request is retried after it may have reached the server (timeouts
    /// waiting for the answer, 5xx, 429). `new` sets it from the method: true for GET,
    /// HEAD, PUT, DELETE and OPTIONS; a caller whose POST is safe to repeat sets it.
    pub idempotent: bool,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: &str, target: impl Into<String>) -> Request {
        Request {
            method: method.to_string(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
            idempotent: matches!(method, "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS"),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the in-memory body.
    pub fn with_body(mut self, body: Vec<u8>) -> Request {
        self.body = body;
        self
    }

    /// The first value of header `name` (compared without case).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A HEAD request's answer has no body, whatever its Content-Length says.
    pub(crate) fn is_head(&self) -> bool {
        self.method.eq_ignore_ascii_case("HEAD")
    }

    /// True when the caller said `Connection: close`: the connection is not kept.
    pub(crate) fn asks_close(&self) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("close"))
    }

    /// The request line and headers for a body of `length` bytes, checked so that
    /// nothing the caller gave can break the framing (a line break in a value, a
    /// second Host, a Transfer-Encoding). The reason when it cannot be sent.
    pub(crate) fn encode_head(&self, endpoint: &Endpoint, length: u64) -> Result<Vec<u8>, String> {
        if self.method.is_empty() || !self.method.bytes().all(is_token_byte) {
            return Err(format!("the method {:?} is not an HTTP token", self.method));
        }
        if !self.target.starts_with('/') || !self.target.bytes().all(|b| b > b' ' && b < 0x7f) {
            return Err(format!(
                "the target {:?} must start with / and be percent-encoded",
                self.target
            ));
        }
        let host = endpoint.host_header();
        let mut head = String::with_capacity(128 + self.target.len() + 64 * self.headers.len());
        let _ = write!(
            head,
            "{} {} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n",
            self.method, self.target
        );
        for (name, value) in &self.headers {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(format!("the header name {name:?} is not an HTTP token"));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(format!(
                    "the value of header {name} holds a line break or NUL"
                ));
            }
            if name.eq_ignore_ascii_case("host") {
                if !value.trim().eq_ignore_ascii_case(&host) {
                    return Err(format!("Host {value:?} is not the endpoint's {host:?}"));
                }
                continue;
            }
            if name.eq_ignore_ascii_case("content-length") {
                if value.trim() != length.to_string() {
                    return Err(format!(
                        "Content-Length {value:?} is not the body's {length}"
                    ));
                }
                continue;
            }
            if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err("bodies are sent with a Content-Length, never chunked".to_string());
            }
            let _ = write!(head, "{name}: {}\r\n", value.trim());
        }
        head.push_str("\r\n");
        Ok(head.into_bytes())
    }
}

/// RFC 9110 `tchar`: the bytes of a method or a header name.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::parse("http://127.0.0.1:9000/base").unwrap()
    }

    #[test]
    fn encodes_host_and_length_first() {
        let request = Request::new("PUT", "/base/b/k?x=1")
            .header("x-amz-date", "20260101T000000Z")
            .header("host", "127.0.0.1:9000")
            .header("Content-Length", "3")
            .with_body(b"abc".to_vec());
        let head = request.encode_head(&endpoint(), 3).unwrap();
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "PUT /base/b/k?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nContent-Length: 3\r\n\
             x-amz-date: 20260101T000000Z\r\n\r\n"
        );
        assert!(request.idempotent);
        assert!(!Request::new("POST", "/").idempotent);
        assert_eq!(request.header_value("X-AMZ-DATE"), Some("20260101T000000Z"));
        assert!(Request::new("GET", "/")
            .header("Connection", "keep-alive, Close")
            .asks_close());
    }

    #[test]
    fn refuses_what_would_break_the_framing() {
        let refused = |request: Request| request.encode_head(&endpoint(), 0).is_err();
        assert!(refused(
            Request::new("GET", "/").header("x", "a\r\nInjected: 1")
        ));
        assert!(refused(Request::new("GET", "/").header("bad name", "v")));
        assert!(refused(
            Request::new("GET", "/").header("host", "other:9000")
        ));
        assert!(refused(
            Request::new("GET", "/").header("content-length", "5")
        ));
        assert!(refused(
            Request::new("GET", "/").header("transfer-encoding", "chunked")
        ));
        assert!(refused(Request::new("GET", "/a b")));
        assert!(refused(Request::new("GET", "http://h/")));
        assert!(refused(Request::new("GE T", "/")));
        assert!(refused(Request::new("", "/")));
    }
}
