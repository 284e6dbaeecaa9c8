//! Holding writes off while the disk is still full. Every commit that fails for want of space
//! costs the writer a reopen of the data file (and redb's repair of it, a walk of the whole file),
//! so trying each incoming write on a disk that is still full would only repeat that. After
//! such a failure the writer refuses writes without trying ([`StoreError::NoSpace`]) until the
//! file system holding the data file has [`SPACE_MARGIN`] more bytes available than it had then,
//! or [`HOLD_OFF`] has passed since the last try (space may be freed inside a file system that
//! reports none, a quota say). A try that fails again starts a new hold; one that commits ends it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::StoreError;

/// How much more free space ends a hold at once.
pub const SPACE_MARGIN: u64 = 1 << 20;
/// The longest a hold lasts without more free space before the next write is tried.
pub const HOLD_OFF: Duration = Duration::from_secs(5);

/// A hold after a failure: when it began, the free space then, and the failure.
struct Held {
    tried: Instant,
    free_then: Option<u64>,
    reason: String,
}

/// Whether writes are held off, for the writer thread.
pub(crate) struct SpaceWait {
    dir: PathBuf,
    held: Option<Held>,
}

impl SpaceWait {
    /// Watches the file system holding `data_file`.
    pub(crate) fn new(data_file: &Path) -> SpaceWait {
        SpaceWait {
            dir: data_file
                .parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            held: None,
        }
    }

    /// Records how a try went: a failure for want of space starts a hold, anything else ends it.
    pub(crate) fn tried(&mut self, failure: Option<&StoreError>) {
        // Measured only when a hold starts: a commit that went well costs nothing more.
        let free = match failure {
            Some(failure) if failure.is_disk_full() => self.free_bytes(),
            _ => None,
        };
        self.tried_at(failure, Instant::now(), free);
    }

    /// Why writes are not tried now, if they are held off.
    pub(crate) fn refusal(&mut self) -> Option<StoreError> {
        self.held.as_ref()?;
        let free = self.free_bytes();
        self.refusal_at(Instant::now(), free)
    }

    fn tried_at(&mut self, failure: Option<&StoreError>, now: Instant, free: Option<u64>) {
        self.held = match failure {
            Some(failure) if failure.is_disk_full() => {
                if self.held.is_none() {
                    tracing::warn!(
                        "the disk is full: writes are refused until space is freed on the file \
                         system holding DATA_DIR"
                    );
                }
                Some(Held {
                    tried: now,
                    free_then: free,
                    reason: failure.to_string(),
                })
            }
            _ => {
                if self.held.is_some() && failure.is_none() {
                    tracing::info!("the disk has room again: writes resume");
                }
                None
            }
        };
    }

    fn refusal_at(&mut self, now: Instant, free: Option<u64>) -> Option<StoreError> {
        let held = self.held.as_ref()?;
        let freed = matches!(
            (free, held.free_then),
            (Some(now_free), Some(then)) if now_free >= then.saturating_add(SPACE_MARGIN)
        );
        if freed || now.saturating_duration_since(held.tried) >= HOLD_OFF {
            return None;
        }
        Some(StoreError::NoSpace {
            reason: held.reason.clone(),
        })
    }

    /// Free blocks of the file system, the root reserve included: any space freed shows here,
    /// whoever may use it.
    fn free_bytes(&self) -> Option<u64> {
        let stats = rustix::fs::statvfs(&self.dir).ok()?;
        Some(stats.f_bfree.saturating_mul(stats.f_frsize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_space() -> StoreError {
        StoreError::WriteFailed {
            disk_full: true,
            reason: "No space left on device (os error 28)".into(),
        }
    }

    #[test]
    fn a_full_disk_holds_writes_off_until_space_is_freed_or_the_hold_is_over() {
        let mut wait = SpaceWait::new(Path::new("/nonexistent/outpost.redb"));
        let start = Instant::now();
        assert!(
            wait.refusal_at(start, Some(0)).is_none(),
            "no hold at first"
        );
        wait.tried_at(Some(&no_space()), start, Some(1000));
        let refusal = wait
            .refusal_at(
                start + Duration::from_secs(1),
                Some(1000 + SPACE_MARGIN - 1),
            )
            .expect("held");
        assert!(refusal.is_disk_full() && refusal.is_storage_failure());
        assert!(
            refusal.to_string().starts_with("the disk is full: "),
            "{refusal}"
        );
        assert!(refusal.to_string().contains("os error 28"), "{refusal}");
        // Space freed: tried at once.
        assert!(wait
            .refusal_at(start + Duration::from_secs(1), Some(1000 + SPACE_MARGIN))
            .is_none());
        // No space freed, but the hold is over: tried once more.
        assert!(wait
            .refusal_at(start + HOLD_OFF - Duration::from_millis(1), None)
            .is_some());
        assert!(wait.refusal_at(start + HOLD_OFF, None).is_none());
        // A try that fails again holds again; one that commits ends the hold.
        wait.tried_at(Some(&no_space()), start + HOLD_OFF, Some(5));
        assert!(wait.refusal_at(start + HOLD_OFF, Some(5)).is_some());
        wait.tried_at(None, start + HOLD_OFF, Some(5));
        assert!(wait.refusal_at(start + HOLD_OFF, Some(5)).is_none());
    }

    #[test]
    fn other_failures_do_not_hold_writes_off() {
        let mut wait = SpaceWait::new(Path::new("/nonexistent/outpost.redb"));
        let start = Instant::now();
        let io = StoreError::WriteFailed {
            disk_full: false,
            reason: "Input/output error (os error 5)".into(),
        };
        wait.tried_at(Some(&io), start, Some(0));
        assert!(wait.refusal_at(start, Some(0)).is_none());
    }
}
