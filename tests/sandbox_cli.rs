//! `kycdash sandbox` as a user runs it: the `listening on` line, a clean stop on SIGTERM,
//! state kept across restarts, one sandbox per database, and readable errors for bad options.

mod support;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn kycdash() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kycdash"));
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts `kycdash sandbox` and returns it with the base URL from its first line.
async fn start(db: &std::path::Path) -> (Child, String) {
    let mut child = kycdash()
        .args(["sandbox", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .spawn()
        .expect("kycdash runs");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(support::PATIENCE, lines.next_line())
        .await
        .expect("the sandbox says where it listens")
        .unwrap()
        .unwrap_or_default();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (child, url)
}

async fn terminate(mut child: Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(support::PATIENCE, child.wait())
        .await
        .expect("the sandbox stops on SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
}

fn client(url: &str) -> support::Client {
    support::Client {
        http: reqwest::Client::new(),
        base: url.to_string(),
        key: Some(support::KEY.to_string()),
    }
}

#[tokio::test]
async fn the_sandbox_serves_stops_on_sigterm_and_keeps_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sandbox.db");
    let (child, url) = start(&db).await;
    let customer = client(&url)
        .create_customer(support::full_profile("Lovelace"))
        .await;

    // One sandbox per database.
    let second = kycdash()
        .args(["sandbox", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .output();
    let second = tokio::time::timeout(Duration::from_secs(30), second)
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("in use by another kycdash sandbox"), "{stderr}");

    terminate(child).await;
    let (child, url) = start(&db).await;
    let status = client(&url).status(customer).await;
    assert_eq!(status["nextAction"], "START_KYC");
    terminate(child).await;
}

#[tokio::test]
async fn bad_options_are_explained() {
    for (args, expected) in [
        (
            &["sandbox", "--api-key", "sk_x:SOMETHING"][..],
            "is not a strategy",
        ),
        (&["sandbox", "--listen", "localhost"], "invalid socket address"),
        (&["sandbox", "--rate-limit", "0"], "--rate-limit"),
        (
            &[
                "sandbox",
                "--api-key",
                "sk_a",
                "--api-key",
                "sk_a",
                "--db",
                ":memory:",
            ],
            "same key",
        ),
    ] {
        let output = kycdash().args(args).output().await.unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn a_public_url_must_be_an_http_url() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kycdash"))
        .args([
            "sandbox",
            "--db",
            ":memory:",
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "ftp://x",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("must be an http:// or https:// URL"), "{stderr}");
}
