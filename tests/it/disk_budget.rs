//! The disk budget, black-box: over `DATA_MAX_BYTES` or under `DATA_MIN_FREE_BYTES` publish
//! answers 503 with upstream's error body and `Retry-After`, while deliveries of what was
//! accepted, reads, deletes and manual retries keep working; publishing resumes by itself once
//! the store is back under budget. The free-space test runs on a small tmpfs it mounts (root
//! only; skipped with a line saying why elsewhere).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::support::client::Reply;
use crate::support::{Api, Behaviour, ProcessServer, Receiver, ServerOptions, TestServer, Tmpfs};

const WAIT: Duration = Duration::from_secs(20);
/// How long the server may take to notice a change on disk (its verdict is cached for 500 ms).
const NOTICE: Duration = Duration::from_secs(10);

async fn setup_tenant(api: &Api, receiver: &Receiver) {
    let r = api.put("/api/v1/tenants/acme", None).await;
    assert!(r.status.is_success(), "{}", r.text());
    for (id, topic) in [("hook", "user.created"), ("spare", "never.published")] {
        let r = api
            .post(
                "/api/v1/tenants/acme/destinations",
                json!({"id": id, "type": "webhook", "topics": [topic],
                       "config": {"url": receiver.url(&format!("/{id}"))}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }
}

async fn publish(api: &Api, id: &str, padding: usize) -> Reply {
    api.post(
        "/api/v1/publish",
        json!({"id": id, "tenant_id": "acme", "topic": "user.created",
               "data": {"n": id, "padding": "x".repeat(padding)}}),
    )
    .await
}

/// Checks a refusal: 503, `{status, message}` naming `setting`, no `data`, `Retry-After`.
fn assert_refused(reply: &Reply, setting: &str) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    let body = reply.json();
    assert_eq!(body["status"], json!(503), "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains(setting), "{message}");
    assert!(message.contains(" bytes"), "names the figures: {message}");
    assert!(body.get("data").is_none(), "{body}");
    let retry_after = reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1, "{retry_after}");
}

/// Everything but publishing still answers while publishing is refused.
async fn assert_rest_works(api: &Api, accepted: &str, refused: &str) {
    let r = api.get("/api/v1/events?tenant_id=acme").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api.get(&format!("/api/v1/events/{accepted}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api.get(&format!("/api/v1/events/{refused}")).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "a refused event is not stored"
    );
    let r = api.get("/api/v1/tenants/acme/destinations").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api.get("/api/v1/attempts?tenant_id=acme").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api.delete("/api/v1/tenants/acme/destinations/spare").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // A manual retry writes one small queue row: it is not limited.
    let r = api
        .post(
            "/api/v1/retry",
            json!({"event_id": accepted, "destination_id": "hook"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
}

#[tokio::test]
async fn over_data_max_bytes_publish_answers_503_and_the_rest_goes_on() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let base = ServerOptions::default()
        .env("DATA_MIN_FREE_BYTES", "0")
        .manual_clock();
    let mut server = TestServer::start(base.clone());
    let store_file = server.data_dir.join("outpost.redb");
    setup_tenant(&server.api, &receiver).await;
    let fresh = std::fs::metadata(&store_file).expect("store file").len();
    server.stop().await;
    let limit = fresh + 512 * 1024;
    server.restart(base.clone().env("DATA_MAX_BYTES", &limit.to_string()));

    // Publish until refused; the clock moves past the verdict's refresh window each time.
    let mut accepted = HashSet::new();
    let mut refusal = None;
    for n in 0..5_000 {
        let id = format!("evt_{n}");
        let r = publish(&server.api, &id, 4_000).await;
        if r.status == StatusCode::ACCEPTED {
            accepted.insert(id);
            server.advance(Duration::from_millis(500));
        } else {
            refusal = Some((id, r));
            break;
        }
    }
    let (refused_id, reply) = refusal.expect("publishing was never refused");
    assert_refused(&reply, "DATA_MAX_BYTES");
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&limit.to_string()),
        "{}",
        reply.text()
    );
    assert!(!accepted.is_empty(), "the limit left room for some events");
    assert!(std::fs::metadata(&store_file).unwrap().len() > limit);
    // Still refused on the next attempt; an invalid request still gets its own answer.
    assert_refused(&publish(&server.api, "again", 10).await, "DATA_MAX_BYTES");
    let r = server
        .api
        .post("/api/v1/publish", json!({"tenant_id": "acme"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());

    let first = accepted.iter().next().cloned().expect("one accepted");
    assert_rest_works(&server.api, &first, &refused_id).await;
    let missing = receiver.wait_for_event_ids(&accepted, WAIT).await;
    assert!(missing.is_empty(), "not delivered: {missing:?}");

    // A larger limit lets publishing go on.
    server.stop().await;
    server.restart(base.env("DATA_MAX_BYTES", &(limit * 1_000).to_string()));
    let r = publish(&server.api, &refused_id, 10).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
}

fn free_bytes(path: &Path) -> u64 {
    let stats = rustix::fs::statvfs(path).expect("statvfs");
    stats.f_bavail * stats.f_frsize
}

/// Publishes until the answer has `status`, for at most [`NOTICE`].
async fn publish_until(api: &Api, status: StatusCode, prefix: &str) -> (String, Reply) {
    let deadline = Instant::now() + NOTICE;
    for n in 0.. {
        let id = format!("{prefix}_{n}");
        let r = publish(api, &id, 10).await;
        if r.status == status {
            return (id, r);
        }
        assert!(
            Instant::now() < deadline,
            "publish still answers {} after {NOTICE:?}: {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn under_data_min_free_bytes_publish_answers_503_and_resumes_by_itself() {
    let mount = match Tmpfs::mount("40m") {
        Ok(mount) => mount,
        Err(reason) => {
            eprintln!("skipped: the free-space test needs root to mount a tmpfs ({reason})");
            return;
        }
    };
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let data_dir: PathBuf = mount.path().join("data");
    let min_free: u64 = 16 << 20;
    let mut server = TestServer::start(ServerOptions {
        data_dir: Some(data_dir),
        ..ServerOptions::default().env("DATA_MIN_FREE_BYTES", &min_free.to_string())
    });
    setup_tenant(&server.api, &receiver).await;
    let r = publish(&server.api, "before", 10).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());

    // Fill the file system until less than DATA_MIN_FREE_BYTES is free.
    let filler = mount.path().join("filler");
    let fill = free_bytes(mount.path()) - min_free + (4 << 20);
    std::fs::write(&filler, vec![0u8; fill as usize]).expect("filler");
    assert!(free_bytes(mount.path()) < min_free);
    let (refused_id, reply) =
        publish_until(&server.api, StatusCode::SERVICE_UNAVAILABLE, "full").await;
    assert_refused(&reply, "DATA_MIN_FREE_BYTES");
    assert_rest_works(&server.api, "before", &refused_id).await;
    let missing = receiver
        .wait_for_event_ids(&HashSet::from(["before".to_string()]), WAIT)
        .await;
    assert!(missing.is_empty(), "not delivered while refusing");

    // Space comes back: publishing resumes without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    let (resumed, _) = publish_until(&server.api, StatusCode::ACCEPTED, "after").await;
    let missing = receiver
        .wait_for_event_ids(&HashSet::from([resumed]), WAIT)
        .await;
    assert!(missing.is_empty(), "not delivered after resuming");
    let events: Value = server.api.get("/api/v1/events?tenant_id=acme").await.json();
    assert!(events.to_string().contains("before"), "{events}");
    assert!(server.stop().await.success());
    drop(mount);
}

#[tokio::test]
async fn the_log_says_the_budget_at_start_and_when_publishing_pauses() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = ProcessServer::start(
        ServerOptions::default()
            .env("DATA_MAX_BYTES", "1")
            .env("DATA_MIN_FREE_BYTES", "0"),
    );
    let line = server
        .wait_for_log(|l| l.contains("disk budget"), WAIT)
        .await;
    assert!(
        line.contains("the store file exceeds 1 bytes (DATA_MAX_BYTES)"),
        "{line}"
    );
    setup_tenant(&server.api, &receiver).await;
    assert_refused(&publish(&server.api, "one", 10).await, "DATA_MAX_BYTES");
    let line = server
        .wait_for_log(|l| l.contains("publishing is paused"), WAIT)
        .await;
    assert!(
        line.contains("WARN") && line.contains("DATA_MAX_BYTES=1"),
        "{line}"
    );
}
