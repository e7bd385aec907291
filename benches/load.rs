//! A SigV4-signing load generator for a running daemon: N keep-alive
//! connections, each on its own thread, doing PUT and/or GET of objects of one
//! size for a fixed time. Prints ops/s, MB/s, p50/p99 latency, and with --pid the
//! daemon's peak RSS and the CPU seconds it spent during the timed run (from /proc).
//!
//! cargo bench --bench load -- --endpoint 127.0.0.1:9000 --conns 64 --size 4096 --op put --seconds 10
//!
//! With `--tls-ca FILE` it speaks HTTPS (rustls), trusting the CA in FILE.
//! `--payload signed` signs each body's SHA-256 (computed once, before the run) instead
//! of `UNSIGNED-PAYLOAD`; `--no-seed` skips creating the bucket and the objects a GET
//! run reads (they exist already, or the endpoint is no S3 server).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bleepstore::auth::client::{sign_request, ClientCredentials};
use bleepstore::clock;
use sha2::{Digest, Sha256};

struct Args {
    endpoint: String,
    conns: usize,
    size: usize,
    op: String,
    seconds: u64,
    bucket: String,
    pid: Option<u32>,
    access_key: String,
    secret_key: String,
    keys: usize,
    /// Sign bodies with their SHA-256 rather than UNSIGNED-PAYLOAD.
    signed_payload: bool,
    /// Create neither the bucket nor the objects a GET run reads.
    no_seed: bool,
    /// HTTPS, trusting this PEM CA.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// The client side of TLS, trusting the certificates in `ca_file`.
fn tls_config(ca_file: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca_file).expect("--tls-ca") {
        roots
            .add(cert.expect("CA certificate"))
            .expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A connection's byte stream.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

fn parse_args() -> Args {
    let mut args = Args {
        endpoint: "127.0.0.1:9000".into(),
        conns: 1,
        size: 4096,
        op: "put".into(),
        seconds: 10,
        bucket: "bench".into(),
        pid: None,
        access_key: "bleepstore".into(),
        secret_key: "bleepstore-secret".into(),
        keys: 64,
        signed_payload: false,
        no_seed: false,
        tls: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => args.endpoint = value(),
            "--conns" => args.conns = value().parse().expect("--conns"),
            "--size" => args.size = value().parse().expect("--size"),
            "--op" => args.op = value(),
            "--seconds" => args.seconds = value().parse().expect("--seconds"),
            "--bucket" => args.bucket = value(),
            "--pid" => args.pid = Some(value().parse().expect("--pid")),
            "--access-key" => args.access_key = value(),
            "--secret-key" => args.secret_key = value(),
            "--keys" => args.keys = value().parse().expect("--keys"),
            "--tls-ca" => args.tls = Some(tls_config(&value())),
            "--payload" => {
                args.signed_payload = match value().as_str() {
                    "signed" => true,
                    "unsigned" => false,
                    other => panic!("--payload: expected signed or unsigned, got {other}"),
                }
            }
            "--no-seed" => args.no_seed = true,
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    args
}

/// One keep-alive connection that sends signed requests and reads whole responses.
struct Client {
    conn: BufReader<Conn>,
    host: String,
    creds: ClientCredentials,
}

impl Client {
    fn connect(args: &Args) -> Client {
        let stream = TcpStream::connect(&args.endpoint).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let conn = match &args.tls {
            None => Conn::Plain(stream),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
                let session =
                    rustls::ClientConnection::new(config.clone(), name).expect("TLS session");
                Conn::Tls(Box::new(rustls::StreamOwned::new(session, stream)))
            }
        };
        Client {
            conn: BufReader::with_capacity(1 << 20, conn),
            host: args.endpoint.clone(),
            creds: ClientCredentials {
                access_key: args.access_key.clone(),
                secret_key: args.secret_key.clone(),
                region: "us-east-1".into(),
            },
        }
    }

    /// Sends one request signed with UNSIGNED-PAYLOAD; returns the status and the number
    /// of body bytes read.
    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, usize) {
        self.request_hashed(method, path, body, "UNSIGNED-PAYLOAD")
    }

    /// Sends one request whose payload hash is `payload` (hex SHA-256 or UNSIGNED-PAYLOAD).
    fn request_hashed(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        payload: &str,
    ) -> (u16, usize) {
        let headers = vec![("host".to_string(), self.host.clone())];
        let signed = sign_request(
            &self.creds,
            method,
            path,
            "",
            &headers,
            payload,
            clock::now_unix(),
        );
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        for (name, value) in signed.iter().filter(|(n, _)| n != "host") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let writer = self.conn.get_mut();
        writer.write_all(head.as_bytes()).expect("write head");
        writer.write_all(body).expect("write body");
        writer.flush().expect("flush");
        self.read_response(method == "HEAD")
    }

    fn read_response(&mut self, head_only: bool) -> (u16, usize) {
        let mut line = String::new();
        self.conn.read_line(&mut line).expect("status line");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        let mut length = 0usize;
        loop {
            line.clear();
            self.conn.read_line(&mut line).expect("header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("content-length");
                }
            }
        }
        if head_only || status == 204 || status == 304 {
            return (status, 0);
        }
        let mut remaining = length;
        let mut sink = vec![0u8; 1 << 20];
        while remaining > 0 {
            let want = remaining.min(sink.len());
            self.conn.read_exact(&mut sink[..want]).expect("body");
            remaining -= want;
        }
        (status, length)
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU seconds of the process so far (all its threads), from /proc.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Counted from the state field (3): utime is field 14, stime 15, in clock ticks.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    #[allow(unsafe_code)]
    // SAFETY: sysconf reads a constant of the system; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some((utime + stime) / if ticks > 0 { ticks as f64 } else { 100.0 })
}

fn main() {
    let args = Arc::new(parse_args());
    let body: Arc<Vec<u8>> = Arc::new((0..args.size).map(|i| (i * 31 % 251) as u8).collect());
    let payload: Arc<String> = Arc::new(if args.signed_payload {
        Sha256::digest(&body[..])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    } else {
        "UNSIGNED-PAYLOAD".into()
    });
    let mut setup = Client::connect(&args);
    if !args.no_seed {
        let (status, _) = setup.request("PUT", &format!("/{}", args.bucket), b"");
        assert!(status == 200 || status == 409, "create bucket: {status}");
    }
    if args.op != "put" && !args.no_seed {
        for k in 0..args.keys {
            let (status, _) = setup.request("PUT", &format!("/{}/obj-{k}", args.bucket), &body);
            assert_eq!(status, 200, "seed object");
        }
    }
    drop(setup);
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = args.pid.and_then(cpu_seconds);
    let started = Instant::now();
    let mut peak_rss = 0;
    let workers: Vec<_> = (0..args.conns)
        .map(|worker| {
            let (args, body, stop) = (args.clone(), body.clone(), stop.clone());
            let payload = payload.clone();
            std::thread::spawn(move || {
                let mut client = Client::connect(&args);
                let mut latencies = Vec::new();
                let mut bytes = 0u64;
                let mut errors = 0u64;
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let put = match args.op.as_str() {
                        "put" => true,
                        "get" => false,
                        _ => i.is_multiple_of(2),
                    };
                    let key = format!("/{}/obj-{}", args.bucket, (worker * 7919 + i) % args.keys);
                    let t = Instant::now();
                    let (status, n) = if put {
                        client.request_hashed("PUT", &key, &body, &payload)
                    } else {
                        client.request("GET", &key, b"")
                    };
                    latencies.push(t.elapsed());
                    if status != 200 {
                        errors += 1;
                    }
                    bytes += if put { body.len() as u64 } else { n as u64 };
                    i += 1;
                }
                (latencies, bytes, errors)
            })
        })
        .collect();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        std::thread::sleep(Duration::from_millis(200));
        if let Some(rss) = args.pid.and_then(rss_kib) {
            peak_rss = peak_rss.max(rss);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let (mut bytes, mut errors) = (0u64, 0u64);
    for worker in workers {
        let (l, b, e) = worker.join().expect("worker");
        latencies.extend(l);
        bytes += b;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, args.pid.and_then(cpu_seconds)) {
        (Some(before), Some(after)) => format!("{:.2}", after - before),
        _ => "n/a".into(),
    };
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "op={} size={} conns={} ops={} errors={} ops/s={:.0} MB/s={:.1} p50={:.2}ms p99={:.2}ms peak_rss={} \
         payload={} bytes={bytes} secs={elapsed:.3} daemon_cpu_s={cpu}",
        args.op,
        args.size,
        args.conns,
        latencies.len(),
        errors,
        latencies.len() as f64 / elapsed,
        bytes as f64 / elapsed / 1e6,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        args.pid.map_or("n/a".to_string(), |_| format!("{}MiB", peak_rss / 1024)),
        if args.signed_payload { "signed" } else { "unsigned" },
    );
}
