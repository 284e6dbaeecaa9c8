//! The server under test: spawning `outpost serve` (this executable) on a data directory with a
//! scenario's environment, finding its address from the `listening addr=…` log line, noting the
//! log retention sweep's end-of-run lines, stopping it with SIGTERM, sampling its memory (VmRSS,
//! VmHWM from /proc/<pid>/status), CPU time (utime+stime from /proc/<pid>/stat) and storage I/O
//! (/proc/<pid>/io), and the [`Meter`] that reads all of these and the store file's size at the
//! start and the end of a measured run.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::BenchClock;

/// How long a starting server may take to log its address (it loads the queue first).
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a SIGTERMed server may take to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// Server log lines kept for error messages.
const LOG_TAIL: usize = 30;
/// Warnings and errors echoed to our stderr per server process.
const ECHO_LIMIT: usize = 20;

pub struct SpawnSpec<'a> {
    pub data_dir: &'a Path,
    pub work_dir: &'a Path,
    pub api_key: &'a str,
    pub env: Vec<(String, String)>,
}

pub struct ServerProcess {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    /// Bench-clock time of the spawn.
    pub spawned_at_ns: u64,
    /// From spawn to the `listening` log line.
    pub listening_after: Duration,
    log: Arc<Mutex<VecDeque<String>>>,
    sweeps: Arc<Mutex<Vec<SweepRun>>>,
}

/// One finished run of the server's log retention sweep, from its `info` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepRun {
    pub events: u64,
    pub attempts: u64,
    pub kept_for_queued_deliveries: u64,
    /// Wall-clock time of the run, ms (0 from a server that does not log it).
    pub took_ms: u64,
}

/// The sweep run a log line reports (text or JSON format), if it is the retention sweep's
/// end-of-run line.
fn sweep_run(line: &str) -> Option<SweepRun> {
    if !line.contains("log retention: deleted") {
        return None;
    }
    let field = |name: &str| -> Option<u64> {
        let text = line.split_whitespace().find_map(|token| {
            token
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
        });
        match text {
            Some(value) => value.parse().ok(),
            None => serde_json::from_str::<serde_json::Value>(line)
                .ok()?
                .get(name)?
                .as_u64(),
        }
    };
    Some(SweepRun {
        events: field("events")?,
        attempts: field("attempts")?,
        kept_for_queued_deliveries: field("kept_for_queued_deliveries").unwrap_or(0),
        took_ms: field("took_ms").unwrap_or(0),
    })
}

/// How a stop went.
pub struct Stopped {
    pub took: Duration,
    pub killed: bool,
}

fn log_tail(log: &Mutex<VecDeque<String>>) -> String {
    let lines = log.lock().unwrap_or_else(|p| p.into_inner());
    lines.iter().cloned().collect::<Vec<_>>().join("\n")
}

/// The address after `addr=` in a `listening` log line.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") {
        return None;
    }
    let rest = &line[line.find("addr=")? + 5..];
    rest.split_whitespace().next()?.parse().ok()
}

/// The server to spawn: `$OUTPOST_BIN`, else the `outpost` executable beside this one (cargo
/// builds both into the same directory).
fn server_executable() -> Result<std::path::PathBuf, String> {
    if let Some(path) = std::env::var_os("OUTPOST_BIN") {
        return Ok(path.into());
    }
    let me = std::env::current_exe()
        .map_err(|e| format!("cannot find this executable's directory: {e}"))?;
    let beside = me.with_file_name("outpost");
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(format!(
            "no outpost executable at {} (build it with cargo build --release, or set OUTPOST_BIN)",
            beside.display()
        ))
    }
}

pub async fn spawn(spec: SpawnSpec<'_>, clock: &BenchClock) -> Result<ServerProcess, String> {
    let mut command = Command::new(server_executable()?);
    command
        .arg("serve")
        .current_dir(spec.work_dir)
        .env_clear()
        .env("API_PORT", "0")
        .env("API_HOST", "127.0.0.1")
        .env("API_KEY", spec.api_key)
        .env("API_JWT_SECRET", "outpost-bench-jwt-secret")
        .env("DATA_DIR", spec.data_dir)
        .env("LOG_LEVEL", "info")
        .env("MAX_DESTINATIONS_PER_TENANT", "64")
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let spawned_at_ns = clock.now_ns();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start outpost serve: {e}"))?;
    let pid = child.id();
    let log = Arc::new(Mutex::new(VecDeque::new()));
    let sweeps = Arc::new(Mutex::new(Vec::new()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    if let Some(stderr) = child.stderr.take() {
        let (log, sweeps) = (log.clone(), sweeps.clone());
        std::thread::spawn(move || read_log(stderr, &log, &sweeps, &tx));
    }
    let found = tokio::time::timeout(START_TIMEOUT, rx.recv()).await;
    let mut server = ServerProcess {
        child,
        pid,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        spawned_at_ns,
        listening_after: started.elapsed(),
        log,
        sweeps,
    };
    match found {
        Ok(Some(addr)) => {
            server.addr = addr;
            Ok(server)
        }
        Ok(None) => Err(format!(
            "outpost serve exited before listening; its log:\n{}",
            log_tail(&server.log)
        )),
        Err(_) => Err(format!(
            "outpost serve did not listen within {} s; its log:\n{}",
            START_TIMEOUT.as_secs(),
            log_tail(&server.log)
        )),
    }
}

fn read_log(
    stderr: std::process::ChildStderr,
    log: &Mutex<VecDeque<String>>,
    sweeps: &Mutex<Vec<SweepRun>>,
    tx: &mpsc::UnboundedSender<SocketAddr>,
) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    let mut echoed = 0;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
        if let Some(addr) = listening_addr(&line) {
            let _ = tx.send(addr);
        }
        if let Some(run) = sweep_run(&line) {
            sweeps.lock().unwrap_or_else(|p| p.into_inner()).push(run);
        }
        if (line.contains(" WARN ") || line.contains(" ERROR ")) && echoed < ECHO_LIMIT {
            echoed += 1;
            eprintln!("[server] {line}");
        }
        let mut lines = log.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == LOG_TAIL {
            lines.pop_front();
        }
        lines.push_back(line);
    }
}

impl ServerProcess {
    /// SIGTERM, then wait for the exit (SIGKILL after [`STOP_TIMEOUT`]).
    pub async fn stop(mut self) -> Result<Stopped, String> {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .map_err(|e| format!("cannot run kill -TERM {}: {e}", self.pid))?;
        if !status.success() {
            return Err(format!("kill -TERM {} failed", self.pid));
        }
        let mut killed = false;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if started.elapsed() > STOP_TIMEOUT => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    killed = true;
                    break;
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => return Err(format!("waiting for outpost serve: {e}")),
            }
        }
        Ok(Stopped {
            took: started.elapsed(),
            killed,
        })
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// The retention sweep runs this server has finished so far (those that deleted anything).
    pub fn sweep_runs(&self) -> Vec<SweepRun> {
        self.sweeps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One reading of a process's memory and CPU time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcSample {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub cpu_seconds: f64,
}

/// Clock ticks per second of /proc/<pid>/stat times: AT_CLKTCK from our auxv, else 100.
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        const AT_CLKTCK: u64 = 17;
        let auxv = std::fs::read("/proc/self/auxv").unwrap_or_default();
        auxv.chunks_exact(16)
            .find_map(|pair| {
                let key = u64::from_ne_bytes(pair[..8].try_into().ok()?);
                let value = u64::from_ne_bytes(pair[8..].try_into().ok()?);
                (key == AT_CLKTCK && value > 0).then_some(value as f64)
            })
            .unwrap_or(100.0)
    })
}

/// Reads /proc/<pid>/status and /proc/<pid>/stat; `None` when the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> u64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
    Some(ProcSample {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        cpu_seconds: (ticks(11) + ticks(12)) as f64 / clock_ticks(),
    })
}

/// CPU seconds per thread name (same-named threads summed), from /proc/<pid>/task/*/stat.
pub fn thread_cpu(pid: u32) -> BTreeMap<String, f64> {
    let mut threads = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| -> u64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
        *threads.entry(name).or_insert(0.0) += (ticks(11) + ticks(12)) as f64 / clock_ticks();
    }
    threads
}

/// Per-thread-name CPU use between two [`thread_cpu`] readings, percent of one core.
pub fn thread_percent(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    wall_seconds: f64,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(name, cpu)| {
            let used = cpu - before.get(name).copied().unwrap_or(0.0);
            let percent = (used / wall_seconds.max(1e-3) * 1000.0).round() / 10.0;
            (name.clone(), percent)
        })
        .filter(|(_, percent)| *percent > 0.0)
        .collect()
}

/// The counters of /proc/<pid>/io the bench reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Io {
    /// Bytes the process caused to be written to storage.
    pub write_bytes: u64,
    /// Bytes the process caused to be read from storage.
    pub read_bytes: u64,
    /// Write-like system calls (any file descriptor).
    pub syscw: u64,
}

impl Io {
    /// The counts since the `earlier` reading of the same process.
    pub fn since(&self, earlier: &Io) -> Io {
        Io {
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
            syscw: self.syscw.saturating_sub(earlier.syscw),
        }
    }
}

/// Reads /proc/<pid>/io (readable only by the process's user, or root).
pub fn read_io(pid: u32) -> Result<Io, String> {
    let path = format!("/proc/{pid}/io");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {path}: {e} (it needs the server's user, or root)"))?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Io {
        write_bytes: field("write_bytes:"),
        read_bytes: field("read_bytes:"),
        syscw: field("syscw:"),
    })
}

/// One reading of what a server has spent so far.
#[derive(Clone, Copy, Debug, Default)]
struct Reading {
    cpu_seconds: f64,
    /// `None` when /proc/<pid>/io is unreadable.
    io: Option<Io>,
    /// Size of the store file; `None` when the data directory is unknown.
    data_file: Option<u64>,
}

/// Measures what the server spends over a run: its CPU time, its storage I/O and the size of
/// its store file, read at [`Meter::start`] (or taken as zero from the spawn, for a process
/// started for the run) and again at each [`Meter::spent`].
pub struct Meter {
    pid: u32,
    data_dir: Option<PathBuf>,
    start: Reading,
}

impl Meter {
    /// Starts measuring now; `None` when the process is gone.
    pub fn start(pid: u32, data_dir: Option<&Path>) -> Option<Meter> {
        let cpu = sample(pid)?;
        Some(Meter {
            pid,
            data_dir: data_dir.map(Path::to_path_buf),
            start: Reading {
                cpu_seconds: cpu.cpu_seconds,
                io: read_io(pid).ok(),
                data_file: data_dir.map(data_file_bytes),
            },
        })
    }

    /// Measures a process from its spawn: its counters began at zero, and its store file was
    /// `file_at_spawn` bytes (read before the spawn).
    pub fn since_spawn(pid: u32, data_dir: &Path, file_at_spawn: u64) -> Meter {
        Meter {
            pid,
            data_dir: Some(data_dir.to_path_buf()),
            start: Reading {
                cpu_seconds: 0.0,
                io: Some(Io::default()),
                data_file: Some(file_at_spawn),
            },
        }
    }

    /// What the process has spent since the start (so far: it can be read again later);
    /// `None` when the process is gone.
    pub fn spent(&self) -> Option<Work> {
        let end = sample(self.pid)?;
        let io = read_io(self.pid).ok();
        Some(Work {
            cpu_seconds: ((end.cpu_seconds - self.start.cpu_seconds) * 1000.0).round() / 1000.0,
            io: match (io, self.start.io) {
                (Some(now), Some(then)) => Some(now.since(&then)),
                _ => None,
            },
            file_before: self.start.data_file,
            file_after: self.data_dir.as_deref().map(data_file_bytes),
            end,
        })
    }
}

/// What a server spent over a measured run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Work {
    /// utime+stime, seconds.
    pub cpu_seconds: f64,
    /// /proc/<pid>/io counts over the run; `None` when unreadable.
    pub io: Option<Io>,
    /// Store file size at the start and the end; `None` when the data directory is unknown.
    pub file_before: Option<u64>,
    pub file_after: Option<u64>,
    /// The process's memory and CPU at the end (its `hwm_kib` is the peak RSS so far).
    pub end: ProcSample,
}

impl Work {
    /// This run followed by `later`, a later process's run on the same data directory: CPU and
    /// I/O summed, the file from this run's start to `later`'s end, `later`'s end sample.
    pub fn then(self, later: Work) -> Work {
        Work {
            cpu_seconds: self.cpu_seconds + later.cpu_seconds,
            io: match (self.io, later.io) {
                (Some(a), Some(b)) => Some(Io {
                    write_bytes: a.write_bytes + b.write_bytes,
                    read_bytes: a.read_bytes + b.read_bytes,
                    syscw: a.syscw + b.syscw,
                }),
                _ => None,
            },
            file_before: self.file_before,
            file_after: later.file_after,
            end: later.end,
        }
    }

    /// Bytes written over the run, when /proc/<pid>/io was readable.
    pub fn write_bytes(&self) -> Option<u64> {
        self.io.map(|io| io.write_bytes)
    }

    /// Growth of the store file over the run (negative when it shrank).
    pub fn file_growth(&self) -> Option<i64> {
        Some(self.file_after? as i64 - self.file_before? as i64)
    }
}

/// Size of the store file in a data directory, bytes.
pub fn data_file_bytes(data_dir: &Path) -> u64 {
    std::fs::metadata(data_dir.join("outpost.redb"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(label: &str) -> Result<PathBuf, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "outpost-bench-{label}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(dir.join("data"))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_address() {
        let line = "2025-01-01T00:00:00.000Z  INFO outpost::serve: listening addr=127.0.0.1:4321 data_dir=/tmp/x";
        assert_eq!(
            listening_addr(line),
            Some(SocketAddr::from(([127, 0, 0, 1], 4321)))
        );
        assert_eq!(listening_addr("INFO delivery queue loaded queued=3"), None);
    }

    #[test]
    fn reads_the_sweep_runs_end_line() {
        let text = "2025-01-01T00:00:00.000Z  INFO outpost::retention: log retention: deleted \
                    events and attempts older than the TTL events=500000 attempts=500001 \
                    kept_for_queued_deliveries=3 took_ms=41250";
        assert_eq!(
            sweep_run(text),
            Some(SweepRun {
                events: 500_000,
                attempts: 500_001,
                kept_for_queued_deliveries: 3,
                took_ms: 41_250
            })
        );
        let json = r#"{"timestamp":"2025-01-01T00:00:00Z","level":"INFO","message":"log retention: deleted events and attempts older than the TTL","events":2,"attempts":1,"kept_for_queued_deliveries":0,"took_ms":7,"target":"outpost::retention"}"#;
        assert_eq!(
            sweep_run(json),
            Some(SweepRun {
                events: 2,
                attempts: 1,
                kept_for_queued_deliveries: 0,
                took_ms: 7
            })
        );
        // An older server without took_ms.
        let old = "INFO log retention: deleted events and attempts older than the TTL events=1 \
                   attempts=0 kept_for_queued_deliveries=0";
        assert_eq!(sweep_run(old).map(|r| r.took_ms), Some(0));
        assert_eq!(
            sweep_run("INFO log retention: events and attempts are kept 5 s"),
            None
        );
        assert_eq!(
            sweep_run("ERROR log retention: a sweep failed; trying again later"),
            None
        );
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib);
        assert!(!thread_cpu(std::process::id()).is_empty());
        read_io(std::process::id()).expect("own /proc/<pid>/io");
    }

    #[test]
    fn meters_this_process_and_its_file() {
        let dir = std::env::temp_dir().join(format!("outpost-bench-meter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("outpost.redb"), [0u8; 100]).expect("write");
        let meter = Meter::start(std::process::id(), Some(&dir)).expect("own /proc entry");
        std::fs::write(dir.join("outpost.redb"), [0u8; 350]).expect("write");
        let work = meter.spent().expect("own /proc entry");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((work.file_before, work.file_after), (Some(100), Some(350)));
        assert_eq!(work.file_growth(), Some(250));
        assert!(work.io.is_some() && work.cpu_seconds >= 0.0 && work.end.rss_kib > 0);
    }

    #[test]
    fn runs_of_two_processes_add_up() {
        let io = |w, r, c| Io {
            write_bytes: w,
            read_bytes: r,
            syscw: c,
        };
        assert_eq!(io(10, 5, 2).since(&io(4, 6, 1)), io(6, 0, 1));
        let first = Work {
            cpu_seconds: 1.5,
            io: Some(io(1000, 10, 3)),
            file_before: Some(4096),
            file_after: Some(8192),
            end: ProcSample {
                rss_kib: 1,
                hwm_kib: 2,
                cpu_seconds: 9.0,
            },
        };
        let second = Work {
            cpu_seconds: 0.5,
            io: Some(io(500, 0, 1)),
            file_before: Some(8192),
            file_after: Some(6000),
            end: ProcSample::default(),
        };
        let both = first.then(second);
        assert_eq!(both.cpu_seconds, 2.0);
        assert_eq!(both.write_bytes(), Some(1500));
        assert_eq!(both.io, Some(io(1500, 10, 4)));
        assert_eq!(both.file_growth(), Some(6000 - 4096));
        assert_eq!(both.end, ProcSample::default());
        assert_eq!(first.then(Work::default()).write_bytes(), None);
        assert_eq!(Work::default().file_growth(), None);
    }
}
