//! What the process knows about itself across cores: whether it is ready or
//! draining, each core's open connections and in-flight requests, and a control
//! channel to every core (stop accepting; send me your metrics). Each per-core
//! figure is written only by its own core and padded to its own cache line; other
//! threads only read it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ops::metrics::CoreMetrics;

/// A request to one core's control task.
pub(crate) enum Control {
    /// Reply with a copy of the core's metrics.
    Snapshot(flume::Sender<CoreMetrics>),
    /// Close the listener: the process is draining.
    StopAccepting,
    /// Close this core's longest-idle connection, if any, to make room under the
    /// connection cap; the reply says whether one was closed.
    ReapIdle(flume::Sender<bool>),
}

/// One core's figures, alone on a cache line so cores never contend for it.
#[repr(align(128))]
#[derive(Default)]
struct CoreFigures {
    connections: AtomicUsize,
    in_flight: AtomicUsize,
}

pub(crate) struct Lifecycle {
    ready: AtomicBool,
    draining: AtomicBool,
    started: Instant,
    start_unix_seconds: f64,
    figures: Vec<CoreFigures>,
    controls: Vec<flume::Sender<Control>>,
}

impl Lifecycle {
    /// A lifecycle for `cores` cores, with the receiving end of each core's control channel.
    pub(crate) fn new(cores: usize) -> (Arc<Lifecycle>, Vec<flume::Receiver<Control>>) {
        let (controls, receivers): (Vec<_>, Vec<_>) =
            (0..cores).map(|_| flume::unbounded()).unzip();
        let lifecycle = Lifecycle {
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            started: Instant::now(),
            start_unix_seconds: crate::clock::now_unix_millis() as f64 / 1000.0,
            figures: (0..cores).map(|_| CoreFigures::default()).collect(),
            controls,
        };
        (Arc::new(lifecycle), receivers)
    }

    /// Serving, and not draining: what /readyz reports.
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.is_draining()
    }

    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    pub(crate) fn start_unix_seconds(&self) -> f64 {
        self.start_unix_seconds
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Begins the drain: /readyz turns 503 and every core closes its listener.
    pub(crate) fn begin_drain(&self) {
        self.draining.store(true, Ordering::Release);
        for control in &self.controls {
            let _ = control.send(Control::StopAccepting);
        }
    }

    /// Requests being served on all cores right now.
    pub(crate) fn in_flight(&self) -> usize {
        self.figures
            .iter()
            .map(|f| f.in_flight.load(Ordering::Acquire))
            .sum()
    }

    /// Connections open on all cores right now.
    pub(crate) fn connections(&self) -> usize {
        self.figures
            .iter()
            .map(|f| f.connections.load(Ordering::Relaxed))
            .sum()
    }

    /// Asks the other cores, in turn, to close one idle connection; true once one did.
    pub(crate) async fn reap_idle_elsewhere(&self, core: usize) -> bool {
        for (other, control) in self.controls.iter().enumerate() {
            if other == core {
                continue;
            }
            let (tx, rx) = flume::bounded(1);
            if control.send(Control::ReapIdle(tx)).is_ok() && rx.recv_async().await == Ok(true) {
                return true;
            }
        }
        false
    }

    /// Counts a connection of `core` until the guard drops.
    pub(crate) fn connection(self: &Arc<Self>, core: usize) -> FigureGuard {
        FigureGuard::new(self.clone(), core, Figure::Connections)
    }

    /// Counts a request of `core` as in flight until the guard drops.
    pub(crate) fn request(self: &Arc<Self>, core: usize) -> FigureGuard {
        FigureGuard::new(self.clone(), core, Figure::InFlight)
    }

    /// Every core's metrics, merged. A core that does not answer within `wait`
    /// (it is stuck or gone) is left out rather than stalling the scrape.
    pub(crate) async fn gather_metrics(&self, wait: Duration) -> CoreMetrics {
        let mut replies = Vec::with_capacity(self.controls.len());
        for control in &self.controls {
            let (tx, rx) = flume::bounded(1);
            if control.send(Control::Snapshot(tx)).is_ok() {
                replies.push(rx);
            }
        }
        let mut merged = CoreMetrics::default();
        for rx in replies {
            if let Ok(Ok(snapshot)) = monoio::time::timeout(wait, rx.recv_async()).await {
                merged.merge(&snapshot);
            }
        }
        merged
    }

    /// Waits until no request is in flight, `max` has passed or `interrupted` says
    /// to stop waiting; true when none is left.
    pub(crate) fn wait_idle(&self, max: Duration, mut interrupted: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + max;
        loop {
            if self.in_flight() == 0 {
                return true;
            }
            if Instant::now() >= deadline || interrupted() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[derive(Clone, Copy)]
enum Figure {
    Connections,
    InFlight,
}

/// Holds one unit of a core's figure; gives it back when dropped, on every path.
pub(crate) struct FigureGuard {
    lifecycle: Arc<Lifecycle>,
    core: usize,
    figure: Figure,
}

impl FigureGuard {
    fn new(lifecycle: Arc<Lifecycle>, core: usize, figure: Figure) -> FigureGuard {
        lifecycle
            .counter(core, figure)
            .fetch_add(1, Ordering::AcqRel);
        FigureGuard {
            lifecycle,
            core,
            figure,
        }
    }
}

impl Drop for FigureGuard {
    fn drop(&mut self) {
        self.lifecycle
            .counter(self.core, self.figure)
            .fetch_sub(1, Ordering::AcqRel);
    }
}

impl Lifecycle {
    fn counter(&self, core: usize, figure: Figure) -> &AtomicUsize {
        let figures = &self.figures[core];
        match figure {
            Figure::Connections => &figures.connections,
            Figure::InFlight => &figures.in_flight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_and_give_back() {
        let (lifecycle, receivers) = Lifecycle::new(2);
        assert!(!lifecycle.is_ready());
        lifecycle.set_ready();
        assert!(lifecycle.is_ready());
        {
            let _a = lifecycle.request(0);
            let _b = lifecycle.request(1);
            let _c = lifecycle.connection(1);
            assert_eq!(lifecycle.in_flight(), 2);
            assert_eq!(lifecycle.connections(), 1);
            assert!(!lifecycle.wait_idle(Duration::from_millis(30), || false));
            assert!(!lifecycle.wait_idle(Duration::from_secs(60), || true));
        }
        assert!(lifecycle.wait_idle(Duration::ZERO, || false));
        lifecycle.begin_drain();
        assert!(!lifecycle.is_ready());
        for rx in receivers {
            assert!(matches!(rx.try_recv(), Ok(Control::StopAccepting)));
        }
    }
}
