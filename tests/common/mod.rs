//! Starts the real `bleepstore` binary on a free loopback port with a temp data
//! dir, and kills it when dropped. Shared by the integration tests.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bleepstore::auth::client::{sign_request, ClientCredentials};
use bleepstore::clock;

pub(crate) struct Daemon {
    pub(crate) port: u16,
    pub(crate) data_dir: PathBuf,
    child: Child,
}

impl Daemon {
    pub(crate) fn start() -> Daemon {
        Daemon::start_with(&[])
    }

    /// A daemon with extra flags.
    pub(crate) fn start_with(extra: &[&str]) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data_dir =
            std::env::temp_dir().join(format!("bleepstore-it-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let child = Command::new(env!("CARGO_BIN_EXE_bleepstore"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--threads",
                "2",
                "--log-level",
                "warn",
            ])
            .args(extra)
            .arg("--data-dir")
            .arg(&data_dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(format!("{}.log", data_dir.display())).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon {
            port,
            data_dir,
            child,
        }
    }

    pub(crate) fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap_or_else(|e| {
            let log = std::fs::read_to_string(format!("{}.log", self.data_dir.display()));
            panic!("connect to port {}: {e}; daemon log: {log:?}", self.port)
        });
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A signed request head (UNSIGNED-PAYLOAD) with the given extra header lines.
    pub(crate) fn signed_head(&self, method: &str, path: &str, extra: &[(&str, &str)]) -> String {
        let creds = ClientCredentials {
            access_key: "bleepstore".into(),
            secret_key: "bleepstore-secret".into(),
            region: "us-east-1".into(),
        };
        let mut headers = vec![("host".to_string(), self.host())];
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        let signed = sign_request(
            &creds,
            method,
            path,
            "",
            &headers,
            "UNSIGNED-PAYLOAD",
            clock::now_unix(),
        );
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        for (name, value) in headers.iter().chain(signed.iter()) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head
    }

    /// Sends bytes on a new connection and reads the one response they ask for.
    pub(crate) fn exchange(&self, bytes: &[u8]) -> String {
        self.exchange_all(bytes, 1)
    }

    /// Sends bytes (`count` pipelined requests) on a new connection and reads
    /// `count` responses, in order.
    pub(crate) fn exchange_all(&self, bytes: &[u8], count: usize) -> String {
        let mut stream = self.connect();
        stream.write_all(bytes).unwrap();
        let mut out = String::new();
        let mut requests = String::from_utf8_lossy(bytes).into_owned();
        // Bytes read past one response belong to the next.
        let mut pending = Vec::new();
        for _ in 0..count {
            let head_request = requests.starts_with("HEAD ");
            out.push_str(&read_next(&mut stream, &mut pending, head_request));
            // The next request line, for whether its answer has a body.
            requests = requests
                .split_once("\r\n\r\n")
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_default();
        }
        out
    }

    /// Proves the daemon still serves: a fresh request gets a well-formed answer.
    pub(crate) fn assert_alive(&self) {
        let response = self.exchange(self.signed_head("GET", "/", &[]).as_bytes());
        assert!(
            response.starts_with("HTTP/1.1 200 OK"),
            "daemon stopped serving: {response}"
        );
    }
}

/// Reads one response: its head, then exactly the body its Content-Length announces
/// (none for a 1xx, a 204 or 304, or the answer to a HEAD). A response without a
/// length is read to the end of the stream. Empty when the server closed first.
pub(crate) fn read_response(stream: &mut TcpStream, head_request: bool) -> String {
    let mut pending = Vec::new();
    let response = read_next(stream, &mut pending, head_request);
    assert!(pending.is_empty(), "bytes after the response: {pending:?}");
    response
}

/// `read_response` on a stream whose bytes already read but not yet used are in
/// `pending`; what is read past this response is left there.
fn read_next(stream: &mut TcpStream, pending: &mut Vec<u8>, head_request: bool) -> String {
    // Long enough for the answers that come only when a client-side limit runs out.
    stream
        .set_read_timeout(Some(Duration::from_secs(45)))
        .unwrap();
    let mut data = std::mem::take(pending);
    let mut buf = [0u8; 65536];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&data).into_owned(),
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length = head.lines().find_map(|line| {
        line.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    let no_body = head_request || status < 200 || status == 204 || status == 304;
    let want = if no_body { Some(0) } else { length };
    loop {
        let body = data.len() - head_end;
        if let Some(w) = want.filter(|w| body >= *w) {
            *pending = data.split_off(head_end + w);
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
