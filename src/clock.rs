//! The clock seam: everything that needs "now" — retry due times, idempotency and secret
//! expiry, token expiry, attempt times — asks a `Clock` instead of the system directly, and
//! everything that waits for a wall-clock instant (the dispatcher's next due retry) sleeps on
//! it. The system clock reads the real time; a manual clock stands still until its
//! [`ClockControl`] moves it, so tests decide when a retry becomes due.
//!
//! Timeouts of network exchanges and shutdown grace periods are durations, not instants: they
//! stay on tokio's timer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Debug)]
enum Source {
    System,
    /// Unix nanoseconds, moved only by a `ClockControl`; receivers wake when it moves.
    Manual(watch::Receiver<i64>),
}

/// Moves a manual clock. Dropping it freezes the clock where it is.
#[derive(Debug)]
pub struct ClockControl {
    now: Arc<watch::Sender<i64>>,
}

fn system_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Clock {
    pub fn system() -> Clock {
        Clock {
            source: Source::System,
        }
    }

    /// A clock that stands at `start_nanos` (unix nanoseconds) until moved.
    pub fn manual(start_nanos: i64) -> (Clock, ClockControl) {
        let (sender, receiver) = watch::channel(start_nanos);
        (
            Clock {
                source: Source::Manual(receiver),
            },
            ClockControl {
                now: Arc::new(sender),
            },
        )
    }

    /// A manual clock starting at the current real time.
    pub fn manual_from_now() -> (Clock, ClockControl) {
        Clock::manual(system_nanos())
    }

    /// Nanoseconds since the Unix epoch.
    pub fn now_nanos(&self) -> i64 {
        match &self.source {
            Source::System => system_nanos(),
            Source::Manual(now) => *now.borrow(),
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_nanos().div_euclid(1_000_000)
    }

    /// Seconds since the Unix epoch.
    pub fn now_seconds(&self) -> i64 {
        self.now_nanos().div_euclid(1_000_000_000)
    }

    /// Resolves once the clock reads `due_ms` (unix ms) or later.
    pub async fn sleep_until_ms(&self, due_ms: i64) {
        match &self.source {
            Source::System => {
                let wait = due_ms.saturating_sub(self.now_ms());
                if wait > 0 {
                    tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                }
            }
            Source::Manual(now) => {
                let mut now = now.clone();
                loop {
                    if now.borrow_and_update().div_euclid(1_000_000) >= due_ms {
                        return;
                    }
                    if now.changed().await.is_err() {
                        // The control is gone: the clock never moves again.
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    }
}

impl ClockControl {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.now.send_modify(|now| *now = now.saturating_add(by));
    }

    /// The time the clock reads, in unix nanoseconds.
    pub fn now_nanos(&self) -> i64 {
        *self.now.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let (clock, control) = Clock::manual(5_000_000_000);
        assert_eq!(clock.now_ms(), 5_000);
        assert_eq!(clock.now_seconds(), 5);
        control.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now_ms(), 6_500);
        assert_eq!(control.now_nanos(), 6_500_000_000);
    }

    #[tokio::test]
    async fn sleeping_on_a_manual_clock_wakes_at_the_due_time() {
        let (clock, control) = Clock::manual(0);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until_ms(1_000).await }
        });
        control.advance(Duration::from_millis(999));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        control.advance(Duration::from_millis(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woke")
            .expect("joined");
        // A due time already passed resolves at once.
        clock.sleep_until_ms(10).await;
    }

    #[tokio::test]
    async fn the_system_clock_sleeps_until_the_due_time() {
        let clock = Clock::system();
        let due = clock.now_ms() + 20;
        clock.sleep_until_ms(due).await;
        assert!(clock.now_ms() >= due);
    }
}
