//! Request metrics. Each core counts into its own `CoreMetrics` (plain integers
//! behind the core's `RefCell`: no atomics, no cache lines shared between cores); a
//! scrape asks every core for a copy over a channel, merges them and renders the
//! Prometheus text format (0.0.4) with the process and metadata gauges.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::meta::MetaCounts;

/// Upper bounds (seconds) of the request duration histogram.
const DURATION_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds (bytes) of the request and response size histograms.
const SIZE_BOUNDS: &[f64] = &[
    0.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
    5_368_709_120.0,
];

/// A cumulative histogram with fixed bounds, as Prometheus expects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Observations per bucket (not cumulative); the last slot is +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        let slot = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[slot] += 1;
        self.sum += value;
        self.count += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// What one finished request contributes.
#[derive(Debug, Clone)]
pub(crate) struct RequestRecord {
    pub method: &'static str,
    /// `/`, `/{bucket}`, `/{bucket}/{key}` or an operations path: never a real key.
    pub path: &'static str,
    pub status: u16,
    /// The S3 operation, when the request was routed to one.
    pub operation: Option<&'static str>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: Duration,
}

type RouteKey = (&'static str, &'static str);

/// One core's counters, or the merge of all of them.
#[derive(Debug, Clone, Default)]
pub(crate) struct CoreMetrics {
    requests: HashMap<(&'static str, &'static str, u16), u64>,
    durations: HashMap<RouteKey, Histogram>,
    request_sizes: HashMap<RouteKey, Histogram>,
    response_sizes: HashMap<RouteKey, Histogram>,
    /// By (operation, outcome): success, client_error or server_error.
    operations: HashMap<(&'static str, &'static str), u64>,
    bytes_in: u64,
    bytes_out: u64,
}

impl CoreMetrics {
    pub(crate) fn record(&mut self, r: &RequestRecord) {
        *self
            .requests
            .entry((r.method, r.path, r.status))
            .or_default() += 1;
        let route = (r.method, r.path);
        self.durations
            .entry(route)
            .or_insert_with(|| Histogram::new(DURATION_BOUNDS))
            .observe(r.duration.as_secs_f64());
        self.request_sizes
            .entry(route)
            .or_insert_with(|| Histogram::new(SIZE_BOUNDS))
            .observe(r.bytes_in as f64);
        self.response_sizes
            .entry(route)
            .or_insert_with(|| Histogram::new(SIZE_BOUNDS))
            .observe(r.bytes_out as f64);
        if let Some(op) = r.operation {
            let outcome = match r.status {
                500.. => "server_error",
                400.. => "client_error",
                _ => "success",
            };
            *self.operations.entry((op, outcome)).or_default() += 1;
        }
        self.bytes_in += r.bytes_in;
        self.bytes_out += r.bytes_out;
    }

    pub(crate) fn merge(&mut self, other: &CoreMetrics) {
        for (k, v) in &other.requests {
            *self.requests.entry(*k).or_default() += v;
        }
        for (mine, theirs) in [
            (&mut self.durations, &other.durations),
            (&mut self.request_sizes, &other.request_sizes),
            (&mut self.response_sizes, &other.response_sizes),
        ] {
            for (k, h) in theirs {
                match mine.get_mut(k) {
                    Some(existing) => existing.merge(h),
                    None => {
                        mine.insert(*k, h.clone());
                    }
                }
            }
        }
        for (k, v) in &other.operations {
            *self.operations.entry(*k).or_default() += v;
        }
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
    }
}

/// Facts about the process, read from /proc at scrape time.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// Reads the current process's figures; a missing file leaves its figure at 0.
    pub(crate) fn read(start_time_seconds: f64) -> ProcessStats {
        // utime and stime are fields 14 and 15 of /proc/self/stat, in clock ticks
        // (USER_HZ, 100 on Linux); the fields after the ")" of comm start at field 3.
        let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| {
                let rest = stat.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let utime: f64 = fields.get(11)?.parse().ok()?;
                let stime: f64 = fields.get(12)?.parse().ok()?;
                Some((utime + stime) / 100.0)
            })
            .unwrap_or(0.0);
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let resident_bytes = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|limits| {
                let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
                line.split_whitespace().nth(3)?.parse().ok()
            })
            .unwrap_or(0);
        ProcessStats {
            cpu_seconds,
            resident_bytes,
            open_fds,
            max_fds,
            start_time_seconds,
        }
    }
}

/// Everything a scrape shows besides the request counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gauges {
    pub counts: Option<MetaCounts>,
    pub process: ProcessStats,
    pub connections: u64,
    /// Requests between their head and their last response byte (the scrape included).
    pub in_flight: u64,
    pub log_lines_dropped: u64,
    /// Released data files removed since startup.
    pub reclaimed: u64,
    /// The memory backend's (objects held, bytes used, byte budget).
    pub memory: Option<(u64, u64, u64)>,
}

/// Renders the merged counters in the Prometheus text format, families sorted by
/// name and series by labels, so two scrapes of the same state read the same.
pub(crate) fn render(m: &CoreMetrics, g: &Gauges) -> String {
    let mut out = String::with_capacity(8192);
    let mut requests: Vec<_> = m.requests.iter().collect();
    requests.sort();
    family(
        &mut out,
        "bleepstore_http_requests_total",
        "counter",
        "HTTP requests served, by method, path template and status.",
    );
    for ((method, path, status), n) in requests {
        let _ = writeln!(
            out,
            "bleepstore_http_requests_total{{method=\"{method}\",path=\"{path}\",status=\"{status}\"}} {n}"
        );
    }
    histograms(
        &mut out,
        "bleepstore_http_request_duration_seconds",
        "Time from request head to the last response byte.",
        &m.durations,
    );
    histograms(
        &mut out,
        "bleepstore_http_request_size_bytes",
        "Request body bytes received.",
        &m.request_sizes,
    );
    histograms(
        &mut out,
        "bleepstore_http_response_size_bytes",
        "Response bytes sent, head included.",
        &m.response_sizes,
    );
    let mut operations: Vec<_> = m.operations.iter().collect();
    operations.sort();
    family(
        &mut out,
        "bleepstore_s3_operations_total",
        "counter",
        "S3 operations, by name and outcome (success, client_error, server_error).",
    );
    for ((op, outcome), n) in operations {
        let _ = writeln!(
            out,
            "bleepstore_s3_operations_total{{operation=\"{op}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    let mut single = |name: &str, kind: &str, help: &str, value: String| {
        family(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    };
    single(
        "bleepstore_bytes_received_total",
        "counter",
        "Request body bytes received.",
        m.bytes_in.to_string(),
    );
    single(
        "bleepstore_bytes_sent_total",
        "counter",
        "Response bytes sent.",
        m.bytes_out.to_string(),
    );
    if let Some(counts) = g.counts {
        single(
            "bleepstore_buckets",
            "gauge",
            "Buckets that exist.",
            counts.buckets.to_string(),
        );
        single(
            "bleepstore_objects",
            "gauge",
            "Objects that exist.",
            counts.objects.to_string(),
        );
        single(
            "bleepstore_multipart_uploads",
            "gauge",
            "Multipart uploads in progress.",
            counts.uploads.to_string(),
        );
        single(
            "bleepstore_reclaim_waiting_files",
            "gauge",
            "Released data files not yet removed (waiting for reads begun before their release).",
            counts.reclaim.to_string(),
        );
    }
    single(
        "bleepstore_connections",
        "gauge",
        "Client connections open.",
        g.connections.to_string(),
    );
    single(
        "bleepstore_reclaimed_files_total",
        "counter",
        "Released data files removed since startup.",
        g.reclaimed.to_string(),
    );
    if let Some((objects, used, max)) = g.memory {
        single(
            "bleepstore_memory_objects",
            "gauge",
            "Data objects the memory backend holds (a multipart object is one per part).",
            objects.to_string(),
        );
        single(
            "bleepstore_memory_bytes",
            "gauge",
            "Bytes the memory backend holds, uploads in progress included.",
            used.to_string(),
        );
        single(
            "bleepstore_memory_max_bytes",
            "gauge",
            "The memory backend's byte budget (storage.memory.max_size_bytes).",
            max.to_string(),
        );
    }
    single(
        "bleepstore_requests_in_flight",
        "gauge",
        "Requests being served (from head to last response byte), this scrape included.",
        g.in_flight.to_string(),
    );
    single(
        "bleepstore_log_lines_dropped_total",
        "counter",
        "Log lines dropped because stderr could not keep up.",
        g.log_lines_dropped.to_string(),
    );
    let p = &g.process;
    single(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time spent, in seconds.",
        format!("{}", p.cpu_seconds),
    );
    single(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        p.resident_bytes.to_string(),
    );
    single(
        "process_open_fds",
        "gauge",
        "Open file descriptors.",
        p.open_fds.to_string(),
    );
    single(
        "process_max_fds",
        "gauge",
        "Limit on open file descriptors.",
        p.max_fds.to_string(),
    );
    single(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        format!("{:.3}", p.start_time_seconds),
    );
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histograms(out: &mut String, name: &str, help: &str, series: &HashMap<RouteKey, Histogram>) {
    family(out, name, "histogram", help);
    let mut series: Vec<_> = series.iter().collect();
    series.sort_by_key(|(k, _)| **k);
    for ((method, path), h) in series {
        let labels = format!("method=\"{method}\",path=\"{path}\"");
        let mut cumulative = 0;
        for (i, n) in h.counts.iter().enumerate() {
            cumulative += n;
            let le = h
                .bounds
                .get(i)
                .map_or("+Inf".to_string(), |b| format!("{b}"));
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: u16, ms: u64, bytes_in: u64) -> RequestRecord {
        RequestRecord {
            method: "PUT",
            path: "/{bucket}/{key}",
            status,
            operation: Some("PutObject"),
            bytes_in,
            bytes_out: 100,
            duration: Duration::from_millis(ms),
        }
    }

    #[test]
    fn cores_merge_into_one_view() {
        let mut a = CoreMetrics::default();
        let mut b = CoreMetrics::default();
        a.record(&record(200, 3, 4096));
        b.record(&record(200, 40, 10));
        b.record(&record(503, 1, 0));
        let mut merged = CoreMetrics::default();
        merged.merge(&a);
        merged.merge(&b);
        let text = render(&merged, &Gauges::default());
        assert!(text.contains(
            "bleepstore_http_requests_total{method=\"PUT\",path=\"/{bucket}/{key}\",status=\"200\"} 2\n"
        ));
        assert!(text.contains(
            "bleepstore_s3_operations_total{operation=\"PutObject\",outcome=\"server_error\"} 1\n"
        ));
        assert!(text.contains("bleepstore_bytes_received_total 4106\n"));
        // 1 ms and 3 ms fall at or under 5 ms, 40 ms under 50 ms; +Inf holds all three.
        let labels = "method=\"PUT\",path=\"/{bucket}/{key}\"";
        assert!(text.contains(&format!(
            "bleepstore_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 2\n"
        )));
        assert!(text.contains(&format!(
            "bleepstore_http_request_duration_seconds_bucket{{{labels},le=\"0.05\"}} 3\n"
        )));
        assert!(text.contains(&format!(
            "bleepstore_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 3\n"
        )));
        assert!(text.contains(&format!(
            "bleepstore_http_request_duration_seconds_count{{{labels}}} 3\n"
        )));
        assert!(text.contains(&format!(
            "bleepstore_http_request_size_bytes_bucket{{{labels},le=\"0\"}} 1\n"
        )));
    }

    #[test]
    fn process_stats_are_read() {
        let stats = ProcessStats::read(1.0);
        assert!(stats.resident_bytes > 0);
        assert!(stats.open_fds > 0);
    }
}
