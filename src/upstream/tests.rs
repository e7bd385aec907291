//! The client driven on monoio runtimes (io_uring and epoll) against small scripted
//! servers: std threads on 127.0.0.1 that read requests and write exactly the bytes a
//! test needs (keep-alive, close, chunked, stalls, silence, errors, TLS with a test
//! CA). No assertion waits on a race: a server that must be slow blocks until the
//! client closes, far longer than the client's timeouts.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::*;
use crate::http::{server_config, Certificate};

// ---- the runtime ----------------------------------------------------------------

/// Runs the test once on each driver, each run within a minute (a hang fails it).
fn run<F, Fut>(test: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let limit = Duration::from_secs(60);
    let timed = |future| async move {
        monoio::time::timeout(limit, future)
            .await
            .expect("the test did not finish within a minute")
    };
    match monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
    {
        Ok(mut runtime) => runtime.block_on(timed(test())),
        Err(error) => eprintln!("io_uring unavailable ({error}): epoll driver only"),
    }
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("an epoll runtime")
        .block_on(timed(test()));
}

/// Timeouts short enough for tests, retries quick.
fn config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(5),
        first_byte_timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        ..ClientConfig::default()
    }
}

fn client(config: ClientConfig) -> Client {
    Client::new(config, TlsConfig::new(None).expect("the webpki roots"))
}

async fn get(client: &Client, endpoint: &Endpoint, target: &str) -> Response {
    client
        .send(endpoint, Request::new("GET", target))
        .await
        .expect("an answer")
}

async fn body_of(response: &mut Response) -> String {
    let body = response.read_to_end(1 << 20).await.expect("the body");
    String::from_utf8(body).expect("a UTF-8 body")
}

fn counters(client: &Client) -> [u64; 5] {
    let c = client.counters();
    [
        c.requests.get(),
        c.retries.get(),
        c.connections_opened.get(),
        c.connections_reused.get(),
        c.connections_stale.get(),
    ]
}

/// Bytes that differ at every offset, so a misplaced piece cannot go unnoticed.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
        .collect()
}

// ---- the scripted server --------------------------------------------------------

/// A request as the server received it.
#[derive(Debug, Clone)]
struct Received {
    /// Its place among all requests the server received, from 0.
    number: usize,
    /// The connection it came on, from 0.
    connection: usize,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One accepted connection, as a script drives it.
struct Peer {
    stream: Stream,
    /// Received and not yet parsed.
    buf: Vec<u8>,
    connection: usize,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Peer {
    /// The next request (head and Content-Length body); `None` once the client closed
    /// or the connection failed (a refused TLS handshake, say).
    fn request(&mut self) -> Option<Received> {
        loop {
            if let Some((used, mut received)) = parse_request(&self.buf) {
                let length = received
                    .header("content-length")
                    .map_or(0, |v| v.parse::<usize>().expect("a Content-Length"));
                while self.buf.len() < used + length {
                    if !self.receive() {
                        return None;
                    }
                }
                received.body = self.buf[used..used + length].to_vec();
                self.buf.drain(..used + length);
                let mut log = self.log.lock().unwrap();
                received.number = log.len();
                received.connection = self.connection;
                log.push(received.clone());
                return Some(received);
            }
            if !self.receive() {
                return None;
            }
        }
    }

    fn receive(&mut self) -> bool {
        let mut chunk = vec![0; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Writes `bytes` at once (errors ignored: a client may be gone).
    fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
        let _ = self.stream.flush();
    }

    /// Blocks until the client closes the connection: how a server is silent or
    /// stalls for as long as the client cares to wait.
    fn wait_for_close(&mut self) {
        while self.receive() {}
    }
}

/// The head at the start of `buf` and its length, as a `Received` still without its
/// body and place.
fn parse_request(buf: &[u8]) -> Option<(usize, Received)> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buf) {
        Ok(httparse::Status::Complete(used)) => {
            let headers = request
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value).to_string();
                    (h.name.to_ascii_lowercase(), value)
                })
                .collect();
            let received = Received {
                number: 0,
                connection: 0,
                method: request.method.unwrap_or_default().to_string(),
                target: request.path.unwrap_or_default().to_string(),
                headers,
                body: Vec::new(),
            };
            Some((used, received))
        }
        Ok(httparse::Status::Partial) => None,
        Err(error) => panic!("the client sent a malformed head: {error}"),
    }
}

type Script = Arc<dyn Fn(Peer) + Send + Sync>;

/// A listener on 127.0.0.1 running `script` on a thread per accepted connection.
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(script: impl Fn(Peer) + Send + Sync + 'static) -> Server {
        Server::listen(None, Arc::new(script))
    }

    fn start_tls(
        config: Arc<ServerConfig>,
        script: impl Fn(Peer) + Send + Sync + 'static,
    ) -> Server {
        Server::listen(Some(config), Arc::new(script))
    }

    fn listen(tls: Option<Arc<ServerConfig>>, script: Script) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let server = Server {
            addr,
            accepted: accepted.clone(),
            log: log.clone(),
            stop: stop.clone(),
        };
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = tcp else { continue };
                let connection = accepted.fetch_add(1, Ordering::SeqCst);
                let stream = match &tls {
                    None => Stream::Plain(tcp),
                    Some(config) => {
                        let session = ServerConnection::new(config.clone()).unwrap();
                        Stream::Tls(Box::new(StreamOwned::new(session, tcp)))
                    }
                };
                let peer = Peer {
                    stream,
                    buf: Vec::new(),
                    connection,
                    log: log.clone(),
                };
                let script = script.clone();
                std::thread::spawn(move || script(peer));
            }
        });
        server
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::parse(&format!("http://{}", self.addr)).unwrap()
    }

    fn https_endpoint(&self) -> Endpoint {
        Endpoint::parse(&format!("https://{}", self.addr)).unwrap()
    }

    /// Connections accepted so far. Read once the client has its answers, it is
    /// exact: every connection that carried an answer was accepted before it.
    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn answer(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn ok(body: &str) -> Vec<u8> {
    answer("200 OK", "", body.as_bytes())
}

/// Answers every request on every connection with 200 and `"{number}"`.
fn numbering_server() -> Server {
    Server::start(|mut peer| {
        while let Some(request) = peer.request() {
            peer.send(&ok(&request.number.to_string()));
        }
    })
}

// ---- keep-alive and framing -----------------------------------------------------

#[test]
fn keep_alive_reuses_one_connection() {
    run(|| async {
        let server = numbering_server();
        let endpoint = server.endpoint();
        let client = client(config());
        for n in 0..3 {
            let mut response = get(&client, &endpoint, &format!("/b/k{n}?x=1")).await;
            assert_eq!(response.status(), 200);
            assert_eq!(response.body_length(), Some(1));
            assert_eq!(body_of(&mut response).await, n.to_string());
            assert!(response.is_finished());
        }
        let put = Request::new("PUT", "/b/k")
            .header("x-amz-date", "20260101T000000Z")
            .with_body(b"payload".to_vec());
        let mut response = client.send(&endpoint, put).await.unwrap();
        assert_eq!(body_of(&mut response).await, "3");
        assert_eq!(server.accepted(), 1, "one connection carried all four");
        assert_eq!(counters(&client), [4, 0, 1, 3, 0]);
        assert_eq!(client.idle_connections(&endpoint), 1);
        let received = server.received();
        let host = format!("127.0.0.1:{}", server.addr.port());
        assert_eq!(received[0].target, "/b/k0?x=1");
        assert_eq!(received[0].header("host"), Some(host.as_str()));
        assert_eq!(received[0].header("content-length"), Some("0"));
        assert_eq!(received[3].method, "PUT");
        assert_eq!(received[3].header("x-amz-date"), Some("20260101T000000Z"));
        assert_eq!(received[3].header("content-length"), Some("7"));
        assert_eq!(received[3].body, b"payload");
    });
}

#[test]
fn connection_close_from_either_side_is_not_reused() {
    run(|| async {
        let closing = Server::start(|mut peer| {
            if let Some(request) = peer.request() {
                peer.send(&answer(
                    "200 OK",
                    "Connection: close\r\n",
                    request.target.as_bytes(),
                ));
            }
        });
        let client = client(config());
        let endpoint = closing.endpoint();
        for target in ["/one", "/two"] {
            let mut response = get(&client, &endpoint, target).await;
            assert_eq!(body_of(&mut response).await, target);
        }
        assert_eq!(closing.accepted(), 2);
        assert_eq!(client.idle_connections(&endpoint), 0);

        let keeping = numbering_server();
        let endpoint = keeping.endpoint();
        for _ in 0..2 {
            let request = Request::new("GET", "/").header("Connection", "close");
            let mut response = client.send(&endpoint, request).await.unwrap();
            body_of(&mut response).await;
        }
        assert_eq!(keeping.accepted(), 2, "the client's own close is honoured");
        assert_eq!(client.counters().connections_reused.get(), 0);
    });
}

#[test]
fn keep_alive_timeout_within_the_margin_is_not_pooled() {
    run(|| async {
        let server = Server::start(|mut peer| {
            while let Some(request) = peer.request() {
                let seconds = if request.target == "/short" { 1 } else { 5 };
                let header = format!("Keep-Alive: timeout={seconds}\r\n");
                peer.send(&answer("200 OK", &header, b"x"));
            }
        });
        let client = client(config());
        let endpoint = server.endpoint();
        let mut response = get(&client, &endpoint, "/short").await;
        body_of(&mut response).await;
        assert_eq!(
            client.idle_connections(&endpoint),
            0,
            "timeout=1 minus the 1 s margin leaves no idle time"
        );
        let mut response = get(&client, &endpoint, "/long").await;
        body_of(&mut response).await;
        assert_eq!(
            client.idle_connections(&endpoint),
            1,
            "timeout=5 (Azurite): kept"
        );
        assert_eq!(server.accepted(), 2);
    });
}

#[test]
fn chunked_body_is_decoded_into_small_buffers() {
    run(|| async {
        let server = Server::start(|mut peer| {
            while let Some(request) = peer.request() {
                if request.target == "/after" {
                    peer.send(&ok("after"));
                    continue;
                }
                peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                peer.send(b"5;ext=1\r\nhello\r\n");
                peer.send(b"B\r\n world, y");
                peer.send(b"es\r\n1000\r\n");
                peer.send(&pattern(4096));
                peer.send(b"\r\n0\r\nx-trailer: v\r\n\r\n");
            }
        });
        let client = client(config());
        let endpoint = server.endpoint();
        let mut response = get(&client, &endpoint, "/chunked").await;
        assert_eq!(response.body_length(), None);
        let mut body = Vec::new();
        let mut buf = Vec::with_capacity(7);
        loop {
            buf.clear();
            let (result, returned) = response.read(buf).await;
            buf = returned;
            let n = result.expect("a body piece");
            assert!(n <= 7, "a read never exceeds the buffer's spare capacity");
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf);
        }
        let mut expected = b"hello world, yes".to_vec();
        expected.extend_from_slice(&pattern(4096));
        assert_eq!(body, expected);
        let mut after = get(&client, &endpoint, "/after").await;
        assert_eq!(body_of(&mut after).await, "after");
        assert_eq!(server.accepted(), 1, "reused after a chunked body");
    });
}

#[test]
fn content_length_body_streams_in_pieces() {
    const LEN: usize = 1024 * 1024 + 7;
    run(|| async {
        let server = Server::start(|mut peer| {
            while let Some(request) = peer.request() {
                let data = pattern(LEN);
                match request.target.as_str() {
                    "/big" => {
                        peer.send(
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {LEN}\r\n\r\n").as_bytes(),
                        );
                        for piece in data.chunks(1000) {
                            peer.send(piece);
                        }
                    }
                    "/big-chunked" => {
                        peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                        for piece in data.chunks(64 * 1024) {
                            peer.send(format!("{:x}\r\n", piece.len()).as_bytes());
                            peer.send(piece);
                            peer.send(b"\r\n");
                        }
                        peer.send(b"0\r\n\r\n");
                    }
                    _ => peer.send(&ok("small")),
                }
            }
        });
        let client = client(config());
        let endpoint = server.endpoint();
        let mut response = get(&client, &endpoint, "/big").await;
        assert_eq!(response.body_length(), Some(LEN as u64));
        let mut received = Vec::with_capacity(LEN);
        let mut buf = Vec::with_capacity(4096);
        loop {
            buf.clear();
            let (result, returned) = response.read(buf).await;
            buf = returned;
            match result.unwrap() {
                0 => break,
                n => {
                    assert!(n <= 4096);
                    received.extend_from_slice(&buf);
                }
            }
        }
        assert!(received == pattern(LEN), "the body arrived intact");

        let mut small = get(&client, &endpoint, "/small").await;
        assert_eq!(body_of(&mut small).await, "small");
        let mut big = get(&client, &endpoint, "/big").await;
        match big.read_to_end(1000).await {
            Err(UpstreamError::TooLarge { limit: 1000, .. }) => {}
            other => panic!("expected TooLarge from the Content-Length, got {other:?}"),
        }
        let mut chunked = get(&client, &endpoint, "/big-chunked").await;
        match chunked.read_to_end(100_000).await {
            Err(UpstreamError::TooLarge { limit: 100_000, .. }) => {}
            other => panic!("expected TooLarge while reading, got {other:?}"),
        }
        let mut chunked = get(&client, &endpoint, "/big-chunked").await;
        assert!(chunked.read_to_end(LEN).await.unwrap() == pattern(LEN));
        assert_eq!(
            server.accepted(),
            3,
            "the two bodies over the limit closed theirs"
        );
    });
}

#[test]
fn answers_without_a_body() {
    run(|| async {
        let server = Server::start(|mut peer| {
            while let Some(request) = peer.request() {
                match request.target.as_str() {
                    // The length of the object a GET would return; no body follows.
                    "/head" => peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
                    "/204" => peer.send(b"HTTP/1.1 204 No Content\r\n\r\n"),
                    "/304" => peer.send(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
                    "/continue" => {
                        peer.send(b"HTTP/1.1 100 Continue\r\n\r\n");
                        peer.send(&ok("final"));
                    }
                    _ => peer.send(&ok("body")),
                }
            }
        });
        let client = client(config());
        let endpoint = server.endpoint();
        let head = client
            .send(&endpoint, Request::new("HEAD", "/head"))
            .await
            .unwrap();
        assert_eq!(head.header("content-length"), Some("1000"));
        assert_eq!(head.body_length(), Some(0));
        assert!(head.is_finished(), "back in the pool already");
        for (target, status) in [("/204", 204), ("/304", 304)] {
            let mut response = get(&client, &endpoint, target).await;
            assert_eq!(response.status(), status);
            assert_eq!(body_of(&mut response).await, "");
        }
        let mut response = get(&client, &endpoint, "/continue").await;
        assert_eq!(
            (response.status(), body_of(&mut response).await.as_str()),
            (200, "final")
        );
        let mut response = get(&client, &endpoint, "/get").await;
        assert_eq!(body_of(&mut response).await, "body");
        assert_eq!(server.accepted(), 1);
    });
}

#[test]
fn body_until_close_is_read_and_not_pooled() {
    run(|| async {
        let server = Server::start(|mut peer| {
            if peer.request().is_some() {
                peer.send(b"HTTP/1.1 200 OK\r\n\r\nuntil the end");
            }
        });
        let client = client(config());
        let endpoint = server.endpoint();
        let mut response = get(&client, &endpoint, "/").await;
        assert_eq!(body_of(&mut response).await, "until the end");
        assert_eq!(client.idle_connections(&endpoint), 0);
    });
}

// ---- stale connections ----------------------------------------------------------

/// Serves every request of connections after the first with `"{length} bytes"`.
fn count_bytes(mut peer: Peer) {
    while let Some(request) = peer.request() {
        let reply = format!("{} bytes", request.body.len());
        peer.send(&ok(&reply));
    }
}

/// Answers the first request of connection 0 with keep-alive, then closes it unanswered
/// once the next request has begun to arrive: a server whose idle timeout ran out as
/// that request was on its way, after the client found the idle connection open.
/// Every later connection is served normally.
fn closes_idle_server() -> Server {
    Server::start(|mut peer| {
        if peer.connection == 0 {
            if peer.request().is_some() {
                peer.send(&ok("first"));
                peer.receive();
            }
            return;
        }
        count_bytes(peer);
    })
}

/// Streams a PUT of `length` pattern bytes in 64 KiB pieces, which must succeed with
/// the answer of `count_bytes`.
async fn stream_a_put(client: &Client, endpoint: &Endpoint, length: usize) {
    let mut upload = client
        .upload(endpoint, Request::new("PUT", "/b/k"), length as u64)
        .await
        .unwrap();
    for piece in pattern(length).chunks(64 * 1024) {
        let (result, _) = upload.write(piece.to_vec()).await;
        result.unwrap();
    }
    let mut response = upload.finish().await.unwrap();
    assert_eq!(body_of(&mut response).await, format!("{length} bytes"));
}

#[test]
fn an_idle_connection_its_server_closed_is_not_used() {
    run(|| async {
        let (closed, on_close) = std::sync::mpsc::channel();
        let closed = Mutex::new(closed);
        let server = Server::start(move |mut peer| {
            if peer.connection != 0 {
                return count_bytes(peer);
            }
            if peer.request().is_some() {
                peer.send(&ok("first"));
            }
            // Closed while idle, as a restarted server closes its connections.
            drop(peer);
            let _ = closed.lock().unwrap().send(());
        });
        let client = client(config());
        let endpoint = server.endpoint();
        let mut first = get(&client, &endpoint, "/first").await;
        assert_eq!(body_of(&mut first).await, "first");
        assert_eq!(client.idle_connections(&endpoint), 1);
        on_close.recv().unwrap();
        // A streamed body, which could not be sent again, goes on a new connection.
        let length = 1024 * 1024;
        stream_a_put(&client, &endpoint, length).await;
        // requests, retries, opened, reused, stale
        assert_eq!(counters(&client), [2, 0, 2, 0, 1]);
    });
}

#[test]
fn stale_connection_is_replayed_for_a_buffered_body() {
    run(|| async {
        let server = closes_idle_server();
        let client = client(config());
        let endpoint = server.endpoint();
        let mut first = get(&client, &endpoint, "/first").await;
        assert_eq!(body_of(&mut first).await, "first");
        assert_eq!(client.idle_connections(&endpoint), 1);
        // A POST: not idempotent, and still resent, as the server never saw it.
        let post = Request::new("POST", "/b/k?uploads").with_body(pattern(100_000));
        let mut response = client.send(&endpoint, post).await.expect("replayed");
        assert_eq!(body_of(&mut response).await, "100000 bytes");
        assert_eq!(server.accepted(), 2);
        // requests, retries, opened, reused, stale
        assert_eq!(counters(&client), [2, 1, 2, 1, 1]);
        let received = server.received();
        assert_eq!(received.len(), 2, "connection 0 never answered the POST");
        assert_eq!(
            (received[1].connection, received[1].method.as_str()),
            (1, "POST")
        );
        assert!(
            received[1].body == pattern(100_000),
            "the body replayed intact"
        );
    });
}

#[test]
fn stale_connection_is_not_replayed_for_a_streamed_body() {
    run(|| async {
        let server = closes_idle_server();
        let client = client(config());
        let endpoint = server.endpoint();
        let mut first = get(&client, &endpoint, "/first").await;
        body_of(&mut first).await;
        let length = 1024 * 1024;
        let mut upload = client
            .upload(&endpoint, Request::new("PUT", "/b/k"), length as u64)
            .await
            .expect("the head is written on the pooled connection");
        let mut error = None;
        for piece in pattern(length).chunks(64 * 1024) {
            let (result, _) = upload.write(piece.to_vec()).await;
            if let Err(e) = result {
                error = Some(e);
                break;
            }
        }
        let error = match error {
            Some(error) => error,
            None => upload.finish().await.expect_err("the server had closed"),
        };
        assert!(matches!(error, UpstreamError::Stale { .. }), "{error:?}");
        assert!(error.is_retryable());
        assert!(error.to_string().contains(&endpoint.origin().to_string()));
        assert_eq!(
            client.counters().connections_opened.get(),
            1,
            "no second connection"
        );
        assert_eq!(server.received().len(), 1);

        // The caller acts on it: streams the body again, on a fresh connection.
        stream_a_put(&client, &endpoint, length).await;
        assert_eq!(server.accepted(), 2);
        assert!(server.received()[1].body == pattern(length));
    });
}

// ---- streamed uploads -----------------------------------------------------------

#[test]
fn upload_streams_a_body_of_known_length() {
    run(|| async {
        let server = Server::start(|mut peer| {
            while let Some(request) = peer.request() {
                let sum: u64 = request.body.iter().map(|b| u64::from(*b)).sum();
                peer.send(&ok(&format!("{} {sum}", request.body.len())));
            }
        });
        let client = client(config());
        let endpoint = server.endpoint();
        let data = pattern(3 * 1024 * 1024 + 5);
        let request =
            Request::new("PUT", "/b/big").header("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
        let mut upload = client
            .upload(&endpoint, request, data.len() as u64)
            .await
            .unwrap();
        let mut buf = Vec::with_capacity(64 * 1024);
        for piece in data.chunks(64 * 1024) {
            buf.clear();
            buf.extend_from_slice(piece);
            let (result, returned) = upload.write(buf).await;
            buf = returned;
            result.unwrap();
        }
        assert_eq!(upload.remaining(), 0);
        let mut response = upload.finish().await.unwrap();
        let sum: u64 = data.iter().map(|b| u64::from(*b)).sum();
        assert_eq!(
            body_of(&mut response).await,
            format!("{} {sum}", data.len())
        );
        let received = &server.received()[0];
        assert_eq!(
            received.header("content-length"),
            Some(data.len().to_string().as_str())
        );
        assert_eq!(received.header("transfer-encoding"), None);

        // Too many bytes are refused before any is written; too few, at finish.
        let mut upload = client
            .upload(&endpoint, Request::new("PUT", "/b/k"), 4)
            .await
            .unwrap();
        let (result, _) = upload.write(b"12345".to_vec()).await;
        assert!(matches!(result, Err(UpstreamError::InvalidRequest { .. })));
        let (result, _) = upload.write(b"123".to_vec()).await;
        result.unwrap();
        let error = upload.finish().await.unwrap_err();
        assert!(
            matches!(error, UpstreamError::InvalidRequest { .. }),
            "{error:?}"
        );
        let with_body = Request::new("PUT", "/b/k").with_body(b"x".to_vec());
        assert!(client.upload(&endpoint, with_body, 1).await.is_err());
    });
}

#[test]
fn invalid_requests_are_not_sent() {
    run(|| async {
        let server = numbering_server();
        let client = client(config());
        let endpoint = server.endpoint();
        let injected = Request::new("GET", "/").header("x-meta", "a\r\nx-evil: 1");
        match client.send(&endpoint, injected).await {
            Err(UpstreamError::InvalidRequest { .. }) => {}
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
        assert_eq!(server.accepted(), 0);
        assert_eq!(client.counters().connections_opened.get(), 0);
    });
}

// ---- timeouts -------------------------------------------------------------------

#[test]
fn first_byte_timeout_fires_and_idempotent_requests_retry() {
    run(|| async {
        let server = Server::start(|mut peer| {
            if peer.request().is_some() {
                peer.wait_for_close();
            }
        });
        let config = ClientConfig {
            first_byte_timeout: Duration::from_millis(300),
            ..config()
        };
        let client = client(config);
        let endpoint = server.endpoint();
        let error = client
            .send(&endpoint, Request::new("GET", "/silent"))
            .await
            .expect_err("no answer");
        match &error {
            UpstreamError::Timeout {
                phase: Phase::FirstByte,
                after,
                ..
            } => assert_eq!(*after, Duration::from_millis(300)),
            other => panic!("expected a first-byte timeout, got {other:?}"),
        }
        assert!(error.is_retryable());
        assert_eq!(server.accepted(), 3, "max_attempts = 3");
        assert_eq!(client.counters().retries.get(), 2);
        // A POST may have been acted on: not retried.
        let post = Request::new("POST", "/silent").with_body(b"x".to_vec());
        let error = client.send(&endpoint, post).await.unwrap_err();
        assert!(matches!(
            error,
            UpstreamError::Timeout {
                phase: Phase::FirstByte,
                ..
            }
        ));
        assert_eq!(server.accepted(), 4);
    });
}

#[test]
fn stall_in_the_middle_of_a_body_times_out() {
    run(|| async {
        let server = Server::start(|mut peer| {
            if peer.request().is_some() {
                peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
                peer.wait_for_close();
            }
        });
        let config = ClientConfig {
            stall_timeout: Duration::from_millis(300),
            ..config()
        };
        let client = client(config);
        let endpoint = server.endpoint();
        let mut response = get(&client, &endpoint, "/stalls").await;
        let mut body = Vec::new();
        let error = loop {
            let (result, returned) = response.read(Vec::with_capacity(64)).await;
            match result {
                Ok(0) => panic!("the body cannot end early"),
                Ok(_) => body.extend_from_slice(&returned),
                Err(error) => break error,
            }
        };
        assert_eq!(body, b"0123456789");
        assert!(
            matches!(
                error,
                UpstreamError::Timeout {
                    phase: Phase::Receive,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(!error.is_retryable(), "part of the answer was read");
        let (again, _) = response.read(Vec::with_capacity(64)).await;
        assert!(again.is_err(), "an abandoned body stays abandoned");
        assert_eq!(client.idle_connections(&endpoint), 0);
    });
}

// ---- retries --------------------------------------------------------------------

#[test]
fn server_errors_are_retried_with_backoff() {
    run(|| async {
        let server = Server::start(|mut peer| {
            while let Some(request) = peer.request() {
                if request.target == "/flaky" && request.number < 2 {
                    let xml = b"<Error><Code>SlowDown</Code></Error>";
                    peer.send(&answer("503 Service Unavailable", "", xml));
                } else if request.target == "/down" {
                    peer.send(&answer("500 Internal Server Error", "", b"no"));
                } else {
                    peer.send(&ok("fine"));
                }
            }
        });
        let client = client(config());
        let endpoint = server.endpoint();
        let mut response = get(&client, &endpoint, "/flaky").await;
        assert_eq!(
            (response.status(), body_of(&mut response).await.as_str()),
            (200, "fine")
        );
        assert_eq!(client.counters().retries.get(), 2);
        assert_eq!(
            server.accepted(),
            1,
            "the error bodies were drained, the connection kept"
        );
        // Attempts run out: the last answer is the caller's.
        let mut response = get(&client, &endpoint, "/down").await;
        assert_eq!(
            (response.status(), body_of(&mut response).await.as_str()),
            (500, "no")
        );
        assert_eq!(server.received().len(), 6);
        // Not idempotent: the 500 is returned at once.
        let post = Request::new("POST", "/down");
        let response = client.send(&endpoint, post).await.unwrap();
        assert_eq!(response.status(), 500);
        assert_eq!(server.received().len(), 7);
        assert_eq!(client.counters().retries.get(), 4);
    });
}

#[test]
fn retry_after_is_honoured() {
    run(|| async {
        let server = Server::start(|mut peer| {
            while let Some(request) = peer.request() {
                if request.number == 0 {
                    peer.send(&answer("429 Too Many Requests", "Retry-After: 1\r\n", b""));
                } else {
                    peer.send(&ok("later"));
                }
            }
        });
        let config = ClientConfig {
            retry: RetryPolicy {
                max_attempts: 2,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_secs(5),
            },
            ..config()
        };
        let client = client(config);
        let began = Instant::now();
        let mut response = get(&client, &server.endpoint(), "/").await;
        assert_eq!(body_of(&mut response).await, "later");
        assert!(
            began.elapsed() >= Duration::from_secs(1),
            "waited as Retry-After said, not the 1 ms backoff"
        );
    });
}

#[test]
fn connect_errors_are_retried_then_reported() {
    run(|| async {
        // A port that was just free: nothing listens there.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let endpoint = Endpoint::parse(&format!("http://{addr}/base")).unwrap();
        let client = client(config());
        let error = client
            .send(&endpoint, Request::new("POST", "/base/x"))
            .await
            .unwrap_err();
        assert!(matches!(error, UpstreamError::Connect { .. }), "{error:?}");
        assert!(error.is_retryable());
        assert!(
            error
                .to_string()
                .starts_with(&format!("upstream http://{addr}: cannot connect")),
            "{error}"
        );
        assert_eq!(
            client.counters().retries.get(),
            2,
            "nothing was sent: retried even for a POST"
        );
        assert_eq!(client.counters().connections_opened.get(), 0);
    });
}

#[test]
fn host_names_are_resolved_off_the_core() {
    // Only a name /etc/hosts answers: no test query leaves the machine.
    run(|| async {
        let server = numbering_server();
        // localhost may resolve to ::1 first, where nothing listens: the next address
        // is tried.
        let endpoint =
            Endpoint::parse(&format!("http://localhost:{}", server.addr.port())).unwrap();
        let mut response = get(&client(config()), &endpoint, "/").await;
        assert_eq!(body_of(&mut response).await, "0");
        let host = format!("localhost:{}", server.addr.port());
        assert_eq!(server.received()[0].header("host"), Some(host.as_str()));
    });
}

// ---- malformed answers ----------------------------------------------------------

#[test]
fn malformed_answers_are_protocol_errors() {
    run(|| async {
        let server = Server::start(|mut peer| {
            let Some(request) = peer.request() else {
                return;
            };
            match request.target.as_str() {
                "/bad-status" => peer.send(b"HTTP/1.1 abc OK\r\n\r\n"),
                "/not-http" => peer.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
                "/huge-head" => {
                    let filler = "a".repeat(70 * 1024);
                    peer.send(format!("HTTP/1.1 200 OK\r\nx-filler: {filler}\r\n\r\n").as_bytes());
                }
                "/many-headers" => {
                    let many: String = (0..200).map(|i| format!("h{i}: v\r\n")).collect();
                    peer.send(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_bytes());
                }
                "/bad-length" => peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n"),
                _ => peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            }
            peer.wait_for_close();
        });
        let client = client(config());
        let endpoint = server.endpoint();
        for target in [
            "/bad-status",
            "/not-http",
            "/huge-head",
            "/many-headers",
            "/bad-length",
        ] {
            match client.send(&endpoint, Request::new("GET", target)).await {
                Err(error @ UpstreamError::Protocol { .. }) => {
                    assert!(!error.is_retryable());
                    assert!(error.to_string().contains("malformed answer"), "{error}");
                }
                other => panic!("{target}: expected a protocol error, got {other:?}"),
            }
        }
        let mut response = get(&client, &endpoint, "/bad-chunk").await;
        let error = response.read_to_end(100).await.unwrap_err();
        assert!(matches!(error, UpstreamError::Protocol { .. }), "{error:?}");
        assert_eq!(server.accepted(), 6, "protocol errors are not retried");
    });
}

// ---- TLS ------------------------------------------------------------------------

struct TestDir(PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "bleepstore-upstream-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `openssl` with `command`'s words as its arguments, in `dir`.
fn openssl(dir: &Path, command: &str) {
    let args: Vec<&str> = command.split_whitespace().collect();
    let output = std::process::Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .expect("the TLS tests need the openssl command");
    assert!(
        output.status.success(),
        "openssl {command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (rustls refuses a self-signed certificate used as the server's own), two
/// leaves it signs, one for 127.0.0.1 and one for another name, and an unrelated CA.
struct Pki {
    dir: TestDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = TestDir::new("pki");
        let p256 = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        for ca in ["ca", "other-ca"] {
            openssl(
                &dir.0,
                &format!(
                    "req -x509 {p256} -keyout {ca}.key -out {ca}.pem -days 2 \
                     -subj /CN=upstream-test-{ca} -addext basicConstraints=critical,CA:TRUE \
                     -addext keyUsage=critical,keyCertSign"
                ),
            );
        }
        for (leaf, serial, names) in [
            ("leaf", 2, "IP:127.0.0.1"),
            ("wrong", 3, "DNS:other.example"),
        ] {
            openssl(
                &dir.0,
                &format!("req {p256} -keyout {leaf}.key -out {leaf}.csr -subj /CN={leaf}"),
            );
            let ext = format!(
                "subjectAltName={names}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            );
            std::fs::write(dir.0.join(format!("{leaf}.ext")), ext).unwrap();
            openssl(
                &dir.0,
                &format!(
                    "x509 -req -in {leaf}.csr -CA ca.pem -CAkey ca.key -set_serial {serial} \
                     -days 2 -extfile {leaf}.ext -out {leaf}.pem"
                ),
            );
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    fn server(&self, leaf: &str) -> Arc<ServerConfig> {
        let certificate = Certificate::load(
            &self.path(&format!("{leaf}.pem")),
            &self.path(&format!("{leaf}.key")),
        )
        .unwrap();
        server_config(Arc::new(certificate)).unwrap()
    }

    fn client(&self, ca: &str) -> Client {
        let tls = TlsConfig::new(Some(&self.path(ca))).unwrap();
        Client::new(config(), tls)
    }
}

#[test]
fn https_with_a_test_ca() {
    let pki = Pki::new();
    let good = pki.server("leaf");
    let wrong_name = pki.server("wrong");
    run(|| async {
        let big = pattern(300 * 1024);
        let served = big.clone();
        let server = Server::start_tls(good.clone(), move |mut peer| {
            while let Some(request) = peer.request() {
                match request.target.as_str() {
                    "/big" => peer.send(&answer("200 OK", "", &served)),
                    _ => peer.send(&ok(&format!("{} bytes", request.body.len()))),
                }
            }
        });
        let client = pki.client("ca.pem");
        let endpoint = server.https_endpoint();
        let mut response = get(&client, &endpoint, "/small").await;
        assert_eq!(body_of(&mut response).await, "0 bytes");
        let mut response = get(&client, &endpoint, "/big").await;
        assert!(response.read_to_end(1 << 20).await.unwrap() == big);
        let put = Request::new("PUT", "/b/k").with_body(pattern(200 * 1024));
        let mut response = client.send(&endpoint, put).await.unwrap();
        assert_eq!(body_of(&mut response).await, "204800 bytes");
        assert_eq!(server.accepted(), 1, "keep-alive over TLS");

        let stranger = pki.client("other-ca.pem");
        match stranger.send(&endpoint, Request::new("GET", "/")).await {
            Err(error @ UpstreamError::Tls { .. }) => {
                assert!(!error.is_retryable());
                assert!(error.to_string().contains("certificate"), "{error}");
            }
            other => panic!("expected a TLS error for an unknown CA, got {other:?}"),
        }
        let mismatched = Server::start_tls(wrong_name.clone(), |mut peer| {
            while peer.request().is_some() {
                peer.send(&ok("should not be reached"));
            }
        });
        match client
            .send(&mismatched.https_endpoint(), Request::new("GET", "/"))
            .await
        {
            Err(UpstreamError::Tls { source, .. }) => {
                assert!(
                    format!("{source:?}").contains("NotValidForName"),
                    "{source:?}"
                );
            }
            other => panic!("expected a TLS error for a name mismatch, got {other:?}"),
        }
        assert!(mismatched.received().is_empty());
        assert_eq!(
            stranger.counters().retries.get(),
            0,
            "a refused handshake is final"
        );
    });
    assert!(TlsConfig::new(Some(&pki.path("missing.pem"))).is_err());
    assert!(
        TlsConfig::new(Some(&pki.path("leaf.ext"))).is_err(),
        "no CERTIFICATE block"
    );
}
