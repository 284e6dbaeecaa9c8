//! The slowloris scenario: publish latency while many clients hold connections open by sending
//! their request headers a byte at a time.
//!
//! 1. Start the server (or use `--url`), create a tenant with `--fanout` destinations.
//! 2. Phase A, unloaded: publish at `--rate` for `--duration` seconds, keep the publish
//!    latency, wait for the deliveries.
//! 3. Start `--slow-clients` slow clients (default 500). Each connects, sends a request line
//!    and a `host` field, then one more header byte every [`TRICKLE_EVERY`], never ending the
//!    head; when the server closes the connection (its header deadline,
//!    `HTTP_HEADER_READ_TIMEOUT_SECONDS`) it connects again at once. Wait [`WARM_UP`] so all
//!    of them are connected.
//! 4. Phase B, loaded: the same publish load with the slow clients trickling; then stop them
//!    and wait for the deliveries.
//!
//! The report: unloaded and loaded publish p50/p99, the ratio of the p99s against the target
//! (loaded ≤ [`P99_TARGET_RATIO`] × unloaded), what the slow clients did (connections opened,
//! closed by the server, bytes sent, how long the server let one live) and events lost (must
//! be 0). The top-level `publish_latency` is phase B's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::api::Api;
use super::hist::Histogram;
use super::ledger::Ledger;
use super::load::{self, LoadSpec, LoadStats};
use super::receiver::{Mode, Receiver};
use super::report::{Latency, Progress, Results, SlowlorisFigures, Sources};
use super::{
    args_target, collect, drain, per_second, set_up, BenchArgs, BenchClock, Plan, Target,
    BENCH_API_KEY,
};

/// Slow clients when `--slow-clients` is not given.
pub const DEFAULT_SLOW_CLIENTS: usize = 500;
/// How often each slow client sends one more header byte.
pub const TRICKLE_EVERY: Duration = Duration::from_secs(1);
/// The target: loaded publish p99 at most this many times the unloaded p99.
pub const P99_TARGET_RATIO: f64 = 2.0;
/// Time for the slow clients to connect before phase B.
const WARM_UP: Duration = Duration::from_secs(3);
/// Slow clients start this far apart, so they do not arrive as one burst of connects.
const STAGGER: Duration = Duration::from_millis(2);

/// What a slow client sends at once on connecting.
const OPENING: &[u8] = b"POST /api/v1/publish HTTP/1.1\r\nhost: outpost\r\n";
/// What it then sends a byte at a time, over and over: one header field after another.
const FIELD: &[u8] = b"x-slow: a\r\n";

/// The `n`-th byte a slow client trickles after [`OPENING`] (from 0): complete header fields
/// one after another, so the head stays valid and never ends.
pub fn trickle_byte(n: u64) -> u8 {
    FIELD[(n % FIELD.len() as u64) as usize]
}

/// Loaded p99 over unloaded p99 (0 without samples), and whether the run passes: both phases
/// measured, the ratio within [`P99_TARGET_RATIO`], nothing lost.
pub fn verdict(unloaded: &Latency, loaded: &Latency, lost: u64) -> (f64, bool) {
    let measured = unloaded.samples > 0 && loaded.samples > 0 && unloaded.p99_ms > 0.0;
    let ratio = if measured {
        loaded.p99_ms / unloaded.p99_ms
    } else {
        0.0
    };
    (ratio, measured && ratio <= P99_TARGET_RATIO && lost == 0)
}

/// What the slow clients did, all of them together.
#[derive(Default)]
struct SlowStats {
    opened: AtomicU64,
    open_now: AtomicU64,
    closed_by_server: AtomicU64,
    connect_errors: AtomicU64,
    bytes_sent: AtomicU64,
    /// Answers the server sent instead of just closing (a 408 or 431, say).
    answered: AtomicU64,
    /// Summed lifetime of the connections the server closed, ms.
    lived_ms: AtomicU64,
    longest_ms: AtomicU64,
}

/// The running slow clients; [`SlowClients::stop`] ends them.
struct SlowClients {
    stats: Arc<SlowStats>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl SlowClients {
    fn start(addr: SocketAddr, count: usize) -> SlowClients {
        let stats = Arc::new(SlowStats::default());
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        for i in 0..count {
            let stats = stats.clone();
            let stopped = stopped.clone();
            tasks.spawn(async move {
                tokio::time::sleep(STAGGER * i as u32).await;
                slow_client(addr, stats, stopped).await;
            });
        }
        SlowClients { stats, stop, tasks }
    }

    async fn stop(mut self) -> Arc<SlowStats> {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.stats
    }
}

/// One slow client: connect, trickle, reconnect when closed, until stopped.
async fn slow_client(addr: SocketAddr, stats: Arc<SlowStats>, mut stopped: watch::Receiver<bool>) {
    while !*stopped.borrow() {
        let mut stream = match TcpStream::connect(addr).await {
            Ok(stream) => stream,
            Err(_) => {
                stats.connect_errors.fetch_add(1, Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    _ = stopped.changed() => return,
                }
            }
        };
        // Each connection starts its head afresh: the trickle begins a field, not the middle
        // of one (which the server would refuse as a malformed head).
        let mut sent = 0u64;
        let opened = Instant::now();
        stats.opened.fetch_add(1, Relaxed);
        stats.open_now.fetch_add(1, Relaxed);
        let mut alive = stream.write_all(OPENING).await.is_ok();
        if alive {
            stats.bytes_sent.fetch_add(OPENING.len() as u64, Relaxed);
        }
        let mut chunk = [0u8; 512];
        let mut tick = tokio::time::interval(TRICKLE_EVERY);
        tick.tick().await;
        while alive {
            tokio::select! {
                read = stream.read(&mut chunk) => {
                    if matches!(read, Ok(n) if n > 0) {
                        stats.answered.fetch_add(1, Relaxed);
                    }
                    alive = false;
                }
                _ = tick.tick() => {
                    if stream.write_all(&[trickle_byte(sent)]).await.is_ok() {
                        sent += 1;
                        stats.bytes_sent.fetch_add(1, Relaxed);
                    } else {
                        alive = false;
                    }
                }
                _ = stopped.changed() => {
                    stats.open_now.fetch_sub(1, Relaxed);
                    return;
                }
            }
        }
        stats.open_now.fetch_sub(1, Relaxed);
        stats.closed_by_server.fetch_add(1, Relaxed);
        let lived = u64::try_from(opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        stats.lived_ms.fetch_add(lived, Relaxed);
        stats.longest_ms.fetch_max(lived, Relaxed);
    }
}

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

/// One publish phase's counters.
struct Phase {
    stats: Arc<LoadStats>,
    latency: Arc<Histogram>,
    took: Duration,
}

async fn publish(
    label: &str,
    spec: LoadSpec,
    target: &Target,
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
        pid: target.pid(),
    });
    let took = load::run(spec, stats.clone(), latency.clone(), ledger.clone(), clock).await;
    progress.stop().await;
    Phase {
        stats,
        latency,
        took,
    }
}

async fn measure(
    plan: &Plan,
    args: &BenchArgs,
    clock: BenchClock,
    target: &Target,
    ledger: Arc<Ledger>,
    receiver: &Receiver,
) -> Result<Results, String> {
    let api = Api {
        addr: target.addr(),
        key: args
            .api_key
            .clone()
            .unwrap_or_else(|| BENCH_API_KEY.to_string()),
    };
    let tenant = set_up(&api, plan, receiver.addr).await?;
    eprintln!(
        "slowloris: server {} (pid {}), receiver {}, tenant {tenant}, {} slow clients",
        api.addr,
        target
            .pid()
            .map_or_else(|| "unknown".to_string(), |p| p.to_string()),
        receiver.addr,
        plan.slow_clients
    );
    let base = LoadSpec::for_plan(plan, &api, tenant);

    // Phase A: unloaded.
    let unloaded = publish(
        "slowloris/unloaded",
        base.clone(),
        target,
        &ledger,
        receiver,
        clock,
    )
    .await;
    let acked_a = unloaded.stats.acked.load(Relaxed);
    drain(&ledger, acked_a, plan.drain_timeout).await;

    // Phase B: with the slow clients trickling.
    let slow = SlowClients::start(api.addr, plan.slow_clients);
    tokio::time::sleep(WARM_UP + STAGGER * plan.slow_clients as u32).await;
    let open_at_start = slow.stats.open_now.load(Relaxed);
    eprintln!("slowloris: {open_at_start} slow connections open; publishing again");
    let loaded = publish(
        "slowloris/loaded",
        LoadSpec {
            first_seq: unloaded.stats.claimed(),
            ..base
        },
        target,
        &ledger,
        receiver,
        clock,
    )
    .await;
    let open_at_end = slow.stats.open_now.load(Relaxed);
    let slow_stats = slow.stop().await;
    let acked = acked_a + loaded.stats.acked.load(Relaxed);
    let drained = drain(&ledger, acked, plan.drain_timeout).await;

    let mut results = collect(
        plan,
        &args_target(args),
        &loaded.stats,
        &loaded.latency,
        &ledger,
        receiver,
    );
    results.published += unloaded.stats.sent.load(Relaxed);
    results.acked = acked;
    results.publish_seconds = loaded.took.as_secs_f64();
    results.publish_acks_per_s =
        per_second(loaded.stats.acked.load(Relaxed), results.publish_seconds);
    results.drain_seconds = drained.as_secs_f64();
    let unloaded_latency = Latency::from(unloaded.latency.summary());
    let loaded_latency = Latency::from(loaded.latency.summary());
    let (ratio, pass) = verdict(&unloaded_latency, &loaded_latency, results.events_lost);
    let closed = slow_stats.closed_by_server.load(Relaxed);
    results.slowloris = Some(SlowlorisFigures {
        slow_clients: plan.slow_clients,
        trickle_interval_ms: TRICKLE_EVERY.as_millis() as u64,
        unloaded: unloaded_latency,
        loaded: loaded_latency,
        p99_ratio: ratio,
        target_ratio: P99_TARGET_RATIO,
        pass,
        slow_open_at_load_start: open_at_start,
        slow_open_at_load_end: open_at_end,
        slow_connections_opened: slow_stats.opened.load(Relaxed),
        slow_connections_closed_by_server: closed,
        slow_connections_answered: slow_stats.answered.load(Relaxed),
        slow_connect_errors: slow_stats.connect_errors.load(Relaxed),
        slow_bytes_sent: slow_stats.bytes_sent.load(Relaxed),
        mean_slow_connection_s: if closed > 0 {
            slow_stats.lived_ms.load(Relaxed) as f64 / closed as f64 / 1000.0
        } else {
            0.0
        },
        longest_slow_connection_s: slow_stats.longest_ms.load(Relaxed) as f64 / 1000.0,
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
    fn trickled_bytes_form_header_fields_that_never_end_the_head() {
        let mut head = OPENING.to_vec();
        head.extend((0..FIELD.len() as u64 * 5).map(trickle_byte));
        let text = String::from_utf8(head).expect("ascii");
        assert!(!text.contains("\r\n\r\n"), "the head must never end");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "POST /api/v1/publish HTTP/1.1");
        assert_eq!(lines[1], "host: outpost");
        assert!(lines[2..lines.len() - 1].iter().all(|l| *l == "x-slow: a"));
        assert_eq!(lines.len() - 3, 5);
    }

    #[test]
    fn the_verdict_compares_p99s_and_needs_both_phases() {
        assert_eq!(
            verdict(&latency(100, 2.0), &latency(100, 3.0), 0),
            (1.5, true)
        );
        assert_eq!(
            verdict(&latency(100, 2.0), &latency(100, 5.0), 0),
            (2.5, false)
        );
        assert!(
            !verdict(&latency(100, 2.0), &latency(100, 2.0), 1).1,
            "lost events fail"
        );
        assert_eq!(
            verdict(&latency(0, 0.0), &latency(100, 2.0), 0),
            (0.0, false)
        );
    }
}
