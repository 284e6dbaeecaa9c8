//! The log retention sweep (`LOG_RETENTION_TTL_DAYS`, or `LOG_RETENTION_TTL_SECONDS` for short
//! windows): a background task that sleeps on the clock until the oldest stored event or attempt is older than the TTL, then deletes what has
//! expired in batches of at most [`BATCH_ROWS`] rows, each batch its own write job (so
//! publishes and delivery outcomes interleave with a long sweep) followed by a pause as long as
//! the batch took (so a long sweep holds the writer at most about half the time), and sleeps
//! again until the
//! next oldest row expires. It never polls: with nothing stored it wakes one TTL from now (no
//! row stored later can expire sooner). Events that still have a queued delivery or a pending
//! retry, and their attempts, are kept; when a run had to keep some, the next run comes
//! [`PROTECTED_RECHECK`] later at the earliest. A run that deleted anything ends with one `info`
//! line: events and attempts deleted, rows kept for queued deliveries, and its wall-clock time.
//!
//! With a TTL of 0 there is no task at all. The task holds the `retention` heartbeat for as
//! long as it runs.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::{AbortHandle, JoinHandle};

use crate::clock::Clock;
use crate::liveness::Heartbeat;
use crate::store::{Store, StoreError, SweepCursor};

/// Rows one write job examines at most.
pub const BATCH_ROWS: usize = 250;
/// How long expired rows kept for a queued delivery wait before the next look.
pub const PROTECTED_RECHECK: Duration = Duration::from_secs(3_600);
/// How long the sweep waits after a storage error before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(60);

/// The running sweep.
pub struct Retention {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    status: RetentionStatus,
    heartbeat: Heartbeat,
}

/// Whether the sweep has caught up; cheap to clone.
#[derive(Clone)]
pub struct RetentionStatus {
    idle_until_ms: Arc<AtomicI64>,
    clock: Clock,
}

impl RetentionStatus {
    /// True while the sweep is asleep with nothing expired left to delete (up to rows it keeps
    /// for queued deliveries): the clock is before its next wake-up.
    pub fn is_idle(&self) -> bool {
        self.clock.now_ms() < self.idle_until_ms.load(Ordering::SeqCst)
    }
}

impl Retention {
    /// Starts the sweep for a TTL of `ttl` (none for zero; whole milliseconds count).
    pub fn start(store: Store, clock: Clock, ttl: Duration) -> Option<Retention> {
        let ttl_ms = ttl_millis(ttl);
        if ttl_ms == 0 {
            return None;
        }
        let (stop, stopped) = oneshot::channel();
        let idle_until_ms = Arc::new(AtomicI64::new(i64::MIN));
        let heartbeat = Heartbeat::new("retention");
        let running = heartbeat.start();
        let sweep = run(store, clock.clone(), ttl_ms, idle_until_ms.clone(), stopped);
        let task = tokio::spawn(async move {
            // Dropped when the task ends, panics or is aborted.
            let _running = running;
            sweep.await
        });
        Some(Retention {
            stop,
            task,
            status: RetentionStatus {
                idle_until_ms,
                clock,
            },
            heartbeat,
        })
    }

    /// The sweep's heartbeat: stopped once its task has ended.
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Aborts the sweep's task (a seam for tests of the health check).
    pub fn abort_handle(&self) -> AbortHandle {
        self.task.abort_handle()
    }

    pub fn status(&self) -> RetentionStatus {
        self.status.clone()
    }

    /// Stops the sweep (between two batches) and waits for it.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The TTL for the start-up log line: whole days as days, anything else in seconds; `None`
/// when retention is off.
pub fn describe_ttl(ttl: Duration) -> Option<String> {
    const DAY: u64 = 86_400;
    match ttl.as_secs() {
        _ if ttl_millis(ttl) == 0 => None,
        secs if secs % DAY == 0 && ttl.subsec_nanos() == 0 => Some(match secs / DAY {
            1 => "1 day".to_string(),
            days => format!("{days} days"),
        }),
        secs => Some(format!("{secs} s (LOG_RETENTION_TTL_SECONDS)")),
    }
}

/// `ttl` in whole milliseconds, saturating at `i64::MAX`.
fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

/// What one run did.
#[derive(Default)]
struct RunTotals {
    events: u64,
    attempts: u64,
    protected: u64,
}

/// Deletes everything unprotected stored before `cutoff_ms`, batch by batch. `None` when told
/// to stop in between.
async fn sweep(
    store: &Store,
    cutoff_ms: i64,
    stopped: &mut oneshot::Receiver<()>,
) -> Result<Option<RunTotals>, StoreError> {
    let protected = Arc::new(store.protected_events()?);
    let mut cursor = SweepCursor::default();
    let mut totals = RunTotals::default();
    loop {
        let began = Instant::now();
        let batch = tokio::select! {
            biased;
            _ = &mut *stopped => return Ok(None),
            batch = store.sweep_expired(cutoff_ms, cursor, protected.clone(), BATCH_ROWS) => batch?,
        };
        totals.events += batch.deleted_events;
        totals.attempts += batch.deleted_attempts;
        totals.protected += batch.protected;
        if batch.done {
            return Ok(Some(totals));
        }
        cursor = batch.cursor;
        // Leave the writer (and the CPU) to publishes and deliveries for as long again as this
        // batch took: a long sweep runs at most about half the time.
        tokio::select! {
            biased;
            _ = &mut *stopped => return Ok(None),
            () = tokio::time::sleep(began.elapsed()) => {}
        }
    }
}

async fn run(
    store: Store,
    clock: Clock,
    ttl_ms: i64,
    idle_until_ms: Arc<AtomicI64>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut not_before = i64::MIN;
    loop {
        let wake = match store.oldest_log_ms() {
            Ok(Some(oldest)) => oldest.saturating_add(ttl_ms).max(not_before),
            Ok(None) => clock.now_ms().saturating_add(ttl_ms),
            Err(error) => {
                tracing::error!(%error, "log retention: cannot read the oldest row");
                clock
                    .now_ms()
                    .saturating_add(ERROR_BACKOFF.as_millis() as i64)
            }
        };
        idle_until_ms.store(wake, Ordering::SeqCst);
        tokio::select! {
            biased;
            _ = &mut stopped => return,
            () = clock.sleep_until_ms(wake) => {}
        }
        idle_until_ms.store(i64::MIN, Ordering::SeqCst);
        let now = clock.now_ms();
        // Rows stored at `now - ttl` or earlier have expired (the wake-up above is exactly
        // the oldest row's time + ttl, so that row must go in this run).
        let cutoff_ms = now.saturating_sub(ttl_ms).saturating_add(1);
        let started = Instant::now();
        match sweep(&store, cutoff_ms, &mut stopped).await {
            Ok(None) => return,
            Ok(Some(totals)) => {
                if totals.events + totals.attempts > 0 {
                    tracing::info!(
                        events = totals.events,
                        attempts = totals.attempts,
                        kept_for_queued_deliveries = totals.protected,
                        took_ms = started.elapsed().as_millis() as u64,
                        "log retention: deleted events and attempts older than the TTL"
                    );
                }
                not_before = if totals.protected > 0 {
                    now.saturating_add(PROTECTED_RECHECK.as_millis() as i64)
                } else if totals.events + totals.attempts == 0 {
                    // Woken with nothing to do (a row deleted meanwhile by other means): never
                    // spin on the same wake-up.
                    now.saturating_add(ERROR_BACKOFF.as_millis() as i64)
                } else {
                    i64::MIN
                };
            }
            Err(error) => {
                tracing::error!(%error, "log retention: a sweep failed; trying again later");
                not_before = now.saturating_add(ERROR_BACKOFF.as_millis() as i64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_in_millis_and_words() {
        assert_eq!(ttl_millis(Duration::from_secs(5)), 5_000);
        assert_eq!(ttl_millis(Duration::from_secs(30 * 86_400)), 2_592_000_000);
        assert_eq!(ttl_millis(Duration::MAX), i64::MAX);
        assert_eq!(ttl_millis(Duration::from_micros(999)), 0);
        assert_eq!(describe_ttl(Duration::ZERO), None);
        assert_eq!(
            describe_ttl(Duration::from_secs(86_400)).as_deref(),
            Some("1 day")
        );
        assert_eq!(
            describe_ttl(Duration::from_secs(30 * 86_400)).as_deref(),
            Some("30 days")
        );
        assert_eq!(
            describe_ttl(Duration::from_secs(5)).as_deref(),
            Some("5 s (LOG_RETENTION_TTL_SECONDS)")
        );
    }
}
