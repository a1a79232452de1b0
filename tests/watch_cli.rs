//! `kycdash watch` and `kycdash status` as a user runs them: NDJSON on stdout with `started`
//! first and `stopped` last, a clean stop on SIGTERM and SIGHUP (exit 0), one engine per data directory
//! (exit 2), a refused key (exit 1, one clear line), and bad configuration (exit 2).

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const PATIENCE: Duration = Duration::from_secs(20);

fn kycdash(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kycdash"));
    command
        .env_remove("KYCDASH_API_URL")
        .env_remove("KYCDASH_API_KEY")
        // No user config can leak in.
        .env("KYCDASH_CONFIG", data_dir.join("no-config.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn next_json(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("a line in time")
        .unwrap()
        .expect("a line before the end");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// After a signal: `stopped` is the last line, and the exit code 0.
async fn stops_cleanly(watch: &mut Child, lines: &mut Lines<BufReader<ChildStdout>>) {
    let mut last = Value::Null;
    while let Ok(Some(line)) = tokio::time::timeout(PATIENCE, lines.next_line()).await.unwrap() {
        last = serde_json::from_str(&line).unwrap();
    }
    assert_eq!(last["kind"], "stopped");
    let exit = tokio::time::timeout(PATIENCE, watch.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}

async fn terminate(child: &mut Child) {
    send(child, "TERM");
}

fn send(child: &Child, signal: &str) {
    let pid = child.id().expect("running").to_string();
    assert!(
        std::process::Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .unwrap()
            .success()
    );
}

/// SIGHUP (the terminal that started it went away) stops `watch` as SIGTERM does; the data
/// directory it created is this user's alone, and so are the databases in it; the webhook
/// secret can come from the environment.
#[tokio::test]
async fn sighup_stops_watch_cleanly_and_its_files_are_private() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let mut watch = kycdash(root.path())
        .args(["watch", "--data-dir"])
        .arg(&dir)
        .env("KYCDASH_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let started = next_json(&mut lines).await;
    assert_eq!(started["kind"], "started");
    // With the secret from the environment, it registers no endpoint of its own.
    let endpoints: Value = reqwest::Client::new()
        .get(format!("{}/v1/webhooks", started["apiUrl"].as_str().unwrap()))
        .bearer_auth("sk_test_kycdash")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(endpoints["data"], serde_json::json!([]), "{endpoints}");
    assert_eq!(next_json(&mut lines).await["kind"], "sweep");
    send(&watch, "HUP");
    stops_cleanly(&mut watch, &mut lines).await;

    use std::os::unix::fs::PermissionsExt;
    let mode = |path: std::path::PathBuf| std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.clone()), 0o700, "the data directory");
    for file in ["cache.db", "sandbox.db"] {
        assert_eq!(mode(dir.join(file)), 0o600, "{file}");
    }
    // SQLite's companions, where a clean close left them, have the database's mode.
    for file in ["cache.db-wal", "cache.db-shm", "sandbox.db-wal", "sandbox.db-shm"] {
        if dir.join(file).exists() {
            assert_eq!(mode(dir.join(file)), 0o600, "{file}");
        }
    }
}

#[tokio::test]
async fn watch_prints_started_first_stops_on_sigterm_and_owns_its_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut watch = kycdash(dir.path())
        .args(["watch", "--data-dir"])
        .arg(dir.path())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let started = next_json(&mut lines).await;
    assert_eq!(started["kind"], "started", "{started}");
    assert_eq!(started["sandbox"], true);
    assert!(started["at"].as_str().unwrap().ends_with('Z'), "{started}");
    let api = started["apiUrl"].as_str().unwrap().to_string();
    assert!(api.starts_with("http://127.0.0.1:"), "{api}");
    assert!(started["webhookUrl"].as_str().unwrap().ends_with("/webhooks"));
    assert_eq!(started["dataDir"], dir.path().display().to_string());
    let sweep = next_json(&mut lines).await;
    assert_eq!(sweep["kind"], "sweep", "{sweep}");

    // The customer created with curl meanwhile shows up through the webhook.
    let created: Value = reqwest::Client::new()
        .post(format!("{api}/v1/customers"))
        .bearer_auth("sk_test_kycdash")
        .json(&serde_json::json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    loop {
        let line = next_json(&mut lines).await;
        if line["kind"] == "stage_changed" {
            assert_eq!(line["customerId"], id);
            assert_eq!(line["from"], Value::Null);
            assert_eq!(line["to"], "needs_profile");
            assert_eq!(line["nextAction"], "UPDATE_PROFILE");
            assert_eq!(line["isCompliant"], false);
            break;
        }
    }

    // A second engine on the same data directory says so and exits 2.
    let second = kycdash(dir.path())
        .args(["watch", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another kycdash is using the data directory"),
        "{stderr}"
    );
    assert!(second.stdout.is_empty());

    // `status` beside the running watch reaches its sandbox.
    let status = kycdash(dir.path())
        .args(["status", id, "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        text.contains("ada@example.com") && text.contains("PATCH /v1/customers/"),
        "{text}"
    );
    assert!(text.contains("kyc.firstName"), "{text}");

    terminate(&mut watch).await;
    stops_cleanly(&mut watch, &mut lines).await;
}

/// SPEC §10: a panic anywhere, in a tokio task (which tokio alone would swallow) or in a
/// thread (which would end alone), ends `watch` with exit 1 and one line on stderr, last.
/// `KYCDASH_TEST_PANIC` is the debug build's trigger.
#[tokio::test]
async fn a_panic_in_a_task_or_a_thread_ends_watch_with_exit_1_and_one_line() {
    for place in ["task", "thread"] {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = kycdash(dir.path())
            .args(["watch", "--data-dir"])
            .arg(dir.path())
            .env("KYCDASH_TEST_PANIC", place)
            // No backtrace asked for: the line is the whole report.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
        assert_eq!(next_json(&mut lines).await["kind"], "started");
        let mut stderr = watch.stderr.take().unwrap();
        let exit = tokio::time::timeout(PATIENCE, watch.wait())
            .await
            .unwrap_or_else(|_| panic!("{place}: watch still runs after the panic"))
            .unwrap();
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text)
            .await
            .unwrap();
        assert_eq!(exit.code(), Some(1), "{place}: {text}");
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("kycdash: internal error"))
            .collect();
        assert_eq!(errors.len(), 1, "{place}: {text}");
        assert_eq!(
            text.lines().last(),
            Some(errors[0]),
            "{place}: the line is the last"
        );
        assert!(
            errors[0].contains(&format!("a {place} panicked at src/")),
            "{place}: the message and where: {text}"
        );
        // Rust's own report ("thread '…' panicked at …") is replaced, not added to.
        assert!(!text.contains("' panicked at"), "{place}: {text}");
    }
}

#[tokio::test]
async fn a_refused_key_ends_watch_with_exit_1_and_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = kycdash::sandbox::start(kycdash::sandbox::SandboxConfig::ephemeral())
        .await
        .unwrap();
    let output = kycdash(dir.path())
        .args([
            "watch",
            "--once",
            "--api-url",
            sandbox.base_url(),
            "--api-key",
            "sk_wrong_key_123456",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("401"), "{stderr}");
    assert!(
        !stderr.contains("sk_wrong_key_123456"),
        "the key leaked: {stderr}"
    );
    sandbox.shutdown().await;
}

/// `watch --once` with the profile `live` of a config file holding `config`.
async fn watch_once_with_profile(dir: &std::path::Path, config: &str) -> std::process::Output {
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    kycdash(dir)
        .env("KYCDASH_CONFIG", &path)
        .args(["watch", "--once", "--profile", "live", "--data-dir"])
        .arg(dir)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_configuration_exits_2_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let output = watch_once_with_profile(
        dir.path(),
        "[profiles.live]\napi_url = \"http://127.0.0.1:9\"\napi_kee = \"x\"\n",
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("api_kee") && stderr.contains("line 3"),
        "{stderr}"
    );

    let output = kycdash(dir.path())
        .args(["watch", "--once", "--api-url", "http://127.0.0.1:9", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("without an API key"));

    // Values that would only fail later, as network errors, exit 2 naming what is wrong.
    let cases: [(&[&str], &str); 3] = [
        (
            &["--api-url", "http://exa mple", "--api-key", "sk_test_x"],
            "http://exa mple",
        ),
        (
            &["--api-url", "http://127.0.0.1:9", "--api-key", "sk_test\nx"],
            "the API key",
        ),
        (
            &[
                "--api-url",
                "http://127.0.0.1:9",
                "--api-key",
                "sk_test_x",
                "--webhook-url",
                "ftp://x",
            ],
            "--webhook-url must be an http(s) URL, not \"ftp://x\"",
        ),
    ];
    for (args, named) in cases {
        let output = kycdash(dir.path())
            .arg("watch")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(named), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("sk_test\nx") && !stderr.contains("sk_test_x"),
            "{stderr}"
        );
    }
    let output = watch_once_with_profile(
        dir.path(),
        "[profiles.live]\napi_url = \"http://127.0.0.1:9\"\napi_key = \"sk_test_x\"\nconcurrency = 1000000000000\n",
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("concurrency must be 1 to 1024, not 1000000000000"),
        "{stderr}"
    );
}

/// SPEC §10: `status` answers from the cache while the API is unreachable, saying how old the
/// answer is and why; fresh answers say they are not stale. A customer the cache does not
/// know either is exit 1.
#[tokio::test]
async fn status_answers_from_the_cache_while_the_api_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = kycdash::sandbox::start(kycdash::sandbox::SandboxConfig::ephemeral())
        .await
        .unwrap();
    let api = sandbox.base_url().to_string();
    reqwest::Client::new()
        .post(format!("{api}/v1/customers"))
        .bearer_auth("sk_test_kycdash")
        .json(&serde_json::json!({"email": "ada@example.com", "externalId": "ada-1"}))
        .send()
        .await
        .unwrap();
    let connect = ["--api-url", &api, "--api-key", "sk_test_kycdash", "--data-dir"];
    let run = |args: Vec<&str>| {
        let mut command = kycdash(dir.path());
        command.args(args).args(connect).arg(dir.path());
        async move { command.output().await.unwrap() }
    };
    let once = run(vec!["watch", "--once"]).await;
    assert_eq!(
        once.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );

    let fresh = run(vec!["status", "ada-1", "--json"]).await;
    assert_eq!(fresh.status.code(), Some(0));
    let fresh: Value = serde_json::from_slice(&fresh.stdout).unwrap();
    assert_eq!(fresh["stale"], false);
    assert!(fresh["fetchedAt"].as_str().unwrap().ends_with('Z'), "{fresh}");

    sandbox.shutdown().await;
    let text = run(vec!["status", "ada-1"]).await;
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(
        text.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    assert!(stdout.starts_with("as of "), "{stdout}");
    assert!(stdout.contains(" ago); the API is unreachable: "), "{stdout}");
    assert!(stdout.contains("ada@example.com"), "{stdout}");

    let json = run(vec!["status", "ada-1", "--json"]).await;
    assert_eq!(json.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["stale"], true);
    assert!(json["fetchedAt"].as_str().unwrap().ends_with('Z'), "{json}");
    assert_eq!(json["customer"]["externalId"], "ada-1");

    let unknown = run(vec!["status", "bob-2"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("cannot reach the API") && stderr.contains("bob-2"),
        "{stderr}"
    );
}

/// A loopback port nothing listens on (yet).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Reads `lines` until one contains `needle`.
async fn wait_for_line<R: tokio::io::AsyncBufRead + Unpin>(lines: &mut Lines<R>, needle: &str) {
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains(needle) {
                return;
            }
        }
        panic!("no line with {needle:?} before the end");
    });
    found
        .await
        .unwrap_or_else(|_| panic!("no line with {needle:?} within {PATIENCE:?}"));
}

/// SPEC §10, offline first: `watch` started with the API down keeps running, printing
/// `poll_error` lines with `retryInSeconds` and saying so on stderr; once the API answers on
/// that address, what changed arrives as `stage_changed` lines.
#[tokio::test]
async fn watch_outlives_an_api_that_is_down_at_start() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut watch = kycdash(root.path())
        .args([
            "watch",
            "--api-url",
            &url,
            "--api-key",
            support::KEY,
            "--data-dir",
        ])
        .arg(&dir)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(watch.stderr.take().unwrap()).lines();
    assert_eq!(next_json(&mut lines).await["kind"], "started");
    let error = next_json(&mut lines).await;
    assert_eq!(error["kind"], "poll_error", "{error}");
    assert!(error["retryInSeconds"].is_u64(), "{error}");
    wait_for_line(&mut stderr, "the API is unreachable since").await;

    let sandbox = kycdash::sandbox::start(kycdash::sandbox::SandboxConfig {
        listen: ([127, 0, 0, 1], port).into(),
        ..support::config()
    })
    .await
    .unwrap();
    let client = support::client(&sandbox, Some(support::KEY));
    let customer = client.create_customer(support::full_profile("Lovelace")).await;
    let changed = tokio::time::timeout(PATIENCE * 2, async {
        loop {
            let line = next_json(&mut lines).await;
            if line["kind"] == "stage_changed" && line["customerId"] == customer.to_string() {
                return line;
            }
        }
    })
    .await
    .expect("the customer's stage once the API answers");
    assert_eq!(changed["to"], "ready_to_start", "{changed}");
    wait_for_line(&mut stderr, "the API answers again").await;
    terminate(&mut watch).await;
    stops_cleanly(&mut watch, &mut lines).await;
    sandbox.shutdown().await;
}

/// SPEC §10: `watch --once` with the API unreachable exits 1 after its retries, with one line
/// on stderr (the `poll_error` line is on stdout with the rest).
#[tokio::test]
async fn watch_once_against_a_dead_api_exits_1_with_one_line() {
    let root = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let output = kycdash(root.path())
        .args([
            "watch",
            "--once",
            "--api-url",
            &url,
            "--api-key",
            support::KEY,
            "--data-dir",
        ])
        .arg(root.path().join("data"))
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line on stderr:\n{stderr}");
    assert!(stderr.contains("cannot reach the API"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let kinds: Vec<String> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("started"), "{stdout}");
    assert!(kinds.contains(&"poll_error".to_string()), "{stdout}");
    assert_eq!(kinds.last().map(String::as_str), Some("stopped"), "{stdout}");
}
