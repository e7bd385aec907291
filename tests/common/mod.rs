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

pub struct Daemon {
    pub port: u16,
    pub data_dir: PathBuf,
    child: Child,
}

impl Daemon {
    pub fn start() -> Daemon {
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
            .arg("--data-dir")
            .arg(&data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
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

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A signed request head (UNSIGNED-PAYLOAD) with the given extra header lines.
    pub fn signed_head(&self, method: &str, path: &str, extra: &[(&str, &str)]) -> String {
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

    /// Sends bytes on a new connection and reads until the server closes or goes quiet.
    pub fn exchange(&self, bytes: &[u8]) -> String {
        let mut stream = self.connect();
        stream.write_all(bytes).unwrap();
        read_available(&mut stream)
    }

    /// Proves the daemon still serves: a fresh request gets a well-formed answer.
    pub fn assert_alive(&self) {
        let response = self.exchange(self.signed_head("GET", "/", &[]).as_bytes());
        assert!(
            response.starts_with("HTTP/1.1 200 OK"),
            "daemon stopped serving: {response}"
        );
    }
}

/// Reads whatever arrives until EOF, waiting up to 10 s for the first byte (a loaded
/// machine may be slow to answer) and then until a 1.5 s pause.
pub fn read_available(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                stream
                    .set_read_timeout(Some(Duration::from_millis(1500)))
                    .unwrap();
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
