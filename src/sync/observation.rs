//! What the producers (poller, receiver, inbox) tell the engine, and what the engine answers
//! them. Its own module so that the producers and the engine both depend on it, never on each
//! other.

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::api::ApiError;
use crate::domain::{ComplianceStatus, Customer, DocumentType, WebhookEvent};
use crate::sync::cache::Lost;

/// Why a delivery was refused, as `webhook_rejected` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    BadSignature,
    StaleTimestamp,
    MissingHeaders,
    Malformed,
    TooLarge,
}

/// What the engine answers for a verified event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    Recorded,
    Duplicate,
}

/// The outcome of one uploaded file, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadResult {
    Uploaded,
    Duplicate,
    Failed(String),
}

/// An upload the inbox made, to record before the file leaves the inbox.
#[derive(Debug)]
pub struct UploadMade {
    pub path: String,
    pub customer_id: Uuid,
    pub document_type: DocumentType,
    pub sha256: String,
    /// Answered `true` once the upload is committed to the cache, `false` if it could not be.
    pub recorded: oneshot::Sender<bool>,
}

/// so a large variant costs less than boxing every status would.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Observation {
    /// A page of the customer listing; `last`: the listing is complete.
    Discovered {
        customers: Vec<Customer>,
        last: bool,
    },
    DiscoveryFailed(ApiError),
    Snapshot {
        customer_id: Uuid,
        customer: Option<Customer>,
        status: ComplianceStatus,
        /// The sweep (its number) this poll was for, if any.
        sweep: Option<u32>,
    },
    PollFailed {
        customer_id: Uuid,
        error: ApiError,
        sweep: Option<u32>,
    },
    Webhook {
        event: WebhookEvent,
        raw: String,
        ack: oneshot::Sender<Ack>,
        /// The cache holds the event already (a repeat older than the engine's memory).
        stored: bool,
    },
    Rejected {
        reason: RejectReason,
        detail: String,
    },
    Upload {
        path: String,
        customer_id: Option<Uuid>,
        document_type: Option<DocumentType>,
        sha256: Option<String>,
        result: UploadResult,
    },
    /// An inbox file uploaded: its upload is recorded before the file moves (SPEC §10), and
    /// `Upload` follows once it has.
    UploadMade(UploadMade),
    /// The API refused the key to a producer (the inbox): the end for `watch`, a state the
    /// dashboard shows.
    KeyRefused(ApiError),
    /// The sandbox's clock is this many seconds ahead.
    Clock(i64),
    /// A retried registration of the webhook endpoint: its secret, or why it failed.
    Registered(Result<crate::secret::Secret, ApiError>),
    /// The commit a webhook's row waited for is done (`recorded`) or failed (its id is then
    /// not known after all, and the sender must retry); `ack` is the first copy's answer.
    Committed {
        event_id: String,
        recorded: bool,
        ack: oneshot::Sender<Ack>,
    },
    /// Rows the cache writer could not store: the engine thought them stored, and must
    /// forget that so they are written again, and say so.
    Lost(Vec<Lost>),
}
