//! `outpost-bench`: the benchmark, a binary of its own. Parses its flags, resolves a scenario
//! into a plan, and runs it: a receiver, a server (the `outpost` executable beside this one, or
//! `$OUTPOST_BIN`, spawned on a fresh data directory, or a running one via `--url`), a tenant
//! with fan-out webhook destinations, open-loop publish load, a drain wait, then the report with
//! what the server spent per delivery. The backlog, idle, query, sweep, metrics and slowloris
//! scenarios have their own runners (`backlog.rs`, `idle.rs`, `query.rs`, `sweep.rs`,
//! `metrics.rs`, `slowloris.rs`).

mod api;
mod backlog;
mod flatness;
mod hist;
mod idle;
mod ledger;
mod load;
mod metrics;
mod query;
mod reader;
mod receiver;
mod report;
mod server;
mod slowloris;
mod sweep;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argh::FromArgs;

use self::api::Api;
use self::hist::Histogram;
use self::ledger::Ledger;
use self::load::{LoadSpec, LoadStats};
use self::receiver::{Mode, Receiver};
use self::report::{Costs, Latency, Progress, Results, ServerFigures, Settings, Sources};
use self::server::{Meter, ServerProcess, SpawnSpec};

/// API key given to spawned servers.
const BENCH_API_KEY: &str = "outpost-bench-key";
/// Retry schedule of spawned servers: quick retries, enough of them that a 10 % failure rate
/// cannot exhaust an event.
const FAST_RETRIES: &str = "1,1,1,1,1,1,1,1,1,1";

/// Benchmark outpost: publish load, receive the deliveries, report throughput, latency,
/// losses and the server's memory and CPU. Spawns the outpost executable beside this one (or
/// $OUTPOST_BIN) unless --url names a running server.
#[derive(FromArgs, Debug)]
pub struct BenchArgs {
    /// fanout1, fanout10, payload64k, failures, backlog, idle, query, sweep, metrics,
    /// slowloris, or all (default fanout1)
    #[argh(option, default = "String::from(\"fanout1\")")]
    pub scenario: String,
    /// offered publish rate in events/s, 0 = as fast as possible (default: fanout1, failures
    /// and sweep 2000, fanout10, payload64k and slowloris 500, backlog, idle and query 0)
    #[argh(option)]
    pub rate: Option<f64>,
    /// publisher keep-alive connections (default 32)
    #[argh(option, default = "32")]
    pub connections: usize,
    /// seconds of publishing (default 10; backlog: a 900 s cap; idle: the quiet window,
    /// default 60; query and metrics: the read load, default 20; sweep: the baseline phase,
    /// default 20; slowloris: each of its two phases, default 10)
    #[argh(option)]
    pub duration: Option<u64>,
    /// stop after this many events (backlog default 1000000, idle default 100, query default
    /// 5000000; sweep: events filled before the sweep, default 500000; metrics: events filled
    /// over 24 h, default 227273, about 1000000 attempts)
    #[argh(option)]
    pub events: Option<u64>,
    /// destinations per event, overriding the scenario's
    #[argh(option)]
    pub fanout: Option<u32>,
    /// event data size in bytes, overriding the scenario's
    #[argh(option)]
    pub payload: Option<usize>,
    /// percent of deliveries the receiver answers 500, overriding the scenario's
    #[argh(option)]
    pub fail_percent: Option<u64>,
    /// seconds to wait after publishing for every delivery (default 60; backlog, query and
    /// sweep: scaled to --events)
    #[argh(option)]
    pub drain_timeout: Option<u64>,
    /// benchmark a running server (loopback http URL, e.g. http://127.0.0.1:3333)
    #[argh(option)]
    pub url: Option<String>,
    /// admin API key of the --url server
    #[argh(option)]
    pub api_key: Option<String>,
    /// pid of the --url server, to sample its memory, CPU and bytes written
    #[argh(option)]
    pub server_pid: Option<u32>,
    /// data directory of the --url server, to report its store file's size and growth
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
    /// send every operator event (OPERATOR_EVENTS_TOPICS=*) to the bench's receiver, which
    /// counts them; measures what alert and operator event bookkeeping costs
    #[argh(switch)]
    pub operator_events: bool,
    /// extra environment for the spawned server, KEY=VALUE (repeatable)
    #[argh(option)]
    pub server_env: Vec<String>,
    /// results file (default bench-results/<scenario>.json; with all: every result as an array)
    #[argh(option)]
    pub json: Option<PathBuf>,
    /// keep the spawned server's data directory
    #[argh(switch)]
    pub keep_data: bool,
    /// query and metrics: closed-loop read connections during the read load (default 8)
    #[argh(option, default = "query::DEFAULT_READERS")]
    pub readers: usize,
    /// sweep: LOG_RETENTION_TTL_SECONDS of the restarted server (default 5)
    #[argh(option)]
    pub sweep_ttl: Option<u64>,
    /// sweep: seconds to wait for the sweep run to end while publishing (default 600)
    #[argh(option)]
    pub sweep_timeout: Option<u64>,
    /// slowloris: connections trickling header bytes during the loaded phase (default 500)
    #[argh(option, default = "slowloris::DEFAULT_SLOW_CLIENTS")]
    pub slow_clients: usize,
}

/// Which runner a scenario uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Open-loop publish load, then a drain wait.
    Steady,
    /// Queue a backlog, restart, time the recovery (`backlog.rs`).
    Backlog,
    /// A little work, then a quiet window measuring what the server does unprompted (`idle.rs`).
    Idle,
    /// Fill the store across many tenants, then time the event and attempt listings
    /// (`query.rs`).
    Query,
    /// Fill, a baseline, then publish during a large retention sweep (`sweep.rs`).
    Sweep,
    /// Fill a day of attempts, then time the hourly metrics queries (`metrics.rs`).
    Metrics,
    /// Publish unloaded, then with slow clients trickling headers (`slowloris.rs`).
    Slowloris,
}

/// One named workload.
struct Scenario {
    name: &'static str,
    fanout: u32,
    payload: usize,
    fail_percent: u64,
    /// Default offered rate, events/s (0 = as fast as possible).
    rate: f64,
    kind: Kind,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "fanout1",
        fanout: 1,
        payload: 1024,
        fail_percent: 0,
        rate: 2000.0,
        kind: Kind::Steady,
    },
    Scenario {
        name: "fanout10",
        fanout: 10,
        payload: 1024,
        fail_percent: 0,
        rate: 500.0,
        kind: Kind::Steady,
    },
    Scenario {
        name: "payload64k",
        fanout: 1,
        payload: 64 * 1024,
        fail_percent: 0,
        rate: 500.0,
        kind: Kind::Steady,
    },
    Scenario {
        name: "failures",
        fanout: 1,
        payload: 1024,
        fail_percent: 10,
        rate: 2000.0,
        kind: Kind::Steady,
    },
    Scenario {
        name: "backlog",
        fanout: 1,
        payload: 1024,
        fail_percent: 0,
        rate: 0.0,
        kind: Kind::Backlog,
    },
    Scenario {
        name: "idle",
        fanout: 1,
        payload: 1024,
        fail_percent: 0,
        rate: 0.0,
        kind: Kind::Idle,
    },
    Scenario {
        name: "query",
        fanout: 1,
        payload: 1024,
        fail_percent: 0,
        rate: 0.0,
        kind: Kind::Query,
    },
    Scenario {
        name: "sweep",
        fanout: 1,
        payload: 1024,
        fail_percent: 0,
        rate: 2000.0,
        kind: Kind::Sweep,
    },
    Scenario {
        name: "metrics",
        fanout: 4,
        payload: 64,
        fail_percent: 10,
        rate: 0.0,
        kind: Kind::Metrics,
    },
    Scenario {
        name: "slowloris",
        fanout: 1,
        payload: 1024,
        fail_percent: 0,
        rate: 500.0,
        kind: Kind::Slowloris,
    },
];

/// A scenario with every setting resolved.
#[derive(Clone)]
pub struct Plan {
    name: &'static str,
    kind: Kind,
    fanout: u32,
    payload: usize,
    fail_percent: u64,
    rate: f64,
    connections: usize,
    duration: Duration,
    events: Option<u64>,
    drain_timeout: Duration,
    server_env: Vec<(String, String)>,
    /// Closed-loop read connections (query).
    readers: usize,
    /// Sweep scenario: the restarted server's TTL and how long to wait for its sweep run.
    sweep_ttl: Duration,
    sweep_timeout: Duration,
    /// Slowloris scenario: connections trickling header bytes.
    slow_clients: usize,
}

impl Plan {
    fn settings(&self, target: &str) -> Settings {
        Settings {
            target: target.to_string(),
            fanout: self.fanout,
            payload_bytes: self.payload,
            rate: self.rate,
            connections: self.connections,
            duration_s: self.duration.as_secs(),
            events: self.events,
            fail_percent: self.fail_percent,
            server_env: if target == "spawned" {
                self.server_env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

/// Wall-clock nanoseconds derived from one monotonic base, shared by publishers and receiver.
#[derive(Clone, Copy)]
pub struct BenchClock {
    base: Instant,
    base_unix_ns: u64,
}

impl BenchClock {
    fn new() -> BenchClock {
        BenchClock {
            base: Instant::now(),
            base_unix_ns: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        }
    }

    pub fn at_ns(&self, instant: Instant) -> u64 {
        self.base_unix_ns + instant.saturating_duration_since(self.base).as_nanos() as u64
    }

    pub fn now_ns(&self) -> u64 {
        self.at_ns(Instant::now())
    }
}

fn resolve(args: &BenchArgs, scenario: &Scenario) -> Result<Plan, String> {
    let rate = args.rate.unwrap_or(scenario.rate);
    if !rate.is_finite() || !(0.0..=1_000_000.0).contains(&rate) {
        return Err(format!("--rate {rate}: expected 0 (unlimited) to 1000000"));
    }
    if !(1..=1024).contains(&args.connections) {
        return Err(format!(
            "--connections {}: expected 1 to 1024",
            args.connections
        ));
    }
    let duration = args.duration.unwrap_or(match scenario.kind {
        Kind::Steady | Kind::Slowloris => 10,
        Kind::Backlog => 900,
        Kind::Idle => 60,
        Kind::Query => query::DEFAULT_DURATION_S,
        Kind::Metrics => metrics::DEFAULT_DURATION_S,
        Kind::Sweep => 20,
    });
    if !(1..=3600).contains(&duration) {
        return Err(format!("--duration {duration}: expected 1 to 3600 seconds"));
    }
    let events = args.events.or(match scenario.kind {
        Kind::Steady | Kind::Slowloris => None,
        Kind::Backlog => Some(1_000_000),
        Kind::Idle => Some(idle::DEFAULT_EVENTS),
        Kind::Query => Some(query::DEFAULT_EVENTS),
        Kind::Metrics => Some(metrics::DEFAULT_EVENTS),
        Kind::Sweep => Some(sweep::DEFAULT_EVENTS),
    });
    if let Some(n) = events {
        if !(1..=ledger::MAX_EVENTS).contains(&n) {
            return Err(format!(
                "--events {n}: expected 1 to {}",
                ledger::MAX_EVENTS
            ));
        }
    }
    let fanout = args.fanout.unwrap_or(scenario.fanout);
    if !(1..=ledger::MAX_FANOUT).contains(&fanout) {
        return Err(format!(
            "--fanout {fanout}: expected 1 to {}",
            ledger::MAX_FANOUT
        ));
    }
    let payload = args.payload.unwrap_or(scenario.payload);
    if !(64..=1_000_000).contains(&payload) {
        return Err(format!("--payload {payload}: expected 64 to 1000000 bytes"));
    }
    let fail_percent = args.fail_percent.unwrap_or(scenario.fail_percent);
    if fail_percent > 90 {
        return Err(format!("--fail-percent {fail_percent}: expected 0 to 90"));
    }
    let drain_timeout = args.drain_timeout.unwrap_or(
        if matches!(scenario.kind, Kind::Backlog | Kind::Query | Kind::Sweep) {
            120 + events.unwrap_or(0) / 500
        } else {
            60
        },
    );
    if !(1..=86_400).contains(&drain_timeout) {
        return Err(format!(
            "--drain-timeout {drain_timeout}: expected 1 to 86400 seconds"
        ));
    }
    if !(1..=256).contains(&args.readers) {
        return Err(format!("--readers {}: expected 1 to 256", args.readers));
    }
    let sweep_ttl = args.sweep_ttl.unwrap_or(sweep::DEFAULT_TTL_S);
    if !(1..=3600).contains(&sweep_ttl) {
        return Err(format!(
            "--sweep-ttl {sweep_ttl}: expected 1 to 3600 seconds"
        ));
    }
    let sweep_timeout = args.sweep_timeout.unwrap_or(sweep::DEFAULT_TIMEOUT_S);
    if !(1..=86_400).contains(&sweep_timeout) {
        return Err(format!(
            "--sweep-timeout {sweep_timeout}: expected 1 to 86400 seconds"
        ));
    }
    if !(1..=10_000).contains(&args.slow_clients) {
        return Err(format!(
            "--slow-clients {}: expected 1 to 10000",
            args.slow_clients
        ));
    }
    let mut server_env = vec![("RETRY_SCHEDULE".to_string(), FAST_RETRIES.to_string())];
    for pair in &args.server_env {
        let Some((key, value)) = pair.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(format!("--server-env {pair:?}: expected KEY=VALUE"));
        };
        server_env.retain(|(k, _)| k != key);
        server_env.push((key.to_string(), value.to_string()));
    }
    Ok(Plan {
        name: scenario.name,
        kind: scenario.kind,
        fanout,
        payload,
        fail_percent,
        rate,
        connections: args.connections,
        duration: Duration::from_secs(duration),
        events,
        drain_timeout: Duration::from_secs(drain_timeout),
        server_env,
        readers: args.readers,
        sweep_ttl: Duration::from_secs(sweep_ttl),
        sweep_timeout: Duration::from_secs(sweep_timeout),
        slow_clients: args.slow_clients,
    })
}

fn main() -> std::process::ExitCode {
    let args: BenchArgs = argh::from_env();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("outpost-bench: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs the chosen scenarios and writes their report.
fn run(args: BenchArgs) -> Result<(), String> {
    let chosen: Vec<&Scenario> = if args.scenario == "all" {
        SCENARIOS.iter().collect()
    } else {
        let one = SCENARIOS
            .iter()
            .find(|s| s.name == args.scenario)
            .ok_or_else(|| {
                let names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
                format!(
                    "--scenario {:?}: expected one of {}, all",
                    args.scenario,
                    names.join(", ")
                )
            })?;
        vec![one]
    };
    let plans = chosen
        .into_iter()
        .map(|s| resolve(&args, s))
        .collect::<Result<Vec<_>, _>>()?;
    if args.url.is_some()
        && plans
            .iter()
            .any(|p| matches!(p.kind, Kind::Backlog | Kind::Sweep | Kind::Metrics))
    {
        return Err(
            "the backlog, sweep and metrics scenarios start the server themselves, so they cannot \
             use --url"
                .into(),
        );
    }
    if args.url.is_some() && args.server_pid.is_none() && plans.iter().any(|p| p.kind == Kind::Idle)
    {
        return Err("the idle scenario measures the server's process: pass --server-pid".into());
    }
    if args.url.is_none()
        && (args.api_key.is_some() || args.server_pid.is_some() || args.data_dir.is_some())
    {
        return Err("--api-key, --server-pid and --data-dir only apply with --url".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let mut all = Vec::new();
        let mut lost = 0;
        for plan in &plans {
            let results = match plan.kind {
                Kind::Steady => run_steady(plan, &args).await?,
                Kind::Backlog => backlog::run(plan, &args).await?,
                Kind::Idle => idle::run(plan, &args).await?,
                Kind::Query => query::run(plan, &args).await?,
                Kind::Metrics => metrics::run(plan, &args).await?,
                Kind::Sweep => sweep::run(plan, &args).await?,
                Kind::Slowloris => slowloris::run(plan, &args).await?,
            };
            report::print_table(&results);
            lost += results.events_lost;
            if args.json.is_none() || plans.len() > 1 {
                let path = PathBuf::from(format!("bench-results/{}.json", plan.name));
                report::write_json(&path, &results)?;
                eprintln!("results written to {}", path.display());
            }
            all.push(results);
        }
        if let Some(path) = &args.json {
            if all.len() == 1 {
                report::write_json(path, &all[0])?;
            } else {
                report::write_json(path, &all)?;
            }
            eprintln!("results written to {}", path.display());
        }
        if lost > 0 {
            return Err(format!("{lost} acknowledged events were not delivered"));
        }
        Ok(())
    })
}

/// The server under test.
enum Target {
    Spawned {
        server: ServerProcess,
        dir: PathBuf,
    },
    External {
        addr: SocketAddr,
        pid: Option<u32>,
        data_dir: Option<PathBuf>,
    },
}

impl Target {
    async fn start(plan: &Plan, args: &BenchArgs, clock: &BenchClock) -> Result<Target, String> {
        if let Some(url) = &args.url {
            return Ok(Target::External {
                addr: api::loopback_target(url).await?,
                pid: args.server_pid,
                data_dir: args.data_dir.clone(),
            });
        }
        let dir = server::temp_dir(plan.name)?;
        let spawned = server::spawn(
            SpawnSpec {
                data_dir: &dir.join("data"),
                work_dir: &dir,
                api_key: BENCH_API_KEY,
                env: plan.server_env.clone(),
            },
            clock,
        )
        .await;
        match spawned {
            Ok(server) => Ok(Target::Spawned { server, dir }),
            Err(e) => {
                remove_dir(&dir, args.keep_data);
                Err(e)
            }
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Target::Spawned { server, .. } => server.addr,
            Target::External { addr, .. } => *addr,
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Target::Spawned { server, .. } => Some(server.pid),
            Target::External { pid, .. } => *pid,
        }
    }

    fn data_dir(&self) -> Option<PathBuf> {
        match self {
            Target::Spawned { dir, .. } => Some(dir.join("data")),
            Target::External { data_dir, .. } => data_dir.clone(),
        }
    }

    async fn finish(self, keep_data: bool) -> Result<(), String> {
        if let Target::Spawned { server, dir } = self {
            let stopped = server.stop().await;
            remove_dir(&dir, keep_data);
            stopped?;
        }
        Ok(())
    }
}

fn remove_dir(dir: &Path, keep: bool) {
    if keep {
        eprintln!("data kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Creates the tenant and `fanout` destinations pointing at the receiver.
async fn set_up(api: &Api, plan: &Plan, receiver: SocketAddr) -> Result<String, String> {
    let mut tenants = set_up_tenants(api, plan, receiver, 1).await?;
    tenants
        .pop()
        .ok_or_else(|| "no tenant was created".to_string())
}

/// Creates `count` tenants, each with `fanout` destinations pointing at the receiver.
async fn set_up_tenants(
    api: &Api,
    plan: &Plan,
    receiver: SocketAddr,
    count: usize,
) -> Result<Vec<String>, String> {
    api.check_health().await?;
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = format!("bench-{}-{unix}-{}", plan.name, std::process::id());
    let mut tenants = Vec::with_capacity(count);
    for t in 0..count {
        let tenant = if count == 1 {
            base.clone()
        } else {
            format!("{base}-{t}")
        };
        api.create_tenant(&tenant).await?;
        for i in 0..plan.fanout {
            api.create_destination(&tenant, &format!("http://{receiver}/d/{i}"))
                .await?;
        }
        tenants.push(tenant);
    }
    Ok(tenants)
}

/// Waits until every acknowledged event reached every destination, or the timeout.
async fn drain(ledger: &Ledger, acked: u64, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if ledger.complete_events() >= acked && ledger.lost() == 0 {
            break;
        }
        if started.elapsed() >= timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

fn ns_to_s(ns: u64) -> f64 {
    ns as f64 / 1e9
}

async fn run_steady(plan: &Plan, args: &BenchArgs) -> Result<Results, String> {
    let clock = BenchClock::new();
    let ledger = Arc::new(Ledger::new(plan.fanout));
    let receiver = Receiver::start(ledger.clone(), clock, plan.fail_percent, Mode::Answer).await?;
    let mut plan = plan.clone();
    if args.operator_events {
        plan.server_env.extend([
            ("OPERATOR_EVENTS_TOPICS".to_string(), "*".to_string()),
            (
                "OPERATOR_EVENTS_HTTP_URL".to_string(),
                format!("http://{}{}", receiver.addr, receiver::OPERATOR_PATH),
            ),
        ]);
    }
    let plan = &plan;
    let target = Target::start(plan, args, &clock).await?;
    let measured = measure_steady(plan, args, clock, &target, ledger, &receiver).await;
    let finished = target.finish(args.keep_data).await;
    if args.operator_events {
        eprintln!(
            "operator events received: {}",
            receiver
                .stats
                .operator_events
                .load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    let results = measured?;
    finished?;
    Ok(results)
}

async fn measure_steady(
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
        "{}: server {} (pid {}), receiver {}, tenant {tenant}",
        plan.name,
        api.addr,
        target
            .pid()
            .map_or_else(|| "unknown".to_string(), |p| p.to_string()),
        receiver.addr
    );
    let rig = Rig {
        plan,
        args,
        clock,
        target,
        ledger: &ledger,
        receiver,
    };
    Ok(publish_and_drain(&rig, LoadSpec::for_plan(plan, &api, tenant), plan.name).await)
}

/// What a run measures with: its plan and flags, the bench clock, the server under test, and
/// the receiving side.
struct Rig<'a> {
    plan: &'a Plan,
    args: &'a BenchArgs,
    clock: BenchClock,
    target: &'a Target,
    ledger: &'a Arc<Ledger>,
    receiver: &'a Receiver,
}

/// Runs the load of `spec`, waits for the drain, and reports both, with what the server spent
/// from the first publish to the end of the drain (when its pid is known).
async fn publish_and_drain(rig: &Rig<'_>, spec: LoadSpec, label: &str) -> Results {
    let Rig {
        plan,
        args,
        clock,
        target,
        ledger,
        receiver,
    } = *rig;
    let pid = target.pid();
    let data_dir = target.data_dir();
    let meter = pid.and_then(|p| Meter::start(p, data_dir.as_deref()));
    let threads_before = pid.map(server::thread_cpu).unwrap_or_default();
    let stats = Arc::new(LoadStats::default());
    let latency = Arc::new(Histogram::new());
    let progress = Progress::start(Sources {
        label: label.to_string(),
        load: Some((stats.clone(), latency.clone())),
        ledger: ledger.clone(),
        receiver: receiver.stats.clone(),
        pid,
    });
    let started = Instant::now();
    let start_ns = clock.now_ns();
    let sampler = flatness::Sampler::start(ledger.clone());
    let publish_time = load::run(spec, stats.clone(), latency.clone(), ledger.clone(), clock).await;
    let acked = stats.acked.load(std::sync::atomic::Ordering::Relaxed);
    let drained = drain(ledger, acked, plan.drain_timeout).await;
    let samples = sampler.stop();
    progress.stop().await;
    let wall = started.elapsed().as_secs_f64();
    let work = meter.as_ref().and_then(Meter::spent);
    let threads_after = pid.map(server::thread_cpu).unwrap_or_default();
    let mut results = collect(plan, &args_target(args), &stats, &latency, ledger, receiver);
    results.publish_seconds = publish_time.as_secs_f64();
    results.publish_acks_per_s = per_second(acked, results.publish_seconds);
    if let Some((first, last)) = flatness::first_and_last(&samples, publish_time.as_secs() as usize)
    {
        results.first_10s_deliveries_per_s = Some(first);
        results.last_10s_deliveries_per_s = Some(last);
    }
    let rs = &receiver.stats;
    let last_complete = rs
        .last_complete_ns
        .load(std::sync::atomic::Ordering::Relaxed);
    let last_delivery = rs
        .last_delivery_ns
        .load(std::sync::atomic::Ordering::Relaxed);
    results.delivered_events_per_s = per_second(
        results.delivered_events,
        ns_to_s(last_complete.saturating_sub(start_ns)),
    );
    results.deliveries_per_s = per_second(
        results.deliveries,
        ns_to_s(last_delivery.saturating_sub(start_ns)),
    );
    results.drain_seconds = drained.as_secs_f64();
    results.server = work.map(|work| {
        server_figures(
            &work,
            &results,
            server::thread_percent(&threads_before, &threads_after, wall),
            wall,
        )
    });
    results
}

/// The server's figures over a run of `wall` seconds that did `work`, from publishing to the
/// end of the drain.
fn server_figures(
    work: &server::Work,
    results: &Results,
    thread_cpu_percent: std::collections::BTreeMap<String, f64>,
    wall: f64,
) -> ServerFigures {
    let cpu = work.cpu_seconds;
    ServerFigures {
        peak_rss_mib: report::mib(work.end.hwm_kib),
        cpu_seconds: cpu,
        cpu_seconds_per_1000_events: if results.acked > 0 {
            cpu / results.acked as f64 * 1000.0
        } else {
            0.0
        },
        avg_cpu_percent: cpu / wall.max(1e-3) * 100.0,
        thread_cpu_percent,
        data_file_mib: work.file_after.map(|b| b as f64 / 1_048_576.0),
        costs: Costs::of(work, results.deliveries, results.delivered_events),
    }
}

fn args_target(args: &BenchArgs) -> String {
    args.url.clone().unwrap_or_else(|| "spawned".to_string())
}

/// The counters every scenario reports.
fn collect(
    plan: &Plan,
    target: &str,
    stats: &LoadStats,
    latency: &Histogram,
    ledger: &Ledger,
    receiver: &Receiver,
) -> Results {
    use std::sync::atomic::Ordering::Relaxed;
    let rs = &receiver.stats;
    Results {
        scenario: plan.name.to_string(),
        settings: plan.settings(target),
        published: stats.sent.load(Relaxed),
        acked: stats.acked.load(Relaxed),
        publish_rejected: stats.rejected.load(Relaxed),
        publish_transport_errors: stats.transport_errors.load(Relaxed),
        publish_skipped_overdue: stats.skipped.load(Relaxed),
        publish_latency: Latency::from(latency.summary()),
        delivered_events: ledger.complete_events(),
        deliveries: ledger.unique_deliveries(),
        duplicate_deliveries: ledger.duplicates(),
        e2e_latency: Latency::from(rs.e2e.summary()),
        failed_attempts: rs.failed.load(Relaxed),
        events_lost: ledger.lost(),
        unparsable_requests: rs.unparsable.load(Relaxed),
        missing_event_id_header: rs.missing_event_id.load(Relaxed),
        first_error: stats
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone(),
        ..Results::default()
    }
}
