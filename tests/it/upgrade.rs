//! The in-place upgrade of a schema-1 data file: a file written by the last schema-1 release
//! (`tests/fixtures/schema1`) is opened by this binary, which keeps a copy beside it, moves it
//! to the time-keyed layout and then answers exactly what that release answered, with its
//! queue, pending retry, secrets and idempotency keys intact. A file system that cannot hold
//! the copy makes start-up refuse, leaving the file untouched.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::support::{ServerOptions, TestServer, Tmpfs};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema1")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest JSON")
}

/// A data directory holding a copy of the fixture file.
fn data_dir_with_fixture(root: &Path) -> PathBuf {
    let data_dir = root.join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    std::fs::copy(
        fixture_dir().join("outpost.redb"),
        data_dir.join("outpost.redb"),
    )
    .expect("copy fixture");
    data_dir
}

/// 2026-11-30T20:30:00Z: after the fixture was written, before its pending retry (due an
/// hour after its failure) and while its idempotency keys hold.
const FIXTURE_TIME_NANOS: i64 = 1_796_070_600_000_000_000;

#[tokio::test]
async fn a_schema_1_file_is_upgraded_and_answers_as_before() {
    let manifest = manifest();
    let temp = tempfile::tempdir().expect("tempdir");
    let data_dir = data_dir_with_fixture(temp.path());
    let mut server = TestServer::start(ServerOptions {
        data_dir: Some(data_dir.clone()),
        ..ServerOptions::default()
            .manual_clock_at(FIXTURE_TIME_NANOS)
            .env("LOG_RETENTION_TTL_DAYS", "0")
            .env("RETRY_INTERVAL_SECONDS", "3600")
            .env("MAX_RETRY_LIMIT", "5")
            .env("TOPICS", "user.created,user.deleted,order.paid")
    });

    // The untouched file is kept beside the upgraded one.
    let copy = std::fs::read(data_dir.join("outpost.redb.schema1")).expect("the kept copy");
    let original = std::fs::read(fixture_dir().join("outpost.redb")).expect("fixture");
    assert!(copy == original, "the copy must be the file as it was");

    // Every recorded answer of the writing release, byte for byte. The queued delivery of
    // evt-inflight (globex) was in flight when that server was killed, so it is due at once and
    // adds an attempt to globex's log; the recorded paths are the ones it does not touch.
    server.settle().await;
    let answers = manifest["answers"].as_object().expect("answers");
    for (path, expected) in answers {
        let reply = server.api.get(&format!("/api/v1{path}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
        assert_eq!(
            reply.text(),
            expected.as_str().expect("text"),
            "{path} answers differently after the upgrade"
        );
    }

    // The in-flight delivery was made again (its queue row survived), to a port that is gone.
    let inflight = server
        .api
        .get("/api/v1/attempts?event_id=evt-inflight")
        .await
        .json();
    assert_eq!(inflight["models"].as_array().expect("models").len(), 1);

    // Idempotency keys survive: the same id is still a duplicate.
    let again = server
        .api
        .post(
            "/api/v1/publish",
            json!({"id": "evt-delivered", "tenant_id": "acme", "topic": "user.created",
                   "data": {"name": "Ada", "n": 1}}),
        )
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text());
    assert_eq!(again.json()["duplicate"], json!(true), "{}", again.text());

    // Two deliveries stay queued: evt-failing's pending retry and evt-inflight's first retry.
    assert_eq!(server.queued_deliveries(), 2);
    // The pending retry fires an hour after its failure, with its own number.
    server.advance(Duration::from_secs(3_700));
    server.settle().await;
    let failing = server
        .api
        .get("/api/v1/attempts?event_id=evt-failing")
        .await
        .json();
    let numbers: Vec<i64> = failing["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|a| a["attempt_number"].as_i64().expect("number"))
        .collect();
    assert_eq!(numbers.len(), 2, "{failing}");
    assert!(numbers.contains(&2), "{failing}");

    // A new publish is stored and listed beside the old ones.
    let fresh = server
        .api
        .post(
            "/api/v1/publish",
            json!({"id": "evt-new", "tenant_id": "acme", "topic": "user.created", "data": {}}),
        )
        .await;
    assert_eq!(fresh.status, StatusCode::ACCEPTED, "{}", fresh.text());
    let listed = server.api.get("/api/v1/events?tenant_id=acme").await.json();
    assert_eq!(listed["models"].as_array().expect("models").len(), 4);

    // The metrics, built from the upgraded logs, count what they hold.
    server.settle().await;
    let attempts = server.api.get("/api/v1/attempts?limit=1000").await.json();
    let attempts = attempts["models"].as_array().expect("models").clone();
    let mut with_attempts: Vec<&str> = attempts
        .iter()
        .map(|a| a["event_id"].as_str().expect("event id"))
        .collect();
    with_attempts.sort_unstable();
    with_attempts.dedup();
    let range = "time[start]=1970-01-01T00:00:00Z&time[end]=2100-01-01T00:00:00Z&measures[]=count";
    for (endpoint, expected) in [
        ("attempts", attempts.len()),
        ("events", with_attempts.len()),
    ] {
        let answer = server
            .api
            .get(&format!("/api/v1/metrics/{endpoint}?{range}"))
            .await
            .json();
        assert_eq!(
            answer["data"][0]["metrics"]["count"],
            json!(expected),
            "{endpoint}: {answer}"
        );
    }
    server.stop().await;

    // The upgraded file passes the full consistency check.
    let checked = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["check"])
        .env_clear()
        .env("DATA_DIR", &data_dir)
        .output()
        .expect("run outpost check");
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[tokio::test]
async fn an_upgrade_without_room_for_the_copy_refuses_and_leaves_the_file() {
    let mount = match Tmpfs::mount("2m") {
        Ok(mount) => mount,
        Err(reason) => {
            eprintln!("skipped: the no-room upgrade test needs root to mount a tmpfs ({reason})");
            return;
        }
    };
    let data_dir = data_dir_with_fixture(mount.path());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["serve"])
        .env_clear()
        .env("DATA_DIR", &data_dir)
        .env("API_PORT", "0")
        .env("API_HOST", "127.0.0.1")
        .env("API_KEY", "k")
        .env("API_JWT_SECRET", "j")
        .output()
        .expect("run outpost serve");
    assert!(!output.status.success(), "start-up must refuse");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("outpost.redb.schema1") && stderr.contains("bytes available"),
        "the message must name the copy and the space: {stderr}"
    );
    let now = std::fs::read(data_dir.join("outpost.redb")).expect("file");
    let original = std::fs::read(fixture_dir().join("outpost.redb")).expect("fixture");
    assert!(now == original, "the file must be left as it was");
    assert!(!data_dir.join("outpost.redb.schema1").exists());
}
