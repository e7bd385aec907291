//! Injected faults, for the fault simulation (`scripts/fault_sim.py`). Compiled only
//! with the `fault-injection` cargo feature: the shipped binary has no trace of it,
//! since every fault point is a `#[cfg(feature = "fault-injection")]` statement.
//!
//! A fault point sits at each boundary step of the storage backend (create a temp
//! file, write, fdatasync, rename, directory fsync, unlink, open, read, copy) and of
//! the metadata threads (begin, each write's statements, commit of a batch; each
//! read). A plan, read from `BLEEPSTORE_FAULTS` (`seed=42,rate=0.02,crash_at=137`),
//! decides for every step it counts whether the step fails and how (ENOSPC, EIO, a
//! short or torn write, a short read, SQLITE_BUSY, SQLITE_IOERR, SQLITE_FULL, an
//! IOERR after SQLite rolled back the whole transaction, a commit that landed but
//! reported IOERR), and `crash_at=N` aborts the process at step N, before it runs:
//! what `kill -9` at that exact point does (the page cache survives, nothing after
//! runs). `inject=meta.commit:landed:2` fails the second commit so, for tests that
//! aim at one step; `rate=0` leaves only those.
//!
//! The decision for a step is a hash of the seed and the step's index, so a run is
//! reproducible when the steps come in the same order: one serving thread, one
//! client operation at a time. Two things would upset that order, and are kept out
//! of it: startup recovery and the orphan sweep (nothing is counted before `arm`,
//! and the sweep's thread is exempt), and the reclaimer, whose removals run beside
//! the next request. Its steps (and the metadata batches that only forget reclaim
//! rows) are counted on a lane of their own, with `bg_crash_at=N` to crash there.
//! Every injected fault and the crash are written to stderr at once, as
//! `fault-injection: ...` lines, for the simulation to read.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};

use monoio::buf::IoBuf;
use monoio::fs::File;
use rusqlite::ffi;

/// A boundary step that can fail or be crashed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Creating a temp file.
    Create,
    /// A write into a temp file.
    Write,
    /// The fdatasync of a temp file before it is published.
    Sync,
    /// The rename that publishes it.
    Rename,
    /// The fsync of the directory that received the name.
    SyncDir,
    /// Just after a publish is durable (crash only).
    Published,
    /// Unlinking a published data file.
    Remove,
    /// Unlinking a temp file.
    RemoveTemp,
    /// Opening a data file for reading.
    Open,
    /// A read from a data file.
    Read,
    /// A server-side copy into a new data file.
    Copy,
    /// A hashing scan of data files.
    Scan,
    /// Listing the data files.
    List,
    /// BEGIN of a batch of metadata writes.
    Begin,
    /// The statements of one metadata write.
    Statement,
    /// COMMIT of a batch.
    Commit,
    /// Just after a batch committed, before anyone is answered (crash only).
    Committed,
    /// One metadata read.
    MetaRead,
}

impl Step {
    const ALL: [Step; 18] = [
        Step::Create,
        Step::Write,
        Step::Sync,
        Step::Rename,
        Step::SyncDir,
        Step::Published,
        Step::Remove,
        Step::RemoveTemp,
        Step::Open,
        Step::Read,
        Step::Copy,
        Step::Scan,
        Step::List,
        Step::Begin,
        Step::Statement,
        Step::Commit,
        Step::Committed,
        Step::MetaRead,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Create => "storage.create",
            Step::Write => "storage.write",
            Step::Sync => "storage.fdatasync",
            Step::Rename => "storage.rename",
            Step::SyncDir => "storage.fsync_dir",
            Step::Published => "storage.published",
            Step::Remove => "storage.remove",
            Step::RemoveTemp => "storage.remove_temp",
            Step::Open => "storage.open",
            Step::Read => "storage.read",
            Step::Copy => "storage.copy",
            Step::Scan => "storage.scan",
            Step::List => "storage.list",
            Step::Begin => "meta.begin",
            Step::Statement => "meta.statement",
            Step::Commit => "meta.commit",
            Step::Committed => "meta.committed",
            Step::MetaRead => "meta.read",
        }
    }

    /// The faults this step can suffer (empty: a crash point only).
    fn menu(self) -> &'static [Fault] {
        use Fault::*;
        match self {
            Step::Create => &[Errno(libc::ENOSPC), Errno(libc::EIO), Errno(libc::EMFILE)],
            Step::Write => &[Errno(libc::ENOSPC), Errno(libc::EIO), Short, Torn],
            Step::Sync => &[Errno(libc::EIO), Errno(libc::ENOSPC)],
            Step::Rename => &[Errno(libc::EIO), Errno(libc::ENOSPC)],
            Step::SyncDir => &[Errno(libc::EIO)],
            Step::Remove | Step::RemoveTemp | Step::Scan | Step::List => &[Errno(libc::EIO)],
            Step::Open => &[Errno(libc::EIO), Errno(libc::EMFILE)],
            Step::Read => &[Errno(libc::EIO), Short],
            Step::Copy => &[Errno(libc::ENOSPC), Errno(libc::EIO)],
            Step::Begin | Step::MetaRead => &[Busy, IoErr],
            Step::Statement => &[IoErr, Full, Busy, RolledBack],
            Step::Commit => &[Busy, IoErr, Full, Landed],
            Step::Published | Step::Committed => &[],
        }
    }
}

impl Fault {
    fn parse(name: &str) -> Option<Fault> {
        Some(match name {
            "enospc" => Fault::Errno(libc::ENOSPC),
            "eio" => Fault::Errno(libc::EIO),
            "emfile" => Fault::Errno(libc::EMFILE),
            "short" => Fault::Short,
            "torn" => Fault::Torn,
            "busy" => Fault::Busy,
            "ioerr" => Fault::IoErr,
            "full" => Fault::Full,
            "rolledback" => Fault::RolledBack,
            "landed" => Fault::Landed,
            _ => return None,
        })
    }
}

/// How a step fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The call fails with this errno, and is not made.
    Errno(i32),
    /// A write or read moves only part of its bytes; the caller goes on with the rest.
    Short,
    /// A write moves part of its bytes, then fails with ENOSPC.
    Torn,
    /// SQLITE_BUSY.
    Busy,
    /// SQLITE_IOERR (SQLite undid the statement, or nothing was committed).
    IoErr,
    /// SQLITE_FULL.
    Full,
    /// SQLITE_IOERR after SQLite rolled back the whole transaction, as its
    /// documentation says IOERR, FULL, BUSY and NOMEM may do.
    RolledBack,
    /// The commit reached the disk, yet reported SQLITE_IOERR: a failed fsync of the
    /// WAL after its frames were written, which a restart's WAL recovery replays.
    Landed,
}

/// Who a step belongs to: a client's request, the reclaimer, or nobody counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    Request,
    Background,
    Exempt,
}

/// What `BLEEPSTORE_FAULTS` asks for.
#[derive(Clone, Debug, PartialEq)]
struct Plan {
    seed: u64,
    rate: f64,
    crash_at: Option<u64>,
    bg_crash_at: Option<u64>,
    /// (step, nth occurrence on the request lane, fault): faults aimed at one step.
    inject: Vec<(Step, u64, Fault)>,
}

impl Plan {
    fn parse(text: &str) -> Result<Plan, String> {
        let mut plan = Plan {
            seed: 0,
            rate: 0.0,
            crash_at: None,
            bg_crash_at: None,
            inject: Vec::new(),
        };
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}` is not name=value"))?;
            let bad = |e: &dyn std::fmt::Display| format!("{name}={value}: {e}");
            match name {
                "seed" => plan.seed = value.parse().map_err(|e| bad(&e))?,
                "rate" => plan.rate = value.parse().map_err(|e| bad(&e))?,
                "crash_at" => plan.crash_at = Some(value.parse().map_err(|e| bad(&e))?),
                "bg_crash_at" => plan.bg_crash_at = Some(value.parse().map_err(|e| bad(&e))?),
                "inject" => plan.inject.push(parse_inject(value).map_err(|e| bad(&e))?),
                _ => return Err(format!("unknown setting `{name}`")),
            }
        }
        if !(0.0..=1.0).contains(&plan.rate) {
            return Err(format!("rate={} is not between 0 and 1", plan.rate));
        }
        Ok(plan)
    }

    /// The fault, if any, for step number `index` (from 1) of `lane`.
    fn decide(&self, lane: Lane, index: u64, step: Step) -> Option<Fault> {
        let menu = step.menu();
        if menu.is_empty() {
            return None;
        }
        let lane_salt = match lane {
            Lane::Request => 0x5245_5155_4553_5400,
            _ => 0x4241_434b_4752_4e00,
        };
        let x = mix(self.seed ^ mix(index ^ lane_salt));
        let uniform = (x >> 11) as f64 / (1u64 << 53) as f64;
        if uniform >= self.rate {
            return None;
        }
        Some(menu[(mix(x) % menu.len() as u64) as usize])
    }
}

/// `STEP:FAULT[:NTH]`, as in `meta.commit:landed:2`.
fn parse_inject(value: &str) -> Result<(Step, u64, Fault), String> {
    let mut fields = value.split(':');
    let step = fields.next().unwrap_or_default();
    let step = Step::ALL
        .into_iter()
        .find(|s| s.name() == step)
        .ok_or_else(|| format!("no step `{step}`"))?;
    let fault = fields.next().unwrap_or_default();
    let fault = Fault::parse(fault).ok_or_else(|| format!("no fault `{fault}`"))?;
    let nth = match fields.next() {
        Some(n) => n.parse().map_err(|e| format!("`{n}`: {e}"))?,
        None => 1,
    };
    if fields.next().is_some() {
        return Err("more than STEP:FAULT:NTH".into());
    }
    Ok((step, nth, fault))
}

/// The SplitMix64 finaliser.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
static ARMED: AtomicBool = AtomicBool::new(false);
/// Steps counted so far on the request and background lanes.
static COUNTED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
/// Request-lane steps counted so far, by step (in `Step::ALL` order).
static COUNTED_BY_STEP: [AtomicU64; Step::ALL.len()] =
    [const { AtomicU64::new(0) }; Step::ALL.len()];

thread_local! {
    static LANE: Cell<Lane> = const { Cell::new(Lane::Request) };
}

fn plan() -> Option<&'static Plan> {
    PLAN.get_or_init(|| {
        let text = std::env::var("BLEEPSTORE_FAULTS").ok()?;
        match Plan::parse(&text) {
            Ok(plan) => Some(plan),
            Err(error) => {
                eprintln!("fault-injection: bad BLEEPSTORE_FAULTS: {error}");
                std::process::exit(2);
            }
        }
    })
    .as_ref()
}

/// Starts counting steps: called once recovery is done, before the first request.
pub(crate) fn arm() {
    if let Some(plan) = plan() {
        eprintln!(
            "fault-injection: armed seed={} rate={} crash_at={:?} bg_crash_at={:?} inject={:?}",
            plan.seed, plan.rate, plan.crash_at, plan.bg_crash_at, plan.inject
        );
        ARMED.store(true, Ordering::SeqCst);
    }
}

/// The lane the calling thread's steps count on now.
pub(crate) fn current_lane() -> Lane {
    LANE.with(Cell::get)
}

/// Exempts the calling thread's steps from faults and from the count.
pub(crate) fn exempt_thread() {
    LANE.with(|lane| lane.set(Lane::Exempt));
}

/// Runs `work` with the calling thread's steps on `lane` (the metadata writer sets a
/// batch's lane this way).
pub(crate) fn on_lane<T>(lane: Lane, work: impl FnOnce() -> T) -> T {
    let before = LANE.with(|cell| cell.replace(lane));
    let result = work();
    LANE.with(|cell| cell.set(before));
    result
}

/// The future `inner`, its steps counted on the background lane: the lane is set
/// around each poll, which is where a step is decided, before its call is submitted.
pub(crate) fn background<F: Future>(inner: F) -> Background<F> {
    Background {
        inner: Box::pin(inner),
    }
}

pub(crate) struct Background<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Background<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let inner = &mut self.get_mut().inner;
        on_lane(Lane::Background, || inner.as_mut().poll(cx))
    }
}

/// Counts one step on the calling thread's lane; crashes there if the plan says so,
/// and returns the fault to inject, if any.
pub(crate) fn at(step: Step) -> Option<Fault> {
    decided(step).map(|(fault, _)| fault)
}

/// As `at`, with 64 more bits of the decision, to place the fault with.
fn decided(step: Step) -> Option<(Fault, u64)> {
    if !ARMED.load(Ordering::Relaxed) {
        return None;
    }
    let plan = plan()?;
    let lane = LANE.with(Cell::get);
    let (counter, crash_at) = match lane {
        Lane::Request => (&COUNTED[0], plan.crash_at),
        Lane::Background => (&COUNTED[1], plan.bg_crash_at),
        Lane::Exempt => return None,
    };
    let index = counter.fetch_add(1, Ordering::SeqCst) + 1;
    let lane_name = if lane == Lane::Request {
        "request"
    } else {
        "background"
    };
    if crash_at == Some(index) {
        eprintln!(
            "fault-injection: crash at {lane_name} step {index} {}",
            step.name()
        );
        std::process::abort();
    }
    let aimed = if lane == Lane::Request && !plan.inject.is_empty() {
        let slot = Step::ALL.iter().position(|s| *s == step).unwrap_or(0);
        let nth = COUNTED_BY_STEP[slot].fetch_add(1, Ordering::SeqCst) + 1;
        plan.inject
            .iter()
            .find(|(s, n, _)| *s == step && *n == nth)
            .map(|(_, _, fault)| *fault)
    } else {
        None
    };
    let fault = aimed.or_else(|| plan.decide(lane, index, step))?;
    eprintln!(
        "fault-injection: inject {lane_name} step {index} {}: {fault:?}",
        step.name()
    );
    Some((fault, mix(plan.seed ^ index.rotate_left(17))))
}

/// A crash point that never fails.
pub(crate) fn pass(step: Step) {
    let _ = at(step);
}

/// A storage step: the injected errno as an error (the call is then not made).
pub(crate) fn io(step: Step) -> io::Result<()> {
    match at(step) {
        Some(Fault::Errno(errno)) => Err(io::Error::from_raw_os_error(errno)),
        _ => Ok(()),
    }
}

/// The write fault of one temp object, decided once, when the object is created, and
/// placed at a byte offset: how many writes a body takes depends on how its bytes
/// arrive from the socket, which the plan cannot know, but where its bytes go does not.
#[derive(Debug)]
pub(crate) struct WriteFault {
    at: u64,
    fault: Fault,
}

/// Decides the write fault of a new temp object (one write step per object): at byte
/// 0, or somewhere in its first 64 KiB, 1 MiB or 2 MiB.
pub(crate) fn plan_writes() -> Option<WriteFault> {
    let (fault, bits) = decided(Step::Write)?;
    let span = [1, 64 << 10, 1 << 20, 2 << 20][(bits % 4) as usize];
    let at = (bits >> 2) % span;
    eprintln!("fault-injection: the write reaching byte {at} suffers {fault:?}");
    Some(WriteFault { at, fault })
}

/// `file.write_all_at(buf, offset)`, suffering `planned` if this write reaches its
/// byte: an errno (nothing written), a short write (the bytes before it, then the rest
/// in a second call) or a torn one (the bytes before it, then ENOSPC).
pub(crate) async fn write_all_at(
    file: &File,
    buf: Vec<u8>,
    offset: u64,
    planned: &mut Option<WriteFault>,
) -> (io::Result<()>, Vec<u8>) {
    let end = offset + buf.len() as u64;
    let Some(WriteFault { at, fault }) = planned.take_if(|p| p.at < end) else {
        return file.write_all_at(buf, offset).await;
    };
    let head = (at.saturating_sub(offset) as usize).min(buf.len());
    match fault {
        Fault::Short | Fault::Torn if head > 0 => {
            let (result, slice) = file.write_all_at(buf.slice(..head), offset).await;
            let buf = slice.into_inner();
            if result.is_err() || fault == Fault::Torn {
                return (
                    result.and(Err(io::Error::from_raw_os_error(libc::ENOSPC))),
                    buf,
                );
            }
            let (result, slice) = file
                .write_all_at(buf.slice(head..), offset + head as u64)
                .await;
            (result, slice.into_inner())
        }
        Fault::Short => file.write_all_at(buf, offset).await,
        Fault::Errno(errno) => (Err(io::Error::from_raw_os_error(errno)), buf),
        _ => (Err(io::Error::from_raw_os_error(libc::ENOSPC)), buf),
    }
}

/// `file.read_at(buf, offset)` with the read step's faults: EIO, or a short read
/// (half of what the kernel gave).
pub(crate) async fn read_at(
    file: &File,
    buf: Vec<u8>,
    offset: u64,
) -> (io::Result<usize>, Vec<u8>) {
    match at(Step::Read) {
        Some(Fault::Errno(errno)) => (Err(io::Error::from_raw_os_error(errno)), buf),
        Some(Fault::Short) => {
            let (result, mut buf) = file.read_at(buf, offset).await;
            match result {
                Ok(n) if n > 1 => {
                    buf.truncate(n / 2);
                    (Ok(n / 2), buf)
                }
                other => (other, buf),
            }
        }
        _ => file.read_at(buf, offset).await,
    }
}

/// The SQLite error a fault stands for.
fn sqlite_error(fault: Fault) -> rusqlite::Error {
    let code = match fault {
        Fault::Busy => ffi::SQLITE_BUSY,
        Fault::Full => ffi::SQLITE_FULL,
        Fault::IoErr | Fault::RolledBack | Fault::Landed => ffi::SQLITE_IOERR,
        Fault::Errno(_) | Fault::Short | Fault::Torn => ffi::SQLITE_IOERR,
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(format!("injected {fault:?}")))
}

/// A metadata step (begin, read): the injected SQLite error.
pub(crate) fn sqlite(step: Step) -> rusqlite::Result<()> {
    match at(step) {
        Some(fault) => Err(sqlite_error(fault)),
        None => Ok(()),
    }
}

/// The statements of one write, failed before they run. `RolledBack` first rolls
/// back the whole transaction, as SQLite may on IOERR, FULL, BUSY or NOMEM.
pub(crate) fn statement(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    match at(Step::Statement) {
        Some(Fault::RolledBack) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(sqlite_error(Fault::RolledBack))
        }
        Some(fault) => Err(sqlite_error(fault)),
        None => Ok(()),
    }
}

/// COMMIT with the commit step's faults: an error instead of the commit, or
/// (`Landed`) the commit made durable and an IOERR reported all the same.
pub(crate) fn commit(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    match at(Step::Commit) {
        Some(Fault::Landed) => {
            conn.execute_batch("COMMIT")?;
            Err(sqlite_error(Fault::Landed))
        }
        Some(fault) => Err(sqlite_error(fault)),
        None => conn.execute_batch("COMMIT"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_and_decide_by_index() {
        let plan = Plan::parse("seed=42, rate=0.25,crash_at=137,bg_crash_at=3").unwrap();
        assert_eq!(
            plan,
            Plan {
                seed: 42,
                rate: 0.25,
                crash_at: Some(137),
                bg_crash_at: Some(3),
                inject: Vec::new(),
            }
        );
        let aimed =
            Plan::parse("rate=0,inject=meta.commit:landed:2,inject=storage.write:torn").unwrap();
        assert_eq!(
            aimed.inject,
            vec![
                (Step::Commit, 2, Fault::Landed),
                (Step::Write, 1, Fault::Torn)
            ]
        );
        assert!(Plan::parse("inject=meta.commit").is_err());
        assert!(Plan::parse("inject=meta.nothing:eio").is_err());
        assert!(Plan::parse("inject=storage.write:eio:x").is_err());
        assert!(Plan::parse("seed=x").is_err());
        assert!(Plan::parse("rate=2").is_err());
        assert!(Plan::parse("speed=1").is_err());
        let decisions = |plan: &Plan| -> Vec<Option<Fault>> {
            (1..=4000)
                .map(|i| plan.decide(Lane::Request, i, Step::Write))
                .collect()
        };
        let first = decisions(&plan);
        assert_eq!(first, decisions(&plan), "the same seed decides the same");
        let failed = first.iter().filter(|d| d.is_some()).count();
        assert!((800..1200).contains(&failed), "about a quarter: {failed}");
        for kind in Step::Write.menu() {
            assert!(first.contains(&Some(*kind)), "{kind:?} is chosen");
        }
        let other = Plan::parse("seed=43,rate=0.25").unwrap();
        assert_ne!(first, decisions(&other));
        assert_eq!(plan.decide(Lane::Request, 1, Step::Committed), None);
        let never = Plan::parse("seed=42,rate=0").unwrap();
        assert!(decisions(&never).iter().all(Option::is_none));
    }
}
