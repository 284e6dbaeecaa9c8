//! The systemd watchdog (`WatchdogSec=` in the unit): when systemd asks for keep-alive pings
//! (`$WATCHDOG_USEC`, and `$WATCHDOG_PID` naming this process if set), a task sends
//! `WATCHDOG=1` to `$NOTIFY_SOCKET` every half interval — but only while every worker is
//! healthy (see `liveness.rs`). A stopped or stuck worker stops the pings, and systemd
//! restarts the service once the interval has passed without one.

use std::future::Future;
use std::time::Duration;

use crate::liveness::{Liveness, Report};
use crate::notify;

/// The keep-alive message.
pub const PING: &str = "WATCHDOG=1";

/// Why the watchdog settings systemd passed cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WatchdogError {
    #[error("WATCHDOG_USEC={0:?} is not a positive number of microseconds")]
    Usec(String),
    #[error("WATCHDOG_PID={0:?} is not a process id")]
    Pid(String),
}

/// How often to ping, from the values of `WATCHDOG_USEC` and `WATCHDOG_PID`: half the
/// interval systemd allows, or `None` when it asks for no pings (unset) or asks another
/// process (`WATCHDOG_PID` set to another pid).
pub fn ping_interval(
    usec: Option<&str>,
    pid: Option<&str>,
    own_pid: u32,
) -> Result<Option<Duration>, WatchdogError> {
    let Some(usec) = usec else {
        return Ok(None);
    };
    if let Some(pid) = pid {
        let pid: u32 = pid
            .trim()
            .parse()
            .map_err(|_| WatchdogError::Pid(pid.to_string()))?;
        if pid != own_pid {
            return Ok(None);
        }
    }
    match usec.trim().parse::<u64>() {
        Ok(micros) if micros > 0 => Ok(Some(Duration::from_micros(micros) / 2)),
        _ => Err(WatchdogError::Usec(usec.to_string())),
    }
}

/// [`ping_interval`] from this process's environment.
pub fn interval_from_env() -> Result<Option<Duration>, WatchdogError> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    ping_interval(usec.as_deref(), pid.as_deref(), std::process::id())
}

/// What to send systemd after a health check: the ping while healthy, nothing otherwise.
pub fn message(report: &Report) -> Option<&'static str> {
    report.is_healthy().then_some(PING)
}

/// Checks the workers every `interval` and pings while they are healthy, until `stop`.
pub async fn run(liveness: Liveness, interval: Duration, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                // The report logs which worker failed; here only the ping is left out.
                if let Some(message) = message(&liveness.report()) {
                    notify::notify(message);
                }
            }
            () = &mut stop => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::liveness::WorkerState;

    #[test]
    fn the_interval_is_half_of_what_systemd_allows_and_only_for_this_process() {
        let pid = 4242;
        assert_eq!(ping_interval(None, None, pid), Ok(None));
        assert_eq!(
            ping_interval(Some("30000000"), None, pid),
            Ok(Some(Duration::from_secs(15)))
        );
        assert_eq!(
            ping_interval(Some("30000000"), Some("4242"), pid),
            Ok(Some(Duration::from_secs(15)))
        );
        assert_eq!(ping_interval(Some("30000000"), Some("1"), pid), Ok(None));
        assert_eq!(
            ping_interval(Some("0"), None, pid),
            Err(WatchdogError::Usec("0".into()))
        );
        assert_eq!(
            ping_interval(Some("soon"), None, pid),
            Err(WatchdogError::Usec("soon".into()))
        );
        assert_eq!(
            ping_interval(Some("30000000"), Some("me"), pid),
            Err(WatchdogError::Pid("me".into()))
        );
    }

    #[test]
    fn pings_only_while_every_worker_is_healthy() {
        let healthy = Report {
            workers: vec![
                ("http-server", WorkerState::Healthy),
                ("store-writer", WorkerState::Healthy),
            ],
        };
        assert_eq!(message(&healthy), Some(PING));
        let stopped = Report {
            workers: vec![
                ("http-server", WorkerState::Healthy),
                ("dispatcher", WorkerState::Stopped),
            ],
        };
        assert_eq!(message(&stopped), None);
        let stuck = Report {
            workers: vec![("store-writer", WorkerState::Stuck(Duration::from_secs(31)))],
        };
        assert_eq!(message(&stuck), None);
    }
}
