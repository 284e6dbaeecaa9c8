//! Starts outpost in-process through the library (`outpost::server::start`) on an ephemeral
//! port with a temporary data directory, on a runtime of its own so the test's runtime never
//! carries the server. A test may give it a manual clock and move time itself.

// A support API: not every helper is used by every test.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use outpost::clock::{Clock, ClockControl};
use outpost::config::Config;
use outpost::server::{self, ServerHandle};

use super::client::Api;

pub const API_KEY: &str = "test-admin-key";
pub const JWT_SECRET: &str = "test-jwt-secret";

#[derive(Clone, Default)]
pub struct ServerOptions {
    /// Extra environment variables (configuration settings by name).
    pub env: Vec<(String, String)>,
    /// Reuse this data directory instead of a fresh one.
    pub data_dir: Option<PathBuf>,
    /// Run on a manual clock that only [`TestServer::advance`] moves.
    pub manual_clock: bool,
    /// Where the manual clock starts (unix nanoseconds); the real time when unset.
    pub manual_clock_start: Option<i64>,
}

impl ServerOptions {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn manual_clock(mut self) -> Self {
        self.manual_clock = true;
        self
    }

    /// A manual clock that starts at `start_nanos` (unix nanoseconds).
    pub fn manual_clock_at(mut self, start_nanos: i64) -> Self {
        self.manual_clock = true;
        self.manual_clock_start = Some(start_nanos);
        self
    }

    /// The data directory to use: the given one, or `data` inside a fresh temporary directory
    /// (returned too, so it lives as long as the server).
    pub fn data_dir_or_temp(&self) -> (Option<Arc<tempfile::TempDir>>, PathBuf) {
        match &self.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = Arc::new(tempfile::tempdir().expect("tempdir"));
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
        }
    }

    /// The settings a test server runs with: fixed credentials, port 0, the data dir, then
    /// the test's own.
    pub fn settings(&self, data_dir: &std::path::Path) -> Vec<(String, String)> {
        let mut settings = vec![
            ("API_KEY".to_string(), API_KEY.to_string()),
            ("API_JWT_SECRET".to_string(), JWT_SECRET.to_string()),
            ("API_PORT".to_string(), "0".to_string()),
            ("API_HOST".to_string(), "127.0.0.1".to_string()),
            ("DATA_DIR".to_string(), data_dir.display().to_string()),
            // Tests must not depend on how full the host's disk is; the disk budget's own tests
            // set it.
            ("DATA_MIN_FREE_BYTES".to_string(), "0".to_string()),
        ];
        settings.extend(self.env.iter().cloned());
        settings
    }
}

/// How a graceful stop went.
pub struct Stopped {
    clean: bool,
}

impl Stopped {
    pub fn success(&self) -> bool {
        self.clean
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub api: Api,
    _temp: Option<Arc<tempfile::TempDir>>,
    runtime: Option<tokio::runtime::Runtime>,
    handle: Option<ServerHandle>,
    clock: Clock,
    control: Option<ClockControl>,
}

fn config(options: &ServerOptions, data_dir: &std::path::Path) -> Config {
    let settings = options.settings(data_dir);
    Config::from_lookup(&|name| {
        settings
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap_or_else(|e| panic!("test configuration: {e}"))
}

/// Starts a server on its own runtime and waits until it listens.
fn launch(config: Config, clock: Clock) -> (tokio::runtime::Runtime, ServerHandle) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let started = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => server::start(listener, config, clock)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let _ = tx.send(started);
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(handle)) => (runtime, handle),
        Ok(Err(error)) => panic!("outpost did not start: {error}"),
        Err(_) => panic!("outpost did not start in time"),
    }
}

impl TestServer {
    pub fn start(options: ServerOptions) -> TestServer {
        let (temp, data_dir) = options.data_dir_or_temp();
        let (clock, control) = if options.manual_clock {
            let (clock, control) = match options.manual_clock_start {
                Some(start) => Clock::manual(start),
                None => Clock::manual_from_now(),
            };
            (clock, Some(control))
        } else {
            (Clock::system(), None)
        };
        let (runtime, handle) = launch(config(&options, &data_dir), clock.clone());
        let addr = handle.addr();
        TestServer {
            addr,
            data_dir,
            api: Api::new(addr, API_KEY),
            _temp: temp,
            runtime: Some(runtime),
            handle: Some(handle),
            clock,
            control,
        }
    }

    /// The running server's handle (its liveness and the seams that stop or wedge a worker).
    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("running")
    }

    /// Moves the server's manual clock forward.
    pub fn advance(&self, by: Duration) {
        self.control
            .as_ref()
            .expect("advance needs ServerOptions::manual_clock()")
            .advance(by);
    }

    /// The time the server's clock reads, in unix nanoseconds.
    pub fn now_nanos(&self) -> i64 {
        self.clock.now_nanos()
    }

    /// Delivery tasks queued on disk (first attempts and scheduled retries). Zero means no
    /// further delivery can happen until something new is published or retried.
    pub fn queued_deliveries(&self) -> u64 {
        self.handle
            .as_ref()
            .expect("running")
            .queued_deliveries()
            .expect("queue length")
    }

    /// Waits until no delivery is due by the server's clock (every due delivery's outcome is
    /// committed). With a manual clock nothing more happens until the test advances it.
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let due = self
                .handle
                .as_ref()
                .expect("running")
                .due_deliveries()
                .expect("due deliveries");
            if due == 0 {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{due} deliveries still due after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the log retention sweep has deleted everything expired by the server's
    /// clock (except what it keeps for queued deliveries) and sleeps again.
    pub async fn settle_retention(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !self.handle.as_ref().expect("running").log_retention_idle() {
            assert!(
                std::time::Instant::now() < deadline,
                "the retention sweep did not finish in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Moves the manual clock forward and waits for what became due to be delivered.
    pub async fn advance_and_settle(&self, by: Duration) {
        self.advance(by);
        self.settle().await;
    }

    /// Runs the manual clock forward in `step`s until no delivery is queued at all: every
    /// retry has been made or its budget is spent, so no further request can come.
    pub async fn run_out_retries(&self, step: Duration) {
        for _ in 0..1000 {
            self.settle().await;
            if self.queued_deliveries() == 0 {
                return;
            }
            self.advance(step);
        }
        panic!("deliveries still queued after 1000 clock steps");
    }

    /// Shuts the server down as SIGTERM would: stop accepting, drain, let the writer finish.
    pub async fn stop(&mut self) -> Stopped {
        let (Some(runtime), Some(handle)) = (self.runtime.take(), self.handle.take()) else {
            return Stopped { clean: false };
        };
        let clean = runtime.spawn(handle.shutdown()).await.is_ok();
        runtime.shutdown_background();
        Stopped { clean }
    }

    /// Starts again on the same data directory (after `stop`), on the same clock.
    pub fn restart(&mut self, options: ServerOptions) {
        let (runtime, handle) = launch(config(&options, &self.data_dir), self.clock.clone());
        self.addr = handle.addr();
        self.api = Api::new(self.addr, API_KEY);
        self.runtime = Some(runtime);
        self.handle = Some(handle);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.handle.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
