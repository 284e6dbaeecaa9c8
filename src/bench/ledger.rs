//! The ledger: which events (by the publisher's sequence number) the server acknowledged and
//! which destinations received them. It turns "every acknowledged event reached every
//! destination" into a count of lost events, and tells first deliveries from duplicates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Largest sequence number tracked (bounds memory: 8 bytes per event).
pub const MAX_EVENTS: u64 = 50_000_000;
/// Largest fan-out tracked (one bit per destination).
pub const MAX_FANOUT: u32 = 64;

pub struct Ledger {
    full: u64,
    /// Per event: bit `d` set once destination `d` answered 200.
    delivered: Mutex<Vec<u64>>,
    /// Per event: acknowledged (202) by the server.
    acked: Mutex<Vec<u64>>,
    unique: AtomicU64,
    duplicates: AtomicU64,
    complete: AtomicU64,
}

/// What one successful delivery meant.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// First delivery of this (event, destination); `completes` when it was the event's last.
    First {
        completes: bool,
    },
    Duplicate,
    /// Sequence number or destination out of range (a body the bench did not publish).
    Unknown,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Ledger {
    pub fn new(fanout: u32) -> Ledger {
        let fanout = fanout.clamp(1, MAX_FANOUT);
        Ledger {
            full: if fanout == 64 {
                u64::MAX
            } else {
                (1u64 << fanout) - 1
            },
            delivered: Mutex::new(Vec::new()),
            acked: Mutex::new(Vec::new()),
            unique: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            complete: AtomicU64::new(0),
        }
    }

    pub fn record_ack(&self, seq: u64) {
        if seq >= MAX_EVENTS {
            return;
        }
        let word = (seq / 64) as usize;
        let mut acked = lock(&self.acked);
        if acked.len() <= word {
            acked.resize(word + 1 + word / 4, 0);
        }
        acked[word] |= 1 << (seq % 64);
    }

    pub fn record_delivery(&self, seq: u64, destination: u32) -> Delivery {
        if seq >= MAX_EVENTS || destination >= MAX_FANOUT {
            return Delivery::Unknown;
        }
        let bit = 1u64 << destination;
        if bit & self.full == 0 {
            return Delivery::Unknown;
        }
        let i = seq as usize;
        let mut delivered = lock(&self.delivered);
        if delivered.len() <= i {
            delivered.resize(i + 1 + i / 4, 0);
        }
        let mask = &mut delivered[i];
        if *mask & bit != 0 {
            drop(delivered);
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return Delivery::Duplicate;
        }
        *mask |= bit;
        let completes = *mask == self.full;
        drop(delivered);
        self.unique.fetch_add(1, Ordering::Relaxed);
        if completes {
            self.complete.fetch_add(1, Ordering::Relaxed);
        }
        Delivery::First { completes }
    }

    /// Distinct (event, destination) deliveries.
    pub fn unique_deliveries(&self) -> u64 {
        self.unique.load(Ordering::Relaxed)
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    /// Events delivered to every destination.
    pub fn complete_events(&self) -> u64 {
        self.complete.load(Ordering::Relaxed)
    }

    /// Acknowledged events not (yet) delivered to every destination.
    pub fn lost(&self) -> u64 {
        let acked = lock(&self.acked).clone();
        let delivered = lock(&self.delivered);
        let mut lost = 0;
        for (w, word) in acked.iter().enumerate() {
            let mut bits = *word;
            while bits != 0 {
                let seq = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if delivered.get(seq).copied().unwrap_or(0) != self.full {
                    lost += 1;
                }
            }
        }
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_completion_duplicates_and_losses() {
        let ledger = Ledger::new(2);
        for seq in 0..3 {
            ledger.record_ack(seq);
        }
        assert_eq!(ledger.lost(), 3);
        assert_eq!(
            ledger.record_delivery(0, 0),
            Delivery::First { completes: false }
        );
        assert_eq!(
            ledger.record_delivery(0, 1),
            Delivery::First { completes: true }
        );
        assert_eq!(ledger.record_delivery(0, 1), Delivery::Duplicate);
        assert_eq!(ledger.record_delivery(1, 2), Delivery::Unknown);
        assert_eq!(ledger.record_delivery(MAX_EVENTS, 0), Delivery::Unknown);
        ledger.record_delivery(1, 0);
        ledger.record_delivery(1, 1);
        assert_eq!(ledger.lost(), 1);
        assert_eq!(ledger.complete_events(), 2);
        assert_eq!(ledger.unique_deliveries(), 4);
        assert_eq!(ledger.duplicates(), 1);
        assert_eq!(
            Ledger::new(64).record_delivery(5, 63),
            Delivery::First { completes: false }
        );
    }
}
