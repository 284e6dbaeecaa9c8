//! Start-up: configuration errors (bad templates included) name the setting, first start
//! generates credentials, the version flag works.

use std::io::Read;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};

use crate::support::client::{Api, Auth};

fn outpost() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_outpost"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn version_flag() {
    let out = outpost().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("outpost {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_setting_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = outpost()
        .args(["serve"])
        .env("DATA_DIR", dir.path())
        .env("API_PORT", "not-a-port")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("API_PORT"), "{stderr}");

    std::fs::write(
        dir.path().join("outpost.toml"),
        "max_destinations_per_tenant = \"many\"\n",
    )
    .unwrap();
    let out = outpost()
        .args(["serve"])
        .env("DATA_DIR", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAX_DESTINATIONS_PER_TENANT"));
}

/// A template that does not parse, or does not render on a sample event, stops start-up with a
/// message naming its setting: outpost never switches to another format instead.
#[test]
fn bad_template_stops_start_up_naming_it() {
    let cases = [
        // Does not parse.
        (
            "DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_TEMPLATE",
            "v0={{.Signatures | join",
        ),
        // Parses, but the header template has no `.Body` to render.
        (
            "DESTINATIONS_WEBHOOK_SIGNATURE_HEADER_TEMPLATE",
            "v0={{.Body}}",
        ),
        // Parses, but the content template has no `.Signatures` to render.
        (
            "DESTINATIONS_WEBHOOK_SIGNATURE_CONTENT_TEMPLATE",
            "{{.Signatures}}",
        ),
        (
            "DESTINATIONS_WEBHOOK_SIGNING_SECRET_TEMPLATE",
            "whsec_{{.RandomHex",
        ),
        // Parses, but names a field secrets do not have.
        (
            "DESTINATIONS_WEBHOOK_SIGNING_SECRET_TEMPLATE",
            "whsec_{{.RandomHexx}}",
        ),
        // Renders an empty secret.
        (
            "DESTINATIONS_WEBHOOK_SIGNING_SECRET_TEMPLATE",
            "{{/* nothing */}}",
        ),
    ];
    for (setting, template) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut child = outpost()
            .args(["serve"])
            .env("DATA_DIR", dir.path())
            .env("API_PORT", "0")
            .env("API_HOST", "127.0.0.1")
            .env(setting, template)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = exit_within(&mut child, Duration::from_secs(20));
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            pipe.read_to_string(&mut stderr).unwrap();
        }
        let status = status.unwrap_or_else(|| panic!("{setting}={template:?} started:\n{stderr}"));
        assert!(!status.success(), "{setting}={template:?}:\n{stderr}");
        assert!(
            stderr.contains(setting),
            "{setting}={template:?}:\n{stderr}"
        );
    }
}

/// The child's exit status, or `None` (after killing it) if it still runs after `limit`.
fn exit_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn config_command_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = outpost()
        .arg("config")
        .env("API_KEY", "very-secret-key")
        .env("TOPICS", "a,b")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("API_KEY=<redacted>"));
    assert!(!text.contains("very-secret-key"));
    assert!(text.contains("TOPICS=a,b"));
}

#[tokio::test]
async fn first_start_generates_credentials_readable_only_by_owner() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let mut child = outpost()
        .args(["serve"])
        .env("DATA_DIR", &data)
        .env("API_PORT", "0")
        .env("API_HOST", "127.0.0.1")
        .current_dir(temp.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (addr, log) = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut log = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            log.push_str(&line);
            log.push('\n');
            if let Some(addr) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("addr="))
            {
                return (addr.parse::<std::net::SocketAddr>().unwrap(), log);
            }
        }
        panic!("no listening line:\n{log}");
    })
    .await
    .unwrap();
    let file = data.join("credentials.env");
    assert!(log.contains("credentials.env"), "{log}");
    let text = std::fs::read_to_string(&file).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("API_KEY="))
        .unwrap()
        .to_string();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let api = Api::new(addr, &key);
    assert_eq!(
        api.raw(Method::GET, "/api/v1/tenants", None, Auth::None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.raw(Method::GET, "/api/v1/tenants", None, Auth::Admin)
            .await
            .status,
        StatusCode::OK
    );
    let _ = child.kill();
    let _ = child.wait();
}
