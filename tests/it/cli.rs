//! The command line's first impressions: `-h` is `--help`, the top-level help says that
//! `outpost` alone serves, `token --help` names the generated secret, `config` shows generated
//! secrets as generated, and `restore` next to a running server says to stop it first.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{ProcessServer, ServerOptions};

fn outpost(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir.join("data"))
        .current_dir(dir)
        .output()
        .expect("run outpost")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn dash_h_is_help_and_says_outpost_alone_serves() {
    let dir = tempfile::tempdir().unwrap();
    let long = outpost(dir.path(), &["--help"]);
    let short = outpost(dir.path(), &["-h"]);
    assert!(
        long.status.success() && short.status.success(),
        "{}",
        stderr(&short)
    );
    assert_eq!(stdout(&short), stdout(&long));
    assert!(
        stdout(&long).contains("Without a command, `outpost` starts the server"),
        "{}",
        stdout(&long)
    );
    let sub_long = outpost(dir.path(), &["backup", "--help"]);
    let sub_short = outpost(dir.path(), &["backup", "-h"]);
    assert!(sub_short.status.success(), "{}", stderr(&sub_short));
    assert_eq!(stdout(&sub_short), stdout(&sub_long));
    // Help never starts anything.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn token_help_mentions_the_generated_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = outpost(dir.path(), &["token", "--help"]);
    assert!(out.status.success());
    let text = stdout(&out).replace('\n', " ");
    assert!(text.contains("API_JWT_SECRET"), "{text}");
    assert!(text.contains("DATA_DIR/credentials.env"), "{text}");
}

#[tokio::test]
async fn config_shows_generated_secrets_as_generated() {
    let dir = tempfile::tempdir().unwrap();
    let before = outpost(dir.path(), &["config"]);
    assert!(before.status.success(), "{}", stderr(&before));
    assert!(
        stdout(&before).contains("# API_KEY is unset"),
        "{}",
        stdout(&before)
    );

    // A server with neither secret configured generates both.
    let server = ProcessServer::start(
        ServerOptions {
            data_dir: Some(dir.path().join("data")),
            ..ServerOptions::default()
        }
        .env("API_KEY", "")
        .env("API_JWT_SECRET", ""),
    );
    let file = dir.path().join("data/credentials.env");
    let stored = std::fs::read_to_string(&file).unwrap();
    let key = stored
        .lines()
        .find_map(|l| l.strip_prefix("API_KEY="))
        .expect("a generated API_KEY");
    let after = outpost(dir.path(), &["config"]);
    assert!(after.status.success(), "{}", stderr(&after));
    let text = stdout(&after);
    for name in ["API_KEY", "API_JWT_SECRET"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} line:\n{text}"));
        assert!(line.starts_with(&format!("{name}=<redacted>")), "{line}");
        assert!(line.contains("generated"), "{line}");
        assert!(line.contains("credentials.env"), "{line}");
    }
    assert!(!text.contains(key), "the key itself is printed:\n{text}");
    drop(server);
}

#[tokio::test]
async fn restore_next_to_a_running_server_says_to_stop_it_first() {
    let server = ProcessServer::start(ServerOptions::default());
    server.api.put("/api/v1/tenants/acme", None).await;
    let parent = server.data_dir.parent().unwrap();
    let backup = parent.join("backup.redb");
    let made = outpost(parent, &["backup", "--to", backup.to_str().unwrap()]);
    assert!(made.status.success(), "{}", stderr(&made));
    let pid = server.pid().unwrap().to_string();
    for args in [
        vec!["restore", "--from", backup.to_str().unwrap()],
        vec!["restore", "--from", backup.to_str().unwrap(), "--replace"],
    ] {
        let out = outpost(parent, &args);
        assert!(
            !out.status.success(),
            "{args:?} succeeded next to a running server"
        );
        let message = stderr(&out);
        assert!(message.contains("stop the server first"), "{message}");
        assert!(message.contains(&format!("process {pid}")), "{message}");
        assert!(!message.contains("--replace"), "{message}");
    }
    // Nothing was set aside or replaced.
    assert!(!server.data_dir.join("outpost.redb.before-restore").exists());
    assert_eq!(
        server.api.get("/api/v1/tenants/acme").await.status,
        hyper::StatusCode::OK
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // As in `outpost --help | head -0`: the reader is gone before anything is written.
    for args in [&["--help"][..], &["--version"][..]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let output = Command::new(env!("CARGO_BIN_EXE_outpost"))
            .args(args)
            .env_clear()
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run outpost");
        assert!(
            !stderr(&output).contains("panicked"),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.status.success(), "{args:?}: {:?}", output.status);
    }
}
