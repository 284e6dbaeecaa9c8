//! Whether a steady run's delivery rate held: deliveries counted once a second while the load
//! runs, and the rate of its first and last 10 seconds compared (a store that slows as it grows
//! shows here first).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::ledger::Ledger;

/// Seconds in each compared window.
pub const WINDOW_S: usize = 10;

/// Counts deliveries once a second from its start until stopped.
pub struct Sampler {
    samples: Arc<Mutex<Vec<u64>>>,
    task: JoinHandle<()>,
}

impl Sampler {
    pub fn start(ledger: Arc<Ledger>) -> Sampler {
        let samples = Arc::new(Mutex::new(vec![ledger.unique_deliveries()]));
        let shared = samples.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let count = ledger.unique_deliveries();
                shared.lock().unwrap_or_else(|p| p.into_inner()).push(count);
            }
        });
        Sampler { samples, task }
    }

    /// Stops counting; returns the counts, one per second from the start.
    pub fn stop(self) -> Vec<u64> {
        self.task.abort();
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.clone()
    }
}

/// Deliveries per second over the first and the last [`WINDOW_S`] seconds of a load that ran
/// `load_seconds` (whole seconds, from the first sample); `None` when the load was shorter than
/// two windows.
pub fn first_and_last(samples: &[u64], load_seconds: usize) -> Option<(f64, f64)> {
    if load_seconds < 2 * WINDOW_S || samples.len() <= load_seconds {
        return None;
    }
    let rate = |from: usize, to: usize| {
        samples[to].saturating_sub(samples[from]) as f64 / (to - from) as f64
    };
    Some((
        rate(0, WINDOW_S),
        rate(load_seconds - WINDOW_S, load_seconds),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_the_first_and_last_ten_seconds_of_the_load() {
        // 100/s for the first 10 s, then 200/s; the load ran 30 s, the drain 2 s more.
        let mut samples = vec![0u64];
        for s in 1..=32u64 {
            let rate = if s <= 10 { 100 } else { 200 };
            samples.push(samples[samples.len() - 1] + rate);
        }
        assert_eq!(first_and_last(&samples, 30), Some((100.0, 200.0)));
        assert_eq!(first_and_last(&samples, 19), None);
        assert_eq!(first_and_last(&samples[..20], 30), None);
    }
}
