//! Benchmarks of the sync engine against the in-process sandbox (loopback only, bounded):
//!
//! 1. one full sweep of N customers (default 10,000), statuses persisted, `--concurrency 32`,
//!    no rate cap — the sweep's own `durationMs` and the whole `--once` run;
//! 2. webhook ingest: signed events POSTed to the receiver, verified, deduplicated and
//!    committed before each 200;
//! 3. latency from a sandbox state change to the engine's `stage_changed`, via the webhook;
//! 4. loading a cache of 100,000 customers (rows written through the cache writer), and RSS.
//!
//! `cargo run --release --example sync_bench [CUSTOMERS]`
//!
//! `KYCDASH_BENCH_METRICS=1`: every engine counts into Prometheus metrics (`--metrics-listen`);
//! `KYCDASH_BENCH_METRICS=ab` (or `ba`): only benchmark 1, six times on the same sandbox,
//! alternately without and with metrics (`ba`: with first).

use std::time::{Duration, Instant};

use kycdash::api::types::SimulateAction;
use kycdash::api::{ApiClient, ClientConfig};
use kycdash::domain::{Customer, CustomerProfile, Stage, WorkflowView};
use kycdash::sandbox::{self, DbLocation, SandboxConfig};
use kycdash::sync::cache::{self, Write};
use kycdash::sync::engine::{self, EngineConfig, EngineEvent, EngineTiming, ReceiverConfig};
use kycdash::sync::metrics::Metrics;
use serde_json::json;
use standardwebhooks::Webhook;
use time::OffsetDateTime;
use uuid::Uuid;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[path = "support/rss.rs"]
mod rss;
use rss::rss_mb;

fn config(url: &str, dir: &std::path::Path, receiver: Option<ReceiverConfig>, once: bool) -> EngineConfig {
    EngineConfig {
        api: ClientConfig::new(url, sandbox::DEFAULT_API_KEY),
        sandbox: true,
        data_dir: dir.to_path_buf(),
        inbox: None,
        receiver,
        concurrency: 32,
        once,
        publish_customers: false,
        stop_on_refused_key: true,
        register_before_start: true,
        retain: std::time::Duration::from_secs(90 * 86_400),
        timing: EngineTiming::default(),
        metrics: (std::env::var("KYCDASH_BENCH_METRICS").as_deref() == Ok("1")).then(Metrics::new),
    }
}

/// As the binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let customers: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let work = tempfile::tempdir().expect("a temp dir");
    let sandbox = sandbox::start(SandboxConfig {
        db: DbLocation::File(work.path().join("sandbox.db")),
        ..SandboxConfig::ephemeral()
    })
    .await
    .expect("the sandbox starts");
    let client = ApiClient::new(&ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY)).unwrap();

    // Customers in every early stage: half ready to start, a quarter awaiting the SDK.
    let started = Instant::now();
    let profile: CustomerProfile = serde_json::from_value(json!({
        "ipAddress": "203.0.113.7",
        "kyc": {"firstName": "Ada", "lastName": "Lovelace", "birthDate": "1990-04-12", "documentNumber": "X1"}
    }))
    .unwrap();
    let mut ids = Vec::with_capacity(customers);
    for chunk in 0..customers.div_ceil(64) {
        let batch = (0..64.min(customers - chunk * 64)).map(|_| client.create_customer(&profile));
        for customer in futures_util::future::join_all(batch).await {
            ids.push(customer.expect("created").id);
        }
    }
    for chunk in ids[..customers / 4].chunks(64) {
        futures_util::future::join_all(chunk.iter().map(|id| client.start_kyc(*id, None))).await;
    }
    println!(
        "setup: {customers} customers in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let switch = std::env::var("KYCDASH_BENCH_METRICS").unwrap_or_default();
    if switch == "ab" || switch == "ba" {
        // "ba" starts with metrics on, so the first (cold) round is not always the same side.
        let on_first = usize::from(switch == "ba");
        for round in 0..6 {
            let on = (round + on_first) % 2 == 1;
            let metrics = on.then(Metrics::new);
            let (sweep_ms, run_ms) = sweep_once(sandbox.base_url(), metrics.clone()).await;
            let counted = metrics
                .and_then(|m| m.render(OffsetDateTime::now_utc()).ok())
                .map_or(0, |text| text.len());
            println!(
                "sweep round {round} metrics {}: sweep {sweep_ms} ms; whole --once run {run_ms} ms (metrics text {counted} bytes)",
                if on { "on " } else { "off" }
            );
        }
        return;
    }

    // 1. One sweep, `--once`, on a fresh cache.
    let dir = tempfile::tempdir().unwrap();
    let run = Instant::now();
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (_, mut events, task) = engine::start(config(sandbox.base_url(), dir.path(), None, true), lock)
        .await
        .unwrap()
        .into_parts();
    let mut sweep_ms = 0;
    let mut changed = 0;
    while let Some(event) = events.recv().await {
        if let EngineEvent::Sweep {
            duration_ms,
            changed: c,
            ..
        } = event
        {
            sweep_ms = duration_ms;
            changed = c;
        }
    }
    task.await.unwrap();
    println!(
        "sweep: {customers} customers, {changed} changed, sweep {sweep_ms} ms; whole --once run (statuses committed) {} ms",
        run.elapsed().as_millis()
    );

    // 2. Webhook ingest.
    let dir = tempfile::tempdir().unwrap();
    let receiver = ReceiverConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        secret: Some(SECRET.into()),
    };
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, mut events, task) = engine::start(
        config(sandbox.base_url(), dir.path(), Some(receiver), false),
        lock,
    )
    .await
    .unwrap()
    .into_parts();
    let webhook_url = loop {
        if let Some(EngineEvent::Started { webhook_url, .. }) = events.recv().await {
            break webhook_url.unwrap();
        }
    };
    let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
    handle.pause(true);
    let signer = Webhook::new(SECRET).unwrap();
    let http = reqwest::Client::new();
    let total = 20_000;
    let bodies: Vec<(String, String, String)> = (0..total)
        .map(|i| {
            let id = format!("evt_bench_{i}");
            let customer = ids[i % ids.len()];
            let body = format!(
                r#"{{"id":"{id}","eventType":"CUSTOMER_UPDATED","createdAt":"2026-11-30T10:00:00Z","data":{{"customerId":"{customer}"}}}}"#
            );
            let ts = OffsetDateTime::now_utc().unix_timestamp();
            let signature = signer.sign(&id, ts, body.as_bytes()).unwrap();
            (id, format!("{ts}|{signature}"), body)
        })
        .collect();
    let ingest = Instant::now();
    let mut ok = 0;
    for chunk in bodies.chunks(64) {
        let sends = chunk.iter().map(|(id, meta, body)| {
            let (ts, signature) = meta.split_once('|').unwrap();
            http.post(&webhook_url)
                .header("webhook-id", id)
                .header("webhook-timestamp", ts)
                .header("webhook-signature", signature)
                .body(body.clone())
                .send()
        });
        for response in futures_util::future::join_all(sends).await {
            if response.is_ok_and(|r| r.status().is_success()) {
                ok += 1;
            }
        }
    }
    let secs = ingest.elapsed().as_secs_f64();
    println!(
        "webhook ingest: {ok}/{total} accepted in {secs:.2} s = {:.0} events/s (verified, deduplicated, committed before 200)",
        ok as f64 / secs
    );
    handle.stop();
    task.await.unwrap();
    drain.await.unwrap();

    // 3. State change → stage_changed via the webhook.
    let dir = tempfile::tempdir().unwrap();
    let receiver = ReceiverConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        public_url: None,
        secret: None,
    };
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, mut events, task) = engine::start(
        config(sandbox.base_url(), dir.path(), Some(receiver), false),
        lock,
    )
    .await
    .unwrap()
    .into_parts();
    while !matches!(events.recv().await, Some(EngineEvent::Sweep { .. }) | None) {}
    let mut latencies = Vec::new();
    for &id in ids[..200.min(ids.len() / 4)].iter() {
        let at = Instant::now();
        client.simulate(id, SimulateAction::SdkComplete).await.unwrap();
        loop {
            match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
                Ok(Some(EngineEvent::StageChanged { customer_id, to, .. }))
                    if customer_id == id && to == Stage::CollectingRequirements =>
                {
                    latencies.push(at.elapsed());
                    break;
                }
                Ok(Some(_)) => {}
                _ => panic!("no stage change for {id}"),
            }
        }
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "state change → stage_changed ({} changes): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        latencies.last().unwrap().as_secs_f64() * 1000.0
    );
    handle.stop();
    task.await.unwrap();
    sandbox.shutdown().await;

    // 4. A cache of 100,000 customers.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.db");
    let (writer, thread) = cache::spawn_writer(cache::open(&path).unwrap(), |_| {});
    let now = OffsetDateTime::now_utc();
    let status = client_free_status();
    for i in 0..100_000u128 {
        let customer = Customer::new(Uuid::from_u128(i + 1), profile.clone(), now);
        let id = customer.id;
        writer.write(Write::customer(&customer).unwrap()).unwrap();
        let (summary, body) = cache::StatusSummary::of(&kycdash::domain::ComplianceStatus {
            customer_id: Some(id),
            ..status.clone()
        })
        .unwrap();
        writer
            .write(Write::Status {
                customer_id: id,
                body,
                summary: std::sync::Arc::new(summary),
                fetched_at: now,
            })
            .unwrap();
        writer
            .write(Write::Workflow {
                customer_id: id,
                view: WorkflowView {
                    stage: Stage::ReadyToStart,
                    onboarding: None,
                    sdk: None,
                    identity_verified: false,
                },
                since: now,
            })
            .unwrap();
    }
    writer.flush().await.unwrap();
    drop(writer);
    thread.join().unwrap();
    let before = rss_mb();
    let load = Instant::now();
    let snapshot = cache::load(&cache::open(&path).unwrap()).unwrap();
    println!(
        "cache load: {} customers in {} ms; RSS {:.0} MB (was {:.0} MB before loading)",
        snapshot.customers.len(),
        load.elapsed().as_millis(),
        rss_mb(),
        before
    );
}

/// A status as the sandbox serves it for a customer ready to start.
fn client_free_status() -> kycdash::domain::ComplianceStatus {
    let customer: Customer = Customer::new(
        Uuid::nil(),
        serde_json::from_value(json!({
            "ipAddress": "203.0.113.7",
            "kyc": {"firstName": "Ada", "lastName": "Lovelace", "birthDate": "1990-04-12", "documentNumber": "X1"}
        }))
        .unwrap(),
        OffsetDateTime::now_utc(),
    );
    let view = WorkflowView {
        stage: Stage::ReadyToStart,
        onboarding: None,
        sdk: None,
        identity_verified: false,
    };
    kycdash::domain::evaluate(
        &customer,
        &Default::default(),
        &view,
        kycdash::domain::Strategy::CfKyc,
        OffsetDateTime::now_utc(),
    )
}

/// Benchmark 1 alone on a fresh cache: the sweep's `durationMs` and the whole `--once` run.
async fn sweep_once(url: &str, metrics: Option<Metrics>) -> (u64, u128) {
    let dir = tempfile::tempdir().unwrap();
    let run = Instant::now();
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let config = EngineConfig {
        metrics,
        ..config(url, dir.path(), None, true)
    };
    let (_, mut events, task) = engine::start(config, lock).await.unwrap().into_parts();
    let mut sweep_ms = 0;
    while let Some(event) = events.recv().await {
        if let EngineEvent::Sweep { duration_ms, .. } = event {
            sweep_ms = duration_ms;
        }
    }
    task.await.unwrap();
    (sweep_ms, run.elapsed().as_millis())
}
