//! Prepared targets by destination, so a destination's config is parsed when it is first
//! delivered to and again only when its record changes — not on every delivery.
//!
//! An entry keeps the destination record it was prepared from; a lookup with a record that is
//! not equal to it (any field: an update always rewrites the record) prepares again. The size
//! is bounded by two generations of at most `capacity` entries each: new and used entries go
//! into the current generation; when it is full it becomes the previous one and the old
//! previous one is dropped. An entry used in either generation survives, so what is dropped is
//! what was not delivered to for a whole generation.

use std::collections::HashMap;
use std::mem;
use std::sync::{Arc, Mutex, MutexGuard};

use super::provider::{Providers, Target};
use crate::model::destination::Destination;
use crate::model::identifiers::{DestinationId, TenantId};

/// (tenant id, destination id).
type Key = (TenantId, DestinationId);

struct Entry {
    source: Destination,
    target: Arc<dyn Target>,
}

#[derive(Default)]
struct Generations {
    current: HashMap<Key, Entry>,
    previous: HashMap<Key, Entry>,
}

impl Generations {
    fn insert(&mut self, key: Key, entry: Entry, capacity: usize) {
        if self.current.len() >= capacity && !self.current.contains_key(&key) {
            self.previous = mem::take(&mut self.current);
        }
        self.current.insert(key, entry);
    }
}

pub struct TargetCache {
    capacity: usize,
    generations: Mutex<Generations>,
}

impl TargetCache {
    /// A cache of at most `2 × capacity` targets (`capacity` ≥ 1).
    pub fn new(capacity: usize) -> TargetCache {
        TargetCache {
            capacity: capacity.max(1),
            generations: Mutex::new(Generations::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Generations> {
        self.generations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The target for this state of the destination: the cached one if it was prepared from an
    /// equal record, else a new one from `providers` (which replaces it).
    pub fn target(&self, destination: &Destination, providers: &Providers) -> Arc<dyn Target> {
        let key = (destination.tenant_id.clone(), destination.id.clone());
        {
            let mut generations = self.lock();
            if let Some(entry) = generations.current.get(&key) {
                if entry.source == *destination {
                    return entry.target.clone();
                }
            } else if let Some(entry) = generations.previous.remove(&key) {
                if entry.source == *destination {
                    let target = entry.target.clone();
                    generations.insert(key, entry, self.capacity);
                    return target;
                }
            }
        }
        // Prepared outside the lock: other deliveries keep finding their targets meanwhile.
        let target = providers.prepare(destination);
        let entry = Entry {
            source: destination.clone(),
            target: target.clone(),
        };
        self.lock().insert(key, entry, self.capacity);
        target
    }

    /// Drops the destination's target (it was deleted or disabled).
    pub fn forget(&self, tenant_id: &TenantId, destination_id: &DestinationId) {
        let key = (tenant_id.clone(), destination_id.clone());
        let mut generations = self.lock();
        generations.current.remove(&key);
        generations.previous.remove(&key);
    }

    /// How many targets are held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let generations = self.lock();
        generations.current.len() + generations.previous.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::delivery::provider::{DeliveryFuture, DeliveryOutcome, PrepareError, Provider};
    use crate::model::destination_type::DestinationKind;
    use crate::model::event::Event;

    /// Counts preparations; its targets answer with the config's `url`.
    #[derive(Default)]
    struct Counting {
        prepared: AtomicUsize,
    }

    struct Echo(String);

    impl Target for Echo {
        fn deliver<'a>(&'a self, _event: &'a Event, _now_nanos: i64) -> DeliveryFuture<'a> {
            Box::pin(std::future::ready(DeliveryOutcome {
                success: true,
                code: self.0.clone(),
                response_data: None,
            }))
        }
    }

    impl Provider for Arc<Counting> {
        fn prepare(&self, destination: &Destination) -> Result<Arc<dyn Target>, PrepareError> {
            self.prepared.fetch_add(1, Ordering::SeqCst);
            let url = destination.config.get("url").cloned().unwrap_or_default();
            Ok(Arc::new(Echo(url)))
        }
    }

    fn setup() -> (Arc<Counting>, Providers) {
        let counting = Arc::new(Counting::default());
        let providers = Providers::new().with(DestinationKind::Webhook, Arc::new(counting.clone()));
        (counting, providers)
    }

    fn destination(id: &str, url: &str) -> Destination {
        Destination {
            config: [("url".to_string(), url.to_string())].into_iter().collect(),
            ..Destination::sample("t1", id, "webhook")
        }
    }

    fn event() -> Event {
        Event::sample("evt_1", "t1", "a")
    }

    async fn code(target: Arc<dyn Target>) -> String {
        target.deliver(&event(), 0).await.code
    }

    #[tokio::test]
    async fn a_destination_is_prepared_once_until_it_changes() {
        let (counting, providers) = setup();
        let cache = TargetCache::new(16);
        let mut d1 = destination("d1", "http://a/");
        for _ in 0..3 {
            assert_eq!(code(cache.target(&d1, &providers)).await, "http://a/");
        }
        assert_eq!(counting.prepared.load(Ordering::SeqCst), 1);
        d1.config.insert("url".into(), "http://b/".into());
        d1.updated_at_ms = 1;
        assert_eq!(code(cache.target(&d1, &providers)).await, "http://b/");
        assert_eq!(code(cache.target(&d1, &providers)).await, "http://b/");
        assert_eq!(counting.prepared.load(Ordering::SeqCst), 2);
        // Same id under another tenant is another destination.
        let mut other = destination("d1", "http://c/");
        other.tenant_id = "t2".into();
        assert_eq!(code(cache.target(&other, &providers)).await, "http://c/");
        assert_eq!(counting.prepared.load(Ordering::SeqCst), 3);
        assert_eq!(cache.len(), 2);
        cache.forget(&"t1".into(), &"d1".into());
        assert_eq!(cache.len(), 1);
        assert_eq!(code(cache.target(&d1, &providers)).await, "http://b/");
        assert_eq!(counting.prepared.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn entries_not_used_for_a_generation_are_dropped() {
        let (counting, providers) = setup();
        let prepared = || counting.prepared.load(Ordering::SeqCst);
        let cache = TargetCache::new(2);
        let [a, b, c, d] = ["a", "b", "c", "d"].map(|id| destination(id, id));
        cache.target(&a, &providers);
        cache.target(&b, &providers);
        // Full: {a, b} becomes the previous generation.
        cache.target(&c, &providers);
        assert_eq!((prepared(), cache.len()), (3, 3));
        // `a` is used again: found in the previous generation and kept.
        cache.target(&a, &providers);
        assert_eq!(prepared(), 3);
        // Full again: {c, a} becomes previous, `b` (unused) is dropped.
        cache.target(&d, &providers);
        assert_eq!(cache.len(), 3);
        cache.target(&a, &providers);
        cache.target(&c, &providers);
        assert_eq!(prepared(), 4);
        cache.target(&b, &providers);
        assert_eq!(prepared(), 5);
        for _ in 0..100 {
            for x in [&a, &b, &c, &d] {
                cache.target(x, &providers);
            }
            assert!(cache.len() <= 4);
        }
    }
}
