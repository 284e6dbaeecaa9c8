//! Every kind of client mistake gets upstream's error body and status, and changes nothing.

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::client::Auth;
use crate::support::{ServerOptions, TestServer};

async fn snapshot(api: &crate::support::Api) -> (Value, Value, Value) {
    let tenants = api.get("/api/v1/tenants").await.json();
    let tenant = api.get("/api/v1/tenants/t").await.json();
    let destinations = api.get("/api/v1/tenants/t/destinations").await.json();
    (tenants, tenant, destinations)
}

#[tokio::test]
async fn bad_requests_get_clear_answers_and_change_nothing() {
    let server =
        TestServer::start(ServerOptions::default().env("API_MAX_REQUEST_BODY_BYTES", "4096"));
    let api = &server.api;
    api.put(
        "/api/v1/tenants/t",
        Some(json!({"metadata": {"keep": "me"}})),
    )
    .await;
    let r = api
        .post("/api/v1/tenants/t/destinations", json!({"id": "d", "type": "webhook", "topics": "*", "config": {"url": "https://a.example"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let before = snapshot(api).await;

    let invalid_json = json!({"status": 422, "message": "invalid JSON"});
    let bodies: Vec<(Method, &str, Vec<u8>, StatusCode, Value)> = vec![
        (Method::POST, "/api/v1/tenants/t/destinations", b"{not json".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
        (Method::POST, "/api/v1/tenants/t/destinations", b"[1,2]".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
        (Method::POST, "/api/v1/tenants/t/destinations", b"".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
        (Method::POST, "/api/v1/tenants/t/destinations", br#"{"type": 5, "topics": "*"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
        (Method::POST, "/api/v1/tenants/t/destinations", br#"{"type": "webhook", "topics": "*", "config": "x"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
        (Method::POST, "/api/v1/tenants/t/destinations", br#"{"type": "webhook", "topics": "*", "config": {"url": "https://a"}, "created_at": "yesterday"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
        (Method::POST, "/api/v1/tenants/t/destinations", br#"{"type": "webhook", "topics": "*", "filter": [1]}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
        (Method::PATCH, "/api/v1/tenants/t/destinations/d", b"\"str\"".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
        (Method::PATCH, "/api/v1/tenants/t/destinations/d", br#"{"metadata": 7}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
        (Method::PATCH, "/api/v1/tenants/t/destinations/d", br#"{"disabled_at": 7}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
        (Method::PUT, "/api/v1/tenants/t", b"{\"metadata\": [1]}".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
        (Method::PUT, "/api/v1/tenants/t", b"null".to_vec(), StatusCode::UNPROCESSABLE_ENTITY, invalid_json.clone()),
    ];
    for (method, path, body, status, expected) in bodies {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let r = api.raw(method.clone(), path, Some(body), Auth::Admin).await;
        assert_eq!(r.status, status, "{method} {path} {shown}: {}", r.text());
        assert_eq!(r.json(), expected, "{method} {path} {shown}");
        assert!(r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
    }

    // Oversized body.
    let big = vec![b' '; 10_000];
    let r = api
        .raw(
            Method::POST,
            "/api/v1/tenants/t/destinations",
            Some(big),
            Auth::Admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.json()["status"], 413);
    assert!(r.json()["message"].as_str().unwrap().contains("4096"));

    // Unknown paths and wrong methods.
    let r = api.get("/api/v1/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json(), json!({"status": 404, "message": "not found"}));
    let r = api.get("/api/v1/tenants/t/destinations/d/explode").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api.admin(Method::DELETE, "/api/v1/topics", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        r.json(),
        json!({"status": 405, "message": "method not allowed"})
    );
    let r = api
        .admin(Method::POST, "/api/v1/tenants/t", Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = api
        .admin(Method::GET, "/api/v1/tenants/t/destinations/d/enable", None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    // Bad query values.
    for (path, status) in [
        ("/api/v1/tenants?limit=0", StatusCode::BAD_REQUEST),
        ("/api/v1/tenants?limit=-5", StatusCode::BAD_REQUEST),
        (
            "/api/v1/tenants?dir=sideways",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/api/v1/tenants?order_by=name",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        ("/api/v1/tenants?next=zzzz", StatusCode::BAD_REQUEST),
        ("/api/v1/tenants?prev=%FF%FE", StatusCode::BAD_REQUEST),
        ("/api/v1/tenants?next=a&prev=b", StatusCode::BAD_REQUEST),
    ] {
        let r = api.get(path).await;
        assert_eq!(r.status, status, "{path}: {}", r.text());
        assert_eq!(r.json()["status"], status.as_u16(), "{path}");
        assert!(r.json()["message"].is_string());
    }

    assert_eq!(
        snapshot(api).await,
        before,
        "bad input must not change the store"
    );
    // And the server is still healthy.
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
}
