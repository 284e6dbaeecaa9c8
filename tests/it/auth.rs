//! Authentication and authorization rules, route by route, as upstream applies them.

use hyper::{Method, StatusCode};
use serde_json::json;

use crate::support::client::Auth;
use crate::support::{ServerOptions, TestServer};

#[tokio::test]
async fn missing_or_wrong_credentials_are_401_with_empty_body() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    for auth in [Auth::None, Auth::Bearer("wrong"), Auth::Bearer("")] {
        let r = api.raw(Method::GET, "/api/v1/tenants", None, auth).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.is_empty());
        // Empty error bodies carry no JSON content type (the SDKs would try to parse them).
        assert!(r.headers.get("content-type").is_none());
    }
    // Health needs no auth.
    let r = api.raw(Method::GET, "/healthz", None, Auth::None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], "healthy");
    let r = api
        .raw(Method::GET, "/api/v1/healthz", None, Auth::None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn tenant_jwt_is_confined_to_its_tenant() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    let token = api.tenant_with_token("mine").await;
    api.put("/api/v1/tenants/other", None).await;

    let r = api
        .as_tenant(&token, Method::GET, "/api/v1/tenants/mine", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["id"], "mine");
    let r = api
        .as_tenant(&token, Method::GET, "/api/v1/tenants/other", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.is_empty());
    let r = api
        .as_tenant(
            &token,
            Method::GET,
            "/api/v1/tenants/other/destinations",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Admin-only routes.
    for path in ["/api/v1/tenants/mine/token", "/api/v1/tenants/mine/portal"] {
        let r = api.as_tenant(&token, Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.body.is_empty());
    }
    // Shared routes.
    for path in [
        "/api/v1/topics",
        "/api/v1/destination-types",
        "/api/v1/destination-types/webhook",
    ] {
        let r = api.as_tenant(&token, Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
    }
    // The tenant list shows only the caller.
    let r = api
        .as_tenant(&token, Method::GET, "/api/v1/tenants", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let body = r.json();
    assert_eq!(body["count"], 1);
    assert_eq!(body["models"][0]["id"], "mine");
    // PUT on its own tenant updates it.
    let r = api
        .as_tenant(
            &token,
            Method::PUT,
            "/api/v1/tenants/mine",
            Some(json!({"metadata": {"a": "b"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Destinations under its own tenant.
    let r = api
        .as_tenant(
            &token,
            Method::POST,
            "/api/v1/tenants/mine/destinations",
            Some(json!({"type": "webhook", "topics": ["a"], "config": {"url": "https://example.com"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // Setting timestamps needs the API key.
    let r = api
        .as_tenant(
            &token,
            Method::POST,
            "/api/v1/tenants/mine/destinations",
            Some(
                json!({"type": "webhook", "topics": ["a"], "config": {"url": "https://example.com"},
                        "created_at": "2024-01-01T00:00:00Z"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.json()["message"],
        "created_at and updated_at can only be set with API key authentication"
    );
}

#[tokio::test]
async fn stale_jwt_after_tenant_delete_is_401_and_unknown_tenant_is_404_for_admin() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    let token = api.tenant_with_token("gone").await;
    api.delete("/api/v1/tenants/gone").await;
    let r = api
        .as_tenant(&token, Method::GET, "/api/v1/tenants/gone", None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.is_empty());
    let r = api.get("/api/v1/tenants/gone/destinations").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.json(),
        json!({"status": 404, "message": "tenant not found"})
    );
    // A JWT signed with another secret is refused.
    let r = api
        .as_tenant(
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJnb25lIn0.c2ln",
            Method::GET,
            "/api/v1/tenants/gone",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn auth_disabled_only_when_asked() {
    let server = TestServer::start(ServerOptions::default().env("API_AUTH_DISABLED", "true"));
    let r = server
        .api
        .raw(Method::PUT, "/api/v1/tenants/open", None, Auth::None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}
