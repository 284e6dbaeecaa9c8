//! Starts the real binary as a child process and learns its port from the `listening` log line
//! (text or `LOG_FORMAT=json`): for the tests whose subject is the process itself (signals,
//! SIGKILL, exit status, logs).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::Api;
use super::server::{ServerOptions, API_KEY};

pub struct ProcessServer {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    _temp: Option<Arc<tempfile::TempDir>>,
    pub log: Arc<Mutex<Vec<String>>>,
    pub api: Api,
}

/// The address in a `listening` log line: `addr=…` in text, the `addr` field in JSON.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    if line.starts_with('{') {
        let record: serde_json::Value = serde_json::from_str(line).ok()?;
        return record.get("addr")?.as_str()?.parse().ok();
    }
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
}

fn spawn(options: &ServerOptions, data_dir: &Path) -> (Child, SocketAddr, Arc<Mutex<Vec<String>>>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_outpost"));
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_LEVEL", "info")
        .envs(options.settings(data_dir))
        .current_dir(data_dir.parent().unwrap_or(data_dir))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn outpost");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains("listening") {
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(Ok(addr));
                    sent = true;
                }
            }
            sink.lock().unwrap().push(line);
        }
        if !sent {
            let _ = tx.send(Err(sink.lock().unwrap().join("\n")));
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(addr)) => (child, addr, log),
        Ok(Err(output)) => panic!("outpost did not start:\n{output}"),
        Err(_) => {
            let _ = child.kill();
            panic!("outpost did not report its address in time")
        }
    }
}

impl ProcessServer {
    pub fn start(options: ServerOptions) -> ProcessServer {
        let (temp, data_dir) = options.data_dir_or_temp();
        let (child, addr, log) = spawn(&options, &data_dir);
        ProcessServer {
            child: Some(child),
            addr,
            data_dir,
            _temp: temp,
            log,
            api: Api::new(addr, API_KEY),
        }
    }

    /// Starts another server process on the same data directory (after `stop` or `kill`).
    pub fn restart(&mut self, options: ServerOptions) {
        let (child, addr, log) = spawn(&options, &self.data_dir);
        self.child = Some(child);
        self.addr = addr;
        self.log = log;
        self.api = Api::new(addr, API_KEY);
    }

    fn signal(&self, name: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args([format!("-{name}"), child.id().to_string()])
                .status();
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.child.take().expect("running").wait().expect("wait")
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        self.signal("KILL");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits until a log line satisfies `found` (the log is read as the server writes it).
    pub async fn wait_for_log(&self, found: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| found(l)) {
                return line.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no such log line within {timeout:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for ProcessServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `outpost check` on a stopped server's data directory: whether it passed, and what it
/// printed.
pub fn outpost_check(data_dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("check")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir)
        .current_dir(data_dir.parent().unwrap_or(data_dir))
        .output()
        .expect("run outpost check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
