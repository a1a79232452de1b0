//! A burst of onboardings against a rate-capped API (loopback only, bounded): N customers
//! created and started at once on the sandbox, the engine (as `kycdash watch --max-rps R`
//! runs it) pulling through a proxy that counts every request.
//!
//! Prints the time to the first and to the last `stage_changed` line, the floor the cap sets
//! (N × requests per customer ÷ R), requests per customer, and the most requests in any
//! one-second window.
//!
//! `cargo run --release --example burst [CUSTOMERS] [MAX_RPS]` (defaults 1000 and 20)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use kycdash::api::{ApiClient, ClientConfig};
use kycdash::domain::{CustomerProfile, Stage};
use kycdash::sandbox::{self, SandboxConfig};
use kycdash::sync::engine::{self, EngineConfig, EngineEvent};
use serde_json::json;
use uuid::Uuid;

type Log = Arc<Mutex<Vec<(Instant, String)>>>;

/// Forwards to the sandbox, noting when each request came and for what.
async fn counted(
    State((upstream, http, log)): State<(String, reqwest::Client, Log)>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    log.lock().unwrap().push((Instant::now(), target.clone()));
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let mut call = http
        .request(parts.method, format!("{upstream}{target}"))
        .body(body);
    for (name, value) in parts
        .headers
        .iter()
        .filter(|(n, _)| *n != axum::http::header::HOST)
    {
        call = call.header(name, value);
    }
    let answer = call.send().await.expect("the sandbox answers");
    let mut response = Response::new(Body::empty());
    *response.status_mut() = answer.status();
    *response.headers_mut() = answer.headers().clone();
    *response.body_mut() = Body::from(answer.bytes().await.unwrap_or_default());
    response
}

#[tokio::main]
async fn main() {
    let customers: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let max_rps: u32 = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(20);
    let sandbox = sandbox::start(SandboxConfig::ephemeral())
        .await
        .expect("the sandbox starts");
    let log: Log = Arc::default();
    let app = Router::new().fallback(counted).with_state((
        sandbox.base_url().to_string(),
        reqwest::Client::new(),
        log.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let mut api = ClientConfig::new(&proxy, sandbox::DEFAULT_API_KEY);
    api.max_rps = Some(max_rps);
    let config = EngineConfig::new(api, dir.path().to_path_buf());
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, mut events, task) = engine::start(config, lock).await.unwrap().into_parts();
    while !matches!(events.recv().await, Some(EngineEvent::Sweep { .. }) | None) {}
    let before = log.lock().unwrap().len();

    // The burst: created and started as fast as the sandbox takes them, 32 at a time.
    let client = ApiClient::new(&ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY)).unwrap();
    let profile: CustomerProfile = serde_json::from_value(json!({
        "ipAddress": "203.0.113.7",
        "kyc": {"firstName": "Ada", "lastName": "Lovelace", "birthDate": "1990-04-12", "documentNumber": "X1",
            "mainAddress": {"street1": "1 Main St", "cityCounty": "New York", "zip": "10001", "countryCode": "US"},
            "nationality": "US", "occupation": "11"}
    }))
    .unwrap();
    let started = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..customers.div_ceil(32) {
        let batch = (0..32.min(customers - ids.len())).map(|_| async {
            let id = client.create_customer(&profile).await.unwrap().id;
            client.start_kyc(id, None).await.unwrap();
            id
        });
        ids.extend(futures_util::future::join_all(batch).await);
    }
    println!(
        "burst: {customers} customers created and started in {:.1} s; cap {max_rps} requests/s",
        started.elapsed().as_secs_f64()
    );

    let mut first_line = None;
    let mut done: HashMap<Uuid, Duration> = HashMap::new();
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(60 + 4 * customers as u64 / max_rps as u64);
    while done.len() < customers {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await else {
            println!("stopped waiting: {} of {customers} reported", done.len());
            break;
        };
        if let EngineEvent::StageChanged { customer_id, to, .. } = event {
            first_line.get_or_insert(started.elapsed());
            if to == Stage::AwaitingSdk {
                done.entry(customer_id).or_insert(started.elapsed());
            }
        }
    }
    let last_line = done.values().max().copied().unwrap_or_default();
    handle.stop();
    let _ = task.await;

    let log = log.lock().unwrap();
    let burst_requests = &log[before..];
    let per_customer: Vec<usize> = ids
        .iter()
        .map(|id| {
            let id = id.to_string();
            burst_requests
                .iter()
                .filter(|(_, path)| path.contains(&id))
                .count()
        })
        .collect();
    let total: usize = per_customer.iter().sum();
    let most = per_customer.iter().max().copied().unwrap_or(0);
    let times: Vec<Instant> = burst_requests.iter().map(|(at, _)| *at).collect();
    let busiest = (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    let per = total as f64 / customers as f64;
    println!(
        "lines: first after {:.2} s, last ({} of {customers} at awaiting_sdk) after {:.1} s; floor {:.1} s",
        first_line.unwrap_or_default().as_secs_f64(),
        done.len(),
        last_line.as_secs_f64(),
        total as f64 / max_rps as f64
    );
    println!(
        "requests: {total} for the burst's customers = {per:.2} per customer (most for one: {most}); {} in all; the busiest second held {busiest}",
        burst_requests.len()
    );
}
