//! A full disk, black-box, on a small tmpfs the test mounts (root only; skipped with a line
//! saying why elsewhere), with the free-space guard off so the data file's own writes hit
//! "no space left on device": publishes then answer 503 with upstream's error body naming the
//! full disk, never 202 for an event that is not stored; reads and deliveries of what was
//! stored go on, each delivery made once (an outcome that cannot be written is kept); once space
//! returns the same process accepts publishes again, every accepted event is
//! delivered, no refused one is stored, and `outpost check` passes on the file afterwards. A
//! server started on a disk with no space left serves what it stored and recovers the same way.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::json;

use crate::support::client::Reply;
use crate::support::{Api, Behaviour, ProcessServer, Receiver, ServerOptions, Tmpfs};

const WAIT: Duration = Duration::from_secs(60);

async fn setup_tenant(api: &Api, receiver: &Receiver) {
    let r = api.put("/api/v1/tenants/acme", None).await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = api
        .post(
            "/api/v1/tenants/acme/destinations",
            json!({"id": "hook", "type": "webhook", "topics": ["user.created"],
                   "config": {"url": receiver.url("/hook")}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

async fn publish(api: &Api, id: &str, padding: usize) -> Reply {
    api.post(
        "/api/v1/publish",
        json!({"id": id, "tenant_id": "acme", "topic": "user.created",
               "data": {"n": id, "padding": "x".repeat(padding)}}),
    )
    .await
}

/// Fills the file system holding `dir` with one file until writing fails for want of space.
fn fill(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    for chunk in [1 << 20, 64 << 10, 4 << 10, 512] {
        let block = vec![0x5au8; chunk];
        while file.write_all(&block).is_ok() {}
    }
    let _ = file.sync_all();
    path
}

/// Checks a refusal for want of space: 503, `{status, message}` saying the disk is full, no
/// `data`, and `Retry-After`.
fn assert_disk_full(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    let body = reply.json();
    assert_eq!(body["status"], json!(503), "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(message.starts_with("the disk is full"), "{message}");
    assert!(body.get("data").is_none(), "{body}");
    let retry_after = reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1, "{retry_after}");
}

/// Publishes (2 KB events) until one is refused, which must be for want of space; records the
/// accepted ids and the refused one.
async fn publish_until_refused(
    api: &Api,
    accepted: &mut HashSet<String>,
    refused: &mut Vec<String>,
) {
    for n in 0..20_000 {
        let id = format!("full_{n}");
        let r = publish(api, &id, 2_000).await;
        if r.status == StatusCode::ACCEPTED {
            accepted.insert(id);
        } else {
            assert_disk_full(&r);
            refused.push(id);
            return;
        }
    }
    panic!("publishing never failed on a full disk");
}

/// `outpost check` on a stopped server's data file passes.
fn assert_check_passes(data_dir: &Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["check", "--file"])
        .arg(data_dir.join("outpost.redb"))
        .env_clear()
        .output()
        .expect("run outpost check");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_full_disk_refuses_publishes_keeps_delivering_and_recovers_by_itself() {
    let mount = match Tmpfs::mount("32m") {
        Ok(mount) => mount,
        Err(reason) => {
            eprintln!("skipped: the disk-full test needs root to mount a tmpfs ({reason})");
            return;
        }
    };
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let mut server = ProcessServer::start(ServerOptions {
        data_dir: Some(mount.path().join("data")),
        // The free-space guard is off: the data file's own writes run out of space.
        ..ServerOptions::default()
            .env("DATA_MIN_FREE_BYTES", "0")
            .env("DELIVERY_MAX_CONCURRENCY_PER_DESTINATION", "1")
    });
    setup_tenant(&server.api, &receiver).await;

    // A backlog of stored events, delivered one at a time, slowly.
    receiver.set_delay(Duration::from_millis(100));
    let mut accepted: HashSet<String> = HashSet::new();
    for n in 0..30 {
        let id = format!("before_{n}");
        let r = publish(&server.api, &id, 100).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        accepted.insert(id);
    }

    // The disk fills; publishing goes on until a write finds no space.
    let filler = fill(mount.path());
    let mut refused = Vec::new();
    publish_until_refused(&server.api, &mut accepted, &mut refused).await;
    // While the disk is full, a publish is either stored (a freed page of the file had room)
    // or refused with the same clear answer.
    for n in 0..5 {
        let id = format!("still_{n}");
        let r = publish(&server.api, &id, 2_000).await;
        if r.status == StatusCode::ACCEPTED {
            accepted.insert(id);
        } else {
            assert_disk_full(&r);
            refused.push(id);
        }
    }

    // Deliveries of what was stored go on while the disk is full.
    receiver.set_delay(Duration::ZERO);
    let before: HashSet<String> = accepted
        .iter()
        .filter(|id| id.starts_with("before_"))
        .cloned()
        .collect();
    let missing = receiver.wait_for_event_ids(&before, WAIT).await;
    assert!(
        missing.is_empty(),
        "not delivered on a full disk: {missing:?}"
    );
    // Reads go on (the data file is open again after each failed write).
    let deadline = Instant::now() + WAIT;
    loop {
        let r = server.api.get("/api/v1/events?tenant_id=acme").await;
        if r.status == StatusCode::OK {
            assert!(r.text().contains("before_0"), "{}", r.text());
            break;
        }
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
        assert!(
            Instant::now() < deadline,
            "reads did not resume: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The process is not reported failed (a restart would not free any space); the metrics
    // count the lost write batches.
    let r = server.api.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let metrics = server.api.get("/metrics").await.text();
    let failures = metrics
        .lines()
        .find_map(|l| l.strip_prefix("outpost_writer_storage_failures_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("outpost_writer_storage_failures_total");
    assert!(failures >= 1.0, "{failures}");

    // Space returns: the same process accepts publishes again.
    std::fs::remove_file(&filler).expect("remove filler");
    let deadline = Instant::now() + WAIT;
    let resumed = loop {
        let id = format!("after_{}", accepted.len());
        let r = publish(&server.api, &id, 100).await;
        if r.status == StatusCode::ACCEPTED {
            accepted.insert(id.clone());
            break id;
        }
        assert_disk_full(&r);
        refused.push(id);
        assert!(Instant::now() < deadline, "publishing did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(resumed.starts_with("after_"));

    // Every 202 was stored and is delivered; nothing refused was stored.
    let missing = receiver.wait_for_event_ids(&accepted, WAIT).await;
    assert!(
        missing.is_empty(),
        "accepted but never delivered: {missing:?}"
    );
    for id in &accepted {
        let r = server.api.get(&format!("/api/v1/events/{id}")).await;
        assert_eq!(r.status, StatusCode::OK, "{id}: {}", r.text());
    }
    for id in &refused {
        let r = server.api.get(&format!("/api/v1/events/{id}")).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{id} was refused but stored"
        );
    }
    // Outcomes that could not be written were kept, not delivered again, and are recorded once
    // space returned: one successful attempt per accepted event.
    let per_event = receiver.deliveries_per_event();
    let repeated: Vec<_> = per_event.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "delivered more than once: {repeated:?}"
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let v = server
            .api
            .get("/api/v1/attempts?tenant_id=acme&status=success&limit=1000")
            .await
            .json();
        let recorded = v["models"].as_array().map_or(0, Vec::len);
        if recorded == accepted.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{recorded} attempts recorded for {} accepted events",
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = server.log_text();
    assert!(log.contains("the disk is full"), "{log}");

    assert!(server.stop().success(), "{}", server.log_text());
    assert_check_passes(&server.data_dir);
    drop(mount);
}

#[tokio::test]
async fn the_server_starts_on_a_full_disk_serves_what_it_stored_and_recovers() {
    let mount = match Tmpfs::mount("24m") {
        Ok(mount) => mount,
        Err(reason) => {
            eprintln!("skipped: the disk-full test needs root to mount a tmpfs ({reason})");
            return;
        }
    };
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let options = ServerOptions {
        data_dir: Some(mount.path().join("data")),
        ..ServerOptions::default().env("DATA_MIN_FREE_BYTES", "0")
    };
    let mut server = ProcessServer::start(options.clone());
    setup_tenant(&server.api, &receiver).await;
    let mut accepted = HashSet::new();
    for n in 0..5 {
        let id = format!("stored_{n}");
        let r = publish(&server.api, &id, 100).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
        accepted.insert(id);
    }
    let missing = receiver.wait_for_event_ids(&accepted, WAIT).await;
    assert!(missing.is_empty(), "not delivered: {missing:?}");
    assert!(server.stop().success());

    // Started again on a disk with no space left at all.
    let filler = fill(mount.path());
    server.restart(options);
    let r = server.api.get("/api/v1/events?tenant_id=acme").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("stored_4"), "{}", r.text());
    let mut refused = Vec::new();
    publish_until_refused(&server.api, &mut accepted, &mut refused).await;

    std::fs::remove_file(&filler).expect("remove filler");
    let deadline = Instant::now() + WAIT;
    loop {
        let id = format!("after_{}", refused.len());
        let r = publish(&server.api, &id, 100).await;
        if r.status == StatusCode::ACCEPTED {
            accepted.insert(id);
            break;
        }
        assert_disk_full(&r);
        refused.push(id);
        assert!(Instant::now() < deadline, "publishing did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing = receiver.wait_for_event_ids(&accepted, WAIT).await;
    assert!(
        missing.is_empty(),
        "accepted but never delivered: {missing:?}"
    );
    for id in &refused {
        let r = server.api.get(&format!("/api/v1/events/{id}")).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{id} was refused but stored"
        );
    }
    assert!(server.stop().success(), "{}", server.log_text());
    assert_check_passes(&server.data_dir);
    drop(mount);
}
