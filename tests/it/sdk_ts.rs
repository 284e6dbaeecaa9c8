//! The README's TypeScript quick start with the official SDK (`@hookdeck/outpost-sdk` from
//! npm): runs `tests/sdk-ts/quickstart.mjs` with node against the real server, then checks that
//! the event it published arrives, signed with the destination's secret. `scripts/test.sh`
//! installs the SDK into `tests/sdk-ts/node_modules`; `OUTPOST_SKIP_SDK_TS=1` skips this test
//! where node is not available.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::server::API_KEY;
use crate::support::{Behaviour, Receiver, ServerOptions, TestServer};

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk-ts")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn official_typescript_sdk_quick_start() {
    if std::env::var_os("OUTPOST_SKIP_SDK_TS").is_some_and(|v| v == "1") {
        eprintln!("skipped: OUTPOST_SKIP_SDK_TS=1");
        return;
    }
    let dir = sdk_dir();
    assert!(
        dir.join("node_modules/@hookdeck/outpost-sdk").is_dir(),
        "the TypeScript SDK is not installed: run scripts/test.sh (or `npm ci` in tests/sdk-ts); \
         without node and npm set OUTPOST_SKIP_SDK_TS=1 to skip this test"
    );
    let node = std::env::var_os("OUTPOST_SDK_NODE").unwrap_or_else(|| "node".into());
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let server = TestServer::start(ServerOptions::default());
    let url = format!("http://{}", server.addr);
    let hook = receiver.url("/hook");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(node)
            .arg("quickstart.mjs")
            .current_dir(dir)
            .env("OUTPOST_URL", url)
            .env("OUTPOST_API_KEY", API_KEY)
            .env("RECEIVER_URL", hook)
            .output()
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("cannot run node ({e}); set OUTPOST_SKIP_SDK_TS=1 to skip"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the TypeScript quick start failed:\n{stdout}\n{stderr}"
    );
    let result: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("unexpected output ({e}):\n{stdout}"));
    let event = result["event"].as_str().expect("event id");
    let secret = result["secret"].as_str().expect("destination secret");

    let request = receiver
        .wait_for(1, Duration::from_secs(20))
        .await
        .remove(0);
    assert_eq!(request.event_id().as_deref(), Some(event));
    assert_eq!(request.header("x-outpost-topic"), Some("user.created"));
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, serde_json::json!({"user_id": "u_1"}));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let expected = format!("v0={}", hex(ring::hmac::sign(&key, &request.body).as_ref()));
    assert_eq!(
        request.header("x-outpost-signature"),
        Some(expected.as_str())
    );
}
