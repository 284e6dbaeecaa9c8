//! Data fidelity, black-box: event payloads come back byte for byte as published in every
//! answer that carries them, and an event id published again after its idempotency window
//! keeps every attempt of every round reachable, numbered without collisions.

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::client::{Auth, Reply};
use crate::support::{Api, Behaviour, Receiver, ServerOptions, TestServer};

const WAIT: Duration = Duration::from_secs(20);

/// Payloads a re-encoding would change: key order, big integers, trailing zeros, exponents,
/// negative zero, escapes (`\u00e9`, surrogate pairs, `\/`), nesting.
const PAYLOADS: [&str; 4] = [
    r#"{"zeta":1,"alpha":123456789012345678901234567890,"f":1.10}"#,
    r#"{"e":1.5E+300,"neg":-0.0,"small":2e-7,"big":18446744073709551617,"dec":0.1000000000000000055511151231257827}"#,
    r#"{"s":"caf\u00e9 \ud83d\ude00 \/ \"q\" \t","b":[1.0,2.50,{"y":true,"x":null}],"a":{}}"#,
    r#"{"z":{"z":{"b":1,"a":2}},"m":[],"n":-12.3400e-05}"#,
];

async fn ok(api: &Api, path: &str) -> Reply {
    let r = api.get(path).await;
    assert_eq!(r.status, StatusCode::OK, "GET {path}: {}", r.text());
    r
}

/// Publishes `data_text` exactly as written (the test client would otherwise re-encode it).
async fn publish_raw(api: &Api, id: &str, data_text: &str) -> Value {
    let body = format!(
        r#"{{"id":"{id}","tenant_id":"acme","topic":"fidelity","metadata":{{"zz":"last","aa":"caf\u00e9"}},"data":{data_text}}}"#
    );
    let r = api
        .raw(
            Method::POST,
            "/api/v1/publish",
            Some(body.into_bytes()),
            Auth::Admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    r.json()
}

/// Asserts that the answer holds `"data":<text>` for every payload, byte for byte.
fn assert_holds_every_payload(what: &str, reply: &Reply, payloads: &[&str]) {
    let body = reply.text();
    for text in payloads {
        assert!(
            body.contains(&format!("\"data\":{text}")),
            "{what} re-encoded the payload {text}:\n{body}"
        );
    }
}

async fn setup(receiver: &Receiver, options: ServerOptions) -> TestServer {
    let server = TestServer::start(options);
    let api = &server.api;
    let r = api.put("/api/v1/tenants/acme", None).await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = api
        .post(
            "/api/v1/tenants/acme/destinations",
            json!({"id": "d", "type": "webhook", "topics": "*", "config": {"url": receiver.url("/hook")}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    server
}

async fn wait_for_attempts(api: &Api, query: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = ok(api, &format!("/api/v1/attempts?{query}")).await.json();
        let models = v["models"].as_array().cloned().unwrap_or_default();
        if models.len() >= count {
            return models;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {count} attempts for {query}, have {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn payloads_come_back_byte_exact_in_every_answer() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = setup(&receiver, ServerOptions::default()).await;
    let api = &server.api;
    for (i, text) in PAYLOADS.iter().enumerate() {
        publish_raw(api, &format!("fid-{i}"), text).await;
    }

    // The delivered bodies are the published text.
    let delivered = receiver.wait_for(PAYLOADS.len(), WAIT).await;
    let mut bodies: Vec<String> = delivered.iter().map(|r| r.body_text()).collect();
    bodies.sort();
    let mut expected: Vec<String> = PAYLOADS.iter().map(|p| p.to_string()).collect();
    expected.sort();
    assert_eq!(bodies, expected);

    let attempts = wait_for_attempts(api, "tenant_id=acme", PAYLOADS.len()).await;
    let token = api.tenant_with_token("acme").await;

    assert_holds_every_payload("GET /events", &ok(api, "/api/v1/events").await, &PAYLOADS);
    let r = api
        .raw(Method::GET, "/api/v1/events", None, Auth::Bearer(&token))
        .await;
    assert_holds_every_payload("GET /events as the tenant", &r, &PAYLOADS);
    assert_holds_every_payload(
        "GET /attempts?include=event.data",
        &ok(api, "/api/v1/attempts?include=event.data").await,
        &PAYLOADS,
    );
    assert_holds_every_payload(
        "GET /tenants/acme/destinations/d/attempts?include=event.data",
        &ok(
            api,
            "/api/v1/tenants/acme/destinations/d/attempts?include=event.data",
        )
        .await,
        &PAYLOADS,
    );

    let metadata = r#""metadata":{"aa":"café","zz":"last"}"#;
    for attempt in &attempts {
        let attempt_id = attempt["id"].as_str().expect("attempt id");
        let event_id = attempt["event_id"].as_str().expect("event id");
        let index: usize = event_id["fid-".len()..].parse().expect("index");
        let text = [PAYLOADS[index]];
        let event = ok(api, &format!("/api/v1/events/{event_id}")).await;
        assert_holds_every_payload("GET /events/:id", &event, &text);
        assert!(event.text().contains(metadata), "{}", event.text());
        for path in [
            format!("/api/v1/attempts/{attempt_id}?include=event.data"),
            format!("/api/v1/tenants/acme/destinations/d/attempts/{attempt_id}?include=event.data"),
        ] {
            let r = ok(api, &path).await;
            assert_holds_every_payload(&path, &r, &text);
            assert!(r.text().contains(metadata), "{path}: {}", r.text());
        }
        // include=event embeds the event without its data, metadata as stored.
        let r = ok(api, &format!("/api/v1/attempts/{attempt_id}?include=event")).await;
        assert!(!r.text().contains("\"data\""), "{}", r.text());
        assert!(r.text().contains(metadata), "{}", r.text());
    }
}

#[tokio::test]
async fn an_id_published_again_after_its_window_keeps_its_history() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    // A zero-second window: every publish of an id is past the previous one's window.
    let options = ServerOptions::default().env("PUBLISH_IDEMPOTENCY_KEY_TTL", "0");
    let mut server = setup(&receiver, options).await;
    let api = &server.api;

    let first = publish_raw(api, "again", r#"{"round":1}"#).await;
    assert_eq!(first["duplicate"], false);
    wait_for_attempts(api, "event_id=again", 1).await;
    let r = api
        .post(
            "/api/v1/retry",
            json!({"event_id": "again", "destination_id": "d"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    wait_for_attempts(api, "event_id=again", 2).await;
    let second = publish_raw(api, "again", r#"{"round":2}"#).await;
    assert_eq!(second["duplicate"], false, "{second}");
    wait_for_attempts(api, "event_id=again", 3).await;
    publish_raw(api, "again", r#"{"round":3}"#).await;
    receiver.wait_for(4, WAIT).await;

    let by_event = wait_for_attempts(api, "event_id=again", 4).await;
    let mut numbers: Vec<u64> = by_event
        .iter()
        .map(|a| a["attempt_number"].as_u64().expect("number"))
        .collect();
    numbers.sort();
    assert_eq!(numbers, [1, 2, 3, 4], "{by_event:?}");
    let ids = |models: &[Value]| {
        let mut ids: Vec<String> = models
            .iter()
            .map(|a| a["id"].as_str().unwrap_or_default().to_string())
            .collect();
        ids.sort();
        ids
    };
    let by_tenant = wait_for_attempts(api, "tenant_id=acme", 4).await;
    assert_eq!(ids(&by_tenant), ids(&by_event));
    let scoped = ok(api, "/api/v1/tenants/acme/destinations/d/attempts").await;
    assert_eq!(
        ids(scoped.json()["models"].as_array().expect("models")),
        ids(&by_event)
    );
    // The event shows its latest publish; the manual retry is numbered among the rounds.
    let event = ok(api, "/api/v1/events/again").await;
    assert!(
        event.text().contains(r#""data":{"round":3}"#),
        "{}",
        event.text()
    );
    let manual: Vec<u64> = by_event
        .iter()
        .filter(|a| a["manual"] == true)
        .map(|a| a["attempt_number"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(manual, [2]);
    let delivered: Vec<String> = receiver.requests().iter().map(|r| r.body_text()).collect();
    assert_eq!(
        delivered,
        [
            r#"{"round":1}"#,
            r#"{"round":1}"#,
            r#"{"round":2}"#,
            r#"{"round":3}"#
        ]
    );

    assert!(server.stop().await.success());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["check", "--file"])
        .arg(server.data_dir.join("outpost.redb"))
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
