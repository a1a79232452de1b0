//! The engine's public contract: what it tells whoever watches (`watch` prints it as NDJSON,
//! the dashboard builds its model from it).

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{DocumentType, NextAction, OnboardingStatus, Stage};
use crate::sync::cache::{self, CustomerSummary};
use crate::sync::observation::RejectReason;

/// Something that happened, for whoever watches: NDJSON lines in `watch`, the dashboard's
/// model. Field names are those of SPEC §7.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", rename_all_fields = "camelCase")]
pub enum EngineEvent {
    Started {
        api_url: String,
        sandbox: bool,
        webhook_url: Option<String>,
        inbox: Option<String>,
        data_dir: String,
    },
    StageChanged {
        customer_id: Uuid,
        #[serde(skip_serializing_if = "Option::is_none")]
        external_id: Option<String>,
        from: Option<Stage>,
        to: Stage,
        onboarding_status: Option<OnboardingStatus>,
        next_action: Option<NextAction>,
        is_compliant: bool,
    },
    Webhook {
        event_id: String,
        event_type: String,
        customer_id: Option<Uuid>,
        duplicate: bool,
    },
    WebhookRejected {
        reason: RejectReason,
        detail: String,
    },
    Upload {
        path: String,
        customer_id: Option<Uuid>,
        document_type: Option<DocumentType>,
        result: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    PollError {
        #[serde(skip_serializing_if = "Option::is_none")]
        customer_id: Option<Uuid>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        error: String,
        retry_in_seconds: u64,
        /// Status pulls waiting for a slot, and out, when this was said.
        queued: usize,
        in_flight: usize,
    },
    Alert {
        customer_id: Uuid,
        alert: AlertKind,
        detail: String,
    },
    Sweep {
        customers: usize,
        changed: usize,
        duration_ms: u64,
        /// Status pulls waiting for a slot, and out, as the sweep ends.
        queued: usize,
        in_flight: usize,
    },
    /// The engine cannot go on (the API refused the key); `stopped` follows. Not an NDJSON
    /// line: `watch` says it on stderr and exits 1.
    Fatal {
        error: String,
    },
    Stopped,
    /// Customers as the dashboard shows them: every one at start (from the cache), then each
    /// one that changed. Not an NDJSON line.
    #[serde(skip)]
    Customers(Vec<CustomerState>),
    /// The poller's state, when it changes. Not an NDJSON line.
    #[serde(skip)]
    Poller {
        queued: usize,
        in_flight: usize,
        paused: bool,
    },
    /// The webhook receiver's state when it changes after `started`: `webhook_url` once an
    /// endpoint is registered, or `None` and why while the engine polls alone. Not an NDJSON
    /// line: `watch` says it on stderr.
    #[serde(skip)]
    Receiver {
        webhook_url: Option<String>,
        /// Why there is none, in full (stderr, the log).
        reason: Option<String>,
        /// The same in a few words, for a header: `registering`, `API unreachable`, `HTTP 503`.
        why: Option<String>,
    },
    /// How far the API's clock is ahead of this machine's (the sandbox's clock moves when
    /// told to; SDK link expiries are on it). Not an NDJSON line.
    #[serde(skip)]
    Clock {
        offset_seconds: i64,
    },
    /// The API's state as the engine last found it, when it changes (SPEC §10). Not an
    /// NDJSON line: `watch` says it on stderr (its `poll_error` lines carry the details).
    #[serde(skip)]
    Api(ApiState),
    /// While the API is unreachable: the customers whose last status read is older than their
    /// stage's polling interval, with when it was read (SPEC §10: they show their age). Sent
    /// when the API is found unreachable and once a minute while it stays so; empty once it
    /// answers again. Not an NDJSON line.
    #[serde(skip)]
    Stale(Vec<(Uuid, OffsetDateTime)>),
}

/// The API as the engine last found it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ApiState {
    /// Nothing asked yet.
    #[default]
    Connecting,
    /// The last request was answered.
    Connected,
    /// No answer, or 5xx answers, since `since` (this machine's clock); the engine tries
    /// again at `retry_at`.
    Unreachable {
        since: OffsetDateTime,
        retry_at: OffsetDateTime,
        reason: String,
    },
    /// The API refused the key (401/403): nothing works until the configuration changes.
    KeyRefused { reason: String },
}

impl EngineEvent {
    /// Whether `watch` prints it (SPEC §7's kinds).
    pub fn is_ndjson(&self) -> bool {
        !matches!(
            self,
            EngineEvent::Customers(_)
                | EngineEvent::Poller { .. }
                | EngineEvent::Clock { .. }
                | EngineEvent::Receiver { .. }
                | EngineEvent::Fatal { .. }
                | EngineEvent::Api(_)
                | EngineEvent::Stale(_)
        )
    }
}

/// One customer as the engine knows them now.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerState {
    /// Shared with the engine: a row costs the dashboard no copy.
    pub customer: Arc<CustomerSummary>,
    pub status: Option<Arc<cache::StatusSummary>>,
    /// The stage the last status proved.
    pub stage: Option<Stage>,
    /// Since when the customer is in `stage`.
    pub since: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    SdkLinkExpiring,
    StuckWaiting,
    VerificationError,
    Drift,
}
