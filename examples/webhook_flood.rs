//! Memory over a long run (SPEC §10, "bounded over time"): N distinct signed webhooks
//! (default 1,000,000) through the real engine's receiver, against the in-process sandbox on
//! loopback, RSS sampled as they go. Every event is verified, checked against the recent ids
//! and the cache, committed before its 200, and reaches the watcher.
//!
//! `cargo run --release --example webhook_flood [EVENTS] [CUSTOMERS]`
//!
//! Before this issue every id ever received was kept in memory (and all were loaded at
//! start), so RSS grew with N; now the engine keeps the newest 100,000 and the cache tells
//! older repeats.

use std::time::Instant;

use kycdash::api::{ApiClient, ClientConfig};
use kycdash::domain::CustomerProfile;
use kycdash::sandbox::{self, SandboxConfig};
use kycdash::sync::engine::{self, EngineConfig, EngineEvent, ReceiverConfig};
use standardwebhooks::Webhook;
use time::OffsetDateTime;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/rss.rs"]
mod rss;
use rss::rss_mb;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let customers: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100);
    let sandbox = sandbox::start(SandboxConfig::ephemeral())
        .await
        .expect("the sandbox starts");
    let client = ApiClient::new(&ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY)).unwrap();
    let profile: CustomerProfile =
        serde_json::from_value(serde_json::json!({"kyc": {"firstName": "Ada", "lastName": "Lovelace"}}))
            .unwrap();
    let mut ids = Vec::new();
    for _ in 0..customers {
        ids.push(client.create_customer(&profile).await.expect("created").id);
    }

    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        receiver: Some(ReceiverConfig {
            secret: Some(SECRET.into()),
            ..ReceiverConfig::loopback()
        }),
        concurrency: 32,
        ..EngineConfig::new(
            ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY),
            dir.path().to_path_buf(),
        )
    };
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, mut events, task) = engine::start(config, lock).await.unwrap().into_parts();
    let url = loop {
        if let Some(EngineEvent::Started { webhook_url, .. }) = events.recv().await {
            break webhook_url.expect("a receiver");
        }
    };
    let webhooks = tokio::spawn(async move {
        let mut seen = 0usize;
        while let Some(event) = events.recv().await {
            if matches!(event, EngineEvent::Webhook { duplicate: false, .. }) {
                seen += 1;
            }
        }
        seen
    });
    let signer = Webhook::new(SECRET).unwrap();
    let http = reqwest::Client::new();
    let start = Instant::now();
    let base = rss_mb();
    println!(
        "{:>9} events  RSS {base:>6.1} MB  (engine started, nothing received)",
        0
    );
    let mut accepted = 0usize;
    let mut sent = 0usize;
    let report_every = (total / 10).max(1);
    while sent < total {
        let batch = (sent..(sent + 64).min(total)).map(|i| {
            let id = format!("evt_flood_{i:08}");
            let customer = ids[i % ids.len()];
            let body = format!(
                r#"{{"id":"{id}","eventType":"CUSTOMER_UPDATED","createdAt":"2026-11-30T10:00:00Z","data":{{"customerId":"{customer}"}}}}"#
            );
            let ts = OffsetDateTime::now_utc().unix_timestamp();
            let signature = signer.sign(&id, ts, body.as_bytes()).unwrap();
            http.post(&url)
                .header("webhook-id", id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
        });
        for response in futures_util::future::join_all(batch).await {
            if response.is_ok_and(|r| r.status().is_success()) {
                accepted += 1;
            }
        }
        let before = sent;
        sent = (sent + 64).min(total);
        if sent / report_every != before / report_every || sent == total {
            println!(
                "{sent:>9} events  RSS {:>6.1} MB  {:.0} events/s",
                rss_mb(),
                sent as f64 / start.elapsed().as_secs_f64()
            );
        }
    }
    handle.stop();
    task.await.unwrap();
    let seen = webhooks.await.unwrap();
    println!(
        "{accepted}/{total} answered 2xx, {seen} new events reached the watcher, in {:.0} s; RSS growth {:.1} MB",
        start.elapsed().as_secs_f64(),
        rss_mb() - base
    );
    sandbox.shutdown().await;
}
