//! Liveness of the server's workers — the HTTP server, the store writer, the dispatcher, the
//! log retention sweep — for `/healthz` and the systemd watchdog. Each worker holds a
//! [`Heartbeat`]: a guard taken when it starts and dropped when it ends (returning, failing,
//! panicking or being aborted alike) marks it stopped, and a worker that does bounded units
//! of work (the writer's commits) marks itself busy for each; busy for longer than the stuck
//! threshold counts as stuck. Nothing polls: an idle worker touches nothing, and a check
//! only reads a few atomics, against a monotonic clock so a wall-clock step never looks like a
//! stuck worker.
//!
//! [`Liveness`] is the set of one server's heartbeats; its [`Liveness::report`] logs each
//! change of the set of failed workers once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long one unit of work (a commit) may take before its worker counts as stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

/// Nanoseconds since the first call in this process, on the monotonic clock.
fn monotonic_nanos() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let elapsed = ORIGIN.get_or_init(Instant::now).elapsed();
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

struct Beat {
    name: &'static str,
    running: AtomicBool,
    /// When the current unit of work began (monotonic nanoseconds plus one); 0 when idle.
    busy_since: AtomicU64,
}

/// One worker's liveness; cheap to clone. A new heartbeat reads as stopped until
/// [`Heartbeat::start`].
#[derive(Clone)]
pub struct Heartbeat(Arc<Beat>);

/// Keeps a heartbeat running; dropping it marks the worker stopped.
#[must_use = "the worker counts as stopped once this is dropped"]
pub struct Running(Heartbeat);

impl Drop for Running {
    fn drop(&mut self) {
        self.0 .0.running.store(false, Ordering::Relaxed);
    }
}

/// Marks a heartbeat busy; dropping it marks the worker idle again.
#[must_use = "the worker counts as idle once this is dropped"]
pub struct Busy<'h>(&'h Heartbeat);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0 .0.busy_since.store(0, Ordering::Relaxed);
    }
}

/// What a check found about one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    Healthy,
    /// The worker has ended.
    Stopped,
    /// One unit of work has been running this long, at least the stuck threshold.
    Stuck(Duration),
}

impl Heartbeat {
    pub fn new(name: &'static str) -> Heartbeat {
        Heartbeat(Arc::new(Beat {
            name,
            running: AtomicBool::new(false),
            busy_since: AtomicU64::new(0),
        }))
    }

    /// The worker's name in `/healthz`.
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// Marks the worker running until the returned guard is dropped. Take it before spawning
    /// the worker and move it in, so the worker never reads as stopped before its first poll.
    pub fn start(&self) -> Running {
        self.0.running.store(true, Ordering::Relaxed);
        Running(self.clone())
    }

    /// Marks the worker busy with one unit of work until the returned guard is dropped.
    pub fn busy(&self) -> Busy<'_> {
        self.0
            .busy_since
            .store(monotonic_nanos().saturating_add(1), Ordering::Relaxed);
        Busy(self)
    }

    fn state_at(&self, now_nanos: u64, stuck_after: Duration) -> WorkerState {
        if !self.0.running.load(Ordering::Relaxed) {
            return WorkerState::Stopped;
        }
        match self.0.busy_since.load(Ordering::Relaxed) {
            0 => WorkerState::Healthy,
            since => {
                let busy_for = Duration::from_nanos(now_nanos.saturating_sub(since - 1));
                if busy_for >= stuck_after {
                    WorkerState::Stuck(busy_for)
                } else {
                    WorkerState::Healthy
                }
            }
        }
    }
}

struct Registry {
    workers: Vec<Heartbeat>,
    stuck_after_nanos: AtomicU64,
    /// The failed workers of the previous report, to log changes once.
    last_failed: Mutex<Vec<&'static str>>,
}

/// The heartbeats of one server; cheap to clone.
#[derive(Clone)]
pub struct Liveness(Arc<Registry>);

/// Every worker's state at one check, in registration order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub workers: Vec<(&'static str, WorkerState)>,
}

impl Report {
    pub fn is_healthy(&self) -> bool {
        self.workers
            .iter()
            .all(|(_, state)| *state == WorkerState::Healthy)
    }

    /// The names of the workers that are not healthy.
    pub fn failed(&self) -> Vec<&'static str> {
        self.workers
            .iter()
            .filter(|(_, state)| *state != WorkerState::Healthy)
            .map(|(name, _)| *name)
            .collect()
    }
}

impl Liveness {
    pub fn new(workers: Vec<Heartbeat>) -> Liveness {
        Liveness(Arc::new(Registry {
            workers,
            stuck_after_nanos: AtomicU64::new(STUCK_AFTER.as_nanos() as u64),
            last_failed: Mutex::new(Vec::new()),
        }))
    }

    /// Changes how long a unit of work may run before its worker counts as stuck
    /// ([`STUCK_AFTER`] unless changed).
    pub fn set_stuck_after(&self, threshold: Duration) {
        let nanos = u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX);
        self.0.stuck_after_nanos.store(nanos, Ordering::Relaxed);
    }

    /// Checks every worker now.
    pub fn report(&self) -> Report {
        let report = self.report_at(monotonic_nanos());
        self.log_changes(&report);
        report
    }

    fn report_at(&self, now_nanos: u64) -> Report {
        let stuck_after = Duration::from_nanos(self.0.stuck_after_nanos.load(Ordering::Relaxed));
        Report {
            workers: self
                .0
                .workers
                .iter()
                .map(|worker| (worker.name(), worker.state_at(now_nanos, stuck_after)))
                .collect(),
        }
    }

    fn log_changes(&self, report: &Report) {
        let failed = report.failed();
        let mut last = self
            .0
            .last_failed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *last == failed {
            return;
        }
        for (name, state) in &report.workers {
            match state {
                WorkerState::Stopped if !last.contains(name) => {
                    tracing::error!(worker = name, "health: the worker has stopped")
                }
                WorkerState::Stuck(busy_for) if !last.contains(name) => tracing::error!(
                    worker = name,
                    busy_seconds = busy_for.as_secs(),
                    "health: the worker is stuck in one unit of work"
                ),
                WorkerState::Healthy if last.contains(name) => {
                    tracing::info!(worker = name, "health: the worker is healthy again")
                }
                _ => {}
            }
        }
        *last = failed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn a_heartbeat_is_stopped_until_started_and_after_its_guard_drops() {
        let beat = Heartbeat::new("worker");
        let liveness = Liveness::new(vec![beat.clone()]);
        assert_eq!(liveness.report().failed(), ["worker"]);
        let running = beat.start();
        assert!(liveness.report().is_healthy());
        drop(running);
        assert_eq!(
            liveness.report().workers,
            [("worker", WorkerState::Stopped)]
        );
    }

    #[test]
    fn a_guard_dropped_by_a_panic_marks_the_worker_stopped() {
        let beat = Heartbeat::new("worker");
        let running = beat.start();
        let thread = std::thread::spawn(move || {
            let _running = running;
            panic!("the worker failed");
        });
        assert!(thread.join().is_err());
        assert_eq!(
            beat.state_at(monotonic_nanos(), STUCK_AFTER),
            WorkerState::Stopped
        );
    }

    #[test]
    fn busy_is_healthy_until_the_threshold_and_idle_always_is() {
        let beat = Heartbeat::new("writer");
        let _running = beat.start();
        let threshold = Duration::from_secs(30);
        let far_future = monotonic_nanos() + 3_600 * SECOND;
        assert_eq!(beat.state_at(far_future, threshold), WorkerState::Healthy);
        let busy = beat.busy();
        let since = beat.0.busy_since.load(Ordering::Relaxed) - 1;
        assert_eq!(
            beat.state_at(since + 29 * SECOND, threshold),
            WorkerState::Healthy
        );
        assert_eq!(
            beat.state_at(since + 30 * SECOND, threshold),
            WorkerState::Stuck(Duration::from_secs(30))
        );
        drop(busy);
        assert_eq!(beat.state_at(far_future, threshold), WorkerState::Healthy);
    }

    #[test]
    fn the_report_names_every_failed_worker_in_order() {
        let (a, b, c) = (
            Heartbeat::new("a"),
            Heartbeat::new("b"),
            Heartbeat::new("c"),
        );
        let (_a, _c) = (a.start(), c.start());
        let liveness = Liveness::new(vec![a, b, c.clone()]);
        liveness.set_stuck_after(Duration::ZERO);
        let _busy = c.busy();
        let report = liveness.report();
        assert!(!report.is_healthy());
        assert_eq!(report.failed(), ["b", "c"]);
        assert!(matches!(report.workers[2].1, WorkerState::Stuck(_)));
    }
}
