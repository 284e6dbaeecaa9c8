//! What the server tells its operator: the start-up lines at `info` (key source, delivery
//! policy, address and data dir), the shutdown line about in-flight deliveries, one line per
//! request and per delivery attempt at `debug` (with no key, token or query string in it), and
//! `LOG_FORMAT=json`.

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::client::Auth;
use crate::support::server::API_KEY;
use crate::support::{Behaviour, ProcessServer, Receiver, ServerOptions};

const WAIT: Duration = Duration::from_secs(20);

/// A tenant `acme` with one webhook destination `d` for every topic, pointing at `url`.
async fn tenant_with_destination(server: &ProcessServer, url: &str) {
    let api = &server.api;
    assert!(api
        .put("/api/v1/tenants/acme", None)
        .await
        .status
        .is_success());
    let r = api
        .post(
            "/api/v1/tenants/acme/destinations",
            json!({"id": "d", "type": "webhook", "topics": "*", "config": {"url": url}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
}

async fn publish(server: &ProcessServer) -> String {
    let r = server
        .api
        .post(
            "/api/v1/publish",
            json!({"tenant_id": "acme", "topic": "user.created", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn info_says_where_the_key_comes_from_the_policy_and_what_shutdown_waits_for() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let mut server = ProcessServer::start(
        ServerOptions::default()
            .env("RETRY_SCHEDULE", "1,5,10")
            .env("SHUTDOWN_TIMEOUT_SECONDS", "7"),
    );
    let log = server.log_text();
    assert!(log.contains("admin API key: configured (API_KEY)"), "{log}");
    let policy = log
        .lines()
        .find(|l| l.contains("delivery policy"))
        .unwrap_or_else(|| panic!("no delivery policy line:\n{log}"));
    assert!(
        policy.contains("up to 3 retries, after 1, 5, 10 s"),
        "{policy}"
    );
    let listening = server.wait_for_log(|l| l.contains("listening"), WAIT).await;
    assert!(
        listening.contains(&format!("data_dir={}", server.data_dir.display())),
        "{listening}"
    );
    // No request or delivery lines at info.
    tenant_with_destination(&server, &receiver.url("/hook")).await;
    receiver.set_delay(Duration::from_secs(2));
    publish(&server).await;
    receiver.wait_for(1, WAIT).await;
    // The delivery is now in flight (the receiver holds its answer back).
    assert!(server.stop().success());
    let line = server
        .wait_for_log(|l| l.contains("in-flight deliveries"), WAIT)
        .await;
    assert!(
        line.contains("waiting for 1 in-flight deliveries for at most 7 s"),
        "{line}"
    );
    server.wait_for_log(|l| l.contains("stopped"), WAIT).await;
    let log = server.log_text();
    assert!(!log.contains("DEBUG"), "{log}");
    assert!(!log.contains("delivery attempt"), "{log}");
}

#[tokio::test]
async fn debug_logs_each_request_and_attempt_without_secrets() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = ProcessServer::start(ServerOptions::default().env("LOG_LEVEL", "debug"));
    tenant_with_destination(&server, &receiver.url("/hook")).await;
    let token = server.api.tenant_with_token("acme").await;
    let r = server
        .api
        .raw(
            Method::GET,
            "/api/v1/tenants/acme/destinations?token=query-secret-value",
            None,
            Auth::Bearer(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let event = publish(&server).await;
    receiver.wait_for(1, WAIT).await;

    let attempt = server
        .wait_for_log(|l| l.contains("delivery attempt"), WAIT)
        .await;
    for part in [
        &format!("event={event}"),
        "destination=d",
        "destination_type=webhook",
        "code=200",
        "duration_ms=",
    ] {
        assert!(attempt.contains(part), "{part} missing: {attempt}");
    }
    let created = server
        .wait_for_log(
            |l| l.contains("route=/api/v1/tenants/{tenant_id}/destinations ") && l.contains("POST"),
            WAIT,
        )
        .await;
    assert!(created.contains("status=201"), "{created}");
    assert!(created.contains("duration_ms="), "{created}");
    let listed = server
        .wait_for_log(
            |l| l.contains("route=/api/v1/tenants/{tenant_id}/destinations ") && l.contains("GET"),
            WAIT,
        )
        .await;
    assert!(listed.contains("status=200"), "{listed}");
    server
        .wait_for_log(
            |l| l.contains("route=/api/v1/publish") && l.contains("status=202"),
            WAIT,
        )
        .await;
    let r = server.api.get("/api/v1/no/such/path").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    server
        .wait_for_log(
            |l| l.contains("route=(no route)") && l.contains("status=404"),
            WAIT,
        )
        .await;

    let log = server.log_text();
    for secret in [
        API_KEY,
        token.as_str(),
        "query-secret-value",
        "acme/destinations",
    ] {
        assert!(!log.contains(secret), "{secret} appears in the log:\n{log}");
    }
}

#[tokio::test]
async fn json_format_writes_one_object_per_line() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = ProcessServer::start(
        ServerOptions::default()
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "debug"),
    );
    tenant_with_destination(&server, &receiver.url("/hook")).await;
    let event = publish(&server).await;
    receiver.wait_for(1, WAIT).await;
    server
        .wait_for_log(|l| l.contains("delivery attempt"), WAIT)
        .await;
    let records: Vec<Value> = server
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    for record in &records {
        assert!(record["level"].is_string(), "{record}");
        assert!(record["message"].is_string(), "{record}");
    }
    let listening = records
        .iter()
        .find(|r| r["message"] == "listening")
        .expect("a listening record");
    assert_eq!(listening["addr"], server.addr.to_string());
    let attempt = records
        .iter()
        .find(|r| r["message"] == "delivery attempt")
        .expect("a delivery attempt record");
    assert_eq!(attempt["event"], event);
    assert_eq!(attempt["destination"], "d");
    assert_eq!(attempt["code"], "200");
    assert!(attempt["duration_ms"].is_number(), "{attempt}");
}

#[tokio::test]
async fn one_warning_names_the_upstream_settings_outpost_does_not_act_on() {
    // From the environment and from outpost.toml in the working directory.
    let temp = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        temp.path().join("outpost.toml"),
        "postgres_url = \"postgres://db/outpost\"\nportal_logo = \"https://example.com/l.png\"\n",
    )
    .expect("config file");
    let mut server = ProcessServer::start(ServerOptions {
        data_dir: Some(temp.path().join("data")),
        ..ServerOptions::default()
            .env("OTEL_SERVICE_NAME", "outpost-edge")
            .env("REDIS_HOST", "redis")
            .env("CLICKHOUSE_LOG_RETENTION_TTL_DAYS", "7")
    });
    let log = server.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("upstream settings set but unused"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    let warning = warnings[0];
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains("OTEL_SERVICE_NAME, PORTAL_LOGO (not supported yet)"),
        "{warning}"
    );
    assert!(
        warning.contains("POSTGRES_URL, REDIS_HOST are upstream's infrastructure and not needed"),
        "{warning}"
    );
    // A setting outpost acts on (here through its upstream alias) is not named, and no value
    // is printed.
    assert!(
        !warning.contains("CLICKHOUSE_LOG_RETENTION_TTL_DAYS"),
        "{warning}"
    );
    assert!(
        !warning.contains("outpost-edge") && !warning.contains("postgres://"),
        "{warning}"
    );
    let stopped = server.stop();
    assert!(stopped.success(), "{stopped:?}: {}", server.log_text());
}
