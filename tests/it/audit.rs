//! The audit log of admin changes: which requests leave an entry in `DATA_DIR/audit.log`
//! (changes that succeeded, and 401/403 refusals of changing routes), what an entry says, that
//! publishes and reads leave none, that no credential is written, and `outpost audit`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::client::Auth;
use crate::support::server::API_KEY;
use crate::support::{Api, Behaviour, Receiver, ServerOptions, TestServer};

/// The parts of an entry a test can predict: actor, method, route, tenant, destination, event,
/// status, outcome.
type Summary = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    u64,
    String,
);

fn summary(entry: &Value) -> Summary {
    let text = |field: &str| entry[field].as_str().map(str::to_string);
    (
        text("actor").unwrap_or_default(),
        text("method").unwrap_or_default(),
        text("route").unwrap_or_default(),
        text("tenant_id"),
        text("destination_id"),
        text("event_id"),
        entry["status"].as_u64().unwrap_or_default(),
        text("outcome").unwrap_or_default(),
    )
}

#[allow(clippy::too_many_arguments)]
fn expect(
    actor: &str,
    method: &str,
    route: &str,
    tenant: Option<&str>,
    destination: Option<&str>,
    event: Option<&str>,
    status: u64,
    outcome: &str,
) -> Summary {
    (
        actor.into(),
        method.into(),
        route.into(),
        tenant.map(str::to_string),
        destination.map(str::to_string),
        event.map(str::to_string),
        status,
        outcome.into(),
    )
}

fn entries(data_dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(data_dir.join("audit.log")).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str(line).expect("an audit line is JSON"))
        .collect()
}

fn outpost_audit(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("audit")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir)
        .current_dir(data_dir.parent().expect("parent"))
        .output()
        .expect("run outpost audit")
}

fn printed(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a printed line is JSON"))
        .collect()
}

async fn wait_for_attempts(api: &Api, event: &str, count: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = api.get(&format!("/api/v1/attempts?event_id={event}")).await;
        if r.json()["models"].as_array().map_or(0, Vec::len) >= count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no attempts for {event}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const TENANT: &str = "/api/v1/tenants/{tenant_id}";
const DESTINATIONS: &str = "/api/v1/tenants/{tenant_id}/destinations";
const DESTINATION: &str = "/api/v1/tenants/{tenant_id}/destinations/{destination_id}";
const ENABLE: &str = "/api/v1/tenants/{tenant_id}/destinations/{destination_id}/enable";
const DISABLE: &str = "/api/v1/tenants/{tenant_id}/destinations/{destination_id}/disable";
const RETRY: &str = "/api/v1/retry";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_tenant_changes_and_refusals_are_recorded_exactly() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let mut server = TestServer::start(ServerOptions::default());
    let api = server.api.clone();
    let hook = receiver.url("/hook");

    let r = api.put("/api/v1/tenants/acme", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let token = api.tenant_with_token("acme").await; // an upsert of an existing tenant: 200
    let r = api
        .as_tenant(
            &token,
            Method::POST,
            "/api/v1/tenants/acme/destinations",
            Some(json!({"id": "d1", "type": "webhook", "topics": ["a"], "config": {"url": hook}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = api
        .post(
            "/api/v1/tenants/acme/destinations",
            json!({"type": "webhook", "topics": ["a"], "config": {"url": hook}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let d2 = r.json()["id"].as_str().expect("generated id").to_string();
    // Secret rotation is a PATCH of the destination.
    let r = api
        .as_tenant(
            &token,
            Method::PATCH,
            "/api/v1/tenants/acme/destinations/d1",
            Some(json!({"credentials": {"rotate_secret": true}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api
        .put(
            &format!("/api/v1/tenants/acme/destinations/{d2}/disable"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api
        .put(
            &format!("/api/v1/tenants/acme/destinations/{d2}/enable"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // Publishes and reads leave no entry.
    let r = api
        .post(
            "/api/v1/publish",
            json!({"id": "e1", "tenant_id": "acme", "topic": "a", "data": {}}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    wait_for_attempts(&api, "e1", 2).await;
    for path in [
        "/api/v1/tenants/acme",
        "/api/v1/tenants/acme/destinations",
        "/api/v1/tenants/acme/destinations/d1",
        "/api/v1/events",
    ] {
        assert_eq!(api.get(path).await.status, StatusCode::OK, "{path}");
    }

    let r = api
        .as_tenant(
            &token,
            Method::POST,
            "/api/v1/retry",
            Some(json!({"event_id": "e1", "destination_id": "d1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());

    // Refusals of changing routes are recorded; other failures are not.
    let r = api
        .as_tenant(&token, Method::PUT, "/api/v1/tenants/other", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api
        .raw(Method::DELETE, "/api/v1/tenants/acme", None, Auth::None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = api
        .raw(
            Method::DELETE,
            "/api/v1/tenants/acme/destinations/d1",
            None,
            Auth::Bearer("not-the-key"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = api.delete("/api/v1/tenants/acme/destinations/nope").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A JWT may not set timestamps: a 403 from the handler.
    let r = api
        .as_tenant(
            &token,
            Method::POST,
            "/api/v1/tenants/acme/destinations",
            Some(
                json!({"type": "webhook", "topics": ["a"], "config": {"url": hook},
                        "created_at": "2024-01-01T00:00:00Z"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = api
        .delete(&format!("/api/v1/tenants/acme/destinations/{d2}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api.delete("/api/v1/tenants/acme").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // The deleted tenant's token is now refused, and that is recorded too.
    let r = api
        .as_tenant(
            &token,
            Method::PUT,
            "/api/v1/tenants/acme/destinations/d1/disable",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    assert!(server.stop().await.success());
    let data_dir = server.data_dir.clone();
    let found = entries(&data_dir);
    let acme = Some("acme");
    let d2 = Some(d2.as_str());
    let t = "tenant:acme";
    let expected = vec![
        expect("admin", "PUT", TENANT, acme, None, None, 201, "ok"),
        expect("admin", "PUT", TENANT, acme, None, None, 200, "ok"),
        expect(t, "POST", DESTINATIONS, acme, Some("d1"), None, 201, "ok"),
        expect("admin", "POST", DESTINATIONS, acme, d2, None, 201, "ok"),
        expect(t, "PATCH", DESTINATION, acme, Some("d1"), None, 200, "ok"),
        expect("admin", "PUT", DISABLE, acme, d2, None, 200, "ok"),
        expect("admin", "PUT", ENABLE, acme, d2, None, 200, "ok"),
        expect(t, "POST", RETRY, acme, Some("d1"), Some("e1"), 202, "ok"),
        expect(t, "PUT", TENANT, Some("other"), None, None, 403, "refused"),
        expect(
            "anonymous",
            "DELETE",
            TENANT,
            acme,
            None,
            None,
            401,
            "refused",
        ),
        expect(
            "invalid-credentials",
            "DELETE",
            DESTINATION,
            acme,
            Some("d1"),
            None,
            401,
            "refused",
        ),
        expect(t, "POST", DESTINATIONS, acme, None, None, 403, "refused"),
        expect("admin", "DELETE", DESTINATION, acme, d2, None, 200, "ok"),
        expect("admin", "DELETE", TENANT, acme, None, None, 200, "ok"),
        expect(t, "PUT", DISABLE, acme, Some("d1"), None, 401, "refused"),
    ];
    assert_eq!(
        found.iter().map(summary).collect::<Vec<_>>(),
        expected,
        "{found:#?}"
    );

    // Only the PATCH that rotated the secret says so.
    for (n, entry) in found.iter().enumerate() {
        let rotated = entry.get("secret_rotated").and_then(Value::as_bool);
        assert_eq!(rotated, (n == 4).then_some(true), "{entry}");
    }

    let mut previous = 0;
    for entry in &found {
        let time = entry["time"].as_str().expect("time");
        assert!(time.ends_with('Z'), "{time}");
        let millis = outpost::time::parse_rfc3339(time)
            .expect("RFC 3339")
            .unix_millis();
        assert!(millis >= previous, "{found:#?}");
        previous = millis;
    }
    let text = std::fs::read_to_string(data_dir.join("audit.log")).expect("audit.log");
    assert!(!text.contains(API_KEY), "the API key leaked: {text}");
    assert!(!text.contains(&token), "a JWT leaked: {text}");
    assert!(!text.contains("not-the-key"), "a credential leaked: {text}");
    let mode = std::fs::metadata(data_dir.join("audit.log"))
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // `outpost audit` prints the same entries, and filters.
    let all = printed(&outpost_audit(&data_dir, &[]));
    assert_eq!(all, found);
    let other = printed(&outpost_audit(&data_dir, &["--tenant", "other"]));
    assert_eq!(other, vec![found[8].clone()]);
    let newest = printed(&outpost_audit(&data_dir, &["--limit", "2"]));
    assert_eq!(newest, found[found.len() - 2..].to_vec());
    let acme_newest = printed(&outpost_audit(
        &data_dir,
        &["--tenant", "acme", "--limit", "1"],
    ));
    assert_eq!(acme_newest, vec![found[found.len() - 1].clone()]);
    let since_first = found[0]["time"].as_str().expect("time");
    let since = printed(&outpost_audit(&data_dir, &["--since", since_first]));
    assert_eq!(since, found);
    let future = printed(&outpost_audit(
        &data_dir,
        &["--since", "2999-01-01T00:00:00Z"],
    ));
    assert!(future.is_empty());
    let bad = outpost_audit(&data_dir, &["--since", "yesterday"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--since"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[tokio::test]
async fn with_auth_disabled_entries_say_so() {
    let mut server = TestServer::start(ServerOptions::default().env("API_AUTH_DISABLED", "true"));
    let r = server
        .api
        .raw(Method::PUT, "/api/v1/tenants/open", None, Auth::None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(server.stop().await.success());
    let found = entries(&server.data_dir);
    assert_eq!(
        found.iter().map(summary).collect::<Vec<_>>(),
        vec![expect(
            "auth-disabled",
            "PUT",
            TENANT,
            Some("open"),
            None,
            None,
            201,
            "ok"
        )]
    );
}

#[tokio::test]
async fn no_changes_no_file_and_the_command_prints_nothing() {
    let mut server = TestServer::start(ServerOptions::default());
    assert_eq!(
        server.api.get("/api/v1/tenants").await.status,
        StatusCode::OK
    );
    assert!(server.stop().await.success());
    assert!(!server.data_dir.join("audit.log").exists());
    assert!(printed(&outpost_audit(&server.data_dir, &[])).is_empty());
}
