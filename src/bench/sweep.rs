//! The sweep scenario: publish latency while the log retention sweep deletes a large number of
//! expired records.
//!
//! 1. Spawn a server with retention off (`LOG_RETENTION_TTL_DAYS=0`), fill it with `--events`
//!    events (default 500,000: with fan-out 1, 1,000,000 records — each event and its attempt)
//!    as fast as it takes them, and wait until every one is delivered.
//! 2. Phase A, the baseline: publish at `--rate` for `--duration` seconds and keep the publish
//!    latency; wait for those deliveries too.
//! 3. Stop the server (once every filled record is older than the TTL) and restart it on the
//!    same data directory with `LOG_RETENTION_TTL_SECONDS=--sweep-ttl` (default 5): every
//!    filled record has expired, and so have phase A's older than the TTL. The sweep starts at
//!    once.
//! 4. Phase B: publish at the same rate from the moment the server listens until the server
//!    logs the end of its first sweep run (or `--sweep-timeout`), then wait for the deliveries.
//!
//! The report: baseline and during-sweep publish p50/p99 and their ratio against the target
//! (during-sweep p99 ≤ [`P99_TARGET_RATIO`] × baseline p99), what the run deleted, its time and
//! records/s (from its log line), events lost over all phases (must be 0), and the store
//! file's size when each server stopped. The top-level `publish_latency` is phase B's. What the
//! server spent per delivery (bytes written, CPU, store growth; see [`Meter`]) is that of the
//! fill, from its first publish to its last delivery; phase B reports the bytes written while
//! the sweep ran.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::api::Api;
use super::hist::Histogram;
use super::ledger::Ledger;
use super::load::{self, LoadSpec, LoadStats, LoadStop};
use super::receiver::{Mode, Receiver};
use super::report::{
    self, Costs, Latency, Progress, Results, ServerFigures, Sources, SweepFigures,
};
use super::server::{self, Meter, ServerProcess, SpawnSpec, SweepRun};
use super::{
    args_target, collect, drain, per_second, remove_dir, set_up, BenchArgs, BenchClock, Plan,
    BENCH_API_KEY,
};

/// Events filled when `--events` is not given.
pub const DEFAULT_EVENTS: u64 = 500_000;
/// The TTL of the restarted server when `--sweep-ttl` is not given, seconds.
pub const DEFAULT_TTL_S: u64 = 5;
/// How long phase B may wait for the sweep run to end when `--sweep-timeout` is not given, s.
pub const DEFAULT_TIMEOUT_S: u64 = 600;
/// The target: during-sweep publish p99 at most this many times the baseline p99.
pub const P99_TARGET_RATIO: f64 = 2.0;
/// Longest the fill may publish.
const FILL_CAP: Duration = Duration::from_secs(3_600);
/// How often phase B looks for the sweep run's end line.
const POLL: Duration = Duration::from_millis(50);

/// `base` with `set` replacing any setting of the same names and `drop` removed.
fn with_env(
    base: &[(String, String)],
    set: &[(&str, String)],
    drop: &[&str],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = base
        .iter()
        .filter(|(k, _)| !drop.contains(&k.as_str()) && !set.iter().any(|(s, _)| s == k))
        .cloned()
        .collect();
    env.extend(set.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// The first server: retention off, whatever `--server-env` said about it.
fn fill_env(plan: &Plan) -> Vec<(String, String)> {
    with_env(
        &plan.server_env,
        &[("LOG_RETENTION_TTL_DAYS", "0".into())],
        &[
            "LOG_RETENTION_TTL_SECONDS",
            "CLICKHOUSE_LOG_RETENTION_TTL_DAYS",
        ],
    )
}

/// The restarted server: the short TTL in seconds (it overrides the days).
fn sweep_env(plan: &Plan) -> Vec<(String, String)> {
    with_env(
        &plan.server_env,
        &[(
            "LOG_RETENTION_TTL_SECONDS",
            plan.sweep_ttl.as_secs().to_string(),
        )],
        &[],
    )
}

/// During-sweep p99 over baseline p99 (0 without samples), and whether the run passes: the
/// sweep finished, the ratio is within [`P99_TARGET_RATIO`] and nothing was lost.
fn verdict(baseline: &Latency, during: &Latency, finished: bool, lost: u64) -> (f64, bool) {
    let ratio = if baseline.samples > 0 && during.samples > 0 && baseline.p99_ms > 0.0 {
        during.p99_ms / baseline.p99_ms
    } else {
        0.0
    };
    let measured = baseline.samples > 0 && during.samples > 0;
    (
        ratio,
        finished && measured && ratio <= P99_TARGET_RATIO && lost == 0,
    )
}

pub async fn run(plan: &Plan, args: &BenchArgs) -> Result<Results, String> {
    let dir = server::temp_dir(plan.name)?;
    let outcome = run_in(plan, args, &dir).await;
    remove_dir(&dir, args.keep_data);
    outcome
}

/// One publish phase's counters.
struct Phase {
    stats: Arc<LoadStats>,
    latency: Arc<Histogram>,
    took: Duration,
}

impl Phase {
    fn acked(&self) -> u64 {
        self.stats.acked.load(Relaxed)
    }
}

/// Runs one load against `server` with a progress line labelled `label`.
async fn publish(
    label: &str,
    spec: LoadSpec,
    server: &ServerProcess,
    ledger: &Arc<Ledger>,
    receiver: &Receiver,
    clock: BenchClock,
) -> Phase {
    let stats = Arc::new(LoadStats::default());
    let latency = Arc::new(Histogram::new());
    let progress = Progress::start(Sources {
        label: label.to_string(),
        load: Some((stats.clone(), latency.clone())),
        ledger: ledger.clone(),
        receiver: receiver.stats.clone(),
        pid: Some(server.pid),
    });
    let took = load::run(spec, stats.clone(), latency.clone(), ledger.clone(), clock).await;
    progress.stop().await;
    Phase {
        stats,
        latency,
        took,
    }
}

async fn run_in(plan: &Plan, args: &BenchArgs, dir: &Path) -> Result<Results, String> {
    let clock = BenchClock::new();
    let ledger = Arc::new(Ledger::new(plan.fanout));
    let receiver = Receiver::start(ledger.clone(), clock, plan.fail_percent, Mode::Answer).await?;
    let data_dir = dir.join("data");
    let spec = |env| SpawnSpec {
        data_dir: &data_dir,
        work_dir: dir,
        api_key: BENCH_API_KEY,
        env,
    };
    let events = plan.events.unwrap_or(DEFAULT_EVENTS);

    // The fill, retention off.
    let first = server::spawn(spec(fill_env(plan)), &clock).await?;
    let api = Api {
        addr: first.addr,
        key: BENCH_API_KEY.to_string(),
    };
    let tenant = set_up(&api, plan, receiver.addr).await?;
    eprintln!(
        "sweep: filling {events} events (server pid {}, receiver {}, tenant {tenant})",
        first.pid, receiver.addr
    );
    let base = LoadSpec::for_plan(plan, &api, tenant);
    let fill_meter = Meter::start(first.pid, Some(&data_dir));
    let fill = publish(
        "sweep/fill",
        LoadSpec {
            rate: 0.0,
            duration: FILL_CAP,
            events: Some(events),
            first_seq: 0,
            stop: None,
            ..base.clone()
        },
        &first,
        &ledger,
        &receiver,
        clock,
    )
    .await;
    let filled = fill.acked();
    let drained = drain(&ledger, filled, plan.drain_timeout).await;
    let filled_at = Instant::now();
    let fill_costs = fill_meter
        .as_ref()
        .and_then(Meter::spent)
        .map(|work| Costs::of(&work, ledger.unique_deliveries(), ledger.complete_events()));
    let filled_records = filled + receiver.stats.requests.load(Relaxed);
    eprintln!(
        "sweep: {filled} events acked in {:.1} s, delivered {:.1} s later; {filled_records} \
         records; baseline: {} s at {}/s",
        fill.took.as_secs_f64(),
        drained.as_secs_f64(),
        plan.duration.as_secs(),
        plan.rate
    );

    // Phase A: the baseline.
    let seq_a = fill.stats.claimed();
    let baseline = publish(
        "sweep/baseline",
        LoadSpec {
            first_seq: seq_a,
            events: None,
            ..base.clone()
        },
        &first,
        &ledger,
        &receiver,
        clock,
    )
    .await;
    drain(&ledger, filled + baseline.acked(), plan.drain_timeout).await;
    // Every filled record must be older than the TTL when the restarted server looks.
    let expired_at = filled_at + plan.sweep_ttl + Duration::from_secs(1);
    tokio::time::sleep_until(expired_at.into()).await;
    let data_file_before = server::data_file_bytes(&data_dir);
    let first_peak = server::sample(first.pid).unwrap_or_default();
    first.stop().await?;

    // Phase B: restart with the short TTL and publish until the first sweep run ends.
    let second = server::spawn(spec(sweep_env(plan)), &clock).await?;
    let listening_after = second.listening_after;
    let spawned = Instant::now()
        .checked_sub(listening_after)
        .unwrap_or_else(Instant::now);
    eprintln!(
        "sweep: restarted with LOG_RETENTION_TTL_SECONDS={} (pid {}, listening after {:.2} s); \
         publishing until the sweep run ends (at most {} s)",
        plan.sweep_ttl.as_secs(),
        second.pid,
        second.listening_after.as_secs_f64(),
        plan.sweep_timeout.as_secs()
    );
    let api = Api {
        addr: second.addr,
        key: BENCH_API_KEY.to_string(),
    };
    let meter = Meter::start(second.pid, Some(&data_dir));
    let threads_before = server::thread_cpu(second.pid);
    let stop = Arc::new(LoadStop::default());
    let seq_b = seq_a + baseline.stats.claimed();
    let during_spec = LoadSpec {
        addr: api.addr,
        first_seq: seq_b,
        events: None,
        duration: plan.sweep_timeout,
        stop: Some(stop.clone()),
        ..base.clone()
    };
    let load = publish(
        "sweep/during",
        during_spec,
        &second,
        &ledger,
        &receiver,
        clock,
    );
    let watch = async {
        let deadline = Instant::now() + plan.sweep_timeout;
        let run = loop {
            if let Some(run) = second.sweep_runs().first().copied() {
                break Some((run, Instant::now()));
            }
            if Instant::now() >= deadline {
                break None;
            }
            tokio::time::sleep(POLL).await;
        };
        stop.stop();
        run
    };
    let (during, run) = tokio::join!(load, watch);
    let wall = during.took.as_secs_f64();
    let work = meter.as_ref().and_then(Meter::spent);
    let threads_after = server::thread_cpu(second.pid);
    let acked = filled + baseline.acked() + during.acked();
    let drained = drain(&ledger, acked, plan.drain_timeout).await;
    let second_peak = server::sample(second.pid).unwrap_or_default();
    if ledger.lost() > 0 {
        eprintln!("sweep: server log tail:\n{}", second.log_tail());
    }
    second.stop().await?;
    let data_file_after = server::data_file_bytes(&data_dir);

    let mut results = collect(
        plan,
        &args_target(args),
        &during.stats,
        &during.latency,
        &ledger,
        &receiver,
    );
    let phases = [&fill, &baseline, &during];
    let sum = |f: fn(&LoadStats) -> u64| phases.iter().map(|p| f(&p.stats)).sum::<u64>();
    results.published = sum(|s| s.sent.load(Relaxed));
    results.acked = acked;
    results.publish_rejected = sum(|s| s.rejected.load(Relaxed));
    results.publish_transport_errors = sum(|s| s.transport_errors.load(Relaxed));
    results.publish_skipped_overdue = sum(|s| s.skipped.load(Relaxed));
    results.first_error = phases.iter().find_map(|p| {
        p.stats
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    });
    results.publish_seconds = wall;
    results.publish_acks_per_s = per_second(during.acked(), wall);
    results.drain_seconds = drained.as_secs_f64();
    if let Some(work) = &work {
        let cpu = work.cpu_seconds;
        results.server = Some(ServerFigures {
            peak_rss_mib: report::mib(first_peak.hwm_kib.max(second_peak.hwm_kib)),
            cpu_seconds: cpu,
            cpu_seconds_per_1000_events: if during.acked() > 0 {
                cpu / during.acked() as f64 * 1000.0
            } else {
                0.0
            },
            avg_cpu_percent: cpu / wall.max(1e-3) * 100.0,
            thread_cpu_percent: server::thread_percent(&threads_before, &threads_after, wall),
            data_file_mib: Some(data_file_after as f64 / 1_048_576.0),
            costs: fill_costs.unwrap_or_default(),
        });
    }
    let baseline_latency = Latency::from(baseline.latency.summary());
    let during_latency = Latency::from(during.latency.summary());
    let (p99_ratio, pass) = verdict(
        &baseline_latency,
        &during_latency,
        run.is_some(),
        results.events_lost,
    );
    let (sweep_run, seen) = match run {
        Some((run, seen)) => (run, Some(seen)),
        None => (SweepRun::default(), None),
    };
    let records_deleted = sweep_run.events + sweep_run.attempts;
    let sweep_seconds = sweep_run.took_ms as f64 / 1000.0;
    results.sweep = Some(SweepFigures {
        filled_events: filled,
        filled_records,
        fill_seconds: fill.took.as_secs_f64(),
        fill_acks_per_s: per_second(filled, fill.took.as_secs_f64()),
        baseline_publish_latency: baseline_latency,
        baseline_acked: baseline.acked(),
        during_sweep_publish_latency: during_latency,
        during_sweep_acked: during.acked(),
        during_sweep_publish_seconds: wall,
        ttl_seconds: plan.sweep_ttl.as_secs(),
        sweep_finished: seen.is_some(),
        records_deleted,
        events_deleted: sweep_run.events,
        attempts_deleted: sweep_run.attempts,
        kept_for_queued_deliveries: sweep_run.kept_for_queued_deliveries,
        sweep_seconds,
        sweep_records_per_s: per_second(records_deleted, sweep_seconds),
        restart_to_sweep_end_s: seen.map_or(0.0, |at| {
            at.saturating_duration_since(spawned).as_secs_f64()
        }),
        restart_to_listening_s: listening_after.as_secs_f64(),
        during_sweep_write_bytes: work.and_then(|w| w.write_bytes()),
        p99_ratio,
        p99_target_ratio: P99_TARGET_RATIO,
        pass,
        data_file_before_bytes: data_file_before,
        data_file_after_bytes: data_file_after,
    });
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(samples: u64, p99_ms: f64) -> Latency {
        Latency {
            samples,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            max_ms: p99_ms * 2.0,
        }
    }

    #[test]
    fn the_verdict_needs_both_phases_the_sweep_and_no_loss() {
        let (ratio, pass) = verdict(&latency(100, 2.0), &latency(100, 4.0), true, 0);
        assert!((ratio - 2.0).abs() < 1e-9);
        assert!(pass, "exactly at the target passes");
        let (ratio, pass) = verdict(&latency(100, 2.0), &latency(100, 4.2), true, 0);
        assert!((ratio - 2.1).abs() < 1e-9);
        assert!(!pass);
        // Faster during the sweep is fine.
        assert!(verdict(&latency(100, 2.0), &latency(100, 1.0), true, 0).1);
        // Not finished, or an event lost, or no samples: no pass.
        assert!(!verdict(&latency(100, 2.0), &latency(100, 2.0), false, 0).1);
        assert!(!verdict(&latency(100, 2.0), &latency(100, 2.0), true, 1).1);
        assert_eq!(
            verdict(&latency(0, 0.0), &latency(100, 2.0), true, 0),
            (0.0, false)
        );
        assert_eq!(
            verdict(&latency(100, 2.0), &latency(0, 0.0), true, 0),
            (0.0, false)
        );
    }

    #[test]
    fn env_overrides_replace_and_drop() {
        let base = vec![
            ("RETRY_SCHEDULE".to_string(), "1".to_string()),
            ("LOG_RETENTION_TTL_DAYS".to_string(), "7".to_string()),
            ("LOG_RETENTION_TTL_SECONDS".to_string(), "9".to_string()),
        ];
        let env = with_env(
            &base,
            &[("LOG_RETENTION_TTL_DAYS", "0".into())],
            &["LOG_RETENTION_TTL_SECONDS"],
        );
        assert_eq!(
            env,
            vec![
                ("RETRY_SCHEDULE".to_string(), "1".to_string()),
                ("LOG_RETENTION_TTL_DAYS".to_string(), "0".to_string()),
            ]
        );
        let env = with_env(&base, &[("LOG_RETENTION_TTL_SECONDS", "5".into())], &[]);
        assert_eq!(env.len(), 3);
        assert_eq!(
            env.last(),
            Some(&("LOG_RETENTION_TTL_SECONDS".to_string(), "5".to_string()))
        );
    }
}
