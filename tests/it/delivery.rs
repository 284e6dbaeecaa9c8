//! The delivery path, black-box: publish, fan-out and filters, signed webhook requests (default
//! and Standard Webhooks modes), automatic and manual retries, the event/attempt log queries,
//! and durability of pending work across a graceful restart and a SIGKILL.
//!
//! Every test drives the real binary against a real local HTTP receiver. Waits are bounded and
//! event-driven; the only fixed waits are short windows proving that nothing more arrives.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

use crate::support::client::Auth;
use crate::support::receiver::{FAIL_BODY, OK_BODY};
use crate::support::server::API_KEY;
use crate::support::{
    Api, Behaviour, ProcessServer, ReceivedRequest, Receiver, ServerOptions, TestServer,
};

/// Upper bound for anything that should happen "soon".
const WAIT: Duration = Duration::from_secs(20);
/// Window used to prove that no further request arrives.
const QUIET: Duration = Duration::from_millis(1500);

// ---- helpers ---------------------------------------------------------------------------

fn options_with_retries(schedule: &str) -> ServerOptions {
    ServerOptions::default()
        .env("RETRY_SCHEDULE", schedule)
        .env("DELIVERY_TIMEOUT_SECONDS", "5")
}

async fn create_tenant(api: &Api, id: &str) {
    let r = api.put(&format!("/api/v1/tenants/{id}"), None).await;
    assert!(r.status.is_success(), "create tenant {id}: {}", r.text());
}

/// Creates a webhook destination; `extra` keys (filter, credentials, …) are merged in.
async fn create_webhook(
    api: &Api,
    tenant: &str,
    id: &str,
    url: &str,
    topics: Value,
    extra: Value,
) -> Value {
    let mut body = json!({"id": id, "type": "webhook", "topics": topics, "config": {"url": url}});
    if let Value::Object(extra) = extra {
        body.as_object_mut().unwrap().extend(extra);
    }
    let r = api
        .post(&format!("/api/v1/tenants/{tenant}/destinations"), body)
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "create destination {id}: {}",
        r.text()
    );
    r.json()
}

fn secret_of(destination: &Value) -> String {
    destination["credentials"]["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("destination has no secret: {destination}"))
        .to_string()
}

async fn publish_accepted(api: &Api, body: Value) -> Value {
    let r = api.post("/api/v1/publish", body.clone()).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "publish {body}: {}",
        r.text()
    );
    r.json()
}

fn sorted_strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect();
    out.sort();
    out
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, message).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (exactly; no fraction) into unix seconds.
/// Waits for every due delivery to finish and proves no other is left to come (nothing stays
/// queued, not even a retry), so `count` requests are all the receiver will ever get.
async fn assert_final_count(server: &TestServer, receiver: &Receiver, count: usize) {
    server.settle().await;
    assert_eq!(server.queued_deliveries(), 0, "deliveries still queued");
    assert_eq!(receiver.count(), count);
}

/// An attempt's `time` in unix nanoseconds.
fn attempt_nanos(attempt: &Value) -> i64 {
    let text = attempt["time"].as_str().expect("attempt time");
    let (whole, fraction) = match text.trim_end_matches('Z').split_once('.') {
        Some((whole, fraction)) => (format!("{whole}Z"), fraction.to_string()),
        None => (text.to_string(), String::new()),
    };
    let seconds = parse_rfc3339_seconds(&whole).expect("RFC 3339 time");
    let nanos: i64 = format!("{fraction:0<9}")[..9].parse().expect("fraction");
    seconds * 1_000_000_000 + nanos
}

fn parse_rfc3339_seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

/// GETs `path` (admin) until it answers 200 and `done` holds; panics with the last answer.
async fn poll_until(api: &Api, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = api.get(path).await;
        if r.status == StatusCode::OK {
            let v = r.json();
            if done(&v) {
                return v;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "GET {path}: condition not met within {WAIT:?}; last answer {} {}",
                r.status,
                r.text()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn models(v: &Value) -> Vec<Value> {
    v["models"]
        .as_array()
        .unwrap_or_else(|| panic!("no models: {v}"))
        .clone()
}

/// Waits until `GET /api/v1/attempts?{query}` lists at least `count` attempts; returns them
/// sorted by attempt_number.
async fn wait_for_attempts(api: &Api, query: &str, count: usize) -> Vec<Value> {
    let v = poll_until(api, &format!("/api/v1/attempts?{query}"), |v| {
        v["models"].as_array().is_some_and(|m| m.len() >= count)
    })
    .await;
    let mut attempts = models(&v);
    attempts.sort_by_key(|a| a["attempt_number"].as_u64());
    attempts
}

/// `(attempt_number, status, code, manual)` of each attempt.
fn attempt_summary(attempts: &[Value]) -> Vec<(u64, String, String, bool)> {
    attempts
        .iter()
        .map(|a| {
            (
                a["attempt_number"].as_u64().unwrap_or(0),
                a["status"].as_str().unwrap_or("?").to_string(),
                a["code"].as_str().unwrap_or("").to_string(),
                a["manual"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn attempt(n: u64, status: &str, code: &str, manual: bool) -> (u64, String, String, bool) {
    (n, status.to_string(), code.to_string(), manual)
}

fn ids_of(models: &[Value]) -> Vec<String> {
    models
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect()
}

fn event_ids_at(receiver: &Receiver, path: &str) -> BTreeSet<String> {
    receiver
        .requests_to(path)
        .iter()
        .filter_map(ReceivedRequest::event_id)
        .collect()
}

fn venv_python() -> PathBuf {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-sdk/bin/python");
    assert!(
        python.exists(),
        "{} is missing: create .venv-sdk and install tests/sdk/requirements.txt (scripts/test.sh)",
        python.display()
    );
    python
}

/// Runs tests/sdk/verify_standard.py (the `standardwebhooks` reference library) on a delivery.
fn verify_with_standardwebhooks(secret: &str, request: &ReceivedRequest) -> Result<(), String> {
    let headers = json!({
        "webhook-id": request.header("webhook-id").unwrap_or_default(),
        "webhook-timestamp": request.header("webhook-timestamp").unwrap_or_default(),
        "webhook-signature": request.header("webhook-signature").unwrap_or_default(),
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/verify_standard.py");
    let mut child = Command::new(venv_python())
        .arg(script)
        .arg(secret)
        .arg(headers.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run verify_standard.py");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&request.body)
        .unwrap();
    let output = child.wait_with_output().expect("verify_standard.py output");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !stderr.contains("No module named 'standardwebhooks'"),
        "standardwebhooks is not installed in .venv-sdk: \
         .venv-sdk/bin/pip install -r tests/sdk/requirements.txt"
    );
    if output.status.success() {
        Ok(())
    } else {
        Err(stderr)
    }
}

// ---- signed delivery -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_delivers_signed_webhook_in_default_mode() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(options_with_retries("1,1,1"));
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(
        api,
        "t",
        "d1",
        &receiver.url("/hook"),
        json!(["user.created"]),
        json!({"credentials": {"secret": "whsec_test_secret"},
               "delivery_metadata": {"source": "destination", "team": "core"}}),
    )
    .await;

    // Raw bytes, so that key order, number literals and whitespace are the publisher's.
    let raw = br#"{"id": "evt-1", "tenant_id": "t", "topic": "user.created",
        "metadata": {"source": "event"},
        "data": {"user_id": "u1", "amount": 42, "ratio": 2.50, "html": "<b>&</b>",
                 "nested": {"z": true, "a": [1, 2]}}}"#;
    let before = unix_now();
    let r = api
        .raw(
            Method::POST,
            "/api/v1/publish",
            Some(raw.to_vec()),
            Auth::Admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"id": "evt-1", "duplicate": false, "destination_ids": ["d1"]})
    );

    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, "/hook");
    // Compact JSON as Go re-encodes it: whitespace gone, order and literals kept, <>& escaped.
    assert_eq!(
        request.body_text(),
        r#"{"user_id":"u1","amount":42,"ratio":2.50,"html":"\u003cb\u003e\u0026\u003c/b\u003e","nested":{"z":true,"a":[1,2]}}"#
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(
        request
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("Outpost/")),
        "user-agent {:?}",
        request.header("user-agent")
    );
    assert_eq!(request.header("x-outpost-event-id"), Some("evt-1"));
    assert_eq!(request.header("x-outpost-topic"), Some("user.created"));
    // Event metadata beats delivery_metadata; other delivery_metadata keys pass through.
    assert_eq!(request.header("x-outpost-source"), Some("event"));
    assert_eq!(request.header("x-outpost-team"), Some("core"));
    let timestamp = request.header("x-outpost-timestamp").unwrap_or_default();
    let seconds = parse_rfc3339_seconds(timestamp)
        .unwrap_or_else(|| panic!("x-outpost-timestamp {timestamp:?} is not RFC 3339 seconds"));
    assert!(
        (before - 2..=unix_now() + 2).contains(&seconds),
        "timestamp {timestamp} is not the delivery time"
    );
    let expected = format!(
        "v0={}",
        hex(&hmac_sha256(b"whsec_test_secret", &request.body))
    );
    assert_eq!(request.header("x-outpost-signature"), Some(&*expected));
    assert_final_count(&server, &receiver, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secret_signs_with_current_then_previous() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(options_with_retries("1").manual_clock());
    let api = &server.api;
    create_tenant(api, "t").await;
    let d = create_webhook(api, "t", "d", &receiver.url("/hook"), json!("*"), json!({})).await;
    let first = secret_of(&d);
    assert!(
        first.starts_with("whsec_") && first.len() == 6 + 64,
        "{first}"
    );

    publish_accepted(
        api,
        json!({"id": "before", "tenant_id": "t", "topic": "a", "data": {"n": 1}}),
    )
    .await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    let expected = format!("v0={}", hex(&hmac_sha256(first.as_bytes(), &request.body)));
    assert_eq!(request.header("x-outpost-signature"), Some(&*expected));

    let r = api
        .patch(
            "/api/v1/tenants/t/destinations/d",
            json!({"credentials": {"rotate_secret": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let current = secret_of(&r.json());
    assert_ne!(current, first);

    publish_accepted(
        api,
        json!({"id": "after", "tenant_id": "t", "topic": "a", "data": {"n": 2}}),
    )
    .await;
    let request = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(request.event_id().as_deref(), Some("after"));
    let expected = format!(
        "v0={},{}",
        hex(&hmac_sha256(current.as_bytes(), &request.body)),
        hex(&hmac_sha256(first.as_bytes(), &request.body))
    );
    assert_eq!(request.header("x-outpost-signature"), Some(&*expected));

    // A day after the rotation the previous secret is no longer used.
    server.advance(Duration::from_secs(24 * 3600));
    publish_accepted(
        api,
        json!({"id": "day-later", "tenant_id": "t", "topic": "a", "data": {"n": 3}}),
    )
    .await;
    let request = receiver.wait_for(3, WAIT).await.remove(2);
    assert_eq!(request.event_id().as_deref(), Some("day-later"));
    let expected = format!(
        "v0={}",
        hex(&hmac_sha256(current.as_bytes(), &request.body))
    );
    assert_eq!(request.header("x-outpost-signature"), Some(&*expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_webhooks_mode_signs_verifiably() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server =
        TestServer::start(options_with_retries("1").env("DESTINATIONS_WEBHOOK_MODE", "standard"));
    let api = &server.api;
    create_tenant(api, "t").await;
    let d = create_webhook(
        api,
        "t",
        "std",
        &receiver.url("/std"),
        json!("*"),
        json!({"delivery_metadata": {"team": "core"}}),
    )
    .await;
    let secret = secret_of(&d);
    let key = B64
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap_or_else(|e| panic!("generated secret {secret} is not whsec_<base64>: {e}"));
    assert_eq!(key.len(), 32, "{secret}");

    let before = unix_now();
    publish_accepted(
        api,
        json!({"id": "evt-std-1", "tenant_id": "t", "topic": "user.created",
               "metadata": {"source": "crm"}, "data": {"hello": "world"}}),
    )
    .await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.body_text(), r#"{"hello":"world"}"#);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("webhook-id"), Some("evt-std-1"));
    assert_eq!(request.header("webhook-topic"), Some("user.created"));
    assert_eq!(request.header("webhook-team"), Some("core"));
    assert_eq!(request.header("webhook-source"), Some("crm"));
    // Event metadata is repeated without prefix.
    assert_eq!(request.header("source"), Some("crm"));
    assert_eq!(request.header("x-outpost-signature"), None);
    let timestamp = request.header("webhook-timestamp").unwrap_or_default();
    let seconds: i64 = timestamp
        .parse()
        .unwrap_or_else(|_| panic!("webhook-timestamp {timestamp:?} is not unix seconds"));
    assert!((before - 2..=unix_now() + 2).contains(&seconds));
    let signed = |key: &[u8]| {
        let mut content = format!("evt-std-1.{timestamp}.").into_bytes();
        content.extend_from_slice(&request.body);
        format!("v1,{}", B64.encode(hmac_sha256(key, &content)))
    };
    assert_eq!(request.header("webhook-signature"), Some(&*signed(&key)));
    verify_with_standardwebhooks(&secret, &request)
        .unwrap_or_else(|e| panic!("standardwebhooks rejected the delivery: {e}"));
    let wrong = format!("whsec_{}", B64.encode([7u8; 32]));
    assert!(
        verify_with_standardwebhooks(&wrong, &request).is_err(),
        "the verifier must reject a wrong secret"
    );

    // Rotation: current signature first, then the previous one, space separated.
    let r = api
        .patch(
            "/api/v1/tenants/t/destinations/std",
            json!({"credentials": {"rotate_secret": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let current = secret_of(&r.json());
    assert_ne!(current, secret);
    let current_key = B64.decode(current.strip_prefix("whsec_").unwrap()).unwrap();
    publish_accepted(
        api,
        json!({"id": "evt-std-2", "tenant_id": "t", "topic": "user.created", "data": {"n": 2}}),
    )
    .await;
    let request = receiver.wait_for(2, WAIT).await.remove(1);
    let timestamp = request.header("webhook-timestamp").unwrap_or_default();
    let mut content = format!("evt-std-2.{timestamp}.").into_bytes();
    content.extend_from_slice(&request.body);
    let expected = format!(
        "v1,{} v1,{}",
        B64.encode(hmac_sha256(&current_key, &content)),
        B64.encode(hmac_sha256(&key, &content))
    );
    assert_eq!(request.header("webhook-signature"), Some(&*expected));
    for s in [&current, &secret] {
        verify_with_standardwebhooks(s, &request)
            .unwrap_or_else(|e| panic!("standardwebhooks rejected the rotated delivery: {e}"));
    }
}

// ---- routing ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_follows_destination_topics() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(options_with_retries("1"));
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(
        api,
        "t",
        "all",
        &receiver.url("/all"),
        json!("*"),
        json!({}),
    )
    .await;
    create_webhook(
        api,
        "t",
        "users",
        &receiver.url("/users"),
        json!(["user.created", "user.updated"]),
        json!({}),
    )
    .await;
    create_webhook(
        api,
        "t",
        "orders",
        &receiver.url("/orders"),
        json!(["order.paid"]),
        json!({}),
    )
    .await;

    let r = publish_accepted(
        api,
        json!({"id": "u1", "tenant_id": "t", "topic": "user.created", "data": {}}),
    )
    .await;
    assert_eq!(r["duplicate"], false);
    assert_eq!(
        sorted_strings(&r["destination_ids"]),
        strings(&["all", "users"])
    );
    let r = publish_accepted(
        api,
        json!({"id": "o1", "tenant_id": "t", "topic": "order.paid", "data": {}}),
    )
    .await;
    assert_eq!(
        sorted_strings(&r["destination_ids"]),
        strings(&["all", "orders"])
    );
    let r = publish_accepted(
        api,
        json!({"id": "x1", "tenant_id": "t", "topic": "nobody.cares", "data": {}}),
    )
    .await;
    assert_eq!(sorted_strings(&r["destination_ids"]), strings(&["all"]));
    // No topic at all matches every destination; the id is generated (uuid v7 by default: a
    // canonical UUID whose time-ordered prefix keeps the store's id-keyed tables append-mostly).
    let r = publish_accepted(api, json!({"tenant_id": "t", "data": {"k": "v"}})).await;
    assert_eq!(
        sorted_strings(&r["destination_ids"]),
        strings(&["all", "orders", "users"])
    );
    let generated = r["id"].as_str().expect("generated id").to_string();
    assert!(
        generated.len() == 36 && generated.as_bytes()[14] == b'7',
        "generated id {generated} is not a uuid v7"
    );

    receiver.wait_for(8, WAIT).await;
    assert_final_count(&server, &receiver, 8).await;
    let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        event_ids_at(&receiver, "/all"),
        set(&["u1", "o1", "x1", &generated])
    );
    assert_eq!(event_ids_at(&receiver, "/users"), set(&["u1", &generated]));
    assert_eq!(event_ids_at(&receiver, "/orders"), set(&["o1", &generated]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_route_on_data_metadata_and_topic() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(options_with_retries("1"));
    let api = &server.api;
    create_tenant(api, "t").await;
    let filters = [
        ("big", json!({"data": {"amount": {"$gte": 100}}})),
        (
            "eu",
            json!({"metadata": {"region": {"$in": ["eu-west", "eu-central"]}}}),
        ),
        (
            "vip_or_refund",
            json!({"$or": [{"data": {"customer": {"vip": true}}}, {"topic": "order.refunded"}]}),
        ),
        (
            "tagged",
            json!({"data": {"tags": "urgent", "sku": {"$startsWith": "ABC-"}}}),
        ),
        ("not_test", json!({"data": {"$not": {"env": "test"}}})),
        (
            "no_coupon",
            json!({"data": {"coupon": {"$exist": false}},
                   "topic": {"$in": ["order.created", "order.refunded"]}}),
        ),
    ];
    for (id, filter) in &filters {
        create_webhook(
            api,
            "t",
            id,
            &receiver.url(&format!("/{id}")),
            json!("*"),
            json!({"filter": filter}),
        )
        .await;
    }
    let events = [
        (
            json!({"id": "e1", "tenant_id": "t", "topic": "order.created", "metadata": {"region": "us-east"},
                   "data": {"amount": 150, "customer": {"vip": false}, "tags": ["urgent", "x"], "sku": "ABC-1", "env": "prod"}}),
            vec!["big", "no_coupon", "not_test", "tagged"],
        ),
        (
            json!({"id": "e2", "tenant_id": "t", "topic": "order.refunded", "metadata": {"region": "eu-west"},
                   "data": {"amount": 99.5, "customer": {"vip": false}, "tags": ["x"], "sku": "ABC-2", "env": "test"}}),
            vec!["eu", "no_coupon", "vip_or_refund"],
        ),
        (
            json!({"id": "e3", "tenant_id": "t", "topic": "order.created",
                   "data": {"amount": 100, "customer": {"vip": true}, "tags": "urgent", "sku": "XYZ-1", "coupon": "C10"}}),
            vec!["big", "not_test", "vip_or_refund"],
        ),
        (
            json!({"id": "e4", "tenant_id": "t", "topic": "order.created", "metadata": {"region": "eu-central"},
                   "data": {"amount": "150"}}),
            vec!["eu", "no_coupon", "not_test"],
        ),
        (
            json!({"id": "e5", "tenant_id": "t", "topic": "order.deleted", "metadata": {"region": "apac"},
                   "data": {"amount": 1, "env": "test"}}),
            vec![],
        ),
    ];
    let mut total = 0;
    for (event, expected) in &events {
        let r = publish_accepted(api, event.clone()).await;
        assert_eq!(
            sorted_strings(&r["destination_ids"]),
            strings(expected),
            "destination_ids for {}",
            event["id"]
        );
        total += expected.len();
    }
    receiver.wait_for(total, WAIT).await;
    assert_final_count(&server, &receiver, total).await;
    for (destination, _) in &filters {
        let expected: BTreeSet<String> = events
            .iter()
            .filter(|(_, matched)| matched.contains(destination))
            .map(|(event, _)| event["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            event_ids_at(&receiver, &format!("/{destination}")),
            expected,
            "events delivered to {destination}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_id_targets_one_matching_destination() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(options_with_retries("1"));
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(api, "t", "a", &receiver.url("/a"), json!("*"), json!({})).await;
    create_webhook(
        api,
        "t",
        "b",
        &receiver.url("/b"),
        json!(["user.created"]),
        json!({}),
    )
    .await;
    create_webhook(
        api,
        "t",
        "c",
        &receiver.url("/c"),
        json!(["order.paid"]),
        json!({}),
    )
    .await;

    let r = publish_accepted(api, json!({"id": "to-b", "tenant_id": "t", "destination_id": "b", "topic": "user.created", "data": {}})).await;
    assert_eq!(r["destination_ids"], json!(["b"]));
    // Targeting does not bypass topic matching, nor does it find other tenants' or missing ids.
    let r = publish_accepted(api, json!({"id": "to-c", "tenant_id": "t", "destination_id": "c", "topic": "user.created", "data": {}})).await;
    assert_eq!(r["destination_ids"], json!([]));
    let r = publish_accepted(api, json!({"id": "to-x", "tenant_id": "t", "destination_id": "missing", "topic": "user.created", "data": {}})).await;
    assert_eq!(r["destination_ids"], json!([]));
    let r = publish_accepted(
        api,
        json!({"id": "nobody", "tenant_id": "no-such-tenant", "topic": "user.created", "data": {}}),
    )
    .await;
    assert_eq!(
        r,
        json!({"id": "nobody", "duplicate": false, "destination_ids": []})
    );

    receiver.wait_for(1, WAIT).await;
    assert_final_count(&server, &receiver, 1).await;
    assert_eq!(receiver.requests_to("/b").len(), 1);
    // Events that matched nothing are not logged.
    let r = api.get("/api/v1/events/to-c").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = api.get("/api/v1/events/nobody").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_validation_and_auth() {
    let server =
        TestServer::start(ServerOptions::default().env("TOPICS", "user.created,user.deleted"));
    let api = &server.api;
    let token = api.tenant_with_token("t").await;
    let validation =
        |data: Value| json!({"status": 422, "message": "validation error", "data": data});
    let cases = [
        (
            json!({"tenant_id": "t", "topic": "user.created", "data": [1, 2]}),
            validation(json!(["data must be a valid JSON object"])),
        ),
        (
            json!({"tenant_id": "t", "topic": "user.created", "data": "text"}),
            validation(json!(["data must be a valid JSON object"])),
        ),
        (
            json!({"tenant_id": "t", "topic": "user.created", "data": null}),
            validation(json!(["data must be a valid JSON object"])),
        ),
        (
            json!({"topic": "user.created", "data": {}}),
            validation(json!(["tenant_id is required"])),
        ),
        (
            json!({"tenant_id": "t", "topic": "user.exploded", "data": {}}),
            validation(json!(["topic is invalid"])),
        ),
        (
            json!({"tenant_id": "t", "data": {}}),
            validation(json!(["topic is required"])),
        ),
        (
            json!({"tenant_id": "t", "topic": "user.created", "metadata": {"n": 1}, "data": {}}),
            json!({"status": 422, "message": "invalid JSON"}),
        ),
    ];
    for (body, expected) in cases {
        let r = api.post("/api/v1/publish", body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text()
        );
        assert_eq!(r.json(), expected, "{body}");
    }
    let r = api
        .raw(
            Method::POST,
            "/api/v1/publish",
            Some(b"{not json".to_vec()),
            Auth::Admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json(), json!({"status": 422, "message": "invalid JSON"}));
    // "*" is always a valid publish topic.
    publish_accepted(api, json!({"tenant_id": "t", "topic": "*", "data": {}})).await;

    let body = json!({"tenant_id": "t", "topic": "user.created", "data": {}});
    let r = api
        .as_tenant(&token, Method::POST, "/api/v1/publish", Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.is_empty(), "{}", r.text());
    let r = api
        .raw(
            Method::POST,
            "/api/v1/publish",
            Some(body.to_string().into_bytes()),
            Auth::None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_event_id_is_delivered_once() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(options_with_retries("1"));
    let api = &server.api;
    create_tenant(api, "t").await;
    create_tenant(api, "u").await;
    create_webhook(api, "t", "d", &receiver.url("/t"), json!("*"), json!({})).await;
    create_webhook(api, "u", "e", &receiver.url("/u"), json!("*"), json!({})).await;

    let body = json!({"id": "dup", "tenant_id": "t", "topic": "a", "data": {"n": 1}});
    let first = publish_accepted(api, body.clone()).await;
    assert_eq!(
        first,
        json!({"id": "dup", "duplicate": false, "destination_ids": ["d"]})
    );
    let second = publish_accepted(api, body).await;
    assert_eq!(
        second,
        json!({"id": "dup", "duplicate": true, "destination_ids": ["d"]})
    );
    // The idempotency key is global: the same id for another tenant is a duplicate too.
    let other = publish_accepted(
        api,
        json!({"id": "dup", "tenant_id": "u", "topic": "a", "data": {}}),
    )
    .await;
    assert_eq!(
        other,
        json!({"id": "dup", "duplicate": true, "destination_ids": ["e"]})
    );
    // An id that matched nothing is not remembered.
    let none = publish_accepted(
        api,
        json!({"id": "later", "tenant_id": "nobody", "data": {}}),
    )
    .await;
    assert_eq!(none["duplicate"], false);
    let now = publish_accepted(api, json!({"id": "later", "tenant_id": "t", "data": {}})).await;
    assert_eq!(
        now,
        json!({"id": "later", "duplicate": false, "destination_ids": ["d"]})
    );

    receiver.wait_for(2, WAIT).await;
    assert_final_count(&server, &receiver, 2).await;
    assert_eq!(
        receiver.event_ids().into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from(["dup".to_string(), "later".to_string()])
    );
    assert!(receiver.requests_to("/u").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_and_deleted_destinations_receive_nothing() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(options_with_retries("1"));
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(api, "t", "on", &receiver.url("/on"), json!("*"), json!({})).await;
    create_webhook(
        api,
        "t",
        "off",
        &receiver.url("/off"),
        json!("*"),
        json!({}),
    )
    .await;
    create_webhook(
        api,
        "t",
        "gone",
        &receiver.url("/gone"),
        json!("*"),
        json!({}),
    )
    .await;
    let r = api
        .put("/api/v1/tenants/t/destinations/off/disable", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api.delete("/api/v1/tenants/t/destinations/gone").await;
    assert_eq!(r.status, StatusCode::OK);

    let r = publish_accepted(
        api,
        json!({"id": "e1", "tenant_id": "t", "topic": "a", "data": {}}),
    )
    .await;
    assert_eq!(r["destination_ids"], json!(["on"]));
    let r = publish_accepted(
        api,
        json!({"id": "e2", "tenant_id": "t", "destination_id": "off", "topic": "a", "data": {}}),
    )
    .await;
    assert_eq!(r["destination_ids"], json!([]));

    receiver.wait_for(1, WAIT).await;
    assert_final_count(&server, &receiver, 1).await;
    assert_eq!(receiver.requests_to("/on").len(), 1);

    // Enabled again, it receives new events.
    api.put("/api/v1/tenants/t/destinations/off/enable", None)
        .await;
    let r = publish_accepted(
        api,
        json!({"id": "e3", "tenant_id": "t", "topic": "a", "data": {}}),
    )
    .await;
    assert_eq!(
        sorted_strings(&r["destination_ids"]),
        strings(&["off", "on"])
    );
    receiver.wait_for(3, WAIT).await;
    assert_eq!(
        event_ids_at(&receiver, "/off"),
        BTreeSet::from(["e3".to_string()])
    );
}

// ---- retries ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_until_success() {
    let receiver = Receiver::start(Behaviour::FailFirst {
        count: 2,
        status: 500,
    })
    .await;
    let server = TestServer::start(options_with_retries("1,1,1").manual_clock());
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(api, "t", "d", &receiver.url("/hook"), json!("*"), json!({})).await;
    publish_accepted(
        api,
        json!({"id": "flaky", "tenant_id": "t", "topic": "a", "metadata": {"k": "v"}, "data": {"n": 1}}),
    )
    .await;

    // Each retry becomes due 1 s (RETRY_SCHEDULE) after the failure, by the server's clock.
    server.settle().await;
    assert_eq!(receiver.count(), 1);
    server.advance_and_settle(Duration::from_millis(999)).await;
    assert_eq!(receiver.count(), 1, "retried before RETRY_SCHEDULE's 1 s");
    server.advance_and_settle(Duration::from_millis(1)).await;
    assert_eq!(receiver.count(), 2);
    server.advance_and_settle(Duration::from_secs(1)).await;
    server.run_out_retries(Duration::from_secs(60)).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests
        .iter()
        .all(|r| r.event_id().as_deref() == Some("flaky")));
    assert!(requests.iter().all(|r| r.body_text() == r#"{"n":1}"#));
    assert_eq!(
        requests.iter().map(|r| r.answered).collect::<Vec<_>>(),
        [500, 500, 200]
    );

    let attempts = wait_for_attempts(api, "event_id=flaky", 3).await;
    assert_eq!(
        attempt_summary(&attempts),
        [
            attempt(1, "failed", "500", false),
            attempt(2, "failed", "500", false),
            attempt(3, "success", "200", false)
        ]
    );
    for pair in attempts.windows(2) {
        let gap = attempt_nanos(&pair[1]) - attempt_nanos(&pair[0]);
        assert!(
            gap >= 1_000_000_000,
            "retry came {gap} ns after the failure, before RETRY_SCHEDULE's 1 s"
        );
    }
    for a in &attempts {
        assert_eq!(a["event_id"], "flaky");
        assert_eq!(a["destination_id"], "d");
        assert_eq!(a["tenant_id"], "t");
        assert_eq!(a["destination_type"], "webhook");
        assert!(a["id"].is_string() && a["time"].is_string(), "{a}");
        assert!(a.get("response_data").is_none(), "not included: {a}");
        assert!(a.get("event").is_none(), "not included: {a}");
    }
    // Default order is newest first.
    let listed = models(&api.get("/api/v1/attempts?event_id=flaky").await.json());
    assert_eq!(
        listed
            .iter()
            .map(|a| a["attempt_number"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [3, 2, 1]
    );

    let r = api.get("/api/v1/events/flaky").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let event = r.json();
    assert_eq!(event["id"], "flaky");
    assert_eq!(event["tenant_id"], "t");
    assert_eq!(event["topic"], "a");
    assert_eq!(event["matched_destination_ids"], json!(["d"]));
    assert_eq!(event["eligible_for_retry"], true);
    assert_eq!(event["metadata"], json!({"k": "v"}));
    assert_eq!(event["data"], json!({"n": 1}));
    assert!(event["time"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_when_the_schedule_is_exhausted() {
    let receiver = Receiver::start(Behaviour::Status(500)).await;
    // RETRY_SCHEDULE's length wins over MAX_RETRY_LIMIT.
    let server = TestServer::start(
        options_with_retries("1,1")
            .env("MAX_RETRY_LIMIT", "5")
            .manual_clock(),
    );
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(api, "t", "d", &receiver.url("/hook"), json!("*"), json!({})).await;
    publish_accepted(
        api,
        json!({"id": "doomed", "tenant_id": "t", "topic": "a", "data": {}}),
    )
    .await;

    // Nothing stays queued once the schedule is spent: no fourth request can ever come.
    server.run_out_retries(Duration::from_secs(1)).await;
    assert_eq!(receiver.count(), 3);
    let attempts = wait_for_attempts(api, "event_id=doomed", 3).await;
    assert_eq!(
        attempt_summary(&attempts),
        [
            attempt(1, "failed", "500", false),
            attempt(2, "failed", "500", false),
            attempt(3, "failed", "500", false)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exponential_backoff_respects_max_retry_limit() {
    let receiver = Receiver::start(Behaviour::Status(503)).await;
    let server = TestServer::start(
        ServerOptions::default()
            .env("RETRY_INTERVAL_SECONDS", "1")
            .env("MAX_RETRY_LIMIT", "1")
            .manual_clock(),
    );
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(api, "t", "d", &receiver.url("/hook"), json!("*"), json!({})).await;
    publish_accepted(
        api,
        json!({"id": "backoff", "tenant_id": "t", "topic": "a", "data": {}}),
    )
    .await;

    server.settle().await;
    server.advance_and_settle(Duration::from_millis(999)).await;
    assert_eq!(
        receiver.count(),
        1,
        "retried before RETRY_INTERVAL_SECONDS = 1 s"
    );
    server.advance_and_settle(Duration::from_millis(1)).await;
    assert_eq!(receiver.count(), 2);
    // A third attempt would come 2 s (1 s × 2¹) after the second; MAX_RETRY_LIMIT=1 leaves
    // nothing queued.
    server.run_out_retries(Duration::from_secs(1)).await;
    assert_eq!(receiver.count(), 2);
    let attempts = wait_for_attempts(api, "event_id=backoff", 2).await;
    assert_eq!(
        attempt_summary(&attempts),
        [
            attempt(1, "failed", "503", false),
            attempt(2, "failed", "503", false)
        ]
    );
    let gap = attempt_nanos(&attempts[1]) - attempt_nanos(&attempts[0]);
    assert!(gap >= 1_000_000_000, "first retry after {gap} ns");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_not_eligible_for_retry_is_attempted_once() {
    let receiver = Receiver::start(Behaviour::Status(500)).await;
    let server = TestServer::start(options_with_retries("1,1,1").manual_clock());
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(api, "t", "d", &receiver.url("/hook"), json!("*"), json!({})).await;
    publish_accepted(
        api,
        json!({"id": "once", "tenant_id": "t", "topic": "a", "eligible_for_retry": false, "data": {}}),
    )
    .await;
    server.run_out_retries(Duration::from_secs(1)).await;
    assert_eq!(receiver.count(), 1);
    let attempts = wait_for_attempts(api, "event_id=once", 1).await;
    assert_eq!(
        attempt_summary(&attempts),
        [attempt(1, "failed", "500", false)]
    );
    assert_eq!(
        api.get("/api/v1/events/once").await.json()["eligible_for_retry"],
        false
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_codes_classify_responses_and_network_errors() {
    let receiver = Receiver::start(Behaviour::Status(404)).await;
    let server = TestServer::start(options_with_retries("1").env("DELIVERY_TIMEOUT_SECONDS", "1"));
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(api, "t", "d", &receiver.url("/hook"), json!("*"), json!({})).await;
    let once = |id: &str| json!({"id": id, "tenant_id": "t", "topic": "a", "eligible_for_retry": false, "data": {}});

    publish_accepted(api, once("not-found")).await;
    let a = wait_for_attempts(api, "event_id=not-found&include=response_data", 1).await;
    assert_eq!(attempt_summary(&a), [attempt(1, "failed", "404", false)]);
    assert_eq!(
        a[0]["response_data"],
        json!({"status": 404, "body": FAIL_BODY})
    );

    receiver.set_behaviour(Behaviour::Status(202));
    publish_accepted(api, once("accepted")).await;
    let a = wait_for_attempts(api, "event_id=accepted&include=response_data", 1).await;
    assert_eq!(attempt_summary(&a), [attempt(1, "success", "202", false)]);
    assert_eq!(
        a[0]["response_data"],
        json!({"status": 202, "body": OK_BODY})
    );

    // Slower than DELIVERY_TIMEOUT_SECONDS.
    receiver.set_behaviour(Behaviour::Status(200));
    receiver.set_delay(Duration::from_secs(3));
    publish_accepted(api, once("slow")).await;
    let a = wait_for_attempts(api, "event_id=slow&include=response_data", 1).await;
    assert_eq!(
        attempt_summary(&a),
        [attempt(1, "failed", "timeout", false)]
    );
    assert!(a[0].get("response_data").is_none(), "{}", a[0]);
    receiver.set_delay(Duration::ZERO);

    receiver.stop().await;
    publish_accepted(api, once("refused")).await;
    let a = wait_for_attempts(api, "event_id=refused", 1).await;
    assert_eq!(
        attempt_summary(&a),
        [attempt(1, "failed", "connection_refused", false)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_resumes_when_the_receiver_comes_back() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(options_with_retries("1,1,1,1,1,1").manual_clock());
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(api, "t", "d", &receiver.url("/hook"), json!("*"), json!({})).await;
    receiver.stop().await;
    publish_accepted(
        api,
        json!({"id": "patient", "tenant_id": "t", "topic": "a", "data": {}}),
    )
    .await;
    let attempts = wait_for_attempts(api, "event_id=patient", 1).await;
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[0]["code"], "connection_refused");
    // Two more refused retries while the receiver is down.
    server.advance_and_settle(Duration::from_secs(1)).await;
    server.advance_and_settle(Duration::from_secs(1)).await;

    receiver.restart().await;
    server.advance_and_settle(Duration::from_secs(1)).await;
    let request = receiver.wait_for(1, WAIT).await.remove(0);
    assert_eq!(request.event_id().as_deref(), Some("patient"));
    server.run_out_retries(Duration::from_secs(1)).await;
    let v = poll_until(api, "/api/v1/attempts?event_id=patient", |v| {
        v["models"]
            .as_array()
            .is_some_and(|m| m.iter().any(|a| a["status"] == "success"))
    })
    .await;
    let mut attempts = models(&v);
    attempts.sort_by_key(|a| a["attempt_number"].as_u64());
    let last = attempts.last().unwrap();
    assert_eq!(last["status"], "success");
    assert!(
        attempts[..attempts.len() - 1]
            .iter()
            .all(|a| a["status"] == "failed"),
        "{:?}",
        attempt_summary(&attempts)
    );
    let numbers: Vec<u64> = attempts
        .iter()
        .map(|a| a["attempt_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=attempts.len() as u64).collect::<Vec<_>>());
    assert_eq!(numbers.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_receiver_gets_every_event_through_retries() {
    // 30 % of requests fail, spread evenly: 20 successes take exactly 28 requests.
    let receiver = Receiver::start(Behaviour::FailPercent {
        percent: 30,
        status: 503,
    })
    .await;
    let server = TestServer::start(options_with_retries("1,1,1,1,1").manual_clock());
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(api, "t", "d", &receiver.url("/hook"), json!("*"), json!({})).await;
    let ids: Vec<String> = (0..20).map(|i| format!("flaky-{i}")).collect();
    for id in &ids {
        publish_accepted(
            api,
            json!({"id": id, "tenant_id": "t", "topic": "a", "data": {}}),
        )
        .await;
    }
    server.run_out_retries(Duration::from_secs(1)).await;
    let ok: HashSet<String> = receiver
        .requests()
        .iter()
        .filter(|r| r.answered == 200)
        .filter_map(ReceivedRequest::event_id)
        .collect();
    assert!(
        ids.iter().all(|id| ok.contains(id)),
        "not every event got a 200: {:?}",
        crate::support::receiver::summary(&receiver.requests())
    );
    assert_eq!(receiver.count(), 28);
    let v = poll_until(api, "/api/v1/attempts?tenant_id=t&limit=1000", |v| {
        v["models"].as_array().is_some_and(|m| m.len() >= 28)
    })
    .await;
    let attempts = models(&v);
    assert_eq!(attempts.len(), 28);
    assert_eq!(
        attempts.iter().filter(|a| a["status"] == "failed").count(),
        8
    );
}

// ---- manual retry ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_retry_redelivers_and_reports_errors() {
    let receiver = Receiver::start(Behaviour::Switch).await;
    let server = TestServer::start(options_with_retries("1"));
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(
        api,
        "t",
        "d",
        &receiver.url("/hook"),
        json!(["a"]),
        json!({}),
    )
    .await;
    publish_accepted(
        api,
        json!({"id": "manual", "tenant_id": "t", "topic": "a", "eligible_for_retry": false, "data": {}}),
    )
    .await;
    receiver.wait_for(1, WAIT).await;
    wait_for_attempts(api, "event_id=manual", 1).await;

    receiver.set_switch(true);
    let retry = json!({"event_id": "manual", "destination_id": "d"});
    let r = api.post("/api/v1/retry", retry.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.json(), json!({"success": true}));
    let request = receiver.wait_for(2, WAIT).await.remove(1);
    assert_eq!(request.event_id().as_deref(), Some("manual"));
    let attempts = wait_for_attempts(api, "event_id=manual", 2).await;
    assert_eq!(
        attempt_summary(&attempts),
        [
            attempt(1, "failed", "500", false),
            attempt(2, "success", "200", true)
        ]
    );

    // Any attempt may be retried, even a successful one; a tenant may retry its own events.
    let token = api.tenant_with_token("t").await;
    let r = api
        .as_tenant(&token, Method::POST, "/api/v1/retry", Some(retry.clone()))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    receiver.wait_for(3, WAIT).await;
    let attempts = wait_for_attempts(api, "event_id=manual", 3).await;
    assert_eq!(attempts[2]["attempt_number"], 3);
    assert_eq!(attempts[2]["manual"], true);

    // Errors.
    let other = api.tenant_with_token("other").await;
    let r = api
        .as_tenant(&other, Method::POST, "/api/v1/retry", Some(retry.clone()))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json(),
        json!({"status": 404, "message": "event not found"})
    );
    let r = api
        .post(
            "/api/v1/retry",
            json!({"event_id": "nope", "destination_id": "d"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json(),
        json!({"status": 404, "message": "event not found"})
    );
    let r = api.post("/api/v1/retry", json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"status": 422, "message": "validation error",
               "data": ["event_id is required", "destination_id is required"]})
    );

    let path = "/api/v1/tenants/t/destinations/d";
    api.patch(path, json!({"topics": ["b"]})).await;
    let r = api.post("/api/v1/retry", retry.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json(),
        json!({"status": 400, "message": "destination does not match event"})
    );
    api.patch(path, json!({"topics": ["a"]})).await;
    api.put(&format!("{path}/disable"), None).await;
    let r = api.post("/api/v1/retry", retry.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json(),
        json!({"status": 400, "message": "Destination is disabled",
               "data": {"error": "destination_disabled"}})
    );
    api.delete(path).await;
    let r = api.post("/api/v1/retry", retry).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json(),
        json!({"status": 404, "message": "destination not found"})
    );
    assert_final_count(&server, &receiver, 3).await;
}

// ---- log queries -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_and_attempt_queries_filter_paginate_and_scope() {
    let good = Receiver::start(Behaviour::Status(200)).await;
    let bad = Receiver::start(Behaviour::Status(500)).await;
    let server = TestServer::start(options_with_retries("1"));
    let api = &server.api;
    create_tenant(api, "a").await;
    create_tenant(api, "b").await;
    create_webhook(api, "a", "good", &good.url("/a"), json!("*"), json!({})).await;
    create_webhook(api, "a", "bad", &bad.url("/a"), json!("*"), json!({})).await;
    create_webhook(api, "b", "b-hook", &good.url("/b"), json!("*"), json!({})).await;
    for i in 1..=5 {
        let topic = if i % 2 == 1 {
            "user.created"
        } else {
            "user.updated"
        };
        publish_accepted(
            api,
            json!({"id": format!("e{i}"), "tenant_id": "a", "topic": topic,
                   "time": format!("2024-03-01T10:00:0{i}Z"), "eligible_for_retry": false,
                   "data": {"i": i}}),
        )
        .await;
    }
    publish_accepted(
        api,
        json!({"id": "b1", "tenant_id": "b", "topic": "user.created",
               "time": "2024-03-01T10:00:09Z", "eligible_for_retry": false, "data": {}}),
    )
    .await;
    good.wait_for(6, WAIT).await;
    bad.wait_for(5, WAIT).await;
    wait_for_attempts(api, "", 11).await;

    // Events: tenant scoping, newest first, filters.
    let page = api.get("/api/v1/events?tenant_id=a").await.json();
    assert_eq!(ids_of(&models(&page)), ["e5", "e4", "e3", "e2", "e1"]);
    assert_eq!(page["pagination"]["order_by"], "time");
    assert_eq!(page["pagination"]["dir"], "desc");
    assert_eq!(page["pagination"]["limit"], 100);
    assert_eq!(page["pagination"]["next"], Value::Null);
    assert_eq!(page["pagination"]["prev"], Value::Null);
    let e3 = models(&page)[2].clone();
    assert_eq!(e3["time"], "2024-03-01T10:00:03Z");
    assert_eq!(
        sorted_strings(&e3["matched_destination_ids"]),
        strings(&["bad", "good"])
    );
    assert_eq!(e3["data"], json!({"i": 3}));
    let all = api.get("/api/v1/events").await.json();
    assert_eq!(ids_of(&models(&all)), ["b1", "e5", "e4", "e3", "e2", "e1"]);
    let q = |query: &str| format!("/api/v1/events?tenant_id=a&{query}");
    assert_eq!(
        ids_of(&models(&api.get(&q("topic=user.updated")).await.json())),
        ["e4", "e2"]
    );
    assert_eq!(
        ids_of(&models(
            &api.get(&q("time[gte]=2024-03-01T10:00:03Z")).await.json()
        )),
        ["e5", "e4", "e3"]
    );
    assert_eq!(
        ids_of(&models(
            &api.get(&q("time[lt]=2024-03-01T10:00:02Z")).await.json()
        )),
        ["e1"]
    );
    assert_eq!(
        ids_of(&models(&api.get(&q("time[gte]=2024-03-02")).await.json())),
        Vec::<String>::new()
    );
    assert_eq!(
        ids_of(&models(&api.get(&q("dir=asc")).await.json())),
        ["e1", "e2", "e3", "e4", "e5"]
    );
    assert_eq!(
        ids_of(&models(&api.get(&q("id=e2&id=e4")).await.json())),
        ["e4", "e2"]
    );

    // Keyset pagination forward and back.
    let p1 = api.get(&q("limit=2")).await.json();
    assert_eq!(ids_of(&models(&p1)), ["e5", "e4"]);
    assert_eq!(p1["pagination"]["prev"], Value::Null);
    let next1 = p1["pagination"]["next"].as_str().expect("next").to_string();
    let p2 = api.get(&q(&format!("limit=2&next={next1}"))).await.json();
    assert_eq!(ids_of(&models(&p2)), ["e3", "e2"]);
    let prev2 = p2["pagination"]["prev"].as_str().expect("prev").to_string();
    let next2 = p2["pagination"]["next"].as_str().expect("next").to_string();
    let p3 = api.get(&q(&format!("limit=2&next={next2}"))).await.json();
    assert_eq!(ids_of(&models(&p3)), ["e1"]);
    assert_eq!(p3["pagination"]["next"], Value::Null);
    assert!(p3["pagination"]["prev"].is_string());
    let back = api.get(&q(&format!("limit=2&prev={prev2}"))).await.json();
    assert_eq!(ids_of(&models(&back)), ["e5", "e4"]);
    assert_eq!(back["pagination"]["prev"], Value::Null);
    assert!(back["pagination"]["next"].is_string());
    let r = api.get(&q(&format!("next={next1}&prev={prev2}"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json(),
        json!({"status": 400, "message": "cannot specify both 'next' and 'prev' cursors"})
    );
    let r = api.get(&q("next=garbage")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["message"], "invalid cursor");
    let r = api.get(&q("dir=up")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json()["data"],
        json!({"query.dir": "must be 'asc' or 'desc'"})
    );
    let r = api.get(&q("time[gte]=yesterday")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.json()["data"]["query.time[gte]"].is_string(),
        "{}",
        r.text()
    );

    let r = api.get("/api/v1/events/e2").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["topic"], "user.updated");
    let r = api.get("/api/v1/events/missing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json(),
        json!({"status": 404, "message": "event not found"})
    );

    // Attempts: status filter, includes.
    let failed = models(
        &api.get("/api/v1/attempts?tenant_id=a&status=failed&include=response_data")
            .await
            .json(),
    );
    assert_eq!(failed.len(), 5);
    for a in &failed {
        assert_eq!(a["destination_id"], "bad");
        assert_eq!(a["status"], "failed");
        assert_eq!(a["code"], "500");
        assert_eq!(
            a["response_data"],
            json!({"status": 500, "body": FAIL_BODY})
        );
    }
    let succeeded = models(
        &api.get("/api/v1/attempts?tenant_id=a&status=success&include=event")
            .await
            .json(),
    );
    assert_eq!(succeeded.len(), 5);
    for a in &succeeded {
        assert_eq!(a["destination_id"], "good");
        assert_eq!(a["event"]["id"], a["event_id"]);
        assert_eq!(a["event"]["tenant_id"], "a");
        assert!(a["event"]["topic"].is_string());
        assert!(
            a["event"].get("data").is_none(),
            "include=event omits data: {a}"
        );
        assert!(a.get("response_data").is_none());
    }
    let with_data = models(
        &api.get("/api/v1/attempts?event_id=e3&destination_id=good&include=event.data")
            .await
            .json(),
    );
    assert_eq!(with_data.len(), 1);
    assert_eq!(with_data[0]["event"]["data"], json!({"i": 3}));
    assert_eq!(
        models(
            &api.get("/api/v1/attempts?topic=user.updated&tenant_id=a")
                .await
                .json()
        )
        .len(),
        4
    );

    // Destination-scoped attempts.
    let scoped = models(
        &api.get("/api/v1/tenants/a/destinations/good/attempts")
            .await
            .json(),
    );
    assert_eq!(scoped.len(), 5);
    assert!(scoped.iter().all(|a| a["destination_id"] == "good"));
    let good_attempt = scoped[0]["id"].as_str().unwrap();
    let bad_attempt = failed[0]["id"].as_str().unwrap();
    let r = api
        .get(&format!(
            "/api/v1/tenants/a/destinations/good/attempts/{good_attempt}"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["id"], good_attempt);
    let r = api
        .get(&format!(
            "/api/v1/tenants/a/destinations/good/attempts/{bad_attempt}"
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = api
        .get(&format!("/api/v1/attempts/{bad_attempt}?include=event"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["destination_id"], "bad");
    assert!(r.json()["event"]["id"].is_string());
    let r = api.get("/api/v1/attempts/missing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json(),
        json!({"status": 404, "message": "attempt not found"})
    );

    // Tenant JWTs are forced to their own tenant.
    let token = api.get("/api/v1/tenants/a/token").await.json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let get = |path: &'static str| {
        let token = token.clone();
        async move { api.as_tenant(&token, Method::GET, path, None).await }
    };
    let r = get("/api/v1/events").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(ids_of(&models(&r.json())), ["e5", "e4", "e3", "e2", "e1"]);
    let r = get("/api/v1/events?tenant_id=a").await;
    assert_eq!(models(&r.json()).len(), 5);
    let r = get("/api/v1/attempts").await;
    assert_eq!(models(&r.json()).len(), 10);
    for path in ["/api/v1/events?tenant_id=b", "/api/v1/attempts?tenant_id=b"] {
        let r = get(path).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            r.json(),
            json!({"status": 403, "message": "tenant_id query parameter does not match authenticated tenant"}),
            "{path}"
        );
    }
    let r = get("/api/v1/events/b1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

// ---- durability ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_retry_survives_a_graceful_restart() {
    let receiver = Receiver::start(Behaviour::Switch).await;
    let options = options_with_retries("3,3");
    let mut server = ProcessServer::start(options.clone());
    let api = server.api.clone();
    create_tenant(&api, "t").await;
    create_webhook(
        &api,
        "t",
        "d",
        &receiver.url("/hook"),
        json!("*"),
        json!({}),
    )
    .await;
    publish_accepted(
        &api,
        json!({"id": "survivor", "tenant_id": "t", "topic": "a", "data": {}}),
    )
    .await;
    receiver.wait_for(1, WAIT).await;
    // Make sure the failed attempt is committed before stopping.
    wait_for_attempts(&api, "event_id=survivor", 1).await;

    let status = server.stop();
    assert!(status.success(), "graceful stop exits 0, got {status:?}");
    receiver.set_switch(true);
    server.restart(options);
    let requests = receiver.wait_for(2, WAIT).await;
    assert_eq!(requests[1].event_id().as_deref(), Some("survivor"));
    assert_eq!(requests[1].answered, 200);
    let attempts = wait_for_attempts(&server.api, "event_id=survivor", 2).await;
    assert_eq!(
        attempt_summary(&attempts),
        [
            attempt(1, "failed", "500", false),
            attempt(2, "success", "200", false)
        ]
    );
    receiver.assert_no_more_than(2, QUIET).await;
}

/// Outcome of one publisher task in the crash test.
#[derive(Default)]
struct PublisherOutcome {
    acknowledged: Vec<String>,
    /// Non-202 HTTP answers (the server was alive and refused).
    refused: Vec<(String, u16, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_publishing_loses_no_acknowledged_event() {
    const PUBLISHERS: usize = 4;
    const PER_PUBLISHER: usize = 2000;
    let receiver = Arc::new(Receiver::start(Behaviour::Status(200)).await);
    let options = options_with_retries("1,1,1,1,1").env("DELIVERY_MAX_CONCURRENCY", "4");
    let mut server = ProcessServer::start(options.clone());
    create_tenant(&server.api, "t").await;
    create_webhook(
        &server.api,
        "t",
        "d",
        &receiver.url("/hook"),
        json!("*"),
        json!({}),
    )
    .await;

    let acked = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(tokio::sync::Notify::new());
    let url = server.api.url("/api/v1/publish");
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let (acked, progress, url) = (acked.clone(), progress.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let mut outcome = PublisherOutcome::default();
            for i in 0..PER_PUBLISHER {
                let id = format!("crash-{p}-{i}");
                let body =
                    json!({"id": id, "tenant_id": "t", "topic": "load", "data": {"p": p, "i": i}});
                let request = Request::post(&url)
                    .header("authorization", format!("Bearer {API_KEY}"))
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
                    .unwrap();
                let answer = tokio::time::timeout(Duration::from_secs(10), async {
                    let response = client.request(request).await.map_err(|e| e.to_string())?;
                    let status = response.status().as_u16();
                    let body = response
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?
                        .to_bytes();
                    Ok::<_, String>((status, body))
                })
                .await;
                match answer {
                    Ok(Ok((202, _))) => {
                        outcome.acknowledged.push(id);
                        acked.fetch_add(1, Ordering::SeqCst);
                        progress.notify_waiters();
                    }
                    Ok(Ok((status, body))) => {
                        outcome.refused.push((
                            id,
                            status,
                            String::from_utf8_lossy(&body).into_owned(),
                        ));
                    }
                    // Connection error or hang: the server is gone; this id is not acknowledged.
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            outcome
        }));
    }

    // SIGKILL once about half of all events are acknowledged.
    let half = PUBLISHERS * PER_PUBLISHER / 2;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let notified = progress.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if acked.load(Ordering::SeqCst) >= half {
            break;
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            panic!(
                "only {} of {half} publishes acknowledged within 180 s",
                acked.load(Ordering::SeqCst)
            );
        }
    }
    server.kill();
    let mut acknowledged = HashSet::new();
    let mut refused = Vec::new();
    for task in tasks {
        let outcome = task.await.expect("publisher task");
        acknowledged.extend(outcome.acknowledged);
        refused.extend(outcome.refused);
    }
    let delivered_before_restart = receiver.deliveries_per_event().len();
    server.restart(options);

    let missing = receiver
        .wait_for_event_ids(&acknowledged, Duration::from_secs(60))
        .await;
    let per_event = receiver.deliveries_per_event();
    let delivered_acked = acknowledged
        .iter()
        .filter(|id| per_event.contains_key(*id))
        .count();
    let more_than_once = per_event.values().filter(|n| **n > 1).count();
    let unacknowledged_delivered = per_event
        .keys()
        .filter(|id| !acknowledged.contains(*id))
        .count();
    println!(
        "crash test: acknowledged {}, delivered (unique) {} of them, delivered before restart {}, \
         delivered more than once {}, delivered without acknowledgement {}, refused {}",
        acknowledged.len(),
        delivered_acked,
        delivered_before_restart,
        more_than_once,
        unacknowledged_delivered,
        refused.len()
    );
    assert!(
        refused.is_empty(),
        "the live server refused publishes: {:?}",
        &refused[..refused.len().min(5)]
    );
    let mut sample: Vec<_> = missing.iter().take(10).collect();
    sample.sort();
    assert!(
        missing.is_empty(),
        "{} acknowledged events never reached the receiver, e.g. {sample:?}\nserver log:\n{}",
        missing.len(),
        tail(&server.log_text(), 40)
    );
    // Every delivery carries the event's own data.
    let bodies: BTreeMap<String, String> = receiver
        .requests()
        .iter()
        .filter_map(|r| Some((r.event_id()?, r.body_text())))
        .collect();
    let id = acknowledged.iter().next().expect("some acknowledged");
    let (p, i) = id
        .strip_prefix("crash-")
        .and_then(|s| s.split_once('-'))
        .unwrap();
    let body: Value = serde_json::from_str(&bodies[id]).expect("JSON body");
    assert_eq!(
        body,
        json!({"p": p.parse::<u64>().unwrap(), "i": i.parse::<u64>().unwrap()})
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A burst far larger than the delivery slots, all for one slow destination, with tiny limits:
/// keys wait for the destination's only slot while the global slots are exhausted. Every event
/// must still arrive (this once stalled the dispatcher with keys parked behind an idle slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_for_one_destination_drains_through_tiny_limits() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    receiver.set_delay(Duration::from_millis(2));
    let server = TestServer::start(
        ServerOptions::default()
            .env("DELIVERY_MAX_CONCURRENCY", "2")
            .env("DELIVERY_MAX_CONCURRENCY_PER_DESTINATION", "1"),
    );
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(api, "t", "d", &receiver.url("/hook"), json!("*"), json!({})).await;
    let publishes = (0..300).map(|i| {
        let api = api.clone();
        async move {
            publish_accepted(
                &api,
                json!({"id": format!("burst-{i}"), "tenant_id": "t", "topic": "a", "data": {"i": i}}),
            )
            .await
        }
    });
    futures_join_all(publishes).await;
    let arrived = receiver.wait_for(300, Duration::from_secs(60)).await;
    let unique: std::collections::HashSet<String> =
        arrived.iter().filter_map(|r| r.event_id()).collect();
    assert_eq!(unique.len(), 300);
}

/// Runs futures concurrently on the current runtime and waits for all of them.
async fn futures_join_all<F: std::future::Future + Send + 'static>(futures: impl Iterator<Item = F>)
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    for handle in handles {
        handle.await.expect("task");
    }
}

#[tokio::test]
async fn a_retry_cancelled_while_in_flight_schedules_no_further_retry() {
    let slow = Receiver::start(Behaviour::Status(500)).await;
    let healthy = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(options_with_retries("1,1,1"));
    let api = &server.api;
    create_tenant(api, "t").await;
    create_webhook(api, "t", "d", &slow.url("/hook"), json!(["a"]), json!({})).await;
    publish_accepted(
        api,
        json!({"id": "e", "tenant_id": "t", "topic": "a", "data": {}}),
    )
    .await;
    wait_for_attempts(api, "event_id=e", 1).await;
    // The automatic retry is in flight, held by the receiver, when a manual retry to the
    // destination's new URL succeeds and cancels it.
    slow.set_delay(Duration::from_millis(1500));
    slow.wait_for(2, WAIT).await;
    let r = api
        .patch(
            "/api/v1/tenants/t/destinations/d",
            json!({"config": {"url": healthy.url("/hook")}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api
        .post(
            "/api/v1/retry",
            json!({"event_id": "e", "destination_id": "d"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let attempts = wait_for_attempts(api, "event_id=e", 3).await;
    // The cancelled retry's failure is on record, and that is the end of it: the event was
    // delivered, nothing more is queued.
    assert_eq!(server.queued_deliveries(), 0);
    assert_eq!(
        attempt_summary(&attempts),
        [
            attempt(1, "failed", "500", false),
            attempt(2, "success", "200", true),
            attempt(3, "failed", "500", false),
        ]
    );
    let attempts = wait_for_attempts(api, "event_id=e", 3).await;
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert_eq!(healthy.count(), 1);
}
