//! Compatibility with the official Python SDK (`outpost-sdk` from PyPI): runs
//! `tests/sdk/compat.py`, which drives the server through the SDK with its response
//! validation on. `scripts/test.sh` installs the SDK into `.venv-sdk`.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{server::API_KEY, ServerOptions, TestServer};

/// The Python of `.venv-sdk` (or `$OUTPOST_SDK_PYTHON`), which has tests/sdk/requirements.txt.
pub fn sdk_python() -> PathBuf {
    if let Some(python) = std::env::var_os("OUTPOST_SDK_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-sdk/bin/python");
    assert!(
        venv.exists(),
        "the Python SDK is not installed: run scripts/test.sh (or create .venv-sdk with \
         tests/sdk/requirements.txt)"
    );
    venv
}

#[tokio::test]
async fn official_python_sdk_drives_the_api() {
    let server = TestServer::start(
        ServerOptions::default().env("TOPICS", "user.created,user.updated,user.deleted"),
    );
    let python = sdk_python();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/compat.py");
    let url = format!("http://{}", server.addr);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("OUTPOST_URL", url)
            .env("OUTPOST_API_KEY", API_KEY)
            .output()
            .expect("run the SDK compatibility script")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK compatibility failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.lines().any(|l| l.ends_with("passed, 0 failed")),
        "{stdout}"
    );
}
