//! The metrics scenario: how fast `GET /metrics/attempts` and `GET /metrics/events` answer the
//! last 24 hours at 1 h granularity on a store holding about 1,000,000 attempts spread over
//! those 24 hours.
//!
//! 1. Fill, before the server starts: the store is written through the same store calls the
//!    server's publish and delivery make (each event with its queue rows, then each queued
//!    task's outcome; a failed first attempt retried a minute later), dated over the 24 hours
//!    before now — attempts are dated by the clock when they are made, and a running server's
//!    clock cannot be moved back. `--events` events (default [`DEFAULT_EVENTS`]) go to
//!    [`TENANTS`] tenants in turn, each event to [`FANOUT`] destinations, with [`TOPICS`]
//!    topics; one first attempt in ten fails (500) and its retry succeeds.
//! 2. Start the server on that data directory and check that a query over the whole fill
//!    counts every attempt and every event.
//! 3. For `--duration` seconds, `--readers` keep-alive connections, each closed-loop, alternate
//!    the two queries: `time[start]` = now − 24 h and `time[end]` = now (not on whole hours, so
//!    both edges take the finer counters and the log), `granularity=1h`, attempts with every
//!    count and rate measure, events with `count` and `rate`. A good answer is 200 with 25
//!    buckets whose counts are not all zero; each query has its own latency histogram.
//!
//! The target: p99 ≤ [`P99_TARGET_MS`] for each query, with no errors.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use outpost::model::event::{Attempt, AttemptStatus, Event};
use outpost::store::{Outcome, PublishRequest, Store};
use outpost::time::Timestamp;

use super::api::Api;
use super::reader::{self, Ask, ReadStats};
use super::report::{MetricsFigures, ReadFigures, Results};
use super::server::{self, SpawnSpec};
use super::{per_second, remove_dir, BenchArgs, BenchClock, Plan, BENCH_API_KEY};

/// Events filled when `--events` is not given: with the retries, about 1,000,000 attempts.
pub const DEFAULT_EVENTS: u64 = 227_273;
/// Seconds of read load when `--duration` is not given.
pub const DEFAULT_DURATION_S: u64 = 20;
/// Target p99 of each query, ms.
pub const P99_TARGET_MS: f64 = 50.0;
const TENANTS: u64 = 10;
const FANOUT: u64 = 4;
const TOPICS: [&str; 5] = [
    "user.created",
    "user.updated",
    "order.created",
    "order.shipped",
    "invoice.paid",
];
/// Span the fill spreads its events over.
const SPAN_MS: i64 = 24 * 3_600_000;
/// Events published per fill round, before their outcomes are written.
const ROUND: u64 = 2_000;
/// Delay of the retry of a failed first attempt.
const RETRY_AFTER_MS: u64 = 60_000;

const ATTEMPT_MEASURES: &str = "measures[]=count&measures[]=successful_count\
    &measures[]=failed_count&measures[]=error_rate&measures[]=first_attempt_count\
    &measures[]=retry_count&measures[]=manual_retry_count&measures[]=avg_attempt_number\
    &measures[]=rate&measures[]=successful_rate&measures[]=failed_rate";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn rfc3339_ms(ms: i64) -> String {
    Timestamp::from_unix_millis(ms).format_rfc3339_nano()
}

pub async fn run(plan: &Plan, args: &BenchArgs) -> Result<Results, String> {
    if args.url.is_some() {
        return Err(
            "the metrics scenario fills the store before the server starts, so it cannot use --url"
                .into(),
        );
    }
    let dir = server::temp_dir(plan.name)?;
    let measured = measure(plan, &dir).await;
    remove_dir(&dir, args.keep_data);
    measured
}

/// What the fill wrote.
struct Filled {
    events: u64,
    attempts: u64,
    first_ms: i64,
    last_ms: i64,
    seconds: f64,
}

async fn measure(plan: &Plan, dir: &Path) -> Result<Results, String> {
    let data_dir = dir.join("data");
    let events = plan.events.unwrap_or(DEFAULT_EVENTS);
    eprintln!(
        "metrics: filling {} with {events} events × {FANOUT} destinations over 24 h",
        data_dir.display()
    );
    let filled = fill(&data_dir, events, now_ms()).await?;
    eprintln!(
        "metrics: {} events, {} attempts written in {:.1} s",
        filled.events, filled.attempts, filled.seconds
    );
    let data_file_mib = Some(server::data_file_bytes(&data_dir) as f64 / 1_048_576.0);

    let clock = BenchClock::new();
    let server = server::spawn(
        SpawnSpec {
            data_dir: &data_dir,
            work_dir: dir,
            api_key: BENCH_API_KEY,
            env: plan.server_env.clone(),
        },
        &clock,
    )
    .await?;
    let api = Api {
        addr: server.addr,
        key: BENCH_API_KEY.to_string(),
    };
    let outcome = read_phase(plan, &api, &filled).await;
    let stopped = server.stop().await;
    let (totals_match, events_query, attempts_query, read_seconds) = outcome?;
    stopped?;

    let pass = totals_match
        && [&events_query, &attempts_query]
            .iter()
            .all(|f| f.ok > 0 && f.errors == 0 && f.latency.p99_ms <= P99_TARGET_MS);
    let mut results = Results {
        scenario: plan.name.to_string(),
        settings: plan.settings("spawned"),
        ..Results::default()
    };
    results.metrics = Some(MetricsFigures {
        fill_events: filled.events,
        fill_attempts: filled.attempts,
        fill_seconds: filled.seconds,
        fill_attempts_per_s: per_second(filled.attempts, filled.seconds),
        data_file_mib,
        totals_match,
        readers: plan.readers,
        read_seconds,
        events_query,
        attempts_query,
        p99_target_ms: P99_TARGET_MS,
        pass,
    });
    Ok(results)
}

/// Writes `events` events and their attempts, dated over the 24 h before `end_ms`.
async fn fill(data_dir: &Path, events: u64, end_ms: i64) -> Result<Filled, String> {
    let started = Instant::now();
    let (store, thread) =
        Store::open(data_dir).map_err(|e| format!("cannot open the store to fill it: {e}"))?;
    let first_ms = end_ms - SPAN_MS;
    let step = SPAN_MS as f64 / events.max(1) as f64;
    let mut attempts = 0u64;
    let mut last_ms = first_ms;
    let mut next = 0u64;
    while next < events {
        let round_end = (next + ROUND).min(events);
        let mut publishes = Vec::new();
        for i in next..round_end {
            let time_ms = first_ms + (i as f64 * step) as i64;
            last_ms = last_ms.max(time_ms);
            let tenant = i % TENANTS;
            let event = Event {
                id: format!("evt_{i}").into(),
                tenant_id: format!("tenant_{tenant}").into(),
                destination_id: Default::default(),
                matched_destination_ids: (0..FANOUT)
                    .map(|d| format!("des_{tenant}_{d}").into())
                    .collect(),
                topic: TOPICS[(i / TENANTS) as usize % TOPICS.len()].to_string(),
                time_nanos: time_ms * 1_000_000,
                time_offset_seconds: 0,
                eligible_for_retry: true,
                metadata: Default::default(),
                data: format!("{{\"seq\":{i}}}"),
                idempotency_expires_ms: 0,
            };
            let store = store.clone();
            publishes.push(tokio::spawn(async move {
                store
                    .publish(PublishRequest {
                        event,
                        now_ms: time_ms,
                        idempotency_ttl_ms: 0,
                    })
                    .await
            }));
        }
        for publish in publishes {
            publish
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("fill publish: {e}"))?;
        }
        attempts += deliver_queued(&store, round_end == events).await?;
        next = round_end;
        if next % 50_000 < ROUND {
            eprintln!("[metrics/fill] {next} events, {attempts} attempts");
        }
    }
    drop(store);
    if !thread.join(Duration::from_secs(60)).await {
        return Err("the filled store's writer did not stop".into());
    }
    Ok(Filled {
        events,
        attempts,
        first_ms,
        last_ms,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Writes an outcome for every queued task (retries of the previous round included); with
/// `until_empty`, also for the retries this schedules. Answers the attempts written.
async fn deliver_queued(store: &Store, until_empty: bool) -> Result<u64, String> {
    let mut written = 0;
    loop {
        let keys = store.queue_keys().map_err(|e| e.to_string())?;
        if keys.is_empty() {
            return Ok(written);
        }
        let mut outcomes = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(snapshot) = store.delivery_snapshot(key).map_err(|e| e.to_string())? else {
                continue;
            };
            let Some(event) = snapshot.event else {
                continue;
            };
            let task = snapshot.task;
            let seq: u64 = event.id.trim_start_matches("evt_").parse().unwrap_or(0);
            let destination = task
                .destination_id
                .rsplit('_')
                .next()
                .and_then(|d| d.parse::<u64>().ok())
                .unwrap_or(0);
            let fails = task.attempt_number == 1 && (seq * FANOUT + destination).is_multiple_of(10);
            let time_ms = i64::try_from(key.due_ms).unwrap_or(i64::MAX);
            let attempt = Attempt {
                id: format!("att_{seq}_{destination}_{}", task.attempt_number).into(),
                tenant_id: task.tenant_id.clone(),
                event_id: task.event_id.clone(),
                destination_id: task.destination_id.clone(),
                destination_type: "webhook".into(),
                attempt_number: task.attempt_number,
                manual: false,
                status: if fails {
                    AttemptStatus::Failed
                } else {
                    AttemptStatus::Success
                },
                time_nanos: time_ms * 1_000_000 + destination as i64 * 1_000,
                code: if fails { "500" } else { "200" }.into(),
                response_data: None,
                topic: event.topic.clone(),
            };
            let store = store.clone();
            outcomes.push(tokio::spawn(async move {
                store
                    .record_outcome(Outcome {
                        key,
                        task,
                        attempt,
                        retry_after_ms: fails.then_some(RETRY_AFTER_MS),
                        now_ms: time_ms,
                        context: None,
                    })
                    .await
            }));
        }
        for outcome in outcomes {
            outcome
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("fill outcome: {e}"))?;
            written += 1;
        }
        if !until_empty {
            return Ok(written);
        }
    }
}

/// `GET path` with the admin key on a fresh connection: status and body.
async fn get(api: &Api, path: &str) -> Result<(u16, bytes::Bytes), String> {
    reader::get(api.addr, &api.key, path).await
}

/// The `count` of the single row of a query without granularity (0 with no row).
fn single_count(body: &[u8]) -> Result<u64, String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let data = answer["data"].as_array().ok_or("no data array")?;
    Ok(data
        .first()
        .and_then(|row| row["metrics"]["count"].as_u64())
        .unwrap_or(0))
}

/// Checks an hourly answer: `buckets` rows, counts not all zero. Answers the rows.
fn check_hourly(body: &[u8], buckets: usize) -> Result<usize, String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let data = answer["data"].as_array().ok_or("no data array")?;
    if data.len() != buckets {
        return Err(format!("{} rows, expected {buckets}", data.len()));
    }
    let total: u64 = data
        .iter()
        .filter_map(|row| row["metrics"]["count"].as_u64())
        .sum();
    if total == 0 {
        return Err("every bucket counts 0".into());
    }
    Ok(data.len())
}

/// Checks the totals, then runs the read load. Answers whether the totals matched the fill,
/// both queries' figures and the read seconds.
async fn read_phase(
    plan: &Plan,
    api: &Api,
    filled: &Filled,
) -> Result<(bool, ReadFigures, ReadFigures, f64), String> {
    let whole = format!(
        "time[start]={}&time[end]={}&measures[]=count",
        rfc3339_ms(filled.first_ms - 3_600_000),
        rfc3339_ms(filled.last_ms + 3_600_000)
    );
    let (status, body) = get(api, &format!("/api/v1/metrics/attempts?{whole}")).await?;
    if status != 200 {
        return Err(format!("metrics/attempts answered {status}"));
    }
    let attempts = single_count(&body)?;
    let (status, body) = get(api, &format!("/api/v1/metrics/events?{whole}")).await?;
    if status != 200 {
        return Err(format!("metrics/events answered {status}"));
    }
    let events = single_count(&body)?;
    let totals_match = attempts == filled.attempts && events == filled.events;
    eprintln!(
        "metrics: the server counts {attempts} attempts and {events} events (filled {} and {}); \
         reading for {} s over {} connections",
        filled.attempts,
        filled.events,
        plan.duration.as_secs(),
        plan.readers
    );

    let reads = Arc::new(Reads::default());
    let started = Instant::now();
    let tasks: Vec<_> = (0..plan.readers)
        .map(|i| {
            let api = Api {
                addr: api.addr,
                key: api.key.clone(),
            };
            tokio::spawn(reader(api, i, reads.clone()))
        })
        .collect();
    let mut tick = 0u64;
    while started.elapsed() < plan.duration {
        tick += 1;
        let next = started + Duration::from_secs(tick);
        tokio::time::sleep_until(next.min(started + plan.duration).into()).await;
        eprintln!(
            "[metrics/read {:>4}s] attempts {} p99 {:.1}ms | events {} p99 {:.1}ms | errors {}",
            started.elapsed().as_secs(),
            reads.attempts.ok(),
            reads.attempts.p99_ms(),
            reads.events.ok(),
            reads.events.p99_ms(),
            reads.attempts.errors() + reads.events.errors(),
        );
    }
    reads.stop.store(true, Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok((
        totals_match,
        reads.events.figures(seconds),
        reads.attempts.figures(seconds),
        seconds,
    ))
}

#[derive(Default)]
struct Reads {
    events: ReadStats,
    attempts: ReadStats,
    stop: AtomicBool,
}

/// The last 24 h up to now, at 1 h granularity: the path of the attempts (`true`) or events
/// query.
fn last_day_path(attempts: bool, end_ms: i64) -> String {
    let range = format!(
        "time[start]={}&time[end]={}&granularity=1h",
        rfc3339_ms(end_ms - SPAN_MS),
        rfc3339_ms(end_ms)
    );
    if attempts {
        format!("/api/v1/metrics/attempts?{range}&{ATTEMPT_MEASURES}")
    } else {
        format!("/api/v1/metrics/events?{range}&measures[]=count&measures[]=rate")
    }
}

/// One closed-loop read connection, alternating the two queries until told to stop.
async fn reader(api: Api, index: usize, reads: Arc<Reads>) {
    let shared: &Reads = &reads;
    let mut turn = index;
    let next = move || {
        let attempts = turn.is_multiple_of(2);
        turn += 1;
        let end_ms = now_ms();
        // An end off whole hours touches 25 hourly buckets.
        let buckets = if end_ms % 3_600_000 == 0 { 24 } else { 25 };
        let path = last_day_path(attempts, end_ms);
        let check = {
            let path = path.clone();
            move |body: &[u8]| check_hourly(body, buckets).map_err(|e| format!("GET {path}: {e}"))
        };
        Ask {
            path,
            stats: if attempts {
                &shared.attempts
            } else {
                &shared.events
            },
            check,
        }
    };
    reader::run(api.addr, &api.key, &shared.stop, next).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_answers_are_checked() {
        let rows = |n: usize, count: u64| {
            let row = serde_json::json!({"time_bucket": "x", "dimensions": {}, "metrics": {"count": count}});
            serde_json::to_vec(&serde_json::json!({"data": vec![row; n]})).unwrap()
        };
        assert_eq!(check_hourly(&rows(25, 3), 25), Ok(25));
        assert!(check_hourly(&rows(24, 3), 25).is_err());
        assert!(check_hourly(&rows(25, 0), 25).is_err());
        assert!(check_hourly(b"nope", 25).is_err());
        assert_eq!(single_count(&rows(1, 7)), Ok(7));
        assert_eq!(single_count(br#"{"data":[]}"#), Ok(0));
    }

    #[test]
    fn the_query_covers_the_last_day_hourly() {
        let path = last_day_path(true, 1_700_000_000_000);
        assert!(path.starts_with(
            "/api/v1/metrics/attempts?time[start]=2023-11-13T22:13:20Z&time[end]=2023-11-14T22:13:20Z&granularity=1h&"
        ));
        assert!(
            last_day_path(false, 1_700_000_000_000).ends_with("measures[]=count&measures[]=rate")
        );
    }
}
