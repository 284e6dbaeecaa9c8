//! A fixed-bucket histogram of whole-number observations (nanoseconds, jobs) made of relaxed
//! atomics: recording is a short linear search over the bounds and three `fetch_add`s, with no
//! lock, so hot paths (every request, every delivery, every commit) can afford it. The bounds
//! are chosen once, in the unit of the observations; [`Histogram::snapshot`] reads the counts
//! back for exposition, dividing by `units_per_base` to give the metric's base unit (seconds):
//! a division by an exact power of ten, so a bound of 500,000 ns reads exactly `0.0005`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket bounds for latencies, in nanoseconds: 0.5 ms to 10 s.
pub const LATENCY_BOUNDS_NANOS: &[u64] = &[
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Nanoseconds in a second: latencies are recorded in the one and exposed in the other.
pub const NANOS_PER_SECOND: f64 = 1e9;

/// Bucket bounds for the number of write jobs one commit carries (the writer takes at most
/// 4096).
pub const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// A histogram over `u64` observations with fixed upper bounds (inclusive, ascending).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One count per bound, then one for observations above the last bound; not cumulative.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    units_per_base: f64,
}

/// The counts of a histogram at one moment, in the metric's base unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// Each bound (in the base unit) with how many observations were at most that bound (cumulative).
    pub buckets: Vec<(f64, u64)>,
    /// Every observation (the `+Inf` bucket).
    pub count: u64,
    /// The sum of the observations (in the base unit).
    pub sum: f64,
}

impl Histogram {
    /// A histogram with `bounds` (ascending, in the observations' unit); `units_per_base` is
    /// how many of that unit make one of the base unit the metric is exposed in.
    pub fn new(bounds: &'static [u64], units_per_base: f64) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "ascending bounds");
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            units_per_base,
        }
    }

    /// A latency histogram: nanosecond observations exposed in seconds.
    pub fn latency() -> Histogram {
        Histogram::new(LATENCY_BOUNDS_NANOS, NANOS_PER_SECOND)
    }

    /// Records one observation.
    pub fn observe(&self, value: u64) {
        let slot = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Records a duration, in nanoseconds (saturating).
    pub fn observe_duration(&self, elapsed: Duration) {
        self.observe(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The counts now. Under concurrent recording the buckets, count and sum may be a few
    /// observations apart, but the buckets are always cumulative and the count is the last.
    pub fn snapshot(&self) -> Snapshot {
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (bound, count) in self.bounds.iter().zip(self.counts.iter()) {
            cumulative += count.load(Ordering::Relaxed);
            buckets.push((*bound as f64 / self.units_per_base, cumulative));
        }
        if let Some(above) = self.counts.last() {
            cumulative += above.load(Ordering::Relaxed);
        }
        Snapshot {
            buckets,
            count: cumulative,
            sum: self.sum.load(Ordering::Relaxed) as f64 / self.units_per_base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let histogram = Histogram::new(&[1, 2, 4], 1.0);
        for value in [0, 1, 2, 3, 4, 5, 100] {
            histogram.observe(value);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.buckets, vec![(1.0, 2), (2.0, 3), (4.0, 5)]);
        assert_eq!(snapshot.count, 7);
        assert_eq!(snapshot.sum, 115.0);
    }

    #[test]
    fn latencies_are_exposed_in_seconds() {
        let histogram = Histogram::latency();
        histogram.observe_duration(Duration::from_millis(3));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 1);
        assert_eq!(snapshot.sum, 0.003);
        assert_eq!(snapshot.buckets[0], (0.0005, 0));
        assert_eq!(snapshot.buckets[3], (0.005, 1));
        assert_eq!(snapshot.buckets.last(), Some(&(10.0, 1)));
    }
}
