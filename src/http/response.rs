//! Responses: the head writer, and what a service answers with (a head, a body in
//! memory or streamed, and the labels the access log records). Header values come
//! partly from clients (`response-content-type` overrides, stored metadata), so CR
//! and LF are removed here: no value can split a response.

use std::borrow::Cow;
use std::io;

#[derive(Debug, Clone)]
pub(crate) struct ResponseHead {
    status: u16,
    headers: Vec<(Cow<'static, str>, String)>,
}

impl ResponseHead {
    pub(crate) fn new(status: u16) -> ResponseHead {
        ResponseHead {
            status,
            headers: Vec::with_capacity(12),
        }
    }

    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    pub(crate) fn header(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<String>,
    ) -> &mut Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Writes the status line, the headers, Content-Length when given, and
    /// `Connection: close` when the connection will not be kept.
    pub(crate) fn encode(&self, content_length: Option<u64>, keep_alive: bool, out: &mut Vec<u8>) {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(self.status.to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(reason_phrase(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            push_clean(out, name);
            out.extend_from_slice(b": ");
            push_clean(out, value);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(length) = content_length {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(length.to_string().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if !keep_alive {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// A source of response body bytes, read in order (the object segments of a GET).
#[allow(async_fn_in_trait)] // monoio futures are !Send by design: one runtime per core.
pub(crate) trait BodyStream {
    /// Reads the next bytes into `buf` from index 0, up to its capacity; `Ok(0)` at the end.
    async fn read(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>);
}

/// What follows a response head.
pub(crate) enum Body<S> {
    /// Nothing (`Content-Length: 0`, or none at all on 204 and 304).
    Empty,
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// Bytes compiled into the binary.
    Static(&'static [u8]),
    /// `length` bytes read from `source` as they are sent.
    Stream { length: u64, source: S },
    /// The answer to a HEAD: only the length of the body a GET would send.
    Length(u64),
}

/// What the access log and the metrics record about an exchange, chosen by the service.
#[derive(Debug, Clone, Default)]
pub(crate) struct Labels {
    pub request_id: String,
    /// The operation's name (`None` when the request never reached one).
    pub operation: Option<&'static str>,
    /// A path template (never the raw path, which is unbounded).
    pub path: &'static str,
    /// Probes and scrapes: neither logged nor counted.
    pub quiet: bool,
}

/// A complete answer: the http layer writes it, keeping or closing the connection.
pub(crate) struct Response<S> {
    pub head: ResponseHead,
    pub body: Body<S>,
    pub labels: Labels,
}

impl<S> Response<S> {
    pub(crate) fn new(head: ResponseHead, body: Body<S>) -> Response<S> {
        Response {
            head,
            body,
            labels: Labels::default(),
        }
    }
}

fn push_clean(out: &mut Vec<u8>, text: &str) {
    out.extend(text.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
}

pub(crate) fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        414 => "URI Too Long",
        416 => "Requested Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_strips_line_breaks() {
        let mut head = ResponseHead::new(200);
        head.header("Content-Type", "text/plain\r\nSet-Cookie: x");
        let mut out = Vec::new();
        head.encode(Some(5), false, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plainSet-Cookie: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
        );
    }
}
