//! Responses: the head writer, and what a service answers with (a head, a body in
//! memory or streamed, and the labels the access log records). Header values come
//! partly from clients (`response-content-type` overrides, stored metadata), so CR
//! and LF are removed here: no value can split a response.

use std::io;

/// A response head, written as it is built: the status line first, then one
/// `Name: value\r\n` line per header, so that sending it takes no second pass (and no
/// formatting machinery) over a list of pairs.
#[derive(Debug, Clone)]
pub(crate) struct ResponseHead {
    status: u16,
    /// The status line and the header lines so far.
    bytes: Vec<u8>,
}

impl ResponseHead {
    pub(crate) fn new(status: u16) -> ResponseHead {
        let mut bytes = Vec::with_capacity(crate::limits::RESPONSE_HEAD_BYTES);
        bytes.extend_from_slice(b"HTTP/1.1 ");
        push_decimal(&mut bytes, u64::from(status));
        bytes.push(b' ');
        bytes.extend_from_slice(reason_phrase(status).as_bytes());
        bytes.extend_from_slice(b"\r\n");
        ResponseHead { status, bytes }
    }

    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    pub(crate) fn header(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> &mut Self {
        self.header_parts(name.as_ref(), &[value.as_ref()])
    }

    /// A header whose value is `"<value>"` (an ETag).
    pub(crate) fn header_quoted(&mut self, name: &str, value: &str) -> &mut Self {
        self.header_parts(name, &["\"", value, "\""])
    }

    /// A header whose value is the decimal `value`.
    pub(crate) fn header_decimal(&mut self, name: &str, value: u64) -> &mut Self {
        push_clean(&mut self.bytes, name);
        self.bytes.extend_from_slice(b": ");
        push_decimal(&mut self.bytes, value);
        self.bytes.extend_from_slice(b"\r\n");
        self
    }

    /// A header whose value is the concatenation of `parts`.
    fn header_parts(&mut self, name: &str, parts: &[&str]) -> &mut Self {
        push_clean(&mut self.bytes, name);
        self.bytes.extend_from_slice(b": ");
        for part in parts {
            push_clean(&mut self.bytes, part);
        }
        self.bytes.extend_from_slice(b"\r\n");
        self
    }

    /// The complete head: the lines so far, Content-Length when given, and
    /// `Connection: close` when the connection will not be kept. The body may follow
    /// in the same buffer.
    pub(crate) fn finish(mut self, content_length: Option<u64>, keep_alive: bool) -> Vec<u8> {
        if let Some(length) = content_length {
            self.header_decimal("Content-Length", length);
        }
        if !keep_alive {
            self.bytes.extend_from_slice(b"Connection: close\r\n");
        }
        self.bytes.extend_from_slice(b"\r\n");
        self.bytes
    }
}

/// Appends `value` in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A source of response body bytes, read in order (the object segments of a GET).
#[allow(async_fn_in_trait)] // monoio futures are !Send by design: one runtime per core.
pub(crate) trait BodyStream {
    /// Reads the next bytes into `buf` from index 0, up to its capacity; `Ok(0)` at the end.
    async fn read(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>);

    /// The rest of the body, when it is in memory already (nothing read from it yet):
    /// the http layer then copies it once, behind the head, instead of reading it.
    fn in_memory(&self) -> Option<&[u8]> {
        None
    }

    /// The next bytes as a run of an open file, when they are one and nothing before
    /// them is held in memory: the http layer may then splice them to the socket in
    /// the kernel rather than read them, and says with `skip` how many it sent.
    fn file_run(&mut self) -> Option<crate::http::FileRun<'_>> {
        None
    }

    /// Passes over `n` bytes of the run `file_run` gave, sent without being read.
    fn skip(&mut self, _n: u64) {}
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
    let line_break = |b: &u8| *b == b'\r' || *b == b'\n';
    if text.as_bytes().iter().any(line_break) {
        out.extend(text.bytes().filter(|b| !line_break(b)));
    } else {
        out.extend_from_slice(text.as_bytes());
    }
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
        assert_eq!(
            String::from_utf8(head.finish(Some(5), false)).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plainSet-Cookie: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn writes_numbers_and_quoted_values() {
        let mut head = ResponseHead::new(206);
        head.header_quoted("ETag", "abc")
            .header_decimal("x-amz-mp-parts-count", 0)
            .header(String::from("x-amz-meta-a"), String::from("b"));
        assert_eq!(
            String::from_utf8(head.finish(Some(18_446_744_073_709_551_615), true)).unwrap(),
            "HTTP/1.1 206 Partial Content\r\nETag: \"abc\"\r\nx-amz-mp-parts-count: 0\r\nx-amz-meta-a: b\r\nContent-Length: 18446744073709551615\r\n\r\n"
        );
    }
}
