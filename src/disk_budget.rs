//! The disk budget: whether `POST /publish` may write more, given `DATA_MAX_BYTES` (the size of
//! the store file) and `DATA_MIN_FREE_BYTES` (free space on the file system holding `DATA_DIR`).
//!
//! Only new events are refused: deliveries of what is stored, reads, deletes, manual retries and
//! retention keep working, so a full store drains and shrinks while publishers back off.
//!
//! Measuring costs two system calls (a `stat` of the store file, a `statvfs` of the data
//! directory), so the verdict is cached and measured again at most every [`REFRESH`] by the
//! server's [`Clock`], lazily, by the first publish that finds it stale — there is no polling
//! thread, so an idle server does no work. A refused publisher is told to come back after
//! [`RETRY_AFTER_SECONDS`]; by then the verdict is stale and the next publish measures again,
//! so publishing resumes by itself once the store is back under budget.
//!
//! A measurement that fails (the data directory unreadable, say) does not stop publishing: the
//! writes themselves would fail with their own errors. It is logged once until one succeeds.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::clock::Clock;

/// How long a verdict stands before the next publish measures again.
pub const REFRESH_MS: i64 = 500;
/// [`REFRESH_MS`] as a duration, for documentation and tests.
pub const REFRESH: std::time::Duration = std::time::Duration::from_millis(REFRESH_MS as u64);
/// The `Retry-After` a refused publish carries.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// The limits in force (from `DATA_MAX_BYTES` and `DATA_MIN_FREE_BYTES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest the store file may be; `None`: no limit.
    pub max_bytes: Option<u64>,
    /// The least free space the file system must keep; 0: no limit.
    pub min_free_bytes: u64,
}

impl Limits {
    /// True when neither limit is set: nothing is ever measured.
    pub fn unlimited(&self) -> bool {
        self.max_bytes.is_none() && self.min_free_bytes == 0
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        let mut when = Vec::new();
        if let Some(max) = self.max_bytes {
            when.push(format!(
                "the store file exceeds {max} bytes (DATA_MAX_BYTES)"
            ));
        }
        if self.min_free_bytes > 0 {
            when.push(format!(
                "less than {} bytes are free beside it (DATA_MIN_FREE_BYTES)",
                self.min_free_bytes
            ));
        }
        if when.is_empty() {
            "off (DATA_MAX_BYTES unset, DATA_MIN_FREE_BYTES=0)".to_string()
        } else {
            format!("publishing pauses while {}", when.join(" or "))
        }
    }
}

/// Why publishing is refused: which limit, the figure measured and the limit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    #[error(
        "publishing is paused: the data file is {size} bytes, over DATA_MAX_BYTES={limit}; \
         it resumes once the store is back under the limit"
    )]
    StoreTooLarge { size: u64, limit: u64 },
    #[error(
        "publishing is paused: the file system holding DATA_DIR has {free} bytes free, under \
         DATA_MIN_FREE_BYTES={limit}; it resumes once more space is free"
    )]
    LowFreeSpace { free: u64, limit: u64 },
}

/// Where the figures come from: the real disk in the server, a fake in tests.
pub trait Measure: Send + Sync {
    /// Size of the store file in bytes.
    fn store_bytes(&self) -> io::Result<u64>;
    /// Bytes available to this process on the file system holding the data directory.
    fn free_bytes(&self) -> io::Result<u64>;
}

/// Measures the store file and the file system holding the data directory.
#[derive(Debug)]
pub struct DiskMeasure {
    store_file: PathBuf,
    data_dir: PathBuf,
}

impl DiskMeasure {
    pub fn new(data_dir: &Path, store_file: &Path) -> DiskMeasure {
        DiskMeasure {
            store_file: store_file.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
        }
    }
}

impl Measure for DiskMeasure {
    fn store_bytes(&self) -> io::Result<u64> {
        Ok(std::fs::metadata(&self.store_file)?.len())
    }

    fn free_bytes(&self) -> io::Result<u64> {
        let stats = rustix::fs::statvfs(&self.data_dir)?;
        // Blocks available to unprivileged users (not the root reserve), in fragment units.
        Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
    }
}

/// The last measurement: when it was taken and what it said.
struct Verdict {
    checked_ms: i64,
    refusal: Option<OverBudget>,
    /// A measurement failed since the last success (logged once).
    failing: bool,
}

/// Answers "may this publish write?" from a cached verdict, refreshed every [`REFRESH`].
pub struct DiskBudget {
    limits: Limits,
    measure: Box<dyn Measure>,
    clock: Clock,
    verdict: Mutex<Option<Verdict>>,
}

impl std::fmt::Debug for DiskBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskBudget")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl DiskBudget {
    pub fn new(limits: Limits, measure: Box<dyn Measure>, clock: Clock) -> DiskBudget {
        DiskBudget {
            limits,
            measure,
            clock,
            verdict: Mutex::new(None),
        }
    }

    /// The budget of a data directory on the real disk.
    pub fn on_disk(limits: Limits, data_dir: &Path, store_file: &Path, clock: Clock) -> DiskBudget {
        DiskBudget::new(
            limits,
            Box::new(DiskMeasure::new(data_dir, store_file)),
            clock,
        )
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// `Ok` when publishing may write, or which limit is crossed. Measures only when the
    /// cached verdict is older than [`REFRESH`] (or the clock went back).
    pub fn check(&self) -> Result<(), OverBudget> {
        if self.limits.unlimited() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let mut cached = self.verdict.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = cached
            .as_ref()
            .is_some_and(|v| now >= v.checked_ms && now.saturating_sub(v.checked_ms) < REFRESH_MS);
        if !fresh {
            let previous = cached.take();
            *cached = Some(self.measure_now(now, previous));
        }
        match cached.as_ref().and_then(|v| v.refusal.clone()) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
    }

    fn measure_now(&self, now: i64, previous: Option<Verdict>) -> Verdict {
        let was_refusing = previous.as_ref().is_some_and(|v| v.refusal.is_some());
        let was_failing = previous.as_ref().is_some_and(|v| v.failing);
        let outcome = self.evaluate();
        let (refusal, failing) = match outcome {
            Ok(refusal) => (refusal, false),
            Err(error) => {
                if !was_failing {
                    tracing::warn!(
                        %error,
                        "cannot measure the disk budget; publishing is not limited until it can"
                    );
                }
                (None, true)
            }
        };
        match (&refusal, was_refusing) {
            (Some(refusal), false) => tracing::warn!("{refusal}"),
            (None, true) => tracing::info!("publishing resumed: the store is back under budget"),
            _ => {}
        }
        Verdict {
            checked_ms: now,
            refusal,
            failing,
        }
    }

    /// Measures what the limits need and compares; the store size is checked first.
    fn evaluate(&self) -> io::Result<Option<OverBudget>> {
        if let Some(limit) = self.limits.max_bytes {
            let size = self.measure.store_bytes()?;
            if size > limit {
                return Ok(Some(OverBudget::StoreTooLarge { size, limit }));
            }
        }
        if self.limits.min_free_bytes > 0 {
            let limit = self.limits.min_free_bytes;
            let free = self.measure.free_bytes()?;
            if free < limit {
                return Ok(Some(OverBudget::LowFreeSpace { free, limit }));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::clock::ClockControl;

    /// Figures a test sets; counts how often each is read.
    #[derive(Default)]
    struct Fake {
        store: AtomicU64,
        free: AtomicU64,
        fail: std::sync::atomic::AtomicBool,
        reads: AtomicUsize,
    }

    impl Measure for Arc<Fake> {
        fn store_bytes(&self) -> io::Result<u64> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(io::Error::other("gone"));
            }
            Ok(self.store.load(Ordering::SeqCst))
        }
        fn free_bytes(&self) -> io::Result<u64> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err(io::Error::other("gone"));
            }
            Ok(self.free.load(Ordering::SeqCst))
        }
    }

    fn budget(limits: Limits, store: u64, free: u64) -> (DiskBudget, Arc<Fake>, ClockControl) {
        let fake = Arc::new(Fake::default());
        fake.store.store(store, Ordering::SeqCst);
        fake.free.store(free, Ordering::SeqCst);
        let (clock, control) = Clock::manual(1_000_000_000_000);
        (
            DiskBudget::new(limits, Box::new(fake.clone()), clock),
            fake,
            control,
        )
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_store_size_limit_refuses_above_it_only() {
        let limits = Limits {
            max_bytes: Some(10 * MIB),
            min_free_bytes: 0,
        };
        let (at_limit, _, _) = budget(limits, 10 * MIB, 0);
        assert_eq!(at_limit.check(), Ok(()));
        let (over, _, _) = budget(limits, 10 * MIB + 1, 0);
        let refusal = over.check().unwrap_err();
        assert_eq!(
            refusal,
            OverBudget::StoreTooLarge {
                size: 10 * MIB + 1,
                limit: 10 * MIB
            }
        );
        let message = refusal.to_string();
        assert!(message.contains("DATA_MAX_BYTES=10485760"), "{message}");
        assert!(message.contains("10485761 bytes"), "{message}");
    }

    #[test]
    fn the_free_space_limit_refuses_below_it_only() {
        let limits = Limits {
            max_bytes: None,
            min_free_bytes: 256 * MIB,
        };
        let (enough, _, _) = budget(limits, u64::MAX, 256 * MIB);
        assert_eq!(enough.check(), Ok(()));
        let (short, _, _) = budget(limits, 0, 256 * MIB - 1);
        let message = short.check().unwrap_err().to_string();
        assert!(
            message.contains("DATA_MIN_FREE_BYTES=268435456"),
            "{message}"
        );
        assert!(message.contains("268435455 bytes free"), "{message}");
    }

    #[test]
    fn the_limits_describe_themselves() {
        let both = Limits {
            max_bytes: Some(1000),
            min_free_bytes: 5,
        };
        assert_eq!(
            both.describe(),
            "publishing pauses while the store file exceeds 1000 bytes (DATA_MAX_BYTES) or less \
             than 5 bytes are free beside it (DATA_MIN_FREE_BYTES)"
        );
        let off = Limits {
            max_bytes: None,
            min_free_bytes: 0,
        };
        assert!(off.describe().starts_with("off"), "{}", off.describe());
    }

    #[test]
    fn unset_limits_measure_nothing() {
        let limits = Limits {
            max_bytes: None,
            min_free_bytes: 0,
        };
        assert!(limits.unlimited());
        let (budget, fake, _) = budget(limits, u64::MAX, 0);
        assert_eq!(budget.check(), Ok(()));
        assert_eq!(fake.reads.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn an_unset_max_reads_only_free_space_and_zero_min_free_only_the_size() {
        let (free_only, fake, _) = budget(
            Limits {
                max_bytes: None,
                min_free_bytes: 1,
            },
            u64::MAX,
            1,
        );
        assert_eq!(free_only.check(), Ok(()));
        assert_eq!(fake.reads.load(Ordering::SeqCst), 1);
        let (size_only, fake, _) = budget(
            Limits {
                max_bytes: Some(100),
                min_free_bytes: 0,
            },
            100,
            0,
        );
        assert_eq!(size_only.check(), Ok(()));
        assert_eq!(fake.reads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_store_size_is_named_when_both_limits_are_crossed() {
        let (both, _, _) = budget(
            Limits {
                max_bytes: Some(1),
                min_free_bytes: 10,
            },
            2,
            0,
        );
        assert!(matches!(
            both.check(),
            Err(OverBudget::StoreTooLarge { .. })
        ));
    }

    #[test]
    fn the_verdict_is_cached_until_the_refresh_window_passes() {
        let limits = Limits {
            max_bytes: Some(100),
            min_free_bytes: 0,
        };
        let (budget, fake, clock) = budget(limits, 50, 0);
        assert_eq!(budget.check(), Ok(()));
        assert_eq!(fake.reads.load(Ordering::SeqCst), 1);
        // The store grows past the limit: the cached verdict stands for the window...
        fake.store.store(150, Ordering::SeqCst);
        for _ in 0..100 {
            assert_eq!(budget.check(), Ok(()));
        }
        clock.advance(REFRESH - Duration::from_millis(1));
        assert_eq!(budget.check(), Ok(()));
        assert_eq!(fake.reads.load(Ordering::SeqCst), 1);
        // ...and the first check after it measures again.
        clock.advance(Duration::from_millis(1));
        assert!(budget.check().is_err());
        assert_eq!(fake.reads.load(Ordering::SeqCst), 2);
        assert!(budget.check().is_err());
        assert_eq!(fake.reads.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn publishing_resumes_once_the_refusal_window_expires_under_budget() {
        let limits = Limits {
            max_bytes: Some(100),
            min_free_bytes: 1000,
        };
        let (budget, fake, clock) = budget(limits, 50, 10);
        assert!(matches!(
            budget.check(),
            Err(OverBudget::LowFreeSpace {
                free: 10,
                limit: 1000
            })
        ));
        fake.free.store(5000, Ordering::SeqCst);
        assert!(budget.check().is_err(), "cached within the window");
        clock.advance(REFRESH);
        assert_eq!(budget.check(), Ok(()));
        // Within a refused publisher's Retry-After the verdict is always stale again.
        const { assert!(RETRY_AFTER_SECONDS * 1000 > REFRESH_MS as u64) };
    }

    #[test]
    fn a_clock_that_went_back_measures_again() {
        let limits = Limits {
            max_bytes: Some(100),
            min_free_bytes: 0,
        };
        let (clock, control) = Clock::manual(10_000_000_000);
        let fake = Arc::new(Fake::default());
        let budget = DiskBudget::new(limits, Box::new(fake.clone()), clock);
        assert_eq!(budget.check(), Ok(()));
        // A manual clock only moves forward; a verdict from the future is simulated.
        budget
            .verdict
            .lock()
            .unwrap()
            .as_mut()
            .expect("measured")
            .checked_ms += 60_000;
        fake.store.store(101, Ordering::SeqCst);
        assert!(budget.check().is_err());
        drop(control);
    }

    #[test]
    fn a_failing_measurement_does_not_refuse() {
        let limits = Limits {
            max_bytes: Some(100),
            min_free_bytes: 100,
        };
        let (budget, fake, clock) = budget(limits, 500, 0);
        assert!(budget.check().is_err());
        fake.fail.store(true, Ordering::SeqCst);
        clock.advance(REFRESH);
        assert_eq!(budget.check(), Ok(()));
        fake.fail.store(false, Ordering::SeqCst);
        clock.advance(REFRESH);
        assert!(budget.check().is_err());
    }

    #[test]
    fn the_real_disk_is_measured() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("store");
        std::fs::write(&file, vec![0u8; 4096]).unwrap();
        let disk = DiskMeasure::new(dir.path(), &file);
        assert_eq!(disk.store_bytes().unwrap(), 4096);
        assert!(disk.free_bytes().unwrap() > 0);
        let missing = DiskMeasure::new(&dir.path().join("nope"), &dir.path().join("nope/x"));
        assert!(missing.store_bytes().is_err());
        assert!(missing.free_bytes().is_err());
    }
}
