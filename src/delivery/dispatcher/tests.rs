//! The dispatcher against a real store in a temporary directory, a manual clock, and a fake
//! provider whose targets record each delivery, answer with a programmable outcome and can be
//! held (to fill a destination's slots or to be in flight at shutdown). Rows are created by the
//! store's own publish path.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use super::*;
use crate::clock::ClockControl;
use crate::delivery::provider::{DeliveryFuture, DeliveryOutcome, PrepareError, Provider, Target};
use crate::model::destination::Destination;
use crate::model::destination_type::DestinationKind;
use crate::model::event::Event;
use crate::model::ids::IdKind;
use crate::model::StrMap;
use crate::store::{PublishOutcome, PublishRequest, StoreThread};

/// 2024-06-01T00:00:00Z
const START_NANOS: i64 = 1_717_200_000_000_000_000;
/// How long a test waits for something that should happen.
const PATIENCE: Duration = Duration::from_secs(10);
/// The automatic retry comes 5 s after a failed first attempt.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// One call of a fake target.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Call {
    destination_id: String,
    event_id: String,
    now_nanos: i64,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<Call>,
    /// Deliveries running now, and the most ever running at once, per destination.
    in_flight: HashMap<String, usize>,
    max_in_flight: HashMap<String, usize>,
    /// Failures still to answer, per destination (then success).
    failures: HashMap<String, usize>,
    /// Destinations whose deliveries wait for a permit of this semaphore.
    holds: HashMap<String, Arc<Semaphore>>,
}

/// The fake provider; every change of its state bumps `changed`, so tests wait on conditions.
struct Fake {
    state: Mutex<FakeState>,
    changed: watch::Sender<u64>,
}

impl Fake {
    fn new() -> Arc<Fake> {
        Arc::new(Fake {
            state: Mutex::new(FakeState::default()),
            changed: watch::channel(0).0,
        })
    }

    fn update<R>(&self, change: impl FnOnce(&mut FakeState) -> R) -> R {
        let result = change(&mut lock(&self.state));
        self.changed.send_modify(|version| *version += 1);
        result
    }

    fn read<R>(&self, look: impl FnOnce(&FakeState) -> R) -> R {
        look(&lock(&self.state))
    }

    /// Deliveries to `destination_id` wait until [`Fake::release`] lets them through.
    fn hold(&self, destination_id: &str) -> Arc<Semaphore> {
        let semaphore = Arc::new(Semaphore::new(0));
        self.update(|state| {
            state
                .holds
                .insert(destination_id.to_string(), semaphore.clone())
        });
        semaphore
    }

    fn fail_next(&self, destination_id: &str, times: usize) {
        self.update(|state| state.failures.insert(destination_id.to_string(), times));
    }

    fn calls(&self) -> Vec<Call> {
        self.read(|state| state.calls.clone())
    }

    fn calls_to(&self, destination_id: &str) -> usize {
        self.read(|state| {
            state
                .calls
                .iter()
                .filter(|call| call.destination_id == destination_id)
                .count()
        })
    }

    fn max_in_flight(&self, destination_id: &str) -> usize {
        self.read(|state| {
            state
                .max_in_flight
                .get(destination_id)
                .copied()
                .unwrap_or(0)
        })
    }

    /// Waits (bounded) until `condition` holds of the fake's state.
    async fn until(&self, what: &str, condition: impl Fn(&FakeState) -> bool) {
        let mut changes = self.changed.subscribe();
        let waited =
            tokio::time::timeout(PATIENCE, changes.wait_for(|_| self.read(&condition))).await;
        assert!(
            matches!(waited, Ok(Ok(_))),
            "timed out waiting for {what}; calls: {:?}",
            self.calls()
        );
    }
}

impl Provider for Arc<Fake> {
    fn prepare(&self, destination: &Destination) -> Result<Arc<dyn Target>, PrepareError> {
        Ok(Arc::new(FakeTarget {
            fake: self.clone(),
            destination_id: destination.id.to_string(),
        }))
    }
}

struct FakeTarget {
    fake: Arc<Fake>,
    destination_id: String,
}

/// Counts a delivery out of flight, also when it is abandoned at shutdown.
struct InFlight<'a> {
    fake: &'a Fake,
    destination_id: &'a str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.fake.update(|state| {
            if let Some(count) = state.in_flight.get_mut(self.destination_id) {
                *count = count.saturating_sub(1);
            }
        });
    }
}

impl Target for FakeTarget {
    fn deliver<'a>(&'a self, event: &'a Event, now_nanos: i64) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let id = self.destination_id.as_str();
            let hold = self.fake.update(|state| {
                state.calls.push(Call {
                    destination_id: id.to_string(),
                    event_id: event.id.to_string(),
                    now_nanos,
                });
                let running = state.in_flight.entry(id.to_string()).or_default();
                *running += 1;
                let running = *running;
                let max = state.max_in_flight.entry(id.to_string()).or_default();
                *max = (*max).max(running);
                state.holds.get(id).cloned()
            });
            let _in_flight = InFlight {
                fake: &self.fake,
                destination_id: id,
            };
            if let Some(hold) = hold {
                if let Ok(permit) = hold.acquire().await {
                    permit.forget();
                }
            }
            let fail = self.fake.update(|state| match state.failures.get_mut(id) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            });
            DeliveryOutcome {
                success: !fail,
                code: if fail { "500" } else { "200" }.to_string(),
                response_data: None,
            }
        })
    }
}

struct Harness {
    dir: tempfile::TempDir,
    store: Store,
    thread: StoreThread,
    clock: Clock,
    control: ClockControl,
    fake: Arc<Fake>,
}

fn settings(max_concurrency: usize, max_per_destination: usize) -> DispatcherSettings {
    DispatcherSettings {
        max_concurrency,
        max_per_destination,
        retry: RetryPolicy {
            schedule: vec![RETRY_AFTER.as_secs()],
            interval_seconds: 30,
            max_retry_limit: 10,
        },
        ids: IdGenerator {
            kind: IdKind::NanoId,
            event_prefix: String::new(),
            destination_prefix: String::new(),
            attempt_prefix: "atm_".into(),
        },
        metrics: Arc::default(),
    }
}

impl Harness {
    /// A store with tenant `t1` and one webhook destination per id.
    async fn new(destinations: &[&str]) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, thread) = Store::open(dir.path()).expect("open store");
        let (clock, control) = Clock::manual(START_NANOS);
        let harness = Harness {
            dir,
            store,
            thread,
            clock,
            control,
            fake: Fake::new(),
        };
        harness
            .store
            .upsert_tenant("t1".into(), StrMap::new(), harness.clock.now_ms())
            .await
            .expect("tenant");
        for id in destinations {
            let created = harness
                .store
                .create_destination(destination(id), 100)
                .await
                .expect("destination");
            assert!(matches!(
                created,
                crate::store::CreateDestination::Created(_)
            ));
        }
        harness
    }

    fn providers(&self) -> Providers {
        Providers::new().with(DestinationKind::Webhook, Arc::new(self.fake.clone()))
    }

    fn start(&self, settings: DispatcherSettings) -> Dispatcher {
        Dispatcher::start(
            self.store.clone(),
            self.providers(),
            self.clock.clone(),
            settings,
        )
        .expect("dispatcher")
    }

    /// Publishes `event_id` to `destinations` through the store, due at the clock's time plus
    /// `delay` (a publish is due at the `now` it is made with).
    async fn publish_at(&self, event_id: &str, destinations: &[&str], delay: Duration) {
        let now_ms = self.clock.now_ms() + i64::try_from(delay.as_millis()).expect("delay");
        let event = Event {
            id: event_id.into(),
            tenant_id: "t1".into(),
            destination_id: Default::default(),
            matched_destination_ids: destinations.iter().map(|d| (*d).into()).collect(),
            topic: "user.created".into(),
            time_nanos: self.clock.now_nanos(),
            time_offset_seconds: 0,
            eligible_for_retry: true,
            metadata: StrMap::new(),
            data: "{}".into(),
            idempotency_expires_ms: 0,
        };
        let outcome = self
            .store
            .publish(PublishRequest {
                event,
                now_ms,
                idempotency_ttl_ms: 3_600_000,
            })
            .await
            .expect("publish");
        assert_eq!(outcome, PublishOutcome::Accepted);
    }

    async fn publish(&self, event_id: &str, destinations: &[&str]) {
        self.publish_at(event_id, destinations, Duration::ZERO)
            .await;
    }

    /// Waits (bounded) until the on-disk queue holds `len` rows.
    async fn until_queue_len(&self, len: u64) {
        eventually(&format!("a queue of {len}"), || {
            self.store.queue_len().expect("queue_len") == len
        })
        .await;
    }
}

fn destination(id: &str) -> Destination {
    Destination {
        config: [("url".to_string(), format!("http://{id}.example/"))]
            .into_iter()
            .collect(),
        ..Destination::sample("t1", id, "webhook")
    }
}

/// Waits (bounded) for a condition on state the fake does not see (the store's commits).
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

/// Lets every task that is ready run (the tests run on one thread).
async fn settle() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
}

fn bounded<F: Future>(future: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(PATIENCE, future)
}

#[tokio::test]
async fn rows_are_delivered_in_due_order_as_the_clock_advances() {
    let h = Harness::new(&["d1"]).await;
    // Published out of order; due at +3 s, +1 s, +2 s and now.
    h.publish_at("evt_c", &["d1"], Duration::from_secs(3)).await;
    h.publish_at("evt_a", &["d1"], Duration::from_secs(1)).await;
    h.publish_at("evt_b", &["d1"], Duration::from_secs(2)).await;
    h.publish("evt_now", &["d1"]).await;
    let dispatcher = h.start(settings(1, 1));
    h.fake.until("the due row", |s| s.calls.len() == 1).await;
    h.until_queue_len(3).await;
    for (step, expected) in ["evt_a", "evt_b", "evt_c"].iter().enumerate() {
        h.control.advance(Duration::from_secs(1));
        h.fake.until(expected, |s| s.calls.len() == step + 2).await;
        h.until_queue_len(2 - step as u64).await;
    }
    let calls = h.fake.calls();
    let order: Vec<&str> = calls.iter().map(|c| c.event_id.as_str()).collect();
    assert_eq!(order, ["evt_now", "evt_a", "evt_b", "evt_c"]);
    // Each was attempted at the clock's time when it became due.
    let times: Vec<i64> = calls.iter().map(|c| c.now_nanos - START_NANOS).collect();
    assert_eq!(times, [0, 1_000_000_000, 2_000_000_000, 3_000_000_000]);

    // All due at once: still earliest first.
    h.publish_at("evt_z", &["d1"], Duration::from_millis(30))
        .await;
    h.publish_at("evt_y", &["d1"], Duration::from_millis(20))
        .await;
    h.publish_at("evt_x", &["d1"], Duration::from_millis(10))
        .await;
    h.control.advance(Duration::from_secs(1));
    h.fake.until("three more", |s| s.calls.len() == 7).await;
    let order: Vec<String> = h.fake.calls()[4..]
        .iter()
        .map(|c| c.event_id.clone())
        .collect();
    assert_eq!(order, ["evt_x", "evt_y", "evt_z"]);
    dispatcher.shutdown(PATIENCE).await;
}

#[tokio::test]
async fn a_busy_destination_gets_one_delivery_at_a_time_while_others_proceed() {
    let h = Harness::new(&["slow", "fast"]).await;
    let hold = h.fake.hold("slow");
    for n in 0..3 {
        h.publish(&format!("evt_slow_{n}"), &["slow"]).await;
    }
    h.publish("evt_fast", &["fast"]).await;
    let dispatcher = h.start(settings(8, 1));
    h.fake
        .until("the fast delivery and one slow one", |s| {
            s.calls.iter().any(|c| c.destination_id == "fast")
                && s.calls.iter().any(|c| c.destination_id == "slow")
        })
        .await;
    // The fast destination's outcome commits while the slow one is still held.
    h.until_queue_len(3).await;
    settle().await;
    assert_eq!(h.fake.calls_to("slow"), 1);
    assert_eq!(h.fake.max_in_flight("slow"), 1);

    // Let everything through at once: the slow destination still takes them one by one.
    hold.add_permits(100);
    h.fake
        .until("every slow delivery", |s| {
            s.calls
                .iter()
                .filter(|c| c.destination_id == "slow")
                .count()
                == 3
        })
        .await;
    h.until_queue_len(0).await;
    assert_eq!(h.fake.max_in_flight("slow"), 1);
    assert_eq!(h.fake.calls_to("fast"), 1);
    dispatcher.shutdown(PATIENCE).await;
}

#[tokio::test]
async fn an_idle_dispatcher_wakes_on_a_commit() {
    let h = Harness::new(&["d1"]).await;
    let dispatcher = h.start(settings(4, 1));
    // Nothing queued: the loop goes to sleep with no due time.
    settle().await;
    assert!(h.fake.calls().is_empty());
    h.publish("evt_1", &["d1"]).await;
    h.fake
        .until("the published event", |s| s.calls.len() == 1)
        .await;
    h.until_queue_len(0).await;
    assert_eq!(h.control.now_nanos(), START_NANOS, "the clock never moved");
    dispatcher.shutdown(PATIENCE).await;
}

#[tokio::test]
async fn a_retry_is_delivered_when_the_clock_reaches_its_due_time_and_not_before() {
    let h = Harness::new(&["d1", "probe"]).await;
    h.fake.fail_next("d1", 1);
    let dispatcher = h.start(settings(4, 1));
    h.publish("evt_1", &["d1"]).await;
    h.fake
        .until("the first attempt", |s| s.calls.len() == 1)
        .await;
    // The failure commits with a retry row due 5 s later.
    let retry_due_ms = u64::try_from(h.clock.now_ms()).expect("ms") + 5_000;
    eventually("the retry row", || {
        h.store
            .queue_keys()
            .expect("keys")
            .first()
            .map(|k| k.due_ms)
            == Some(retry_due_ms)
    })
    .await;

    // 1 ms short of the due time. A row published now (due now, so ahead of the retry in the
    // due set) proves the loop ran past the clock change: once its outcome is committed, the
    // retry would already have been taken if it were due.
    h.control.advance(RETRY_AFTER - Duration::from_millis(1));
    h.publish("evt_probe", &["probe"]).await;
    h.fake.until("the probe", |s| s.calls.len() == 2).await;
    h.until_queue_len(1).await;
    settle().await;
    assert_eq!(h.fake.calls_to("d1"), 1, "the retry ran early");

    h.control.advance(Duration::from_millis(1));
    h.fake.until("the retry", |s| s.calls.len() == 3).await;
    h.until_queue_len(0).await;
    let retry = &h.fake.calls()[2];
    assert_eq!(retry.event_id, "evt_1");
    assert_eq!(retry.now_nanos, START_NANOS + 5_000_000_000);
    let attempt = h
        .store
        .latest_attempt("evt_1", "d1")
        .expect("read")
        .expect("attempt");
    assert_eq!((attempt.attempt_number, attempt.code.as_str()), (2, "200"));
    dispatcher.shutdown(PATIENCE).await;
}

#[tokio::test]
async fn shutdown_leaves_a_delivery_still_in_flight_queued_for_the_next_start() {
    let h = Harness::new(&["d1"]).await;
    let _hold = h.fake.hold("d1");
    let dispatcher = h.start(settings(4, 1));
    h.publish("evt_1", &["d1"]).await;
    h.fake
        .until("the held delivery", |s| s.calls.len() == 1)
        .await;
    let queued = h.store.queue_keys().expect("keys");
    assert_eq!(queued.len(), 1);

    bounded(dispatcher.shutdown(Duration::from_millis(50)))
        .await
        .expect("shutdown returns at its deadline");
    // The abandoned delivery left its row (and recorded no attempt).
    h.fake
        .until("the abandoned delivery to end", |s| s.in_flight["d1"] == 0)
        .await;
    assert_eq!(h.store.queue_keys().expect("keys"), queued);
    assert!(h
        .store
        .latest_attempt("evt_1", "d1")
        .expect("read")
        .is_none());

    // A restart on the same data directory delivers it.
    let Harness {
        dir,
        store,
        thread,
        clock,
        control: _control,
        fake: _,
    } = h;
    drop(store);
    assert!(thread.join(PATIENCE).await, "the writer stopped");
    let (store, thread) = Store::open(dir.path()).expect("reopen");
    let fake = Fake::new();
    let dispatcher = Dispatcher::start(
        store.clone(),
        Providers::new().with(DestinationKind::Webhook, Arc::new(fake.clone())),
        clock,
        settings(4, 1),
    )
    .expect("dispatcher");
    fake.until("the redelivery", |s| s.calls.len() == 1).await;
    assert_eq!(fake.calls()[0].event_id, "evt_1");
    eventually("the row's removal", || store.queue_len().expect("len") == 0).await;
    let attempt = store
        .latest_attempt("evt_1", "d1")
        .expect("read")
        .expect("attempt");
    assert_eq!(attempt.code, "200");
    dispatcher.shutdown(PATIENCE).await;
    drop(store);
    assert!(thread.join(PATIENCE).await);
}
