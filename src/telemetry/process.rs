//! The standard `process_*` metrics of this process, read from `/proc` at scrape time (Linux
//! only; elsewhere they are left out): CPU time, resident and virtual memory, start time, open
//! and maximum file descriptors. Only this process's own `/proc` entries are read, which the
//! systemd unit's `ProcSubset=pid` leaves visible: the start time is dated from the process's
//! age since boot and the boot-time clock, not from `/proc/stat`.

use std::path::Path;

use super::text::{Exposition, Kind};

/// Why a `/proc` figure could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: &'static str,
        source: std::io::Error,
    },
    #[error("unexpected contents in {path}: {what}")]
    Parse {
        path: &'static str,
        what: &'static str,
    },
}

/// What `/proc/self/stat` says about this process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcessStat {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    /// When the process started, in seconds since the system booted.
    pub started_after_boot_seconds: f64,
}

const SELF_STAT: &str = "/proc/self/stat";
const SELF_FD: &str = "/proc/self/fd";
const SELF_LIMITS: &str = "/proc/self/limits";

fn read(path: &'static str) -> Result<String, ProcessError> {
    std::fs::read_to_string(path).map_err(|source| ProcessError::Read { path, source })
}

/// Parses the text of `/proc/self/stat`, with the clock-tick rate and page size of the system.
pub fn parse_stat(
    self_stat: &str,
    ticks_per_second: u64,
    page_size: u64,
) -> Result<ProcessStat, ProcessError> {
    let bad = |what| ProcessError::Parse {
        path: SELF_STAT,
        what,
    };
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself;
    // the fields after the last `)` start with field 3 (the state).
    let (_, after) = self_stat.rsplit_once(')').ok_or(bad("no command name"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |number: usize, what| -> Result<u64, ProcessError> {
        fields
            .get(number - 3)
            .and_then(|f| f.parse().ok())
            .ok_or(bad(what))
    };
    let ticks = ticks_per_second.max(1) as f64;
    let cpu_ticks = field(14, "utime")? + field(15, "stime")?;
    let start_ticks = field(22, "starttime")?;
    Ok(ProcessStat {
        cpu_seconds: cpu_ticks as f64 / ticks,
        resident_bytes: field(24, "rss")?.saturating_mul(page_size),
        virtual_bytes: field(23, "vsize")?,
        started_after_boot_seconds: start_ticks as f64 / ticks,
    })
}

/// The unix time a process started, from when it started after boot (`starttime`, counted on
/// the boot-time clock), that clock now and the wall clock now.
pub fn start_time_seconds(started_after_boot: f64, boottime_now: f64, unix_now: f64) -> f64 {
    unix_now - (boottime_now - started_after_boot)
}

fn seconds(time: rustix::time::Timespec) -> f64 {
    time.tv_sec as f64 + time.tv_nsec as f64 / 1e9
}

/// The soft limit on open files from the text of `/proc/self/limits`; `None` when unlimited.
pub fn parse_max_fds(limits: &str) -> Result<Option<u64>, ProcessError> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .ok_or(ProcessError::Parse {
            path: SELF_LIMITS,
            what: "Max open files",
        })?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()
        .unwrap_or("");
    match soft {
        "unlimited" => Ok(None),
        value => value.parse().map(Some).map_err(|_| ProcessError::Parse {
            path: SELF_LIMITS,
            what: "the soft limit",
        }),
    }
}

fn stat() -> Result<ProcessStat, ProcessError> {
    parse_stat(
        &read(SELF_STAT)?,
        rustix::param::clock_ticks_per_second(),
        rustix::param::page_size() as u64,
    )
}

fn open_fds() -> Result<u64, ProcessError> {
    let entries = std::fs::read_dir(Path::new(SELF_FD)).map_err(|source| ProcessError::Read {
        path: SELF_FD,
        source,
    })?;
    // The directory handle being read is one of the entries; it is not counted.
    Ok((entries.count() as u64).saturating_sub(1))
}

/// Writes the process families that can be read; one that cannot is left out (logged at
/// debug, since it fails the same way at every scrape).
pub fn expose(out: &mut Exposition) {
    match stat() {
        Ok(stat) => {
            out.single(
                "process_cpu_seconds_total",
                Kind::Counter,
                "Total user and system CPU time spent in seconds.",
                stat.cpu_seconds,
            );
            out.single(
                "process_resident_memory_bytes",
                Kind::Gauge,
                "Resident memory size in bytes.",
                stat.resident_bytes as f64,
            );
            out.single(
                "process_virtual_memory_bytes",
                Kind::Gauge,
                "Virtual memory size in bytes.",
                stat.virtual_bytes as f64,
            );
            let boottime = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
            let unix_now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
            out.single(
                "process_start_time_seconds",
                Kind::Gauge,
                "Start time of the process since unix epoch in seconds.",
                start_time_seconds(
                    stat.started_after_boot_seconds,
                    seconds(boottime),
                    seconds(unix_now),
                ),
            );
        }
        Err(error) => tracing::debug!(%error, "process metrics left out"),
    }
    match open_fds() {
        Ok(open) => out.single(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
            open as f64,
        ),
        Err(error) => tracing::debug!(%error, "process_open_fds left out"),
    }
    match read(SELF_LIMITS).and_then(|limits| parse_max_fds(&limits)) {
        Ok(Some(max)) => out.single(
            "process_max_fds",
            Kind::Gauge,
            "Maximum number of open file descriptors.",
            max as f64,
        ),
        Ok(None) => {}
        Err(error) => tracing::debug!(%error, "process_max_fds left out"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_an_awkward_command_name() {
        let self_stat = "4242 (out (p) ost) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                         250 50 0 0 20 0 9 0 123400 104857600 2560 18446744073709551615";
        let parsed = parse_stat(self_stat, 100, 4096).expect("parsed");
        assert_eq!(
            parsed,
            ProcessStat {
                cpu_seconds: 3.0,
                resident_bytes: 2560 * 4096,
                virtual_bytes: 104_857_600,
                started_after_boot_seconds: 1234.0,
            }
        );
        assert!(matches!(
            parse_stat("4242 (x) S 1", 100, 4096),
            Err(ProcessError::Parse { what: "utime", .. })
        ));
        // Started 1,234 s after boot; booted 10,000 s ago.
        assert_eq!(
            start_time_seconds(1234.0, 10_000.0, 1_700_010_000.0),
            1_700_001_234.0
        );
    }

    #[test]
    fn max_open_files_soft_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits).expect("parsed"), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_max_fds(unlimited).expect("parsed"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_measured() {
        let stat = stat().expect("stat");
        assert!(stat.resident_bytes > 0);
        assert!(stat.started_after_boot_seconds > 0.0);
        assert!(open_fds().expect("fds") >= 3);
        let mut out = Exposition::new();
        expose(&mut out);
        let text = out.finish();
        let start: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("process_start_time_seconds "))
            .expect("start time")
            .parse()
            .expect("number");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "{start} vs {now}"
        );
    }
}
