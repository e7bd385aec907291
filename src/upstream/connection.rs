//! One connection to an upstream server, plain or TLS: connecting (the name resolved
//! off the core), writing a request, reading the answer's head (parsed with httparse
//! into a fixed header array, bounded like the server's request heads) and its body
//! by its framing (Content-Length, chunked, or until the server closes). Every wait
//! is bounded and cancelable: the connect timeout, the first-byte timeout after the
//! request was sent, and the stall timeout on every other read or write. A timed-out
//! read or write is cancelled in the kernel before it returns, as in `crate::http`.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use monoio::io::Canceller;
use monoio::net::TcpStream;
use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};

use crate::http::{read_appending, read_with_timeout, Chunked, ReadEnd, Transport};
use crate::limits;
use crate::upstream::endpoint::{Endpoint, Scheme};
use crate::upstream::error::{Phase, UpstreamError};
use crate::upstream::tls::{rustls_error, TlsConfig};

/// Interim (1xx) heads skipped before a final answer at most; more is a protocol error.
const INTERIM_HEADS_MAX: usize = 8;

/// An answer's status line and headers.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: u16,
    pub(crate) minor_version: u8,
    /// Names lowercased, values trimmed (bytes that are not UTF-8 replaced), in order.
    pub(crate) headers: Vec<(String, String)>,
}

impl ResponseHead {
    /// The first value of header `name` (lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the server lets the connection carry another request: HTTP/1.1 unless
    /// it said `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    pub(crate) fn keeps_alive(&self) -> bool {
        if self.minor_version == 0 {
            self.has_token("connection", "keep-alive")
        } else {
            !self.has_token("connection", "close")
        }
    }

    /// The idle time the server allows between requests (`Keep-Alive: timeout=N`).
    pub(crate) fn keep_alive_timeout(&self) -> Option<Duration> {
        let value = self.header("keep-alive")?;
        value.split(',').find_map(|parameter| {
            let (name, seconds) = parameter.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("timeout") {
                return None;
            }
            seconds.trim().parse::<u64>().ok().map(Duration::from_secs)
        })
    }

    /// How the body is delimited (RFC 9112 6.3), and whether the connection can carry
    /// another exchange after it as far as framing goes. `has_no_body` is true for the
    /// answer to a HEAD request.
    pub(crate) fn framing(&self, has_no_body: bool) -> Result<(Framing, bool), String> {
        if has_no_body || self.status < 200 || self.status == 204 || self.status == 304 {
            return Ok((Framing::Done, true));
        }
        let encodings: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n == "transfer-encoding")
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        let lengths: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .collect();
        if let Some(last) = encodings.last() {
            // With both, Transfer-Encoding wins, and the connection must close after.
            let reusable = lengths.is_empty();
            if last.eq_ignore_ascii_case("chunked") {
                return Ok((Framing::Chunked(Chunked::default()), reusable));
            }
            return Ok((Framing::UntilClose, false));
        }
        let mut length = None;
        for text in lengths {
            if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("invalid Content-Length {text:?}"));
            }
            let parsed: u64 = text
                .parse()
                .map_err(|_| format!("invalid Content-Length {text:?}"))?;
            if length.is_some_and(|l| l != parsed) {
                return Err("conflicting Content-Length headers".to_string());
            }
            length = Some(parsed);
        }
        match length {
            Some(0) => Ok((Framing::Done, true)),
            Some(n) => Ok((Framing::Length(n), true)),
            None => Ok((Framing::UntilClose, false)),
        }
    }
}

/// Where the reading of an answer's body stands.
#[derive(Debug)]
pub(crate) enum Framing {
    /// This many bytes are still to come.
    Length(u64),
    /// A chunked body, decoded as it arrives.
    Chunked(Chunked),
    /// The body ends when the server closes the connection.
    UntilClose,
    /// The body has been read to its end (or there was none).
    Done,
}

/// Parses an answer's head from the start of `bytes`: `Ok(None)` while incomplete.
pub(crate) fn parse_head(bytes: &[u8]) -> Result<Option<(ResponseHead, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; limits::HEADERS_COUNT_MAX];
    let mut response = httparse::Response::new(&mut headers);
    let used = match response.parse(bytes) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) if bytes.len() > limits::HEAD_BYTES_MAX => {
            return Err(format!(
                "the head is longer than {} bytes",
                limits::HEAD_BYTES_MAX
            ))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(format!(
                "the head has more than {} header lines",
                limits::HEADERS_COUNT_MAX
            ))
        }
        Err(error) => return Err(format!("bad status line or header ({error})")),
    };
    if used > limits::HEAD_BYTES_MAX {
        return Err(format!(
            "the head is longer than {} bytes",
            limits::HEAD_BYTES_MAX
        ));
    }
    let status = response.code.unwrap_or(0);
    if status == 101 {
        return Err("101 Switching Protocols was not asked for".to_string());
    }
    let headers = response
        .headers
        .iter()
        .map(|header| {
            let value = String::from_utf8_lossy(header.value);
            (header.name.to_ascii_lowercase(), value.trim().to_string())
        })
        .collect();
    let head = ResponseHead {
        status,
        minor_version: response.version.unwrap_or(1),
        headers,
    };
    Ok(Some((head, used)))
}

/// A connection to one upstream server.
pub(crate) struct Connection {
    transport: Transport,
    /// The TCP socket under `transport`, open as long as it is.
    fd: RawFd,
    /// Bytes received and not consumed yet are `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// The idle time the server allows, from its last `Keep-Alive: timeout`.
    server_idle: Option<Duration>,
}

impl Connection {
    /// Resolves the endpoint's host, connects to its addresses in turn until one
    /// answers, and runs the TLS handshake for https; all of it within `limit`.
    pub(crate) async fn connect(
        endpoint: &Endpoint,
        tls: &TlsConfig,
        limit: Duration,
    ) -> Result<Connection, UpstreamError> {
        let origin = endpoint.origin();
        let deadline = Instant::now() + limit;
        let timed_out = || UpstreamError::timeout(origin, Phase::Connect, limit);
        let connect_error = |source| UpstreamError::Connect {
            endpoint: origin.to_string(),
            source,
        };
        let addresses =
            match monoio::time::timeout(limit, resolve(endpoint.host(), endpoint.port())).await {
                Err(_) => return Err(timed_out()),
                Ok(resolved) => resolved.map_err(connect_error)?,
            };
        let mut last_error = None;
        let mut tcp = None;
        for address in addresses {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            // Dropping a connect that is out of time cancels it (async-cancel).
            match monoio::time::timeout(left, TcpStream::connect_addr(address)).await {
                Ok(Ok(stream)) => {
                    tcp = Some(stream);
                    break;
                }
                Ok(Err(error)) => last_error = Some(error),
                Err(_) => return Err(timed_out()),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            connect_error(last_error.unwrap_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address")
            }))
        })?;
        // Heads and bodies go out in separate writes: no Nagle delay between them.
        let _ = tcp.set_nodelay(true);
        let fd = tcp.as_raw_fd();
        let transport = match endpoint.scheme() {
            Scheme::Http => Transport::Plain(tcp),
            Scheme::Https => {
                let left = deadline.saturating_duration_since(Instant::now());
                match tls.connect(tcp, endpoint.host(), left).await {
                    Ok(stream) => Transport::Tls(Box::new(stream)),
                    Err(error) if error.kind() == io::ErrorKind::TimedOut => {
                        return Err(timed_out())
                    }
                    Err(error) => {
                        return Err(match rustls_error(&error) {
                            Some(source) => UpstreamError::Tls {
                                endpoint: origin.to_string(),
                                source,
                            },
                            None => connect_error(error),
                        })
                    }
                }
            }
        };
        Ok(Connection {
            transport,
            fd,
            buf: Vec::with_capacity(limits::UPSTREAM_READ_BUFFER_BYTES),
            start: 0,
            server_idle: None,
        })
    }

    /// The idle time the server said it allows, if it did.
    pub(crate) fn server_idle(&self) -> Option<Duration> {
        self.server_idle
    }

    pub(crate) fn set_server_idle(&mut self, idle: Option<Duration>) {
        self.server_idle = idle;
    }

    /// Whether an idle connection may carry another request: its server has neither
    /// closed it (a restart, its idle timeout) nor sent anything no request asked for.
    /// A non-blocking peek at the socket, so that a request is never begun on a
    /// connection known to be dead: a streamed body could not be sent again.
    pub(crate) fn still_open(&self) -> bool {
        let mut byte = [0u8; 1];
        let peeked = recv(
            self.fd,
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        );
        matches!(peeked, Err(Errno::EAGAIN)) && self.buffered() == 0
    }

    /// Bytes received beyond what was consumed (after an answer: bytes the server sent
    /// that belong to no request, so the connection is not reused).
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Writes all of `buf`; each write must make progress within `stall`.
    pub(crate) async fn write_all(
        &mut self,
        mut buf: Vec<u8>,
        stall: Duration,
        origin: &str,
    ) -> (Result<(), UpstreamError>, Vec<u8>) {
        let mut sent = 0;
        while sent < buf.len() {
            let canceller = Canceller::new();
            let write = self.transport.write(buf, sent, canceller.handle());
            let mut write = std::pin::pin!(write);
            let (result, returned, timed_out) = match monoio::time::timeout(stall, &mut write).await
            {
                Ok((result, returned)) => (result, returned, false),
                Err(_) => {
                    canceller.cancel();
                    let (result, returned) = write.await;
                    (result, returned, true)
                }
            };
            buf = returned;
            match result {
                Ok(n) if n > 0 => sent += n,
                _ if timed_out => {
                    return (Err(UpstreamError::timeout(origin, Phase::Send, stall)), buf)
                }
                Ok(_) => {
                    let error = io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the connection accepts no more bytes",
                    );
                    return (Err(UpstreamError::io(origin, Phase::Send, error)), buf);
                }
                Err(error) => return (Err(UpstreamError::io(origin, Phase::Send, error)), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Reads more bytes into the buffer, making room first, for at most `timeout`.
    async fn fill(&mut self, timeout: Duration) -> Result<usize, ReadEnd> {
        if self.start > 0 && (self.buf.len() == self.buf.capacity() || self.start == self.buf.len())
        {
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(self.buf.len() - self.start);
            self.start = 0;
        }
        if self.buf.len() == self.buf.capacity() {
            self.buf.reserve(limits::UPSTREAM_READ_BUFFER_BYTES);
        }
        let cap = self.buf.capacity();
        read_appending(&mut self.transport, &mut self.buf, cap, timeout).await
    }

    /// Reads the head of the answer to the request just sent, skipping interim (1xx)
    /// heads. Until its first byte (of the final head, after an interim one) the wait is
    /// `first_byte`, then `stall` per read.
    /// Ending or failing before the first byte is an `Io` error of phase `FirstByte`
    /// (which, on a connection from the pool, means it was stale).
    pub(crate) async fn read_head(
        &mut self,
        first_byte: Duration,
        stall: Duration,
        origin: &str,
    ) -> Result<ResponseHead, UpstreamError> {
        let mut received_any = self.buffered() > 0;
        let mut interim = 0;
        loop {
            if self.buffered() > 0 {
                let parsed = parse_head(&self.buf[self.start..])
                    .map_err(|message| UpstreamError::protocol(origin, message))?;
                if let Some((head, used)) = parsed {
                    self.consume(used);
                    if head.status >= 200 {
                        return Ok(head);
                    }
                    interim += 1;
                    if interim > INTERIM_HEADS_MAX {
                        return Err(UpstreamError::protocol(
                            origin,
                            "too many interim (1xx) answers",
                        ));
                    }
                    // The final answer may take as long to begin as a first one.
                    received_any = self.buffered() > 0;
                    continue;
                }
            }
            let (timeout, phase) = if received_any {
                (stall, Phase::Receive)
            } else {
                (first_byte, Phase::FirstByte)
            };
            match self.fill(timeout).await {
                Ok(_) => received_any = true,
                Err(ReadEnd::TimedOut) => {
                    return Err(UpstreamError::timeout(origin, phase, timeout))
                }
                Err(ReadEnd::Eof) => {
                    let message = if received_any {
                        "the server closed the connection in the middle of the answer's head"
                    } else {
                        "the server closed the connection without answering"
                    };
                    let error = io::Error::new(io::ErrorKind::UnexpectedEof, message);
                    return Err(UpstreamError::io(origin, phase, error));
                }
                Err(ReadEnd::Failed(error)) => return Err(UpstreamError::io(origin, phase, error)),
            }
        }
    }

    /// Appends body bytes to `out`, at most its spare capacity (a buffer with none is
    /// given `BODY_READ_CHUNK_BYTES` first); `Ok(0)` once the body has ended, when
    /// `framing` is `Done`. A Content-Length body with nothing buffered is read
    /// straight into `out`. Each read must make progress within `stall`.
    pub(crate) async fn read_body(
        &mut self,
        framing: &mut Framing,
        mut out: Vec<u8>,
        stall: Duration,
        origin: &str,
    ) -> (Result<usize, UpstreamError>, Vec<u8>) {
        if out.len() == out.capacity() {
            out.reserve(limits::BODY_READ_CHUNK_BYTES);
        }
        let room = out.capacity() - out.len();
        loop {
            match framing {
                Framing::Done => return (Ok(0), out),
                Framing::Length(remaining) => {
                    let want = (*remaining).min(room as u64) as usize;
                    let (result, returned) = self.read_some(out, want, stall).await;
                    out = returned;
                    return match result {
                        Ok(n) => {
                            *remaining -= n as u64;
                            if *remaining == 0 {
                                *framing = Framing::Done;
                            }
                            (Ok(n), out)
                        }
                        Err(ReadEnd::Eof) => {
                            let message = format!(
                                "the server closed the connection {remaining} bytes before the \
                                 end of the body"
                            );
                            let error = io::Error::new(io::ErrorKind::UnexpectedEof, message);
                            (Err(UpstreamError::io(origin, Phase::Receive, error)), out)
                        }
                        Err(end) => (Err(read_error(end, origin, stall)), out),
                    };
                }
                Framing::UntilClose => {
                    let (result, returned) = self.read_some(out, room, stall).await;
                    out = returned;
                    return match result {
                        Ok(n) => (Ok(n), out),
                        Err(ReadEnd::Eof) => {
                            *framing = Framing::Done;
                            (Ok(0), out)
                        }
                        Err(end) => (Err(read_error(end, origin, stall)), out),
                    };
                }
                Framing::Chunked(chunked) => {
                    if self.buffered() > 0 {
                        let before = out.len();
                        let decoded = chunked.decode(&self.buf[self.start..], &mut out, room);
                        let (used, finished) = match decoded {
                            Ok(progress) => progress,
                            Err(error) => {
                                let message = format!("malformed chunked body: {}", error.message);
                                return (Err(UpstreamError::protocol(origin, message)), out);
                            }
                        };
                        self.consume(used);
                        let produced = out.len() - before;
                        if finished {
                            *framing = Framing::Done;
                        }
                        if produced > 0 || finished {
                            return (Ok(produced), out);
                        }
                    }
                    match self.fill(stall).await {
                        Ok(_) => {}
                        Err(ReadEnd::Eof) => {
                            let error = io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the server closed the connection in the middle of a chunked body",
                            );
                            return (Err(UpstreamError::io(origin, Phase::Receive, error)), out);
                        }
                        Err(end) => return (Err(read_error(end, origin, stall)), out),
                    }
                }
            }
        }
    }

    /// Appends up to `want` (> 0) bytes to `out`: buffered ones first, else read from
    /// the socket straight into `out`.
    async fn read_some(
        &mut self,
        mut out: Vec<u8>,
        want: usize,
        stall: Duration,
    ) -> (Result<usize, ReadEnd>, Vec<u8>) {
        if self.buffered() > 0 {
            let take = want.min(self.buffered());
            out.extend_from_slice(&self.buf[self.start..self.start + take]);
            self.consume(take);
            return (Ok(take), out);
        }
        let begin = out.len();
        let canceller = Canceller::new();
        let handle = canceller.handle();
        read_with_timeout(
            &mut self.transport,
            out,
            begin,
            begin + want,
            stall,
            handle,
            move || {
                canceller.cancel();
            },
        )
        .await
    }
}

fn read_error(end: ReadEnd, origin: &str, stall: Duration) -> UpstreamError {
    match end {
        ReadEnd::TimedOut => UpstreamError::timeout(origin, Phase::Receive, stall),
        ReadEnd::Eof => {
            let error = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            );
            UpstreamError::io(origin, Phase::Receive, error)
        }
        ReadEnd::Failed(error) => UpstreamError::io(origin, Phase::Receive, error),
    }
}

/// The addresses of `host`: an IP address as it is; a name resolved on a short-lived
/// thread, since the system resolver blocks and must not stall the core's runtime
/// (the caller's timeout bounds the wait; a late answer is dropped).
async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (sender, receiver) = flume::bounded(1);
    let name = (host.to_string(), port);
    std::thread::Builder::new()
        .name("upstream-resolve".to_string())
        .spawn(move || {
            let resolved = name.to_socket_addrs().map(Iterator::collect::<Vec<_>>);
            let _ = sender.send(resolved);
        })?;
    receiver
        .recv_async()
        .await
        .map_err(|_| io::Error::other("the resolver thread ended without an answer"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> ResponseHead {
        parse_head(text.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn parses_heads() {
        let text = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Ms-Request-Id:  abc \r\n\r\nhello";
        let (parsed, used) = parse_head(text.as_bytes()).unwrap().unwrap();
        assert_eq!(used, text.len() - 5);
        assert_eq!(parsed.status, 200);
        assert_eq!(parsed.header("x-ms-request-id"), Some("abc"));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-")
            .unwrap()
            .is_none());
        assert_eq!(head("HTTP/1.1 204\r\n\r\n").status, 204, "no reason phrase");
        for bad in [
            "HTTP/1.1 abc OK\r\n\r\n",
            "garbage\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            assert!(parse_head(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let many: String = (0..=limits::HEADERS_COUNT_MAX)
            .map(|i| format!("h{i}: v\r\n"))
            .collect();
        assert!(parse_head(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes()).is_err());
        let big = format!(
            "HTTP/1.1 200 OK\r\nx: {}",
            "a".repeat(limits::HEAD_BYTES_MAX)
        );
        assert!(parse_head(big.as_bytes()).is_err());
    }

    #[test]
    fn framing_and_persistence() {
        let framing = |text: &str, no_body: bool| {
            head(text)
                .framing(no_body)
                .map(|(f, reusable)| (format!("{f:?}"), reusable))
        };
        let ok = |text: &str| framing(text, false).unwrap();
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"),
            ("Length(10)".into(), true)
        );
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            ("Done".into(), true)
        );
        assert_eq!(ok("HTTP/1.1 204 No Content\r\n\r\n"), ("Done".into(), true));
        assert_eq!(
            ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n").0,
            "Done"
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true)
                .unwrap()
                .0,
            "Done",
            "the answer to HEAD"
        );
        assert!(ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            .0
            .starts_with("Chunked"));
        assert!(
            !ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n").1
        );
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            ("UntilClose".into(), false)
        );
        assert_eq!(ok("HTTP/1.1 200 OK\r\n\r\n"), ("UntilClose".into(), false));
        assert_eq!(
            ok("HTTP/1.1 200 OK\r\nContent-Length: 4, 4\r\n\r\n").0,
            "Length(4)"
        );
        for bad in ["4, 5", "-1", "1x", "", "99999999999999999999"] {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert!(framing(&text, false).is_err(), "{bad:?}");
        }
        assert!(head("HTTP/1.1 200 OK\r\n\r\n").keeps_alive());
        assert!(!head("HTTP/1.1 200 OK\r\nConnection: Close\r\n\r\n").keeps_alive());
        assert!(!head("HTTP/1.0 200 OK\r\n\r\n").keeps_alive());
        assert!(head("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n").keeps_alive());
        let azurite = head("HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\n\r\n");
        assert_eq!(azurite.keep_alive_timeout(), Some(Duration::from_secs(5)));
        let apache = head("HTTP/1.1 200 OK\r\nKeep-Alive: max=100, Timeout = 15\r\n\r\n");
        assert_eq!(apache.keep_alive_timeout(), Some(Duration::from_secs(15)));
        assert_eq!(head("HTTP/1.1 200 OK\r\n\r\n").keep_alive_timeout(), None);
    }
}
