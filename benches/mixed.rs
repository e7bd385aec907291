//! A mixed S3 workload in the spirit of MinIO warp's `mixed` (warp cannot be built on
//! these machines): N keep-alive connections, each on its own thread, doing a random mix
//! of GET, PUT, DELETE and HEAD (45/15/10/30 by default) over a working set of objects
//! (10,000 by default, PUT before the timed run) whose sizes follow a distribution, for a
//! fixed time. Every request is SigV4-signed through `bleepstore::auth::client`.
//!
//! GET, HEAD and DELETE pick a present object; a key is never read and deleted or
//! re-PUT at the same time, so every answer must be a 2xx. DELETEd keys queue up and the
//! next PUTs write them again (a PUT with none queued overwrites a present object), so
//! the set stays near its size. Prints, per operation and in total, throughput (ops/s,
//! MB/s of object bytes) and latency p50/p90/p99/max, and with --pid the daemon's CPU
//! per operation and peak RSS.
//!
//! cargo bench --bench mixed -- --endpoint 127.0.0.1:9000 --conns 16 --seconds 30 \
//!     --objects 10000 --sizes 4KiB:70,64KiB:25,1MiB:5 [--mix get:45,put:15,delete:10,head:30]
//!     [--payload unsigned|signed] [--bucket mixed] [--pid PID] [--skip-prefill]

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{cpu_seconds, format_size, parse_size, sha256_hex, status_kib, Client, Payload, Rng};

/// The operations of the mix, in the order of the report.
const OPS: [&str; 4] = ["GET", "PUT", "DELETE", "HEAD"];
const GET: usize = 0;
const PUT: usize = 1;
const DELETE: usize = 2;
const HEAD: usize = 3;

/// A key held by one writer (a DELETE or a PUT): readers and other writers skip it.
const EXCLUSIVE: u32 = 1 << 31;
/// A key with no object (deleted, waiting in the queue for a PUT).
const ABSENT: u32 = 1 << 30;

struct Args {
    endpoint: String,
    conns: usize,
    seconds: f64,
    objects: usize,
    /// (size, weight) pairs.
    sizes: Vec<(usize, u32)>,
    /// Weights of GET, PUT, DELETE, HEAD.
    mix: [u32; 4],
    bucket: String,
    payload: Payload,
    pid: Option<u32>,
    access_key: String,
    secret_key: String,
    skip_prefill: bool,
    seed: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        endpoint: "127.0.0.1:9000".into(),
        conns: 16,
        seconds: 30.0,
        objects: 10_000,
        sizes: vec![(4096, 70), (65536, 25), (1 << 20, 5)],
        mix: [45, 15, 10, 30],
        bucket: "mixed".into(),
        payload: Payload::Unsigned,
        pid: None,
        access_key: "bleepstore".into(),
        secret_key: "bleepstore-secret".into(),
        skip_prefill: false,
        seed: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--endpoint" => args.endpoint = value(),
            "--conns" => args.conns = value().parse().expect("--conns"),
            "--seconds" => args.seconds = value().parse().expect("--seconds"),
            "--objects" => args.objects = value().parse().expect("--objects"),
            "--sizes" => args.sizes = parse_sizes(&value()),
            "--mix" => args.mix = parse_mix(&value()),
            "--bucket" => args.bucket = value(),
            "--payload" => args.payload = Payload::parse(&value()),
            "--pid" => args.pid = Some(value().parse().expect("--pid")),
            "--access-key" => args.access_key = value(),
            "--secret-key" => args.secret_key = value(),
            "--skip-prefill" => args.skip_prefill = true,
            "--seed" => args.seed = value().parse().expect("--seed"),
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        args.conns > 0 && args.objects > 0,
        "--conns and --objects must be positive"
    );
    assert!(
        args.objects >= 4 * args.conns,
        "--objects must be at least 4 x --conns, so that free keys are easy to find"
    );
    args
}

/// `4KiB:70,64KiB:25,1MiB:5` (a size alone weighs 1).
fn parse_sizes(text: &str) -> Vec<(usize, u32)> {
    let sizes: Vec<(usize, u32)> = text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|item| match item.split_once(':') {
            Some((size, weight)) => (parse_size(size), weight.trim().parse().expect("weight")),
            None => (parse_size(item), 1),
        })
        .collect();
    assert!(
        sizes.iter().map(|(_, w)| *w as u64).sum::<u64>() > 0,
        "--sizes: no weight"
    );
    sizes
}

/// `get:45,put:15,delete:10,head:30`; operations not named weigh 0.
fn parse_mix(text: &str) -> [u32; 4] {
    let mut mix = [0; 4];
    for item in text.split(',') {
        let (op, weight) = item.split_once(':').expect("--mix: op:weight");
        let index = OPS
            .iter()
            .position(|o| o.eq_ignore_ascii_case(op.trim()))
            .unwrap_or_else(|| panic!("--mix: unknown operation {op}"));
        mix[index] = weight.trim().parse().expect("--mix weight");
    }
    assert!(mix.iter().sum::<u32>() > 0, "--mix: no weight");
    mix
}

/// Picks an index by weight.
fn pick(rng: &mut Rng, weights: impl Iterator<Item = u32> + Clone) -> usize {
    let total: u64 = weights.clone().map(u64::from).sum();
    let mut at = rng.below(total);
    for (i, w) in weights.enumerate() {
        if at < u64::from(w) {
            return i;
        }
        at -= u64::from(w);
    }
    unreachable!("weights sum to {total}")
}

/// The working set: each key's state (reader count, EXCLUSIVE, ABSENT) and the deleted
/// keys waiting for a PUT.
struct Set {
    state: Vec<AtomicU32>,
    deleted: Mutex<VecDeque<usize>>,
}

impl Set {
    /// A present key no writer holds, counted as read until `end_read`.
    fn start_read(&self, rng: &mut Rng) -> usize {
        loop {
            let key = rng.below(self.state.len() as u64) as usize;
            let s = self.state[key].load(Ordering::Acquire);
            if s & (EXCLUSIVE | ABSENT) == 0
                && self.state[key]
                    .compare_exchange(s, s + 1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                return key;
            }
        }
    }

    fn end_read(&self, key: usize) {
        self.state[key].fetch_sub(1, Ordering::AcqRel);
    }

    /// A present key with no reader, held exclusively until `end_write`.
    fn start_write(&self, rng: &mut Rng) -> usize {
        loop {
            let key = rng.below(self.state.len() as u64) as usize;
            if self.state[key]
                .compare_exchange(0, EXCLUSIVE, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return key;
            }
        }
    }

    /// Releases a key after a write: present again, or absent and queued for a PUT.
    fn end_write(&self, key: usize, present: bool) {
        if present {
            self.state[key].store(0, Ordering::Release);
        } else {
            self.state[key].store(ABSENT | EXCLUSIVE, Ordering::Release);
            self.deleted.lock().expect("queue").push_back(key);
        }
    }

    /// A deleted key to PUT again, held exclusively (its state stays ABSENT|EXCLUSIVE).
    fn take_deleted(&self) -> Option<usize> {
        self.deleted.lock().expect("queue").pop_front()
    }
}

/// What one connection measured, per operation.
#[derive(Default)]
struct Tally {
    latencies: [Vec<Duration>; 4],
    bytes: [u64; 4],
    errors: [u64; 4],
}

/// Bodies of each size of the distribution, with their SHA-256 when payloads are signed.
struct Bodies(Vec<(Vec<u8>, Option<String>)>);

impl Bodies {
    fn new(args: &Args) -> Bodies {
        Bodies(
            args.sizes
                .iter()
                .map(|&(size, _)| {
                    let body: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
                    let hash = (args.payload == Payload::Signed).then(|| sha256_hex(&body));
                    (body, hash)
                })
                .collect(),
        )
    }
}

fn object_path(args: &Args, key: usize) -> String {
    format!("/{}/obj-{key:05}", args.bucket)
}

fn connect(args: &Args) -> Client {
    Client::connect(&args.endpoint, &args.access_key, &args.secret_key, 1 << 20)
}

/// PUTs every key once, spread over the connections.
fn prefill(args: &Arc<Args>, bodies: &Arc<Bodies>) {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..args.conns)
        .map(|worker| {
            let (args, bodies, next) = (args.clone(), bodies.clone(), next.clone());
            std::thread::spawn(move || {
                let mut client = connect(&args);
                let mut rng = Rng::new(args.seed ^ (worker as u64 + 1) << 20);
                let mut bytes = 0u64;
                loop {
                    let key = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if key >= args.objects {
                        return bytes;
                    }
                    let size = pick(&mut rng, args.sizes.iter().map(|s| s.1));
                    let (body, hash) = &bodies.0[size];
                    let (status, _) = client
                        .request("PUT", &object_path(&args, key), body, hash.as_deref())
                        .expect("prefill PUT");
                    assert_eq!(status, 200, "prefill PUT of key {key}");
                    bytes += body.len() as u64;
                }
            })
        })
        .collect();
    let bytes: u64 = threads
        .into_iter()
        .map(|t| t.join().expect("prefill"))
        .sum();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "prefill: {} objects, {:.1} MB in {secs:.1} s ({:.0} PUT/s)",
        args.objects,
        bytes as f64 / 1e6,
        args.objects as f64 / secs
    );
}

/// One connection's loop until `stop`.
fn worker(args: &Args, bodies: &Bodies, set: &Set, stop: &AtomicBool, worker: usize) -> Tally {
    let mut client = connect(args);
    let mut rng = Rng::new(args.seed.wrapping_add(0x5151 * (worker as u64 + 1)));
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let op = pick(&mut rng, args.mix.iter().copied());
        let started;
        let result;
        let mut sent = 0u64;
        match op {
            GET | HEAD => {
                let key = set.start_read(&mut rng);
                let path = object_path(args, key);
                started = Instant::now();
                result = client.request(OPS[op], &path, b"", None);
                set.end_read(key);
            }
            DELETE => {
                let key = set.start_write(&mut rng);
                let path = object_path(args, key);
                started = Instant::now();
                result = client.request("DELETE", &path, b"", None);
                // A failed DELETE may or may not have removed it: PUT it again to be sure.
                set.end_write(key, false);
            }
            _ => {
                let key = set
                    .take_deleted()
                    .unwrap_or_else(|| set.start_write(&mut rng));
                let size = pick(&mut rng, args.sizes.iter().map(|s| s.1));
                let (body, hash) = &bodies.0[size];
                let path = object_path(args, key);
                started = Instant::now();
                result = client.request("PUT", &path, body, hash.as_deref());
                sent = body.len() as u64;
                let ok = matches!(result, Ok((200, _)));
                set.end_write(key, ok);
            }
        }
        let elapsed = started.elapsed();
        match result {
            Ok((status, received)) => {
                tally.latencies[op].push(elapsed);
                if !(200..300).contains(&status) {
                    tally.errors[op] += 1;
                    if tally.errors[op] == 1 {
                        eprintln!(
                            "{} answered {status} (first error of connection {worker})",
                            OPS[op]
                        );
                    }
                } else if op == GET {
                    tally.bytes[op] += received as u64;
                } else if op == PUT {
                    tally.bytes[op] += sent;
                }
            }
            Err(e) => {
                eprintln!(
                    "{} failed on connection {worker}: {e}; reconnecting",
                    OPS[op]
                );
                tally.errors[op] += 1;
                client = connect(args);
            }
        }
    }
    tally
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn main() {
    let args = Arc::new(parse_args());
    let bodies = Arc::new(Bodies::new(&args));
    let mut setup = connect(&args);
    let (status, _) = setup
        .request("PUT", &format!("/{}", args.bucket), b"", None)
        .expect("create bucket");
    assert!(status == 200 || status == 409, "create bucket: {status}");
    drop(setup);
    let distribution: Vec<String> = args
        .sizes
        .iter()
        .map(|(size, weight)| format!("{}:{weight}", format_size(*size)))
        .collect();
    println!(
        "mixed: {} conns, {} s, {} objects, sizes {}, mix GET/PUT/DELETE/HEAD {:?}, payload {}",
        args.conns,
        args.seconds,
        args.objects,
        distribution.join(","),
        args.mix,
        if args.payload == Payload::Signed {
            "signed"
        } else {
            "unsigned"
        }
    );
    if !args.skip_prefill {
        prefill(&args, &bodies);
    }
    let set = Arc::new(Set {
        state: (0..args.objects).map(|_| AtomicU32::new(0)).collect(),
        deleted: Mutex::new(VecDeque::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = args.pid.and_then(cpu_seconds);
    let started = Instant::now();
    let threads: Vec<_> = (0..args.conns)
        .map(|w| {
            let (args, bodies, set, stop) =
                (args.clone(), bodies.clone(), set.clone(), stop.clone());
            std::thread::spawn(move || worker(&args, &bodies, &set, &stop, w))
        })
        .collect();
    let mut peak_rss = 0;
    while started.elapsed().as_secs_f64() < args.seconds {
        std::thread::sleep(Duration::from_millis(100));
        if let Some(rss) = args.pid.and_then(|pid| status_kib(pid, "VmRSS:")) {
            peak_rss = peak_rss.max(rss);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for thread in threads {
        let tally = thread.join().expect("worker");
        for op in 0..4 {
            total.latencies[op].extend(&tally.latencies[op]);
            total.bytes[op] += tally.bytes[op];
            total.errors[op] += tally.errors[op];
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, args.pid.and_then(cpu_seconds)) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{:<7} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "op", "ops", "ops/s", "MB/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
    );
    let mut all = Vec::new();
    let row = |name: &str, lat: &mut Vec<Duration>, bytes: u64, errors: u64| {
        lat.sort();
        println!(
            "{name:<7} {:>9} {:>10.0} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {errors:>7}",
            lat.len(),
            lat.len() as f64 / secs,
            bytes as f64 / secs / 1e6,
            ms(percentile(lat, 0.50)),
            ms(percentile(lat, 0.90)),
            ms(percentile(lat, 0.99)),
            ms(lat.last().copied().unwrap_or_default()),
        );
    };
    for (op, name) in OPS.iter().enumerate() {
        all.extend(&total.latencies[op]);
        row(
            name,
            &mut total.latencies[op],
            total.bytes[op],
            total.errors[op],
        );
    }
    let ops = all.len();
    row(
        "total",
        &mut all,
        total.bytes.iter().sum(),
        total.errors.iter().sum(),
    );
    let queued = set.deleted.lock().expect("queue").len();
    println!(
        "elapsed {secs:.2} s; objects present at the end: {} of {}",
        args.objects - queued,
        args.objects
    );
    if let (Some(pid), Some(cpu)) = (args.pid, cpu) {
        println!(
            "daemon: {cpu:.2} CPU-s, {:.1} us CPU per op, peak RSS {} MiB (sampled), VmHWM {} MiB",
            cpu * 1e6 / ops.max(1) as f64,
            peak_rss / 1024,
            status_kib(pid, "VmHWM:").unwrap_or(0) / 1024
        );
    }
    println!(
        "mixed-summary ops={ops} ops/s={:.0} errors={}",
        ops as f64 / secs,
        total.errors.iter().sum::<u64>()
    );
}
