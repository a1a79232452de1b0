//! A harness for black-box tests of the sandbox over real HTTP: an in-process sandbox on a
//! free loopback port, a client with an API key, and a webhook receiver that verifies every
//! signature with the `standardwebhooks` crate.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use kycdash::domain::WebhookEvent;
use kycdash::sandbox::{self, ApiKey, RunningSandbox, SandboxConfig};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

pub const KEY: &str = "sk_test_kycdash";
/// How long a test waits for something asynchronous (a webhook) before failing.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// Asks `check` until it yields a value, for at most `PATIENCE`; a test that waits in vain
/// fails saying for what, rather than hanging.
#[allow(dead_code)]
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub const PDF: &[u8] = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";

/// A complete profile (tests/fixtures/full_profile.json) with this last name (the sandbox's
/// magic names steer outcomes) and a unique externalId.
pub fn full_profile(last_name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/full_profile.json");
    let text = std::fs::read_to_string(&path).expect("the fixture is readable");
    let mut profile: Value = serde_json::from_str(&text).expect("the fixture is JSON");
    profile["kyc"]["lastName"] = json!(last_name);
    profile["externalId"] = json!(format!("ext-{}", Uuid::new_v4().simple()));
    profile
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Response {
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        self
    }

    /// Asserts an RFC 9457 problem with this status.
    pub fn assert_problem(&self, status: u16) -> &Self {
        self.assert_status(status);
        let content_type = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert_eq!(content_type, "application/problem+json", "body: {}", self.text);
        assert_eq!(self.body["status"], status, "body: {}", self.text);
        for field in ["type", "title", "detail"] {
            assert!(
                self.body[field].is_string(),
                "problem without {field}: {}",
                self.text
            );
        }
        self
    }

    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A client of one tenant.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub key: Option<String>,
}

impl Client {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        into_response(request.send().await.expect("the sandbox answers")).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.send(Method::PATCH, path, Some(body), &[]).await
    }

    pub async fn create_customer(&self, body: Value) -> Uuid {
        let response = self.post("/v1/customers", body).await;
        response.assert_status(201);
        response.body["id"]
            .as_str()
            .expect("an id")
            .parse()
            .expect("a UUID")
    }

    pub async fn status(&self, customer: Uuid) -> Value {
        let response = self.get(&format!("/v1/compliance/status/{customer}")).await;
        response.assert_status(200);
        response.body
    }

    pub async fn start_kyc(&self, customer: Uuid) -> Response {
        self.post("/v1/compliance/kyc", json!({"customerId": customer}))
            .await
    }

    pub async fn simulate(&self, customer: Uuid, action: &str) -> Response {
        self.post(
            &format!("/v1/sandbox/customers/{customer}/simulate"),
            json!({"action": action}),
        )
        .await
    }

    pub async fn advance(&self, seconds: u64) -> Value {
        let response = self
            .post("/v1/sandbox/clock/advance", json!({"seconds": seconds}))
            .await;
        response.assert_status(200);
        response.body
    }

    pub async fn upload(&self, customer: Uuid, document_type: &str, content: &[u8]) -> Response {
        let form = reqwest::multipart::Form::new()
            .text("customerId", customer.to_string())
            .text("type", document_type.to_string())
            .part(
                "file",
                reqwest::multipart::Part::bytes(content.to_vec()).file_name("document.pdf"),
            );
        let mut request = self
            .http
            .post(format!("{}/v1/compliance/upload-doc", self.base))
            .multipart(form);
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        into_response(request.send().await.expect("the sandbox answers")).await
    }

    /// Registers a webhook endpoint and returns (id, secret).
    pub async fn register(&self, url: &str) -> (Uuid, String) {
        let response = self.post("/v1/webhooks", json!({"url": url})).await;
        response.assert_status(201);
        let id = response.body["id"].as_str().unwrap().parse().unwrap();
        let secret = response.body["secret"]
            .as_str()
            .expect("the secret, once")
            .to_string();
        (id, secret)
    }

    pub async fn deliveries(&self, endpoint: Uuid) -> Vec<Value> {
        let response = self.get(&format!("/v1/webhooks/{endpoint}/deliveries")).await;
        response.assert_status(200);
        response.body["data"].as_array().cloned().unwrap_or_default()
    }
}

pub async fn into_response(response: reqwest::Response) -> Response {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Response {
        status,
        headers,
        body,
        text,
    }
}

/// A webhook receiver on a loopback port. It verifies each delivery's signature (401 when
/// wrong), can be told to fail the next N deliveries (500), and hands over what it accepted.
pub struct Receiver {
    pub url: String,
    secret: Arc<Mutex<Option<String>>>,
    fail_next: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    pub bad_signatures: Arc<AtomicUsize>,
    seen: Arc<Notify>,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<WebhookEvent>>,
    mismatched_ids: MismatchedIds,
    server: tokio::task::JoinHandle<()>,
}

/// (the webhook-id header, the event's id) of each request where they differ.
type MismatchedIds = Arc<Mutex<Vec<(Option<String>, String)>>>;

#[derive(Clone)]
struct ReceiverState {
    secret: Arc<Mutex<Option<String>>>,
    fail_next: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    bad_signatures: Arc<AtomicUsize>,
    seen: Arc<Notify>,
    events: mpsc::UnboundedSender<WebhookEvent>,
    /// Requests whose webhook-id header was not their event's id: (header, event id).
    mismatched_ids: MismatchedIds,
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    state.requests.fetch_add(1, Ordering::SeqCst);
    state.seen.notify_waiters();
    let fail = state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if fail {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let Some(secret) = state.secret.lock().unwrap().clone() else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    let verifier = standardwebhooks::Webhook::new(&secret).expect("a valid secret");
    if verifier.verify(&body, &headers).is_err() {
        state.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let event: WebhookEvent = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(_) => return StatusCode::BAD_REQUEST,
    };
    // Recorded, not asserted: a panic here would be a dropped connection and a misleading
    // timeout in the test; the test asserts on what was recorded.
    let header = headers.get("webhook-id").and_then(|v| v.to_str().ok());
    if header != Some(event.id.as_str()) {
        state
            .mismatched_ids
            .lock()
            .unwrap()
            .push((header.map(String::from), event.id.clone()));
    }
    let _ = state.events.send(event);
    StatusCode::NO_CONTENT
}

impl Receiver {
    pub async fn start() -> Receiver {
        let (sender, events) = mpsc::unbounded_channel();
        let state = ReceiverState {
            secret: Arc::default(),
            fail_next: Arc::default(),
            requests: Arc::default(),
            bad_signatures: Arc::default(),
            seen: Arc::default(),
            events: sender,
            mismatched_ids: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hooks", post(receive))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url,
            secret: state.secret,
            fail_next: state.fail_next,
            requests: state.requests,
            bad_signatures: state.bad_signatures,
            seen: state.seen,
            events: tokio::sync::Mutex::new(events),
            mismatched_ids: state.mismatched_ids,
            server,
        }
    }

    pub fn set_secret(&self, secret: &str) {
        *self.secret.lock().unwrap() = Some(secret.to_string());
    }

    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// Waits for the next `n` accepted events.
    pub async fn take(&self, n: usize) -> Vec<WebhookEvent> {
        let mut events = self.events.lock().await;
        let mut taken = Vec::with_capacity(n);
        while taken.len() < n {
            match tokio::time::timeout(PATIENCE, events.recv()).await {
                Ok(Some(event)) => taken.push(event),
                _ => panic!(
                    "expected {n} webhook events, got {}: {:?}",
                    taken.len(),
                    names(&taken)
                ),
            }
        }
        let mismatched = self.mismatched_ids.lock().unwrap().clone();
        assert!(
            mismatched.is_empty(),
            "webhook-id must be the event id: (header, event id) {mismatched:?}"
        );
        taken
    }

    /// Waits until the receiver has seen `n` requests in all (accepted or not).
    pub async fn wait_requests(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let seen = self.seen.notified();
            if self.requests.load(Ordering::SeqCst) >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, seen).await.is_err() {
                panic!(
                    "expected {n} webhook requests, got {}",
                    self.requests.load(Ordering::SeqCst)
                );
            }
        }
    }

    /// Events already accepted and not yet taken.
    pub async fn pending(&self) -> Vec<WebhookEvent> {
        let mut events = self.events.lock().await;
        let mut out = Vec::new();
        while let Ok(event) = events.try_recv() {
            out.push(event);
        }
        out
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The webhooks of a customer created with KYC data and started on the standard path,
/// followed by `more`.
pub fn started_then<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut events = vec![
        "CUSTOMER_CREATED",
        "CUSTOMER_KYC_STARTED",
        "CUSTOMER_KYC_SDK_FLOW_REQUIRED",
    ];
    events.extend_from_slice(more);
    events
}

pub fn names(events: &[WebhookEvent]) -> Vec<String> {
    events.iter().map(|e| e.event_type_name().to_string()).collect()
}

/// A sandbox with a receiver registered for its default tenant.
pub struct Harness {
    pub sandbox: RunningSandbox,
    pub client: Client,
    pub receiver: Receiver,
    pub endpoint: Uuid,
}

pub fn config() -> SandboxConfig {
    let mut config = SandboxConfig::ephemeral();
    config.api_keys = vec![
        KEY.parse::<ApiKey>().unwrap(),
        "sk_test_external:EXTERNAL_KYC".parse().unwrap(),
        "sk_test_other".parse().unwrap(),
    ];
    config
}

pub fn client(sandbox: &RunningSandbox, key: Option<&str>) -> Client {
    Client {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: sandbox.base_url().to_string(),
        key: key.map(str::to_string),
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(config(), KEY).await
    }

    pub async fn start_with(config: SandboxConfig, key: &str) -> Harness {
        let sandbox = sandbox::start(config).await.expect("the sandbox starts");
        let client = client(&sandbox, Some(key));
        let receiver = Receiver::start().await;
        let (endpoint, secret) = client.register(&receiver.url).await;
        receiver.set_secret(&secret);
        Harness {
            sandbox,
            client,
            receiver,
            endpoint,
        }
    }

    /// Takes the next `n` events and checks they are of these types, for this customer.
    pub async fn expect_events(&self, customer: Uuid, expected: &[&str]) -> Vec<WebhookEvent> {
        let events = self.receiver.take(expected.len()).await;
        assert_eq!(names(&events), expected);
        for event in &events {
            assert_eq!(event.customer_id(), Some(customer), "{event:?}");
        }
        events
    }

    /// Checks that the sandbox queued exactly the events the receiver got, in that order:
    /// nothing more was produced.
    pub async fn assert_all_delivered(&self, received: &[WebhookEvent]) {
        let deliveries = self.client.deliveries(self.endpoint).await;
        let queued: Vec<&str> = deliveries.iter().filter_map(|d| d["eventId"].as_str()).collect();
        let got: Vec<&str> = received.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(queued, got, "the sandbox queued other events than were received");
        assert!(self.receiver.pending().await.is_empty());
    }
}
