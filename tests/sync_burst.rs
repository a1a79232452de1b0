//! A burst of onboardings against a rate-capped API: the engine, pointed at the sandbox through
//! a counting proxy (loopback only), with `--max-rps` set low so a burst takes seconds.
//! Every answer is applied, lines come as answers arrive, and the cap holds in every second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use kycdash::api::{ApiClient, ClientConfig};
use kycdash::domain::{CustomerProfile, Stage};
use kycdash::sandbox::{self, RunningSandbox, SandboxConfig};
use kycdash::sync::engine::{self, EngineConfig, EngineEvent};
use serde_json::json;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

/// What the proxy saw: when each request arrived, and its path.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(Instant, String)>>,
    /// While set, answers to status reads are held until `release` is notified.
    hold_status: std::sync::atomic::AtomicBool,
    release: Notify,
    /// Status reads the sandbox has answered (held or not).
    statuses_read: std::sync::atomic::AtomicUsize,
    /// Requests being answered now, the most at once, and how long each answer is delayed.
    in_flight: std::sync::atomic::AtomicUsize,
    most_in_flight: std::sync::atomic::AtomicUsize,
    delay_ms: std::sync::atomic::AtomicU64,
}

/// Counts a request in flight until dropped.
struct InFlight<'a>(&'a Seen);

impl<'a> InFlight<'a> {
    fn new(seen: &'a Seen) -> InFlight<'a> {
        let now = seen.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        seen.most_in_flight
            .fetch_max(now, std::sync::atomic::Ordering::SeqCst);
        InFlight(seen)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    seen: Arc<Seen>,
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    proxy
        .seen
        .requests
        .lock()
        .unwrap()
        .push((Instant::now(), path.clone()));
    let _counted = InFlight::new(&proxy.seen);
    let delay = proxy.seen.delay_ms.load(std::sync::atomic::Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let mut upstream = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if name != axum::http::header::HOST {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.send().await.expect("the sandbox answers");
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    // The answer was read now; a held one is delivered later, older than what happened since.
    if path.starts_with("/v1/compliance/status/") {
        let release = proxy.seen.release.notified();
        proxy
            .seen
            .statuses_read
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if proxy.seen.hold_status.load(std::sync::atomic::Ordering::SeqCst) {
            release.await;
        }
    }
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

async fn proxy_to(upstream: &str) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let proxy = Proxy {
        upstream: upstream.to_string(),
        http: reqwest::Client::new(),
        seen: seen.clone(),
    };
    let app = Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

struct Burst {
    sandbox: RunningSandbox,
    client: ApiClient,
    seen: Arc<Seen>,
    events: mpsc::Receiver<EngineEvent>,
    handle: engine::EngineHandle,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

const CONCURRENCY: usize = 4;

/// The sandbox, the proxy in front of it, and an engine through the proxy at `max_rps`,
/// after its first (empty) sweep.
async fn burst(max_rps: u32) -> Burst {
    burst_with(max_rps, CONCURRENCY).await
}

async fn burst_with(max_rps: u32, concurrency: usize) -> Burst {
    let sandbox = sandbox::start(SandboxConfig::ephemeral()).await.unwrap();
    let (url, seen) = proxy_to(sandbox.base_url()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut api = ClientConfig::new(&url, sandbox::DEFAULT_API_KEY);
    api.max_rps = Some(max_rps);
    let config = EngineConfig {
        concurrency,
        ..EngineConfig::new(api, dir.path().to_path_buf())
    };
    let lock = engine::lock_data_dir(dir.path()).unwrap();
    let (handle, mut events, task) = engine::start(config, lock).await.unwrap().into_parts();
    wait_for(&mut events, |e| matches!(e, EngineEvent::Sweep { .. })).await;
    let client = ApiClient::new(&ClientConfig::new(sandbox.base_url(), sandbox::DEFAULT_API_KEY)).unwrap();
    Burst {
        sandbox,
        client,
        seen,
        events,
        handle,
        task,
        _dir: dir,
    }
}

async fn wait_for(
    events: &mut mpsc::Receiver<EngineEvent>,
    matches: impl Fn(&EngineEvent) -> bool,
) -> EngineEvent {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("an event within 30 s")
            .expect("the engine runs");
        // BURST_DEBUG=1 shows every event a failing run saw.
        if std::env::var_os("BURST_DEBUG").is_some() {
            eprintln!("{event:?}");
        }
        if matches(&event) {
            return event;
        }
    }
}

fn ready_profile() -> CustomerProfile {
    serde_json::from_value(json!({
        "ipAddress": "203.0.113.7",
        "kyc": {
            "firstName": "Ada", "lastName": "Lovelace", "birthDate": "1990-04-12", "documentNumber": "X1",
            "mainAddress": {"street1": "1 Main St", "cityCounty": "New York", "zip": "10001", "countryCode": "US"},
            "nationality": "US", "occupation": "11"
        }
    }))
    .unwrap()
}

/// Requests to one customer's resources.
fn requests_for(seen: &Seen, id: Uuid) -> usize {
    let id = id.to_string();
    seen.requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, path)| path.contains(&id))
        .count()
}

/// The most requests in any one-second window.
fn busiest_second(seen: &Seen) -> usize {
    let times: Vec<Instant> = seen.requests.lock().unwrap().iter().map(|(at, _)| *at).collect();
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| t.duration_since(times[i]) <= Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The burst lands while polling is paused, so the whole backlog is queued before the first
/// pull whatever the machine's speed; then polling resumes.
#[tokio::test]
async fn a_burst_is_reported_as_answers_arrive_within_the_cap() {
    const CUSTOMERS: usize = 12;
    const MAX_RPS: u32 = 5;
    let mut b = burst(MAX_RPS).await;
    b.handle.pause(true);
    // Created and started: three webhooks each, in the order they reach the engine.
    let mut ids = Vec::new();
    for _ in 0..CUSTOMERS {
        let id = b.client.create_customer(&ready_profile()).await.unwrap().id;
        b.client.start_kyc(id, None).await.unwrap();
        ids.push(id);
    }
    let (mut arrived, mut webhooks) = (Vec::new(), 0);
    while webhooks < 3 * CUSTOMERS {
        if let EngineEvent::Webhook {
            customer_id: Some(id),
            ..
        } = wait_for(&mut b.events, |e| matches!(e, EngineEvent::Webhook { .. })).await
        {
            webhooks += 1;
            if !arrived.contains(&id) {
                arrived.push(id);
            }
        }
    }
    let before = b.seen.requests.lock().unwrap().len();
    b.handle.pause(false);

    // Each customer's first line, in order, and how many requests the proxy had seen when
    // the first line came.
    let (mut reported, mut done) = (Vec::new(), Vec::new());
    let mut requests_at_first_line = None;
    while done.len() < CUSTOMERS {
        if let EngineEvent::StageChanged { customer_id, to, .. } =
            wait_for(&mut b.events, |e| matches!(e, EngineEvent::StageChanged { .. })).await
        {
            requests_at_first_line.get_or_insert_with(|| b.seen.requests.lock().unwrap().len() - before);
            if !reported.contains(&customer_id) {
                reported.push(customer_id);
            }
            if to == Stage::AwaitingSdk {
                done.push(customer_id);
            }
        }
    }
    assert_eq!(
        reported.len(),
        CUSTOMERS,
        "one line each: every answer was the latest"
    );

    // The first line after about one pull (the pulls out at once each read a customer first),
    // not after the whole backlog.
    let first = requests_at_first_line.unwrap();
    assert!(
        first <= CONCURRENCY + 2,
        "the first line came after {first} requests"
    );
    // In arrival order, within what can be out at once.
    for (rank, id) in reported.iter().enumerate() {
        let came = arrived.iter().position(|i| i == id).unwrap();
        assert!(
            rank.abs_diff(came) <= CONCURRENCY,
            "the customer whose webhook came {came}th was reported {rank}th"
        );
    }
    // A customer and a status read each, whatever number of webhooks.
    let per_customer: Vec<usize> = ids.iter().map(|id| requests_for(&b.seen, *id)).collect();
    assert!(per_customer.iter().all(|n| *n == 2), "{per_customer:?}");
    // The cap holds in every second (a window closed at both ends may hold one more).
    let busiest = busiest_second(&b.seen);
    assert!(
        busiest <= MAX_RPS as usize + 1,
        "{busiest} requests in one second"
    );

    b.handle.stop();
    let _ = b.task.await;
    drop(b.sandbox);
}

#[tokio::test]
async fn an_answer_read_while_a_webhook_arrived_is_applied_and_pulled_once_more() {
    let mut b = burst(100).await;
    let held = b.seen.clone();
    held.hold_status.store(true, std::sync::atomic::Ordering::SeqCst);
    let id = b.client.create_customer(&ready_profile()).await.unwrap().id;
    // The created webhook's pull reads the status (ready to start) and is held; meanwhile
    // KYC starts and its webhook arrives.
    until(|| held.statuses_read.load(std::sync::atomic::Ordering::SeqCst) >= 1).await;
    b.client.start_kyc(id, None).await.unwrap();
    // Both webhooks of the start (KYC started, SDK flow required).
    for expected in ["CUSTOMER_KYC_STARTED", "CUSTOMER_KYC_SDK_FLOW_REQUIRED"] {
        wait_for(&mut b.events, |e| {
            matches!(e, EngineEvent::Webhook { event_type, customer_id, .. }
                if event_type == expected && *customer_id == Some(id))
        })
        .await;
    }
    held.hold_status.store(false, std::sync::atomic::Ordering::SeqCst);
    held.release.notify_waiters();

    // The held answer is applied (its line), then the pull that follows corrects it.
    let mut seen = Vec::new();
    while !seen.iter().any(|e| {
        matches!(
            e,
            EngineEvent::StageChanged {
                to: Stage::AwaitingSdk,
                ..
            }
        )
    }) {
        seen.push(wait_for(&mut b.events, |_| true).await);
    }
    // Nothing more follows: a sweep now finds no pull queued or out, and two status reads
    // were made in all (a third, had there been one, would be out or counted).
    b.handle.refresh(None);
    let sweep = loop {
        let event = wait_for(&mut b.events, |_| true).await;
        if let EngineEvent::Sweep {
            queued, in_flight, ..
        } = event
        {
            break (queued, in_flight);
        }
        seen.push(event);
    };
    assert_eq!(sweep, (0, 0));
    let lines: Vec<(Option<Stage>, Stage)> = seen
        .iter()
        .filter_map(|e| match e {
            EngineEvent::StageChanged {
                customer_id,
                from,
                to,
                ..
            } if *customer_id == id => Some((*from, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(
        lines,
        [
            (None, Stage::ReadyToStart),
            (Some(Stage::ReadyToStart), Stage::AwaitingSdk)
        ]
    );
    let status_path = format!("/v1/compliance/status/{id}");
    let statuses = b
        .seen
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, p)| *p == status_path)
        .count();
    assert_eq!(statuses, 2, "exactly one more pull");

    b.handle.stop();
    let _ = b.task.await;
    drop(b.sandbox);
}

#[tokio::test]
async fn a_held_answer_older_than_the_webhooks_is_no_drift() {
    let mut b = burst(100).await;
    let id = b.client.create_customer(&ready_profile()).await.unwrap().id;
    wait_for(&mut b.events, |e| {
        matches!(e, EngineEvent::StageChanged { customer_id, to: Stage::ReadyToStart, .. } if *customer_id == id)
    })
    .await;
    // A refresh reads the status (still ready to start) and its answer is held while KYC
    // starts and both of its webhooks move the tracker to awaiting_sdk.
    let read_before = b.seen.statuses_read.load(std::sync::atomic::Ordering::SeqCst);
    b.seen
        .hold_status
        .store(true, std::sync::atomic::Ordering::SeqCst);
    b.handle.refresh(Some(id));
    until(|| b.seen.statuses_read.load(std::sync::atomic::Ordering::SeqCst) > read_before).await;
    b.client.start_kyc(id, None).await.unwrap();
    let mut seen = Vec::new();
    for expected in ["CUSTOMER_KYC_STARTED", "CUSTOMER_KYC_SDK_FLOW_REQUIRED"] {
        seen.push(
            wait_for(&mut b.events, |e| {
                matches!(e, EngineEvent::Webhook { event_type, customer_id, .. }
                    if event_type == expected && *customer_id == Some(id))
            })
            .await,
        );
    }
    b.seen
        .hold_status
        .store(false, std::sync::atomic::Ordering::SeqCst);
    b.seen.release.notify_waiters();
    // The held answer (ready to start) contradicts what the webhooks said, but it is older
    // than them: no drift; the pull that follows agrees with them.
    loop {
        let event = wait_for(&mut b.events, |_| true).await;
        let done = matches!(
            &event,
            EngineEvent::StageChanged {
                to: Stage::AwaitingSdk,
                ..
            }
        );
        seen.push(event);
        if done {
            break;
        }
    }
    b.handle.refresh(None);
    loop {
        let event = wait_for(&mut b.events, |_| true).await;
        let done = matches!(event, EngineEvent::Sweep { .. });
        seen.push(event);
        if done {
            break;
        }
    }
    assert!(
        !seen.iter().any(|e| matches!(e, EngineEvent::Alert { .. })),
        "{seen:#?}"
    );

    b.handle.stop();
    let _ = b.task.await;
    drop(b.sandbox);
}

/// SPEC §10: `--concurrency N` is the most requests in flight at once, all kinds together:
/// the pulls of a burst and a person's reads at the same time never exceed it.
#[tokio::test]
async fn concurrency_bounds_every_kind_of_request_together() {
    const LIMIT: usize = 2;
    let mut b = burst_with(1000, LIMIT).await;
    b.seen.delay_ms.store(30, std::sync::atomic::Ordering::SeqCst);
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(b.client.create_customer(&ready_profile()).await.unwrap().id);
    }
    // While the webhooks' pulls run, the dashboard reads every customer's documents.
    let reads = ids.iter().map(|id| b.handle.documents(*id));
    for read in futures_util::future::join_all(reads).await {
        read.unwrap();
    }
    let mut lines = 0;
    while lines < ids.len() {
        if matches!(
            wait_for(&mut b.events, |e| matches!(e, EngineEvent::StageChanged { .. })).await,
            EngineEvent::StageChanged { .. }
        ) {
            lines += 1;
        }
    }
    let most = b.seen.most_in_flight.load(std::sync::atomic::Ordering::SeqCst);
    assert!(most <= LIMIT, "{most} requests in flight at once");
    assert!(most == LIMIT, "the test never had {LIMIT} out at once: {most}");

    b.handle.stop();
    let _ = b.task.await;
    drop(b.sandbox);
}

/// Waits (at most 10 s) for `done`, checking every few milliseconds.
async fn until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
