//! What the bench binaries `ceiling` and `mixed` share: a blocking keep-alive HTTP/1.1
//! client that signs every request with SigV4 through `bleepstore::auth::client`, a
//! small PRNG, size parsing and /proc readings of the daemon. Not a bench target itself
//! (cargo only finds `benches/*.rs` and `benches/*/main.rs`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use bleepstore::auth::client::{sign_request, ClientCredentials};
use bleepstore::clock;
use sha2::Digest;

/// The payload hash a request is signed with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Payload {
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD`.
    Unsigned,
    /// The body's SHA-256, which the daemon must check.
    Signed,
}

impl Payload {
    pub(crate) fn parse(text: &str) -> Payload {
        match text {
            "unsigned" => Payload::Unsigned,
            "signed" => Payload::Signed,
            other => panic!("--payload: expected signed or unsigned, got {other}"),
        }
    }
}

/// The hex SHA-256 of `data`, as `x-amz-content-sha256` carries it.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One keep-alive connection that sends signed requests and reads whole responses.
pub(crate) struct Client {
    conn: BufReader<TcpStream>,
    host: String,
    creds: ClientCredentials,
    sink: Vec<u8>,
    line: String,
}

impl Client {
    /// Connects to `endpoint` (host:port); `buffer` is the read buffer's size.
    pub(crate) fn connect(endpoint: &str, access: &str, secret: &str, buffer: usize) -> Client {
        let stream = TcpStream::connect(endpoint).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            conn: BufReader::with_capacity(buffer, stream),
            host: endpoint.to_string(),
            creds: ClientCredentials {
                access_key: access.to_string(),
                secret_key: secret.to_string(),
                region: "us-east-1".into(),
            },
            sink: vec![0u8; buffer.max(4096)],
            line: String::new(),
        }
    }

    /// Sends one request whose body hashes to `sha256` (None: UNSIGNED-PAYLOAD); returns
    /// the status and the number of body bytes read.
    pub(crate) fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        sha256: Option<&str>,
    ) -> std::io::Result<(u16, usize)> {
        let headers = vec![("host".to_string(), self.host.clone())];
        let signed = sign_request(
            &self.creds,
            method,
            path,
            "",
            &headers,
            sha256.unwrap_or("UNSIGNED-PAYLOAD"),
            clock::now_unix(),
        );
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if !body.is_empty() || method == "PUT" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (name, value) in signed.iter().filter(|(n, _)| n != "host") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let writer = self.conn.get_mut();
        writer.write_all(head.as_bytes())?;
        writer.write_all(body)?;
        writer.flush()?;
        self.read_response(method == "HEAD")
    }

    /// Sends a request head as given (a presigned path, say) with no body.
    pub(crate) fn raw_get(&mut self, path_and_query: &str) -> std::io::Result<(u16, usize)> {
        let head = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.host
        );
        self.conn.get_mut().write_all(head.as_bytes())?;
        self.read_response(false)
    }

    fn read_response(&mut self, head_only: bool) -> std::io::Result<(u16, usize)> {
        let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed");
        self.line.clear();
        if self.conn.read_line(&mut self.line)? == 0 {
            return Err(eof());
        }
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("status line {:?}", self.line)))?;
        let mut length = 0usize;
        loop {
            self.line.clear();
            if self.conn.read_line(&mut self.line)? == 0 {
                return Err(eof());
            }
            if self.line == "\r\n" {
                break;
            }
            if let Some((name, value)) = self.line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(std::io::Error::other)?;
                }
            }
        }
        if head_only || status == 204 || status == 304 {
            return Ok((status, 0));
        }
        let mut remaining = length;
        while remaining > 0 {
            let want = remaining.min(self.sink.len());
            self.conn.read_exact(&mut self.sink[..want])?;
            remaining -= want;
        }
        Ok((status, length))
    }
}

/// xorshift64*: enough randomness for picking keys and sizes, with no dependency.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
}

/// `4096`, `4KiB`, `64KB`, `1MiB`, `1GiB`, `2M`...: a byte count.
pub(crate) fn parse_size(text: &str) -> usize {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().unwrap_or_else(|_| panic!("size {text:?}"));
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "m" | "mib" => 1024.0 * 1024.0,
        "mb" => 1e6,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "gb" => 1e9,
        other => panic!("size unit {other:?} in {text:?}"),
    };
    (number * scale) as usize
}

/// A size for humans: `4KiB`, `1MiB`, `1000B`.
pub(crate) fn format_size(bytes: usize) -> String {
    for (unit, scale) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= scale && bytes.is_multiple_of(scale) {
            return format!("{}{unit}", bytes / scale);
        }
    }
    format!("{bytes}B")
}

/// The process's user + system CPU seconds so far (all threads), from /proc/PID/stat.
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the comm field: state is field 3, utime field 14, stime field 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

fn clock_ticks() -> f64 {
    #[allow(unsafe_code)]
    // SAFETY: sysconf reads a constant of the system; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// A `VmRSS:`/`VmHWM:` style line of /proc/PID/status, in KiB.
pub(crate) fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
