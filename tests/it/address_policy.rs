//! The outbound address policy, black-box: deliveries whose connection would reach a denied
//! address fail with `address_denied` and are retried like any failure, whether the address
//! comes from a host name, from a redirect, or from a name that resolved elsewhere when the
//! destination was saved.
//!
//! The denied side is a real receiver on 127.0.0.2 (denied by `DELIVERY_DENY_CIDRS=127.0.0.0/8`
//! with `DELIVERY_ALLOW_CIDRS=127.0.0.1/32`), the allowed side one on 127.0.0.1; host names are
//! resolved through `DELIVERY_RESOLVE_OVERRIDES`, so no DNS is involved.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::support::{Api, Behaviour, Receiver, ServerOptions, TestServer};

/// Upper bound for anything that should happen "soon".
const WAIT: Duration = Duration::from_secs(20);
/// Window used to prove that nothing reaches the denied receiver.
const QUIET: Duration = Duration::from_millis(500);

/// A receiver on 127.0.0.2 (denied) and one on 127.0.0.1 (allowed), on the same port, so a
/// name moved from one address to the other keeps its URL.
async fn receivers(allowed: Behaviour) -> (Receiver, Receiver) {
    let denied = Receiver::start_on("127.0.0.2:0".parse().unwrap(), Behaviour::Status(200)).await;
    let port = denied.addr().port();
    let allowed = Receiver::start_on(SocketAddr::from(([127, 0, 0, 1], port)), allowed).await;
    (denied, allowed)
}

/// Loopback denied but for 127.0.0.1; `overrides` as `DELIVERY_RESOLVE_OVERRIDES`.
fn options(overrides: &str, retry_schedule: &str) -> ServerOptions {
    ServerOptions::default()
        .env("DELIVERY_DENY_CIDRS", "127.0.0.0/8,169.254.0.0/16")
        .env("DELIVERY_ALLOW_CIDRS", "127.0.0.1/32")
        .env("DELIVERY_RESOLVE_OVERRIDES", overrides)
        .env("RETRY_SCHEDULE", retry_schedule)
}

async fn create_destination(api: &Api, id: &str, url: &str, topic: &str) {
    let r = api.put("/api/v1/tenants/t", None).await;
    assert!(r.status.is_success(), "create tenant: {}", r.text());
    let body = json!({"id": id, "type": "webhook", "topics": [topic], "config": {"url": url}});
    let r = api.post("/api/v1/tenants/t/destinations", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "create {id}: {}", r.text());
}

async fn publish(api: &Api, id: &str, topic: &str) {
    let body = json!({"id": id, "tenant_id": "t", "topic": topic, "data": {}});
    let r = api.post("/api/v1/publish", body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "publish {id}: {}", r.text());
}

/// Waits until event `id` has at least `count` attempts; returns them by attempt number, with
/// their response data.
async fn attempts(api: &Api, id: &str, count: usize) -> Vec<Value> {
    let path = format!("/api/v1/attempts?event_id={id}&include=response_data");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = api.get(&path).await;
        if r.status == StatusCode::OK {
            let mut models = r.json()["models"].as_array().cloned().unwrap_or_default();
            if models.len() >= count {
                models.sort_by_key(|a| a["attempt_number"].as_u64());
                return models;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {path}: fewer than {count} attempts within {WAIT:?}: {}",
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The attempt failed with `address_denied`, naming `address` and the setting.
fn assert_denied(attempt: &Value, address: &str) {
    assert_eq!(attempt["status"], "failed", "{attempt}");
    assert_eq!(attempt["code"], "address_denied", "{attempt}");
    assert_eq!(
        attempt["response_data"],
        json!({"error": format!(
            "connection to {address} refused: address denied by DELIVERY_DENY_CIDRS"
        )}),
        "{attempt}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_resolving_to_a_denied_address_is_refused_and_retried() {
    let (denied, _allowed) = receivers(Behaviour::Status(200)).await;
    let port = denied.addr().port();
    let server = TestServer::start(options("denied.test=127.0.0.2", "60").manual_clock());
    let api = &server.api;
    create_destination(
        api,
        "by-name",
        &format!("http://denied.test:{port}/hook"),
        "a",
    )
    .await;
    create_destination(
        api,
        "literal",
        &format!("http://127.0.0.2:{port}/hook"),
        "b",
    )
    .await;

    publish(api, "e-name", "a").await;
    publish(api, "e-literal", "b").await;
    server.settle().await;
    assert_denied(&attempts(api, "e-name", 1).await[0], "127.0.0.2");
    assert_denied(&attempts(api, "e-literal", 1).await[0], "127.0.0.2");
    // Retried like any failure: both retries are queued, and made when due.
    assert_eq!(server.queued_deliveries(), 2);
    server.advance_and_settle(Duration::from_secs(61)).await;
    let again = attempts(api, "e-name", 2).await;
    assert_eq!(again[1]["attempt_number"], 2, "{again:?}");
    assert_denied(&again[1], "127.0.0.2");
    assert_denied(&attempts(api, "e-literal", 2).await[1], "127.0.0.2");

    denied.assert_no_more_than(0, QUIET).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_a_denied_address_is_refused() {
    let (denied, allowed) = receivers(Behaviour::Status(200)).await;
    let port = denied.addr().port();
    allowed.set_behaviour(Behaviour::Redirect {
        status: 307,
        location: format!("http://denied.test:{port}/inner"),
    });
    let server = TestServer::start(options("denied.test=127.0.0.2", "3600"));
    let api = &server.api;
    create_destination(api, "d", &allowed.url("/hook"), "a").await;

    publish(api, "e", "a").await;
    assert_denied(&attempts(api, "e", 1).await[0], "127.0.0.2");
    // The allowed receiver answered the first request; the hop never connected.
    assert_eq!(allowed.requests_to("/hook").len(), 1);
    denied.assert_no_more_than(0, QUIET).await;
    assert_eq!(
        server.queued_deliveries(),
        1,
        "the failure is queued for retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_moves_to_a_denied_address_after_saving_is_refused_at_delivery() {
    let (denied, allowed) = receivers(Behaviour::Status(200)).await;
    let port = allowed.addr().port();
    let mut server = TestServer::start(options("moving.test=127.0.0.1", "3600"));
    create_destination(
        &server.api,
        "d",
        &format!("http://moving.test:{port}/hook"),
        "a",
    )
    .await;
    publish(&server.api, "before", "a").await;
    let before = attempts(&server.api, "before", 1).await;
    assert_eq!(before[0]["code"], "200", "{before:?}");
    assert_eq!(allowed.count(), 1);

    // The name now resolves to the denied address; the saved destination is unchanged.
    assert!(server.stop().await.success());
    server.restart(options("moving.test=127.0.0.2", "3600"));
    publish(&server.api, "after", "a").await;
    assert_denied(&attempts(&server.api, "after", 1).await[0], "127.0.0.2");
    denied.assert_no_more_than(0, QUIET).await;
    assert_eq!(allowed.count(), 1);
    assert_eq!(
        server.queued_deliveries(),
        1,
        "the failure is queued for retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_policy_refuses_the_metadata_address_as_ipv4_mapped_ipv6() {
    let server = TestServer::start(ServerOptions::default().env("RETRY_SCHEDULE", "3600").env(
        "DELIVERY_RESOLVE_OVERRIDES",
        "metadata.test=::ffff:169.254.169.254",
    ));
    let api = &server.api;
    create_destination(api, "meta", "http://metadata.test/latest/meta-data/", "a").await;
    publish(api, "e", "a").await;
    assert_denied(&attempts(api, "e", 1).await[0], "::ffff:169.254.169.254");
}
