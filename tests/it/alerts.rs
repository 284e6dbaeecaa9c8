//! Alerts, auto-disable and operator events, end to end: a real server delivers to a real
//! receiver that fails, and a second receiver plays the operator's HTTP sink. Every signature
//! the sink receives is verified here with HMAC-SHA256 computed independently.

use std::time::Duration;

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::support::receiver::{Behaviour, ReceivedRequest, Receiver};
use crate::support::{ProcessServer, ServerOptions, TestServer};

const SIGNING_SECRET: &str = "operator-signing-secret";
const WAIT: Duration = Duration::from_secs(30);

/// `v0=<hex HMAC-SHA256(secret, body)>`, computed here rather than by the server's code.
fn expected_signature(body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SIGNING_SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

/// The sink's requests as JSON bodies, each checked for its content type and signature.
fn verified(requests: &[ReceivedRequest]) -> Vec<Value> {
    requests
        .iter()
        .map(|request| {
            assert_eq!(request.method, hyper::Method::POST);
            assert_eq!(request.header("content-type"), Some("application/json"));
            assert_eq!(
                request.header("x-outpost-signature"),
                Some(expected_signature(&request.body).as_str()),
                "signature of {}",
                request.body_text()
            );
            serde_json::from_slice(&request.body).expect("a JSON envelope")
        })
        .collect()
}

fn topics(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["topic"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn with_sink(options: ServerOptions, sink: &Receiver, topics: &str) -> ServerOptions {
    options
        .env("OPERATOR_EVENTS_TOPICS", topics)
        .env("OPERATOR_EVENTS_HTTP_URL", &sink.url("/operator"))
        .env("OPERATOR_EVENTS_HTTP_SIGNING_SECRET", SIGNING_SECRET)
}

async fn tenant_with_destination(api: &crate::support::client::Api, receiver: &Receiver) {
    assert_eq!(
        api.put("/api/v1/tenants/t1", None).await.status,
        StatusCode::CREATED
    );
    let created = api
        .post(
            "/api/v1/tenants/t1/destinations",
            json!({"id": "d1", "type": "webhook", "topics": ["*"],
                   "config": {"url": receiver.url("/hook")}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
}

async fn publish(api: &crate::support::client::Api, id: &str) {
    let r = api
        .post(
            "/api/v1/publish",
            json!({"id": id, "tenant_id": "t1", "topic": "user.created", "data": {"n": id}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
}

/// The `consecutive_failures` objects of the alerts among `events`, in order.
fn streaks(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["topic"] == "alert.destination.consecutive_failure")
        .map(|e| e["data"]["consecutive_failures"].clone())
        .collect()
}

#[tokio::test]
async fn a_destination_that_always_fails_is_disabled_at_the_threshold_and_the_sink_hears_every_alert_in_order(
) {
    let receiver = Receiver::start(Behaviour::Status(500)).await;
    let sink = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(
        with_sink(ServerOptions::default().manual_clock(), &sink, "*")
            .env("DEPLOYMENT_ID", "edge-7")
            .env("ALERT_CONSECUTIVE_FAILURE_COUNT", "4")
            .env("ALERT_AUTO_DISABLE_DESTINATION", "true")
            .env("MAX_RETRY_LIMIT", "0"),
    );
    tenant_with_destination(&server.api, &receiver).await;
    for n in 1..=4 {
        publish(&server.api, &format!("e{n}")).await;
        server.settle().await;
    }
    // Threshold 4: 50 % at 2 failures, 70 % at ceil(2.8) = 3, 100 % at 4 (90 % is 4 too).
    let expected = [
        "tenant.subscription.updated",
        "attempt.failed",
        "alert.destination.consecutive_failure",
        "attempt.failed",
        "alert.destination.consecutive_failure",
        "attempt.failed",
        "alert.destination.disabled",
        "alert.destination.consecutive_failure",
        "attempt.failed",
    ];
    let events = verified(&sink.wait_for(expected.len(), WAIT).await);
    assert_eq!(topics(&events), expected);
    assert_eq!(
        streaks(&events),
        [
            json!({"current": 2, "max": 4, "threshold": 50}),
            json!({"current": 3, "max": 4, "threshold": 70}),
            json!({"current": 4, "max": 4, "threshold": 100}),
        ]
    );
    for event in &events {
        assert_eq!(event["deployment_id"], "edge-7");
        assert_eq!(event["tenant_id"], "t1");
        assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(event["time"].as_str().is_some());
    }
    let subscription = &events[0]["data"];
    assert_eq!(
        *subscription,
        json!({"tenant_id": "t1", "topics": ["*"], "previous_topics": [],
               "destinations_count": 1, "previous_destinations_count": 0})
    );
    // The disabling attempt's payloads carry the destination's new state.
    let shown = server
        .api
        .get("/api/v1/tenants/t1/destinations/d1")
        .await
        .json();
    let disabled_at = shown["disabled_at"].as_str().expect("disabled").to_string();
    let disabled = &events[6]["data"];
    assert_eq!(disabled["reason"], "consecutive_failure");
    assert_eq!(disabled["disabled_at"], disabled_at.as_str());
    assert_eq!(disabled["destination"]["disabled_at"], disabled_at.as_str());
    assert_eq!(disabled["event"]["id"], "e4");
    assert_eq!(disabled["attempt"]["status"], "failed");
    assert!(disabled["destination"].get("credentials").is_none());
    assert_eq!(
        events[8]["data"]["destination"]["disabled_at"],
        disabled_at.as_str()
    );
    let first_failure = &events[1]["data"];
    assert_eq!(first_failure["event"]["data"], json!({"n": "e1"}));
    assert_eq!(first_failure["event"]["destination_id"], "d1");
    assert_eq!(first_failure["attempt"]["attempt_number"], 1);
    assert_eq!(first_failure["attempt"]["code"], "500");
    // A disabled destination gets nothing more.
    publish(&server.api, "e5").await;
    server.settle().await;
    assert_eq!(receiver.count(), 4);
    // The Prometheus counters saw the same.
    let metrics = server.api.get("/metrics").await.text();
    for (line, value) in [
        (r#"outpost_alerts_total{type="consecutive_failure"}"#, "3"),
        (r#"outpost_alerts_total{type="exhausted_retries"}"#, "0"),
        ("outpost_destinations_auto_disabled_total", "1"),
    ] {
        assert!(
            metrics.lines().any(|l| l == format!("{line} {value}")),
            "{line} {value} in {metrics}"
        );
    }
}

#[tokio::test]
async fn a_success_ends_the_streak() {
    let receiver = Receiver::start(Behaviour::Switch).await;
    let sink = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(
        with_sink(
            ServerOptions::default().manual_clock(),
            &sink,
            "alert.destination.consecutive_failure,alert.destination.disabled",
        )
        .env("ALERT_CONSECUTIVE_FAILURE_COUNT", "4")
        .env("ALERT_AUTO_DISABLE_DESTINATION", "true")
        .env("MAX_RETRY_LIMIT", "0"),
    );
    tenant_with_destination(&server.api, &receiver).await;
    // Three failures, one success, three failures: one event each, in turn.
    for (n, succeeds) in [false, false, false, true, false, false, false]
        .into_iter()
        .enumerate()
    {
        receiver.set_switch(succeeds);
        publish(&server.api, &format!("e{n}")).await;
        server.settle().await;
    }
    let events = verified(&sink.wait_for(4, WAIT).await);
    assert_eq!(
        streaks(&events),
        [
            json!({"current": 2, "max": 4, "threshold": 50}),
            json!({"current": 3, "max": 4, "threshold": 70}),
            json!({"current": 2, "max": 4, "threshold": 50}),
            json!({"current": 3, "max": 4, "threshold": 70}),
        ]
    );
    sink.assert_no_more_than(4, Duration::from_millis(300))
        .await;
    let shown = server
        .api
        .get("/api/v1/tenants/t1/destinations/d1")
        .await
        .json();
    assert_eq!(
        shown["disabled_at"],
        Value::Null,
        "3 failures in a row since the success"
    );
}

#[tokio::test]
async fn sigkill_between_two_failures_loses_and_doubles_no_count() {
    let receiver = Receiver::start(Behaviour::Status(500)).await;
    let sink = Receiver::start(Behaviour::Status(200)).await;
    let options = with_sink(
        ServerOptions::default(),
        &sink,
        "alert.destination.consecutive_failure,alert.destination.disabled,attempt.failed",
    )
    .env("ALERT_CONSECUTIVE_FAILURE_COUNT", "4")
    .env("ALERT_AUTO_DISABLE_DESTINATION", "true")
    .env("MAX_RETRY_LIMIT", "0");
    let mut server = ProcessServer::start(options.clone());
    tenant_with_destination(&server.api, &receiver).await;
    for (n, id) in ["e1", "e2"].iter().enumerate() {
        publish(&server.api, id).await;
        receiver.wait_for(n + 1, WAIT).await;
    }
    // The second failure's commit raised the 50 % alert; wait for it, then kill.
    sink.wait_until(WAIT, |r| {
        r.iter()
            .any(|r| r.body_text().contains("consecutive_failure"))
    })
    .await;
    server.kill();
    server.restart(options);
    for (n, id) in ["e3", "e4"].iter().enumerate() {
        publish(&server.api, id).await;
        receiver.wait_for(n + 3, WAIT).await;
    }
    // The last event the 4th failure causes is its attempt.failed.
    let ok = sink
        .wait_until(WAIT, |r| {
            r.iter().any(|r| {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                body["topic"] == "attempt.failed" && body["data"]["event"]["id"] == "e4"
            })
        })
        .await;
    assert!(ok, "the sink hears of the 4th failure");
    // The sender sends in commit order, so any resend of what the kill interrupted arrived
    // before the events of the 4th failure; duplicates (at-least-once) are dropped by id.
    let events = verified(&sink.requests());
    let mut seen_ids = std::collections::BTreeSet::new();
    let unique: Vec<Value> = events
        .into_iter()
        .filter(|e| seen_ids.insert(e["id"].as_str().unwrap_or_default().to_string()))
        .collect();
    assert_eq!(
        streaks(&unique),
        [
            json!({"current": 2, "max": 4, "threshold": 50}),
            json!({"current": 3, "max": 4, "threshold": 70}),
            json!({"current": 4, "max": 4, "threshold": 100}),
        ],
        "the count went on from 2 after the kill: nothing lost, nothing doubled"
    );
    let failed: Vec<&Value> = unique
        .iter()
        .filter(|e| e["topic"] == "attempt.failed")
        .collect();
    let mut attempts: Vec<&str> = failed
        .iter()
        .map(|e| e["data"]["attempt"]["id"].as_str().unwrap_or_default())
        .collect();
    attempts.sort_unstable();
    attempts.dedup();
    assert_eq!(attempts.len(), 4, "one attempt.failed per attempt");
    let shown = server
        .api
        .get("/api/v1/tenants/t1/destinations/d1")
        .await
        .json();
    assert!(shown["disabled_at"].is_string());
}

#[tokio::test]
async fn the_exhausted_retries_alert_is_suppressed_for_its_window_per_destination() {
    let receiver = Receiver::start(Behaviour::Status(500)).await;
    let sink = Receiver::start(Behaviour::Status(200)).await;
    // The upstream spelling of the settings, accepted as the same settings.
    let server = TestServer::start(
        ServerOptions::default()
            .manual_clock()
            .env("OPERATION_EVENTS_TOPICS", "alert.attempt.exhausted_retries")
            .env("OPERATION_EVENTS_HTTP_URL", &sink.url("/operator"))
            .env("OPERATION_EVENTS_HTTP_SIGNING_SECRET", SIGNING_SECRET)
            .env("ALERT_CONSECUTIVE_FAILURE_COUNT", "")
            .env("ALERT_EXHAUSTED_RETRIES_WINDOW_SECONDS", "3600")
            .env("MAX_RETRY_LIMIT", "1")
            .env("RETRY_INTERVAL_SECONDS", "1"),
    );
    tenant_with_destination(&server.api, &receiver).await;
    // Each event: attempt 1 fails, the retry 1 s later fails too and exhausts the budget.
    let exhaust = |id: &'static str| {
        let server = &server;
        async move {
            publish(&server.api, id).await;
            server.settle().await;
            server.advance_and_settle(Duration::from_secs(1)).await;
        }
    };
    exhaust("e1").await;
    exhaust("e2").await; // inside the window: suppressed
    server.advance(Duration::from_secs(3600));
    exhaust("e3").await; // the window is over
    assert_eq!(receiver.count(), 6);
    let events = verified(&sink.wait_for(2, WAIT).await);
    sink.assert_no_more_than(2, Duration::from_millis(300))
        .await;
    let alerted: Vec<&Value> = events.iter().map(|e| &e["data"]["event"]["id"]).collect();
    assert_eq!(alerted, [&json!("e1"), &json!("e3")]);
    assert_eq!(events[0]["topic"], "alert.attempt.exhausted_retries");
    assert_eq!(events[0]["data"]["attempt"]["attempt_number"], 2);
}

#[tokio::test]
async fn operator_events_wait_in_the_store_for_a_sink_that_is_down_and_arrive_after_a_restart() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let sink = Receiver::start(Behaviour::Status(503)).await;
    let options = with_sink(ServerOptions::default(), &sink, "attempt.success");
    let mut server = TestServer::start(options.clone());
    tenant_with_destination(&server.api, &receiver).await;
    publish(&server.api, "e1").await;
    receiver.wait_for(1, WAIT).await;
    // Three tries, each refused.
    sink.wait_for(3, WAIT).await;
    assert!(server.stop().await.success());
    sink.set_behaviour(Behaviour::Status(200));
    let refused = sink.count();
    server.restart(options);
    let requests = sink.wait_for(refused + 1, WAIT).await;
    let delivered = verified(&requests[refused..]);
    assert_eq!(delivered[0]["topic"], "attempt.success");
    assert_eq!(delivered[0]["data"]["event"]["id"], "e1");
    assert_eq!(delivered[0]["data"]["attempt"]["status"], "success");
    assert_eq!(
        requests[0].body, requests[refused].body,
        "the same event, kept as made"
    );
}

#[tokio::test]
async fn an_attempt_that_ends_after_its_destination_is_deleted_leaves_no_alert_state() {
    let receiver = Receiver::start(Behaviour::Status(500)).await;
    let mut server = TestServer::start(
        ServerOptions::default()
            .env("ALERT_CONSECUTIVE_FAILURE_COUNT", "2")
            .env("ALERT_AUTO_DISABLE_DESTINATION", "true")
            .env("MAX_RETRY_LIMIT", "0"),
    );
    tenant_with_destination(&server.api, &receiver).await;
    // The delivery is in flight (the receiver holds its answer) when the destination goes.
    receiver.set_delay(Duration::from_millis(500));
    publish(&server.api, "e0").await;
    receiver.wait_for(1, WAIT).await;
    let deleted = server
        .api
        .delete("/api/v1/tenants/t1/destinations/d1")
        .await;
    assert!(deleted.status.is_success(), "{}", deleted.text());
    server.settle().await;
    let attempts = server.api.get("/api/v1/attempts?event_id=e0").await.json();
    assert_eq!(attempts["models"][0]["status"], "failed", "{attempts}");

    // A new destination under the same id starts with no failures behind it: one failure
    // is not two in a row.
    receiver.set_delay(Duration::ZERO);
    tenant_with_destination_again(&server.api, &receiver).await;
    publish(&server.api, "e1").await;
    server.settle().await;
    let shown = server
        .api
        .get("/api/v1/tenants/t1/destinations/d1")
        .await
        .json();
    assert_eq!(shown["disabled_at"], Value::Null, "{shown}");

    assert!(server.stop().await.success());
    let (passed, report) = crate::support::process::outpost_check(&server.data_dir);
    assert!(passed, "{report}");
}

async fn tenant_with_destination_again(api: &crate::support::client::Api, receiver: &Receiver) {
    let created = api
        .post(
            "/api/v1/tenants/t1/destinations",
            json!({"id": "d1", "type": "webhook", "topics": ["*"],
                   "config": {"url": receiver.url("/hook")}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
}
