//! Operator commands against real data directories: backup of a running server and restore
//! into a fresh one, integrity check, token minting, systemd readiness notification.

use std::path::Path;
use std::process::{Command, Output};

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::server::JWT_SECRET;
use crate::support::{Api, ServerOptions, TestServer};

fn outpost(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir)
        .env("API_JWT_SECRET", JWT_SECRET)
        .current_dir(data_dir.parent().unwrap_or(data_dir))
        .output()
        .expect("run outpost")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Everything the API shows of the store, for comparing two servers.
async fn snapshot(api: &Api) -> Vec<Value> {
    let mut out = vec![
        api.get("/api/v1/tenants?limit=100").await.json(),
        api.get("/api/v1/tenants/acme/destinations").await.json(),
        api.get("/api/v1/events?limit=1000").await.json(),
    ];
    out.push(api.get("/api/v1/tenants/acme").await.json());
    out
}

#[tokio::test]
async fn backup_of_a_running_server_restores_into_a_fresh_data_dir() {
    let server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    api.put(
        "/api/v1/tenants/acme",
        Some(json!({"metadata": {"plan": "pro"}})),
    )
    .await;
    api.put("/api/v1/tenants/other", None).await;
    let r = api
        .post(
            "/api/v1/tenants/acme/destinations",
            json!({"id": "d", "type": "webhook", "topics": "*", "config": {"url": "http://127.0.0.1:9/h"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    for i in 0..20 {
        let r = api
            .post(
                "/api/v1/publish",
                json!({"id": format!("e{i}"), "tenant_id": "acme", "topic": "t", "data": {"i": i}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let before = snapshot(api).await;

    // Backup while the server keeps running.
    let backup = server.data_dir.parent().unwrap().join("backup.redb");
    let out = outpost(
        &server.data_dir,
        &["backup", "--to", backup.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("EVENTS"), "{}", text(&out));
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
    // A second backup to the same path is refused.
    assert!(!outpost(
        &server.data_dir,
        &["backup", "--to", backup.to_str().unwrap()]
    )
    .status
    .success());

    // Restore into a fresh data dir and serve it.
    let fresh = tempfile::tempdir().unwrap();
    let fresh_data = fresh.path().join("data");
    let out = outpost(
        &fresh_data,
        &["restore", "--from", backup.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = outpost(&fresh_data, &["check"]);
    assert!(out.status.success(), "{}", text(&out));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fresh_data.join("outpost.redb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "a restored store is readable only by its owner"
        );
    }
    // Restoring over an existing store needs --replace.
    let again = outpost(
        &fresh_data,
        &["restore", "--from", backup.to_str().unwrap()],
    );
    assert!(!again.status.success());
    assert!(text(&again).contains("--replace"), "{}", text(&again));

    // Destination secrets in the backup are sealed with the original server's
    // AES_ENCRYPTION_SECRET, kept in its credentials.env: the restored server needs it.
    std::fs::copy(
        server.data_dir.join("credentials.env"),
        fresh_data.join("credentials.env"),
    )
    .expect("carry credentials.env over");
    let restored = TestServer::start(ServerOptions {
        data_dir: Some(fresh_data.clone()),
        ..ServerOptions::default()
    });
    let after = snapshot(&restored.api).await;
    assert_eq!(after, before);
}

#[tokio::test]
async fn check_reports_in_use_healthy_and_corrupt_files() {
    let mut server = TestServer::start(ServerOptions::default());
    server.api.put("/api/v1/tenants/t", None).await;
    let out = outpost(&server.data_dir, &["check"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("in use"), "{}", text(&out));
    assert!(server.stop().await.success());

    let out = outpost(&server.data_dir, &["check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("TENANTS"), "{}", text(&out));

    let garbage = server.data_dir.join("garbage.redb");
    std::fs::write(&garbage, vec![0x5a; 64 * 1024]).unwrap();
    let out = outpost(
        &server.data_dir,
        &["check", "--file", garbage.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let missing = outpost(
        &server.data_dir,
        &["check", "--file", "/nonexistent/x.redb"],
    );
    assert!(!missing.status.success());
}

#[tokio::test]
async fn check_names_a_damaged_index_and_fails() {
    let receiver = crate::support::Receiver::start(crate::support::Behaviour::Status(200)).await;
    let mut server = TestServer::start(ServerOptions::default());
    let api = &server.api;
    api.put("/api/v1/tenants/acme", None).await;
    let r = api
        .post(
            "/api/v1/tenants/acme/destinations",
            json!({"id": "d", "type": "webhook", "topics": "*", "config": {"url": receiver.url("/h")}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    for i in 0..3 {
        let r = api
            .post(
                "/api/v1/publish",
                json!({"id": format!("e{i}"), "tenant_id": "acme", "topic": "t", "data": {}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    receiver
        .wait_for(3, std::time::Duration::from_secs(20))
        .await;
    let attempt_id = loop {
        let v = api.get("/api/v1/attempts?event_id=e1").await.json();
        if let Some(id) = v["models"][0]["id"].as_str() {
            break id.to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(server.stop().await.success());
    let out = outpost(&server.data_dir, &["check"]);
    assert!(out.status.success(), "{}", text(&out));

    // Drop the attempts-by-event entry of e1's attempt, as a torn index would.
    let file = server.data_dir.join("outpost.redb");
    {
        use redb::ReadableTable;
        let index: redb::TableDefinition<&[u8], &str> =
            redb::TableDefinition::new("attempts_by_event");
        let db = redb::Database::open(&file).expect("open store file");
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn.open_table(index).expect("index");
            let key = table
                .iter()
                .expect("iter")
                .map(|row| row.expect("row"))
                .find(|(_, id)| id.value() == attempt_id)
                .map(|(key, _)| key.value().to_vec())
                .expect("indexed attempt");
            table.remove(key.as_slice()).expect("remove");
        }
        txn.commit().expect("commit");
    }
    let out = outpost(&server.data_dir, &["check"]);
    assert!(!out.status.success(), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("consistency check"), "{report}");
    assert!(
        report.contains(&format!(
            "attempts \"{attempt_id}\" (event \"e1\", destination \"d\", number 1) has no attempts_by_event entry"
        )),
        "{report}"
    );
    assert!(
        report.contains("attempts_by_event has 2 entries but attempt_log has 3 records"),
        "{report}"
    );
}

#[tokio::test]
async fn token_command_mints_a_working_tenant_jwt() {
    let server = TestServer::start(ServerOptions::default());
    server.api.put("/api/v1/tenants/acme", None).await;
    let out = outpost(&server.data_dir, &["token", "acme"]);
    assert!(out.status.success(), "{}", text(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let r = server
        .api
        .as_tenant(&token, Method::GET, "/api/v1/tenants/acme", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = server
        .api
        .as_tenant(&token, Method::GET, "/api/v1/tenants/other", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn notifies_systemd_when_ready() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let server = crate::support::ProcessServer::start(
        ServerOptions::default().env("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
    );
    let mut buf = [0u8; 128];
    let n = socket.recv(&mut buf).expect("READY=1 from the server");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means serving.
    assert_eq!(server.api.get("/healthz").await.status, StatusCode::OK);
}
