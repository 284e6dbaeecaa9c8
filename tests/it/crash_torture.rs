//! Crash torture: the real binary runs a mixed load — publishes fanning out to several
//! destinations per tenant, a receiver that fails for a while and recovers, automatic retries
//! on a one-second schedule, manual retries, destination edits, disables, enables, creations
//! and deletions — and
//! is killed with SIGKILL at 100 random moments, restarted on the same data directory each
//! time. Afterwards the receivers stay healthy until the queue is empty, the server stops, and
//! the test checks what the product promises:
//!
//! - **nothing lost**: every (event, destination) pair acknowledged with 202 (the destinations
//!   the publish answer names), or cut off by a kill and found committed when published again
//!   after the restart (a duplicate answer; the destinations the stored event names), whose
//!   destination still exists and was not disabled after the publish was sent was delivered
//!   with success — the receiver answered 200 and a success attempt is on record. Deleting or
//!   disabling a destination cancels its queued deliveries (they are dropped without an
//!   attempt), so such pairs are counted as cancelled, not expected; an edited destination
//!   keeps its queued deliveries, which go to its new URL;
//! - **every delivery recorded**: a pair has no more attempt records than the receiver saw
//!   requests, and a pair of a live destination the receiver saw has an attempt record (a
//!   delivery cut off by the kill before its outcome was committed is made again and recorded);
//!   the difference between requests and records is the duplicate count;
//! - **no retry lost or doubled**: each pair's attempt numbers are exactly 1..n; on a live
//!   destination every failed attempt has a successor and the last attempt is the success; a
//!   pair never retried by hand has exactly one success on record, which is its last attempt,
//!   and each of its attempts after the first came at least the retry delay after the failure
//!   before it (a retry made twice or early would not); a pair retried by hand has at most one
//!   more success per manual retry; and retry chains do cross the kills;
//! - **one operator event per attempt**: with `attempt.*` operator events on, the sink
//!   receives an event for every attempt on record and for no other, one distinct event id per
//!   attempt (the outbox is at-least-once: a kill between sending and removing sends again,
//!   under the same id);
//! - **idempotency keys survive**: an acknowledged id published again is a duplicate;
//! - `outpost check` passes on the data directory.
//!
//! `OUTPOST_TORTURE_SEED` replays a run (the seed is printed); `OUTPOST_TORTURE_CYCLES`
//! changes the number of kills. The figures are printed (`--nocapture` shows them).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::process::outpost_check;
use crate::support::{Api, Behaviour, ProcessServer, ReceivedRequest, Receiver, ServerOptions};

const TENANTS: [&str; 3] = ["t0", "t1", "t2"];
const TOPICS: [&str; 3] = ["a", "b", "c"];
/// Automatic retries one second apart, more of them than any failing spell lasts.
const RETRIES: usize = 60;
const DEFAULT_CYCLES: usize = 100;
/// Destinations a tenant may have before the load stops creating more for it.
const MAX_DESTINATIONS: usize = 6;
/// The least time between a failed attempt and its automatic retry that the schedule allows,
/// less a margin for the moment between the failure's clock reading and its record's.
const RETRY_GAP_MS: i64 = 900;

/// SplitMix64: a small seeded generator, so a run can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..high`.
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.range(0, items.len() as u64) as usize)
        }
    }
}

/// A publish acknowledged with 202: the event and the destinations it was matched to.
struct Acked {
    event_id: String,
    tenant: &'static str,
    topic: &'static str,
    destinations: Vec<String>,
    /// When its publish was sent.
    sent: Instant,
}

/// A publish a kill cut off before its answer.
struct CutOff {
    event_id: String,
    tenant: &'static str,
    topic: &'static str,
    n: u64,
    sent: Instant,
}

/// What the load did and what the server answered.
#[derive(Default)]
struct Ledger {
    acked: Vec<Acked>,
    /// Requests cut off by a kill whose outcome stays unknown (publishes whose id matches
    /// nothing when published again included).
    unknown: u64,
    /// Publishes cut off by a kill, until the next start publishes them again.
    cut_off: Vec<CutOff>,
    cut_off_committed: u64,
    /// Publishes cut off by a kill that had committed, with their stored matches.
    committed_unacknowledged: Vec<Acked>,
    cut_off_not_committed: u64,
    /// Acknowledged ids published again (each answered as a duplicate).
    republished: u64,
    /// Manual retries sent per (event, destination), answered or not.
    manual_sent: HashMap<(String, String), u64>,
    manual_accepted: u64,
    /// Manual retries refused as the product should: no attempt yet, destination deleted,
    /// destination edited so that it no longer matches the event.
    manual_refused: u64,
    edits: u64,
    /// Each disable sent, and when it was answered or cut off: from then on it may have
    /// dropped the destination's queued deliveries.
    disables: Vec<(String, Instant)>,
    toggles: u64,
    deletes: u64,
    creates: u64,
    /// Answers no request of the load should get.
    unexpected: Vec<String>,
}

/// The destinations the load believes exist, per tenant (refreshed from the API after each
/// restart, since a kill leaves the outcome of a request in flight unknown).
#[derive(Default)]
struct Model {
    destinations: BTreeMap<String, Vec<String>>,
    next_id: u64,
    next_version: u64,
}

struct Shared {
    ledger: Mutex<Ledger>,
    model: Mutex<Model>,
    stop: AtomicBool,
    receivers: [Arc<Receiver>; 2],
}

impl Shared {
    /// A URL on receiver `which` naming the destination (and a version, changed by edits).
    fn url(&self, which: usize, tenant: &str, destination: &str, version: u64) -> String {
        self.receivers[which].url(&format!("/{tenant}/{destination}/v{version}"))
    }
}

fn topics(rng: &mut Rng) -> Value {
    if rng.chance(25) {
        return json!("*");
    }
    let chosen: Vec<&str> = TOPICS.iter().copied().filter(|_| rng.chance(50)).collect();
    if chosen.is_empty() {
        json!([TOPICS[rng.range(0, 3) as usize]])
    } else {
        json!(chosen)
    }
}

async fn create_destination(
    api: &Api,
    shared: &Shared,
    rng: &mut Rng,
    tenant: &str,
) -> Result<(), String> {
    let (id, version) = {
        let mut model = shared.model.lock().unwrap();
        model.next_id += 1;
        model.next_version += 1;
        (format!("d{}", model.next_id), model.next_version)
    };
    let which = rng.range(0, 2) as usize;
    let body = json!({
        "id": id,
        "type": "webhook",
        "topics": topics(rng),
        "config": {"url": shared.url(which, tenant, &id, version)},
    });
    let reply = api
        .try_admin(
            Method::POST,
            &format!("/api/v1/tenants/{tenant}/destinations"),
            Some(body),
        )
        .await?;
    if reply.status == StatusCode::CREATED {
        let mut model = shared.model.lock().unwrap();
        model
            .destinations
            .entry(tenant.to_string())
            .or_default()
            .push(id);
        drop(model);
        shared.ledger.lock().unwrap().creates += 1;
    } else {
        shared.ledger.lock().unwrap().unexpected.push(format!(
            "create {tenant}/{id}: {} {}",
            reply.status,
            reply.text()
        ));
    }
    Ok(())
}

/// What the server answered a publish.
struct Published {
    duplicate: bool,
    destinations: Vec<String>,
}

/// Publishes `id`; `Err` when the server died before answering (the outcome is unknown), or
/// with the unexpected answer's text.
async fn publish(
    api: &Api,
    id: &str,
    tenant: &str,
    topic: &str,
    n: u64,
) -> Result<Result<Published, String>, String> {
    let body = json!({"id": id, "tenant_id": tenant, "topic": topic, "data": {"n": n}});
    let reply = api
        .try_admin(Method::POST, "/api/v1/publish", Some(body))
        .await?;
    if reply.status != StatusCode::ACCEPTED {
        return Ok(Err(format!(
            "publish {id}: {} {}",
            reply.status,
            reply.text()
        )));
    }
    let answer = reply.json();
    Ok(Ok(Published {
        duplicate: answer["duplicate"] == json!(true),
        destinations: answer["destination_ids"]
            .as_array()
            .map(|ids| {
                ids.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }))
}

/// Publishes to one tenant until told to stop or the server dies; now and then publishes an
/// acknowledged id again, which must be a duplicate (its idempotency key survives the kills).
async fn publisher(api: Api, shared: Arc<Shared>, cycle: usize, tenant: &'static str, seed: u64) {
    let mut rng = Rng(seed);
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let topic = TOPICS[rng.range(0, 3) as usize];
        let again = if rng.chance(10) {
            let ledger = shared.ledger.lock().unwrap();
            rng.pick(&ledger.acked)
                .map(|a| (a.event_id.clone(), a.tenant, a.topic))
        } else {
            None
        };
        if let Some((id, owner, first_topic)) = again {
            match publish(&api, &id, owner, first_topic, 0).await {
                Ok(Ok(answer)) => {
                    let mut ledger = shared.ledger.lock().unwrap();
                    ledger.republished += 1;
                    // A publish that matches nothing stores nothing and looks up no id (as
                    // upstream), so only one that matched can tell.
                    if !answer.duplicate && !answer.destinations.is_empty() {
                        ledger.unexpected.push(format!(
                            "acknowledged {id} published again was not a duplicate"
                        ));
                    }
                }
                Ok(Err(unexpected)) => shared.ledger.lock().unwrap().unexpected.push(unexpected),
                Err(_) => return,
            }
            continue;
        }
        n += 1;
        let id = format!("e{cycle}-{tenant}-{n}");
        let sent = Instant::now();
        match publish(&api, &id, tenant, topic, n).await {
            Ok(Ok(answer)) => {
                let mut ledger = shared.ledger.lock().unwrap();
                if answer.duplicate {
                    ledger
                        .unexpected
                        .push(format!("first publish of {id} was a duplicate"));
                }
                if !answer.destinations.is_empty() {
                    ledger.acked.push(Acked {
                        event_id: id,
                        tenant,
                        topic,
                        destinations: answer.destinations,
                        sent,
                    });
                }
            }
            Ok(Err(unexpected)) => shared.ledger.lock().unwrap().unexpected.push(unexpected),
            Err(_) => {
                shared.ledger.lock().unwrap().cut_off.push(CutOff {
                    event_id: id,
                    tenant,
                    topic,
                    n,
                    sent,
                });
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.range(2, 12))).await;
    }
}

/// Publishes the ids whose publish a kill cut off again: a duplicate answer shows the first
/// one had committed; otherwise this one is the acknowledged publish.
async fn resolve_cut_off(api: &Api, shared: &Shared) {
    let cut_off = std::mem::take(&mut shared.ledger.lock().unwrap().cut_off);
    for c in cut_off {
        let sent = Instant::now();
        let answer = publish(api, &c.event_id, c.tenant, c.topic, c.n)
            .await
            .expect("server up")
            .unwrap_or_else(|unexpected| panic!("{unexpected}"));
        let mut ledger = shared.ledger.lock().unwrap();
        if answer.duplicate {
            // It had committed: its deliveries are owed as for an acknowledged one, to the
            // destinations the stored event was matched to.
            drop(ledger);
            let stored = api.get(&format!("/api/v1/events/{}", c.event_id)).await;
            assert_eq!(stored.status, StatusCode::OK, "{}", stored.text());
            let destinations = stored.json()["matched_destination_ids"]
                .as_array()
                .expect("matched_destination_ids")
                .iter()
                .filter_map(|d| d.as_str().map(str::to_string))
                .collect();
            let mut ledger = shared.ledger.lock().unwrap();
            ledger.cut_off_committed += 1;
            ledger.committed_unacknowledged.push(Acked {
                event_id: c.event_id,
                tenant: c.tenant,
                topic: c.topic,
                destinations,
                sent: c.sent,
            });
        } else if !answer.destinations.is_empty() {
            ledger.cut_off_not_committed += 1;
            ledger.acked.push(Acked {
                event_id: c.event_id,
                tenant: c.tenant,
                topic: c.topic,
                destinations: answer.destinations,
                sent,
            });
        } else {
            // Matching nothing now, it says nothing about the first publish.
            ledger.unknown += 1;
        }
    }
}

/// Manual retries, destination edits, deletions and creations, and the failing receiver's
/// switch, until told to stop or the server dies.
async fn mutator(api: Api, shared: Arc<Shared>, seed: u64) {
    let mut rng = Rng(seed);
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.range(5, 30))).await;
        let tenant = TENANTS[rng.range(0, 3) as usize];
        let roll = rng.range(0, 100);
        let outcome = if roll < 40 {
            manual_retry(&api, &shared, &mut rng).await
        } else if roll < 65 {
            edit(&api, &shared, &mut rng, tenant).await
        } else if roll < 67 {
            delete(&api, &shared, &mut rng, tenant).await
        } else if roll < 69 {
            toggle(&api, &shared, &mut rng, tenant).await
        } else if roll < 77 {
            let count = shared
                .model
                .lock()
                .unwrap()
                .destinations
                .get(tenant)
                .map_or(0, Vec::len);
            // Well under the per-tenant limit on destinations.
            if count < MAX_DESTINATIONS {
                create_destination(&api, &shared, &mut rng, tenant).await
            } else {
                Ok(())
            }
        } else {
            shared.receivers[1].set_switch(rng.chance(50));
            Ok(())
        };
        if outcome.is_err() {
            shared.ledger.lock().unwrap().unknown += 1;
            return;
        }
    }
}

async fn manual_retry(api: &Api, shared: &Shared, rng: &mut Rng) -> Result<(), String> {
    let pair = {
        let ledger = shared.ledger.lock().unwrap();
        ledger
            .acked
            .get(rng.range(0, ledger.acked.len().max(1) as u64) as usize)
            .and_then(|acked| {
                rng.pick(&acked.destinations)
                    .map(|d| (acked.event_id.clone(), d.clone()))
            })
    };
    let Some((event_id, destination_id)) = pair else {
        return Ok(());
    };
    *shared
        .ledger
        .lock()
        .unwrap()
        .manual_sent
        .entry((event_id.clone(), destination_id.clone()))
        .or_default() += 1;
    let reply = api
        .try_admin(
            Method::POST,
            "/api/v1/retry",
            Some(json!({"event_id": event_id, "destination_id": destination_id})),
        )
        .await?;
    let text = reply.text();
    let mut ledger = shared.ledger.lock().unwrap();
    match reply.status {
        StatusCode::ACCEPTED => ledger.manual_accepted += 1,
        // No attempt on record yet, or the destination was deleted.
        StatusCode::NOT_FOUND => ledger.manual_refused += 1,
        // The destination was edited so that it no longer matches the event.
        StatusCode::BAD_REQUEST if text.contains("does not match") => ledger.manual_refused += 1,
        // The destination is disabled.
        StatusCode::BAD_REQUEST if text.contains("disabled") => ledger.manual_refused += 1,
        status => ledger.unexpected.push(format!(
            "retry {event_id}/{destination_id}: {status} {text}"
        )),
    }
    Ok(())
}

fn pick_destination(shared: &Shared, rng: &mut Rng, tenant: &str) -> Option<(String, usize)> {
    let model = shared.model.lock().unwrap();
    let list = model.destinations.get(tenant)?;
    rng.pick(list).map(|d| (d.clone(), list.len()))
}

async fn edit(api: &Api, shared: &Shared, rng: &mut Rng, tenant: &str) -> Result<(), String> {
    let Some((id, _)) = pick_destination(shared, rng, tenant) else {
        return Ok(());
    };
    let body = if rng.chance(50) {
        json!({"topics": topics(rng)})
    } else {
        let version = {
            let mut model = shared.model.lock().unwrap();
            model.next_version += 1;
            model.next_version
        };
        let which = rng.range(0, 2) as usize;
        json!({"config": {"url": shared.url(which, tenant, &id, version)}})
    };
    let reply = api
        .try_admin(
            Method::PATCH,
            &format!("/api/v1/tenants/{tenant}/destinations/{id}"),
            Some(body),
        )
        .await?;
    let mut ledger = shared.ledger.lock().unwrap();
    if reply.status == StatusCode::OK {
        ledger.edits += 1;
    } else {
        ledger.unexpected.push(format!(
            "edit {tenant}/{id}: {} {}",
            reply.status,
            reply.text()
        ));
    }
    Ok(())
}

async fn delete(api: &Api, shared: &Shared, rng: &mut Rng, tenant: &str) -> Result<(), String> {
    // Keep at least two destinations per tenant, so publishes keep fanning out.
    let Some((id, count)) = pick_destination(shared, rng, tenant) else {
        return Ok(());
    };
    if count <= 2 {
        return Ok(());
    }
    shared
        .model
        .lock()
        .unwrap()
        .destinations
        .entry(tenant.to_string())
        .or_default()
        .retain(|d| *d != id);
    let reply = api
        .try_admin(
            Method::DELETE,
            &format!("/api/v1/tenants/{tenant}/destinations/{id}"),
            None,
        )
        .await?;
    let mut ledger = shared.ledger.lock().unwrap();
    if reply.status.is_success() {
        ledger.deletes += 1;
    } else {
        ledger.unexpected.push(format!(
            "delete {tenant}/{id}: {} {}",
            reply.status,
            reply.text()
        ));
    }
    Ok(())
}

/// Disables or enables a destination. A disabled destination's queued deliveries are
/// dropped, as a deleted one's, so a pair is owed no more when a disable of its destination
/// ended after its publish was sent.
async fn toggle(api: &Api, shared: &Shared, rng: &mut Rng, tenant: &str) -> Result<(), String> {
    let Some((id, _)) = pick_destination(shared, rng, tenant) else {
        return Ok(());
    };
    let action = if rng.chance(50) { "disable" } else { "enable" };
    let answer = api
        .try_admin(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/destinations/{id}/{action}"),
            None,
        )
        .await;
    if action == "disable" {
        shared
            .ledger
            .lock()
            .unwrap()
            .disables
            .push((id.clone(), Instant::now()));
    }
    let reply = answer?;
    let mut ledger = shared.ledger.lock().unwrap();
    if reply.status.is_success() {
        ledger.toggles += 1;
    } else {
        ledger.unexpected.push(format!(
            "{action} {tenant}/{id}: {} {}",
            reply.status,
            reply.text()
        ));
    }
    Ok(())
}

/// The destination ids of each tenant, as the server has them.
async fn destinations_on_server(api: &Api) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for tenant in TENANTS {
        let reply = api
            .get(&format!("/api/v1/tenants/{tenant}/destinations"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let ids = reply
            .json()
            .as_array()
            .expect("destination list")
            .iter()
            .filter_map(|d| d["id"].as_str().map(str::to_string))
            .collect();
        out.insert(tenant.to_string(), ids);
    }
    out
}

/// `outpost_queue_depth` from `/metrics`.
async fn queue_depth(api: &Api) -> u64 {
    let reply = api.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    reply
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("outpost_queue_depth "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .expect("outpost_queue_depth in /metrics")
}

/// One attempt as the log lists it.
struct AttemptRow {
    id: String,
    number: u64,
    success: bool,
    manual: bool,
    /// When it was made, unix milliseconds.
    time_ms: i64,
}

/// Every attempt on record, per (event, destination).
async fn attempts(api: &Api) -> HashMap<(String, String), Vec<AttemptRow>> {
    let mut out: HashMap<(String, String), Vec<AttemptRow>> = HashMap::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(cursor) => format!("/api/v1/attempts?limit=1000&next={cursor}"),
            None => "/api/v1/attempts?limit=1000".to_string(),
        };
        let reply = api.get(&path).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        let page = reply.json();
        for a in page["models"].as_array().expect("models") {
            let key = (
                a["event_id"].as_str().expect("event_id").to_string(),
                a["destination_id"]
                    .as_str()
                    .expect("destination_id")
                    .to_string(),
            );
            out.entry(key).or_default().push(AttemptRow {
                id: a["id"].as_str().expect("id").to_string(),
                number: a["attempt_number"].as_u64().expect("attempt_number"),
                success: a["status"] == "success",
                manual: a["manual"] == true,
                time_ms: outpost::time::parse_rfc3339(a["time"].as_str().expect("time"))
                    .expect("attempt time")
                    .unix_millis(),
            });
        }
        match page["pagination"]["next"].as_str() {
            Some(cursor) if !cursor.is_empty() => next = Some(cursor.to_string()),
            _ => return out,
        }
    }
}

/// Every request the receivers saw, per (event, destination) — the destination is the second
/// segment of the path.
fn receipts(receivers: &[Arc<Receiver>]) -> HashMap<(String, String), Vec<ReceivedRequest>> {
    let mut out: HashMap<(String, String), Vec<ReceivedRequest>> = HashMap::new();
    for receiver in receivers {
        for request in receiver.requests() {
            let destination = request.path.split('/').nth(2).unwrap_or_default();
            let event = request.event_id().expect("delivery names its event");
            out.entry((event, destination.to_string()))
                .or_default()
                .push(request.clone());
        }
    }
    for requests in out.values_mut() {
        requests.sort_by_key(|r| r.arrived);
    }
    out
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_deliveries_survive_100_kills() {
    let seed = env_number("OUTPOST_TORTURE_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let cycles = env_number("OUTPOST_TORTURE_CYCLES").map_or(DEFAULT_CYCLES, |c| c as usize);
    eprintln!(
        "crash torture: seed {seed} (OUTPOST_TORTURE_SEED={seed} replays it), {cycles} kills"
    );
    let mut rng = Rng(seed);

    let healthy = Arc::new(Receiver::start(Behaviour::Status(200)).await);
    let flaky = Arc::new(Receiver::start(Behaviour::Switch).await);
    let shared = Arc::new(Shared {
        ledger: Mutex::new(Ledger::default()),
        model: Mutex::new(Model::default()),
        stop: AtomicBool::new(false),
        receivers: [healthy.clone(), flaky.clone()],
    });
    let sink = Receiver::start(Behaviour::Status(200)).await;
    let schedule = vec!["1"; RETRIES].join(",");
    let options = ServerOptions::default()
        .env("RETRY_SCHEDULE", &schedule)
        .env("OPERATOR_EVENTS_TOPICS", "attempt.success,attempt.failed")
        .env("OPERATOR_EVENTS_HTTP_URL", &sink.url("/operator"));
    let mut server = ProcessServer::start(options.clone());
    for tenant in TENANTS {
        let r = server
            .api
            .put(&format!("/api/v1/tenants/{tenant}"), None)
            .await;
        assert!(r.status.is_success(), "{}", r.text());
        for _ in 0..3 {
            create_destination(&server.api, &shared, &mut rng, tenant)
                .await
                .expect("server up");
        }
    }

    let started = Instant::now();
    let mut kills: Vec<Instant> = Vec::new();
    for cycle in 0..cycles {
        shared.stop.store(false, Ordering::Relaxed);
        flaky.set_switch(rng.chance(50));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, tenant) in TENANTS.into_iter().enumerate() {
            tasks.spawn(publisher(
                server.api.clone(),
                shared.clone(),
                cycle,
                tenant,
                rng.next() ^ i as u64,
            ));
        }
        tasks.spawn(mutator(server.api.clone(), shared.clone(), rng.next()));
        tokio::time::sleep(Duration::from_millis(rng.range(20, 401))).await;
        kills.push(Instant::now());
        tokio::task::block_in_place(|| server.kill());
        shared.stop.store(true, Ordering::Relaxed);
        while let Some(joined) = tasks.join_next().await {
            joined.expect("load task");
        }
        tokio::task::block_in_place(|| server.restart(options.clone()));
        // A request cut off by the kill may or may not have been applied: ask the server.
        let on_server = destinations_on_server(&server.api).await;
        shared.model.lock().unwrap().destinations = on_server;
        resolve_cut_off(&server.api, &shared).await;
    }
    let load_took = started.elapsed();

    // The receivers stay healthy until nothing is queued: every retry made or cancelled.
    flaky.set_switch(true);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let depth = queue_depth(&server.api).await;
        if depth == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{depth} deliveries still queued 90 s after the last restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let live: HashSet<String> = destinations_on_server(&server.api)
        .await
        .into_values()
        .flatten()
        .collect();
    let log = attempts(&server.api).await;
    // Each recorded attempt's operator event, committed with it, reaches the sink.
    let recorded: HashSet<String> = log.values().flatten().map(|r| r.id.clone()).collect();
    let mut announced: HashMap<String, String> = HashMap::new();
    let mut sink_read = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let requests = sink.requests();
        for request in &requests[sink_read..] {
            let envelope: Value = serde_json::from_slice(&request.body).expect("envelope");
            let envelope_id = envelope["id"].as_str().expect("envelope id").to_string();
            let attempt_id = envelope["data"]["attempt"]["id"]
                .as_str()
                .expect("attempt id")
                .to_string();
            let previous = announced.insert(envelope_id, attempt_id.clone());
            assert!(
                previous.is_none_or(|p| p == attempt_id),
                "one operator event id names two attempts"
            );
        }
        sink_read = requests.len();
        let mut attempts_announced: HashSet<&String> = announced.values().collect();
        if recorded.iter().all(|id| attempts_announced.contains(id)) {
            attempts_announced.retain(|id| !recorded.contains(*id));
            assert!(
                attempts_announced.is_empty(),
                "operator events for attempts not on record: {:?}",
                attempts_announced.iter().take(20).collect::<Vec<_>>()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} attempts' operator events not sent 120 s after the drain",
            recorded
                .iter()
                .filter(|id| !attempts_announced.contains(id))
                .count(),
            recorded.len()
        );
        sink.wait_until(Duration::from_millis(500), |r| r.len() > sink_read)
            .await;
    }
    let operator_events_sent = sink_read;
    let operator_events_distinct = announced.len();
    // Every envelope names a recorded attempt and every recorded attempt has one: as many
    // distinct envelopes as attempts means one event per attempt, none doubled.
    assert_eq!(
        operator_events_distinct,
        recorded.len(),
        "distinct operator events against attempts on record"
    );
    let stopped = tokio::task::block_in_place(|| server.stop());
    assert!(stopped.success(), "graceful stop exits 0, got {stopped:?}");
    let (checked, report) = outpost_check(&server.data_dir);
    assert!(checked, "outpost check fails after the torture:\n{report}");

    let ledger = shared.ledger.lock().unwrap();
    // A pair is owed when its destination exists and no disable of it ended after the publish
    // was sent (one that ended before it left the destination disabled, so unmatched, or was
    // undone by an enable before the publish matched it).
    let disabled_after = |destination: &str, sent: Instant| {
        ledger
            .disables
            .iter()
            .any(|(d, done)| d == destination && *done > sent)
    };
    let never_disabled: HashSet<&String> = live
        .iter()
        .filter(|d| !ledger.disables.iter().any(|(x, _)| x == *d))
        .collect();
    let mut owed: HashSet<(String, String)> = HashSet::new();
    assert!(
        ledger.unexpected.is_empty(),
        "unexpected answers during the load: {:?}",
        ledger.unexpected
    );
    let seen = receipts(&shared.receivers);
    let mut problems: Vec<String> = Vec::new();

    // Attempt numbers: exactly 1..n per pair; never more records than requests.
    let mut attempt_total = 0usize;
    for (pair, rows) in &log {
        attempt_total += rows.len();
        let mut numbers: Vec<u64> = rows.iter().map(|r| r.number).collect();
        numbers.sort_unstable();
        if numbers != (1..=numbers.len() as u64).collect::<Vec<_>>() {
            problems.push(format!("{pair:?}: attempt numbers {numbers:?}"));
        }
        // Without manual retries each attempt after the first is the automatic retry its
        // predecessor's failure scheduled one second out: never sooner, never twice.
        if !ledger.manual_sent.contains_key(pair) {
            let mut by_number: Vec<&AttemptRow> = rows.iter().collect();
            by_number.sort_by_key(|r| r.number);
            for w in by_number.windows(2) {
                if w[0].success || w[1].time_ms - w[0].time_ms < RETRY_GAP_MS {
                    problems.push(format!(
                        "{pair:?}: attempt {} ({}) {} ms after attempt {} ({})",
                        w[1].number,
                        if w[1].success { "success" } else { "failed" },
                        w[1].time_ms - w[0].time_ms,
                        w[0].number,
                        if w[0].success { "success" } else { "failed" },
                    ));
                }
            }
        }
        let requests = seen.get(pair).map_or(0, Vec::len);
        if rows.len() > requests {
            problems.push(format!(
                "{pair:?}: {} attempts on record, {requests} requests received",
                rows.len()
            ));
        }
    }

    // Acknowledged pairs: delivered with success unless their destination was deleted.
    let mut expected = 0u64;
    let mut cancelled = 0u64;
    let mut delivered_before_delete = 0u64;
    let mut delivered = 0u64;
    let mut lost: Vec<(String, String)> = Vec::new();
    for acked in ledger.acked.iter().chain(&ledger.committed_unacknowledged) {
        for destination in &acked.destinations {
            let pair = (acked.event_id.clone(), destination.clone());
            if !live.contains(destination) || disabled_after(destination, acked.sent) {
                if seen
                    .get(&pair)
                    .is_some_and(|rs| rs.iter().any(|r| r.answered == 200))
                {
                    delivered_before_delete += 1;
                } else {
                    cancelled += 1;
                }
                continue;
            }
            expected += 1;
            owed.insert(pair.clone());
            let received_ok = seen
                .get(&pair)
                .is_some_and(|rs| rs.iter().any(|r| r.answered == 200));
            let recorded_ok = log
                .get(&pair)
                .is_some_and(|rows| rows.iter().any(|r| r.success));
            if received_ok && recorded_ok {
                delivered += 1;
            } else {
                lost.push(pair);
            }
        }
    }

    // Pairs whose deliveries nothing dropped (owed ones, and any of a destination that exists
    // and was never disabled): every request recorded, every failure retried, no retry doubled.
    let manual_sent = &ledger.manual_sent;
    for (pair, requests) in &seen {
        if !owed.contains(pair) && !never_disabled.contains(&pair.1) {
            continue;
        }
        let Some(rows) = log.get(pair) else {
            problems.push(format!(
                "{pair:?}: {} requests received, no attempt on record",
                requests.len()
            ));
            continue;
        };
        let mut rows: Vec<&AttemptRow> = rows.iter().collect();
        rows.sort_by_key(|r| r.number);
        if rows.last().is_some_and(|r| !r.success) {
            problems.push(format!(
                "{pair:?}: the last of {} attempts failed and no retry followed",
                rows.len()
            ));
        }
        let successes = rows.iter().filter(|r| r.success).count() as u64;
        let manual = manual_sent.get(pair).copied().unwrap_or(0);
        if successes > 1 + manual {
            problems.push(format!(
                "{pair:?}: {successes} successes on record with {manual} manual retries"
            ));
        }
        if manual == 0 && rows.iter().any(|r| r.manual) {
            problems.push(format!("{pair:?}: a manual attempt nobody asked for"));
        }
    }

    // Figures.
    let requests_total: usize = seen.values().map(Vec::len).sum();
    let duplicates: usize = seen
        .iter()
        .map(|(pair, requests)| {
            requests.len() - log.get(pair).map_or(0, Vec::len).min(requests.len())
        })
        .sum();
    let extra_successes: usize = seen
        .iter()
        .filter(|(pair, _)| !manual_sent.contains_key(*pair))
        .map(|(_, requests)| {
            requests
                .iter()
                .filter(|r| r.answered == 200)
                .count()
                .saturating_sub(1)
        })
        .sum();
    let failed_attempts: usize = log.values().flatten().filter(|r| !r.success).count();
    let crossed = seen
        .values()
        .flat_map(|requests| requests.windows(2))
        .filter(|w| {
            w[0].answered != 200 && kills.iter().any(|k| w[0].arrived < *k && *k < w[1].arrived)
        })
        .count();
    let acked_pairs: HashSet<&str> = ledger
        .acked
        .iter()
        .chain(&ledger.committed_unacknowledged)
        .map(|a| a.event_id.as_str())
        .collect();
    let unacknowledged_delivered = seen
        .keys()
        .filter(|(event, _)| !acked_pairs.contains(event.as_str()))
        .count();
    eprintln!(
        "crash torture figures (seed {seed}):\n\
         \x20 kills                                {}\n\
         \x20 load time                            {:.1} s\n\
         \x20 acknowledged events                  {}\n\
         \x20 publishes cut off: committed / not   {} / {}\n\
         \x20 cut off, outcome unknown             {}\n\
         \x20 acknowledged ids published again     {}\n\
         \x20 deliveries expected                  {expected}\n\
         \x20 delivered                            {delivered}\n\
         \x20 lost                                 {}\n\
         \x20 delivered, then deleted or disabled  {delivered_before_delete}\n\
         \x20 cancelled by a delete or disable     {cancelled}\n\
         \x20 pairs of unknown publishes delivered {unacknowledged_delivered}\n\
         \x20 requests received                    {requests_total}\n\
         \x20 attempts on record                   {attempt_total}\n\
         \x20 failed attempts                      {failed_attempts}\n\
         \x20 retry chains across a kill           {crossed}\n\
         \x20 duplicates (request, no record)      {duplicates}\n\
         \x20 second 200s without manual retry     {extra_successes}\n\
         \x20 operator events sent / distinct      {operator_events_sent} / {operator_events_distinct}\n\
         \x20 manual retries accepted / refused    {} / {}\n\
         \x20 edits / toggles / deletes / creates  {} / {} / {} / {}",
        kills.len(),
        load_took.as_secs_f64(),
        ledger.acked.len(),
        ledger.cut_off_committed,
        ledger.cut_off_not_committed,
        ledger.unknown,
        ledger.republished,
        lost.len(),
        ledger.manual_accepted,
        ledger.manual_refused,
        ledger.edits,
        ledger.toggles,
        ledger.deletes,
        ledger.creates,
    );

    assert!(
        lost.is_empty(),
        "lost deliveries ({}): {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    assert!(
        problems.is_empty(),
        "{} problems: {:?}",
        problems.len(),
        &problems[..problems.len().min(20)]
    );
    assert!(
        expected > 0 && failed_attempts > 0,
        "the load exercised nothing"
    );
    if kills.len() >= 20 {
        assert!(crossed > 0, "no retry chain crossed a kill");
    }
}
