//! `GET /healthz` follows the workers: 200 naming each while all run, 503 naming the one that
//! stopped (the dispatcher, the retention sweep) or is stuck (the store writer inside one batch
//! past the stuck threshold), through the server's test seams; and the real binary pings the
//! systemd watchdog while healthy (when not, it stops: `watchdog.rs`'s unit tests).

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::client::Auth;
use crate::support::{Api, ProcessServer, ServerOptions, TestServer};

const WORKERS: [&str; 4] = ["http-server", "store-writer", "dispatcher", "retention"];

async fn health(api: &Api, path: &str) -> (StatusCode, Value) {
    let r = api.raw(Method::GET, path, None, Auth::None).await;
    (r.status, r.json())
}

/// The workers' statuses in a health body.
fn statuses(body: &Value) -> Vec<(String, String)> {
    body["workers"]
        .as_object()
        .expect("workers")
        .iter()
        .map(|(name, worker)| {
            (
                name.clone(),
                worker["status"].as_str().expect("status").into(),
            )
        })
        .collect()
}

/// Every worker healthy except `failed`.
fn expected(failed: Option<&str>) -> Vec<(String, String)> {
    let mut workers: Vec<(String, String)> = WORKERS
        .iter()
        .map(|w| {
            let status = if Some(*w) == failed {
                "failed"
            } else {
                "healthy"
            };
            (w.to_string(), status.to_string())
        })
        .collect();
    workers.sort();
    workers
}

/// Waits (bounded) until `/healthz` answers `status`; a worker's end is noticed as soon as its
/// task is dropped, which an abort does at the task's next turn.
async fn until_health(api: &Api, status: StatusCode) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (got, body) = health(api, "/healthz").await;
        if got == status {
            return body;
        }
        assert!(Instant::now() < deadline, "still {got}: {body}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn assert_failed(api: &Api, worker: &str) {
    let body = until_health(api, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["status"], "failed");
    assert!(body["timestamp"].is_string());
    assert_eq!(statuses(&body), expected(Some(worker)));
    let (status, body) = health(api, "/api/v1/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(statuses(&body), expected(Some(worker)));
    // The metrics say the same.
    let text = api.get("/metrics").await.text();
    assert!(
        text.contains(&format!(
            "outpost_worker_healthy{{worker=\"{worker}\"}} 0\n"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn health_names_every_worker_while_all_run() {
    let server = TestServer::start(ServerOptions::default());
    for path in ["/healthz", "/api/v1/healthz"] {
        let (status, body) = health(&server.api, path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "healthy");
        assert!(body["timestamp"].is_string());
        assert_eq!(statuses(&body), expected(None));
    }
    // With retention off there is no sweep to report.
    let server = TestServer::start(ServerOptions::default().env("LOG_RETENTION_TTL_DAYS", "0"));
    let (status, body) = health(&server.api, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["workers"].get("retention").is_none(), "{body}");
    assert_eq!(body["workers"]["dispatcher"], json!({"status": "healthy"}));
}

#[tokio::test]
async fn health_fails_naming_a_stopped_dispatcher() {
    let server = TestServer::start(ServerOptions::default());
    server.handle().abort_dispatcher();
    assert_failed(&server.api, "dispatcher").await;
}

#[tokio::test]
async fn health_fails_naming_a_stopped_retention_sweep() {
    let server = TestServer::start(ServerOptions::default());
    server.handle().abort_retention();
    assert_failed(&server.api, "retention").await;
}

#[tokio::test]
async fn health_fails_naming_a_stuck_writer_until_its_batch_ends() {
    let server = TestServer::start(ServerOptions::default());
    // Any batch running at all counts as stuck: the stalled one is, at once.
    server.handle().liveness().set_stuck_after(Duration::ZERO);
    let stall = server
        .handle()
        .stall_writer()
        .await
        .expect("stall the writer");
    assert_failed(&server.api, "store-writer").await;
    // Writes wait meanwhile; once the batch ends the writer is healthy again and they go on.
    drop(stall);
    let body = until_health(&server.api, StatusCode::OK).await;
    assert_eq!(statuses(&body), expected(None));
    let r = server.api.put("/api/v1/tenants/after", None).await;
    assert!(r.status.is_success(), "{}", r.text());
}

#[tokio::test]
async fn health_feeds_the_systemd_watchdog_of_the_real_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // systemd's WatchdogSec=200ms: a ping every 100 ms while healthy.
    let _server = ProcessServer::start(
        ServerOptions::default()
            .env("NOTIFY_SOCKET", socket_path.to_str().expect("utf-8 path"))
            .env("WATCHDOG_USEC", "200000"),
    );
    let mut buf = [0u8; 128];
    let mut received = Vec::new();
    while received.iter().filter(|m| *m == "WATCHDOG=1").count() < 2 {
        let n = socket.recv(&mut buf).expect("a notification within 30 s");
        received.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(received[0], "READY=1", "{received:?}");
}
