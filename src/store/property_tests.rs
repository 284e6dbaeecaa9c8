//! Property test of the store: seeded random sequences of publishes (ids re-used inside and
//! after the idempotency window), delivery outcomes, automatic and manual retries, tenant and
//! destination creates and deletes, and restarts — driven through the same store calls the
//! server makes, on a real redb file. After every sequence the consistency check that
//! `outpost check` runs finds nothing, and every listing agrees with the tables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use redb::ReadableTable;

use super::tables;
use super::{codec, AttemptFilter, Direction, EventFilter, Store, StoreThread};
use super::{DeliverySnapshot, Outcome, PublishRequest};
use crate::model::destination::Destination;
use crate::model::event::{Attempt, AttemptStatus, DeliveryTask, Event};
use crate::model::retry::RetryPolicy;

/// SplitMix64: a small, seedable generator, so a failing seed replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            Some(&items[self.below(items.len())])
        }
    }
}

const TENANTS: [&str; 2] = ["ta", "tb"];
const DESTINATIONS: [&str; 3] = ["d1", "d2", "d3"];
const EVENT_IDS: [&str; 5] = ["e1", "e2", "e3", "e4", "e5"];
const IDEMPOTENCY_TTL_MS: u64 = 40;

fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        schedule: vec![],
        interval_seconds: 1,
        max_retry_limit: 3,
    }
}

struct World {
    dir: tempfile::TempDir,
    store: Store,
    thread: StoreThread,
    now_ms: i64,
    attempt_seq: u64,
}

/// Alerts that fire often (a streak of 3 disables) and every operator event, kept in the outbox
/// (no sender runs here).
fn outcome_rules() -> super::OutcomeRules {
    super::OutcomeRules {
        alerts: crate::alerts::AlertRules {
            consecutive_failure_count: Some(3),
            auto_disable: true,
            exhausted_retries_window_seconds: Some(0),
            max_retries: retry_policy().max_retries(),
        },
        events: crate::operator_events::OperatorEventSettings {
            topics: crate::operator_events::TopicFilter::all(),
            sink: Some(crate::operator_events::SinkSettings::Http {
                url: "http://127.0.0.1:9/".into(),
                signing_secret: None,
            }),
            deployment_id: None,
        },
        clock: crate::clock::Clock::system(),
    }
}

fn open(dir: &Path) -> (Store, StoreThread) {
    let (store, thread) = Store::open(dir).expect("open store");
    store.set_outcome_rules(outcome_rules());
    // As the dispatcher does at start: moves the queue sequence past every key on disk.
    store.queue_keys().expect("queue keys");
    (store, thread)
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, thread) = open(dir.path());
        World {
            dir,
            store,
            thread,
            now_ms: 1_700_000_000_000,
            attempt_seq: 0,
        }
    }

    async fn restart(&mut self) {
        let (store, thread) = open_after(self).await;
        self.store = store;
        self.thread = thread;
    }

    /// Restarts, running `between` on the data directory while the store is closed.
    async fn restart_with(&mut self, between: impl FnOnce(&std::path::Path)) {
        let (store, thread) = open_after_running(self, between).await;
        self.store = store;
        self.thread = thread;
    }

    fn destination(&self, tenant: &str, id: &str) -> Destination {
        Destination {
            created_at_ms: self.now_ms,
            updated_at_ms: self.now_ms,
            stored_at_nanos: self.now_ms * 1_000_000,
            ..Destination::sample(tenant, id, "webhook")
        }
    }

    async fn publish(&mut self, rng: &mut Rng) {
        let tenant = TENANTS[rng.below(TENANTS.len())];
        let matched: Vec<String> = self
            .store
            .tenant_destinations(tenant)
            .expect("destinations")
            .into_iter()
            .map(|d| d.id.into_string())
            .collect();
        if matched.is_empty() {
            return;
        }
        let event = Event {
            id: EVENT_IDS[rng.below(EVENT_IDS.len())].into(),
            tenant_id: tenant.into(),
            destination_id: Default::default(),
            matched_destination_ids: matched.into_iter().map(Into::into).collect(),
            topic: "t".into(),
            time_nanos: self.now_ms * 1_000_000,
            time_offset_seconds: 0,
            eligible_for_retry: rng.below(4) != 0,
            metadata: Default::default(),
            data: format!("{{\"n\":{}}}", rng.next()),
            idempotency_expires_ms: 0,
        };
        self.store
            .publish(PublishRequest {
                event,
                now_ms: self.now_ms,
                idempotency_ttl_ms: IDEMPOTENCY_TTL_MS,
            })
            .await
            .expect("publish");
    }

    /// Delivers one queued row as the dispatcher would, with a random outcome.
    async fn deliver(&mut self, rng: &mut Rng) {
        let keys = self.store.queue_keys().expect("queue keys");
        let Some(&key) = rng.pick(&keys) else {
            return;
        };
        let Some(DeliverySnapshot {
            task,
            event,
            destination,
        }) = self.store.delivery_snapshot(key).expect("snapshot")
        else {
            return;
        };
        let (Some(event), Some(destination)) = (event, destination) else {
            self.store.drop_task(key, task).await.expect("drop");
            return;
        };
        let success = rng.below(3) == 0;
        self.attempt_seq += 1;
        let attempt = Attempt {
            id: format!("a{:06}", self.attempt_seq).into(),
            tenant_id: task.tenant_id.clone(),
            event_id: task.event_id.clone(),
            destination_id: task.destination_id.clone(),
            destination_type: destination.kind.clone(),
            attempt_number: task.attempt_number,
            manual: task.manual,
            status: if success {
                AttemptStatus::Success
            } else {
                AttemptStatus::Failed
            },
            time_nanos: self.now_ms * 1_000_000,
            code: if success { "200" } else { "500" }.into(),
            response_data: None,
            topic: event.topic.clone(),
        };
        let retry_after_ms = if success {
            None
        } else {
            retry_policy().next_delay_ms(task.attempt_number, event.eligible_for_retry)
        };
        self.store
            .record_outcome(Outcome {
                key,
                task,
                attempt,
                retry_after_ms,
                now_ms: self.now_ms,
                context: Some(Box::new(super::AttemptContext { event, destination })),
            })
            .await
            .expect("outcome");
    }

    /// Queues a manual retry of a random pair that has an attempt, as `POST /retry` does.
    async fn manual_retry(&mut self, rng: &mut Rng) {
        let event_id = EVENT_IDS[rng.below(EVENT_IDS.len())];
        let destination_id = DESTINATIONS[rng.below(DESTINATIONS.len())];
        let Some(latest) = self
            .store
            .latest_attempt(event_id, destination_id)
            .expect("latest")
        else {
            return;
        };
        let task = DeliveryTask {
            event_id: event_id.into(),
            tenant_id: latest.tenant_id.clone(),
            destination_id: destination_id.into(),
            attempt_number: latest.attempt_number + 1,
            manual: true,
        };
        self.store
            .enqueue_manual(task, self.now_ms)
            .await
            .expect("manual retry");
    }

    async fn step(&mut self, rng: &mut Rng) {
        self.now_ms += rng.below(30) as i64;
        match rng.below(100) {
            0..=29 => self.publish(rng).await,
            30..=64 => self.deliver(rng).await,
            65..=74 => self.manual_retry(rng).await,
            75..=81 => {
                let tenant = TENANTS[rng.below(TENANTS.len())];
                self.store
                    .upsert_tenant(tenant.to_string(), Default::default(), self.now_ms)
                    .await
                    .expect("tenant");
            }
            82..=90 => {
                let tenant = TENANTS[rng.below(TENANTS.len())];
                let id = DESTINATIONS[rng.below(DESTINATIONS.len())];
                let destination = self.destination(tenant, id);
                self.store
                    .create_destination(destination, 10)
                    .await
                    .expect("destination");
            }
            91..=94 => {
                let tenant = TENANTS[rng.below(TENANTS.len())];
                let id = DESTINATIONS[rng.below(DESTINATIONS.len())];
                self.store
                    .delete_destination(tenant.to_string(), id.to_string())
                    .await
                    .expect("delete destination");
            }
            95..=96 => {
                let tenant = TENANTS[rng.below(TENANTS.len())];
                self.store
                    .delete_tenant(tenant.to_string())
                    .await
                    .expect("delete tenant");
            }
            _ => self.restart().await,
        }
    }
}

/// Closes the world's store (dropping every handle, joining the writer) and opens it again.
async fn open_after(world: &mut World) -> (Store, StoreThread) {
    open_after_running(world, |_| {}).await
}

async fn open_after_running(
    world: &mut World,
    between: impl FnOnce(&std::path::Path),
) -> (Store, StoreThread) {
    let placeholder = tempfile::tempdir().expect("tempdir");
    let (spare, spare_thread) = Store::open(placeholder.path()).expect("spare store");
    let old = std::mem::replace(&mut world.store, spare);
    drop(old);
    let old_thread = std::mem::replace(&mut world.thread, spare_thread);
    assert!(
        old_thread.join(Duration::from_secs(10)).await,
        "writer did not stop"
    );
    between(world.dir.path());
    open(world.dir.path())
}

fn table_records<K: redb::Key + 'static, T: serde::de::DeserializeOwned>(
    store: &Store,
    name: &'static str,
    definition: redb::TableDefinition<'static, K, &'static [u8]>,
) -> Vec<T> {
    let txn = store.read().expect("read");
    let table = txn.open_table(definition).expect("table");
    table
        .iter()
        .expect("iter")
        .map(|row| {
            let (_, bytes) = row.expect("row");
            codec::decode(name, bytes.value()).expect("decode")
        })
        .collect()
}

fn ids_in_time_order<'a>(items: impl Iterator<Item = (i64, &'a str)>) -> Vec<String> {
    let mut items: Vec<(i64, &str)> = items.collect();
    items.sort();
    items.into_iter().map(|(_, id)| id.to_string()).collect()
}

/// Every listing agrees with the record tables, and each pair's attempt numbers are unique and
/// rise with time.
fn assert_listings_agree(store: &Store, seed: u64) {
    let events: Vec<Event> = table_records(store, "event_log", tables::EVENT_LOG);
    let attempts: Vec<Attempt> = table_records(store, "attempt_log", tables::ATTEMPT_LOG);
    let all = usize::MAX;

    let listed: Vec<String> = store
        .scan_events(&EventFilter::default(), Direction::Asc, None, all)
        .expect("events")
        .into_iter()
        .map(|e| e.id.into_string())
        .collect();
    let expected = ids_in_time_order(events.iter().map(|e| (e.time_nanos, e.id.as_str())));
    assert_eq!(listed, expected, "seed {seed}: GET /events");

    for tenant in TENANTS {
        let filter = EventFilter {
            tenant_ids: vec![tenant.into()],
            ..Default::default()
        };
        let listed: Vec<String> = store
            .scan_events(&filter, Direction::Desc, None, all)
            .expect("tenant events")
            .into_iter()
            .map(|e| e.id.into_string())
            .rev()
            .collect();
        let expected = ids_in_time_order(
            events
                .iter()
                .filter(|e| e.tenant_id == tenant)
                .map(|e| (e.time_nanos, e.id.as_str())),
        );
        assert_eq!(listed, expected, "seed {seed}: events of tenant {tenant}");
    }

    let list_attempts = |filter: AttemptFilter| -> BTreeSet<String> {
        store
            .scan_attempts(&filter, Direction::Asc, None, all)
            .expect("attempts")
            .into_iter()
            .map(|a| a.id.into_string())
            .collect()
    };
    let expect_attempts = |keep: &dyn Fn(&Attempt) -> bool| -> BTreeSet<String> {
        attempts
            .iter()
            .filter(|a| keep(a))
            .map(|a| a.id.to_string())
            .collect()
    };
    assert_eq!(
        list_attempts(AttemptFilter::default()),
        expect_attempts(&|_| true),
        "seed {seed}: GET /attempts"
    );
    for tenant in TENANTS {
        let filter = AttemptFilter {
            tenant_ids: vec![tenant.into()],
            ..Default::default()
        };
        assert_eq!(
            list_attempts(filter),
            expect_attempts(&|a| a.tenant_id == tenant),
            "seed {seed}: attempts of tenant {tenant}"
        );
    }
    for event_id in EVENT_IDS {
        let filter = AttemptFilter {
            event_ids: vec![event_id.into()],
            ..Default::default()
        };
        assert_eq!(
            list_attempts(filter),
            expect_attempts(&|a| a.event_id == event_id),
            "seed {seed}: attempts of event {event_id}"
        );
    }
    // (event, destination) → (time, attempt id, number) of each of its attempts.
    type PairAttempts<'a> = BTreeMap<(&'a str, &'a str), Vec<(i64, &'a str, u32)>>;
    let mut by_pair = PairAttempts::new();
    for a in &attempts {
        by_pair
            .entry((&a.event_id, &a.destination_id))
            .or_default()
            .push((a.time_nanos, &a.id, a.attempt_number));
    }
    for (pair, mut rows) in by_pair {
        rows.sort();
        let numbers: Vec<u32> = rows.iter().map(|r| r.2).collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "seed {seed}: attempt numbers of {pair:?} must rise: {numbers:?}"
        );
        let latest = store
            .latest_attempt(pair.0, pair.1)
            .expect("latest")
            .expect("a latest attempt");
        assert_eq!(Some(&latest.attempt_number), numbers.last(), "seed {seed}");
    }
}

/// Every attempt left exactly one `attempt.*` operator event; alert state belongs to existing
/// destinations, and no streak is longer than the failures that end its destination's history.
fn assert_alerts_agree(store: &Store, seed: u64) {
    let attempts: Vec<Attempt> = table_records(store, "attempt_log", tables::ATTEMPT_LOG);
    let txn = store.read().expect("read");
    let outbox = txn.open_table(tables::OPERATOR_OUTBOX).expect("outbox");
    let mut attempt_events = std::collections::BTreeMap::new();
    for row in outbox.iter().expect("iter") {
        let (_, body) = row.expect("row");
        let body: serde_json::Value = serde_json::from_slice(body.value()).expect("json body");
        let topic = body["topic"].as_str().expect("topic").to_string();
        if topic.starts_with("attempt.") {
            let id = body["data"]["attempt"]["id"]
                .as_str()
                .expect("id")
                .to_string();
            *attempt_events.entry(id).or_insert(0) += 1;
        }
    }
    for attempt in &attempts {
        let sent = attempt_events
            .get(attempt.id.as_str())
            .copied()
            .unwrap_or(0);
        assert_eq!(sent, 1, "seed {seed}: attempt events of {}", attempt.id);
    }
    assert_eq!(attempt_events.len(), attempts.len(), "seed {seed}");
    let states = txn.open_table(tables::ALERT_STATE).expect("alert_state");
    let destinations = txn.open_table(tables::DESTINATIONS).expect("destinations");
    for row in states.iter().expect("iter") {
        let (key, value) = row.expect("row");
        let destination: Destination = codec::decode(
            "destinations",
            destinations
                .get(key.value())
                .expect("get")
                .unwrap_or_else(|| panic!("seed {seed}: alert state of a missing destination"))
                .value(),
        )
        .expect("destination");
        let state: crate::alerts::AlertState =
            codec::decode("alert_state", value.value()).expect("state");
        let mut history: Vec<&Attempt> = attempts
            .iter()
            .filter(|a| a.tenant_id == destination.tenant_id && a.destination_id == destination.id)
            .collect();
        history.sort_by(|a, b| a.id.cmp(&b.id));
        let trailing = history
            .iter()
            .rev()
            .take_while(|a| a.status == AttemptStatus::Failed)
            .count();
        assert!(
            state.consecutive_failures as usize <= trailing,
            "seed {seed}: streak {} but only {trailing} failures end {}'s history",
            state.consecutive_failures,
            destination.id
        );
        if state.consecutive_failures >= 3 {
            assert!(
                !destination.is_enabled(),
                "seed {seed}: {} reached the threshold and must be disabled",
                destination.id
            );
        }
    }
}

#[tokio::test]
async fn random_histories_leave_the_store_consistent() {
    let mut saw_republish_history = false;
    for seed in 0..24u64 {
        let mut rng = Rng(seed);
        let mut world = World::new();
        for _ in 0..140 {
            world.step(&mut rng).await;
        }
        let report = world.store.check_consistency().expect("check");
        assert!(report.is_consistent(), "seed {seed}: {report:?}");
        assert_listings_agree(&world.store, seed);
        assert_alerts_agree(&world.store, seed);
        world.restart().await;
        let report = world
            .store
            .check_consistency()
            .expect("check after restart");
        assert!(
            report.is_consistent(),
            "seed {seed} after restart: {report:?}"
        );
        assert_listings_agree(&world.store, seed);
        // An attempt older than its event's stored time was made in an earlier round of an id
        // published again: its history must still be there (checked above).
        let events: Vec<Event> = table_records(&world.store, "event_log", tables::EVENT_LOG);
        let attempts: Vec<Attempt> =
            table_records(&world.store, "attempt_log", tables::ATTEMPT_LOG);
        saw_republish_history |= attempts.iter().any(|a| {
            events
                .iter()
                .any(|e| e.id == a.event_id && a.time_nanos < e.time_nanos)
        });
    }
    assert!(saw_republish_history, "no sequence re-used an event id");
}

#[tokio::test]
async fn a_damaged_index_is_reported() {
    let mut world = World::new();
    let mut rng = Rng(7);
    for _ in 0..200 {
        world.step(&mut rng).await;
    }
    assert!(world
        .store
        .check_consistency()
        .expect("check")
        .is_consistent());
    world
        .store
        .writer
        .write(|ctx| {
            let mut index = ctx.txn.open_table(tables::ATTEMPTS_BY_TENANT)?;
            let first = index.first()?.map(|(k, _)| k.value().to_vec());
            if let Some(first) = first {
                index.remove(first.as_slice())?;
            }
            Ok(())
        })
        .await
        .expect("damage");
    let report = world.store.check_consistency().expect("check");
    assert_eq!(report.total, 2, "{report:?}");
    assert!(
        report.problems[0].contains("has no attempts_by_tenant entry"),
        "{report:?}"
    );
}

/// Runs a whole sweep with `cutoff_ms` the way the retention task does, in small batches so the
/// cursor crosses many batch boundaries.
async fn sweep_all(store: &Store, cutoff_ms: i64) -> u64 {
    let protected = std::sync::Arc::new(store.protected_events().expect("protected"));
    let mut cursor = super::SweepCursor::default();
    let mut deleted = 0;
    loop {
        let batch = store
            .sweep_expired(cutoff_ms, cursor, protected.clone(), 3)
            .await
            .expect("sweep");
        deleted += batch.deleted_events + batch.deleted_attempts;
        if batch.done {
            return deleted;
        }
        cursor = batch.cursor;
    }
}

fn ingested_ms(store: &Store, event_id: &str) -> Option<i64> {
    let txn = store.read().expect("read");
    let table = txn.open_table(tables::EVENT_INGESTED).expect("table");
    let value = table.get(event_id).expect("get")?;
    tables::split_position(value.value()).map(|(ms, _)| ms as i64)
}

#[tokio::test]
async fn retention_sweeps_keep_the_store_consistent_and_spare_queued_events() {
    let mut swept_something = false;
    let mut spared_something = false;
    for seed in 100..116u64 {
        let mut rng = Rng(seed);
        let mut world = World::new();
        let start_ms = world.now_ms;
        for _ in 0..160 {
            world.step(&mut rng).await;
        }
        // Expire roughly the first half of the history.
        let cutoff_ms = start_ms + (world.now_ms - start_ms) / 2;
        let protected = world.store.protected_events().expect("protected");
        let events_before: Vec<Event> = table_records(&world.store, "event_log", tables::EVENT_LOG);
        let attempts_before: Vec<Attempt> =
            table_records(&world.store, "attempt_log", tables::ATTEMPT_LOG);
        swept_something |= sweep_all(&world.store, cutoff_ms).await > 0;

        let report = world.store.check_consistency().expect("check");
        assert!(report.is_consistent(), "seed {seed}: {report:?}");
        assert_listings_agree(&world.store, seed);
        let events: Vec<Event> = table_records(&world.store, "event_log", tables::EVENT_LOG);
        let attempts: Vec<Attempt> =
            table_records(&world.store, "attempt_log", tables::ATTEMPT_LOG);
        let kept_events: BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let kept_attempts: BTreeSet<&str> = attempts.iter().map(|a| a.id.as_str()).collect();
        for event in &events_before {
            let ingested = ingested_ms(&world.store, &event.id);
            let kept = kept_events.contains(event.id.as_str());
            if protected.contains(event.id.as_str()) {
                assert!(kept, "seed {seed}: queued event {} was deleted", event.id);
                spared_something |= ingested.is_some_and(|ms| ms < cutoff_ms);
            } else {
                assert_eq!(
                    kept,
                    ingested.is_some_and(|ms| ms >= cutoff_ms),
                    "seed {seed}: event {} kept={kept} ingested={ingested:?}",
                    event.id
                );
            }
        }
        for attempt in &attempts_before {
            let kept = kept_attempts.contains(attempt.id.as_str());
            let expired = attempt.time_nanos < cutoff_ms * 1_000_000;
            let protected = protected.contains(attempt.event_id.as_str());
            assert_eq!(
                kept,
                protected || !expired,
                "seed {seed}: attempt {} (event {})",
                attempt.id,
                attempt.event_id
            );
        }
        // Everything that was queued can still be delivered.
        for _ in 0..40 {
            world.deliver(&mut rng).await;
        }
        let report = world
            .store
            .check_consistency()
            .expect("check after deliveries");
        assert!(report.is_consistent(), "seed {seed}: {report:?}");
    }
    assert!(swept_something, "no sequence had anything to expire");
    assert!(spared_something, "no sequence kept an expired queued event");
}

/// Publishes `id` at the world's now with `time_nanos` as the publisher's time, to "d1" of "ta".
async fn publish_one(world: &World, id: &str, time_nanos: i64) {
    let event = Event {
        matched_destination_ids: vec!["d1".into()],
        time_nanos,
        ..Event::sample(id, "ta", "t")
    };
    world
        .store
        .publish(PublishRequest {
            event,
            now_ms: world.now_ms,
            idempotency_ttl_ms: IDEMPOTENCY_TTL_MS,
        })
        .await
        .expect("publish");
}

/// Delivers the queued task of `event_id`, succeeding or failing (with a retry).
async fn deliver_one(world: &mut World, event_id: &str, success: bool) {
    for key in world.store.queue_keys().expect("keys") {
        let snapshot = world.store.delivery_snapshot(key).expect("snapshot");
        let Some(DeliverySnapshot {
            task,
            event: Some(event),
            destination: Some(destination),
        }) = snapshot
        else {
            continue;
        };
        if task.event_id != event_id {
            continue;
        }
        world.attempt_seq += 1;
        let attempt = Attempt {
            id: format!("a{:06}", world.attempt_seq).into(),
            tenant_id: task.tenant_id.clone(),
            event_id: task.event_id.clone(),
            destination_id: task.destination_id.clone(),
            destination_type: destination.kind.clone(),
            attempt_number: task.attempt_number,
            manual: false,
            status: if success {
                AttemptStatus::Success
            } else {
                AttemptStatus::Failed
            },
            time_nanos: world.now_ms * 1_000_000,
            code: "200".into(),
            response_data: None,
            topic: event.topic.clone(),
        };
        world
            .store
            .record_outcome(Outcome {
                key,
                task,
                attempt,
                retry_after_ms: (!success).then_some(3_600_000),
                now_ms: world.now_ms,
                context: Some(Box::new(super::AttemptContext { event, destination })),
            })
            .await
            .expect("outcome");
        return;
    }
    panic!("no queued task for {event_id}");
}

#[tokio::test]
async fn a_sweep_deletes_what_expired_and_keeps_what_is_still_queued() {
    let mut world = World::new();
    world
        .store
        .upsert_tenant("ta".into(), Default::default(), world.now_ms)
        .await
        .expect("tenant");
    let destination = world.destination("ta", "d1");
    world
        .store
        .create_destination(destination, 10)
        .await
        .expect("destination");
    let day_ms = 86_400_000;
    // Publisher times in the past and the future: expiry goes by when the event was stored.
    publish_one(&world, "delivered", 0).await;
    publish_one(&world, "queued", i64::MAX / 2).await;
    publish_one(&world, "retrying", world.now_ms * 1_000_000).await;
    deliver_one(&mut world, "delivered", true).await;
    deliver_one(&mut world, "retrying", false).await;
    world.now_ms += 2 * day_ms;
    publish_one(&world, "recent", 0).await;
    deliver_one(&mut world, "recent", true).await;

    let cutoff = world.now_ms - day_ms;
    let deleted = sweep_all(&world.store, cutoff).await;
    assert_eq!(deleted, 2, "the delivered event and its attempt");
    let ids = |store: &Store,
               table: redb::TableDefinition<'static, &'static str, &'static [u8]>|
     -> BTreeSet<String> {
        let txn = store.read().expect("read");
        let table = txn.open_table(table).expect("table");
        table
            .iter()
            .expect("iter")
            .map(|row| row.expect("row").0.value().to_string())
            .collect()
    };
    let events = ids(&world.store, tables::EVENT_INGESTED);
    assert_eq!(
        events,
        ["queued", "recent", "retrying"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    let attempts: Vec<Attempt> = table_records(&world.store, "attempt_log", tables::ATTEMPT_LOG);
    let mut attempt_events: Vec<&str> = attempts.iter().map(|a| a.event_id.as_str()).collect();
    attempt_events.sort();
    assert_eq!(attempt_events, ["recent", "retrying"]);
    let report = world.store.check_consistency().expect("check");
    assert!(report.is_consistent(), "{report:?}");

    // Once their deliveries are over, the kept ones expire too: both events and the first
    // attempt of "retrying"; the attempts made now are younger than the cutoff.
    deliver_one(&mut world, "queued", true).await;
    world.now_ms += 3_600_000;
    deliver_one(&mut world, "retrying", true).await;
    assert_eq!(sweep_all(&world.store, cutoff).await, 3);
    assert_eq!(
        ids(&world.store, tables::EVENT_INGESTED),
        BTreeSet::from(["recent".to_string()])
    );
    let report = world.store.check_consistency().expect("check");
    assert!(report.is_consistent(), "{report:?}");
}

/// Rewrites the store as a schema-1 file: events and attempts keyed by id with their schema-1
/// indexes, `event_ingested` only when `with_ingestion` (files older than the ingestion index
/// have none), and the schema version 1.
async fn rewrite_as_schema_1(store: &Store, with_ingestion: bool) {
    use crate::store::legacy;
    store
        .writer
        .write(move |ctx| {
            let events: Vec<(Vec<u8>, Vec<u8>)> = ctx
                .txn
                .open_table(tables::EVENT_LOG)?
                .iter()?
                .map(|row| row.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
                .collect::<Result<_, _>>()?;
            for (key, bytes) in &events {
                let Some((ms, _)) = tables::split_position(key) else {
                    continue;
                };
                let event: Event = codec::decode("event_log", bytes)?;
                let id = event.id.as_str();
                ctx.txn
                    .open_table(legacy::EVENTS)?
                    .insert(id, bytes.as_slice())?;
                if with_ingestion {
                    ctx.txn
                        .open_table(legacy::EVENTS_BY_INGESTION)?
                        .insert(tables::ingestion_key(ms, id).as_slice(), ())?;
                    ctx.txn
                        .open_table(tables::EVENT_INGESTED)?
                        .insert(id, ms.to_be_bytes().as_slice())?;
                }
            }
            if !with_ingestion {
                ctx.txn
                    .open_table(tables::EVENT_INGESTED)?
                    .retain(|_, _| false)?;
            }
            ctx.txn
                .open_table(tables::EVENT_LOG)?
                .retain(|_, _| false)?;
            let attempts: Vec<Vec<u8>> = ctx
                .txn
                .open_table(tables::ATTEMPT_LOG)?
                .iter()?
                .map(|row| row.map(|(_, v)| v.value().to_vec()))
                .collect::<Result<_, _>>()?;
            for bytes in &attempts {
                let attempt: Attempt = codec::decode("attempt_log", bytes)?;
                ctx.txn
                    .open_table(legacy::ATTEMPTS)?
                    .insert(attempt.id.as_str(), bytes.as_slice())?;
                ctx.txn.open_table(legacy::ATTEMPTS_BY_TIME)?.insert(
                    tables::time_key(attempt.time_nanos, &attempt.id).as_slice(),
                    (),
                )?;
            }
            ctx.txn
                .open_table(tables::ATTEMPT_LOG)?
                .retain(|_, _| false)?;
            ctx.txn
                .open_table(tables::ATTEMPT_TIME)?
                .retain(|_, _| false)?;
            ctx.txn
                .open_table(tables::META)?
                .insert("schema_version", 1u32.to_be_bytes().as_slice())?;
            Ok(())
        })
        .await
        .expect("rewrite as schema 1");
}

#[tokio::test]
async fn a_schema_1_file_is_upgraded_on_open_with_every_record_and_listing_intact() {
    for (seed, with_ingestion) in [(3u64, true), (4, false)] {
        let mut world = World::new();
        let mut rng = Rng(seed);
        for _ in 0..200 {
            world.step(&mut rng).await;
        }
        let events: Vec<Event> = table_records(&world.store, "event_log", tables::EVENT_LOG);
        let attempts: Vec<Attempt> =
            table_records(&world.store, "attempt_log", tables::ATTEMPT_LOG);
        assert!(!events.is_empty() && !attempts.is_empty());
        let ingestion: Vec<Option<i64>> = events
            .iter()
            .map(|e| ingested_ms(&world.store, &e.id))
            .collect();
        let queue_before = world.store.queue_keys().expect("queue");
        rewrite_as_schema_1(&world.store, with_ingestion).await;
        world.restart().await;
        let report = world.store.check_consistency().expect("check");
        assert!(report.is_consistent(), "seed {seed}: {report:?}");
        let mut events_after: Vec<Event> =
            table_records(&world.store, "event_log", tables::EVENT_LOG);
        let mut attempts_after: Vec<Attempt> =
            table_records(&world.store, "attempt_log", tables::ATTEMPT_LOG);
        let by_id = |a: &Event, b: &Event| a.id.cmp(&b.id);
        let mut events_sorted = events.clone();
        events_sorted.sort_by(by_id);
        events_after.sort_by(by_id);
        assert_eq!(events_after, events_sorted, "seed {seed}: events");
        let mut attempts_sorted = attempts.clone();
        attempts_sorted.sort_by(|a, b| a.id.cmp(&b.id));
        attempts_after.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(attempts_after, attempts_sorted, "seed {seed}: attempts");
        assert_eq!(world.store.queue_keys().expect("queue"), queue_before);
        for (event, before) in events.iter().zip(&ingestion) {
            let expected = if with_ingestion {
                *before
            } else {
                Some((event.time_nanos / 1_000_000).min(world.now_ms))
            };
            assert_eq!(ingested_ms(&world.store, &event.id), expected);
        }
        assert_listings_agree(&world.store, seed);
        let stamped =
            super::migrate::stamped_version(world.store.db.current().expect("open").as_ref())
                .expect("version");
        assert_eq!(stamped, Some(tables::SCHEMA_VERSION));
    }
}

#[tokio::test]
async fn an_upgrade_interrupted_halfway_is_finished_by_the_next_start() {
    use super::migrate;
    let mut world = World::new();
    let mut rng = Rng(5);
    for _ in 0..200 {
        world.step(&mut rng).await;
    }
    let mut events: Vec<Event> = table_records(&world.store, "event_log", tables::EVENT_LOG);
    let mut attempts: Vec<Attempt> =
        table_records(&world.store, "attempt_log", tables::ATTEMPT_LOG);
    assert!(
        events.len() > 2 && attempts.len() > 5,
        "{} events, {} attempts",
        events.len(),
        attempts.len()
    );
    rewrite_as_schema_1(&world.store, true).await;
    let now_ms = world.now_ms;
    world
        .restart_with(|dir| {
            // The first start: copy, mark, move some events and attempts, then "crash".
            let path = dir.join(crate::store::STORE_FILE);
            assert!(migrate::keep_copy_before_opening(&path).expect("copy"));
            let db = redb::Database::create(&path).expect("open");
            migrate::mark_started(&db).expect("mark");
            let mut sequence = migrate::next_sequence(&db).expect("sequence");
            assert_eq!(
                migrate::move_event_batch(&db, now_ms, &mut sequence, 2).expect("events"),
                2
            );
            assert_eq!(migrate::move_attempt_batch(&db, 5).expect("attempts"), 5);
            drop(db);
            // Whatever the next start does, it must not take a new copy of this half-moved
            // file over the one kept before.
            std::fs::write(dir.join(migrate::SCHEMA1_COPY), b"the copy kept first")
                .expect("mark the copy");
        })
        .await;
    let report = world.store.check_consistency().expect("check");
    assert!(report.is_consistent(), "{report:?}");
    let mut events_after: Vec<Event> = table_records(&world.store, "event_log", tables::EVENT_LOG);
    let mut attempts_after: Vec<Attempt> =
        table_records(&world.store, "attempt_log", tables::ATTEMPT_LOG);
    for list in [&mut events, &mut events_after] {
        list.sort_by(|a, b| a.id.cmp(&b.id));
    }
    for list in [&mut attempts, &mut attempts_after] {
        list.sort_by(|a, b| a.id.cmp(&b.id));
    }
    assert_eq!(events_after, events);
    assert_eq!(attempts_after, attempts);
    assert_listings_agree(&world.store, 5);
    let copy = std::fs::read(world.dir.path().join(migrate::SCHEMA1_COPY)).expect("copy");
    assert_eq!(copy, b"the copy kept first");
    let stamped = migrate::stamped_version(world.store.db.current().expect("open").as_ref())
        .expect("version");
    assert_eq!(stamped, Some(tables::SCHEMA_VERSION));
}

/// Runs `steps` random steps, moving the clock on by up to a few hours now and then so the
/// history spans minutes, hours and days of counters.
async fn spread_history(world: &mut World, rng: &mut Rng, steps: usize) {
    for _ in 0..steps {
        world.step(rng).await;
        match rng.below(10) {
            0 => world.now_ms += rng.below(3 * 3_600_000) as i64,
            1..=3 => world.now_ms += rng.below(120_000) as i64,
            _ => {}
        }
    }
}

/// `bucket → tuple bytes → count` as the store's metrics scans report it.
type Counted = BTreeMap<(usize, Vec<u8>), u64>;

fn scanned(store: &Store, bounds: &[i64]) -> (Counted, Counted) {
    let mut attempts = Counted::new();
    store
        .scan_attempt_counts(bounds, |bucket, tuple, n| {
            *attempts.entry((bucket, tuple.encode())).or_default() += n;
        })
        .expect("attempt scan");
    let mut events = Counted::new();
    store
        .scan_event_counts(bounds, |bucket, tuple, n| {
            *events.entry((bucket, tuple.encode())).or_default() += n;
        })
        .expect("event scan");
    (attempts, events)
}

/// The same counts, straight from the log records.
fn recounted(store: &Store, bounds: &[i64]) -> (Counted, Counted) {
    let bucket = |t: i64| {
        let after = bounds.partition_point(|&b| b <= t);
        (after > 0 && after < bounds.len()).then(|| after - 1)
    };
    let mut attempts = Counted::new();
    for attempt in table_records::<_, Attempt>(store, "attempt_log", tables::ATTEMPT_LOG) {
        if let Some(b) = bucket(attempt.time_nanos) {
            let tuple = super::counters::AttemptTuple::of(&attempt).encode();
            *attempts.entry((b, tuple)).or_default() += 1;
        }
    }
    let with_attempts: BTreeSet<String> =
        table_records::<_, Attempt>(store, "attempt_log", tables::ATTEMPT_LOG)
            .into_iter()
            .map(|a| a.event_id.into_string())
            .collect();
    let mut events = Counted::new();
    for event in table_records::<_, Event>(store, "event_log", tables::EVENT_LOG) {
        if !with_attempts.contains(event.id.as_str()) {
            continue;
        }
        if let Some(b) = bucket(event.time_nanos) {
            let tuple = super::counters::EventTuple::of(&event).encode();
            *events.entry((b, tuple)).or_default() += 1;
        }
    }
    (attempts, events)
}

#[tokio::test]
async fn metrics_scans_equal_a_count_of_the_logs() {
    const MINUTE: i64 = 60_000_000_000;
    for seed in 0..8u64 {
        let mut rng = Rng(seed + 100);
        let mut world = World::new();
        let first = world.now_ms * 1_000_000;
        spread_history(&mut world, &mut rng, 250).await;
        let last = world.now_ms * 1_000_000;
        let report = world.store.check_consistency().expect("check");
        assert!(report.is_consistent(), "seed {seed}: {report:?}");
        for round in 0..12 {
            // Boundaries: some on whole minutes, hours or days, some anywhere.
            let span = (last - first).max(1);
            let mut bounds: Vec<i64> = (0..1 + rng.below(6))
                .map(|_| {
                    let t =
                        first - MINUTE + (rng.next() % (span as u64 + 2 * MINUTE as u64)) as i64;
                    match rng.below(4) {
                        0 => t - t.rem_euclid(MINUTE),
                        1 => t - t.rem_euclid(60 * MINUTE),
                        2 => t - t.rem_euclid(1_440 * MINUTE),
                        _ => t,
                    }
                })
                .collect();
            bounds.push(first - 2 * 1_440 * MINUTE);
            bounds.push(last + 1_440 * MINUTE);
            bounds.sort_unstable();
            bounds.dedup();
            let (attempts, events) = scanned(&world.store, &bounds);
            let (want_attempts, want_events) = recounted(&world.store, &bounds);
            assert_eq!(
                attempts, want_attempts,
                "seed {seed} round {round} {bounds:?}"
            );
            assert_eq!(events, want_events, "seed {seed} round {round} {bounds:?}");
        }
    }
}

/// Removes the counters and their mark, as a file written before they existed lacks them.
fn forget_counters(dir: &Path) {
    let db = redb::Database::create(dir.join(super::STORE_FILE)).expect("db");
    let txn = db.begin_write().expect("write");
    txn.delete_table(tables::ATTEMPT_COUNTS).expect("delete");
    txn.delete_table(tables::EVENT_COUNTS).expect("delete");
    // The earlier release had no alert state or operator event outbox either.
    txn.delete_table(tables::ALERT_STATE).expect("delete");
    txn.delete_table(tables::OPERATOR_OUTBOX).expect("delete");
    txn.commit().expect("commit");
    super::counters_backfill::unmark(&db).expect("unmark");
}

#[tokio::test]
async fn counters_missing_from_an_older_file_are_built_on_open() {
    let mut rng = Rng(42);
    let mut world = World::new();
    spread_history(&mut world, &mut rng, 300).await;
    let before = scanned(&world.store, &[0, i64::MAX]);
    assert!(!before.0.is_empty(), "the history made attempts");
    world.restart_with(forget_counters).await;
    let report = world.store.check_consistency().expect("check");
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(scanned(&world.store, &[0, i64::MAX]), before);

    // A build interrupted after a few small batches is finished by the next start.
    world
        .restart_with(|dir| {
            forget_counters(dir);
            let db = redb::Database::create(dir.join(super::STORE_FILE)).expect("db");
            for _ in 0..3 {
                let step = super::counters_backfill::batch(&db, 7).expect("batch");
                assert!(!step.done);
            }
        })
        .await;
    let report = world.store.check_consistency().expect("check");
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(scanned(&world.store, &[0, i64::MAX]), before);
}

#[tokio::test]
async fn a_damaged_counter_is_reported() {
    let mut rng = Rng(9);
    let mut world = World::new();
    spread_history(&mut world, &mut rng, 200).await;
    world
        .store
        .writer
        .write(|ctx| {
            let mut counts = ctx.txn.open_table(tables::ATTEMPT_COUNTS)?;
            let first = counts
                .first()?
                .map(|(k, v)| (k.value().to_vec(), v.value()));
            if let Some((key, count)) = first {
                counts.insert(key.as_slice(), count + 1)?;
            }
            Ok(())
        })
        .await
        .expect("damage");
    let report = world.store.check_consistency().expect("check");
    assert_eq!(report.total, 1, "{report:?}");
    assert!(
        report.problems[0].starts_with("attempt_counts "),
        "{report:?}"
    );
}

#[tokio::test]
async fn counters_left_stale_by_an_older_release_are_built_again() {
    let mut rng = Rng(5);
    let mut world = World::new();
    spread_history(&mut world, &mut rng, 200).await;
    // An older release deletes an attempt (with its index rows) and leaves the counters be.
    world
        .restart_with(|dir| {
            let db = redb::Database::create(dir.join(super::STORE_FILE)).expect("db");
            let txn = db.begin_write().expect("write");
            {
                let mut log = txn.open_table(tables::ATTEMPT_LOG).expect("log");
                let (_, bytes) = log.pop_first().expect("pop").expect("an attempt");
                let attempt: Attempt = codec::decode("attempt_log", bytes.value()).expect("decode");
                drop(bytes);
                txn.open_table(tables::ATTEMPT_TIME)
                    .expect("times")
                    .remove(attempt.id.as_str())
                    .expect("remove");
                txn.open_table(tables::ATTEMPTS_BY_TENANT)
                    .expect("by tenant")
                    .remove(
                        tables::tenant_time_key(
                            &attempt.tenant_id,
                            attempt.time_nanos,
                            &attempt.id,
                        )
                        .as_slice(),
                    )
                    .expect("remove");
                txn.open_table(tables::ATTEMPTS_BY_EVENT)
                    .expect("by event")
                    .remove(
                        tables::attempt_by_event_key(
                            &attempt.event_id,
                            &attempt.destination_id,
                            attempt.attempt_number,
                        )
                        .as_slice(),
                    )
                    .expect("remove");
            }
            txn.commit().expect("commit");
        })
        .await;
    let report = world.store.check_consistency().expect("check");
    assert!(report.is_consistent(), "{report:?}");
    let bounds = [0, i64::MAX];
    assert_eq!(
        scanned(&world.store, &bounds),
        recounted(&world.store, &bounds)
    );
}

#[tokio::test]
async fn a_file_without_counters_checks_clean_before_they_are_built() {
    let mut rng = Rng(11);
    let mut world = World::new();
    spread_history(&mut world, &mut rng, 120).await;
    let dir = world.dir.path().to_path_buf();
    let placeholder = tempfile::tempdir().expect("tempdir");
    let (spare, spare_thread) = Store::open(placeholder.path()).expect("spare store");
    drop(std::mem::replace(&mut world.store, spare));
    let thread = std::mem::replace(&mut world.thread, spare_thread);
    assert!(thread.join(Duration::from_secs(10)).await, "writer stopped");
    forget_counters(&dir);
    let db = redb::Database::create(dir.join(super::STORE_FILE)).expect("db");
    let report = super::consistency::check(&redb::ReadableDatabase::begin_read(&db).expect("read"))
        .expect("check");
    assert!(report.is_consistent(), "{report:?}");
    drop(db);
    // `outpost check` and `outpost backup` take such a file as it is.
    let counts = super::maintenance::check(&dir.join(super::STORE_FILE)).expect("outpost check");
    assert!(counts
        .iter()
        .any(|(name, rows)| *name == "ATTEMPT_COUNTS" && *rows == 0));
    let copy = placeholder.path().join("copy.redb");
    let copied = super::maintenance::backup(&dir, &copy).expect("outpost backup");
    assert!(copied
        .iter()
        .any(|(name, rows)| *name == "EVENT_COUNTS" && *rows == 0));
    assert!(copied
        .iter()
        .any(|(name, rows)| *name == "OPERATOR_OUTBOX" && *rows == 0));
}
