//! Logging: env_logger filters records (the configured level, refined by `RUST_LOG`),
//! our formatter writes them as text or JSON lines, and a writer thread puts them on
//! stderr, so a runtime thread never blocks on a slow terminal or pipe. If the queue
//! is full the line is dropped and counted rather than stalling a request.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use log::kv::{Key, Value, VisitSource};

use crate::clock;
use crate::config::LogFormat;

/// Lines waiting for the writer thread at most; beyond this, lines are dropped.
const QUEUE_LINES_MAX: usize = 65_536;
/// How often the writer thread looks for lines while they flow, and at most when idle.
const POLL_BUSY: Duration = Duration::from_millis(2);
const POLL_IDLE: Duration = Duration::from_millis(100);

/// Log lines dropped because the queue was full (reported by /metrics).
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// The writer thread's queue, for `flush`.
static QUEUE: OnceLock<flume::Sender<Message>> = OnceLock::new();

enum Message {
    Line(Vec<u8>),
    /// Answered once every line sent before it is written.
    Flush(flume::Sender<()>),
}

/// Installs the global logger. `level` is one of error, warn, info, debug, trace, off.
pub fn init(level: &str, format: LogFormat) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(level);
    if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    match format {
        LogFormat::Text => builder.format(|out, record| out.write_all(&text_line(record))),
        LogFormat::Json => builder.format(|out, record| out.write_all(&json_line(record))),
    };
    let (tx, rx) = flume::bounded(QUEUE_LINES_MAX);
    builder.target(env_logger::Target::Pipe(Box::new(QueueWriter {
        pending: Vec::new(),
        tx: tx.clone(),
    })));
    // A second init (tests) is harmless: keep the first logger and its thread.
    if builder.try_init().is_ok() {
        let _ = QUEUE.set(tx);
        let _ = std::thread::Builder::new()
            .name("bleepstore-log".into())
            .spawn(move || write_lines(rx));
    }
}

/// Log lines dropped so far because the writer could not keep up.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Waits (up to `max`) until every line logged so far is on stderr; for a clean exit.
pub fn flush(max: Duration) {
    let Some(queue) = QUEUE.get() else { return };
    let (done_tx, done_rx) = flume::bounded(1);
    if queue.send_timeout(Message::Flush(done_tx), max).is_ok() {
        let _ = done_rx.recv_timeout(max);
    }
}

/// The logger's target: collects one formatted record, hands it to the queue on flush.
struct QueueWriter {
    pending: Vec<u8>,
    tx: flume::Sender<Message>,
}

impl Write for QueueWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            if self.tx.try_send(Message::Line(line)).is_err() {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// The writer thread. It polls the queue instead of sleeping in `recv`, so a
/// logging thread never pays for waking it: a send to a receiver that is not
/// parked is a plain queue push. Polls come every 2 ms while lines flow and back
/// off to 100 ms when idle; each poll writes everything queued in one go.
fn write_lines(rx: flume::Receiver<Message>) {
    let stderr = std::io::stderr();
    let mut pause = POLL_IDLE;
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        std::thread::sleep(pause);
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

/// `2026-11-25T05:12:00.123Z INFO  target message key=value ...`
fn text_line(record: &log::Record<'_>) -> Vec<u8> {
    let mut line = String::with_capacity(160);
    let _ = write!(
        line,
        "{} {:<5} {} {}",
        clock::format_iso8601_millis(clock::now_unix_millis()),
        record.level(),
        record.target(),
        record.args()
    );
    let _ = record.key_values().visit(&mut TextFields(&mut line));
    line.push('\n');
    line.into_bytes()
}

struct TextFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}

/// `{"timestamp":...,"level":...,"target":...,"message":...,<fields>}`
fn json_line(record: &log::Record<'_>) -> Vec<u8> {
    let mut line = String::with_capacity(200);
    line.push_str("{\"timestamp\":\"");
    line.push_str(&clock::format_iso8601_millis(clock::now_unix_millis()));
    line.push_str("\",\"level\":\"");
    line.push_str(record.level().as_str());
    line.push_str("\",\"target\":");
    json_string(&mut line, record.target());
    line.push_str(",\"message\":");
    json_string(&mut line, &record.args().to_string());
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
            let _ = write!(self.0, "{n}");
        } else if let Some(n) = value.to_i64() {
            let _ = write!(self.0, "{n}");
        } else if let Some(x) = value.to_f64().filter(|x| x.is_finite()) {
            let _ = write!(self.0, "{x}");
        } else if let Some(b) = value.to_bool() {
            self.0.push_str(if b { "true" } else { "false" });
        } else {
            json_string(self.0, &value.to_string());
        }
        Ok(())
    }
}

/// Appends `text` as a JSON string literal.
pub fn json_string(out: &mut String, text: &str) {
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
    fn control_characters_are_escaped() {
        let mut out = String::new();
        json_string(&mut out, "a\u{1}b\\");
        assert_eq!(out, "\"a\\u0001b\\\\\"");
    }
}
