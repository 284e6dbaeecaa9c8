//! The query scenario: how fast the event and attempt listings answer on a full store.
//!
//! 1. Start the server on a fresh data directory (or use `--url`), create [`TENANTS`] tenants,
//!    each with one webhook destination pointing at the receiver.
//! 2. Fill: publish `--events` (default 5,000,000) 1 KiB events, spread over the tenants in
//!    turn, as fast as the server takes them through `--connections` (the publishers of
//!    `load.rs`), keeping the ids the server gave an even sample of them ([`SAMPLED_IDS`]), and
//!    wait until every event is delivered, so each has an attempt. The fill is reported like a
//!    steady run, with what the server spent per delivery.
//! 3. Settle [`SETTLE`] (an attempt commits just after the receiver answered it).
//! 4. For `--duration` seconds (default 20), `--readers` (default 8) keep-alive connections,
//!    each closed-loop (the next request once the previous answer is read), alternate
//!    `GET /api/v1/events?tenant_id=<random tenant>` and
//!    `GET /api/v1/attempts?event_id=<random sampled event id>` with the admin key. An answer
//!    counts as good when it is 200 with a non-empty page whose rows all belong to the tenant
//!    or event asked for; anything else is an error. Each listing has its own latency histogram
//!    (send to last body byte, good answers only) and request rate.
//!
//! The target: p99 ≤ [`P99_TARGET_MS`] for each listing, with no errors.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::api::Api;
use super::ledger::Ledger;
use super::load::{AckedIds, LoadSpec};
use super::reader::{self, Ask, ReadStats};
use super::receiver::{Mode, Receiver};
use super::report::{QueryFigures, Results};
use super::server::{self, Meter};
use super::{per_second, publish_and_drain, set_up_tenants, BenchArgs, BenchClock, Plan, Rig};
use super::{Target, BENCH_API_KEY};

/// Events published when `--events` is not given.
pub const DEFAULT_EVENTS: u64 = 5_000_000;
/// Seconds of read load when `--duration` is not given.
pub const DEFAULT_DURATION_S: u64 = 20;
/// Read connections when `--readers` is not given.
pub const DEFAULT_READERS: usize = 8;
/// Tenants the events are spread over.
const TENANTS: usize = 100;
/// Most published event ids kept for the attempts queries.
const SAMPLED_IDS: u64 = 100_000;
/// Longest the fill may publish.
const FILL_CAP: Duration = Duration::from_secs(4 * 3600);
/// Pause between the last delivery and the reads.
const SETTLE: Duration = Duration::from_secs(1);
/// Target p99 of each listing, ms.
pub const P99_TARGET_MS: f64 = 20.0;

pub async fn run(plan: &Plan, args: &BenchArgs) -> Result<Results, String> {
    let clock = BenchClock::new();
    let ledger = Arc::new(Ledger::new(plan.fanout));
    let receiver = Receiver::start(ledger.clone(), clock, plan.fail_percent, Mode::Answer).await?;
    let target = Target::start(plan, args, &clock).await?;
    let rig = Rig {
        plan,
        args,
        clock,
        target: &target,
        ledger: &ledger,
        receiver: &receiver,
    };
    let measured = measure(&rig).await;
    let finished = target.finish(args.keep_data).await;
    let results = measured?;
    finished?;
    Ok(results)
}

async fn measure(rig: &Rig<'_>) -> Result<Results, String> {
    let (plan, target) = (rig.plan, rig.target);
    let api = Api {
        addr: target.addr(),
        key: rig
            .args
            .api_key
            .clone()
            .unwrap_or_else(|| BENCH_API_KEY.to_string()),
    };
    let tenants = set_up_tenants(&api, plan, rig.receiver.addr, TENANTS).await?;
    let events = plan.events.unwrap_or(DEFAULT_EVENTS);
    eprintln!(
        "query: server {} (pid {}), receiver {}, {} tenants; filling with {events} events",
        api.addr,
        target
            .pid()
            .map_or_else(|| "unknown".to_string(), |p| p.to_string()),
        rig.receiver.addr,
        tenants.len()
    );

    // Phase 1: fill the store, every event delivered.
    let ids = Arc::new(AckedIds::new(events, SAMPLED_IDS));
    let spec = LoadSpec {
        tenants: tenants.clone(),
        duration: FILL_CAP,
        ids: Some(ids.clone()),
        ..LoadSpec::for_plan(plan, &api, String::new())
    };
    let mut results = publish_and_drain(rig, spec, "query/fill").await;
    if results.acked == 0 {
        return Err(format!(
            "query: the server acknowledged no event ({})",
            results
                .first_error
                .as_deref()
                .unwrap_or("no error recorded")
        ));
    }
    if results.events_lost > 0 || results.delivered_events < results.acked {
        results.first_error.get_or_insert(format!(
            "query: only {} of {} events were delivered within {} s; the reads were not run",
            results.delivered_events,
            results.acked,
            plan.drain_timeout.as_secs()
        ));
        return Ok(results);
    }
    let ids = ids.take();
    if ids.is_empty() {
        return Err("query: no publish answer carried an event id".into());
    }
    let fill_seconds = fill_seconds(&results);

    // Phase 2: settle, then the read load.
    tokio::time::sleep(SETTLE).await;
    let data_dir = target.data_dir();
    let data_file = data_dir.as_deref().map(server::data_file_bytes);
    eprintln!(
        "query: {} events delivered; reading for {} s over {} connections",
        results.delivered_events,
        plan.duration.as_secs(),
        plan.readers
    );
    let meter = target.pid().and_then(|p| Meter::start(p, None));
    let reads = Arc::new(Reads::new(Arc::new(tenants), Arc::new(ids)));
    let read_seconds = read_load(&api, plan, reads.clone(), target.pid()).await;
    let work = meter.as_ref().and_then(Meter::spent);

    let events_query = reads.events.figures(read_seconds);
    let attempts_query = reads.attempts.figures(read_seconds);
    let pass = [&events_query, &attempts_query]
        .iter()
        .all(|f| f.ok > 0 && f.errors == 0 && f.latency.p99_ms <= P99_TARGET_MS);
    results.query = Some(QueryFigures {
        tenants: reads.tenants.len(),
        fill_events: results.delivered_events,
        fill_seconds,
        fill_events_per_s: per_second(results.delivered_events, fill_seconds),
        data_file_mib: data_file.map(|b| b as f64 / 1_048_576.0),
        sampled_event_ids: reads.ids.len(),
        readers: plan.readers,
        read_seconds,
        events_query,
        attempts_query,
        read_cpu_seconds: work.map(|w| w.cpu_seconds),
        read_cpu_percent: work.map(|w| w.cpu_seconds / read_seconds.max(1e-3) * 100.0),
        read_write_bytes: work.and_then(|w| w.write_bytes()),
        p99_target_ms: P99_TARGET_MS,
        pass,
    });
    Ok(results)
}

/// From the first publish to the last event delivered, s: the delivered-events rate's span.
fn fill_seconds(results: &Results) -> f64 {
    if results.delivered_events_per_s > 0.0 {
        results.delivered_events as f64 / results.delivered_events_per_s
    } else {
        0.0
    }
}

/// Which listing a request reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listing {
    /// `GET /api/v1/events?tenant_id=…`: rows must carry that `tenant_id`.
    Events,
    /// `GET /api/v1/attempts?event_id=…`: rows must carry that `event_id`.
    Attempts,
}

impl Listing {
    fn path(self, value: &str) -> String {
        match self {
            Listing::Events => format!("/api/v1/events?tenant_id={}", query_value(value)),
            Listing::Attempts => format!("/api/v1/attempts?event_id={}", query_value(value)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Listing::Events => "events",
            Listing::Attempts => "attempts",
        }
    }
}

/// `text` percent-encoded for a query string (everything but RFC 3986's unreserved characters).
fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Checks a 200 answer of `listing` asked for `expected`: a page of at least one row, every row
/// belonging to `expected`. Answers the number of rows.
fn check_page(body: &[u8], listing: Listing, expected: &str) -> Result<usize, String> {
    #[derive(Deserialize)]
    struct Page {
        models: Vec<Row>,
    }
    #[derive(Deserialize)]
    struct Row {
        #[serde(default)]
        tenant_id: String,
        #[serde(default)]
        event_id: String,
    }
    let page: Page = serde_json::from_slice(body).map_err(|e| {
        format!(
            "{}: not a page ({e}): {}",
            listing.name(),
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })?;
    if page.models.is_empty() {
        return Err(format!("{}: empty page for {expected}", listing.name()));
    }
    let wrong = page
        .models
        .iter()
        .filter(|row| match listing {
            Listing::Events => row.tenant_id != expected,
            Listing::Attempts => row.event_id != expected,
        })
        .count();
    if wrong > 0 {
        return Err(format!(
            "{}: {wrong} of {} rows do not belong to {expected}",
            listing.name(),
            page.models.len()
        ));
    }
    Ok(page.models.len())
}

/// A small deterministic generator (splitmix64) for picking tenants and ids.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// What the readers share: what to ask for and the counters.
struct Reads {
    tenants: Arc<Vec<String>>,
    ids: Arc<Vec<String>>,
    events: ReadStats,
    attempts: ReadStats,
    stop: AtomicBool,
}

impl Reads {
    fn new(tenants: Arc<Vec<String>>, ids: Arc<Vec<String>>) -> Reads {
        Reads {
            tenants,
            ids,
            events: ReadStats::default(),
            attempts: ReadStats::default(),
            stop: AtomicBool::new(false),
        }
    }

    fn stats(&self, listing: Listing) -> &ReadStats {
        match listing {
            Listing::Events => &self.events,
            Listing::Attempts => &self.attempts,
        }
    }
}

/// Runs the readers for the plan's duration, printing a progress line every second; answers
/// the seconds from the start to the last answer.
async fn read_load(api: &Api, plan: &Plan, reads: Arc<Reads>, pid: Option<u32>) -> f64 {
    let seed = BenchClock::new().now_ns();
    let started = Instant::now();
    let tasks: Vec<_> = (0..plan.readers)
        .map(|i| {
            let rng = Rng(seed ^ (i as u64).wrapping_mul(0xA076_1D64_78BD_642F));
            tokio::spawn(reader(api.addr, api.key.clone(), i, rng, reads.clone()))
        })
        .collect();
    let mut last = (0, 0, pid.and_then(server::sample), Instant::now());
    let mut tick = 0u32;
    while started.elapsed() < plan.duration {
        tick += 1;
        let next = started + Duration::from_secs(u64::from(tick));
        let end = started + plan.duration;
        tokio::time::sleep_until(next.min(end).into()).await;
        if next <= end {
            last = progress_line(&reads, started, pid, last);
        }
    }
    reads.stop.store(true, Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    started.elapsed().as_secs_f64()
}

fn progress_line(
    reads: &Reads,
    started: Instant,
    pid: Option<u32>,
    (last_events, last_attempts, last_cpu, last_at): (
        u64,
        u64,
        Option<server::ProcSample>,
        Instant,
    ),
) -> (u64, u64, Option<server::ProcSample>, Instant) {
    let now = Instant::now();
    let dt = now.duration_since(last_at).as_secs_f64().max(1e-3);
    let events = reads.events.ok();
    let attempts = reads.attempts.ok();
    let errors = reads.events.errors() + reads.attempts.errors();
    let mut line = format!(
        "[query/read {:>4}s] events {events} ({:.0}/s) p99 {:.1}ms | attempts {attempts} ({:.0}/s) p99 {:.1}ms | errors {errors}",
        started.elapsed().as_secs(),
        (events - last_events.min(events)) as f64 / dt,
        reads.events.p99_ms(),
        (attempts - last_attempts.min(attempts)) as f64 / dt,
        reads.attempts.p99_ms(),
    );
    let cpu = pid.and_then(server::sample);
    if let (Some(now_cpu), Some(before)) = (cpu, last_cpu) {
        line += &format!(
            " | server cpu {:.0}%",
            (now_cpu.cpu_seconds - before.cpu_seconds) / dt * 100.0
        );
    }
    eprintln!("{line}");
    (events, attempts, cpu, now)
}

/// One closed-loop read connection: alternates the two listings (starting with the events
/// listing on even connections, the attempts listing on odd ones) until told to stop.
async fn reader(addr: SocketAddr, key: String, index: usize, mut rng: Rng, reads: Arc<Reads>) {
    let shared: &Reads = &reads;
    let mut turn = index;
    let next = move || {
        let listing = if turn.is_multiple_of(2) {
            Listing::Events
        } else {
            Listing::Attempts
        };
        turn += 1;
        let expected: &str = match listing {
            Listing::Events => &shared.tenants[rng.below(shared.tenants.len())],
            Listing::Attempts => &shared.ids[rng.below(shared.ids.len())],
        };
        Ask {
            path: listing.path(expected),
            stats: shared.stats(listing),
            check: move |body: &[u8]| check_page(body, listing, expected),
        }
    };
    reader::run(addr, &key, &shared.stop, next).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_must_be_non_empty_and_on_topic() {
        let events = br#"{"models":[{"id":"e1","tenant_id":"t1","data":{"seq":1}},{"id":"e2","tenant_id":"t1","data":{}}],"pagination":{}}"#;
        assert_eq!(check_page(events, Listing::Events, "t1"), Ok(2));
        assert!(check_page(events, Listing::Events, "t2").is_err_and(|e| e.contains("2 of 2 rows")));
        let attempts = br#"{"models":[{"id":"a1","tenant_id":"t1","event_id":"e1","status":"success"}],"pagination":{}}"#;
        assert_eq!(check_page(attempts, Listing::Attempts, "e1"), Ok(1));
        assert!(check_page(attempts, Listing::Attempts, "e2").is_err());
        let empty = br#"{"models":[],"pagination":{}}"#;
        assert!(check_page(empty, Listing::Attempts, "e1").is_err_and(|e| e.contains("empty")));
        assert!(check_page(b"not json", Listing::Events, "t1").is_err());
        assert!(check_page(br#"{"data":[]}"#, Listing::Events, "t1").is_err());
    }

    #[test]
    fn paths_escape_their_value() {
        assert_eq!(
            Listing::Events.path("bench-query-1-2-3"),
            "/api/v1/events?tenant_id=bench-query-1-2-3"
        );
        assert_eq!(
            Listing::Attempts.path("evt_a b&c"),
            "/api/v1/attempts?event_id=evt_a%20b%26c"
        );
        assert_eq!(query_value("é"), "%C3%A9");
    }

    #[test]
    fn picks_are_in_range_and_spread() {
        let mut rng = Rng(42);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[rng.below(10)] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(Rng(7).below(1), 0);
        assert_eq!(Rng(7).next(), Rng(7).next());
    }

    #[test]
    fn fill_time_is_the_delivered_rate_span() {
        let results = Results {
            delivered_events: 20_000,
            delivered_events_per_s: 4_000.0,
            ..Results::default()
        };
        assert_eq!(fill_seconds(&results), 5.0);
        assert_eq!(fill_seconds(&Results::default()), 0.0);
    }
}
