//! SPEC §10, secrets at rest: with every log at trace level (`RUST_LOG=trace`, the HTTP crates'
//! included), a whole flow between `kycdash sandbox` and `kycdash watch` (signed webhooks,
//! verified) shows neither the API key nor the webhook signing secret in any output or log
//! file of either process, whether `watch` registered its endpoint itself or was given the
//! secret in `KYCDASH_WEBHOOK_SECRET`.

mod support;

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use support::PATIENCE;

/// A key no other test uses, long enough that only a leak could print it whole.
const KEY: &str = "sk_test_tracecheck_5d2c81f0a94e";

/// A process whose stdout and stderr are kept as they come (trace logs are many: the pipes
/// must be drained all along); stdout's lines are also handed over one by one.
struct Captured {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    lines: mpsc::UnboundedReceiver<String>,
}

fn drain(
    from: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
    lines: Option<mpsc::UnboundedSender<String>>,
) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(from).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            let mut kept = into.lock().unwrap();
            kept.push_str(&line);
            kept.push('\n');
            if let Some(lines) = &lines {
                let _ = lines.send(line);
            }
        }
    });
}

impl Captured {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Captured {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kycdash"));
        command
            .args(args)
            .env("RUST_LOG", "trace")
            .env_remove("KYCDASH_API_URL")
            .env_remove("KYCDASH_API_KEY")
            .env_remove("KYCDASH_WEBHOOK_SECRET")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("kycdash runs");
        let (stdout, stderr) = (Arc::default(), Arc::default());
        let (tx, lines) = mpsc::unbounded_channel();
        drain(child.stdout.take().unwrap(), Arc::clone(&stdout), Some(tx));
        drain(child.stderr.take().unwrap(), Arc::clone(&stderr), None);
        Captured {
            child,
            stdout,
            stderr,
            lines,
        }
    }

    async fn next_line(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("no line within {PATIENCE:?}; stderr:\n{}", self.tail()))
            .expect("a line before the end")
    }

    /// The NDJSON lines until one `wanted`.
    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self.next_line().await;
            let json: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert_ne!(json["kind"], "webhook_rejected", "{json}");
            if wanted(&json) {
                return json;
            }
        }
    }

    fn tail(&self) -> String {
        let text = self.stderr.lock().unwrap();
        text[text.len().saturating_sub(3000)..].to_string()
    }

    /// SIGTERM, and the exit code 0.
    async fn stop(&mut self) {
        let pid = self.child.id().expect("running").to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let exit = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("it stops on SIGTERM")
            .unwrap();
        assert_eq!(exit.code(), Some(0), "{}", self.tail());
    }

    /// Everything it printed, by name; once it has exited and its pipes are closed.
    async fn outputs(mut self, name: &str) -> Vec<(String, String)> {
        // The drains end with the pipes; stdout's ends its channel too.
        while self.lines.recv().await.is_some() {}
        let stderr = support::eventually("the stderr pipe to close", || {
            let done = Arc::strong_count(&self.stderr) == 1;
            let text = self.stderr.lock().unwrap().clone();
            async move { done.then_some(text) }
        })
        .await;
        let stdout = self.stdout.lock().unwrap().clone();
        vec![
            (format!("{name} stdout"), stdout),
            (format!("{name} stderr"), stderr),
        ]
    }
}

/// A customer through the flow whose every step the API announces with a signed webhook:
/// created, KYC started, the SDK completed.
async fn drive(client: &support::Client, last_name: &str) -> String {
    let customer = client.create_customer(support::full_profile(last_name)).await;
    client.start_kyc(customer).await.assert_status(201);
    client.simulate(customer, "SDK_COMPLETE").await.assert_status(200);
    customer.to_string()
}

/// Waits for `watch` to apply the webhook that says the customer finished the SDK.
async fn sdk_completed_arrives(watch: &mut Captured, customer: &str) {
    watch
        .until(|line| {
            line["kind"] == "webhook"
                && line["customerId"] == customer
                && line["eventType"] == "CUSTOMER_KYC_SDK_FLOW_COMPLETED"
        })
        .await;
}

/// The `*.log` files under `dir`, by path.
fn log_files(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(log_files(&path));
        } else if path.extension().is_some_and(|e| e == "log") {
            found.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    found
}

#[tokio::test]
async fn trace_logs_of_a_whole_flow_show_no_key_and_no_secret() {
    let root = tempfile::tempdir().unwrap();
    let mut sandbox = Captured::spawn(
        &[
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--db",
            ":memory:",
            "--api-key",
            KEY,
        ],
        &[],
    );
    let url = sandbox
        .next_line()
        .await
        .strip_prefix("listening on ")
        .expect("the sandbox says where it listens")
        .to_string();
    let client = support::Client {
        http: reqwest::Client::new(),
        base: url.clone(),
        key: Some(KEY.to_string()),
    };
    let connect = ["--api-url", &url, "--api-key", KEY, "--data-dir"];
    let config = root.path().join("no-config.toml");
    let config = config.to_str().unwrap();

    // First, watch registers its own endpoint and keeps the secret in its cache.
    let first = root.path().join("first");
    let args = [&["watch"], &connect[..], &[first.to_str().unwrap()]].concat();
    let mut watch = Captured::spawn(&args, &[("KYCDASH_CONFIG", config)]);
    let started = watch.until(|line| line["kind"] == "started").await;
    let webhook_url = started["webhookUrl"].as_str().expect("registered").to_string();
    let ada = drive(&client, "Lovelace").await;
    sdk_completed_arrives(&mut watch, &ada).await;
    watch.stop().await;
    let mut outputs = watch.outputs("watch (registered)").await;
    let secret: String = rusqlite::Connection::open(first.join("cache.db"))
        .unwrap()
        .query_row(
            "SELECT value FROM settings WHERE key = 'webhook.secret'",
            [],
            |r| r.get(0),
        )
        .expect("the registered endpoint's secret is in the cache");

    // Then another watch is given that endpoint's secret, on the endpoint's address.
    let second = root.path().join("second");
    let listen = webhook_url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/webhooks"))
        .expect("a loopback URL");
    let args = [
        &["watch", "--webhook-listen", listen],
        &connect[..],
        &[second.to_str().unwrap()],
    ]
    .concat();
    let mut watch = Captured::spawn(
        &args,
        &[("KYCDASH_CONFIG", config), ("KYCDASH_WEBHOOK_SECRET", &secret)],
    );
    let started = watch.until(|line| line["kind"] == "started").await;
    assert_eq!(started["webhookUrl"], webhook_url.as_str());
    let grace = drive(&client, "Hopper").await;
    sdk_completed_arrives(&mut watch, &grace).await;
    watch.stop().await;
    outputs.extend(watch.outputs("watch (given the secret)").await);
    let endpoints = client.get("/v1/webhooks").await.body;
    assert_eq!(
        endpoints["data"].as_array().map(Vec::len),
        Some(1),
        "the second watch registered nothing: {endpoints}"
    );

    sandbox.stop().await;
    outputs.extend(sandbox.outputs("sandbox").await);
    outputs.extend(log_files(root.path()));

    // Trace level really was on (a quiet log would prove nothing).
    for (name, text) in &outputs {
        if name.ends_with("stderr") {
            assert!(text.contains(" TRACE "), "{name} has no trace lines:\n{text}");
        }
    }
    // The secret's key material is what follows whsec_.
    let material = secret.strip_prefix("whsec_").expect("a whsec_ secret");
    for (name, text) in &outputs {
        assert!(!text.contains(KEY), "the API key is in the {name}:\n{text}");
        assert!(
            !text.contains(material),
            "the webhook secret is in the {name}:\n{text}"
        );
    }
}
