//! Reporting: the one-line progress report printed to stderr every second while a phase runs,
//! the results record, the final table (stdout) and the JSON file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::hist::{Histogram, Summary};
use super::ledger::Ledger;
use super::load::LoadStats;
use super::receiver::ReceiverStats;
use super::server;

#[derive(Serialize, Clone, Copy, Debug, Default)]
pub struct Latency {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl From<Summary> for Latency {
    fn from(s: Summary) -> Latency {
        Latency {
            samples: s.count,
            p50_ms: s.p50_us as f64 / 1000.0,
            p99_ms: s.p99_us as f64 / 1000.0,
            max_ms: s.max_us as f64 / 1000.0,
        }
    }
}

#[derive(Serialize, Debug, Default)]
pub struct Settings {
    pub target: String,
    pub fanout: u32,
    pub payload_bytes: usize,
    pub rate: f64,
    pub connections: usize,
    pub duration_s: u64,
    pub events: Option<u64>,
    pub fail_percent: u64,
    pub server_env: Vec<String>,
}

#[derive(Serialize, Debug, Default)]
pub struct ServerFigures {
    pub peak_rss_mib: f64,
    /// utime+stime over the measured run (backlog: over the fill).
    pub cpu_seconds: f64,
    /// `cpu_seconds` per 1,000 acknowledged events.
    pub cpu_seconds_per_1000_events: f64,
    pub avg_cpu_percent: f64,
    /// CPU use by server thread name, percent of one core, over the measured window.
    pub thread_cpu_percent: BTreeMap<String, f64>,
    /// Store file size at the end, MiB (spawned servers, or `--data-dir`).
    pub data_file_mib: Option<f64>,
    /// What the server spent per delivery over the whole run, drain included.
    #[serde(flatten)]
    pub costs: Costs,
}

/// What the server spent over a whole run (publishing and the drain; backlog: both server
/// processes), per delivery and per delivered event.
#[derive(Serialize, Debug, Default, PartialEq)]
pub struct Costs {
    /// utime+stime over the whole run, per 1,000 deliveries (distinct event × destination).
    pub cpu_seconds_per_1000_deliveries: f64,
    /// `write_bytes` of /proc/<pid>/io over the run; `None` when unreadable.
    pub write_bytes: Option<u64>,
    pub write_bytes_per_delivery: Option<f64>,
    pub write_bytes_per_delivered_event: Option<f64>,
    /// Store file size at the end, bytes; `None` when the data directory is unknown.
    pub data_file_bytes: Option<u64>,
    /// Growth of the store file over the run (negative when it shrank).
    pub data_file_growth_bytes: Option<i64>,
    /// `data_file_growth_bytes` / delivered events.
    pub data_file_bytes_per_delivered_event: Option<f64>,
}

impl Costs {
    /// The costs of `work` spread over `deliveries` deliveries of `events` delivered events.
    pub fn of(work: &server::Work, deliveries: u64, events: u64) -> Costs {
        let per = |amount: f64, count: u64| (count > 0).then(|| amount / count as f64);
        let write_bytes = work.write_bytes();
        let growth = work.file_growth();
        Costs {
            cpu_seconds_per_1000_deliveries: per(work.cpu_seconds * 1000.0, deliveries)
                .unwrap_or(0.0),
            write_bytes,
            write_bytes_per_delivery: write_bytes.and_then(|b| per(b as f64, deliveries)),
            write_bytes_per_delivered_event: write_bytes.and_then(|b| per(b as f64, events)),
            data_file_bytes: work.file_after,
            data_file_growth_bytes: growth,
            data_file_bytes_per_delivered_event: growth.and_then(|g| per(g as f64, events)),
        }
    }
}

#[derive(Serialize, Debug, Default)]
pub struct BacklogFigures {
    pub queued_events: u64,
    pub requests_held_unanswered: u64,
    pub rss_with_backlog_mib: f64,
    pub peak_rss_while_publishing_mib: f64,
    pub data_file_mib: f64,
    pub shutdown_seconds: f64,
    pub shutdown_needed_kill: bool,
    pub restart_to_listening_s: f64,
    pub restart_to_first_delivery_s: f64,
    pub drain_seconds: f64,
    pub drain_events_per_s: f64,
    pub drain_deliveries_per_s: f64,
    pub restart_peak_rss_mib: f64,
    pub restart_cpu_seconds_per_1000_events: f64,
}

/// The slowloris scenario: publish latency without and with slow clients, and what those did.
#[derive(Serialize, Debug, Default)]
pub struct SlowlorisFigures {
    pub slow_clients: usize,
    /// Each slow client sends one header byte this often, ms.
    pub trickle_interval_ms: u64,
    /// Publish latency with no slow clients.
    pub unloaded: Latency,
    /// Publish latency with the slow clients trickling.
    pub loaded: Latency,
    /// Loaded p99 over unloaded p99.
    pub p99_ratio: f64,
    pub target_ratio: f64,
    pub pass: bool,
    /// Slow connections open when the loaded phase started and ended.
    pub slow_open_at_load_start: u64,
    pub slow_open_at_load_end: u64,
    pub slow_connections_opened: u64,
    /// Slow connections the server ended (at its header deadline).
    pub slow_connections_closed_by_server: u64,
    /// Slow connections the server answered (with an error status) rather than just closed.
    pub slow_connections_answered: u64,
    pub slow_connect_errors: u64,
    pub slow_bytes_sent: u64,
    /// How long the server let a slow connection live, on average and at most, s.
    pub mean_slow_connection_s: f64,
    pub longest_slow_connection_s: f64,
}

/// The idle scenario's window: what the server did while nothing was asked of it.
#[derive(Serialize, Debug, Default)]
pub struct IdleFigures {
    /// Pause between the last delivery and the window, s.
    pub settle_s: f64,
    pub window_s: f64,
    /// utime+stime over the window (clock ticks, converted to seconds).
    pub cpu_seconds: f64,
    /// Time on CPU over the window summed over the threads (schedstat, ns resolution), ms.
    pub on_cpu_ms_schedstat: f64,
    /// `write_bytes` of /proc/<pid>/io over the window.
    pub write_bytes: u64,
    pub read_bytes: u64,
    /// `syscw` of /proc/<pid>/io over the window (write-like system calls, any fd).
    pub write_syscalls: u64,
    /// Voluntary + nonvoluntary context switches of every thread over the window.
    pub context_switches: u64,
    pub voluntary_context_switches: u64,
    pub nonvoluntary_context_switches: u64,
    /// Context switches by thread name, threads that switched at all.
    pub switches_by_thread: BTreeMap<String, u64>,
    pub threads_at_start: usize,
    pub threads_started: usize,
    pub threads_ended: usize,
    pub rss_mib: f64,
    /// Change of the store file's size over the window (spawned servers only).
    pub data_file_growth_bytes: Option<i64>,
    pub cpu_target_s: f64,
    /// CPU ≤ `cpu_target_s` and no bytes written.
    pub pass: bool,
}

/// The query scenario: the store it filled and the two listings' latencies under read load.
#[derive(Serialize, Debug, Default)]
pub struct QueryFigures {
    pub tenants: usize,
    /// Events published and delivered before the reads.
    pub fill_events: u64,
    /// From the first publish to the last event delivered, s.
    pub fill_seconds: f64,
    /// `fill_events` / `fill_seconds`.
    pub fill_events_per_s: f64,
    /// Store file size when the reads began, MiB (spawned servers, or `--data-dir`).
    pub data_file_mib: Option<f64>,
    /// Published event ids the attempts queries drew from.
    pub sampled_event_ids: usize,
    pub readers: usize,
    pub read_seconds: f64,
    /// `GET /api/v1/events?tenant_id=<random tenant>`.
    pub events_query: ReadFigures,
    /// `GET /api/v1/attempts?event_id=<random published event>`.
    pub attempts_query: ReadFigures,
    /// Server CPU over the read load, s, and its share of one core.
    pub read_cpu_seconds: Option<f64>,
    pub read_cpu_percent: Option<f64>,
    /// Bytes the server wrote during the read load (`None` when unreadable).
    pub read_write_bytes: Option<u64>,
    pub p99_target_ms: f64,
    /// Both listings' p99 within `p99_target_ms`, and no errors.
    pub pass: bool,
}

/// The metrics scenario: the day of attempts it filled and the two hourly queries' latencies.
#[derive(Serialize, Debug, Default)]
pub struct MetricsFigures {
    pub fill_events: u64,
    pub fill_attempts: u64,
    /// Seconds the fill took (written through the store, before the server started).
    pub fill_seconds: f64,
    pub fill_attempts_per_s: f64,
    pub data_file_mib: Option<f64>,
    /// A query over the whole fill counted every attempt and every event.
    pub totals_match: bool,
    pub readers: usize,
    pub read_seconds: f64,
    /// `GET /metrics/events`, last 24 h at 1 h.
    pub events_query: ReadFigures,
    /// `GET /metrics/attempts`, last 24 h at 1 h, every measure.
    pub attempts_query: ReadFigures,
    pub p99_target_ms: f64,
    /// Totals matched, both p99 within `p99_target_ms`, no errors.
    pub pass: bool,
}

/// One listing under the read load.
#[derive(Serialize, Debug, Default)]
pub struct ReadFigures {
    /// Requests answered 200 with a page that passed the checks.
    pub ok: u64,
    /// Other statuses, empty or wrong pages, transport errors and timeouts.
    pub errors: u64,
    pub requests_per_s: f64,
    /// Rows per good page, on average.
    pub avg_models: f64,
    /// Latency of the good requests, send to last body byte.
    pub latency: Latency,
    pub first_error: Option<String>,
}

/// The sweep scenario: publish latency without and during a large retention sweep.
#[derive(Serialize, Debug, Default)]
pub struct SweepFigures {
    /// Events the fill published and the server acknowledged.
    pub filled_events: u64,
    /// Records the fill left: its events plus their attempts (requests the receiver got).
    pub filled_records: u64,
    pub fill_seconds: f64,
    pub fill_acks_per_s: f64,
    /// Phase A: publishing at the rate with retention off.
    pub baseline_publish_latency: Latency,
    pub baseline_acked: u64,
    /// Phase B: publishing at the rate after the restart with the short TTL, until the first
    /// sweep run ended (the top-level `publish_latency` is this one too).
    pub during_sweep_publish_latency: Latency,
    pub during_sweep_acked: u64,
    pub during_sweep_publish_seconds: f64,
    /// `LOG_RETENTION_TTL_SECONDS` of the restarted server.
    pub ttl_seconds: u64,
    /// The first sweep run ended before the timeout.
    pub sweep_finished: bool,
    /// What the first run deleted (the fill, and phase A's records older than the TTL).
    pub records_deleted: u64,
    pub events_deleted: u64,
    pub attempts_deleted: u64,
    pub kept_for_queued_deliveries: u64,
    /// The run's own wall-clock time, from its log line.
    pub sweep_seconds: f64,
    pub sweep_records_per_s: f64,
    /// From spawning the restarted server to seeing the run's end line.
    pub restart_to_sweep_end_s: f64,
    pub restart_to_listening_s: f64,
    /// Bytes the restarted server wrote over phase B (the sweep run and the publishing beside
    /// it); `None` when /proc/<pid>/io is unreadable.
    pub during_sweep_write_bytes: Option<u64>,
    /// During-sweep p99 over baseline p99, and the target it must not exceed.
    pub p99_ratio: f64,
    pub p99_target_ratio: f64,
    /// The sweep finished, the ratio is within the target and no event was lost.
    pub pass: bool,
    /// Store file size when the first server stopped (after the fill and phase A), and when the
    /// restarted one stopped.
    pub data_file_before_bytes: u64,
    pub data_file_after_bytes: u64,
}

#[derive(Serialize, Debug, Default)]
pub struct Results {
    pub scenario: String,
    pub settings: Settings,
    pub published: u64,
    pub acked: u64,
    pub publish_rejected: u64,
    pub publish_transport_errors: u64,
    pub publish_skipped_overdue: u64,
    pub publish_seconds: f64,
    pub publish_acks_per_s: f64,
    pub publish_latency: Latency,
    pub delivered_events: u64,
    pub delivered_events_per_s: f64,
    pub deliveries: u64,
    pub deliveries_per_s: f64,
    /// Deliveries per second in the first and last 10 s of the load (runs of 20 s or more).
    pub first_10s_deliveries_per_s: Option<f64>,
    pub last_10s_deliveries_per_s: Option<f64>,
    pub duplicate_deliveries: u64,
    pub e2e_latency: Latency,
    pub failed_attempts: u64,
    pub events_lost: u64,
    pub drain_seconds: f64,
    pub unparsable_requests: u64,
    pub missing_event_id_header: u64,
    pub server: Option<ServerFigures>,
    pub backlog: Option<BacklogFigures>,
    pub idle: Option<IdleFigures>,
    pub query: Option<QueryFigures>,
    pub sweep: Option<SweepFigures>,
    pub metrics: Option<MetricsFigures>,
    pub slowloris: Option<SlowlorisFigures>,
    pub first_error: Option<String>,
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// What the progress line reads.
pub struct Sources {
    pub label: String,
    pub load: Option<(Arc<LoadStats>, Arc<Histogram>)>,
    pub ledger: Arc<Ledger>,
    pub receiver: Arc<ReceiverStats>,
    pub pid: Option<u32>,
}

/// The running progress reporter; stop it with [`Progress::stop`].
pub struct Progress {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Progress {
    pub fn start(sources: Sources) -> Progress {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(1),
                Duration::from_secs(1),
            );
            let mut last = (0u64, 0u64, sample_cpu(sources.pid), Instant::now());
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return,
                }
                last = print_line(&sources, started, last);
            }
        });
        Progress { stop, task }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn sample_cpu(pid: Option<u32>) -> Option<server::ProcSample> {
    pid.and_then(server::sample)
}

fn print_line(
    s: &Sources,
    started: Instant,
    (last_acked, last_delivered, last_cpu, last_at): (
        u64,
        u64,
        Option<server::ProcSample>,
        Instant,
    ),
) -> (u64, u64, Option<server::ProcSample>, Instant) {
    let now = Instant::now();
    let dt = now.duration_since(last_at).as_secs_f64().max(1e-3);
    let mut line = format!("[{} {:>4}s]", s.label, started.elapsed().as_secs());
    let acked = match &s.load {
        Some((load, latency)) => {
            let acked = load.acked.load(Ordering::Relaxed);
            let errors = load.rejected.load(Ordering::Relaxed)
                + load.transport_errors.load(Ordering::Relaxed);
            line += &format!(
                " acked {acked} ({:.0}/s) pub p99 {:.1}ms",
                (acked - last_acked.min(acked)) as f64 / dt,
                latency.quantile(0.99) as f64 / 1000.0
            );
            if errors > 0 {
                line += &format!(" errors {errors}");
            }
            acked
        }
        None => 0,
    };
    let delivered = s.ledger.unique_deliveries();
    line += &format!(
        " | delivered {delivered} ({:.0}/s) e2e p99 {:.1}ms | 5xx {}",
        (delivered - last_delivered.min(delivered)) as f64 / dt,
        s.receiver.e2e.quantile(0.99) as f64 / 1000.0,
        s.receiver.failed.load(Ordering::Relaxed)
    );
    let cpu = sample_cpu(s.pid);
    if let Some(sample) = cpu {
        line += &format!(" | server rss {:.0}MiB", mib(sample.rss_kib));
        if let Some(previous) = last_cpu {
            line += &format!(
                " cpu {:.0}%",
                (sample.cpu_seconds - previous.cpu_seconds) / dt * 100.0
            );
        }
    }
    eprintln!("{line}");
    (acked, delivered, cpu, now)
}

fn fmt_latency(l: &Latency) -> String {
    if l.samples == 0 {
        return "-".into();
    }
    format!("{:.2} / {:.2} / {:.2}", l.p50_ms, l.p99_ms, l.max_ms)
}

/// The final table (stdout).
pub fn print_table(r: &Results) {
    if let Some(idle) = &r.idle {
        print_idle_table(r, idle);
        return;
    }
    if let Some(sweep) = &r.sweep {
        print_sweep_table(r, sweep);
        return;
    }
    if let Some(slow) = &r.slowloris {
        print_slowloris_table(r, slow);
        return;
    }
    let mut rows: Vec<(String, String)> = vec![
        (
            "settings".into(),
            format!(
                "fan-out {}, payload {} B, rate {}, {} connections, {}",
                r.settings.fanout,
                r.settings.payload_bytes,
                if r.settings.rate > 0.0 {
                    format!("{}/s", r.settings.rate)
                } else {
                    "max".into()
                },
                r.settings.connections,
                match (r.settings.events, &r.query) {
                    (Some(n), Some(q)) => format!(
                        "{n} events over {} tenants, then {} s of reads ({} connections)",
                        q.tenants, r.settings.duration_s, q.readers
                    ),
                    (Some(n), None) => format!("{n} events (cap {} s)", r.settings.duration_s),
                    (None, _) => format!("{} s", r.settings.duration_s),
                },
            ),
        ),
        (
            "published / acked".into(),
            format!(
                "{} / {} ({} rejected, {} transport errors, {} skipped overdue)",
                r.published,
                r.acked,
                r.publish_rejected,
                r.publish_transport_errors,
                r.publish_skipped_overdue
            ),
        ),
        (
            "publish acks/s".into(),
            format!("{:.0}", r.publish_acks_per_s),
        ),
        (
            "publish latency p50/p99/max ms".into(),
            fmt_latency(&r.publish_latency),
        ),
        (
            "delivered events/s".into(),
            format!(
                "{:.0} ({} events)",
                r.delivered_events_per_s, r.delivered_events
            ),
        ),
    ];
    if r.settings.fanout > 1 {
        rows.push((
            "deliveries/s".into(),
            format!("{:.0} ({} deliveries)", r.deliveries_per_s, r.deliveries),
        ));
    }
    if let (Some(first), Some(last)) = (r.first_10s_deliveries_per_s, r.last_10s_deliveries_per_s) {
        rows.push((
            "deliveries/s first / last 10 s".into(),
            format!(
                "{first:.0} / {last:.0} (last {:+.1} % of first; target within 10 %)",
                (last / first.max(1e-9) - 1.0) * 100.0
            ),
        ));
    }
    rows.extend([
        (
            "end-to-end latency p50/p99/max ms".into(),
            if r.backlog.is_some() {
                format!("{}  (includes the downtime)", fmt_latency(&r.e2e_latency))
            } else {
                fmt_latency(&r.e2e_latency)
            },
        ),
        (
            "failed attempts (5xx answered)".into(),
            r.failed_attempts.to_string(),
        ),
        (
            "duplicate deliveries".into(),
            r.duplicate_deliveries.to_string(),
        ),
        (
            "events lost".into(),
            format!(
                "{}{}",
                r.events_lost,
                if r.events_lost == 0 { "" } else { "  <-- FAIL" }
            ),
        ),
        (
            "drain after publishing, s".into(),
            format!("{:.2}", r.drain_seconds),
        ),
    ]);
    if let Some(s) = &r.server {
        rows.push((
            "server peak RSS MiB".into(),
            format!("{:.1}", s.peak_rss_mib),
        ));
        rows.push((
            if r.backlog.is_some() {
                "server CPU s per 1,000 events (fill)".into()
            } else {
                "server CPU s per 1,000 events".into()
            },
            format!(
                "{:.3} (avg {:.0}% of one core)",
                s.cpu_seconds_per_1000_events, s.avg_cpu_percent
            ),
        ));
        if !s.thread_cpu_percent.is_empty() {
            let threads: Vec<String> = s
                .thread_cpu_percent
                .iter()
                .map(|(name, percent)| format!("{name} {percent:.0}%"))
                .collect();
            rows.push(("server CPU by thread".into(), threads.join(", ")));
        }
        rows.extend(cost_rows(
            s,
            if r.backlog.is_some() {
                " (fill + drain)"
            } else {
                ""
            },
        ));
    }
    if let Some(b) = &r.backlog {
        rows.extend([
            ("backlog queued events".into(), b.queued_events.to_string()),
            (
                "RSS with backlog queued MiB".into(),
                format!(
                    "{:.1} (peak while publishing {:.1})",
                    b.rss_with_backlog_mib, b.peak_rss_while_publishing_mib
                ),
            ),
            (
                "data file with backlog queued MiB".into(),
                format!("{:.1}", b.data_file_mib),
            ),
            (
                "SIGTERM to exit, s".into(),
                format!(
                    "{:.2}{}",
                    b.shutdown_seconds,
                    if b.shutdown_needed_kill {
                        " (killed)"
                    } else {
                        ""
                    }
                ),
            ),
            (
                "restart: start to listening, s".into(),
                format!("{:.2}", b.restart_to_listening_s),
            ),
            (
                "restart: start to first delivery, s".into(),
                format!("{:.2}", b.restart_to_first_delivery_s),
            ),
            (
                "drain: seconds, events/s".into(),
                format!("{:.2} s, {:.0}/s", b.drain_seconds, b.drain_events_per_s),
            ),
            (
                "restart peak RSS MiB".into(),
                format!("{:.1}", b.restart_peak_rss_mib),
            ),
            (
                "restart CPU s per 1,000 events".into(),
                format!("{:.3}", b.restart_cpu_seconds_per_1000_events),
            ),
        ]);
    }
    if let Some(q) = &r.query {
        rows.extend(query_rows(q));
    }
    if let Some(m) = &r.metrics {
        rows.extend(metrics_rows(m));
    }
    if r.unparsable_requests > 0 || r.missing_event_id_header > 0 {
        rows.push((
            "unparsable / no event-id header".into(),
            format!("{} / {}", r.unparsable_requests, r.missing_event_id_header),
        ));
    }
    if let Some(e) = &r.first_error {
        rows.push(("first error".into(), e.clone()));
    }
    print_rows(&r.scenario, rows);
}

/// Decimal size: `512 B`, `47.8 KB`, `1.09 GB`.
fn fmt_size(bytes: f64) -> String {
    let magnitude = bytes.abs();
    if magnitude < 1000.0 {
        format!("{bytes:.0} B")
    } else if magnitude < 1e6 {
        format!("{:.1} KB", bytes / 1e3)
    } else if magnitude < 1e9 {
        format!("{:.1} MB", bytes / 1e6)
    } else {
        format!("{:.2} GB", bytes / 1e9)
    }
}

/// The rows of what the server spent per delivery: bytes written, CPU, the store file; `span`
/// follows the labels of the figures that cover a run of more than one phase.
fn cost_rows(s: &ServerFigures, span: &str) -> Vec<(String, String)> {
    let c = &s.costs;
    let mut rows = vec![(
        format!("server bytes written{span}"),
        match (c.write_bytes, c.write_bytes_per_delivery) {
            (Some(total), Some(per_delivery)) => format!(
                "{} ({} per delivery, {} per delivered event)",
                fmt_size(total as f64),
                fmt_size(per_delivery),
                fmt_size(c.write_bytes_per_delivered_event.unwrap_or(0.0)),
            ),
            (Some(total), None) => format!("{} (nothing delivered)", fmt_size(total as f64)),
            (None, _) => "unknown (/proc/<pid>/io needs the server's user, or root)".into(),
        },
    )];
    rows.push((
        format!("server CPU s per 1,000 deliveries{span}"),
        format!("{:.3}", c.cpu_seconds_per_1000_deliveries),
    ));
    if let Some(size) = c.data_file_bytes {
        let mut text = format!("{:.1}", size as f64 / 1_048_576.0);
        if let Some(growth) = c.data_file_growth_bytes {
            text += &format!(" (grew {}", fmt_size(growth as f64));
            if let Some(per_event) = c.data_file_bytes_per_delivered_event {
                text += &format!(", {} per delivered event", fmt_size(per_event));
            }
            text += ")";
        }
        rows.push(("data file MiB".into(), text));
    }
    rows
}

/// The query scenario's rows: the fill, then each listing against its target.
fn query_rows(q: &QueryFigures) -> Vec<(String, String)> {
    let mut rows = vec![(
        "fill: events/s to all delivered".to_string(),
        format!(
            "{:.0} ({} events in {:.1} s)",
            q.fill_events_per_s, q.fill_events, q.fill_seconds
        ),
    )];
    if let Some(size) = q.data_file_mib {
        rows.push(("data file when read, MiB".into(), format!("{size:.1}")));
    }
    for (name, f) in [
        ("events?tenant_id", &q.events_query),
        ("attempts?event_id", &q.attempts_query),
    ] {
        let verdict = if f.latency.p99_ms <= q.p99_target_ms && f.errors == 0 && f.ok > 0 {
            "PASS"
        } else {
            "MISS"
        };
        rows.push((
            format!("{name} p50/p99/max ms"),
            format!(
                "{}  (target p99 <= {} ms: {verdict})",
                fmt_latency(&f.latency),
                q.p99_target_ms
            ),
        ));
        rows.push((
            format!("{name} requests/s"),
            format!(
                "{:.0} ({} ok, {} errors, {:.1} rows per page)",
                f.requests_per_s, f.ok, f.errors, f.avg_models
            ),
        ));
        if let Some(e) = &f.first_error {
            rows.push((format!("{name} first error"), e.clone()));
        }
    }
    if let Some(cpu) = q.read_cpu_seconds {
        rows.push((
            "server during reads".into(),
            format!(
                "CPU {cpu:.2} s ({:.0}% of one core), {} written",
                q.read_cpu_percent.unwrap_or(0.0),
                q.read_write_bytes
                    .map_or_else(|| "unknown bytes".to_string(), |b| fmt_size(b as f64))
            ),
        ));
    }
    rows.push((
        "query target".into(),
        if q.pass { "PASS" } else { "MISS" }.to_string(),
    ));
    rows
}

/// The metrics scenario's rows: the fill, the totals check, then each query against its target.
fn metrics_rows(m: &MetricsFigures) -> Vec<(String, String)> {
    let mut rows = vec![
        (
            "fill: events, attempts (24 h)".to_string(),
            format!(
                "{} events, {} attempts in {:.1} s ({:.0} attempts/s)",
                m.fill_events, m.fill_attempts, m.fill_seconds, m.fill_attempts_per_s
            ),
        ),
        (
            "totals counted by the server".into(),
            if m.totals_match {
                "match the fill"
            } else {
                "DIFFER from the fill"
            }
            .into(),
        ),
    ];
    if let Some(size) = m.data_file_mib {
        rows.push(("data file MiB".into(), format!("{size:.1}")));
    }
    for (name, f) in [
        ("metrics/attempts 24h@1h", &m.attempts_query),
        ("metrics/events 24h@1h", &m.events_query),
    ] {
        let verdict = if f.latency.p99_ms <= m.p99_target_ms && f.errors == 0 && f.ok > 0 {
            "PASS"
        } else {
            "MISS"
        };
        rows.push((
            format!("{name} p50/p99/max ms"),
            format!(
                "{}  (target p99 <= {} ms: {verdict})",
                fmt_latency(&f.latency),
                m.p99_target_ms
            ),
        ));
        rows.push((
            format!("{name} requests/s"),
            format!(
                "{:.0} ({} ok, {} errors, {} readers)",
                f.requests_per_s, f.ok, f.errors, m.readers
            ),
        ));
        if let Some(e) = &f.first_error {
            rows.push((format!("{name} first error"), e.clone()));
        }
    }
    rows.push((
        "metrics target".into(),
        if m.pass { "PASS" } else { "MISS" }.to_string(),
    ));
    rows
}

fn print_rows(scenario: &str, rows: Vec<(String, String)>) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("== {scenario} ==");
    for (k, v) in rows {
        println!("  {k:<width$}  {v}");
    }
}

/// The slowloris scenario's table: both phases' latency, the verdict, the slow clients.
fn print_slowloris_table(r: &Results, w: &SlowlorisFigures) {
    let mut rows: Vec<(String, String)> = vec![
        (
            "settings".into(),
            format!(
                "fan-out {}, payload {} B, rate {}/s, {} connections, {} s per phase, {} slow \
                 clients at 1 byte / {} ms",
                r.settings.fanout,
                r.settings.payload_bytes,
                r.settings.rate,
                r.settings.connections,
                r.settings.duration_s,
                w.slow_clients,
                w.trickle_interval_ms
            ),
        ),
        (
            "publish ms p50 / p99 / max, unloaded".into(),
            fmt_latency(&w.unloaded),
        ),
        (
            "publish ms p50 / p99 / max, slow clients".into(),
            fmt_latency(&w.loaded),
        ),
        (
            "p99 ratio".into(),
            format!(
                "{:.2} (target <= {:.1}): {}",
                w.p99_ratio,
                w.target_ratio,
                if w.pass { "PASS" } else { "MISS" }
            ),
        ),
        (
            "slow connections open".into(),
            format!(
                "{} at the start of the loaded phase, {} at its end",
                w.slow_open_at_load_start, w.slow_open_at_load_end
            ),
        ),
        (
            "slow connections".into(),
            format!(
                "{} opened, {} closed by the server ({} with an answer), {} connect errors, {} \
                 bytes sent",
                w.slow_connections_opened,
                w.slow_connections_closed_by_server,
                w.slow_connections_answered,
                w.slow_connect_errors,
                w.slow_bytes_sent
            ),
        ),
        (
            "slow connection lifetime s".into(),
            format!(
                "mean {:.1}, longest {:.1}",
                w.mean_slow_connection_s, w.longest_slow_connection_s
            ),
        ),
        (
            "events".into(),
            format!(
                "{} published, {} acked, {} delivered, {} lost, {} rejected, {} transport errors",
                r.published,
                r.acked,
                r.delivered_events,
                r.events_lost,
                r.publish_rejected,
                r.publish_transport_errors
            ),
        ),
    ];
    if let Some(e) = &r.first_error {
        rows.push(("first error".into(), e.clone()));
    }
    print_rows(&r.scenario, rows);
}

/// The idle scenario's table: the warm-up in brief, then the quiet window.
fn print_idle_table(r: &Results, i: &IdleFigures) {
    let mut rows: Vec<(String, String)> = vec![
        (
            "warm-up".into(),
            format!(
                "{} events published, {} acked, {} delivered, {} lost (fan-out {}, payload {} B)",
                r.published,
                r.acked,
                r.delivered_events,
                r.events_lost,
                r.settings.fanout,
                r.settings.payload_bytes
            ),
        ),
        (
            "quiet window, s".into(),
            format!("{:.1} (after {:.0} s to settle)", i.window_s, i.settle_s),
        ),
        (
            "server CPU s (utime+stime)".into(),
            format!(
                "{:.3} (target <= {}; schedstat {:.3} ms)",
                i.cpu_seconds, i.cpu_target_s, i.on_cpu_ms_schedstat
            ),
        ),
        (
            "bytes written to disk".into(),
            format!(
                "{} (target 0; read {} B, {} write calls)",
                i.write_bytes, i.read_bytes, i.write_syscalls
            ),
        ),
        (
            "context switches".into(),
            format!(
                "{} ({} voluntary, {} nonvoluntary)",
                i.context_switches, i.voluntary_context_switches, i.nonvoluntary_context_switches
            ),
        ),
    ];
    if !i.switches_by_thread.is_empty() {
        let threads: Vec<String> = i
            .switches_by_thread
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        rows.push(("context switches by thread".into(), threads.join(", ")));
    }
    rows.push((
        "threads".into(),
        format!(
            "{} at start, {} started, {} ended",
            i.threads_at_start, i.threads_started, i.threads_ended
        ),
    ));
    rows.push(("server RSS MiB".into(), format!("{:.1}", i.rss_mib)));
    if let Some(growth) = i.data_file_growth_bytes {
        rows.push(("data file growth, bytes".into(), growth.to_string()));
    }
    rows.push((
        "idle target".into(),
        if i.pass { "PASS" } else { "MISS" }.to_string(),
    ));
    if let Some(e) = &r.first_error {
        rows.push(("first error".into(), e.clone()));
    }
    print_rows(&r.scenario, rows);
}

fn mib_of(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// The sweep scenario's table: the fill, the two publish phases, the sweep and the verdict.
fn print_sweep_table(r: &Results, w: &SweepFigures) {
    let mut rows: Vec<(String, String)> = vec![
        (
            "settings".into(),
            format!(
                "fan-out {}, payload {} B, rate {}/s, {} connections, baseline {} s, TTL {} s",
                r.settings.fanout,
                r.settings.payload_bytes,
                r.settings.rate,
                r.settings.connections,
                r.settings.duration_s,
                w.ttl_seconds
            ),
        ),
        (
            "fill".into(),
            format!(
                "{} events acked in {:.1} s ({:.0}/s), {} records (events + attempts)",
                w.filled_events, w.fill_seconds, w.fill_acks_per_s, w.filled_records
            ),
        ),
        (
            "baseline publish p50/p99/max ms".into(),
            format!(
                "{}  ({} acked)",
                fmt_latency(&w.baseline_publish_latency),
                w.baseline_acked
            ),
        ),
        (
            "during-sweep publish p50/p99/max ms".into(),
            format!(
                "{}  ({} acked over {:.1} s)",
                fmt_latency(&w.during_sweep_publish_latency),
                w.during_sweep_acked,
                w.during_sweep_publish_seconds
            ),
        ),
        (
            "p99 during sweep / baseline".into(),
            format!("{:.2} (target <= {})", w.p99_ratio, w.p99_target_ratio),
        ),
    ];
    if w.sweep_finished {
        rows.extend([
            (
                "records deleted by the sweep run".into(),
                format!(
                    "{} ({} events, {} attempts; {} kept for queued deliveries)",
                    w.records_deleted,
                    w.events_deleted,
                    w.attempts_deleted,
                    w.kept_for_queued_deliveries
                ),
            ),
            (
                "sweep run seconds, records/s".into(),
                format!("{:.2} s, {:.0}/s", w.sweep_seconds, w.sweep_records_per_s),
            ),
            (
                "restart: to listening, to sweep end, s".into(),
                format!(
                    "{:.2}, {:.2}",
                    w.restart_to_listening_s, w.restart_to_sweep_end_s
                ),
            ),
        ]);
        if let Some(bytes) = w.during_sweep_write_bytes {
            rows.push((
                "server bytes written during sweep".into(),
                fmt_size(bytes as f64),
            ));
        }
    } else {
        rows.push((
            "sweep".into(),
            "did not finish before --sweep-timeout  <-- FAIL".into(),
        ));
    }
    rows.extend([
        (
            "published / acked (all phases)".into(),
            format!(
                "{} / {} ({} rejected, {} transport errors, {} skipped overdue)",
                r.published,
                r.acked,
                r.publish_rejected,
                r.publish_transport_errors,
                r.publish_skipped_overdue
            ),
        ),
        (
            "events lost".into(),
            format!(
                "{}{}",
                r.events_lost,
                if r.events_lost == 0 { "" } else { "  <-- FAIL" }
            ),
        ),
        (
            "duplicate deliveries".into(),
            r.duplicate_deliveries.to_string(),
        ),
        (
            "data file MiB before / after".into(),
            format!(
                "{:.1} / {:.1}",
                mib_of(w.data_file_before_bytes),
                mib_of(w.data_file_after_bytes)
            ),
        ),
    ]);
    if let Some(s) = &r.server {
        if !s.thread_cpu_percent.is_empty() {
            let threads: Vec<String> = s
                .thread_cpu_percent
                .iter()
                .map(|(name, percent)| format!("{name} {percent:.0}%"))
                .collect();
            rows.push((
                "server CPU by thread during sweep".into(),
                threads.join(", "),
            ));
        }
        rows.push((
            "server peak RSS MiB".into(),
            format!("{:.1}", s.peak_rss_mib),
        ));
        rows.extend(cost_rows(s, " (fill)").into_iter().map(|(k, v)| {
            if k == "data file MiB" {
                ("data file MiB after the fill".into(), v)
            } else {
                (k, v)
            }
        }));
    }
    rows.push((
        "sweep target".into(),
        if w.pass { "PASS" } else { "MISS" }.to_string(),
    ));
    if let Some(e) = &r.first_error {
        rows.push(("first error".into(), e.clone()));
    }
    print_rows(&r.scenario, rows);
}

pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::{Io, ProcSample, Work};

    #[test]
    fn costs_per_delivery_and_per_event() {
        let work = Work {
            cpu_seconds: 3.0,
            io: Some(Io {
                write_bytes: 48_000_000,
                ..Io::default()
            }),
            file_before: Some(1_000_000),
            file_after: Some(31_000_000),
            end: ProcSample::default(),
        };
        let costs = Costs::of(&work, 10_000, 1_000);
        assert_eq!(costs.cpu_seconds_per_1000_deliveries, 0.3);
        assert_eq!(costs.write_bytes, Some(48_000_000));
        assert_eq!(costs.write_bytes_per_delivery, Some(4_800.0));
        assert_eq!(costs.write_bytes_per_delivered_event, Some(48_000.0));
        assert_eq!(costs.data_file_bytes, Some(31_000_000));
        assert_eq!(costs.data_file_growth_bytes, Some(30_000_000));
        assert_eq!(costs.data_file_bytes_per_delivered_event, Some(30_000.0));

        let unknown = Costs::of(&Work::default(), 0, 0);
        assert_eq!(unknown, Costs::default());
        let no_io = Costs::of(&Work { io: None, ..work }, 10, 10);
        assert_eq!(no_io.write_bytes_per_delivery, None);
        assert_eq!(no_io.data_file_growth_bytes, Some(30_000_000));
    }

    #[test]
    fn sizes_read_as_decimal_units() {
        assert_eq!(fmt_size(512.0), "512 B");
        assert_eq!(fmt_size(47_812.0), "47.8 KB");
        assert_eq!(fmt_size(-2_900.0), "-2.9 KB");
        assert_eq!(fmt_size(436_000_000.0), "436.0 MB");
        assert_eq!(fmt_size(1_088_000_000.0), "1.09 GB");
    }
}
