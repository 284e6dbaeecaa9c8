//! Destination routes: create, read, list filters, merge-patch updates, secret rotation,
//! enable/disable, delete, the per-tenant limit and validation messages.

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::support::{Api, ServerOptions, TestServer};

async fn create(api: &Api, tenant: &str, body: Value) -> Value {
    let r = api
        .post(&format!("/api/v1/tenants/{tenant}/destinations"), body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn webhook_create_read_and_display() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    api.put("/api/v1/tenants/t", None).await;
    let d = create(
        api,
        "t",
        json!({"id": "d1", "type": "webhook", "topics": ["user.created", "user.created", "user.deleted"],
               "config": {"url": "https://example.com/hook"}, "filter": {"data": {"amount": {"$gte": 10}}},
               "metadata": {"team": "core"}, "delivery_metadata": {"source": "outpost"}}),
    )
    .await;
    assert_eq!(d["id"], "d1");
    assert_eq!(d["tenant_id"], "t");
    assert_eq!(d["type"], "webhook");
    assert_eq!(d["topics"], json!(["user.created", "user.deleted"]));
    assert_eq!(d["filter"], json!({"data": {"amount": {"$gte": 10}}}));
    assert_eq!(d["metadata"], json!({"team": "core"}));
    assert_eq!(d["delivery_metadata"], json!({"source": "outpost"}));
    assert_eq!(d["disabled_at"], Value::Null);
    assert_eq!(d["target"], "https://example.com/hook");
    let secret = d["credentials"]["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 64,
        "{secret}"
    );

    let got = api.get("/api/v1/tenants/t/destinations/d1").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.json(), d);

    let tenant = api.get("/api/v1/tenants/t").await.json();
    assert_eq!(tenant["destinations_count"], 1);
    assert_eq!(tenant["topics"], json!(["user.created", "user.deleted"]));

    let r = api.get("/api/v1/tenants/t/destinations/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn list_filters_by_type_and_topics() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    api.put("/api/v1/tenants/t", None).await;
    create(api, "t", json!({"id": "all", "type": "webhook", "topics": "*", "config": {"url": "https://a.example"}})).await;
    create(api, "t", json!({"id": "users", "type": "webhook", "topics": ["user.created", "user.deleted"], "config": {"url": "https://b.example"}})).await;
    create(api, "t", json!({"id": "sqs", "type": "aws_sqs", "topics": ["user.created"],
        "config": {"queue_url": "https://sqs.us-east-1.amazonaws.com/123/q"}, "credentials": {"key": "AKIAEXAMPLEKEY", "secret": "supersecretvalue"}})).await;
    let ids = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(api.get("/api/v1/tenants/t/destinations").await.json()),
        ["all", "users", "sqs"]
    );
    assert_eq!(
        ids(api
            .get("/api/v1/tenants/t/destinations?type=aws_sqs")
            .await
            .json()),
        ["sqs"]
    );
    assert_eq!(
        ids(api
            .get("/api/v1/tenants/t/destinations?type[]=aws_sqs&type[]=webhook")
            .await
            .json())
        .len(),
        3
    );
    assert_eq!(
        ids(api
            .get("/api/v1/tenants/t/destinations?topics=user.created&topics=user.deleted")
            .await
            .json()),
        ["all", "users"]
    );
    assert_eq!(
        ids(api
            .get("/api/v1/tenants/t/destinations?topics=*")
            .await
            .json()),
        ["all"]
    );
    let tenant = api.get("/api/v1/tenants/t").await.json();
    assert_eq!(tenant["topics"], json!(["*"]));
    assert_eq!(tenant["destinations_count"], 3);
    // Sensitive credentials of non-webhook types are masked.
    let sqs = api.get("/api/v1/tenants/t/destinations/sqs").await.json();
    assert_eq!(sqs["credentials"]["secret"], "supe************");
    assert_eq!(sqs["credentials"]["key"], "AKIA**********");
}

#[tokio::test]
async fn patch_merges_maps_and_replaces_the_rest() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    api.put("/api/v1/tenants/t", None).await;
    create(api, "t", json!({"id": "d", "type": "webhook", "topics": ["a"], "config": {"url": "https://a.example"},
        "metadata": {"k1": "v1", "k2": "v2"}, "filter": {"topic": "a"}})).await;
    let path = "/api/v1/tenants/t/destinations/d";
    let r = api.patch(path, json!({"metadata": {"k1": null, "k3": 3}, "topics": ["b"], "config": {"url": "https://b.example"}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let d = r.json();
    assert_eq!(d["metadata"], json!({"k2": "v2", "k3": "3"}));
    assert_eq!(d["topics"], json!(["b"]));
    assert_eq!(d["config"]["url"], "https://b.example");
    assert_eq!(d["filter"], json!({"topic": "a"}));
    let d = api
        .patch(path, json!({"filter": {}, "metadata": null}))
        .await
        .json();
    assert!(d.get("filter").is_none());
    assert!(d.get("metadata").is_none());
    let r = api.patch(path, json!({"type": "aws_sqs"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["message"], "type cannot be updated");
    let r = api
        .patch(path, json!({"config": {"url": "ftp://nope"}}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json()["data"],
        json!(["config.url failed pattern validation"])
    );
    let r = api
        .patch(
            "/api/v1/tenants/t/destinations/missing",
            json!({"topics": ["a"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A refused patch changed nothing.
    assert_eq!(
        api.get(path).await.json()["config"]["url"],
        "https://b.example"
    );
}

#[tokio::test]
async fn rotate_secret_keeps_the_previous_one_for_a_day() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    api.put("/api/v1/tenants/t", None).await;
    let d = create(
        api,
        "t",
        json!({"id": "d", "type": "webhook", "topics": "*", "config": {"url": "https://a.example"},
        "credentials": {"secret": "whsec_first"}}),
    )
    .await;
    assert_eq!(d["credentials"]["secret"], "whsec_first");
    let r = api
        .patch(
            "/api/v1/tenants/t/destinations/d",
            json!({"credentials": {"rotate_secret": true}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let creds = r.json()["credentials"].clone();
    assert_eq!(creds["previous_secret"], "whsec_first");
    assert_ne!(creds["secret"], "whsec_first");
    assert!(creds["previous_secret_invalid_at"].is_string());
    assert!(creds.get("rotate_secret").is_none());
    // rotate_secret on create is refused.
    let r = api
        .post(
            "/api/v1/tenants/t/destinations",
            json!({"type": "webhook", "topics": "*",
        "config": {"url": "https://a.example"}, "credentials": {"rotate_secret": "true"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json()["data"],
        json!(["credentials.rotate_secret failed invalid validation"])
    );
}

#[tokio::test]
async fn enable_disable_delete() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    api.put("/api/v1/tenants/t", None).await;
    create(api, "t", json!({"id": "d", "type": "webhook", "topics": "*", "config": {"url": "https://a.example"}})).await;
    let r = api
        .put("/api/v1/tenants/t/destinations/d/disable", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let disabled_at = r.json()["disabled_at"].clone();
    assert!(disabled_at.is_string());
    let again = api
        .put("/api/v1/tenants/t/destinations/d/disable", None)
        .await
        .json();
    assert_eq!(again["disabled_at"], disabled_at);
    let r = api
        .put("/api/v1/tenants/t/destinations/d/enable", None)
        .await;
    assert_eq!(r.json()["disabled_at"], Value::Null);
    let r = api.delete("/api/v1/tenants/t/destinations/d").await;
    assert_eq!(r.json(), json!({"success": true}));
    assert_eq!(
        api.get("/api/v1/tenants/t/destinations/d").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.delete("/api/v1/tenants/t/destinations/d").await.status,
        StatusCode::NOT_FOUND
    );
    // The id can be used again.
    create(api, "t", json!({"id": "d", "type": "webhook", "topics": "*", "config": {"url": "https://a.example"}})).await;
    // Created disabled.
    let d = create(
        api,
        "t",
        json!({"type": "webhook", "topics": "*", "config": {"url": "https://a.example"},
        "disabled_at": "2024-01-01T00:00:00Z", "created_at": "2023-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(d["disabled_at"], "2024-01-01T00:00:00Z");
    assert_eq!(d["created_at"], "2023-01-01T00:00:00Z");
    assert_eq!(d["updated_at"], "2023-01-01T00:00:00Z");
}

#[tokio::test]
async fn limits_duplicates_and_validation() {
    let server = TestServer::start(
        ServerOptions::default()
            .env("MAX_DESTINATIONS_PER_TENANT", "2")
            .env("TOPICS", "user.created,user.deleted,order.paid"),
    );
    let api = &server.api;
    api.put("/api/v1/tenants/t", None).await;
    let hook = |id: &str| json!({"id": id, "type": "webhook", "topics": ["user.created"], "config": {"url": "https://a.example"}});
    create(api, "t", hook("a")).await;
    let r = api.post("/api/v1/tenants/t/destinations", hook("a")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json(),
        json!({"status": 400, "message": "destination already exists"})
    );
    create(api, "t", hook("b")).await;
    let r = api.post("/api/v1/tenants/t/destinations", hook("c")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json()["message"],
        "maximum number of destinations per tenant reached"
    );

    api.put("/api/v1/tenants/v", None).await;
    let cases = [
        (
            json!({"topics": ["user.created"]}),
            json!({"status": 422, "message": "validation error", "data": ["type is required"]}),
        ),
        (
            json!({}),
            json!({"status": 422, "message": "validation error", "data": ["type is required", "topics is required"]}),
        ),
        (
            json!({"type": "webhook", "topics": ["nope"], "config": {"url": "https://a"}}),
            json!({"status": 422, "message": "validation failed: invalid topics"}),
        ),
        (
            json!({"type": "webhook", "topics": [], "config": {"url": "https://a"}}),
            json!({"status": 422, "message": "validation failed: invalid topics"}),
        ),
        (
            json!({"type": "webhook", "topics": 5, "config": {"url": "https://a"}}),
            json!({"status": 422, "message": "validation failed: invalid topics format"}),
        ),
        (
            json!({"type": "webhook", "topics": ["user.*"], "config": {"url": "https://a"}}),
            json!({"status": 422, "message": "validation failed: invalid topics"}),
        ),
        (
            json!({"type": "pigeon", "topics": "*"}),
            json!({"status": 422, "message": "no provider registered for destination type: pigeon"}),
        ),
        (
            json!({"type": "webhook", "topics": "*"}),
            json!({"status": 422, "message": "validation error", "data": ["config.url is required"]}),
        ),
        (
            json!({"type": "webhook", "topics": "*", "config": {"url": "https://a", "custom_headers": "{\"Host\":\"x\"}"}}),
            json!({"status": 422, "message": "validation error", "data": ["config.custom_headers.host is forbidden"]}),
        ),
        (
            json!({"type": "webhook", "topics": "*", "config": {"url": "https://a"}, "created_at": "2999-01-01T00:00:00Z"}),
            json!({"status": 422, "message": "created_at cannot be in the future"}),
        ),
    ];
    for (body, expected) in cases {
        let r = api
            .post("/api/v1/tenants/v/destinations", body.clone())
            .await;
        assert_eq!(
            r.status.as_u16() as i64,
            expected["status"].as_i64().unwrap(),
            "{body}: {}",
            r.text()
        );
        assert_eq!(r.json(), expected, "{body}");
    }
    assert_eq!(
        api.get("/api/v1/tenants/v/destinations").await.json(),
        json!([])
    );
}
