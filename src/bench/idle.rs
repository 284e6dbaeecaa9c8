//! The idle scenario: what a server does when nothing happens.
//!
//! 1. Start the server on a fresh data directory (or use `--url` with `--server-pid`), create a
//!    tenant and a webhook destination, publish a handful of events (`--events`, default 100)
//!    and wait until every one is delivered, so the store, the dispatcher, the delivery client's
//!    connection pool and the writer have all done real work and hold state.
//! 2. Let it settle for [`SETTLE`] (the outcome of the last delivery is committed just after the
//!    receiver answered it, and the publishers' connections close).
//! 3. Over `--duration` seconds (default 60), with the bench sending nothing, read from /proc:
//!    the process's CPU time (utime+stime of /proc/<pid>/stat, clock ticks converted to
//!    seconds), the bytes it caused to be written to storage (`write_bytes` of /proc/<pid>/io)
//!    and the context switches of all its threads (voluntary + nonvoluntary, from
//!    /proc/<pid>/task/*/status). Threads are sampled every second and tracked by id, so a
//!    thread that starts or ends inside the window still counts.
//!
//! The target: no CPU (≤ 0.01 s, one clock tick at 100 Hz) and no disk writes (0 bytes).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::api::Api;
use super::hist::Histogram;
use super::ledger::Ledger;
use super::load::{self, LoadSpec, LoadStats};
use super::receiver::{Mode, Receiver};
use super::report::{self, IdleFigures, Results};
use super::server::{self, Meter};
use super::{
    args_target, collect, drain, per_second, set_up, BenchArgs, BenchClock, Plan, Target,
    BENCH_API_KEY,
};

/// Events published before the quiet window when `--events` is not given.
pub const DEFAULT_EVENTS: u64 = 100;
/// Pause between the last delivery and the start of the window.
const SETTLE: Duration = Duration::from_secs(3);
/// Most CPU an idle server may use over the window and still pass, seconds.
pub const CPU_TARGET_S: f64 = 0.01;
/// How often the threads are read during the window.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How often a progress line is printed during the window.
const REPORT_EVERY: u64 = 10;

pub async fn run(plan: &Plan, args: &BenchArgs) -> Result<Results, String> {
    let clock = BenchClock::new();
    let ledger = Arc::new(Ledger::new(plan.fanout));
    let receiver = Receiver::start(ledger.clone(), clock, plan.fail_percent, Mode::Answer).await?;
    let target = Target::start(plan, args, &clock).await?;
    let measured = measure(plan, args, clock, &target, ledger, &receiver).await;
    let finished = target.finish(args.keep_data).await;
    let results = measured?;
    finished?;
    Ok(results)
}

async fn measure(
    plan: &Plan,
    args: &BenchArgs,
    clock: BenchClock,
    target: &Target,
    ledger: Arc<Ledger>,
    receiver: &Receiver,
) -> Result<Results, String> {
    let pid = target
        .pid()
        .ok_or("the idle scenario needs the server's pid (--server-pid)")?;
    // Fail now, not after the work, when /proc/<pid>/io is unreadable (another user's process).
    server::read_io(pid).map_err(|e| format!("idle: {e}"))?;
    let api = Api {
        addr: target.addr(),
        key: args
            .api_key
            .clone()
            .unwrap_or_else(|| BENCH_API_KEY.to_string()),
    };
    let tenant = set_up(&api, plan, receiver.addr).await?;
    let events = plan.events.unwrap_or(DEFAULT_EVENTS);
    eprintln!(
        "idle: server {} (pid {pid}), receiver {}, tenant {tenant}; publishing {events} events",
        api.addr, receiver.addr
    );

    // Phase 1: some real work.
    let stats = Arc::new(LoadStats::default());
    let latency = Arc::new(Histogram::new());
    let publish_time = load::run(
        LoadSpec {
            connections: plan.connections.min(events as usize).max(1),
            events: Some(events),
            ..LoadSpec::for_plan(plan, &api, tenant)
        },
        stats.clone(),
        latency.clone(),
        ledger.clone(),
        clock,
    )
    .await;
    let acked = stats.acked.load(Relaxed);
    let drained = drain(&ledger, acked, plan.drain_timeout).await;
    let mut results = collect(
        plan,
        &args_target(args),
        &stats,
        &latency,
        &ledger,
        receiver,
    );
    results.publish_seconds = publish_time.as_secs_f64();
    results.publish_acks_per_s = per_second(acked, results.publish_seconds);
    results.drain_seconds = drained.as_secs_f64();
    if results.events_lost > 0 || results.delivered_events < acked {
        return Err(format!(
            "idle: only {} of {acked} events were delivered within {} s; not measuring",
            results.delivered_events,
            plan.drain_timeout.as_secs()
        ));
    }

    // Phase 2: settle, then the quiet window.
    eprintln!(
        "idle: {acked} events delivered; settling {} s, then measuring {} s of quiet",
        SETTLE.as_secs(),
        plan.duration.as_secs()
    );
    tokio::time::sleep(SETTLE).await;
    let figures = window(pid, plan.duration, target.data_dir().as_deref()).await?;
    results.idle = Some(figures);
    Ok(results)
}

/// Reads the window: samples at its start and end, threads every second in between.
async fn window(
    pid: u32,
    length: Duration,
    data_dir: Option<&Path>,
) -> Result<IdleFigures, String> {
    let gone = || format!("idle: the server (pid {pid}) exited during the window");
    let meter = Meter::start(pid, data_dir).ok_or_else(gone)?;
    let mut threads = Threads::default();
    threads.observe(pid, true);
    let started = Instant::now();
    let tokio_started = tokio::time::Instant::now();
    let mut tick = 0u64;
    loop {
        tick += 1;
        let next = tokio_started + SAMPLE_EVERY * tick as u32;
        let end = tokio_started + length;
        tokio::time::sleep_until(next.min(end)).await;
        threads.observe(pid, false);
        if next >= end {
            break;
        }
        if tick.is_multiple_of(REPORT_EVERY) {
            if let Some(so_far) = meter.spent() {
                let (voluntary, involuntary) = threads.switches();
                eprintln!(
                    "[idle {tick:>4}s] server cpu {:.2} s, written {} B, context switches {}",
                    so_far.cpu_seconds,
                    so_far.write_bytes().unwrap_or(0),
                    voluntary + involuntary
                );
            }
        }
    }
    let window_s = started.elapsed().as_secs_f64();
    let work = meter.spent().ok_or_else(gone)?;
    let io = work
        .io
        .ok_or_else(|| format!("idle: /proc/{pid}/io became unreadable during the window"))?;
    let (voluntary, involuntary) = threads.switches();
    let cpu_seconds = work.cpu_seconds;
    let write_bytes = io.write_bytes;
    Ok(IdleFigures {
        settle_s: SETTLE.as_secs_f64(),
        window_s,
        cpu_seconds,
        on_cpu_ms_schedstat: threads.on_cpu_ns() as f64 / 1e6,
        write_bytes,
        read_bytes: io.read_bytes,
        write_syscalls: io.syscw,
        context_switches: voluntary + involuntary,
        voluntary_context_switches: voluntary,
        nonvoluntary_context_switches: involuntary,
        switches_by_thread: threads.by_name(),
        threads_at_start: threads.at_start,
        threads_started: threads.started,
        threads_ended: threads.ended(pid),
        rss_mib: report::mib(work.end.rss_kib),
        data_file_growth_bytes: work.file_growth(),
        cpu_target_s: CPU_TARGET_S,
        pass: cpu_seconds <= CPU_TARGET_S && write_bytes == 0,
    })
}

/// One thread's counters at one reading.
#[derive(Clone, Copy, Default)]
struct Counters {
    voluntary: u64,
    involuntary: u64,
    /// Time on CPU, ns (first field of /proc/<pid>/task/<tid>/schedstat).
    on_cpu_ns: u64,
}

fn read_task(task: &Path) -> Option<(String, Counters)> {
    let status = std::fs::read_to_string(task.join("status")).ok()?;
    let field = |name: &str| -> Option<&str> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let number = |name: &str| -> u64 { field(name).and_then(|v| v.parse().ok()).unwrap_or(0) };
    let on_cpu_ns = std::fs::read_to_string(task.join("schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Some((
        field("Name:").unwrap_or("?").to_string(),
        Counters {
            voluntary: number("voluntary_ctxt_switches:"),
            involuntary: number("nonvoluntary_ctxt_switches:"),
            on_cpu_ns,
        },
    ))
}

/// Every thread seen during the window, by thread id: its counters at the first and the last
/// reading. A thread first seen after the start began inside the window, so its baseline is 0.
#[derive(Default)]
struct Threads {
    seen: BTreeMap<u64, (String, Counters, Counters)>,
    at_start: usize,
    started: usize,
}

impl Threads {
    fn observe(&mut self, pid: u32, initial: bool) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return;
        };
        for task in tasks.flatten() {
            let Some(tid) = task
                .file_name()
                .to_str()
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            let Some((name, now)) = read_task(&task.path()) else {
                continue;
            };
            match self.seen.get_mut(&tid) {
                Some(entry) => {
                    entry.0 = name;
                    entry.2 = now;
                }
                None => {
                    let baseline = if initial {
                        self.at_start += 1;
                        now
                    } else {
                        self.started += 1;
                        Counters::default()
                    };
                    self.seen.insert(tid, (name, baseline, now));
                }
            }
        }
    }

    fn deltas(&self) -> impl Iterator<Item = (&str, Counters)> {
        self.seen.values().map(|(name, first, last)| {
            (
                name.as_str(),
                Counters {
                    voluntary: last.voluntary.saturating_sub(first.voluntary),
                    involuntary: last.involuntary.saturating_sub(first.involuntary),
                    on_cpu_ns: last.on_cpu_ns.saturating_sub(first.on_cpu_ns),
                },
            )
        })
    }

    /// Voluntary and nonvoluntary switches summed over the threads.
    fn switches(&self) -> (u64, u64) {
        self.deltas().fold((0, 0), |(v, n), (_, c)| {
            (v + c.voluntary, n + c.involuntary)
        })
    }

    fn on_cpu_ns(&self) -> u64 {
        self.deltas().map(|(_, c)| c.on_cpu_ns).sum()
    }

    /// Switches by thread name (same-named threads summed), threads that switched only.
    fn by_name(&self) -> BTreeMap<String, u64> {
        let mut names = BTreeMap::new();
        for (name, c) in self.deltas() {
            let switches = c.voluntary + c.involuntary;
            if switches > 0 {
                *names.entry(name.to_string()).or_insert(0) += switches;
            }
        }
        names
    }

    /// Threads seen during the window that no longer exist.
    fn ended(&self, pid: u32) -> usize {
        self.seen
            .keys()
            .filter(|tid| !Path::new(&format!("/proc/{pid}/task/{tid}")).exists())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let mut threads = Threads::default();
        threads.observe(pid, true);
        assert!(threads.at_start >= 1);
        let handle = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(200)));
        std::thread::sleep(Duration::from_millis(20));
        threads.observe(pid, false);
        handle.join().expect("sleeper thread");
        let (voluntary, _) = threads.switches();
        assert!(threads.started >= 1 || voluntary > 0);
    }
}
