//! HTTP fuzz of the whole API from upstream's OpenAPI contract (tests/fixtures/outpost-openapi.yaml)
//! with Schemathesis, bounded and seeded: no server error, and every response within the
//! contract except where upstream's server answers otherwise (tests/api_fuzz/hooks.py,
//! docs/fuzzing.md). `scripts/api-fuzz.sh` runs the same against the release binary with more
//! examples. Schemathesis comes from `.venv-sdk` (tests/sdk/requirements.txt).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::{server::API_KEY, ServerOptions, TestServer};

/// Test cases per operation and phase; the coverage phase adds its own, bounded by the contract.
const MAX_EXAMPLES: &str = "10";
const SEED: &str = "1";

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_contract_break() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let schemathesis = root.join(".venv-sdk/bin/schemathesis");
    if !schemathesis.exists() {
        eprintln!("skipped: Schemathesis is not installed in .venv-sdk (run scripts/test.sh)");
        return;
    }
    let server =
        TestServer::start(ServerOptions::default().env("TOPICS", "user.created,user.updated"));
    // The data tests/api_fuzz/schemathesis.toml names.
    for (tenant, destination) in [("t1", "d1"), ("t1", "d2"), ("t2", "d3")] {
        let r = server
            .api
            .put(&format!("/api/v1/tenants/{tenant}"), None)
            .await;
        assert!(r.status.is_success(), "{}", r.text());
        let r = server
            .api
            .post(
                &format!("/api/v1/tenants/{tenant}/destinations"),
                json!({"id": destination, "type": "webhook", "topics": "*",
                       "config": {"url": "https://example.com/hook"}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let r = server
        .api
        .post(
            "/api/v1/publish",
            json!({"id": "e1", "tenant_id": "t1", "topic": "user.created", "data": {"u": 1}}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let mut attempt_id = String::new();
    for _ in 0..100 {
        let r = server.api.get("/api/v1/attempts?tenant_id=t1").await;
        if let Some(id) = r.json()["models"][0]["id"].as_str() {
            attempt_id = id.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let url = format!("http://{}/api/v1", server.addr);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .current_dir(&root)
            .env("PYTHONPATH", root.join("tests/api_fuzz"))
            .env("SCHEMATHESIS_HOOKS", "hooks")
            .env("API_FUZZ_ATTEMPT_ID", attempt_id)
            .args(["--config-file", "tests/api_fuzz/schemathesis.toml", "run"])
            .arg("tests/fixtures/outpost-openapi.yaml")
            .args(["--url", &url])
            .args(["-H", &format!("Authorization: Bearer {API_KEY}")])
            .args([
                "--checks",
                "not_a_server_error,upstream_status_code_conformance,\
                 upstream_response_schema_conformance",
            ])
            .args(["--exclude-path", "/config"])
            .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
            .args(["--workers", "1", "--generation-database", "none"])
            .args(["--no-color", "--suppress-health-check", "all"])
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}"
    );
    // The run tested every operation but /config, and generated cases that all passed.
    assert!(stdout.contains("Tested: 27"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" generated, ") && l.trim_end().ends_with(" passed")),
        "{stdout}"
    );
}
