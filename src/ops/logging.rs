//! Logging: env_logger's filter decides which records pass (the configured level,
//! refined by `RUST_LOG`); our logger formats each one as a text or JSON line on the
//! calling thread and queues it for a writer thread that puts it on stderr, so a
//! runtime thread never blocks on a slow terminal or pipe and never takes a lock
//! another core holds for long. If the queue is full the line is dropped and counted
//! rather than stalling a request.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use log::kv::{Key, Value, VisitSource};

use crate::clock;
use crate::config::LogFormat;

/// Lines waiting for the writer thread at most; beyond this, lines are dropped.
const QUEUE_LINES_MAX: usize = crate::limits::LOG_QUEUE_LINES_MAX;
/// How often the writer thread looks for lines while they flow, and at most when idle.
const POLL_BUSY: Duration = Duration::from_millis(2);
const POLL_IDLE: Duration = Duration::from_millis(100);

/// Log lines dropped because the queue was full (reported by /metrics).
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// The writer thread's queue, for `flush`.
static QUEUE: OnceLock<flume::Sender<Message>> = OnceLock::new();
/// The writer thread, unparked for lines that should not wait for its next poll.
static WRITER: OnceLock<std::thread::Thread> = OnceLock::new();
/// Target of the per-request access lines: the one hot log path, left to polling.
pub(crate) const ACCESS_TARGET: &str = "access";

enum Message {
    Line(Vec<u8>),
    /// Answered once every line sent before it is written.
    Flush(flume::Sender<()>),
}

/// Installs the global logger. `level` is one of error, warn, info, debug, trace, off.
pub fn init(level: &str, format: LogFormat) {
    // env_logger's logger, built but never installed, is our filter: it parses the
    // level and `RUST_LOG` directives (`access=off`, `bleepstore::meta=debug`).
    let mut filter = env_logger::Builder::new();
    filter.parse_filters(level);
    if let Ok(filters) = std::env::var("RUST_LOG") {
        filter.parse_filters(&filters);
    }
    let filter = filter.build();
    let max_level = filter.filter();
    let (tx, rx) = flume::bounded(QUEUE_LINES_MAX);
    let logger = QueueLogger {
        filter,
        format,
        tx: tx.clone(),
    };
    // A second init (tests) is harmless: keep the first logger and its thread.
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max_level);
        let _ = QUEUE.set(tx);
        if let Ok(writer) = std::thread::Builder::new()
            .name("bleepstore-log".into())
            .spawn(move || write_lines(rx))
        {
            let _ = WRITER.set(writer.thread().clone());
        }
    }
}

/// Log lines dropped so far because the writer could not keep up.
pub(crate) fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Waits (up to `max`) until every line logged so far is on stderr; for a clean exit.
pub(crate) fn flush(max: Duration) {
    let Some(queue) = QUEUE.get() else { return };
    let (done_tx, done_rx) = flume::bounded(1);
    if queue.send_timeout(Message::Flush(done_tx), max).is_ok() {
        let _ = done_rx.recv_timeout(max);
    }
}

/// Formats on the logging thread and hands the line to the writer thread's queue:
/// one allocation and one short queue push per line.
struct QueueLogger {
    filter: env_logger::Logger,
    format: LogFormat,
    tx: flume::Sender<Message>,
}

impl log::Log for QueueLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        log::Log::enabled(&self.filter, metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.filter.matches(record) {
            return;
        }
        let line = match self.format {
            LogFormat::Text => text_line(record),
            LogFormat::Json => json_line(record),
        };
        if self.tx.try_send(Message::Line(line)).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        // Lifecycle lines, warnings and errors are rare and someone may be waiting
        // for them ("listening on"): wake the writer. Access lines wait for its poll.
        if record.target() != ACCESS_TARGET {
            if let Some(writer) = WRITER.get() {
                writer.unpark();
            }
        }
    }

    fn flush(&self) {}
}

/// The writer thread. It polls the queue instead of sleeping in `recv`, so an
/// access line never pays for waking it: a send to a receiver that is not parked
/// is a plain queue push. Polls come every 2 ms while lines flow and back off to
/// 100 ms when idle; other lines unpark it at once. Each poll writes everything
/// queued in one go.
fn write_lines(rx: flume::Receiver<Message>) {
    let stderr = std::io::stderr();
    let mut pause = POLL_BUSY;
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        std::thread::park_timeout(pause);
        let mut got_any = false;
        let mut flushes = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(Message::Line(line)) => {
                    got_any = true;
                    batch.extend_from_slice(&line);
                }
                Ok(Message::Flush(done)) => flushes.push(done),
                Err(flume::TryRecvError::Empty) => break,
                Err(flume::TryRecvError::Disconnected) => return,
            }
            if batch.len() >= 64 * 1024 {
                let _ = stderr.lock().write_all(&batch);
                batch.clear();
            }
        }
        if !batch.is_empty() {
            let _ = stderr.lock().write_all(&batch);
            batch.clear();
        }
        for done in flushes {
            let _ = done.send(());
        }
        pause = if got_any {
            POLL_BUSY
        } else {
            (pause * 2).min(POLL_IDLE)
        };
    }
}

thread_local! {
    /// This thread's last second and its `YYYY-MM-DDTHH:MM:SS.` text: a line only
    /// formats the date when the second changes.
    static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
}

/// Appends the current time as `2026-11-25T05:12:00.123Z`.
fn push_timestamp(line: &mut String) {
    let millis = clock::now_unix_millis();
    let second = millis.div_euclid(1000);
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            let mut text = clock::format_iso8601_millis(second * 1000);
            text.truncate(text.len() - "000Z".len());
            *cached = (second, text);
        }
        line.push_str(&cached.1);
    });
    let ms = millis.rem_euclid(1000) as u32;
    for digit in [ms / 100, ms / 10 % 10, ms % 10] {
        line.push(char::from(b'0' + digit as u8));
    }
    line.push('Z');
}

/// Appends a decimal integer without going through `fmt`.
fn push_u64(line: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        line.push(char::from(d));
    }
}

/// Appends the record's message; a plain string literal is copied without `fmt`.
fn push_message(line: &mut String, record: &log::Record<'_>) {
    match record.args().as_str() {
        Some(text) => line.push_str(text),
        None => {
            let _ = write!(line, "{}", record.args());
        }
    }
}

/// `2026-11-25T05:12:00.123Z INFO  target message key=value ...`
fn text_line(record: &log::Record<'_>) -> Vec<u8> {
    let mut line = String::with_capacity(200);
    push_timestamp(&mut line);
    line.push(' ');
    let level = record.level().as_str();
    line.push_str(level);
    for _ in level.len()..5 {
        line.push(' ');
    }
    line.push(' ');
    line.push_str(record.target());
    line.push(' ');
    push_message(&mut line, record);
    let _ = record.key_values().visit(&mut TextFields(&mut line));
    line.push('\n');
    line.into_bytes()
}

struct TextFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push(' ');
        self.0.push_str(key.as_str());
        self.0.push('=');
        if let Some(n) = value.to_u64() {
            push_u64(self.0, n);
        } else if let Some(text) = value.to_borrowed_str() {
            self.0.push_str(text);
        } else {
            let _ = write!(self.0, "{value}");
        }
        Ok(())
    }
}

/// `{"timestamp":...,"level":...,"target":...,"message":...,<fields>}`
fn json_line(record: &log::Record<'_>) -> Vec<u8> {
    let mut line = String::with_capacity(240);
    line.push_str("{\"timestamp\":\"");
    push_timestamp(&mut line);
    line.push_str("\",\"level\":\"");
    line.push_str(record.level().as_str());
    line.push_str("\",\"target\":");
    json_string(&mut line, record.target());
    line.push_str(",\"message\":");
    match record.args().as_str() {
        Some(text) => json_string(&mut line, text),
        None => json_string(&mut line, &record.args().to_string()),
    }
    let _ = record.key_values().visit(&mut JsonFields(&mut line));
    line.push_str("}\n");
    line.into_bytes()
}

struct JsonFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for JsonFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push(',');
        json_string(self.0, key.as_str());
        self.0.push(':');
        if let Some(n) = value.to_u64() {
            push_u64(self.0, n);
        } else if let Some(n) = value.to_i64() {
            let _ = write!(self.0, "{n}");
        } else if let Some(x) = value.to_f64().filter(|x| x.is_finite()) {
            let _ = write!(self.0, "{x}");
        } else if let Some(b) = value.to_bool() {
            self.0.push_str(if b { "true" } else { "false" });
        } else if let Some(text) = value.to_borrowed_str() {
            json_string(self.0, text);
        } else {
            json_string(self.0, &value.to_string());
        }
        Ok(())
    }
}

/// Appends `text` as a JSON string literal.
pub(crate) fn json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_fields_with_their_types() {
        let line = json_line(
            &log::Record::builder()
                .level(log::Level::Info)
                .target("access")
                .args(format_args!("say \"hi\"\n"))
                .key_values(&[
                    ("status", Value::from(200u64)),
                    ("duration_ms", Value::from(1.5f64)),
                    ("path", Value::from("/{bucket}")),
                ])
                .build(),
        );
        let text = String::from_utf8(line).unwrap();
        assert!(text.ends_with("}\n"));
        assert!(text.contains("\"level\":\"INFO\",\"target\":\"access\""));
        assert!(text.contains("\"message\":\"say \\\"hi\\\"\\n\""));
        assert!(text.contains(",\"status\":200,\"duration_ms\":1.5,\"path\":\"/{bucket}\"}"));
    }

    #[test]
    fn text_lines_carry_time_level_target_and_fields() {
        let record = |args| {
            let line = text_line(
                &log::Record::builder()
                    .level(log::Level::Warn)
                    .target("access")
                    .args(args)
                    .key_values(&[
                        ("status", Value::from(404u64)),
                        ("bytes_out", Value::from(0u64)),
                        ("big", Value::from(u64::MAX)),
                        ("duration_ms", Value::from(2.037f64)),
                        ("operation", Value::from("GetObject")),
                    ])
                    .build(),
            );
            String::from_utf8(line).unwrap()
        };
        let text = record(format_args!("request"));
        let (stamp, rest) = text.split_once(' ').unwrap();
        let shape = stamp
            .bytes()
            .map(|b| if b.is_ascii_digit() { b'9' } else { b });
        assert_eq!(shape.collect::<Vec<u8>>(), b"9999-99-99T99:99:99.999Z");
        let now = clock::now_unix_millis();
        let logged = clock::parse_iso8601_millis(stamp).unwrap();
        assert!((now - logged).abs() < 5_000, "{stamp}");
        assert_eq!(
            rest,
            "WARN  access request status=404 bytes_out=0 big=18446744073709551615 \
             duration_ms=2.037 operation=GetObject\n"
        );
        let n = 7;
        assert!(record(format_args!("formatted {n}")).contains(" access formatted 7 status=404"));
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut out = String::new();
        json_string(&mut out, "a\u{1}b\\");
        assert_eq!(out, "\"a\\u0001b\\\\\"");
    }
}
