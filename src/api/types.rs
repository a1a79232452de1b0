//! Request and response bodies of the API (SPEC §2) that are not domain values themselves.
//! The sandbox serves them and clients read them; both use these types, never copies.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::domain::{ContentFormat, DocumentType, FieldError, OnboardingStatus, Strategy};

/// A page of a list, oldest first; pass `nextCursor` back as `cursor` for the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub data: Vec<T>,
    /// `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListCustomersQuery {
    /// How many customers to return, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
    /// Only customers with this `externalId`.
    pub external_id: Option<String>,
}

/// The `Idempotency-Key` header every POST accepts: a retry with the same key and body gets
/// the first answer again.
#[derive(Debug, Clone, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// 1 to 255 visible ASCII characters, unique per request you mean to make once.
    #[param(rename = "Idempotency-Key", pattern = "^[!-~]{1,255}$")]
    pub idempotency_key: Option<String>,
}

/// The body of `POST /v1/compliance/kyc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartKycRequest {
    pub customer_id: Uuid,
    /// Sandbox only: overrides the tenant's strategy for this onboarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Onboarding {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub strategy: Strategy,
    pub status: OnboardingStatus,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// The SDK links of a standard onboarding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SdkLinks {
    pub link: String,
    /// The link as a QR code: a PNG image in a `data:` URL.
    pub qr_code: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// The response of starting or rerunning KYC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KycStarted {
    pub onboarding: Onboarding,
    /// Only on the standard (CF_KYC) path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<SdkLinks>,
    /// Only on a rerun: the expired onboarding this one replaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_onboarding_id: Option<Uuid>,
}

/// A document on file (metadata only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub id: Uuid,
    pub customer_id: Uuid,
    #[serde(rename = "type")]
    pub document_type: DocumentType,
    pub format: ContentFormat,
    /// The file name the client sent, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    pub size: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// Whether this is the newest document of its type, the one the checks use.
    pub current: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub uploaded_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentList {
    /// Newest first.
    pub data: Vec<Document>,
}

/// The body of `POST /v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// An http(s) URL without credentials.
    #[schema(max_length = 2048, example = "https://example.com/webhooks/kyc")]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Only these event types are delivered; all of them when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<crate::domain::EventType>>, min_items = 1)]
    pub event_types: Option<Vec<String>>,
}

/// `Debug` shows the secret's hint, never the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    /// The signing secret in full, only in the response that created the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The secret's first characters, to tell secrets apart.
    pub secret_hint: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("description", &self.description)
            .field("event_types", &self.event_types)
            .field("secret", &self.secret.as_deref().map(crate::secret::hint))
            .field("secret_hint", &self.secret_hint)
            .field("created_at", &self.created_at)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookEndpointList {
    pub data: Vec<WebhookEndpoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Every attempt failed; resend it by hand.
    Failed,
    /// The endpoint was deleted before delivery.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub attempted_at: OffsetDateTime,
    /// The receiver's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    /// Why the attempt failed without an answer (timeout, refused connection, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// The event id, also sent as the `webhook-id` header.
    pub event_id: String,
    pub event_type: String,
    pub customer_id: Uuid,
    pub status: DeliveryStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub attempts: Vec<DeliveryAttempt>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryList {
    /// Oldest first.
    pub data: Vec<Delivery>,
}

pub use crate::domain::SimulateAction;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimulateRequest {
    pub action: SimulateAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdvanceClockRequest {
    /// How far to move the tenant's clock, 1 to 31,536,000 (a year).
    #[schema(minimum = 1, maximum = 31_536_000)]
    pub seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClockState {
    /// The tenant's clock after the move.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub now: OffsetDateTime,
    /// How far the tenant's clock is ahead of real time, in seconds.
    pub offset_seconds: u64,
    /// How many timers (link expiries, decisions) fired (0 when only reading the clock).
    #[serde(default)]
    pub timers_fired: u32,
}

/// An RFC 9457 problem: every error the API returns. Every member is optional on the wire
/// (RFC 9457 §3), so a client reads whatever a server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    #[serde(rename = "type", default = "about_blank")]
    pub problem_type: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub status: u16,
    #[serde(default)]
    pub detail: String,
    /// The invalid fields, on validation errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

fn about_blank() -> String {
    "about:blank".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_shows_its_secret_hint_only_in_debug_output() {
        let endpoint = WebhookEndpoint {
            id: Uuid::nil(),
            url: "http://127.0.0.1:9/webhooks".into(),
            description: None,
            event_types: None,
            secret: Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            secret_hint: "whsec_MfKQ…".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let shown = format!("{endpoint:?}");
        assert!(!shown.contains("9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "{shown}");
        assert!(shown.contains("Some(\"whsec_MfKQ…\")"), "{shown}");
    }
}
