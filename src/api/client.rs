//! A typed client of the API (SPEC §2): Bearer auth, timeouts, a request-rate cap, and retries
//! with exponential backoff and jitter for requests that are safe to repeat (GETs, and POSTs
//! carrying an `Idempotency-Key` generated once per logical action). `Retry-After` is honoured
//! and pauses every request of the client, not only the one that got it. Problem details keep
//! the server's `detail` and field errors.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

pub use super::error::ApiError;
use super::error::{parse_problem, retry_after, transport_error};
pub use super::pages::CustomerPages;
use super::types::{
    AdvanceClockRequest, ClockState, CreateWebhookRequest, DeliveryList, Document, DocumentList, KycStarted,
    Page, SimulateAction, SimulateRequest, StartKycRequest, WebhookEndpoint, WebhookEndpointList,
};
use crate::domain::{ComplianceStatus, Customer, CustomerProfile, DocumentType, Strategy};
use crate::secret::Secret;

/// The largest page the API serves.
pub const PAGE_LIMIT: u32 = 100;

/// How a client reaches the API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The API base URL, without the `/v1`.
    pub base_url: String,
    pub api_key: Secret,
    /// One attempt's timeout.
    pub timeout: Duration,
    /// Requests per second across the client; `None` for no cap.
    pub max_rps: Option<u32>,
    /// Requests in flight at once across the client, every kind together; `None` for no
    /// limit.
    pub concurrency: Option<usize>,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, api_key: impl Into<Secret>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            api_key: api_key.into(),
            timeout: Duration::from_secs(10),
            max_rps: None,
            concurrency: None,
            retry: RetryPolicy::default(),
        }
    }
}

/// Retries of transient failures: transport errors, 5xx and 429.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    pub const NONE: RetryPolicy = RetryPolicy {
        attempts: 1,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// The wait before retry number `retry` (0-based): exponential with full jitter in its
    /// upper half, so many clients that failed together do not retry together.
    pub fn delay(&self, retry: u32) -> Duration {
        crate::backoff::jittered(self.base_delay, self.max_delay, retry)
    }

    /// The wait before retry number `retry` (0-based) after `error`: the server's
    /// `Retry-After` when it gave one, else the backoff; at most the cap (or 1 s, whichever is
    /// longer, so a short cap does not ignore a server that asks for a second).
    pub fn wait_after(&self, error: &ApiError, retry: u32) -> Duration {
        error
            .retry_after()
            .unwrap_or_else(|| self.delay(retry))
            .min(self.max_delay.max(Duration::from_secs(1)))
    }
}

/// Told how long each attempt of a request took, from sending it to the last byte of the
/// answer (or its failure); the wait for the rate cap and a free slot is not counted. Keeps
/// this module free of whoever listens (the engine's metrics).
pub type LatencyHook = Arc<dyn Fn(Duration) + Send + Sync>;

/// The API client. Cheap to clone; clones share the connection pool, the rate cap and any
/// `Retry-After` pause.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: Arc<str>,
    auth: HeaderValue,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// Requests wait for the limiter one at a time, in the order they came: the limiter alone
    /// wakes every waiter at once and lets a random one through, which could starve a request.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Slots for requests in flight (`ClientConfig::concurrency`).
    slots: Option<Arc<tokio::sync::Semaphore>>,
    paused_until: Arc<Mutex<Option<Instant>>>,
    retry: RetryPolicy,
    /// A shorter timeout than the connection's, for an impatient copy.
    call_timeout: Option<Duration>,
    latency: Option<LatencyHook>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// A request, described so that it can be built again for each attempt.
pub(super) struct Call<'a> {
    method: Method,
    path: String,
    json: Option<Value>,
    query: &'a [(&'a str, String)],
    idempotency_key: Option<String>,
    multipart: Option<Upload<'a>>,
}

struct Upload<'a> {
    customer_id: Uuid,
    document_type: DocumentType,
    file_name: &'a str,
    content: &'a [u8],
}

impl ApiClient {
    pub fn new(config: &ClientConfig) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", config.api_key.expose_secret())).map_err(|_| {
                ApiError::Transport("the API key contains characters a header cannot carry".into())
            })?;
        auth.set_sensitive(true);
        // A bucket of one: requests are spaced 1/N s apart, so no second holds more than N (a
        // full bucket of N would let 2N go in the first second, and a per-second API refuses).
        let limiter = config.max_rps.and_then(NonZeroU32::new).map(|n| {
            Arc::new(RateLimiter::direct(
                Quota::per_second(n).allow_burst(NonZeroU32::MIN),
            ))
        });
        Ok(Self {
            http,
            base_url: config.base_url.trim_end_matches('/').into(),
            auth,
            limiter,
            turn: Arc::new(tokio::sync::Mutex::new(())),
            slots: config
                .concurrency
                .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1)))),
            paused_until: Arc::default(),
            retry: config.retry,
            call_timeout: None,
            latency: None,
        })
    }

    /// This client, telling `hook` how long each attempt took (copies made from it too).
    pub fn with_latency_hook(self, hook: LatencyHook) -> ApiClient {
        ApiClient {
            latency: Some(hook),
            ..self
        }
    }

    /// A copy that tries each request once, giving up after `timeout`, and shares everything
    /// else (the rate cap, the slots, a 429's pause): for a step that must not hold start-up.
    pub fn impatient(&self, timeout: Duration) -> ApiClient {
        ApiClient {
            retry: RetryPolicy::NONE,
            call_timeout: Some(timeout),
            ..self.clone()
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    // ---- customers ------------------------------------------------------------------------

    pub async fn create_customer(&self, profile: &CustomerProfile) -> Result<Customer, ApiError> {
        self.post("/v1/customers", to_value(profile)?).await
    }

    pub async fn list_customers(&self, limit: u32, cursor: Option<&str>) -> Result<Page<Customer>, ApiError> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_string()));
        }
        self.send(Call::get("/v1/customers".into(), &query)).await
    }

    /// The customer listing page by page, oldest first; with `external_id`, the listing filtered
    /// by it (an API may ignore the filter: callers check what they get).
    pub fn customer_pages(&self, external_id: Option<&str>) -> CustomerPages {
        CustomerPages::new(self.clone(), external_id)
    }

    pub async fn customer(&self, id: Uuid) -> Result<Customer, ApiError> {
        self.send(Call::get(format!("/v1/customers/{id}"), &[])).await
    }

    /// The customer a person names by id or by `externalId` (a CLI argument, an inbox file's
    /// name), if any.
    pub async fn find_customer(&self, id_or_external_id: &str) -> Result<Option<Customer>, ApiError> {
        match id_or_external_id.parse::<Uuid>() {
            Ok(id) => match self.customer(id).await {
                Ok(customer) => Ok(Some(customer)),
                Err(err) if err.is_not_found() => Ok(None),
                Err(err) => Err(err),
            },
            Err(_) => self.customer_by_external_id(id_or_external_id).await,
        }
    }

    /// The customer with this `externalId`, if any. The filter is asked for, but only an exact
    /// match is believed: an API that ignores the parameter answers with everyone, and the
    /// pages are then searched.
    pub async fn customer_by_external_id(&self, external_id: &str) -> Result<Option<Customer>, ApiError> {
        let mut pages = self.customer_pages(Some(external_id));
        while let Some(page) = pages.next().await {
            if let Some(found) = page?
                .into_iter()
                .find(|c| c.external_id.as_deref() == Some(external_id))
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// A JSON merge patch (RFC 7396) of the customer.
    pub async fn patch_customer(&self, id: Uuid, patch: &Value) -> Result<Customer, ApiError> {
        let call = Call {
            method: Method::PATCH,
            path: format!("/v1/customers/{id}"),
            json: Some(patch.clone()),
            query: &[],
            // A merge patch sets values: applying it twice gives the same customer.
            idempotency_key: None,
            multipart: None,
        };
        self.send(call).await
    }

    // ---- compliance -----------------------------------------------------------------------

    pub async fn start_kyc(
        &self,
        customer_id: Uuid,
        strategy: Option<Strategy>,
    ) -> Result<KycStarted, ApiError> {
        let body = StartKycRequest {
            customer_id,
            strategy,
        };
        self.post("/v1/compliance/kyc", to_value(&body)?).await
    }

    pub async fn rerun_kyc(&self, onboarding_id: Uuid) -> Result<KycStarted, ApiError> {
        self.post(&format!("/v1/compliance/kyc/{onboarding_id}/rerun"), Value::Null)
            .await
    }

    /// Uploads a document. `idempotency_key` names the logical upload; the same key after a
    /// crash or a lost answer cannot upload twice.
    pub async fn upload_document(
        &self,
        customer_id: Uuid,
        document_type: DocumentType,
        file_name: &str,
        content: &[u8],
        idempotency_key: Option<String>,
    ) -> Result<Document, ApiError> {
        let call = Call {
            method: Method::POST,
            path: "/v1/compliance/upload-doc".into(),
            json: None,
            query: &[],
            idempotency_key: Some(idempotency_key.unwrap_or_else(new_key)),
            multipart: Some(Upload {
                customer_id,
                document_type,
                file_name,
                content,
            }),
        };
        self.send(call).await
    }

    pub async fn documents(&self, customer_id: Uuid) -> Result<DocumentList, ApiError> {
        self.send(Call::get(format!("/v1/compliance/documents/{customer_id}"), &[]))
            .await
    }

    pub async fn status(&self, customer_id: Uuid) -> Result<ComplianceStatus, ApiError> {
        self.send(Call::get(format!("/v1/compliance/status/{customer_id}"), &[]))
            .await
    }

    // ---- webhooks -------------------------------------------------------------------------

    pub async fn create_webhook(
        &self,
        url: &str,
        description: Option<&str>,
    ) -> Result<WebhookEndpoint, ApiError> {
        let body = CreateWebhookRequest {
            url: url.to_string(),
            description: description.map(str::to_string),
            event_types: None,
        };
        self.post("/v1/webhooks", to_value(&body)?).await
    }

    pub async fn webhooks(&self) -> Result<WebhookEndpointList, ApiError> {
        self.send(Call::get("/v1/webhooks".into(), &[])).await
    }

    pub async fn delete_webhook(&self, id: Uuid) -> Result<(), ApiError> {
        let call = Call {
            method: Method::DELETE,
            path: format!("/v1/webhooks/{id}"),
            json: None,
            query: &[],
            idempotency_key: None,
            multipart: None,
        };
        self.send_raw(call).await.map(|_| ())
    }

    pub async fn deliveries(&self, endpoint_id: Uuid) -> Result<DeliveryList, ApiError> {
        self.send(Call::get(format!("/v1/webhooks/{endpoint_id}/deliveries"), &[]))
            .await
    }

    pub async fn resend(&self, endpoint_id: Uuid, delivery_id: Uuid) -> Result<Value, ApiError> {
        self.post(
            &format!("/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/resend"),
            Value::Null,
        )
        .await
    }

    // ---- sandbox --------------------------------------------------------------------------

    pub async fn simulate(&self, customer_id: Uuid, action: SimulateAction) -> Result<Value, ApiError> {
        let body = SimulateRequest { action };
        self.post(
            &format!("/v1/sandbox/customers/{customer_id}/simulate"),
            to_value(&body)?,
        )
        .await
    }

    /// The sandbox tenant's clock (SDK link expiries are on it).
    pub async fn clock(&self) -> Result<ClockState, ApiError> {
        self.send(Call::get("/v1/sandbox/clock".into(), &[])).await
    }

    pub async fn advance_clock(&self, seconds: u64) -> Result<ClockState, ApiError> {
        self.post(
            "/v1/sandbox/clock/advance",
            to_value(&AdvanceClockRequest { seconds })?,
        )
        .await
    }

    // ---- plumbing -------------------------------------------------------------------------

    /// A POST with a new idempotency key, reused by its retries.
    async fn post<T: DeserializeOwned>(&self, path: &str, body: Value) -> Result<T, ApiError> {
        let call = Call {
            method: Method::POST,
            path: path.to_string(),
            json: (!body.is_null()).then_some(body),
            query: &[],
            idempotency_key: Some(new_key()),
            multipart: None,
        };
        self.send(call).await
    }

    pub(super) async fn send<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, ApiError> {
        let bytes = self.send_raw(call).await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// Sends with retries; returns the body of a 2xx answer.
    async fn send_raw(&self, call: Call<'_>) -> Result<bytes::Bytes, ApiError> {
        // Only what cannot be applied twice by a repeat is not retried: a POST without a key.
        let retriable = call.method != Method::POST || call.idempotency_key.is_some();
        let attempts = if retriable { self.retry.attempts.max(1) } else { 1 };
        let mut attempt = 0;
        loop {
            let result = self.attempt(&call).await;
            attempt += 1;
            match result {
                Err(err) if err.is_transient() && attempt < attempts => {
                    let wait = self.retry.wait_after(&err, attempt - 1);
                    tracing::debug!("{} {}: {err}; retrying in {wait:?}", call.method, call.path);
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    async fn attempt(&self, call: &Call<'_>) -> Result<bytes::Bytes, ApiError> {
        self.wait_for_turn().await;
        // Held until the whole answer is read: it is in flight until then.
        let _slot = match &self.slots {
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        };
        let sent = Instant::now();
        let result = self.exchange(call).await;
        if let Some(hook) = &self.latency {
            hook(sent.elapsed());
        }
        result
    }

    /// One request and its whole answer.
    async fn exchange(&self, call: &Call<'_>) -> Result<bytes::Bytes, ApiError> {
        let response = self.build(call)?.send().await.map_err(transport_error)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, std::time::SystemTime::now()));
        if let Some(wait) = retry_after.filter(|_| status == StatusCode::TOO_MANY_REQUESTS) {
            self.pause_for(wait);
        }
        let body = response.bytes().await.map_err(transport_error)?;
        if status.is_success() {
            return Ok(body);
        }
        Err(ApiError::Status {
            status: status.as_u16(),
            problem: Box::new(parse_problem(status, &body)),
            retry_after,
        })
    }

    fn build(&self, call: &Call<'_>) -> Result<RequestBuilder, ApiError> {
        let url = format!("{}{}", self.base_url, call.path);
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .header(AUTHORIZATION, self.auth.clone());
        if let Some(timeout) = self.call_timeout {
            request = request.timeout(timeout);
        }
        if !call.query.is_empty() {
            request = request.query(call.query);
        }
        if let Some(key) = &call.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(json) = &call.json {
            request = request.json(json);
        }
        if let Some(upload) = &call.multipart {
            let part = reqwest::multipart::Part::bytes(upload.content.to_vec())
                .file_name(header_safe_file_name(upload.file_name));
            let form = reqwest::multipart::Form::new()
                .text("customerId", upload.customer_id.to_string())
                .text("type", upload.document_type.as_str())
                .part("file", part);
            request = request.multipart(form);
        }
        Ok(request)
    }

    /// Waits out a `Retry-After` pause, then for the rate cap.
    async fn wait_for_turn(&self) {
        // With a cap, one request at a time waits, in the order they came; the pause is
        // looked at after the turn is taken, so a 429 that arrived meanwhile holds them all.
        let _turn = match &self.limiter {
            Some(_) => Some(self.turn.lock().await),
            None => None,
        };
        loop {
            let until = self.paused_until.lock().map(|p| *p).unwrap_or(None);
            match until {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until.into()).await,
                _ => break,
            }
        }
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
    }

    fn pause_for(&self, wait: Duration) {
        if let Ok(mut paused) = self.paused_until.lock() {
            let until = Instant::now() + wait;
            if paused.is_none_or(|p| p < until) {
                *paused = Some(until);
            }
        }
    }
}

impl<'a> Call<'a> {
    pub(super) fn get(path: String, query: &'a [(&'a str, String)]) -> Self {
        Call {
            method: Method::GET,
            path,
            json: None,
            query,
            idempotency_key: None,
            multipart: None,
        }
    }
}

fn new_key() -> String {
    format!("kycdash-{}", Uuid::new_v4())
}

fn to_value<T: Serialize>(body: &T) -> Result<Value, ApiError> {
    serde_json::to_value(body).map_err(|e| ApiError::Decode(format!("cannot encode the request: {e}")))
}

/// A file name as a multipart header can carry it: control characters (a newline would end
/// the header line and leave the body malformed, or add a header of the name's choosing)
/// become `_`, and a quote or a backslash (escaped differently by each side) becomes `'` or
/// `_`. The name is only a label on the API's side; what the file is comes from its bytes.
fn header_safe_file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    if safe.trim().is_empty() {
        "document".to_string()
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_waits_for_the_servers_retry_after_over_the_backoff_within_the_cap() {
        let policy = RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        };
        let slow_down = |retry_after: Option<Duration>| ApiError::Status {
            status: 429,
            problem: Box::new(parse_problem(StatusCode::TOO_MANY_REQUESTS, b"")),
            retry_after,
        };
        assert_eq!(
            policy.wait_after(&slow_down(Some(Duration::from_secs(1))), 0),
            Duration::from_secs(1)
        );
        assert_eq!(
            policy.wait_after(&slow_down(Some(Duration::from_secs(90))), 0),
            Duration::from_secs(1),
            "capped"
        );
        let backoff = policy.wait_after(&slow_down(None), 0);
        assert!(
            backoff >= Duration::from_millis(5) && backoff <= Duration::from_millis(10),
            "{backoff:?}"
        );
        let transport = ApiError::Transport("refused".into());
        assert!(policy.wait_after(&transport, 5) <= Duration::from_millis(20));
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let config = ClientConfig::new("http://127.0.0.1:1", "sk_live_supersecretvalue");
        let shown = format!("{config:?}");
        assert!(!shown.contains("supersecretvalue"), "{shown}");
        assert!(
            shown.contains("sk_live_su…"),
            "the hint tells keys apart: {shown}"
        );
        let client = ApiClient::new(&config).unwrap();
        assert!(!format!("{client:?}").contains("supersecretvalue"));
    }
}
