//! The engine's Prometheus metrics (SPEC §11): one registry built once, counted from the events
//! the engine emits (and its pulls and requests), and served as Prometheus text at `/metrics`
//! by a task of its own. A scrape reads atomics and never waits for the engine.
//!
//! The oldest customer waiting per stage is computed at scrape time from the oldest `since`
//! per stage, which the engine records from the tracker at start, at each sweep's end and at
//! each countdown check (once a minute), and lowers at once when a customer enters an empty
//! stage.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::domain::Stage;
use crate::sync::engine::{AlertKind, ApiState, EngineEvent};
use crate::sync::observation::RejectReason;

type Label = [(&'static str, &'static str); 1];
type FloatGauge = Gauge<f64, AtomicU64>;

const STAGES: usize = Stage::ALL.len();
const REASONS: [RejectReason; 5] = [
    RejectReason::BadSignature,
    RejectReason::StaleTimestamp,
    RejectReason::MissingHeaders,
    RejectReason::Malformed,
    RejectReason::TooLarge,
];
const ALERTS: [AlertKind; 4] = [
    AlertKind::SdkLinkExpiring,
    AlertKind::StuckWaiting,
    AlertKind::VerificationError,
    AlertKind::Drift,
];
const UPLOAD_RESULTS: [&str; 3] = ["uploaded", "duplicate", "failed"];
/// No oldest customer in a stage.
const NOBODY: i64 = i64::MAX;

/// The metrics of one engine. Cheap to clone; clones count into the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct Inner {
    registry: Registry,
    /// By `stage as usize`, in `Stage::ALL`'s order (the children of the labelled families,
    /// taken once, so counting takes no lock).
    customers: [Gauge; STAGES],
    oldest_waiting: [FloatGauge; STAGES],
    /// Unix seconds at which the oldest customer of each stage entered it; `NOBODY` if none.
    oldest_since: [AtomicI64; STAGES],
    webhooks_received: Counter,
    webhooks_duplicate: Counter,
    webhooks_rejected: [Counter; REASONS.len()],
    polls: Counter,
    poll_errors: Family<[(&'static str, String); 1], Counter>,
    api_latency: Histogram,
    sweep_duration: FloatGauge,
    sweep_customers: Gauge,
    alerts: [Counter; ALERTS.len()],
    inbox_files: [Counter; UPLOAD_RESULTS.len()],
    api_reachable: Gauge,
}

/// The children of a family for each label value, created now so every series is served from
/// the first scrape (a rule's `increase()` needs the zero).
fn children<M, const N: usize>(
    family: &Family<Label, M>,
    key: &'static str,
    values: [&'static str; N],
) -> [M; N]
where
    M: Clone,
{
    values.map(|value| family.get_or_create(&[(key, value)]).clone())
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kycdash");
        let stage_names = Stage::ALL.map(Stage::as_str);

        let customers = Family::<Label, Gauge>::default();
        registry.register("customers", "Customers per onboarding stage", customers.clone());
        let oldest = Family::<Label, FloatGauge>::default();
        registry.register_with_unit(
            "oldest_customer_waiting",
            "Time since the customer longest in each stage entered it (0 when the stage is empty)",
            Unit::Seconds,
            oldest.clone(),
        );
        let webhooks_received = Counter::default();
        registry.register(
            "webhooks_received",
            "Verified webhooks received, repeats included",
            webhooks_received.clone(),
        );
        let webhooks_duplicate = Counter::default();
        registry.register(
            "webhooks_duplicate",
            "Verified webhooks whose event id had been applied already",
            webhooks_duplicate.clone(),
        );
        let rejected = Family::<Label, Counter>::default();
        registry.register(
            "webhooks_rejected",
            "Webhooks turned away, by reason (as in webhook_rejected lines)",
            rejected.clone(),
        );
        let polls = Counter::default();
        registry.register(
            "polls",
            "Status pulls that came back, answered or not",
            polls.clone(),
        );
        let poll_errors = Family::<[(&'static str, String); 1], Counter>::default();
        registry.register(
            "poll_errors",
            "Failed status pulls and listings, by HTTP status (\"none\" for no answer)",
            poll_errors.clone(),
        );
        // 1 ms to about 33 s.
        let api_latency = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register_with_unit(
            "api_request_duration",
            "Duration of each attempt of a request to the API, from sending to the last byte",
            Unit::Seconds,
            api_latency.clone(),
        );
        let sweep_duration = FloatGauge::default();
        registry.register_with_unit(
            "last_sweep_duration",
            "Duration of the last full sweep",
            Unit::Seconds,
            sweep_duration.clone(),
        );
        let sweep_customers = Gauge::default();
        registry.register(
            "last_sweep_customers",
            "Customers in the last full sweep",
            sweep_customers.clone(),
        );
        let alerts = Family::<Label, Counter>::default();
        registry.register("alerts", "Alerts raised, by kind", alerts.clone());
        let inbox_files = Family::<Label, Counter>::default();
        registry.register(
            "inbox_files",
            "Inbox files handled, by result",
            inbox_files.clone(),
        );
        let api_reachable = Gauge::default();
        registry.register(
            "api_reachable",
            "1 when the API answered the engine's last request, else 0",
            api_reachable.clone(),
        );

        let inner = Inner {
            customers: children(&customers, "stage", stage_names),
            oldest_waiting: children(&oldest, "stage", stage_names),
            oldest_since: std::array::from_fn(|_| AtomicI64::new(NOBODY)),
            webhooks_received,
            webhooks_duplicate,
            webhooks_rejected: children(&rejected, "reason", REASONS.map(reason_name)),
            polls,
            poll_errors,
            api_latency,
            sweep_duration,
            sweep_customers,
            alerts: children(&alerts, "kind", ALERTS.map(alert_name)),
            inbox_files: children(&inbox_files, "result", UPLOAD_RESULTS),
            api_reachable,
            registry,
        };
        Metrics {
            inner: Arc::new(inner),
        }
    }

    /// Counts what an event says. `since`: for `StageChanged`, when the customer entered the
    /// new stage.
    pub fn event(&self, event: &EngineEvent, since: Option<OffsetDateTime>) {
        let m = &self.inner;
        match event {
            EngineEvent::StageChanged { from, to, .. } => {
                if let Some(from) = from {
                    // The last one out: nobody waits there any more (otherwise the oldest is
                    // found again at the next recount).
                    if m.customers[*from as usize].dec() <= 1 {
                        m.oldest_since[*from as usize].store(NOBODY, Ordering::Relaxed);
                    }
                }
                m.customers[*to as usize].inc();
                if let Some(since) = since {
                    m.oldest_since[*to as usize].fetch_min(since.unix_timestamp(), Ordering::Relaxed);
                }
            }
            EngineEvent::Webhook { duplicate, .. } => {
                m.webhooks_received.inc();
                if *duplicate {
                    m.webhooks_duplicate.inc();
                }
            }
            EngineEvent::WebhookRejected { reason, .. } => {
                if let Some(i) = REASONS.iter().position(|r| r == reason) {
                    m.webhooks_rejected[i].inc();
                }
            }
            EngineEvent::PollError { status, .. } => {
                let status = status.map_or_else(|| "none".to_string(), |s| s.to_string());
                m.poll_errors.get_or_create(&[("status", status)]).inc();
            }
            EngineEvent::Alert { alert, .. } => {
                if let Some(i) = ALERTS.iter().position(|a| a == alert) {
                    m.alerts[i].inc();
                }
            }
            EngineEvent::Upload { result, .. } => {
                if let Some(i) = UPLOAD_RESULTS.iter().position(|r| r == result) {
                    m.inbox_files[i].inc();
                }
            }
            EngineEvent::Sweep {
                customers,
                duration_ms,
                ..
            } => {
                m.sweep_duration.set(*duration_ms as f64 / 1000.0);
                m.sweep_customers
                    .set(i64::try_from(*customers).unwrap_or(i64::MAX));
            }
            EngineEvent::Api(state) => {
                m.api_reachable.set(i64::from(*state == ApiState::Connected));
            }
            _ => {}
        }
    }

    /// A status pull came back, answered or not.
    pub fn poll(&self) {
        self.inner.polls.inc();
    }

    /// One attempt of a request to the API took `took`.
    pub fn api_request(&self, took: Duration) {
        self.inner.api_latency.observe(took.as_secs_f64());
    }

    /// Sets the customers per stage and the oldest of each from the tracker's every customer
    /// (the stage they were last reported in, since when).
    pub fn stages(&self, reported: impl Iterator<Item = (Stage, OffsetDateTime)>) {
        let mut counts = [0i64; STAGES];
        let mut oldest = [NOBODY; STAGES];
        for (stage, since) in reported {
            let i = stage as usize;
            counts[i] += 1;
            oldest[i] = oldest[i].min(since.unix_timestamp());
        }
        for i in 0..STAGES {
            self.inner.customers[i].set(counts[i]);
            self.inner.oldest_since[i].store(oldest[i], Ordering::Relaxed);
        }
    }

    /// The metrics in the Prometheus text format (0.0.4), the waits computed at `now`.
    pub fn render(&self, now: OffsetDateTime) -> Result<String, std::fmt::Error> {
        let m = &self.inner;
        let now = now.unix_timestamp();
        for (since, gauge) in m.oldest_since.iter().zip(&m.oldest_waiting) {
            let since = since.load(Ordering::Relaxed);
            let waiting = if since == NOBODY { 0 } else { (now - since).max(0) };
            gauge.set(waiting as f64);
        }
        let mut text = String::with_capacity(8 * 1024);
        prometheus_text::encode(&mut text, &m.registry)?;
        Ok(text)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn reason_name(reason: RejectReason) -> &'static str {
    match reason {
        RejectReason::BadSignature => "bad_signature",
        RejectReason::StaleTimestamp => "stale_timestamp",
        RejectReason::MissingHeaders => "missing_headers",
        RejectReason::Malformed => "malformed",
        RejectReason::TooLarge => "too_large",
    }
}

fn alert_name(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::SdkLinkExpiring => "sdk_link_expiring",
        AlertKind::StuckWaiting => "stuck_waiting",
        AlertKind::VerificationError => "verification_error",
        AlertKind::Drift => "drift",
    }
}

/// Why the metrics could not be served.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {source}; pass another --metrics-listen")]
pub struct ServeError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// Serves `GET /metrics` on `listen` on a task of its own. Returns the bound address (the port
/// chosen when `listen`'s is 0) and the task.
pub async fn serve(metrics: Metrics, listen: SocketAddr) -> Result<(SocketAddr, JoinHandle<()>), ServeError> {
    let error = |source| ServeError { addr: listen, source };
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(error)?;
    let bound = listener.local_addr().map_err(error)?;
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(metrics);
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!("the metrics listener stopped: {err}");
        }
    });
    Ok((bound, task))
}

async fn scrape(State(metrics): State<Metrics>) -> Response {
    match metrics.render(OffsetDateTime::now_utc()) {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)], text).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the metrics\n").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_indexes_follow_stage_all() {
        for (i, stage) in Stage::ALL.iter().enumerate() {
            assert_eq!(*stage as usize, i, "{stage:?}");
        }
    }

    #[test]
    fn reason_and_alert_names_are_those_of_the_ndjson_lines() {
        for reason in REASONS {
            let json = serde_json::to_value(reason).unwrap_or_default();
            assert_eq!(json.as_str(), Some(reason_name(reason)));
        }
        for kind in ALERTS {
            let json = serde_json::to_value(kind).unwrap_or_default();
            assert_eq!(json.as_str(), Some(alert_name(kind)));
        }
    }

    #[test]
    fn a_stage_left_empty_has_nobody_waiting() {
        let metrics = Metrics::new();
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        metrics.stages([(Stage::AwaitingSdk, t0)].into_iter());
        metrics.event(
            &EngineEvent::StageChanged {
                customer_id: uuid::Uuid::nil(),
                external_id: None,
                from: Some(Stage::AwaitingSdk),
                to: Stage::CollectingRequirements,
                onboarding_status: None,
                next_action: None,
                is_compliant: false,
            },
            Some(t0 + time::Duration::hours(1)),
        );
        let text = metrics.render(t0 + time::Duration::hours(2)).unwrap_or_default();
        assert!(
            text.contains("kycdash_oldest_customer_waiting_seconds{stage=\"awaiting_sdk\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("kycdash_customers{stage=\"awaiting_sdk\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("kycdash_oldest_customer_waiting_seconds{stage=\"collecting_requirements\"} 3600"),
            "{text}"
        );
    }

    #[test]
    fn oldest_waiting_is_measured_at_render_time() {
        let metrics = Metrics::new();
        let t0 = OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        metrics.stages(
            [
                (Stage::AwaitingDecision, t0),
                (Stage::AwaitingDecision, t0 + time::Duration::hours(1)),
                (Stage::Approved, t0),
            ]
            .into_iter(),
        );
        let text = metrics.render(t0 + time::Duration::hours(2)).unwrap_or_default();
        assert!(
            text.contains("kycdash_oldest_customer_waiting_seconds{stage=\"awaiting_decision\"} 7200"),
            "{text}"
        );
        assert!(
            text.contains("kycdash_customers{stage=\"awaiting_decision\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("kycdash_oldest_customer_waiting_seconds{stage=\"denied\"} 0"),
            "{text}"
        );
    }
}
