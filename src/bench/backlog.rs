//! The backlog scenario: queue a large backlog, restart, and time the recovery.
//!
//! 1. The receiver runs in blackhole mode (accepts, reads, never answers) and the server runs
//!    with `DELIVERY_MAX_CONCURRENCY=1` and a one-day `DELIVERY_TIMEOUT_SECONDS`: the first
//!    delivery hangs and every other queue row stays due but undispatched — no failed attempts,
//!    no retries pushed into the future, so the queue stays intact.
//! 2. Publish `--events` (default 1,000,000) as fast as possible; then read the server's RSS
//!    with the backlog queued and the data file size.
//! 3. SIGTERM (`SHUTDOWN_TIMEOUT_SECONDS=1`: the hung delivery stays queued), switch the
//!    receiver to answering 200, restart the server on the same data directory with default
//!    delivery settings, and measure process start → listening, start → first delivery, and the
//!    drain rate until every event is delivered.
//!
//! What the server spent per delivery (CPU, bytes written, store file growth) covers both
//! processes: the first from the start of the fill to just before its SIGTERM (what it writes
//! while shutting down is not seen), the second from its spawn to the end of the drain.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::api::Api;
use super::hist::Histogram;
use super::ledger::Ledger;
use super::load::{self, LoadSpec, LoadStats};
use super::receiver::{Mode, Receiver};
use super::report::{self, BacklogFigures, Costs, Progress, Results, ServerFigures, Sources};
use super::server::{self, Meter, SpawnSpec};
use super::{
    args_target, collect, drain, ns_to_s, per_second, remove_dir, set_up, BenchArgs, BenchClock,
    Plan, BENCH_API_KEY,
};

fn hold_env(plan: &Plan) -> Vec<(String, String)> {
    let mut env = plan.server_env.clone();
    for (k, v) in [
        ("DELIVERY_MAX_CONCURRENCY", "1"),
        ("DELIVERY_MAX_CONCURRENCY_PER_DESTINATION", "1"),
        ("DELIVERY_TIMEOUT_SECONDS", "86400"),
        ("SHUTDOWN_TIMEOUT_SECONDS", "1"),
    ] {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

pub async fn run(plan: &Plan, args: &BenchArgs) -> Result<Results, String> {
    let dir = server::temp_dir(plan.name)?;
    let outcome = run_in(plan, args, &dir).await;
    remove_dir(&dir, args.keep_data);
    outcome
}

async fn run_in(plan: &Plan, args: &BenchArgs, dir: &std::path::Path) -> Result<Results, String> {
    let clock = BenchClock::new();
    let ledger = Arc::new(Ledger::new(plan.fanout));
    let receiver =
        Receiver::start(ledger.clone(), clock, plan.fail_percent, Mode::Blackhole).await?;
    let data_dir = dir.join("data");
    let spec = |env| SpawnSpec {
        data_dir: &data_dir,
        work_dir: dir,
        api_key: BENCH_API_KEY,
        env,
    };

    // Phase 1: fill the queue while nothing can drain.
    let first = server::spawn(spec(hold_env(plan)), &clock).await?;
    let api = Api {
        addr: first.addr,
        key: BENCH_API_KEY.to_string(),
    };
    let tenant = set_up(&api, plan, receiver.addr).await?;
    eprintln!(
        "backlog: filling the queue (server pid {}, receiver {} holding requests)",
        first.pid, receiver.addr
    );
    let fill_meter = Meter::start(first.pid, Some(&data_dir));
    let threads_before = server::thread_cpu(first.pid);
    let stats = Arc::new(LoadStats::default());
    let latency = Arc::new(Histogram::new());
    let progress = Progress::start(Sources {
        label: "backlog/fill".into(),
        load: Some((stats.clone(), latency.clone())),
        ledger: ledger.clone(),
        receiver: receiver.stats.clone(),
        pid: Some(first.pid),
    });
    let publish_time = load::run(
        LoadSpec::for_plan(plan, &api, tenant),
        stats.clone(),
        latency.clone(),
        ledger.clone(),
        clock,
    )
    .await;
    progress.stop().await;
    let acked = stats.acked.load(Relaxed);
    // Let the allocator settle a moment before reading the resident set.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let fill = fill_meter
        .as_ref()
        .and_then(Meter::spent)
        .unwrap_or_default();
    let filled = fill.end;
    let threads = server::thread_percent(
        &threads_before,
        &server::thread_cpu(first.pid),
        publish_time.as_secs_f64(),
    );
    let fill_cpu = fill.cpu_seconds;
    let data_file = fill.file_after.unwrap_or(0);
    let stopped = first.stop().await?;
    let file_at_restart = server::data_file_bytes(&data_dir);
    eprintln!(
        "backlog: {acked} events queued, server stopped in {:.2} s; restarting with the receiver answering",
        stopped.took.as_secs_f64()
    );

    // Phase 2: restart with the receiver answering; time the recovery.
    receiver.set_mode(Mode::Answer);
    let second = server::spawn(spec(plan.server_env.clone()), &clock).await?;
    let restarted_ns = second.spawned_at_ns;
    let listening_after = second.listening_after;
    let progress = Progress::start(Sources {
        label: "backlog/drain".into(),
        load: None,
        ledger: ledger.clone(),
        receiver: receiver.stats.clone(),
        pid: Some(second.pid),
    });
    let drained = drain(&ledger, acked, plan.drain_timeout).await;
    progress.stop().await;
    let recovery = Meter::since_spawn(second.pid, &data_dir, file_at_restart)
        .spent()
        .unwrap_or_default();
    let restart = recovery.end;
    if ledger.lost() > 0 {
        eprintln!("backlog: server log tail:\n{}", second.log_tail());
    }
    second.stop().await?;

    let mut results = collect(
        plan,
        &args_target(args),
        &stats,
        &latency,
        &ledger,
        &receiver,
    );
    results.publish_seconds = publish_time.as_secs_f64();
    results.publish_acks_per_s = per_second(acked, results.publish_seconds);
    let rs = &receiver.stats;
    let first_ns = rs.first_delivery_ns.load(Relaxed);
    let last_ns = rs.last_delivery_ns.load(Relaxed);
    let last_complete_ns = rs.last_complete_ns.load(Relaxed);
    let drain_s = ns_to_s(last_ns.saturating_sub(first_ns));
    results.delivered_events_per_s = per_second(
        results.delivered_events,
        ns_to_s(last_complete_ns.saturating_sub(first_ns)),
    );
    results.deliveries_per_s = per_second(results.deliveries, drain_s);
    results.drain_seconds = drained.as_secs_f64();
    results.server = Some(ServerFigures {
        peak_rss_mib: report::mib(filled.hwm_kib.max(restart.hwm_kib)),
        cpu_seconds: fill_cpu,
        cpu_seconds_per_1000_events: if acked > 0 {
            fill_cpu / acked as f64 * 1000.0
        } else {
            0.0
        },
        avg_cpu_percent: fill_cpu / results.publish_seconds.max(1e-3) * 100.0,
        thread_cpu_percent: threads,
        data_file_mib: recovery.file_after.map(|b| b as f64 / 1_048_576.0),
        costs: Costs::of(
            &fill.then(recovery),
            results.deliveries,
            results.delivered_events,
        ),
    });
    results.backlog = Some(BacklogFigures {
        queued_events: acked,
        requests_held_unanswered: rs.held.load(Relaxed),
        rss_with_backlog_mib: report::mib(filled.rss_kib),
        peak_rss_while_publishing_mib: report::mib(filled.hwm_kib),
        data_file_mib: data_file as f64 / 1_048_576.0,
        shutdown_seconds: stopped.took.as_secs_f64(),
        shutdown_needed_kill: stopped.killed,
        restart_to_listening_s: listening_after.as_secs_f64(),
        restart_to_first_delivery_s: if first_ns > 0 {
            ns_to_s(first_ns.saturating_sub(restarted_ns))
        } else {
            0.0
        },
        drain_seconds: drain_s,
        drain_events_per_s: results.delivered_events_per_s,
        drain_deliveries_per_s: results.deliveries_per_s,
        restart_peak_rss_mib: report::mib(restart.hwm_kib),
        restart_cpu_seconds_per_1000_events: if acked > 0 {
            restart.cpu_seconds / acked as f64 * 1000.0
        } else {
            0.0
        },
    });
    Ok(results)
}
