//! `--metrics-listen` (SPEC §11) checked from outside: the engine runs against the in-process
//! sandbox while a flow is driven through the API, `/metrics` is scraped over loopback and
//! parsed as Prometheus text with `prometheus-parse` (never matched as strings); and the real
//! binary serves it, and refuses a bad address with exit 2.

mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use kycdash::api::types::SimulateAction;
use kycdash::api::{ApiClient, ClientConfig};
use kycdash::domain::{CustomerProfile, Stage};
use kycdash::sandbox::{self, SandboxConfig};
use kycdash::sync::engine::{self, EngineConfig, EngineEvent, ReceiverConfig};
use kycdash::sync::metrics::{self, Metrics};
use prometheus_parse::{Scrape, Value};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(15);

async fn scrape(url: &str) -> Scrape {
    let response = reqwest::get(url).await.expect("the metrics answer");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("a body");
    Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("Prometheus text")
}

/// Every sample of a scrape by name and sorted labels, with its value.
fn samples(scrape: &Scrape) -> HashMap<(String, String), Value> {
    scrape
        .samples
        .iter()
        .map(|s| {
            let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            ((s.metric.clone(), labels.join(",")), s.value.clone())
        })
        .collect()
}

fn value(scrape: &Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("no {metric} {label:?} in the scrape"));
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{metric} is not a number: {other:?}"),
    }
}

/// The customers per stage: every stage named, and their sum.
fn customers_per_stage(scrape: &Scrape) -> f64 {
    let per_stage: Vec<&prometheus_parse::Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "kycdash_customers")
        .collect();
    let mut names: Vec<&str> = per_stage.iter().filter_map(|s| s.labels.get("stage")).collect();
    names.sort_unstable();
    let mut expected: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(names, expected, "one series per stage");
    per_stage
        .iter()
        .map(|s| match s.value {
            Value::Gauge(v) => v,
            ref other => panic!("kycdash_customers is not a gauge: {other:?}"),
        })
        .sum()
}

/// The API latency histogram: buckets never fall as `le` rises, `+Inf` holds every attempt.
fn latency_attempts(scrape: &Scrape) -> f64 {
    let histogram = scrape
        .samples
        .iter()
        .find(|s| s.metric == "kycdash_api_request_duration_seconds")
        .expect("the latency histogram");
    let Value::Histogram(buckets) = &histogram.value else {
        panic!("not a histogram: {:?}", histogram.value);
    };
    let mut buckets = buckets.clone();
    buckets.sort_by(|a, b| a.less_than.total_cmp(&b.less_than));
    assert!(buckets.len() > 2, "{buckets:?}");
    for pair in buckets.windows(2) {
        assert!(pair[0].count <= pair[1].count, "buckets fall: {buckets:?}");
    }
    let last = buckets.last().expect("a bucket");
    assert!(last.less_than.is_infinite(), "{buckets:?}");
    let count = value(scrape, "kycdash_api_request_duration_seconds_count", None);
    assert_eq!(last.count, count, "+Inf holds every attempt");
    count
}

async fn wait_for(
    events: &mut mpsc::Receiver<EngineEvent>,
    what: &str,
    matches: impl Fn(&EngineEvent) -> bool,
) -> EngineEvent {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) if matches(&event) => return event,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the engine stopped before {what}"),
            Err(_) => panic!("no {what} within {PATIENCE:?}"),
        }
    }
}

fn reached(id: Uuid, stage: Stage) -> impl Fn(&EngineEvent) -> bool {
    move |e| matches!(e, EngineEvent::StageChanged { customer_id, to, .. } if *customer_id == id && *to == stage)
}

#[tokio::test]
async fn a_driven_flow_shows_in_the_metrics_and_a_forged_webhook_counts_once() {
    let sandbox = sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
    let client = ApiClient::new(&ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let (bound, server) = metrics::serve(metrics.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = format!("http://{bound}/metrics");
    let config = EngineConfig {
        sandbox: true,
        inbox: None,
        receiver: Some(ReceiverConfig::loopback()),
        metrics: Some(metrics),
        ..EngineConfig::new(
            ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY),
            dir.path().to_path_buf(),
        )
    };
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, mut events, task) = engine::start(config, lock).await.unwrap().into_parts();
    let webhook_url = match wait_for(&mut events, "started", |e| {
        matches!(e, EngineEvent::Started { .. })
    })
    .await
    {
        EngineEvent::Started { webhook_url, .. } => webhook_url.expect("a registered receiver"),
        _ => unreachable!(),
    };
    wait_for(&mut events, "the first sweep", |e| {
        matches!(e, EngineEvent::Sweep { .. })
    })
    .await;

    // Three customers: one ready to start, one awaiting the SDK, one past it.
    let profile: CustomerProfile = serde_json::from_value(json!({
        "ipAddress": "203.0.113.7",
        "kyc": {
            "firstName": "Ada", "lastName": "Lovelace", "birthDate": "1990-04-12", "documentNumber": "X1",
            "mainAddress": {"street1": "1 Main St", "cityCounty": "New York", "zip": "10001", "countryCode": "US"},
            "nationality": "US", "occupation": "11"
        }
    }))
    .unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = client.create_customer(&profile).await.unwrap().id;
        wait_for(&mut events, "ready_to_start", reached(id, Stage::ReadyToStart)).await;
        ids.push(id);
    }
    for id in &ids[1..] {
        client.start_kyc(*id, None).await.unwrap();
        wait_for(&mut events, "awaiting_sdk", reached(*id, Stage::AwaitingSdk)).await;
    }
    client
        .simulate(ids[2], SimulateAction::SdkComplete)
        .await
        .unwrap();
    wait_for(
        &mut events,
        "collecting_requirements",
        reached(ids[2], Stage::CollectingRequirements),
    )
    .await;

    let first = scrape(&url).await;
    assert_eq!(customers_per_stage(&first), 3.0, "{:#?}", first.samples);
    assert_eq!(
        value(&first, "kycdash_customers", Some(("stage", "awaiting_sdk"))),
        1.0
    );
    assert_eq!(value(&first, "kycdash_api_reachable", None), 1.0);
    assert!(value(&first, "kycdash_polls_total", None) >= 3.0);
    assert!(value(&first, "kycdash_webhooks_received_total", None) >= 3.0);
    let attempts = latency_attempts(&first);
    assert!(attempts >= 3.0, "{attempts}");
    let waiting = value(
        &first,
        "kycdash_oldest_customer_waiting_seconds",
        Some(("stage", "awaiting_sdk")),
    );
    assert!((0.0..60.0).contains(&waiting), "{waiting}");
    assert!(value(&first, "kycdash_last_sweep_customers", None) >= 0.0);

    // A webhook signed with another secret: 401, said once, counted once.
    let body = format!(
        r#"{{"id":"evt_forged","eventType":"CUSTOMER_UPDATED","createdAt":"2026-11-30T10:00:00Z","data":{{"customerId":"{}"}}}}"#,
        ids[0]
    );
    let signature = standardwebhooks::Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap()
        .sign(
            "evt_forged",
            time::OffsetDateTime::now_utc().unix_timestamp(),
            body.as_bytes(),
        )
        .unwrap();
    let forged = reqwest::Client::new()
        .post(&webhook_url)
        .header("webhook-id", "evt_forged")
        .header(
            "webhook-timestamp",
            time::OffsetDateTime::now_utc().unix_timestamp().to_string(),
        )
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    wait_for(&mut events, "webhook_rejected", |e| {
        matches!(e, EngineEvent::WebhookRejected { .. })
    })
    .await;

    // More of the flow: the third customer's requirements, a refresh, another SDK.
    client
        .simulate(ids[1], SimulateAction::SdkComplete)
        .await
        .unwrap();
    wait_for(
        &mut events,
        "collecting_requirements",
        reached(ids[1], Stage::CollectingRequirements),
    )
    .await;
    handle.refresh(None);
    wait_for(&mut events, "a second sweep", |e| {
        matches!(e, EngineEvent::Sweep { .. })
    })
    .await;

    let second = scrape(&url).await;
    assert_eq!(customers_per_stage(&second), 3.0, "{:#?}", second.samples);
    assert_eq!(value(&second, "kycdash_last_sweep_customers", None), 3.0);
    assert_eq!(
        value(
            &second,
            "kycdash_customers",
            Some(("stage", "collecting_requirements"))
        ),
        2.0
    );
    assert!(latency_attempts(&second) > attempts);
    // Counters only rise, and none disappears.
    let before = samples(&first);
    let after = samples(&second);
    for ((metric, labels), earlier) in &before {
        let Value::Counter(earlier) = earlier else {
            continue;
        };
        match after.get(&(metric.clone(), labels.clone())) {
            Some(Value::Counter(later)) => {
                assert!(
                    later >= earlier,
                    "{metric}{{{labels}}} fell from {earlier} to {later}"
                )
            }
            other => panic!("{metric}{{{labels}}} is gone or changed type: {other:?}"),
        }
    }
    assert!(
        before.keys().any(|(m, _)| m == "kycdash_webhooks_rejected_total"),
        "the rejections are counters"
    );
    let rejected = |scrape: &Scrape, reason| {
        value(
            scrape,
            "kycdash_webhooks_rejected_total",
            Some(("reason", reason)),
        )
    };
    assert_eq!(
        rejected(&second, "bad_signature") - rejected(&first, "bad_signature"),
        1.0
    );
    for reason in ["stale_timestamp", "missing_headers", "malformed", "too_large"] {
        assert_eq!(rejected(&second, reason), 0.0, "{reason}");
    }
    assert!(value(&second, "kycdash_polls_total", None) > value(&first, "kycdash_polls_total", None));
    assert!(
        value(&second, "kycdash_webhooks_received_total", None)
            > value(&first, "kycdash_webhooks_received_total", None)
    );

    handle.stop();
    while events.recv().await.is_some() {}
    task.await.unwrap();
    server.abort();
    sandbox.shutdown().await;
}

fn kycdash(data_dir: &std::path::Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kycdash"));
    command
        .env_remove("KYCDASH_API_URL")
        .env_remove("KYCDASH_API_KEY")
        .env("KYCDASH_CONFIG", data_dir.join("no-config.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// `watch --metrics-listen 127.0.0.1:0` says where it serves, and serves every series from the
/// start; the API (the embedded sandbox) is reachable.
#[tokio::test]
async fn watch_serves_metrics_where_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let mut watch = kycdash(dir.path())
        .args(["watch", "--metrics-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(watch.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("kycdash: metrics at ") {
                return url.to_string();
            }
        }
        panic!("watch ended without saying where its metrics are");
    })
    .await
    .expect("the metrics address in time");
    let reachable = support::eventually("the API reachable", || {
        let url = url.clone();
        async move {
            let scrape = scrape(&url).await;
            (value(&scrape, "kycdash_api_reachable", None) == 1.0).then_some(scrape)
        }
    })
    .await;
    customers_per_stage(&reachable);
    for kind in [
        "sdk_link_expiring",
        "stuck_waiting",
        "verification_error",
        "drift",
    ] {
        assert_eq!(
            value(&reachable, "kycdash_alerts_total", Some(("kind", kind))),
            0.0
        );
    }
    for result in ["uploaded", "duplicate", "failed"] {
        assert_eq!(
            value(&reachable, "kycdash_inbox_files_total", Some(("result", result))),
            0.0
        );
    }
    let pid = watch.id().expect("running").to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let exit = tokio::time::timeout(PATIENCE, watch.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}

/// A value that is not an address, or one already taken: exit 2, naming the flag.
#[tokio::test]
async fn a_bad_metrics_address_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = kycdash(dir.path())
        .args([
            "watch",
            "--once",
            "--metrics-listen",
            "localhost-ish",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--metrics-listen"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = kycdash(dir.path())
        .args(["watch", "--once", "--metrics-listen", &addr, "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&addr) && stderr.contains("--metrics-listen"),
        "{stderr}"
    );
}
