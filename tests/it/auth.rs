//! Authentication and authorization rules, route by route, as upstream applies them.

use hyper::{Method, StatusCode};
use serde_json::json;

use crate::support::client::Auth;
use crate::support::server::JWT_SECRET;
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

/// A tenant JWT for `tenant` signed with `algorithm` and the test server's secret, valid for an
/// hour.
fn token_signed_with(algorithm: jsonwebtoken::Algorithm, tenant: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = json!({"iss": "outpost", "sub": tenant, "iat": now, "exp": now + 3600});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(algorithm),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("sign")
}

/// An unsigned token (`alg: none`) with valid claims for `tenant`, with and without a
/// signature part.
fn unsigned_tokens(tenant: &str) -> Vec<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    let claims = URL_SAFE_NO_PAD.encode(
        json!({"iss": "outpost", "sub": tenant, "iat": now, "exp": now + 3600}).to_string(),
    );
    vec![
        format!("{header}.{claims}."),
        format!("{header}.{claims}"),
        format!("{header}.{claims}.{}", URL_SAFE_NO_PAD.encode("x")),
    ]
}

#[tokio::test]
async fn only_hs256_tokens_are_accepted() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    api.put("/api/v1/tenants/t", None).await;
    let path = "/api/v1/tenants/t";
    // The control: HS256 with the secret is accepted.
    let good = token_signed_with(jsonwebtoken::Algorithm::HS256, "t");
    assert_eq!(
        api.as_tenant(&good, Method::GET, path, None).await.status,
        StatusCode::OK
    );
    // The same claims and secret under another HMAC algorithm are refused.
    for algorithm in [
        jsonwebtoken::Algorithm::HS384,
        jsonwebtoken::Algorithm::HS512,
    ] {
        let token = token_signed_with(algorithm, "t");
        let r = api.as_tenant(&token, Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{algorithm:?}");
        assert!(r.body.is_empty());
    }
    for token in unsigned_tokens("t") {
        let r = api.as_tenant(&token, Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}");
        assert!(r.body.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_tenants_token_is_401_on_every_route_a_token_may_call() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    let token = api.tenant_with_token("gone").await;
    let r = api
        .post(
            "/api/v1/tenants/gone/destinations",
            json!({"id": "d", "type": "webhook", "topics": ["a"],
                   "config": {"url": "https://example.com"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = api
        .as_tenant(&token, Method::GET, "/api/v1/tenants/gone", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        api.delete("/api/v1/tenants/gone").await.status,
        StatusCode::OK
    );

    let destination = json!({"type": "webhook", "topics": ["a"],
                             "config": {"url": "https://example.com"}});
    // Every route open to a tenant JWT (upstream §1.2 step 7: the token's tenant is always
    // loaded; missing → 401 with an empty body).
    let calls: Vec<(Method, &str, Option<serde_json::Value>)> = vec![
        (Method::GET, "/api/v1/topics", None),
        (Method::GET, "/api/v1/destination-types", None),
        (Method::GET, "/api/v1/destination-types/webhook", None),
        (
            Method::POST,
            "/api/v1/retry",
            Some(json!({"event_id": "e", "destination_id": "d"})),
        ),
        (Method::GET, "/api/v1/events", None),
        (Method::GET, "/api/v1/events/e", None),
        (Method::GET, "/api/v1/attempts", None),
        (Method::GET, "/api/v1/attempts/a", None),
        (Method::GET, "/api/v1/metrics/events", None),
        (Method::GET, "/api/v1/metrics/attempts", None),
        (Method::GET, "/api/v1/tenants", None),
        (Method::GET, "/api/v1/tenants/gone", None),
        (Method::PUT, "/api/v1/tenants/gone", Some(json!({}))),
        (Method::DELETE, "/api/v1/tenants/gone", None),
        (Method::GET, "/api/v1/tenants/gone/destinations", None),
        (
            Method::POST,
            "/api/v1/tenants/gone/destinations",
            Some(destination),
        ),
        (Method::GET, "/api/v1/tenants/gone/destinations/d", None),
        (
            Method::PATCH,
            "/api/v1/tenants/gone/destinations/d",
            Some(json!({"topics": ["b"]})),
        ),
        (Method::DELETE, "/api/v1/tenants/gone/destinations/d", None),
        (
            Method::PUT,
            "/api/v1/tenants/gone/destinations/d/enable",
            None,
        ),
        (
            Method::PUT,
            "/api/v1/tenants/gone/destinations/d/disable",
            None,
        ),
        (
            Method::GET,
            "/api/v1/tenants/gone/destinations/d/attempts",
            None,
        ),
        (
            Method::GET,
            "/api/v1/tenants/gone/destinations/d/attempts/a",
            None,
        ),
    ];
    for (method, path, body) in calls {
        let r = api.as_tenant(&token, method.clone(), path, body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(r.body.is_empty(), "{method} {path}");
    }
    // Admin-only routes refuse any token with 403 before the tenant is looked at (step 5).
    for path in ["/api/v1/tenants/gone/token", "/api/v1/tenants/gone/portal"] {
        let r = api.as_tenant(&token, Method::GET, path, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    // The tenant stays deleted: the token's PUT did not bring it back.
    assert_eq!(
        api.get("/api/v1/tenants/gone").await.status,
        StatusCode::NOT_FOUND
    );
}
