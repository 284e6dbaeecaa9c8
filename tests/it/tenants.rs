//! Tenant routes: upsert, read, delete, paged list in both directions, token and portal.

use hyper::StatusCode;
use serde_json::json;

use crate::support::{ServerOptions, TestServer};

#[tokio::test]
async fn upsert_creates_then_updates() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    let r = api
        .put(
            "/api/v1/tenants/acme",
            Some(json!({"metadata": {"plan": "pro", "seats": 5}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let created = r.json();
    assert_eq!(created["id"], "acme");
    assert_eq!(created["destinations_count"], 0);
    assert_eq!(created["topics"], json!([]));
    assert_eq!(created["metadata"], json!({"plan": "pro", "seats": "5"}));
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));

    let r = api
        .put(
            "/api/v1/tenants/acme",
            Some(json!({"metadata": {"plan": "team"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["metadata"], json!({"plan": "team"}));
    assert_eq!(r.json()["created_at"], created["created_at"]);

    // An empty body clears metadata, which is then omitted.
    let r = api.put("/api/v1/tenants/acme", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.json().get("metadata").is_none());

    let r = api.get("/api/v1/tenants/acme").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["id"], "acme");
}

#[tokio::test]
async fn delete_then_recreate_empty() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    api.put("/api/v1/tenants/t1", None).await;
    let r = api
        .post(
            "/api/v1/tenants/t1/destinations",
            json!({"type": "webhook", "topics": "*", "config": {"url": "https://example.com/h"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = api.delete("/api/v1/tenants/t1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"success": true}));
    let r = api.get("/api/v1/tenants/t1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json(),
        json!({"status": 404, "message": "tenant not found"})
    );
    let r = api.delete("/api/v1/tenants/t1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = api.put("/api/v1/tenants/t1", None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.json()["destinations_count"], 0);
    let r = api.get("/api/v1/tenants/t1/destinations").await;
    assert_eq!(r.json(), json!([]));
}

#[tokio::test]
async fn list_pages_both_ways_with_count_and_id_filter() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    for i in 0..5 {
        let r = api.put(&format!("/api/v1/tenants/t{i}"), None).await;
        assert_eq!(r.status, StatusCode::CREATED);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // Default: newest first.
    let first = api.get("/api/v1/tenants?limit=2").await.json();
    assert_eq!(first["count"], 5);
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&first), ["t4", "t3"]);
    assert_eq!(first["pagination"]["prev"], json!(null));
    assert_eq!(first["pagination"]["order_by"], "created_at");
    assert_eq!(first["pagination"]["dir"], "desc");
    assert_eq!(first["pagination"]["limit"], 2);
    let next = first["pagination"]["next"].as_str().unwrap();

    let second = api
        .get(&format!("/api/v1/tenants?limit=2&next={next}"))
        .await
        .json();
    assert_eq!(ids(&second), ["t2", "t1"]);
    let prev = second["pagination"]["prev"].as_str().unwrap().to_string();
    let next = second["pagination"]["next"].as_str().unwrap().to_string();

    let third = api
        .get(&format!("/api/v1/tenants?limit=2&next={next}"))
        .await
        .json();
    assert_eq!(ids(&third), ["t0"]);
    assert_eq!(third["pagination"]["next"], json!(null));

    let back = api
        .get(&format!("/api/v1/tenants?limit=2&prev={prev}"))
        .await
        .json();
    assert_eq!(ids(&back), ["t4", "t3"]);
    assert_eq!(back["pagination"]["prev"], json!(null));
    assert!(back["pagination"]["next"].is_string());

    let asc = api.get("/api/v1/tenants?dir=asc&limit=3").await.json();
    assert_eq!(ids(&asc), ["t0", "t1", "t2"]);

    let filtered = api
        .get("/api/v1/tenants?id[]=t1&id[]=t3&id[]=nope")
        .await
        .json();
    assert_eq!(filtered["count"], 2);
    assert_eq!(ids(&filtered), ["t3", "t1"]);
    let filtered = api
        .get("/api/v1/tenants?id=t1&id=t0&limit=1&dir=asc")
        .await
        .json();
    assert_eq!(ids(&filtered), ["t0"]);
    let next = filtered["pagination"]["next"].as_str().unwrap();
    let rest = api
        .get(&format!(
            "/api/v1/tenants?id=t1&id=t0&limit=1&dir=asc&next={next}"
        ))
        .await
        .json();
    assert_eq!(ids(&rest), ["t1"]);
}

#[tokio::test]
async fn list_query_errors() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    let r = api.get("/api/v1/tenants?limit=abc").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["message"], "invalid limit: must be an integer");
    let r = api.get("/api/v1/tenants?limit=101").await;
    assert_eq!(
        r.json()["message"],
        "invalid limit: must be between 1 and 100"
    );
    let r = api.get("/api/v1/tenants?dir=up").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json()["data"],
        json!({"query.dir": "must be 'asc' or 'desc'"})
    );
    let r = api.get("/api/v1/tenants?next=abc&prev=def").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["message"],
        "cannot specify both 'next' and 'prev' cursors"
    );
    let r = api.get("/api/v1/tenants?next=!!!").await;
    assert_eq!(r.json()["message"], "invalid cursor");
}

#[tokio::test]
async fn token_and_portal() {
    let server = TestServer::start(ServerOptions::default().env("DEPLOYMENT_ID", "dep_1"));
    let api = &server.api;
    api.put("/api/v1/tenants/t1", None).await;
    let r = api.get("/api/v1/tenants/t1/token").await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(body["tenant_id"], "t1");
    let token = body["token"].as_str().unwrap();
    let claims = decode_claims(token);
    assert_eq!(claims["iss"], "outpost");
    assert_eq!(claims["sub"], "t1");
    assert_eq!(claims["deployment_id"], "dep_1");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        86_400
    );

    let r = api.get("/api/v1/tenants/t1/portal?theme=dark").await;
    assert_eq!(r.status, StatusCode::OK);
    let url = r.json()["redirect_url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("http://{}?token=", server.addr)),
        "{url}"
    );
    assert!(url.ends_with("&theme=dark"));
    let r = api.get("/api/v1/tenants/t1/portal?theme=neon").await;
    assert!(!r.json()["redirect_url"].as_str().unwrap().contains("theme"));
    let r = api.get("/api/v1/tenants/nope/token").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

pub fn decode_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("jwt payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("claims json")
}
