//! The helpers of `scripts/bench_ceiling.sh`: each ceiling the daemon is measured
//! against (issue 12), and the set-up and connection work the script cannot do in shell.
//! Every measuring command prints one `key=value` line for the script to read.
//!
//! cargo bench --bench ceiling -- hash --bytes 1GiB
//!     one-core MD5 (md-5, the daemon's ETag hasher) and SHA-256 (sha2, its payload
//!     hasher) over a buffer in memory: rate and CPU-s per GiB
//! cargo bench --bench ceiling -- fsync --dir DIR --size 4KiB --seconds 5
//!     one thread creating files: create + write + fdatasync + close, each a new file
//! cargo bench --bench ceiling -- serve-file --file F --port P [--sendfile]
//!     a plain file-to-socket server: every HTTP request on a connection gets F whole
//!     (read + write with a 1 MiB buffer, or sendfile)
//! cargo bench --bench ceiling -- seed --endpoint H:P --bucket B --count 200 --size 4KiB
//!         [--www DIR] [--get-paths FILE] [--put-paths FILE]
//!     creates the bucket, PUTs the objects, writes the same bytes under DIR/B/ for nginx
//!     and presigned GET/PUT paths (path?query, one a line) for wrk
//! cargo bench --bench ceiling -- idle --endpoint H:P --paths FILE --conns 10000 --hold 30
//!     opens the connections, makes one request on each, prints `idle ready`, and holds
//!     them for --hold seconds (or until killed)

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bleepstore::auth::client::{presign, ClientCredentials};
use bleepstore::clock;
use common::{format_size, parse_size, Client};
use md5::Digest;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// Flags of every subcommand, by name; each subcommand takes what it needs.
struct Flags(Vec<(String, Option<String>)>);

impl Flags {
    fn parse(args: impl Iterator<Item = String>) -> Flags {
        let mut flags = Vec::new();
        let mut args = args.peekable();
        while let Some(flag) = args.next() {
            let name = flag
                .strip_prefix("--")
                .unwrap_or_else(|| panic!("unexpected argument {flag}"))
                .to_string();
            let value = match args.peek() {
                Some(next) if !next.starts_with("--") => args.next(),
                _ => None,
            };
            flags.push((name, value));
        }
        Flags(flags)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    fn text(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_string()
    }

    fn size(&self, name: &str, default: &str) -> usize {
        parse_size(self.get(name).unwrap_or(default))
    }

    fn number(&self, name: &str, default: f64) -> f64 {
        self.get(name)
            .map(|v| v.parse().unwrap_or_else(|_| panic!("--{name} {v}")))
            .unwrap_or(default)
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let command = args.next().unwrap_or_default();
    let flags = Flags::parse(args);
    match command.as_str() {
        "hash" => hash(&flags),
        "fsync" => fsync(&flags),
        "serve-file" => serve_file(&flags),
        "seed" => seed(&flags),
        "idle" => idle(&flags),
        other => {
            eprintln!("usage: ceiling hash|fsync|serve-file|seed|idle [--flags] (got {other:?})");
            std::process::exit(2);
        }
    }
}

/// CPU seconds of the calling thread.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Hashes `--bytes` of memory in 1 MiB updates, once with MD5 and once with SHA-256, on
/// this one thread: the hashers and the update size the daemon uses.
fn hash(flags: &Flags) {
    let bytes = flags.size("bytes", "1GiB");
    let piece = flags.size("piece", "1MiB");
    let data: Vec<u8> = (0..bytes).map(|i| (i * 31 % 251) as u8).collect();
    let run = |name: &str, f: &mut dyn FnMut(&[u8]) -> Vec<u8>| {
        let (wall, cpu) = (Instant::now(), thread_cpu());
        let digest = f(&data);
        let (wall, cpu) = (wall.elapsed().as_secs_f64(), thread_cpu() - cpu);
        let gib = bytes as f64 / GIB;
        println!(
            "hash={name} bytes={bytes} wall_s={wall:.3} cpu_s={cpu:.3} MiB/s={:.1} \
             cpu_s_per_gib={:.3} digest_byte0={}",
            bytes as f64 / MIB / wall,
            cpu / gib,
            digest[0]
        );
    };
    run("md5", &mut |data| {
        let mut h = md5::Md5::new();
        data.chunks(piece).for_each(|c| h.update(c));
        h.finalize().to_vec()
    });
    run("sha256", &mut |data| {
        let mut h = sha2::Sha256::new();
        data.chunks(piece).for_each(|c| h.update(c));
        h.finalize().to_vec()
    });
}

/// Creates files one after the other for `--seconds`: create, write `--size` bytes,
/// fdatasync, close. Removes them afterwards.
fn fsync(flags: &Flags) {
    use std::os::unix::fs::OpenOptionsExt;
    let dir =
        PathBuf::from(flags.text("dir", "/tmp")).join(format!("fsync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("fsync dir");
    let size = flags.size("size", "4KiB");
    let seconds = flags.number("seconds", 5.0);
    let body = vec![0xA5u8; size];
    let started = Instant::now();
    let cpu = thread_cpu();
    let mut files = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(dir.join(format!("f{files}")))
            .expect("create");
        file.write_all(&body).expect("write");
        file.sync_data().expect("fdatasync");
        files += 1;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = thread_cpu() - cpu;
    std::fs::remove_dir_all(&dir).expect("remove fsync dir");
    println!(
        "fsync size={size} files={files} secs={wall:.3} files/s={:.1} cpu_us_each={:.1}",
        files as f64 / wall,
        cpu * 1e6 / files.max(1) as f64
    );
}

/// Serves `--file` to every request on every connection, a thread per connection.
fn serve_file(flags: &Flags) {
    let file = PathBuf::from(flags.get("file").expect("--file"));
    let port = flags.number("port", 0.0) as u16;
    let sendfile = flags.has("sendfile");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    println!(
        "serve-file port={} mode={}",
        listener.local_addr().expect("addr").port(),
        if sendfile { "sendfile" } else { "read+write" }
    );
    std::io::stdout().flush().ok();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let file = file.clone();
        std::thread::spawn(move || {
            let _ = serve_connection(stream, &file, sendfile);
        });
    }
}

fn serve_connection(mut stream: TcpStream, path: &PathBuf, sendfile: bool) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut request = Vec::with_capacity(8192);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        // One request head (any body is ignored: the load generator sends none on GET).
        request.clear();
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf[..8192])?;
            if n == 0 {
                return Ok(());
            }
            request.extend_from_slice(&buf[..n]);
        }
        let mut file = std::fs::File::open(path)?;
        let length = file.metadata()?.len();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )?;
        if sendfile {
            send_file(&stream, &file, length)?;
        } else {
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                stream.write_all(&buf[..n])?;
            }
        }
    }
}

fn send_file(stream: &TcpStream, file: &std::fs::File, length: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut offset: libc::off_t = 0;
    while (offset as u64) < length {
        let want = (length - offset as u64).min(1 << 30) as usize;
        #[allow(unsafe_code)]
        // SAFETY: both descriptors are open for the call; `offset` is a valid off_t.
        let n = unsafe { libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut offset, want) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if n == 0 {
            break;
        }
    }
    Ok(())
}

/// The same bytes the load generator writes.
fn object_body(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 % 251) as u8).collect()
}

fn credentials(flags: &Flags) -> ClientCredentials {
    ClientCredentials {
        access_key: flags.text("access-key", "bleepstore"),
        secret_key: flags.text("secret-key", "bleepstore-secret"),
        region: "us-east-1".into(),
    }
}

/// Creates the bucket and its objects, the nginx copies and the presigned paths.
fn seed(flags: &Flags) {
    let endpoint = flags.text("endpoint", "127.0.0.1:9000");
    let bucket = flags.text("bucket", "ceiling");
    let count = flags.number("count", 200.0) as usize;
    let size = flags.size("size", "4KiB");
    let prefix = flags.text("prefix", "obj-");
    let creds = credentials(flags);
    let body = object_body(size);
    let mut client = Client::connect(&endpoint, &creds.access_key, &creds.secret_key, 1 << 16);
    let (status, _) = client
        .request("PUT", &format!("/{bucket}"), b"", None)
        .expect("create bucket");
    assert!(status == 200 || status == 409, "create bucket: {status}");
    if let Some(www) = flags.get("www") {
        std::fs::create_dir_all(PathBuf::from(www).join(&bucket)).expect("www dir");
    }
    let now = clock::now_unix();
    let mut get_paths = String::new();
    let mut put_paths = String::new();
    for i in 0..count {
        let path = format!("/{bucket}/{prefix}{i}");
        if !flags.has("no-objects") {
            let (status, _) = client
                .request("PUT", &path, &body, None)
                .expect("seed object");
            assert_eq!(status, 200, "seed {path}");
        }
        if let Some(www) = flags.get("www") {
            std::fs::write(PathBuf::from(www).join(&path[1..]), &body).expect("www file");
        }
        for (method, out) in [("GET", &mut get_paths), ("PUT", &mut put_paths)] {
            let query = presign(&creds, method, &endpoint, &path, "", 86_400, now);
            out.push_str(&format!("{path}?{query}\n"));
        }
    }
    for (flag, paths) in [("get-paths", &get_paths), ("put-paths", &put_paths)] {
        if let Some(file) = flags.get(flag) {
            std::fs::write(file, paths).expect("paths file");
        }
    }
    println!(
        "seed bucket={bucket} objects={count} size={}",
        format_size(size)
    );
}

/// Opens `--conns` connections, one presigned GET on each, and holds them.
fn idle(flags: &Flags) {
    let endpoint = flags.text("endpoint", "127.0.0.1:9000");
    let conns = flags.number("conns", 10_000.0) as usize;
    let hold = flags.number("hold", 30.0);
    let paths: Vec<String> = std::fs::read_to_string(flags.get("paths").expect("--paths"))
        .expect("paths file")
        .lines()
        .map(String::from)
        .collect();
    let started = Instant::now();
    let mut held = Vec::with_capacity(conns);
    let mut failed = 0usize;
    for i in 0..conns {
        let mut client = Client::connect(&endpoint, "", "", 8192);
        match client.raw_get(&paths[i % paths.len()]) {
            Ok((200, _)) => held.push(client),
            Ok((status, _)) => {
                failed += 1;
                if failed == 1 {
                    eprintln!("idle: connection {i} got {status}");
                }
                held.push(client);
            }
            Err(e) => {
                failed += 1;
                if failed == 1 {
                    eprintln!("idle: connection {i}: {e}");
                }
            }
        }
    }
    println!(
        "idle ready conns={} failed={failed} open_secs={:.2}",
        held.len(),
        started.elapsed().as_secs_f64()
    );
    std::io::stdout().flush().ok();
    std::thread::sleep(Duration::from_secs_f64(hold));
    drop(held);
}
