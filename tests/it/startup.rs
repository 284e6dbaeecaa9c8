//! Start-up: configuration errors (bad templates included) name the setting, first start
//! generates credentials and every start says where the key comes from, a port in use fails
//! before DATA_DIR is touched, a second server on a data dir in use is refused in plain words,
//! the version flag works.

use std::io::Read;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};

use crate::support::client::{Api, Auth};
use crate::support::{ProcessServer, ServerOptions};

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

/// Starts `outpost serve` on `data` with no credentials configured; returns the child, its
/// address and the log up to the `listening` line.
async fn serve_unconfigured(
    dir: &std::path::Path,
    data: &std::path::Path,
) -> (std::process::Child, std::net::SocketAddr, String) {
    let mut child = outpost()
        .args(["serve"])
        .env("DATA_DIR", data)
        .env("API_PORT", "0")
        .env("API_HOST", "127.0.0.1")
        .current_dir(dir)
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
    (child, addr, log)
}

#[tokio::test]
async fn first_start_generates_credentials_readable_only_by_owner() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let (mut child, addr, log) = serve_unconfigured(temp.path(), &data).await;
    let file = data.join("credentials.env");
    assert!(
        log.contains(&format!(
            "admin API key: generated now (first start) into {}",
            file.display()
        )),
        "{log}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("API_KEY="))
        .unwrap()
        .to_string();
    assert!(!log.contains(&key), "the key itself is logged:\n{log}");
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

    // Every later start says where the key comes from too.
    let (mut child, addr, log) = serve_unconfigured(temp.path(), &data).await;
    assert!(
        log.contains(&format!(
            "admin API key: generated on an earlier start, read from {}",
            file.display()
        )),
        "{log}"
    );
    assert_eq!(
        Api::new(addr, &key)
            .raw(Method::GET, "/api/v1/tenants", None, Auth::Admin)
            .await
            .status,
        StatusCode::OK
    );
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_port_in_use_fails_before_anything_is_created_in_data_dir() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let temp = tempfile::tempdir().unwrap();
    let fresh = temp.path().join("fresh");
    let empty = temp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for data in [&fresh, &empty] {
        let out = outpost()
            .args(["serve"])
            .env("DATA_DIR", data)
            .env("API_HOST", "127.0.0.1")
            .env("API_PORT", &port)
            .current_dir(temp.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
            "{stderr}"
        );
    }
    assert!(!fresh.exists(), "a data dir was created");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[tokio::test]
async fn a_second_server_on_a_data_dir_in_use_is_refused_in_plain_words() {
    let server = ProcessServer::start(ServerOptions::default());
    server.api.put("/api/v1/tenants/acme", None).await;
    let out = outpost()
        .args(["serve"])
        .env("DATA_DIR", &server.data_dir)
        .env("API_HOST", "127.0.0.1")
        .env("API_PORT", "0")
        .env("API_KEY", "k")
        .env("API_JWT_SECRET", "s")
        .current_dir(server.data_dir.parent().unwrap())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let store = server.data_dir.join("outpost.redb");
    let pid = server.pid().unwrap();
    assert!(
        stderr.contains(&format!(
            "{} is in use by another outpost server (process {pid}",
            store.display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("Database already open"), "{stderr}");
    // The running server is unaffected.
    assert_eq!(
        server.api.get("/api/v1/tenants/acme").await.status,
        StatusCode::OK
    );
}
