//! The clock seam: everything that needs "now" asks a `Clock`, so tests can control time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// When set, a fixed offset in milliseconds added to the system time.
    skew_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_nanos() / 1_000_000
    }

    /// Nanoseconds since the Unix epoch.
    pub fn now_nanos(&self) -> i64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        system + self.skew_ms.load(Ordering::Relaxed) * 1_000_000
    }

    /// Moves this clock (and its clones) forward by `ms`.
    #[cfg(test)]
    pub fn advance_ms(&self, ms: i64) {
        self.skew_ms.fetch_add(ms, Ordering::Relaxed);
    }
}
