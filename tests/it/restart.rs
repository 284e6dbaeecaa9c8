//! Durability across restarts: what was written before a stop (or a kill) is all there after.

use hyper::StatusCode;
use serde_json::json;

use crate::support::{ProcessServer, ServerOptions};

#[tokio::test]
async fn everything_survives_a_restart() {
    let mut server = ProcessServer::start(ServerOptions::default());
    let api = server.api.clone();
    api.put("/api/v1/tenants/a", Some(json!({"metadata": {"k": "v"}})))
        .await;
    api.put("/api/v1/tenants/b", None).await;
    let r = api
        .post("/api/v1/tenants/a/destinations", json!({"id": "d", "type": "webhook", "topics": ["x"], "config": {"url": "https://a.example"}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    api.put("/api/v1/tenants/a/destinations/d/disable", None)
        .await;
    let before_tenant = api.get("/api/v1/tenants/a").await.json();
    let before_dest = api.get("/api/v1/tenants/a/destinations/d").await.json();
    let before_list = api.get("/api/v1/tenants").await.json();

    let status = server.stop();
    assert!(status.success(), "graceful stop exits 0, got {status:?}");
    server.restart(ServerOptions::default());
    let api = server.api.clone();
    assert_eq!(api.get("/api/v1/tenants/a").await.json(), before_tenant);
    assert_eq!(
        api.get("/api/v1/tenants/a/destinations/d").await.json(),
        before_dest
    );
    assert_eq!(api.get("/api/v1/tenants").await.json(), before_list);

    // An acknowledged write survives SIGKILL too.
    let r = api.put("/api/v1/tenants/c", None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    server.kill();
    server.restart(ServerOptions::default());
    assert_eq!(
        server.api.get("/api/v1/tenants/c").await.status,
        StatusCode::OK
    );
    assert_eq!(server.api.get("/api/v1/tenants").await.json()["count"], 3);
}
