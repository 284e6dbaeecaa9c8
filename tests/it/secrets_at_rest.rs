//! Destination secrets at rest: the data file and a backup of it, read as raw bytes, show none
//! of the credentials or delivery metadata a test stored; `outpost rekey` seals them again under
//! a new secret, and a server given the old one refuses to start.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::support::receiver::{Behaviour, Receiver};
use crate::support::{ProcessServer, ServerOptions};

const SIGNING_SECRET: &str = "whsec_c0ffee1234567890secretsecret";
const METADATA_SECRET: &str = "metadata-token-5f3a9d";

/// Runs an operator command on the server's data directory.
fn outpost(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data_dir)
        .envs(env.iter().copied())
        .current_dir(data_dir.parent().unwrap_or(data_dir))
        .output()
        .expect("run outpost")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

async fn create_destination(server: &ProcessServer, receiver: &Receiver) {
    let api = &server.api;
    assert_eq!(
        api.put("/api/v1/tenants/t1", None).await.status,
        StatusCode::CREATED
    );
    let created = api
        .post(
            "/api/v1/tenants/t1/destinations",
            json!({"id": "d1", "type": "webhook", "topics": ["*"],
                   "config": {"url": receiver.url("/hook")},
                   "credentials": {"secret": SIGNING_SECRET},
                   "delivery_metadata": {"token": METADATA_SECRET}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
}

/// The destination still shows `secret`, and a delivery still carries its metadata.
async fn still_delivers(server: &ProcessServer, receiver: &Receiver, event: &str, secret: &str) {
    let shown: Value = server
        .api
        .get("/api/v1/tenants/t1/destinations/d1")
        .await
        .json();
    assert_eq!(shown["credentials"]["secret"], secret);
    let before = receiver.count();
    let r = server
        .api
        .post(
            "/api/v1/publish",
            json!({"id": event, "tenant_id": "t1", "topic": "t", "data": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    let requests = receiver.wait_for(before + 1, Duration::from_secs(30)).await;
    assert_eq!(
        requests[before].header("x-outpost-token"),
        Some(METADATA_SECRET)
    );
}

#[tokio::test]
async fn no_secret_is_readable_in_the_data_file_or_a_backup() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let mut server = ProcessServer::start(ServerOptions::default());
    create_destination(&server, &receiver).await;
    // Rotation keeps the previous secret too: both must be sealed.
    let rotated = server
        .api
        .patch(
            "/api/v1/tenants/t1/destinations/d1",
            json!({"credentials": {"rotate_secret": true}}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text());
    let credentials = rotated.json()["credentials"].clone();
    assert_eq!(credentials["previous_secret"], SIGNING_SECRET);
    let current = credentials["secret"]
        .as_str()
        .expect("new secret")
        .to_string();
    let secrets = [SIGNING_SECRET, current.as_str(), METADATA_SECRET];
    still_delivers(&server, &receiver, "e1", &current).await;
    let data_dir = server.data_dir.clone();
    // A backup taken while the server runs.
    let backup = data_dir.parent().expect("parent").join("backup.redb");
    let out = outpost(
        &data_dir,
        &[],
        &["backup", "--to", backup.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.stop().success());
    let file = std::fs::read(data_dir.join("outpost.redb")).expect("data file");
    let copy = std::fs::read(&backup).expect("backup");
    for secret in &secrets {
        assert!(
            !contains(&file, secret),
            "{secret} readable in the data file"
        );
        assert!(!contains(&copy, secret), "{secret} readable in the backup");
    }
    // The secret lives beside the admin key, and `outpost check` needs no key.
    let credentials = std::fs::read_to_string(data_dir.join("credentials.env")).expect("file");
    assert!(
        credentials.contains("AES_ENCRYPTION_SECRET="),
        "{credentials}"
    );
    let out = outpost(&data_dir, &[], &["check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    server.restart(ServerOptions::default());
    still_delivers(&server, &receiver, "e2", &current).await;
}

#[tokio::test]
async fn rekey_seals_the_secrets_again_under_a_new_secret() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let mut server = ProcessServer::start(ServerOptions::default());
    create_destination(&server, &receiver).await;
    let data_dir = server.data_dir.clone();
    let secret_in = |dir: &Path| {
        std::fs::read_to_string(dir.join("credentials.env"))
            .expect("credentials")
            .lines()
            .find_map(|l| l.strip_prefix("AES_ENCRYPTION_SECRET=").map(str::to_string))
            .expect("secret line")
    };
    let first = secret_in(&data_dir);
    // Refused while the server runs.
    let out = outpost(&data_dir, &[], &["rekey"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stop the server"));
    assert!(server.stop().success());
    let out = outpost(&data_dir, &[], &["rekey"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 destinations"));
    let second = secret_in(&data_dir);
    assert_ne!(first, second);
    let credentials = std::fs::read_to_string(data_dir.join("credentials.env")).expect("file");
    assert!(
        !credentials.contains("AES_ENCRYPTION_SECRET_NEXT"),
        "{credentials}"
    );
    server.restart(ServerOptions::default());
    still_delivers(&server, &receiver, "e1", SIGNING_SECRET).await;
    assert!(server.stop().success());

    // A configured secret: the new one must be given, and the old one no longer opens the store.
    let out = outpost(&data_dir, &[("AES_ENCRYPTION_SECRET", &second)], &["rekey"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--new-secret"));
    let out = outpost(
        &data_dir,
        &[("AES_ENCRYPTION_SECRET", &second)],
        &["rekey", "--new-secret", "operator-chosen-secret"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stale = ServerOptions::default().env("AES_ENCRYPTION_SECRET", &second);
    let refused = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(stale.settings(&data_dir))
        .output()
        .expect("run outpost");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("AES_ENCRYPTION_SECRET"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    server.restart(ServerOptions::default().env("AES_ENCRYPTION_SECRET", "operator-chosen-secret"));
    still_delivers(&server, &receiver, "e2", SIGNING_SECRET).await;
}

#[tokio::test]
async fn a_rekey_cut_off_after_sealing_is_finished_by_the_next_start() {
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let mut server = ProcessServer::start(ServerOptions::default());
    create_destination(&server, &receiver).await;
    let data_dir = server.data_dir.clone();
    assert!(server.stop().success());
    // What `outpost rekey` leaves when stopped right after its commit: the store sealed under
    // the new secret, which waits in credentials.env as AES_ENCRYPTION_SECRET_NEXT.
    let old = outpost::credentials::stored(&data_dir, "AES_ENCRYPTION_SECRET")
        .expect("read")
        .expect("old secret");
    let next = "the-next-secret-0123456789";
    outpost::credentials::store_value(&data_dir, "AES_ENCRYPTION_SECRET_NEXT", next, &[])
        .expect("write next");
    let sealer = |s: &str| outpost::store::secrets::SecretBox::new(s).expect("key");
    outpost::store::maintenance::rekey(
        &data_dir.join("outpost.redb"),
        &sealer(&old),
        &sealer(next),
    )
    .expect("rekey");
    server.restart(ServerOptions::default());
    still_delivers(&server, &receiver, "e1", SIGNING_SECRET).await;
    let credentials = std::fs::read_to_string(data_dir.join("credentials.env")).expect("file");
    assert!(
        credentials.contains(&format!("AES_ENCRYPTION_SECRET={next}")),
        "{credentials}"
    );
    assert!(!credentials.contains("AES_ENCRYPTION_SECRET_NEXT"));
}
